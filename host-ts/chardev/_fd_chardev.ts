// The base of the backends that are file descriptors (file, pipe), as QEMU's char-fd.c is
// theirs: output written to one fd (or file's log file) until it is all taken or refused, input
// read from another (or the same) fd and paused while the holder is full, both closed once on
// removal.

import { ChrEvent } from "../events.ts";
import type { InputSource } from "../runtime/types.ts";
import { Chardev, type ChardevContext } from "./_chardev.ts";
import type { HostRuntime } from "../runtime/types.ts";
import { LossNotes, writeAvailable } from "./_fd.ts";

/**
 * Where an FdChardev's output goes: one fd, or a log file that stamps, rotates and reopens
 * (file's is a LogFile, whose fd changes as it rotates).
 */
export interface FdOutput {
  /** The fd output goes to now (a watch waits on it). */
  readonly fd: number;
  /** Writes until all is taken or the fd refuses: bytes taken, or -errno when none were. Never throws. */
  take(data: Uint8Array): number;
  close(): void;
}

/** Output to one fd as it is; `ownsFd` false when the input source owns it (one FIFO both ways). */
function plainFdOutput(runtime: HostRuntime, fd: number, ownsFd: boolean): FdOutput {
  return {
    fd,
    take: (data) => writeAvailable(runtime, fd, data),
    close: () => {
      if (ownsFd) runtime.closeFd(fd);
    },
  };
}

/**
 * A chardev over an output and an optional input fd. OPENED at once: an fd that could be
 * opened is connected.
 */
export abstract class FdChardev extends Chardev {
  readonly #input: InputSource | null;
  readonly #lossNotes = new LossNotes();
  /** Where output goes; closed on removal. */
  readonly #output: FdOutput;

  constructor(
    id: string,
    context: ChardevContext,
    /** The path it was opened from, as given. */
    readonly path: string,
    /** Where output goes: an fd (closed on removal unless it is `inFd` too), or an FdOutput. */
    output: number | FdOutput,
    inFd: number | null,
  ) {
    super(id, context);
    this.#output = typeof output === "number" ? plainFdOutput(context.runtime, output, output !== inFd) : output;
    this.#input =
      inFd === null
        ? null
        : context.runtime.readFd(inFd, {
            data: (chunk) => this.deliverInput(chunk),
            end: () => {},
          });
    this.emitEvent(ChrEvent.OPENED);
  }

  /** The fd output goes to now. */
  get outFd(): number {
    return this.#output.fd;
  }

  protected override resumeInput(): void {
    this.#input?.resume();
  }

  /** Writes until all is taken or the fd refuses: bytes taken, or -errno when none were. */
  protected writeOut(data: Uint8Array): number {
    return this.#output.take(data);
  }

  /**
   * Writes the line `[-- N bytes lost: ENOSPC --]` (finishing one a full disk cut short) into
   * the output; true once it is whole. A kind that can come back after a hard error offers
   * this as its `resumeAfterLoss`.
   */
  protected writeLossNotes(lost: number, errno: string): boolean {
    return this.#lossNotes.resume(lost, errno, (line) => this.#output.take(line));
  }

  override async destroy(): Promise<void> {
    this.#input?.close();
    this.#output.close();
    await super.destroy();
  }
}
