// `chardev-hub attach NAME`: this terminal becomes a client of a console (tmux's attach,
// conserver's `console NAME`). Keys go to the console, its output to the screen; after the
// escape prefix (Ctrl-] unless --escape) one key is a command for us. The terminal is put in
// raw mode for the session and restored on every way out: detach, the server going away, a
// signal, an error. Works with a stdin that is not a terminal too (then nothing is made raw),
// which is how scripts and tests drive it.

import { quoteInput } from "../limits.ts";
import type { HostRuntime } from "../runtime/types.ts";
import { type ClientOptions, ControlConnection, controlTarget, ESCAPE_COMMANDS_HELP, formatWho, requestOnce, stdoutWriter } from "./control_client.ts";
import type { ControlTarget } from "./control_address.ts";

/** Console output kept for `r` (replay the last lines): the session's own recent output. */
const REPLAY_KEEP_BYTES = 64 * 1024;
/** How many lines `r` shows again. */
const REPLAY_LINES = 20;
/** Exit statuses: detached (0), the server or console went away (1), a signal (128 + N). */
const EXIT_DETACHED = 0;
const EXIT_SERVER_GONE = 1;
const SIGNAL_STATUS = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;

/** How the prefix shows in help and notices: `Ctrl-]`, or the character. */
function describeEscape(escape: number): string {
  return escape < 0x20 ? `Ctrl-${String.fromCharCode(escape + 0x40)}` : String.fromCharCode(escape);
}

/** The last `lines` lines of `bytes` (from after the newline that starts them). */
function lastLines(bytes: Uint8Array, lines: number): Uint8Array {
  let at = bytes.length;
  // A trailing newline ends the last line; it does not start an empty one.
  if (at > 0 && bytes[at - 1] === 0x0a) at--;
  for (let found = 0; at > 0; at--) {
    if (bytes[at - 1] === 0x0a && ++found === lines) break;
  }
  return bytes.subarray(at);
}

/** What an attached session's byte stream does, as the transport reports it. */
export interface AttachStreamHandlers {
  /** Console output; false pauses the transport until `resume`. */
  data(chunk: Uint8Array): boolean | void;
  /** The transport can take more typing again. */
  drain(): void;
  /** The console or the transport went away. */
  closed(): void;
}

/** How a server-side escape command reports back: a notice line, or text as it is. */
export interface AttachCommandOutput {
  say(text: string): void;
  print(text: string): void;
}

/**
 * What a terminal session talks through: the control socket (its console's hub is next to it)
 * or NATS (a console elsewhere, followed by a `nats` viewer). The terminal part (raw mode,
 * escape keys, the screen's backpressure) is the same for both.
 */
export interface AttachTransport {
  /** The console's name, for notices. */
  readonly name: string;
  /** Starts handing console output (and the end) to `handlers`. */
  start(handlers: AttachStreamHandlers): void;
  /** Typing for the console (a read-only session's transport may drop it; the server decides). */
  write(data: Uint8Array): void;
  /** Typing queued but not yet sent: the session stops reading keys while it is long. */
  readonly bufferedBytes: number;
  pause(): void;
  resume(): void;
  /** Ends the stream (detach); the session waits for it before it returns. */
  close(): void | Promise<void>;
  /** The terminal's new size (for a read-write client's device). */
  resize(cols: number, rows: number): void;
  /**
   * An escape command only the console's hub can do (`w`, `b`, `f`, `s`): runs it and reports
   * through `output`; false when this transport has no hub to ask (the session says so).
   */
  hubCommand(key: "w" | "b" | "f" | "s", output: AttachCommandOutput): boolean;
  /** What the session says when the stream ends on its own. */
  readonly goneText: string;
  /** A line `?` adds under the commands (what this transport cannot do). */
  readonly helpNote?: string;
}

/** The local transport: a control socket connection that `attach` made the console's stream. */
class ControlAttachTransport implements AttachTransport {
  readonly goneText: string;
  constructor(
    readonly name: string,
    readonly runtime: HostRuntime,
    readonly control: ControlTarget,
    readonly connection: ControlConnection,
    readonly clientId: string,
  ) {
    this.goneText = `${name}: the console went away (chardev-hub ended or let this client go)`;
  }

  start(handlers: AttachStreamHandlers): void {
    this.connection.takeOver({ data: (chunk) => handlers.data(chunk), drain: () => handlers.drain(), closed: () => handlers.closed() });
  }

