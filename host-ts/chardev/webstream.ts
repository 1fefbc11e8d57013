// `webstream`: a backend that is a pair of Web Streams, for runtimes whose only I/O is Web
// Streams (Workers, browsers) and for anyone who wants one. Output the chardev takes is
// queued for its `readable`; bytes written into its `writable` are its input.
//
// Output behaves like a FIFO of `high-water-mark` bytes: a write takes what fits, answers
// EAGAIN when the queue is full, and the watch fires when the consumer pulls (reads) from a
// full queue, just as a pipe's watch fires when its reader drains it. Input waits on the
// holder: a write into `writable` settles once the holder has taken those bytes, so the writer
// feels the holder's backpressure. OPENED comes at once; CLOSED when the consumer cancels
// `readable`. Removing the chardev ends `readable` (after what is queued) and errors `writable`.

import { ChardevError } from "../errors.ts";
import { ERRNO } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { OptionSchema } from "../option_schema.ts";
import { checkSize, MAX_CLIENT_BUFFER_BYTES } from "../limits.ts";
import { Chardev, type ChardevContext, defineDriver } from "./_chardev.ts";

/** `webstream`'s options (ours). */
export const webStreamOptions: OptionSchema = [
  { key: "high-water-mark", type: "size", default: "64K", min: 1, max: MAX_CLIENT_BUFFER_BYTES, help: "output held for a slow reader before writes answer EAGAIN" },
];

/** Output bytes queued for `readable` before writes answer EAGAIN: a Linux pipe's capacity. */
export const DEFAULT_WEBSTREAM_HIGH_WATER_MARK = 64 * 1024;

/**
 * A chardev whose output is read from `readable` and whose input is written into `writable`.
 *
 * @example A hub fanning out to two web streams
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * const a = (await reg.add("webstream,id=a")) as WebStreamChardev;
 * const b = (await reg.add("webstream,id=b,high-water-mark=4096")) as WebStreamChardev;
 * await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=b");
 * const fe = reg.attach("hub0", { canRead: () => 4096, read() {}, event() {} });
 * fe.write(new TextEncoder().encode("hi")); // 2
 * await a.readable.getReader().read(); // { value: Uint8Array [104, 105], done: false }
 * ```
 */
export class WebStreamChardev extends Chardev {
  readonly kind = "webstream";
  /** The chardev's output, in the order it was written. */
  readonly readable: ReadableStream<Uint8Array>;
  /** The chardev's input: each write settles once the holder has taken the chunk. */
  readonly writable: WritableStream<Uint8Array>;
  #output!: ReadableStreamDefaultController<Uint8Array>;
  #input!: WritableStreamDefaultController;
  /** `readable` was cancelled or ended: output goes nowhere. */
  #outputGone = false;
  /** Settles the write into `writable` whose chunk the holder has not fully taken yet. */
  #inputTaken: { resolve(): void; reject(reason: unknown): void } | null = null;

  constructor(
    id: string,
    context: ChardevContext,
    readonly highWaterMark: number,
  ) {
    super(id, context);
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#output = controller;
        },
        // Called once the consumer has read from a full queue (or waits on an empty one).
        pull: () => this.fireWatches(),
        cancel: () => {
          this.#outputGone = true;
          this.fireWatches();
          this.emitEvent(ChrEvent.CLOSED);
        },
      },
      { highWaterMark, size: (chunk) => chunk.byteLength },
    );
    this.writable = new WritableStream<Uint8Array>({
      start: (controller) => {
        this.#input = controller;
      },
      write: (chunk) => this.#take(chunk),
    });
    this.emitEvent(ChrEvent.OPENED);
  }

  /** Room left in the output queue. */
  get #room(): number {
    return this.#outputGone ? 0 : Math.max(0, this.#output.desiredSize ?? 0);
  }

  protected writeOut(data: Uint8Array): number {
    if (this.#outputGone) return -ERRNO.EPIPE;
    const room = this.#room;
    if (room === 0) return -ERRNO.EAGAIN;
    const taken = Math.min(room, data.length);
    // `data` may be a view of the core's memory: the queue keeps a copy.
    this.#output.enqueue(data.slice(0, taken));
    return taken;
  }

  override addWatch(callback: () => void): () => void {
    const cancel = this.addToWatchList(callback);
    // The consumer may have pulled between the EAGAIN and this call: then no pull is coming.
    if (this.#room > 0) queueMicrotask(() => cancel() && callback());
    return cancel;
  }

  #take(chunk: Uint8Array): Promise<void> | void {
    const bytes = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk as ArrayBufferLike);
    if (bytes.length === 0 || this.deliverInput(bytes)) return;
    return new Promise<void>((resolve, reject) => {
      this.#inputTaken = { resolve, reject };
    });
  }

  /** The holder took all kept input: the pending write into `writable` is done. */
  protected override resumeInput(): void {
    const taken = this.#inputTaken;
    this.#inputTaken = null;
    taken?.resolve();
  }

  override async destroy(): Promise<void> {
    const removed = new ChardevError("NOT_FOUND", `Chardev '${this.id}' was removed`);
    this.cancelWatches();
    if (!this.#outputGone) {
      this.#outputGone = true;
      this.#output.close();
    }
    this.#inputTaken?.reject(removed);
    this.#inputTaken = null;
    this.#input.error(removed);
    await super.destroy();
  }
}

export const webStreamDriver = defineDriver({
  type: "webstream",
  options: webStreamOptions,
  open(id, data, context) {
    const highWaterMark = (data["high-water-mark"] as number | undefined) ?? DEFAULT_WEBSTREAM_HIGH_WATER_MARK;
    if (highWaterMark < 1) throw new ChardevError("INVALID_VALUE", "webstream: 'high-water-mark' must be at least 1");
    checkSize("webstream", "high-water-mark", highWaterMark, MAX_CLIENT_BUFFER_BYTES, 1);
    return new WebStreamChardev(id, context, highWaterMark);
  },
});
