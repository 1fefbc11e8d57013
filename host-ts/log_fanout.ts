// A log fan-out to deploy at the edge: a `fetch(request, env, ctx)` handler (a Cloudflare module
// Worker, `Deno.serve`, Bun.serve, anything that speaks Request/Response) that streams the lines
// POSTed to /ingest through one ring hub to an `http` sink per destination, each with its own
// policy, so one slow destination falls behind alone (`drop`, with the exact bytes it missed) or
// is let go (`evict`) instead of stalling the others. /stats reads every sink's counters and
// /tail follows the stream live. The hub is made on the first request and lives as long as the
// handler (in a Worker: the isolate).

import type { HubBackendStats, HubEvent } from "./chardev/hub.ts";
import { HubChardev } from "./chardev/hub.ts";
import type { HubPolicy } from "./chardev/_hub_options.ts";
import type { HttpChardev } from "./chardev/http.ts";
import { ChardevError } from "./errors.ts";
import type { Frontend } from "./frontend.ts";
import { LogTail, missedLine } from "./_log_tail.ts";
import { OutputQueue } from "./output_queue.ts";
import { ChardevRegistry } from "./registry.ts";
import { upgradeWebSocket } from "./runtime/web_socket_upgrade.ts";

/** One destination of a log fan-out: an `http` sink (see docs/http.md for its keys). */
export interface LogFanoutSink {
  /** Where batches of lines are sent (`http:` or `https:`). */
  url: string;
  /** Its name in /stats and /ingest answers. @default "sink" and its index */
  name?: string;
  /**
   * `block`: nothing lost, the ingest waits for it; `drop`: falls behind alone and skips
   * ahead, its gap counted exactly; `evict`: blocks, then is let go once stalled `stallMs`.
   * @default "block"
   */
  policy?: HubPolicy;
  /** @default "POST" */
  method?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** A batch is sent once it holds this many bytes (`batch-bytes`). @default 65536 */
  batchBytes?: number;
  /** ...or this long after its first byte (`batch-ms`). @default 200 */
  batchMs?: number;
  /** Requests in flight at once (`concurrency`). @default 1 */
  concurrency?: number;
  /** First retry backoff (`retry-ms`). @default the http sink's */
  retryMs?: number;
  /** Retry limit (`retry-max`). @default the http sink's */
  retryMax?: number;
  /** A `drop` sink further behind than this skips ahead. @default the ring size */
  lagLimit?: number;
  /** An `evict` sink stalled this long is let go. @default 5000 */
  stallMs?: number;
}

/** Options of `logFanout`. */
export interface LogFanoutOptions {
  sinks: LogFanoutSink[];
  /** The broadcast ring (a power of two): what a `drop` sink or a tail may fall behind by. @default 1048576 */
  ring?: number;
  /**
   * The core already compiled, where WASM cannot be compiled at run time (workerd, Cloudflare):
   * the bundle's `core.wasm` imported as a module.
   */
  wasmModule?: WebAssembly.Module;
  /** How far behind a /tail reader may fall before it skips ahead. @default 65536 */
  tailLagLimit?: number;
  /** The longest an /ingest waits for its `block` and `evict` sinks to confirm. @default 30000 */
  ackTimeoutMs?: number;
  /** The hub's lines an operator should hear of (a sink that failed). @default console.error */
  onWarning?: (line: string) => void;
}

/** The part of a Worker's `ctx` the handler uses. */
export interface LogFanoutContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** What `logFanout` returns: a module Worker's default export, or `Deno.serve`'s handler. */
export interface LogFanoutHandler {
  fetch(request: Request, env?: unknown, ctx?: LogFanoutContext): Promise<Response>;
  /** Lets the sinks send what they hold (bounded), then ends the hub. */
  close(): Promise<void>;
}

/** One sink's counters, as /stats and /ingest give them. */
export interface LogFanoutSinkStats {
  name: string;
  /** The sink's URL without credentials or query. */
  url: string;
  policy: HubPolicy;
  /** `ok`, or `evicted` (stalled) or `failed` (a hard error: a 4xx, retries exhausted): out for good. */
  state: "ok" | "evicted" | "failed";
  /** Why it is out. */
  reason?: string;
  /** Bytes of the stream the hub handed it. */
  taken: number;
  /** Bytes it skipped (drop): its gaps, summed. */
  dropped: number;
  /** Gaps it had. */
  gaps: number;
  /** Bytes written to the hub that it has not taken yet. */
  lag: number;
  /** The http sink's own counters (bytes acknowledged, requests, retries, last status, ...). */
  http: Record<string, unknown>;
}

