// The base of the backends that are file descriptors (file, pipe), as QEMU's char-fd.c is
// theirs: output written to one fd until it is all taken or refused, input read from another
// (or the same) fd and paused while the holder is full, both closed once on removal.

import { ChrEvent } from "../events.ts";
import type { InputSource } from "../runtime/types.ts";
import { Chardev, type ChardevContext } from "./_chardev.ts";
import { LossNotes, writeAvailable } from "./_fd.ts";

/**
 * A chardev over an output fd and an optional input fd (the same fd for a FIFO opened both
 * ways). OPENED at once: an fd that could be opened is connected.
 */
export abstract class FdChardev extends Chardev {
  readonly #input: InputSource | null;
  /** One fd both ways: the input source owns it, so it is closed once. */
  readonly #sharedFd: boolean;
  readonly #lossNotes = new LossNotes();

  constructor(
    id: string,
    context: ChardevContext,
    /** The path it was opened from, as given. */
    readonly path: string,
    /** Where output goes. */
    readonly outFd: number,
    inFd: number | null,
  ) {
    super(id, context);
    this.#sharedFd = inFd === outFd;
    this.#input =
      inFd === null
        ? null
        : context.runtime.readFd(inFd, {
            data: (chunk) => this.deliverInput(chunk),
            end: () => {},
          });
    this.emitEvent(ChrEvent.OPENED);
  }

  protected override resumeInput(): void {
    this.#input?.resume();
  }

  /** Writes until all is taken or the fd refuses: bytes taken, or -errno when none were. */
  protected writeOut(data: Uint8Array): number {
    return writeAvailable(this.context.runtime, this.outFd, data);
  }

  /**
   * Writes the line `[-- N bytes lost: ENOSPC --]` (finishing one a full disk cut short) into
   * the output; true once it is whole. A kind that can come back after a hard error offers
   * this as its `resumeAfterLoss`.
   */
  protected writeLossNotes(lost: number, errno: string): boolean {
    return this.#lossNotes.resume(lost, errno, (line) => writeAvailable(this.context.runtime, this.outFd, line));
  }

  override async destroy(): Promise<void> {
    this.#input?.close();
    if (!this.#sharedFd) this.context.runtime.closeFd(this.outFd);
    await super.destroy();
  }
}
