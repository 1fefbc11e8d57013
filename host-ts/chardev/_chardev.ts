// The one shape every backend fills (QEMU's ChardevClass): a few hooks with safe defaults,
// plus the backend-side helpers (QEMU's qemu_chr_be_*) that deliver input and events to
// whoever holds the chardev.

import type { Core } from "../core.ts";
import { ChardevError } from "../errors.ts";
import { ERRNO, errnoName, negativeErrno } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { HostRuntime, LogSink } from "../runtime/types.ts";
import { dataFromOptions, optionKeys, qapiFields, type OptionSchema } from "../option_schema.ts";
import { registerOptionKeys } from "../options.ts";
import { quoteInput } from "../limits.ts";
import type { TlsCredsX509 } from "../tls_creds.ts";
import { LossNotes } from "./_fd.ts";

/** A `logfile=` that cannot write (a full disk) tries again after this long... */
const LOG_FIRST_RETRY_MS = 100;
/** ...then twice as long each time, up to this. */
const LOG_MAX_RETRY_MS = 5000;

/**
 * Whoever holds a chardev (QEMU's CharBackend): a frontend, or a hub or mux that stacks on it.
 */
export interface ChardevUser {
  /** Bytes it can take now; 0 pauses input. */
  canRead(): number;
  /** Input; a copy of its own unless the holder says `copiesInput`. */
  read(data: Uint8Array): void;
  event(event: ChrEvent): void;
  /**
   * `read` copies whatever it keeps of `data` past the call: a backend may then hand it a view
   * of a buffer it reads into again (a connecting socket on Node), saving a copy per read.
   */
  readonly copiesInput?: boolean;
  /**
   * The backend failed for good between writes (a sink whose request was refused after the
   * write that queued it returned): handled as a write answering `-errno` now, instead of at
   * the holder's next write. Never called from inside a write.
   */
  backendFailed?(errno: number): void;
}

/** What a backend may reach while opening and running. */
export interface ChardevContext {
  readonly core: Core;
  readonly runtime: HostRuntime;
  readonly qemuCompat: boolean;
  /** Another chardev by id, for the stacking kinds (hub, mux). */
  find(id: string): Chardev | undefined;
  /** A user typed the mux's exit command (QEMU exits the emulator). */
  requestExit(): void;
  /** Tells the operator something worth a line on stderr (a refused peer, an unsafe setting). */
  warn(line: string): void;
  /** TLS credentials by object id (`tls-creds=ID`); see tlsCredsFor in tls_creds.ts for QEMU's checks. */
  tlsCreds(id: string): TlsCredsX509 | undefined;
  /**
   * The fd of a listening socket passed to us by systemd (socket activation) under the name
   * `id`, handed out once; undefined when there is none (socket_activation.ts).
   */
  activatedSocket?(id: string): number | undefined;
}

/**
 * QAPI member types a backend's `data` may hold; the registry checks them before `open`.
 * For `object` (a nested struct or union, e.g. the socket's `addr`) the registry checks only
 * that it is an object; the backend checks its members.
 */
export type FieldType = "string" | "bool" | "integer" | "stringList" | "object";

/** A backend's QAPI `data`, already checked against its `fields`. */
export type BackendData = Record<string, unknown>;

/** Registration of one backend kind: how to read its options and how to open it. */
export interface ChardevDriver {
  /** QAPI type name (`ringbuf`) and its aliases (`memory`). */
  readonly type: string;
  readonly aliases?: readonly string[];
  /** The QAPI members of its `data` (besides the common `logfile`, `logappend`); `qapiFields(options)` where it has a schema. */
  readonly fields: Readonly<Record<string, FieldType>>;
  /**
   * Its options, each declared once (option_schema.ts): the `-chardev` keys it adds, QMP's
   * checks of `data` (required members, QAPI's order), --help and the docs' tables. Without
   * one, QMP checks `fields` only.
   */
  readonly options?: OptionSchema;
  /** Turns `-chardev` keys into the QAPI `data` object (QEMU's `parse` hook; `dataFromOptions(options, ...)` where that is all). */
  fromOptions(options: Map<string, string>): BackendData;
  /** Opens the chardev from checked QAPI data. May throw ChardevError; must leave nothing behind when it does. */
  open(id: string, data: BackendData, context: ChardevContext, typeName?: string): Chardev | Promise<Chardev>;
}