const DEFAULT_RING = 1 << 20;
const DEFAULT_TAIL_LAG_LIMIT = 64 * 1024;
const DEFAULT_ACK_TIMEOUT_MS = 30_000;
/** The most a `close` (or a Worker's `waitUntil`) waits for the sinks to send what they hold. */
const CLOSE_FLUSH_MS = 10_000;
const HUB_ID = "logs";
const NEWLINE = 0x0a;

interface SinkState {
  name: string;
  url: string;
  policy: HubPolicy;
  chardev: HttpChardev;
  out: { state: "evicted" | "failed"; reason: string } | null;
  /**
   * Called once `out` is set: the sink is no longer waited for. (Listeners, not one promise:
   * workerd lets a promise settle only in the request that made it, so each wait makes its own.)
   */
  onGone: Set<() => void>;
  gaps: number;
  /** Its last hub row while attached (an evicted sink keeps its last one). */
  lastRow: HubBackendStats | null;
}

interface FanoutState {
  registry: ChardevRegistry;
  hub: HubChardev;
  frontend: Frontend;
  queue: OutputQueue;
  sinks: SinkState[];
  lines: number;
  /** Tails made so far (names them) and open now. */
  tailsMade: number;
  tailsOpen: number;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function errorAnswer(status: number, message: string): Response {
  return json({ error: message }, status);
}

/** A `-chardev` value: QEMU's keyval doubles a comma to keep it. */
function optionValue(value: string | number): string {
  return String(value).replaceAll(",", ",,");
}

/** The sink as an `http` chardev option string. */
function sinkSpec(id: string, sink: LogFanoutSink): string {
  const parts = [`http,id=${id}`, `url=${optionValue(sink.url)}`];
  if (sink.method) parts.push(`method=${optionValue(sink.method)}`);
  Object.entries(sink.headers ?? {}).forEach(([name, value], i) => parts.push(`headers.${i}=${optionValue(`${name}: ${value}`)}`));
  if (sink.batchBytes !== undefined) parts.push(`batch-bytes=${sink.batchBytes}`);
  if (sink.batchMs !== undefined) parts.push(`batch-ms=${sink.batchMs}`);
  if (sink.concurrency !== undefined) parts.push(`concurrency=${sink.concurrency}`);
  if (sink.retryMs !== undefined) parts.push(`retry-ms=${sink.retryMs}`);
  if (sink.retryMax !== undefined) parts.push(`retry-max=${sink.retryMax}`);
  return parts.join(",");
}

/** Origin and path only: a token in the URL's user part or query stays out of /stats. */
function publicUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}

/** The http sink's own counters (`HttpChardev.sinkStats`, which hub rows also show as `sink`). */
function httpCounters(chardev: HttpChardev): Record<string, unknown> {
  return { ...chardev.sinkStats() };
}

function ignore(): void {}

function countLines(bytes: Uint8Array): number {
  let lines = 0;
  for (let at = bytes.indexOf(NEWLINE); at !== -1; at = bytes.indexOf(NEWLINE, at + 1)) lines++;
  return lines;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a, 0);
  joined.set(b, a.length);
  return joined;
}

/**
 * A log fan-out handler: `POST /ingest` (NDJSON or text lines) goes to every sink, `GET /stats`
 * gives each sink's counters, `GET /tail` follows the stream (WebSocket in workerd and Deno, or
 * Server-Sent Events with `Accept: text/event-stream` anywhere). See docs/edge.md.
 *
 * @example Two destinations, one of which may fall behind, and their counters
 * ```ts
 * import { logFanout } from "chardev-hub/edge";
 * const handler = logFanout({
 *   ring: 1 << 20,
 *   sinks: [
 *     { name: "archive", url: "https://archive.example/logs", policy: "block" },
 *     { name: "search", url: "https://search.example/bulk", policy: "drop", batchMs: 500 },
 *   ],
 * });
 * const stats = await handler.fetch(new Request("https://fanout.example/stats"));
 * await stats.json(); // { ring: 1048576, bytes: 0, lines: 0, tails: 0, sinks: [{ name: "archive", ... }, ...] }
 * await handler.close();
 * ```
 */
export function logFanout(options: LogFanoutOptions): LogFanoutHandler {
  return new LogFanout(options);
}

