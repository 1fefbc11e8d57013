// Node's host primitives (node:fs, node:net). The only file besides its Deno and Bun siblings
// that touches a runtime API.

import * as fs from "node:fs";
import * as net from "node:net";
import { negativeErrno } from "../errno.ts";
import { nodeNet } from "./node_net.ts";
import { nodeUdp } from "./node_udp.ts";
import { nodeStdio } from "./node_stdio.ts";
import { nodePty } from "./node_pty.ts";
import { nodeProcess } from "./node_process.ts";
import { nodePeers } from "./node_peer_uid.ts";
import type { FileOpenMode, HostRuntime, InputHandlers, InputSource, LogSink, WebServerPrimitives } from "./types.ts";

/**
 * The `web` chardev's server, loaded on first use: programs without a web chardev never load
 * node:http or the `ws` package.
 */
const lazyNodeWeb: WebServerPrimitives = {
  listen: async (options) => (await import("./node_web.ts")).nodeWeb.listen(options),
};

const OPEN_FLAGS: Record<FileOpenMode, number> = {
  write: fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC,
  append: fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND,
  read: fs.constants.O_RDONLY,
  // QEMU opens pipe ends O_RDWR so opening never waits for a peer and writes never get EPIPE.
  "readwrite-nonblocking": fs.constants.O_RDWR | fs.constants.O_NONBLOCK,
  // A host tty (serial port): never our controlling terminal, or its hangup would signal us.
  terminal: fs.constants.O_RDWR | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY,
};

/**
 * What a file we create is, unless asked otherwise: readable by its owner only. QEMU creates
 * 0666 (less the umask); a console log holds whatever the shell or guest printed.
 */
const PRIVATE_FILE_MODE = 0o600;

/**
 * Node offers no "fd writable" poll for FIFOs, so a watch re-checks after a short delay; a
 * wake-up that comes too early costs one EAGAIN and a new watch, never a lost byte.
 */
const WRITABLE_RECHECK_MS = 5;

function readFd(fd: number, handlers: InputHandlers): InputSource {
  // FIFOs go through libuv's pipe handle (non-blocking, no thread pool); files stream.
  const stream = fs.fstatSync(fd).isFIFO()
    ? new net.Socket({ fd, readable: true, writable: false })
    : fs.createReadStream("", { fd, autoClose: true });
  let closed = false;
  stream.on("data", (chunk: Buffer | string) => {
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    if (handlers.data(bytes) === false) stream.pause();
  });
  stream.on("end", () => {
    if (!closed) handlers.end();
  });
  stream.on("error", (error: unknown) => handlers.error?.(error));
  return {
    pause: () => stream.pause(),
    resume: () => stream.resume(),
    close() {
      closed = true;
      stream.destroy();
    },
  };
}

function openLog(path: string, append: boolean): LogSink {
  const fd = fs.openSync(path, append ? "a" : "w", PRIVATE_FILE_MODE);
  return {
    write(data) {
      // A short write (a disk filling up) is followed by one that says why; the error carries
      // the bytes that did go, so the chardev can count exactly what the log misses.
      let written = 0;
      try {
        while (written < data.length) written += fs.writeSync(fd, data, written);
      } catch (error) {
        throw Object.assign(error as Error, { bytesWritten: written });
      }
    },
    close() {
      fs.closeSync(fd);
    },
  };
}

function readSmallFile(path: string, maxBytes: number): Uint8Array {
  const fd = fs.openSync(path, "r");
  try {
    const buffer = new Uint8Array(maxBytes + 1);
    let length = 0;
    for (let read = -1; read !== 0 && length <= maxBytes; length += read) read = fs.readSync(fd, buffer, length, buffer.length - length, null);
    if (length > maxBytes) throw Object.assign(new Error(`larger than ${maxBytes} bytes`), { code: "EFBIG" });
    return buffer.slice(0, length);
  } finally {
    fs.closeSync(fd);
  }
}

/** Node's runtime primitives. */
export const nodeRuntime: HostRuntime = {
  name: "node",
  openFile: (path, mode, createMode = PRIVATE_FILE_MODE) => fs.openSync(path, OPEN_FLAGS[mode], createMode),
  writeFd(fd, data) {
    try {
      return fs.writeSync(fd, data);
    } catch (error) {
      return negativeErrno(error);
    }
  },
  closeFd(fd) {
    try {
      fs.closeSync(fd);
    } catch {
      // Already closed by a stream that owned it: nothing left to release.
    }
  },
  readFd,
  watchWritable(_fd, callback) {
    const timer = setTimeout(callback, WRITABLE_RECHECK_MS);
    return () => clearTimeout(timer);
  },
  openLog,
  renameFile: (from, to) => fs.renameSync(from, to),
  fileSize: (fd) => fs.fstatSync(fd).size,
  readSmallFile,
  net: nodeNet,
  stdio: nodeStdio,
  web: lazyNodeWeb,
  pty: nodePty,
  process: nodeProcess,
  peers: nodePeers,
  udp: nodeUdp,
  // Loaded on first use: a program with no `nats` chardev never reads the NATS client.
  nats: { connect: async (options) => (await import("./node_nats.ts")).nodeNats.connect(options) },
};
