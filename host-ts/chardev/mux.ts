// `mux`: several frontends share one chardev (`mux=on` puts one in front of `ID-base`).
// Output of any frontend goes to the base; input goes to the frontend with focus. Typed
// escape commands (C-a by default) switch focus, send a break, toggle timestamps, print help
// or ask to exit, as QEMU's mux does.

import { ChardevError } from "../errors.ts";
import { ChrEvent } from "../events.ts";
import { Chardev, type ChardevContext, type ChardevUser, defineDriver } from "./_chardev.ts";
import type { OptionSchema } from "../option_schema.ts";
import { quoteInput } from "../limits.ts";

/** QEMU's MAX_MUX. */
export const MAX_MUX = 4;

/** Ctrl-A, QEMU's default escape character. */
export const DEFAULT_ESCAPE = 0x01;

const encoder = new TextEncoder();

/** The help shown for `C-a h` (our words; the same commands as QEMU's). */
function helpText(escapeName: string): string {
  const lines = [
    ["h", "show these commands"],
    ["x", "ask the program to exit"],
    ["t", "turn output timestamps on or off"],
    ["b", "send a break to the frontend with focus"],
    ["c", "give focus to the next frontend"],
    [escapeName, `type a literal ${escapeName}`],
  ];
  return "\n\r" + lines.map(([key, what]) => `${escapeName} ${key.padEnd(4)} ${what}\n\r`).join("");
}

function escapeName(escape: number): string {
  return escape > 0 && escape < 27 ? `C-${String.fromCharCode(escape - 1 + 0x61)}` : `0x${escape.toString(16).padStart(2, "0")}`;
}

export class MuxChardev extends Chardev {
  readonly kind = "mux";
  readonly frontends: ChardevUser[] = [];
  #focus = -1;
  readonly #asUser: ChardevUser;
  #gotEscape = false;
  #timestamps = false;
  #timestampsStart = 0;
  #atLineStart = true;

  constructor(
    id: string,
    context: ChardevContext,
    readonly base: Chardev,
    readonly escape = DEFAULT_ESCAPE,
  ) {
    super(id, context);
    this.#asUser = {
      canRead: () => this.focused?.canRead() ?? 0,
      read: (data) => this.#input(data),
      event: (event) => this.#sendAll(event),
    };
    base.attachUser(this.#asUser);
  }

  override get children(): Chardev[] {
    return [this.base];
  }

  get focused(): ChardevUser | undefined {
    return this.frontends[this.#focus];
  }

  /** Index of the frontend with focus, -1 when none is attached. */
  get focus(): number {
    return this.#focus;
  }

  /** Moves focus, telling the old frontend MUX_OUT and the new one MUX_IN (QEMU's mux_set_focus). */
  setFocus(index: number): void {
    if (index < 0 || index >= this.frontends.length) return;
    this.focused?.event(ChrEvent.MUX_OUT);
    this.#focus = index;
    this.focused!.event(ChrEvent.MUX_IN);
  }

  #sendAll(event: ChrEvent): void {
    if (event === ChrEvent.OPENED) this.beOpen = true;
    else if (event === ChrEvent.CLOSED) this.beOpen = false;
    for (const frontend of this.frontends) frontend.event(event);
  }

