// chardev-hub's benchmark (issue 6): the ring hub against the fan-outs people use instead.
//
//   npm run bench                  full run: Node, then Deno and Bun, sockets, stall, latency
//   npm run bench -- --quick       the same, shorter (under a minute)
//   npx deno run -A bench/run.ts --runtime-only [--quick]    the in-memory cases on Deno
//   npx bun bench/run.ts --runtime-only [--quick]             ... on Bun
//
// Options: --only=memory,socket,stall,latency,screen,startup  --runtimes=node,deno,bun  --chunks=64,1024
//          --only=nats (Node; not in the default run: nats-server and 5 chardev-hub processes,
//          about 1.5 min on a busy 2-core machine)
//          --seconds=S (nats: how long the device writes per topology and round, default 2)
//          --only=log_fanout (Node; not in the default run: lines/s through the edge log fan-out
//          handler served by Node, Deno and workerd to 1 and 4 local HTTP receivers; --sinks up to 4)
//          --sinks=1,16  --rounds=N  --json=PATH (default bench/results.json)
//          --markdown (tables as Markdown)  --verbose (bytes per run as they are calibrated)
// BENCH_RING=BYTES in the environment changes the ring of the in-memory cases (1 MiB).
// C anchors (issue 17): with `cc` on PATH, bench/c/*.c are compiled with -O2 into build/bench/
// ("C anchors: built with cc"; else "C anchors: skipped (no cc)" and the C columns are left
// out): the in-memory fan-out is one more anchor of every memory case; `socket` also runs the
// command (dist/cli.js) against the C epoll server; `latency` also runs the command against a
// socat relay; `startup` times --help and a hub's first accept against socat.
//
// Node cannot run TypeScript itself: `npm run bench` goes through bench/bench.mjs, which
// bundles this file for it. Deno and Bun run this file as it is.

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { measureMemoryCase, HUB, type MeasureOptions } from "./_measure.ts";
import { C_FANOUT, RING_BYTES, useCFanout, type Skipped } from "./_memory.ts";
import { formatBytes, formatNumber, formatRatio, markdownTable, MiB, textTable, type Row } from "./_report.ts";
import { now, runtimeName, runtimeVersion, scriptArgs } from "./_runtime.ts";
import { buildCAnchors, missingProgram } from "./_c_anchors.ts";
import { evaluateCTargets, evaluateTargets, type TargetResult } from "./_targets.ts";

interface Args {
  quick: boolean;
  runtimeOnly: boolean;
  json: string | null;
  only: Set<string>;
  runtimes: string[];
  chunks: number[];
  sinks: number[];
  rounds: number | null;
  seconds: number;
  markdown: boolean;
  verbose: boolean;
}

const USAGE = `usage: npm run bench [-- OPTIONS]   (Deno: deno run -A bench/run.ts --runtime-only; Bun: bun bench/run.ts --runtime-only)
  --quick                    shorter runs (the other runtimes only up to N = 16)
  --only=CASES               memory,socket,stall,latency,screen,startup (the default), or nats, log_fanout
  --runtimes=LIST            node,deno,bun (the in-memory cases on each)
  --chunks=LIST --sinks=LIST chunk sizes and sink counts of the in-memory cases (64,1024,16384 and 1,4,16,1024)
  --rounds=N --seconds=S     rounds per case; seconds per NATS topology and round
  --json=PATH                where the rows go (bench/results.json)
  --markdown --verbose       tables as Markdown; calibration as it happens
  BENCH_RING=BYTES           the in-memory cases' ring (1 MiB)
With cc on PATH the C anchors (bench/c/) are built and compared in the same run (issue 17's targets).`;

const CASES = ["memory", "socket", "stall", "latency", "screen", "startup", "nats", "log_fanout"];
const FLAGS = ["--quick", "--runtime-only", "--markdown", "--verbose", "--help", "-h"];
// stall-child: the stalled-consumer case runs each variant in a child process of this script.
const VALUED = ["json", "only", "runtimes", "chunks", "sinks", "rounds", "seconds", "stall-child", "bytes", "runs"];

