// Result rows, medians and the stdout table.

export interface Row {
  /** "memory", "socket", "stall", "latency". */
  case: string;
  runtime: string;
  /** Bytes per write. */
  chunk: number;
  /** Sinks (or clients). */
  n: number;
  variant: string;
  ours: boolean;
  /** Median over rounds of stream MB/s (MiB of the producer's stream per second; every sink got all of it). */
  mbps: number | null;
  /** MB/s of each round, in round order. */
  mbpsRounds: number[];
  /** Median over rounds of (hub MB/s ÷ this MB/s) within the round: > 1 means the hub was faster. */
  hubRatio: number | null;
  /** The same ratio, round by round. */
  hubRatioRounds?: number[];
  /** Producer time per write, median, where the producer is synchronous. */
  producerNsPerWrite: number | null;
  bytesPerRun: number;
  /** Highest RSS sampled while this variant ran (process-wide). */
  peakRssMiB: number;
  /** Anything else worth keeping (latency percentiles, RSS growth, notes). */
  extra?: Record<string, number | string | boolean | null>;
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

export const MiB = 1 << 20;

export function formatBytes(bytes: number): string {
  if (bytes >= MiB && bytes % (MiB / 16) === 0) return `${+(bytes / MiB).toFixed(2)} MiB`;
  if (bytes >= 1024) return `${+(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

export function formatNumber(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (Math.abs(value) >= 100 || digits === 0) return Math.round(value).toLocaleString("en-US");
  return value.toFixed(digits);
}

export function formatRatio(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return value >= 10 ? `${Math.round(value)}×` : `${value.toFixed(2)}×`;
}

/** A fixed-width text table: first column left-aligned, the rest right-aligned. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** A Markdown table (for the README). */
export function markdownTable(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i === 0 ? "---" : "---:"));
  return [header, align, ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}
