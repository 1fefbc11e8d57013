// The hub's output strategy: what QEMU's write-to-all (`_hub_write_all.ts`) and the broadcast
// ring (`_hub_ring.ts`) each do with the frontend's bytes, behind one interface chosen once when
// the hub is made. The hub (hub.ts) keeps what both share: the backends, their input, events,
// failures and resumption; a strategy keeps the core's books of where each backend is.

import type { Core, RingPolicy } from "../core.ts";
import type { ChrEvent } from "../events.ts";
import type { Chardev, ChardevUser } from "./_chardev.ts";
import type { HubReplay } from "./_hub_screen_contract.ts";

/** One backend of a hub, as the hub and its output strategy both see it. */
export interface HubEntry {
  readonly chardev: Chardev;
  /** Its index in the core's books (the write-to-all table or the ring's cursors). */
  readonly slot: number;
  readonly user: ChardevUser;
  readonly policy: RingPolicy;
  readonly stallMs: number;
  /** Changed only by the hub's `setBackendMode`. */
  mode: "rw" | "ro";
  open: boolean;
  bytesIn: number;
  inputDiscarded: number;
  eventsDiscarded: number;
  /** A ring's wait on the backend's watch (or retry timer), while it is blocked. */
  cancelWatch: (() => void) | null;
  /** A ring's `evict` deadline, while the backend is stalled. */
  evictTimer: ReturnType<typeof setTimeout> | null;
  /** Set while a hard write error keeps it out: why, and the stream position it got up to. */
  failure: { errno: string; position: number } | null;
  resumeTimer: ReturnType<typeof setTimeout> | null;
}

/** What a strategy asks of the hub it serves. */
export interface HubOutputHost {
  readonly core: Core;
  /** The backend in `slot`, if still attached. */
  entryAt(slot: number): HubEntry | undefined;
  /** A hard write error: take the backend out (closed for the hub, reported, maybe resumed). */
  fail(entry: HubEntry, result: number): void;
  /** An `evict` backend stalled past its `stallMs`: detach it and tell it why. */
  evict(entry: HubEntry): void;
  /** Puts a writer's watch on the hub's watch list (the Chardev base's); the cancel says whether it was still waiting. */
  addWriterWatch(callback: () => void): () => boolean;
  /** Calls every writer's watch once and forgets them (each asks again if still blocked). */
  wakeWriters(): void;
  /** Whether any writer waits. */
  readonly writersWaiting: boolean;
}

/** A backend's output counters, as `HubBackendStats` reports them. */
export interface HubOutputCounters {
  bytesOut: number;
  bytesDropped: number;
  lag: number;
  stalls: number;
}

/**
 * A piece of a hub's history (`HubChardev.history`, QMP `hub-history`), by absolute stream
 * offset: offset 0 is the hub's first output byte.
 */
export interface HubHistory {
  /** Where the answer starts: the offset asked for, or `written` when that is past the end. */
  from: number;
  /** Where it ends (exclusive): `from + size` asked for, or `written` if sooner. Read on from here. */
  to: number;
  /** The bytes of [from, to) still kept, in order; the `gone` ranges are left out. */
  data: Uint8Array;
  /** Ranges [from, to) of [from, to) no longer kept: past `keep-head` and already out of the ring. */
  gone: { from: number; to: number }[];
  /** Bytes the hub has written in all: the offset of the next byte. */
  written: number;
}

/** Per-backend options a strategy books. */
export interface HubOutputBackendOptions {
  policy: RingPolicy;
  lagLimit?: number;
  /** Bytes of history, or the screen (`screen`: a ring's emulator, _hub_screen.ts). */
  replay?: HubReplay;
  stallMs?: number;
}

/**
 * How a hub delivers the frontend's bytes to its backends. Every method may touch the core's
 * books; the strategy alone knows what must happen first (the ring settles its writer).
 */
export interface HubOutput {
  /** True for the broadcast ring, false for QEMU's write-to-all. */
  readonly isRing: boolean;
  /** The core address, as a key only (the hubs of a core are found by it); no call on it. */
  readonly address: number;
  /** The core address, with every write booked: safe to pass to any core call. */
  readonly handle: number;
  /** True when the core's OPENED/CLOSED counting (QEMU's) is there to decide for the frontend. */
  readonly countsOpenEvents: boolean;
  /** Books a backend and returns its slot; refuses (throws) a policy it cannot honour. */
  addBackend(id: string, options: HubOutputBackendOptions): number;
  /** A backend is about to be detached: serve what it is still owed and forget its errors. */
  beforeDetach(entry: HubEntry): void;
  /** Takes the slot out of the books (after the hub forgot the entry). */
  removeBackend(slot: number): void;
  /** The frontend's write: bytes taken, or a negative errno (-EAGAIN: wait on `addWatch`). */
  write(data: Uint8Array): number;
  /**
   * The frontend's batched write (`Frontend.writev`): bytes taken across `chunks` in order (a
   * prefix of their concatenation, as successive writes stopping at the first short one would
   * take), or a negative errno when none was; 0 when every chunk is empty.
   */
  writev(chunks: readonly Uint8Array[]): number;
  /**
   * The core wrote `length` bytes to `entry` and got `result`; `hardError` when that result
   * takes the backend out. Returns what the core should book for it.
   */
  backendWrote(entry: HubEntry, length: number, result: number, hardError: boolean): number;
  /** The backend opened or closed; returns whether the core's counting passes `event` on. */
  backendOpenChanged(entry: HubEntry, event: ChrEvent): boolean;
  /** The backend no longer waits on anything (detached, failed, hub destroyed). */
  stopWaiting(entry: HubEntry): void;
  /** A backend left, closed or failed: a waiting writer must hear that space may be free. */
  spaceFreed(): void;
  /** Serves every backend now rather than at the end of this turn (a ring's drain). */
  flush(): void;
  /** QEMU's watch: null when a write may go on now, else a watch that fires once. */
  addWatch(callback: () => void): (() => void) | null;
  /** Bytes the frontend has written, the position every backend is measured against. */
  streamPosition(): number;
  /** The stream position backend `slot` got up to. */
  backendPosition(slot: number): number;
  /** The output counters of backend `slot`; `open` says whether its lag counts. */
  counters(slot: number, open: boolean): HubOutputCounters;
  /** Frees the core's books; nothing may be called after. */
  free(): void;
  /**
   * A slot the strategy serves itself (the ring's screen emulator, a backend still owed its
   * screen): bytes taken; undefined for a backend the hub writes as usual.
   */
  writeOwnSlot?(slot: number, data: Uint8Array): number | undefined;
  /** The hub agreed on a terminal size (its `size` policy): a screen emulator follows it. */
  resizeScreen?(cols: number, rows: number): void;
  /** Resolves once a screen emulator, if any, has parsed everything written so far. */
  screenParsed?(): Promise<void>;
  /** History by absolute offset (`keep-head` and the ring); a strategy without it keeps none. */
  history?(from: number, size: number): HubHistory;
}
