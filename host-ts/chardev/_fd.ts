// Helpers for the backends that write file descriptors (file, pipe).

import { ChardevError } from "../errors.ts";
import { strerror } from "../errno.ts";
import type { FileOpenMode, HostRuntime } from "../runtime/types.ts";
import { quoteInput } from "../limits.ts";

/**
 * Opens `path` or throws QEMU's "Could not open" error. A file it creates gets `createMode`
 * (the runtime's private 0600 when absent).
 */
export function openOrThrow(runtime: HostRuntime, path: string, mode: FileOpenMode, createMode?: number): number {
  try {
    return runtime.openFile(path, mode, createMode);
  } catch (error) {
    if (error instanceof ChardevError) throw error; // UNSUPPORTED: a runtime without files
    throw new ChardevError("OPEN_FAILED", `Could not open '${quoteInput(path)}': ${strerror(error)}`);
  }
}

/**
 * Calls a one-shot `write` until everything is taken or it refuses (QEMU's
 * io_channel_send_full): the bytes taken, or -errno when it took nothing.
 */
export function writeUntilRefused(write: (data: Uint8Array) => number, data: Uint8Array): number {
  let done = 0;
  while (done < data.length) {
    const result = write(data.subarray(done));
    if (result < 0) return done > 0 ? done : result;
    if (result === 0) break;
    done += result;
  }
  return done;
}

/** `writeUntilRefused` on a file descriptor through the runtime's write(2). */
export function writeAvailable(runtime: HostRuntime, fd: number, data: Uint8Array): number {
  return writeUntilRefused((chunk) => runtime.writeFd(fd, chunk), data);
}

/** The line that marks a hole in a file or log: `[-- 4096 bytes lost: ENOSPC --]`. */
export function lossNote(lost: number, errno: string): string {
  return `[-- ${lost} bytes lost: ${errno} --]\n`;
}

/**
 * Writes the notes of a file that lost output (see `lossNote`). A note only partly written (the
 * disk filled again) is finished first on the next try; a loss that grew meanwhile gets a note
 * of its own for the rest, so the notes always add up to the exact hole.
 */
export class LossNotes {
  #unfinished: Uint8Array | null = null;
  /** Of the loss being resumed from, the bytes notes (finished or not) already count. */
  #announced = 0;

  /**
   * `lost` bytes are missing in all since the failure; `write` is a one-shot write returning
   * bytes taken or -errno. True once every note is whole in the file.
   */
  resume(lost: number, errno: string, write: (data: Uint8Array) => number): boolean {
    if (this.#unfinished && !this.#writeRest(write)) return false;
    if (lost > this.#announced) {
      this.#unfinished = new TextEncoder().encode(lossNote(lost - this.#announced, errno));
      this.#announced = lost;
      if (!this.#writeRest(write)) return false;
    }
    this.#announced = 0;
    return true;
  }

  #writeRest(write: (data: Uint8Array) => number): boolean {
    const rest = this.#unfinished!;
    const written = write(rest);
    if (written === rest.length) {
      this.#unfinished = null;
      return true;
    }
    if (written > 0) this.#unfinished = rest.subarray(written);
    return false;
  }
}
