// The `socket` chardev's options: its `-chardev` keys and QAPI's ChardevSocket, checked into
// one SocketOptions. QEMU's own rules (qmp_chardev_validate_socket) and texts; the keys that
// make QMP's `addr` (`path`, `host`, `port`, `fd`) are a hook of their own, as the defaults of
// `-chardev` and QMP differ.

import { ChardevError } from "../errors.ts";
import { parseBool, parseSize } from "../options.ts";
import type { OptionSchema } from "../option_schema.ts";
import { checkMilliseconds, checkRange, checkSize, checkUnixPath, MAX_CLIENT_BUFFER_BYTES, MAX_CLIENTS, MAX_TIMER_MS, MAX_TIMER_S, MIN_CLIENTS, quoteInput } from "../limits.ts";
import type { InheritedSocket, NetAddress } from "../runtime/types.ts";
import type { BackendData } from "./_chardev.ts";
import { DEFAULT_PEER_ACCESS, parsePeerAccess, type PeerAccess } from "./_peer_access.ts";

/**
 * Bytes of output a socket chardev holds for a slow peer before writes answer EAGAIN (the
 * kernel's socket buffers come on top). Our option `high-water-mark`; QEMU has none, as it
 * never holds output in user space.
 */
export const DEFAULT_HIGH_WATER_MARK = 64 * 1024;

/**
 * A server with no host binds the loopback address. QEMU would bind every interface, which
 * puts an unauthenticated console on the network; `host=0.0.0.0` still asks for that.
 */
/** `host=*`: every interface, IPv6 and (dual-stack) IPv4, as QEMU listens for it. */
const EVERY_INTERFACE = "::";

export const DEFAULT_HOST = "127.0.0.1";
/** A socket chardev's settings, checked. */
export interface SocketOptions {
  /** Where to listen or connect, or a socket already open (`fd=`, systemd socket activation). */
  readonly address: NetAddress | InheritedSocket;
  /** Listen (true) or connect (false). */
  readonly server: boolean;
  /** A server's `open` waits for the first client. */
  readonly wait: boolean;
  /** A client retries a failed or lost connection after this many ms; 0 never. */
  readonly reconnectMs: number;
  /** TCP_NODELAY on each connection. */
  readonly nodelay: boolean;
  /** @default DEFAULT_HIGH_WATER_MARK */
  readonly highWaterMark: number;
  /**
   * Who a TCP server serves: `user`, only connections whose socket our uid owns when they
   * come from this machine; `any`, everyone (QEMU's behaviour). Not used by UNIX sockets (0600).
   * @default "user"
   */
  readonly access: PeerAccess;
  /** The `tls-creds` object's id when the connection is TLS; absent for plain TCP. */
  readonly tlsCreds?: string;
  /**
   * Telnet (`telnet=on`): a server negotiates on each connect and takes telnet commands out of
   * the input (IAC BREAK becomes a BREAK). As in QEMU, a client only names itself `telnet:`.
   * @default false
   */
  readonly telnet: boolean;
  /** TN3270 (`tn3270=on`): as `telnet`, with RFC 1576's negotiation and the record marks kept. @default false */
  readonly tn3270: boolean;
  /** WebSocket (`websocket=on`, servers only): an HTTP upgrade, then binary frames. @default false */
  readonly websocket: boolean;
  /**
   * Connections a server serves at once (`max-clients=N`). 1 is QEMU's rule: one client, later
   * ones wait their turn. More makes each connection a backend of its own of the hub the socket
   * is attached to (servers only; see docs/socket.md).
   * @default 1
   */
  readonly maxClients: number;
}

/** QEMU `-chardev socket` keys we do not implement (yet); refused rather than ignored. */
const UNSUPPORTED_KEYS = ["to", "ipv4", "ipv6", "tls-authz", "abstract"];
/** Of those, the booleans: `=off` asks for nothing, so it passes. */
const UNSUPPORTED_SWITCHES = new Set(["ipv4", "ipv6", "abstract"]);

/** A QemuOpts number (no size suffix). */
function parseNumber(key: string, value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new ChardevError("INVALID_VALUE", `Parameter '${key}' expects a number`);
  }
  return Number(value);
}

