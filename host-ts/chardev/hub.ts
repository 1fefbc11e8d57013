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
// the backends and their options, input, events, open policy, failures and resumption.

import type { Core, RingPolicy } from "../core.ts";
import { ChardevError } from "../errors.ts";
import { ERRNO, errnoName } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import { listOption, parseSize, QEMU_MAX_HUB } from "../options.ts";
import type { OptionSchema } from "../option_schema.ts";
import { checkCoreRoom, checkMilliseconds, checkSize, MAX_RING_BYTES, MAX_TIMER_MS, quoteInput } from "../limits.ts";
import { Chardev, type ChardevContext, type ChardevUser, defineDriver } from "./_chardev.ts";
import { type ClientInfo, type ClientSource, isClientSource } from "./_client_source.ts";
import type { HubEntry, HubHistory, HubOutput, HubOutputHost } from "./_hub_output.ts";
import { RingOutput } from "./_hub_ring.ts";
import { DEFAULT_SCREEN_COLS, DEFAULT_SCREEN_ROWS, type HubReplay, isScreenReplay } from "./_hub_screen_contract.ts";
import { HUB_SIZE_POLICIES, HubSizeAgreement, type HubSizePolicy, type HubTerminalSize } from "./_hub_size.ts";
import { WriteAllOutput } from "./_hub_write_all.ts";

/** How a backend of a ring hub is treated when it cannot keep up. */
export type HubPolicy = RingPolicy;
/** When the frontend sees OPENED and CLOSED. */
export type HubOpenPolicy = "any" | "all" | "always" | "primary";

/** Per-backend options (`policy.N=...` in option strings). */
export interface HubBackendOptions {
  /**
   * `block` holds the writer back (QEMU); `drop` skips ahead and reports a gap; `evict`
   * blocks, then is detached once stalled for `stallMs`. Only a ring hub has a choice.
   * @default "block"
   */
  policy?: HubPolicy;
  /** A `drop` backend further behind than this skips ahead. @default the ring size */
  lagLimit?: number;
  /** An `evict` backend stalled this long is detached. @default 5000 */
  stallMs?: number;
  /**
   * What a ring hub replays when the backend opens: bytes of recent output, or `screen` (the
   * screen as it stands, one repaint from the hub's terminal emulator, then the live stream;
   * `screen:LINES` limits the scrollback lines above it). @default 0
   */
  replay?: HubReplay;
  /** `ro` discards (and counts) the backend's input. @default "rw" */
  mode?: "rw" | "ro";
}

/** Hub-wide options. */
export interface HubOptions {
  /** Broadcast ring size, a power of two; 0 is QEMU's unbuffered hub. @default 0 */
  ring?: number;
  /**
   * Bytes of the hub's first output (the boot log) kept besides the ring, after the ring has
   * overwritten them; read with `history`. Needs a ring. @default 0
   */
  keepHead?: number;
  /** @default "any" (QEMU: first OPENED, last CLOSED) */
  open?: HubOpenPolicy;
  /** The backend whose state the frontend follows with `open: "primary"`. */
  primary?: string;
  /** `exclusive` lets one backend type at a time. @default "shared" */
  input?: "shared" | "exclusive";
  /** With `input: "exclusive"`, the typist keeps the floor until this long idle. @default 1000 */
  inputIdleMs?: number;
  /** How the terminal size is agreed among read-write backends (tmux's `window-size`). @default "latest" */
  size?: HubSizePolicy;
  /** The width before any backend tells one, and always with `size: "manual"`. @default 80 */
  cols?: number;
  /** The height before any backend tells one, and always with `size: "manual"`. @default 24 */
  rows?: number;
}

/** Counters of one backend (API, `query-chardev`, QMP). */
export interface HubBackendStats {
  id: string;
  open: boolean;
  policy: HubPolicy;
  mode: "rw" | "ro";
  bytesIn: number;
  bytesOut: number;
  bytesDropped: number;
  inputDiscarded: number;
  /** Events other than OPENED/CLOSED (a BREAK) a read-only backend sent, dropped. */
  eventsDiscarded: number;
  /** Bytes written by the frontend that this backend has not taken yet. */
  lag: number;
  stalls: number;
  /** A listener's row (`max-clients` > 1): its connections now. It moves no bytes itself. */
  clients?: number;
  /** A connection's row: the listener it came through (its id is `LISTENER#N`). */
  listener?: string;
  /** A connection's row: who is on the other end (`unix:PATH`, `tcp:HOST:PORT`). */
  peer?: string;
  /** A connection's row: the peer's uid, where the kernel tells (TCP on this machine, Linux). */
  uid?: number;
  /** A connection's row: when it connected, ms since the epoch. */
  since?: number;
}

