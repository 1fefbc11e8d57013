// QEMU's legacy character device specs, the `-serial`/`-monitor`/`-parallel` form
// (`tcp::4444,server,nowait`, `file:console.log`, `mon:stdio`), mapped to `-chardev` options
// exactly as QEMU's qemu_chr_parse_compat maps them (chardev/char.c), plus `chardev:ID`, which
// QEMU resolves before that mapping. QEMU's `vc` (its graphical console) is our browser
// terminal, `web`. The result is a `-chardev` string, so the registry checks it like any other.

import { ChardevError } from "./errors.ts";
import { quoteInput } from "./limits.ts";
import { parseChardevOptions, type ChardevOptions } from "./options.ts";

/** What a legacy spec asks for: a new chardev, or one that already exists (`chardev:ID`). */
export type LegacyChardev =
  | { readonly kind: "new"; readonly spec: string; readonly options: ChardevOptions }
  | { readonly kind: "existing"; readonly id: string };

/** How to read a legacy spec. */
export interface LegacySpecOptions {
  /**
   * Whether `mon:` is allowed (QEMU allows it for `-serial` and `-monitor`, not elsewhere).
   * @default true
   */
  permitMuxMon?: boolean;
  /**
   * QEMU 10.0's limits where the `-chardev` parser has any (see parseChardevOptions).
   * @default true
   */
  qemuCompat?: boolean;
}

/** Backends QEMU takes by their bare name. */
const BARE_BACKENDS = new Set(["null", "pty", "msmouse", "wctablet", "braille", "testdev", "stdio"]);
/** QEMU's host and port fields are char[65] and char[33]: `%64[^:]` and `%32[^,]`. */
const MAX_HOST = 64;
const MAX_PORT = 32;

/** A value inside a `-chardev` string: `,` is written `,,`. */
function escapeValue(value: string): string {
  return value.replaceAll(",", ",,");
}

/**
 * Parsed options back in `-chardev` syntax, every key written out (`server=on`, not `server`),
 * so that parsing the result again gives the same options and no shorthand warning.
 *
 * @example A path with a comma, escaped
 * ```ts
 * import { formatChardevOptions } from "./legacy_spec.ts";
 * formatChardevOptions({ id: "c0", backend: "file", options: new Map([["path", "a,b.log"]]) }); // "file,path=a,,b.log,id=c0"
 * ```
 */
export function formatChardevOptions({ id, backend, options }: ChardevOptions): string {
  const keys = [...options].map(([key, value]) => `${key}=${escapeValue(value)}`);
  return [escapeValue(backend), ...keys, `id=${id}`].join(",");
}

/** The failure QEMU reports with no reason of its own (a malformed address). */
function malformed(spec: string, form: string): ChardevError {
  return new ChardevError("INVALID_VALUE", `chardev: '${quoteInput(spec)}' is not of the form ${form}`);
}

/**
 * `[HOST]:PORT` at the start of `text`, as QEMU's two sscanf tries read it: `HOST:PORT` with
 * a non-empty host of at most 64 characters, else `:PORT`. The port runs to the first
 * character of `stops` (at most 32 characters). Returns null where QEMU's scan fails.
 */
function scanHostPort(text: string, stops: string): { host: string; port: string; rest: string } | null {
  const portAt = (from: number): { port: string; end: number } | null => {
    let end = from;
    while (end < text.length && !stops.includes(text[end])) end++;
    if (end === from) return null;
    // sscanf stops at the field width; the rest is then what follows.
    end = Math.min(end, from + MAX_PORT);
    return { port: text.slice(from, end), end };
  };
  const colon = text.indexOf(":");
  if (colon > 0) {
    const hostEnd = Math.min(colon, MAX_HOST);
    // A host longer than the field leaves sscanf looking for ':' at a non-':' character.
    if (hostEnd === colon) {
      const port = portAt(colon + 1);
      if (port) return { host: text.slice(0, colon), port: port.port, rest: text.slice(port.end) };
    }
  }
  if (text.startsWith(":")) {
    const port = portAt(1);
    if (port) return { host: "", port: port.port, rest: text.slice(port.end) };
  }
  return null;
}

/**
 * Maps a legacy spec to a chardev named `label`, with QEMU's errors: `'X' is not a valid char
 * driver`, `mon: isn't supported in this context`, `Invalid parameter 'KEY'` for options after
 * `tcp:…,`/`unix:…,`. A bare `server` or `nowait` there is read as QEMU reads it, without the
 * deprecation warning (QEMU gives none in this form).
 *
 * @example The most common QEMU console line
 * ```ts
 * import { parseLegacySpec } from "./legacy_spec.ts";
 * const chardev = parseLegacySpec("serial0", "telnet::4444,server,nowait");
 * // { kind: "new", spec: "socket,host=,port=4444,server=on,wait=off,telnet=on,id=serial0", options: … }
 * ```
 */
