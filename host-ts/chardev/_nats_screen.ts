// The screen a `nats,role=console` keeps for `from=screen` viewers: a headless terminal
// emulator (xterm.js) fed with exactly the bytes the console publishes, in the order of their
// offsets. So the snapshot belongs to one exact offset: xterm.js calls a write's callback after
// parsing that write and before the next, so an empty write queued when the console has taken
// its output up to offset N calls back with the screen as it stands at N. A viewer writes the
// snapshot, then follows `console.NAME.out` from N: no byte missing or repeated between the two.
//
// The hub's own screen (replay.N=screen, _hub_screen.ts) is not used: it is kept only while a
// hub backend asks for it, and its positions are the ring's, not the console's offsets.
//
// xterm.js is imported when the first console screen is made, not with the command: what the
// console asks of the emulator while it loads waits, in order, and runs once it is there.

import type xtermHeadless from "@xterm/headless";
import type xtermSerialize from "@xterm/addon-serialize";
import { DEFAULT_SCREEN_COLS, DEFAULT_SCREEN_ROWS } from "./_hub_screen_contract.ts";

type HeadlessTerminal = InstanceType<typeof xtermHeadless.Terminal>;
type Serializer = InstanceType<typeof xtermSerialize.SerializeAddon>;
interface Emulator {
  readonly Terminal: typeof xtermHeadless.Terminal;
  readonly SerializeAddon: typeof xtermSerialize.SerializeAddon;
}

let emulatorLoading: Promise<Emulator> | null = null;

/** xterm.js's headless terminal and serializer, imported once, on first use. */
function loadEmulator(): Promise<Emulator> {
  emulatorLoading ??= Promise.all([import("@xterm/headless"), import("@xterm/addon-serialize")]).then(([headless, serialize]) => ({
    Terminal: headless.default.Terminal,
    SerializeAddon: serialize.default.SerializeAddon,
  }));
  return emulatorLoading;
}

/** Lines kept above the screen; a snapshot carries as many as fit in one NATS message. */
export const NATS_SCREEN_SCROLLBACK_LINES = 200;
/**
 * Output queued for the emulator and not parsed yet beyond which it starts again, blank, at
 * the current offset (a device faster than the parser costs no memory; the screen is right
 * again once the program redraws, or after a screenful of text).
 */
const PARSE_BACKLOG_LIMIT = 4 * 1024 * 1024;
/** RIS: the viewer's terminal forgets whatever it showed before the snapshot. */
const RESET_TERMINAL = "\x1bc";
const EMPTY = new Uint8Array(0);

/** The header of a screen reply that carries the snapshot's size (`COLSxROWS`); its offset is in OFFSET_HEADER. */
export const SCREEN_SIZE_HEADER = "Chardev-Hub-Screen-Size";
/** The header of a screen reply from a console that has no screen to give, saying why. */
export const SCREEN_ERROR_HEADER = "Chardev-Hub-Error";

/** A snapshot: the repaint and the size it was drawn at. */
export interface NatsScreenSnapshot {
  readonly repaint: Uint8Array;
  readonly cols: number;
  readonly rows: number;
}

/**
 * A console's screen, fed in offset order.
 *
 * @example The screen after some output
 * ```ts
 * const screen = new NatsConsoleScreen();
 * screen.feed(new TextEncoder().encode("hello\r\n"));
 * const snapshot = await screen.snapshot(64 * 1024); // RIS, then "hello" drawn at 80x24
 * screen.dispose();
 * ```
 */
export class NatsConsoleScreen {
  #emulator: Emulator | null = null;
  #terminal: HeadlessTerminal | null = null;
  #serializer: Serializer | null = null;
  /** What was asked of the emulator while its code was loading, in order; null once it is there. */
  #pending: (() => void)[] | null = [];
  #unparsed = 0;
  #cols: number;
  #rows: number;
  /** Snapshots asked of the emulator now running, answered null if it is replaced first. */
  readonly #waiting = new Set<(snapshot: NatsScreenSnapshot | null) => void>();
  #disposed = false;

