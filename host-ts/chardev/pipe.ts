// `pipe`: FIFOs `PATH.in` (input) and `PATH.out` (output), else `PATH` both ways, opened
// non-blocking so a full pipe answers EAGAIN and the hub's watch waits for it.

import { ChardevError } from "../errors.ts";
import { ChrEvent } from "../events.ts";
import type { InputSource } from "../runtime/types.ts";
import { Chardev, type ChardevContext, type ChardevDriver } from "./_chardev.ts";
import { dataFromOptions, qapiFields, type OptionSchema } from "../option_schema.ts";
import { openOrThrow, writeAvailable } from "./_fd.ts";

export class PipeChardev extends Chardev {
  readonly kind = "pipe";
  readonly #input: InputSource;
  /** One FIFO both ways: the input source owns the fd, so it is closed once. */
  readonly #sharedFd: boolean;

  constructor(id: string, context: ChardevContext, readonly path: string, readonly outFd: number, inFd: number) {
    super(id, context);
    this.#sharedFd = inFd === outFd;
    this.#input = context.runtime.readFd(inFd, {
      data: (chunk) => this.deliverInput(chunk),
      end: () => {},
    });
    this.emitEvent(ChrEvent.OPENED);
  }

  protected override resumeInput(): void {
    this.#input.resume();
  }

  protected writeOut(data: Uint8Array): number {
    return writeAvailable(this.context.runtime, this.outFd, data);
  }

  override addWatch(callback: () => void): () => void {
    return this.context.runtime.watchWritable(this.outFd, callback);
  }

  override async destroy(): Promise<void> {
    this.#input.close();
    if (!this.#sharedFd) this.context.runtime.closeFd(this.outFd);
    await super.destroy();
  }
}

function tryOpen(context: ChardevContext, path: string): number | null {
  try {
    return context.runtime.openFile(path, "readwrite-nonblocking");
  } catch {
    return null;
  }
}

/** `pipe`'s options (QEMU's ChardevHostdev). */
export const pipeOptions: OptionSchema = [
  { key: "path", member: "device", type: "string", required: true, missing: "chardev: pipe: no filename given", help: "FIFOs PATH.in and PATH.out, else PATH both ways" },
];

export const pipeDriver: ChardevDriver = {
  type: "pipe",
  options: pipeOptions,
  fields: qapiFields(pipeOptions),
  fromOptions: (options) => dataFromOptions(pipeOptions, options),
  open(id, data, context) {
    const device = data.device as string | undefined;
    if (!device) throw new ChardevError("MISSING_PARAMETER", "Parameter 'device' is missing");
    let inFd = tryOpen(context, `${device}.in`);
    let outFd = tryOpen(context, `${device}.out`);
    if (inFd === null || outFd === null) {
      if (inFd !== null) context.runtime.closeFd(inFd);
      if (outFd !== null) context.runtime.closeFd(outFd);
      inFd = outFd = openOrThrow(context.runtime, device, "readwrite-nonblocking");
    }
    return new PipeChardev(id, context, device, outFd, inFd);
  },
};
