// `hub`: one frontend, many backends (QEMU 10.0's char-hub), and what we add beyond it.
//
// With `ring=0` (the default) output goes to every open backend through the WASM core's
// write-to-all loop, exactly as QEMU: the slowest backend sets the pace. With `ring=BYTES` the
// frontend's bytes are copied once into the core's broadcast ring and every backend drains
// from it at its own pace under its policy (block, drop, evict). Input from any backend
// reaches the frontend; which OPENED/CLOSED the frontend sees is the open policy's call.
//
// The two ways of output are two strategies behind one interface (_hub_output.ts), chosen once
// when the hub is made: _hub_write_all.ts and _hub_ring.ts. This file keeps what both share:
// the backends, events, open policy, terminal size, failures and resumption. Beside it: the
// options and their checks (_hub_options.ts), the input queue and exclusive typist
// (_hub_input.ts), the listeners that serve many clients (_hub_listeners.ts) and the event
// listeners (_hub_events.ts).

import type { Core } from "../core.ts";
import { ChardevError } from "../errors.ts";
import { ERRNO, errnoName } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import { QEMU_MAX_HUB } from "../options.ts";
import { quoteInput } from "../limits.ts";
import { Chardev, type ChardevContext, type ChardevUser, defineDriver } from "./_chardev.ts";
import { isClientSource } from "./_client_source.ts";
import { type HubEvent, HubEventListeners } from "./_hub_events.ts";
import { type HubBackendStats, HubClientListeners } from "./_hub_listeners.ts";
import { HubInputQueue, INPUT_QUEUE_LIMIT } from "./_hub_input.ts";
import { type HubBackendOptions, hubDataFromOptions, type HubOptions, hubOptions, hubSettingsFromData, MAX_TERMINAL_CELLS } from "./_hub_options.ts";
import type { HubEntry, HubHistory, HubOutput, HubOutputHost } from "./_hub_output.ts";
import { RingOutput } from "./_hub_ring.ts";
import { DEFAULT_SCREEN_COLS, DEFAULT_SCREEN_ROWS } from "./_hub_screen_contract.ts";
import { HubSizeAgreement, type HubTerminalSize } from "./_hub_size.ts";
import { WriteAllOutput } from "./_hub_write_all.ts";

export { type HubEvent, onEveryHubEvent } from "./_hub_events.ts";
export type { HubBackendStats } from "./_hub_listeners.ts";
export { checkHubBackendOptions, type HubBackendOptions, type HubOpenPolicy, type HubOptions, hubOptions, type HubPolicy } from "./_hub_options.ts";

const DEFAULT_STALL_MS = 5000;
/** The most bytes one `history` read (QMP `hub-history`) returns: its answer stays one bounded message. */
export const MAX_HISTORY_READ_BYTES = 1024 * 1024;
const DEFAULT_INPUT_IDLE_MS = 1000;
/** A failed backend that can come back (`resumeAfterLoss`) is asked first after this long... */
const FIRST_RESUME_MS = 100;
/** ...then after twice as long each time, up to this. */
const MAX_RESUME_MS = 5000;

type Entry = HubEntry;

/** Hubs by their core address, per core: the core names the hub when it writes a backend. */
const hubsByCore = new WeakMap<Core, Map<number, HubChardev>>();

function hubsOf(core: Core): Map<number, HubChardev> {
  let hubs = hubsByCore.get(core);
  if (!hubs) {
    const known = new Map<number, HubChardev>();
    hubs = known;
    hubsByCore.set(core, known);
    core.onBackendWrite = (hub, index, data) => known.get(hub)!.writeBackend(index, data);
    core.onBackendGap = (ring, index, bytes) => known.get(ring)!.reportGap(index, bytes);
  }
  return hubs;
}

/** Kinds QEMU refuses to stack under a hub. */
export function isStackingKind(chardev: Chardev): boolean {
  return chardev.kind === "hub" || chardev.kind === "mux";
}

/** Whether `from` is `target` or stands (through hubs and muxes) on it. */
function reaches(from: Chardev, target: Chardev): boolean {
  if (from === target) return true;
  return from.children.some((child) => reaches(child, target));
}

