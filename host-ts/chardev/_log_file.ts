// A log file as operators need one (conserver, tio and ser2net do the same): every line stamped
// with the UTC time of its first byte (`timestamp=on`), rotated by size (`logfilemax=BYTES`
// keeping `rotate=N` older files), reopened on request (SIGHUP, QMP `chardev-reopen-logs`) so
// logrotate can move it away. The `file` chardev's output and every chardev's `logfile=` are
// one of these. Always written O_APPEND (`append=off` empties the file with an O_TRUNC open
// first: Deno refuses O_TRUNC with O_APPEND in one open), so a logrotate `copytruncate` never
// leaves a hole of NULs before the next write.

import { ChardevError } from "../errors.ts";
import { ERRNO, errnoName, negativeErrno, strerror } from "../errno.ts";
import { quoteInput } from "../limits.ts";
import type { OptionSchema } from "../option_schema.ts";
import type { HostRuntime, LogSink } from "../runtime/types.ts";
import { openOrThrow, writeAvailable } from "./_fd.ts";

/**
 * How many rotated files `logfilemax=` keeps when `rotate=` is not given.
 * @default 5
 */
export const DEFAULT_ROTATE = 5;

/** More kept files than this is surely a mistake (and a long rename chain on every rotation). */
export const MAX_ROTATE = 1000;

/** Options of every chardev's log (`file` applies them to its own output as well). */
export const LOG_OPTIONS: OptionSchema = [
  { key: "timestamp", type: "bool", default: "off", help: "start every line of the log (`logfile`, and `file`'s output) with the UTC time of its first byte: `2026-12-03T13:45:07.123Z `" },
  { key: "logfilemax", type: "size", min: 0, help: "once the log reaches this size it is rotated: FILE becomes FILE.1, FILE.1 FILE.2, ... (0 or absent: never)" },
  { key: "rotate", type: "integer", default: String(DEFAULT_ROTATE), min: 0, max: MAX_ROTATE, help: "how many rotated files `logfilemax` keeps (FILE.1 to FILE.N; 0: the log is emptied instead)" },
];

/** What a log file is asked to be. */
export interface LogFileSettings {
  readonly path: string;
  /** Keep what the file holds at open (`append=on`, `logappend=on`); else it is emptied once, at open. */
  readonly append: boolean;
  /** Permissions of a file it creates (open(2)'s mode); the runtime's private 0600 when absent. */
  readonly createMode?: number;
  /** Stamp every line. @default false */
  readonly timestamp?: boolean;
  /** Rotate once the file holds this many bytes; 0 never. @default 0 */
  readonly maxBytes?: number;
  /** Rotated files kept. @default DEFAULT_ROTATE */
  readonly rotate?: number;
  /** Tells the operator that a rotation failed (the log goes on in the file it had). */
  readonly warn?: (line: string) => void;
  /** The clock, in ms since the epoch (tests may pass their own). @default Date.now */
  readonly now?: () => number;
}

const LF = 0x0a;
const encoder = new TextEncoder();

/** `2026-12-03T13:45:07.123Z ` for a time in ms since the epoch. */
export function lineStamp(ms: number): string {
  return `${new Date(ms).toISOString()} `;
}

/** The common log options from a chardev's QAPI data, checked; throws INVALID_VALUE. */
export function logSettingsFrom(data: Record<string, unknown>): Pick<LogFileSettings, "timestamp" | "maxBytes" | "rotate"> {
  const rotate = data.rotate === undefined ? DEFAULT_ROTATE : (data.rotate as number);
  if (!Number.isSafeInteger(rotate) || rotate < 0 || rotate > MAX_ROTATE) {
    throw new ChardevError("INVALID_VALUE", `Parameter 'rotate' expects a number of files from 0 to ${MAX_ROTATE}`);
  }
  const maxBytes = data.logfilemax === undefined ? 0 : (data.logfilemax as number);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new ChardevError("INVALID_VALUE", "Parameter 'logfilemax' expects a size in bytes");
  return { timestamp: data.timestamp === true, maxBytes, rotate };
}

