// `asciicast`: records the output as an asciicast v2 file (asciinema's format: a JSON header
// line, then one `[seconds, "o", "text"]` line per write), so `asciinema play` and
// `asciinema cat` replay the console. As a hub backend it records while everyone watches and
// never stalls the console (a file write is blocking but quick; a full disk takes it out of
// the hub as it does `file`, and it comes back with a note of what it lost).
//
// What it records: the output (`"o"`), the input the hub takes for its device from its
// read-write backends with `input=on` (`"i"`: what was typed anywhere, not what the device
// echoed), and the hub's agreed terminal size when it changes (`"r"`, `COLSxROWS`). Input and
// size come from the hub it is a backend of; used without a hub it records output only.

import { ChardevError } from "../errors.ts";
import { ERRNO } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { OptionSchema } from "../option_schema.ts";
import { Chardev, type ChardevContext, defineDriver } from "./_chardev.ts";
import { lossNote } from "./_fd.ts";
import { LogFile } from "./_log_file.ts";
import { type HubChardev, type HubEvent, onEveryHubEvent } from "./hub.ts";

const encoder = new TextEncoder();

/** A terminal size, in character cells. */
interface CellSize {
  cols: number;
  rows: number;
}

/** What the header says besides the size and the time. */
export interface AsciicastSettings {
  /** Record the hub's input as `"i"` events. @default false */
  readonly input: boolean;
  /** The size in the header until a hub says otherwise. @default 80x24 */
  readonly size: CellSize;
  /** The header's `title`, if any. */
  readonly title?: string;
}

/**
 * An `asciicast` chardev: a recording of the output (and input, resizes) in asciicast v2.
 *
 * @example Record a shared console, what is typed included, while everyone watches
 * ```ts
 * declare const reg: { add(spec: string): Promise<unknown> }; // a ChardevRegistry
 * await reg.add("asciicast,id=rec,path=session.cast,input=on");
 * await reg.add("hub,id=hub0,ring=1M,chardevs.0=rec,policy.0=drop");
 * // later: asciinema play session.cast
 * ```
 */
export class AsciicastChardev extends Chardev {
  readonly kind = "asciicast";
  readonly #file: LogFile;
  readonly #settings: AsciicastSettings;
  /** Carries a UTF-8 sequence cut by a write over to the next (JSON strings hold whole characters). */
  #outputDecoder = new TextDecoder("utf-8");
  #inputDecoder = new TextDecoder("utf-8");
  /** `performance.now()` at the header: event times count from it. */
  #start = 0;
  #size: CellSize;
  /** The rest of an event line a full disk cut short: finished before anything else is written. */
  #unfinished: Uint8Array | null = null;
  /** The errno of the last refused write, answered while the unfinished line still cannot go. */
  #refusal = -ERRNO.EIO;
  /** Of a loss being resumed from, the bytes notes already count (as LossNotes does for `file`). */
  #announced = 0;
  #stopHubEvents: () => void;
  /** Stops hearing the hub it is a backend of (its input and size). */
  #stopHub: (() => void) | null = null;

  constructor(id: string, context: ChardevContext, file: LogFile, settings: AsciicastSettings) {
    super(id, context);
    this.#file = file;
    this.#settings = settings;
    this.#size = settings.size;
    this.#writeHeader();
    // Its hub is known when the hub says it attached it.
    this.#stopHubEvents = onEveryHubEvent((hub, event) => this.#hubEvent(hub, event));
    this.emitEvent(ChrEvent.OPENED); // a file that could be opened is connected
  }

  override get filename(): string {
    return `asciicast:${this.#file.settings.path}`;
  }