/** What happens on a hub, for `hub.onEvent` and `for await (const ev of hub.events())`. */
export type HubEvent =
  | { type: "gap"; backend: string; bytes: number }
  | { type: "evict"; backend: string; reason: string }
  /** A hard write error (`errno`: "ENOSPC", "EIO", "EPIPE", ...) took the backend out; it is closed for the hub. */
  | { type: "error"; backend: string; errno: string }
  /** `break`: a read-write backend sent a BREAK, passed on to the device (a viewer's is discarded). */
  | { type: "open" | "close" | "attach" | "detach" | "break"; backend: string };

const DEFAULT_STALL_MS = 5000;
/** The most bytes one `history` read (QMP `hub-history`) returns: its answer stays one bounded message. */
export const MAX_HISTORY_READ_BYTES = 1024 * 1024;
/** The largest terminal width or height a backend may report (a pty's winsize is 16-bit). */
const MAX_TERMINAL_CELLS = 65535;
const DEFAULT_INPUT_IDLE_MS = 1000;
/** Input kept for a frontend that cannot take it yet, beyond which backends are paused. */
const INPUT_QUEUE_LIMIT = 64 * 1024;
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

/** Listeners of the events of every hub in this process; see `onEveryHubEvent`. */
const everyHubListeners = new Set<(hub: HubChardev, event: HubEvent) => void>();

/**
 * Calls `listener` for every event of every hub (of any registry) in this process; returns the
 * function that stops it. For watchers that outlive the hubs they report on (a QMP monitor
 * forwards backend errors as events); check that a hub is yours with `registry.find(hub.id) === hub`.
 *
 * @example Log every backend error of every hub
 * ```ts
 * const stop = onEveryHubEvent((hub, event) => { if (event.type === "error") console.log(hub.id, event.backend, event.errno); });
 * ```
 */
export function onEveryHubEvent(listener: (hub: HubChardev, event: HubEvent) => void): () => void {
  everyHubListeners.add(listener);
  return () => everyHubListeners.delete(listener);
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

/** A listener (a ClientSource) of a hub: each of its connections is a backend of its own. */
interface ListenerRow {
  readonly chardev: Chardev & ClientSource;
  /** The per-backend options every connection gets. */
  readonly options: HubBackendOptions;
  readonly clients: Set<Chardev>;
  stopListening: () => void;
}

function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && (value & (value - 1)) === 0;
}

export class HubChardev extends Chardev {
  readonly kind = "hub";
  readonly options: Required<Omit<HubOptions, "primary">> & { primary?: string };
  /** QEMU's write-to-all or the broadcast ring, chosen once here: all that differs between them. */
  readonly #output: HubOutput;
  readonly #entries = new Map<number, Entry>();
  readonly #listeners = new Set<(event: HubEvent) => void>();
  /** Hear the input the hub takes for its device (an `asciicast` backend's `"i"` events). */
  readonly #inputListeners = new Set<(data: Uint8Array, backend: string) => void>();
  #evictions = 0;
  /** Input waiting for the frontend, in order: bytes, and the events (a BREAK) sent between them. */
  readonly #inputQueue: (Uint8Array | ChrEvent)[] = [];
  #inputQueued = 0;
  #typist: Entry | null = null;
  #typistTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #sizes: HubSizeAgreement;
  readonly #sizeListeners = new Set<(size: HubTerminalSize) => void>();
  /** Listeners by id (`max-clients` > 1): rows of their own, their connections are entries. */
  readonly #clientListeners = new Map<string, ListenerRow>();
  /** Each connection's listener and who it is, while it is a backend. */
  readonly #clientOf = new Map<Chardev, { listener: ListenerRow; info: ClientInfo }>();
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
      return this.#attachListener(chardev, { ...options, replay: options.replay ?? chardev.defaultReplay });
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
    if (mode === "ro" && this.#typist === entry) this.#typist = null;
  }

