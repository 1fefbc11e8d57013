// What `-console NAME,device=DEVICE_ID,...` (and a -readconfig `[console "NAME"]` section) asks
// for, read and checked without opening anything. Apart from consoles.ts, which makes the
// consoles, so that reading the command line (args.ts) loads no chardev code: `--help` and a
// usage mistake answer before the run's code is even loaded (entry.ts).

import { isScreenReplay, type HubReplay } from "../chardev/_hub_screen_contract.ts";
import { ChardevError } from "../errors.ts";
import { quoteInput } from "../limits.ts";
import { parseSize, splitParams, validateId } from "../options.ts";

const CONSOLE_FORM = "-console NAME,device=DEVICE_ID[,ring=BYTES][,log=FILE][,replay=BYTES|screen][,hub keys]";

/** A `replay=` value: `screen`, `screen:LINES`, or a size (`64K`); throws the size's error otherwise. */
export function parseReplay(value: string): HubReplay {
  return isScreenReplay(value) ? value : parseSize("replay", value);
}

/** What `-console` (or a `[console "NAME"]` section) asks for. */
export interface ConsoleSpec {
  /** The console's name, also its hub's id. */
  readonly name: string;
  /** The chardev that plays the device. */
  readonly device: string;
  /** `log=FILE`: a `file` chardev (id `NAME-log`) the hub writes everything to, policy block. */
  readonly log?: string;
  /** `replay=BYTES|screen`: what interactive clients get replayed when they open. */
  readonly replay?: string;
  /** Every other key, for the hub (`ring`, `chardevs.N`, `policy.N`, `input`, ...), in order. */
  readonly hubKeys: readonly (readonly [string, string])[];
}

/** QEMU option values escape a comma by doubling it. */
export function optionValue(text: string): string {
  return text.replaceAll(",", ",,");
}

/**
 * A console from its keys (`-console`'s items after the name, or a section's `key = "value"`
 * lines). Throws ChardevError (`console: ...`) for a missing device or a bad name.
 */
export function consoleSpecFromEntries(name: string, entries: Iterable<readonly [string, string]>): ConsoleSpec {
  if (!name) throw new ChardevError("MISSING_PARAMETER", `console: no name given (${CONSOLE_FORM})`);
  try {
    validateId(name);
  } catch {
    throw new ChardevError("INVALID_VALUE", `console: '${quoteInput(name)}' is not a name: a letter, then letters, digits, '-', '.', '_' (it is the id of the console's hub)`);
  }
  let device: string | undefined;
  let log: string | undefined;
  let replay: string | undefined;
  const hubKeys: [string, string][] = [];
  for (const [key, value] of entries) {
    if (key === "device") device = value;
    else if (key === "log") log = value;
    else if (key === "replay") replay = value;
    else if (key === "id" || key === "backend") throw new ChardevError("INVALID_PARAMETER", `console '${quoteInput(name)}': '${key}' is not a console key: the console's name is its hub's id`);
    else hubKeys.push([key, value]);
  }
  if (!device) throw new ChardevError("MISSING_PARAMETER", `console '${quoteInput(name)}': no 'device=' naming the chardev that plays the device (${CONSOLE_FORM})`);
  if (device === name) throw new ChardevError("INVALID_VALUE", `console '${quoteInput(name)}': the device cannot have the console's name (that is its hub's id)`);
  if (log === "") throw new ChardevError("INVALID_VALUE", `console '${quoteInput(name)}': 'log=' needs a file name`);
  if (replay !== undefined) {
    try {
      parseReplay(replay);
    } catch (error) {
      throw new ChardevError("INVALID_VALUE", `console '${quoteInput(name)}': ${(error as Error).message}`);
    }
  }
  return { name, device, log, replay, hubKeys };
}

/**
 * `-console NAME,device=DEVICE_ID,...` read into a ConsoleSpec (QEMU's comma rules: `,,` is a
 * comma). `name=NAME` may stand first instead of the bare name.
 *
 * @example A console with a log and a socket client
 * ```ts
 * parseConsoleOption("vm1,device=serial1,log=vm1.log,chardevs.0=s1").hubKeys; // [["chardevs.0", "s1"]]
 * ```
 */
export function parseConsoleOption(text: string): ConsoleSpec {
  const parts = splitParams(text);
  let name = parts[0];
  if (name.startsWith("name=")) name = name.slice("name=".length);
  else if (name.includes("=")) throw new ChardevError("MISSING_PARAMETER", `console: no name given: the name comes first (${CONSOLE_FORM})`);
  const entries = parts.slice(1).map((part): [string, string] => {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new ChardevError("INVALID_PARAMETER", `console '${quoteInput(name)}': '${quoteInput(part)}' is not KEY=VALUE`);
    return [part.slice(0, eq), part.slice(eq + 1)];
  });
  return consoleSpecFromEntries(name, entries);
}

/** A spec written back as one `-console` string: equal strings are equal consoles (a reload leaves those alone). */
export function formatConsoleSpec(spec: ConsoleSpec): string {
  const keys: [string, string][] = [["device", spec.device]];
  if (spec.log !== undefined) keys.push(["log", spec.log]);
  if (spec.replay !== undefined) keys.push(["replay", spec.replay]);
  return [optionValue(spec.name), ...[...keys, ...spec.hubKeys].map(([key, value]) => `${key}=${optionValue(value)}`)].join(",");
}

/** The chardevs a console uses besides its own hub and log: the device and the hub's `chardevs.N`. */
export function chardevsOfConsole(spec: ConsoleSpec): string[] {
  return [spec.device, ...spec.hubKeys.filter(([key]) => /^chardevs\.\d+$/.test(key)).map(([, value]) => value)];
}