  protected writeOut(data: Uint8Array): number {
    if (this.#unfinished && !this.#finishLine()) return this.#refusal;
    const text = this.#outputDecoder.decode(data, { stream: true });
    // The bytes are the decoder's now: the line is owed even if the disk refuses it.
    if (text.length > 0) this.#queueEvent("o", text);
    return data.length;
  }

  /**
   * Back after a full disk took it out of a hub: the line it was writing is finished, then an
   * `"o"` event `[-- N bytes lost: ENOSPC --]` marks the hole, as `file` does.
   */
  override resumeAfterLoss(lost: number, errno: string): boolean {
    if (this.#unfinished && !this.#finishLine()) return false;
    if (lost > this.#announced) {
      // A character cut by the hole cannot be finished: U+FFFD for it, then the note.
      const cut = this.#outputDecoder.decode();
      this.#queueEvent("o", `${cut}\r\n${lossNote(lost - this.#announced, errno).trimEnd()}\r\n`);
      this.#announced = lost;
      if (this.#unfinished) return false;
    }
    this.#announced = 0;
    return true;
  }

  /** A new file at the path (logrotate moved it) starts with a header of its own. */
  override reopenLogs(): void {
    super.reopenLogs();
    if (this.#unfinished) this.#finishLine();
    this.#file.reopen();
    if (this.#file.size === 0) {
      this.#unfinished = null;
      this.#writeHeader();
    }
  }

  #hubEvent(hub: HubChardev, event: HubEvent): void {
    if (event.backend !== this.id) return;
    if (event.type === "attach" && this.#stopHub === null) this.#follow(hub);
    else if (event.type === "detach") {
      this.#stopHub?.();
      this.#stopHub = null;
    }
  }

  /** Hears `hub`'s size (and input with `input=on`) while it is a backend of it. */
  #follow(hub: HubChardev): void {
    const stops: (() => void)[] = [];
    this.#resized(hub.terminalSize);
    stops.push(hub.onSize((size) => this.#resized(size)));
    if (this.#settings.input) {
      stops.push(
        hub.onInput((data) => {
          const text = this.#inputDecoder.decode(data, { stream: true });
          if (text.length > 0) this.#queueEvent("i", text);
        }),
      );
    }
    this.#stopHub = () => stops.forEach((stop) => stop());
  }

  #resized(size: CellSize | undefined): void {
    if (!size || (size.cols === this.#size.cols && size.rows === this.#size.rows)) return;
    this.#size = { cols: size.cols, rows: size.rows };
    this.#queueEvent("r", `${size.cols}x${size.rows}`);
  }

  #writeHeader(): void {
    this.#start = performance.now();
    const header: Record<string, unknown> = {
      version: 2,
      width: this.#size.cols,
      height: this.#size.rows,
      timestamp: Math.floor(Date.now() / 1000),
    };
    if (this.#settings.title !== undefined) header.title = this.#settings.title;
    this.#queueLine(JSON.stringify(header));
  }

  /** One event line, written now as far as the disk takes it (the rest first next time). */
  #queueEvent(code: "o" | "i" | "r", text: string): void {
    const seconds = Math.max(0, (performance.now() - this.#start) / 1000);
    this.#queueLine(`[${seconds.toFixed(6)}, ${JSON.stringify(code)}, ${JSON.stringify(text)}]`);
  }

  #queueLine(line: string): void {
    const bytes = encoder.encode(`${line}\n`);
    // Lines are never interleaved: one still unfinished gets this one appended behind it.
    this.#unfinished = this.#unfinished ? concat(this.#unfinished, bytes) : bytes;
    this.#finishLine();
  }

  /** Writes the unfinished line(s); true once all is in the file. */
  #finishLine(): boolean {
    const rest = this.#unfinished!;
    const written = this.#file.take(rest);
    if (written === rest.length) {
      this.#unfinished = null;
      return true;
    }
    if (written > 0) this.#unfinished = rest.subarray(written);
    else this.#refusal = written < 0 ? written : -ERRNO.EIO;
    return false;
  }

  override async destroy(): Promise<void> {
    this.#stopHubEvents();
    this.#stopHub?.();
    this.#stopHub = null;
    this.#file.close();
    await super.destroy();
  }
}

function concat(first: Uint8Array, second: Uint8Array): Uint8Array {
  const joined = new Uint8Array(first.length + second.length);
  joined.set(first);
  joined.set(second, first.length);
  return joined;
}

/** Largest `cols`/`rows` a header may say (a terminal bigger than this is a mistake). */
const MAX_CELLS = 10_000;

/** `asciicast`'s options. */
export const asciicastOptions: OptionSchema = [
  { key: "path", type: "string", required: true, missing: "chardev: asciicast: no filename given", help: "the recording (asciicast v2), created 0600; emptied at open" },
  { key: "input", type: "bool", default: "off", help: "as a hub backend, also record the input the hub takes for its device from its read-write backends (`\"i\"` events)" },
  { key: "cols", type: "integer", default: "80", min: 1, max: MAX_CELLS, help: "the header's width until the hub agrees on a size (then an `\"r\"` event)" },
  { key: "rows", type: "integer", default: "24", min: 1, max: MAX_CELLS, help: "the header's height, likewise" },
  { key: "title", type: "string", help: "the header's title" },
];

function cells(data: Record<string, unknown>, key: "cols" | "rows", fallback: number): number {
  const value = data[key] === undefined ? fallback : (data[key] as number);
  if (!Number.isSafeInteger(value) || value < 1 || value > MAX_CELLS) {
    throw new ChardevError("INVALID_VALUE", `Parameter '${key}' expects a number of cells from 1 to ${MAX_CELLS}`);
  }
  return value;
}

/**
 * `-chardev asciicast,id=ID,path=FILE[,input=on][,cols=N,rows=N][,title=T]`, QMP
 * `{ type: "asciicast", data: { path, input?, cols?, rows?, title? } }`. Ours (QEMU has none).
 * Reopened by SIGHUP and `chardev-reopen-logs` like every log (a new file gets a header).
 */
export const asciicastDriver = defineDriver({
  type: "asciicast",
  options: asciicastOptions,
  open(id, data, context) {
    const size = { cols: cells(data, "cols", 80), rows: cells(data, "rows", 24) };
    const file = new LogFile(context.runtime, { path: data.path as string, append: false });
    return new AsciicastChardev(id, context, file, { input: data.input === true, size, title: data.title as string | undefined });
  },
});
