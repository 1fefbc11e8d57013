// `spawn`: a program on a pseudo-terminal of its own (`spawn,id=sh,cmd=bash,args.0=-i`). What the
// program writes to its terminal is this chardev's input; what the frontend writes is typed
// into the program. OPENED as soon as it runs, CLOSED once it has exited and everything it
// wrote has been delivered. QEMU has no such backend: it is how the command-line tool puts a
// shell (or any console program) behind a hub.

import { ChardevError } from "../errors.ts";
import { strerror } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { OptionSchema } from "../option_schema.ts";
import type { ProcessExit, ProcessPrimitives, PtyPrimitives, SpawnedProcess } from "../runtime/types.ts";
import { type ChardevContext, defineDriver } from "./_chardev.ts";
import { type TerminalFd, TerminalFdChardev } from "./_terminal_fd.ts";
import { quoteInput } from "../limits.ts";

/** `spawn`'s options (ours). */
export const spawnOptions: OptionSchema = [
  { key: "cmd", type: "string", required: true, missing: "chardev: spawn: no program given (cmd=PROGRAM)", help: "the program, a path or a name in `PATH`; one that cannot be found fails the add (`spawn: cannot run 'X': command not found`)" },
  { key: "args", type: "list", help: "its arguments, N = 0, 1, ... (stops at the first gap)" },
  { key: "cols", type: "integer", default: "80", min: 1, max: 65535, help: "window size: columns (follows a web tab's size and, with a stdio chardev, the terminal's)" },
  { key: "rows", type: "integer", default: "24", min: 1, max: 65535, help: "window size: rows" },
];

/** Columns of a terminal when nobody says otherwise, as a VT100's. */
export const DEFAULT_COLS = 80;
/** Rows of a terminal when nobody says otherwise, as a VT100's. */
export const DEFAULT_ROWS = 24;
/** What TERM a program gets when we have none to pass on: the clients are xterm.js and terminal emulators. */
const DEFAULT_TERM = "xterm-256color";
/**
 * After the program exits, its output is all read once the master reports end of file (every
 * holder of the slave closed it) or, when a background process keeps the slave open, once
 * this many polls in a row found nothing: the kernel moves a pty's bytes on a work queue, so
 * one empty poll right after the exit is not proof.
 */
const IDLE_POLLS_AFTER_EXIT = 3;
/** How long `destroy` waits for a program that got SIGHUP before it sends SIGKILL. */
const HANGUP_GRACE_MS = 1000;

/**
 * Started by `sh` in a new session: opening the slave without O_NOCTTY makes it the session's
 * controlling terminal (what a terminal emulator gives a shell), then the program replaces
 * the shell. Arguments: slave, cmd, args...
 */
const START_ON_TERMINAL = 'exec 0<>"$1" 1>&0 2>&0 || exit 126; shift; exec "$@"';

/** `exited with status 0`, `killed by signal SIGKILL`. */
export function describeExit(exit: ProcessExit): string {
  return exit.signal ? `killed by signal ${exit.signal}` : `exited with status ${exit.code ?? 0}`;
}

/** The settings of a spawn chardev. */
export interface SpawnChardevOptions {
  /** The program: a path, or a name looked up in PATH. */
  readonly command: string;
  /** @default [] */
  readonly args: readonly string[];
  /** @default DEFAULT_COLS */
  readonly cols: number;
  /** @default DEFAULT_ROWS */
  readonly rows: number;
}

/**
 * A program on a pty of its own.
 *
 * @example A shell shared by a socket client and a log
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * const sh = (await reg.add("spawn,id=sh,cmd=sh")) as SpawnChardev;
 * await reg.add("socket,id=s0,path=/tmp/sh.sock,server=on,wait=off");
 * await reg.add("file,id=log,path=/tmp/sh.log");
 * await reg.add("hub,id=hub0,chardevs.0=s0,chardevs.1=log");
 * // the command-line tool bridges sh and hub0; here a frontend plays that part
 * await sh.resize(120, 40);
 * console.log(describeExit(await sh.exited)); // "exited with status 0" once the shell is left
 * ```
 */
