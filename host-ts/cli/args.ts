// The command line of `chardev-hub`: QEMU's spellings (`-chardev SPEC`, one dash or two,
// `-opt=value` too), checked here so that every mistake is one line and exit code 2 before
// anything is opened. Chardev specs themselves are checked by the registry, with QEMU's texts.

import { splitParams } from "../options.ts";
import { parseConsoleOption } from "./console_spec.ts";
import type { ServiceOptions } from "./service.ts";

/** What the command line asks for. */
export interface CliOptions {
  /** `-chardev` specs, in order (a hub names chardevs defined before it). */
  readonly chardevs: readonly string[];
  /** `-object` specs (`tls-creds-x509,...`), in order; created before any chardev. */
  readonly objects: readonly string[];
  /** `-frontend DEVICE_ID,chardev=HUB_ID`: the chardev that plays the device, and the one it talks to. */
  readonly frontend: { readonly device: string; readonly hub: string } | null;
  /**
   * `-serial SPEC` in QEMU's legacy form (`tcp::4444,server,nowait`, `file:console.log`, `none`),
   * in order. Without `-frontend`, the command makes one hub of them and bridges the one device
   * chardev (`-chardev`) to it.
   */
  readonly serials: readonly string[];
  /** `-qmp ADDRESS` monitors, in order. */
  readonly qmp: readonly string[];
  /**
   * QEMU 10.0's limits (at most 4 hub backends, no hub over a mux).
   * @default false
   */
  readonly qemuCompat: boolean;
  /** Run the embedded default setup (no `-chardev` given, or `--default`). */
  readonly useDefault: boolean;
  /** `-console NAME,device=DEVICE_ID,...` specs, in order (consoles.ts reads them). */
  readonly consoles: readonly string[];
  /** `-readconfig FILE`: chardevs and consoles from a file in QEMU's -readconfig syntax; SIGHUP reads it again. */
  readonly readconfig: string | null;
  /**
   * `-control PATH`: the control socket `chardev-hub list | attach | who | tail` talk to
   * (control_server.ts); null for none.
   * @default "run/chardev-hub.sock" with the default setup, else null
   */
  readonly control: string | null;
  /** `-pidfile FILE`, `-daemonize`, `-D FILE` (service.ts). */
  readonly service: ServiceOptions;
  readonly action: "run" | "help" | "version";
}

/** A command-line mistake: printed as `chardev-hub: MESSAGE`, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

const VALUE_OPTIONS = new Set(["chardev", "frontend", "qmp", "object", "serial", "pidfile", "D", "control", "console", "readconfig"]);
const FLAG_OPTIONS = new Set(["qemu-compat", "default", "help", "h", "version", "V", "daemonize"]);

const FRONTEND_FORM = "-frontend expects DEVICE_ID,chardev=HUB_ID";

/** `-frontend DEVICE_ID,chardev=HUB_ID` (also `id=DEVICE_ID` for the first item, as QEMU's `-device` has it). */
export function parseFrontend(text: string): { device: string; hub: string } {
  let device: string | undefined;
  let hub: string | undefined;
  splitParams(text).forEach((part, index) => {
    const eq = part.indexOf("=");
    const key = eq < 0 ? (index === 0 ? "id" : part) : part.slice(0, eq);
    const value = eq < 0 ? (index === 0 ? part : "") : part.slice(eq + 1);
    if (key === "id") device = value;
    else if (key === "chardev") hub = value;
    else throw new UsageError(`-frontend: unknown key '${key}' (${FRONTEND_FORM})`);
  });
  if (!device) throw new UsageError(`-frontend: no device chardev named (${FRONTEND_FORM})`);
  if (!hub) throw new UsageError(`-frontend: no 'chardev=' naming the hub (${FRONTEND_FORM})`);
  if (device === hub) throw new UsageError(`-frontend: '${device}' cannot be both the device and the hub it talks to`);
  return { device, hub };
}

/**
 * Reads the arguments (without the program name). Throws UsageError for anything it cannot
 * make sense of; `--help` and `--version` win over everything else.
 *
 * @example
 * ```ts
 * parseArgs(["-chardev", "ringbuf,id=r", "-chardev", "hub,id=h,chardevs.0=r", "-frontend", "d,chardev=h"]).frontend;
 * // { device: "d", hub: "h" }
 * ```
 */