/** A wrong argument ends the run before anything is measured, naming what was wrong. */
function checkArgs(argv: string[]): void {
  const fail = (why: string) => {
    console.error(`bench: ${why}\n${USAGE}`);
    process.exit(2);
  };
  for (const arg of argv) {
    if (FLAGS.includes(arg)) continue;
    const name = /^--([a-z_-]+)=/.exec(arg)?.[1];
    if (!name || !VALUED.includes(name)) fail(`unknown argument '${arg.slice(0, 80)}'`);
  }
  const only = argv.find((arg) => arg.startsWith("--only="))?.slice(7).split(",").filter(Boolean) ?? [];
  const unknown = only.find((name) => !CASES.includes(name));
  if (unknown !== undefined) fail(`unknown case '${unknown.slice(0, 40)}' in --only (cases: ${CASES.join(", ")})`);
  for (const name of ["chunks", "sinks", "rounds", "seconds"]) {
    const given = argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
    if (given !== undefined && !given.split(",").every((part) => /^[0-9]+$/.test(part) && Number(part) > 0)) fail(`--${name} takes positive whole numbers, not '${given.slice(0, 40)}'`);
  }
}

function parseArgs(argv: string[]): Args {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(USAGE);
    process.exit(0);
  }
  checkArgs(argv);
  const value = (name: string) => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  const list = (name: string, fallback: string) => (value(name) ?? fallback).split(",").filter(Boolean);
  return {
    quick: argv.includes("--quick"),
    runtimeOnly: argv.includes("--runtime-only"),
    json: value("json") ?? null,
    only: new Set(list("only", "memory,socket,stall,latency,screen,startup")),
    runtimes: list("runtimes", "node,deno,bun"),
    chunks: list("chunks", "64,1024,16384").map(Number),
    sinks: list("sinks", "1,4,16,1024").map(Number),
    rounds: value("rounds") ? Number(value("rounds")) : null,
    seconds: value("seconds") ? Number(value("seconds")) : 2,
    markdown: argv.includes("--markdown"),
    verbose: argv.includes("--verbose"),
  };
}

const args = parseArgs(scriptArgs());
/** The C anchors, compiled on first use (see bench/_c_anchors.ts). */
const cAnchors = () => buildCAnchors(root, log);
const root = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.CHARDEV_HUB_ROOT ?? process.cwd();
const log = (line: string) => console.error(line);

function memoryOptions(): MeasureOptions {
  return {
    rounds: args.rounds ?? (args.quick ? 3 : 7),
    targetMs: args.quick ? 20 : 60,
    maxBytes: 1 << 30,
    minRingBytes: (args.quick ? 2 : 4) * RING_BYTES,
    nodeAnchorsEverywhere: false,
    verbose: args.verbose,
  };
}

/** The in-memory matrix on this runtime. */
async function runMemory(): Promise<{ rows: Row[]; skipped: Skipped[] }> {
  const rows: Row[] = [];
  const skipped: Skipped[] = [];
  const options = memoryOptions();
  const { anchors, reason } = cAnchors();
  useCFanout(anchors?.fanoutMemory ?? null);
  if (!anchors) skipped.push({ name: C_FANOUT, reason });
  log(`in-memory cases on ${runtimeVersion()} (${options.rounds} rounds, runs of ~${options.targetMs} ms)`);
  for (const chunk of args.chunks) {
    for (const sinks of args.sinks) {
      const result = await measureMemoryCase({ chunk, sinks }, options, log);
      rows.push(...result.rows);
      for (const skip of result.skipped) if (!skipped.some((s) => s.name === skip.name && s.reason === skip.reason)) skipped.push(skip);
    }
  }
  return { rows, skipped };
}

// ---- other runtimes ----