  /**
   * Under `input=exclusive`, backend `id` takes the floor from whoever holds it (conserver's
   * bump), for `inputIdleMs` of idleness as if it had typed; a no-op under `input=shared`.
   */
  giveFloor(id: string): void {
    const entry = this.#entryById(id);
    if (this.options.input !== "exclusive") return;
    this.#typist = null;
    this.#mayType(entry);
  }

  #entryById(id: string): Entry {
    const entry = [...this.#entries.values()].find((candidate) => candidate.chardev.id === id);
    if (!entry) throw new ChardevError("NOT_FOUND", `hub: chardev '${quoteInput(id)}' is not a backend of hub '${this.id}'`);
    return entry;
  }

  /**
   * A listener that serves many clients: the hub keeps a row for it (no bytes, never open) and
   * takes each connection as a backend with the listener's options, until it closes. The
   * strategy checks those options now (a policy without a ring), before any client comes.
   */
  #attachListener(chardev: Chardev & ClientSource, options: HubBackendOptions): void {
    if (this.#clientListeners.has(chardev.id)) throw new ChardevError("IN_USE", `chardev '${chardev.id}' is already in use`);
    const trial = this.#output.addBackend(chardev.id, { policy: options.policy ?? "block", lagLimit: options.lagLimit, replay: options.replay, stallMs: options.stallMs });
    this.#output.removeBackend(trial);
    const row: ListenerRow = { chardev, options, clients: new Set(), stopListening: () => {} };
    // In place before `onClient`, which hands out at once the clients that came first.
    this.#clientListeners.set(chardev.id, row);
    this.#attachedAt.set(row, this.#attachCount++);
    try {
      row.stopListening = chardev.onClient((client, info) => this.#attachClient(row, client, info));
    } catch (error) {
      this.#clientListeners.delete(chardev.id); // another hub takes its clients already
      throw error;
    }
    this.#emit({ type: "attach", backend: chardev.id });
  }

  /** One connection of a listener becomes a backend; one the hub cannot take (QEMU's 4) is closed, with a line why. */
  #attachClient(row: ListenerRow, client: Chardev, info: ClientInfo): void {
    if (this.#clientListeners.get(row.chardev.id) !== row) return void client.destroy();
    this.#clientOf.set(client, { listener: row, info });
    row.clients.add(client);
    try {
      // A client may only narrow what the listener allows (a view-only tab is `ro`), never widen it.
      this.attachBackend(client, info.mode === "ro" ? { ...row.options, mode: "ro" } : row.options);
    } catch (error) {
      this.#clientOf.delete(client);
      row.clients.delete(client);
      const why = error instanceof Error ? error.message : String(error);
      this.context.warn(`hub: '${this.id}' refused client '${client.id}' of '${row.chardev.id}': ${quoteInput(why)}`);
      void client.destroy();
    }
  }

  /** A connection left (CLOSED) or was detached: the hub forgets it and closes it; it belongs to no registry. */
  #forgetClient(client: Chardev): void {
    const known = this.#clientOf.get(client);
    if (!known) return;
    this.#clientOf.delete(client);
    known.listener.clients.delete(client);
    // After this turn: an evicted client is told why first (`evicted` follows the detach).
    queueMicrotask(() => void client.destroy());
  }

