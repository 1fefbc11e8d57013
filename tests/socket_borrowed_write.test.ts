// A socket backend hands its connection views of ring memory, which the ring's writer
// overwrites as soon as the write returns: the runtime must copy whatever it keeps. Each
// runtime keeps bytes differently (Node and Deno by reference, Bun copies the first write's
// rest but not a queued one's), so this runs the real runtime's connection against a real
// peer that reads nothing until both writes are queued.

import * as net from "node:net";
import { afterEach, describe, expect, it } from "./_harness.ts";
import { detectRuntime } from "../host-ts/runtime/detect.ts";
import type { NetConnection, NetListener } from "../host-ts/runtime/types.ts";

/** More than the kernel's socket buffers take at once, so most of each write waits in user space. */
const WRITE_BYTES = 4 << 20;
const RECEIVE_TIMEOUT_MS = 20_000;

/** Byte i of fill `round`: distinct per round and position, so a swap or a stale byte shows. */
function patternByte(round: number, i: number): number {
  return (i * 7 + round * 101) % 251;
}

function fillPattern(bytes: Uint8Array, round: number): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = patternByte(round, i);
}

/** The index of the first byte of `received` that differs from round 0's then round 1's pattern, or -1. */
function firstWrongByte(received: Uint8Array): number {
  for (let i = 0; i < received.length; i++) {
    const round = i < WRITE_BYTES ? 0 : 1;
    if (received[i] !== patternByte(round, i % WRITE_BYTES)) return i;
  }
  return -1;
}

describe("a connection's borrowed write", () => {
  let listener: NetListener | null = null;
  let client: net.Socket | null = null;
  let served: NetConnection | null = null;

  afterEach(() => {
    served?.close();
    client?.destroy();
    listener?.close();
    served = null;
    client = null;
    listener = null;
  });

  it("delivers the bytes as they were when written, though the caller overwrites them at once", async () => {
    const runtime = await detectRuntime();
    let connectionMade!: (connection: NetConnection) => void;
    const accepted = new Promise<NetConnection>((resolve) => (connectionMade = resolve));
    listener = await runtime.net!.listen({ transport: "tcp", host: "127.0.0.1", port: 0 }, connectionMade);
    const address = listener.address;
    if (address.transport !== "tcp") throw new Error("expected a TCP listener");

    // The peer connects but reads nothing until both writes are queued.
    const peer = net.connect({ host: "127.0.0.1", port: address.port });
    client = peer;
    peer.pause();
    const chunks: Uint8Array[] = [];
    let receivedBytes = 0;
    let allReceived!: () => void;
    const received = new Promise<void>((resolve) => (allReceived = resolve));
    peer.on("data", (chunk: Uint8Array) => {
      chunks.push(chunk);
      receivedBytes += chunk.length;
      if (receivedBytes >= 2 * WRITE_BYTES) allReceived();
    });
    served = await accepted;
    served.start({ data: () => true, drain() {}, closed() {} });

    // One region reused like ring memory: written, refilled, written again, then scribbled on.
    const region = new Uint8Array(WRITE_BYTES);
    fillPattern(region, 0);
    served.writeBorrowed(region); // nothing queued yet: the runtime writes it at once
    fillPattern(region, 1);
    served.writeBorrowed(region); // the first is still pending: this one is queued
    region.fill(0xee);
    expect(served.bufferedBytes).toBeGreaterThan(0); // the peer has not read: some really waits

    peer.resume();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`received ${receivedBytes} of ${2 * WRITE_BYTES} bytes`)), RECEIVE_TIMEOUT_MS);
    });
    try {
      await Promise.race([received, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    const all = new Uint8Array(receivedBytes);
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    expect(all.length).toBe(2 * WRITE_BYTES);
    expect(firstWrongByte(all)).toBe(-1);
  });
});
