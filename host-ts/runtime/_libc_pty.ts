// The pty primitives written once over libc, for the runtimes that reach libc through an FFI
// (Deno.dlopen in deno_pty.ts, bun:ffi in bun_pty.ts). Each of those binds the few functions
// below and hands them here; nothing in this file touches a runtime API. Node uses its own
// addon (node_pty.ts) and shares only `readinessOf`.

import { ChardevError } from "../errors.ts";
import { errnoName } from "../errno.ts";
import type { PtyPair, PtyPrimitives, PtyReadiness } from "./types.ts";

/** A C type in LIBC_SIGNATURES, named neutrally; each FFI spells it its own way. */
export type LibcType = "int" | "uint" | "size" | "ssize" | "buffer" | "pointer" | "cstring" | "void";

/** Every libc function the pty calls: its parameter types and its result. Written once, for both FFIs. */
export const LIBC_SIGNATURES: Record<string, readonly [readonly LibcType[], LibcType]> = {
  posix_openpt: [["int"], "int"],
  grantpt: [["int"], "int"],
  unlockpt: [["int"], "int"],
  ptsname_r: [["int", "buffer", "size"], "int"],
  // open(2) is variadic; without O_CREAT it never reads a third argument, so two are enough.
  open: [["buffer", "int"], "int"],
  fchmod: [["int", "uint"], "int"],
  tcgetattr: [["int", "buffer"], "int"],
  cfmakeraw: [["buffer"], "void"],
  tcsetattr: [["int", "int", "buffer"], "int"],
  poll: [["buffer", "size", "int"], "int"],
  read: [["int", "buffer", "size"], "ssize"],
  write: [["int", "buffer", "size"], "ssize"],
  close: [["int"], "int"],
  symlink: [["buffer", "buffer"], "int"],
  unlink: [["buffer"], "int"],
  __errno_location: [[], "pointer"],
  strerror: [["int"], "cstring"],
};

/** The calls an FFI's symbols serve as they are; read, write, errno and strerror need a word of their own. */
const DIRECT_CALLS = ["posix_openpt", "grantpt", "unlockpt", "ptsname_r", "open", "fchmod", "tcgetattr", "cfmakeraw", "tcsetattr", "poll", "close", "symlink", "unlink"] as const;

/** The DIRECT_CALLS of an FFI's loaded symbols. */
export function directCalls(symbols: Record<string, (...args: any[]) => any>): Pick<LibcPtyBinding, (typeof DIRECT_CALLS)[number]> {
  return Object.fromEntries(DIRECT_CALLS.map((name) => [name, symbols[name]])) as Pick<LibcPtyBinding, (typeof DIRECT_CALLS)[number]>;
}

/** LIBC_SIGNATURES in an FFI's own words: `spell` names each type, `shape` makes one entry. */
export function libcSymbols<T>(spell: Record<LibcType, string>, shape: (parameters: string[], result: string) => T): Record<string, T> {
  return Object.fromEntries(Object.entries(LIBC_SIGNATURES).map(([name, [parameters, result]]) => [name, shape(parameters.map((type) => spell[type]), spell[result])]));
}

/**
 * The libc calls the pty needs, bound by a runtime's FFI. Byte buffers are passed as
 * `Uint8Array` (pointer to the view's first byte); strings as NUL-terminated UTF-8.
 */
export interface LibcPtyBinding {
  posix_openpt(flags: number): number;
  grantpt(fd: number): number;
  unlockpt(fd: number): number;
  /** glibc returns the error number itself, not -1. */
  ptsname_r(fd: number, buf: Uint8Array, size: number): number;
  open(path: Uint8Array, flags: number): number;
  fchmod(fd: number, mode: number): number;
  tcgetattr(fd: number, termios: Uint8Array): number;
  cfmakeraw(termios: Uint8Array): void;
  tcsetattr(fd: number, action: number, termios: Uint8Array): number;
  poll(fds: Uint8Array, count: number, timeoutMs: number): number;
  read(fd: number, buf: Uint8Array, count: number): number;
  write(fd: number, buf: Uint8Array, count: number): number;
  close(fd: number): number;
  symlink(target: Uint8Array, path: Uint8Array): number;
  unlink(path: Uint8Array): number;
  /** This thread's errno, read right after a call failed. */
  errno(): number;
  strerror(errno: number): string;
}

// Linux's values (x86-64 and arm64 share them); the FFI runtimes refuse other systems.
const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const TCSANOW = 0;
const POLLIN = 0x1;
const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
/** glibc's struct termios is 60 bytes; cfmakeraw only edits it in place, so room is all we owe it. */
const TERMIOS_BYTES = 128;
const READ_BUFFER_BYTES = 65536;
const OWNER_READ_WRITE = 0o600;

