// The primitives of a Web-only runtime (Cloudflare Workers/workerd, browsers, Deno without
// permissions): none. It has no files, FIFOs, sockets, terminals or ptys, so the backends that
// need them fail to open with UNSUPPORTED; hub, ringbuf, null, mux and webstream need nothing
// from a host. Imports nothing, so a bundle of the edge entry holds no Node, Deno or Bun API.

import { ChardevError } from "../errors.ts";
import type { HostRuntime } from "./types.ts";

function noFiles(path: string): ChardevError {
  return new ChardevError("UNSUPPORTED", `this runtime (web) has no files or FIFOs: cannot open '${path}'`);
}

/** Thrown by every fd call: none can be reached, since `openFile` never hands out an fd. */
function noFd(): never {
  throw new ChardevError("UNSUPPORTED", "this runtime (web) has no file descriptors");
}

/**
 * A Web-only runtime's primitives: no files, FIFOs, sockets, terminals or ptys.
 *
 * @example The file backend on the web runtime
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create({ runtime: webRuntime });
 * await reg.add("file,id=f,path=/tmp/out"); // throws ChardevError UNSUPPORTED
 * ```
 */
export const webRuntime: HostRuntime = {
  name: "web",
  openFile(path) {
    throw noFiles(path);
  },
  writeFd: noFd,
  closeFd: noFd,
  readFd: noFd,
  watchWritable: noFd,
  openLog(path) {
    throw noFiles(path);
  },
};
