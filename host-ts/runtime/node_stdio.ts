// The process's own terminal for the `stdio` chardev, through Node's process.stdin/stdout
// (which Deno and Bun provide too).

import type { InputHandlers, InputSource, StdioPrimitives } from "./types.ts";

/** Above this much queued output, stdout reports EAGAIN instead of queueing more. */
const STDOUT_HIGH_WATER_MARK = 64 * 1024;

export const nodeStdio: StdioPrimitives = {
  get isTerminal() {
    return process.stdin.isTTY === true;
  },
  setRaw(raw) {
    if (process.stdin.isTTY) process.stdin.setRawMode(raw);
  },
  readInput(handlers: InputHandlers): InputSource {
    const onData = (chunk: Buffer) => {
      if (handlers.data(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)) === false) process.stdin.pause();
    };
    const onEnd = () => handlers.end();
    process.stdin.on("data", onData);
    process.stdin.on("end", onEnd);
    process.stdin.resume();
    return {
      pause: () => process.stdin.pause(),
      resume: () => process.stdin.resume(),
      close() {
        process.stdin.off("data", onData);
        process.stdin.off("end", onEnd);
        // A paused stdin lets the process exit once nothing else is running.
        process.stdin.pause();
      },
    };
  },
  write(data) {
    if (process.stdout.writableLength >= STDOUT_HIGH_WATER_MARK) return -11; // EAGAIN
    // Copy: `data` may be a view of core memory, valid only during this call.
    process.stdout.write(data.slice());
    return data.length;
  },
  onDrain(callback) {
    process.stdout.once("drain", callback);
    return () => process.stdout.off("drain", callback);
  },
  interrupt() {
    process.kill(process.pid, "SIGINT");
  },
};
