// The in-memory fan-out cases: one producer, N sinks that copy every byte, and each way of
// getting the bytes from one to the others. Every variant is driven the same way: `run(bytes)`
// writes `bytes` of the stream in `chunk`-byte writes, resolves once every sink has all of
// them, and reports the wall time (delivered, not just accepted) and, where the producer is
// synchronous, the time spent inside its write calls.

import { Chardev, ChardevRegistry, ChrEvent, Core, Hub, type ChardevDriver, type Frontend } from "../host-ts/mod.ts";
import { TsRing, POLICY_BLOCK } from "./_ts_ring.ts";
import { chunksOf, delivered, makeStores, pattern, PERIOD, put, resetAll, type SinkStore } from "./_stream.ts";
import { now, runtimeName } from "./_runtime.ts";

/** The hub's broadcast ring in every in-memory case (and the ring of both ring anchors). */
export const RING_BYTES = Number((globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.BENCH_RING ?? 1 << 20);

export interface RunStats {
  /** From the first write until every sink had every byte. */
  ms: number;
  /** Time inside the producer's write calls (synchronous producers only). */
  producerMs?: number;
  writes: number;
}

export interface Variant {
  readonly name: string;
  /** Ours, or an anchor to compare with. */
  readonly ours: boolean;
  /** Drains a ring: runs are at least a few ring sizes long, so they show the steady state. */
  readonly ring?: boolean;
  run(bytes: number): Promise<RunStats>;
  close?(): Promise<void> | void;
}

export interface CaseSpec {
  chunk: number;
  sinks: number;
}

/** Skipped anchors and why, for the report. */
export interface Skipped {
  name: string;
  reason: string;
}

// ---- sinks: one class per way of being written, each copying through `put` ----

/** The plain object the naive loop calls. */
class LoopSink {
  constructor(readonly store: SinkStore) {}
  write(data: Uint8Array): void {
    put(this.store, data);
  }
}

/** A chardev that copies what the hub hands it (a view of ring memory, valid only during the call). */
export class SinkChardev extends Chardev {
  readonly kind = "bench-sink";
  store: SinkStore | null = null;
  protected writeOut(data: Uint8Array): number {
    put(this.store!, data);
    return data.length;
  }
}

export const sinkDriver: ChardevDriver = {
  type: "bench-sink",
  fields: {},
  fromOptions: () => ({}),
  open: (id, _data, context) => new SinkChardev(id, context),
};

// ---- the variants ----

function nextIndex(index: number, count: number): number {
  return index + 1 === count ? 0 : index + 1;
}

/** N × TypedArray.set per chunk, inline: the cost of the copies alone. */
function copyCeiling(spec: CaseSpec, stores: SinkStore[]): Variant {
  const chunks = chunksOf(spec.chunk);
  return {
    name: "copy ceiling",
    ours: false,
    async run(bytes) {
      const writes = bytes / spec.chunk;
      const length = spec.chunk;
      const started = now();
      let k = 0;
      for (let i = 0; i < writes; i++) {
        const chunk = chunks[k];
        k = nextIndex(k, chunks.length);
        for (let s = 0; s < stores.length; s++) {
          // Chunks divide the sink's period, so a chunk never wraps here.
          const store = stores[s];
          store.buf.set(chunk, store.at);
          const at = store.at + length;
          store.at = at === store.buf.length ? 0 : at;
          store.pos += length;
        }
      }
      const ms = now() - started;
      return { ms, producerMs: ms, writes };
    },
  };
}

/** `for (const s of sinks) s.write(chunk)`. */
function naiveLoop(spec: CaseSpec, stores: SinkStore[]): Variant {
  const chunks = chunksOf(spec.chunk);
  const sinks = stores.map((store) => new LoopSink(store));
  return {
    name: "naive loop",
    ours: false,
    async run(bytes) {
      const writes = bytes / spec.chunk;
      const started = now();
      let k = 0;
      for (let i = 0; i < writes; i++) {
        const chunk = chunks[k];
        k = nextIndex(k, chunks.length);
        for (const sink of sinks) sink.write(chunk);
      }
      const ms = now() - started;
      return { ms, producerMs: ms, writes };
    },
  };
}

/** Drives a ring with an explicit drain when it is full (the TS port and the bare WASM core). */
function ringDriver(
  name: string,
  ours: boolean,
  spec: CaseSpec,
  write: (chunk: Uint8Array) => number,
  drain: () => void,
  close?: () => void,
): Variant {
  const chunks = chunksOf(spec.chunk);
  return {
    name,
    ours,
    ring: true,
    async run(bytes) {
      const writes = bytes / spec.chunk;
      let drainMs = 0;
      const started = now();
      let k = 0;
      for (let i = 0; i < writes; i++) {
        let chunk = chunks[k];
        k = nextIndex(k, chunks.length);
        for (;;) {
          const taken = write(chunk);
          if (taken === chunk.length) break;
          chunk = chunk.subarray(taken);
          const drainStarted = now();
          drain();
          drainMs += now() - drainStarted;
        }
      }
      const drainStarted = now();
      drain();
      const ended = now();
      drainMs += ended - drainStarted;
      return { ms: ended - started, producerMs: ended - started - drainMs, writes };
    },
    close,
  };
}

/** bench/_ts_ring.ts: the ring's accounting as plain TypeScript. */
function tsRing(spec: CaseSpec, stores: SinkStore[]): Variant {
  const sinks = stores.map((store) => new LoopSink(store));
  const ring = new TsRing(RING_BYTES, (index, data) => {
    sinks[index].write(data);
    return data.length;
  });
  for (let i = 0; i < sinks.length; i++) ring.addOpenReader(POLICY_BLOCK, RING_BYTES);
  return ringDriver(
    "TS ring (port)",
    false,
    spec,
    (chunk) => ring.write(chunk),
    () => ring.drain(),
  );
}

/** The WASM core's ring driven directly (no registry, no chardevs): what the TS port competes with. */
async function wasmRing(spec: CaseSpec, stores: SinkStore[]): Promise<Variant> {
  const sinks = stores.map((store) => new LoopSink(store));
  const core = await Core.load();
  core.onBackendWrite = (_ring, index, data) => {
    sinks[index].write(data);
    return data.length;
  };
  const ring = core.bcastNew(RING_BYTES);
  for (let i = 0; i < sinks.length; i++) core.bcastSetOpen(ring, core.bcastAddBackend(ring, "block", RING_BYTES, 0), true);
  const writer = core.bcastWriter(ring);
  return ringDriver(
    "WASM ring (core)",
    true,
    spec,
    (chunk) => writer.write(chunk),
    () => {
      writer.settle();
      core.bcastDrain(ring);
    },
    () => {
      writer.settle();
      core.bcastFree(ring);
    },
  );
}

/** The compiled C in-memory fan-out (bench/c/fanout_memory.c), when cc built it; see `useCFanout`. */
let cFanoutBinary: string | null = null;

/** Adds the C fan-out to every case built from now on (null: leave it out). */
export function useCFanout(binary: string | null): void {
  cFanoutBinary = binary;
}

/**
 * The C fan-out: one producer, N sinks each copying every chunk into a 48 KiB buffer of its
 * own, as the copy ceiling does, in a process of its own (its own timing of the copy loop,
 * without the process start). The C program checks its sinks itself (byte count, and every
 * byte of the buffer against the stream) and fails otherwise; the shared stores here are then
 * set to what it delivered, so that the harness's per-run check (written for sinks in this
 * process) holds for it too.
 */
async function cFanout(spec: CaseSpec, stores: SinkStore[], binary: string): Promise<Variant> {
  const { spawnSync } = await import("node:child_process");
  return {
    name: C_FANOUT,
    ours: false,
    async run(bytes) {
      const child = spawnSync(binary, [String(spec.chunk), String(spec.sinks), String(bytes)], { encoding: "utf8" });
      if (child.status !== 0) throw new Error(`C fan-out (${spec.chunk} B × ${spec.sinks}): ${child.stderr || child.error || `exit ${child.status}`}`);
      const { ns } = JSON.parse(child.stdout) as { ns: number };
      const span = Math.min(bytes, PERIOD);
      for (const store of stores) {
        put(store, pattern.subarray(0, span));
        store.pos = bytes;
        store.at = bytes % PERIOD;
      }
      return { ms: ns / 1e6, producerMs: ns / 1e6, writes: bytes / spec.chunk };
    },
  };
}

/** The C fan-out's variant name. */
export const C_FANOUT = "C fan-out";

interface HubSetup {
  registry: ChardevRegistry;
  id: string;
}

/** A ring hub over N fresh sink chardevs that share `stores`. */
async function makeHub(registry: ChardevRegistry, id: string, stores: SinkStore[]): Promise<HubSetup> {
  const ids: string[] = [];
  for (let i = 0; i < stores.length; i++) {
    const sink = (await registry.add(`bench-sink,id=${id}-s${i}`)) as SinkChardev;
    sink.store = stores[i];
    sink.emitEvent(ChrEvent.OPENED);
    ids.push(sink.id);
  }
  await registry.add({ id, backend: { type: "hub", data: { chardevs: ids, ring: RING_BYTES } } });
  return { registry, id };
}

/** Waits for the frontend's watch (the hub's ring has room again). */
function writable(fe: Frontend): Promise<void> {
  return new Promise((resolve) => {
    if (fe.addWatch(resolve) === 0) resolve();
  });
}

/** Ours: a registry hub with `ring=1 MiB`, written through a Frontend until EAGAIN, then its watch. */
async function hubFrontend(spec: CaseSpec, stores: SinkStore[], registry: ChardevRegistry): Promise<Variant> {
  const { id } = await makeHub(registry, "hubfe", stores);
  const fe = registry.attach(id, { canRead: () => 0, read() {}, event() {} });
  const chunks = chunksOf(spec.chunk);
  return {
    name: "hub (Frontend)",
    ours: true,
    ring: true,
    async run(bytes) {
      const writes = bytes / spec.chunk;
      let producerMs = 0;
      const started = now();
      let k = 0;
      let i = 0;
      let pending: Uint8Array | null = null;
      while (i < writes) {
        const segment = now();
        let full = false;
        while (i < writes) {
          const chunk: Uint8Array = pending ?? chunks[k];
          const taken = fe.write(chunk);
          if (taken === chunk.length) {
            pending = null;
            i++;
            k = nextIndex(k, chunks.length);
          } else if (taken > 0) {
            pending = chunk.subarray(taken);
          } else if (fe.lastError === "EAGAIN") {
            full = true;
            break;
          } else {
            throw new Error(`hub write failed: ${fe.lastError}`);
          }
        }
        producerMs += now() - segment;
        if (full) await writable(fe);
      }
      await delivered(stores, bytes, "hub (Frontend)");
      return { ms: now() - started, producerMs, writes };
    },
    close: () => fe.detach(),
  };
}

/** Chunks a `hub (writev)` producer hands over per call. */
export const WRITEV_BATCH = 16;

/**
 * Ours, batched: the same hub and chunks as `hub (Frontend)`, handed over `WRITEV_BATCH` at a
 * time through `fe.writev` (one copy pass into the ring per batch); a short batch's rest is
 * offered again, after the watch when nothing was taken. Writes are counted per chunk, so its
 * producer ns/write compares with the per-write row's.
 */
async function hubWritev(spec: CaseSpec, stores: SinkStore[], registry: ChardevRegistry): Promise<Variant> {
  const { id } = await makeHub(registry, "hubwv", stores);
  const fe = registry.attach(id, { canRead: () => 0, read() {}, event() {} });
  const chunks = chunksOf(spec.chunk);
  const batch: Uint8Array[] = [];
  return {
    name: "hub (writev)",
    ours: true,
    ring: true,
    async run(bytes) {
      const writes = bytes / spec.chunk;
      let producerMs = 0;
      const started = now();
      let segment = started;
      let k = 0;
      for (let i = 0; i < writes; ) {
        // The next batch: the same array, refilled (no allocation per call). Its length is set
        // only when it changes (the last batch of a run): setting it costs V8 a runtime call.
        const count = Math.min(WRITEV_BATCH, writes - i);
        if (batch.length !== count) batch.length = count;
        for (let j = 0; j < count; j++) {
          batch[j] = chunks[k];
          k = nextIndex(k, chunks.length);
        }
        let offered: readonly Uint8Array[] = batch;
        for (;;) {
          const taken = fe.writev(offered);
          if (taken > 0) {
            // Cut what was taken off the front; only a short batch leaves a rest.
            let left = taken;
            let first = 0;
            while (first < offered.length && left >= offered[first].length) left -= offered[first++].length;
            if (first === offered.length) break;
            const rest = offered.slice(first);
            rest[0] = rest[0].subarray(left);
            offered = rest;
          } else if (fe.lastError === "EAGAIN") {
            producerMs += now() - segment;
            await writable(fe);
            segment = now();
          } else {
            throw new Error(`hub writev failed: ${fe.lastError}`);
          }
        }
        i += count;
      }
      producerMs += now() - segment;
      await delivered(stores, bytes, "hub (writev)");
      return { ms: now() - started, producerMs, writes };
    },
    close: () => fe.detach(),
  };
}

/** Ours through the idiomatic API: `hub.writable`, awaiting `ready` as pipeTo would. */
async function hubWritable(spec: CaseSpec, stores: SinkStore[], registry: ChardevRegistry): Promise<Variant> {
  const { id } = await makeHub(registry, "hubws", stores);
  const hub = Hub.open(registry, id);
  const chunks = chunksOf(spec.chunk);
  return {
    name: "hub (writable)",
    ours: true,
    async run(bytes) {
      const writes = bytes / spec.chunk;
      const writer = hub.writable.getWriter();
      const started = now();
      let k = 0;
      let last: Promise<void> = Promise.resolve();
      for (let i = 0; i < writes; i++) {
        if ((writer.desiredSize ?? 0) <= 0) await writer.ready;
        last = writer.write(chunks[k]);
        k = nextIndex(k, chunks.length);
      }
      await last;
      await delivered(stores, bytes, "hub (writable)");
      const ms = now() - started;
      writer.releaseLock();
      return { ms, writes };
    },
  };
}

/**
 * Ours through `hub.writable` with array chunks: `WRITEV_BATCH` chunks per stream write (one
 * batched `fe.writev` each), so the stream's per-write cost is paid once per batch. The arrays
 * are made before the run: the queue keeps a batch it could not write at once by reference.
 */
async function hubWritableBatched(spec: CaseSpec, stores: SinkStore[], registry: ChardevRegistry): Promise<Variant> {
  const { id } = await makeHub(registry, "hubwsb", stores);
  const hub = Hub.open(registry, id);
  const chunks = chunksOf(spec.chunk);
  // WRITEV_BATCH rounds of the period, so the batches tile it whatever the chunk count.
  const batches: Uint8Array[][] = [];
  for (let at = 0; at < chunks.length * WRITEV_BATCH; at += WRITEV_BATCH) {
    batches.push(Array.from({ length: WRITEV_BATCH }, (_, j) => chunks[(at + j) % chunks.length]));
  }
  return {
    name: "hub (writable, arrays)",
    ours: true,
    async run(bytes) {
      const writes = bytes / spec.chunk;
      const writer = hub.writable.getWriter();
      const started = now();
      let b = 0;
      let last: Promise<void> = Promise.resolve();
      for (let i = 0; i < writes; i += WRITEV_BATCH) {
        if ((writer.desiredSize ?? 0) <= 0) await writer.ready;
        const batch = batches[b];
        b = nextIndex(b, batches.length);
        // The last batch of a run may be short.
        last = writer.write(writes - i >= WRITEV_BATCH ? batch : batch.slice(0, writes - i));
      }
      await last;
      await delivered(stores, bytes, "hub (writable, arrays)");
      const ms = now() - started;
      writer.releaseLock();
      return { ms, writes };
    },
  };
}

/** Web Streams: one ReadableStream tee()d into a tree with N leaves, each piped to a sink. */
function teeTree(spec: CaseSpec, stores: SinkStore[]): Variant {
  const chunks = chunksOf(spec.chunk);
  return {
    name: "Web Streams tee()",
    ours: false,
    async run(bytes) {
      const writes = bytes / spec.chunk;
      let go!: () => void;
      const gate = new Promise<void>((resolve) => (go = resolve));
      let i = 0;
      let k = 0;
      const source = new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            await gate;
            while ((controller.desiredSize ?? 0) > 0 && i < writes) {
              controller.enqueue(chunks[k]);
              k = nextIndex(k, chunks.length);
              i++;
            }
            if (i === writes) controller.close();
          },
        },
        { highWaterMark: 16 },
      );
      let branches: ReadableStream<Uint8Array>[] = [source];
      while (branches.length < stores.length) branches = branches.flatMap((branch) => branch.tee());
      const done = branches.map((branch, s) => branch.pipeTo(new WritableStream<Uint8Array>({ write: (chunk) => put(stores[s], chunk) })));
      const started = now();
      go();
      await Promise.all(done);
      return { ms: now() - started, writes };
    },
  };
}

