// `hub`'s options: the per-backend and hub-wide option types, the option schema (option
// strings, QMP `chardev-add`, `--help`, the docs' tables) and the checks every way in shares
// (option strings, QMP `chardev-add`/`hub-attach`, the library's `Hub.attach`). The hub itself
// (hub.ts) takes options already checked.

import type { RingPolicy } from "../core.ts";
import { ChardevError } from "../errors.ts";
import { listOption, parseSize } from "../options.ts";
import type { OptionSchema } from "../option_schema.ts";
import { checkCoreRoom, checkMilliseconds, checkSize, MAX_RING_BYTES, MAX_TIMER_MS, quoteInput } from "../limits.ts";
import type { ChardevContext } from "./_chardev.ts";
import { type HubReplay, isScreenReplay } from "./_hub_screen_contract.ts";
import { HUB_SIZE_POLICIES, type HubSizePolicy } from "./_hub_size.ts";

/** How a backend of a ring hub is treated when it cannot keep up. */
export type HubPolicy = RingPolicy;
/** When the frontend sees OPENED and CLOSED. */
export type HubOpenPolicy = "any" | "all" | "always" | "primary";

/** Per-backend options (`policy.N=...` in option strings). */
export interface HubBackendOptions {
  /**
   * `block` holds the writer back (QEMU); `drop` skips ahead and reports a gap; `evict`
   * blocks, then is detached once stalled for `stallMs`. Only a ring hub has a choice.
   * @default "block"
   */
  policy?: HubPolicy;
  /** A `drop` backend further behind than this skips ahead. @default the ring size */
  lagLimit?: number;
  /** An `evict` backend stalled this long is detached. @default 5000 */
  stallMs?: number;
  /**
   * What a ring hub replays when the backend opens: bytes of recent output, or `screen` (the
   * screen as it stands, one repaint from the hub's terminal emulator, then the live stream;
   * `screen:LINES` limits the scrollback lines above it). @default 0
   */
  replay?: HubReplay;
  /** `ro` discards (and counts) the backend's input. @default "rw" */
  mode?: "rw" | "ro";
}

/** Hub-wide options. */
export interface HubOptions {
  /** Broadcast ring size, a power of two; 0 is QEMU's unbuffered hub. @default 0 */
  ring?: number;
  /**
   * Bytes of the hub's first output (the boot log) kept besides the ring, after the ring has
   * overwritten them; read with `history`. Needs a ring. @default 0
   */
  keepHead?: number;
  /** @default "any" (QEMU: first OPENED, last CLOSED) */
  open?: HubOpenPolicy;
  /** The backend whose state the frontend follows with `open: "primary"`. */
  primary?: string;
  /** `exclusive` lets one backend type at a time. @default "shared" */
  input?: "shared" | "exclusive";
  /** With `input: "exclusive"`, the typist keeps the floor until this long idle. @default 1000 */
  inputIdleMs?: number;
  /** How the terminal size is agreed among read-write backends (tmux's `window-size`). @default "latest" */
  size?: HubSizePolicy;
  /** The width before any backend tells one, and always with `size: "manual"`. @default 80 */
  cols?: number;
  /** The height before any backend tells one, and always with `size: "manual"`. @default 24 */
  rows?: number;
}

/** The largest terminal width or height a backend may report (a pty's winsize is 16-bit). */
export const MAX_TERMINAL_CELLS = 65535;

function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && (value & (value - 1)) === 0;
}

const POLICIES: readonly HubPolicy[] = ["block", "drop", "evict"];
const OPEN_POLICIES: readonly HubOpenPolicy[] = ["any", "all", "always", "primary"];

function oneOf<T extends string>(what: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  throw new ChardevError("INVALID_VALUE", `hub: '${what}' must be ${allowed.join(", ")}, not '${quoteInput(String(value))}'`);
}

