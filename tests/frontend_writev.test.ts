// The batched producer path: `Frontend.writev` (host-ts/frontend.ts), the chardev default that
// takes the chunks as successive writes (chardev/_chardev.ts), the hub's ring copying them all
// in one pass (_hub_ring.ts, core.ts BcastWriter.writev), QEMU's write-to-all taking them chunk
// by chunk (_hub_write_all.ts), and `Hub.writable` taking arrays of chunks (output_queue.ts).
// Backends are real: ringbufs, FIFOs (whose 64 KiB kernel buffer makes a blocked backend
// deterministic), UNIX sockets with a peer, files, and `head` reading a FIFO.

import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, Hub, type Frontend, type HubChardev } from "../host-ts/mod.ts";
import { FeHandler } from "./_fe_handler.ts";

let reg: ChardevRegistry;
let dir: string;
/** Sockets, fds and processes a test opened, closed after it whatever happened. */
let cleanups: (() => void)[];

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: false });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-writev-test-"));
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) cleanup();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---- the stream every test writes: text, so ringbufs (utf8 reads) and diffs stay readable ----

/** Byte `offset` of the test stream: letters, a newline every 64. */
function streamByte(offset: number): number {
  return offset % 64 === 63 ? 0x0a : 0x61 + ((offset * 7 + (offset >>> 6)) % 26);
}

