// A pausable InputSource over a pull-style reader (Deno's FsFile, a Web ReadableStream reader):
// the loop both Deno and Bun use where Node's stream of an fd does not work for FIFOs.

import type { InputHandlers, InputSource } from "./types.ts";

/**
 * Reads with `pull` until it returns null (end of input), pausing while the holder is full.
 * `release` runs once on close; an error after close is our own cancellation, not reported.
 */
export function pullSource(pull: () => Promise<Uint8Array | null>, handlers: InputHandlers, release: () => void): InputSource {
  let paused = false;
  let closed = false;
  let wake: (() => void) | null = null;
  void (async () => {
    while (!closed) {
      if (paused) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      let chunk: Uint8Array | null;
      try {
        chunk = await pull();
      } catch (error) {
        if (!closed) handlers.error?.(error);
        return;
      }
      if (closed) return;
      if (chunk === null) return handlers.end();
      if (handlers.data(chunk) === false) paused = true;
    }
  })();
  return {
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
      wake?.();
      wake = null;
    },
    close() {
      if (closed) return;
      closed = true;
      wake?.();
      release();
    },
  };
}
