// One output queue: bytes on their way to a chardev through its frontend, written as fast as
// the chardev takes them. A short write leaves the rest at the head; a refusal (0, or -1 with
// EAGAIN) waits for the chardev's watch and then offers the same bytes again, so nothing is
// lost, sent twice or reordered. The streams `Hub`'s writable, the CLI's device bridge and the
// QMP monitor's output all go through it.

import { ChardevError } from "./errors.ts";
import { RerunLatch } from "./_rerun_latch.ts";

/**
 * A target that refused bytes yet offered no watch (`addWatch` returned 0: as far as it knows
 * nothing is blocked, e.g. a hub whose blocked backend just left) is tried again after this
 * long. A rare fallback so the bytes are not stranded, not a poll: every other wait is on a watch.
 */
const RETRY_WITHOUT_WATCH_MS = 5;

/**
 * What an `OutputQueue` writes to: the shape of `Frontend` (QEMU's qemu_chr_fe_write and
 * qemu_chr_fe_add_watch).
 */
export interface OutputTarget {
  /** Bytes taken (0 counts as a refusal), or -1 with `lastError` set (`"EAGAIN"`: wait for the watch). */
  write(data: Uint8Array): number;
  /**
   * Several buffers in order, as `Frontend.writev`: bytes taken (a prefix of their
   * concatenation) or -1 with `lastError` set. Without it a batch goes one buffer at a time.
   */
  writev?(chunks: readonly Uint8Array[]): number;
  /** Errno name of the last failed write. */
  readonly lastError: string | null;
  /** Calls `callback` once when a blocked write may go through; 0 when nothing is blocked, else an id. */
  addWatch(callback: () => void): number;
  /** Cancels a watch `addWatch` returned. */
  removeWatch(id: number): void;
}

/** Options of an `OutputQueue`. */
export interface OutputQueueOptions {
  /**
   * Called after every round of writing (one the owner asked for, or one a watch or the
   * fallback timer started): the place to let a held-back source read again.
   */
  onFlushed?: () => void;
  /**
   * The target failed with an error other than EAGAIN (its peer is gone): everything queued
   * (`dropped` bytes) was discarded, as QEMU's devices drop output nobody will read.
   */
  onFailed?: (errno: string, dropped: number) => void;
  /**
   * The reason a pending `write` promise rejects with when the target fails.
   * @default a ChardevError `OPEN_FAILED`, "chardev: write failed with ERRNO"
   */
  errorFor?: (errno: string) => Error;
}

/** What `push` and `write` take: one buffer, or a batch of them written as their concatenation. */
export type OutputChunk = Uint8Array | readonly Uint8Array[];

function isBatch(chunk: OutputChunk): chunk is readonly Uint8Array[] {
  return Array.isArray(chunk);
}

/** Bytes in `chunk`. */
export function outputChunkLength(chunk: OutputChunk): number {
  if (!isBatch(chunk)) return chunk.length;
  let length = 0;
  for (let i = 0; i < chunk.length; i++) length += chunk[i].length;
  return length;
}

/** What is left of a batch once `count` of its bytes were written: never starting with an empty buffer. */
function batchAfter(parts: readonly Uint8Array[], count: number): readonly Uint8Array[] {
  let first = 0;
  let left = count;
  while (first < parts.length && left >= parts[first].length) left -= parts[first++].length;
  const rest = parts.slice(first);
  if (left > 0) rest[0] = rest[0].subarray(left);
  return rest;
}

interface QueuedChunk {
  /** What is still to write of it (a batch: what is left of it, cut as it is written). */
  bytes: OutputChunk;
  /** Its bytes still to write. */
  length: number;
  /** Set once it is done: null written, else why it never will be. */
  outcome: Error | null | undefined;
  /** Settles the promise `write` made, once it made one. */
  settle: ((error?: Error) => void) | undefined;
}

