// The broadcast ring (`ring=BYTES`): the frontend's bytes are copied once into the core's ring
// and every backend drains from it at its own pace under its policy (block, drop, evict).
//
// The ring's writer copies into a window of the ring without telling the core; the core sees
// those bytes only once the writer settles. So every core call on the ring but the write goes
// through `#ring()`, which settles first: nobody outside this file can forget it.

import type { BcastWriter } from "../core.ts";
import { ERRNO } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import { type HubEntry, type HubHistory, type HubOutput, type HubOutputBackendOptions, type HubOutputCounters, type HubOutputHost } from "./_hub_output.ts";
import { DEFAULT_SCREEN_COLS, DEFAULT_SCREEN_ROWS, type HubScreenReader, loadHubScreen, makeHubScreen, screenScrollback } from "./_hub_screen_contract.ts";

/** A backend with no watch of its own is retried after this long. */
const RETRY_WITHOUT_WATCH_MS = 5;

/** Whether any of `chunks` has a byte. */
function hasBytes(chunks: readonly Uint8Array[]): boolean {
  for (let i = 0; i < chunks.length; i++) if (chunks[i].length > 0) return true;
  return false;
}

/** The hub's output through the core's broadcast ring. */
export class RingOutput implements HubOutput {
  readonly isRing = true;
  readonly countsOpenEvents = false;
  readonly address: number;
  readonly #writer: BcastWriter;
  readonly #drainNow = () => this.flush();
  #drainScheduled = false;
  /** Backends that took less than offered during the current drain: they wait on their watch. */
  #blockedNow: HubEntry[] = [];
  /** Backends whose write failed for good during the current drain, with the errno. */
  #failedNow: [HubEntry, number][] = [];
  /** The screen emulator, made when the first backend asks for `replay=screen`. */
  #screen: HubScreenReader | null = null;
  /** The emulator's code is loading (the first screen of the process): the screen comes after. */
  #screenLoading: Promise<void> | null = null;
  /**
   * `replay=screen` backends that opened while the emulator was loading, by slot: they take no
   * ring bytes (`held`: the core was told so) until the screen has joined them at `openedAt`.
   */
  readonly #screenWaiting = new Map<number, { entry: HubEntry; scrollback: number; openedAt: number; held: boolean }>();
  /** The ring is freed: a load that ends late makes no screen. */
  #freed = false;
  /** Scrollback lines each `replay=screen` backend asked for, by slot. */
  readonly #screenBackends = new Map<number, number>();
  /** The hub's agreed terminal size, which a screen made later starts at. */
  #screenSize = { cols: DEFAULT_SCREEN_COLS, rows: DEFAULT_SCREEN_ROWS };
  /**
   * `keep-head`: the hub's first output bytes (the boot log), kept after the ring has
   * overwritten them. Filled by the write until full; from then on a write pays one comparison.
   */
  readonly #head: Uint8Array;
  /** Bytes of `#head` filled: stream offsets [0, #headKept) are kept there. */
  #headKept = 0;

  /** `keepHead`: bytes of the stream's start to keep besides the ring (0: none). */
  constructor(
    private readonly host: HubOutputHost,
    private readonly size: number,
    keepHead = 0,
  ) {
    this.address = host.core.bcastNew(size);
    this.#writer = host.core.bcastWriter(this.address);
    this.#head = new Uint8Array(keepHead);
  }

