// The frontend side of a chardev (QEMU's qemu_chr_fe_*): what a guest device, a test or the
// CLI holds to write to a chardev and receive its input and events.

import type { Chardev, ChardevUser } from "./chardev/_chardev.ts";
import { errnoName } from "./errno.ts";
import type { ChrEvent } from "./events.ts";

/** Callbacks of a frontend (QEMU's fd_can_read, fd_read, fd_event). */
export interface FrontendHandlers {
  /** Bytes it can take now; 0 pauses input. */
  canRead(): number;
  /** Input; the frontend may keep `data` (unless it set `copiesInput`). */
  read(data: Uint8Array): void;
  event(event: ChrEvent): void;
  /**
   * Set when `read` copies whatever it keeps of `data` past the call: the chardev may then pass
   * a view of a buffer it reuses (no copy per read). Unset, every chunk is the frontend's to keep.
   */
  copiesInput?: boolean;
}

let nextWatchId = 1;

/**
 * A frontend attached to a chardev.
 *
 * @example Write until EAGAIN, then wait for the watch
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * await reg.add("hub,id=hub0");
 * const fe = reg.attach("hub0", { canRead: () => 4096, read() {}, event() {} });
 * const bytes = new TextEncoder().encode("hello\n");
 * const retry = () => fe.write(bytes);
 * if (fe.write(bytes) === -1 && fe.lastError === "EAGAIN") fe.addWatch(() => retry());
 * ```
 */
export class Frontend {
  /** Errno name of the last failed write (`"EAGAIN"`), null after a successful one. */
  lastError: string | null = null;
  #attached = true;
  readonly #watches = new Map<number, () => void>();
  readonly #user: ChardevUser;

  constructor(
    readonly chardev: Chardev,
    handlers: FrontendHandlers,
  ) {
    this.#user = {
      canRead: () => handlers.canRead(),
      read: (data) => handlers.read(data),
      event: (event) => handlers.event(event),
      copiesInput: handlers.copiesInput === true,
    };
    chardev.attachUser(this.#user);
  }

  /** Bytes accepted, or -1 with `lastError` set. Never throws. */
  write(data: Uint8Array): number {
    if (!this.#attached) {
      this.lastError = "EBADF";
      return -1;
    }
    const result = this.chardev.write(data);
    if (result < 0) {
      this.lastError = errnoName(result);
      return -1;
    }
    this.lastError = null;
    return result;
  }

  /**
   * Writes several buffers in order, as one write of their concatenation would (QEMU's
   * qemu_chr_fe_write takes one buffer; this is our batched form of it). Returns the bytes
   * accepted across `chunks` (always a prefix of their concatenation: every chunk before the
   * first short one whole, then part or none of it), or -1 with `lastError` set when none was
   * (`"EAGAIN"`: wait for `addWatch`, as after `write`). An empty list, or only empty chunks,
   * returns 0. Never throws.
   *
   * A hub with a ring copies all the chunks into the ring in one pass; every other chardev
   * takes them as successive writes that stop at the first short one.
   *
   * @example Hand a batch of lines over at once, the rest after the watch
   * ```ts
   * // `fe` from reg.attach("hub0", …) on a hub with `ring=64K` (the edge bundle keeps a
   * // method's comment: no import here).
   * declare const fe: Frontend;
   * const lines = ["one\n", "two\n", "three\n"].map((line) => new TextEncoder().encode(line));
   * const accepted = fe.writev(lines); // 14: all of them
   * if (accepted === -1 && fe.lastError === "EAGAIN") fe.addWatch(() => fe.writev(lines));
   * ```
   */
  writev(chunks: readonly Uint8Array[]): number {
    if (!this.#attached) {
      this.lastError = "EBADF";
      return -1;
    }
    const result = this.chardev.writev(chunks);
    if (result < 0) {
      this.lastError = errnoName(result);
      return -1;
    }
    this.lastError = null;
    return result;
  }

  /**
   * Calls `callback` once when a blocked write may go through; 0 when nothing is blocked (QEMU
   * returns no source then), else an id for `removeWatch`.
   */
  addWatch(callback: () => void): number {
    const id = nextWatchId++;
    const cancel = this.chardev.addWatch(() => {
      this.#watches.delete(id);
      callback();
    });
    if (!cancel) return 0;
    this.#watches.set(id, cancel);
    return id;
  }

  removeWatch(id: number): void {
    this.#watches.get(id)?.();
    this.#watches.delete(id);
  }

  /** Tells the chardev this frontend can take input again (QEMU's qemu_chr_fe_accept_input). */
  acceptInput(): void {
    this.chardev.flushInput();
  }

  /** Lets go of the chardev (QEMU's qemu_chr_fe_deinit); watches are cancelled. */
  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    for (const cancel of this.#watches.values()) cancel();
    this.#watches.clear();
    this.chardev.detachUser(this.#user);
  }
}
