// Pure-TypeScript reference model of the broadcast ring (core-as/ring.ts, "The broadcast ring"),
// written from the ring's stated rules rather than from the AssemblyScript: one writer, a ring
// of `size` bytes, readers with their own cursors. ring_core.property.test.ts requires the WASM
// core to agree with it after every step.
//
// Positions are plain numbers: they count bytes ever written, and a test run writes far fewer
// than 2^53, so they neither wrap nor lose precision. The model keeps no cached tail: every
// question about room is answered from the readers as they are now.

/** Reader policies (core-as/ring.ts POLICY_*). */
export const BLOCK = 0;
export const DROP = 1;
/** Blocks like BLOCK; only the host treats it differently (it evicts a reader stalled too long). */
export const EVICT = 2;

/** The errno values the tests script readers with. */
export const EAGAIN = 11;
export const EIO = 5;

export const ESC = 0x1b;
export const NEWLINE = 0x0a;

/** Writes `data` to reader `index`: returns the bytes taken, or a negative errno. */
export type ModelReaderWrite = (index: number, data: Uint8Array) => number;
/** Reader `index` skipped `bytes` bytes of the stream. */
export type ModelReaderGap = (index: number, bytes: number) => void;

export interface ModelReader {
  /** Next stream position this reader gets. */
  cursor: number;
  /** Bytes it took. */
  delivered: number;
  /** Bytes it skipped: the sum of its gaps. */
  dropped: number;
  /** Times it refused bytes (short write, zero, or an error). */
  stalls: number;
  attached: boolean;
  open: boolean;
  blocked: boolean;
  policy: number;
  /** A DROP reader further behind than min(lagLimit, size) skips ahead. */
  lagLimit: number;
  /** Bytes of history it asks for when it opens. */
  replay: number;
  /** Set while it seeks a safe start after joining at the head mid-sequence. */
  joining: TerminalState | null;
  /** Bytes the current seek skipped. */
  joinScanned: number;
  /** Bytes skipped by all its seeks. */
  joinSkipped: number;
}

/** Bytes before the head read at a join, and the longest seek before giving up on an escape. */
export const JOIN_LOOKBACK = 1024;
export const JOIN_SEEK_LIMIT = 4096;

/** Where a terminal is in the byte stream: which escape sequence, and UTF-8 bytes still due. */
export interface TerminalState {
  escape: "ground" | "esc" | "intermediate" | "csi" | "string" | "stringEsc";
  utf8Left: number;
}

/** Whether a reader may start right after a byte that left the terminal in `state`. */
export const atSafeStart = (state: TerminalState) => state.escape === "ground" && state.utf8Left === 0;

/**
 * The terminal's next state after `byte` (ECMA-48 escapes, OSC/DCS/SOS/PM/APC strings ended by
 * BEL or ESC \\, CAN/SUB cancelling, C0 controls acting inside a sequence; UTF-8 lead bytes).
 */
export function terminalNext(state: TerminalState, byte: number): TerminalState {
  const text = (b: number): TerminalState => ({
    escape: "ground",
    utf8Left: b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : 0,
  });
  if (state.utf8Left > 0 && byte >= 0x80 && byte <= 0xbf) return { escape: state.escape, utf8Left: state.utf8Left - 1 };
  let escape = state.escape;
  if (byte === 0x18 || byte === 0x1a) return { escape: "ground", utf8Left: 0 };
  if (byte === ESC) return { escape: escape === "string" ? "stringEsc" : "esc", utf8Left: 0 };
  if (escape === "stringEsc") {
    if (byte === 0x5c) return { escape: "ground", utf8Left: 0 };
    escape = "esc";
  }
  const stay = { escape, utf8Left: 0 };
  if (escape === "string") return byte === 0x07 ? { escape: "ground", utf8Left: 0 } : stay;
  if (escape === "ground" || byte >= 0x80) return text(byte);
  if (byte < 0x20 || byte === 0x7f) return stay;
  if (escape === "esc") {
    if (byte === 0x5b) return { escape: "csi", utf8Left: 0 };
    if ([0x5d, 0x50, 0x58, 0x5e, 0x5f].includes(byte)) return { escape: "string", utf8Left: 0 };
    if (byte <= 0x2f) return { escape: "intermediate", utf8Left: 0 };
    return { escape: "ground", utf8Left: 0 };
  }
  const lastParameter = escape === "intermediate" ? 0x2f : 0x3f;
  return byte <= lastParameter ? stay : { escape: "ground", utf8Left: 0 };
}

export class RingModel {
  readonly size: number;
  /** Bytes ever accepted from the writer. */
  head = 0;
  readonly readers: ModelReader[] = [];
  /** The ring itself: stream position p lives at p mod size. */
  readonly #bytes: Uint8Array;

  constructor(size: number) {
    if (size <= 0 || (size & (size - 1)) !== 0) throw new RangeError(`ring size ${size} is not a power of two`);
    this.size = size;
    this.#bytes = new Uint8Array(size);
  }

  /** Oldest stream position the ring still holds: it holds the last `size` bytes written. */
  get oldest(): number {
    return Math.max(0, this.head - this.size);
  }

  /** The byte at stream position `p`; only positions in [oldest, head) are in the ring. */
  byteAt(p: number): number {
    if (p < this.oldest || p >= this.head) throw new Error(`model: position ${p} is not in the ring [${this.oldest}, ${this.head})`);
    return this.#bytes[p % this.size]!;
  }

