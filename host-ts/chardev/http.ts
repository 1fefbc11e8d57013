// `http`: a log sink on fetch (docs/http.md). The hub's output is gathered into a batch of
// whole lines and sent as the body of one request when the batch holds `batch-bytes` or
// `batch-ms` have passed since its first byte; at most `concurrency` requests are in flight.
// While the next batch is full and no request may start, writes answer EAGAIN and the watch
// fires when a request is done, so a ring hub's policy for this backend decides what happens
// (block: nothing lost; drop: exact gaps, told to the receiver in `Chardev-Hub-Gap`; evict).
//
// Only fetch, AbortController and setTimeout: the same file runs in Node, Deno, Bun and
// workerd (the edge bundle).

import { ERRNO } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { OptionSchema } from "../option_schema.ts";
import { quoteInput } from "../limits.ts";
import { Chardev, type ChardevContext, type ChardevUser, defineDriver } from "./_chardev.ts";
import { type HubChardev, onEveryHubEvent } from "./hub.ts";
import {
  backoffMs,
  DEFAULT_HTTP_BATCH_BYTES,
  DEFAULT_HTTP_BATCH_MS,
  DEFAULT_HTTP_CONTENT_TYPE,
  DEFAULT_HTTP_RETRY_MAX,
  DEFAULT_HTTP_RETRY_MS,
  HTTP_METHODS,
  httpSettingsFromData,
  type HttpSinkSettings,
  isRetryableStatus,
  MAX_HTTP_BATCH_BYTES,
  MAX_HTTP_CONCURRENCY,
  retryAfterMs,
  shownUrl,
} from "./_http_settings.ts";

export { backoffMs, retryAfterMs, type HttpSinkSettings } from "./_http_settings.ts";

/** The request header that tells a receiver how many bytes of output are missing before this body. */
export const GAP_HEADER = "Chardev-Hub-Gap";
/** One attempt that has no answer after this long is a network error (and is tried again). */
const REQUEST_TIMEOUT_MS = 30_000;
/** How long closing waits for batched output to be sent before it aborts what is in flight. */
const CLOSE_FLUSH_MS = 2000;
/** Bytes of an error answer's body quoted in the sink's error message. */
const ERROR_BODY_QUOTE = 200;
const NEWLINE = 0x0a;

/**
 * `http`'s options (ours).
 *
 * @example The keys a sink takes
 * ```ts
 * httpOptions.map((option) => option.key); // ["url", "method", "headers", "content-type", ...]
 * ```
 */
export const httpOptions: OptionSchema = [
  { key: "url", type: "string", required: true, missing: "http: 'url' is required (url=http://HOST/PATH)", help: "where each batch is sent: an `http:` or `https:` URL (no user or password in it)" },
  { key: "method", type: "string", values: HTTP_METHODS, default: "POST", help: "the request method" },
  { key: "headers", type: "list", help: "a header every request carries, `Name: value` (`headers.0=Authorization: Bearer T`); no CR or LF" },
  { key: "content-type", type: "string", default: DEFAULT_HTTP_CONTENT_TYPE, help: "the bodies' Content-Type (`application/x-ndjson` for JSON lines)" },
  { key: "batch-bytes", type: "size", default: `${DEFAULT_HTTP_BATCH_BYTES / 1024}K`, min: 1, max: MAX_HTTP_BATCH_BYTES, help: "a batch is sent once it holds this many bytes; a body is whole lines (a line longer than this goes alone, in pieces of this size)" },
  { key: "batch-ms", type: "integer", unit: "ms", default: String(DEFAULT_HTTP_BATCH_MS), min: 0, help: "a batch is sent at most this long after its first byte (a line still without its newline waits for it)" },
  { key: "concurrency", type: "integer", default: "1", min: 1, max: MAX_HTTP_CONCURRENCY, help: "requests in flight at once; above 1 the receiver may get bodies out of order" },
  { key: "retry-ms", type: "integer", unit: "ms", default: String(DEFAULT_HTTP_RETRY_MS), min: 0, help: "the first wait before a batch is sent again after a 429, a 5xx or a network error; doubled each time, up to 30 s (a `Retry-After` answer, up to 300 s, takes its place)" },
  { key: "retry-max", type: "integer", default: String(DEFAULT_HTTP_RETRY_MAX), min: 0, max: 1000, help: "retries of one batch before the sink fails (a hard error, as any other 4xx at once)" },
];

