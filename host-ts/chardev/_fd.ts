// Helpers for the backends that write file descriptors (file, pipe).

import { ChardevError } from "../errors.ts";
import { strerror } from "../errno.ts";
import type { FileOpenMode, HostRuntime } from "../runtime/types.ts";

/**
 * Opens `path` or throws QEMU's "Could not open" error. A file it creates gets `createMode`
 * (the runtime's private 0600 when absent).
 */
export function openOrThrow(runtime: HostRuntime, path: string, mode: FileOpenMode, createMode?: number): number {
  try {
    return runtime.openFile(path, mode, createMode);
  } catch (error) {
    if (error instanceof ChardevError) throw error; // UNSUPPORTED: a runtime without files
    throw new ChardevError("OPEN_FAILED", `Could not open '${path}': ${strerror(error)}`);
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
