// The `http` sink behind a ring hub, against real HTTP receivers on 127.0.0.1 (node:http
// servers in this process): a fast one, a slow one (500 ms an answer), one that answers 503
// twice, one that refuses connections, one that answers 400. The device writes line after
// line and, when the hub is full, waits on its watch.

import * as http from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { type ChardevRegistry as Registry, ChardevRegistry, type Frontend, type HubChardev, type HubEvent } from "../host-ts/mod.ts";
import { GAP_HEADER, HttpChardev } from "../host-ts/chardev/http.ts";
import { backoffMs, retryAfterMs } from "../host-ts/chardev/_http_settings.ts";
import { hubCommands, hubEventToQmp } from "../host-ts/chardev/hub_qmp.ts";
import { ChardevRegistry as EdgeRegistry, webRuntime } from "../host-ts/mod_web.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { freePort } from "./_ports.ts";

/** What a receiver answers to its Nth request (0-based). */
interface Answer {
  status: number;
  headers?: Record<string, string>;
  /** Answer after this long (the slow receiver). */
  delayMs?: number;
  /** Answer once this settles (and `delayMs` passed): the test decides when. */
  after?: Promise<unknown>;
  body?: string;
}

/** One request a receiver accepted (answered 2xx). */
interface Accepted {
  body: string;
  gap: number;
  contentType: string | undefined;
  token: string | undefined;
}

/** A local HTTP receiver; `until` waits (event-driven, bounded) for what it has received. */
class Receiver {
  readonly accepted: Accepted[] = [];
  /** Every request, answered or not. */
  attempts = 0;
  /** Requests being answered now, and the most there ever were at once. */
  open = 0;
  mostOpen = 0;
  #waiters = new Set<() => void>();
  private constructor(
    readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(answer: (attempt: number) => Answer): Promise<Receiver> {
    let receiver: Receiver | null = null;
    const server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const self = receiver!;
        const reply = answer(self.attempts++);
        self.mostOpen = Math.max(self.mostOpen, ++self.open);
        const respond = () => {
          self.open--;
          if (reply.status >= 200 && reply.status <= 299) {
            self.accepted.push({
              body: Buffer.concat(chunks).toString("utf8"),
              gap: Number(request.headers[GAP_HEADER.toLowerCase()] ?? 0),
              contentType: request.headers["content-type"],
              token: request.headers["x-token"] as string | undefined,
            });
          }
          response.writeHead(reply.status, reply.headers ?? {});
          response.end(reply.body ?? "");
          self.#changed();
        };
        const answerNow = () => (reply.delayMs ? setTimeout(respond, reply.delayMs) : respond());
        if (reply.after) void reply.after.then(answerNow);
        else answerNow();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    receiver = new Receiver(server, (server.address() as { port: number }).port);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/ingest`;
  }

  /** Every accepted body, in the order accepted. */
  get text(): string {
    return this.accepted.map((request) => request.body).join("");
  }

  #changed(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** Resolves once `done()` holds after a request; fails after `timeoutMs`. */
  until(done: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`receiver on port ${this.port}: timed out waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  async stop(): Promise<void> {
    (this.server as { closeAllConnections?: () => void }).closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Numbered lines of some length; each line says which it is, so order and wholeness can be checked. */
function makeLines(count: number, width = 40): string[] {
  return Array.from({ length: count }, (_, i) => `#${String(i).padStart(6, "0")} ${"x".repeat(width)}\n`);
}

/** Writes each line as its own write; on EAGAIN waits on the watch, as a device does. */
async function writeLines(fe: Frontend, lines: readonly string[], yieldEvery = 50): Promise<number> {
  let refusals = 0;
  for (let i = 0; i < lines.length; i++) {
    const data = bytes(lines[i]);
    let at = 0;
    while (at < data.length) {
      const taken = fe.write(data.subarray(at));
      if (taken > 0) {
        at += taken;
        continue;
      }
      expect(fe.lastError).toBe("EAGAIN");
      refusals++;
      await new Promise<void>((resolve) => {
        if (fe.addWatch(resolve) === 0) setTimeout(resolve, 1);
      });
    }
    // Let timers and answers run between writes now and then, as a device's output arrives over time.
    if (i % yieldEvery === yieldEvery - 1) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return refusals;
}

/** Resolves with the first hub event `match` accepts; fails after `timeoutMs`. */
function nextEvent(hub: HubChardev, match: (event: HubEvent) => boolean, timeoutMs = 20_000): Promise<HubEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error("timed out waiting for a hub event"));
    }, timeoutMs);
    const stop = hub.onEvent((event) => {
      if (!match(event)) return;
      clearTimeout(timer);
      stop();
      resolve(event);
    });
  });
}

