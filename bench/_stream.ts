// The byte stream every case writes and the in-memory sinks that receive it.
//
// The stream is text: 64-byte lines of pseudo-random letters, each ending in a newline (so a
// `drop` reader always finds a safe boundary), repeating with a period of PERIOD bytes. Each
// sink copies every byte it is given into a PERIOD-byte buffer of its own, wrapping, as a
// consumer that processes and discards would; it keeps a byte count. A run always starts at
// the stream's first byte and with every sink at offset 0 and its buffer poisoned, so after a
// run of L bytes a correct sink has counted exactly L and its buffer's first min(L, PERIOD)
// bytes equal the stream's: `verify` checks both, the content by checksum, and throws
// otherwise. PERIOD is not a power of two, so a ring that handed out stale bytes one ring size
// late could not pass.

/** 48 KiB: a multiple of every chunk size (64 B, 1 KiB, 16 KiB), and of no ring size. */
export const PERIOD = 3 * 16384;
export const LINE = 64;

function makePattern(): Uint8Array {
  const out = new Uint8Array(PERIOD);
  let state = 0x2545f491;
  for (let i = 0; i < PERIOD; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    out[i] = i % LINE === LINE - 1 ? 0x0a : 0x61 + ((state >>> 16) % 26);
  }
  return out;
}

/** The stream's one period. */
export const pattern: Uint8Array = makePattern();

/** FNV-1a over 32-bit words (then bytes): cheap, order-sensitive, enough to catch a wrong byte. */
export function checksum(bytes: Uint8Array, length = bytes.length): number {
  let hash = 0x811c9dc5;
  const words = length >>> 2;
  if ((bytes.byteOffset & 3) === 0) {
    const view = new Int32Array(bytes.buffer, bytes.byteOffset, words);
    for (let i = 0; i < words; i++) hash = Math.imul(hash ^ view[i], 0x01000193);
  } else {
    const data = new DataView(bytes.buffer, bytes.byteOffset, length);
    for (let i = 0; i < words; i++) hash = Math.imul(hash ^ data.getInt32(i * 4, true), 0x01000193);
  }
  for (let i = words * 4; i < length; i++) hash = Math.imul(hash ^ bytes[i], 0x01000193);
  return hash >>> 0;
}

const patternChecksums = new Map<number, number>();

function expectedChecksum(length: number): number {
  let sum = patternChecksums.get(length);
  if (sum === undefined) {
    sum = checksum(pattern, length);
    patternChecksums.set(length, sum);
  }
  return sum;
}

/** The stream cut into `chunk`-byte views (of one shared buffer: nothing is copied to make them). */
export function chunksOf(chunk: number, asBuffer?: (bytes: Uint8Array) => Uint8Array): Uint8Array[] {
  if (PERIOD % chunk !== 0) throw new Error(`chunk ${chunk} does not divide the period ${PERIOD}`);
  const views: Uint8Array[] = [];
  for (let at = 0; at < PERIOD; at += chunk) {
    const view = pattern.subarray(at, at + chunk);
    views.push(asBuffer ? asBuffer(view) : view);
  }
  return views;
}

const POISON = 0xee;

/** What one sink received: its own copy of the bytes (wrapping) and their count. */
export class SinkStore {
  readonly buf = new Uint8Array(PERIOD);
  /** Where the next byte goes in `buf`. */
  at = 0;
  /** Bytes received this run. */
  pos = 0;

  /** Before a run: empty and poisoned, so stale bytes from an earlier run cannot pass `verify`. */
  reset(): void {
    this.buf.fill(POISON);
    this.at = 0;
    this.pos = 0;
  }

  /** After a run of `length` bytes: throws unless this sink got exactly them. */
  verify(length: number, who: string): void {
    if (this.pos !== length) throw new Error(`${who}: sink received ${this.pos} bytes, expected ${length}`);
    const span = Math.min(length, PERIOD);
    const got = checksum(this.buf, span);
    const want = expectedChecksum(span);
    if (got !== want) throw new Error(`${who}: sink checksum ${got.toString(16)} != ${want.toString(16)} after ${length} bytes`);
  }
}

/** Copies `data` into the store's buffer (every byte, wrapping) and counts it. */
export function put(store: SinkStore, data: Uint8Array): void {
  const length = data.length;
  const buf = store.buf;
  let at = store.at;
  if (at + length <= PERIOD) {
    buf.set(data, at);
    at += length;
  } else {
    let from = 0;
    while (from < length) {
      const run = Math.min(length - from, PERIOD - at);
      buf.set(data.subarray(from, from + run), at);
      from += run;
      at += run;
      if (at === PERIOD) at = 0;
    }
  }
  store.at = at === PERIOD ? 0 : at;
  store.pos += length;
}

export function makeStores(count: number): SinkStore[] {
  return Array.from({ length: count }, () => new SinkStore());
}

export function resetAll(stores: SinkStore[]): void {
  for (const store of stores) store.reset();
}

export function verifyAll(stores: SinkStore[], length: number, who: string): void {
  for (let i = 0; i < stores.length; i++) stores[i].verify(length, `${who}, sink ${i}`);
}

/** Resolves once every store has `length` bytes; throws if that takes longer than `limitMs`. */
export async function delivered(stores: SinkStore[], length: number, who: string, limitMs = 20_000): Promise<void> {
  const started = performance.now();
  for (let turn = 0; ; turn++) {
    let done = true;
    for (const store of stores) {
      if (store.pos < length) {
        done = false;
        break;
      }
    }
    if (done) return;
    if (turn < 64) await null;
    else {
      if (performance.now() - started > limitMs) throw new Error(`${who}: not every sink got its ${length} bytes within ${limitMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
}