  write(data: Uint8Array): void {
    this.connection.write(data);
  }

  get bufferedBytes(): number {
    return this.connection.bufferedBytes;
  }

  pause(): void {
    this.connection.pause();
  }

  resume(): void {
    this.connection.resume();
  }

  close(): void {
    this.connection.close();
  }

  resize(cols: number, rows: number): void {
    void requestOnce(this.runtime, this.control, { cmd: "resize", client: this.clientId, cols, rows }).catch(() => {});
  }

  hubCommand(key: "w" | "b" | "f" | "s", output: AttachCommandOutput): boolean {
    const request = (body: Record<string, unknown>, then?: (answer: Record<string, unknown>) => void) =>
      void requestOnce(this.runtime, this.control, { ...body, client: this.clientId }).then(
        (result) => then?.(result),
        (error: Error) => output.say(quoteInput(error.message)),
      );
    switch (key) {
      case "w":
        void requestOnce(this.runtime, this.control, { cmd: "who", console: this.name }).then(
          (who) => output.print(formatWho(who, "\r\n")),
          (error: Error) => output.say(quoteInput(error.message)),
        );
        break;
      case "b":
        request({ cmd: "break" }, () => output.say(`${this.name}: BREAK sent`));
        break;
      case "f": {
        // Read-write again: this terminal's size counts for the device from now on.
        const now = this.runtime.process!.terminalSize();
        request({ cmd: "mode", mode: "rw", force: true }, () => {
          if (now) request({ cmd: "resize", cols: now.cols, rows: now.rows });
        });
        break;
      }
      case "s":
        request({ cmd: "mode", mode: "ro" });
        break;
    }
    return true;
  }
}

/**
 * Runs one attached session to its end; returns the exit status. Throws ClientError when the
 * attach is refused (no such console, the control socket unreachable), before the terminal
 * was touched.
 */
export async function runAttachTerminal(program: string, runtime: HostRuntime, options: ClientOptions): Promise<number> {
  const name = options.console!;
  const size = runtime.process!.terminalSize();
  const control = await controlTarget(runtime, options);
  const connection = await ControlConnection.open(runtime, control);
  let answer: Record<string, unknown>;
  try {
    answer = await connection.request({
      cmd: "attach",
      console: name,
      mode: options.readOnly ? "ro" : "rw",
      ...(options.replay !== null ? { replay: options.replay } : {}),
      ...(size ? { cols: size.cols, rows: size.rows } : {}),
    });
  } catch (error) {
    connection.close();
    throw error;
  }
  return await runAttachSession(program, runtime, options, new ControlAttachTransport(name, runtime, control, connection, String(answer.attached)));
}

/**
 * The terminal part of a session over any transport: raw mode, keys to the console (the escape
 * prefix and its commands taken out), output to the screen, the terminal restored on every way
 * out. Returns the exit status.
 */
