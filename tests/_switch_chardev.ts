// A backend for tests that opens, closes and stalls on command and records what it was sent,
// to drive the hub the way a socket or pty would.

import { Chardev, ChrEvent, type ChardevDriver, type ChardevRegistry } from "../host-ts/mod.ts";

const EAGAIN = -11;

export class SwitchChardev extends Chardev {
  readonly kind = "switch";
  /** Everything it took, in order. */
  chunks: Uint8Array[] = [];
  /** Bytes it takes per write; Infinity = all. */
  takes = Infinity;
  /** While true, every write gets EAGAIN. */
  stalled = false;
  /** Keep only a count (for large volumes). */
  countOnly = false;
  bytes = 0;
  writes = 0;
  #watches: (() => void)[] = [];

  get received(): string {
    return new TextDecoder().decode(this.receivedBytes);
  }
  get receivedBytes(): Uint8Array {
    const out = new Uint8Array(this.chunks.reduce((sum, chunk) => sum + chunk.length, 0));
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  protected writeOut(data: Uint8Array): number {
    if (this.stalled) return EAGAIN;
    const taken = Math.min(data.length, this.takes);
    this.writes++;
    this.bytes += taken;
    // Copy: the hub hands out views of its ring, valid only during the call.
    if (!this.countOnly) this.chunks.push(data.slice(0, taken));
    return taken;
  }
  override addWatch(callback: () => void): () => void {
    this.#watches.push(callback);
    return () => (this.#watches = this.#watches.filter((watch) => watch !== callback));
  }
  /** Ends a stall and fires the watches, as a drained socket would. */
  resume(): void {
    this.stalled = false;
    const watches = this.#watches;
    this.#watches = [];
    for (const watch of watches) watch();
  }
  open(): void {
    this.emitEvent(ChrEvent.OPENED);
  }
  close(): void {
    this.emitEvent(ChrEvent.CLOSED);
  }
  /** A BREAK from this backend's peer (a telnet BREAK, a serial line break). */
  sendBreak(): void {
    this.emitEvent(ChrEvent.BREAK);
  }
  /** Input typed on this backend. */
  type(text: string): void {
    this.receive(new TextEncoder().encode(text));
  }
}

export const switchDriver: ChardevDriver = {
  type: "switch",
  fields: {},
  fromOptions: () => ({}),
  open: (id, _data, context) => new SwitchChardev(id, context),
};

/** Adds an open switch chardev to `reg` for each id (the registry must have `switchDriver`). */
/** A driver of kind `type` whose chardevs `make` builds: a SwitchChardev subclass of a test's own. */
export const switchSubclassDriver = (type: string, make: (id: string, context: never) => SwitchChardev): ChardevDriver => ({
  type,
  fields: {},
  fromOptions: () => ({}),
  open: (id, _data, context) => make(id, context as never),
});

export async function openSwitches(reg: ChardevRegistry, ...ids: string[]): Promise<SwitchChardev[]> {
  const made: SwitchChardev[] = [];
  for (const id of ids) {
    const chardev = (await reg.add(`switch,id=${id}`)) as SwitchChardev;
    chardev.open();
    made.push(chardev);
  }
  return made;
}