/**
 * The runtime's `part` (its ptys, sockets, terminal, ...), or UNSUPPORTED with the kind's
 * text, given the runtime's name (`chardev: pty: this runtime (workerd) has no ptys`).
 */
export function runtimePart<K extends keyof HostRuntime>(context: ChardevContext, part: K, refusal: (runtimeName: string) => string): NonNullable<HostRuntime[K]> {
  const value = context.runtime[part];
  if (value === undefined || value === null) throw new ChardevError("UNSUPPORTED", refusal(context.runtime.name));
  return value as NonNullable<HostRuntime[K]>;
}

/**
 * Runs `start` on a chardev just made and returns it; if `start` throws, the chardev is
 * destroyed first, so an open that fails leaves nothing behind (the driver contract).
 */
export async function startedOrDestroyed<T extends Chardev>(chardev: T, start: (chardev: T) => Promise<void>): Promise<T> {
  try {
    await start(chardev);
  } catch (error) {
    await chardev.destroy();
    throw error;
  }
  return chardev;
}

/** What a kind declares: its driver less what its option schema gives. */
export type DriverDeclaration = Omit<ChardevDriver, "options" | "fields" | "fromOptions"> & {
  readonly options: OptionSchema;
  /** Its own parse hook, for rules across keys; by default the schema's (`dataFromOptions`). */
  fromOptions?: ChardevDriver["fromOptions"];
};

/**
 * A kind's driver from its declaration: its keys become valid on the command line, its QAPI
 * `fields` and (unless it has its own) its parse hook come from its option schema, so a new key
 * is written once, in the schema.
 */
export function defineDriver(declaration: DriverDeclaration): ChardevDriver {
  registerOptionKeys(...optionKeys(declaration.options));
  return {
    fromOptions: (options) => dataFromOptions(declaration.options, options),
    ...declaration,
    fields: qapiFields(declaration.options),
  };
}

/**
 * Base of every chardev. Subclasses implement `writeOut` and the hooks they need; the
 * defaults are those of a chardev that accepts all output and has no input.
 */
export abstract class Chardev {
  #beOpen = false;
  #user: ChardevUser | null = null;
  /** Watches waiting for a write to succeed again, each with what ends its own wait (a poll timer). */
  readonly #watches = new Set<{ readonly callback: () => void; readonly stopWaiting?: () => void }>();
  /** A hook threw once already: later throws are still -EIO but not reported again. */
  #hookThrew = false;
  /** `sendBreakToPeer` was refused once already (told once, not on every BREAK). */
  #breakRefusalTold = false;
  #log: LogSink | null = null;
  /** While `logfile=` cannot write: output it missed since, why, and the next try. */
  #logLoss: { lost: number; errno: string; delayMs: number; timer: ReturnType<typeof setTimeout> } | null = null;
  #logNotes = new LossNotes();
  #pendingInput: Uint8Array[] = [];

  constructor(
    readonly id: string,
    protected readonly context: ChardevContext,
  ) {}

  /** QEMU's `be_open`: the backend side is connected. Only the chardev itself changes it (`emitEvent`). */
  get beOpen(): boolean {
    return this.#beOpen;
  }

  /** Stacking kinds (hub, mux) that track openness themselves set it here. */
  protected set beOpen(open: boolean) {
    this.#beOpen = open;
  }

  /** The single holder of this chardev, set by `attachUser` (hub and mux override attach to allow theirs). */
  get user(): ChardevUser | null {
    return this.#user;
  }

  /** QAPI backend type, e.g. "ringbuf". */
  abstract readonly kind: string;

  /** What `query-chardev` shows as `filename`. */
  get filename(): string {
    return this.kind;
  }

  /** Writes the frontend's bytes out; returns bytes taken or -errno. Never throws. */
  protected abstract writeOut(data: Uint8Array): number;

