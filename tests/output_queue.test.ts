// The one output queue (host-ts/output_queue.ts) against real chardevs that refuse: a UNIX
// socket chardev whose client stops reading, and a hub in front of one. Nothing is mocked; the
// counting target only passes each call on to the real frontend and counts it.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry, type Frontend } from "../host-ts/mod.ts";
import { OutputQueue, type OutputTarget } from "../host-ts/output_queue.ts";
import { bytes, FeHandler } from "./_fe_handler.ts";

/** More than the kernel's socket buffers, the chardev's mark and a paused reader's hold together. */
const TOTAL_BYTES = 8 * 1024 * 1024;
/** Gives up waiting for a condition after this long, so a broken queue fails instead of hanging. */
const GIVE_UP_MS = 20_000;

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + GIVE_UP_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** `total` bytes in chunks of varying sizes, each byte naming its position, so a loss, a duplicate or a swap shows. */
function numberedChunks(total: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let position = 0;
  for (let i = 0; position < total; i++) {
    const size = Math.min(total - position, 1 + ((i * 7919) % 65_537));
    const chunk = new Uint8Array(size);
    for (let j = 0; j < size; j++) chunk[j] = (position + j) % 251;
    chunks.push(chunk);
    position += size;
  }
  return chunks;
}

/** Where the first byte of `received` differs from the numbered stream, or -1. */
function firstMismatch(received: Uint8Array, total: number): number {
  if (received.length !== total) return Math.min(received.length, total);
  for (let i = 0; i < total; i++) if (received[i] !== i % 251) return i;
  return -1;
}

/** The real frontend, with its writes and watches counted. */
class CountingTarget implements OutputTarget {
  writes = 0;
  refusals = 0;
  watches = 0;
  /** addWatch answered 0 (nothing blocked): the queue falls back to its timer. */
  watchesWithoutId = 0;
  /** Writes made while a watch was registered and had not fired: what a polling writer does. */
  writesWhileWatching = 0;
  #pendingWatches = new Set<number>();
  constructor(readonly fe: Frontend) {}
  get lastError(): string | null {
    return this.fe.lastError;
  }
  write(data: Uint8Array): number {
    this.writes++;
    if (this.#pendingWatches.size > 0) this.writesWhileWatching++;
    const taken = this.fe.write(data);
    if (taken <= 0) this.refusals++;
    return taken;
  }
  addWatch(callback: () => void): number {
    this.watches++;
    let fired = false;
    const id = this.fe.addWatch(() => {
      fired = true;
      this.#pendingWatches.delete(id);
      callback();
    });
    if (id === 0) this.watchesWithoutId++;
    else if (!fired) this.#pendingWatches.add(id);
    return id;
  }
  removeWatch(id: number): void {
    this.#pendingWatches.delete(id);
    this.fe.removeWatch(id);
  }
}

/**
 * A client of a UNIX socket chardev that reads nothing until the test reads: socat copies the
 * socket into a FIFO that only the test drains (non-blocking reads, under every runtime), so
 * when the test stops reading, socat blocks, stops reading the socket, and the chardev refuses.
 */
class FifoReader {
  readonly #chunks: Uint8Array[] = [];
  receivedLength = 0;
  private constructor(
    readonly fd: number,
    readonly socat: ChildProcess,
  ) {}