export async function runAttachSession(program: string, runtime: HostRuntime, options: ClientOptions, transport: AttachTransport): Promise<number> {
  const host = runtime.process!;
  const stdio = runtime.stdio!;
  const name = transport.name;
  const terminal = stdio.isTerminal;
  const connection = transport;
  const eol = terminal ? "\r\n" : "\n";
  const say = (text: string) => host.print("stderr", `${eol}[-- ${text} --]${eol}`);

  return await new Promise<number>((resolve) => {
    const stops: (() => void)[] = [];
    let ended = false;
    let input: { close(): void; pause(): void; resume(): void } | null = null;
    /** The one way out: the terminal restored first, whatever happens after. */
    const end = (status: number, why: string | null) => {
      if (ended) return;
      ended = true;
      if (terminal) stdio.setRaw(false);
      input?.close();
      for (const stop of stops) stop();
      const closing = connection.close();
      if (why) host.print("stderr", `${eol}[-- ${why} --]\n`);
      void Promise.resolve(closing)
        .catch(() => {})
        .then(() => resolve(status));
    };
    /** A handler that throws (a bug) still ends the session the one way, terminal restored. */
    const guarded = <A extends unknown[], R>(handler: (...args: A) => R, fallback: R) => (...args: A): R => {
      try {
        return handler(...args);
      } catch (error) {
        end(EXIT_SERVER_GONE, `${program}: internal error: ${quoteInput(String((error as Error)?.message ?? error))}`);
        return fallback;
      }
    };

    try {
      if (terminal) stdio.setRaw(true);
      for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        stops.push(host.onSignal(signal, () => end(SIGNAL_STATUS[signal], `${name}: ${signal}, detached`)));
      }
      stops.push(
        host.onTerminalResize(({ cols, rows }) => connection.resize(cols, rows)),
      );

      // ---- console output to the screen, with a pause while stdout is full ----
      const recent = new Uint8Array(REPLAY_KEEP_BYTES);
      let recentLength = 0;
      const keep = (chunk: Uint8Array) => {
        if (chunk.length >= REPLAY_KEEP_BYTES) {
          recent.set(chunk.subarray(chunk.length - REPLAY_KEEP_BYTES));
          recentLength = REPLAY_KEEP_BYTES;
        } else {
          const overflow = Math.max(0, recentLength + chunk.length - REPLAY_KEEP_BYTES);
          if (overflow > 0) recent.copyWithin(0, overflow, recentLength);
          recentLength -= overflow;
          recent.set(chunk, recentLength);
          recentLength += chunk.length;
        }
      };
      const show = stdoutWriter(stdio, stops, () => connection.resume(), () => !ended);
      connection.start({
        data: guarded((chunk: Uint8Array) => {
          const copy = chunk.slice();
          keep(copy);
          return show(copy);
        }, false),
        drain: () => input?.resume(),
        closed: () => end(EXIT_SERVER_GONE, transport.goneText),
      });

      // ---- our commands, after the escape prefix ----
      const hubOutput = { say, print: (text: string) => host.print("stderr", eol + text.replaceAll("\r\n", eol)) };
      const command = (key: number) => {
        switch (String.fromCharCode(key)) {
          case ".":
            return end(EXIT_DETACHED, `${name}: detached`);
          case "?":
            return host.print("stderr", `${eol}[-- ${name}: commands after ${describeEscape(options.escape)} --]${eol}${(ESCAPE_COMMANDS_HELP + (transport.helpNote ?? "")).replaceAll("\n", eol)}`);
          case "r":
            say(`${name}: the last ${REPLAY_LINES} lines`);
            show(lastLines(recent.slice(0, recentLength), REPLAY_LINES));
            return;
          case "w":
          case "b":
          case "f":
          case "s": {
            const letter = String.fromCharCode(key) as "w" | "b" | "f" | "s";
            if (!transport.hubCommand(letter, hubOutput)) say(`${name}: '${letter}' is not available here (it needs the console's own hub: attach on its host)`);
            return;
          }
          default:
            return say(`unknown command '${key < 0x20 || key > 0x7e ? `\\x${key.toString(16).padStart(2, "0")}` : String.fromCharCode(key)}': ${describeEscape(options.escape)} ? lists them`);
        }
      };

      // ---- keys to the console ----
      let afterEscape = false;
      input = stdio.readInput({
        data: guarded((chunk: Uint8Array) => {
          let start = 0;
          const pieces: Uint8Array[] = [];
          for (let i = 0; i < chunk.length; i++) {
            const key = chunk[i];
            if (afterEscape) {
              afterEscape = false;
              start = i + 1;
              if (key === options.escape) pieces.push(chunk.slice(i, i + 1)); // the prefix twice: the prefix itself
              else {
                if (pieces.length > 0) connection.write(concat(pieces.splice(0)));
                command(key);
                if (ended) return false;
              }
            } else if (key === options.escape) {
              if (i > start) pieces.push(chunk.slice(start, i));
              afterEscape = true;
            }
          }
          if (!afterEscape && start < chunk.length) pieces.push(chunk.slice(start));
          if (pieces.length > 0) connection.write(concat(pieces));
          // The connection's own queue is the backpressure: stop reading keys while it is long.
          if (connection.bufferedBytes > 64 * 1024) input?.pause();
          return true;
        }, false),
        // stdin ended (a pipe, or a closed terminal): nothing more to type; keep watching
        // unless there is no terminal to watch on either.
        end: () => {
          if (!terminal) return;
          end(EXIT_DETACHED, `${name}: detached (end of input)`);
        },
      });
    } catch (error) {
      end(EXIT_SERVER_GONE, `${program}: ${quoteInput((error as Error).message)}`);
    }
  });
}

function concat(pieces: readonly Uint8Array[]): Uint8Array {
  if (pieces.length === 1) return pieces[0];
  const total = pieces.reduce((sum, piece) => sum + piece.length, 0);
  const joined = new Uint8Array(total);
  let at = 0;
  for (const piece of pieces) {
    joined.set(piece, at);
    at += piece.length;
  }
  return joined;
}