/** An `http` sink's counters (`HttpChardev.sinkStats`; a hub's stats row shows them as `sink`). */
export type HttpSinkStats = {
  /** Body bytes the endpoint acknowledged (2xx). */
  bytes: number;
  /** Requests sent, retries included. */
  requests: number;
  retries: number;
  /** Bytes reported missing in `Chardev-Hub-Gap` headers of acknowledged requests. */
  gaps: number;
  /** Of `gaps`, the bytes of partial lines the sink cut around the hub's gaps. */
  trimmed: number;
  /** The last answer's status; 0 for a network error. */
  status: number;
  /** Bytes batched or in flight: taken from the hub, not yet acknowledged. */
  pending: number;
  /** Why the sink failed, once it did. */
  error?: string;
};

/** A body cut from the batch, with the bytes missing before it. */
interface Body {
  readonly data: Uint8Array<ArrayBuffer>;
  readonly gap: number;
  /** The sink's input position just after it: a 2xx for it confirms everything up to here. */
  readonly end: number;
}

/** A body cut and not yet confirmed with every body before it. */
interface Outstanding {
  readonly end: number;
  acknowledged: boolean;
}

/** Someone waiting in `acknowledged` for the sink's input up to `position` to be confirmed. */
interface AckWaiter {
  readonly position: number;
  resolve(): void;
  reject(error: Error): void;
}

/** How one attempt ended: delivered, try again (after `waitMs` if the receiver said), or give up. */
type Outcome = { kind: "ok"; status: number } | { kind: "retry"; status: number; why: string; waitMs: number | null } | { kind: "fatal"; why: string };

/**
 * An `http` sink: the output of the hub it is a backend of, sent in batches of whole lines.
 *
 * @example A ring hub sending its output to a log collector
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * await reg.add("http,id=up,url=http://127.0.0.1:9880/logs,headers.0=Authorization: Bearer T,batch-ms=100");
 * await reg.add("hub,id=hub0,chardevs.0=up,ring=1M,policy.0=drop");
 * (reg.find("up") as HttpChardev).sinkStats(); // { bytes: 0, requests: 0, ... }
 * ```
 */
export class HttpChardev extends Chardev {
  readonly kind = "http";
  /** The batch being filled: the first `#filled` bytes, lines in the order written. */
  readonly #batch: Uint8Array<ArrayBuffer>;
  #filled = 0;
  /** Where the batch's last complete line ends (0: it holds no newline). */
  #linesEnd = 0;
  /** The batch is due: its time is up, or it is full. */
  #due = false;
  #batchTimer: ReturnType<typeof setTimeout> | null = null;
  /** A batch closed by a gap, waiting for a free request (writes answer EAGAIN meanwhile). */
  #sealed: Body | null = null;
  /** Bytes missing before the next body: the hub's gaps and the partial lines cut around them. */
  #gapBefore = 0;
  /** After a gap that did not end at a line start: output up to the next newline is skipped. */
  #seekingLineStart = false;
  #inFlight = 0;
  /** A body was cut since the last write began: room the hub's next watch need not wait for. */
  #roomMade = false;
  /** The attempts under way and the waits between them, aborted by `destroy`. */
  readonly #aborts = new Set<() => void>();
  #failure: string | null = null;
  #closing = false;
  #outageWarned = false;
  /** Resolves a closing sink's wait once nothing is batched or in flight. */
  #flushed: (() => void) | null = null;
  readonly #stopHubEvents: () => void;
  // Counters (sinkStats).
  #bytesAcked = 0;
  #requests = 0;
  #retries = 0;
  #gapsAcked = 0;
  #trimmed = 0;
  #lastStatus = 0;
  /** Body bytes of the requests being sent (retries and their waits included). */
  #inFlightBytes = 0;
  // Positions in the sink's input: the bytes the hub wrote to it plus those it skipped for it.
  /** Everything the hub has handed us or told us is missing. */
  #inputPosition = 0;
  /** Where the last body cut ends: bodies (gap, then data) tile the input up to here. */
  #cutPosition = 0;
  /** Bodies cut, in input order, from the first not yet acknowledged on. */
  readonly #outstanding: Outstanding[] = [];
  /** Every body up to here is acknowledged (2xx). */
  #acknowledgedPosition = 0;
  readonly #ackWaiters = new Set<AckWaiter>();
  /** Why no more input will come (evicted, closed), for waiters beyond what we have. */
  #inputEnded: string | null = null;

