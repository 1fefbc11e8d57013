// `ringbuf` (alias `memory`): output kept in a power-of-two ring in core memory, oldest bytes
// overwritten; read back with `ringbuf-read`.

import { ChardevError } from "../errors.ts";
import { ChrEvent } from "../events.ts";
import type { OptionSchema } from "../option_schema.ts";
import { checkCoreRoom, MAX_RINGBUF_BYTES } from "../limits.ts";
import { Chardev, type ChardevContext, defineDriver } from "./_chardev.ts";

/** QEMU's default ring size. */
const DEFAULT_RINGBUF_SIZE = 65536;

export class RingbufChardev extends Chardev {
  readonly kind = "ringbuf";
  readonly #ring: number;

  constructor(
    id: string,
    context: ChardevContext,
    readonly size: number,
    /** `ringbuf` or its alias `memory`: QEMU's query-chardev shows the one it was made as. */
    readonly typeName: "ringbuf" | "memory" = "ringbuf",
  ) {
    super(id, context);
    this.#ring = context.core.ringbufNew(size);
    this.emitEvent(ChrEvent.OPENED);
  }

  override get filename(): string {
    return this.typeName;
  }

  protected writeOut(data: Uint8Array): number {
    return this.context.core.ringbufWrite(this.#ring, data);
  }

  /** `ringbuf-write`: appends straight to the ring (no logfile, as QEMU). */
  writeRing(data: Uint8Array): void {
    this.context.core.ringbufWrite(this.#ring, data);
  }

  /** Removes and returns up to `size` of the oldest bytes. */
  read(size: number): Uint8Array {
    return this.context.core.ringbufRead(this.#ring, size);
  }

  /** Bytes waiting to be read. */
  get count(): number {
    return this.context.core.ringbufCount(this.#ring);
  }

  override async destroy(): Promise<void> {
    this.context.core.ringbufFree(this.#ring);
    await super.destroy();
  }
}

/** `ringbuf`'s options (QEMU's ChardevRingbuf). */
export const ringbufOptions: OptionSchema = [
  { key: "size", type: "size", default: "64K", min: 1, max: MAX_RINGBUF_BYTES, help: "the ring's size in bytes, a power of two; read it with QMP ringbuf-read" },
];

export const ringbufDriver = defineDriver({
  type: "ringbuf",
  aliases: ["memory"],
  options: ringbufOptions,
  open(id, data, context, typeName) {
    const size = (data.size as number | undefined) ?? DEFAULT_RINGBUF_SIZE;
    // QEMU's text for a size that is not a power of two; ours for one past the core's limit.
    if (!Number.isSafeInteger(size) || size <= 0 || size % 2 ** Math.floor(Math.log2(size)) !== 0) {
      throw new ChardevError("INVALID_VALUE", "size of ringbuf chardev must be power of two");
    }
    if (size > MAX_RINGBUF_BYTES) {
      throw new ChardevError("INVALID_VALUE", `ringbuf: 'size' must be at most ${MAX_RINGBUF_BYTES} bytes (512 MiB), not ${size}`);
    }
    checkCoreRoom("ringbuf", "size", size, context.core.view(0, 0).buffer.byteLength);
    return new RingbufChardev(id, context, size, typeName === "memory" ? "memory" : "ringbuf");
  },
});