  static async connect(socketPath: string, fifoPath: string): Promise<FifoReader> {
    execFileSync("mkfifo", [fifoPath]);
    // Opened before socat opens it for writing, so socat's open does not wait for a reader.
    const fd = fs.openSync(fifoPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const socat = spawn("socat", ["-u", `UNIX-CONNECT:${socketPath}`, `OPEN:${fifoPath}`], { stdio: "ignore" });
    return new FifoReader(fd, socat);
  }

  /** Reads what the FIFO holds now. */
  readAvailable(): void {
    for (;;) {
      const buffer = new Uint8Array(64 * 1024);
      let count: number;
      try {
        count = fs.readSync(this.fd, buffer, 0, buffer.length, null);
      } catch (error) {
        if ((error as { code?: string }).code === "EAGAIN") return;
        throw error;
      }
      if (count === 0) return; // socat has not opened it yet, or has ended
      this.#chunks.push(buffer.subarray(0, count));
      this.receivedLength += count;
    }
  }

  /** Reads until `total` bytes have come, letting the chardev run between reads. */
  async readUntil(total: number): Promise<void> {
    const deadline = Date.now() + GIVE_UP_MS;
    for (;;) {
      this.readAvailable();
      if (this.receivedLength >= total) return;
      if (Date.now() > deadline) throw new Error(`gave up reading: ${this.receivedLength} of ${total} bytes came`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  received(): Uint8Array {
    const all = new Uint8Array(this.receivedLength);
    let at = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return all;
  }

  close(): void {
    if (this.socat.exitCode === null) this.socat.kill();
    fs.closeSync(this.fd);
  }
}

describe("OutputQueue", () => {
  let dir: string;
  let reg: ChardevRegistry;
  let reader: FifoReader | null;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "output-queue-"));
    reg = await ChardevRegistry.create({ qemuCompat: false });
    reader = null;
  });

  afterEach(async () => {
    await reg.close();
    reader?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A UNIX socket server chardev `s0` with a connected client that reads only when the test does. */
  async function socketWithIdleReader(): Promise<FifoReader> {
    const socketPath = path.join(dir, "s0.sock");
    await reg.add(`socket,id=s0,path=${socketPath},server=on,wait=off`);
    reader = await FifoReader.connect(socketPath, path.join(dir, "s0.fifo"));
    return reader;
  }

  it("delivers every byte to a socket whose client stops reading, in order, once, woken by the watch", async () => {
    const peer = await socketWithIdleReader();
    const handler = new FeHandler();
    const fe = reg.attach("s0", handler);
    await until(() => handler.isOpen, "the socket chardev to report its client");
    const target = new CountingTarget(fe);
    let flushes = 0;
    const queue = new OutputQueue(target, { onFlushed: () => flushes++ });

    for (const chunk of numberedChunks(TOTAL_BYTES)) queue.push(chunk);
    // The client reads nothing: the socket refused and the queue waits on its watch.
    expect(queue.waiting).toBe(true);
    expect(queue.queuedBytes).toBeGreaterThan(0);
    expect(queue.writtenBytes + queue.queuedBytes).toBe(TOTAL_BYTES);
    expect(target.watches).toBe(1);

    // While nothing reads, the queue only writes when a watch says the socket took some: never
    // while a watch is pending, never on a timer (how much the socket takes meanwhile differs by runtime).
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(target.writesWhileWatching).toBe(0);
    expect(target.watchesWithoutId).toBe(0);
    expect(target.refusals).toBe(target.watches);
    expect(queue.waiting).toBe(true);

    let drained = false;
    void queue.drained().then(() => (drained = true));
    await peer.readUntil(TOTAL_BYTES);
    await until(() => drained, "the queue to drain");
    expect(queue.queuedBytes).toBe(0);
    expect(queue.writtenBytes).toBe(TOTAL_BYTES);
    // Each wait was a watch (never the no-watch timer) that fired; no write went out while one was pending.
    expect(target.refusals).toBe(target.watches);
    expect(target.watchesWithoutId).toBe(0);
    expect(target.writesWhileWatching).toBe(0);
    expect(target.watches).toBeGreaterThan(1);
    expect(flushes).toBeGreaterThan(target.watches);
    expect(firstMismatch(peer.received(), TOTAL_BYTES)).toBe(-1);
  });

  it("resolves a write only once a hub with a blocked backend has taken all of it", async () => {
    const peer = await socketWithIdleReader();
    await reg.add("hub,id=hub0,chardevs.0=s0");
    const fe = reg.attach("hub0", new FeHandler());
    await until(() => reg.get("s0").beOpen, "the socket chardev to report its client");
    const queue = new OutputQueue(fe);

    // Chunks go one at a time, as a WritableStream hands them over.
    const chunks = numberedChunks(TOTAL_BYTES);
    let next = 0;
    let pending: Promise<void> | undefined;
    let settled = true;
    // A write the hub refuses at first may still go through once the runtime hands the socket's
    // queue to the kernel (Deno does so later than Node): write on until one stays pending,
    // which it must once the kernel's buffers are full too, long before 8 MiB.
    while (settled && next < chunks.length) {
      pending = undefined;
      while (next < chunks.length && pending === undefined) pending = queue.write(chunks[next++]);
      if (pending === undefined) break;
      settled = false;
      void pending.then(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(pending).toBeInstanceOf(Promise);
    expect(settled).toBe(false);
    expect(queue.waiting).toBe(true);

    const reading = peer.readUntil(TOTAL_BYTES);
    await pending;
    while (next < chunks.length) await queue.write(chunks[next++]);
    expect(queue.writtenBytes).toBe(TOTAL_BYTES);
    await reading;
    expect(firstMismatch(peer.received(), TOTAL_BYTES)).toBe(-1);
  });

  it("drops what is queued and rejects a pending write when the target fails for good", async () => {
    await reg.add("ringbuf,id=r0,size=1024");
    const fe = reg.attach("r0", new FeHandler());
    const failures: [string, number][] = [];
    const queue = new OutputQueue(fe, {
      onFailed: (errno, dropped) => failures.push([errno, dropped]),
      errorFor: (errno) => new ChardevError("OPEN_FAILED", `r0: write failed with ${errno}`),
    });
    expect(queue.write(bytes("taken\n"))).toBeUndefined();
    expect(reg.ringbufRead("r0", 1024)).toBe("taken\n");

    fe.detach(); // every later write is -1 with EBADF
    const rejected = queue.write(bytes("lost\n"));
    expect(rejected).toBeInstanceOf(Promise);
    const error = await rejected!.then(
      () => null,
      (reason: unknown) => reason as ChardevError,
    );
    expect(error?.code).toBe("OPEN_FAILED");
    expect(error?.message).toBe("r0: write failed with EBADF");
    queue.push(bytes("also lost\n"));
    expect(failures).toEqual([
      ["EBADF", 5],
      ["EBADF", 10],
    ]);
    expect(queue.queuedBytes).toBe(0);
    expect(queue.writtenBytes).toBe(6);
  });

  it("holds bytes until it has a target, then writes them in the order they came on the next push", async () => {
    await reg.add("ringbuf,id=r0,size=1024");
    const queue = new OutputQueue();
    queue.push(bytes("one "));
    queue.push(bytes("two "));
    expect(queue.queuedBytes).toBe(8);
    queue.target = reg.attach("r0", new FeHandler());
    expect(reg.ringbufRead("r0", 1024)).toBe(""); // setting the target writes nothing by itself
    queue.push(bytes("three"));
    expect(reg.ringbufRead("r0", 1024)).toBe("one two three");
    await queue.drained();
  });

  it("stops waiting when cleared: the watch is given back and later bytes go out alone", async () => {
    const peer = await socketWithIdleReader();
    const handler = new FeHandler();
    const fe = reg.attach("s0", handler);
    await until(() => handler.isOpen, "the socket chardev to report its client");
    const queue = new OutputQueue(fe);
    for (const chunk of numberedChunks(TOTAL_BYTES)) queue.push(chunk);
    expect(queue.waiting).toBe(true);
    const drained = queue.drained();
    queue.clear();
    await drained;
    expect(queue.waiting).toBe(false);
    expect(queue.queuedBytes).toBe(0);

    const before = queue.writtenBytes;
    await peer.readUntil(before);
    queue.push(bytes("after"));
    await peer.readUntil(before + 5);
    await queue.drained();
    const received = peer.received();
    expect(firstMismatch(received.subarray(0, before), before)).toBe(-1);
    expect(new TextDecoder().decode(received.subarray(before))).toBe("after");
  });

  it("ignores pushes once closed and rejects writes", async () => {
    await reg.add("ringbuf,id=r0,size=1024");
    const queue = new OutputQueue(reg.attach("r0", new FeHandler()));
    queue.close();
    queue.push(bytes("ignored"));
    expect(queue.queuedBytes).toBe(0);
    const error = await queue.write(bytes("refused"))!.then(
      () => null,
      (reason: unknown) => reason as ChardevError,
    );
    expect(error?.message).toBe("chardev: output queue is closed");
    expect(reg.ringbufRead("r0", 1024)).toBe("");
  });
});
