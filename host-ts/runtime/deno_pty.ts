// Deno's pty primitives: libc through Deno.dlopen (needs --allow-ffi). The pty logic itself is
// shared with Bun in _libc_pty.ts; this file only binds the symbols.

import { directCalls, libcPty, libcSymbols, ptyUnsupported, type LibcPtyBinding } from "./_libc_pty.ts";
import { inspectPtyLink } from "./_pty_link.ts";
import type { PtyPrimitives } from "./types.ts";

/** The slice of Deno's FFI API used here (the project typechecks without Deno's types). */
interface DenoFfi {
  build: { os: string };
  dlopen(path: string, symbols: typeof LIBC_SYMBOLS): { symbols: Record<string, (...args: any[]) => any> };
  UnsafePointerView: {
    new (pointer: unknown): { getInt32(offset?: number): number };
    getCString(pointer: unknown): string;
  };
}

/** Deno.dlopen's words for the C types (a C string comes back as a pointer, read with getCString). */
const DENO_TYPES = { int: "i32", uint: "u32", size: "usize", ssize: "isize", buffer: "buffer", pointer: "pointer", cstring: "pointer", void: "void" } as const;
const LIBC_SYMBOLS = libcSymbols(DENO_TYPES, (parameters, result) => ({ parameters, result }));

function bindLibc(): LibcPtyBinding {
  const deno = (globalThis as unknown as { Deno: DenoFfi }).Deno;
  if (deno.build.os !== "linux") throw ptyUnsupported(`Deno on ${deno.build.os} is not supported (Linux only)`);
  let symbols: ReturnType<DenoFfi["dlopen"]>["symbols"];
  try {
    symbols = deno.dlopen("libc.so.6", LIBC_SYMBOLS).symbols;
  } catch (error) {
    throw ptyUnsupported(`cannot load libc.so.6 (${(error as Error).message}); Deno needs --allow-ffi`);
  }
  // errno lives at a fixed address per thread, and Deno calls libc on this one.
  const errnoCell = new deno.UnsafePointerView(symbols.__errno_location());
  return {
    ...directCalls(symbols),
    read: (fd, buf, count) => Number(symbols.read(fd, buf, count)),
    write: (fd, buf, count) => Number(symbols.write(fd, buf, count)),
    errno: () => errnoCell.getInt32(),
    strerror: (errno) => deno.UnsafePointerView.getCString(symbols.strerror(errno)),
  };
}

/** Deno's pty primitives; libc is opened on first use. */
export const denoPty: PtyPrimitives = { ...libcPty(bindLibc), inspectLink: inspectPtyLink };