let reg: Registry;
let warnings: string[];
let receivers: Receiver[];

beforeEach(async () => {
  warnings = [];
  receivers = [];
  reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: (line) => warnings.push(line) });
});
afterEach(async () => {
  await reg.close();
  for (const receiver of receivers) await receiver.stop();
});

async function receiver(answer: (attempt: number) => Answer = () => ({ status: 200 })): Promise<Receiver> {
  const started = await Receiver.start(answer);
  receivers.push(started);
  return started;
}

const sink = (id: string) => reg.find(id) as HttpChardev;
const hubOf = (id: string) => reg.find(id) as HubChardev;
const rowOf = (hub: HubChardev, id: string) => hub.stats().find((row) => row.id === id)!;

describe("http sink behind a ring hub", () => {
  it("the fast receiver gets every line exactly once, in order, with the configured headers", async () => {
    const fast = await receiver();
    await reg.add(`http,id=up,url=${fast.url},batch-ms=20,headers.0=X-Token: s3cret`);
    await reg.add("hub,id=hub0,chardevs.0=up,ring=1M");
    const fe = reg.attach("hub0", new FeHandler());
    const lines = makeLines(3000);
    await writeLines(fe, lines);
    const all = lines.join("");
    await fast.until(() => fast.text.length >= all.length, "every line");
    expect(fast.text).toBe(all);
    expect(fast.accepted.every((request) => request.contentType === "text/plain; charset=utf-8" && request.token === "s3cret")).toBe(true);
    expect(fast.accepted.every((request) => request.body.endsWith("\n") && request.gap === 0)).toBe(true);
    // The receiver records a body before its answer reaches the sink.
    await sink("up").acknowledged(all.length, AbortSignal.timeout(20_000));
    expect(sink("up").sinkStats()).toMatchObject({ bytes: all.length, requests: fast.attempts, retries: 0, gaps: 0, status: 200, pending: 0 });
    // The same counters in the hub's row for the sink, and in QMP query-hub.
    expect(rowOf(hubOf("hub0"), "up").sink).toEqual(sink("up").sinkStats());
    const queryHub = hubCommands(reg).find(([name]) => name === "query-hub")![1];
    const answer = queryHub({ id: "hub0" }) as { backends: { id: string; sink?: Record<string, unknown> }[] };
    expect(answer.backends.find((backend) => backend.id === "up")!.sink).toMatchObject({ bytes: all.length, requests: fast.attempts, retries: 0, gaps: 0, status: 200 });
  });

  it("many small writes become few requests, each at most batch-bytes of whole lines", async () => {
    const fast = await receiver();
    await reg.add(`http,id=up,url=${fast.url},batch-ms=50,batch-bytes=16K`);
    await reg.add("hub,id=hub0,chardevs.0=up,ring=1M");
    const fe = reg.attach("hub0", new FeHandler());
    const lines = makeLines(5000, 20);
    await writeLines(fe, lines, 100);
    const all = lines.join("");
    await fast.until(() => fast.text.length >= all.length, "every line");
    expect(fast.text).toBe(all);
    expect(fast.attempts).toBeLessThan(lines.length / 10);
    expect(fast.accepted.every((request) => request.body.length <= 16 * 1024 && request.body.endsWith("\n"))).toBe(true);
    await sink("up").acknowledged(all.length, AbortSignal.timeout(20_000));
    expect(sink("up").sinkStats().requests).toBe(fast.attempts);
  });

  it("a line longer than batch-bytes goes in pieces of batch-bytes that hold nothing else, its end starting the next body", async () => {
    const fast = await receiver();
    await reg.add(`http,id=up,url=${fast.url},batch-ms=20,batch-bytes=100`);
    await reg.add("hub,id=hub0,chardevs.0=up,ring=64K");
    const fe = reg.attach("hub0", new FeHandler());
    const long = `${"L".repeat(250)}\n`;
    const all = `short one\n${long}short two\n`;
    await writeLines(fe, ["short one\n", long, "short two\n"]);
    await fast.until(() => fast.text.length >= all.length, "everything");
    expect(fast.text).toBe(all);
    expect(fast.accepted.map((request) => request.body)).toEqual(["short one\n", "L".repeat(100), "L".repeat(100), `${"L".repeat(50)}\nshort two\n`]);
  });

  it("a slow receiver under drop gets whole lines minus exactly the gaps it is told, and never holds the fast one back", async () => {
    const fast = await receiver();
    const slow = await receiver(() => ({ status: 200, delayMs: 500 }));
    await reg.add(`http,id=quick,url=${fast.url},batch-ms=20`);
    await reg.add(`http,id=lazy,url=${slow.url},batch-ms=20,batch-bytes=4K`);
    await reg.add("hub,id=hub0,chardevs.0=quick,chardevs.1=lazy,ring=64K,policy.1=drop,lag-limit.1=16K");
    const hub = hubOf("hub0");
    const fe = reg.attach("hub0", new FeHandler());
    const lines = makeLines(8000, 30);
    const all = lines.join("");
    await writeLines(fe, lines);
    await fast.until(() => fast.text.length >= all.length, "every line at the fast receiver");
    expect(fast.text).toBe(all);
    // The fast one has it all while the slow one is still behind (it takes 500 ms an answer):
    // output the hub holds for it, a batch not sent, or a request not answered yet.
    expect(rowOf(hub, "lazy").lag > 0 || sink("lazy").sinkStats().pending > 0 || slow.open > 0).toBe(true);
    // Then the slow one catches up with what is left of the stream.
    await sink("lazy").acknowledged(all.length, AbortSignal.timeout(30_000));
    expect(rowOf(hub, "lazy").lag).toBe(0);
    expect(sink("lazy").sinkStats()).toMatchObject({ pending: 0, requests: slow.accepted.length });
    const stats = sink("lazy").sinkStats();
    expect(rowOf(hub, "lazy").bytesDropped).toBeGreaterThan(0);
    const reportedGaps = slow.accepted.reduce((sum, request) => sum + request.gap, 0);
    expect(reportedGaps).toBe(stats.gaps);
    // Every gap the hub made is reported, plus the partial lines the sink cut around them.
    expect(stats.gaps).toBe(rowOf(hub, "lazy").bytesDropped + stats.trimmed);
    // Exact accounting: what arrived and what was reported missing is the whole stream.
    expect(slow.text.length + reportedGaps).toBe(all.length);
    // Every body is whole lines of the stream, in order; a gap lies only between bodies.
    let expectedAt = 0;
    for (const request of slow.accepted) {
      expect(request.body.endsWith("\n")).toBe(true);
      expectedAt += request.gap;
      expect(all.slice(expectedAt, expectedAt + request.body.length)).toBe(request.body);
      expect(expectedAt === 0 || all[expectedAt - 1] === "\n").toBe(true);
      expectedAt += request.body.length;
    }
    expect(expectedAt).toBe(all.length);
  });

  it("under drop, output that resumes at an escape sequence mid-line is skipped to the next line start and counted in the gap", async () => {
    const slow = await receiver(() => ({ status: 200, delayMs: 300 }));
    await reg.add(`http,id=lazy,url=${slow.url},batch-ms=20,batch-bytes=16K`);
    await reg.add("hub,id=hub0,chardevs.0=lazy,ring=128K,policy.0=drop,lag-limit.0=32K");
    const hub = hubOf("hub0");
    const fe = reg.attach("hub0", new FeHandler());
    // An ESC every 3 bytes of a 6 KiB line: the hub's safe boundary after a drop is a line
    // start only when it falls in the last 3 bytes of a line (odds about 1 in 2000).
    const lines = Array.from({ length: 200 }, (_, i) => `#${String(i).padStart(6, "0")} ${"\x1b[m".repeat(2000)}\n`);
    const all = lines.join("");
    await writeLines(fe, lines);
    await sink("lazy").acknowledged(all.length, AbortSignal.timeout(30_000));
    expect(rowOf(hub, "lazy").lag).toBe(0);
    expect(sink("lazy").sinkStats()).toMatchObject({ pending: 0, requests: slow.accepted.length });
    const stats = sink("lazy").sinkStats();
    expect(rowOf(hub, "lazy").bytesDropped).toBeGreaterThan(0);
    expect(stats.trimmed).toBeGreaterThan(0);
    const reportedGaps = slow.accepted.reduce((sum, request) => sum + request.gap, 0);
    expect(reportedGaps).toBe(stats.gaps);
    expect(stats.gaps).toBe(rowOf(hub, "lazy").bytesDropped + stats.trimmed);
    let expectedAt = 0;
    for (const request of slow.accepted) {
      expectedAt += request.gap;
      expect(expectedAt === 0 || all[expectedAt - 1] === "\n").toBe(true);
      expect(all.slice(expectedAt, expectedAt + request.body.length)).toBe(request.body);
      expect(request.body.endsWith("\n")).toBe(true);
      expectedAt += request.body.length;
    }
    expect(expectedAt).toBe(all.length);
  });

  it("a slow receiver under block holds the device back (EAGAIN, then the watch) and loses nothing", async () => {
    const slow = await receiver(() => ({ status: 200, delayMs: 100 }));
    await reg.add(`http,id=up,url=${slow.url},batch-ms=20,batch-bytes=1K`);
    await reg.add("hub,id=hub0,chardevs.0=up,ring=4K");
    const fe = reg.attach("hub0", new FeHandler());
    const lines = makeLines(300);
    const all = lines.join("");
    const refusals = await writeLines(fe, lines);
    expect(refusals).toBeGreaterThan(0);
    await slow.until(() => slow.text.length >= all.length, "every line");
    expect(slow.text).toBe(all);
    expect(slow.accepted.every((request) => request.gap === 0 && request.body.length <= 1024)).toBe(true);
  });

  it("a receiver that stops answering is evicted under evict; the fast one gets everything", async () => {
    const fast = await receiver();
    const stuck = await receiver(() => ({ status: 200, delayMs: 5000 }));
    await reg.add(`http,id=quick,url=${fast.url},batch-ms=20`);
    await reg.add(`http,id=stuck,url=${stuck.url},batch-ms=20,batch-bytes=1K`);
    await reg.add("hub,id=hub0,chardevs.0=quick,chardevs.1=stuck,ring=64K,policy.1=evict,stall-ms.1=300");
    const hub = hubOf("hub0");
    const evicted = nextEvent(hub, (event) => event.type === "evict");
    const fe = reg.attach("hub0", new FeHandler());
    const lines = makeLines(3000);
    const all = lines.join("");
    await writeLines(fe, lines);
    expect(await evicted).toEqual({ type: "evict", backend: "stuck", reason: "stalled for more than 300 ms" });
    await fast.until(() => fast.text.length >= all.length, "every line at the fast receiver");
    expect(fast.text).toBe(all);
    expect(hub.stats().map((row) => row.id)).toEqual(["quick"]);
  });

  it("closing sends what is batched, a last line without its newline too", async () => {
    const fast = await receiver();
    await reg.add(`http,id=up,url=${fast.url},batch-ms=60000`);
    await reg.add("hub,id=hub0,chardevs.0=up,ring=64K");
    const fe = reg.attach("hub0", new FeHandler());
    await writeLines(fe, ["first\n", "second\n", "no newline yet"]);
    // Let the hub hand the output to the sink (a drain), then close.
    (hubOf("hub0")).flush();
    expect(sink("up").sinkStats().pending).toBe(27);
    expect(fast.attempts).toBe(0);
    await reg.close();
    expect(fast.text).toBe("first\nsecond\nno newline yet");
  });

  it("concurrency=N keeps at most N requests in flight, and every line arrives once", async () => {
    const slow = await receiver(() => ({ status: 200, delayMs: 150 }));
    await reg.add(`http,id=up,url=${slow.url},batch-ms=20,batch-bytes=1K,concurrency=3`);
    await reg.add("hub,id=hub0,chardevs.0=up,ring=64K");
    const fe = reg.attach("hub0", new FeHandler());
    const lines = makeLines(600);
    await writeLines(fe, lines);
    const total = lines.join("").length;
    await slow.until(() => slow.text.length >= total, "every line");
    expect(slow.mostOpen).toBeLessThanOrEqual(3);
    expect(slow.mostOpen).toBeGreaterThan(1);
    // Bodies may arrive out of order; each is whole lines, and together they are every line once.
    const received = slow.accepted.flatMap((request) => request.body.split(/(?<=\n)/));
    expect(received.sort()).toEqual([...lines].sort());
  });

  it("a receiver that answers 503 twice gets everything after two retries (Retry-After honoured)", async () => {
    const flaky = await receiver((attempt) => (attempt < 2 ? { status: 503, headers: { "Retry-After": "0" }, body: "busy" } : { status: 200 }));
    await reg.add(`http,id=up,url=${flaky.url},batch-ms=20,retry-ms=60000`);
    await reg.add("hub,id=hub0,chardevs.0=up,ring=1M");
    const fe = reg.attach("hub0", new FeHandler());
    const lines = makeLines(500);
    const all = lines.join("");
    await writeLines(fe, lines);
    // retry-ms is a minute: only Retry-After: 0 lets this finish in time.
    await flaky.until(() => flaky.text.length >= all.length, "every line after the retries");
    expect(flaky.text).toBe(all);
    await sink("up").acknowledged(all.length, AbortSignal.timeout(20_000));
    expect(sink("up").sinkStats()).toMatchObject({ retries: 2, requests: flaky.attempts, status: 200, bytes: all.length });
    expect(warnings.some((line) => line.includes("503") && line.includes("sending again"))).toBe(true);
  });

  it("a receiver that refuses connections fails its sink after retry-max retries: a hub error, the others unaffected", async () => {
    const fast = await receiver();
    const port = await freePort();
    await reg.add(`http,id=good,url=${fast.url},batch-ms=20`);
    await reg.add(`http,id=dead,url=http://127.0.0.1:${port}/ingest,batch-ms=20,retry-ms=10,retry-max=2`);
    await reg.add("hub,id=hub0,chardevs.0=good,chardevs.1=dead,ring=1M,policy.1=drop");
    const hub = hubOf("hub0");
    const fe = reg.attach("hub0", new FeHandler());
    const failed = nextEvent(hub, (event) => event.type === "error" && event.backend === "dead");
    const first = makeLines(200);
    await writeLines(fe, first);
    // The hub hears of it when the sink gives up, not at its next write to the sink.
    expect(await failed).toEqual({ type: "error", backend: "dead", errno: "EIO" });
    expect(sink("dead").failure).not.toBe(null);
    const rest = makeLines(200).map((line) => line.replace("#", "+"));
    await writeLines(fe, rest);
    expect(sink("dead").failure).toMatch(new RegExp(`^http: 'dead': POST http://127\\.0\\.0\\.1:${port}/ingest failed: .*; gave up after 2 retries$`));
    expect(sink("dead").sinkStats()).toMatchObject({ requests: 3, retries: 2, status: 0, bytes: 0 });
    expect(rowOf(hub, "dead").open).toBe(false);
    const all = [...first, ...rest].join("");
    await fast.until(() => fast.text.length >= all.length, "every line at the good receiver");
    expect(fast.text).toBe(all);
  });

  it("a 400 answer is a hard error at once, naming the status and the URL", async () => {
    const refusing = await receiver(() => ({ status: 400, body: "no such stream" }));
    await reg.add(`http,id=up,url=${refusing.url}?key=hidden,batch-ms=20`);
    await reg.add("hub,id=hub0,chardevs.0=up,ring=1M");
    const hub = hubOf("hub0");
    const fe = reg.attach("hub0", new FeHandler());
    const failed = nextEvent(hub, (event) => event.type === "error");
    await writeLines(fe, ["one\n"]);
    expect(await failed).toEqual({ type: "error", backend: "up", errno: "EIO" });
    // Later output does not reach it, and reports nothing more.
    await writeLines(fe, ["two\n"]);
    const message = `http: 'up': POST ${refusing.url} answered 400 Bad Request: no such stream`;
    expect(sink("up").failure).toBe(message);
    expect(sink("up").sinkStats()).toMatchObject({ requests: 1, retries: 0, status: 400, error: message });
    expect(refusing.attempts).toBe(1);
    expect(warnings).toContain(message);
    expect(warnings.some((line) => line.includes("hidden"))).toBe(false);
  });
});

