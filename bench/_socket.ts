// UNIX-socket fan-out to N client processes (Node only): each client reads its whole stream
// and reports its byte count and md5. Ours: N `socket` chardevs (server=on, wait=off) behind a
// ring hub, written through a Frontend. The anchor: a plain node:net server that writes every
// chunk to every socket and, to stay memory-bounded as the hub is, waits for 'drain' on each
// socket whose write() returned false before the next chunk.

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ChardevRegistry, type HubChardev } from "../host-ts/mod.ts";
import { Client, rssSampler } from "./_clients.ts";
import { median, MiB, type Row } from "./_report.ts";
import { now, rss } from "./_runtime.ts";
import { chunksOf, pattern, PERIOD } from "./_stream.ts";

const CLIENTS = 16;
const LINE = 64;
const RING = 1 << 20;

/** The md5 of the stream's first `length` bytes (what every socket client must have read). */
export function streamMd5(length: number): string {
  const hash = createHash("md5");
  for (let at = 0; at < length; at += PERIOD) hash.update(pattern.subarray(0, Math.min(PERIOD, length - at)));
  return hash.digest("hex");
}

interface SocketRun {
  ms: number;
  peakRss: number;
  /** Peak RSS during the run over RSS when it started. */
  growth: number;
}

function check(results: { bytes: number; md5: string | null }[], length: number, who: string): void {
  const want = streamMd5(length);
  results.forEach((result, i) => {
    if (result.bytes !== length || result.md5 !== want) {
      throw new Error(`${who}: client ${i} got ${result.bytes} bytes (md5 ${result.md5}), expected ${length} (md5 ${want})`);
    }
  });
}

async function hubRun(dir: string, script: string, length: number): Promise<SocketRun> {
  const registry = await ChardevRegistry.create({ qemuCompat: false });
  const clients: Client[] = [];
  try {
    const ids: string[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      await registry.add(`socket,id=c${i},path=${path.join(dir, `hub-${i}.sock`)},server=on,wait=off`);
      ids.push(`c${i}`);
    }
    const hub = (await registry.add({ id: "hub0", backend: { type: "hub", data: { chardevs: ids, ring: RING } } })) as HubChardev;
    const fe = registry.attach("hub0", { canRead: () => 0, read() {}, event() {} });
    for (let i = 0; i < CLIENTS; i++) clients.push(new Client(script, [path.join(dir, `hub-${i}.sock`), String(length)]));
    await Promise.all(clients.map((client) => client.connected));
    // Connected is not yet accepted: wait until the hub sees every backend open.
    while (!hub.stats().every((row) => row.open)) await new Promise((resolve) => setTimeout(resolve, 2));
    const chunks = chunksOf(LINE);
    const sampler = rssSampler(rss);
    const started = now();
    let k = 0;
    for (let written = 0; written < length; ) {
      const chunk = chunks[k];
      const taken = fe.write(chunk);
      if (taken === chunk.length) {
        written += taken;
        k = k + 1 === chunks.length ? 0 : k + 1;
        continue;
      }
      if (taken > 0 || fe.lastError !== "EAGAIN") throw new Error(`hub write: ${taken} ${fe.lastError}`);
      await new Promise<void>((resolve) => {
        if (fe.addWatch(resolve) === 0) resolve();
      });
    }
    const results = await Promise.all(clients.map((client) => client.result));
    const ms = now() - started;
    const peakRss = sampler.stop();
    check(results, length, "hub");
    fe.detach();
    return { ms, peakRss, growth: peakRss - sampler.start };
  } finally {
    for (const client of clients) client.kill();
    await registry.close();
  }
}

async function naiveRun(dir: string, script: string, length: number): Promise<SocketRun> {
  const sockets: net.Socket[] = [];
  const socketPath = path.join(dir, "naive.sock");
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    sockets.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const clients: Client[] = [];
  try {
    for (let i = 0; i < CLIENTS; i++) clients.push(new Client(script, [socketPath, String(length)]));
    await Promise.all(clients.map((client) => client.connected));
    while (sockets.length < CLIENTS) await new Promise((resolve) => setTimeout(resolve, 2));
    const chunks = chunksOf(LINE);
    const sampler = rssSampler(rss);
    const started = now();
    let k = 0;
    for (let written = 0; written < length; written += LINE) {
      const chunk = chunks[k];
      k = k + 1 === chunks.length ? 0 : k + 1;
      let full: net.Socket[] | null = null;
      for (const socket of sockets) if (!socket.write(chunk)) (full ??= []).push(socket);
      if (full) await Promise.all(full.map((socket) => new Promise((resolve) => socket.once("drain", resolve))));
    }
    const results = await Promise.all(clients.map((client) => client.result));
    const ms = now() - started;
    const peakRss = sampler.stop();
    check(results, length, "naive net");
    return { ms, peakRss, growth: peakRss - sampler.start };
  } finally {
    for (const client of clients) client.kill();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

export async function runSocketCase(options: { quick: boolean; root: string; log: (line: string) => void }): Promise<Row[]> {
  const script = path.join(options.root, "bench", "_socket_client.mjs");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-bench-"));
  const rounds = options.quick ? 2 : 4;
  const hubBytes = (options.quick ? 4 : 16) * MiB;
  const naiveBytes = (options.quick ? 0.25 : 1) * MiB; // ~40× slower: fewer bytes, same rate
  options.log(`socket fan-out: ${CLIENTS} client processes, ${LINE}-byte lines, ${rounds} rounds`);
  const hub: SocketRun[] = [];
  const naive: SocketRun[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      // Interleaved, the anchor first every other round.
      if (round % 2 === 1) naive.push(await naiveRun(dir, script, naiveBytes));
      hub.push(await hubRun(dir, script, hubBytes));
      if (round % 2 === 0) naive.push(await naiveRun(dir, script, naiveBytes));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const mbps = (runs: SocketRun[], bytes: number) => runs.map((run) => bytes / MiB / (run.ms / 1000));
  const hubMbps = mbps(hub, hubBytes);
  const naiveMbps = mbps(naive, naiveBytes);
  const base = { case: "socket", runtime: "node", chunk: LINE, n: CLIENTS, producerNsPerWrite: null };
  return [
    {
      ...base,
      variant: "naive net (write every chunk to every socket)",
      ours: false,
      mbps: median(naiveMbps),
      mbpsRounds: naiveMbps,
      hubRatio: median(hubMbps.map((value, round) => value / naiveMbps[round])),
      hubRatioRounds: hubMbps.map((value, round) => value / naiveMbps[round]),
      bytesPerRun: naiveBytes,
      peakRssMiB: Math.max(...naive.map((run) => run.peakRss)) / MiB,
      extra: { rssGrowthMiB: Math.max(...naive.map((run) => run.growth)) / MiB },
    },
    {
      ...base,
      variant: `hub: ${CLIENTS} socket chardevs, ring ${RING / MiB} MiB`,
      ours: true,
      mbps: median(hubMbps),
      mbpsRounds: hubMbps,
      hubRatio: 1,
      bytesPerRun: hubBytes,
      peakRssMiB: Math.max(...hub.map((run) => run.peakRss)) / MiB,
      extra: { rssGrowthMiB: Math.max(...hub.map((run) => run.growth)) / MiB },
    },
  ];
}
