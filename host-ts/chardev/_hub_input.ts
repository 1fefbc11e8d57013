// The hub's input side outside qemuCompat: one queue in front of the frontend, so a chunk from
// one backend is never interleaved with another's and a BREAK reaches the device behind the keys
// typed before it; and, under `input=exclusive`, who holds the floor (the typist).

import type { ChrEvent } from "../events.ts";
import type { ChardevUser } from "./_chardev.ts";
import type { HubEntry } from "./_hub_output.ts";

/** Input kept for a frontend that cannot take it yet, beyond which backends are paused. */
export const INPUT_QUEUE_LIMIT = 64 * 1024;

/** The hub's frontend side, as the queue feeds it. */
export interface HubInputFrontend {
  readonly user: ChardevUser | null;
  emitEvent(event: ChrEvent): void;
}

/** Input waiting for the frontend, in order, and the exclusive typist. */
export class HubInputQueue {
  /** Bytes, and the events (a BREAK) sent between them. */
  readonly #queue: (Uint8Array | ChrEvent)[] = [];
  #queued = 0;
  #typist: HubEntry | null = null;
  #typistTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly frontend: HubInputFrontend,
    private readonly exclusive: boolean,
    private readonly idleMs: number,
  ) {}

  /** Bytes the queue takes before backends are paused. */
  get room(): number {
    return Math.max(0, INPUT_QUEUE_LIMIT - this.#queued);
  }

  /** With `input=exclusive`, the first to type holds the floor until idle, closed or detached. */
  mayType(entry: HubEntry): boolean {
    if (!this.exclusive) return true;
    if (this.#typist && this.#typist !== entry) return false;
    this.#typist = entry;
    if (this.#typistTimer) clearTimeout(this.#typistTimer);
    this.#typistTimer = setTimeout(() => {
      this.#typist = null;
      this.#typistTimer = null;
    }, this.idleMs);
    return true;
  }

  /** `entry` takes the floor from whoever holds it, as if it had typed (under `input=exclusive`). */
  giveFloor(entry: HubEntry): void {
    if (!this.exclusive) return;
    this.#typist = null;
    this.mayType(entry);
  }

  /** `entry` closed, left or became read-only: if it held the floor, nobody does now. */
  releaseFloor(entry: HubEntry): void {
    if (this.#typist === entry) this.#typist = null;
  }

  /** Queues a copy of `data` (the caller's buffer is only lent) and hands over what fits. */
  push(data: Uint8Array): void {
    this.#queue.push(data.slice());
    this.#queued += data.length;
    this.pump();
  }

  /** An event waits behind the keys queued before it; with none waiting it goes at once. */
  pushEvent(event: ChrEvent): void {
    if (this.#queue.length > 0) this.#queue.push(event);
    else this.frontend.emitEvent(event);
  }

  /** Hands the frontend what it has room for, in order. */
  pump(): void {
    const frontend = this.frontend;
    while (this.#queue.length > 0 && frontend.user) {
      const head = this.#queue[0];
      if (!(head instanceof Uint8Array)) {
        this.#queue.shift();
        frontend.emitEvent(head);
        continue;
      }
      const room = frontend.user.canRead();
      if (room <= 0) return;
      const piece = head.length <= room ? head : head.subarray(0, room);
      if (piece === head) this.#queue.shift();
      else this.#queue[0] = head.subarray(room);
      this.#queued -= piece.length;
      frontend.user.read(piece);
    }
  }

  stop(): void {
    if (this.#typistTimer) clearTimeout(this.#typistTimer);
  }
}