function count(what: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (Number.isSafeInteger(value) && (value as number) >= 0) return value as number;
  throw new ChardevError("INVALID_VALUE", `hub: '${what}' must be a non-negative integer, not '${quoteInput(String(value))}'`);
}

/** A terminal width or height: 1 to MAX_TERMINAL_CELLS. */
function cells(what: string, value: unknown): number | undefined {
  const count = value === undefined ? undefined : Number(value);
  if (count === undefined) return undefined;
  if (Number.isSafeInteger(count) && count >= 1 && count <= MAX_TERMINAL_CELLS) return count;
  throw new ChardevError("INVALID_VALUE", `hub: '${what}' must be 1..${MAX_TERMINAL_CELLS}, not '${quoteInput(String(value))}'`);
}

/** A millisecond option: a count no larger than a timer can wait (limits.ts). */
function milliseconds(what: string, value: unknown): number | undefined {
  const ms = count(what, value);
  return ms === undefined ? undefined : checkMilliseconds("hub", what, ms);
}

/** A byte count no larger than `max` (limits.ts). */
function bytesUpTo(what: string, value: unknown, max: number): number | undefined {
  const bytes = count(what, value);
  return bytes === undefined ? undefined : checkSize("hub", what, bytes, max);
}

/**
 * Checks per-backend options against the limits (limits.ts) wherever they come from: option
 * strings, QMP `hub-attach`, the library's `Hub.attach`.
 */
export function checkHubBackendOptions(id: string, options: HubBackendOptions): HubBackendOptions {
  milliseconds(`stall-ms of ${id}`, options.stallMs);
  replayOf(id, options.replay);
  count(`lag-limit of ${id}`, options.lagLimit);
  return options;
}

/** A `replay` value: `screen`, `screen:LINES`, or bytes up to a ring's largest size. */
function replayOf(id: string, value: unknown): HubReplay | undefined {
  if (isScreenReplay(value)) return value;
  return bytesUpTo(`replay of ${id}`, value, MAX_RING_BYTES);
}

/** A numeric `KEY.N` option checked against its limit, named as the user wrote it (`stall-ms.1`). */
function checkBackendNumber(key: string, name: string, value: number): number {
  if (name === "stall-ms") return checkMilliseconds("hub", key, value);
  if (name === "replay") return checkSize("hub", key, value, MAX_RING_BYTES);
  return value;
}

/** Per-backend option keys as written in option strings and in QMP `options`. */
const BACKEND_KEYS = ["policy", "lag-limit", "stall-ms", "replay", "mode"] as const;

function backendOptions(id: string, raw: unknown): HubBackendOptions {
  if (raw === undefined) return {};
  if (typeof raw !== "object" || raw === null) throw new ChardevError("INVALID_VALUE", `hub: options of '${quoteInput(id)}' must be an object`);
  const fields = raw as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!(BACKEND_KEYS as readonly string[]).includes(key)) throw new ChardevError("INVALID_PARAMETER", `hub: unknown option '${quoteInput(key)}' for chardev '${quoteInput(id)}'`);
  }
  return {
    policy: oneOf(`policy of ${id}`, fields.policy, POLICIES),
    lagLimit: count(`lag-limit of ${id}`, fields["lag-limit"]),
    stallMs: milliseconds(`stall-ms of ${id}`, fields["stall-ms"]),
    replay: replayOf(id, fields.replay),
    mode: oneOf(`mode of ${id}`, fields.mode, ["rw", "ro"] as const),
  };
}

/**
 * `hub`'s options (QEMU 10.0's ChardevHub, plus ours). The per-backend keys (`policy.N`) are
 * QMP's `options` object keyed by chardev id; the driver's hook pairs them with `chardevs.N`.
 */