type NodeStream = typeof import("node:stream");

function storeWritableClass(stream: NodeStream) {
  return class StoreWritable extends stream.Writable {
    constructor(readonly store: SinkStore) {
      super();
    }
    override _write(chunk: Uint8Array, _encoding: string, callback: (error?: Error | null) => void): void {
      put(this.store, chunk);
      callback();
    }
  };
}

/** Node streams: `source.pipe(sink)` for each of N Writable sinks, honouring backpressure. */
function passThroughPipe(spec: CaseSpec, stores: SinkStore[], stream: NodeStream, asBuffer: (bytes: Uint8Array) => Uint8Array): Variant {
  const chunks = chunksOf(spec.chunk, asBuffer);
  const StoreWritable = storeWritableClass(stream);
  return {
    name: "PassThrough.pipe",
    ours: false,
    async run(bytes) {
      const writes = bytes / spec.chunk;
      const source = new stream.PassThrough();
      source.setMaxListeners(0); // one pipe per sink
      const sinks = stores.map((store) => new StoreWritable(store));
      const finished = sinks.map((sink) => new Promise<void>((resolve, reject) => sink.on("finish", resolve).on("error", reject)));
      for (const sink of sinks) source.pipe(sink);
      const started = now();
      let k = 0;
      for (let i = 0; i < writes; i++) {
        const more = source.write(chunks[k]);
        k = nextIndex(k, chunks.length);
        if (!more) await new Promise((resolve) => source.once("drain", resolve));
      }
      source.end();
      await Promise.all(finished);
      return { ms: now() - started, writes };
    },
  };
}

