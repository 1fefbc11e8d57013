// `chardev-hub`, the command-line tool: QEMU's -chardev syntax, a device bridged to a hub, an
// optional QMP socket, and an embedded default setup. Runs on Node, Deno (`deno run -A`) and
// Bun; everything it needs from the host comes through the runtime's `process` primitives.
// Built into dist/cli.js by scripts/build.mjs.

import { parseArgs, UsageError, type CliOptions } from "./args.ts";
import { DeviceBridge } from "./bridge.ts";
import { addDefaultSetup } from "./default_setup.ts";
import { helpText } from "./help.ts";
import { ServiceError, ServiceMode, startBackgroundCopy, STDIO_WITH_DAEMONIZE } from "./service.ts";
import type { Chardev } from "../chardev/_chardev.ts";
import { HubChardev } from "../chardev/hub.ts";
import { PtyChardev } from "../chardev/pty.ts";
import { SocketChardev } from "../chardev/socket.ts";
import { describeExit, SpawnChardev } from "../chardev/spawn.ts";
import { StdioChardev } from "../chardev/stdio.ts";
import { WebChardev } from "../chardev/web.ts";
import { ChardevError } from "../errors.ts";
import { formatChardevOptions, parseLegacySpec, serialSpecFailure } from "../legacy_spec.ts";
import { parseChardevOptions } from "../options.ts";
import { quoteInput } from "../limits.ts";
import { ChrEvent } from "../events.ts";
import { startQmp, type QmpMonitor } from "../qmp.ts";
import { ChardevRegistry } from "../mod.ts";
import { detectRuntime } from "../runtime/detect.ts";
import type { HostRuntime, ProcessExit, ProcessPrimitives } from "../runtime/types.ts";

/** Replaced by scripts/build.mjs with package.json's version. */
declare const CHARDEV_HUB_VERSION: string | undefined;
const VERSION = typeof CHARDEV_HUB_VERSION === "string" ? CHARDEV_HUB_VERSION : "0.0.0-dev";

const PROGRAM = "chardev-hub";
/** The hub `-serial` makes (QEMU names the `-serial` chardevs serial0, serial1, ... as we do). */
const SERIAL_HUB_ID = "serial-hub";
const EXIT_SETUP_FAILED = 1;
const EXIT_USAGE = 2;
/** The device (not a spawned program) closed and nothing will bring it back. */
const EXIT_DEVICE_CLOSED = 3;
/** The lines the command puts in the console stream when the device goes and comes back (conserver's `[-- ... --]`). */
const DEVICE_CLOSED_LINE = "\r\n[-- device closed --]\r\n";
const DEVICE_BACK_LINE = "\r\n[-- device back --]\r\n";
/** After the device has ended, its last output gets this long to reach slow backends before we close. */
const FINAL_OUTPUT_GRACE_MS = 2000;
/** Signal numbers for a shell-style exit status (128 + N) when the spawned program was killed. */
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

function exitStatusOf(exit: ProcessExit): number {
  if (exit.signal) return 128 + (SIGNAL_NUMBERS[exit.signal] ?? 0);
  return exit.code ?? 0;
}

/** One run of the tool: what it opened, and the one way out that cleans it all up. */
class CliRun {
  reg: ChardevRegistry | null = null;
  readonly monitors: QmpMonitor[] = [];
  bridge: DeviceBridge | null = null;
  readonly #stopListening: (() => void)[] = [];
  #ending: Promise<never> | null = null;
  /** A stdio chardev shares our terminal with the console. */
  #sharedTerminal = false;
  /** The pid file, systemd's notices, -daemonize's report (service.ts); told first and last on the way out. */
  service: ServiceMode | null = null;

  readonly host: ProcessPrimitives;

  constructor(readonly runtime: HostRuntime) {
    this.host = runtime.process!;
  }

  say(text: string): void {
    this.host.print("stderr", `${PROGRAM}: ${text}\n`);
  }

