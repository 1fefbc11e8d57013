// QEMU's `-chardev` option string (`ringbuf,id=chr1,size=128`): QemuOpts syntax with the
// implied first key `backend`, `,,` as a literal comma, and a bare `key` meaning `key=on`.

import { ChardevError } from "./errors.ts";
import { expandBooleanShorthand } from "./legacy_booleans.ts";
import { quoteInput } from "./limits.ts";

/** A parsed `-chardev` string: every key as written, values unescaped. */
export interface ChardevOptions {
  id: string;
  backend: string;
  /** All other keys (`id` and `backend` removed), last occurrence wins as in QemuOpts. */
  options: Map<string, string>;
}

/**
 * Keys QEMU's `qemu_chardev_opts` accepts for every backend, plus `chardevs.N` for the hub.
 * QEMU rejects anything else with "Invalid parameter 'KEY'" even if no backend would read it.
 */
const KNOWN_KEYS = new Set([
  "backend", "id", "path", "host", "port", "fd", "local", "localaddr", "localport", "to",
  "ipv4", "ipv6", "wait", "server", "delay", "nodelay", "reconnect", "reconnect-ms",
  "telnet", "tn3270", "tls-creds", "tls-authz", "websocket", "width", "height", "cols",
  "rows", "mux", "signal", "name", "debug", "size", "chardev", "append", "logfile",
  "logappend", "mouse", "clipboard", "abstract", "tight", "input-path",
]);

/** QEMU's hub list keys stop at `chardevs.3` (MAX_HUB = 4). */
export const QEMU_MAX_HUB = 4;

/** Extra keys a chardev kind of ours understands beyond QEMU's list (e.g. `cmd` for spawn). */
const extensionKeys = new Set<string>();

/** Lets a backend file register option keys QEMU does not have. */
export function registerOptionKeys(...keys: string[]): void {
  for (const key of keys) extensionKeys.add(key);
}

function isKnownKey(key: string, qemuCompat: boolean): boolean {
  if (KNOWN_KEYS.has(key) || extensionKeys.has(key)) return true;
  const listItem = /^chardevs\.(0|[1-9][0-9]*)$/.exec(key);
  if (listItem) return !qemuCompat || Number(listItem[1]) < QEMU_MAX_HUB;
  // Our per-entry extensions keep QEMU's list syntax: `args.0=...`.
  return /^[a-z][a-z0-9-]*\.(0|[1-9][0-9]*)$/.test(key) && extensionKeys.has(key.replace(/\.\d+$/, ".N"));
}

/**
 * QemuOpts' splitting, for every option string we take (`-chardev`, `-object`, `-frontend`):
 * single commas separate, `,,` stands for one literal comma.
 */
export function splitParams(text: string): string[] {
  const params: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === ",") {
      if (text[i + 1] === ",") {
        current += ",";
        i++;
        continue;
      }
      params.push(current);
      current = "";
      continue;
    }
    current += ch;
  }
  params.push(current);
  return params;
}

/**
 * Parses a `-chardev` option string.
 *
 * @example A hub's member list
 * ```ts
 * parseChardevOptions("hub,id=hub0,chardevs.0=a,chardevs.1=b").options.get("chardevs.1"); // "b"
 * ```
 */
export function parseChardevOptions(text: string, qemuCompat = true, onWarning?: (line: string) => void): ChardevOptions {
  if (typeof text !== "string" || text.trim() === "") {
    throw new ChardevError("MISSING_PARAMETER", "Parameter 'backend' is missing");
  }
  const options = new Map<string, string>();
  splitParams(text).forEach((param, index) => {
    const eq = param.indexOf("=");
    let key: string;
    let value: string;
    if (eq < 0) {
      if (index === 0) {
        key = "backend";
        value = param;
      } else {
        // QEMU's deprecated shorthand (`server`, `nowait`), with its warning: legacy_booleans.ts.
        ({ key, value } = expandBooleanShorthand(param, onWarning));
      }
    } else {
      key = param.slice(0, eq);
      value = param.slice(eq + 1);
    }
    if (key === "") throw new ChardevError("INVALID_PARAMETER", `Invalid parameter ''`);
    if (!isKnownKey(key, qemuCompat)) throw new ChardevError("INVALID_PARAMETER", `Invalid parameter '${quoteInput(key)}'`);
    options.set(key, value);
  });
  const id = options.get("id");
  if (id === undefined) throw new ChardevError("MISSING_PARAMETER", "Parameter 'id' is missing");
  validateId(id);
  const backend = options.get("backend");
  if (!backend) throw new ChardevError("MISSING_PARAMETER", `chardev: "${quoteInput(id)}" missing backend`);
  options.delete("id");
  options.delete("backend");
  return { id, backend, options };
}

/** QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'. */
export function validateId(id: string): void {
  if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(id)) {
    throw new ChardevError("INVALID_VALUE", `Parameter 'id' expects an identifier`);
  }
}

/** QemuOpts booleans: on/off and their accepted spellings. */
export function parseBool(key: string, value: string): boolean {
  if (["on", "yes", "true", "y"].includes(value)) return true;
  if (["off", "no", "false", "n"].includes(value)) return false;
  throw new ChardevError("INVALID_VALUE", `Parameter '${key}' expects 'on' or 'off'`);
}

/** A QemuOpts size or number: decimal digits with an optional k/M/G/T suffix for sizes. */
export function parseSize(key: string, value: string): number {
  const match = /^(\d+)([kKmMgGtT]?)$/.exec(value);
  if (!match) throw new ChardevError("INVALID_VALUE", `Parameter '${key}' expects a non-negative number below 2^64`);
  const scale = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[match[2].toLowerCase()]!;
  const result = Number(match[1]) * scale;
  if (!Number.isSafeInteger(result)) throw new ChardevError("INVALID_VALUE", `Parameter '${key}' expects a non-negative number below 2^64`);
  return result;
}

/** `chardevs.0`, `chardevs.1`, ... in index order, stopping at the first gap (as QEMU). */
export function listOption(options: Map<string, string>, name: string): string[] {
  const items: string[] = [];
  for (let i = 0; options.has(`${name}.${i}`); i++) items.push(options.get(`${name}.${i}`)!);
  return items;
}
