// `pty`: a pseudo-terminal pair with nothing spawned on it (QEMU's char-pty). We keep the
// master; whoever opens the slave (`/dev/pts/N`, or the `path=` symlink to it) is the peer.
// As in QEMU the peer is seen by polling the master, POLLHUP meaning nobody has the slave
// open: OPENED when one arrives, CLOSED when it leaves (patch 1/4 of the hub series), so a
// hub skips the pty while nobody is on it.

import { ChardevError } from "../errors.ts";
import { strerror } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { PtyPair, PtyPrimitives, PtyReadiness } from "../runtime/types.ts";
import { Chardev, type ChardevContext, type ChardevDriver } from "./_chardev.ts";
import { dataFromOptions, qapiFields, type OptionSchema } from "../option_schema.ts";
import { writeUntilRefused } from "./_fd.ts";

/**
 * How often a pty without a peer looks for one. QEMU looks once a second; output to a peer
 * that arrived is dropped until the poll sees it, and a poll(2) costs next to nothing, so we
 * look four times a second.
 */
const DISCONNECTED_POLL_MS = 250;
/** With a peer, the poll is also how input arrives, so it runs often. */
const CONNECTED_POLL_MS = 10;
/** A watch waits for room in the pty (POLLOUT) at this pace. */
const WATCH_POLL_MS = 5;
/** One read(2) takes at most this; a poll reads up to `READS_PER_POLL` times, then lets the event loop run. */
const READ_CHUNK_BYTES = 4096;
const READS_PER_POLL = 16;
/** What a destroyed pty reads as: nobody there, nothing to read or write. */
const HUNG_UP: PtyReadiness = { readable: false, writable: false, hangup: true };

/**
 * A `pty` chardev: the master side of a pty pair.
 *
 * @example A pty behind a hub, for a terminal program to attach to
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * const pty = (await reg.add("pty,id=pty0,path=/tmp/console")) as PtyChardev;
 * await reg.add("ringbuf,id=log0,size=65536");
 * await reg.add("hub,id=hub0,chardevs.0=pty0,chardevs.1=log0");
 * console.log(pty.slavePath, pty.filename); // "/dev/pts/3" "pty:/dev/pts/3"
 * // in a shell: socat - /tmp/console,raw,echo=0
 * ```
 */
export class PtyChardev extends Chardev {
  readonly kind = "pty";
  /** The slave's device path (`/dev/pts/N`): what a peer opens. QMP's `chardev-add` returns it as `pty`. */
  readonly slavePath: string;
  /** The `path=` symlink to the slave, removed with the chardev. */
  readonly linkPath: string | undefined;
  readonly #pty: PtyPrimitives;
  readonly #fd: number;
  /** QEMU's `connected`: a peer has the slave open, as of the last poll. */
  #connected = false;
  /** The holder is full: input stays in the pty until `resumeInput`. */
  #inputPaused = false;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #watchCancels = new Set<() => void>();
  #destroyed = false;

  constructor(id: string, context: ChardevContext, pty: PtyPrimitives, pair: PtyPair, linkPath?: string) {
    super(id, context);
    this.#pty = pty;
    this.#fd = pair.fd;
    this.slavePath = pair.slavePath;
    this.linkPath = linkPath;
    this.#pollAndReschedule();
  }

  /** QEMU's `query-chardev` filename: `pty:/dev/pts/N`. */
  override get filename(): string {
    return `pty:${this.slavePath}`;
  }

  /** Whether a peer has the slave open, as of the last poll. */
  get connected(): boolean {
    return this.#connected;
  }

