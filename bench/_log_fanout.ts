// The edge log fan-out (issue 16; Node runs it, `--only=log_fanout`, not in the default run):
// lines per second through the `logFanout` handler to 1 and 4 local HTTP receivers, with the
// handler served by Node (node:http in front of its fetch), by Deno (`Deno.serve`, `deno run
// --allow-net=127.0.0.1`) and by workerd (a module Worker). Each is a process of its own, set up
// by the tests' fixtures (tests/edge/log_fanout_*: `POST /configure`, then the handler).
//
// A round: configure N `block` sinks (the receivers, in this process: they read and count),
// POST /ingest one body of NDJSON lines, and time until the answer, which comes once every
// sink's requests were answered 2xx up to the body's end. lines/s = lines ÷ that time; MB/s
// likewise. Every receiver must have got every byte, or the round fails.

import { spawn, type ChildProcess } from "node:child_process";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { median, MiB, type Row } from "./_report.ts";
import { now, runtimeName } from "./_runtime.ts";

/** The Node server: node:http handing each request to the fixture's fetch as a Web Request. */
const NODE_SERVER = `
import * as http from "node:http";
import { Readable } from "node:stream";
const { logFanoutApp } = await import(process.env.LOG_FANOUT_APP);
const app = logFanoutApp();
const server = http.createServer(async (incoming, outgoing) => {
  const hasBody = incoming.method !== "GET" && incoming.method !== "HEAD";
  const request = new Request("http://127.0.0.1" + incoming.url, {
    method: incoming.method,
    headers: incoming.headers,
    body: hasBody ? Readable.toWeb(incoming) : undefined,
    duplex: "half",
  });
  const response = await app.fetch(request);
  outgoing.writeHead(response.status, Object.fromEntries(response.headers));
  outgoing.end(Buffer.from(await response.arrayBuffer()));
});
server.listen(Number(process.argv[1]), "127.0.0.1", () => console.log("listening"));
`;

interface Served {
  base: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a server process (its own process group) and waits until /stats answers. */
async function serve(root: string, command: string, args: string[], env: Record<string, string> = {}): Promise<Served> {
  const port = await freePort();
  const child: ChildProcess = spawn(command, args.map((arg) => arg.replace("PORT", String(port))), {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: { ...process.env, ...env },
  });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  let exited = false;
  child.on("exit", () => (exited = true));
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (exited) return;
    const gone = new Promise((resolve) => child.on("exit", resolve));
    process.kill(-child.pid!, "SIGTERM");
    const timer = setTimeout(() => !exited && process.kill(-child.pid!, "SIGKILL"), 5000);
    await gone;
    clearTimeout(timer);
  };
  // Another process's listener has no event to wait on: ask every 25 ms, 20 s at most.
  for (let attempt = 0; attempt < 800; attempt++) {
    if (exited) throw new Error(`${command} exited:\n${output}`);
    const status = await fetch(`${base}/stats`).then((response) => (response.body?.cancel(), response.status), () => 0);
    if (status === 409) return { base, stop };
    await sleep(25);
  }
  await stop();
  throw new Error(`${command} did not serve on ${base}:\n${output}`);
}

