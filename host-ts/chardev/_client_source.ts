// A listener that serves many clients at once (`max-clients=N` on `socket` and `web`): each
// connection is a chardev of its own, and the hub the listener is a backend of takes each one
// as a backend with the listener's per-backend options (policy, lag-limit, stall-ms, replay,
// mode). The listener itself moves no bytes; it announces clients.

import type { Chardev } from "./_chardev.ts";

/** Who is on the other end of one connection (query-hub, `chardev-hub who`). */
export interface ClientInfo {
  /** `unix:PATH`, `tcp:HOST:PORT` or the web peer's address, as the listener sees it. */
  readonly peer: string;
  /** The peer's uid where the kernel tells us (UNIX sockets, loopback TCP on Linux). */
  readonly uid?: number;
  /** When it connected (ms since the epoch). */
  readonly since: number;
  /**
   * `ro`: this client may only watch (a view-only browser tab): the hub attaches it with
   * `mode: "ro"` whatever the listener's mode. Absent: the listener's mode applies. A client
   * can only narrow what the listener allows, never widen it.
   */
  readonly mode?: "ro";
}

/** A chardev that hands out one chardev per connection. */
export interface ClientSource {
  /** How many connections it serves at once. */
  readonly maxClients: number;
  /**
   * Calls `listener` with each new connection's chardev (not yet attached to anyone) and who it
   * is. The chardev reports CLOSED when its connection ends, and is then of no further use.
   * Returns the function that stops the calls.
   */
  onClient(listener: (client: Chardev, info: ClientInfo) => void): () => void;
}

/** True for a chardev that serves many clients, each as a chardev of its own. */
export function isClientSource(chardev: Chardev): chardev is Chardev & ClientSource {
  return typeof (chardev as Partial<ClientSource>).onClient === "function" && ((chardev as Partial<ClientSource>).maxClients ?? 1) > 1;
}