  constructor(cols = DEFAULT_SCREEN_COLS, rows = DEFAULT_SCREEN_ROWS) {
    this.#cols = cols;
    this.#rows = rows;
    loadEmulator().then(
      (emulator) => {
        if (this.#disposed) return;
        this.#emulator = emulator;
        [this.#terminal, this.#serializer] = this.#makeTerminal(emulator);
        const pending = this.#pending ?? [];
        this.#pending = null;
        for (const run of pending) run();
      },
      () => this.dispose(), // no emulator: every snapshot is answered null
    );
  }

  #makeTerminal(emulator: Emulator): [HeadlessTerminal, Serializer] {
    const terminal = new emulator.Terminal({ cols: this.#cols, rows: this.#rows, scrollback: NATS_SCREEN_SCROLLBACK_LINES, allowProposedApi: true });
    const serializer = new emulator.SerializeAddon();
    terminal.loadAddon(serializer);
    return [terminal, serializer];
  }

  /** Runs `use` with the emulator now, or once it has loaded (after what was asked before). */
  #withTerminal(use: (terminal: HeadlessTerminal, serializer: Serializer) => void): void {
    if (this.#pending !== null) this.#pending.push(() => use(this.#terminal!, this.#serializer!));
    else use(this.#terminal!, this.#serializer!);
  }

  /** The size the emulator draws at (the console's hub's agreed size, once the output before it is parsed). */
  get size(): { cols: number; rows: number } {
    return { cols: this.#cols, rows: this.#rows };
  }

  /** The console's next output, in offset order (`data` is the caller's copy, kept until parsed). */
  feed(data: Uint8Array): void {
    if (this.#disposed || data.length === 0) return;
    if (this.#unparsed + data.length > PARSE_BACKLOG_LIMIT) this.#startAgain();
    this.#unparsed += data.length;
    this.#withTerminal((terminal) =>
      terminal.write(data, () => {
        if (terminal === this.#terminal) this.#unparsed -= data.length;
      }),
    );
  }

  /** The hub agreed on a new size: the emulator takes it after the output fed so far (drawn at the old size). */
  resize(cols: number, rows: number): void {
    if (this.#disposed || (cols === this.#cols && rows === this.#rows)) return;
    this.#cols = cols;
    this.#rows = rows;
    this.#withTerminal((terminal) =>
      terminal.write(EMPTY, () => {
        if (!this.#disposed) terminal.resize(cols, rows);
      }),
    );
  }

  /**
   * The screen once everything fed so far is parsed: RIS, then the serializer's repaint with
   * as much scrollback as keeps it within `maxBytes`; null when not even the screen alone fits,
   * or the emulator had to start again before answering.
   */
  snapshot(maxBytes: number): Promise<NatsScreenSnapshot | null> {
    if (this.#disposed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#waiting.add(resolve);
      this.#withTerminal((terminal, serializer) => terminal.write(EMPTY, () => {
        if (!this.#waiting.delete(resolve)) return;
        const encoder = new TextEncoder();
        for (const scrollback of [NATS_SCREEN_SCROLLBACK_LINES, 0]) {
          const repaint = encoder.encode(RESET_TERMINAL + serializer.serialize({ scrollback }));
          if (repaint.length <= maxBytes) return resolve({ repaint, cols: terminal.cols, rows: terminal.rows });
        }
        resolve(null);
      }));
    });
  }

  /** Drops the backlog: a new, blank emulator at the current offset; snapshots asked of the old one get null. */
  #startAgain(): void {
    for (const resolve of this.#waiting) resolve(null);
    this.#waiting.clear();
    this.#unparsed = 0;
    if (this.#emulator === null) {
      this.#pending = []; // still loading: the backlog is dropped before it reaches an emulator
      return;
    }
    this.#terminal!.dispose();
    [this.#terminal, this.#serializer] = this.#makeTerminal(this.#emulator);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const resolve of this.#waiting) resolve(null);
    this.#waiting.clear();
    this.#pending = null;
    this.#terminal?.dispose();
  }
}