/** Chunks of the given sizes cut from the stream, starting at stream offset `from`. */
function chunksOf(sizes: readonly number[], from = 0): Uint8Array[] {
  let at = from;
  return sizes.map((size) => {
    const chunk = new Uint8Array(size);
    for (let i = 0; i < size; i++) chunk[i] = streamByte(at + i);
    at += size;
    return chunk;
  });
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

const text = (data: Uint8Array): string => new TextDecoder().decode(data);

/** The chunks as successive `write`s, stopping at the first short one: what `writev` must equal. */
function writeEach(fe: Frontend, chunks: readonly Uint8Array[]): { result: number; error: string | null } {
  let total = 0;
  for (const chunk of chunks) {
    if (chunk.length === 0) continue;
    const taken = fe.write(chunk);
    if (taken < 0) return total > 0 ? { result: total, error: null } : { result: -1, error: fe.lastError };
    total += taken;
    if (taken < chunk.length) break;
  }
  return { result: total, error: null };
}

/** Resolves when the frontend's watch fires (at once when nothing is blocked). */
function watch(fe: Frontend): Promise<void> {
  return new Promise((resolve) => {
    if (fe.addWatch(resolve) === 0) resolve();
  });
}

/**
 * Writes all of `chunks` through `writev` as a device would: what is accepted is cut off the
 * front, and after EAGAIN (or a short batch) the writer waits on the watch before offering the
 * rest again. Returns every result it got.
 */
async function writevAll(fe: Frontend, chunks: readonly Uint8Array[]): Promise<number[]> {
  const results: number[] = [];
  let rest: Uint8Array[] = chunks.filter((chunk) => chunk.length > 0);
  while (rest.length > 0) {
    const taken = fe.writev(rest);
    results.push(taken);
    if (taken === -1) {
      expect(fe.lastError).toBe("EAGAIN");
      await watch(fe);
      continue;
    }
    let left = taken;
    while (rest.length > 0 && left >= rest[0].length) left -= rest.shift()!.length;
    if (left > 0) rest[0] = rest[0].subarray(left);
    if (rest.length > 0) await watch(fe);
  }
  return results;
}

/** Two FIFO pairs' base paths (`P.in`, `P.out`), made with mkfifo in one go. */
function fifos(...names: string[]): string[] {
  const bases = names.map((name) => path.join(dir, name));
  execFileSync("mkfifo", ["-m", "0600", ...bases.flatMap((base) => [`${base}.in`, `${base}.out`])]);
  return bases;
}

/** The reading end of a pipe chardev's output FIFO, non-blocking (the chardev holds it open too). */
function fifoReader(base: string): number {
  const fd = fs.openSync(`${base}.out`, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  cleanups.push(() => fs.closeSync(fd));
  return fd;
}

/** Up to `max` bytes the FIFO holds now (none: empty array). */
function readAvailable(fd: number, max: number): Uint8Array {
  const buffer = new Uint8Array(Math.max(max, 0));
  let got = 0;
  while (got < buffer.length) {
    let count: number;
    try {
      count = fs.readSync(fd, buffer, got, buffer.length - got, null);
    } catch (error) {
      if ((error as { code?: string }).code === "EAGAIN") break;
      throw error;
    }
    if (count <= 0) break;
    got += count;
  }
  return buffer.subarray(0, got);
}

/** Fills a pipe chardev's output FIFO so that its next write gets EAGAIN; returns the bytes put there. */
function fillFifo(base: string): number {
  const fd = fs.openSync(`${base}.out`, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  const filler = new Uint8Array(4096).fill(0x2e);
  let filled = 0;
  try {
    for (;;) filled += fs.writeSync(fd, filler);
  } catch (error) {
    if ((error as { code?: string }).code !== "EAGAIN") throw error;
  } finally {
    fs.closeSync(fd);
  }
  return filled;
}

/** A peer connected to a UNIX socket server chardev, collecting what it receives. */
async function socketPeer(socketPath: string): Promise<{ received: () => Uint8Array; length: () => number; waitFor: (bytes: number) => Promise<void> }> {
  const socket = net.connect({ path: socketPath });
  const chunks: Uint8Array[] = [];
  let length = 0;
  let waiter: { bytes: number; resolve: () => void } | null = null;
  socket.on("data", (chunk: Uint8Array) => {
    chunks.push(new Uint8Array(chunk));
    length += chunk.length;
    if (waiter && length >= waiter.bytes) waiter.resolve();
  });
  socket.on("error", () => {});
  cleanups.push(() => socket.destroy());
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  return {
    received: () => concat(chunks),
    length: () => length,
    waitFor: (bytes) =>
      length >= bytes
        ? Promise.resolve()
        : new Promise((resolve) => {
            waiter = { bytes, resolve };
          }),
  };
}

/** Resolves once the hub reports backend `id` open. */
function opened(hub: HubChardev, id: string): Promise<void> {
  return new Promise((resolve) => {
    if (hub.stats().some((row) => row.id === id && row.open)) return resolve();
    const stop = hub.onEvent((event) => {
      if (event.type === "open" && event.backend === id) {
        stop();
        resolve();
      }
    });
  });
}

describe("Frontend.writev on a ring hub", () => {
  it("hands a ringbuf and a UNIX socket client exactly the concatenation of the chunks", async () => {
    const socketPath = path.join(dir, "client.sock");
    await reg.add("ringbuf,id=log,size=4096");
    await reg.add(`socket,id=sock,path=${socketPath},server=on,wait=off`);
    const hub = (await reg.add("hub,id=hub0,ring=64K,chardevs.0=log,chardevs.1=sock")) as HubChardev;
    const fe = reg.attach("hub0", new FeHandler());
    const peer = await socketPeer(socketPath);
    await opened(hub, "sock");

    const chunks = chunksOf([5, 0, 64, 1, 0, 700, 3, 1200]);
    const total = concat(chunks);
    expect(fe.writev(chunks)).toBe(total.length);
    expect(fe.lastError).toBe(null);
    expect(fe.writev([])).toBe(0);
    expect(fe.writev([new Uint8Array(0), new Uint8Array(0)])).toBe(0);

    await peer.waitFor(total.length);
    expect(text(peer.received())).toBe(text(total));
    expect(reg.ringbufRead("log", 4096)).toBe(text(total));
  });

  it("takes the exact prefix that fits a nearly full ring, and a watch-driven retry delivers every byte once", async () => {
    const [pipe] = fifos("slow");
    await reg.add(`pipe,id=slow,path=${pipe}`);
    await reg.add("hub,id=hub0,ring=4096,chardevs.0=slow");
    const fe = reg.attach("hub0", new FeHandler());
    const filler = fillFifo(pipe); // the pipe is full: the ring keeps every byte until it drains

    const first = chunksOf([4096 - 10]);
    expect(fe.write(first[0])).toBe(4096 - 10);
    // 10 bytes of room: the first two chunks whole, then 2 bytes of the third.
    const batch = chunksOf([5, 3, 8, 4], 4096 - 10);
    expect(fe.writev(batch)).toBe(10);
    expect(fe.writev(batch.slice(2).map((chunk, i) => (i === 0 ? chunk.subarray(2) : chunk)))).toBe(-1);
    expect(fe.lastError).toBe("EAGAIN");

    // More than the ring holds, in chunks of every size, delivered as the FIFO drains.
    const later = chunksOf([6, 14, 1000, 0, 3000, 9000, 1, 512, 2048], 4096 + 10);
    const expected = concat([first[0], ...batch, ...later]);
    const reader = spawn("head", ["-c", String(filler + expected.length), `${pipe}.out`], { stdio: ["ignore", "pipe", "inherit"] });
    const out: Uint8Array[] = [];
    reader.stdout!.on("data", (chunk: Uint8Array) => out.push(new Uint8Array(chunk)));
    const readerDone = new Promise<void>((resolve) => reader.once("close", () => resolve()));
    cleanups.push(() => reader.kill());

    await watch(fe);
    const rest = [batch[2].subarray(2), batch[3], ...later];
    const results = await writevAll(fe, rest);
    expect(results.some((result) => result === -1 || result < concat(rest).length)).toBe(true); // it did wait
    await readerDone;
    const got = concat(out);
    expect(got.length).toBe(filler + expected.length);
    expect(text(got.subarray(filler))).toBe(text(expected));
  });

  it("logs exactly the bytes it accepted to the hub's logfile", async () => {
    const [pipe] = fifos("slow");
    const logPath = path.join(dir, "hub.log");
    await reg.add(`pipe,id=slow,path=${pipe}`);
    await reg.add(`hub,id=hub0,ring=4096,chardevs.0=slow,logfile=${logPath}`);
    const fe = reg.attach("hub0", new FeHandler());
    fillFifo(pipe);
    const chunks = chunksOf([96, 1000, 2000, 1500, 700]);
    expect(fe.write(chunks[0])).toBe(96); // a single write logs what it took too
    expect(fe.writev(chunks.slice(1))).toBe(4000);
    expect(fe.write(chunks[3])).toBe(-1);
    expect(text(fs.readFileSync(logPath))).toBe(text(concat(chunks).subarray(0, 4096)));
  });
});

describe("Frontend.writev on QEMU's write-to-all (ring=0)", () => {
  it("stops at the chunk a blocked backend refuses, exactly as the same writes one by one do", async () => {
    const [pipeA, pipeB] = fifos("a", "b");
    for (const side of ["a", "b"]) {
      await reg.add(`ringbuf,id=log-${side},size=65536`);
      await reg.add(`pipe,id=pipe-${side},path=${side === "a" ? pipeA : pipeB}`);
      await reg.add(`hub,id=hub-${side},chardevs.0=log-${side},chardevs.1=pipe-${side}`);
    }
    const feA = reg.attach("hub-a", new FeHandler());
    const feB = reg.attach("hub-b", new FeHandler());
    const lead = chunksOf([60000]);
    expect(feA.write(lead[0])).toBe(60000);
    expect(feB.write(lead[0])).toBe(60000);

    // The FIFO has about 5.5 KB of room left: the list runs into it part-way.
    const chunks = chunksOf([3000, 2000, 1000, 500, 4000], 60000);
    const batched = feA.writev(chunks);
    const oneByOne = writeEach(feB, chunks);
    expect(batched).toBe(oneByOne.result);
    expect(batched).toBeGreaterThan(0);
    expect(batched).toBeLessThan(concat(chunks).length);
    // Both stopped because the FIFO refused: each hub has a blocked backend to watch.
    expect(feA.addWatch(() => {})).not.toBe(0);
    expect(feB.addWatch(() => {})).not.toBe(0);

    const readA = readAvailable(fifoReader(pipeA), 1 << 17);
    const readB = readAvailable(fifoReader(pipeB), 1 << 17);
    expect(readA.length).toBe(60000 + batched);
    expect(text(readA)).toBe(text(readB));
    expect(text(readA)).toBe(text(concat([...lead, ...chunks]).subarray(0, 60000 + batched)));
    expect(reg.ringbufRead("log-a", 65536)).toBe(reg.ringbufRead("log-b", 65536));
  });
});

describe("Chardev.writev's default on kinds that are not hubs", () => {
  it("a file takes every chunk in order, as successive writes", async () => {
    const filePath = path.join(dir, "out.txt");
    await reg.add(`file,id=f,path=${filePath}`);
    const fe = reg.attach("f", new FeHandler());
    const chunks = chunksOf([10, 0, 300, 1, 4096]);
    expect(fe.writev(chunks)).toBe(concat(chunks).length);
    expect(fe.writev([])).toBe(0);
    expect(text(fs.readFileSync(filePath))).toBe(text(concat(chunks)));
  });

  it("a UNIX socket with a peer takes every chunk in order", async () => {
    const socketPath = path.join(dir, "s.sock");
    const chardev = await reg.add(`socket,id=s,path=${socketPath},server=on,wait=off`);
    const fe = reg.attach("s", new FeHandler());
    const peer = await socketPeer(socketPath);
    await new Promise<void>((resolve) => {
      const check = () => (chardev.beOpen ? resolve() : setTimeout(check, 2));
      check();
    });
    const chunks = chunksOf([7, 100, 0, 2000]);
    expect(fe.writev(chunks)).toBe(concat(chunks).length);
    await peer.waitFor(concat(chunks).length);
    expect(text(peer.received())).toBe(text(concat(chunks)));
  });

  it("a detached frontend answers -1 with EBADF", async () => {
    await reg.add("ringbuf,id=r,size=64");
    const fe = reg.attach("r", new FeHandler());
    fe.detach();
    expect(fe.writev(chunksOf([3]))).toBe(-1);
    expect(fe.lastError).toBe("EBADF");
  });
});

describe("Hub.writable with arrays of chunks", () => {
  it("pipeTo delivers every byte of single and batched chunks in order through a small ring", async () => {
    const socketPath = path.join(dir, "w.sock");
    const hub = await Hub.create({ registry: reg, ring: 4096 });
    await hub.attach(`socket,id=w,path=${socketPath},server=on,wait=off`);
    const peer = await socketPeer(socketPath);
    await opened(hub.chardev, "w");

    // Single buffers and batches (some with empty members), 600 KB in all: backpressure bites.
    const sizes = [40, 0, 64, 1, 4000, 0, 512, 3000, 64];
    const written: (Uint8Array | Uint8Array[])[] = [];
    let at = 0;
    for (let round = 0; round < 200; round++) {
      const batch = chunksOf(sizes, at);
      at += concat(batch).length;
      if (round % 3 === 0) {
        for (const chunk of batch) written.push(chunk);
      } else written.push(batch);
    }
    const expected = concat(written.flatMap((chunk) => (Array.isArray(chunk) ? chunk : [chunk])));
    let i = 0;
    const source = new ReadableStream<Uint8Array | readonly Uint8Array[]>({
      pull(controller) {
        if (i < written.length) controller.enqueue(written[i++]);
        else controller.close();
      },
    });
    await source.pipeTo(hub.writable);
    await peer.waitFor(expected.length);
    expect(peer.length()).toBe(expected.length);
    expect(text(peer.received())).toBe(text(expected));
    await hub.close();
  });
});

describe("writev against successive writes (property)", () => {
  /** One step of a script: a batch, then the backend drains some bytes, maybe a ring drain. */
  interface Step {
    sizes: number[];
    drain: number;
    flush: boolean;
  }
  const stepArb: fc.Arbitrary<Step> = fc.record({
    sizes: fc.array(fc.oneof(fc.nat(8), fc.nat(700), fc.nat(6000)), { maxLength: 12 }),
    drain: fc.oneof(fc.constant(0), fc.nat(2000), fc.nat(70000)),
    flush: fc.boolean(),
  });

  it("random chunk lists through writev give the results and bytes of the same chunks through write, under random backend slowness", async () => {
    // The FIFOs, their pipe chardevs and the test's reading ends are made once (opening and
    // closing FIFOs many times a second is not what is tested here); every run gets fresh hubs
    // and ringbufs on them, and leaves both FIFOs empty.
    const [pipeA, pipeB] = fifos("pa", "pb");
    await reg.add(`pipe,id=pipe-a,path=${pipeA}`);
    await reg.add(`pipe,id=pipe-b,path=${pipeB}`);
    const readers = [fifoReader(pipeA), fifoReader(pipeB)];
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(0, 4096, 16384), fc.array(stepArb, { minLength: 1, maxLength: 20 }), async (ring, steps) => {
        run++;
        const sides = [];
        for (const [index, side] of ["a", "b"].entries()) {
          await reg.add(`ringbuf,id=log-${side}${run},size=8192`);
          const hub = (await reg.add(`hub,id=hub-${side}${run},ring=${ring},chardevs.0=log-${side}${run},chardevs.1=pipe-${side}`)) as HubChardev;
          sides.push({ hub, fe: reg.attach(hub.id, new FeHandler()), fd: readers[index], read: [] as Uint8Array[] });
        }
        const [a, b] = sides;
        try {
          const accepted: Uint8Array[] = [];
          let offered = 0;
          // What the last batch left: offered again first, as a device does (QEMU's hub books a
          // backend that took more than the others as having those bytes already).
          let rest: Uint8Array[] = [];
          // All synchronous: the FIFOs' watches (and the rings' microtask drains) cannot run in
          // between, so both sides see the very same backend at every step.
          for (const step of steps) {
            const fresh = chunksOf(step.sizes, offered);
            offered += concat(fresh).length;
            const chunks = [...rest, ...fresh];
            const batched = a.fe.writev(chunks);
            const oneByOne = writeEach(b.fe, chunks);
            expect(batched).toBe(oneByOne.result);
            if (batched === -1) expect(a.fe.lastError).toBe(oneByOne.error);
            if (batched > 0) accepted.push(concat(chunks).subarray(0, batched));
            const left = concat(chunks).subarray(Math.max(batched, 0));
            rest = left.length > 0 ? [left] : [];
            if (step.flush) {
              a.hub.flush();
              b.hub.flush();
            }
            for (const side of sides) side.read.push(readAvailable(side.fd, step.drain));
          }
          for (const side of sides) side.read.push(readAvailable(side.fd, 1 << 20));
          const stream = concat(accepted);
          const readA = concat(a.read);
          expect(text(readA)).toBe(text(concat(b.read)));
          if (ring === 0) {
            // QEMU's loop: what it returned, every open backend took; a backend may have taken
            // more of the last rest than the others (the hub counts it as having those bytes).
            expect(readA.length).toBeGreaterThanOrEqual(stream.length);
            expect(text(readA)).toBe(text(concat([stream, ...rest]).subarray(0, readA.length)));
          } else {
            // The ring: the FIFO got a prefix; the rest waits in the ring, as the history shows.
            expect(text(readA)).toBe(text(stream.subarray(0, readA.length)));
            const history = a.hub.history(0, 1 << 20);
            expect(history).toEqual(b.hub.history(0, 1 << 20));
            expect(history.written).toBe(stream.length);
            expect(text(history.data)).toBe(text(stream.subarray(stream.length - history.data.length)));
          }
          expect(reg.ringbufRead(`log-a${run}`, 8192)).toBe(reg.ringbufRead(`log-b${run}`, 8192));
        } finally {
          for (const side of sides) {
            side.fe.detach();
            await reg.remove(side.hub.id); // a ring serves what it still owes the FIFO first
            await reg.remove(`log-${side === a ? "a" : "b"}${run}`);
            readAvailable(side.fd, 1 << 20); // empty for the next run
          }
        }
      }),
      { numRuns: 40 },
    );
  });
});