  /** Splits input into runs for the focused frontend and escape commands, byte by byte. */
  #input(data: Uint8Array): void {
    let runStart = 0;
    const flushRun = (end: number) => {
      if (end > runStart) this.focused?.read(data.subarray(runStart, end));
    };
    for (let i = 0; i < data.length; i++) {
      const byte = data[i];
      if (this.#gotEscape) {
        this.#gotEscape = false;
        if (byte === this.escape) {
          runStart = i; // the escape typed twice is one literal escape byte
          continue;
        }
        runStart = i + 1;
        this.#command(byte);
      } else if (byte === this.escape) {
        flushRun(i);
        this.#gotEscape = true;
        runStart = i + 1;
      }
    }
    flushRun(data.length);
  }

  #command(byte: number): void {
    switch (String.fromCharCode(byte)) {
      case "h":
      case "?":
        this.#writeToBase(encoder.encode(helpText(escapeName(this.escape))));
        break;
      case "x":
        this.#writeToBase(encoder.encode("chardev-hub: exit requested\n\r"));
        this.context.requestExit();
        break;
      case "b":
        this.focused?.event(ChrEvent.BREAK);
        break;
      case "c":
        if (this.frontends.length > 0) this.setFocus((this.#focus + 1) % this.frontends.length);
        break;
      case "t":
        this.#timestamps = !this.#timestamps;
        this.#timestampsStart = -1;
        this.#atLineStart = false;
        break;
      default:
        // Unknown commands are ignored, as in QEMU.
        break;
    }
  }

  /** Messages of the mux itself, best effort like QEMU's (a full base drops them). */
  #writeToBase(data: Uint8Array): void {
    this.base.write(data);
  }

  override isBusy(): boolean {
    return this.frontends.length > 0;
  }

  override get frontendOpen(): boolean {
    return this.frontends.length > 0;
  }

  override attachUser(user: ChardevUser): void {
    if (this.frontends.length >= MAX_MUX) {
      throw new ChardevError("IN_USE", `mux: too many uses of multiplexed chardev '${this.id}' (maximum is ${MAX_MUX})`);
    }
    this.frontends.push(user);
    if (this.beOpen) user.event(ChrEvent.OPENED);
    // The newest frontend takes focus, as QEMU's qemu_chr_fe_take_focus.
    this.setFocus(this.frontends.length - 1);
  }

  override detachUser(user: ChardevUser): void {
    const index = this.frontends.indexOf(user);
    if (index < 0) return;
    this.frontends.splice(index, 1);
    if (index < this.#focus || this.#focus >= this.frontends.length) this.#focus--;
  }

  /**
   * Output to the base; with timestamps on, each line starts with the time since the first
   * stamped line. Returns bytes of `data` taken (the stamps are extra).
   */
  protected writeOut(data: Uint8Array): number {
    if (!this.#timestamps) return this.base.write(data);
    let taken = 0;
    for (let i = 0; i < data.length; i++) {
      if (this.#atLineStart) {
        this.base.write(encoder.encode(this.#stamp()));
        this.#atLineStart = false;
      }
      const result = this.base.write(data.subarray(i, i + 1));
      if (result <= 0) return taken > 0 ? taken : result;
      taken++;
      if (data[i] === 0x0a) this.#atLineStart = true;
    }
    return taken;
  }

  #stamp(): string {
    const now = Date.now();
    if (this.#timestampsStart === -1) this.#timestampsStart = now;
    const elapsed = now - this.#timestampsStart;
    const two = (n: number) => String(n).padStart(2, "0");
    const hours = Math.floor(elapsed / 3_600_000);
    const minutes = Math.floor(elapsed / 60_000) % 60;
    const seconds = Math.floor(elapsed / 1000) % 60;
    return `[${two(hours)}:${two(minutes)}:${two(seconds)}.${String(elapsed % 1000).padStart(3, "0")}] `;
  }

  override addWatch(callback: () => void): (() => void) | null {
    return this.base.addWatch(callback);
  }

  override flushInput(): void {
    this.base.flushInput();
  }

  override async destroy(): Promise<void> {
    this.base.detachUser(this.#asUser);
    await super.destroy();
  }
}

/** `mux`'s options (QEMU's ChardevMux). */
export const muxOptions: OptionSchema = [
  { key: "chardev", type: "string", required: true, help: "the chardev behind the mux (what mux=on makes: ID-base behind mux ID)" },
];

export const muxDriver = defineDriver({
  type: "mux",
  options: muxOptions,
  open(id, data, context) {
    const baseId = data.chardev as string | undefined;
    if (!baseId) throw new ChardevError("MISSING_PARAMETER", "Parameter 'chardev' is missing");
    const base = context.find(baseId);
    // QEMU's char-mux.c text, without quotes.
    if (!base) throw new ChardevError("NOT_FOUND", `mux: base chardev ${quoteInput(baseId)} not found`);
    if (base.isBusy()) throw new ChardevError("IN_USE", `chardev '${quoteInput(baseId)}' is already in use`);
    return new MuxChardev(id, context, base);
  },
});
