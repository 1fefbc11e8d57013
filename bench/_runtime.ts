// What differs between Node, Deno and Bun for the benchmark: its name, arguments, memory
// readings and a garbage collection on request. Everything else the benchmark uses (timers,
// node:fs, node:child_process, Web streams) exists in all three.

declare const Deno: { args: string[]; version: { deno: string; v8: string }; memoryUsage(): { rss: number }; execPath(): string } | undefined;
declare const Bun: { version: string; gc(force: boolean): void } | undefined;

interface NodeLikeProcess {
  argv: string[];
  execPath: string;
  versions: Record<string, string | undefined>;
  memoryUsage: { (): { rss: number }; rss?: () => number };
}

const proc = (globalThis as unknown as { process?: NodeLikeProcess }).process;

export type RuntimeName = "node" | "deno" | "bun";

export const runtimeName: RuntimeName = typeof Deno !== "undefined" ? "deno" : typeof Bun !== "undefined" ? "bun" : "node";

/** "node 20.20.2", "deno 2.9.6", "bun 1.4.5". */
export function runtimeVersion(): string {
  if (runtimeName === "deno") return `deno ${Deno!.version.deno}`;
  if (runtimeName === "bun") return `bun ${Bun!.version}`;
  return `node ${proc!.versions.node}`;
}

/** Command-line arguments after the script. */
export function scriptArgs(): string[] {
  if (runtimeName === "deno") return Deno!.args;
  return proc!.argv.slice(2);
}

/** Resident set size in bytes. */
export function rss(): number {
  if (runtimeName === "deno") return Deno!.memoryUsage().rss;
  return proc!.memoryUsage.rss ? proc!.memoryUsage.rss() : proc!.memoryUsage().rss;
}

/** A full collection when the runtime lets us ask (node --expose-gc, deno --v8-flags=--expose-gc, bun). */
export function collectGarbage(): boolean {
  if (runtimeName === "bun") {
    Bun!.gc(true);
    return true;
  }
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  gc();
  return true;
}

export const now = (): number => performance.now();

/** Lets queued microtasks and one macrotask turn run. */
export const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
