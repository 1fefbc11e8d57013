// Node's pty primitives: our N-API addon (native/pty.c, built by node-gyp into
// build/Release/chardev_pty.node when npm installs the package). Node has no pty API of its own.

import * as fs from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { ptyUnsupported, readinessOf } from "./_libc_pty.ts";
import { inspectPtyLink } from "./_pty_link.ts";
import type { PtyPair, PtyPrimitives } from "./types.ts";

/** What native/pty.c exports. */
interface PtyAddon {
  openpt(): PtyPair;
  /** revents bits, or -errno. */
  poll(fd: number): number;
  read(fd: number, max: number): Uint8Array | number;
  write(fd: number, data: Uint8Array): number;
  close(fd: number): void;
}

/**
 * Where the addon lies relative to this module: beside the sources (host-ts/runtime/) or
 * beside the bundle (dist/); node-gyp's Debug build as a last resort.
 */
const ADDON_LOCATIONS = [
  "../../build/Release/chardev_pty.node",
  "../build/Release/chardev_pty.node",
  "../../build/Debug/chardev_pty.node",
  "../build/Debug/chardev_pty.node",
];

let addon: PtyAddon | undefined;

/** Loaded on first use: Deno and Bun load this file too (they spread Node's runtime) but never call it. */
function loadAddon(): PtyAddon {
  if (addon) return addon;
  if (process.platform === "win32") throw ptyUnsupported("Windows has no POSIX ptys");
  const require = createRequire(import.meta.url);
  for (const location of ADDON_LOCATIONS) {
    const file = fileURLToPath(new URL(location, import.meta.url));
    if (fs.existsSync(file)) return (addon = require(file) as PtyAddon);
  }
  throw ptyUnsupported("the native addon build/Release/chardev_pty.node is missing; build it with `npm run build:native`");
}

/** Node's pty primitives. */
export const nodePty: PtyPrimitives = {
  openpt: () => loadAddon().openpt(),
  poll: (fd) => readinessOf(loadAddon().poll(fd)),
  read: (fd, max) => loadAddon().read(fd, max),
  write: (fd, data) => loadAddon().write(fd, data),
  close: (fd) => loadAddon().close(fd),
  symlink: (target, path) => fs.symlinkSync(target, path),
  inspectLink: inspectPtyLink,
  unlink(path) {
    try {
      fs.unlinkSync(path);
    } catch {
      // Already gone (removed by hand, or never made): nothing to undo.
    }
  },
};