/**
 * An open log file. `take` is the data path's write (bytes of `data` taken or -errno, never
 * throws); `write` is the same as a LogSink (throws with `bytesWritten` when it falls short).
 *
 * @example A stamped log rotated at 10 MiB, 7 older files kept, reopened after logrotate
 * ```ts
 * declare const runtime: ConstructorParameters<typeof LogFile>[0]; // e.g. nodeRuntime
 * const log = new LogFile(runtime, { path: "console.log", append: true, timestamp: true, maxBytes: 10 * 2 ** 20, rotate: 7 });
 * log.take(new TextEncoder().encode("boot\n")); // the file gets "2026-12-03T13:45:07.123Z boot\n"
 * log.reopen(); // logrotate moved console.log away: a new one from here on
 * log.close();
 * ```
 */
export class LogFile implements LogSink {
  #fd: number;
  /** Bytes in the current file, for `maxBytes`. */
  #size: number;
  /** The next byte starts a line (so gets a stamp first). */
  #atLineStart = true;
  /** The rest of a stamp a full disk cut short: written before the line's first byte. */
  #pendingStamp: Uint8Array | null = null;
  #closed = false;
  /** Why the last write was refused (-errno), for a LogSink caller told only that it fell short. */
  #lastRefusal = -ERRNO.EIO;
  /** The last byte written was not a line's end (an event note starts a line of its own). */
  #midLine = false;
  readonly #timestamp: boolean;
  readonly #maxBytes: number;
  readonly #rotate: number;
  readonly #now: () => number;

  /** Opens `settings.path`; throws QEMU's "Could not open" ChardevError. */
  constructor(
    readonly runtime: HostRuntime,
    readonly settings: LogFileSettings,
  ) {
    this.#timestamp = settings.timestamp ?? false;
    this.#maxBytes = settings.maxBytes ?? 0;
    this.#rotate = settings.rotate ?? DEFAULT_ROTATE;
    this.#now = settings.now ?? Date.now;
    if (!settings.append) runtime.closeFd(openOrThrow(runtime, settings.path, "write", settings.createMode));
    this.#fd = openOrThrow(runtime, settings.path, "append", settings.createMode);
    this.#size = this.#sizeOf(this.#fd);
  }

  /** The fd output goes to now (it changes on rotation and reopen). */
  get fd(): number {
    return this.#fd;
  }

  /** Bytes in the current file as far as this log knows (its size at open, plus what it wrote since). */
  get size(): number {
    return this.#size;
  }

  /** Whether the last byte written left a line open. */
  get midLine(): boolean {
    return this.#midLine;
  }

