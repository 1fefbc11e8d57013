// `stdio`: the process's own terminal. A terminal stdin goes raw; with `signal=on` (QEMU's
// default) Ctrl-C still interrupts this process instead of reaching the frontend.

import { ChardevError } from "../errors.ts";
import { ChrEvent } from "../events.ts";
import type { OptionSchema } from "../option_schema.ts";
import type { InputSource, StdioPrimitives } from "../runtime/types.ts";
import { Chardev, type ChardevContext, defineDriver, runtimePart } from "./_chardev.ts";

const CTRL_C = 0x03;

/** A process has one terminal: QEMU allows one stdio chardev at a time. */
let stdioInUse = false;

export class StdioChardev extends Chardev {
  readonly kind = "stdio";
  readonly #input: InputSource;

  constructor(
    id: string,
    context: ChardevContext,
    readonly stdio: StdioPrimitives,
    readonly signal: boolean,
  ) {
    super(id, context);
    stdio.setRaw(true);
    this.#input = stdio.readInput({
      data: (chunk) => this.deliverInput(this.#filterSignals(chunk)),
      end: () => this.emitEvent(ChrEvent.CLOSED),
    });
    this.emitEvent(ChrEvent.OPENED);
  }

  /** On a terminal with signal=on, Ctrl-C interrupts us; raw mode took that from the tty. */
  #filterSignals(chunk: Uint8Array): Uint8Array {
    if (!this.signal || !this.stdio.isTerminal || !chunk.includes(CTRL_C)) return chunk;
    this.stdio.interrupt();
    return chunk.filter((byte) => byte !== CTRL_C);
  }

  protected override resumeInput(): void {
    this.#input.resume();
  }

  protected writeOut(data: Uint8Array): number {
    return this.stdio.write(data);
  }

  override addWatch(callback: () => void): () => void {
    return this.stdio.onDrain(callback);
  }

  override async destroy(): Promise<void> {
    this.#input.close();
    this.stdio.setRaw(false);
    stdioInUse = false;
    await super.destroy();
  }
}

/** `stdio`'s options (QEMU's ChardevStdio). */
export const stdioOptions: OptionSchema = [
  { key: "signal", type: "bool", default: "on", help: "Ctrl-C ends the program (off: it is passed on as a byte)" },
];

export const stdioDriver = defineDriver({
  type: "stdio",
  options: stdioOptions,
  open(id, data, context) {
    const stdio = runtimePart(context, "stdio", (runtime) => `chardev: stdio: this runtime (${runtime}) has no terminal`);
    if (stdioInUse) throw new ChardevError("IN_USE", "cannot use stdio by multiple character devices");
    stdioInUse = true;
    return new StdioChardev(id, context, stdio, (data.signal as boolean | undefined) ?? true);
  },
});