  /** Detaching a listener detaches its connections and closes them. */
  #detachListener(row: ListenerRow): void {
    row.stopListening();
    for (const client of [...row.clients]) this.detachBackend(client.id);
    this.#clientListeners.delete(row.chardev.id);
    this.#emit({ type: "detach", backend: row.chardev.id });
  }

  /** Hot-unplug: lets go of backend `id`; it behaves as if it closed. */
  detachBackend(id: string): void {
    const listener = this.#clientListeners.get(id);
    if (listener) return this.#detachListener(listener);
    const entry = [...this.#entries.values()].find((candidate) => candidate.chardev.id === id);
    if (!entry) throw new ChardevError("NOT_FOUND", `hub: chardev '${id}' is not a backend of hub '${this.id}'`);
    this.#output.beforeDetach(entry); // what it is still owed, served before letting go
    this.#release(entry);
    if (entry.open) this.#backendEvent(entry, ChrEvent.CLOSED);
    this.#entries.delete(entry.slot);
    this.#output.removeBackend(entry.slot);
    if (this.#typist === entry) this.#typist = null;
    this.#forgetSize(id);
    this.#emit({ type: "detach", backend: id });
    this.#forgetClient(entry.chardev);
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
    return Math.max(0, INPUT_QUEUE_LIMIT - this.#inputQueued);
  }

  #input(entry: Entry, data: Uint8Array): void {
    entry.bytesIn += data.length;
    if (entry.mode === "ro" || !this.#mayType(entry)) {
      entry.inputDiscarded += data.length;
      return;
    }
    for (const listener of this.#inputListeners) listener(data, entry.chardev.id);
    if (this.context.qemuCompat) {
      this.receive(data);
      return;
    }
    this.#inputQueue.push(data.slice());
    this.#inputQueued += data.length;
    this.#pumpInput();
  }

  /** With `input=exclusive`, the first to type holds the floor until idle, closed or detached. */
  #mayType(entry: Entry): boolean {
    if (this.options.input !== "exclusive") return true;
    if (this.#typist && this.#typist !== entry) return false;
    this.#typist = entry;
    if (this.#typistTimer) clearTimeout(this.#typistTimer);
    this.#typistTimer = setTimeout(() => {
      this.#typist = null;
      this.#typistTimer = null;
    }, this.options.inputIdleMs);
    return true;
  }

  #pumpInput(): void {
    while (this.#inputQueue.length > 0 && this.user) {
      const head = this.#inputQueue[0];
      if (!(head instanceof Uint8Array)) {
        this.#inputQueue.shift();
        this.emitEvent(head);
        continue;
      }
      const room = this.user.canRead();
      if (room <= 0) return;
      const piece = head.length <= room ? head : head.subarray(0, room);
      if (piece === head) this.#inputQueue.shift();
      else this.#inputQueue[0] = head.subarray(room);
      this.#inputQueued -= piece.length;
      this.user.read(piece);
    }
  }

  override flushInput(): void {
    this.#pumpInput();
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
        if (this.#inputQueue.length > 0) this.#inputQueue.push(event);
        else this.emitEvent(event);
        if (event === ChrEvent.BREAK) this.#emit({ type: "break", backend: entry.chardev.id });
      }
      return;
    }
    const opened = event === ChrEvent.OPENED;
    if (!opened && this.#clientOf.has(entry.chardev)) {
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
    if (!opened && this.isRing && this.#typist === entry) this.#typist = null;
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
        open = entries.some((entry) => (entry.chardev.id === this.options.primary || this.#clientOf.get(entry.chardev)?.listener.chardev.id === this.options.primary) && entry.open);
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
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: HubEvent): void {
    for (const listener of this.#listeners) listener(event);
    for (const listener of everyHubListeners) listener(this, event);
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
  async *events(signal?: AbortSignal): AsyncGenerator<HubEvent> {
    const queue: HubEvent[] = [];
    let wake: (() => void) | null = null;
    const stop = this.onEvent((event) => {
      queue.push(event);
      wake?.();
    });
    const onAbort = () => wake?.();
    signal?.addEventListener("abort", onAbort);
    try {
      while (!signal?.aborted) {
        if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        while (queue.length > 0) yield queue.shift()!;
      }
    } finally {
      stop();
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Counters of every backend, in attach order. A listener (`max-clients` > 1) has a row of its
   * own (never open, no bytes, `clients`), and each of its connections one (`listener`, `peer`,
   * `uid`, `since`).
   */
  stats(): HubBackendStats[] {
    const rows: [number, HubBackendStats][] = [...this.#entries.values()].map((entry) => {
      const counters = this.#output.counters(entry.slot, entry.open);
      const client = this.#clientOf.get(entry.chardev);
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
      if (client) {
        row.listener = client.listener.chardev.id;
        row.peer = client.info.peer;
        if (client.info.uid !== undefined) row.uid = client.info.uid;
        row.since = client.info.since;
      }
      return [this.#attachedAt.get(entry) ?? 0, row];
    });
    for (const listener of this.#clientListeners.values()) {
      rows.push([this.#attachedAt.get(listener) ?? 0, {
        id: listener.chardev.id,
        open: false,
        policy: listener.options.policy ?? "block",
        mode: listener.options.mode ?? "rw",
        bytesIn: 0,
        bytesOut: 0,
        bytesDropped: 0,
        inputDiscarded: 0,
        eventsDiscarded: 0,
        lag: 0,
        stalls: 0,
        clients: listener.clients.size,
      }]);
    }
    return rows.sort((a, b) => a[0] - b[0]).map(([, row]) => row);
  }

  override async destroy(): Promise<void> {
    for (const entry of this.#entries.values()) this.#release(entry);
    this.#entries.clear();
    // Connections belong to no registry: they go with the hub.
    for (const listener of this.#clientListeners.values()) listener.stopListening();
    this.#clientListeners.clear();
    for (const client of this.#clientOf.keys()) void client.destroy();
    this.#clientOf.clear();
    if (this.#typistTimer) clearTimeout(this.#typistTimer);
    hubsOf(this.context.core).delete(this.#output.address);
    this.#output.free();
    await super.destroy();
  }
}

// ---- configuration ----

const POLICIES: readonly HubPolicy[] = ["block", "drop", "evict"];
const OPEN_POLICIES: readonly HubOpenPolicy[] = ["any", "all", "always", "primary"];

function oneOf<T extends string>(what: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  throw new ChardevError("INVALID_VALUE", `hub: '${what}' must be ${allowed.join(", ")}, not '${quoteInput(String(value))}'`);
}

function count(what: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (Number.isSafeInteger(value) && (value as number) >= 0) return value as number;
  throw new ChardevError("INVALID_VALUE", `hub: '${what}' must be a non-negative integer, not '${quoteInput(String(value))}'`);
}

/** A terminal width or height: 1 to MAX_TERMINAL_CELLS. */
function cells(what: string, value: unknown): number | undefined {
  const count = value === undefined ? undefined : Number(value);
  if (count === undefined) return undefined;
  if (Number.isSafeInteger(count) && count >= 1 && count <= MAX_TERMINAL_CELLS) return count;
  throw new ChardevError("INVALID_VALUE", `hub: '${what}' must be 1..${MAX_TERMINAL_CELLS}, not '${quoteInput(String(value))}'`);
}

/** A millisecond option: a count no larger than a timer can wait (limits.ts). */
function milliseconds(what: string, value: unknown): number | undefined {
  const ms = count(what, value);
  return ms === undefined ? undefined : checkMilliseconds("hub", what, ms);
}

/** A byte count no larger than `max` (limits.ts). */
function bytesUpTo(what: string, value: unknown, max: number): number | undefined {
  const bytes = count(what, value);
  return bytes === undefined ? undefined : checkSize("hub", what, bytes, max);
}

/**
 * Checks per-backend options against the limits (limits.ts) wherever they come from: option
 * strings, QMP `hub-attach`, the library's `Hub.attach`.
 */
export function checkHubBackendOptions(id: string, options: HubBackendOptions): HubBackendOptions {
  milliseconds(`stall-ms of ${id}`, options.stallMs);
  replayOf(id, options.replay);
  count(`lag-limit of ${id}`, options.lagLimit);
  return options;
}

/** A `replay` value: `screen`, `screen:LINES`, or bytes up to a ring's largest size. */
function replayOf(id: string, value: unknown): HubReplay | undefined {
  if (isScreenReplay(value)) return value;
  return bytesUpTo(`replay of ${id}`, value, MAX_RING_BYTES);
}

/** A numeric `KEY.N` option checked against its limit, named as the user wrote it (`stall-ms.1`). */
function checkBackendNumber(key: string, name: string, value: number): number {
  if (name === "stall-ms") return checkMilliseconds("hub", key, value);
  if (name === "replay") return checkSize("hub", key, value, MAX_RING_BYTES);
  return value;
}

/** Per-backend option keys as written in option strings and in QMP `options`. */
const BACKEND_KEYS = ["policy", "lag-limit", "stall-ms", "replay", "mode"] as const;

function backendOptions(id: string, raw: unknown): HubBackendOptions {
  if (raw === undefined) return {};
  if (typeof raw !== "object" || raw === null) throw new ChardevError("INVALID_VALUE", `hub: options of '${quoteInput(id)}' must be an object`);
  const fields = raw as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!(BACKEND_KEYS as readonly string[]).includes(key)) throw new ChardevError("INVALID_PARAMETER", `hub: unknown option '${quoteInput(key)}' for chardev '${quoteInput(id)}'`);
  }
  return {
    policy: oneOf(`policy of ${id}`, fields.policy, POLICIES),
    lagLimit: count(`lag-limit of ${id}`, fields["lag-limit"]),
    stallMs: milliseconds(`stall-ms of ${id}`, fields["stall-ms"]),
    replay: replayOf(id, fields.replay),
    mode: oneOf(`mode of ${id}`, fields.mode, ["rw", "ro"] as const),
  };
}

/**
 * `hub`'s options (QEMU 10.0's ChardevHub, plus ours). The per-backend keys (`policy.N`) are
 * QMP's `options` object keyed by chardev id; the driver's hook pairs them with `chardevs.N`.
 */
export const hubOptions: OptionSchema = [
  { key: "chardevs", type: "list", help: "the backends, N = 0, 1, ... (0..3 with --qemu-compat); chardevs defined before the hub" },
  { key: "ring", type: "size", default: "0", max: MAX_RING_BYTES, help: "0: QEMU's unbuffered hub (the slowest backend sets the pace); a power of two: a broadcast ring each backend drains at its own pace" },
  { key: "keep-head", type: "size", default: "0", max: MAX_RING_BYTES, help: "bytes of the hub's first output (the boot log) kept besides the ring once the ring has overwritten them; QMP `hub-history` reads both by offset. Needs `ring`" },
  { key: "open", type: "string", values: OPEN_POLICIES, default: "any", help: "when the frontend sees OPENED/CLOSED: first open/last close (QEMU), all open, from the start, or as the `primary` backend" },
  { key: "primary", type: "string", help: "a chardev id of the hub; implies `open=primary`" },
  { key: "input", type: "string", values: ["shared", "exclusive"], default: "shared", help: "`exclusive`: the first backend to type holds the floor; others' input is discarded (counted) until it is idle for `input-idle-ms`, closes or is detached" },
  { key: "input-idle-ms", type: "integer", unit: "ms", default: "1000", max: MAX_TIMER_MS, help: "how long an exclusive typist may be idle before another may type" },
  { key: "size", type: "string", values: HUB_SIZE_POLICIES, default: "latest", help: "the terminal size the device and the screen emulator get, agreed among read-write backends that tell theirs (tmux's `window-size`): the last one to resize, the smallest or largest of each dimension, or `cols`x`rows` always (`manual`); read-only backends never resize" },
  { key: "cols", type: "integer", default: "80", min: 1, max: MAX_TERMINAL_CELLS, help: "the terminal width until a backend tells one, and always with `size=manual`" },
  { key: "rows", type: "integer", default: "24", min: 1, max: MAX_TERMINAL_CELLS, help: "the terminal height until a backend tells one, and always with `size=manual`" },
  { key: "policy.N", via: "options.ID.policy", type: "string", values: POLICIES, default: "block", help: "`block` holds the writer back (QEMU); `drop` never does: a backend more than `lag-limit` behind skips ahead to a safe boundary (a line start or an ESC, never inside a UTF-8 or ANSI escape sequence) and a `gap` event reports the exact bytes it missed; `evict` blocks, but is detached once stalled `stall-ms`" },
  { key: "lag-limit.N", via: "options.ID.lag-limit", type: "size", default: "ring size", help: "how far behind a `drop` backend may fall" },
  { key: "stall-ms.N", via: "options.ID.stall-ms", type: "integer", unit: "ms", default: "5000", max: MAX_TIMER_MS, help: "how long an `evict` backend may stay stalled" },
  { key: "replay.N", via: "options.ID.replay", type: "size", default: "0", max: MAX_RING_BYTES, help: "recent output a backend gets when it opens (from a safe boundary); `screen` (`screen:LINES`): the screen as it stands instead, one repaint from the hub's terminal emulator (contents, cursor, modes, scroll region, up to 1000 or LINES lines of scrollback), then the live stream with no byte missing or repeated" },
  { key: "mode.N", via: "options.ID.mode", type: "string", values: ["rw", "ro"], default: "rw", help: "a read-only backend only watches: its input and its BREAKs are discarded and counted (`inputDiscarded`, `eventsDiscarded`), and the command takes no window size from it" },
  { member: "options", type: "object", help: "QMP: the per-backend keys by chardev id, `{ID: {policy, lag-limit, stall-ms, replay, mode}}`" },
];

export const hubDriver = defineDriver({
  type: "hub",
  options: hubOptions,
  fromOptions(options) {
    const chardevs = listOption(options, "chardevs");
    const data: Record<string, unknown> = chardevs.length > 0 ? { chardevs } : {};
    if (options.has("ring")) data.ring = checkSize("hub", "ring", parseSize("ring", options.get("ring")!), MAX_RING_BYTES);
    if (options.has("keep-head")) data["keep-head"] = checkSize("hub", "keep-head", parseSize("keep-head", options.get("keep-head")!), MAX_RING_BYTES);
    if (options.has("input-idle-ms")) data["input-idle-ms"] = checkMilliseconds("hub", "input-idle-ms", parseSize("input-idle-ms", options.get("input-idle-ms")!));
    for (const key of ["open", "primary", "input", "size"]) if (options.has(key)) data[key] = options.get(key);
    for (const key of ["cols", "rows"]) if (options.has(key)) data[key] = parseSize(key, options.get(key)!);
    // `policy.N=drop` belongs to the backend named by `chardevs.N`.
    const perBackend: Record<string, Record<string, unknown>> = {};
    for (const [key, value] of options) {
      const match = /^([a-z-]+)\.(\d+)$/.exec(key);
      if (!match || match[1] === "chardevs") continue;
      const id = chardevs[Number(match[2])];
      if (id === undefined) throw new ChardevError("INVALID_PARAMETER", `hub: '${quoteInput(key)}' has no matching 'chardevs.${quoteInput(match[2])}'`);
      const numeric = match[1] !== "policy" && match[1] !== "mode" && !(match[1] === "replay" && isScreenReplay(value));
      (perBackend[id] ??= {})[match[1]] = numeric ? checkBackendNumber(key, match[1], parseSize(key, value)) : value;
    }
    if (Object.keys(perBackend).length > 0) data.options = perBackend;
    return data;
  },
  open(id, data, context) {
    const ids = (data.chardevs as string[] | undefined) ?? [];
    if (ids.length === 0 && context.qemuCompat) throw new ChardevError("HUB_NO_CHARDEVS", "hub: 'chardevs' list is not defined");
    const ring = bytesUpTo("ring", data.ring, MAX_RING_BYTES) ?? 0;
    if (ring !== 0 && !isPowerOfTwo(ring)) throw new ChardevError("INVALID_VALUE", `hub: 'ring' must be 0 or a power of two, not ${ring}`);
    // The core's memory is one 4 GiB space per registry: refuse a ring it could not grow to hold.
    if (ring !== 0) checkCoreRoom("hub", "ring", ring, context.core.view(0, 0).buffer.byteLength);
    const primary = data.primary as string | undefined;
    if (primary !== undefined && !ids.includes(primary)) {
      throw new ChardevError("INVALID_VALUE", `hub: primary '${quoteInput(primary)}' is not one of the hub's chardevs`);
    }
    const perBackend = (data.options ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(perBackend)) {
      if (!ids.includes(key)) throw new ChardevError("INVALID_PARAMETER", `hub: options given for '${quoteInput(key)}', which is not one of the hub's chardevs`);
    }
    const configured = ids.map((backendId) => backendOptions(backendId, perBackend[backendId]));
    const keepHead = bytesUpTo("keep-head", data["keep-head"], MAX_RING_BYTES) ?? 0;
    const hub = new HubChardev(id, context, {
      ring,
      keepHead,
      open: oneOf("open", data.open, OPEN_POLICIES),
      primary,
      input: oneOf("input", data.input, ["shared", "exclusive"] as const),
      inputIdleMs: milliseconds("input-idle-ms", data["input-idle-ms"]),
      size: oneOf("size", data.size, HUB_SIZE_POLICIES),
      cols: cells("cols", data.cols),
      rows: cells("rows", data.rows),
    });
    if (hub.options.open === "primary" && primary === undefined) {
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
