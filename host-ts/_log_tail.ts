// One live tail of a log fan-out (`GET /tail`): a `drop` backend of the fan-out's ring hub, so a
// tail that cannot keep up skips ahead instead of holding the sinks back, read as whole lines
// with each hole in its place. The hub reports a gap the moment its reader skips, before it
// writes the bytes after the hole; the bytes before the hole are then all in this backend's
// queue, so the hole's place is the backend's output count at that moment.

import type { HubChardev } from "./chardev/hub.ts";
import { WebStreamChardev } from "./chardev/webstream.ts";

/**
 * What a tail reads next: one or more whole lines (each ending in "\n"), or a hole: the bytes
 * never shown, a partial line before the skip included.
 */
export type LogTailItem = { lines: string } | { missed: number };

/** The text a hole becomes, as in `chardev-hub tail`: `[-- N bytes missed --]`. */
export function missedLine(bytes: number): string {
  return `[-- ${bytes} bytes missed --]`;
}

/**
 * A live tail of a ring hub's output as whole lines and holes.
 *
 * @example Follow a ring hub
 * ```ts
 * import { ChardevRegistry, type HubChardev } from "chardev-hub";
 * import { LogTail } from "./_log_tail.ts";
 * const reg = await ChardevRegistry.create({ qemuCompat: false });
 * const hub = (await reg.add("hub,id=logs,ring=65536")) as HubChardev;
 * const tail = new LogTail(hub, "tail1", 65536);
 * const fe = reg.attach("logs", { canRead: () => 0, read() {}, event() {} });
 * fe.write(new TextEncoder().encode("one\ntwo\n"));
 * await tail.next(); // { lines: "one\ntwo\n" }
 * tail.close();
 * ```
 */
export class LogTail {
  readonly #hub: HubChardev;
  readonly #chardev: WebStreamChardev;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #decoder = new TextDecoder();
  readonly #stopListening: () => void;
  /** Holes not yet read, in order: where they are (bytes of this backend's output) and how big. */
  readonly #holes: { at: number; bytes: number }[] = [];
  /** Output bytes read so far. */
  #read = 0;
  /** A chunk read but not yet told (a hole comes before it). */
  #chunk: Uint8Array | null = null;
  /** The start of a line whose end has not come yet, and its size in bytes. */
  #partial = "";
  #partialBytes = 0;
  #closed = false;

  /** Attaches a `drop` backend named `id` that skips ahead once more than `lagLimit` bytes behind. */
  constructor(hub: HubChardev, readonly id: string, lagLimit: number) {
    this.#hub = hub;
    // Its queue is a little under the lag limit: a tail that stops reading is skipped ahead
    // by the hub, not merely refused.
    this.#chardev = hub.attachNew((context) => new WebStreamChardev(id, context, Math.max(1024, lagLimit >> 1)), { policy: "drop", lagLimit });
    this.#reader = this.#chardev.readable.getReader();
    this.#stopListening = hub.onEvent((event) => {
      if (event.type !== "gap" || event.backend !== id) return;
      const row = hub.stats().find((candidate) => candidate.id === id);
      this.#holes.push({ at: row ? row.bytesOut : this.#read, bytes: event.bytes });
    });
  }

  /** The next lines or hole; null once the tail is closed. */
  async next(): Promise<LogTailItem | null> {
    for (;;) {
      if (this.#closed) return null;
      // A read may wait while the hub skips ahead and then writes: the chunk it brings can
      // come after a hole, so a chunk is held until every hole before it has been told.
      if (!this.#chunk) {
        const { value, done } = await this.#reader.read().catch(() => ({ value: undefined, done: true }));
        if (done || !value) return null;
        this.#chunk = value;
      }
      const hole = this.#holes[0];
      if (hole && hole.at <= this.#read) {
        // A hole ends on a line start, but may begin inside a line (the queue took part of
        // one before the hub skipped ahead): that start is never shown, so it counts as missed.
        this.#holes.shift();
        const missed = hole.bytes + this.#partialBytes;
        this.#partial = "";
        this.#partialBytes = 0;
        this.#decoder = new TextDecoder();
        return { missed };
      }
      const chunk = this.#chunk;
      this.#chunk = null;
      this.#read += chunk.length;
      const lastNewline = chunk.lastIndexOf(0x0a);
      this.#partialBytes = lastNewline === -1 ? this.#partialBytes + chunk.length : chunk.length - lastNewline - 1;
      const text = this.#partial + this.#decoder.decode(chunk, { stream: true });
      const end = text.lastIndexOf("\n") + 1;
      this.#partial = text.slice(end);
      if (end > 0) return { lines: text.slice(0, end) };
    }
  }

  /** Detaches the backend; a pending `next` returns null. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopListening();
    this.#reader.cancel().catch(() => {});
    try {
      this.#hub.detachBackend(this.id);
    } catch {
      // Already gone with the hub.
    }
  }
}