  /**
   * Ctrl-C (from the stdio chardev too), SIGINT, SIGTERM, SIGHUP: clean up and leave. Cleaning
   * up is bounded (a spawned program gets SIGKILL if SIGHUP does not end it), so repeated
   * signals, which some senders deliver twice (`timeout` signals the child and its group), are
   * ignored.
   */
  catchSignals(): void {
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      this.#stopListening.push(this.host.onSignal(signal, () => void this.end(0, `terminating on signal ${signal}`)));
    }
  }

  /**
   * Stops the bridge, closes monitors and chardevs (sockets, links, the terminal's mode), then
   * exits with `status`. Only the first call counts: closing a spawn device ends its program,
   * whose exit must not replace the reason we are leaving.
   */
  end(status: number, message?: string): Promise<never> {
    this.#ending ??= this.#close(status, message);
    return this.#ending;
  }

  async #close(status: number, message: string | undefined): Promise<never> {
    await this.service?.stopping();
    this.bridge?.stop();
    try {
      for (const monitor of this.monitors) await monitor.close();
      await this.reg?.close();
    } catch (error) {
      this.say(`while closing: ${(error as Error).message}`);
    }
    // After close, so the message lands on a terminal that is out of raw mode, on a line of its
    // own when the console shared that terminal (its cursor is wherever the program left it).
    if (message && this.#sharedTerminal) this.host.print("stderr", "\r\n");
    if (message) this.say(message);
    for (const stop of this.#stopListening) stop();
    this.service?.cleanUp();
    return this.host.exit(status);
  }

  #everyChardev(): Chardev[] {
    return this.reg!.query().map((info) => this.reg!.find(info.label)!).filter(Boolean);
  }

  /** A spawned device takes its window size from browser tabs and from this terminal, when they share the run. */
  followTerminalSizes(device: SpawnChardev): void {
    const resize = (cols: number, rows: number) => void device.resize(cols, rows).catch(() => {});
    const chardevs = this.#everyChardev();
    for (const chardev of chardevs) {
      if (chardev instanceof WebChardev && !this.#readOnlyInAnyHub(chardev.id)) this.#stopListening.push(chardev.onResize(resize));
    }
    if (this.#sharedTerminal) {
      this.#stopListening.push(this.host.onTerminalResize((size) => resize(size.cols, size.rows)));
    }
  }

  /** A backend a hub holds with `mode.N=ro` only watches: its size must not change the device's either. */
  #readOnlyInAnyHub(id: string): boolean {
    return this.#everyChardev().some((chardev) => chardev instanceof HubChardev && chardev.stats().some((backend) => backend.id === id && backend.mode === "ro"));
  }

  #deviceOpened = false;
  #deviceDown = false;

  /**
   * A device that closes (a VM's socket, a serial cable) is reported on stderr, to QMP clients
   * (CHARDEV_DEVICE_CLOSED) and in the console stream (`[-- device closed --]`, to every backend,
   * logs included, as conserver logs it). A device that can come back (a socket server, which
   * waits for its next client, or a client with reconnect-ms) is waited for and reported back;
   * any other ends the run with EXIT_DEVICE_CLOSED once its last output reached the hub. A
   * spawned program is not reported here: its exit ends the run with its own status.
   */
  #deviceEvent(id: string, event: ChrEvent): void {
    const device = this.reg?.find(id);
    if (!device || device instanceof SpawnChardev || this.#ending) return;
    if (event === ChrEvent.OPENED) {
      const wasDown = this.#deviceDown;
      this.#deviceOpened = true;
      this.#deviceDown = false;
      if (!wasDown) return;
      this.#sayLine(`device '${id}' is back`);
      this.#qmpEvent("CHARDEV_DEVICE_BACK", { id });
      this.bridge?.sendToHub(new TextEncoder().encode(DEVICE_BACK_LINE));
      return;
    }
    if (event !== ChrEvent.CLOSED || !this.#deviceOpened || this.#deviceDown) return;
    this.#deviceDown = true;
    const reconnecting = device instanceof SocketChardev && device.options.reconnectMs > 0;
    const waitsForPeer = (device instanceof SocketChardev && device.options.server) || device instanceof PtyChardev;
    const comesBack = reconnecting || waitsForPeer;
    this.#qmpEvent("CHARDEV_DEVICE_CLOSED", { id, "comes-back": comesBack });
    this.bridge?.sendToHub(new TextEncoder().encode(DEVICE_CLOSED_LINE));
    if (comesBack) {
      const how = reconnecting ? `reconnecting every ${(device as SocketChardev).options.reconnectMs} ms` : "waiting for it to connect again";
      this.#sayLine(`device '${id}' closed (${how})`);
      return;
    }
    void (async () => {
      // Its last output and the marker reach the backends (logs first of all) before they close.
      await Promise.race([this.bridge?.toHubDrained(), new Promise((resolve) => setTimeout(resolve, FINAL_OUTPUT_GRACE_MS))]);
      await this.end(EXIT_DEVICE_CLOSED, `device '${id}' closed`);
    })();
  }

  /** Whether a stdio chardev shares our terminal (none may under -daemonize). */
  get sharesTerminal(): boolean {
    return this.#sharedTerminal;
  }

  /** A line on stderr; with a terminal in raw mode it needs its \r. */
  #sayLine(text: string): void {
    this.host.print("stderr", `${PROGRAM}: ${text}${this.#sharedTerminal ? "\r\n" : "\n"}`);
  }

  #qmpEvent(name: string, data: Record<string, unknown>): void {
    for (const monitor of this.monitors) monitor.sendOwnEvent(name, data);
  }

  /** QEMU prints where each pty went; we add where each browser terminal is. */
  announceEndpoints(): void {
    for (const chardev of this.#everyChardev()) {
      if (chardev instanceof PtyChardev) this.say(`char device redirected to ${chardev.slavePath} (label ${chardev.id})`);
      if (chardev instanceof WebChardev) {
        this.say(`web terminal at ${chardev.url} (label ${chardev.id})`);
        if (chardev.viewUrl !== chardev.url) this.say(`view-only web terminal at ${chardev.viewUrl} (label ${chardev.id})`);
      }
    }
  }

  /**
   * Adds a `-chardev`. QEMU's deprecated shorthand in it (`server`, `nowait`) gets QEMU's
   * warning in QEMU's shape: `PROGRAM: -chardev SPEC: warning: ...`, then the advice on a line
   * of its own. The registry is then handed the spec written in full: nothing left to warn about.
   */
  async #addChardev(spec: string): Promise<Chardev> {
    const lines: string[] = [];
    const parsed = parseChardevOptions(spec, this.reg!.qemuCompat, (line) => lines.push(line));
    if (lines.length === 0) return this.reg!.add(spec);
    // A stdio chardev added before this one has put the terminal in raw mode: a line needs its \r.
    const eol = this.#everyChardev().some((chardev) => chardev instanceof StdioChardev) ? "\r\n" : "\n";
    for (const line of lines) {
      this.host.print("stderr", line.startsWith("warning: ") ? `${PROGRAM}: -chardev ${quoteInput(spec)}: ${line}${eol}` : `${line}${eol}`);
    }
    return this.reg!.add(formatChardevOptions(parsed));
  }

  /**
   * `-serial SPEC...`: each spec becomes a chardev (`serialN`, or the `-chardev` it names with
   * `chardev:ID`), all of them one hub; the one `-chardev` no `-serial` names is the device.
   * A spec that fails is reported as QEMU reports it: the reason, then QEMU's line.
   */
  async #addSerialHub(specs: readonly string[], defined: readonly string[]): Promise<{ device: string; hub: string }> {
    const members: string[] = [];
    for (const spec of specs) {
      // QEMU's `-serial none`: no serial port here, and no number taken.
      if (spec === "none") continue;
      const label = `serial${members.length}`;
      try {
        const chardev = parseLegacySpec(label, spec, { qemuCompat: this.reg!.qemuCompat });
        if (chardev.kind === "existing") {
          if (!this.reg!.find(chardev.id)) throw new ChardevError("NOT_FOUND", serialSpecFailure(spec));
          members.push(chardev.id);
        } else {
          members.push((await this.reg!.add(chardev.spec)).id);
        }
      } catch (error) {
        if (!(error instanceof ChardevError)) throw error;
        if (error.message !== serialSpecFailure(spec)) this.say(`-serial ${quoteInput(spec)}: ${error.message}`);
        throw new ChardevError(error.code, `-serial ${quoteInput(spec)}: ${serialSpecFailure(spec)}`);
      }
    }
    if (members.length === 0) throw new ChardevError("INVALID_VALUE", "-serial: every -serial is 'none': nothing to share the device with");
    const devices = defined.filter((id) => !members.includes(id));
    if (devices.length === 0) {
      throw new ChardevError("INVALID_VALUE", "-serial: no device: every -chardev is named by a -serial chardev:ID; define the device with one more -chardev (e.g. spawn,id=sh,cmd=bash)");
    }
    if (devices.length > 1) {
      const named = devices.slice(0, 4).map((id) => `'${id}'`).join(", ") + (devices.length > 4 ? ", ..." : "");
      throw new ChardevError("INVALID_VALUE", `-serial: which chardev is the device? ${named} are not named by any -serial chardev:ID; give one device -chardev, name the others with -serial chardev:ID, or use -frontend`);
    }
    const list = members.map((id, index) => `chardevs.${index}=${id}`).join(",");
    await this.reg!.add(`hub,id=${SERIAL_HUB_ID},${list}`);
    return { device: devices[0], hub: SERIAL_HUB_ID };
  }

  async start(options: CliOptions): Promise<void> {
    this.catchSignals();
    this.reg = await ChardevRegistry.create({
      runtime: this.runtime,
      qemuCompat: options.qemuCompat,
      onExitRequest: () => void this.end(0, "exit requested (C-a x)"),
      // A refused peer or an unsafe setting; on a terminal in raw mode a line needs its \r.
      onWarning: (line) => this.host.print("stderr", `${PROGRAM}: ${line}${this.#sharedTerminal ? "\r\n" : "\n"}`),
    });
    let device: string;
    let hub: string;
    let defaultLines: readonly string[] = [];
    // Objects first, as QEMU creates them: chardevs name them (tls-creds=ID).
    for (const spec of options.objects) await this.reg.addObject(spec);
    if (options.useDefault) {
      const setup = await addDefaultSetup(this.reg, this.runtime);
      ({ device, hub, lines: defaultLines } = setup);
    } else if (options.serials.length > 0) {
      const defined: string[] = [];
      for (const spec of options.chardevs) defined.push((await this.#addChardev(spec)).id);
      ({ device, hub } = await this.#addSerialHub(options.serials, defined));
    } else {
      for (const spec of options.chardevs) await this.#addChardev(spec);
      ({ device, hub } = options.frontend!);
    }
    // QMP `quit`: its answer goes out first, then we leave as on SIGTERM (logs flushed), status 0.
    const onQuit = (monitor: QmpMonitor) => void monitor.drained().then(() => this.end(0, "terminating on QMP quit"));
    for (const address of options.qmp) this.monitors.push(await startQmp(this.reg, address, { onQuit }));
    this.bridge = DeviceBridge.connect(this.reg, device, hub, { onDeviceEvent: (event) => this.#deviceEvent(device, event) });
    this.#sharedTerminal = this.#everyChardev().some((chardev) => chardev instanceof StdioChardev);
    const deviceChardev = this.reg.get(device);
    if (deviceChardev instanceof SpawnChardev) {
      this.followTerminalSizes(deviceChardev);
      void deviceChardev.exited.then(async (exit) => {
        // Its last words reach the backends before they close (bounded: a stuck client must not keep us).
        await Promise.race([this.bridge?.toHubDrained(), new Promise((resolve) => setTimeout(resolve, FINAL_OUTPUT_GRACE_MS))]);
        const why = deviceChardev.startupErrors.trim();
        await this.end(exitStatusOf(exit), `'${deviceChardev.options.command}' ${describeExit(exit)}${why ? `: ${why}` : ""}`);
      });
    }
    // Last, so that a script waiting for these lines finds everything up.
    if (options.useDefault) this.host.print("stderr", `${PROGRAM}: ${defaultLines.join("\n")}\n`);
    else this.announceEndpoints();
  }
}

/** Runs the tool with the host's arguments; never returns. */
async function main(): Promise<never> {
  const runtime = await detectRuntime();
  const host = runtime.process;
  if (!host) throw new Error(`${PROGRAM} needs a runtime that can run programs (Node, Deno or Bun), not ${runtime.name}`);
  let options: CliOptions;
  try {
    options = parseArgs(host.args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    host.print("stderr", `${PROGRAM}: ${error.message}\n`);
    return host.exit(EXIT_USAGE);
  }
  if (options.action === "help") {
    host.print("stdout", helpText(PROGRAM));
    return host.exit(0);
  }
  if (options.action === "version") {
    host.print("stdout", `${PROGRAM} ${VERSION} (QEMU 10.0 hub chardev, ${runtime.name})\n`);
    return host.exit(0);
  }
  let service: ServiceMode;
  try {
    service = new ServiceMode(runtime, options.service);
    // -daemonize: this process starts the background copy, waits until it is up, and leaves.
    if (service.startsBackgroundCopy) {
      service.beforeSetup();
      return host.exit(await startBackgroundCopy(host, runtime.name, host.args, options.service.logFile));
    }
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error;
    host.print("stderr", `${PROGRAM}: ${error.message}\n`);
    return host.exit(EXIT_SETUP_FAILED);
  }
  const run = new CliRun({ ...runtime, process: service.host });
  run.service = service;
  try {
    service.beforeSetup();
    await run.start(options);
    if (service.isBackgroundCopy && run.sharesTerminal) throw new ServiceError(STDIO_WITH_DAEMONIZE);
    await service.ready();
  } catch (error) {
    if (!(error instanceof ChardevError) && !(error instanceof ServiceError)) throw error;
    return run.end(EXIT_SETUP_FAILED, error.message);
  }
  // Runs until a signal, C-a x or the spawned device's exit calls `end` (or, with nothing
  // left that can happen, such as chardevs that are all in memory, ends with the event loop).
  return new Promise<never>(() => {});
}

main().catch((error: unknown) => {
  // A bug, not a user's mistake: say so with the stack, and leave with QEMU's failure status.
  console.error(`${PROGRAM}: internal error:`, error);
  // `process` may be absent only where main() already failed for want of it.
  (globalThis as { process?: { exit(code: number): void } }).process?.exit(EXIT_SETUP_FAILED);
});