interface PinoMultistream {
  write(data: Uint8Array): void;
  lastLevel?: number;
}

/** pino.multistream over N Writable sinks (pino writes synchronously and ignores backpressure). */
function pinoMultistream(
  spec: CaseSpec,
  stores: SinkStore[],
  stream: NodeStream,
  multistream: (streams: { stream: unknown; level: string }[]) => PinoMultistream,
  asBuffer: (bytes: Uint8Array) => Uint8Array,
): Variant {
  const chunks = chunksOf(spec.chunk, asBuffer);
  const StoreWritable = storeWritableClass(stream);
  return {
    name: "pino.multistream",
    ours: false,
    async run(bytes) {
      const writes = bytes / spec.chunk;
      const multi = multistream(stores.map((store) => ({ stream: new StoreWritable(store), level: "info" })));
      multi.lastLevel = 30; // what a pino logger sets before each write: info
      const started = now();
      let k = 0;
      for (let i = 0; i < writes; i++) {
        multi.write(chunks[k]);
        k = nextIndex(k, chunks.length);
      }
      const producerMs = now() - started;
      await delivered(stores, bytes, "pino.multistream");
      return { ms: now() - started, producerMs, writes };
    },
  };
}

/** Node-only anchors, when the runtime can load them. */
interface NodeAnchors {
  stream?: NodeStream;
  multistream?: (streams: { stream: unknown; level: string }[]) => PinoMultistream;
  asBuffer?: (bytes: Uint8Array) => Uint8Array;
  skipped: Skipped[];
}