/**
 * Bytes queued toward one chardev frontend, in order, written as the chardev takes them and
 * otherwise held until its watch fires. Re-entry (a write that makes the chardev report an
 * event whose handler queues more) only asks the running round to go on.
 *
 * @example Queue output for a hub whose only backend is a ringbuf
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create({ qemuCompat: false });
 * await reg.add("ringbuf,id=log,size=1024");
 * await reg.add("hub,id=hub0,chardevs.0=log");
 * const fe = reg.attach("hub0", { canRead: () => 0, read() {}, event() {} });
 * const queue = new OutputQueue(fe);
 * queue.push(new TextEncoder().encode("boot log\n"));
 * await queue.drained();
 * reg.ringbufRead("log", 1024); // "boot log\n"
 * ```
 */
export class OutputQueue {
  #target: OutputTarget | null;
  readonly #options: OutputQueueOptions;
  readonly #chunks: QueuedChunk[] = [];
  #queuedBytes = 0;
  #writtenBytes = 0;
  #watchId = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** A flush reached from inside one (a watch firing as it is added) makes another pass instead. */
  readonly #flushes = new RerunLatch();
  #closed = false;
  /** Bumped by `clear`: a write in progress then belonged to output that is gone. */
  #generation = 0;
  #drainedWaiters: (() => void)[] = [];

  /** `target` may be null until the frontend exists; set it with `target` and call `flush`. */
  constructor(target: OutputTarget | null = null, options: OutputQueueOptions = {}) {
    this.#target = target;
    this.#options = options;
  }

  /** Where the bytes go; null writes nothing (they wait). */
  get target(): OutputTarget | null {
    return this.#target;
  }

  set target(target: OutputTarget | null) {
    this.#target = target;
  }

  /** Bytes waiting to be written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Bytes the target has taken since the queue was made. */
  get writtenBytes(): number {
    return this.#writtenBytes;
  }

  /** The target refused and the queue waits for its watch (or the rare fallback timer). */
  get waiting(): boolean {
    return this.#watchId !== 0 || this.#retryTimer !== undefined;
  }