describe("http sink acknowledgements and prompt failure", () => {
  it("pending counts a body in flight until its answer, and acknowledged(position) resolves only after the 2xx", async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const firstArrived = new Promise<void>((resolve) => (arrived = resolve));
    const gated = await receiver((attempt) => {
      if (attempt === 0) arrived();
      return { status: 200, after: released };
    });
    await reg.add(`http,id=up,url=${gated.url},batch-ms=20`);
    await reg.add("hub,id=hub0,chardevs.0=up,ring=64K");
    const fe = reg.attach("hub0", new FeHandler());
    await writeLines(fe, ["one\n", "two\n"]);
    let acknowledgedAt: number | null = null;
    const firstAcknowledged = sink("up").acknowledged(8).then(() => (acknowledgedAt = sink("up").sinkStats().bytes));
    await firstArrived;
    // The first body (8 bytes) is in flight, unanswered: held, not acknowledged.
    expect(sink("up").sinkStats()).toMatchObject({ pending: 8, bytes: 0, requests: 1 });
    expect(sink("up").inputPosition).toBe(8);
    expect(sink("up").confirmedPosition).toBe(0);
    await writeLines(fe, ["three\n"]);
    // Batched behind it: 6 more held.
    expect(sink("up").sinkStats()).toMatchObject({ pending: 14, bytes: 0 });
    expect(acknowledgedAt).toBe(null);
    release();
    await firstAcknowledged;
    expect(acknowledgedAt).toBeGreaterThanOrEqual(8);
    await sink("up").acknowledged(14);
    expect(sink("up").sinkStats()).toMatchObject({ pending: 0, bytes: 14, requests: 2 });
    expect(sink("up").confirmedPosition).toBe(14);
    expect(gated.text).toBe("one\ntwo\nthree\n");
  });

  it("a wait for acknowledgement is rejected with the sink's failure, and one withdrawn by its signal is rejected at once", async () => {
    const refusing = await receiver(() => ({ status: 400, body: "bad batch" }));
    await reg.add(`http,id=up,url=${refusing.url},batch-ms=20`);
    await reg.add("hub,id=hub0,chardevs.0=up,ring=64K");
    const fe = reg.attach("hub0", new FeHandler());
    const withdraw = new AbortController();
    const withdrawn = sink("up").acknowledged(4, withdraw.signal).then(() => "resolved", (error: Error) => error.message);
    withdraw.abort(new Error("test: withdrawn"));
    expect(await withdrawn).toBe("test: withdrawn");
    const waited = sink("up").acknowledged(4).then(() => "resolved", (error: Error) => error.message);
    await writeLines(fe, ["one\n"]);
    expect(await waited).toBe(`http: 'up': POST ${refusing.url} answered 400 Bad Request: bad batch`);
    // Later waits are refused at once, with the same reason.
    await expect(sink("up").acknowledged(1)).rejects.toThrow("answered 400");
  });

  it("a wait for input the sink never got is rejected once its hub lets go of it", async () => {
    const fast = await receiver();
    await reg.add(`http,id=up,url=${fast.url},batch-ms=20`);
    await reg.add("hub,id=hub0,chardevs.0=up,ring=64K");
    const fe = reg.attach("hub0", new FeHandler());
    await writeLines(fe, ["one\n"]);
    const beyond = sink("up").acknowledged(100).then(() => "resolved", (error: Error) => error.message);
    await sink("up").acknowledged(4);
    hubOf("hub0").detachBackend("up");
    expect(await beyond).toBe(`http: 'up': POST ${fast.url}: detached at input position 4, before 100`);
  });

  it("a 400 answer to a batch sent by batch-ms while the device writes nothing more is a hub error (HUB_BACKEND_ERROR) without another write", async () => {
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    const refusing = await receiver(() => {
      arrived();
      return { status: 400, body: "no such stream" };
    });
    const fast = await receiver();
    await reg.add(`http,id=up,url=${refusing.url},batch-ms=50`);
    await reg.add(`http,id=other,url=${fast.url},batch-ms=20`);
    await reg.add("hub,id=hub0,chardevs.0=up,chardevs.1=other,ring=64K");
    const hub = hubOf("hub0");
    const fe = reg.attach("hub0", new FeHandler());
    const failed = nextEvent(hub, (event) => event.type === "error");
    // One write, taken whole by both sinks; the device then stays silent.
    expect(fe.write(bytes("only line\n"))).toBe(10);
    await requestArrived;
    const event = await failed;
    expect(event).toEqual({ type: "error", backend: "up", errno: "EIO" });
    expect(hubEventToQmp("hub0", event)).toEqual(["HUB_BACKEND_ERROR", { hub: "hub0", chardev: "up", errno: "EIO" }]);
    expect(rowOf(hub, "up").open).toBe(false);
    // The other sink is untouched and gets the line.
    await sink("other").acknowledged(10);
    expect(fast.text).toBe("only line\n");
  });
});