export const hubOptions: OptionSchema = [
  { key: "chardevs", type: "list", help: "the backends, N = 0, 1, ... (0..3 with --qemu-compat); chardevs defined before the hub" },
  { key: "ring", type: "size", default: "0", max: MAX_RING_BYTES, help: "0: QEMU's unbuffered hub (the slowest backend sets the pace); a power of two: a broadcast ring each backend drains at its own pace" },
  { key: "keep-head", type: "size", default: "0", max: MAX_RING_BYTES, help: "bytes of the hub's first output (the boot log) kept besides the ring once the ring has overwritten them; QMP `hub-history` reads both by offset. Needs `ring`" },
  { key: "open", type: "string", values: OPEN_POLICIES, default: "any", help: "when the frontend sees OPENED/CLOSED: first open/last close (QEMU), all open, from the start, or as the `primary` backend" },
  { key: "primary", type: "string", help: "a chardev id of the hub; implies `open=primary`" },
  { key: "input", type: "string", values: ["shared", "exclusive"], default: "shared", help: "`exclusive`: the first backend to type holds the floor; others' input is discarded (counted) until it is idle for `input-idle-ms`, closes or is detached" },
  { key: "input-idle-ms", type: "integer", unit: "ms", default: "1000", max: MAX_TIMER_MS, help: "how long an exclusive typist may be idle before another may type" },
  { key: "size", type: "string", values: HUB_SIZE_POLICIES, default: "latest", help: "the terminal size the device and the screen emulator get, agreed among read-write backends that tell theirs (tmux's `window-size`): the last one to resize, the smallest or largest of each dimension, or `cols`x`rows` always (`manual`); read-only backends never resize" },
  { key: "cols", type: "integer", default: "80", min: 1, max: MAX_TERMINAL_CELLS, help: "the terminal width until a backend tells one, and always with `size=manual`" },
  { key: "rows", type: "integer", default: "24", min: 1, max: MAX_TERMINAL_CELLS, help: "the terminal height until a backend tells one, and always with `size=manual`" },
  { key: "policy.N", via: "options.ID.policy", type: "string", values: POLICIES, default: "block", help: "`block` holds the writer back (QEMU); `drop` never does: a backend more than `lag-limit` behind skips ahead to a safe boundary (a line start or an ESC, never inside a UTF-8 or ANSI escape sequence) and a `gap` event reports the exact bytes it missed; `evict` blocks, but is detached once stalled `stall-ms`" },
  { key: "lag-limit.N", via: "options.ID.lag-limit", type: "size", default: "ring size", help: "how far behind a `drop` backend may fall" },
  { key: "stall-ms.N", via: "options.ID.stall-ms", type: "integer", unit: "ms", default: "5000", max: MAX_TIMER_MS, help: "how long an `evict` backend may stay stalled" },
  { key: "replay.N", via: "options.ID.replay", type: "size", default: "0", max: MAX_RING_BYTES, help: "recent output a backend gets when it opens (from a safe boundary); `screen` (`screen:LINES`): the screen as it stands instead, one repaint from the hub's terminal emulator (contents, cursor, modes, scroll region, up to 1000 or LINES lines of scrollback), then the live stream with no byte missing or repeated" },
  { key: "mode.N", via: "options.ID.mode", type: "string", values: ["rw", "ro"], default: "rw", help: "a read-only backend only watches: its input and its BREAKs are discarded and counted (`inputDiscarded`, `eventsDiscarded`), and the command takes no window size from it" },
  { member: "options", type: "object", help: "QMP: the per-backend keys by chardev id, `{ID: {policy, lag-limit, stall-ms, replay, mode}}`" },
];

