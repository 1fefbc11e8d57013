// Every number a user can give, bounded in one table. Each limit says why it is what it is, so
// a reader can tell a real ceiling (the core, the kernel, the timer) from a choice of ours.
// Option parsers check against these where they read a value, and refuse with INVALID_VALUE
// naming the key: a value past a limit is never accepted and then silently cut.

import { ChardevError } from "./errors.ts";

/**
 * Largest ring of a hub (`ring=`): 512 MiB. The core's allocator (AssemblyScript's TLSF) hands
 * out blocks below 1 GiB, the ring size is a power of two and a u32 in the core; so 2^29 is the
 * largest ring that can exist (`ring=1G` aborts the allocator, `ring=4G` wraps to 0 in u32).
 * Pages are touched only as bytes flow, so a large ring costs memory only when it fills.
 */
export const MAX_RING_BYTES = 2 ** 29;

/** Largest `ringbuf` (`size=`): 512 MiB, for the same reasons as {@link MAX_RING_BYTES}. */
export const MAX_RINGBUF_BYTES = 2 ** 29;

/**
 * All rings and ringbufs of one registry live in one WASM memory, which 32-bit WASM caps at
 * 4 GiB (65536 pages). A new ring that could not fit is refused before it is allocated: a
 * failed grow inside the allocator would leave the core unusable for every hub of the registry.
 */
export const MAX_CORE_MEMORY_BYTES = 2 ** 32;

/**
 * Longest time option in milliseconds (`stall-ms`, `input-idle-ms`, `reconnect-ms`,
 * `reconnect` × 1000): 2^31−1. Timers of every runtime keep a signed 32-bit delay and fire
 * after 1 ms for anything larger (about 24.8 days is the longest wait there is).
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Longest time option in seconds (socket `reconnect=`): whole seconds within {@link MAX_TIMER_MS}. */
export const MAX_TIMER_S = Math.floor(MAX_TIMER_MS / 1000);

/**
 * Fewest and most clients one listener serves at once (`max-clients=` of a `socket` server and of
 * `web`). Above 1, the hub that holds the listener takes each client as a backend of its own.
 */
export const MIN_CLIENTS = 1;
/** @see MIN_CLIENTS; one per port number is far beyond any real console, and each client holds a descriptor and its own buffers. */
export const MAX_CLIENTS = 65535;

/**
 * Most bytes a byte budget per client may be (`queue-limit=` of web, `high-water-mark=` of
 * socket and webstream): 1 GiB. Each client may hold that much in the runtime's heap.
 */
export const MAX_CLIENT_BUFFER_BYTES = 2 ** 30;

/**
 * Longest UNIX socket path in bytes of UTF-8: 107. The kernel's `sun_path` has 108 bytes,
 * one of them the terminating NUL; a longer path would be cut and name another file.
 */
export const MAX_UNIX_PATH_BYTES = 107;

/** Most characters of user input an error message quotes; longer input is cut with "...". */
export const MAX_QUOTED_INPUT = 256;

/** Backstop: no error message is longer than this, whatever a caller put in it (errors.ts). */
export { MAX_ERROR_MESSAGE } from "./errors.ts";

/** One row of {@link LIMITS}: what --help and docs/hub.md show. */
export interface Limit {
  /** The option or thing limited, as a user writes it. */
  name: string;
  /** Smallest allowed value. */
  min: number;
  /** Largest allowed value. */
  max: number;
  unit: "bytes" | "ms" | "s" | "clients";
  /** Why the limit is where it is. */
  why: string;
}

/**
 * The table of limits.
 *
 * @example Print them
 * ```ts
 * for (const limit of LIMITS) console.log(`${limit.name} ${limit.min}..${limit.max} ${limit.unit}`);
 * ```
 */
export const LIMITS: readonly Limit[] = [
  { name: "hub ring=", min: 0, max: MAX_RING_BYTES, unit: "bytes", why: "power of two; the core allocates blocks below 1 GiB" },
  { name: "ringbuf size=", min: 1, max: MAX_RINGBUF_BYTES, unit: "bytes", why: "power of two; the core allocates blocks below 1 GiB" },
  { name: "hub replay.N=", min: 0, max: MAX_RING_BYTES, unit: "bytes", why: "no more than a ring can hold" },
  { name: "stall-ms.N=, input-idle-ms=, reconnect-ms=", min: 0, max: MAX_TIMER_MS, unit: "ms", why: "timers keep a signed 32-bit delay" },
  { name: "socket reconnect=", min: 0, max: MAX_TIMER_S, unit: "s", why: "the same timer, in seconds" },
  { name: "socket and web max-clients=", min: MIN_CLIENTS, max: MAX_CLIENTS, unit: "clients", why: "a bound on memory and descriptors" },
  { name: "queue-limit=, high-water-mark=", min: 1, max: MAX_CLIENT_BUFFER_BYTES, unit: "bytes", why: "held per client in the runtime's heap" },
  { name: "socket path=", min: 1, max: MAX_UNIX_PATH_BYTES, unit: "bytes", why: "sun_path has 108 bytes with the NUL" },
];