class LogFanout implements LogFanoutHandler {
  readonly #options: LogFanoutOptions;
  #state: Promise<FanoutState> | null = null;

  constructor(options: LogFanoutOptions) {
    if (!Array.isArray(options.sinks) || options.sinks.length === 0) throw new ChardevError("INVALID_VALUE", "logFanout: 'sinks' needs at least one sink");
    const names = new Set<string>();
    options.sinks.forEach((sink, i) => {
      const name = sink.name ?? `sink${i}`;
      if (!/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(name)) throw new ChardevError("INVALID_VALUE", `logFanout: sink name '${name.slice(0, 64)}' must be a letter then letters, digits, '_', '.' or '-' (64 at most)`);
      if (names.has(name)) throw new ChardevError("INVALID_VALUE", `logFanout: two sinks are named '${name}'`);
      names.add(name);
    });
    this.#options = options;
  }

  async fetch(request: Request, _env?: unknown, ctx?: LogFanoutContext): Promise<Response> {
    const { pathname } = new URL(request.url);
    const route = ROUTES[pathname];
    if (!route) return errorAnswer(404, `logFanout: no route ${pathname.slice(0, 200)} (POST /ingest, GET /stats, GET /tail)`);
    if (request.method !== route.method) {
      return new Response(JSON.stringify({ error: `logFanout: ${pathname} takes ${route.method}, not ${request.method.slice(0, 20)}` }), {
        status: 405,
        headers: { "content-type": "application/json", allow: route.method },
      });
    }
    let state: FanoutState;
    try {
      state = await this.#ready();
    } catch (error) {
      return errorAnswer(500, `logFanout: cannot start: ${String((error as Error)?.message ?? error).slice(0, 500)}`);
    }
    if (pathname === "/ingest") return this.#ingest(state, request, ctx);
    if (pathname === "/stats") return json(this.#stats(state));
    return this.#tail(state, request);
  }

  async close(): Promise<void> {
    const pending = this.#state;
    this.#state = null;
    if (!pending) return;
    const state = await pending.catch(() => null);
    if (!state) return;
    await this.#settled(state, state.queue.writtenBytes, true, CLOSE_FLUSH_MS);
    state.frontend.detach();
    await state.registry.close();
  }

  /** The hub and its sinks, made once (again after a failed start). */
  #ready(): Promise<FanoutState> {
    if (!this.#state) {
      this.#state = this.#start();
      this.#state.catch(() => (this.#state = null));
    }
    return this.#state;
  }