let nodeAnchors: Promise<NodeAnchors> | undefined;

function loadNodeAnchors(): Promise<NodeAnchors> {
  return (nodeAnchors ??= (async () => {
    const anchors: NodeAnchors = { skipped: [] };
    try {
      anchors.stream = (await import("node:stream")) as unknown as NodeStream;
      const { Buffer } = await import("node:buffer");
      anchors.asBuffer = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    } catch (error) {
      anchors.skipped.push({ name: "PassThrough.pipe", reason: `node:stream unavailable on ${runtimeName}: ${String(error)}` });
    }
    try {
      const pinoName = "pino";
      const pino = (await import(/* @vite-ignore */ pinoName)) as { default?: { multistream: NodeAnchors["multistream"] }; multistream?: NodeAnchors["multistream"] };
      anchors.multistream = pino.multistream ?? pino.default?.multistream;
      if (!anchors.multistream) throw new Error("no multistream export");
    } catch (error) {
      anchors.skipped.push({ name: "pino.multistream", reason: `pino does not load on ${runtimeName}: ${String(error).split("\n")[0]}` });
    }
    return anchors;
  })());
}

/** The chunk sizes pino.multistream is measured at (the issue's: it is a logger, lines are small). */
export const PINO_CHUNKS = [64, 1024];

