// Who may use a TCP listener of ours (`access=`): by default only our own user. Another local
// account must not type into a console shared on 127.0.0.1, which every local user can reach.
// Used by every chardev that listens on TCP (socket, web; QMP rides on a socket chardev).

import { ChardevError } from "../errors.ts";
import { isLoopbackAddress } from "../runtime/_ip_address.ts";
import type { HostRuntime, TcpEndpoint } from "../runtime/types.ts";

/**
 * `user`: a connection made on this machine is served only when its socket belongs to our
 * uid. `any`: everyone who can reach the address is served (QEMU's behaviour).
 */
export type PeerAccess = "user" | "any";

/** @default "user" */
export const DEFAULT_PEER_ACCESS: PeerAccess = "user";

/**
 * The `access` option, checked.
 *
 * @example The two values, and a typo
 * ```ts
 * parsePeerAccess("socket", "any"); // "any"
 * parsePeerAccess("socket", "all"); // throws ChardevError INVALID_VALUE "socket: 'access' must be 'user' or 'any', not 'all'"
 * ```
 */
export function parsePeerAccess(subsystem: string, value: string): PeerAccess {
  if (value === "user" || value === "any") return value;
  const shown = value.length > 32 ? `${value.slice(0, 32)}...` : value;
  throw new ChardevError("INVALID_VALUE", `${subsystem}: 'access' must be 'user' or 'any', not '${shown}'`);
}

/** `host:port`, with IPv6 hosts in brackets. */
function describeEndpoint(endpoint: TcpEndpoint): string {
  return endpoint.host.includes(":") ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

/**
 * Why a freshly accepted TCP connection to the listener `listenerId` must be closed unread,
 * as the line to print on stderr; null to serve it. With `access=user`:
 * - a peer socket found on this machine (in the runtime's socket tables) is served only when
 *   our uid owns it, whatever address it came from (a local user reaching our LAN address is
 *   still a local user);
 * - a loopback peer that cannot be found is refused: only this machine can be behind it, and
 *   an owner we cannot name is not known to be us;
 * - a peer from another address that cannot be found is another host: served (binding to a
 *   network address without TLS is warned about when listening).
 * Where the runtime cannot tell owners (`runtime.peers` absent: not Linux, edge) everyone is
 * served, as before.
 *
 * @example The check a listener makes before serving a connection
 * ```ts
 * import type { HostRuntime, NetConnection } from "../runtime/types.ts";
 * declare const runtime: HostRuntime; // the running Node's, Deno's or Bun's
 * declare const connection: NetConnection; // just accepted
 * const refusal = loopbackPeerRefusal(runtime, "socket", "c1", "user", connection.local, connection.remote);
 * if (refusal) { connection.close(); console.warn(refusal); }
 * // "socket: c1: refused a connection from 127.0.0.1:51234: uid 1001 is not ours (uid 0); access=any allows it"
 * ```
 */
export function loopbackPeerRefusal(
  runtime: HostRuntime,
  subsystem: string,
  listenerId: string,
  access: PeerAccess,
  local: TcpEndpoint | null,
  remote: TcpEndpoint | null,
): string | null {
  const peers = runtime.peers;
  if (access === "any" || !peers || !local || !remote) return null;
  const uid = peers.tcpPeerUid(local, remote);
  if (uid === peers.ownUid) return null;
  if (uid === null && !isLoopbackAddress(remote.host)) return null;
  const who = uid === null ? "an unknown user" : `uid ${uid}`;
  return `${subsystem}: ${listenerId}: refused a connection from ${describeEndpoint(remote)}: ${who} is not ours (uid ${peers.ownUid}); access=any allows it`;
}

/**
 * The warning for a TCP listener bound to an address others can reach, without TLS; null for
 * a loopback address (or a UNIX socket, or with TLS).
 *
 * @example A plain TCP server on every interface
 * ```ts
 * plainNetworkListenerWarning("socket", "c1", { host: "0.0.0.0", port: 4444 }, false);
 * // "socket: c1: listening on 0.0.0.0:4444 without TLS: anyone on the network can type into this console"
 * ```
 */
export function plainNetworkListenerWarning(subsystem: string, listenerId: string, bound: TcpEndpoint, tls: boolean): string | null {
  if (tls || isLoopbackAddress(bound.host)) return null;
  return `${subsystem}: ${listenerId}: listening on ${describeEndpoint(bound)} without TLS: anyone on the network can type into this console`;
}
