// `mux`: several frontends share one chardev (`mux=on` puts one in front of `ID-base`).
// Output of any frontend goes to the base; input goes to the frontend with focus, which is the
// last one attached. The C-a escape commands come with the runtimes issue.

import { ChardevError } from "../errors.ts";
import { ChrEvent } from "../events.ts";
import { Chardev, type ChardevContext, type ChardevDriver, type ChardevUser } from "./_chardev.ts";

/** QEMU's MAX_MUX. */
export const MAX_MUX = 4;

export class MuxChardev extends Chardev {
  readonly kind = "mux";
  readonly frontends: ChardevUser[] = [];
  #focus = -1;
  readonly #asUser: ChardevUser;

  constructor(id: string, context: ChardevContext, readonly base: Chardev) {
    super(id, context);
    this.#asUser = {
      canRead: () => this.focused?.canRead() ?? 0,
      read: (data) => this.focused?.read(data),
      event: (event) => this.#sendAll(event),
    };
    base.attachUser(this.#asUser);
  }

  get focused(): ChardevUser | undefined {
    return this.frontends[this.#focus];
  }

  #sendAll(event: ChrEvent): void {
    if (event === ChrEvent.OPENED) this.beOpen = true;
    else if (event === ChrEvent.CLOSED) this.beOpen = false;
    for (const frontend of this.frontends) frontend.event(event);
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
    this.focused?.event(ChrEvent.MUX_OUT);
    this.frontends.push(user);
    this.#focus = this.frontends.length - 1;
    if (this.beOpen) user.event(ChrEvent.OPENED);
    user.event(ChrEvent.MUX_IN);
  }

  override detachUser(user: ChardevUser): void {
    const index = this.frontends.indexOf(user);
    if (index < 0) return;
    this.frontends.splice(index, 1);
    if (this.#focus >= this.frontends.length) this.#focus = this.frontends.length - 1;
  }

  protected writeOut(data: Uint8Array): number {
    return this.base.write(data);
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

export const muxDriver: ChardevDriver = {
  type: "mux",
  fields: { chardev: "string" },
  fromOptions(options) {
    return { chardev: options.get("chardev") };
  },
  open(id, data, context) {
    const baseId = data.chardev as string | undefined;
    if (!baseId) throw new ChardevError("MISSING_PARAMETER", "Parameter 'chardev' is missing");
    const base = context.find(baseId);
    if (!base) throw new ChardevError("NOT_FOUND", `Chardev '${baseId}' not found`);
    return new MuxChardev(id, context, base);
  },
};
