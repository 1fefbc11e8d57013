// Keystroke round trip (Node only): a client process types one byte over a UNIX socket and
// waits for its echo. Direct: a node:net server that echoes. Through a hub: the socket is a
// `socket` chardev (server=on, wait=off), one of the hub's backends next to a ringbuf (a log),
// and the hub's frontend is a device that echoes what it reads, so the echo goes back out
// through the hub to every backend. Both hub modes: the ring (1 MiB) and QEMU's (ring=0).

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ChardevRegistry, type Frontend } from "../host-ts/mod.ts";
import { Client } from "./_clients.ts";
import { percentile, type Row } from "./_report.ts";

type Path = "direct" | "ring" | "qemu";

const NAMES: Record<Path, string> = {
  direct: "direct socket echo",
  ring: "through the hub, ring 1 MiB",
  qemu: "through the hub, QEMU mode (ring=0)",
};

async function serve(kind: Path, socketPath: string): Promise<() => Promise<void>> {
  fs.rmSync(socketPath, { force: true });
  if (kind === "direct") {
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => {
      sockets.push(socket);
      socket.on("error", () => {});
      socket.on("data", (data) => socket.write(data));
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    };
  }
  const registry = await ChardevRegistry.create({ qemuCompat: kind === "qemu" });
  await registry.add(`socket,id=key,path=${socketPath},server=on,wait=off`);
  await registry.add("ringbuf,id=log,size=65536");
  await registry.add(`hub,id=hub0,chardevs.0=key,chardevs.1=log${kind === "ring" ? ",ring=1048576" : ""}`);
  let fe: Frontend | null = null;
  fe = registry.attach("hub0", {
    canRead: () => 4096,
    read: (data) => {
      if (fe!.write(data) !== data.length) throw new Error(`echo device: short write (${fe!.lastError})`);
    },
    event() {},
  });
  return async () => {
    fe!.detach();
    await registry.close();
  };
}

async function measure(kind: Path, dir: string, script: string, count: number): Promise<number[]> {
  const socketPath = path.join(dir, `${kind}.sock`);
  const stop = await serve(kind, socketPath);
  const client = new Client(script, [socketPath, String(count), String(Math.min(500, count))]);
  try {
    const result = await client.result;
    return result.samples as number[];
  } finally {
    client.kill();
    await stop();
  }
}

export async function runLatencyCase(options: { quick: boolean; root: string; log: (line: string) => void }): Promise<Row[]> {
  const script = path.join(options.root, "bench", "_echo_client.mjs");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-bench-"));
  const rounds = options.quick ? 2 : 4;
  const count = options.quick ? 2000 : 5000;
  options.log(`keystroke latency: ${rounds} rounds × ${count} round trips per path`);
  const samples: Record<Path, number[]> = { direct: [], ring: [], qemu: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      const order: Path[] = round % 2 === 0 ? ["direct", "ring", "qemu"] : ["qemu", "ring", "direct"];
      for (const kind of order) samples[kind].push(...(await measure(kind, dir, script, count)));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const stats = (kind: Path) => {
    const sorted = [...samples[kind]].sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length };
  };
  const direct = stats("direct");
  return (["direct", "ring", "qemu"] as Path[]).map((kind) => {
    const own = stats(kind);
    return {
      case: "latency",
      runtime: "node",
      chunk: 1,
      n: 1,
      variant: NAMES[kind],
      ours: kind !== "direct",
      mbps: null,
      mbpsRounds: [],
      hubRatio: null,
      producerNsPerWrite: null,
      bytesPerRun: 1,
      peakRssMiB: 0,
      extra: { p50Us: own.p50, p99Us: own.p99, samples: own.n, p99OverDirectUs: kind === "direct" ? null : own.p99 - direct.p99, p50OverDirectUs: kind === "direct" ? null : own.p50 - direct.p50 },
    };
  });
}
