// `ringbuf` (alias `memory`): output kept in a power-of-two ring in core memory, oldest bytes
// overwritten; read back with `ringbuf-read`.

import { ChardevError } from "../errors.ts";
import { ChrEvent } from "../events.ts";
import { parseSize } from "../options.ts";
import { Chardev, type ChardevContext, type ChardevDriver } from "./_chardev.ts";

/** QEMU's default ring size. */
const DEFAULT_RINGBUF_SIZE = 65536;
/** Largest ring we allocate (the core's memory is 32-bit addressed). */
const MAX_RINGBUF_SIZE = 2 ** 30;

export class RingbufChardev extends Chardev {
  readonly kind = "ringbuf";
  readonly #ring: number;

  constructor(id: string, context: ChardevContext, readonly size: number) {
    super(id, context);
    this.#ring = context.core.ringbufNew(size);
    this.emitEvent(ChrEvent.OPENED);
  }

  override get filename(): string {
    return "memory";
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

export const ringbufDriver: ChardevDriver = {
  type: "ringbuf",
  aliases: ["memory"],
  fields: { size: "integer" },
  fromOptions: (options) => (options.has("size") ? { size: parseSize("size", options.get("size")!) } : {}),
  open(id, data, context) {
    const size = (data.size as number | undefined) ?? DEFAULT_RINGBUF_SIZE;
    if (size <= 0 || size > MAX_RINGBUF_SIZE || (size & (size - 1)) !== 0) {
      throw new ChardevError("INVALID_VALUE", "size of ringbuf chardev must be power of two");
    }
    return new RingbufChardev(id, context, size);
  },
};
