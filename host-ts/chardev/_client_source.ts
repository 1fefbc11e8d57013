// A listener that serves many clients at once (`max-clients=N` on `socket` and `web`): each
// connection is a chardev of its own, and the hub the listener is a backend of takes each one
// as a backend with the listener's per-backend options (policy, lag-limit, stall-ms, replay,
// mode). The listener itself moves no bytes; it announces clients.

import type { Chardev } from "./_chardev.ts";
import type { HubReplay } from "./_hub_screen_contract.ts";

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
  /**
   * What each client is replayed when it opens if the hub's keys for the listener (`replay.N`)
   * say nothing: the listener's own `replay=` (web's), so a new tab can start with the screen.
   */
  readonly defaultReplay?: HubReplay;
  /**
   * True for a listener that can also fan out to its clients itself, each with a bounded queue
   * it drops a client at (web). QEMU's unbuffered hub (no ring) has only `block`: there one
   * client that stops reading would stop the console for all, so such a hub takes the listener
   * as one plain backend instead. Without this, every hub takes the clients apart.
   */
  readonly fansOutItself?: boolean;
}

/** True for a chardev that serves many clients, each as a chardev of its own. */
export function isClientSource(chardev: Chardev): chardev is Chardev & ClientSource {
  return typeof (chardev as Partial<ClientSource>).onClient === "function" && ((chardev as Partial<ClientSource>).maxClients ?? 1) > 1;
}
