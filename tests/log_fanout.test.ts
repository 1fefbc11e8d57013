// The log fan-out handler (logFanout, from the edge bundle dist/edge.js) with real HTTP
// receivers on 127.0.0.1 in this process: a fast one, a slow one (every answer after 500 ms, and
// not before the test lets it), one that answers 503 twice before 200, and a port nothing
// listens on. The handler runs in workerd (a module Worker, tests/edge/log_fanout_worker.capnp)
// and under `deno run --allow-net=127.0.0.1` with no other permission (log_fanout_deno.ts); the
// tail's gap marks are also checked in this runtime, with the handler called directly.

import { spawn, type ChildProcess } from "node:child_process";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it, testRuntime } from "./_harness.ts";
import { freePort } from "./_ports.ts";
import { logFanout } from "../dist/edge.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name: string) => path.join(root, "node_modules/.bin", name);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const encoder = new TextEncoder();

/** One request a receiver answered 2xx: its body and the gap it announced. */
interface Delivery {
  body: string;
  gap: number;
}

interface Receiver {
  url: string;
  /** Bodies answered 2xx, in the order they came. */
  deliveries: Delivery[];
  /** Requests answered 503. */
  refused: number;
  text(): string;
  gapTotal(): number;
  /** Resolves once `condition` holds, checked after every request; rejects after `timeoutMs`. */
  until(condition: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Slow receiver: lets its answers go (each still at least 500 ms after its request). */
  release(): void;
  close(): Promise<void>;
}

/** A receiver: `fast` answers at once, `slow` after 500 ms and once released, `flaky` 503 twice first. */
async function startReceiver(kind: "fast" | "slow" | "flaky"): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const waiters = new Set<() => void>();
  let released!: () => void;
  const releasedPromise = new Promise<void>((resolve) => (released = resolve));
  let refused = 0;
  const server = http.createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on("data", (part: Buffer) => parts.push(part));
    request.on("end", async () => {
      if (kind === "flaky" && refused < 2) {
        refused++;
        response.writeHead(503, { "retry-after": "0" }).end("busy\n");
        return;
      }
      if (kind === "slow") await Promise.all([sleep(500), releasedPromise]);
      deliveries.push({ body: Buffer.concat(parts).toString("utf8"), gap: Number(request.headers["chardev-hub-gap"] ?? 0) });
      response.writeHead(200).end();
      for (const wake of [...waiters]) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/logs`,
    deliveries,
    get refused() {
      return refused;
    },
    text: () => deliveries.map((delivery) => delivery.body).join(""),
    gapTotal: () => deliveries.reduce((sum, delivery) => sum + delivery.gap, 0),
    until(condition, what, timeoutMs = 20_000) {
      if (condition()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`receiver ${kind}: ${what} did not happen within ${timeoutMs} ms`));
        }, timeoutMs);
        const check = () => {
          if (!condition()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
    release: () => released(),
    close: () => {
      released();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `count` NDJSON lines, numbered, of uneven lengths. */
function ndjsonLines(count: number, tag: string): string {
  let text = "";
  for (let seq = 0; seq < count; seq++) text += `${JSON.stringify({ seq, tag, msg: "x".repeat(20 + ((seq * 37) % 90)) })}\n`;
  return text;
}

/** `text` as a request body streamed in pieces of `size` bytes, cutting lines in two. */
function streamed(text: string, size: number): ReadableStream<Uint8Array> {
  const bytes = encoder.encode(text);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

interface SinkStats {
  name: string;
  policy: string;
  state: string;
  taken: number;
  dropped: number;
  gaps: number;
  lag: number;
  confirmed?: boolean | null;
  http: { bytes?: number; retries?: number; requests?: number; gaps?: number; status?: number };
}

/** Where a handler is served, and how to stop it. */
interface Served {
  base: string;
  stop(): Promise<void>;
}

/** Starts `command` in its own process group and waits until `ready(base)` says it serves. */
async function serve(command: string, args: string[], port: number, ready: (output: string) => Promise<boolean>): Promise<Served> {
  const child: ChildProcess = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], detached: true });
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
    // workerd drains its connections before it exits on SIGTERM; past 5 s it is stopped for good.
    const timer = setTimeout(() => !exited && process.kill(-child.pid!, "SIGKILL"), 5000);
    await gone;
    clearTimeout(timer);
  };
  // Startup is checked every 25 ms, for at most 20 s: there is no event to wait on for another process's listener.
  for (let attempt = 0; ; attempt++) {
    if (exited) throw new Error(`${command} exited:\n${output}`);
    if (await ready(output)) return { base, stop };
    if (attempt === 800) {
      await stop();
      throw new Error(`${command} did not serve on ${base}:\n${output}`);
    }
    await sleep(25);
  }
}

/** The two ways the handler is deployed in these tests. */
const deployments: { name: string; start(): Promise<Served> }[] = [
  {
    name: "in workerd",
    async start() {
      const port = await freePort();
      return serve(bin("workerd"), ["serve", "tests/edge/log_fanout_worker.capnp", "--socket-addr", `http=127.0.0.1:${port}`], port, async () => {
        // The Worker answers 409 until configured: it is up.
        const status = await fetch(`http://127.0.0.1:${port}/stats`).then((response) => (response.body?.cancel(), response.status), () => 0);
        return status === 409;
      });
    },
  },
  {
    name: "under deno run --allow-net=127.0.0.1",
    async start() {
      const port = await freePort();
      return serve(bin("deno"), ["run", "--allow-net=127.0.0.1", "tests/edge/log_fanout_deno.ts", String(port)], port, async (output) => output.includes("listening"));
    },
  },
];

