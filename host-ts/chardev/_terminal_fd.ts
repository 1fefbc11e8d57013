// Reading and writing one terminal fd (a pty master, a serial tty) through the runtime's pty
// primitives, which are plain non-blocking poll(2), read(2) and write(2) and work on any
// terminal. As QEMU's char-pty does, we poll on a timer: no runtime gives us readiness events
// for an arbitrary fd. One loop serves two kinds of terminal, told apart by the `peer` hook:
// for a spawned program's pty or a tty, a hang-up is the end; for a bare pty (the `pty`
// chardev), it only means nobody has the slave open now, and a peer may come (again) later.

import { ERRNO } from "../errno.ts";
import type { PtyPrimitives, PtyReadiness } from "../runtime/types.ts";
import { Chardev } from "./_chardev.ts";
import { writeUntilRefused } from "./_fd.ts";

/** Polling pace while the fd is quiet (and, for a peer terminal, while a peer is there). */
const IDLE_POLL_MS = 10;
/**
 * How often a peer terminal without a peer looks for one. QEMU looks once a second; output to
 * a peer that arrived is dropped until the poll sees it, and a poll(2) costs next to nothing,
 * so we look four times a second.
 */
const ABSENT_PEER_POLL_MS = 250;
/**
 * After a write a terminal usually answers at once (a shell echoes what was typed), so the
 * next poll comes sooner than the idle pace.
 */
const AFTER_WRITE_POLL_MS = 1;
/** A watch looks for room (POLLOUT) at this pace. */
const WATCH_POLL_MS = 5;
/** One read(2) takes at most this; a poll reads up to `READS_PER_POLL` times, then lets the event loop run. */
const READ_CHUNK_BYTES = 4096;
const READS_PER_POLL = 16;
/** What a stopped terminal reads as: nobody there, nothing to read or write. */
const HUNG_UP: PtyReadiness = { readable: false, writable: false, hangup: true };

/** How a round of reads ended. */
type ReadOutcome = "drained" | "ended" | "paused" | "more" | "stopped";

/** What a `TerminalFd` tells its owner. */
export interface TerminalFdHandlers {
  /** Bytes read; false when the holder is full, which pauses reading until `resume`. */
  input(data: Uint8Array): boolean;
  /**
   * Without `peer`: nothing will come any more: read(2) answered end of file or an error other
   * than EAGAIN (a pty master whose slave everyone closed answers EIO; so does a tty that was
   * unplugged). Called once; polling has stopped.
   */
  ended?(): void;
  /**
   * A poll found nothing to read (EAGAIN), with nothing held back by a pause. The spawn chardev
   * uses it to tell that a finished program's output has all been read.
   */
  idle?(): void;
  /**
   * Present for a terminal whose other side comes and goes (a bare pty's slave): a hang-up
   * then means "no peer now" (`left`, QEMU's CLOSED of patch 1/4), a poll without one a peer
   * that arrived (`arrived`); polling never ends by itself, goes on while input is paused
   * (to see a peer come and go), and reads whatever is there, peer or not (a peer that writes
   * and leaves between two polls, `echo cmd > /dev/pts/N`, still reaches the holder).
   */
  peer?: { arrived(): void; left(): void };
}

/**
 * One terminal fd, polled for input and written without blocking. It does not own the fd:
 * `stop` leaves closing it to the caller.
 */
export class TerminalFd {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #paused = false;
  #stopped = false;
  /** With a `peer` hook: QEMU's `connected`, a peer has the slave open as of the last poll. */
  #peerPresent = false;

  constructor(
    readonly pty: PtyPrimitives,
    readonly fd: number,
    readonly handlers: TerminalFdHandlers,
  ) {
    this.#schedule(0);
  }

  /** Whether polling has stopped (`stop`, or the fd ended). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** With a `peer` hook: whether a peer has the terminal open, as of the last poll. */
  get peerPresent(): boolean {
    return this.#peerPresent;
  }

