// Bun's host primitives. Bun runs Node's fs/net APIs, so only what differs is overridden here.

import * as fs from "node:fs";
import { bunPty } from "./bun_pty.ts";
import { guardAccept } from "./_accept_guard.ts";
import { nodeRuntime } from "./node.ts";
import { pullSource } from "./_pull_source.ts";
import type { HostRuntime, InheritedSocket, InputHandlers, InputSource, NetAddress, NetConnection, NetConnectOptions } from "./types.ts";

/** The part of Bun's own API used here (declared so tsc needs no Bun types). */
const bun = (globalThis as unknown as { Bun: { file(fd: number): { stream(): ReadableStream<Uint8Array> } } }).Bun;

/**
 * Bun's node:net accepts `new net.Socket({ fd })` on a FIFO but never delivers its data; a
 * `Bun.file(fd)` stream reads a FIFO on Bun's own event loop (non-blocking) and stops when
 * cancelled. Regular files keep Node's stream.
 */
function readFd(fd: number, handlers: InputHandlers): InputSource {
  if (!fs.fstatSync(fd).isFIFO()) return nodeRuntime.readFd(fd, handlers);
  const reader = bun.file(fd).stream().getReader();
  return pullSource(
    async () => {
      const chunk = await reader.read();
      return chunk.done ? null : chunk.value;
    },
    handlers,
    // The stream does not own the fd: cancel the read, then close the fd ourselves.
    () => void reader.cancel().catch(() => {}).finally(() => nodeRuntime.closeFd(fd)),
  );
}

/**
 * Bun's node:net makes a `new net.Socket({ fd })` of a connected socket that never reads or
 * reports its peer, so a connected fd (`fd=` of a client) is refused with a clear error;
 * listening fds work (net.Server.listen({ fd })).
 */
function connectUnlessInherited(address: NetAddress | InheritedSocket, options?: NetConnectOptions): Promise<NetConnection> {
  if (address.transport === "fd") {
    return Promise.reject(new Error("the bun runtime cannot take over a connected socket fd (a listening one works)"));
  }
  return nodeRuntime.net!.connect(address, options);
}

export const bunRuntime: HostRuntime = {
  ...nodeRuntime,
  name: "bun",
  // Its node:net listener does not survive a full fd table at accept(2) (_accept_guard.ts).
  net: { ...guardAccept(nodeRuntime.net!), connect: connectUnlessInherited },
  pty: bunPty,
  readFd,
};
