// The NATS fan-out (issue 15, item 5; Node only, `--only=nats`, not in the default run): one
// console at full speed fanned out through NATS JetStream to 3 viewer hubs × 16 UNIX sockets,
// against the same 48 sockets on one local hub. Everything is a real process: `nats-server -js`
// on a free loopback port (a fresh one, with a fresh store, per round), and chardev-hub
// processes (`node dist/cli.js`), because what a deployment pays is processes talking over
// sockets, and process CPU time is only honest for a process that does nothing else.
//
//   NATS:  bench device <- socket -> hub process A (hub: nats,role=console)
//                                     -> nats-server -> hub processes B, C, D
//                                        (nats,role=viewer -> hub -> 16 sockets each)
//   local: bench device <- socket -> hub process L (hub: 48 sockets)
//
// The device is this process: a UNIX server the console's `socket` chardev connects to. It
// writes the stream (64-byte text lines, 16 KiB writes, as fast as the socket takes them) for
// `--seconds`, then stops at a write boundary; the stream's length is then known and the 48
// readers (3 client processes × 16 sockets, md5 of everything they read) report once each
// socket has all of it. MB/s: stream MiB ÷ (first write → the last socket has the last byte).
// CPU per MiB: user + system CPU time (/proc/PID/stat) of the chardev-hub processes over that
// interval ÷ stream MiB (every MiB reached all 48 sockets); nats-server's is a column apart.
// Then the keystroke round trip: one more socket on the (first) viewer hub, or on the local
// hub, where `_echo_client.mjs` types a byte and waits for its echo, the device echoing, the 48
// readers still connected and reading: client -> viewer hub -> NATS (console.NAME.in) ->
// console hub -> device -> console hub -> JetStream (console.NAME.out) -> viewer hub -> client.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { startServer, stopAll } from "../tests/_nats.ts";
import { Client } from "./_clients.ts";
import { median, MiB, percentile, type Row } from "./_report.ts";
import { now, runtimeName } from "./_runtime.ts";
import { chunksOf, pattern, PERIOD } from "./_stream.ts";

const VIEWER_HUBS = 3;
const SOCKETS_PER_HUB = 16;
const SOCKETS = VIEWER_HUBS * SOCKETS_PER_HUB;
const WRITE = 16384;
const RING = 1 << 20;
const CLOCK_TICKS = 100; // USER_HZ on Linux: /proc/PID/stat counts CPU time in 1/100 s

type Topology = "nats" | "local";

/** The readers: one process per 16 sockets; each reads everything, hashes the stream part. */
const READER = `
import { createHash } from "node:crypto";
import { connect } from "node:net";
const paths = process.argv.slice(1);
const sockets = paths.map(() => ({ bytes: 0, hash: createHash("md5") }));
let expected = null, reported = false, connected = 0;
const maybeReport = () => {
  if (reported || expected === null || sockets.some((s) => s.bytes < expected)) return;
  reported = true;
  process.stdout.write(JSON.stringify({ bytes: Math.min(...sockets.map((s) => s.bytes)), md5: null,
    counts: sockets.map((s) => s.bytes), md5s: sockets.map((s) => s.hash.digest("hex")) }) + "\\n");
};
paths.forEach((path, i) => {
  const socket = connect(path);
  socket.on("connect", () => { if (++connected === paths.length) process.stdout.write("connected\\n"); });
  socket.on("data", (chunk) => {
    // After the report only the keystroke echoes arrive: read and drop them.
    if (reported) return;
    sockets[i].bytes += chunk.length;
    sockets[i].hash.update(chunk);
    maybeReport();
  });
  socket.on("error", (error) => { process.stderr.write("nats bench reader: " + error.message + "\\n"); process.exit(1); });
});
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (text) => {
  input += text;
  const match = /expect (\\d+)\\n/.exec(input);
  if (match) { expected = Number(match[1]); maybeReport(); }
});
`;

