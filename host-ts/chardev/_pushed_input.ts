// Input from a source that cannot be paused (datagrams, NATS messages): unlike a stream, it
// keeps coming while the holder has no room. What the holder does not take is held (the base
// queues it behind, chardev.deliverInput) up to a bound, past which it is dropped and counted
// by the caller; once all that was held has been delivered (resumeInput), input flows again.

/** The hold of one chardev's pushed input. */
export class PushedInputHold {
  #holding = false;
  #heldBytes = 0;

  /** @param limit bytes held at most while the holder takes nothing */
  constructor(readonly limit: number) {}

  /**
   * Passes `data` to `deliver` (the chardev's deliverInput, false when the holder did not take
   * it all) or holds it behind what waits. Returns false when `data` was dropped: the hold is full.
   */
  arrive(data: Uint8Array, deliver: (data: Uint8Array) => boolean): boolean {
    if (!this.#holding) {
      if (!deliver(data)) {
        this.#holding = true;
        this.#heldBytes = data.length;
      }
      return true;
    }
    if (this.#heldBytes + data.length > this.limit) return false;
    this.#heldBytes += data.length;
    // Queued behind what is held; delivering all of it ends the hold (resume).
    deliver(data);
    return true;
  }

  /** Everything held has reached the holder (the chardev's resumeInput). */
  resume(): void {
    this.#holding = false;
    this.#heldBytes = 0;
  }
}
