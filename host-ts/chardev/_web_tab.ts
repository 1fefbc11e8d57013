// One browser tab of a `web` chardev that a hub holds (issue 13): each tab is a hub backend of
// its own, so the hub's per-backend policy (block, drop, evict), replay, read-only mode and
// counters apply to every tab apart, as to any socket. The `web` chardev serves the page,
// checks who connects and hands each admitted tab over as one of these; it keeps the control
// frames (resizes) and the counters of what it refused.
//
// A tab moves bytes only: output becomes binary frames on its WebSocket, its frames become
// input. A tab that does not read pushes back: past `queue-limit` bytes queued for it, writes
// answer a short count or EAGAIN and its watch fires once the queue has gone down, so a hub
// treats it as it treats a socket that stopped reading.

import { ERRNO } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { WebSocketPeer } from "../runtime/types.ts";
import { Chardev, type ChardevContext } from "./_chardev.ts";
import { WebCloseCode } from "./_web_protocol.ts";

/**
 * How often a writer waiting on a tab looks whether its queue went down. The WebSocket
 * contract (like the browser's WebSocket) tells only `bufferedAmount`, no drain event; the
 * timer runs only while a writer waits.
 */
const DRAIN_POLL_MS = 10;

/**
 * `host:port` of a tab's browser, IPv6 hosts in brackets: the `peer` a hub shows for the tab.
 *
 * @example A tab from IPv6 loopback
 * ```ts
 * import type { WebSocketPeer } from "../runtime/types.ts";
 * declare const peer: WebSocketPeer; // remote { host: "::1", port: 51234 }
 * tabPeerAddress(peer); // "[::1]:51234"
 * ```
 */
export function tabPeerAddress(peer: WebSocketPeer): string {
  const { host, port } = peer.remote;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * One connected browser tab as a chardev of its own (not in the registry: the hub that holds
 * its `web` chardev holds it). Open from the start; CLOSED when its connection ends, after
 * which it is of no further use.
 *
 * @example What a hub sees of the tabs of a web chardev
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * await reg.add("web,id=web0,port=0");
 * await reg.add("hub,id=hub0,ring=1M,chardevs.0=web0,policy.0=drop");
 * // Each open tab is a row of its own: { id: "web0#1", listener: "web0", peer: "127.0.0.1:51234", ... }
 * console.log(reg.hub("hub0").stats());
 * ```
 */
export class WebTabChardev extends Chardev {
  readonly kind = "web";
  #gone = false;
  #inputPaused = false;

  constructor(
    id: string,
    context: ChardevContext,
    readonly peer: WebSocketPeer,
    /** Bytes queued for the tab beyond which it takes no more output. */
    readonly queueLimit: number,
  ) {
    super(id, context);
    // Open before anyone holds it: the hub that attaches it hears OPENED at once (and replays).
    this.emitEvent(ChrEvent.OPENED);
  }

  /** `web:` and the tab's address, e.g. `web:127.0.0.1:51234`. */
  override get filename(): string {
    return `web:${tabPeerAddress(this.peer)}`;
  }

  /** Takes what fits under `queue-limit`; a gone tab answers EIO, as a socket without a peer. */
  protected writeOut(data: Uint8Array): number {
    if (this.#gone) return -ERRNO.EIO;
    const room = this.queueLimit - this.peer.bufferedAmount;
    if (room <= 0) return -ERRNO.EAGAIN;
    const taken = Math.min(room, data.length);
    // `data` may view core memory that the next write reuses; the peer keeps what it is given.
    this.peer.send(data.slice(0, taken));
    return taken;
  }

  /** Fires once the tab's queue has room again (or the tab is gone). */
  override addWatch(callback: () => void): (() => void) | null {
    if (this.#gone) return null;
    if (this.#hasRoom()) {
      // Room now: at the end of this turn (a timer cost ≥ 1 ms a wait); the write then takes
      // at least half the queue limit, so this cannot spin.
      const cancel = this.addToWatchList(callback);
      queueMicrotask(() => {
        if (cancel()) callback();
      });
      return () => void cancel();
    }
    const poll = setInterval(() => {
      if (this.#gone || this.#hasRoom()) this.fireWatches();
    }, DRAIN_POLL_MS);
    const cancel = this.addToWatchList(callback, () => clearInterval(poll));
    return () => void cancel();
  }

  /** Room for a write again: the queue is down to half, so a waiting writer does not wake for a few bytes. */
  #hasRoom(): boolean {
    return this.peer.bufferedAmount <= this.queueLimit / 2;
  }

  /** A frame the tab sent, as input (a read-only tab's too: its hub discards and counts it). */
  input(frame: Uint8Array): void {
    if (this.#gone || frame.length === 0) return;
    if (!this.deliverInput(frame) && !this.#inputPaused) {
      this.#inputPaused = true;
      this.peer.pause();
    }
  }

  protected override resumeInput(): void {
    if (!this.#inputPaused) return;
    this.#inputPaused = false;
    if (!this.#gone) this.peer.resume();
  }

  /** The tab's connection ended (or the `web` chardev dropped it): CLOSED, and no writer waits on it. */
  peerClosed(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.emitEvent(ChrEvent.CLOSED);
    this.fireWatches();
  }

  /** A hub evicted this tab for stalling: the page is told why (close code 4001). */
  override evicted(reason: string): void {
    this.#close(WebCloseCode.EVICTED, `evicted by the hub: ${reason}`);
  }

  #close(code: number, reason: string): void {
    if (this.#gone) return;
    // Its socket must be read again, or its answer to our close frame would never arrive.
    this.peer.resume();
    this.peer.close(code, reason);
    this.peerClosed();
  }

  /**
   * Closes the tab's connection (GOING_AWAY) if it is still there. Only its hub destroys a tab
   * (it is in no registry): when it detaches it, or the web chardev, or goes itself.
   */
  override async destroy(): Promise<void> {
    this.#close(WebCloseCode.GOING_AWAY, "detached from the hub");
    await super.destroy();
  }
}
