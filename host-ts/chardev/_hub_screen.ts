// Screen replay (`replay.N=screen`): a ring hub keeps a headless terminal emulator of the
// device's screen, and a backend that opens gets the screen as it stands (one repaint sequence)
// and then the live stream, with no byte missing or repeated between the two.
//
// The emulator is one more reader of the hub's broadcast ring (a slot no backend owns): the core
// hands it slices during the ring's drain, after the frontend's write has returned, and xterm.js
// parses them later still (its own write queue). Its policy is `drop`, so the device never waits
// on it: a device faster than the parser for longer than the ring lasts makes the emulator skip
// to a safe start a ring behind the head (as a `drop` client would; the screen is right again
// once the program redraws, or after a screenful of scrolling text). The snapshot a joining backend gets must belong to exactly the ring position its
// cursor starts at. xterm.js calls a write's callback right after parsing that write and before
// the next, so an empty write queued when the emulator has been fed up to position P calls back
// with the screen as it was at P. The emulator is never fed past a position a joiner still
// needs, and a joiner takes no ring bytes until its snapshot has gone out.
//
// Where a backend starts: the core opens it at the ring's head H, unless H is inside an escape
// sequence or a UTF-8 character, when it skips to the next safe start P (the core's join seek).
// This file follows the same parser (`terminalStep`, a port of core-as/ring.ts's) over what it
// feeds the emulator, so it knows at once whether H is safe; when it is not, the joiner's first
// slice tells where the core made it start, and the emulator waits for that.

import xtermHeadless from "@xterm/headless";
import xtermSerialize from "@xterm/addon-serialize";
import { ERRNO } from "../errno.ts";
import type { HubEntry } from "./_hub_output.ts";
import { DEFAULT_SCREEN_COLS, DEFAULT_SCREEN_ROWS, type HubScreenReader, SCREEN_SCROLLBACK_LINES, type ScreenRing } from "./_hub_screen_contract.ts";

type HeadlessTerminal = InstanceType<typeof xtermHeadless.Terminal>;
type Serializer = InstanceType<typeof xtermSerialize.SerializeAddon>;

/**
 * Bytes fed to the emulator and not parsed yet beyond which it takes no more (the ring holds
 * them meanwhile, until it laps the emulator): a device faster than the parser costs no memory.
 */
const PARSE_BACKLOG_LIMIT = 256 * 1024;
/** A backend whose repaint is refused without a watch of its own is retried after this long. */
const RETRY_WITHOUT_WATCH_MS = 5;
/** RIS: the joining terminal forgets whatever it showed (modes, scroll region, attributes). */
const RESET_TERMINAL = "\x1bc";
const EMPTY = new Uint8Array(0);

/** A backend that opened with `replay=screen` and has not had all of its repaint yet. */
interface Join {
  readonly entry: HubEntry;
  /** The ring head when it opened: where its cursor starts unless the core seeks on. */
  readonly openedAt: number;
  /** Where its cursor starts, once known; the snapshot is of the screen at exactly this position. */
  startsAt: number | null;
  /** Scrollback lines it asked for. */
  readonly scrollback: number;
  /** The emulator was asked for the snapshot (an empty write queued at `startsAt`). */
  snapshotQueued: boolean;
  /** The repaint, once serialized, and how much of it the backend took. */
  repaint: Uint8Array | null;
  sent: number;
  /** The core holds the backend as blocked (it was offered ring bytes before its repaint). */
  heldByCore: boolean;
  cancelWait: (() => void) | null;
  /** An `evict` backend's deadline while its repaint is refused (as the ring keeps one for its bytes). */
  evictTimer: ReturnType<typeof setTimeout> | null;
}

/**
 * A hub's headless terminal, fed from its broadcast ring; see the file's header. The main
 * entry (mod.ts) hands it to the hubs with `provideHubScreen`, importing this file (and
 * xterm.js with it) only when a hub first needs a screen.
 */
export class HubScreen implements HubScreenReader {
  readonly #ring: ScreenRing;
  readonly #terminal: HeadlessTerminal;
  readonly #serializer: Serializer;
  /** The emulator's reader in the ring. */
  readonly slot: number;
  /** Stream position of the next byte the emulator is given. */
  #fed: number;
  /** Bytes given to the emulator that it has not parsed yet (positions may jump: a skip). */
  #unparsed = 0;
  /** `terminalStep`'s state at `#fed`: 0 is a place a reader may start. */
  #parserState = 0;
  /** The core holds the emulator's reader as blocked (it took less than offered). */
  #heldByCore = false;
  readonly #joins = new Map<number, Join>();
  /** Sizes to take once the emulator has been fed up to `at` (the device drew the bytes before at the old size). */
  readonly #resizes: { at: number; cols: number; rows: number }[] = [];
  #cols: number;
  #rows: number;
  /** The hub is gone and its ring freed: xterm.js's late callbacks must not touch it. */
  #disposed = false;