export class SpawnChardev extends TerminalFdChardev {
  readonly kind = "spawn";
  /** The program's process id. */
  readonly pid: number;
  readonly #pty: PtyPrimitives;
  readonly #process: ProcessPrimitives;
  readonly #child: SpawnedProcess;
  readonly #masterFd: number;
  /** Our own handle on the slave, held while the program runs so that the master reads EAGAIN, not EIO, until the program has it. */
  #slaveFd: number | null;
  protected readonly io: TerminalFd;
  #cols: number;
  #rows: number;
  #exit: ProcessExit | null = null;
  #idlePollsAfterExit = 0;
  #finished = false;
  #destroyed = false;
  #resolveExited!: (exit: ProcessExit) => void;
  /**
   * Resolves with how the program ended once it has exited and its last output has been
   * delivered (when CLOSED is sent).
   */
  readonly exited: Promise<ProcessExit>;
  /** Resize requests run one at a time; the latest one waiting replaces older ones. */
  #resizeRunning: Promise<void> | null = null;
  #resizeWanted: { cols: number; rows: number } | null = null;

  private constructor(
    id: string,
    context: ChardevContext,
    readonly options: SpawnChardevOptions,
    readonly slavePath: string,
    masterFd: number,
    slaveFd: number,
  ) {
    super(id, context);
    this.#pty = context.runtime.pty!;
    this.#process = context.runtime.process!;
    this.#masterFd = masterFd;
    this.#slaveFd = slaveFd;
    this.#cols = options.cols;
    this.#rows = options.rows;
    this.exited = new Promise((resolve) => (this.#resolveExited = resolve));
    this.#child = this.#process.spawn("sh", ["-c", START_ON_TERMINAL, "chardev-hub-spawn", slavePath, options.command, ...options.args], {
      newSession: true,
      env: context.runtime.process!.env("TERM") ? {} : { TERM: DEFAULT_TERM },
    });
    this.pid = this.#child.pid;
    this.io = this.openTerminal(this.#pty, masterFd, {
      input: (data) => this.deliverInput(data),
      ended: () => this.#finish(),
      idle: () => {
        if (this.#exit && ++this.#idlePollsAfterExit >= IDLE_POLLS_AFTER_EXIT) this.#finish();
      },
    });
    void this.#child.exit.then((exit) => this.#programExited(exit));
    // Running from the start: a frontend attaching later is told at once.
    this.emitEvent(ChrEvent.OPENED);
  }

  /**
   * Starts the program. Throws OPEN_FAILED when it cannot be found or no pty can be had,
   * leaving nothing behind.
   */
  static async open(id: string, context: ChardevContext, options: SpawnChardevOptions): Promise<SpawnChardev> {
    const { pty, process } = context.runtime;
    if (!pty || !process) throw new ChardevError("UNSUPPORTED", `chardev: spawn: this runtime (${context.runtime.name}) cannot run programs on a pty`);
    // Found before anything is opened, so a typo fails the add instead of showing up as a
    // shell's complaint on every client.
    const found = await process.run("sh", ["-c", 'command -v "$1"', "sh", options.command]);
    if (found.exit.code !== 0) throw new ChardevError("OPEN_FAILED", `spawn: cannot run '${quoteInput(options.command)}': command not found`);
    let pair;
    try {
      pair = pty.openpt();
    } catch (error) {
      throw new ChardevError("OPEN_FAILED", `Failed to create PTY: ${strerror(error)}`);
    }
    let slaveFd: number;
    try {
      slaveFd = context.runtime.openFile(pair.slavePath, "terminal");
    } catch (error) {
      pty.close(pair.fd);
      throw new ChardevError("OPEN_FAILED", `Could not open '${pair.slavePath}': ${strerror(error)}`);
    }
    // A terminal emulator's settings (cooked, echo, CR to NL; the pty came raw) and the window
    // size, set before the program starts: what is typed before it first reads must already
    // be taken as a terminal takes it, or a line typed early never ends.
    const size = ["cols", String(options.cols), "rows", String(options.rows)];
    let setUp = await process.run("stty", ["-F", pair.slavePath, "sane", "iutf8", ...size]);
    if (setUp.exit.code !== 0) setUp = await process.run("stty", ["-F", pair.slavePath, "sane", ...size]);
    if (setUp.exit.code !== 0) {
      context.runtime.closeFd(slaveFd);
      pty.close(pair.fd);
      throw new ChardevError("OPEN_FAILED", `spawn: cannot set up the terminal ${pair.slavePath}: ${setUp.output.trim()}`);
    }
    return new SpawnChardev(id, context, options, pair.slavePath, pair.fd, slaveFd);
  }

  /** `spawn:` and the program's terminal, as `query-chardev` shows it. */
  override get filename(): string {
    return `spawn:${this.slavePath}`;
  }