export function parseArgs(args: readonly string[]): CliOptions {
  const chardevs: string[] = [];
  const objects: string[] = [];
  const qmp: string[] = [];
  const serials: string[] = [];
  let frontend: { device: string; hub: string } | null = null;
  let qemuCompat = false;
  let wantDefault = false;
  let pidfile: string | null = null;
  let logFile: string | null = null;
  let daemonize = false;
  let control: string | null = null;
  const consoles: string[] = [];
  let readconfig: string | null = null;
  let action: CliOptions["action"] = "run";
  let firstMistake: UsageError | null = null;
  const mistake = (message: string) => (firstMistake ??= new UsageError(message));

  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const match = /^--?([A-Za-z][A-Za-z-]*)(?:=(.*))?$/s.exec(arg);
    if (!match) {
      mistake(arg.startsWith("-") ? `unknown option '${arg}' (see --help)` : `unexpected argument '${arg}': every chardev comes with -chardev (see --help)`);
      continue;
    }
    const [, name, inlineValue] = match;
    if (FLAG_OPTIONS.has(name)) {
      if (inlineValue !== undefined) mistake(`option '${arg.slice(0, arg.indexOf("="))}' takes no value`);
      else if (name === "help" || name === "h") action = "help";
      else if (name === "version" || name === "V") action = action === "help" ? action : "version";
      else if (name === "qemu-compat") qemuCompat = true;
      else if (name === "daemonize") daemonize = true;
      else wantDefault = true;
      continue;
    }
    if (!VALUE_OPTIONS.has(name)) {
      mistake(`unknown option '${arg.split("=")[0]}' (see --help)`);
      continue;
    }
    const value = inlineValue ?? args[++i];
    if (value === undefined) {
      mistake(`option '-${name}' needs an argument`);
      continue;
    }
    if (name === "chardev") {
      chardevs.push(value);
    } else if (name === "object") {
      objects.push(value);
    } else if (name === "qmp") {
      qmp.push(value);
    } else if (name === "serial") {
      serials.push(value);
    } else if (name === "console") {
      try {
        parseConsoleOption(value);
        consoles.push(value);
      } catch (error) {
        mistake((error as Error).message);
      }
    } else if (name === "readconfig") {
      if (readconfig !== null) mistake("only one -readconfig can be given");
      else if (value === "") mistake("option '-readconfig' needs a file name");
      else readconfig = value;
    } else if (name === "control") {
      if (value === "") mistake("option '-control' needs a socket path");
      else control = value;
    } else if (name === "pidfile" || name === "D") {
      if (value === "") mistake(`option '-${name}' needs a file name`);
      else if (name === "pidfile") pidfile = value;
      else logFile = value;
    } else if (frontend) {
      mistake("only one -frontend can be given: a hub has one frontend");
    } else {
      try {
        frontend = parseFrontend(value);
      } catch (error) {
        mistake((error as Error).message);
      }
    }
  }

  const service: ServiceOptions = { pidfile, daemonize, logFile };
  if (action !== "run") return { chardevs, objects, frontend, serials, qmp, qemuCompat, useDefault: false, action, service, control, consoles, readconfig };
  if (firstMistake) throw firstMistake;
  const named = consoles.length > 0 || readconfig !== null;
  if (named && (frontend || serials.length > 0)) throw new UsageError("-console and -readconfig make a hub per console: give no -frontend or -serial with them (each is one console of its own)");
  if (wantDefault && (chardevs.length > 0 || frontend || serials.length > 0 || named)) throw new UsageError("--default brings its own chardevs: give it no -chardev, -serial, -frontend, -console or -readconfig");
  if (serials.length > 0) {
    if (frontend) throw new UsageError("-serial makes its own hub for the device: give no -frontend with it (or define the hub yourself with -chardev hub,...)");
    if (chardevs.length === 0) throw new UsageError("-serial shares a device, but no -chardev defines one (e.g. -chardev spawn,id=sh,cmd=bash)");
    return { chardevs, objects, frontend, serials, qmp, qemuCompat, useDefault: false, action, service, control, consoles, readconfig };
  }
  if (named) {
    if (consoles.length > 0 && chardevs.length === 0 && readconfig === null) throw new UsageError("-console names a device, but no -chardev defines it (e.g. -chardev spawn,id=sh,cmd=bash)");
    return { chardevs, objects, frontend, serials, qmp, qemuCompat, useDefault: false, action, service, control, consoles, readconfig };
  }
  const useDefault = chardevs.length === 0 && frontend === null;
  if (!useDefault && chardevs.length === 0) throw new UsageError("-frontend names chardevs, but no -chardev defines them");
  if (!useDefault && !frontend) throw new UsageError("missing -frontend DEVICE_ID,chardev=HUB_ID: which chardev plays the device, and which hub it talks to");
  if (useDefault && qemuCompat) throw new UsageError("--qemu-compat cannot run the default setup: its hub has 5 backends and QEMU's hub takes 4");
  if (useDefault && daemonize) throw new UsageError("-daemonize cannot run the default setup: it shares this terminal (stdio), and a background copy has none; give your own -chardev and -frontend");
  return { chardevs, objects, frontend, serials, qmp, qemuCompat, useDefault, action, service, control, consoles, readconfig };
}
