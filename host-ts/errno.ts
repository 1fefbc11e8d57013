// Errno names and numbers (Linux) for the data path: a write returns bytes taken or -errno,
// and the frontend reports the name (`fe.lastError === "EAGAIN"`).

import { quoteInput } from "./limits.ts";

export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  EPIPE: 32,
  ECONNRESET: 104,
  ENOTCONN: 107,
} as const;

export type ErrnoName = keyof typeof ERRNO;

const NAMES = new Map<number, ErrnoName>(Object.entries(ERRNO).map(([name, value]) => [value, name as ErrnoName]));

/** `EAGAIN` for 11; `E<number>` for a number we have no name for. */
export function errnoName(errno: number): string {
  return NAMES.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/** The negative errno for an error thrown by a runtime's fs or net call (its `code`), else -EIO. */
export function negativeErrno(error: unknown): number {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code in ERRNO) return -ERRNO[code as ErrnoName];
  return -ERRNO.EIO;
}

const STRERROR: Record<string, string> = {
  ENOENT: "No such file or directory",
  ENAMETOOLONG: "File name too long",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  EISDIR: "Is a directory",
  ENOTDIR: "Not a directory",
  EEXIST: "File exists",
  ENXIO: "No such device or address",
  EADDRINUSE: "Address already in use",
  ECONNREFUSED: "Connection refused",
};

/** The C library's text for an fs/net error, as QEMU prints it after "Could not open '...'". */
export function strerror(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && STRERROR[code]) return STRERROR[code];
  // The runtime's own message may quote a path of any length: cut it (limits.ts).
  return quoteInput(error instanceof Error ? error.message : String(error));
}