  /**
   * QEMU's qemu_chr_write: write, then log what was taken. Never throws: a `writeOut` that
   * throws (a bug, or a runtime call failing in a way the backend did not expect) answers -EIO,
   * so nothing throws through the WASM core that called it; the hub then takes this backend
   * out as after any hard error.
   */
  write(data: Uint8Array): number {
    let taken: number;
    try {
      taken = this.writeOut(data);
    } catch (error) {
      return this.writeThrew(error);
    }
    if (taken > 0 && this.#log) this.#logOutput(data.subarray(0, taken));
    return taken;
  }

  /**
   * Whether a `logfile=` takes this chardev's output. A kind with a `write` of its own (the hub's
   * frontend path, kept monomorphic) goes through the base's `write` while this is true.
   */
  protected get logging(): boolean {
    return this.#log !== null;
  }

  /** What a write whose hook threw answers: -EIO, the operator told once. */
  protected writeThrew(error: unknown): number {
    this.#reportHookError("write", error);
    return -ERRNO.EIO;
  }

  /**
   * A kind that can take several buffers in one go (a hub copying them all into its ring) says
   * so here: bytes taken across `chunks`, a prefix of their concatenation, or -errno when none was.
   */
  protected writevOut?(chunks: readonly Uint8Array[]): number;

  /**
   * Writes `chunks` in order: bytes taken, a prefix of their concatenation, or -errno when none
   * was taken (0 when every chunk is empty). Kinds with a `writevOut` take them in one call;
   * every other kind gets them as successive `write`s that stop at the first short one, so the
   * result is the same either way. Never throws.
   */
  writev(chunks: readonly Uint8Array[]): number {
    if (this.writevOut === undefined) return this.#writeEach(chunks);
    let taken: number;
    try {
      taken = this.writevOut(chunks);
    } catch (error) {
      this.#reportHookError("write", error);
      return -ERRNO.EIO;
    }
    if (taken > 0 && this.#log) {
      for (let i = 0, left = taken; left > 0; i++) {
        const count = Math.min(left, chunks[i].length);
        if (count > 0) this.#logOutput(chunks[i].subarray(0, count));
        left -= count;
      }
    }
    return taken;
  }

  /** `writev` as successive writes: a short or failed one ends it (a failure after bytes went is left for the next write). */
  #writeEach(chunks: readonly Uint8Array[]): number {
    let total = 0;
    for (let i = 0; i < chunks.length; i++) {
      const data = chunks[i];
      if (data.length === 0) continue;
      const taken = this.write(data);
      if (taken < 0) return total > 0 ? total : taken;
      total += taken;
      if (taken < data.length) break;
    }
    return total;
  }

  /** Tells the operator once that a hook threw (its message cut to a sane length). */
  #reportHookError(hook: string, error: unknown): void {
    if (this.#hookThrew) return;
    this.#hookThrew = true;
    const message = error instanceof Error ? error.message : String(error);
    this.context.warn(`chardev '${this.id}': ${hook} failed: ${quoteInput(message)} (answered EIO; further failures are not reported)`);
  }

