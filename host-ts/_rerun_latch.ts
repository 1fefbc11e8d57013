// A job that must never run inside itself, yet must not miss a request: a flush reached again
// from a write it makes, a reload asked for again by a signal while the first one awaits. A
// request while a run is under way makes exactly one more pass after it, never a nested one.

/**
 * Coalesces requests that arrive during a run into one more pass. The caller loops:
 *
 * @example A flush that a write's side effects may ask for again
 * ```ts
 * const latch = new RerunLatch();
 * function flush(): void {
 *   if (!latch.begin()) return; // under way: it will go round once more
 *   try {
 *     do {
 *       // ...write what is queued; anything that calls flush() here only asks for another pass
 *     } while (latch.another());
 *   } finally {
 *     latch.end();
 *   }
 * }
 * flush();
 * ```
 */
export class RerunLatch {
  #running = false;
  #again = false;

  /** Starts a run and returns true; during a run, asks for one more pass and returns false. */
  begin(): boolean {
    if (this.#running) {
      this.#again = true;
      return false;
    }
    this.#running = true;
    this.#again = false;
    return true;
  }

  /** Asks the run under way (or the next one to begin) for one more pass. */
  requestAgain(): void {
    this.#again = true;
  }

  /** At the end of a pass: whether one more was asked for since it began; it begins now if so. */
  another(): boolean {
    const again = this.#again;
    this.#again = false;
    return again;
  }

  /** The run is over (call it in `finally`). */
  end(): void {
    this.#running = false;
  }
}
