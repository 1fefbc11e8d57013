// One stalled consumer: 4 sinks, one of which stops taking bytes. Ours: a ring hub (1 MiB) with
// `policy=drop` on that sink, which refuses with EAGAIN and whose watch never fires (a socket
// whose peer stopped reading). The anchor: a Web Streams tee() tree with one branch never read.
// Measured: the three other sinks' throughput, against the same setup with no stall, and RSS
// growth over the run. Each producer fills 16 KiB chunks from the stream as a pty or socket
// reader would, as its fan-out allows: tee() keeps the chunks it has not delivered, so its
// producer hands over a fresh one per write; the hub has copied a write before it returns, so
// its producer reads into one buffer again and again (fresh chunks would only measure how
// late V8 collects garbage).
//
// RSS needs a process of its own per variant: memory a run took is rarely given back, and the
// next variant would start from its high-water mark. So the parent spawns one child per
// variant and round; a child runs the variant a few times and reports the fast sinks' MB/s
// (median) and its RSS growth (peak over all its runs, from a GC'd start).

import { spawnSync } from "node:child_process";
import { ChardevRegistry, ChrEvent, type ChardevDriver, type Frontend } from "../host-ts/mod.ts";
import { Chardev } from "../host-ts/mod.ts";
import { sinkDriver, type SinkChardev } from "./_memory.ts";
import { median, MiB, type Row } from "./_report.ts";
import { collectGarbage, now, rss } from "./_runtime.ts";
import { chunksOf, makeStores, put, resetAll, verifyAll, type SinkStore } from "./_stream.ts";

const SINKS = 4;
const CHUNK = 16384;
const RING = 1 << 20;
const EAGAIN = -11;

export const STALL_VARIANTS = ["hub", "hub-stalled", "tee", "tee-stalled"] as const;
export type StallVariant = (typeof STALL_VARIANTS)[number];

/** Refuses everything; its watch never fires. */
class StalledChardev extends Chardev {
  readonly kind = "bench-stalled";
  refused = 0;
  protected writeOut(): number {
    this.refused++;
    return EAGAIN;
  }
  override addWatch(): () => void {
    return () => {};
  }
}

const stalledDriver: ChardevDriver = {
  type: "bench-stalled",
  fields: {},
  fromOptions: () => ({}),
  open: (id, _data, context) => new StalledChardev(id, context),
};

interface ChildResult {
  mbps: number[];
  rssGrowth: number;
  peakRss: number;
  baseline: number;
}

/** A fresh chunk of the stream, as a read from a socket or pty would hand over. */
function freshChunk(chunks: Uint8Array[], k: number): Uint8Array {
  const chunk = new Uint8Array(CHUNK);
  chunk.set(chunks[k]);
  return chunk;
}

async function hubVariant(stalled: boolean): Promise<{ run(bytes: number, sample: () => void): Promise<number>; stores: SinkStore[] }> {
  const registry = await ChardevRegistry.create({ qemuCompat: false });
  registry.registerDriver(sinkDriver);
  registry.registerDriver(stalledDriver);
  const stores = makeStores(SINKS - 1);
  const ids: string[] = [];
  for (let i = 0; i < SINKS; i++) {
    const spare = i === SINKS - 1;
    const chardev = await registry.add(spare && stalled ? `bench-stalled,id=s${i}` : `bench-sink,id=s${i}`);
    if (!spare) (chardev as SinkChardev).store = stores[i];
    else if (!stalled) (chardev as SinkChardev).store = makeStores(1)[0];
    chardev.emitEvent(ChrEvent.OPENED);
    ids.push(chardev.id);
  }
  await registry.add(`hub,id=hub0,ring=${RING},${ids.map((id, i) => `chardevs.${i}=${id}`).join(",")},policy.${SINKS - 1}=drop`);
  const fe: Frontend = registry.attach("hub0", { canRead: () => 0, read() {}, event() {} });
  const chunks = chunksOf(CHUNK);
  return {
    stores,
    async run(bytes, sample) {
      const started = now();
      let k = 0;
      const chunk = new Uint8Array(CHUNK);
      for (let i = 0; i < bytes / CHUNK; ) {
        chunk.set(chunks[k]); // the next read, into the same buffer
        const taken = fe.write(chunk);
        if (taken === CHUNK) {
          i++;
          k = k + 1 === chunks.length ? 0 : k + 1;
          if ((i & 63) === 0) sample();
          continue;
        }
        if (taken !== -1 || fe.lastError !== "EAGAIN") throw new Error(`hub write: ${taken} ${fe.lastError}`);
        await new Promise<void>((resolve) => {
          if (fe.addWatch(resolve) === 0) resolve();
        });
      }
      while (stores.some((store) => store.pos < bytes)) await null;
      return now() - started;
    },
  };
}

