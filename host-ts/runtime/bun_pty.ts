// Bun's pty primitives: libc through bun:ffi. The pty logic itself is shared with Deno in
// _libc_pty.ts; this file only binds the symbols.

import { createRequire } from "node:module";
import { directCalls, libcPty, libcSymbols, ptyUnsupported, type LibcPtyBinding } from "./_libc_pty.ts";
import { inspectPtyLink } from "./_pty_link.ts";
import type { PtyPrimitives } from "./types.ts";

/** The slice of bun:ffi used here (the project typechecks without Bun's types). */
interface BunFfi {
  dlopen(path: string, symbols: typeof LIBC_SYMBOLS): { symbols: Record<string, (...args: any[]) => any> };
  read: { i32(pointer: number, offset?: number): number };
}

/** bun:ffi's words for the C types. */
const BUN_TYPES = { int: "i32", uint: "u32", size: "u64", ssize: "i64_fast", buffer: "ptr", pointer: "ptr", cstring: "cstring", void: "void" } as const;
const LIBC_SYMBOLS = libcSymbols(BUN_TYPES, (args, returns) => ({ args, returns }));

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
    ...directCalls(symbols),
    read: (fd, buf, count) => Number(symbols.read(fd, buf, count)),
    write: (fd, buf, count) => Number(symbols.write(fd, nonEmpty(buf), count)),
    errno: () => ffi.read.i32(errnoCell, 0),
    strerror: (errno) => String(symbols.strerror(errno)),
  };
}

/** Bun's pty primitives; libc is opened on first use. */
export const bunPty: PtyPrimitives = { ...libcPty(bindLibc), inspectLink: inspectPtyLink };
