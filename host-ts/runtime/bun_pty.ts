// Bun's pty primitives: libc through bun:ffi. The pty logic itself is shared with Deno in
// _libc_pty.ts; this file only binds the symbols.

import { createRequire } from "node:module";
import { libcPty, ptyUnsupported, type LibcPtyBinding } from "./_libc_pty.ts";
import { inspectPtyLink } from "./_pty_link.ts";
import type { PtyPrimitives } from "./types.ts";

/** The slice of bun:ffi used here (the project typechecks without Bun's types). */
interface BunFfi {
  dlopen(path: string, symbols: typeof LIBC_SYMBOLS): { symbols: Record<keyof typeof LIBC_SYMBOLS, (...args: any[]) => any> };
  read: { i32(pointer: number, offset?: number): number };
}

const LIBC_SYMBOLS = {
  posix_openpt: { args: ["i32"], returns: "i32" },
  grantpt: { args: ["i32"], returns: "i32" },
  unlockpt: { args: ["i32"], returns: "i32" },
  ptsname_r: { args: ["i32", "ptr", "u64"], returns: "i32" },
  // open(2) is variadic; without O_CREAT it never reads a third argument, so two are enough.
  open: { args: ["ptr", "i32"], returns: "i32" },
  fchmod: { args: ["i32", "u32"], returns: "i32" },
  tcgetattr: { args: ["i32", "ptr"], returns: "i32" },
  cfmakeraw: { args: ["ptr"], returns: "void" },
  tcsetattr: { args: ["i32", "i32", "ptr"], returns: "i32" },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i64_fast" },
  write: { args: ["i32", "ptr", "u64"], returns: "i64_fast" },
  close: { args: ["i32"], returns: "i32" },
  symlink: { args: ["ptr", "ptr"], returns: "i32" },
  unlink: { args: ["ptr"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "cstring" },
} as const;

function bindLibc(): LibcPtyBinding {
  if (process.platform !== "linux") throw ptyUnsupported(`Bun on ${process.platform} is not supported (Linux only)`);
  // Through require, not a static import: the Node bundle (esbuild) cannot resolve bun:ffi.
  const ffi = createRequire(import.meta.url)("bun:ffi") as BunFfi;
  let symbols: ReturnType<BunFfi["dlopen"]>["symbols"];
  try {
    symbols = ffi.dlopen("libc.so.6", LIBC_SYMBOLS).symbols;
  } catch (error) {
    throw ptyUnsupported(`cannot load libc.so.6 (${(error as Error).message})`);
  }
  // bun:ffi rejects an empty buffer as a pointer; a write of nothing needs none.
  const nonEmpty = (buf: Uint8Array): Uint8Array => (buf.length > 0 ? buf : new Uint8Array(1));
  // errno lives at a fixed address per thread, and Bun calls libc on this one.
  const errnoCell: number = symbols.__errno_location();
  return {
    posix_openpt: symbols.posix_openpt,
    grantpt: symbols.grantpt,
    unlockpt: symbols.unlockpt,
    ptsname_r: symbols.ptsname_r,
    open: symbols.open,
    fchmod: symbols.fchmod,
    tcgetattr: symbols.tcgetattr,
    cfmakeraw: symbols.cfmakeraw,
    tcsetattr: symbols.tcsetattr,
    poll: symbols.poll,
    read: (fd, buf, count) => Number(symbols.read(fd, buf, count)),
    write: (fd, buf, count) => Number(symbols.write(fd, nonEmpty(buf), count)),
    close: symbols.close,
    symlink: symbols.symlink,
    unlink: symbols.unlink,
    errno: () => ffi.read.i32(errnoCell, 0),
    strerror: (errno) => String(symbols.strerror(errno)),
  };
}

/** Bun's pty primitives; libc is opened on first use. */
export const bunPty: PtyPrimitives = { ...libcPty(bindLibc), inspectLink: inspectPtyLink };