  #pollAndReschedule = (): void => {
    this.#pollTimer = undefined;
    if (this.#destroyed) return;
    const readMore = this.#refresh().readable && !this.#inputPaused;
    if (this.#destroyed) return; // the holder removed us while hearing an event
    // Input still waiting after a full round of reads: come back at once, not after a pause.
    this.#schedulePoll(!this.#connected ? DISCONNECTED_POLL_MS : readMore ? 0 : CONNECTED_POLL_MS);
  };

  /** One poll timer at most: a holder's handler may ask for an early poll in the middle of one. */
  #schedulePoll(delayMs: number): void {
    clearTimeout(this.#pollTimer);
    this.#pollTimer = setTimeout(this.#pollAndReschedule, delayMs);
  }

  /**
   * One poll, in the order things happened: a new peer is announced (OPENED) before its input,
   * so a frontend answering that input reaches it through a hub; a peer that left is reported
   * (CLOSED) only after what it wrote is taken.
   */
  #refresh(): PtyReadiness {
    let state = this.#pty.poll(this.#fd);
    if (!state.hangup && !this.#connected) {
      this.#connected = true;
      this.emitEvent(ChrEvent.OPENED);
      // A holder may destroy us from its event handler: the fd is closed (and maybe reused).
      if (this.#destroyed) return HUNG_UP;
    }
    // Input is taken whenever it is there, connected or not: a peer that writes and leaves
    // between two polls (`echo cmd > /dev/pts/N`) still reaches the frontend.
    if (state.readable && !this.#inputPaused) {
      this.#readAvailable();
      if (this.#destroyed) return HUNG_UP;
      state = this.#pty.poll(this.#fd);
    }
    if (state.hangup && this.#connected) {
      this.#connected = false;
      this.emitEvent(ChrEvent.CLOSED);
    }
    return state;
  }

  #readAvailable(): void {
    for (let round = 0; round < READS_PER_POLL && !this.#inputPaused && !this.#destroyed; round++) {
      const got = this.#pty.read(this.#fd, READ_CHUNK_BYTES);
      // -EAGAIN: nothing left; -EIO: the peer left and nothing is buffered; 0: the same on some systems.
      if (typeof got === "number" || got.length === 0) return;
      if (!this.deliverInput(got)) this.#inputPaused = true;
    }
  }

  protected override resumeInput(): void {
    if (!this.#inputPaused) return;
    this.#inputPaused = false;
    if (this.#destroyed) return;
    // Read what waited in the pty now rather than at the next (possibly slow) poll.
    this.#schedulePoll(0);
  }

  /**
   * With a peer: non-blocking writes until all is taken or the pty is full (bytes taken, or
   * -EAGAIN when none were). Without one, as in QEMU, the bytes are reported written and
   * dropped, unless a peer arrived since the last poll: QEMU checks first, and so do we.
   */
  protected writeOut(data: Uint8Array): number {
    if (!this.#connected) {
      const state = this.#pty.poll(this.#fd);
      if (!state.hangup && state.writable) this.#writeSome(data);
      return data.length;
    }
    return this.#writeSome(data);
  }

  #writeSome(data: Uint8Array): number {
    return writeUntilRefused((chunk) => this.#pty.write(this.#fd, chunk), data);
  }

  /**
   * Calls `callback` once the pty has room again (POLLOUT) or the peer left (a write then
   * drops its bytes, so it no longer waits).
   */
  override addWatch(callback: () => void): () => void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cancel = (): void => {
      clearTimeout(timer);
      this.#watchCancels.delete(cancel);
    };
    const check = (): void => {
      // A full refresh, so a peer that left is reported CLOSED before the writer retries.
      if (this.#destroyed) return;
      const state = this.#refresh();
      if (this.#destroyed) return;
      if (state.writable || state.hangup) {
        cancel();
        callback();
      } else {
        timer = setTimeout(check, WATCH_POLL_MS);
      }
    };
    timer = setTimeout(check, 0);
    this.#watchCancels.add(cancel);
    return cancel;
  }

  /** Stops polling and closes the master; a connected peer is reported gone (QEMU's finalize). */
  override async destroy(): Promise<void> {
    if (!this.#destroyed) {
      this.#destroyed = true;
      clearTimeout(this.#pollTimer);
      for (const cancel of [...this.#watchCancels]) cancel();
      if (this.#connected) {
        this.#connected = false;
        this.emitEvent(ChrEvent.CLOSED);
      }
      this.#pty.close(this.#fd);
      // Only a link that still leads to our slave: another chardev-hub may own the path now.
      const link = this.linkPath === undefined ? undefined : this.#pty.inspectLink(this.linkPath);
      if (link?.kind === "link" && link.target === this.slavePath) this.#pty.unlink(this.linkPath!);
    }
    await super.destroy();
  }
}

/**
 * Makes `linkPath` a symlink to `slavePath`, replacing a stale link. QEMU refuses any link that
 * exists (EEXIST), so a run killed with SIGKILL would block the next one; but a link still in
 * use must not be taken from its chardev-hub. A /dev/pts/N exists only while some master holds
 * it, and a freed number is handed out again, so the rule is: a link is live when it leads to
 * a terminal that is neither the one we were just given nor newer than the link; a live link
 * is refused with "Address already in use", as a live socket path is. A dangling link, or one
 * to a terminal made after it, is stale and replaced. Anything else there (a file, a
 * directory, a link to one) is left alone and symlink(2) reports "File exists", as in QEMU.
 */
function linkToSlave(pty: PtyPrimitives, slavePath: string, linkPath: string): void {
  const existing = pty.inspectLink(linkPath);
  if (existing.kind === "link" && existing.leadsTo === "terminal") {
    const stale = existing.target === slavePath || existing.targetNewerThanLink;
    if (!stale) {
      throw new ChardevError(
        "OPEN_FAILED",
        `Failed to create PTY symlink: Address already in use ('${linkPath}' leads to ${existing.target}, a terminal in use)`,
      );
    }
  }
  if (existing.kind === "link" && existing.leadsTo !== "other") pty.unlink(linkPath);
  try {
    pty.symlink(slavePath, linkPath);
  } catch (error) {
    throw new ChardevError("OPEN_FAILED", `Failed to create PTY symlink: ${strerror(error)}`);
  }
}

/** `pty`'s options (QEMU's ChardevPty). */
export const ptyOptions: OptionSchema = [
  { key: "path", type: "string", help: "a symlink to the new pty's slave; a link to a live terminal is refused, a dangling one replaced" },
];

/**
 * `-chardev pty,id=ID[,path=LINK]`, QMP `{ type: "pty", data: { path? } }`.
 * With `path`, LINK becomes a symlink to the slave; a stale link there is replaced, a live
 * one or any other file refused (see `linkToSlave`).
 */
export const ptyDriver: ChardevDriver = {
  type: "pty",
  options: ptyOptions,
  fields: qapiFields(ptyOptions),
  fromOptions: (options) => dataFromOptions(ptyOptions, options),
  open(id, data, context) {
    const pty = context.runtime.pty;
    if (!pty) throw new ChardevError("UNSUPPORTED", `chardev: pty: this runtime (${context.runtime.name}) has no ptys`);
    let pair: PtyPair;
    try {
      pair = pty.openpt();
    } catch (error) {
      if (error instanceof ChardevError) throw error;
      throw new ChardevError("OPEN_FAILED", `Failed to create PTY: ${strerror(error)}`);
    }
    const linkPath = data.path as string | undefined;
    if (linkPath !== undefined) {
      try {
        linkToSlave(pty, pair.slavePath, linkPath);
      } catch (error) {
        pty.close(pair.fd);
        throw error;
      }
    }
    return new PtyChardev(id, context, pty, pair, linkPath);
  },
};