  /** The address, once the writer has booked what it copied: for every ring call but the write. */
  #ring(): number {
    this.#writer.settle();
    return this.address;
  }

  get handle(): number {
    return this.#ring();
  }

  addBackend(_id: string, options: HubOutputBackendOptions): number {
    const scrollback = screenScrollback(options.replay);
    const replay = typeof options.replay === "number" ? options.replay : 0;
    const slot = this.host.core.bcastAddBackend(this.#ring(), options.policy, options.lagLimit ?? this.size, replay);
    if (scrollback !== null) {
      this.#startScreen(); // made (or loading) now, so that it has the history by the time the backend opens
      this.#screenBackends.set(slot, scrollback);
    }
    return slot;
  }

  /**
   * Makes the screen emulator on first use (a hub that replays no screen parses nothing), or,
   * while the process has not loaded the emulator's code yet, once it has: it reads the ring's
   * history either way, so a screen made a little later is as right.
   */
  #startScreen(): void {
    if (this.#screen !== null || this.#screenLoading !== null) return;
    this.#screen = this.#makeScreen();
    if (this.#screen !== null) return;
    this.#screenLoading = loadHubScreen().then(
      () => this.#screenLoaded(),
      () => this.#screenLoaded(), // no emulator after all: the waiting backends get the live stream alone
    );
  }

  /** The emulator's code is there: the screen is made and joins the backends that opened meanwhile. */
  #screenLoaded(): void {
    this.#screenLoading = null;
    if (this.#freed) return;
    let screen: HubScreenReader | null = null;
    try {
      screen = this.#makeScreen();
    } catch {
      // Only a failed load gets here; the backends below go on without a repaint.
    }
    this.#screen = screen;
    const waiting = [...this.#screenWaiting];
    this.#screenWaiting.clear();
    const core = this.host.core;
    const ring = this.#ring();
    for (const [slot, { entry, scrollback, openedAt, held }] of waiting) {
      // Where the emulator starts reading, if the ring has lapped the opening head meanwhile.
      if (screen !== null) screen.join(entry, scrollback, Math.max(openedAt, core.bcastCursor(ring, screen.slot)));
      if (held) core.bcastUnblock(ring, slot);
    }
    this.#scheduleDrain();
  }

  #makeScreen(): HubScreenReader | null {
    return makeHubScreen(
      {
        core: this.host.core,
        address: this.address,
        settled: () => this.#ring(),
        scheduleDrain: () => this.#scheduleDrain(),
        fail: (entry, result) => this.host.fail(entry, result),
        evict: (entry) => this.host.evict(entry),
      },
      this.size,
      this.#screenSize.cols,
      this.#screenSize.rows,
    );
  }

  writeOwnSlot(slot: number, data: Uint8Array): number | undefined {
    const screen = this.#screen;
    if (screen === null) {
      const waiting = this.#screenWaiting.get(slot);
      if (waiting === undefined) return undefined;
      waiting.held = true; // its screen goes out first, once the emulator is there
      return 0;
    }
    if (slot === screen.slot) return screen.take(data);
    return screen.holdJoiner(slot);
  }

  screenParsed(): Promise<void> {
    if (this.#screenLoading !== null) return this.#screenLoading.then(() => this.screenParsed());
    return this.#screen?.parsed() ?? Promise.resolve();
  }

  resizeScreen(cols: number, rows: number): void {
    this.#screenSize = { cols, rows };
    this.#screen?.resize(cols, rows);
  }

  /** What was written while it was attached is still owed to it: served before letting go. */
  beforeDetach(entry: HubEntry): void {
    this.host.core.bcastDrainBackend(this.#ring(), entry.slot);
    this.#failedNow = this.#failedNow.filter(([failed]) => failed !== entry); // leaving anyway
  }

  removeBackend(slot: number): void {
    this.#screen?.forget(slot);
    this.#screenWaiting.delete(slot);
    this.#screenBackends.delete(slot);
    this.host.core.bcastRemoveBackend(this.#ring(), slot);
  }

  write(data: Uint8Array): number {
    // Most writes are only a copy into the ring: no call into the core, no allocation.
    const taken = this.#writer.write(data);
    if (taken === 0 && data.length > 0) return -ERRNO.EAGAIN;
    if (this.#headKept < this.#head.length) this.#keepHead(data, taken);
    if (!this.#drainScheduled) this.#scheduleDrain();
    return taken;
  }

  /**
   * All of `chunks` copied in one pass (one window, one drain scheduled, one head-keep update),
   * with no allocation on the way; the same bytes and result as successive writes would give.
   */
  writev(chunks: readonly Uint8Array[]): number {
    const taken = this.#writer.writev(chunks);
    if (taken === 0) return hasBytes(chunks) ? -ERRNO.EAGAIN : 0;
    if (this.#headKept < this.#head.length) this.#keepHeadOf(chunks, taken);
    if (!this.#drainScheduled) this.#scheduleDrain();
    return taken;
  }

  /** `#keepHead` for the first `taken` bytes of `chunks`. */
  #keepHeadOf(chunks: readonly Uint8Array[], taken: number): void {
    let left = Math.min(taken, this.#head.length - this.#headKept);
    for (let i = 0; left > 0; i++) {
      const data = chunks[i];
      const count = Math.min(left, data.length);
      this.#head.set(count === data.length ? data : data.subarray(0, count), this.#headKept);
      this.#headKept += count;
      left -= count;
    }
  }

  /** Copies the start of what the ring took into the head keep, up to its size. */
  #keepHead(data: Uint8Array, taken: number): void {
    const count = Math.min(taken, this.#head.length - this.#headKept);
    this.#head.set(count === data.length ? data : data.subarray(0, count), this.#headKept);
    this.#headKept += count;
  }

  /**
   * The kept bytes of stream offsets [from, from + size): the head keep holds [0, keep-head),
   * the ring the last `ring` bytes written; what lies between them is gone.
   */
  history(from: number, size: number): HubHistory {
    const core = this.host.core;
    const ring = this.#ring(); // booked: the ring's head is every byte written
    const written = core.bcastHead(ring);
    const start = Math.min(from, written);
    const end = Math.min(start + size, written);
    const headEnd = Math.min(end, this.#headKept);
    const ringStart = Math.max(written - this.size, 0);
    // Head bytes first; the ring serves the rest of the range it still holds.
    const fromRing = Math.max(start, this.#headKept, ringStart);
    const headBytes = Math.max(headEnd - start, 0);
    const ringBytes = Math.max(end - fromRing, 0);
    const data = new Uint8Array(headBytes + ringBytes);
    if (headBytes > 0) data.set(this.#head.subarray(start, headEnd));
    // The ring's byte at offset p sits at its base + p mod size.
    const base = (core.bcastHeadAddress(ring) >>> 0) - (written % this.size);
    let filled = headBytes;
    for (let at = fromRing; at < end;) {
      const inRing = at % this.size;
      const run = Math.min(end - at, this.size - inRing);
      data.set(core.view(base + inRing, run), filled);
      filled += run;
      at += run;
    }
    const goneFrom = Math.max(start, this.#headKept);
    const goneTo = Math.min(end, ringStart);
    return { from: start, to: end, data, gone: goneFrom < goneTo ? [{ from: goneFrom, to: goneTo }] : [], written };
  }

  backendWrote(entry: HubEntry, length: number, result: number, hardError: boolean): number {
    if (hardError) {
      // Not from inside the core's drain: taken out once the drain is done (see flush).
      this.#failedNow.push([entry, result]);
      return result;
    }
    if (result > 0 && entry.evictTimer) {
      clearTimeout(entry.evictTimer);
      entry.evictTimer = null;
    }
    if (result < length) this.#blockedNow.push(entry);
    return result;
  }

  /** The ring counts nothing for the frontend (the hub's open policy decides). */
  backendOpenChanged(entry: HubEntry, event: ChrEvent): boolean {
    const opened = event === ChrEvent.OPENED;
    this.host.core.bcastSetOpen(this.#ring(), entry.slot, opened);
    const scrollback = this.#screenBackends.get(entry.slot);
    if (scrollback !== undefined) {
      // The screen as it stands at the head it opened at goes out first (the emulator holds there).
      if (!opened) {
        this.#screen?.forget(entry.slot);
        this.#screenWaiting.delete(entry.slot);
      } else if (this.#screen !== null) this.#screen.join(entry, scrollback);
      else if (this.#screenLoading !== null) this.#screenWaiting.set(entry.slot, { entry, scrollback, openedAt: this.host.core.bcastHead(this.#ring()), held: false });
    }
    if (opened) this.#scheduleDrain(); // replay, if it asked for history
    return false;
  }

  stopWaiting(entry: HubEntry): void {
    entry.cancelWatch?.();
    entry.cancelWatch = null;
    if (entry.evictTimer) clearTimeout(entry.evictTimer);
    entry.evictTimer = null;
  }

  spaceFreed(): void {
    this.#scheduleDrain(); // flush wakes the writers once there is room
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    // Coalesce: every write of this turn reaches each backend as one large slice.
    queueMicrotask(this.#drainNow);
  }

  flush(): void {
    this.#drainScheduled = false;
    if (this.#freed) return; // a drain scheduled by the last write before the hub went: nothing to serve
    const core = this.host.core;
    core.bcastDrain(this.#ring());
    const blocked = this.#blockedNow;
    this.#blockedNow = [];
    const failed = this.#failedNow;
    this.#failedNow = [];
    for (const [entry, errno] of failed) this.host.fail(entry, errno);
    for (const entry of blocked) if (!entry.failure) this.#waitForBackend(entry);
    if (this.host.writersWaiting && core.bcastWritable(this.#ring()) > 0) this.host.wakeWriters();
  }

  #waitForBackend(entry: HubEntry): void {
    if (!this.host.entryAt(entry.slot) || entry.cancelWatch) return;
    const wake = () => {
      entry.cancelWatch = null;
      this.host.core.bcastUnblock(this.#ring(), entry.slot);
      this.#scheduleDrain();
    };
    const cancel = entry.chardev.addWatch(wake);
    if (cancel) entry.cancelWatch = cancel;
    else {
      const timer = setTimeout(wake, RETRY_WITHOUT_WATCH_MS);
      entry.cancelWatch = () => clearTimeout(timer);
    }
    if (entry.policy === "evict" && !entry.evictTimer) {
      entry.evictTimer = setTimeout(() => {
        entry.evictTimer = null;
        this.host.evict(entry);
      }, entry.stallMs);
    }
  }

  /** No watch while the ring has room; else one woken by the drain that makes room. */
  addWatch(callback: () => void): (() => void) | null {
    if (this.host.core.bcastWritable(this.#ring()) > 0) return null;
    return this.host.addWriterWatch(callback);
  }

  streamPosition(): number {
    return this.host.core.bcastHead(this.#ring());
  }

  backendPosition(slot: number): number {
    return this.host.core.bcastCursor(this.#ring(), slot);
  }

  counters(slot: number, open: boolean): HubOutputCounters {
    const core = this.host.core;
    const ring = this.#ring();
    return {
      bytesOut: core.bcastDelivered(ring, slot),
      bytesDropped: core.bcastDropped(ring, slot),
      lag: open ? core.bcastHead(ring) - core.bcastCursor(ring, slot) : 0,
      stalls: core.bcastStalls(ring, slot),
    };
  }

  free(): void {
    this.#freed = true;
    this.#screen?.dispose();
    this.host.core.bcastFree(this.#ring());
  }
}