  /**
   * Queues `bytes` after what is queued and writes what the target takes now. The bytes (and a
   * batch's array) are kept, not copied: a caller whose view is valid only during the call, or
   * who refills the array, passes a copy. A batch (an array of buffers) is written as their
   * concatenation, through the target's `writev`.
   */
  push(bytes: OutputChunk): void {
    if (this.#closed) return;
    this.#enqueue(bytes);
  }

  /**
   * `push` of a view valid only during the call: what the target takes now is written from it
   * as is, and only the rest is copied to wait (no copy at all in the usual case).
   */
  pushBorrowed(bytes: Uint8Array): void {
    if (this.#closed) return;
    const chunk = this.#enqueue(bytes);
    if (chunk !== null && chunk.outcome === undefined) chunk.bytes = (chunk.bytes as Uint8Array).slice();
  }

  /**
   * `push` that tells when `bytes` are all written: undefined when the target took them at
   * once, else a promise that resolves once it has, or rejects (see `errorFor`) when the
   * target fails or the queue is cleared first.
   */
  write(bytes: OutputChunk): Promise<void> | undefined {
    if (this.#closed) return Promise.reject(new ChardevError("OPEN_FAILED", "chardev: output queue is closed"));
    const chunk = this.#enqueue(bytes);
    // Written at once (the usual case): no promise is made.
    if (chunk === null || chunk.outcome === null) return undefined;
    if (chunk.outcome) return Promise.reject(chunk.outcome);
    return new Promise<void>((resolve, reject) => {
      chunk.settle = (error) => (error ? reject(error) : resolve());
    });
  }

  /** Queues a non-empty chunk and flushes; null for an empty one. */
  #enqueue(bytes: OutputChunk): QueuedChunk | null {
    const length = outputChunkLength(bytes);
    if (length === 0) return null;
    const chunk: QueuedChunk = { bytes, length, outcome: undefined, settle: undefined };
    this.#chunks.push(chunk);
    this.#queuedBytes += length;
    this.flush();
    return chunk;
  }

  #settle(chunk: QueuedChunk, error?: Error): void {
    chunk.outcome = error ?? null;
    chunk.settle?.(error);
  }

  /** Writes queued bytes until the target refuses or nothing is left; then `onFlushed`. */
  flush(): void {
    if (!this.#flushes.begin()) return;
    try {
      do {
        this.#writeQueued();
      } while (this.#flushes.another());
    } finally {
      this.#flushes.end();
    }
    this.#options.onFlushed?.();
  }

  /** Resolves once nothing is queued (at once if nothing is, or the queue is closed). */
  drained(): Promise<void> {
    if (this.#queuedBytes === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#drainedWaiters.push(resolve));
  }

  /**
   * Drops what is queued and stops waiting (a client left: its output goes with it). Pending
   * `write` promises reject; `drained` waiters resolve. The queue stays usable.
   */
  clear(): void {
    this.#generation++;
    this.#stopWaiting();
    const dropped = this.#chunks.splice(0);
    this.#queuedBytes = 0;
    for (const chunk of dropped) this.#settle(chunk, this.#errorFor("ECANCELED"));
    this.#resolveDrained();
  }

  /** `clear`, and every later `push` is ignored (`write` rejects). */
  close(): void {
    this.#closed = true;
    this.clear();
  }

  #writeQueued(): void {
    const target = this.#target;
    while (target && !this.#closed && this.#chunks.length > 0 && !this.waiting) {
      const generation = this.#generation;
      const head = this.#chunks[0];
      const bytes = head.bytes;
      const taken = isBatch(bytes) ? this.#writeBatch(target, bytes) : target.write(bytes);
      // The write made the chardev report an event whose handler cleared the queue.
      if (generation !== this.#generation) continue;
      if (taken > 0) {
        this.#consume(taken);
        continue; // a short write: writing the rest tells whether the target is full
      }
      if (taken === 0 || target.lastError === "EAGAIN") {
        this.#waitForRoom(target);
        break;
      }
      this.#fail(target.lastError ?? "EIO");
    }
    if (this.#queuedBytes === 0) this.#resolveDrained();
  }

  /** A batch in one call where the target has `writev`, else its first buffer with bytes. */
  #writeBatch(target: OutputTarget, parts: readonly Uint8Array[]): number {
    if (target.writev) return target.writev(parts);
    let first = 0;
    while (parts[first].length === 0) first++; // a queued batch has a byte somewhere
    return target.write(parts[first]);
  }

  #consume(count: number): void {
    this.#writtenBytes += count;
    this.#queuedBytes -= count;
    const head = this.#chunks[0];
    if (count < head.length) {
      // A short write: the rest stays at the head, to be offered again whole.
      const bytes = head.bytes;
      head.bytes = isBatch(bytes) ? batchAfter(bytes, count) : bytes.subarray(count);
      head.length -= count;
      return;
    }
    this.#chunks.shift();
    this.#settle(head);
  }

  /** Always called from inside a round of `flush`. */
  #waitForRoom(target: OutputTarget): void {
    let registering = true;
    let firedAtOnce = false;
    const id = target.addWatch(() => {
      if (registering) {
        firedAtOnce = true;
        return;
      }
      this.#watchId = 0;
      this.flush();
    });
    registering = false;
    if (firedAtOnce) {
      // Room came back while we asked: go round again rather than keep a stale id.
      this.#flushes.requestAgain();
      return;
    }
    if (id !== 0) {
      this.#watchId = id;
      return;
    }
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.flush();
    }, RETRY_WITHOUT_WATCH_MS);
  }

  /** The target failed for good (EIO: a socket with no peer, EBADF: detached). */
  #fail(errno: string): void {
    const dropped = this.#queuedBytes;
    const chunks = this.#chunks.splice(0);
    this.#queuedBytes = 0;
    for (const chunk of chunks) this.#settle(chunk, this.#errorFor(errno));
    this.#options.onFailed?.(errno, dropped);
  }

  #stopWaiting(): void {
    if (this.#watchId !== 0) this.#target?.removeWatch(this.#watchId);
    this.#watchId = 0;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  #errorFor(errno: string): Error {
    return this.#options.errorFor?.(errno) ?? new ChardevError("OPEN_FAILED", `chardev: write failed with ${errno}`);
  }

  #resolveDrained(): void {
    for (const resolve of this.#drainedWaiters.splice(0)) resolve();
  }
}