  constructor(
    id: string,
    context: ChardevContext,
    readonly settings: HttpSinkSettings,
  ) {
    super(id, context);
    this.#batch = new Uint8Array(settings.batchBytes);
    // A `drop` hub skipping output for us: the next body says how much is missing.
    this.#stopHubEvents = onEveryHubEvent((hub, event) => {
      if (event.type === "gap" && event.backend === this.id && hub.children.includes(this)) this.#gap(hub, event.bytes);
    });
    this.emitEvent(ChrEvent.OPENED);
  }

  /** `http:ORIGIN/PATH` (no query string: it may hold a secret). */
  override get filename(): string {
    return `http:${shownUrl(this.settings.url)}`;
  }

  /** Why the sink failed for good (a 4xx, retries exhausted), or null while it works. */
  get failure(): string | null {
    return this.#failure;
  }

  /**
   * The sink's counters, which a hub's `stats()` rows (and QMP `query-hub`) show as `sink`:
   * `bytes` acknowledged (2xx), `requests` sent (retries included), `retries`, `gaps` (bytes
   * reported missing in `Chardev-Hub-Gap` of acknowledged requests), `trimmed` (of those, the
   * bytes of partial lines the sink cut so that bodies stay whole lines), `status` (the last
   * answer's, 0 for a network error), `pending` (bytes batched or in flight, not yet
   * acknowledged), and `error` once it failed.
   */
  override sinkStats(): HttpSinkStats {
    const stats: HttpSinkStats = {
      bytes: this.#bytesAcked,
      requests: this.#requests,
      retries: this.#retries,
      gaps: this.#gapsAcked,
      trimmed: this.#trimmed,
      status: this.#lastStatus,
      pending: this.#filled + (this.#sealed?.data.length ?? 0) + this.#inFlightBytes,
    };
    if (this.#failure !== null) stats.error = this.#failure;
    return stats;
  }

  /**
   * The sink's input position: bytes the hub wrote to it plus bytes it skipped for it (a
   * `drop` hub's gaps). For a sink attached before the hub's first write, the hub's stream
   * position.
   */
  get inputPosition(): number {
    return this.#inputPosition;
  }

  /**
   * How far the sink's input is confirmed: every byte before it was in a body the destination
   * answered 2xx, or is missing and announced in such a body's `Chardev-Hub-Gap`. A gap with
   * no output after it (nothing batched or in flight) counts too: none of it will ever be sent.
   */
  get confirmedPosition(): number {
    if (this.#outstanding.length === 0 && this.#filled === 0 && this.#sealed === null) return this.#inputPosition;
    return this.#acknowledgedPosition;
  }

  /**
   * Resolves once `confirmedPosition` reaches `position` (the destination acknowledged the
   * sink's input up to there); rejects once it cannot: the sink failed (its `failure`), was
   * closed, or was evicted or detached before its input got there. `signal` withdraws the wait (rejects).
   *
   * @example Wait until a collector holds everything the hub wrote so far
   * ```ts
   * // `up` from reg.add("http,id=up,url=http://127.0.0.1:9880/logs,batch-ms=50"), a backend of
   * // a ring hub the frontend has just written to (the edge bundle keeps this comment: no import here).
   * declare const up: HttpChardev;
   * await up.acknowledged(up.inputPosition, AbortSignal.timeout(5000));
   * ```
   */
  acknowledged(position: number, signal?: AbortSignal): Promise<void> {
    if (this.confirmedPosition >= position) return Promise.resolve();
    const refusal = this.#ackRefusal(position) ?? (signal?.aborted ? this.#withdrawn(signal) : null);
    if (refusal !== null) return Promise.reject(refusal);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#ackWaiters.delete(waiter);
        reject(this.#withdrawn(signal!));
      };
      const waiter: AckWaiter = {
        position,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#ackWaiters.add(waiter);
    });
  }

  /** Why a wait for `position` can never end well, or null while it may. */
  #ackRefusal(position: number): Error | null {
    if (this.#failure !== null) return new Error(this.#failure);
    if (this.#aborted) return new Error(`${this.#request()}: closed before its input up to ${position} was acknowledged`);
    if (this.#inputEnded !== null && position > this.#inputPosition) return new Error(`${this.#request()}: ${this.#inputEnded} at input position ${this.#inputPosition}, before ${position}`);
    return null;
  }

  #withdrawn(signal: AbortSignal): Error {
    const reason: unknown = signal.reason;
    return reason instanceof Error ? reason : new Error(`${this.#request()}: the wait for acknowledgement was withdrawn`);
  }

  /** Resolves the waiters the confirmed position reached, rejects those that can no longer be. */
  #settleWaiters(): void {
    if (this.#ackWaiters.size === 0) return;
    const confirmed = this.confirmedPosition;
    for (const waiter of [...this.#ackWaiters]) {
      const refusal = confirmed >= waiter.position ? null : this.#ackRefusal(waiter.position);
      if (confirmed < waiter.position && refusal === null) continue;
      this.#ackWaiters.delete(waiter);
      if (refusal === null) waiter.resolve();
      else waiter.reject(refusal);
    }
  }

  /** A hub let go of us for stalling: no more input comes, so waits beyond it cannot end well. */
  override evicted(reason: string): void {
    this.#inputEnded = `evicted (${quoteInput(reason)})`;
    this.#settleWaiters();
  }

  /** Detached from its holder: no more input comes until one attaches again. */
  override detachUser(user: ChardevUser): void {
    const wasHolder = this.user === user;
    super.detachUser(user);
    if (!wasHolder) return;
    this.#inputEnded ??= "detached";
    this.#settleWaiters();
  }

  override attachUser(user: ChardevUser): void {
    super.attachUser(user);
    this.#inputEnded = null;
  }

  // ---- taking output ----

  /** Takes what fits in the batch (whole lines once it is nearly full); -EAGAIN while it cannot take any. */
  protected writeOut(data: Uint8Array): number {
    if (this.#failure !== null || this.#closing) return -ERRNO.EIO;
    this.#roomMade = false;
    if (this.#sealed !== null) return -ERRNO.EAGAIN;
    let skipped = 0;
    if (this.#seekingLineStart) {
      const newline = data.indexOf(NEWLINE);
      skipped = newline < 0 ? data.length : newline + 1;
      this.#gapBefore += skipped;
      this.#trimmed += skipped;
      if (newline >= 0) this.#seekingLineStart = false;
      this.#inputPosition += skipped;
      if (skipped === data.length) {
        this.#settleWaiters();
        return skipped;
      }
    }
    const rest = skipped === 0 ? data : data.subarray(skipped);
    const room = this.#batch.length - this.#filled;
    let take = rest.length;
    if (take > room) {
      // Not all fits: take whole lines only, so the line in progress is not split between
      // bodies; unless the batch holds no newline at all (a line longer than batch-bytes).
      const lastNewline = room > 0 ? rest.lastIndexOf(NEWLINE, room - 1) : -1;
      take = lastNewline >= 0 ? lastNewline + 1 : this.#linesEnd === 0 ? room : 0;
      this.#due = true;
    }
    if (take > 0) {
      if (this.#filled === 0) this.#startBatchTimer();
      // `data` views the core's memory, which the next write reuses: copy.
      this.#batch.set(take === rest.length ? rest : rest.subarray(0, take), this.#filled);
      const newline = rest.lastIndexOf(NEWLINE, take - 1);
      if (newline >= 0) this.#linesEnd = this.#filled + newline + 1;
      this.#filled += take;
      if (this.#filled === this.#batch.length) this.#due = true;
      this.#inputPosition += take;
    }
    if (this.#due) this.#pump();
    const taken = skipped + take;
    return taken > 0 ? taken : -ERRNO.EAGAIN;
  }

  #startBatchTimer(): void {
    if (this.#batchTimer !== null) clearTimeout(this.#batchTimer);
    this.#batchTimer = setTimeout(() => {
      this.#batchTimer = null;
      this.#due = true;
      this.#pump();
    }, this.settings.batchMs);
  }

  /**
   * The hub skipped `bytes` of output for us (its `drop` policy), just before it hands us what
   * follows. What is batched goes out first, without the partial line that would run into the
   * hole; the next body carries the gap, and starts at a line start.
   */
  #gap(hub: HubChardev, bytes: number): void {
    if (this.#failure !== null || this.#closing || bytes <= 0) return;
    const partial = this.#filled - this.#linesEnd;
    this.#filled = this.#linesEnd;
    if (this.#filled > 0 && this.#sealed === null) {
      this.#sealed = this.#cut(this.#filled);
    } else if (this.#filled === 0) {
      // Nothing left of this batch: its timer must not hurry the next one.
      if (this.#batchTimer !== null) clearTimeout(this.#batchTimer);
      this.#batchTimer = null;
      this.#due = false;
    }
    // (A batch with a body sealed already cannot take output, so the hub cannot have served us.)
    this.#gapBefore += partial + bytes;
    this.#inputPosition += bytes;
    this.#trimmed += partial;
    this.#seekingLineStart = this.#seekingLineStart || !resumesAtLineStart(hub, this.id);
    this.#pump();
    this.#settleWaiters();
  }

  /** The first `end` bytes of the batch as a body (with the gap before them); the rest moves up. */
  #cut(end: number): Body {
    const body = this.#body(this.#batch.slice(0, end));
    this.#batch.copyWithin(0, end, this.#filled);
    this.#filled -= end;
    // What is left is the part of a line after the last newline: it holds none.
    this.#linesEnd = 0;
    this.#due = false;
    if (this.#batchTimer !== null) clearTimeout(this.#batchTimer);
    this.#batchTimer = null;
    if (this.#filled > 0) this.#startBatchTimer();
    return body;
  }

  /** A body of `data` after the gap before it, placed in the input and booked as outstanding. */
  #body(data: Uint8Array<ArrayBuffer>): Body {
    const end = this.#cutPosition + this.#gapBefore + data.length;
    const body: Body = { data, gap: this.#gapBefore, end };
    this.#gapBefore = 0;
    this.#cutPosition = end;
    this.#outstanding.push({ end, acknowledged: false });
    return body;
  }

  /** `body` was answered 2xx: the confirmed position moves over every body acknowledged in a row. */
  #acknowledge(body: Body): void {
    const entry = this.#outstanding.find((candidate) => candidate.end === body.end && !candidate.acknowledged);
    if (entry) entry.acknowledged = true;
    while (this.#outstanding.length > 0 && this.#outstanding[0].acknowledged) this.#acknowledgedPosition = this.#outstanding.shift()!.end;
    this.#settleWaiters();
  }

  /** Starts requests while some may start and a body is ready; fires the watch when room was made. */
  #pump(): void {
    let madeRoom = false;
    while (this.#failure === null && this.#inFlight < this.settings.concurrency) {
      let body: Body;
      if (this.#sealed !== null) {
        body = this.#sealed;
        this.#sealed = null;
      } else if (this.#due || this.#closing) {
        // A due batch sends its whole lines; a full one with no newline is a piece of a long
        // line; closing sends everything.
        const end = this.#linesEnd > 0 ? this.#linesEnd : this.#filled === this.#batch.length || this.#closing ? this.#filled : 0;
        if (end > 0) body = this.#cut(end);
        else if (this.#closing && this.#gapBefore > 0) {
          // A gap with no output after it yet: an empty body still tells the receiver.
          body = this.#body(new Uint8Array(0));
        } else break;
      } else break;
      madeRoom = true;
      void this.#send(body);
    }
    if (this.#closing && this.#inFlight === 0 && this.#filled === 0 && this.#sealed === null) this.#flushed?.();
    if (madeRoom) {
      this.#roomMade = true;
      if (this.watchesWaiting) this.fireWatches();
    }
  }

  // ---- requests ----

  /** Sends one body until it is acknowledged, retrying as the settings say; a final failure fails the sink. */
  async #send(body: Body): Promise<void> {
    this.#inFlight++;
    this.#inFlightBytes += body.data.length;
    try {
      for (let retry = 0; ; retry++) {
        if (this.#failure !== null || this.#aborted) return;
        this.#requests++;
        if (retry > 0) this.#retries++;
        const outcome = await this.#attempt(body);
        if (this.#aborted) return;
        if (outcome.kind === "ok") {
          this.#lastStatus = outcome.status;
          this.#bytesAcked += body.data.length;
          this.#gapsAcked += body.gap;
          this.#outageWarned = false;
          this.#acknowledge(body);
          return;
        }
        if (outcome.kind === "fatal") {
          this.#fail(`${this.#request()} ${outcome.why}`);
          return;
        }
        this.#lastStatus = outcome.status;
        if (retry >= this.settings.retryMax) {
          this.#fail(`${this.#request()} ${outcome.why}; gave up after ${retry} ${retry === 1 ? "retry" : "retries"}`);
          return;
        }
        if (!this.#outageWarned) {
          this.#outageWarned = true;
          this.context.warn(`${this.#request()} ${outcome.why}; sending again (at most ${this.settings.retryMax} retries)`);
        }
        await this.#wait(outcome.waitMs ?? backoffMs(this.settings.retryMs, retry + 1));
      }
    } finally {
      this.#inFlight--;
      this.#inFlightBytes -= body.data.length;
      if (!this.#aborted) this.#pump();
    }
  }

  /** `http: 'ID': POST http://HOST/PATH` for messages. */
  #request(): string {
    return `http: '${this.id}': ${this.settings.method} ${shownUrl(this.settings.url)}`;
  }

  /** Set once destroy aborted what was in flight: nothing is sent after. */
  #aborted = false;

  async #attempt(body: Body): Promise<Outcome> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, REQUEST_TIMEOUT_MS);
    const abort = () => controller.abort();
    this.#aborts.add(abort);
    try {
      const headers = new Headers(this.settings.headers as [string, string][]);
      headers.set("Content-Type", this.settings.contentType);
      if (body.gap > 0) headers.set(GAP_HEADER, String(body.gap));
      const response = await fetch(this.settings.url, { method: this.settings.method, headers, body: body.data, signal: controller.signal });
      const status = response.status;
      const statusText = `answered ${status}${response.statusText ? ` ${response.statusText}` : ""}`;
      if (status >= 200 && status <= 299) {
        // Read to the end, so the connection can be kept for the next request.
        await response.arrayBuffer();
        return { kind: "ok", status };
      }
      const quoted = await bodyQuote(response);
      const why = quoted === "" ? statusText : `${statusText}: ${quoted}`;
      if (isRetryableStatus(status)) return { kind: "retry", status, why, waitMs: retryAfterMs(response.headers.get("Retry-After"), Date.now()) };
      this.#lastStatus = status;
      return { kind: "fatal", why };
    } catch (error) {
      const why = timedOut ? `got no answer in ${REQUEST_TIMEOUT_MS / 1000} s` : `failed: ${networkErrorText(error)}`;
      return { kind: "retry", status: 0, why, waitMs: null };
    } finally {
      clearTimeout(timer);
      this.#aborts.delete(abort);
    }
  }

  /** Waits `ms` before a retry; destroy ends the wait at once. */
  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#aborts.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#aborts.add(done);
    });
  }

  /**
   * A hard error (the faults rule): the sink stops sending, tells the operator, and tells its
   * holder at once (`reportFailure`: a hub closes it for itself and reports `error`,
   * HUB_BACKEND_ERROR, without waiting for its next write to get EIO); every later write
   * answers EIO. A writer waiting on our watch is woken to see it; waits for acknowledgement
   * are rejected.
   */
  #fail(message: string): void {
    if (this.#failure !== null) return;
    this.#failure = quoteInput(message);
    this.context.warn(this.#failure);
    if (this.#batchTimer !== null) clearTimeout(this.#batchTimer);
    this.#batchTimer = null;
    this.#filled = 0;
    this.#linesEnd = 0;
    this.#sealed = null;
    for (const abort of [...this.#aborts]) abort();
    this.#flushed?.();
    this.#settleWaiters();
    this.reportFailure(ERRNO.EIO);
    this.fireWatches();
  }

  /**
   * Fires when a request is done and the batch has room again; at once when a body went out
   * since the write that was refused (room the hub could not know of), or once failed (the
   * next write reports the failure).
   */
  override addWatch(callback: () => void): (() => void) | null {
    if (this.#failure !== null || this.#closing || this.#roomMade) {
      this.#roomMade = false;
      const timer = setTimeout(callback, 0);
      return () => clearTimeout(timer);
    }
    const cancel = this.addToWatchList(callback);
    return () => void cancel();
  }

  /**
   * Sends what is batched (its partial last line too) and waits, at most CLOSE_FLUSH_MS, for
   * the requests in flight; then aborts what is left.
   */
  override async destroy(): Promise<void> {
    this.#stopHubEvents();
    if (!this.#closing) {
      this.#closing = true;
      this.#pump();
      if (this.#failure === null && (this.#inFlight > 0 || this.#filled > 0 || this.#sealed !== null)) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          this.#flushed = resolve;
          timer = setTimeout(resolve, CLOSE_FLUSH_MS);
        });
        clearTimeout(timer);
        const left = this.#filled + (this.#sealed?.data.length ?? 0);
        if (this.#inFlight > 0 || left > 0) this.context.warn(`${this.#request()}: closed with output not acknowledged (${this.#inFlight} requests in flight, ${left} bytes not sent)`);
      }
    }
    this.#aborted = true;
    this.#settleWaiters();
    for (const abort of [...this.#aborts]) abort();
    if (this.#batchTimer !== null) clearTimeout(this.#batchTimer);
    this.#batchTimer = null;
    if (this.beOpen) this.emitEvent(ChrEvent.CLOSED);
    await super.destroy();
  }
}

/**
 * Whether the hub's output resumes at a line start for backend `id` just after a gap: the byte
 * before its cursor (the head less its lag) is a newline. A drop resumes at a line start or an
 * ESC (the ring's safe boundary); where the ring no longer holds that byte, we cannot tell: no.
 */
function resumesAtLineStart(hub: HubChardev, id: string): boolean {
  try {
    const row = hub.stats().find((candidate) => candidate.id === id);
    if (!row) return false;
    const before = hub.history(Math.max(0, hub.history(0, 1).written - row.lag - 1), 1);
    if (before.written - row.lag <= 0) return true;
    return before.data.length === 1 && before.data[0] === NEWLINE;
  } catch {
    // Called from inside the hub's drain, which must not throw: when in doubt, seek.
    return false;
  }
}

/** The start of an error answer's body, for the message (a receiver often says why there). */
async function bodyQuote(response: Response): Promise<string> {
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    // Only the start is read: an error page may be large.
    while (length <= ERROR_BODY_QUOTE * 4) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      length += value.length;
    }
  } catch {
    // A body that breaks off says what it said so far.
  } finally {
    reader.cancel().catch(() => {});
  }
  const joined = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    joined.set(chunk, at);
    at += chunk.length;
  }
  const text = new TextDecoder().decode(joined).replace(/\s+/g, " ").trim();
  return text.length > ERROR_BODY_QUOTE ? `${text.slice(0, ERROR_BODY_QUOTE)}...` : text;
}

/** A network error's cause as fetch reports it (`ECONNREFUSED`, a TLS failure), bounded. */
function networkErrorText(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const code = typeof cause?.code === "string" ? cause.code : "";
  const message = error instanceof Error ? error.message : String(error);
  const detail = typeof cause?.message === "string" && cause.message !== message ? `${message} (${cause.message})` : message;
  return quoteInput(code !== "" && !detail.includes(code) ? `${code}: ${detail}` : detail);
}

/**
 * The `http` backend kind (built in, in every entry; see docs/http.md).
 *
 * @example Register it in a registry that lacks it
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * reg.registerDriver(httpDriver); // already there in the built-in registries
 * ```
 */
export const httpDriver = defineDriver({
  type: "http",
  options: httpOptions,
  open(id, data, context) {
    return new HttpChardev(id, context, httpSettingsFromData(data));
  },
});
