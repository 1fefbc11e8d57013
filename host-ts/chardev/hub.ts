// `hub`: one frontend, many backends (QEMU 10.0's char-hub). Output goes to every open
// backend through the WASM core's write-to-all loop; input from any backend reaches the
// frontend; the frontend sees the first OPENED and the last CLOSED.

import type { Core } from "../core.ts";
import { ChardevError } from "../errors.ts";
import { ChrEvent } from "../events.ts";
import { listOption, QEMU_MAX_HUB } from "../options.ts";
import { Chardev, type ChardevContext, type ChardevDriver, type ChardevUser } from "./_chardev.ts";

/** Hubs by core address, per core: the core names a hub by its address when it writes. */
const hubsByCore = new WeakMap<Core, Map<number, HubChardev>>();

function hubsOf(core: Core): Map<number, HubChardev> {
  let hubs = hubsByCore.get(core);
  if (!hubs) {
    const known = new Map<number, HubChardev>();
    hubs = known;
    hubsByCore.set(core, known);
    core.onBackendWrite = (hub, index, data) => known.get(hub)!.backends[index].write(data);
  }
  return hubs;
}

/** Kinds a hub refuses to stack on in QEMU. */
export function isStackingKind(chardev: Chardev): boolean {
  return chardev.kind === "hub" || chardev.kind === "mux";
}

export class HubChardev extends Chardev {
  readonly kind = "hub";
  /** Backends in `chardevs.N` order; the index is the core's backend index. */
  readonly backends: Chardev[] = [];
  readonly #handle: number;
  readonly #backendUsers: ChardevUser[] = [];

  constructor(id: string, context: ChardevContext) {
    super(id, context);
    this.#handle = context.core.hubNew(QEMU_MAX_HUB);
    hubsOf(context.core).set(this.#handle, this);
  }

  /** Core address of this hub's books (for stats and tests). */
  get handle(): number {
    return this.#handle;
  }

  /**
   * Takes `chardev` as backend number `backends.length`. The backend's events are booked by
   * the core; only those the core passes reach the frontend.
   */
  attachBackend(chardev: Chardev): void {
    if (this.context.qemuCompat && this.backends.length >= QEMU_MAX_HUB) {
      throw new ChardevError("HUB_TOO_MANY", `hub: too many uses of chardevs '${this.id}' (maximum is ${QEMU_MAX_HUB})`);
    }
    if (chardev.isBusy()) throw new ChardevError("IN_USE", `chardev '${chardev.id}' is already in use`);
    const core = this.context.core;
    const index = core.hubAddBackend(this.#handle);
    const user: ChardevUser = {
      canRead: () => this.canReceive(),
      read: (data) => this.receive(data),
      event: (event) => {
        if (core.hubEvent(this.#handle, index, event)) this.emitEvent(event);
      },
    };
    this.backends.push(chardev);
    this.#backendUsers.push(user);
    chardev.attachUser(user); // books OPENED at once if the backend is already open
  }

  override attachUser(user: ChardevUser): void {
    if (this.user) throw new ChardevError("IN_USE", `hub: chardev '${this.id}' is already used`);
    super.attachUser(user);
  }

  protected writeOut(data: Uint8Array): number {
    return this.context.core.hubWrite(this.#handle, data);
  }

  /** QEMU returns no watch when no backend is blocked; else the blocked backend's. */
  override addWatch(callback: () => void): (() => void) | null {
    const blocked = this.context.core.hubBlockedBackend(this.#handle);
    if (blocked < 0) return null;
    return this.backends[blocked].addWatch(callback);
  }

  override flushInput(): void {
    for (const backend of this.backends) backend.flushInput();
  }

  override async destroy(): Promise<void> {
    this.backends.forEach((backend, i) => backend.detachUser(this.#backendUsers[i]));
    hubsOf(this.context.core).delete(this.#handle);
    this.context.core.hubFree(this.#handle);
    await super.destroy();
  }
}

export const hubDriver: ChardevDriver = {
  type: "hub",
  fields: { chardevs: "stringList" },
  fromOptions(options) {
    const chardevs = listOption(options, "chardevs");
    return chardevs.length > 0 ? { chardevs } : {};
  },
  open(id, data, context) {
    const ids = (data.chardevs as string[] | undefined) ?? [];
    if (ids.length === 0) throw new ChardevError("HUB_NO_CHARDEVS", "hub: 'chardevs' list is not defined");
    const hub = new HubChardev(id, context);
    try {
      for (const backendId of ids) {
        const chardev = context.find(backendId);
        if (!chardev) throw new ChardevError("NOT_FOUND", `hub: chardev can't be found by id '${backendId}'`);
        if (isStackingKind(chardev)) {
          throw new ChardevError(
            "HUB_STACKING",
            `hub: multiplexers and hub devices can't be stacked, check chardev '${backendId}', chardev should not be a hub device or have 'mux=on' enabled`,
          );
        }
        hub.attachBackend(chardev);
      }
    } catch (error) {
      void hub.destroy(); // lets go of the backends it took: no half-made hub stays behind
      throw error;
    }
    return hub;
  },
};
