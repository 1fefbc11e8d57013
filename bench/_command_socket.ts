// The command's socket fan-out against C (issue 17; Node only, part of `--only=socket`): a
// device streams to one server process, which writes every byte to 16 UNIX-socket clients,
// each a process that md5s what it reads. The servers, one at a time, interleaved by round:
//
//   hub: node dist/cli.js -chardev socket,id=dev,path=DEVICE,server=off
//          -chardev socket,id=cI,path=CLIENT_I,server=on,wait=off (×16)
//          -chardev hub,id=hub0,chardevs.I=cI,ring=1048576 -frontend dev,chardev=hub0
//   C:   build/bench/fanout_server DEVICE CLIENT_0 ... CLIENT_15 (bench/c/fanout_server.c)
//
// Both connect to the device's UNIX socket, serve each client on a path of its own, and hold
// the device back while the slowest client is a ring (1 MiB) behind: nothing is lost. The
// device is this process: it writes the stream (64-byte text lines, bench/_stream.ts) in
// 64 KiB writes or one 64-byte line per write, waiting for 'drain'. MB/s: stream MiB from the
// first write until every client has all of it (and its md5 checked). CPU per MiB: the server
// process's user + system time over that interval. Peak RSS: the server's VmHWM.
//
// CHARDEV_HUB_BENCH_MEMORY=1 says where the command's RSS goes: a sampler preloaded into it
// (`node --import`, bench only: the command itself has no such switch) records
// process.memoryUsage(), V8's heap spaces and the WASM core's memory at the highest RSS it
// saw (every 20 ms), and the bench prints that breakdown after each hub round.

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "./_clients.ts";
import { cpuSeconds, peakRss, Served } from "./_process_stats.ts";
import { median, MiB, type Row } from "./_report.ts";
import { now } from "./_runtime.ts";
import { streamMd5 } from "./_socket.ts";
import { chunksOf, pattern, PERIOD } from "./_stream.ts";

const CLIENTS = 16;
const RING = 1 << 20;

/** Preloaded into the command when CHARDEV_HUB_BENCH_MEMORY is set; writes its peak to $CHARDEV_HUB_BENCH_MEMORY_FILE. */
const MEMORY_SAMPLER = `
import * as fs from "node:fs";
import * as v8 from "node:v8";
const file = process.env.CHARDEV_HUB_BENCH_MEMORY_FILE;
const memories = [];
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async function (...args) {
  const result = await instantiate.apply(this, args);
  const memory = (result.instance ?? result).exports.memory;
  if (memory) memories.push(memory);
  return result;
};
let peak = null;
const sample = () => {
  const usage = process.memoryUsage();
  if (peak !== null && usage.rss <= peak.rss) return;
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((space) => [space.space_name, space.space_size]));
  peak = { ...usage, wasm: memories.reduce((sum, memory) => sum + memory.buffer.byteLength, 0), spaces };
  fs.writeFileSync(file, JSON.stringify(peak));
};
setInterval(sample, 20).unref();
`;

/** One line of the sampler's peak: RSS and what V8 and the core account for of it, in MiB. */
function memoryBreakdown(file: string): string {
  if (!fs.existsSync(file)) return "no sample";
  const peak = JSON.parse(fs.readFileSync(file, "utf8"));
  const mib = (bytes: number) => (bytes / MiB).toFixed(1);
  const spaces = Object.entries(peak.spaces as Record<string, number>).filter(([, bytes]) => bytes >= MiB / 2).map(([name, bytes]) => `${name} ${mib(bytes)}`);
  return `rss ${mib(peak.rss)} = heap committed ${mib(peak.heapTotal)} (used ${mib(peak.heapUsed)}; ${spaces.join(", ")}) + external ${mib(peak.external)} (array buffers ${mib(peak.arrayBuffers)}, WASM memory ${mib(peak.wasm)}) + the rest (code, native)`;
}

type Server = "hub" | "c";

