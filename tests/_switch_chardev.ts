// A backend for tests that opens and closes on command and records what it was sent, to drive
// the hub's event counting the way a socket or pty would.

import { Chardev, type ChardevDriver } from "../host-ts/mod.ts";
import { ChrEvent } from "../host-ts/mod.ts";

export class SwitchChardev extends Chardev {
  readonly kind = "switch";
  received = "";
  /** Bytes it takes per write; Infinity = all. */
  takes = Infinity;

  protected writeOut(data: Uint8Array): number {
    const taken = Math.min(data.length, this.takes);
    this.received += new TextDecoder().decode(data.subarray(0, taken));
    return taken;
  }
  open(): void {
    this.emitEvent(ChrEvent.OPENED);
  }
  close(): void {
    this.emitEvent(ChrEvent.CLOSED);
  }
}

export const switchDriver: ChardevDriver = {
  type: "switch",
  fields: {},
  fromOptions: () => ({}),
  open: (id, _data, context) => new SwitchChardev(id, context),
};