export class HubChardev extends Chardev {
  readonly kind = "hub";
  readonly options: Required<Omit<HubOptions, "primary">> & { primary?: string };
  /** QEMU's write-to-all or the broadcast ring, chosen once here: all that differs between them. */
  readonly #output: HubOutput;
  readonly #entries = new Map<number, Entry>();
  readonly #events = new HubEventListeners(this);
  /** Hear the input the hub takes for its device (an `asciicast` backend's `"i"` events). */
  readonly #inputListeners = new Set<(data: Uint8Array, backend: string) => void>();
  #evictions = 0;
  /** Input waiting for the frontend (outside qemuCompat), and who holds the floor. */
  readonly #inputQueue: HubInputQueue;
  readonly #sizes: HubSizeAgreement;
  readonly #sizeListeners = new Set<(size: HubTerminalSize) => void>();
  /** Listeners that serve many clients (`max-clients` > 1) and their connections. */
  readonly #clientListeners: HubClientListeners;
  /** Attach order of entries and listener rows, so `stats` lists them as they came. */
  readonly #attachedAt = new WeakMap<object, number>();
  #attachCount = 0;

  constructor(id: string, context: ChardevContext, options: HubOptions = {}) {
    super(id, context);
    this.options = {
      ring: options.ring ?? 0,
      keepHead: options.keepHead ?? 0,
      open: options.open ?? (options.primary ? "primary" : "any"),
      primary: options.primary,
      input: options.input ?? "shared",
      inputIdleMs: options.inputIdleMs ?? DEFAULT_INPUT_IDLE_MS,
      size: options.size ?? "latest",
      cols: options.cols ?? DEFAULT_SCREEN_COLS,
      rows: options.rows ?? DEFAULT_SCREEN_ROWS,
    };
    this.#clientListeners = new HubClientListeners({
      id,
      checkBackendOptions: (listenerId, given) => {
        const trial = this.#output.addBackend(listenerId, { policy: given.policy ?? "block", lagLimit: given.lagLimit, replay: given.replay, stallMs: given.stallMs });
        this.#output.removeBackend(trial);
      },
      attachBackend: (chardev, given) => this.attachBackend(chardev, given),
      detachBackend: (backendId) => this.detachBackend(backendId),
      emit: (event) => this.#emit(event),
      warn: (message) => this.context.warn(message),
      noteAttached: (row) => this.#attachedAt.set(row, this.#attachCount++),
      attachOrder: (row) => this.#attachedAt.get(row) ?? 0,
    });
    this.#inputQueue = new HubInputQueue(this, this.options.input === "exclusive", this.options.inputIdleMs);
    this.#sizes = new HubSizeAgreement(this.options.size, { cols: this.options.cols, rows: this.options.rows });
    const core = context.core;
    const hub = this;
    const host: HubOutputHost = {
      core,
      entryAt: (slot) => this.#entries.get(slot),
      fail: (entry, result) => this.#fail(entry, result),
      evict: (entry) => this.#evict(entry),
      // Writers wait on the one watch list every chardev has (the base's).
      addWriterWatch: (callback) => this.addToWatchList(callback),
      wakeWriters: () => this.fireWatches(),
      get writersWaiting() {
        return hub.watchesWaiting;
      },
    };
    if (this.options.keepHead > 0 && !this.isRing) {
      throw new ChardevError("INVALID_VALUE", "hub: keep-head needs a ring (ring=BYTES): QEMU's unbuffered hub keeps no history");
    }
    this.#output = this.isRing ? new RingOutput(host, this.options.ring, this.options.keepHead) : new WriteAllOutput(host);
    this.#output.resizeScreen?.(this.options.cols, this.options.rows);
    hubsOf(core).set(this.#output.address, this);
    if (this.options.open === "always") this.beOpen = true;
  }

  /** True when output goes through the broadcast ring rather than QEMU's write-to-all loop. */
  get isRing(): boolean {
    return this.options.ring > 0;
  }

  /** QEMU's own event counting decides what the frontend sees (ring=0, open=any). */
  get #countsEvents(): boolean {
    return this.#output.countsOpenEvents && this.options.open === "any";
  }

  /** Core address of this hub's books (for stats and tests); a ring's pending writes are booked first. */
  get handle(): number {
    return this.#output.handle;
  }

  /** Backends in attach order. */
  get backends(): Chardev[] {
    return [...this.#entries.values()].map((entry) => entry.chardev);
  }

  override get children(): Chardev[] {
    return this.backends;
  }

  /**
   * The hub's output by absolute offset (0: its first byte): what `keepHead` kept of the start
   * and what the ring still holds of the end, with the ranges in between reported `gone`. At most
   * {@link MAX_HISTORY_READ_BYTES} of the range are read. A hub without a ring keeps nothing:
   * the whole range is gone.
   *
   * @example The boot log, after the ring has wrapped
   * ```ts
   * declare const hub: HubChardev; // e.g. from reg.add("hub,id=hub0,chardevs.0=log0,ring=64K,keep-head=1M")
   * const { data, gone, written } = hub.history(0, 65536);
   * console.log(new TextDecoder().decode(data), gone, written);
   * ```
   */
  history(from: number, size: number): HubHistory {
    if (!Number.isSafeInteger(from) || from < 0) throw new ChardevError("INVALID_VALUE", "hub: history 'from' must be a non-negative integer");
    if (!Number.isSafeInteger(size) || size < 1 || size > MAX_HISTORY_READ_BYTES) {
      throw new ChardevError("INVALID_VALUE", `hub: history 'size' must be 1..${MAX_HISTORY_READ_BYTES}`);
    }
    if (this.#output.history) return this.#output.history(from, size);
    const written = this.#output.streamPosition();
    const start = Math.min(from, written);
    const end = Math.min(start + size, written);
    return { from: start, to: end, data: new Uint8Array(0), gone: start < end ? [{ from: start, to: end }] : [], written };
  }

  /** Hot-plugged and configured backends evicted so far. */
  get evictions(): number {
    return this.#evictions;
  }

  /**
   * Takes `chardev` as a backend. The QEMU rules apply in `qemuCompat` mode (at most 4, no hub
   * or mux under a hub); otherwise any chardev that does not make a cycle.
   */
  attachBackend(chardev: Chardev, options: HubBackendOptions = {}): void {
    const compat = this.context.qemuCompat;
    if (compat && isStackingKind(chardev)) {
      throw new ChardevError(
        "HUB_STACKING",
        `hub: multiplexers and hub devices can't be stacked, check chardev '${chardev.id}', chardev should not be a hub device or have 'mux=on' enabled`,
      );
    }
    if (compat && this.#entries.size >= QEMU_MAX_HUB) {
      throw new ChardevError("HUB_TOO_MANY", `hub: too many uses of chardevs '${this.id}' (maximum is ${QEMU_MAX_HUB})`);
    }
    if (reaches(chardev, this)) {
      throw new ChardevError("HUB_CYCLE", `hub: chardev '${chardev.id}' can't be attached to hub '${this.id}': it would make a cycle`);
    }
    if (isClientSource(chardev) && (this.isRing || !chardev.fansOutItself)) {
      return this.#clientListeners.attach(chardev, { ...options, replay: options.replay ?? chardev.defaultReplay });
    }
    const policy = options.policy ?? "block";
    // QEMU's write-to-all refuses any policy but `block`, and the keys only a ring gives meaning.
    const slot = this.#output.addBackend(chardev.id, { policy, lagLimit: options.lagLimit, replay: options.replay, stallMs: options.stallMs });
    const entry: Entry = {
      chardev,
      slot,
      policy,
      stallMs: options.stallMs ?? DEFAULT_STALL_MS,
      mode: options.mode ?? "rw",
      open: false,
      bytesIn: 0,
      inputDiscarded: 0,
      eventsDiscarded: 0,
      cancelWatch: null,
      evictTimer: null,
      failure: null,
      resumeTimer: null,
      user: {
        canRead: () => this.#roomFor(entry),
        read: (data) => this.#input(entry, data),
        event: (event) => this.#backendEvent(entry, event),
        // A failure between writes (an http sink's refused request) is taken as the write
        // answering it now would be: out at once, not at the next output.
        backendFailed: (errno) => {
          if (!this.context.qemuCompat) this.#fail(entry, -errno);
        },
      },
    };
    this.#entries.set(slot, entry);
    this.#attachedAt.set(entry, this.#attachCount++);
    try {
      chardev.attachUser(entry.user); // an open backend reports OPENED from inside
    } catch (error) {
      this.#entries.delete(slot);
      this.#output.removeBackend(slot);
      throw error;
    }
    this.#emit({ type: "attach", backend: chardev.id });
  }

  /**
   * Makes a backend in this hub's context and attaches it (a connection of the control socket,
   * which no registry knows); returns it. Throws as `attachBackend` does, leaving nothing attached.
   */
  attachNew<T extends Chardev>(make: (context: ChardevContext) => T, options: HubBackendOptions = {}): T {
    const chardev = make(this.context);
    this.attachBackend(chardev, options);
    return chardev;
  }

  /**
   * Makes backend `id` read-write or read-only from now on (`chardev-hub attach`'s `f` and `s`).
   * One that becomes read-only lets go of the floor it held under `input=exclusive`.
   */
  setBackendMode(id: string, mode: "rw" | "ro"): void {
    const entry = this.#entryById(id);
    entry.mode = mode;
    if (mode === "ro") this.#forgetSize(id);
    if (mode === "ro") this.#inputQueue.releaseFloor(entry);
  }

  /**
   * Under `input=exclusive`, backend `id` takes the floor from whoever holds it (conserver's
   * bump), for `inputIdleMs` of idleness as if it had typed; a no-op under `input=shared`.
   */
  giveFloor(id: string): void {
    const entry = this.#entryById(id);
    this.#inputQueue.giveFloor(entry);
  }

  #entryById(id: string): Entry {
    const entry = [...this.#entries.values()].find((candidate) => candidate.chardev.id === id);
    if (!entry) throw new ChardevError("NOT_FOUND", `hub: chardev '${quoteInput(id)}' is not a backend of hub '${this.id}'`);
    return entry;
  }

  /** Hot-unplug: lets go of backend `id`; it behaves as if it closed. */
  detachBackend(id: string): void {
    if (this.#clientListeners.detach(id)) return;
    const entry = [...this.#entries.values()].find((candidate) => candidate.chardev.id === id);
    if (!entry) throw new ChardevError("NOT_FOUND", `hub: chardev '${id}' is not a backend of hub '${this.id}'`);
    this.#output.beforeDetach(entry); // what it is still owed, served before letting go
    this.#release(entry);
    if (entry.open) this.#backendEvent(entry, ChrEvent.CLOSED);
    this.#entries.delete(entry.slot);
    this.#output.removeBackend(entry.slot);
    this.#inputQueue.releaseFloor(entry);
    this.#forgetSize(id);
    this.#emit({ type: "detach", backend: id });
    this.#clientListeners.forgetClient(entry.chardev);
    this.#output.spaceFreed(); // a waiting writer hears of it (a left backend's watch never fires)
  }

  #release(entry: Entry): void {
    entry.chardev.detachUser(entry.user);
    this.#output.stopWaiting(entry);
    if (entry.resumeTimer) clearTimeout(entry.resumeTimer);
    entry.resumeTimer = null;
  }

  override attachUser(user: ChardevUser): void {
    if (this.user) throw new ChardevError("IN_USE", `hub: chardev '${this.id}' is already used`);
    super.attachUser(user);
  }

  // ---- output ----

  protected writeOut(data: Uint8Array): number {
    return this.#output.write(data);
  }

  /**
   * The frontend's write, as the base's (`-EIO` if the strategy threw, `logfile=` fed) but a
   * function of the hub's own: the base's `write` serves every kind of a process (sockets,
   * files, ptys...), so its call to `writeOut` goes megamorphic and is no longer inlined; here
   * the whole chain down to the ring copy is one monomorphic path (measured: about half the cost
   * per 64-byte write once six kinds had written).
   */
  override write(data: Uint8Array): number {
    if (this.logging) return super.write(data);
    try {
      return this.#output.write(data);
    } catch (error) {
      return this.writeThrew(error);
    }
  }

  /** A ring copies every chunk in one pass; write-to-all takes them as successive writes. */
  protected override writevOut(chunks: readonly Uint8Array[]): number {
    return this.#output.writev(chunks);
  }

  /** The core writes backend `slot` through here; a refusal is remembered for its watch. */
  writeBackend(slot: number, data: Uint8Array): number {
    const own = this.#output.writeOwnSlot?.(slot, data); // the screen emulator, or a backend owed its screen
    if (own !== undefined) return own;
    const entry = this.#entries.get(slot);
    if (!entry) return data.length; // detached during this write: nothing owed to it
    const result = entry.chardev.write(data);
    const hardError = result < 0 && result !== -ERRNO.EAGAIN && !this.context.qemuCompat;
    return this.#output.backendWrote(entry, data.length, result, hardError);
  }

  /** The core skipped `bytes` for a `drop` backend that fell behind. */
  reportGap(slot: number, bytes: number): void {
    const entry = this.#entries.get(slot);
    if (entry) this.#emit({ type: "gap", backend: entry.chardev.id, bytes });
  }

  /** Serves every backend of a ring hub now, instead of at the end of this turn. */
  flush(): void {
    this.#output.flush();
  }

  /**
   * A hard write error (anything but EAGAIN, outside qemuCompat): the backend is closed for the
   * hub at once and reported (hub event, a line on stderr); the others go on untouched. One
   * that can come back (`resumeAfterLoss`: a file) is asked again with a backoff.
   */
  #fail(entry: Entry, result: number): void {
    if (!this.#entries.has(entry.slot) || entry.failure) return;
    const errno = errnoName(result);
    entry.failure = { errno, position: this.#output.backendPosition(entry.slot) };
    this.#output.stopWaiting(entry);
    const id = entry.chardev.id;
    this.context.warn(`hub: chardev '${id}' failed with ${errno}: hub '${this.id}' goes on without it`);
    this.#emit({ type: "error", backend: id, errno });
    if (entry.open) this.#backendEvent(entry, ChrEvent.CLOSED);
    this.#scheduleResume(entry, FIRST_RESUME_MS);
    this.#output.spaceFreed();
  }

  /** Asks a failed backend after `delayMs` to take output again; it rejoins at the head. */
  #scheduleResume(entry: Entry, delayMs: number): void {
    if (!entry.chardev.resumeAfterLoss) return; // it comes back only by opening again
    entry.resumeTimer = setTimeout(() => {
      entry.resumeTimer = null;
      const failure = entry.failure;
      if (!failure || !this.#entries.has(entry.slot)) return;
      // Counted and noted with nothing written in between: the note holds the exact hole.
      const lost = this.#output.streamPosition() - failure.position;
      if (entry.chardev.resumeAfterLoss!(lost, failure.errno)) {
        entry.failure = null;
        this.#backendEvent(entry, ChrEvent.OPENED);
      } else {
        this.#scheduleResume(entry, Math.min(delayMs * 2, MAX_RESUME_MS));
      }
    }, delayMs);
  }

  /** An `evict` backend stalled past its `stallMs` (the ring's timer): let go of it, told why. */
  #evict(entry: Entry): void {
    if (!this.#entries.has(entry.slot)) return;
    this.#evictions++;
    const reason = `stalled for more than ${entry.stallMs} ms`;
    this.detachBackend(entry.chardev.id);
    entry.chardev.evicted(reason); // its peer is let go (a socket closed, a tab told why)
    this.#emit({ type: "evict", backend: entry.chardev.id, reason });
  }

  /** QEMU returns no watch when no backend is blocked; else the blocked backend's (ring: room). */
  override addWatch(callback: () => void): (() => void) | null {
    return this.#output.addWatch(callback);
  }

  // ---- input ----

  /**
   * QEMU mode hands input straight over; otherwise input waits in one queue so a chunk from
   * one backend is never interleaved with another's.
   */
  #roomFor(entry: Entry): number {
    if (entry.mode === "ro") return INPUT_QUEUE_LIMIT; // read and discarded
    if (this.context.qemuCompat) return this.canReceive();
    return this.#inputQueue.room;
  }

  #input(entry: Entry, data: Uint8Array): void {
    entry.bytesIn += data.length;
    if (entry.mode === "ro" || !this.#inputQueue.mayType(entry)) {
      entry.inputDiscarded += data.length;
      return;
    }
    for (const listener of this.#inputListeners) listener(data, entry.chardev.id);
    if (this.context.qemuCompat) {
      this.receive(data);
      return;
    }
    this.#inputQueue.push(data);
  }

  override flushInput(): void {
    this.#inputQueue.pump();
    for (const entry of this.#entries.values()) entry.chardev.flushInput();
  }

  // ---- terminal size ----

  /** The terminal size agreed under the `size` policy: the device's and the screen emulator's. */
  get terminalSize(): HubTerminalSize {
    return this.#sizes.agreed;
  }

  /**
   * Backend `backendId` (a browser tab, the command's terminal, an `attach` client) is
   * `cols`x`rows` now. A read-only backend never resizes, and under `size=manual` nobody does;
   * `onSize` listeners hear when the agreed size changes.
   *
   * @example Two tabs under `size=smallest`: the device gets the smaller
   * ```ts
   * declare const hub: HubChardev; // reg.add("hub,id=h,ring=64K,size=smallest,chardevs.0=tab1,chardevs.1=tab2")
   * hub.onSize(({ cols, rows }) => console.log(`device is now ${cols}x${rows}`));
   * hub.resize("tab1", 120, 40);
   * hub.resize("tab2", 100, 50); // device is now 100x40
   * ```
   */
  resize(backendId: string, cols: number, rows: number): void {
    const entry = [...this.#entries.values()].find((candidate) => candidate.chardev.id === backendId);
    if (!entry) throw new ChardevError("NOT_FOUND", `hub: chardev '${quoteInput(backendId)}' is not a backend of hub '${this.id}'`);
    for (const [what, cells] of [["cols", cols], ["rows", rows]] as const) {
      if (!Number.isSafeInteger(cells) || cells < 1 || cells > MAX_TERMINAL_CELLS) {
        throw new ChardevError("INVALID_VALUE", `hub: terminal ${what} must be 1..${MAX_TERMINAL_CELLS}, not '${quoteInput(String(cells))}'`);
      }
    }
    if (entry.mode === "ro") return; // a viewer never changes what the others see
    if (this.#sizes.report(backendId, cols, rows)) this.#sizeChanged();
  }

  /**
   * Resolves once the hub's screen emulator (kept while a backend has `replay=screen`) has
   * parsed everything the frontend wrote so far; at once when there is none. For tests and
   * benchmarks that measure or compare the screen.
   */
  screenParsed(): Promise<void> {
    return this.#output.screenParsed?.() ?? Promise.resolve();
  }

  /** Calls `listener` with every new agreed size; returns the function that stops it. */
  onSize(listener: (size: HubTerminalSize) => void): () => void {
    this.#sizeListeners.add(listener);
    return () => this.#sizeListeners.delete(listener);
  }

  /** Backend `id` closed, left or became read-only: its size no longer counts. */
  #forgetSize(id: string): void {
    if (this.#sizes.forget(id)) this.#sizeChanged();
  }

  #sizeChanged(): void {
    const size = this.#sizes.agreed;
    this.#output.resizeScreen?.(size.cols, size.rows);
    for (const listener of this.#sizeListeners) listener(size);
  }

  // ---- events ----

  #backendEvent(entry: Entry, event: ChrEvent): void {
    if (event !== ChrEvent.OPENED && event !== ChrEvent.CLOSED) {
      // A viewer's BREAK would reach the device as surely as its keys (SysRq on a Linux console).
      if (entry.mode === "ro") entry.eventsDiscarded++;
      else {
        // Behind the keys typed before it that still wait for room (the device sees them in order).
        this.#inputQueue.pushEvent(event);
        if (event === ChrEvent.BREAK) this.#emit({ type: "break", backend: entry.chardev.id });
      }
      return;
    }
    const opened = event === ChrEvent.OPENED;
    if (!opened && this.#clientListeners.isClient(entry.chardev)) {
      // A connection that ended is detached once this event is through (not from inside a
      // write, where a hard error reports it); one that never opened counts for nothing.
      queueMicrotask(() => {
        if (this.#entries.get(entry.slot) === entry) this.detachBackend(entry.chardev.id);
      });
      if (!entry.open) return;
    }
    // A failed backend is closed for the hub already: its own CLOSED must not count twice.
    if (!opened && !entry.open && entry.failure) return;
    if (opened && entry.failure) {
      entry.failure = null; // it came back by itself (a socket's next client)
      if (entry.resumeTimer) clearTimeout(entry.resumeTimer);
      entry.resumeTimer = null;
    }
    entry.open = opened;
    if (!opened) this.#forgetSize(entry.chardev.id);
    // The core's books first: QEMU's counting (and catch-up on reopen), or the ring's open flag.
    const counted = this.#output.backendOpenChanged(entry, event);
    // As before the strategies split: only a ring hub frees the floor when its typist closes.
    if (!opened && this.isRing) this.#inputQueue.releaseFloor(entry);
    if (!opened) this.#output.spaceFreed();
    if (this.#countsEvents) {
      if (counted) this.emitEvent(event);
    } else {
      this.#followOpenPolicy();
    }
    this.#emit({ type: opened ? "open" : "close", backend: entry.chardev.id });
  }

  /** Derives the frontend's open state from the backends' under `open=all|always|primary`. */
  #followOpenPolicy(): void {
    const entries = [...this.#entries.values()];
    let open: boolean;
    switch (this.options.open) {
      case "always":
        open = true;
        break;
      case "all":
        open = entries.length > 0 && entries.every((entry) => entry.open);
        break;
      case "primary":
        // A listener as the primary (`max-clients`): open while any of its connections is.
        open = entries.some((entry) => (entry.chardev.id === this.options.primary || this.#clientListeners.listenerOf(entry.chardev) === this.options.primary) && entry.open);
        break;
      default:
        open = entries.some((entry) => entry.open);
    }
    if (open !== this.beOpen) this.emitEvent(open ? ChrEvent.OPENED : ChrEvent.CLOSED);
  }

  /**
   * Calls `listener` with the input the hub takes from a backend for its device (read-only
   * backends' and, under `input=exclusive`, a non-typist's input is discarded, so never heard);
   * `data` is only valid during the call. Returns the function that stops it.
   */
  onInput(listener: (data: Uint8Array, backend: string) => void): () => void {
    this.#inputListeners.add(listener);
    return () => this.#inputListeners.delete(listener);
  }

  /** Calls `listener` for every hub event; returns the function that stops it. */
  onEvent(listener: (event: HubEvent) => void): () => void {
    return this.#events.add(listener);
  }

  #emit(event: HubEvent): void {
    this.#events.emit(event);
  }

  /**
   * Hub events as an async iterable; stop with `signal` or by breaking out of the loop.
   *
   * @example Log the bytes each `drop` backend missed
   * ```ts
   * declare const hub: HubChardev; // e.g. from reg.add("hub,id=hub0,chardevs.0=log0,ring=1M,policy.0=drop")
   * for await (const event of hub.events()) if (event.type === "gap") console.log(event.backend, event.bytes);
   * ```
   */
  events(signal?: AbortSignal): AsyncGenerator<HubEvent> {
    return this.#events.iterate(signal);
  }


  /**
   * Counters of every backend, in attach order. A listener (`max-clients` > 1) has a row of its
   * own (never open, no bytes, `clients`), and each of its connections one (`listener`, `peer`,
   * `uid`, `since`).
   */
  stats(): HubBackendStats[] {
    const rows: [number, HubBackendStats][] = [...this.#entries.values()].map((entry) => {
      const counters = this.#output.counters(entry.slot, entry.open);
      const row: HubBackendStats = {
        id: entry.chardev.id,
        open: entry.open,
        policy: entry.policy,
        mode: entry.mode,
        bytesIn: entry.bytesIn,
        bytesOut: counters.bytesOut,
        bytesDropped: counters.bytesDropped,
        inputDiscarded: entry.inputDiscarded,
        eventsDiscarded: entry.eventsDiscarded,
        lag: counters.lag,
        stalls: counters.stalls,
      };
      this.#clientListeners.describeClient(entry.chardev, row);
      const sink = entry.chardev.sinkStats?.();
      if (sink) row.sink = sink;
      return [this.#attachedAt.get(entry) ?? 0, row];
    });
    rows.push(...this.#clientListeners.rows());
    return rows.sort((a, b) => a[0] - b[0]).map(([, row]) => row);
  }

  override async destroy(): Promise<void> {
    for (const entry of this.#entries.values()) this.#release(entry);
    this.#entries.clear();
    // Connections belong to no registry: they go with the hub.
    this.#clientListeners.destroy();
    this.#inputQueue.stop();
    hubsOf(this.context.core).delete(this.#output.address);
    this.#output.free();
    await super.destroy();
  }
}

// ---- configuration (the options and their checks: _hub_options.ts) ----

export const hubDriver = defineDriver({
  type: "hub",
  options: hubOptions,
  fromOptions: hubDataFromOptions,
  open(id, data, context) {
    const { ids, configured, options } = hubSettingsFromData(data, context);
    const hub = new HubChardev(id, context, options);
    if (hub.options.open === "primary" && options.primary === undefined) {
      void hub.destroy();
      throw new ChardevError("MISSING_PARAMETER", "hub: open=primary needs primary=ID");
    }
    try {
      ids.forEach((backendId, index) => {
        const chardev = context.find(backendId);
        if (!chardev) throw new ChardevError("NOT_FOUND", `hub: chardev can't be found by id '${quoteInput(backendId)}'`);
        hub.attachBackend(chardev, configured[index]);
      });
    } catch (error) {
      void hub.destroy(); // lets go of the backends it took: no half-made hub stays behind
      throw error;
    }
    return hub;
  },
});
