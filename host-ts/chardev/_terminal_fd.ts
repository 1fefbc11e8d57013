// Reading and writing one terminal fd (the master of a pty we spawned a program on, a serial
// tty) through the runtime's pty primitives, which are plain non-blocking poll(2), read(2)
// and write(2) and work on any terminal. As the pty chardev does (and QEMU's char-pty), we poll
// on a timer: no runtime gives us readiness events for an arbitrary fd.

import { ERRNO } from "../errno.ts";
import type { PtyPrimitives } from "../runtime/types.ts";
import { Chardev } from "./_chardev.ts";
import { writeUntilRefused } from "./_fd.ts";

/** Polling pace while the fd is quiet. */
const IDLE_POLL_MS = 10;
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

/** What a `TerminalFd` tells its owner. */
export interface TerminalFdHandlers {
  /** Bytes read; false when the holder is full, which pauses reading until `resume`. */
  input(data: Uint8Array): boolean;
  /**
   * Nothing will come any more: read(2) answered end of file or an error other than EAGAIN
   * (a pty master whose slave everyone closed answers EIO; so does a tty that was unplugged).
   * Called once; polling has stopped.
   */
  ended(): void;
  /**
   * A poll found nothing to read (EAGAIN), with nothing held back by a pause. The spawn chardev
   * uses it to tell that a finished program's output has all been read.
   */
  idle?(): void;
}

/**
 * One terminal fd, polled for input and written without blocking. It does not own the fd:
 * `stop` leaves closing it to the caller.
 */
export class TerminalFd {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #paused = false;
  #stopped = false;
  /** Pending watches: each one's cancel function and its callback. */
  readonly #watches = new Map<() => void, () => void>();

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

  #schedule(delay: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#poll, delay);
  }

  #poll = (): void => {
    this.#timer = undefined;
    if (this.#stopped || this.#paused) return;
    const state = this.pty.poll(this.fd);
    // A hangup with nothing readable still reads once: that read reports the end (EIO or 0).
    if (!state.readable && !state.hangup) {
      this.handlers.idle?.();
      this.#schedule(IDLE_POLL_MS);
      return;
    }
    for (let round = 0; round < READS_PER_POLL; round++) {
      const got = this.pty.read(this.fd, READ_CHUNK_BYTES);
      if (this.#stopped) return;
      if (got === -ERRNO.EAGAIN) {
        this.handlers.idle?.();
        this.#schedule(IDLE_POLL_MS);
        return;
      }
      if (typeof got === "number" || got.length === 0) {
        this.#end();
        return;
      }
      const more = this.handlers.input(got);
      if (this.#stopped) return;
      if (!more) {
        this.#paused = true;
        return;
      }
    }
    // A full round of reads and still more: come back at once, after the event loop had a turn.
    this.#schedule(0);
  };

  #end(): void {
    const waiting = [...this.#watches.values()];
    this.stop();
    this.handlers.ended();
    // A writer waiting for room learns from its next write that there is none to wait for.
    for (const callback of waiting) callback();
  }

  /** The holder can take input again. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#schedule(0);
  }

  /**
   * Non-blocking writes until all is taken or the terminal is full: bytes taken, or -errno
   * (-EAGAIN when it took none). Never throws.
   */
  write(data: Uint8Array): number {
    if (this.#stopped) return -ERRNO.EIO;
    const done = writeUntilRefused((chunk) => this.pty.write(this.fd, chunk), data);
    if (done > 0 && !this.#paused) this.#schedule(AFTER_WRITE_POLL_MS);
    return done;
  }

  /** Calls `callback` once the terminal has room (POLLOUT) or has ended; returns a cancel function. */
  addWatch(callback: () => void): () => void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cancel = (): void => {
      clearTimeout(timer);
      this.#watches.delete(cancel);
    };
    const check = (): void => {
      if (this.pty.poll(this.fd).writable) {
        cancel();
        callback();
      } else {
        timer = setTimeout(check, WATCH_POLL_MS);
      }
    };
    timer = setTimeout(check, 0);
    this.#watches.set(cancel, callback);
    return cancel;
  }

  /** Stops polling and cancels watches; the fd stays open. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const cancel of [...this.#watches.keys()]) cancel();
  }
}

/**
 * A chardev whose I/O is one `TerminalFd` (spawn, serial): output is written to it, input
 * resumes through it, and a watch waits on it. Subclasses set `io` in their constructor.
 */
export abstract class TerminalFdChardev extends Chardev {
  protected abstract readonly io: TerminalFd;

  protected override resumeInput(): void {
    this.io.resume();
  }

  /** Bytes taken, -EAGAIN when the terminal's queue is full, -EIO once it is gone. */
  protected writeOut(data: Uint8Array): number {
    return this.io.write(data);
  }

  override addWatch(callback: () => void): () => void {
    return this.io.addWatch(callback);
  }
}