/** `hub`'s option string as QMP's ChardevHub data: `policy.N=drop` goes to the backend named by `chardevs.N`. */
export function hubDataFromOptions(options: Map<string, string>): Record<string, unknown> {
  const chardevs = listOption(options, "chardevs");
  const data: Record<string, unknown> = chardevs.length > 0 ? { chardevs } : {};
  if (options.has("ring")) data.ring = checkSize("hub", "ring", parseSize("ring", options.get("ring")!), MAX_RING_BYTES);
  if (options.has("keep-head")) data["keep-head"] = checkSize("hub", "keep-head", parseSize("keep-head", options.get("keep-head")!), MAX_RING_BYTES);
  if (options.has("input-idle-ms")) data["input-idle-ms"] = checkMilliseconds("hub", "input-idle-ms", parseSize("input-idle-ms", options.get("input-idle-ms")!));
  for (const key of ["open", "primary", "input", "size"]) if (options.has(key)) data[key] = options.get(key);
  for (const key of ["cols", "rows"]) if (options.has(key)) data[key] = parseSize(key, options.get(key)!);
  // `policy.N=drop` belongs to the backend named by `chardevs.N`.
  const perBackend: Record<string, Record<string, unknown>> = {};
  for (const [key, value] of options) {
    const match = /^([a-z-]+)\.(\d+)$/.exec(key);
    if (!match || match[1] === "chardevs") continue;
    const id = chardevs[Number(match[2])];
    if (id === undefined) throw new ChardevError("INVALID_PARAMETER", `hub: '${quoteInput(key)}' has no matching 'chardevs.${quoteInput(match[2])}'`);
    const numeric = match[1] !== "policy" && match[1] !== "mode" && !(match[1] === "replay" && isScreenReplay(value));
    (perBackend[id] ??= {})[match[1]] = numeric ? checkBackendNumber(key, match[1], parseSize(key, value)) : value;
  }
  if (Object.keys(perBackend).length > 0) data.options = perBackend;
  return data;
}

/** What a hub is made from, checked: its own options and each backend's, in `chardevs` order. */
export interface HubSettings {
  ids: string[];
  configured: HubBackendOptions[];
  options: HubOptions;
}

/** Checks ChardevHub data (QMP's or an option string's) in QEMU's order of complaints. */
export function hubSettingsFromData(data: Record<string, unknown>, context: ChardevContext): HubSettings {
  const ids = (data.chardevs as string[] | undefined) ?? [];
  if (ids.length === 0 && context.qemuCompat) throw new ChardevError("HUB_NO_CHARDEVS", "hub: 'chardevs' list is not defined");
  const ring = bytesUpTo("ring", data.ring, MAX_RING_BYTES) ?? 0;
  if (ring !== 0 && !isPowerOfTwo(ring)) throw new ChardevError("INVALID_VALUE", `hub: 'ring' must be 0 or a power of two, not ${ring}`);
  // The core's memory is one 4 GiB space per registry: refuse a ring it could not grow to hold.
  if (ring !== 0) checkCoreRoom("hub", "ring", ring, context.core.view(0, 0).buffer.byteLength);
  const primary = data.primary as string | undefined;
  if (primary !== undefined && !ids.includes(primary)) {
    throw new ChardevError("INVALID_VALUE", `hub: primary '${quoteInput(primary)}' is not one of the hub's chardevs`);
  }
  const perBackend = (data.options ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(perBackend)) {
    if (!ids.includes(key)) throw new ChardevError("INVALID_PARAMETER", `hub: options given for '${quoteInput(key)}', which is not one of the hub's chardevs`);
  }
  const configured = ids.map((backendId) => backendOptions(backendId, perBackend[backendId]));
  const keepHead = bytesUpTo("keep-head", data["keep-head"], MAX_RING_BYTES) ?? 0;
  const options: HubOptions = {
    ring,
    keepHead,
    open: oneOf("open", data.open, OPEN_POLICIES),
    primary,
    input: oneOf("input", data.input, ["shared", "exclusive"] as const),
    inputIdleMs: milliseconds("input-idle-ms", data["input-idle-ms"]),
    size: oneOf("size", data.size, HUB_SIZE_POLICIES),
    cols: cells("cols", data.cols),
    rows: cells("rows", data.rows),
  };
  return { ids, configured, options };
}
