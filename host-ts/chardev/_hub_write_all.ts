// QEMU's write-to-all (`ring=0`, char-hub.c): the core writes each open backend in turn and the
// slowest sets the pace; the hub's watch is the blocked backend's own.

import { ChardevError } from "../errors.ts";
import type { ChrEvent } from "../events.ts";
import { QEMU_MAX_HUB } from "../options.ts";
import { type HubEntry, type HubOutput, type HubOutputBackendOptions, type HubOutputCounters, type HubOutputHost } from "./_hub_output.ts";

/** The hub's output through the core's write-to-all loop, exactly as QEMU. */
export class WriteAllOutput implements HubOutput {
  readonly isRing = false;
  readonly countsOpenEvents = true;
  readonly address: number;

  constructor(private readonly host: HubOutputHost) {
    this.address = host.core.hubNew(QEMU_MAX_HUB);
  }

  get handle(): number {
    return this.address;
  }

  addBackend(id: string, options: HubOutputBackendOptions): number {
    if (options.policy !== "block") {
      throw new ChardevError("INVALID_VALUE", `hub: policy '${options.policy}' of chardev '${id}' needs a ring (ring=BYTES)`);
    }
    // Without a ring there is nothing to replay, nobody lags and nobody is evicted: a key that
    // would silently do nothing is refused like a policy.
    const ringOnly = ([["lag-limit", options.lagLimit], ["stall-ms", options.stallMs], ["replay", options.replay]] as const).find(([, value]) => value !== undefined);
    if (ringOnly) {
      throw new ChardevError("INVALID_VALUE", `hub: ${ringOnly[0]} of chardev '${id}' needs a ring (ring=BYTES)`);
    }
    return this.host.core.hubAddBackend(this.address);
  }

  /** Nothing is owed: QEMU's loop writes every backend within the frontend's write. */
  beforeDetach(_entry: HubEntry): void {}

  /** The core's table keeps the slot (QEMU's never shrinks either); the hub forgets the entry. */
  removeBackend(_slot: number): void {}

  write(data: Uint8Array): number {
    return this.host.core.hubWrite(this.address, data);
  }

  /** Chunk by chunk through the core, exactly as the same writes one after another (QEMU has no writev). */
  writev(chunks: readonly Uint8Array[]): number {
    const core = this.host.core;
    let total = 0;
    for (let i = 0; i < chunks.length; i++) {
      const data = chunks[i];
      if (data.length === 0) continue;
      const taken = core.hubWrite(this.address, data);
      if (taken < 0) return total > 0 ? total : taken; // the error again at the next write
      total += taken;
      if (taken < data.length) break;
    }
    return total;
  }

  backendWrote(entry: HubEntry, _length: number, result: number, hardError: boolean): number {
    if (!hardError) return result;
    // Out of the books at once: the core skips a backend closed during its write, so the
    // others take this write as if it had never been there.
    this.host.fail(entry, result);
    return 0;
  }

  /** The core counts (QEMU: first OPENED, last CLOSED) and catches a reopened backend up. */
  backendOpenChanged(entry: HubEntry, event: ChrEvent): boolean {
    return this.host.core.hubEvent(this.address, entry.slot, event);
  }

  /** A writer waits on the blocked backend's watch, which the hub does not hold. */
  stopWaiting(_entry: HubEntry): void {}

  spaceFreed(): void {
    // Not from inside the caller: a woken writer writes at once.
    if (this.host.writersWaiting) queueMicrotask(() => this.host.wakeWriters());
  }

  /** Every write is done by the time it returns: nothing to flush. */
  flush(): void {}

  /** QEMU returns no watch when no backend is blocked; else the blocked backend's. */
  addWatch(callback: () => void): (() => void) | null {
    const blocked = this.host.core.hubBlockedBackend(this.address);
    const entry = blocked < 0 ? undefined : this.host.entryAt(blocked);
    if (!entry) return null;
    // The blocked backend's watch, or the hub's own wake-up should that backend leave first.
    let cancelBackendWatch: (() => void) | null = null;
    let cancelHubWatch: (() => boolean) | null = null;
    let fired = false;
    const fire = () => {
      if (fired) return;
      fired = true;
      cancelHubWatch?.();
      cancelBackendWatch?.();
      callback();
    };
    cancelBackendWatch = entry.chardev.addWatch(fire);
    if (!cancelBackendWatch) return null;
    cancelHubWatch = this.host.addWriterWatch(fire);
    return () => {
      cancelHubWatch?.();
      cancelBackendWatch?.();
    };
  }

  streamPosition(): number {
    return Number(this.host.core.hubMinWritten(this.address));
  }

  backendPosition(slot: number): number {
    return Number(this.host.core.hubBackendWritten(this.address, slot));
  }

  /** QEMU's loop drops nothing and keeps no lag: a backend behind holds the writer back. */
  counters(slot: number, _open: boolean): HubOutputCounters {
    const core = this.host.core;
    return { bytesOut: core.hubBackendDelivered(this.address, slot), bytesDropped: 0, lag: 0, stalls: core.hubBackendStalls(this.address, slot) };
  }

  free(): void {
    this.host.core.hubFree(this.address);
  }
}