/** Builds every variant of one case; each gets its own sinks' wrappers over the shared stores. */
export async function buildVariants(
  spec: CaseSpec,
  options: { node: boolean },
): Promise<{ variants: Variant[]; stores: SinkStore[]; skipped: Skipped[]; registry: ChardevRegistry }> {
  const stores = makeStores(spec.sinks);
  resetAll(stores);
  const registry = await ChardevRegistry.create({ qemuCompat: false });
  registry.registerDriver(sinkDriver);
  const variants: Variant[] = [
    copyCeiling(spec, stores),
    naiveLoop(spec, stores),
    tsRing(spec, stores),
    await wasmRing(spec, stores),
    await hubFrontend(spec, stores, registry),
    await hubWritev(spec, stores, registry),
    await hubWritable(spec, stores, registry),
    await hubWritableBatched(spec, stores, registry),
    teeTree(spec, stores),
  ];
  if (cFanoutBinary) variants.push(await cFanout(spec, stores, cFanoutBinary));
  const skipped: Skipped[] = [];
  const anchors = await loadNodeAnchors();
  if (!options.node && runtimeName !== "node") {
    skipped.push({ name: "PassThrough.pipe", reason: "Node-only anchor, skipped here" }, { name: "pino.multistream", reason: "Node-only anchor, skipped here" });
  } else {
    skipped.push(...anchors.skipped);
    if (anchors.stream && anchors.asBuffer) {
      variants.push(passThroughPipe(spec, stores, anchors.stream, anchors.asBuffer));
      if (anchors.multistream && PINO_CHUNKS.includes(spec.chunk)) {
        variants.push(pinoMultistream(spec, stores, anchors.stream, anchors.multistream, anchors.asBuffer));
      }
    }
  }
  return { variants, stores, skipped, registry };
}