  /** Writes `data` (stamped, rotated): bytes of `data` taken, or -errno when none were. Never throws. */
  take(data: Uint8Array): number {
    if (this.#closed) return -ERRNO.EBADF;
    let taken = 0;
    while (taken < data.length) {
      if (this.#timestamp && this.#atLineStart) {
        this.#pendingStamp = encoder.encode(lineStamp(this.#now()));
        this.#atLineStart = false;
      }
      if (this.#pendingStamp) {
        const result = this.#writeRaw(this.#pendingStamp, false);
        if (result <= 0) return this.#refused(taken, result);
        this.#pendingStamp = result === this.#pendingStamp.length ? null : this.#pendingStamp.subarray(result);
        if (this.#pendingStamp) continue; // the next try says why it fell short
      }
      // With stamps, one line at a time: the next line's stamp is taken when its first byte goes.
      const lineEnd = this.#timestamp ? data.indexOf(LF, taken) : -1;
      const end = lineEnd < 0 ? data.length : lineEnd + 1;
      const result = this.#writeRaw(data.subarray(taken, end), true);
      if (result <= 0) return this.#refused(taken, result);
      taken += result;
      // Short: the loop tries the rest at once, and that refusal says why (ENOSPC, EIO).
      if (taken === end && lineEnd >= 0) this.#atLineStart = true;
    }
    return taken;
  }

  /** What `take` answers when a write is refused after `taken` bytes: those, or the refusal. */
  #refused(taken: number, result: number): number {
    if (result < 0) this.#lastRefusal = result;
    return taken > 0 ? taken : result;
  }

  /** LogSink's write: all of `data`, or throws the errno with `bytesWritten` (what did go). */
  write(data: Uint8Array): void {
    const result = this.take(data);
    if (result === data.length) return;
    const written = Math.max(result, 0);
    const errno = errnoName(result < 0 ? result : this.#lastRefusal);
    throw Object.assign(new Error(`logfile: ${errno}`), { code: errno, bytesWritten: written });
  }

  /**
   * Opens the path again, appending (after `mv log log.1` the next bytes go to a new file; the
   * old one gets nothing more). Throws the runtime's error and keeps writing the old file when
   * the path cannot be opened.
   */
  reopen(): void {
    if (this.#closed) return;
    const fd = this.runtime.openFile(this.settings.path, "append", this.settings.createMode);
    const old = this.#fd;
    this.#fd = fd;
    this.#size = this.#sizeOf(fd);
    this.runtime.closeFd(old);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.runtime.closeFd(this.#fd);
  }

  /**
   * One write of the raw file (stamps included), counted for rotation. Only after output
   * (`mayRotate`), never between a stamp and its line: with stamps the pieces are lines, so a
   * rotated file ends at a line's end unless one line outgrew it.
   */
  #writeRaw(bytes: Uint8Array, mayRotate: boolean): number {
    const result = writeAvailable(this.runtime, this.#fd, bytes);
    if (result > 0) {
      this.#size += result;
      this.#midLine = bytes[result - 1] !== LF;
      if (mayRotate && this.#maxBytes > 0 && this.#size >= this.#maxBytes) this.#rotateNow();
    }
    return result;
  }

  /**
   * FILE.N-1 -> FILE.N, ..., FILE -> FILE.1, then a new empty FILE (conserver's rotation, by
   * size). Every byte written so far is in FILE.1; nothing is lost across the cut. A failure is
   * reported and the log goes on where it was (its size counts again from 0, so it is not tried
   * on every write).
   */
  #rotateNow(): void {
    const path = this.settings.path;
    const rename = this.runtime.renameFile;
    try {
      if (this.#rotate > 0) {
        if (!rename) throw new ChardevError("UNSUPPORTED", "this runtime cannot rename files");
        for (let index = this.#rotate - 1; index >= 1; index--) {
          try {
            rename(`${path}.${index}`, `${path}.${index + 1}`);
          } catch (error) {
            if (negativeErrno(error) !== -ERRNO.ENOENT) throw error; // fewer files so far
          }
        }
        rename(path, `${path}.1`);
      }
      // A new file in either case (rotate=0 empties the one there is).
      this.runtime.closeFd(this.runtime.openFile(path, "write", this.settings.createMode));
      const fd = this.runtime.openFile(path, "append", this.settings.createMode);
      this.runtime.closeFd(this.#fd);
      this.#fd = fd;
    } catch (error) {
      this.settings.warn?.(`logfile: cannot rotate '${quoteInput(path)}': ${error instanceof ChardevError ? error.message : strerror(error)}; it grows on`);
    }
    this.#size = 0;
  }

  #sizeOf(fd: number): number {
    try {
      return this.runtime.fileSize?.(fd) ?? 0;
    } catch {
      return 0; // a FIFO or a device: nothing to rotate by
    }
  }
}

/** A chardev's `logfile=` from its QAPI data (`logappend`, `timestamp`, `logfilemax`, `rotate`). */
export function openChardevLog(runtime: HostRuntime, data: Record<string, unknown>, warn?: (line: string) => void): LogFile {
  return new LogFile(runtime, { path: data.logfile as string, append: data.logappend === true, warn, ...logSettingsFrom(data) });
}
