// The runtime-neutral contract: the few host primitives that differ between Node, Deno and
// Bun. Shared code only sees these types; each runtime/ file fills them.

/** An append-only sink for `logfile=`. Writes are synchronous, as QEMU's. */
export interface LogSink {
  write(data: Uint8Array): void;
  close(): void;
}

/** A source of input bytes that can pause while the holder is full. */
export interface InputSource {
  pause(): void;
  resume(): void;
  close(): void;
}

export interface InputHandlers {
  data(chunk: Uint8Array): boolean | void;
  end(): void;
  error?(error: unknown): void;
}

export type FileOpenMode = "write" | "append" | "read" | "readwrite-nonblocking";

/** The process's own stdin/stdout, for the `stdio` chardev. */
export interface StdioPrimitives {
  readonly isTerminal: boolean;
  /** Raw mode on a terminal stdin (no echo, no line editing, no signal keys). */
  setRaw(raw: boolean): void;
  readInput(handlers: InputHandlers): InputSource;
  /** Bytes taken, or -EAGAIN while too much output is queued. */
  write(data: Uint8Array): number;
  /** Calls `callback` once queued output has drained; returns a cancel function. */
  onDrain(callback: () => void): () => void;
  /** Delivers the interrupt signal to this process, as the terminal's Ctrl-C would. */
  interrupt(): void;
}

export interface HostRuntime {
  /** "node", "deno", "bun" or "web". */
  readonly name: string;
  /** Opens a file or FIFO; throws the runtime's error (with an errno `code`) on failure. */
  openFile(path: string, mode: FileOpenMode): number;
  /** One write(2): bytes written, or -errno (-EAGAIN on a full non-blocking FIFO). */
  writeFd(fd: number, data: Uint8Array): number;
  closeFd(fd: number): void;
  /** Reads `fd` (a FIFO or regular file) in the background until EOF or close; owns `fd` from now on. */
  readFd(fd: number, handlers: InputHandlers): InputSource;
  /** Calls `callback` once when `fd` may be writable again; returns a cancel function. */
  watchWritable(fd: number, callback: () => void): () => void;
  /** A synchronous appending (or truncating) log file. */
  openLog(path: string, append: boolean): LogSink;
  /** The process's terminal; absent where there is none (edge runtimes). */
  stdio?: StdioPrimitives;
}
