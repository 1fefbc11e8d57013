// QEMU's deprecated boolean shorthand in option strings: a bare `server` means `server=on`,
// a bare `nowait` means `wait=off` (the `no` is cut off the name, so `nodelay` is `delay=off`),
// with QEMU 7.2's deprecation warning for each, word for word. Used by the `-chardev` parser
// (options.ts) for every parameter after the first that has no `=`.

/** The key and value a bare parameter stands for, as QEMU's QemuOpts reads it. */
export interface BooleanShorthand {
  key: string;
  value: "on" | "off";
}

/**
 * QEMU's warning for a shorthand, as two lines (QEMU prints them that way: `warn_report` then
 * `error_printf`). `help` and `?` are not shorthand for anything and get none.
 */
export function booleanShorthandWarning(param: string): string[] {
  const { key, value } = readShorthand(param);
  if (isHelpOption(key)) return [];
  // QEMU's one special case: the opposite of `delay` is spelled `nodelay=on` in new syntax.
  const advice = key === "delay" ? `nodelay=${value === "off" ? "on" : "off"}` : `${key}=${value}`;
  return [`warning: short-form boolean option '${param}' deprecated`, `Please use ${advice} instead`];
}

function isHelpOption(key: string): boolean {
  return key === "help" || key === "?";
}

function readShorthand(param: string): BooleanShorthand {
  if (param.startsWith("no")) return { key: param.slice(2), value: "off" };
  return { key: param, value: "on" };
}

/**
 * Reads a bare parameter (`server`, `nowait`) the way QEMU does and reports QEMU's deprecation
 * warning lines through `onWarning`, one call per line.
 *
 * @example A `-chardev` flag written the old way
 * ```ts
 * import { expandBooleanShorthand } from "./legacy_booleans.ts";
 * const lines: string[] = [];
 * expandBooleanShorthand("nowait", (line) => lines.push(line)); // { key: "wait", value: "off" }
 * // lines: ["warning: short-form boolean option 'nowait' deprecated", "Please use wait=off instead"]
 * ```
 */
export function expandBooleanShorthand(param: string, onWarning: (line: string) => void = warnOnConsole): BooleanShorthand {
  for (const line of booleanShorthandWarning(param)) onWarning(line);
  return readShorthand(param);
}

/** Where warnings go when the caller names no channel: the process's stderr. */
export function warnOnConsole(line: string): void {
  console.error(line);
}