function runOtherRuntime(runtime: string): { rows: Row[]; skipped: Skipped[] } | null {
  const bin = path.join(root, "node_modules", ".bin", runtime);
  const out = path.join(os.tmpdir(), `chardev-hub-bench-${runtime}-${Date.now()}.json`);
  const passOn = scriptArgs().filter((arg) => /^--(quick|chunks=|sinks=|rounds=|verbose)/.test(arg));
  // A quick run keeps the other runtimes to the small and middle N (N = 1024 is most of the time).
  if (args.quick && !passOn.some((arg) => arg.startsWith("--sinks="))) passOn.push(`--sinks=${args.sinks.filter((n) => n <= 16).join(",")}`);
  const script = path.join(root, "bench", "run.ts");
  const command = runtime === "deno" ? [bin, "run", "-A", "--v8-flags=--expose-gc", script] : [bin, script];
  log(`\n$ ${[...command, "--runtime-only", ...passOn].map((part) => path.relative(root, part) || part).join(" ")}`);
  const child = spawnSync(command[0], [...command.slice(1), "--runtime-only", `--json=${out}`, ...passOn], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (child.status !== 0 || !fs.existsSync(out)) {
    log(`${runtime}: failed (${child.error ? String(child.error) : `exit ${child.status}`}); its rows are missing`);
    return null;
  }
  const data = JSON.parse(fs.readFileSync(out, "utf8")) as { rows: Row[]; skipped: Skipped[] };
  fs.rmSync(out, { force: true });
  return data;
}

// ---- output ----

const ANCHOR_ORDER = [
  C_FANOUT,
  "copy ceiling",
  "naive loop",
  "PassThrough.pipe",
  "Web Streams tee()",
  "pino.multistream",
  "TS ring (port)",
  "WASM ring (core)",
  "hub (writable)",
  "hub (writable, arrays)",
  "hub (writev)",
  HUB,
];

function memoryTables(rows: Row[], markdown: boolean): string {
  const out: string[] = [];
  const groups = new Map<string, Row[]>();
  for (const row of rows.filter((r) => r.case === "memory")) {
    const key = `${row.runtime}|${row.chunk}|${row.n}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  for (const [key, group] of groups) {
    const [runtime, chunk, n] = key.split("|");
    group.sort((a, b) => ANCHOR_ORDER.indexOf(a.variant) - ANCHOR_ORDER.indexOf(b.variant));
    const header = ["variant", "MB/s", "hub ÷ this", "producer ns/write", "bytes/run", "peak RSS MiB"];
    const cells = group.map((row) => [
      row.variant + (row.extra?.vsTsRing !== undefined ? ` (${formatRatio(row.extra.vsTsRing as number)} TS ring)` : ""),
      formatNumber(row.mbps),
      row.variant === HUB ? "" : formatRatio(row.hubRatio),
      formatNumber(row.producerNsPerWrite, 1),
      formatBytes(row.bytesPerRun),
      formatNumber(row.peakRssMiB),
    ]);
    out.push(`\n${runtime} · ${formatBytes(Number(chunk))} writes × ${n} sinks (hub ring ${formatBytes(RING_BYTES)})`);
    out.push(markdown ? markdownTable(header, cells) : textTable(header, cells));
  }
  return out.join("\n");
}

/** One line per case: the hub and its ratio to each anchor (what the README shows). */
function summaryTable(rows: Row[], markdown: boolean): string {
  const anchors = [C_FANOUT, "copy ceiling", "naive loop", "PassThrough.pipe", "Web Streams tee()", "pino.multistream", "TS ring (port)"];
  const short: Record<string, string> = {
    [C_FANOUT]: "÷C",
    "copy ceiling": "÷ceiling",
    "naive loop": "÷naive",
    "PassThrough.pipe": "÷pipe",
    "Web Streams tee()": "÷tee",
    "pino.multistream": "÷pino",
    "TS ring (port)": "÷TS ring",
  };
  const header = ["runtime", "chunk", "N", "hub MB/s", ...anchors.map((a) => short[a]), "WASM÷TS", "hub producer ns/write", "peak RSS MiB"];
  const cells: string[][] = [];
  for (const hub of rows.filter((row) => row.case === "memory" && row.variant === HUB)) {
    const same = rows.filter((row) => row.case === "memory" && row.runtime === hub.runtime && row.chunk === hub.chunk && row.n === hub.n);
    const wasm = same.find((row) => row.variant === "WASM ring (core)");
    cells.push([
      hub.runtime,
      formatBytes(hub.chunk),
      String(hub.n),
      formatNumber(hub.mbps),
      ...anchors.map((name) => formatRatio(same.find((row) => row.variant === name)?.hubRatio)),
      formatRatio(wasm?.extra?.vsTsRing as number | undefined),
      formatNumber(hub.producerNsPerWrite, 1),
      formatNumber(Math.max(...same.map((row) => row.peakRssMiB))),
    ]);
  }
  return markdown ? markdownTable(header, cells) : textTable(header, cells);
}

function otherTables(rows: Row[], markdown: boolean): string {
  const out: string[] = [];
  const table = (header: string[], cells: string[][]) => (markdown ? markdownTable(header, cells) : textTable(header, cells));
  const socket = rows.filter((row) => row.case === "socket");
  if (socket.length > 0) {
    out.push(`\nUNIX-socket fan-out to ${socket[0].n} client processes, ${socket[0].chunk}-byte lines`);
    out.push(
      table(
        ["variant", "MB/s", "hub ÷ this", "bytes per client", "RSS growth MiB"],
        socket.map((row) => [row.variant, formatNumber(row.mbps, 1), row.ours ? "" : formatRatio(row.hubRatio), formatBytes(row.bytesPerRun), formatNumber(row.extra?.rssGrowthMiB as number, 1)]),
      ),
    );
  }
  const socketC = rows.filter((row) => row.case === "socket-c");
  for (const write of [...new Set(socketC.map((row) => row.chunk))]) {
    const own = socketC.filter((row) => row.chunk === write);
    out.push(`\nThe command against C: a device streams ${formatBytes(own[0].bytesPerRun)} in ${formatBytes(write)} writes to one server process, fanned out to ${own[0].n} md5-checking client processes (load ${formatNumber(own[0].extra?.loadAverage1m as number, 1)})`);
    out.push(
      table(
        ["server", "MB/s", "hub ÷ this", "CPU ms/MiB", "hub CPU ÷ this", "peak RSS MiB"],
        own.map((row) => [
          row.variant,
          formatNumber(row.mbps, 1),
          row.ours ? "" : formatRatio(row.hubRatio),
          formatNumber(row.extra?.cpuMsPerMiB as number, 1),
          row.ours ? "" : formatRatio(row.extra?.cpuRatio as number),
          formatNumber(row.peakRssMiB, 1),
        ]),
      ),
    );
  }
  const stall = rows.filter((row) => row.case === "stall");
  if (stall.length > 0) {
    out.push(`\nOne stalled consumer of ${stall[0].n} (${formatBytes(stall[0].chunk)} writes; fresh chunks where the fan-out keeps them)`);
    out.push(
      table(
        ["variant", "fast sinks MB/s", "vs no stall", "RSS growth MiB", "stream", "peak RSS MiB"],
        stall.map((row) => [
          row.variant,
          formatNumber(row.mbps),
          row.extra?.vsNoStall == null ? "" : `${formatNumber((row.extra.vsNoStall as number) * 100)}%`,
          formatNumber(row.extra?.rssGrowthMiB as number),
          formatBytes(row.bytesPerRun),
          formatNumber(row.peakRssMiB),
        ]),
      ),
    );
  }
  const screen = rows.filter((row) => row.case === "screen");
  if (screen.length > 0) {
    out.push(`\nThe screen emulator (replay=screen): ${formatBytes(screen[0].bytesPerRun)} of full-screen redraws in ${screen[0].chunk}-byte writes, ring 1 MiB`);
    out.push(
      table(
        ["variant", "MB/s (at the sink)", "slowdown", "producer ns/write", "emulator caught up ms later", "late joiner's repaint ms"],
        screen.map((row) => [
          row.variant,
          formatNumber(row.mbps, 1),
          formatRatio(row.hubRatio),
          formatNumber(row.producerNsPerWrite, 0),
          row.extra?.catchUpMs == null ? "" : formatNumber(row.extra.catchUpMs as number, 0),
          row.extra?.repaintMs == null ? "" : formatNumber(row.extra.repaintMs as number, 1),
        ]),
      ),
    );
  }
  const latency = rows.filter((row) => row.case === "latency");
  if (latency.length > 0) {
    out.push(`\nKeystroke round trip (1 byte, a client process over a UNIX socket), ${latency[0].extra?.samples} samples`);
    out.push(
      table(
        ["path", "p50 µs", "p99 µs", "p99 − direct µs"],
        latency.map((row) => [row.variant, formatNumber(row.extra?.p50Us as number, 1), formatNumber(row.extra?.p99Us as number, 1), row.ours ? formatNumber(row.extra?.p99OverDirectUs as number, 1) : ""]),
      ),
    );
  }
  const relay = rows.filter((row) => row.case === "latency-relay");
  if (relay.length > 0) {
    out.push(`\nKeystroke round trip through a process between the client and an echoing device, ${relay[0].extra?.samples} samples (load ${formatNumber(relay[0].extra?.loadAverage1m as number, 1)})`);
    out.push(
      table(
        ["path", "p50 µs", "p99 µs", "p50 ÷ socat", "p99 ÷ socat"],
        relay.map((row) => [row.variant, formatNumber(row.extra?.p50Us as number, 1), formatNumber(row.extra?.p99Us as number, 1), formatRatio(row.extra?.p50VsSocat as number), formatRatio(row.extra?.p99VsSocat as number)]),
      ),
    );
  }
  const startup = rows.filter((row) => row.case === "startup");
  if (startup.length > 0) {
    out.push(`\nStartup: ms from spawn until it exits (--help) or until its socket accepts a connection, median of ${startup[0].extra?.rounds} (load ${formatNumber(startup[0].extra?.loadAverage1m as number, 1)})`);
    out.push(
      table(
        ["process", "median ms", "fastest ms"],
        startup.map((row) => [row.variant, formatNumber(row.extra?.medianMs as number, 1), formatNumber(row.extra?.minMs as number, 1)]),
      ),
    );
  }
  const fanout = rows.filter((row) => row.case === "log_fanout");
  if (fanout.length > 0) {
    out.push(`\nThe edge log fan-out (logFanout): ${fanout[0].extra?.lines} NDJSON lines of ~${fanout[0].chunk} bytes per POST /ingest to N local HTTP receivers (block), until the answer (all acknowledged); medians of ${fanout[0].mbpsRounds.length} rounds`);
    out.push(
      table(
        ["served by", "N", "lines/s", "MB/s", "fastest lines/s"],
        fanout.map((row) => [row.runtime, String(row.n), formatNumber(row.extra?.linesPerSecond as number, 0), formatNumber(row.mbps, 1), formatNumber(row.extra?.fastestLinesPerSecond as number, 0)]),
      ),
    );
  }
  const nats = rows.filter((row) => row.case === "nats");
  if (nats.length > 0) {
    const extra = nats[0].extra!;
    out.push(
      `\nOne console fanned out to ${nats[0].n} UNIX sockets (${formatBytes(nats[0].chunk)} device writes for ${extra.secondsWriting} s), then a keystroke round trip with them connected; medians of ${nats[0].mbpsRounds.length} rounds, load ${formatNumber(extra.loadAverage1m as number, 1)}`,
    );
    out.push(
      table(
        ["path", "MB/s", "intake MB/s", "hub processes", "hub CPU ms/MiB", "of it console hub", "nats-server CPU ms/MiB", "keystroke p50 µs", "p99 µs"],
        nats.map((row) => [
          row.variant,
          formatNumber(row.mbps, 1),
          formatNumber(row.extra?.intakeMbps as number, 1),
          String(row.extra?.hubProcesses),
          formatNumber(row.extra?.hubCpuMsPerMiB as number, 1),
          row.extra?.consoleCpuMsPerMiB == null ? "" : formatNumber(row.extra.consoleCpuMsPerMiB as number, 1),
          row.extra?.natsCpuMsPerMiB == null ? "" : formatNumber(row.extra.natsCpuMsPerMiB as number, 1),
          formatNumber(row.extra?.p50Us as number, 1),
          formatNumber(row.extra?.p99Us as number, 1),
        ]),
      ),
    );
  }
  return out.join("\n");
}

function targetLines(targets: TargetResult[]): string {
  return targets.map((t) => `${t.met === null ? "  ?" : t.met ? " ok" : "MISS"}  ${t.target}: ${t.measured}${t.note ? ` (${t.note})` : ""}`).join("\n");
}

// ---- main ----

async function main(): Promise<void> {
  const started = now();
  const stallChild = scriptArgs().find((arg) => arg.startsWith("--stall-child="));
  if (stallChild) {
    // One variant of the stall case in a process of its own (see _stall.ts).
    const { stallChild: run } = await import("./_stall.ts");
    const number = (name: string) => Number(scriptArgs().find((arg) => arg.startsWith(`--${name}=`))!.split("=")[1]);
    const result = await run(stallChild.split("=")[1] as never, number("bytes"), number("runs"));
    console.log(JSON.stringify(result));
    return;
  }
  if (args.runtimeOnly) {
    const { rows, skipped } = await runMemory();
    console.log(memoryTables(rows, false));
    for (const skip of skipped) console.log(`skipped on ${runtimeName}: ${skip.name}: ${skip.reason}`);
    if (args.json) fs.writeFileSync(args.json, JSON.stringify({ rows, skipped }));
    return;
  }
  const rows: Row[] = [];
  const skipped: (Skipped & { runtime: string })[] = [];
  if (args.only.has("memory")) {
    if (args.runtimes.includes(runtimeName)) {
      const own = await runMemory();
      rows.push(...own.rows);
      skipped.push(...own.skipped.map((skip) => ({ ...skip, runtime: runtimeName })));
    }
    for (const runtime of args.runtimes.filter((name) => name !== runtimeName)) {
      const other = runOtherRuntime(runtime);
      if (other) {
        rows.push(...other.rows);
        skipped.push(...other.skipped.map((skip) => ({ ...skip, runtime })));
        if (args.quick && args.sinks.some((n) => n > 16) && !scriptArgs().some((arg) => arg.startsWith("--sinks="))) {
          skipped.push({ name: `N = ${args.sinks.filter((n) => n > 16).join(", ")}`, reason: "--quick runs it on Node only (the full run has it everywhere)", runtime });
        }
      } else skipped.push({ name: "all in-memory cases", reason: `${runtime} did not run`, runtime });
    }
  }
  if (args.only.has("socket")) {
    const { runSocketCase } = await import("./_socket.ts");
    rows.push(...(await runSocketCase({ quick: args.quick, root, log })));
    const { anchors, reason } = cAnchors();
    if (runtimeName !== "node") skipped.push({ name: "socket fan-out against the C epoll server", reason: "Node only (it runs node dist/cli.js)", runtime: runtimeName });
    else if (anchors) {
      const { runCommandSocketCase } = await import("./_command_socket.ts");
      rows.push(...(await runCommandSocketCase({ quick: args.quick, root, cServer: anchors.fanoutServer, log })));
    } else skipped.push({ name: "socket fan-out against the C epoll server", reason, runtime: runtimeName });
    // conserver is one of issue 17's anchors; driving it takes a console configuration and its
    // `console` client, which this benchmark does not set up: say so either way.
    const conserver = missingProgram("conserver", "-V", "conserver-server");
    skipped.push({ name: "socket fan-out through conserver", reason: conserver ?? "installed, but not driven by this benchmark (it needs a console configuration and its console client)", runtime: runtimeName });
  }
  if (args.only.has("stall")) {
    const { runStallCase } = await import("./_stall.ts");
    rows.push(...(await runStallCase({ quick: args.quick, root, log })));
  }
  if (args.only.has("latency")) {
    const { runLatencyCase } = await import("./_latency.ts");
    rows.push(...(await runLatencyCase({ quick: args.quick, root, log })));
    const socat = missingProgram("socat", "-V", "socat");
    if (socat) skipped.push({ name: "keystroke round trip through a socat relay", reason: socat, runtime: runtimeName });
    const { runRelayLatencyCase } = await import("./_latency.ts");
    // The command is `process.execPath dist/cli.js`: Node's.
    if (runtimeName === "node") rows.push(...(await runRelayLatencyCase({ quick: args.quick, root, socat: !socat, log })));
  }
  if (args.only.has("startup") && runtimeName !== "node") skipped.push({ name: "startup", reason: "Node only (it runs node dist/cli.js)", runtime: runtimeName });
  else if (args.only.has("startup")) {
    const socat = missingProgram("socat", "-V", "socat");
    if (socat) skipped.push({ name: "startup of socat", reason: socat, runtime: runtimeName });
    const { runStartupCase } = await import("./_startup.ts");
    rows.push(...(await runStartupCase({ quick: args.quick, root, socat: !socat, log })));
  }
  if (args.only.has("screen")) {
    const { runScreenCase } = await import("./_screen.ts");
    rows.push(...(await runScreenCase({ quick: args.quick, log })));
  }
  if (args.only.has("nats")) {
    const { runNatsCase } = await import("./_nats.ts");
    const nats = await runNatsCase({ root, seconds: args.seconds, rounds: args.rounds ?? (args.quick ? 2 : 3), log });
    rows.push(...nats.rows);
    skipped.push(...nats.skipped.map((skip) => ({ ...skip, runtime: runtimeName })));
  }
  if (args.only.has("log_fanout")) {
    const { runLogFanoutCase } = await import("./_log_fanout.ts");
    const sinks = args.sinks.filter((n) => n <= 4);
    const fanout = await runLogFanoutCase({ root, rounds: args.rounds ?? (args.quick ? 2 : 3), lines: args.quick ? 50_000 : 200_000, sinks: sinks.length ? sinks : [1, 4], log });
    rows.push(...fanout.rows);
    skipped.push(...fanout.skipped.map((skip) => ({ ...skip, runtime: runtimeName })));
  }
  const targets = evaluateTargets(rows);
  const targetsAgainstC = evaluateCTargets(rows);
  const seconds = (now() - started) / 1000;

  if (rows.some((row) => row.case === "memory")) {
    console.log(memoryTables(rows, args.markdown));
    console.log("\nSummary: the hub (ring 1 MiB, through a Frontend) and its speed-up over each anchor (median of per-round ratios)");
    console.log(summaryTable(rows, args.markdown));
  }
  console.log(otherTables(rows, args.markdown));
  for (const skip of skipped) console.log(`skipped on ${skip.runtime}: ${skip.name}: ${skip.reason}`);
  console.log(`\nTargets (issue 6):\n${targetLines(targets)}`);
  console.log(`\nTargets (issue 17, against C and socat, ratios within this run):\n${targetLines(targetsAgainstC)}`);
  console.log(`\n${seconds.toFixed(1)} s on ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${runtimeVersion()}${args.quick ? ", --quick" : ""}`);

  const jsonPath = args.json ?? path.join(root, "bench", "results.json");
  const document = {
    generated: new Date().toISOString(),
    command: `npm run bench${args.quick ? " -- --quick" : ""}`,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? null, memoryMiB: Math.round(os.totalmem() / MiB), platform: `${os.platform()} ${os.release()}` },
    runtime: runtimeVersion(),
    seconds,
    notes: [
      "mbps: MiB/s of the producer's stream, every sink having received (and copied) all of it; hubRatio: median over rounds of hub MB/s ÷ this MB/s within the round",
      "bytesPerRun differs per variant: each is sized to the same wall time per run, so slow anchors (N = 1024 above all) move fewer bytes",
    ],
    rows,
    skipped,
    targets,
    targetsAgainstC,
    loadAverage: os.loadavg(),
  };
  fs.writeFileSync(jsonPath, JSON.stringify(document, null, 1) + "\n");
  log(`wrote ${path.relative(root, jsonPath)}`);
}

await main();