describe("http sink in the edge entry", () => {
  it("the edge entry's registry (web runtime, no host) has the http kind, and it sends", async () => {
    const fast = await receiver();
    const edge = await EdgeRegistry.create({ runtime: webRuntime, qemuCompat: false });
    try {
      await edge.add(`http,id=up,url=${fast.url},batch-ms=10`);
      await edge.add("hub,id=hub0,chardevs.0=up,ring=4K");
      const fe = edge.attach("hub0", new FeHandler());
      await writeLines(fe, ["from the edge\n"]);
      await fast.until(() => fast.text === "from the edge\n", "the line");
    } finally {
      await edge.close();
    }
  });
});

describe("http sink options", () => {
  it("a sink without url, with a URL of another scheme, or with a broken header is refused with a clear text", async () => {
    expect(await errorOf(() => reg.add("http,id=h"))).toMatchObject({ code: "MISSING_PARAMETER", message: "http: 'url' is required (url=http://HOST/PATH)" });
    expect(await errorOf(() => reg.add("http,id=h,url=ftp://127.0.0.1/x"))).toMatchObject({ code: "INVALID_VALUE", message: "http: 'url' must be an http: or https: URL, not 'ftp:'" });
    expect((await errorOf(() => reg.add("http,id=h,url=not a url"))).message).toBe("http: 'url' is not a URL: 'not a url'");
    expect((await errorOf(() => reg.add("http,id=h,url=http://u:p@127.0.0.1/x"))).message).toBe("http: 'url' must not hold a user or password; send them with headers.N=Authorization: ...");
    expect((await errorOf(() => reg.add("http,id=h,url=http://127.0.0.1/x,headers.0=NoColon"))).message).toBe("http: 'headers.0' must be 'Name: value', not 'NoColon'");
    expect((await errorOf(() => reg.add("http,id=h,url=http://127.0.0.1/x,headers.0=Bad Name: v"))).message).toBe("http: 'headers.0' has an invalid header name 'Bad Name'");
    expect((await errorOf(() => reg.add("http,id=h,url=http://127.0.0.1/x,headers.0=X-A: ok,headers.1=X-B: a\r\nEvil: 1"))).message).toBe("http: 'headers.1' (X-B): a header value must not hold CR, LF or NUL");
    expect((await errorOf(() => reg.add("http,id=h,url=http://127.0.0.1/x,headers.0=Content-Length: 5"))).message).toBe("http: 'headers.0': header 'Content-Length' is set by the sink itself");
    expect((await errorOf(() => reg.add("http,id=h,url=http://127.0.0.1/x,method=GET"))).message).toBe("http: 'method' must be one of POST, PUT, PATCH, not 'GET'");
    expect((await errorOf(() => reg.add("http,id=h,url=http://127.0.0.1/x,concurrency=0"))).message).toBe("http: 'concurrency' must be at least 1, not 0");
    expect((await errorOf(() => reg.add({ id: "h", backend: { type: "http", data: {} } }))).message).toBe("Parameter 'backend.data.url' is missing");
    expect(reg.query()).toEqual([]);
  });

  it("a sink made over QMP takes its headers as a list and shows its URL without the query", async () => {
    const added = await reg.add({ id: "h", backend: { type: "http", data: { url: "https://logs.example/in?token=t", headers: ["X-A: 1"], "batch-bytes": 1024 } } });
    expect(added).toBeInstanceOf(HttpChardev);
    expect((added as HttpChardev).settings).toMatchObject({ method: "POST", headers: [["X-A", "1"]], batchBytes: 1024, batchMs: 200, concurrency: 1, retryMs: 500, retryMax: 10 });
    expect(added.filename).toBe("http:https://logs.example/in");
  });

  it("Retry-After is read as seconds or as an HTTP date, and the backoff doubles up to 30 s", () => {
    expect(retryAfterMs("3", 0)).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfterMs("soon", 0)).toBe(null);
    expect(retryAfterMs(null, 0)).toBe(null);
    expect([1, 2, 3, 10].map((retry) => backoffMs(500, retry))).toEqual([500, 1000, 2000, 30_000]);
  });
});
