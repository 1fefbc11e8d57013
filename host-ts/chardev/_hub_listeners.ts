// The hub's listeners that serve many clients (`max-clients` > 1, a web page's tabs): the hub
// keeps a row for each listener (no bytes, never open) and takes each of its connections as a
// backend of its own with the listener's options, until it closes. This file keeps which
// connection came through which listener and from whom, and the rows `stats` shows for them;
// the hub (hub.ts) attaches and detaches the connections themselves.

import { ChardevError } from "../errors.ts";
import { quoteInput } from "../limits.ts";
import type { Chardev } from "./_chardev.ts";
import type { ClientInfo, ClientSource } from "./_client_source.ts";
import type { HubEvent } from "./_hub_events.ts";
import type { HubBackendOptions, HubPolicy } from "./_hub_options.ts";

/** Counters of one backend (API, `query-chardev`, QMP). */
export interface HubBackendStats {
  id: string;
  open: boolean;
  policy: HubPolicy;
  mode: "rw" | "ro";
  bytesIn: number;
  bytesOut: number;
  bytesDropped: number;
  inputDiscarded: number;
  /** Events other than OPENED/CLOSED (a BREAK) a read-only backend sent, dropped. */
  eventsDiscarded: number;
  /** Bytes written by the frontend that this backend has not taken yet. */
  lag: number;
  stalls: number;
  /** A listener's row (`max-clients` > 1): its connections now. It moves no bytes itself. */
  clients?: number;
  /** A connection's row: the listener it came through (its id is `LISTENER#N`). */
  listener?: string;
  /** A connection's row: who is on the other end (`unix:PATH`, `tcp:HOST:PORT`). */
  peer?: string;
  /** A connection's row: the peer's uid, where the kernel tells (TCP on this machine, Linux). */
  uid?: number;
  /** A connection's row: when it connected, ms since the epoch. */
  since?: number;
  /** A sink's own counters (`Chardev.sinkStats`: an `http` sink's requests, retries, ...). */
  sink?: Record<string, number | string>;
}

/** A listener (a ClientSource) of a hub: each of its connections is a backend of its own. */
interface ListenerRow {
  readonly chardev: Chardev & ClientSource;
  /** The per-backend options every connection gets. */
  readonly options: HubBackendOptions;
  readonly clients: Set<Chardev>;
  stopListening: () => void;
}

/** What the listeners' bookkeeping asks of the hub it serves. */
export interface HubListenersHost {
  readonly id: string;
  /** Throws as the output strategy would for a backend with `options` (a policy without a ring). */
  checkBackendOptions(id: string, options: HubBackendOptions): void;
  attachBackend(chardev: Chardev, options: HubBackendOptions): void;
  detachBackend(id: string): void;
  emit(event: HubEvent): void;
  warn(message: string): void;
  /** Notes that `row` came now, so `stats` lists it in attach order. */
  noteAttached(row: object): void;
  attachOrder(row: object): number;
}

/** A hub's listener rows, and the listener and peer of each connection while it is a backend. */
export class HubClientListeners {
  /** Listeners by id: rows of their own, their connections are entries. */
  readonly #rows = new Map<string, ListenerRow>();
  /** Each connection's listener and who it is, while it is a backend. */
  readonly #clientOf = new Map<Chardev, { listener: ListenerRow; info: ClientInfo }>();

  constructor(private readonly hub: HubListenersHost) {}

  /**
   * Takes a listener: a row for it, and each connection as a backend with `options`. The
   * strategy checks those options now, before any client comes.
   */
  attach(chardev: Chardev & ClientSource, options: HubBackendOptions): void {
    if (this.#rows.has(chardev.id)) throw new ChardevError("IN_USE", `chardev '${chardev.id}' is already in use`);
    this.hub.checkBackendOptions(chardev.id, options);
    const row: ListenerRow = { chardev, options, clients: new Set(), stopListening: () => {} };
    // In place before `onClient`, which hands out at once the clients that came first.
    this.#rows.set(chardev.id, row);
    this.hub.noteAttached(row);
    try {
      row.stopListening = chardev.onClient((client, info) => this.#attachClient(row, client, info));
    } catch (error) {
      this.#rows.delete(chardev.id); // another hub takes its clients already
      throw error;
    }
    this.hub.emit({ type: "attach", backend: chardev.id });
  }

  /** One connection of a listener becomes a backend; one the hub cannot take (QEMU's 4) is closed, with a line why. */
  #attachClient(row: ListenerRow, client: Chardev, info: ClientInfo): void {
    if (this.#rows.get(row.chardev.id) !== row) return void client.destroy();
    this.#clientOf.set(client, { listener: row, info });
    row.clients.add(client);
    try {
      // A client may only narrow what the listener allows (a view-only tab is `ro`), never widen it.
      this.hub.attachBackend(client, info.mode === "ro" ? { ...row.options, mode: "ro" } : row.options);
    } catch (error) {
      this.#clientOf.delete(client);
      row.clients.delete(client);
      const why = error instanceof Error ? error.message : String(error);
      this.hub.warn(`hub: '${this.hub.id}' refused client '${client.id}' of '${row.chardev.id}': ${quoteInput(why)}`);
      void client.destroy();
    }
  }

  /** A connection left (CLOSED) or was detached: the hub forgets it and closes it; it belongs to no registry. */
  forgetClient(client: Chardev): void {
    const known = this.#clientOf.get(client);
    if (!known) return;
    this.#clientOf.delete(client);
    known.listener.clients.delete(client);
    // After this turn: an evicted client is told why first (`evicted` follows the detach).
    queueMicrotask(() => void client.destroy());
  }

  /** Detaches listener `id` with its connections (closing them); false when `id` is no listener. */
  detach(id: string): boolean {
    const row = this.#rows.get(id);
    if (!row) return false;
    row.stopListening();
    for (const client of [...row.clients]) this.hub.detachBackend(client.id);
    this.#rows.delete(row.chardev.id);
    this.hub.emit({ type: "detach", backend: row.chardev.id });
    return true;
  }

  /** Whether `chardev` is a connection of one of the hub's listeners. */
  isClient(chardev: Chardev): boolean {
    return this.#clientOf.has(chardev);
  }

  /** The id of the listener `chardev` came through, if it is a connection. */
  listenerOf(chardev: Chardev): string | undefined {
    return this.#clientOf.get(chardev)?.listener.chardev.id;
  }

  /** Fills in a connection's row: its listener and who is on the other end. */
  describeClient(chardev: Chardev, row: HubBackendStats): void {
    const client = this.#clientOf.get(chardev);
    if (!client) return;
    row.listener = client.listener.chardev.id;
    row.peer = client.info.peer;
    if (client.info.uid !== undefined) row.uid = client.info.uid;
    row.since = client.info.since;
  }

  /** The listeners' own rows, each with its attach order. */
  rows(): [number, HubBackendStats][] {
    return [...this.#rows.values()].map((listener) => [this.hub.attachOrder(listener), {
      id: listener.chardev.id,
      open: false,
      policy: listener.options.policy ?? "block",
      mode: listener.options.mode ?? "rw",
      bytesIn: 0,
      bytesOut: 0,
      bytesDropped: 0,
      inputDiscarded: 0,
      eventsDiscarded: 0,
      lag: 0,
      stalls: 0,
      clients: listener.clients.size,
    }]);
  }

  /** The hub goes: listeners stop, and connections (which belong to no registry) go with it. */
  destroy(): void {
    for (const listener of this.#rows.values()) listener.stopListening();
    this.#rows.clear();
    for (const client of this.#clientOf.keys()) void client.destroy();
    this.#clientOf.clear();
  }
}
