// Who is at the other end of a TCP connection on this machine, from Linux's socket tables
// (/proc/net/tcp, /proc/net/tcp6) read with node:fs; Deno and Bun read them through their
// node:fs too. The peer's own socket is the row whose local address is our connection's
// remote end and whose remote address is our local end; its `uid` column is the owner of the
// socket's inode. (The owners of /proc/self/fd entries would only tell who we are.)

import * as fs from "node:fs";
import * as os from "node:os";
import process from "node:process";
import { ipAddressBytes } from "./_ip_address.ts";
import type { PeerIdentity, TcpEndpoint } from "./types.ts";

/** The kernel prints each 32-bit word of an address in host byte order (`%08X`). */
const HOST_IS_LITTLE_ENDIAN = os.endianness() === "LE";

/** Column of the owner's uid and of the socket's inode in a /proc/net/tcp row. */
const UID_COLUMN = 7;
const INODE_COLUMN = 9;

/** How /proc/net/tcp{,6} spells `bytes` (4 or 16): each 4-byte word as a host-order %08X. */
function procAddressHex(bytes: Uint8Array): string {
  let hex = "";
  for (let word = 0; word < bytes.length; word += 4) {
    const order = HOST_IS_LITTLE_ENDIAN ? [3, 2, 1, 0] : [0, 1, 2, 3];
    for (const i of order) hex += bytes[word + i].toString(16).padStart(2, "0");
  }
  return hex.toUpperCase();
}

/** `ADDR:PORT` as a row of one table shows an endpoint (the port in network order, %04X). */
function procEndpoint(bytes: Uint8Array, port: number): string {
  return `${procAddressHex(bytes)}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** `bytes` (4) as the IPv4-mapped IPv6 address `::ffff:a.b.c.d` an AF_INET6 socket shows. */
function mappedIPv6(bytes: Uint8Array): Uint8Array {
  const mapped = new Uint8Array(16);
  mapped[10] = mapped[11] = 0xff;
  mapped.set(bytes, 12);
  return mapped;
}

/** The table's text, or "" when it cannot be read (no IPv6, not Linux). */
function readTable(path: string): string {
  try {
    return fs.readFileSync(path, "latin1");
  } catch {
    return "";
  }
}

/**
 * The uid column of the row `local remote` in `table`; null when no row matches, or when the
 * matching socket has no inode (orphaned after its owner closed it, or in TIME_WAIT): then the
 * kernel reports uid 0 for it, which says nothing about who made it.
 */
function uidOfRow(table: string, local: string, remote: string): number | null {
  const at = table.indexOf(` ${local} ${remote} `);
  if (at < 0) return null;
  const lineStart = table.lastIndexOf("\n", at) + 1;
  const lineEnd = table.indexOf("\n", at);
  const columns = table.slice(lineStart, lineEnd < 0 ? undefined : lineEnd).trim().split(/\s+/);
  const uid = Number(columns[UID_COLUMN]);
  if (!Number.isSafeInteger(uid) || columns[INODE_COLUMN] === "0" || columns[INODE_COLUMN] === undefined) return null;
  return uid;
}

function lookUpPeerUid(local: TcpEndpoint, remote: TcpEndpoint): number | null {
  const ours = ipAddressBytes(local.host);
  const theirs = ipAddressBytes(remote.host);
  if (!ours || !theirs || ours.length !== theirs.length) return null;
  if (ours.length === 16) {
    return uidOfRow(readTable("/proc/net/tcp6"), procEndpoint(theirs, remote.port), procEndpoint(ours, local.port));
  }
  // An IPv4 connection: the peer's socket is AF_INET (tcp) or AF_INET6 connected to a mapped
  // address (tcp6), whichever way our side sees it.
  return (
    uidOfRow(readTable("/proc/net/tcp"), procEndpoint(theirs, remote.port), procEndpoint(ours, local.port)) ??
    uidOfRow(readTable("/proc/net/tcp6"), procEndpoint(mappedIPv6(theirs), remote.port), procEndpoint(mappedIPv6(ours), local.port))
  );
}

/**
 * The kernel writes the tables a page at a time while sockets come and go, so a row can slip
 * between two pages of one read; a second read finds it. Refusing our own user for that would
 * be a bug nobody could reproduce.
 */
function tcpPeerUid(local: TcpEndpoint, remote: TcpEndpoint): number | null {
  return lookUpPeerUid(local, remote) ?? lookUpPeerUid(local, remote);
}

/**
 * The peer lookup on Linux; undefined elsewhere (no /proc/net/tcp, or no uids).
 *
 * @example Who connected to a listener of ours
 * ```ts
 * import type { NetConnection } from "./types.ts";
 * declare const connection: NetConnection; // accepted from 127.0.0.1:51234 on 127.0.0.1:4444
 * const uid = nodePeers?.tcpPeerUid({ host: "127.0.0.1", port: 4444 }, { host: "127.0.0.1", port: 51234 });
 * if (uid !== nodePeers?.ownUid) connection.close();
 * ```
 */
export const nodePeers: PeerIdentity | undefined =
  process.platform === "linux" && typeof process.getuid === "function" ? { ownUid: process.getuid(), tcpPeerUid } : undefined;