  /**
   * Where a reader may start at or after `from`: the stream's start, an ESC, or the byte after
   * a newline the ring still holds; `to` when [from, to) has none.
   */
  safeBoundary(from: number, to: number): number {
    if (from === 0) return 0;
    for (let q = from; q < to; q++) {
      if (this.byteAt(q) === ESC) return q;
      if (q - 1 >= this.oldest && this.byteAt(q - 1) === NEWLINE) return q;
    }
    return to;
  }

  /** The terminal state after the last byte written, read from a known start in the last JOIN_LOOKBACK bytes. */
  stateAtHead(): TerminalState {
    const window = Math.max(this.oldest, this.head - JOIN_LOOKBACK);
    let from = this.safeBoundary(window, this.head);
    if (from === this.head) from = window;
    let state: TerminalState = { escape: "ground", utf8Left: 0 };
    for (let q = from; q < this.head; q++) state = terminalNext(state, this.byteAt(q));
    return state;
  }

  /** Whether reader `r` keeps the writer from overwriting what it has not had yet. */
  holdsWriter(r: ModelReader): boolean {
    return r.attached && r.open && r.policy !== DROP;
  }

  /** Oldest position some holding reader still needs; the head when none holds the writer. */
  tail(): number {
    let tail = this.head;
    for (const r of this.readers) if (this.holdsWriter(r)) tail = Math.min(tail, r.cursor);
    return tail;
  }

  /** Bytes the writer may write without overwriting what a holding reader still needs. */
  writable(): number {
    return this.size - (this.head - this.tail());
  }

  /** A new reader is attached and closed, at the head, with nothing counted yet. */
  addBackend(policy: number, lagLimit: number, replay: number): number {
    const reader: ModelReader = {
      cursor: this.head,
      delivered: 0,
      dropped: 0,
      stalls: 0,
      attached: true,
      open: false,
      blocked: false,
      policy,
      lagLimit,
      replay,
      joining: null,
      joinScanned: 0,
      joinSkipped: 0,
    };
    const free = this.readers.findIndex((r) => !r.attached);
    if (free >= 0) {
      this.readers[free] = reader;
      return free;
    }
    this.readers.push(reader);
    return this.readers.length - 1;
  }

  /** Detaches the reader; its slot (and its counters, until then) stays for the next add. */
  removeBackend(index: number): void {
    const r = this.readers[index]!;
    r.attached = false;
    r.open = false;
    r.blocked = false;
  }

  /**
   * Opening starts the reader `replay` bytes before the head (no further back than the ring
   * holds), moved forward to a safe boundary; closing just closes. Both clear `blocked`.
   */
  setOpen(index: number, open: boolean): void {
    const r = this.readers[index]!;
    if (open) {
      const history = Math.min(r.replay, this.head - this.oldest);
      r.cursor = this.safeBoundary(this.head - history, this.head);
      r.open = true;
      // At the head with nothing to replay: it may have joined in the middle of a sequence.
      const state = r.cursor === this.head && this.head !== 0 ? this.stateAtHead() : null;
      r.joining = state && !atSafeStart(state) ? state : null;
      r.joinScanned = 0;
    } else {
      r.open = false;
      r.joining = null;
    }
    r.blocked = false;
  }

  unblock(index: number): void {
    this.readers[index]!.blocked = false;
  }

  /** The writer: takes what fits before the tail, returns how much. */
  write(data: Uint8Array): number {
    const room = this.size - (this.head - this.tail());
    const taken = Math.min(data.length, room);
    for (let j = 0; j < taken; j++) this.#bytes[(this.head + j) % this.size] = data[j]!;
    this.head += taken;
    return taken;
  }

  /**
   * Serves reader `index` until it is caught up (0) or refuses (1, or the errno of a failed
   * write other than EAGAIN). A DROP reader too far behind first skips to a safe boundary and
   * reports the gap. Each write is one contiguous run of the ring, up to its physical end.
   */
  drainBackend(index: number, write: ModelReaderWrite, gap: ModelReaderGap): number {
    for (;;) {
      const r = this.readers[index]!;
      if (!(r.attached && r.open) || r.blocked || r.cursor >= this.head) return 0;
      const lag = this.head - r.cursor;
      const limit = Math.min(r.lagLimit, this.size);
      if (r.policy === DROP && lag > limit) {
        const resume = this.safeBoundary(this.head - limit, this.head);
        const skipped = resume - r.cursor;
        r.dropped += skipped;
        r.joining = null;
        gap(index, skipped);
        r.cursor = resume;
        continue;
      }
      if (r.joining) {
        // Seek the next safe start among the bytes written since it joined; they are skipped.
        while (r.cursor < this.head && r.joining) {
          const state = terminalNext(r.joining, this.byteAt(r.cursor));
          r.cursor++;
          r.joinSkipped++;
          r.joinScanned++;
          const givesUp = r.joinScanned >= JOIN_SEEK_LIMIT && state.utf8Left === 0;
          r.joining = atSafeStart(state) || givesUp ? null : state;
        }
        continue;
      }
      const length = Math.min(lag, this.size - (r.cursor % this.size));
      const slice = new Uint8Array(length);
      for (let j = 0; j < length; j++) slice[j] = this.byteAt(r.cursor + j);
      const result = write(index, slice);
      if (result > 0) {
        r.cursor += result;
        r.delivered += result;
      }
      if (result < length) {
        r.stalls++;
        r.blocked = true;
        return result < 0 && result !== -EAGAIN ? result : 1;
      }
    }
  }

  /** Serves every slot in order; returns how many drainBackend calls did not return 0. */
  drain(write: ModelReaderWrite, gap: ModelReaderGap): number {
    let refused = 0;
    for (let i = 0; i < this.readers.length; i++) {
      if (this.drainBackend(i, write, gap) !== 0) refused++;
    }
    return refused;
  }
}