  constructor(ring: ScreenRing, ringSize: number, cols = DEFAULT_SCREEN_COLS, rows = DEFAULT_SCREEN_ROWS) {
    this.#ring = ring;
    this.#cols = cols;
    this.#rows = rows;
    this.#terminal = new xtermHeadless.Terminal({ cols, rows, scrollback: SCREEN_SCROLLBACK_LINES, allowProposedApi: true });
    this.#serializer = new xtermSerialize.SerializeAddon();
    this.#terminal.loadAddon(this.#serializer);
    const core = ring.core;
    const address = ring.settled();
    // It reads what the ring still holds: a screen made late is as right as the history allows.
    this.slot = core.bcastAddBackend(address, "drop", ringSize, ringSize);
    core.bcastSetOpen(address, this.slot, true);
    this.#fed = core.bcastCursor(address, this.slot);
  }

  /** The emulator's size now (the hub's agreed size, once the bytes before it are parsed). */
  get size(): { cols: number; rows: number } {
    return { cols: this.#cols, rows: this.#rows };
  }

  /** The screen as the emulator has it now (tests, tools); a joiner gets `#repaint` at its own position. */
  serialize(scrollback = 0): string {
    return this.#serializer.serialize({ scrollback });
  }

  /** Resolves once the emulator has parsed everything written to the ring so far. */
  async parsed(): Promise<void> {
    if (this.#disposed) return;
    const head = this.#ring.core.bcastHead(this.#ring.settled());
    while (true) {
      await new Promise<void>((resolve) => this.#terminal.write(EMPTY, resolve));
      if (this.#fed >= head) return;
      await new Promise((resolve) => setTimeout(resolve, 1)); // the ring's drain feeds it meanwhile
    }
  }

  /** The hub agreed on a new size: the emulator takes it at the stream's head (the writer settled). */
  resize(cols: number, rows: number): void {
    if (this.#disposed) return;
    this.#resizes.push({ at: this.#ring.core.bcastHead(this.#ring.settled()), cols, rows });
    this.#atPosition(); // the emulator may be at the head already: no slice would come to take it
    this.#wakeReader();
  }

  // ---- the emulator's reader ----

  /** The core's slice for the emulator's reader (inside the drain); returns bytes taken. */
  take(data: Uint8Array): number {
    const core = this.#ring.core;
    const at = core.bcastCursor(this.#ring.address, this.slot);
    if (at !== this.#fed) {
      // The core skipped it to a safe start (it opened mid-sequence, or fell a ring behind): a
      // known parser state. A joiner whose start was skipped over gets the screen as it is here.
      this.#fed = at;
      this.#parserState = 0;
      for (const join of this.#joins.values()) {
        if (!join.snapshotQueued && (join.startsAt ?? join.openedAt) < at) join.startsAt = at;
      }
    }
    let taken = 0;
    while (true) {
      this.#atPosition();
      if (taken === data.length) break;
      const end = Math.min(data.length, this.#feedLimit() - at);
      if (end <= taken) break;
      this.#feed(data.subarray(taken, end));
      taken = end;
    }
    this.#heldByCore = taken < data.length;
    return taken;
  }

  /** How far the emulator may be fed now: not past a joiner's start, a resize, or the backlog. */
  #feedLimit(): number {
    let limit = this.#fed + Math.max(0, PARSE_BACKLOG_LIMIT - this.#unparsed);
    for (const join of this.#joins.values()) {
      if (join.snapshotQueued) continue;
      limit = Math.min(limit, join.startsAt ?? join.openedAt);
    }
    if (this.#resizes.length > 0) limit = Math.min(limit, this.#resizes[0].at);
    return limit;
  }

  #feed(slice: Uint8Array): void {
    const copy = slice.slice(); // the ring reuses its memory once the drain moves on
    let state = this.#parserState;
    for (let i = 0; i < copy.length; i++) state = terminalStep(state, copy[i]);
    this.#parserState = state;
    this.#fed += copy.length;
    this.#unparsed += copy.length;
    this.#terminal.write(copy, () => this.#parsedSome(copy.length));
  }

  #parsedSome(length: number): void {
    const wasFull = this.#unparsed >= PARSE_BACKLOG_LIMIT;
    this.#unparsed -= length;
    if (wasFull) this.#wakeReader();
  }

  /** What is due at the emulator's position: resizes, and the snapshots of joiners starting there. */
  #atPosition(): void {
    while (this.#resizes.length > 0 && this.#resizes[0].at <= this.#fed) {
      const { cols, rows } = this.#resizes.shift()!;
      this.#cols = cols;
      this.#rows = rows;
      this.#terminal.write(EMPTY, () => this.#terminal.resize(cols, rows));
    }
    for (const join of this.#joins.values()) {
      if (join.snapshotQueued) continue;
      // A joiner whose opening head is a safe start starts right there (the core does not seek).
      if (join.startsAt === null && join.openedAt === this.#fed && this.#parserState === 0) join.startsAt = this.#fed;
      if (join.startsAt !== this.#fed) continue;
      join.snapshotQueued = true;
      this.#terminal.write(EMPTY, () => this.#snapshotTaken(join));
    }
  }

  /** The emulator's reader took less than offered and something changed: offer it again. */
  #wakeReader(): void {
    if (this.#disposed) return;
    if (this.#heldByCore) {
      this.#heldByCore = false;
      this.#ring.core.bcastUnblock(this.#ring.settled(), this.slot);
    }
    this.#ring.scheduleDrain();
  }

  // ---- joiners ----

  /** Backend `entry` opened asking for the screen (`scrollback` lines above it) at head `openedAt`. */
  join(entry: HubEntry, scrollback: number, openedAt = this.#ring.core.bcastHead(this.#ring.settled())): void {
    this.forget(entry.slot);
    this.#joins.set(entry.slot, {
      entry,
      openedAt,
      startsAt: null,
      scrollback,
      snapshotQueued: false,
      repaint: null,
      sent: 0,
      heldByCore: false,
      cancelWait: null,
      evictTimer: null,
    });
    // The emulator is never past the head, so it can still stop right at `openedAt`; when it is
    // there already (a silent device) no slice will come: the snapshot is asked for now.
    this.#atPosition();
    this.#wakeReader();
  }

  /** The backend closed or left before its repaint was through: it owes the emulator nothing. */
  forget(slot: number): void {
    const join = this.#joins.get(slot);
    if (!join) return;
    join.cancelWait?.();
    if (join.evictTimer) clearTimeout(join.evictTimer);
    this.#joins.delete(slot);
    this.#wakeReader();
  }

  /**
   * The core offers a joiner ring bytes (inside the drain): undefined when it has had its
   * repaint and takes them as any backend does, else 0 (it waits; the core holds it blocked).
   */
  holdJoiner(slot: number): number | undefined {
    const join = this.#joins.get(slot);
    if (!join) return undefined;
    if (join.startsAt === null) {
      // Its opening head was not a safe start: the core has sought on, and this is where it landed.
      join.startsAt = this.#ring.core.bcastCursor(this.#ring.address, slot);
      queueMicrotask(() => this.#wakeReader()); // the emulator may go on up to there
    }
    join.heldByCore = true;
    return 0;
  }

  #snapshotTaken(join: Join): void {
    if (this.#joins.get(join.entry.slot) !== join) return; // it left meanwhile
    join.repaint = new TextEncoder().encode(RESET_TERMINAL + this.#repaint(join.scrollback));
    this.#sendRepaint(join);
  }

  /**
   * The serialized screen (contents, cursor, modes, the alternate screen) plus what the
   * serializer leaves out and a program relies on: the scroll region (`top`, `vim`).
   */
  #repaint(scrollback: number): string {
    let text = this.#serializer.serialize({ scrollback });
    // xterm.js keeps the scroll region on its (internal) buffer; read where it is there.
    const buffer = (this.#terminal as unknown as { _core?: { buffer?: { scrollTop?: number; scrollBottom?: number } } })._core?.buffer;
    const top = buffer?.scrollTop;
    const bottom = buffer?.scrollBottom;
    if (typeof top === "number" && typeof bottom === "number" && (top !== 0 || bottom !== this.#rows - 1)) {
      const active = this.#terminal.buffer.active;
      // DECSTBM homes the cursor: put it back where the serializer left it.
      text += `\x1b[${top + 1};${bottom + 1}r\x1b[${active.cursorY + 1};${active.cursorX + 1}H`;
    }
    return text;
  }

  #sendRepaint(join: Join): void {
    join.cancelWait = null;
    if (this.#joins.get(join.entry.slot) !== join || !join.repaint) return;
    while (join.sent < join.repaint.length) {
      const result = join.entry.chardev.write(join.repaint.subarray(join.sent));
      if (result < 0 && result !== -ERRNO.EAGAIN) {
        this.forget(join.entry.slot);
        this.#ring.fail(join.entry, result);
        return;
      }
      if (result <= 0) return this.#waitToSend(join);
      join.sent += result;
      if (join.evictTimer) clearTimeout(join.evictTimer); // it took some: not stalled
      join.evictTimer = null;
    }
    // Through: from now on it takes the ring's bytes from `startsAt` like any backend.
    if (join.evictTimer) clearTimeout(join.evictTimer);
    this.#joins.delete(join.entry.slot);
    this.#wakeReader();
    if (join.heldByCore) this.#ring.core.bcastUnblock(this.#ring.settled(), join.entry.slot);
    this.#ring.scheduleDrain();
  }

  #waitToSend(join: Join): void {
    if (join.entry.policy === "evict" && !join.evictTimer) {
      join.evictTimer = setTimeout(() => {
        join.evictTimer = null;
        if (this.#joins.get(join.entry.slot) === join) this.#ring.evict(join.entry); // detaching forgets the join
      }, join.entry.stallMs);
    }
    const resume = () => this.#sendRepaint(join);
    const cancel = join.entry.chardev.addWatch(resume);
    if (cancel) join.cancelWait = cancel;
    else {
      const timer = setTimeout(resume, RETRY_WITHOUT_WATCH_MS);
      join.cancelWait = () => clearTimeout(timer);
    }
  }

  /** Lets go of the emulator (the hub is destroyed; the ring is freed after). */
  dispose(): void {
    this.#disposed = true;
    for (const join of this.#joins.values()) {
      join.cancelWait?.();
      if (join.evictTimer) clearTimeout(join.evictTimer);
    }
    this.#joins.clear();
    this.#terminal.dispose();
  }
}

// The core's join parser (core-as/ring.ts terminalStep), byte for byte, so that this file
// agrees with the core on where a reader may start.
const TS_GROUND = 0;
const TS_ESCAPE = 1;
const TS_INTERMEDIATE = 2;
const TS_CSI = 3;
const TS_STRING = 4;
const TS_STRING_ESC = 5;

/** One byte through the join parser: the escape state in the low byte, UTF-8 bytes still due above. */
export function terminalStep(state: number, byte: number): number {
  let escape = state & 0xff;
  const pending = state >>> 8;
  if (pending > 0 && (byte & 0xc0) === 0x80) return escape | ((pending - 1) << 8);
  if (byte === 0x18 || byte === 0x1a) return TS_GROUND;
  if (byte === 0x1b) return escape === TS_STRING ? TS_STRING_ESC : TS_ESCAPE;
  if (escape === TS_STRING_ESC) {
    if (byte === 0x5c) return TS_GROUND;
    escape = TS_ESCAPE;
  }
  if (escape === TS_STRING) return byte === 0x07 ? TS_GROUND : TS_STRING;
  if (escape !== TS_GROUND && byte < 0x20) return escape;
  if (escape === TS_ESCAPE) {
    if (byte === 0x5b) return TS_CSI;
    if (byte === 0x5d || byte === 0x50 || byte === 0x58 || byte === 0x5e || byte === 0x5f) return TS_STRING;
    if (byte >= 0x20 && byte <= 0x2f) return TS_INTERMEDIATE;
    if (byte <= 0x7e) return TS_GROUND;
    if (byte === 0x7f) return escape;
  } else if (escape === TS_INTERMEDIATE) {
    if (byte <= 0x2f) return escape;
    if (byte <= 0x7e) return TS_GROUND;
    if (byte === 0x7f) return escape;
  } else if (escape === TS_CSI) {
    if (byte <= 0x3f) return escape;
    if (byte <= 0x7e) return TS_GROUND;
    if (byte === 0x7f) return escape;
  }
  if (byte >= 0xc2 && byte <= 0xdf) return 1 << 8;
  if (byte >= 0xe0 && byte <= 0xef) return 2 << 8;
  if (byte >= 0xf0 && byte <= 0xf4) return 3 << 8;
  return TS_GROUND;
}