interface Receiver {
  url: string;
  bytes: number;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const receiver = { url: "", bytes: 0, close: async () => {} };
  const server = http.createServer((request, response) => {
    let bytes = 0;
    request.on("data", (part: Buffer) => (bytes += part.length));
    request.on("end", () => {
      receiver.bytes += bytes;
      response.writeHead(200).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
  receiver.close = () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return receiver;
}

/** `count` NDJSON lines of about 100 bytes. */
function body(count: number): Uint8Array<ArrayBuffer> {
  let text = "";
  for (let seq = 0; seq < count; seq++) text += `${JSON.stringify({ seq, level: "info", msg: "request served", path: `/api/v1/items/${seq % 977}`, ms: seq % 91 })}\n`;
  return new TextEncoder().encode(text);
}

export interface LogFanoutCaseOptions {
  root: string;
  rounds: number;
  /** Lines per round. */
  lines: number;
  sinks: number[];
  log: (line: string) => void;
}

/** Runs the case; rows per (server runtime, sinks), and the servers it could not start. */
export async function runLogFanoutCase(options: LogFanoutCaseOptions): Promise<{ rows: Row[]; skipped: { name: string; reason: string }[] }> {
  const { root, log } = options;
  const rows: Row[] = [];
  const skipped: { name: string; reason: string }[] = [];
  if (runtimeName !== "node") return { rows, skipped: [{ name: "log_fanout", reason: "Node runs this case (it starts the servers)" }] };
  const bin = (name: string) => path.join(root, "node_modules/.bin", name);
  const servers: { name: string; start(): Promise<Served> }[] = [
    {
      name: "node",
      start: () => serve(root, process.execPath, ["--input-type=module", "-e", NODE_SERVER, "PORT"], { LOG_FANOUT_APP: path.join(root, "tests/edge/log_fanout_app.js") }),
    },
    { name: "deno", start: () => serve(root, bin("deno"), ["run", "--allow-net=127.0.0.1", "tests/edge/log_fanout_deno.ts", "PORT"]) },
    { name: "workerd", start: () => serve(root, bin("workerd"), ["serve", "tests/edge/log_fanout_worker.capnp", "--socket-addr", "http=127.0.0.1:PORT"]) },
  ];
  const payload = body(options.lines);
  log(`log fan-out: ${options.lines} lines (${(payload.length / MiB).toFixed(1)} MiB) per round, ${options.rounds} rounds, sinks ${options.sinks.join(",")}`);
  for (const server of servers) {
    let served: Served;
    try {
      served = await server.start();
    } catch (error) {
      skipped.push({ name: `log_fanout ${server.name}`, reason: String((error as Error).message).split("\n")[0] });
      continue;
    }
    try {
      for (const sinks of options.sinks) {
        const receivers = await Promise.all(Array.from({ length: sinks }, () => startReceiver()));
        try {
          const configure = await fetch(`${served.base}/configure`, {
            method: "POST",
            body: JSON.stringify({ ring: 1 << 20, sinks: receivers.map((receiver, i) => ({ name: `r${i}`, url: receiver.url, policy: "block" })) }),
          });
          if (configure.status !== 200) throw new Error(`configure answered ${configure.status}: ${await configure.text()}`);
          const seconds: number[] = [];
          for (let round = 0; round < options.rounds; round++) {
            const before = receivers.map((receiver) => receiver.bytes);
            const started = now();
            const response = await fetch(`${served.base}/ingest`, { method: "POST", body: payload });
            const answer = (await response.json()) as { lines: number; confirmed: boolean };
            const elapsed = (now() - started) / 1000;
            if (response.status !== 200 || answer.lines !== options.lines || !answer.confirmed) throw new Error(`ingest answered ${response.status}: ${JSON.stringify(answer).slice(0, 300)}`);
            const short = receivers.findIndex((receiver, i) => receiver.bytes - before[i] !== payload.length);
            if (short !== -1) throw new Error(`receiver ${short} got ${receivers[short].bytes - before[short]} of ${payload.length} bytes`);
            seconds.push(elapsed);
          }
          const mbpsRounds = seconds.map((s) => payload.length / MiB / s);
          const linesPerSecond = seconds.map((s) => options.lines / s);
          rows.push({
            case: "log_fanout",
            runtime: server.name,
            chunk: Math.round(payload.length / options.lines),
            n: sinks,
            variant: `logFanout on ${server.name}`,
            ours: true,
            mbps: median(mbpsRounds),
            mbpsRounds,
            hubRatio: null,
            producerNsPerWrite: null,
            bytesPerRun: payload.length,
            peakRssMiB: 0,
            extra: { linesPerSecond: median(linesPerSecond), fastestLinesPerSecond: Math.max(...linesPerSecond), lines: options.lines },
          });
          log(`  ${server.name}, ${sinks} sink(s): ${Math.round(median(linesPerSecond))} lines/s (${median(mbpsRounds).toFixed(1)} MB/s)`);
        } finally {
          await Promise.all(receivers.map((receiver) => receiver.close()));
        }
      }
    } catch (error) {
      skipped.push({ name: `log_fanout ${server.name}`, reason: String((error as Error).message).split("\n")[0].slice(0, 300) });
    } finally {
      await served.stop();
    }
  }
  return { rows, skipped };
}