export function parseLegacySpec(label: string, spec: string, options: LegacySpecOptions = {}): LegacyChardev {
  const { permitMuxMon = true, qemuCompat = true } = options;
  if (spec.startsWith("chardev:")) return { kind: "existing", id: spec.slice("chardev:".length) };
  const params: string[] = [];
  let rest = spec;
  if (rest.startsWith("mon:")) {
    if (!permitMuxMon) throw new ChardevError("INVALID_VALUE", "mon: isn't supported in this context");
    rest = rest.slice(4);
    params.push("mux=on");
    // As QEMU's -nographic: Ctrl-C goes to the guest, not to us.
    if (rest === "stdio") params.push("signal=off");
  }
  const body = mapBody(spec, rest);
  // The label last: QEMU ignores an `id=` among the options of `tcp:…,id=x`.
  const text = [...body, ...params, `id=${label}`].join(",");
  // Read here without QEMU's shorthand warning (QEMU gives none in this form), and handed on
  // in full (`server=on`), so that the registry's parse has nothing left to warn about.
  const parsed = parseChardevOptions(text, qemuCompat, () => {});
  return { kind: "new", spec: formatChardevOptions(parsed), options: parsed };
}

/** The backend and its keys for the spec without its `mon:` prefix, in `-chardev` syntax. */
function mapBody(spec: string, rest: string): string[] {
  if (BARE_BACKENDS.has(rest)) return [rest];
  if (rest.startsWith("vc")) {
    const size = rest.slice(2);
    // QEMU reads a size only after a colon; `vc` followed by anything else is a plain `vc`.
    if (!size.startsWith(":")) return ["web"];
    const pixels = /^:([0-9]{1,7})x([0-9]{1,7})/.exec(size);
    if (pixels) return ["web", `width=${pixels[1]}`, `height=${pixels[2]}`];
    const chars = /^:([0-9]{1,7})Cx([0-9]{1,7})C/.exec(size);
    if (chars) return ["web", `cols=${chars[1]}`, `rows=${chars[2]}`];
    throw malformed(spec, "vc[:WxH] or vc[:COLSCxROWSC]");
  }
  if (rest === "con:") return ["console"];
  if (rest.startsWith("COM")) return ["serial", `path=${escapeValue(rest)}`];
  for (const [prefix, backend] of [["file:", "file"], ["pipe:", "pipe"], ["pty:", "pty"]] as const) {
    if (rest.startsWith(prefix)) return [backend, `path=${escapeValue(rest.slice(prefix.length))}`];
  }
  for (const prefix of ["tcp:", "telnet:", "tn3270:", "websocket:"]) {
    if (!rest.startsWith(prefix)) continue;
    const address = scanHostPort(rest.slice(prefix.length), ",");
    if (!address) throw malformed(spec, `${prefix}[HOST]:PORT[,OPTIONS]`);
    const keys = ["socket", `host=${address.host}`, `port=${address.port}`];
    // What follows the port is QemuOpts syntax; QEMU reads it only after a comma.
    if (address.rest.startsWith(",")) keys.push(address.rest.slice(1));
    if (prefix !== "tcp:") keys.push(`${prefix.slice(0, -1)}=on`);
    return keys;
  }
  if (rest.startsWith("udp:")) {
    const remote = scanHostPort(rest.slice(4), "@,");
    if (!remote) throw malformed(spec, "udp:[HOST]:PORT[@[LOCALADDR]:LOCALPORT]");
    const keys = ["udp", `host=${remote.host}`, `port=${remote.port}`];
    if (remote.rest.startsWith("@")) {
      const local = scanHostPort(remote.rest.slice(1), ",");
      if (!local) throw malformed(spec, "udp:[HOST]:PORT[@[LOCALADDR]:LOCALPORT]");
      keys.push(`localaddr=${local.host}`, `localport=${local.port}`);
    }
    return keys;
  }
  if (rest.startsWith("unix:")) {
    const options = rest.slice(5);
    // QEMU's implied first key `path`: taken unless the first item names its key itself.
    const first = /^(?:[^,]|,,)*/.exec(options)![0];
    return ["socket", first.includes("=") ? options : `path=${options}`];
  }
  if (rest.startsWith("/dev/parport") || rest.startsWith("/dev/ppi")) return ["parallel", `path=${escapeValue(rest)}`];
  if (rest.startsWith("/dev/")) return ["serial", `path=${escapeValue(rest)}`];
  throw new ChardevError("UNKNOWN_BACKEND", `'${quoteInput(rest)}' is not a valid char driver`);
}

/**
 * QEMU's line after any failure of a `-serial` spec (vl.c prints it after the reason).
 *
 * @example The line for a driver QEMU does not know
 * ```ts
 * import { serialSpecFailure } from "./legacy_spec.ts";
 * serialSpecFailure("bogus"); // "could not connect serial device to character backend 'bogus'"
 * ```
 */
export function serialSpecFailure(spec: string): string {
  return `could not connect serial device to character backend '${quoteInput(spec)}'`;
}
