// Runs the variants of one in-memory case the same way: calibrate each to about the same wall
// time per run, then several rounds in which every variant runs once (order rotated each
// round), every run checked sink by sink. Ratios are taken within a round, then the median.

import { buildVariants, type CaseSpec, type Skipped, type Variant } from "./_memory.ts";
import { median, MiB, type Row } from "./_report.ts";
import { now, rss, runtimeVersion } from "./_runtime.ts";
import { resetAll, verifyAll, type SinkStore } from "./_stream.ts";

export interface MeasureOptions {
  rounds: number;
  /** Wall time each run is sized for. */
  targetMs: number;
  /** Upper bound on bytes per run. */
  maxBytes: number;
  /** Lower bound on bytes per run of a variant that drains a ring. */
  minRingBytes: number;
  /** Run the Node-only anchors even off Node (when they load). */
  nodeAnchorsEverywhere: boolean;
  verbose?: boolean;
}

/** The variant every ratio compares with. */
export const HUB = "hub (Frontend)";

interface Tally {
  variant: Variant;
  bytes: number;
  mbps: number[];
  producerNs: number[];
  peakRss: number;
}

async function checkedRun(variant: Variant, stores: SinkStore[], bytes: number, spec: CaseSpec, tally?: Tally): Promise<{ ms: number; producerMs?: number; writes: number }> {
  // No forced GC here: V8 ages a function's bytecode at each full GC and flushes what has not
  // run for a few of them, so a GC before every run left each variant cold for its next one.
  resetAll(stores);
  const result = await variant.run(bytes);
  if (tally) tally.peakRss = Math.max(tally.peakRss, rss());
  verifyAll(stores, bytes, `${variant.name} (${spec.chunk} B × ${spec.sinks})`);
  return result;
}

/**
 * Bytes for about `targetMs` per run: scale a small probe by the time it took, and again, at
 * least three times (which also warms the variant up) and until a run takes half the target.
 */
async function calibrate(variant: Variant, stores: SinkStore[], spec: CaseSpec, options: MeasureOptions): Promise<number> {
  const least = Math.max(spec.chunk * 4, variant.ring ? options.minRingBytes : 0);
  const round = (bytes: number) => Math.min(options.maxBytes, Math.max(least, Math.round(bytes / spec.chunk) * spec.chunk));
  let bytes = round(Math.min(64 * 1024, spec.chunk * 256) / spec.sinks);
  for (let attempt = 0; attempt < 12; attempt++) {
    const { ms } = await checkedRun(variant, stores, bytes, spec);
    const next = round(bytes * Math.min(16, Math.max(0.25, options.targetMs / Math.max(ms, 0.01))));
    if (attempt >= 2 && (ms >= options.targetMs / 2 || bytes >= options.maxBytes)) return next;
    bytes = next;
  }
  return bytes;
}

export interface CaseResult {
  rows: Row[];
  skipped: Skipped[];
}

export async function measureMemoryCase(spec: CaseSpec, options: MeasureOptions, log: (line: string) => void): Promise<CaseResult> {
  const started = now();
  const { variants, stores, skipped, registry } = await buildVariants(spec, { node: options.nodeAnchorsEverywhere });
  try {
    const tallies: Tally[] = [];
    for (const variant of variants) {
      const calibrating = now();
      const bytes = await calibrate(variant, stores, spec, options);
      await checkedRun(variant, stores, bytes, spec); // warm at the size it will run
      if (options.verbose) log(`    ${variant.name}: ${bytes} bytes/run, calibrated in ${(now() - calibrating).toFixed(0)} ms`);
      tallies.push({ variant, bytes, mbps: [], producerNs: [], peakRss: 0 });
    }
    for (let r = 0; r < options.rounds; r++) {
      for (let i = 0; i < tallies.length; i++) {
        const tally = tallies[(i + r) % tallies.length];
        const result = await checkedRun(tally.variant, stores, tally.bytes, spec, tally);
        tally.mbps.push(tally.bytes / MiB / (result.ms / 1000));
        if (result.producerMs !== undefined) tally.producerNs.push((result.producerMs * 1e6) / result.writes);
      }
    }
    const hub = tallies.find((tally) => tally.variant.name === HUB)!;
    const runtime = runtimeVersion().split(" ")[0];
    const rows: Row[] = tallies.map((tally) => ({
      case: "memory",
      runtime,
      chunk: spec.chunk,
      n: spec.sinks,
      variant: tally.variant.name,
      ours: tally.variant.ours,
      mbps: median(tally.mbps),
      mbpsRounds: tally.mbps,
      hubRatio: median(tally.mbps.map((mbps, round) => hub.mbps[round] / mbps)),
      hubRatioRounds: tally.mbps.map((mbps, round) => hub.mbps[round] / mbps),
      producerNsPerWrite: tally.producerNs.length > 0 ? median(tally.producerNs) : null,
      bytesPerRun: tally.bytes,
      peakRssMiB: tally.peakRss / MiB,
    }));
    // The WASM core against its TypeScript port, round by round.
    const wasm = tallies.find((tally) => tally.variant.name === "WASM ring (core)");
    const port = tallies.find((tally) => tally.variant.name === "TS ring (port)");
    if (wasm && port) {
      const row = rows.find((candidate) => candidate.variant === wasm.variant.name)!;
      row.extra = { vsTsRing: median(wasm.mbps.map((mbps, round) => mbps / port.mbps[round])) };
    }
    log(`  ${runtime} ${spec.chunk} B × ${spec.sinks}: ${((now() - started) / 1000).toFixed(1)} s`);
    return { rows, skipped };
  } finally {
    for (const variant of variants) await variant.close?.();
    await registry.close();
  }
}