function teeVariant(stalled: boolean): { run(bytes: number, sample: () => void): Promise<number>; stores: SinkStore[] } {
  const stores = makeStores(SINKS - 1);
  const spare = makeStores(1)[0];
  const chunks = chunksOf(CHUNK);
  return {
    stores,
    async run(bytes, sample) {
      const writes = bytes / CHUNK;
      let i = 0;
      let k = 0;
      const source = new ReadableStream<Uint8Array>(
        {
          pull(controller) {
            while ((controller.desiredSize ?? 0) > 0 && i < writes) {
              controller.enqueue(freshChunk(chunks, k));
              k = k + 1 === chunks.length ? 0 : k + 1;
              if ((++i & 63) === 0) sample();
            }
            if (i === writes) controller.close();
          },
        },
        { highWaterMark: 16 },
      );
      const [left, right] = source.tee();
      const leaves = [...left.tee(), ...right.tee()];
      const started = now();
      const done = leaves.slice(0, SINKS - 1).map((leaf, s) => leaf.pipeTo(new WritableStream({ write: (chunk) => put(stores[s], chunk) })));
      // The last leaf: read like the others, or never read at all.
      if (!stalled) done.push(leaves[SINKS - 1].pipeTo(new WritableStream({ write: (chunk) => put(spare, chunk) })));
      await Promise.all(done);
      const ms = now() - started;
      if (stalled) await leaves[SINKS - 1].cancel();
      return ms;
    },
  };
}

/** In the child: run `variant` `runs` times; report MB/s and RSS growth. */
export async function stallChild(variant: StallVariant, bytes: number, runs: number): Promise<ChildResult> {
  const stalled = variant.endsWith("stalled");
  const setup = variant.startsWith("hub") ? await hubVariant(stalled) : teeVariant(stalled);
  collectGarbage();
  await new Promise((resolve) => setTimeout(resolve, 20));
  collectGarbage();
  const baseline = rss();
  let peak = baseline;
  const sample = () => {
    const now = rss();
    if (now > peak) peak = now;
  };
  const mbps: number[] = [];
  // One warm-up run first: it counts for RSS, not for MB/s.
  for (let run = -1; run < runs; run++) {
    resetAll(setup.stores);
    const ms = await setup.run(bytes, sample);
    sample();
    verifyAll(setup.stores, bytes, `stall ${variant}`);
    if (run >= 0) mbps.push(bytes / MiB / (ms / 1000));
  }
  return { mbps, rssGrowth: peak - baseline, peakRss: peak, baseline };
}

function spawnChild(variant: StallVariant, bytes: number, runs: number): ChildResult {
  // The running script: the bundle under Node, bench/run.ts under Deno and Bun.
  const child = spawnSync(process.execPath, ["--expose-gc", process.argv[1], `--stall-child=${variant}`, `--bytes=${bytes}`, `--runs=${runs}`], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 1 << 20,
    env: process.env,
  });
  if (child.status !== 0) throw new Error(`stall child ${variant} failed (exit ${child.status})`);
  return JSON.parse(child.stdout.trim().split("\n").pop()!) as ChildResult;
}

export async function runStallCase(options: { quick: boolean; root: string; log: (line: string) => void }): Promise<Row[]> {
  const bytes = (options.quick ? 128 : 256) * MiB;
  const rounds = options.quick ? 2 : 3;
  const runs = options.quick ? 3 : 5;
  options.log(`stalled consumer: ${SINKS} sinks, one stalled, ${bytes / MiB} MiB per run, ${rounds} processes × (1 + ${runs}) runs per variant`);
  const results = new Map<StallVariant, ChildResult[]>(STALL_VARIANTS.map((variant) => [variant, []]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of STALL_VARIANTS) results.get(variant)!.push(spawnChild(variant, bytes, runs));
  }
  const summary = (variant: StallVariant) => {
    const all = results.get(variant)!;
    return {
      mbps: median(all.flatMap((result) => result.mbps)),
      rounds: all.flatMap((result) => result.mbps),
      growth: Math.max(...all.map((result) => result.rssGrowth)) / MiB,
      peak: Math.max(...all.map((result) => result.peakRss)) / MiB,
    };
  };
  const names: Record<StallVariant, string> = {
    hub: "hub, ring 1 MiB, no stall",
    "hub-stalled": "hub, ring 1 MiB, 1 stalled (policy=drop)",
    tee: "Web Streams tee(), no stall",
    "tee-stalled": "Web Streams tee(), 1 branch unread",
  };
  const hub = summary("hub");
  const tee = summary("tee");
  return STALL_VARIANTS.map((variant) => {
    const own = summary(variant);
    const reference = variant.startsWith("hub") ? hub : tee;
    return {
      case: "stall",
      runtime: "node",
      chunk: CHUNK,
      n: SINKS,
      variant: names[variant],
      ours: variant.startsWith("hub"),
      mbps: own.mbps,
      mbpsRounds: own.rounds,
      hubRatio: null,
      producerNsPerWrite: null,
      bytesPerRun: bytes,
      peakRssMiB: own.peak,
      extra: { rssGrowthMiB: own.growth, vsNoStall: variant.endsWith("stalled") ? own.mbps / reference.mbps : null },
    };
  });
}
