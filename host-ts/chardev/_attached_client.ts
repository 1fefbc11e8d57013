// One `chardev-hub attach` (or `tail`) client of the control socket, once its attach request
// is answered: the connection is then a plain byte stream, made a backend of the console's hub.
// It belongs to no registry (the control server makes it with `hub.attachNew` and lets go of
// it when the connection ends), so it has no driver and no options of its own.

import { ERRNO } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { NetConnection } from "../runtime/types.ts";
import { Chardev, type ChardevContext, type ChardevUser } from "./_chardev.ts";

/**
 * Bytes queued for the client beyond which writes answer EAGAIN, so a client that stops reading
 * (a suspended terminal) is a slow backend to its hub's policy, not memory that grows.
 */
const CLIENT_HIGH_WATER_MARK = 64 * 1024;

/**
 * An attached client: console output goes to its connection, its keys come back as input,
 * and a BREAK it asks for (over a second control connection) reaches the hub as an event.
 */
export class AttachedClientChardev extends Chardev {
  readonly kind = "attach";
  readonly #connection: NetConnection;
  #connected = true;
  readonly #onGone: () => void;

  /**
   * Writes to `connection`, whose events its owner routes here (`received`, `drained`,
   * `closed`); `onGone` is called once when the peer leaves, after the holder heard CLOSED.
   */
  constructor(id: string, context: ChardevContext, connection: NetConnection, onGone: () => void) {
    super(id, context);
    this.#connection = connection;
    this.#onGone = onGone;
  }

  /** Reports OPENED: call once the chardev has its holder (the hub). */
  start(): void {
    this.emitEvent(ChrEvent.OPENED);
  }

  /** Bytes from the client (its keys); false asks the connection to pause until the hub takes more. */
  received(chunk: Uint8Array): boolean {
    return chunk.length === 0 || this.deliverInput(chunk.slice());
  }

  /** What was queued for the client has gone to the kernel: blocked writers may go on. */
  drained(): void {
    this.fireWatches();
  }

  /** The client left. */
  closed(): void {
    this.#disconnected();
  }

  override get filename(): string {
    return "attach";
  }

  /** Writes a line of our own (a `[-- ... --]` notice) straight to the client, outside the console stream. */
  notify(text: string): void {
    if (this.#connected) this.#connection.write(new TextEncoder().encode(text));
  }

  /** A BREAK from the client: to the hub, which passes it on only from a read-write backend. */
  sendBreak(): void {
    if (this.#connected) this.emitEvent(ChrEvent.BREAK);
  }

  /** Ends the connection (the console is going away, or the server closes). */
  disconnect(): void {
    if (!this.#connected) return;
    this.#connection.close();
    this.#disconnected();
  }

  #disconnected(): void {
    if (!this.#connected) return;
    this.#connected = false;
    this.emitEvent(ChrEvent.CLOSED);
    this.fireWatches(); // a writer blocked on this client goes on without it
    this.#onGone();
  }

  protected override resumeInput(): void {
    if (this.#connected) this.#connection.resume();
  }

  protected writeOut(data: Uint8Array): number {
    if (!this.#connected) return -ERRNO.EIO;
    const room = CLIENT_HIGH_WATER_MARK - this.#connection.bufferedBytes;
    if (room <= 0) return -ERRNO.EAGAIN;
    const taken = Math.min(room, data.length);
    // `data` views WASM memory the next write reuses; the runtime keeps what it is given.
    this.#connection.write(data.slice(0, taken));
    return taken;
  }

  override addWatch(callback: () => void): (() => void) | null {
    if (!this.#connected) return null;
    const cancel = this.addToWatchList(callback);
    // Nothing queued: writable now, so at the end of this turn (a timer cost ≥ 1 ms a wait).
    if (this.#connection.bufferedBytes === 0) {
      queueMicrotask(() => {
        if (cancel()) callback();
      });
    }
    return () => void cancel();
  }

  /**
   * Let go of by its hub: the client left (nothing more to do), was evicted, or its console was
   * removed (a `-readconfig` re-read) and the hub destroyed: the client sees its connection end
   * instead of waiting on a console that is gone. After this turn, so an eviction's reason
   * (`evicted`, which follows the detach) is written first.
   */
  override detachUser(user: ChardevUser): void {
    super.detachUser(user);
    queueMicrotask(() => this.disconnect());
  }

  /** Evicted for stalling: the client is let go (it sees its connection end). */
  override evicted(reason: string): void {
    this.notify(`\r\n[-- evicted: ${reason} --]\r\n`);
    this.disconnect();
  }

  override async destroy(): Promise<void> {
    this.disconnect();
    await super.destroy();
  }
}