/** Turns poll(2)'s revents (or a negative errno) into the chardev's view of the master. */
export function readinessOf(revents: number): PtyReadiness {
  if (revents < 0) return { readable: false, writable: false, hangup: true };
  return {
    readable: (revents & POLLIN) !== 0,
    writable: (revents & POLLOUT) !== 0,
    hangup: (revents & (POLLHUP | POLLERR | POLLNVAL)) !== 0,
  };
}

const encoder = new TextEncoder();
const cString = (text: string): Uint8Array => encoder.encode(`${text}\0`);

/** An Error shaped like Node's fs errors (`code`, `errno`, `syscall`), so `strerror` reads it. */
function errnoError(libc: LibcPtyBinding, errno: number, syscall: string): Error {
  return Object.assign(new Error(libc.strerror(errno)), { code: errnoName(errno), errno: -errno, syscall });
}

/**
 * PtyPrimitives over a libc binding made on first use, so merely loading a runtime file asks
 * for no FFI permission. Inspecting a link is plain node:fs, which the runtime file adds.
 */
export function libcPty(bind: () => LibcPtyBinding): Omit<PtyPrimitives, "inspectLink"> {
  let bound: LibcPtyBinding | undefined;
  const libc = (): LibcPtyBinding => (bound ??= bind());
  let readBuffer: Uint8Array | undefined;
  const pollFd = new ArrayBuffer(8); // struct pollfd { int fd; short events; short revents; }
  const pollFdBytes = new Uint8Array(pollFd);
  const pollFdInts = new Int32Array(pollFd, 0, 1);
  const pollFdShorts = new Int16Array(pollFd, 4, 2);

  const failIf = (failed: boolean, syscall: string): void => {
    if (failed) throw errnoError(libc(), libc().errno(), syscall);
  };

  /** See PtyPrimitives.openpt: raw, 0600, and opened once so POLLHUP means "no peer". */
  const prepareSlave = (path: string): void => {
    const c = libc();
    const slave = c.open(cString(path), O_RDWR | O_NOCTTY | O_CLOEXEC);
    failIf(slave < 0, "open");
    try {
      const termios = new Uint8Array(TERMIOS_BYTES);
      failIf(c.fchmod(slave, OWNER_READ_WRITE) !== 0, "fchmod");
      failIf(c.tcgetattr(slave, termios) !== 0, "tcgetattr");
      c.cfmakeraw(termios);
      failIf(c.tcsetattr(slave, TCSANOW, termios) !== 0, "tcsetattr");
    } finally {
      c.close(slave);
    }
  };

  return {
    openpt(): PtyPair {
      const c = libc();
      // glibc passes these flags to open("/dev/ptmx"): the master never blocks and never leaks
      // into spawned programs.
      const fd = c.posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
      failIf(fd < 0, "posix_openpt");
      try {
        failIf(c.grantpt(fd) !== 0, "grantpt");
        failIf(c.unlockpt(fd) !== 0, "unlockpt");
        const name = new Uint8Array(256);
        const failure = c.ptsname_r(fd, name, name.length);
        if (failure !== 0) throw errnoError(c, failure > 0 ? failure : c.errno(), "ptsname_r");
        const slavePath = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
        prepareSlave(slavePath);
        return { fd, slavePath };
      } catch (error) {
        c.close(fd);
        throw error;
      }
    },
    poll(fd) {
      const c = libc();
      pollFdInts[0] = fd;
      pollFdShorts[0] = POLLIN | POLLOUT;
      pollFdShorts[1] = 0;
      const ready = c.poll(pollFdBytes, 1, 0);
      return readinessOf(ready < 0 ? -c.errno() : pollFdShorts[1]);
    },
    read(fd, max) {
      const c = libc();
      readBuffer ??= new Uint8Array(READ_BUFFER_BYTES);
      const got = c.read(fd, readBuffer, Math.min(max, readBuffer.length));
      return got < 0 ? -c.errno() : readBuffer.slice(0, got);
    },
    write(fd, data) {
      const c = libc();
      const put = c.write(fd, data, data.length);
      return put < 0 ? -c.errno() : put;
    },
    close(fd) {
      libc().close(fd);
    },
    symlink(target, path) {
      failIf(libc().symlink(cString(target), cString(path)) !== 0, "symlink");
    },
    unlink(path) {
      libc().unlink(cString(path));
    },
  };
}

/** The error a runtime file throws when it cannot give ptys at all. */
export function ptyUnsupported(reason: string): ChardevError {
  return new ChardevError("UNSUPPORTED", `chardev: pty: ${reason}`);
}