/** User + system CPU seconds of a process (Linux /proc). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function streamMd5(length: number): string {
  const hash = createHash("md5");
  for (let at = 0; at < length; at += PERIOD) hash.update(pattern.subarray(0, Math.min(PERIOD, length - at)));
  return hash.digest("hex");
}

/** A chardev-hub process; its stderr is kept (the last few KiB) for a failure's message. */
class HubProcess {
  readonly child: ChildProcess;
  log = "";
  constructor(cli: string, args: string[]) {
    this.child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    this.child.stderr!.on("data", (chunk: Buffer) => (this.log = (this.log + chunk.toString()).slice(-4000)));
  }
  get pid(): number {
    return this.child.pid!;
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** The device: streams the pattern to the console's socket, or echoes what it reads. */
class Device {
  readonly server: net.Server;
  socket: net.Socket | null = null;
  echo = false;
  private onConnect: (() => void) | null = null;
  readonly connected: Promise<void>;
  constructor(readonly socketPath: string) {
    this.connected = new Promise((resolve) => (this.onConnect = resolve));
    this.server = net.createServer((socket) => {
      this.socket = socket;
      socket.on("error", () => {});
      socket.on("data", (data) => {
        if (this.echo) socket.write(data);
      });
      this.onConnect?.();
    });
  }
  listen(): Promise<void> {
    fs.rmSync(this.socketPath, { force: true });
    return new Promise((resolve) => this.server.listen(this.socketPath, resolve));
  }
  /** Writes the stream for `seconds` (whole writes); resolves with its length. */
  async stream(seconds: number): Promise<number> {
    const socket = this.socket!;
    const chunks = chunksOf(WRITE);
    const until = now() + seconds * 1000;
    let written = 0;
    let k = 0;
    while (now() < until) {
      const full = !socket.write(chunks[k]);
      written += WRITE;
      k = k + 1 === chunks.length ? 0 : k + 1;
      if (full) await new Promise((resolve) => socket.once("drain", resolve));
    }
    return written;
  }
  close(): Promise<void> {
    this.socket?.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function waitForPath(file: string, hub: HubProcess, limitMs = 20_000): Promise<void> {
  const started = now();
  while (!fs.existsSync(file)) {
    if (hub.child.exitCode !== null) throw new Error(`nats bench: chardev-hub exited: ${hub.log}`);
    if (now() - started > limitMs) throw new Error(`nats bench: ${path.basename(file)} did not appear in ${limitMs} ms: ${hub.log}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function socketArgs(prefix: string, paths: string[]): { chardevs: string[]; hubKeys: string } {
  const chardevs: string[] = [];
  const keys: string[] = [];
  paths.forEach((file, i) => {
    chardevs.push("-chardev", `socket,id=${prefix}${i},path=${file},server=on,wait=off`);
    keys.push(`chardevs.${i}=${prefix}${i}`);
  });
  return { chardevs, hubKeys: keys.join(",") };
}

/** Rejects if the process exits (while we wait for something it should do). */
function exitOf(hub: HubProcess, who: string): Promise<never> {
  return new Promise((_, reject) => hub.child.once("exit", (code) => reject(new Error(`nats bench: ${who} exited (${code}): ${hub.log}`))));
}

/** `promise`, or a rejection with `message` after `ms` (the timer cleared either way, so it keeps no process alive). */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

interface ReaderResult {
  counts: number[];
  md5s: string[];
}

/** A reader process (READER, run with `node -e`) for some sockets. */
class Reader {
  readonly child: ChildProcess;
  readonly connected: Promise<void>;
  readonly result: Promise<ReaderResult>;
  constructor(paths: string[]) {
    this.child = spawn(process.execPath, ["--input-type=module", "-e", READER, ...paths], { stdio: ["pipe", "pipe", "inherit"] });
    let buffered = "";
    let onConnected!: () => void;
    let onResult!: (result: ReaderResult) => void;
    let onFailure!: (error: Error) => void;
    this.connected = new Promise((resolve, reject) => {
      onConnected = resolve;
      this.child.once("close", (code) => reject(new Error(`nats bench: a reader exited (${code}) before connecting`)));
    });
    this.result = new Promise((resolve, reject) => {
      onResult = resolve;
      onFailure = reject;
    });
    this.connected.catch(() => {});
    this.result.catch(() => {});
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (text: string) => {
      buffered += text;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line === "connected") onConnected();
        else onResult(JSON.parse(line) as ReaderResult);
      }
    });
    this.child.once("close", (code) => onFailure(new Error(`nats bench: a reader exited (${code}) before reporting`)));
  }
  expect(length: number): void {
    this.child.stdin!.write(`expect ${length}\n`);
  }
  kill(): void {
    if (this.child.exitCode === null) this.child.kill();
  }
}

interface TopologyRun {
  mbps: number;
  bytes: number;
  seconds: number;
  hubCpuMsPerMiB: number;
  /** NATS: the console hub's share of hubCpuMsPerMiB (the rest is the viewer hubs'). */
  consoleCpuMsPerMiB: number | null;
  natsCpuMsPerMiB: number | null;
  /** MiB/s the device got rid of its stream while writing (the console hub's intake). */
  intakeMbps: number;
  samples: number[];
}

/** One round of one topology: start everything, stream, check, type, stop everything. */
async function runTopology(kind: Topology, options: { cli: string; root: string; dir: string; seconds: number; keystrokes: number }): Promise<TopologyRun> {
  const dir = fs.mkdtempSync(path.join(options.dir, `${kind}-`));
  const device = new Device(path.join(dir, "device.sock"));
  await device.listen();
  const hubs: HubProcess[] = [];
  const readers: Reader[] = [];
  let typist: Client | null = null;
  let nats: Awaited<ReturnType<typeof startServer>> | null = null;
  try {
    const socketPaths = Array.from({ length: SOCKETS }, (_, i) => path.join(dir, `s${i}.sock`));
    const keyPath = path.join(dir, "key.sock");
    const deviceChardev = ["-chardev", `socket,id=dev,path=${device.socketPath},server=off`];
    if (kind === "local") {
      const { chardevs, hubKeys } = socketArgs("s", [...socketPaths, keyPath]);
      hubs.push(new HubProcess(options.cli, [...chardevs, ...deviceChardev, "-chardev", `hub,id=hub0,${hubKeys},ring=${RING}`, "-frontend", "dev,chardev=hub0"]));
      await Promise.race([device.connected, exitOf(hubs[0], "the local hub")]);
      await waitForPath(keyPath, hubs[0]);
    } else {
      nats = await startServer();
      const url = nats.url;
      // The nats chardev first: once the console connects to the device, its stream exists.
      hubs.push(
        new HubProcess(options.cli, [
          "-chardev", `nats,id=up,server=${url},console=bench`,
          ...deviceChardev,
          "-chardev", `hub,id=hub0,chardevs.0=up,ring=${RING}`,
          "-frontend", "dev,chardev=hub0",
        ]),
      );
      await Promise.race([device.connected, exitOf(hubs[0], "the console hub")]);
      for (let v = 0; v < VIEWER_HUBS; v++) {
        const own = socketPaths.slice(v * SOCKETS_PER_HUB, (v + 1) * SOCKETS_PER_HUB);
        if (v === 0) own.push(keyPath);
        const { chardevs, hubKeys } = socketArgs("s", own);
        hubs.push(
          new HubProcess(options.cli, [
            "-chardev", `nats,id=view,role=viewer,server=${url},console=bench,from=start`,
            ...chardevs,
            "-chardev", `hub,id=hub1,${hubKeys},ring=${RING}`,
            "-frontend", "view,chardev=hub1",
          ]),
        );
      }
      for (let v = 0; v < VIEWER_HUBS; v++) await waitForPath(socketPaths[(v + 1) * SOCKETS_PER_HUB - 1], hubs[v + 1]);
      await waitForPath(keyPath, hubs[1]);
    }
    // The readers: 3 processes × 16 sockets (the same sockets in both topologies' order).
    for (let r = 0; r < VIEWER_HUBS; r++) readers.push(new Reader(socketPaths.slice(r * SOCKETS_PER_HUB, (r + 1) * SOCKETS_PER_HUB)));
    await Promise.all(readers.map((reader) => reader.connected));
    // Connected is not yet accepted: give the hubs a moment to see every backend open (a
    // reader that missed the start would never reach the stream's length and fail the run).
    await new Promise((resolve) => setTimeout(resolve, 500));

    const cpuBefore = hubs.map((hub) => cpuSeconds(hub.pid));
    const natsBefore = nats ? cpuSeconds(nats.child.pid!) : 0;
    const started = now();
    const length = await device.stream(options.seconds);
    const writing = (now() - started) / 1000;
    for (const reader of readers) reader.expect(length);
    const limitMs = Math.max(60_000, options.seconds * 20_000);
    const results = await within(Promise.all(readers.map((reader) => reader.result)), limitMs, `nats bench: ${kind}: the stream did not reach every socket in ${limitMs / 1000} s`);
    const elapsed = (now() - started) / 1000;
    const cpuUsed = hubs.map((hub, i) => cpuSeconds(hub.pid) - cpuBefore[i]);
    const hubCpu = cpuUsed.reduce((sum, used) => sum + used, 0);
    const natsCpu = nats ? cpuSeconds(nats.child.pid!) - natsBefore : null;
    const want = streamMd5(length);
    results.forEach((result, r) =>
      result.counts.forEach((count, i) => {
        if (count !== length || result.md5s[i] !== want) {
          throw new Error(`nats bench: ${kind}: socket ${r * SOCKETS_PER_HUB + i} got ${count} bytes (md5 ${result.md5s[i]}), expected ${length} (md5 ${want})`);
        }
      }),
    );

    // The keystroke round trip, the 48 readers still connected.
    device.echo = true;
    typist = new Client(path.join(options.root, "bench", "_echo_client.mjs"), [keyPath, String(options.keystrokes), String(Math.min(200, options.keystrokes))]);
    const typed = await within(typist.result, 120_000, `nats bench: ${kind}: ${options.keystrokes} keystrokes took over 120 s`);
    const mib = length / MiB;
    return {
      mbps: mib / elapsed,
      bytes: length,
      seconds: elapsed,
      hubCpuMsPerMiB: (hubCpu * 1000) / mib,
      consoleCpuMsPerMiB: kind === "nats" ? (cpuUsed[0] * 1000) / mib : null,
      intakeMbps: mib / writing,
      natsCpuMsPerMiB: natsCpu === null ? null : (natsCpu * 1000) / mib,
      samples: typed.samples as number[],
    };
  } finally {
    typist?.kill();
    for (const reader of readers) reader.kill();
    for (const hub of hubs) await hub.stop();
    await device.close();
    if (nats) await stopAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether `nats-server` runs here (Debian `nats-server`). */
function natsServerMissing(): string | null {
  const probe = spawnSync("nats-server", ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) return "nats-server is not installed (Debian nats-server); the NATS fan-out was not measured";
  return null;
}

export interface NatsCaseOptions {
  root: string;
  /** How long the device writes, per topology per round. */
  seconds: number;
  rounds: number;
  log: (line: string) => void;
}

/** The NATS fan-out against the local hub; `skipped` says why when nothing could be measured. */
export async function runNatsCase(options: NatsCaseOptions): Promise<{ rows: Row[]; skipped: { name: string; reason: string }[] }> {
  // The hub and reader processes are `process.execPath dist/cli.js` and `-e` scripts: Node's.
  const missing = runtimeName !== "node" ? `Node only (it runs node dist/cli.js processes); npm run bench -- --only=nats` : natsServerMissing();
  const cli = path.join(options.root, "dist", "cli.js");
  if (missing) {
    options.log(`skipped: nats fan-out: ${missing}`);
    return { rows: [], skipped: [{ name: "nats fan-out", reason: missing }] };
  }
  if (!fs.existsSync(cli)) {
    const reason = "dist/cli.js is missing (node scripts/build.mjs builds it)";
    options.log(`skipped: nats fan-out: ${reason}`);
    return { rows: [], skipped: [{ name: "nats fan-out", reason }] };
  }
  const keystrokes = 1000;
  options.log(
    `nats fan-out: ${options.rounds} rounds; the device writes for ${options.seconds} s; ${VIEWER_HUBS} viewer hubs × ${SOCKETS_PER_HUB} sockets vs one hub × ${SOCKETS}; then ${keystrokes} keystrokes (load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")})`,
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-bench-nats-"));
  const runs: Record<Topology, TopologyRun[]> = { local: [], nats: [] };
  const loads: number[] = [];
  try {
    for (let round = 0; round < options.rounds; round++) {
      // Interleaved, the local hub first every other round.
      const order: Topology[] = round % 2 === 0 ? ["local", "nats"] : ["nats", "local"];
      for (const kind of order) {
        const run = await runTopology(kind, { cli, root: options.root, dir, seconds: options.seconds, keystrokes });
        runs[kind].push(run);
        loads.push(os.loadavg()[0]);
        options.log(`  round ${round + 1} ${kind}: ${(run.bytes / MiB).toFixed(0)} MiB in ${run.seconds.toFixed(2)} s, ${run.mbps.toFixed(1)} MB/s (intake ${run.intakeMbps.toFixed(1)} MB/s), hub CPU ${run.hubCpuMsPerMiB.toFixed(1)} ms/MiB${run.natsCpuMsPerMiB === null ? "" : ` (console hub ${run.consoleCpuMsPerMiB!.toFixed(1)}), nats-server ${run.natsCpuMsPerMiB.toFixed(1)} ms/MiB`}, keystroke p50 ${percentile([...run.samples].sort((a, b) => a - b), 50).toFixed(0)} µs`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const names: Record<Topology, string> = {
    local: `local: 1 hub process × ${SOCKETS} sockets`,
    nats: `NATS: console hub → nats-server → ${VIEWER_HUBS} viewer hubs × ${SOCKETS_PER_HUB} sockets`,
  };
  return {
    skipped: [],
    rows: (["local", "nats"] as Topology[]).map((kind) => {
      const own = runs[kind];
      const sorted = own.flatMap((run) => run.samples).sort((a, b) => a - b);
      const mbps = own.map((run) => run.mbps);
      return {
        case: "nats",
        runtime: "node",
        chunk: WRITE,
        n: SOCKETS,
        variant: names[kind],
        ours: true,
        mbps: median(mbps),
        mbpsRounds: mbps,
        hubRatio: null,
        producerNsPerWrite: null,
        bytesPerRun: median(own.map((run) => run.bytes)),
        peakRssMiB: 0,
        extra: {
          hubProcesses: kind === "nats" ? VIEWER_HUBS + 1 : 1,
          hubCpuMsPerMiB: median(own.map((run) => run.hubCpuMsPerMiB)),
          consoleCpuMsPerMiB: kind === "nats" ? median(own.map((run) => run.consoleCpuMsPerMiB!)) : null,
          natsCpuMsPerMiB: kind === "nats" ? median(own.map((run) => run.natsCpuMsPerMiB!)) : null,
          intakeMbps: median(own.map((run) => run.intakeMbps)),
          p50Us: percentile(sorted, 50),
          p99Us: percentile(sorted, 99),
          samples: sorted.length,
          secondsWriting: options.seconds,
          loadAverage1m: median(loads),
        },
      };
    }),
  };
}
