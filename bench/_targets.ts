// Issue 6's targets, checked against one run's rows (Node's, as the issue measured on Node).

import { HUB } from "./_measure.ts";
import { RING_BYTES } from "./_memory.ts";
import { formatNumber, formatRatio, MiB, type Row } from "./_report.ts";

export interface TargetResult {
  target: string;
  /** null: not measured in this run. */
  met: boolean | null;
  measured: string;
  note?: string;
}

function memoryRow(rows: Row[], runtime: string, chunk: number, n: number, variant: string): Row | undefined {
  return rows.find((row) => row.case === "memory" && row.runtime === runtime && row.chunk === chunk && row.n === n && row.variant === variant);
}

function ratioTarget(rows: Row[], chunk: number, n: number, variant: string, least: number, label: string): TargetResult {
  const row = memoryRow(rows, "node", chunk, n, variant);
  const target = `${label}: hub ≥ ${least >= 1 ? `${least}×` : `${least * 100}% of`} ${variant}`;
  if (!row || row.hubRatio === null) return { target, met: null, measured: "not measured" };
  return { target, met: row.hubRatio >= least, measured: formatRatio(row.hubRatio) };
}

export function evaluateTargets(rows: Row[]): TargetResult[] {
  const out: TargetResult[] = [];
  out.push(ratioTarget(rows, 64, 16, "naive loop", 5, "64 B, N = 16"));
  out.push(ratioTarget(rows, 64, 16, "pino.multistream", 20, "64 B, N = 16"));
  out.push(ratioTarget(rows, 64, 16, "PassThrough.pipe", 50, "64 B, N = 16"));
  out.push(ratioTarget(rows, 16384, 4, "copy ceiling", 0.8, "16 KiB, N = 4"));

  // Producer-side cost per write at N = 1024 against N = 1, per chunk size.
  const perChunk: string[] = [];
  let producerMet: boolean | null = null;
  for (const chunk of [64, 1024, 16384]) {
    const one = memoryRow(rows, "node", chunk, 1, HUB)?.producerNsPerWrite;
    const many = memoryRow(rows, "node", chunk, 1024, HUB)?.producerNsPerWrite;
    if (one == null || many == null) continue;
    const ratio = many / one;
    perChunk.push(`${chunk} B: ${formatNumber(many, 1)} vs ${formatNumber(one, 1)} ns (${formatRatio(ratio)})`);
    producerMet = (producerMet ?? true) && ratio <= 2;
  }
  out.push({ target: "N = 1024: producer cost per write within 2× of N = 1", met: producerMet, measured: perChunk.join("; ") || "not measured" });

  // WASM core against the TypeScript port, every in-memory case on every runtime.
  const versus = rows.filter((row) => row.case === "memory" && row.variant === "WASM ring (core)" && typeof row.extra?.vsTsRing === "number");
  if (versus.length > 0) {
    const losses = versus.filter((row) => (row.extra!.vsTsRing as number) < 1);
    const worst = versus.reduce((a, b) => ((a.extra!.vsTsRing as number) <= (b.extra!.vsTsRing as number) ? a : b));
    out.push({
      target: "WASM core ≥ the TypeScript port on every case",
      met: losses.length === 0,
      measured: `${versus.length - losses.length}/${versus.length} cases; worst ${formatRatio(worst.extra!.vsTsRing as number)} (${worst.runtime} ${worst.chunk} B × ${worst.n})`,
      note: losses.length > 0 ? `behind on: ${losses.map((row) => `${row.runtime} ${row.chunk} B × ${row.n} ${formatRatio(row.extra!.vsTsRing as number)}`).join(", ")}` : undefined,
    });
  } else out.push({ target: "WASM core ≥ the TypeScript port on every case", met: null, measured: "not measured" });

  const stallHub = rows.find((row) => row.case === "stall" && row.variant.startsWith("hub") && row.variant.includes("stalled"));
  if (stallHub) {
    const keep = stallHub.extra?.vsNoStall as number;
    const growth = stallHub.extra?.rssGrowthMiB as number;
    const limit = RING_BYTES / MiB + 16;
    out.push({ target: "stalled consumer under drop: others keep ≥ 80% throughput", met: keep >= 0.8, measured: `${formatNumber(keep * 100)}%` });
    out.push({ target: `stalled consumer under drop: RSS growth ≤ ring + 16 MiB (${limit} MiB)`, met: growth <= limit, measured: `${formatNumber(growth, 1)} MiB` });
  } else out.push({ target: "stalled consumer under drop", met: null, measured: "not measured" });

  const socketNaive = rows.find((row) => row.case === "socket" && !row.ours);
  if (socketNaive && socketNaive.hubRatio !== null) {
    out.push({ target: "socket fan-out, 64 B lines, N = 16: ≥ 2× naive net", met: socketNaive.hubRatio >= 2, measured: formatRatio(socketNaive.hubRatio) });
  } else out.push({ target: "socket fan-out, 64 B lines, N = 16: ≥ 2× naive net", met: null, measured: "not measured" });

  const latency = rows.filter((row) => row.case === "latency" && row.ours);
  if (latency.length > 0) {
    const worst = latency.reduce((a, b) => ((a.extra!.p99OverDirectUs as number) >= (b.extra!.p99OverDirectUs as number) ? a : b));
    const over = worst.extra!.p99OverDirectUs as number;
    out.push({ target: "keystroke round trip through the hub: p99 within 1 ms of a direct socket", met: over <= 1000, measured: `${over >= 0 ? "+" : "−"}${formatNumber(Math.abs(over), 1)} µs (${worst.variant})` });
  } else out.push({ target: "keystroke round trip: p99 within 1 ms of a direct socket", met: null, measured: "not measured" });
  return out;
}
