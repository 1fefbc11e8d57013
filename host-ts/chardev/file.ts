// `file`: output to a file (truncated, or appended with `append=on`), optional input read from
// `input-path`. Writes are blocking, as QEMU's.

import { ChardevError } from "../errors.ts";
import { ChrEvent } from "../events.ts";
import { parseBool } from "../options.ts";
import type { InputSource } from "../runtime/types.ts";
import { Chardev, type ChardevContext, type ChardevDriver } from "./_chardev.ts";
import { openOrThrow, writeAvailable } from "./_fd.ts";

export class FileChardev extends Chardev {
  readonly kind = "file";
  #input: InputSource | null = null;

  constructor(id: string, context: ChardevContext, readonly path: string, readonly outFd: number, inFd: number | null) {
    super(id, context);
    if (inFd !== null) {
      this.#input = context.runtime.readFd(inFd, {
        data: (chunk) => this.deliverInput(chunk),
        end: () => {},
      });
    }
    this.emitEvent(ChrEvent.OPENED);
  }

  protected override resumeInput(): void {
    this.#input?.resume();
  }

  protected writeOut(data: Uint8Array): number {
    return writeAvailable(this.context.runtime, this.outFd, data);
  }

  override async destroy(): Promise<void> {
    this.#input?.close();
    this.context.runtime.closeFd(this.outFd);
    await super.destroy();
  }
}


export const fileDriver: ChardevDriver = {
  type: "file",
  fields: { out: "string", in: "string", append: "bool" },
  fromOptions(options) {
    const path = options.get("path");
    if (!path) throw new ChardevError("MISSING_PARAMETER", "chardev: file: no filename given");
    const data: Record<string, unknown> = { out: path };
    if (options.has("input-path")) data.in = options.get("input-path");
    if (options.has("append")) data.append = parseBool("append", options.get("append")!);
    return data;
  },
  open(id, data, context) {
    const out = data.out as string | undefined;
    if (!out) throw new ChardevError("MISSING_PARAMETER", "Parameter 'out' is missing");
    const inPath = data.in as string | undefined;
    const inFd = inPath ? openOrThrow(context.runtime, inPath, "read") : null;
    let outFd: number;
    try {
      outFd = openOrThrow(context.runtime, out, data.append ? "append" : "write");
    } catch (error) {
      if (inFd !== null) context.runtime.closeFd(inFd);
      throw error;
    }
    return new FileChardev(id, context, out, outFd, inFd);
  },
};
