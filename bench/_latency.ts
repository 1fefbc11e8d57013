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
import { Served } from "./_process_stats.ts";
import { percentile, type Row } from "./_report.ts";
import { now } from "./_runtime.ts";

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

// ---- the command against a socat relay (issue 17) ----
//
// The same keystroke client, but through a process in the middle: the device is a UNIX server
// in this process that echoes, and between it and the client either the command (a hub over
// the client's `socket` chardev, the device a `socket,server=off` chardev bridged to it) or a
// socat relay (`socat UNIX-LISTEN:KEY UNIX-CONNECT:DEVICE`), one at a time, interleaved.

type Relay = "command" | "socat";

const RELAY_NAMES: Record<Relay, string> = {
  command: "chardev-hub process (dist/cli.js), ring 1 MiB",
  socat: "socat relay (UNIX-LISTEN ↔ UNIX-CONNECT)",
};

async function measureRelay(kind: Relay, options: { cli: string; script: string; dir: string; count: number }): Promise<number[]> {
  const devicePath = path.join(options.dir, `${kind}-device.sock`);
  const keyPath = path.join(options.dir, `${kind}-key.sock`);
  fs.rmSync(devicePath, { force: true });
  fs.rmSync(keyPath, { force: true });
  const sockets: net.Socket[] = [];
  const device = net.createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => {});
    socket.on("data", (data) => socket.write(data));
  });
  await new Promise<void>((resolve) => device.listen(devicePath, resolve));
  const relay =
    kind === "command"
      ? new Served(process.execPath, [
          options.cli,
          "-chardev", `socket,id=dev,path=${devicePath},server=off`,
          "-chardev", `socket,id=key,path=${keyPath},server=on,wait=off`,
          "-chardev", "hub,id=hub0,chardevs.0=key,ring=1048576",
          "-frontend", "dev,chardev=hub0",
        ])
      : new Served("socat", [`UNIX-LISTEN:${keyPath}`, `UNIX-CONNECT:${devicePath}`]);
  let client: Client | null = null;
  try {
    const started = now();
    while (!fs.existsSync(keyPath)) {
      if (!relay.running) throw new Error(`latency: ${kind} exited: ${relay.log}`);
      if (now() - started > 20_000) throw new Error(`latency: ${kind} did not listen in 20 s: ${relay.log}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    client = new Client(options.script, [keyPath, String(options.count), String(Math.min(500, options.count))]);
    const result = await client.result;
    return result.samples as number[];
  } finally {
    client?.kill();
    await relay.stop();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => device.close(resolve));
  }
}

/** Keystroke p50/p99 through the command and through a socat relay (rows of case "latency-relay"). */
export async function runRelayLatencyCase(options: { quick: boolean; root: string; socat: boolean; log: (line: string) => void }): Promise<Row[]> {
  const script = path.join(options.root, "bench", "_echo_client.mjs");
  const cli = path.join(options.root, "dist", "cli.js");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-bench-"));
  const rounds = options.quick ? 2 : 4;
  const count = options.quick ? 2000 : 5000;
  const kinds: Relay[] = options.socat ? ["command", "socat"] : ["command"];
  options.log(`keystroke latency through a process: ${kinds.join(", ")}, ${rounds} rounds × ${count} round trips (load ${os.loadavg()[0].toFixed(2)})`);
  const samples: Record<Relay, number[]> = { command: [], socat: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? kinds : [...kinds].reverse();
      for (const kind of order) samples[kind].push(...(await measureRelay(kind, { cli, script, dir, count })));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const load = os.loadavg()[0];
  const stats = (kind: Relay) => {
    const sorted = [...samples[kind]].sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length };
  };
  const socat = options.socat ? stats("socat") : null;
  return kinds.map((kind) => {
    const own = stats(kind);
    return {
      case: "latency-relay",
      runtime: "node",
      chunk: 1,
      n: 1,
      variant: RELAY_NAMES[kind],
      ours: kind === "command",
      mbps: null,
      mbpsRounds: [],
      hubRatio: null,
      producerNsPerWrite: null,
      bytesPerRun: 1,
      peakRssMiB: 0,
      extra: { p50Us: own.p50, p99Us: own.p99, samples: own.n, p99VsSocat: socat ? own.p99 / socat.p99 : null, p50VsSocat: socat ? own.p50 / socat.p50 : null, loadAverage1m: load },
    };
  });
}
