// A console's card in the NATS KV bucket `chardev-hub-consoles` (key: the console's name): who
// publishes it, where, since when, how far its output has got, and a heartbeat, so a list of
// consoles (chardev-hub list nats://...) can tell a live console from one whose host died.
// The card is extra: a server that refuses the bucket (no permission, KV off) costs a warning,
// never the console.

import type { NatsConnection } from "@nats-io/nats-core";
import type { KV } from "@nats-io/kv";
import { natsApi } from "./_nats_api.ts";
import type { ChardevContext } from "./_chardev.ts";
import { describeNatsError, inputSubject, outputSubject, type NatsOptions } from "./_nats_link.ts";

/** The KV bucket of console cards. */
export const CONSOLE_BUCKET = "chardev-hub-consoles";
/** How often a console's card is written again; a card older than a few of these is a dead console's. */
export const HEARTBEAT_MS = 5000;

/** What a console's card holds (JSON). */
export interface ConsoleCard {
  readonly console: string;
  /** The id of the `nats` chardev that publishes it. */
  readonly chardev: string;
  /** The publishing host: $HOSTNAME, else the address the NATS server sees. */
  readonly host: string;
  readonly pid: number | null;
  readonly stream: string;
  readonly output: string;
  readonly input: string | null;
  /** ISO 8601 times. */
  readonly started: string;
  readonly heartbeat: string;
  readonly heartbeatSeconds: number;
  readonly state: "open" | "closed";
  /** The absolute offset the next output byte gets. */
  readonly offset: number;
  /** The device's name: the console's `device=`, else the id of the hub it is a backend of; null before it has one. */
  readonly device: string | null;
  /** The terminal size the console's hub agreed on; null before it is held by a hub. */
  readonly cols: number | null;
  readonly rows: number | null;
}

/** What the console tells its card at each write. */
export interface ConsoleCardState {
  readonly offset: number;
  readonly device: string | null;
  readonly size: { readonly cols: number; readonly rows: number } | null;
}

/**
 * Keeps one console's card up to date until stopped.
 *
 * @example
 * ```ts
 * import type { NatsConnection } from "@nats-io/nats-core";
 * import type { ChardevContext } from "./_chardev.ts";
 * import { natsOptionsFromData } from "./_nats_link.ts";
 * declare const connection: NatsConnection;
 * declare const context: ChardevContext;
 * const card = new ConsoleMetadata("up", natsOptionsFromData({ console: "vm1" }), connection, context, () => ({ offset: 0, device: "vm1-serial", size: { cols: 80, rows: 24 } }));
 * await card.start();
 * await card.stop();
 * ```
 */
export class ConsoleMetadata {
  #bucket: KV | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #failed = false;
  readonly #started = new Date().toISOString();

  constructor(
    readonly id: string,
    readonly options: NatsOptions,
    readonly connection: NatsConnection,
    readonly context: ChardevContext,
    /** The console's next offset, device and size, read at each write of the card. */
    readonly state: () => ConsoleCardState,
  ) {}

  /** Opens (or creates) the bucket and writes the first card; a failure is a warning. */
  async start(): Promise<void> {
    try {
      this.#bucket = await new (natsApi().Kvm)(this.connection).create(CONSOLE_BUCKET, { history: 1, replicas: this.options.replicas });
      await this.#write("open");
    } catch (error) {
      this.#warn(error);
      return;
    }
    this.#timer = setInterval(() => void this.#write("open").catch((error) => this.#warn(error)), HEARTBEAT_MS);
    // The heartbeat keeps no program alive on its own.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #warn(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.context.warn(`nats: ${this.id}: console metadata not written to KV bucket '${CONSOLE_BUCKET}': ${describeNatsError(error)}`);
  }

  async #write(state: "open" | "closed"): Promise<void> {
    if (!this.#bucket) return;
    const process = this.context.runtime.process;
    const now = this.state();
    const card: ConsoleCard = {
      console: this.options.console,
      chardev: this.id,
      host: process?.env("HOSTNAME") || this.connection.info?.client_ip || "unknown",
      pid: process?.pid ?? null,
      stream: this.options.stream,
      output: outputSubject(this.options.console),
      input: this.options.input ? inputSubject(this.options.console) : null,
      started: this.#started,
      heartbeat: new Date().toISOString(),
      heartbeatSeconds: HEARTBEAT_MS / 1000,
      state,
      offset: now.offset,
      device: now.device,
      cols: now.size?.cols ?? null,
      rows: now.size?.rows ?? null,
    };
    await this.#bucket.put(this.options.console, JSON.stringify(card));
  }

  /** Writes the card now (the size changed), not waiting for the heartbeat; a failure is a warning. */
  refresh(): void {
    if (this.#timer) void this.#write("open").catch((error) => this.#warn(error));
  }

  /** Stops the heartbeat and marks the card closed (best effort: the server may be gone). */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#write("closed").catch(() => {});
    this.#bucket = null;
  }
}
