// Deno's host primitives. Deno runs Node's fs/net APIs, so only what differs is overridden here.

import * as fs from "node:fs";
import { denoPty } from "./deno_pty.ts";
import { guardAccept } from "./_accept_guard.ts";
import { nodeRuntime } from "./node.ts";
import { pullSource } from "./_pull_source.ts";
import type { FileOpenMode, HostRuntime, InputHandlers, InputSource } from "./types.ts";

/** The part of Deno's own file API used here (declared so tsc needs no Deno types). */
interface DenoFile {
  read(buffer: Uint8Array): Promise<number | null>;
  close(): void;
}
const deno = (globalThis as unknown as { Deno: { openSync(path: string, options: { read: boolean; write: boolean }): DenoFile } }).Deno;

/**
 * Deno's node:net cannot wrap a FIFO fd (`new net.Socket({ fd })` fails with EEXIST) and its
 * node:fs reads of a non-blocking FIFO fail with EAGAIN, but a Deno file's `read` waits for a
 * FIFO without holding the event loop and ends when the file is closed. So each FIFO opened
 * for input also gets a Deno file on the same path, kept here by the fd we hand out, which
 * stays the one written (non-blocking, so a full FIFO still answers EAGAIN).
 */
const fifoReaders = new Map<number, DenoFile>();

function openFile(path: string, mode: FileOpenMode, createMode?: number): number {
  const fd = nodeRuntime.openFile(path, mode, createMode);
  if (mode === "read" || mode === "readwrite-nonblocking") {
    try {
      if (fs.fstatSync(fd).isFIFO()) fifoReaders.set(fd, deno.openSync(path, { read: true, write: mode !== "read" }));
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }
  return fd;
}

function closeFd(fd: number): void {
  const reader = fifoReaders.get(fd);
  fifoReaders.delete(fd);
  reader?.close();
  nodeRuntime.closeFd(fd);
}

/**
 * Bytes one write(2) may take: a pipe write of at most PIPE_BUF bytes is all or nothing.
 * Deno's fs.writeSync keeps writing until the whole buffer is taken, and when a non-blocking
 * FIFO fills midway it throws EAGAIN, losing the count of what it did write (Node and Bun
 * return it); the caller would then send those bytes again. Callers loop (writeAvailable).
 */
const PIPE_BUF = 4096;

function writeFd(fd: number, data: Uint8Array): number {
  return nodeRuntime.writeFd(fd, data.length > PIPE_BUF ? data.subarray(0, PIPE_BUF) : data);
}

function readFd(fd: number, handlers: InputHandlers): InputSource {
  const reader = fifoReaders.get(fd);
  if (!reader) return nodeRuntime.readFd(fd, handlers);
  const buffer = new Uint8Array(65536);
  return pullSource(
    async () => {
      // Closing the file cancels the pending read: pullSource ignores that error after close.
      const count = await reader.read(buffer);
      return count === null ? null : buffer.slice(0, count);
    },
    handlers,
    () => closeFd(fd),
  );
}

export const denoRuntime: HostRuntime = {
  ...nodeRuntime,
  name: "deno",
  // Its node:net listener does not survive a full fd table at accept(2) (_accept_guard.ts).
  net: guardAccept(nodeRuntime.net!),
  pty: denoPty,
  openFile,
  closeFd,
  readFd,
  writeFd,
};
