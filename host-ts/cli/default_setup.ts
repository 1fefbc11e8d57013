// What `chardev-hub` (and `npm start`) runs when given no chardevs: the user's shell on a new
// pty, shared by this terminal, a UNIX socket, a pty link, a browser tab and a log, all under
// ./run/. Every piece is an ordinary `-chardev` spec, so the printed setup can be copied and
// changed by hand.

import { ChardevError } from "../errors.ts";
import type { ChardevRegistry } from "../registry.ts";
import type { HostRuntime, ProcessPrimitives } from "../runtime/types.ts";
import { DEFAULT_COLS, DEFAULT_ROWS } from "../chardev/spawn.ts";
import type { WebChardev } from "../chardev/web.ts";
import { quoteInput } from "../limits.ts";
import { CONSOLE_REPLAY, CONSOLE_RING_BYTES } from "./consoles.ts";
import type { HubReplay } from "../chardev/_hub_screen_contract.ts";

/** Where the default setup puts its socket, link and log (relative to the working directory). */
export const RUN_DIR = "run";
/** The browser terminal's port, unless it is taken. */
export const DEFAULT_WEB_PORT = 8080;

/** QEMU option values escape a comma by doubling it. */
function optionValue(text: string): string {
  return text.replaceAll(",", ",,");
}

/** What the default setup made, for the command-line tool to bridge and announce. */
export interface DefaultSetup {
  readonly device: string;
  readonly hub: string;
  /** Lines to print: how to attach, one per way. */
  readonly lines: readonly string[];
  /** What its clients are replayed when they open (the console's default for `attach`). */
  readonly replay: HubReplay;
}

/**
 * Adds the default chardevs to `reg` (which must not be in QEMU mode: its hub has 5
 * backends). Throws ChardevError as `add` does; what was added stays for `reg.close()`.
 *
 * @example Share a shell the way `npm start` does
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * import { detectRuntime } from "../runtime/detect.ts";
 * import { DeviceBridge } from "./bridge.ts";
 * const runtime = await detectRuntime();
 * const reg = await ChardevRegistry.create({ qemuCompat: false, runtime });
 * const { device, hub, lines } = await addDefaultSetup(reg, runtime);
 * DeviceBridge.connect(reg, device, hub);
 * console.error(lines.join("\n"));
 * ```
 */
export async function addDefaultSetup(reg: ChardevRegistry, runtime: HostRuntime): Promise<DefaultSetup> {
  const host: ProcessPrimitives = runtime.process!;
  host.makeDirectory(RUN_DIR, 0o700);
  await refuseIfServed(runtime);
  const shell = host.env("SHELL") || "/bin/sh";
  const size = host.stdinIsTerminal ? host.terminalSize() : null;
  await reg.add(`spawn,id=shell,cmd=${optionValue(shell)},cols=${size?.cols ?? DEFAULT_COLS},rows=${size?.rows ?? DEFAULT_ROWS}`);

  const backends: string[] = [];
  const lines: string[] = [`${shell} on a new terminal, shared with:`];
  if (host.stdinIsTerminal) {
    await reg.add("stdio,id=terminal,signal=on");
    backends.push("terminal");
    lines.push("  this terminal (Ctrl-C here ends chardev-hub, as does `exit` in the shell)");
  } else {
    lines.push("  (stdin is not a terminal, so this terminal is not attached)");
  }

  await reg.add(`socket,id=socket,path=${RUN_DIR}/hub.sock,server=on,wait=off`);
  backends.push("socket");
  // The command's own client, through the control socket main.ts opens at run/chardev-hub.sock.
  lines.push("  chardev-hub attach shell   (another terminal; Ctrl-] . detaches)");
  lines.push(`  socat - UNIX-CONNECT:${RUN_DIR}/hub.sock`);

  // A link left by a killed run is replaced by the pty chardev itself; a live one is refused.
  await reg.add(`pty,id=pty,path=${RUN_DIR}/pty`);
  backends.push("pty");
  lines.push(`  tio ${RUN_DIR}/pty`);

  const web = await addWebTerminal(reg);
  backends.push("web");
  lines.push(`  ${web.url}   (the browser terminal; its secret is in the address)`);
  lines.push(`  ${web.viewUrl}   (view only)`);

  await reg.add(`file,id=log,path=${RUN_DIR}/console.log`);
  backends.push("log");
  lines.push(`  ${RUN_DIR}/console.log (a log of everything the shell writes)`);

  // Sharing defaults (issue 13): a 1 MiB ring, so a client that stops reading (a paused socat, a
  // suspended terminal) falls behind alone instead of freezing the shell for everyone; the
  // people's clients on `drop` with the screen as it stands replayed to a late one; the log on
  // `block` (every byte).
  const perBackend = backends.map((id, index) => (id === "log" ? `policy.${index}=block` : `policy.${index}=drop,replay.${index}=${CONSOLE_REPLAY}`));
  await reg.add(`hub,id=hub,ring=${CONSOLE_RING_BYTES},${backends.map((id, index) => `chardevs.${index}=${id}`).join(",")},${perBackend.join(",")}`);
  return { device: "shell", hub: "hub", lines, replay: CONSOLE_REPLAY };
}

/** The browser terminal on DEFAULT_WEB_PORT, or on any free port if that one is taken. */
async function addWebTerminal(reg: ChardevRegistry): Promise<WebChardev> {
  try {
    return (await reg.add(`web,id=web,host=127.0.0.1,port=${DEFAULT_WEB_PORT}`)) as WebChardev;
  } catch (error) {
    if (!(error instanceof ChardevError) || error.code !== "OPEN_FAILED") throw error;
    return (await reg.add("web,id=web,host=127.0.0.1,port=0")) as WebChardev;
  }
}

/**
 * A socket at run/hub.sock that accepts a connection belongs to a chardev-hub still running
 * in this directory: starting another would take its socket and pty link away (a socket
 * chardev replaces a socket file, as QEMU does). A stale file from a killed run refuses the
 * connection and is replaced as usual.
 */
async function refuseIfServed(runtime: HostRuntime): Promise<void> {
  const path = `${RUN_DIR}/hub.sock`;
  if (!runtime.net || !runtime.process!.exists(path)) return;
  let connection;
  try {
    connection = await runtime.net.connect({ transport: "unix", path });
  } catch {
    return;
  }
  connection.close();
  throw new ChardevError("IN_USE", `${quoteInput(path)} is served by another chardev-hub running here: attach to it (socat - UNIX-CONNECT:${quoteInput(path)}) or end it first`);
}