/**
 * User input as an error message may show it: at most {@link MAX_QUOTED_INPUT} characters,
 * then "...". Cuts between UTF-16 surrogates never happen.
 *
 * @example A long value is cut
 * ```ts
 * quoteInput("a".repeat(1000)).length; // 259
 * ```
 */
export function quoteInput(text: string): string {
  const shown = String(text);
  if (shown.length <= MAX_QUOTED_INPUT) return shown;
  let end = MAX_QUOTED_INPUT;
  const last = shown.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // keep a surrogate pair whole or not at all
  return `${shown.slice(0, end)}...`;
}

/** Bytes `text` takes in UTF-8, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Checks that `value` is an integer from `min` to `max`; throws INVALID_VALUE naming `key`
 * (prefixed with `subsystem: ` when given) otherwise. Returns the value.
 *
 * @example A ring larger than the limit
 * ```ts
 * checkRange("hub", "ring", 2 ** 32, 0, MAX_RING_BYTES, "bytes");
 * // throws "hub: 'ring' must be at most 536870912 bytes (512 MiB), not 4294967296"
 * ```
 */
export function checkRange(subsystem: string, key: string, value: number, min: number, max: number, unit = ""): number {
  const prefix = subsystem === "" ? "" : `${subsystem}: `;
  const units = unit === "" ? "" : ` ${unit}`;
  if (!Number.isSafeInteger(value)) {
    throw new ChardevError("INVALID_VALUE", `${prefix}'${key}' must be an integer from ${min} to ${max}${units}, not ${quoteInput(String(value))}`);
  }
  if (value > max) {
    throw new ChardevError("INVALID_VALUE", `${prefix}'${key}' must be at most ${max}${units}${readable(max, unit)}, not ${value}`);
  }
  if (value < min) throw new ChardevError("INVALID_VALUE", `${prefix}'${key}' must be at least ${min}${units}, not ${value}`);
  return value;
}

/** A byte count in binary units, for messages: " (512 MiB)". */
function readable(value: number, unit: string): string {
  if (unit !== "bytes") return "";
  for (const [suffix, scale] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (value >= scale && value % scale === 0) return ` (${value / scale} ${suffix})`;
  }
  return "";
}

/**
 * A millisecond option: 0 to {@link MAX_TIMER_MS}.
 *
 * @example A delay past the timer limit
 * ```ts
 * checkMilliseconds("socket", "reconnect-ms", 2 ** 31); // throws INVALID_VALUE
 * ```
 */
export function checkMilliseconds(subsystem: string, key: string, value: number): number {
  return checkRange(subsystem, key, value, 0, MAX_TIMER_MS, "ms");
}

/**
 * A size in bytes: `min` (default 0) to `max`.
 *
 * @example A queue limit past its maximum
 * ```ts
 * checkSize("web", "queue-limit", 2 ** 40, MAX_CLIENT_BUFFER_BYTES, 1); // throws INVALID_VALUE
 * ```
 */
export function checkSize(subsystem: string, key: string, value: number, max: number, min = 0): number {
  return checkRange(subsystem, key, value, min, max, "bytes");
}

/**
 * A UNIX socket path the kernel can hold whole. Throws QEMU's own text
 * ("UNIX socket path '...' is too long") with the path quoted cut.
 */
export function checkUnixPath(path: string): string {
  if (utf8Length(path) > MAX_UNIX_PATH_BYTES) {
    throw new ChardevError("INVALID_VALUE", `UNIX socket path '${quoteInput(path)}' is too long`);
  }
  return path;
}

/**
 * Refuses a new ring of `bytes` when the core's memory could not grow to hold it (see
 * {@link MAX_CORE_MEMORY_BYTES}). `memoryBytes` is the core's memory size now. Memory freed by
 * a removed ring is reused but never returned, so this errs on the side of refusing.
 */
export function checkCoreRoom(subsystem: string, key: string, bytes: number, memoryBytes: number): void {
  // A slack for the allocator's headers and the staging buffers that grow with writes. (The
  // allocator asks for double its memory first and, refused, for just what it needs.)
  const slack = 64 * 2 ** 20;
  if (memoryBytes + bytes + slack > MAX_CORE_MEMORY_BYTES) {
    throw new ChardevError(
      "INVALID_VALUE",
      `${subsystem}: '${key}' of ${bytes} bytes does not fit: the core's memory holds ${memoryBytes} bytes of the ${MAX_CORE_MEMORY_BYTES} it can address`,
    );
  }
}