  /** The window size the program was last given. */
  get cols(): number {
    return this.#cols;
  }

  get rows(): number {
    return this.#rows;
  }

  /** How the program ended, or null while it runs. */
  get exitStatus(): ProcessExit | null {
    return this.#exit;
  }

  /** What the program wrote to the wrapper's stderr before it had its terminal (why it could not start). */
  get startupErrors(): string {
    return this.#child.startupErrors();
  }

  #programExited(exit: ProcessExit): void {
    this.#exit = exit;
    if (this.#destroyed) return this.#resolveExited(exit);
    // Let go of our slave: once nobody else has it, the master reads end of file after the
    // last of the program's output.
    this.#closeSlave();
    this.#idlePollsAfterExit = 0;
  }

  /** The program is gone and its output delivered: tell the holder, release the terminal. */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.io.stop();
    this.#closeSlave();
    this.#pty.close(this.#masterFd);
    this.emitEvent(ChrEvent.CLOSED);
    void this.#child.exit.then((exit) => this.#resolveExited(exit));
  }

  #closeSlave(): void {
    if (this.#slaveFd === null) return;
    this.context.runtime.closeFd(this.#slaveFd);
    this.#slaveFd = null;
  }

  /**
   * Gives the program a new window size (the kernel sends it SIGWINCH). Requests made while
   * one runs are folded: only the latest is applied after it.
   */
  resize(cols: number, rows: number): Promise<void> {
    if (!isTerminalDimension(cols) || !isTerminalDimension(rows)) {
      return Promise.reject(new ChardevError("INVALID_VALUE", `spawn: a window size must be 1 to 65535 columns and rows, not ${cols}x${rows}`));
    }
    this.#resizeWanted = { cols, rows };
    this.#resizeRunning ??= this.#applyResizes().finally(() => (this.#resizeRunning = null));
    return this.#resizeRunning;
  }

  async #applyResizes(): Promise<void> {
    while (this.#resizeWanted) {
      const { cols, rows } = this.#resizeWanted;
      this.#resizeWanted = null;
      if (this.#finished || this.#destroyed || (cols === this.#cols && rows === this.#rows)) continue;
      // No runtime offers TIOCSWINSZ; stty does it on the slave, and the kernel signals the program.
      const result = await this.#process.run("stty", ["-F", this.slavePath, "cols", String(cols), "rows", String(rows)]);
      if (result.exit.code === 0) {
        this.#cols = cols;
        this.#rows = rows;
      }
    }
  }

  /** Hangs the program up (SIGHUP, as closing a terminal window does), then SIGKILL if it lingers. */
  override async destroy(): Promise<void> {
    if (!this.#destroyed) {
      this.#destroyed = true;
      if (!this.#exit) {
        this.#child.kill("SIGHUP");
        const timer = setTimeout(() => this.#child.kill("SIGKILL"), HANGUP_GRACE_MS);
        await this.#child.exit;
        clearTimeout(timer);
      }
      if (!this.#finished) {
        this.#finished = true;
        this.io.stop();
        this.#closeSlave();
        this.#pty.close(this.#masterFd);
        this.emitEvent(ChrEvent.CLOSED);
      }
      this.#resolveExited(await this.#child.exit);
    }
    await super.destroy();
  }
}

function isTerminalDimension(value: number): boolean {
  return Number.isInteger(value) && value >= 1 && value <= 65535;
}

function dimension(key: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (!isTerminalDimension(value as number)) throw new ChardevError("INVALID_VALUE", `spawn: '${key}' must be between 1 and 65535`);
  return value as number;
}

/**
 * `-chardev spawn,id=ID,cmd=PROGRAM[,args.0=ARG,...][,cols=N][,rows=N]`, QMP
 * `{ type: "spawn", data: { cmd, args?, cols?, rows? } }`.
 */
export const spawnDriver = defineDriver({
  type: "spawn",
  options: spawnOptions,
  open(id, data, context) {
    const command = data.cmd as string | undefined;
    if (command === undefined) throw new ChardevError("MISSING_PARAMETER", "Parameter 'cmd' is missing");
    if (command === "") throw new ChardevError("INVALID_VALUE", "chardev: spawn: no program given (cmd=PROGRAM)");
    return SpawnChardev.open(id, context, {
      command,
      args: (data.args as string[] | undefined) ?? [],
      cols: dimension("cols", data.cols, DEFAULT_COLS),
      rows: dimension("rows", data.rows, DEFAULT_ROWS),
    });
  },
});