/** The stream cut into `write`-byte writes; 64 KiB does not divide the period, so it cuts a few periods in a row. */
function writesOf(write: number): Uint8Array[] {
  if (PERIOD % write === 0) return chunksOf(write);
  let span = PERIOD;
  while (span % write !== 0) span += PERIOD;
  const repeated = new Uint8Array(span);
  for (let at = 0; at < span; at += PERIOD) repeated.set(pattern, at);
  return Array.from({ length: span / write }, (_, i) => repeated.subarray(i * write, (i + 1) * write));
}

/** The device: a UNIX server the fan-out server connects to, streaming the pattern. */
class Device {
  readonly server: net.Server;
  socket: net.Socket | null = null;
  readonly connected: Promise<void>;
  constructor(readonly socketPath: string) {
    let onConnect!: () => void;
    this.connected = new Promise((resolve) => (onConnect = resolve));
    this.server = net.createServer((socket) => {
      this.socket = socket;
      socket.on("error", () => {});
      onConnect();
    });
  }
  listen(): Promise<void> {
    fs.rmSync(this.socketPath, { force: true });
    return new Promise((resolve) => this.server.listen(this.socketPath, resolve));
  }
  /** Writes exactly `length` bytes of the stream in `write`-byte writes, honouring 'drain'. */
  async stream(length: number, write: number): Promise<void> {
    const socket = this.socket!;
    const chunks = writesOf(write);
    let k = 0;
    for (let written = 0; written < length; written += write) {
      const full = !socket.write(chunks[k]);
      k = k + 1 === chunks.length ? 0 : k + 1;
      if (full) await new Promise((resolve) => socket.once("drain", resolve));
    }
  }
  close(): Promise<void> {
    this.socket?.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function until(condition: () => boolean, what: string, served: Served, limitMs = 20_000): Promise<void> {
  const started = now();
  while (!condition()) {
    if (!served.running) throw new Error(`socket vs C: the server exited while waiting for ${what}: ${served.log}`);
    if (now() - started > limitMs) throw new Error(`socket vs C: ${what} took over ${limitMs} ms: ${served.log}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface ServerRun {
  mbps: number;
  cpuMsPerMiB: number;
  peakRss: number;
}

async function runOnce(kind: Server, options: { cli: string; cServer: string; script: string; dir: string; length: number; write: number }): Promise<ServerRun> {
  const dir = fs.mkdtempSync(path.join(options.dir, `${kind}-`));
  const device = new Device(path.join(dir, "device.sock"));
  await device.listen();
  const clientPaths = Array.from({ length: CLIENTS }, (_, i) => path.join(dir, `c${i}.sock`));
  let served: Served;
  if (kind === "hub") {
    const args = ["-chardev", `socket,id=dev,path=${device.socketPath},server=off`];
    clientPaths.forEach((file, i) => args.push("-chardev", `socket,id=c${i},path=${file},server=on,wait=off`));
    args.push("-chardev", `hub,id=hub0,${clientPaths.map((_, i) => `chardevs.${i}=c${i}`).join(",")},ring=${RING}`, "-frontend", "dev,chardev=hub0");
    const sampler = process.env.CHARDEV_HUB_BENCH_MEMORY ? ["--import", `data:text/javascript,${encodeURIComponent(MEMORY_SAMPLER)}`] : [];
    process.env.CHARDEV_HUB_BENCH_MEMORY_FILE = path.join(dir, "memory.json");
    served = new Served(process.execPath, [...sampler, options.cli, ...args]);
  } else {
    served = new Served(options.cServer, [device.socketPath, ...clientPaths]);
  }
  const clients: Client[] = [];
  try {
    await until(() => clientPaths.every((file) => fs.existsSync(file)), "its client sockets", served);
    for (const file of clientPaths) clients.push(new Client(options.script, [file, String(options.length)]));
    await Promise.all(clients.map((client) => client.connected));
    await Promise.race([device.connected, served.exited.then(() => Promise.reject(new Error(`socket vs C: ${kind} exited: ${served.log}`)))]);
    // Connected is not yet accepted (the hub accepts as its event loop turns): a moment for
    // every backend to open, as a client that missed the start would fail the run.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const cpuBefore = cpuSeconds(served.pid);
    const started = now();
    await device.stream(options.length, options.write);
    const results = await Promise.all(clients.map((client) => client.result));
    const seconds = (now() - started) / 1000;
    const cpu = cpuSeconds(served.pid) - cpuBefore;
    const peak = peakRss(served.pid);
    const want = streamMd5(options.length);
    results.forEach((result, i) => {
      if (result.bytes !== options.length || result.md5 !== want) {
        throw new Error(`socket vs C: ${kind}: client ${i} got ${result.bytes} bytes (md5 ${result.md5}), expected ${options.length} (md5 ${want})`);
      }
    });
    const mib = options.length / MiB;
    if (kind === "hub" && process.env.CHARDEV_HUB_BENCH_MEMORY) console.error(`  memory at the peak: ${memoryBreakdown(path.join(dir, "memory.json"))}`);
    return { mbps: mib / seconds, cpuMsPerMiB: (cpu * 1000) / mib, peakRss: peak };
  } finally {
    for (const client of clients) client.kill();
    await served.stop();
    await device.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Rows for each write size: the command and the C server, with hub ÷ C per round. */
export async function runCommandSocketCase(options: { quick: boolean; root: string; cServer: string; log: (line: string) => void }): Promise<Row[]> {
  // CHARDEV_HUB_BENCH_CLI: another build of the command (a before/after comparison).
  const cli = process.env.CHARDEV_HUB_BENCH_CLI ?? path.join(options.root, "dist", "cli.js");
  const script = path.join(options.root, "bench", "_socket_client.mjs");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-bench-c-"));
  const rounds = options.quick ? 2 : 4;
  const rows: Row[] = [];
  try {
    for (const write of [65536, 64]) {
      const length = (write === 64 ? (options.quick ? 8 : 16) : options.quick ? 32 : 64) * MiB;
      options.log(`socket fan-out, the command vs C: ${CLIENTS} md5 clients, ${write}-byte writes, ${length / MiB} MiB, ${rounds} rounds (load ${os.loadavg()[0].toFixed(2)})`);
      const runs: Record<Server, ServerRun[]> = { hub: [], c: [] };
      for (let round = 0; round < rounds; round++) {
        const order: Server[] = round % 2 === 0 ? ["hub", "c"] : ["c", "hub"];
        for (const kind of order) {
          const run = await runOnce(kind, { cli, cServer: options.cServer, script, dir, length, write });
          runs[kind].push(run);
          options.log(`  round ${round + 1} ${kind}: ${run.mbps.toFixed(1)} MB/s, ${run.cpuMsPerMiB.toFixed(1)} CPU ms/MiB, peak RSS ${(run.peakRss / MiB).toFixed(1)} MiB`);
        }
      }
      const ratios = runs.hub.map((run, round) => run.mbps / runs.c[round].mbps);
      const cpuRatios = runs.hub.map((run, round) => run.cpuMsPerMiB / runs.c[round].cpuMsPerMiB);
      const base = { case: "socket-c", runtime: "node", chunk: write, n: CLIENTS, producerNsPerWrite: null, bytesPerRun: length };
      const row = (kind: Server): Row => ({
        ...base,
        variant: kind === "hub" ? `chardev-hub (dist/cli.js), ring ${RING / MiB} MiB` : "C epoll server (bench/c/fanout_server.c)",
        ours: kind === "hub",
        mbps: median(runs[kind].map((run) => run.mbps)),
        mbpsRounds: runs[kind].map((run) => run.mbps),
        hubRatio: kind === "hub" ? 1 : median(ratios),
        hubRatioRounds: kind === "hub" ? undefined : ratios,
        peakRssMiB: Math.max(...runs[kind].map((run) => run.peakRss)) / MiB,
        extra: {
          cpuMsPerMiB: median(runs[kind].map((run) => run.cpuMsPerMiB)),
          cpuRatio: kind === "hub" ? null : median(cpuRatios),
          loadAverage1m: os.loadavg()[0],
        },
      });
      rows.push(row("c"), row("hub"));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