  async #start(): Promise<FanoutState> {
    const options = this.#options;
    const registry = await ChardevRegistry.create({ qemuCompat: false, wasmModule: options.wasmModule, onWarning: options.onWarning });
    try {
      const hub = (await registry.add({ id: HUB_ID, backend: { type: "hub", data: { ring: options.ring ?? DEFAULT_RING } } })) as HubChardev;
      const sinks: SinkState[] = [];
      for (const [i, sink] of options.sinks.entries()) {
        const name = sink.name ?? `sink${i}`;
        const chardev = (await registry.add(sinkSpec(name, sink))) as HttpChardev;
        const policy = sink.policy ?? "block";
        hub.attachBackend(chardev, { policy, lagLimit: sink.lagLimit, stallMs: sink.stallMs });
        sinks.push({ name, url: publicUrl(sink.url), policy, chardev, out: null, onGone: new Set(), gaps: 0, lastRow: null });
      }
      const byName = new Map(sinks.map((sink) => [sink.name, sink]));
      hub.onEvent((event: HubEvent) => {
        const sink = byName.get(event.backend);
        if (!sink) return;
        if (event.type === "gap") sink.gaps++;
        if (event.type === "evict" && !sink.out) {
          sink.out = { state: "evicted", reason: event.reason };
          for (const gone of [...sink.onGone]) gone();
        }
        if (event.type === "error" && !sink.out) {
          // A sink's hard error (a 4xx, retries exhausted) is final: let it go so it is no
          // longer waited for, and keep its last counters.
          sink.lastRow = hub.stats().find((row) => row.id === sink.name) ?? sink.lastRow;
          const error = httpCounters(sink.chardev).error;
          sink.out = { state: "failed", reason: typeof error === "string" ? error : `write failed with ${event.errno}` };
          for (const gone of [...sink.onGone]) gone();
          queueMicrotask(() => {
            try {
              hub.detachBackend(sink.name);
            } catch {
              // Gone already.
            }
          });
        }
      });
      const frontend = registry.attach(HUB_ID, { canRead: () => 0, read() {}, event() {} });
      const queue = new OutputQueue(frontend, { errorFor: (errno) => new ChardevError("OPEN_FAILED", `logFanout: the hub refused a write with ${errno}`) });
      return { registry, hub, frontend, queue, sinks, lines: 0, tailsMade: 0, tailsOpen: 0 };
    } catch (error) {
      await registry.close();
      throw error;
    }
  }

  /** Refreshes each sink's last row from the hub (an evicted one keeps what it had). */
  #rows(state: FanoutState): void {
    const rows = new Map(state.hub.stats().map((row) => [row.id, row]));
    for (const sink of state.sinks) sink.lastRow = rows.get(sink.name) ?? sink.lastRow;
  }

  #sinkStats(sink: SinkState): LogFanoutSinkStats {
    const row = sink.lastRow;
    const stats: LogFanoutSinkStats = {
      name: sink.name,
      url: sink.url,
      policy: sink.policy,
      state: sink.out?.state ?? "ok",
      taken: row?.bytesOut ?? 0,
      dropped: row?.bytesDropped ?? 0,
      gaps: sink.gaps,
      lag: sink.out ? 0 : row?.lag ?? 0,
      http: httpCounters(sink.chardev),
    };
    if (sink.out) stats.reason = sink.out.reason;
    return stats;
  }

  #stats(state: FanoutState): { ring: number; bytes: number; lines: number; tails: number; sinks: LogFanoutSinkStats[] } {
    this.#rows(state);
    return {
      ring: state.hub.options.ring,
      bytes: state.queue.writtenBytes,
      lines: state.lines,
      tails: state.tailsOpen,
      sinks: state.sinks.map((sink) => this.#sinkStats(sink)),
    };
  }

  /**
   * Whether `sink` has everything up to stream position `end` confirmed (answered 2xx by its
   * destination, or skipped and announced as a gap), or is out. A sink joins at the start of
   * the stream, so its input position is the stream position.
   */
  #confirmed(sink: SinkState, end: number): boolean {
    return sink.out !== null || sink.chardev.confirmedPosition >= end;
  }

  /**
   * Waits until the sinks (with `everySink`, drop ones too) confirmed the stream up to `end`,
   * or `timeoutMs` passed: each sink's acknowledgement (`HttpChardev.acknowledged`) or its
   * going out (evicted, failed), whichever comes first.
   */
  async #settled(state: FanoutState, end: number, everySink: boolean, timeoutMs: number): Promise<boolean> {
    const waitedFor = state.sinks.filter((sink) => everySink || sink.policy !== "drop");
    state.hub.flush();
    // One signal ends every sink's wait: at the deadline, or once all are done (withdrawing
    // the waits of sinks that went out instead).
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), timeoutMs);
    try {
      await Promise.all(waitedFor.map((sink) => this.#sinkSettled(sink, end, stop.signal)));
    } finally {
      clearTimeout(timer);
      stop.abort();
    }
    this.#rows(state);
    return waitedFor.every((sink) => this.#confirmed(sink, end));
  }

  /** Resolves once `sink` confirmed the stream up to `end`, went out, or `signal` ended the wait. */
  #sinkSettled(sink: SinkState, end: number, signal: AbortSignal): Promise<void> {
    if (sink.out) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        sink.onGone.delete(done);
        resolve();
      };
      sink.onGone.add(done);
      sink.chardev.acknowledged(end, signal).then(done, done);
    });
  }

  /**
   * What the drop sinks still hold is sent after the answer; a Worker is kept alive for it.
   * (Made here, not in `#ingest`: a closure made there and kept for the wait would keep the
   * ingest's scope, its body among it, for as long; Bun's collector keeps all of it.)
   */
  #flushAfterAnswer(state: FanoutState, end: number, ctx: LogFanoutContext | undefined): void {
    const rest = this.#settled(state, end, true, CLOSE_FLUSH_MS);
    if (ctx?.waitUntil) ctx.waitUntil(rest);
    else rest.catch(ignore);
  }

  async #ingest(state: FanoutState, request: Request, ctx: LogFanoutContext | undefined): Promise<Response> {
    if (!request.body) return errorAnswer(400, "logFanout: POST /ingest needs a body of lines");
    const reader = request.body.getReader();
    let partial: Uint8Array = new Uint8Array(0);
    let bytes = 0;
    let lines = 0;
    // Whole lines only reach the hub, so a sink that skips ahead lands on a line start and
    // lines of concurrent ingests never mix.
    const send = async (chunk: Uint8Array) => {
      const count = countLines(chunk);
      bytes += chunk.length;
      lines += count;
      state.lines += count;
      await state.queue.write(chunk);
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const lastNewline = value.lastIndexOf(NEWLINE);
        if (lastNewline === -1) {
          partial = concat(partial, value);
          continue;
        }
        const whole = value.subarray(0, lastNewline + 1);
        await send(partial.length ? concat(partial, whole) : whole);
        partial = value.slice(lastNewline + 1);
      }
      // The body's last line may lack its newline: it is still a line.
      if (partial.length) await send(concat(partial, new Uint8Array([NEWLINE])));
    } catch (error) {
      // The hub refusing is ours (500); anything else came from reading the body (400). The
      // whole lines before it went on; a partial one did not.
      const message = String((error as Error)?.message ?? error).slice(0, 300);
      if (error instanceof ChardevError) return errorAnswer(500, message);
      return errorAnswer(400, `logFanout: reading the body failed after ${lines} lines: ${message}`);
    }
    const end = state.queue.writtenBytes;
    const confirmed = await this.#settled(state, end, false, this.#options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS);
    this.#flushAfterAnswer(state, end, ctx);
    this.#rows(state);
    return json({
      lines,
      bytes,
      confirmed,
      sinks: state.sinks.map((sink) => ({ ...this.#sinkStats(sink), confirmed: sink.policy === "drop" ? null : this.#confirmed(sink, end) })),
    }, confirmed ? 200 : 504);
  }

  #tail(state: FanoutState, request: Request): Response {
    const wantsWebSocket = request.headers.get("upgrade")?.toLowerCase() === "websocket";
    const wantsEvents = (request.headers.get("accept") ?? "").includes("text/event-stream");
    if (!wantsWebSocket && !wantsEvents) return errorAnswer(406, "logFanout: GET /tail is a WebSocket (Upgrade: websocket) or Server-Sent Events (Accept: text/event-stream)");
    if (wantsWebSocket) {
      let upgraded;
      try {
        upgraded = upgradeWebSocket(request);
      } catch (error) {
        // Deno refuses a request that did not come from its server, or a bad handshake.
        return errorAnswer(400, `logFanout: cannot upgrade to a WebSocket: ${String((error as Error)?.message ?? error).slice(0, 300)}`);
      }
      if (!upgraded) return errorAnswer(501, "logFanout: this runtime cannot upgrade to a WebSocket from a fetch handler; ask for Accept: text/event-stream");
      const tail = this.#newTail(state);
      const { socket } = upgraded;
      const stop = () => {
        tail.close();
      };
      socket.addEventListener("close", stop);
      socket.addEventListener("error", stop);
      (async () => {
        await upgraded.opened;
        for (let item = await tail.next(); item; item = await tail.next()) {
          socket.send("lines" in item ? item.lines : `${missedLine(item.missed)}\n`);
        }
      })().catch(stop);
      return upgraded.response;
    }
    const tail = this.#newTail(state);
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const item = await tail.next();
        if (!item) return controller.close();
        if ("missed" in item) return controller.enqueue(encoder.encode(`event: gap\ndata: ${missedLine(item.missed)}\n\n`));
        const lines = item.lines.slice(0, -1).split("\n");
        controller.enqueue(encoder.encode(lines.map((line) => `data: ${line.replace(/\r$/, "")}\n\n`).join("")));
      },
      cancel: () => tail.close(),
    });
    return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-store" } });
  }

  #newTail(state: FanoutState): { next(): ReturnType<LogTail["next"]>; close(): void } {
    state.tailsMade++;
    state.tailsOpen++;
    const tail = new LogTail(state.hub, `tail${state.tailsMade}`, this.#options.tailLagLimit ?? DEFAULT_TAIL_LAG_LIMIT);
    let open = true;
    return {
      next: () => tail.next(),
      close: () => {
        if (!open) return;
        open = false;
        state.tailsOpen--;
        tail.close();
      },
    };
  }
}

const ROUTES: Record<string, { method: string }> = {
  "/ingest": { method: "POST" },
  "/stats": { method: "GET" },
  "/tail": { method: "GET" },
};