  /**
   * A log that fails (ENOSPC, EIO) never fails the write: what it misses is counted, a timer
   * tries again with a backoff, and the log gets `[-- N bytes lost: ENOSPC --]` where the hole is.
   */
  #logOutput(data: Uint8Array): void {
    if (this.#logLoss) {
      this.#logLoss.lost += data.length;
      return;
    }
    const result = this.#logWrite(data);
    if (result.written === data.length) return;
    const lost = data.length - result.written;
    this.context.warn(`chardev '${this.id}': logfile: ${result.errno}; output is not logged until it can write again`);
    this.#logLoss = { lost, errno: result.errno, delayMs: LOG_FIRST_RETRY_MS, timer: setTimeout(() => this.#logRetry(), LOG_FIRST_RETRY_MS) };
  }

  #logRetry(): void {
    const loss = this.#logLoss;
    if (!loss || !this.#log) return;
    const resumed = this.#logNotes.resume(loss.lost, loss.errno, (line) => {
      const result = this.#logWrite(line);
      return result.written > 0 ? result.written : -1;
    });
    if (resumed) {
      this.#logLoss = null;
      return;
    }
    loss.delayMs = Math.min(loss.delayMs * 2, LOG_MAX_RETRY_MS);
    loss.timer = setTimeout(() => this.#logRetry(), loss.delayMs);
  }

  /** One write to the log sink: bytes it took (a sink that fails part-way says how many) and why not all. */
  #logWrite(data: Uint8Array): { written: number; errno: string } {
    try {
      this.#log!.write(data);
      return { written: data.length, errno: "" };
    } catch (error) {
      const written = (error as { bytesWritten?: unknown }).bytesWritten;
      return { written: typeof written === "number" ? written : 0, errno: errnoName(negativeErrno(error)) };
    }
  }

  /**
   * Calls `callback` once when a write may succeed again; returns a cancel function, or null
   * when this chardev never blocks (nothing to wait for).
   */
  addWatch(_callback: () => void): (() => void) | null {
    return null;
  }

  // ---- the watch list (QEMU's per-chardev GSource list): one for every backend that blocks ----

  /**
   * Puts `callback` on this chardev's watch list until `fireWatches` calls it or the returned
   * function cancels it; `stopWaiting` (a poll timer's clearTimeout) runs either way. The cancel
   * function returns whether the watch was still waiting, so `if (cancel()) callback()` fires
   * one watch alone.
   */
  protected addToWatchList(callback: () => void, stopWaiting?: () => void): () => boolean {
    // One entry per call: the same callback added twice waits twice, as with two GSources.
    const watch = { callback, stopWaiting };
    this.#watches.add(watch);
    return () => this.#removeWatch(watch);
  }

  #removeWatch(watch: { readonly callback: () => void; readonly stopWaiting?: () => void }): boolean {
    if (!this.#watches.delete(watch)) return false;
    watch.stopWaiting?.();
    return true;
  }

  /** Calls every waiting watch once and forgets them all (a writer still blocked asks again). */
  protected fireWatches(): void {
    for (const watch of [...this.#watches]) {
      if (this.#removeWatch(watch)) watch.callback();
    }
  }

  /** Forgets every waiting watch without calling it (the chardev is going away). */
  protected cancelWatches(): void {
    for (const watch of [...this.#watches]) this.#removeWatch(watch);
  }

  /** Whether some writer waits on this chardev's watch list. */
  protected get watchesWaiting(): boolean {
    return this.#watches.size > 0;
  }

  /**
   * A hub evicted this backend (it stalled too long) and let go of it: one with a peer tells it
   * why and closes that connection. By default nothing happens.
   */
  evicted(_reason: string): void {}

  /**
   * Present on backends that can come back after a hard write error (a full disk): a hub that
   * took one out (outside qemuCompat) calls this with a backoff. It writes a note that `lost`
   * bytes of output are missing (`errno` says why) and returns true once it could; the hub then
   * writes to it again. Backends without it come back only by reporting OPENED.
   */
  resumeAfterLoss?(lost: number, errno: string): boolean;

  /**
   * Present on sinks that keep counters of their own (an `http` sink's requests, retries,
   * bytes acknowledged): a hub's `stats()` row for this backend shows them as `sink`, and
   * QMP `query-hub` too. Cheap and side-effect free: it is called for every stats read.
   */
  sinkStats?(): Record<string, number | string>;

  /**
   * Whether `sendBreakToPeer` can ever put a BREAK on the wire: a `socket` with `telnet=on`
   * (IAC BREAK), and so on. False by default: most kinds have no such thing to send.
   */
  get canSendBreak(): boolean {
    return false;
  }

  /**
   * A BREAK from this chardev's frontend to its far end (QEMU's CHR_IOCTL_SERIAL_SET_BREAK from
   * a device): the command's bridge calls it when a hub client sent one, so the guest or board
   * behind this chardev gets it. Returns whether it went out now. Kinds that can send one
   * override it (and `canSendBreak`); this default drops it and tells the operator once, since
   * a BREAK that silently goes nowhere (a SysRq that never arrives) is hard to find.
   */
  sendBreakToPeer(): boolean {
    if (!this.#breakRefusalTold) {
      this.#breakRefusalTold = true;
      this.context.warn(`device '${this.id}' cannot send a BREAK (${this.kind}): dropped`);
    }
    return false;
  }

  /** The chardevs this one stands on (a hub's backends, a mux's base): for cycle checks. */
  get children(): Chardev[] {
    return [];
  }

  /** Held by a frontend (or stacked under a hub or mux), so `chardev-remove` must refuse. */
  isBusy(): boolean {
    return this.user !== null;
  }

  /** Makes `user` the holder; throws QEMU's error when someone holds it already. */
  attachUser(user: ChardevUser): void {
    if (this.#user) throw new ChardevError("IN_USE", `chardev '${this.id}' is already in use`);
    this.#user = user;
    // QEMU tells a frontend that connects to an already open chardev (sync_state).
    if (this.beOpen) user.event(ChrEvent.OPENED);
    this.flushInput();
  }

  detachUser(user: ChardevUser): void {
    if (this.#user === user) this.#user = null;
  }

  /** Whether a user is attached (QEMU's `fe_is_open`, shown by `query-chardev`). */
  get frontendOpen(): boolean {
    return this.user !== null;
  }

  /** Opens the common `logfile=` sink. Called by the registry right after `open`. */
  setLog(log: LogSink | null): void {
    this.#log = log;
  }

  /**
   * Opens its logs again by path, appending (SIGHUP, QMP `chardev-reopen-logs`): after
   * logrotate moved a log away the next bytes go to a new file. The `logfile=` here; kinds
   * that are logs themselves (`file`, `asciicast`) add their own output. Throws the runtime's
   * error when a path cannot be opened; that log goes on in the file it had.
   */
  reopenLogs(): void {
    (this.#log as Partial<{ reopen(): void }> | null)?.reopen?.();
  }

  // ---- backend side (QEMU's qemu_chr_be_*) ----

  /** QEMU's qemu_chr_be_can_write: what the holder can take now. */
  canReceive(): number {
    return this.user ? this.user.canRead() : 0;
  }

  /** QEMU's qemu_chr_be_write: hands input to the holder as is (no holder: dropped). */
  receive(data: Uint8Array): void {
    this.user?.read(data);
  }

  /**
   * Input from a stream backend: delivered as far as the holder's `canRead` allows, the rest
   * kept in order for `flushInput`. Returns false when the source should pause.
   */
  protected deliverInput(data: Uint8Array): boolean {
    this.#pendingInput.push(data);
    this.flushInput();
    return this.#pendingInput.length === 0;
  }

  /** Delivers kept input now that the holder may take more (QEMU's qemu_chr_fe_accept_input). */
  flushInput(): void {
    while (this.#pendingInput.length > 0 && this.user) {
      const room = this.user.canRead();
      if (room <= 0) return;
      const head = this.#pendingInput[0];
      if (head.length <= room) {
        this.#pendingInput.shift();
        this.user.read(head);
      } else {
        this.#pendingInput[0] = head.subarray(room);
        this.user.read(head.subarray(0, room));
      }
    }
    if (this.#pendingInput.length === 0) this.resumeInput();
  }

  /** Stream backends resume their source here once kept input is delivered. */
  protected resumeInput(): void {}

  /**
   * Tells the holder that this backend failed with `errno` (positive, e.g. ERRNO.EIO) outside a
   * write, as the write it would otherwise wait for would answer; a holder that does not listen
   * learns it at its next write.
   */
  protected reportFailure(errno: number): void {
    this.user?.backendFailed?.(errno);
  }

  /** QEMU's qemu_chr_be_event: tracks `beOpen` and tells the holder. */
  emitEvent(event: ChrEvent): void {
    if (event === ChrEvent.OPENED) this.#beOpen = true;
    else if (event === ChrEvent.CLOSED) this.#beOpen = false;
    this.user?.event(event);
  }

  /** Releases what the chardev holds (fds, sockets, core memory). */
  async destroy(): Promise<void> {
    this.cancelWatches();
    if (this.#logLoss) clearTimeout(this.#logLoss.timer);
    this.#logLoss = null;
    try {
      this.#log?.close();
    } catch {
      // A log that cannot be closed (EIO on a failing disk) has nothing more to give.
    }
    this.#log = null;
  }
}
