// A pure-TypeScript port of the broadcast ring (core-as/ring.ts, the bcast* functions), line
// for line where it matters: one copy per write into a power-of-two ring, per-reader cursors,
// a cached tail refreshed only when the writer is short of room, readers drained in
// contiguous slices through a callback, `drop` readers that skip to a safe boundary and report
// the gap. It is the benchmark's "what if the core were plain TypeScript" anchor: the WASM core
// has to be at least as fast as this to earn its place.
//
// Positions are plain numbers (exact below 2^53 bytes, far more than a benchmark writes).

export const POLICY_BLOCK = 0;
export const POLICY_DROP = 1;

const EAGAIN = 11;
const ESC = 0x1b;
const NEWLINE = 0x0a;

/** Writes a slice of the ring to reader `index`: bytes taken or -errno. */
export type TsRingWrite = (index: number, data: Uint8Array) => number;

interface Reader {
  cursor: number;
  delivered: number;
  dropped: number;
  lagLimit: number;
  attached: boolean;
  open: boolean;
  blocked: boolean;
  policy: number;
  stalls: number;
}

export class TsRing {
  readonly size: number;
  readonly #mask: number;
  readonly #bytes: Uint8Array;
  head = 0;
  /** Oldest byte a blocking reader still needs (cached; only ever lags the true value). */
  #tail = 0;
  #blocking = 0;
  readonly readers: Reader[] = [];

  constructor(
    size: number,
    readonly backendWrite: TsRingWrite,
    readonly backendGap: (index: number, bytes: number) => void = () => {},
  ) {
    if (size <= 0 || (size & (size - 1)) !== 0) throw new RangeError(`ring size ${size} is not a power of two`);
    this.size = size;
    this.#mask = size - 1;
    this.#bytes = new Uint8Array(size);
  }

  #holdsWriter(reader: Reader): boolean {
    return reader.attached && reader.open && reader.policy !== POLICY_DROP;
  }

  #oldest(): number {
    return this.head > this.size ? this.head - this.size : 0;
  }

  /** Adds an open reader at the head (bcastAddBackend + bcastSetOpen without replay). */
  addOpenReader(policy: number, lagLimit: number): number {
    const reader: Reader = {
      cursor: this.head,
      delivered: 0,
      dropped: 0,
      lagLimit,
      attached: true,
      open: true,
      blocked: false,
      policy,
      stalls: 0,
    };
    this.readers.push(reader);
    if (this.#holdsWriter(reader)) this.#blocking++;
    this.#recomputeTail();
    return this.readers.length - 1;
  }

  /** First position in [from, to] where a skipping reader may start (line start or ESC). */
  safeBoundary(from: number, to: number): number {
    if (from === 0) return 0;
    const first = this.#oldest();
    const bytes = this.#bytes;
    const mask = this.#mask;
    for (let q = from; q < to; q++) {
      if (bytes[q & mask] === ESC) return q;
      if (q - 1 >= first && bytes[(q - 1) & mask] === NEWLINE) return q;
    }
    return to;
  }

  #recomputeTail(): number {
    let tail = this.head;
    if (this.#blocking !== 0) {
      for (const reader of this.readers) if (this.#holdsWriter(reader) && reader.cursor < tail) tail = reader.cursor;
    }
    this.#tail = tail;
    return tail;
  }

  /** Bytes the writer may write now. */
  writable(): number {
    return this.size - (this.head - this.#recomputeTail());
  }

  /** The writer's one copy: takes what fits of `data`; returns that count. */
  write(data: Uint8Array): number {
    const size = this.size;
    let head = this.head;
    let room = size - (head - this.#tail);
    if (room < data.length) room = size - (head - this.#recomputeTail());
    const taken = Math.min(room, data.length);
    let from = 0;
    while (from < taken) {
      const at = head & this.#mask;
      const run = Math.min(taken - from, size - at);
      this.#bytes.set(run === data.length ? data : data.subarray(from, from + run), at);
      head += run;
      from += run;
    }
    this.head = head;
    if (this.#blocking === 0) this.#tail = head;
    return taken;
  }

  /** Serves reader `index` until caught up or it refuses: 0, 1 (blocked) or -errno. */
  drainReader(index: number): number {
    const reader = this.readers[index];
    const size = this.size;
    while (true) {
      if (!reader.attached || !reader.open || reader.blocked) return 0;
      const head = this.head;
      const cursor = reader.cursor;
      if (cursor >= head) return 0;
      if (reader.policy === POLICY_DROP) {
        const limit = Math.min(reader.lagLimit, size);
        if (head - cursor > limit) {
          const resume = this.safeBoundary(head - limit, head);
          reader.cursor = resume;
          reader.dropped += resume - cursor;
          this.backendGap(index, resume - cursor);
          continue;
        }
      }
      const at = cursor & this.#mask;
      const run = Math.min(head - cursor, size - at);
      const result = this.backendWrite(index, this.#bytes.subarray(at, at + run));
      if (result > 0) {
        reader.cursor += result;
        reader.delivered += result;
      }
      if (result < run) {
        reader.stalls++;
        reader.blocked = true;
        return result < 0 && result !== -EAGAIN ? result : 1;
      }
    }
  }

  /** Serves every reader; returns how many refused. Refreshes the cached tail. */
  drain(): number {
    let blocked = 0;
    for (let i = 0; i < this.readers.length; i++) if (this.drainReader(i) !== 0) blocked++;
    this.#recomputeTail();
    return blocked;
  }
}