export function socketDataFromOptions(options: Map<string, string>): BackendData {
  const path = options.get("path");
  const host = options.get("host");
  const port = options.get("port");
  const given = [path, options.get("fd"), host].filter((value) => value !== undefined).length;
  if (given > 1) throw new ChardevError("INVALID_PARAMETER", "None or one of 'path', 'fd' or 'host' option required.");
  for (const key of UNSUPPORTED_KEYS) {
    const value = options.get(key);
    if (value === undefined || (UNSUPPORTED_SWITCHES.has(key) && !parseBool(key, value))) continue;
    throw new ChardevError("UNSUPPORTED", `socket: option '${key}' is not supported`);
  }
  let addr: BackendData;
  const fd = options.get("fd");
  if (path !== undefined) {
    addr = { type: "unix", data: { path } };
  } else if (fd !== undefined && host === undefined) {
    addr = { type: "fd", data: { str: fd } };
  } else if (port !== undefined) {
    // `host` may be empty or absent: the loopback address then (see DEFAULT_HOST).
    addr = { type: "inet", data: { host: host ?? "", port } };
  } else if (host !== undefined) {
    throw new ChardevError("MISSING_PARAMETER", "chardev: socket: no port given");
  } else {
    throw new ChardevError("MISSING_PARAMETER", "chardev: socket: no address given: 'path', or 'host' and 'port'");
  }

  const data: BackendData = { addr };
  // QEMU's `-chardev` defaults differ from QAPI's (server off, and wait on for a server), so
  // both are always spelled out.
  data.server = parseBool("server", options.get("server") ?? "off");
  if (options.has("wait")) data.wait = parseBool("wait", options.get("wait")!);
  else if (data.server) data.wait = true;
  if (options.has("delay") && options.has("nodelay")) {
    throw new ChardevError("INVALID_PARAMETER", "'delay' and 'nodelay' are mutually exclusive");
  }
  if (options.has("delay")) data.nodelay = !parseBool("delay", options.get("delay")!);
  if (options.has("nodelay")) data.nodelay = parseBool("nodelay", options.get("nodelay")!);
  if (options.has("reconnect")) data.reconnect = parseNumber("reconnect", options.get("reconnect")!);
  if (options.has("reconnect-ms")) data["reconnect-ms"] = parseNumber("reconnect-ms", options.get("reconnect-ms")!);
  if (options.has("high-water-mark")) data["high-water-mark"] = parseSize("high-water-mark", options.get("high-water-mark")!);
  if (options.has("access")) data.access = parsePeerAccess("socket", options.get("access")!);
  if (options.has("tls-creds")) data["tls-creds"] = options.get("tls-creds");
  if (options.has("max-clients")) data["max-clients"] = parseNumber("max-clients", options.get("max-clients")!);
  for (const key of ["telnet", "tn3270", "websocket"]) {
    if (options.has(key)) data[key] = parseBool(key, options.get(key)!);
  }
  return data;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** QAPI's checks of one nested struct: known members only, each of its type, required ones present. */
function checkStruct(value: unknown, where: string, members: Record<string, "string" | "object">, required: string[]): Record<string, unknown> {
  if (!isObject(value)) throw new ChardevError("INVALID_VALUE", `Invalid parameter type for '${where}', expected: object`);
  for (const [key, member] of Object.entries(value)) {
    const expected = members[key];
    if (!expected) throw new ChardevError("INVALID_PARAMETER", `Parameter '${where}.${quoteInput(key)}' is unexpected`);
    if (expected === "object" ? !isObject(member) : typeof member !== expected) {
      throw new ChardevError("INVALID_VALUE", `Invalid parameter type for '${where}.${key}', expected: ${expected}`);
    }
  }
  for (const key of required) {
    if (value[key] === undefined) throw new ChardevError("MISSING_PARAMETER", `Parameter '${where}.${key}' is missing`);
  }
  return value;
}

/** QAPI SocketAddressLegacy (`{type: "inet"|"unix", data}`) to our address. */
function addressFromQapi(addr: unknown): NetAddress | InheritedSocket {
  const where = "backend.data.addr";
  const union = checkStruct(addr, where, { type: "string", data: "object" }, ["type"]) as { type: string; data?: unknown };
  if (union.type === "unix") {
    const { path } = checkStruct(union.data, `${where}.data`, { path: "string" }, ["path"]) as { path: string };
    if (path === "") throw new ChardevError("INVALID_VALUE", "socket: empty UNIX socket path");
    // QEMU's text; without it the kernel would cut the path and bind or reach another file.
    return { transport: "unix", path: checkUnixPath(path) };
  }
  if (union.type === "inet") {
    const inet = checkStruct(union.data, `${where}.data`, { host: "string", port: "string" }, ["port"]) as { host?: string; port: string };
    const port = Number(inet.port);
    if (!/^\d+$/.test(inet.port) || port > 65535) {
      throw new ChardevError("INVALID_VALUE", `socket: port '${quoteInput(inet.port)}' is not a number from 0 to 65535`);
    }
    // No host: the loopback address, for a server (see DEFAULT_HOST) and a client alike. `*` is
    // what glibc's getaddrinfo reads as every interface, as QEMU gets it: `::`, which takes IPv4 too.
    return { transport: "tcp", host: inet.host === "*" ? EVERY_INTERFACE : inet.host || DEFAULT_HOST, port };
  }
  if (union.type === "fd") {
    const { str } = checkStruct(union.data, `${where}.data`, { str: "string" }, ["str"]) as { str: string };
    // QEMU's socket_get_fd outside a monitor: a number (we have no getfd names).
    if (!/^\d+$/.test(str) || !Number.isSafeInteger(Number(str))) throw new ChardevError("INVALID_VALUE", `Unable to parse FD number ${quoteInput(str)}`);
    return { transport: "fd", fd: Number(str) };
  }
  if (union.type === "vsock") {
    throw new ChardevError("UNSUPPORTED", `socket: address type '${union.type}' is not supported`);
  }
  throw new ChardevError("INVALID_VALUE", `Parameter '${where}.type' does not accept value '${quoteInput(union.type)}'`);
}

/**
 * QEMU's qmp_chardev_validate_socket and QAPI's defaults (server on, wait off): checked
 * settings from QAPI ChardevSocket `data`. Throws ChardevError with QEMU's texts.
 *
 * @example QAPI defaults
 * ```ts
 * socketOptionsFromData({ addr: { type: "unix", data: { path: "/tmp/vm.sock" } } });
 * // { address: { transport: "unix", path: "/tmp/vm.sock" }, server: true, wait: false, reconnectMs: 0, nodelay: false, highWaterMark: 65536, access: "user", telnet: false, tn3270: false, websocket: false, maxClients: 1 }
 * ```
 */
export function socketOptionsFromData(data: BackendData): SocketOptions {
  if (data.addr === undefined) throw new ChardevError("MISSING_PARAMETER", "Parameter 'backend.data.addr' is missing");
  const server = (data.server as boolean | undefined) ?? true;
  if (server && data.reconnect !== undefined) {
    throw new ChardevError("INVALID_PARAMETER", "'reconnect' option is incompatible with socket in server listen mode");
  }
  if (!server && data.websocket === true) {
    throw new ChardevError("UNSUPPORTED", "Websocket client is not implemented");
  }
  if (!server && data.wait !== undefined) {
    throw new ChardevError("INVALID_PARAMETER", "'wait' option is incompatible with socket in client connect mode");
  }
  if (data.reconnect !== undefined && data["reconnect-ms"] !== undefined) {
    throw new ChardevError("INVALID_PARAMETER", "'reconnect' and 'reconnect-ms' are mutually exclusive");
  }
  // A timer fires at once past 2^31-1 ms (limits.ts): `reconnect` (seconds) has the same bound.
  if (data.reconnect !== undefined) checkRange("socket", "reconnect", data.reconnect as number, 0, MAX_TIMER_S, "s");
  const reconnectMs = data.reconnect !== undefined ? (data.reconnect as number) * 1000 : ((data["reconnect-ms"] as number | undefined) ?? 0);
  if (reconnectMs < 0) throw new ChardevError("INVALID_VALUE", "socket: 'reconnect-ms' must not be negative");
  checkMilliseconds("socket", "reconnect-ms", reconnectMs);
  const highWaterMark = (data["high-water-mark"] as number | undefined) ?? DEFAULT_HIGH_WATER_MARK;
  if (highWaterMark < 1) throw new ChardevError("INVALID_VALUE", "socket: 'high-water-mark' must be at least 1");
  checkSize("socket", "high-water-mark", highWaterMark, MAX_CLIENT_BUFFER_BYTES, 1);
  const address = addressFromQapi(data.addr);
  const tlsCreds = data["tls-creds"] as string | undefined;
  // QEMU speaks TLS over TCP only (qmp_chardev_validate_socket).
  if (tlsCreds !== undefined && address.transport === "fd" && !server) {
    throw new ChardevError("INVALID_PARAMETER", "'tls_creds' option is incompatible with 'fd' address type as client");
  }
  if (tlsCreds !== undefined && address.transport === "unix") {
    throw new ChardevError("INVALID_PARAMETER", "'tls_creds' option is incompatible with 'unix' address type");
  }
  const maxClients = (data["max-clients"] as number | undefined) ?? 1;
  checkRange("socket", "max-clients", maxClients, MIN_CLIENTS, MAX_CLIENTS);
  // A client has one connection; many at once means listening for them.
  if (!server && maxClients > 1) throw new ChardevError("INVALID_PARAMETER", "socket: 'max-clients' needs server=on: a client has one connection");
  return {
    address,
    server,
    wait: server && ((data.wait as boolean | undefined) ?? false),
    // QEMU only reconnects clients; on a server the setting is ignored.
    reconnectMs: server ? 0 : reconnectMs,
    nodelay: (data.nodelay as boolean | undefined) ?? false,
    highWaterMark,
    access: data.access === undefined ? DEFAULT_PEER_ACCESS : parsePeerAccess("socket", data.access as string),
    ...(tlsCreds === undefined ? {} : { tlsCreds }),
    telnet: (data.telnet as boolean | undefined) ?? false,
    tn3270: (data.tn3270 as boolean | undefined) ?? false,
    websocket: (data.websocket as boolean | undefined) ?? false,
    maxClients,
  };
}

/**
 * `socket`'s options (QEMU's ChardevSocket, plus `high-water-mark` and `access`). `path`,
 * `host` and `port` make QMP's `addr` (socketDataFromOptions), so they have no member of their own.
 */
export const socketOptions: OptionSchema = [
  { key: "path", member: null, via: "addr", type: "string", help: "a UNIX socket (created 0600; a path something answers on is refused, a stale one replaced; at most 107 bytes)" },
  { key: "host", member: null, via: "addr", type: "string", default: "127.0.0.1", help: "TCP: the address (a server binds the loopback address unless told otherwise)" },
  { key: "port", member: null, via: "addr", type: "string", help: "TCP: the port" },
  { member: "addr", type: "object", required: true, help: "QMP's SocketAddressLegacy: `{type: \"unix\", data: {path}}` or `{type: \"inet\", data: {host, port}}`" },
  { key: "server", type: "bool", default: "off (QMP: on)", help: "listen instead of connecting" },
  { key: "wait", type: "bool", default: "on for a server (QMP: off)", help: "a server's add waits for the first client" },
  { key: "delay", member: null, via: "nodelay", type: "bool", default: "on", help: "the opposite of `nodelay`" },
  { key: "nodelay", type: "bool", default: "off", help: "TCP_NODELAY" },
  { key: "reconnect", type: "integer", unit: "s", min: 0, max: MAX_TIMER_S, help: "a client reconnects after this many seconds" },
  { key: "reconnect-ms", type: "integer", unit: "ms", min: 0, max: MAX_TIMER_MS, help: "a client reconnects after this many ms (0: never)" },
  { key: "high-water-mark", type: "size", default: "64K", min: 1, max: MAX_CLIENT_BUFFER_BYTES, help: "output held for a slow client before writes answer EAGAIN" },
  { key: "access", type: "string", values: ["user", "any"], default: "user", help: "a TCP server serves only connections our own uid made on this machine (Linux), or anyone" },
  { key: "tls-creds", type: "string", help: "TLS over TCP with the tls-creds-x509 object of that id" },
  { key: "telnet", type: "bool", default: "off", help: "a server speaks telnet: QEMU's negotiation on connect, commands taken out of the input, IAC BREAK a BREAK" },
  { key: "tn3270", type: "bool", default: "off", help: "a server speaks TN3270 (RFC 1576's negotiation; record marks kept in the input)" },
  { key: "websocket", type: "bool", default: "off", help: "a server takes a WebSocket upgrade (subprotocol `binary`), then binary frames both ways" },
  { key: "max-clients", type: "integer", default: "1", min: MIN_CLIENTS, max: MAX_CLIENTS, help: "a server serves this many connections at once, each a backend of its own of the socket's hub, with the socket's policy, lag-limit, stall-ms, replay and mode; the next is told it is full and closed. 1: QEMU's rule (later clients wait)" },
];