async function postJson(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(url, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
  return { status: response.status, json: await response.json() };
}

async function getStats(base: string): Promise<{ bytes: number; lines: number; tails: number; sinks: SinkStats[] }> {
  const response = await fetch(`${base}/stats`);
  expect(response.status).toBe(200);
  return await response.json();
}

const byName = (sinks: SinkStats[], name: string) => sinks.find((sink) => sink.name === name)!;

/**
 * Checks that the slow receiver got `all` minus exactly its announced gaps: each body starts
 * where the previous one ended plus its gap, on a line start, and is whole lines.
 */
function expectStreamMinusGaps(all: string, deliveries: Delivery[]): void {
  let position = 0;
  for (const { body, gap } of deliveries) {
    position += gap;
    expect(position === 0 || all[position - 1] === "\n").toBe(true);
    expect(body.endsWith("\n")).toBe(true);
    expect(all.slice(position, position + body.length) === body).toBe(true);
    position += body.length;
  }
  expect(position).toBe(all.length);
}

for (const deployment of deployments) {
  describe(`the log fan-out ${deployment.name}`, () => {
    let served: Served;
    const receivers: Receiver[] = [];

    beforeAll(async () => {
      served = await deployment.start();
    });

    afterAll(async () => {
      await served?.stop();
      await Promise.all(receivers.map((receiver) => receiver.close()));
    });

    it("sends every line to the fast sink once and in order, lets the slow one drop exactly what it reports, retries the 503 one, and reports the dead one", async () => {
      const [fast, slow, flaky] = await Promise.all([startReceiver("fast"), startReceiver("slow"), startReceiver("flaky")]);
      receivers.push(fast, slow, flaky);
      const deadUrl = `http://127.0.0.1:${await freePort()}/logs`;
      const configured = await postJson(`${served.base}/configure`, {
        ring: 65536,
        sinks: [
          { name: "fast", url: fast.url, policy: "block", batchBytes: 16384, batchMs: 20 },
          { name: "slow", url: slow.url, policy: "drop", batchBytes: 8192, batchMs: 20 },
          { name: "flaky", url: flaky.url, policy: "block", batchBytes: 16384, batchMs: 20, retryMs: 20 },
          { name: "dead", url: deadUrl, policy: "evict", stallMs: 1000, batchBytes: 4096, batchMs: 20, retryMs: 20, retryMax: 2 },
        ],
      });
      expect(configured).toEqual({ status: 200, json: { configured: true } });

      const all = ndjsonLines(3000, deployment.name);
      const response = await fetch(`${served.base}/ingest`, { method: "POST", body: streamed(all, 1000), headers: { "content-type": "application/x-ndjson" }, duplex: "half" } as RequestInit);
      const answer = await response.json();
      expect({ status: response.status, lines: answer.lines, bytes: answer.bytes }).toEqual({ status: 200, lines: 3000, bytes: all.length });

      // Answered once the block sinks had every line acknowledged...
      expect(fast.text() === all).toBe(true);
      expect(flaky.text() === all).toBe(true);
      expect(flaky.refused).toBe(2);
      expect(byName(answer.sinks, "flaky").http.retries).toBe(2);
      // ...while the slow one had not had a single answer yet: it held nobody back.
      expect(byName(answer.sinks, "slow")).toMatchObject({ policy: "drop", confirmed: null, http: { bytes: 0 } });
      expect(["evicted", "failed"]).toContain(byName(answer.sinks, "dead").state);

      slow.release();
      await slow.until(() => slow.text().length + slow.gapTotal() === all.length, "the whole stream less its gaps");
      expect(slow.gapTotal()).toBeGreaterThan(0);
      expectStreamMinusGaps(all, slow.deliveries);

      const stats = await getStats(served.base);
      expect({ bytes: stats.bytes, lines: stats.lines }).toEqual({ bytes: all.length, lines: 3000 });
      const slowStats = byName(stats.sinks, "slow");
      expect({ dropped: slowStats.dropped, gapHeaders: slowStats.http.gaps, taken: slowStats.taken }).toEqual({
        dropped: slow.gapTotal(),
        gapHeaders: slow.gapTotal(),
        taken: all.length - slow.gapTotal(),
      });
      expect(slowStats.gaps).toBeGreaterThan(0);
      expect(byName(stats.sinks, "fast")).toMatchObject({ state: "ok", dropped: 0, lag: 0, taken: all.length, http: { bytes: all.length } });
      const dead = byName(stats.sinks, "dead");
      expect(["evicted", "failed"]).toContain(dead.state);
      expect(dead.http.bytes ?? 0).toBe(0);
    });

    it("follows the stream live over a WebSocket on /tail", async () => {
      const fast = await startReceiver("fast");
      receivers.push(fast);
      expect((await postJson(`${served.base}/configure`, { ring: 65536, sinks: [{ name: "fast", url: fast.url, batchMs: 20 }] })).status).toBe(200);
      // The handler is made on its first request: make it before the tail asks for it.
      expect((await getStats(served.base)).tails).toBe(0);
      const socket = new WebSocket(`${served.base.replace("http:", "ws:")}/tail`);
      let heard = "";
      const lines = ndjsonLines(200, "tail");
      const heardAll = new Promise<void>((resolve, reject) => {
        socket.on("message", (data) => {
          heard += data.toString();
          if (heard.length >= lines.length) resolve();
        });
        socket.on("error", reject);
        socket.on("close", () => reject(new Error(`the tail closed after ${heard.length} bytes`)));
      });
      await new Promise<void>((resolve, reject) => {
        socket.once("open", () => resolve());
        socket.once("error", reject);
      });
      expect((await getStats(served.base)).tails).toBe(1);
      const response = await fetch(`${served.base}/ingest`, { method: "POST", body: lines });
      expect((await response.json()).lines).toBe(200);
      await heardAll;
      expect(heard).toBe(lines);
      socket.close();
    });

    it("answers 404 to an unknown route and 405 to a wrong method, in JSON", async () => {
      const missing = await fetch(`${served.base}/nowhere`);
      expect({ status: missing.status, body: await missing.json() }).toEqual({
        status: 404,
        body: { error: "logFanout: no route /nowhere (POST /ingest, GET /stats, GET /tail)" },
      });
      const wrong = await fetch(`${served.base}/ingest`);
      expect({ status: wrong.status, allow: wrong.headers.get("allow"), body: await wrong.json() }).toEqual({
        status: 405,
        allow: "POST",
        body: { error: "logFanout: /ingest takes POST, not GET" },
      });
    });
  });
}

describe("the log fan-out (the handler called in this runtime)", () => {
  it("answers an ingest at once when every sink may drop, with each sink's counts", async () => {
    // The receiver holds every answer until the test lets it: an ingest that waited for it would never end.
    const slow = await startReceiver("slow");
    const handler = logFanout({ ring: 65536, sinks: [{ name: "slow", url: slow.url, policy: "drop", batchMs: 20 }] });
    try {
      const all = ndjsonLines(500, "drop-only");
      const response = await handler.fetch(new Request("http://fanout.test/ingest", { method: "POST", body: all }));
      const answer = await response.json();
      expect({ status: response.status, lines: answer.lines, bytes: answer.bytes, confirmed: answer.confirmed }).toEqual({ status: 200, lines: 500, bytes: all.length, confirmed: true });
      expect(answer.sinks).toHaveLength(1);
      expect(answer.sinks[0]).toMatchObject({ name: "slow", policy: "drop", state: "ok", confirmed: null, http: { bytes: 0 } });
      expect(answer.sinks[0].taken + answer.sinks[0].lag + answer.sinks[0].dropped).toBe(all.length);
      slow.release();
      await slow.until(() => slow.text().length + slow.gapTotal() === all.length, "the whole body");
      expect(slow.text() === all).toBe(true);
    } finally {
      await handler.close();
      await slow.close();
    }
  });

  it("keeps every line whole when two ingests stream at once, each body cut mid-line", async () => {
    const fast = await startReceiver("fast");
    const handler = logFanout({ ring: 65536, sinks: [{ name: "fast", url: fast.url, batchBytes: 4096, batchMs: 5 }] });
    try {
      const a = ndjsonLines(1500, "a");
      const b = ndjsonLines(1500, "b");
      const ingest = (text: string, size: number) =>
        handler.fetch(new Request("http://fanout.test/ingest", { method: "POST", body: streamed(text, size), duplex: "half" } as RequestInit)).then((response) => response.json());
      const answers = await Promise.all([ingest(a, 777), ingest(b, 1031)]);
      expect(answers.map((answer) => answer.lines)).toEqual([1500, 1500]);
      const received = fast.text().split("\n").slice(0, -1);
      // Each body's lines arrive whole and in its own order, interleaved only line by line.
      expect(received.filter((line) => line.includes('"tag":"a"')).join("\n") + "\n" === a).toBe(true);
      expect(received.filter((line) => line.includes('"tag":"b"')).join("\n") + "\n" === b).toBe(true);
      expect(received.length).toBe(3000);
    } finally {
      await handler.close();
      await fast.close();
    }
  });

  it("refuses a /tail it cannot serve: neither WebSocket nor SSE asked (406), or an upgrade this runtime cannot make from a fetch handler", async () => {
    const handler = logFanout({ sinks: [{ url: "http://127.0.0.1:9/never-sent" }] });
    try {
      const plain = await handler.fetch(new Request("http://fanout.test/tail"));
      expect({ status: plain.status, body: await plain.json() }).toEqual({
        status: 406,
        body: { error: "logFanout: GET /tail is a WebSocket (Upgrade: websocket) or Server-Sent Events (Accept: text/event-stream)" },
      });
      const upgrade = await handler.fetch(new Request("http://fanout.test/tail", { headers: { upgrade: "websocket", connection: "upgrade" } }));
      const body = await upgrade.json();
      if (testRuntime === "deno") {
        // Deno.upgradeWebSocket exists but refuses a request its server did not receive.
        expect(upgrade.status).toBe(400);
        expect(body.error.startsWith("logFanout: cannot upgrade to a WebSocket: ")).toBe(true);
      } else {
        expect({ status: upgrade.status, body }).toEqual({
          status: 501,
          body: { error: "logFanout: this runtime cannot upgrade to a WebSocket from a fetch handler; ask for Accept: text/event-stream" },
        });
      }
      expect((await (await handler.fetch(new Request("http://fanout.test/stats"))).json()).tails).toBe(0);
    } finally {
      await handler.close();
    }
  });
});

describe("the log fan-out's tail (the handler called in this runtime)", () => {
  it("marks a hole as [-- N bytes missed --] where a Server-Sent Events reader fell behind, and N is exactly what it missed", async () => {
    const fast = await startReceiver("fast");
    const handler = logFanout({ ring: 65536, tailLagLimit: 4096, sinks: [{ name: "fast", url: fast.url, batchMs: 20 }] });
    try {
      const tailResponse = await handler.fetch(new Request("http://fanout.test/tail", { headers: { accept: "text/event-stream" } }));
      expect(tailResponse.headers.get("content-type")).toBe("text/event-stream");
      // The tail is not read while 2000 lines go through: it falls far behind and skips ahead.
      const all = ndjsonLines(2000, "sse");
      const answer = await (await handler.fetch(new Request("http://fanout.test/ingest", { method: "POST", body: all }))).json();
      expect(answer.lines).toBe(2000);
      const reader = tailResponse.body!.pipeThrough(new TextDecoderStream()).getReader();
      let events = "";
      const lastLine = all.slice(all.lastIndexOf("\n", all.length - 2) + 1, -1);
      while (!events.includes(`data: ${lastLine}\n\n`)) {
        const { value, done } = await reader.read();
        if (done) break;
        events += value;
      }
      await reader.cancel();
      // Rebuild the stream from the events: each line, and each hole as its size.
      let position = 0;
      let missed = 0;
      for (const event of events.split("\n\n").filter(Boolean)) {
        const gap = /^event: gap\ndata: \[-- (\d+) bytes missed --\]$/.exec(event);
        if (gap) {
          position += Number(gap[1]);
          missed += Number(gap[1]);
          continue;
        }
        expect(event.startsWith("data: ")).toBe(true);
        const line = `${event.slice(6)}\n`;
        expect(all.slice(position, position + line.length) === line).toBe(true);
        position += line.length;
      }
      expect(position).toBe(all.length);
      expect(missed).toBeGreaterThan(0);
    } finally {
      await handler.close();
      await fast.close();
    }
  });
});