  #schedule(delay: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#poll, delay);
  }

  #poll = (): void => {
    this.#timer = undefined;
    if (this.#stopped) return;
    if (this.handlers.peer) {
      const state = this.#refreshPeer();
      if (this.#stopped) return;
      // Input still waiting after a full round of reads: come back at once, not after a pause.
      this.#schedule(!this.#peerPresent ? ABSENT_PEER_POLL_MS : state.readable && !this.#paused ? 0 : IDLE_POLL_MS);
      return;
    }
    if (this.#paused) return;
    const state = this.pty.poll(this.fd);
    // A hangup with nothing readable still reads once: that read reports the end (EIO or 0).
    const outcome = state.readable || state.hangup ? this.#readRound() : "drained";
    if (outcome === "drained") {
      this.handlers.idle?.();
      this.#schedule(IDLE_POLL_MS);
    } else if (outcome === "ended") {
      this.#end();
    } else if (outcome === "more") {
      // A full round of reads and still more: come back at once, after the event loop had a turn.
      this.#schedule(0);
    }
  };

  /**
   * One poll of a peer terminal, in the order things happened: a new peer is announced before
   * its input, so a frontend answering that input reaches it through a hub; a peer that left
   * is reported only after what it wrote is taken.
   */
  #refreshPeer(): PtyReadiness {
    const peer = this.handlers.peer!;
    let state = this.pty.poll(this.fd);
    if (!state.hangup && !this.#peerPresent) {
      this.#peerPresent = true;
      peer.arrived();
      // The holder may stop us from its event handler: the fd is closed (and maybe reused).
      if (this.#stopped) return HUNG_UP;
    }
    if (state.readable && !this.#paused) {
      // Whatever the outcome: here EIO or 0 only mean that the peer left and nothing is buffered.
      this.#readRound();
      if (this.#stopped) return HUNG_UP;
      state = this.pty.poll(this.fd);
    }
    if (state.hangup && this.#peerPresent) {
      this.#peerPresent = false;
      peer.left();
    }
    return state;
  }

  /** Up to `READS_PER_POLL` reads, each handed to the holder. */
  #readRound(): ReadOutcome {
    for (let round = 0; round < READS_PER_POLL; round++) {
      const got = this.pty.read(this.fd, READ_CHUNK_BYTES);
      if (this.#stopped) return "stopped";
      if (got === -ERRNO.EAGAIN) return "drained";
      if (typeof got === "number" || got.length === 0) return "ended";
      const more = this.handlers.input(got);
      if (this.#stopped) return "stopped";
      if (!more) {
        this.#paused = true;
        return "paused";
      }
    }
    return "more";
  }

  #end(): void {
    this.stop();
    this.handlers.ended?.();
  }

  /** The holder can take input again. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    // Read what waited in the terminal now rather than at the next (possibly slow) poll.
    this.#schedule(0);
  }

  /**
   * Non-blocking writes until all is taken or the terminal is full: bytes taken, or -errno
   * (-EAGAIN when it took none). Never throws.
   */
  write(data: Uint8Array): number {
    if (this.#stopped) return -ERRNO.EIO;
    const done = writeUntilRefused((chunk) => this.pty.write(this.fd, chunk), data);
    // A peer terminal keeps its own pace: its peer (a person at a terminal) is not a program
    // that answers every write at once.
    if (done > 0 && !this.#paused && !this.handlers.peer) this.#schedule(AFTER_WRITE_POLL_MS);
    return done;
  }

  /**
   * For a watch: whether a write may go on now (POLLOUT). A peer terminal is refreshed first,
   * so a peer that left is reported before the writer retries, and a hang-up counts as room
   * (a write then drops its bytes, so it no longer waits).
   */
  writeMayProceed(): boolean {
    if (!this.handlers.peer) return this.pty.poll(this.fd).writable;
    const state = this.#refreshPeer();
    return state.writable || state.hangup;
  }

  /** Stops polling (a peer terminal forgets its peer); the fd stays open. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#peerPresent = false;
    clearTimeout(this.#timer);
  }
}

/**
 * A chardev whose I/O is one `TerminalFd` (pty, spawn, serial): output is written to it, input
 * resumes through it, and a watch polls it for room on the chardev's watch list. Subclasses
 * set `io` in their constructor with `openTerminal`.
 */
export abstract class TerminalFdChardev extends Chardev {
  protected abstract readonly io: TerminalFd;

  /**
   * A `TerminalFd` on `fd` whose end also wakes every writer waiting on a watch, after the
   * owner heard of it: the writer learns from its next write that there is no room to wait for.
   */
  protected openTerminal(pty: PtyPrimitives, fd: number, handlers: TerminalFdHandlers): TerminalFd {
    return new TerminalFd(pty, fd, {
      ...handlers,
      ended: () => {
        handlers.ended?.();
        this.fireWatches();
      },
    });
  }

  protected override resumeInput(): void {
    this.io.resume();
  }

  /** Bytes taken, -EAGAIN when the terminal's queue is full, -EIO once it is gone. */
  protected writeOut(data: Uint8Array): number {
    return this.io.write(data);
  }

  /**
   * Calls `callback` once the terminal has room or has ended. A terminal that was stopped
   * (removed, or its program finished) leaves its watches waiting, silent, until the chardev
   * is destroyed.
   */
  override addWatch(callback: () => void): () => void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cancel = this.addToWatchList(callback, () => clearTimeout(timer));
    const check = (): void => {
      if (this.io.stopped) return;
      const room = this.io.writeMayProceed();
      if (this.io.stopped) return;
      if (!room) timer = setTimeout(check, WATCH_POLL_MS);
      else if (cancel()) callback();
    };
    timer = setTimeout(check, 0);
    return cancel;
  }
}
