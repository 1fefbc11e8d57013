// Issue 6's and issue 17's targets, checked against one run's rows (Node's, as the issues measured on Node).

import { HUB } from "./_measure.ts";
import { RING_BYTES } from "./_memory.ts";
import { formatBytes, formatNumber, formatRatio, MiB, type Row } from "./_report.ts";

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

// ---- issue 17: against C, ratios within one run ----

function socketC(rows: Row[], write: number, ours: boolean): Row | undefined {
  return rows.find((row) => row.case === "socket-c" && row.chunk === write && row.ours === ours);
}

function notMeasured(target: string, why = "not measured"): TargetResult {
  return { target, met: null, measured: why };
}

/** Issue 17's targets from this run's rows (Node's; the ratios are taken within the run). */
export function evaluateCTargets(rows: Row[]): TargetResult[] {
  const out: TargetResult[] = [];
  for (const [write, least, label] of [[65536, 0.9, "64 KiB writes"], [64, 1.0, "64-byte lines"]] as const) {
    const target = `socket fan-out, 16 md5 clients, ${label}: ≥ ${least.toFixed(1)}× the C server's throughput`;
    const c = socketC(rows, write, false);
    const hub = socketC(rows, write, true);
    if (!c || !hub || c.hubRatio === null) out.push(notMeasured(target));
    else out.push({ target, met: c.hubRatio >= least, measured: `${c.hubRatio.toFixed(3)}× (${formatNumber(hub.mbps, 1)} vs ${formatNumber(c.mbps, 1)} MB/s)` });
  }
  const cpu = [65536, 64].map((write) => socketC(rows, write, false)).filter((row): row is Row => typeof row?.extra?.cpuRatio === "number");
  if (cpu.length === 0) out.push(notMeasured("socket fan-out: CPU per MiB ≤ 2× the C server's"));
  else {
    out.push({
      target: "socket fan-out: CPU per MiB ≤ 2× the C server's",
      met: cpu.every((row) => (row.extra!.cpuRatio as number) <= 2),
      measured: cpu.map((row) => `${formatBytes(row.chunk)} writes ${formatRatio(row.extra!.cpuRatio as number)}`).join(", "),
    });
  }
  const hubs = rows.filter((row) => row.case === "socket-c" && row.ours);
  if (hubs.length === 0) out.push(notMeasured("socket fan-out: the command's peak RSS ≤ 48 MiB"));
  else {
    const peak = Math.max(...hubs.map((row) => row.peakRssMiB));
    const c = Math.max(...rows.filter((row) => row.case === "socket-c" && !row.ours).map((row) => row.peakRssMiB));
    out.push({ target: "socket fan-out: the command's peak RSS ≤ 48 MiB", met: peak <= 48, measured: `${formatNumber(peak, 1)} MiB (C server ${formatNumber(c, 1)} MiB)` });
  }

  for (const [chunk, n, least] of [[64, 16, 0.5], [16384, 4, 0.6]] as const) {
    const target = `in memory, ${formatBytes(chunk)} × ${n}: hub ≥ ${least}× the C fan-out`;
    const row = memoryRow(rows, "node", chunk, n, "C fan-out");
    if (!row || row.hubRatio === null) out.push(notMeasured(target));
    else out.push({ target, met: row.hubRatio >= least, measured: formatRatio(row.hubRatio) });
  }
  const naive = rows.filter((row) => row.case === "memory" && row.runtime === "node" && row.variant === "naive loop" && row.n >= 4 && row.hubRatio !== null);
  if (naive.length === 0) out.push(notMeasured("in memory: hub ≥ 1.0× the naive loop at every size for N ≥ 4"));
  else {
    const behind = naive.filter((row) => row.hubRatio! < 1);
    out.push({
      target: "in memory: hub ≥ 1.0× the naive loop at every size for N ≥ 4",
      met: behind.length === 0,
      measured: `${naive.length - behind.length}/${naive.length} cases`,
      note: behind.length > 0 ? `behind on: ${behind.map((row) => `${formatBytes(row.chunk)} × ${row.n} ${formatRatio(row.hubRatio)}`).join(", ")}` : undefined,
    });
  }

  const startup = (variant: string) => rows.find((row) => row.case === "startup" && row.variant === variant)?.extra?.medianMs as number | undefined;
  for (const [variant, limit, label, anchor] of [
    ["chardev-hub --help", 60, "--help", "socat -h"],
    ["chardev-hub: a hub's socket chardev accepts", 80, "a hub listening", "socat UNIX-LISTEN:PATH STDIO accepts"],
  ] as const) {
    const target = `${label} ≤ ${limit} ms on Node`;
    const ms = startup(variant);
    const theirs = startup(anchor);
    if (ms === undefined) out.push(notMeasured(target));
    else out.push({ target, met: ms <= limit, measured: `${formatNumber(ms, 1)} ms${theirs === undefined ? "" : ` (socat ${formatNumber(theirs, 1)} ms, node -e 0 ${formatNumber(startup("node -e 0 (the runtime alone)"), 1)} ms)`}` });
  }

  const relay = rows.find((row) => row.case === "latency-relay" && row.ours);
  const socat = rows.find((row) => row.case === "latency-relay" && !row.ours);
  if (!relay || !socat) out.push(notMeasured("keystroke round trip p99 ≤ 2× the socat relay's"));
  else {
    const ratio = relay.extra!.p99VsSocat as number;
    out.push({ target: "keystroke round trip p99 ≤ 2× the socat relay's", met: ratio <= 2, measured: `${formatRatio(ratio)} (${formatNumber(relay.extra!.p99Us as number, 1)} vs ${formatNumber(socat.extra!.p99Us as number, 1)} µs; p50 ${formatNumber(relay.extra!.p50Us as number, 1)} vs ${formatNumber(socat.extra!.p50Us as number, 1)} µs)` });
  }
  out.push(noRegression(evaluateTargets(rows)));
  return out;
}

/** Issue 17's "no regression": issue 6's N = 1,024 producer cost and stalled-consumer targets, as this run measured them. */
function noRegression(issue6: TargetResult[]): TargetResult {
  const target = "no regression: N = 1,024 per-write cost, the stalled consumer, memory bounds";
  const kept = issue6.filter((t) => t.target.startsWith("N = 1024") || t.target.startsWith("stalled consumer"));
  if (kept.length === 0 || kept.some((t) => t.met === null)) return notMeasured(target, "not measured (needs the memory and stall cases)");
  const missed = kept.filter((t) => !t.met);
  return {
    target,
    met: missed.length === 0,
    measured: kept.map((t) => `${t.target.replace(/^stalled consumer under drop: /, "")}: ${t.measured}`).join("; "),
    note: missed.length > 0 ? `regressed: ${missed.map((t) => t.target).join(", ")}` : undefined,
  };
}
