// Deno's pty primitives: libc through Deno.dlopen (needs --allow-ffi). The pty logic itself is
// shared with Bun in _libc_pty.ts; this file only binds the symbols.

import { libcPty, ptyUnsupported, type LibcPtyBinding } from "./_libc_pty.ts";
import { inspectPtyLink } from "./_pty_link.ts";
import type { PtyPrimitives } from "./types.ts";

/** The slice of Deno's FFI API used here (the project typechecks without Deno's types). */
interface DenoFfi {
  build: { os: string };
  dlopen(path: string, symbols: typeof LIBC_SYMBOLS): { symbols: Record<keyof typeof LIBC_SYMBOLS, (...args: any[]) => any> };
  UnsafePointerView: {
    new (pointer: unknown): { getInt32(offset?: number): number };
    getCString(pointer: unknown): string;
  };
}

const LIBC_SYMBOLS = {
  posix_openpt: { parameters: ["i32"], result: "i32" },
  grantpt: { parameters: ["i32"], result: "i32" },
  unlockpt: { parameters: ["i32"], result: "i32" },
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // open(2) is variadic; without O_CREAT it never reads a third argument, so two are enough.
  open: { parameters: ["buffer", "i32"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  cfmakeraw: { parameters: ["buffer"], result: "void" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  symlink: { parameters: ["buffer", "buffer"], result: "i32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

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
    write: (fd, buf, count) => Number(symbols.write(fd, buf, count)),
    close: symbols.close,
    symlink: symbols.symlink,
    unlink: symbols.unlink,
    errno: () => errnoCell.getInt32(),
    strerror: (errno) => deno.UnsafePointerView.getCString(symbols.strerror(errno)),
  };
}

/** Deno's pty primitives; libc is opened on first use. */
export const denoPty: PtyPrimitives = { ...libcPty(bindLibc), inspectLink: inspectPtyLink };
