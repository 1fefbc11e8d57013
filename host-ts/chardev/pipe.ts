// `pipe`: FIFOs `PATH.in` (input) and `PATH.out` (output), else `PATH` both ways, opened
// non-blocking so a full pipe answers EAGAIN and the hub's watch waits for it.

import { type ChardevContext, defineDriver } from "./_chardev.ts";
import type { OptionSchema } from "../option_schema.ts";
import { openOrThrow } from "./_fd.ts";
import { FdChardev } from "./_fd_chardev.ts";

/** A `pipe` chardev: a FIFO pair (or one FIFO both ways), non-blocking. */
export class PipeChardev extends FdChardev {
  readonly kind = "pipe";

  /** Non-blocking: a full pipe answered EAGAIN, and the runtime says when it drains. */
  override addWatch(callback: () => void): () => void {
    let stopWatching: (() => void) | undefined;
    // On the watch list, so removing the pipe also ends the runtime's wait on its fd.
    const cancel = this.addToWatchList(callback, () => stopWatching?.());
    stopWatching = this.context.runtime.watchWritable(this.outFd, () => cancel() && callback());
    return cancel;
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

export const pipeDriver = defineDriver({
  type: "pipe",
  options: pipeOptions,
  open(id, data, context) {
    // `device` is required by the schema (QMP's check, `-chardev`'s "no filename given").
    const device = data.device as string;
    let inFd = tryOpen(context, `${device}.in`);
    let outFd = tryOpen(context, `${device}.out`);
    if (inFd === null || outFd === null) {
      if (inFd !== null) context.runtime.closeFd(inFd);
      if (outFd !== null) context.runtime.closeFd(outFd);
      inFd = outFd = openOrThrow(context.runtime, device, "readwrite-nonblocking");
    }
    return new PipeChardev(id, context, device, outFd, inFd);
  },
});
