// `socket`: a TCP or UNIX stream socket, as a server or a client (QEMU's char-socket). OPENED
// when a peer connects, CLOSED when it leaves. A server serves one client at a time; later
// clients wait their turn. A client may reconnect every `reconnect-ms`. Output is bounded by a
// high-water mark, so a peer that stops reading makes writes answer EAGAIN instead of growing
// memory.

import { ChardevError } from "../errors.ts";
import { ERRNO, strerror } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import { parseBool, parseSize, registerOptionKeys } from "../options.ts";
import { optionKeys, qapiFields, type OptionSchema } from "../option_schema.ts";
import { checkMilliseconds, checkRange, checkSize, checkUnixPath, MAX_CLIENT_BUFFER_BYTES, MAX_TIMER_MS, MAX_TIMER_S, quoteInput } from "../limits.ts";
import type { HostNet, InheritedSocket, NetAddress, NetConnection, NetListener } from "../runtime/types.ts";
import { tlsCredsFor, type TlsCredsX509 } from "../tls_creds.ts";
import { Chardev, type BackendData, type ChardevContext, type ChardevDriver } from "./_chardev.ts";
import { binaryFrame, upgradeResponse, UpgradeRequestReader, WebSocketFrameDecoder } from "./_socket_websocket.ts";
import { TELNET_BREAK, TELNET_NEGOTIATION, TelnetInputParser, TN3270_NEGOTIATION } from "./_telnet.ts";
import { DEFAULT_PEER_ACCESS, loopbackPeerRefusal, parsePeerAccess, plainNetworkListenerWarning, type PeerAccess } from "./_peer_access.ts";

/**
 * Bytes of output a socket chardev holds for a slow peer before writes answer EAGAIN (the
 * kernel's socket buffers come on top). Our option `high-water-mark`; QEMU has none, as it
 * never holds output in user space.
 */
export const DEFAULT_HIGH_WATER_MARK = 64 * 1024;

/**
 * Clients a busy server keeps waiting, unread, until it is free. QEMU leaves them in the
 * kernel's listen backlog; node accepts eagerly, so we hold them instead, and close those
 * beyond this many, as a full backlog would turn them away.
 */
export const MAX_WAITING_CLIENTS = 8;

/**
 * A server with no host binds the loopback address. QEMU would bind every interface, which
 * puts an unauthenticated console on the network; `host=0.0.0.0` still asks for that.
 */
const DEFAULT_HOST = "127.0.0.1";
/**
 * How often a UNIX server looks for its socket file. A file deleted under a listener (a tmp
 * cleaner, a careless `rm`) leaves it serving no one who can find it; there is no portable way
 * to be told (inotify is Linux only, and not in every runtime), and one lstat a second is cheap.
 */
const SOCKET_FILE_CHECK_MS = 1000;


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
}

/** A server's give-up time for a refused upgrade's answer to leave before it closes anyway. */
const REFUSAL_FLUSH_MS = 1000;

/** `tcp:HOST:PORT` or `unix:PATH`, as QEMU names an address in `filename`. */
function describeAddress(address: NetAddress | InheritedSocket): string {
  if (address.transport === "fd") return `fd:${address.fd}`;
  return address.transport === "unix" ? `unix:${address.path}` : `tcp:${address.host}:${address.port}`;
}

/** Texts for the net errors errno.ts does not name. */
const NET_REASONS: Record<string, string> = {
  EADDRNOTAVAIL: "Cannot assign requested address",
  ENAMETOOLONG: "File name too long",
  ENOTFOUND: "Name or service not known",
  EAI_AGAIN: "Temporary failure in name resolution",
  EHOSTUNREACH: "No route to host",
  ENETUNREACH: "Network is unreachable",
  ETIMEDOUT: "Connection timed out",
  ENOTSOCK: "Socket operation on non-socket",
};

function reason(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && NET_REASONS[code] ? NET_REASONS[code] : strerror(error);
}

/**
 * A socket chardev. Made by the registry from `-chardev socket,...` or QMP `chardev-add`.
 *
 * @example A UNIX server that a hub shares with a ringbuf
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * await reg.add("socket,id=s0,path=/run/user/1000/console.sock,server=on,wait=off");
 * await reg.add("ringbuf,id=log,size=4096");
 * await reg.add("hub,id=hub0,chardevs.0=s0,chardevs.1=log");
 * reg.query().find((c) => c.label === "s0")?.filename; // "disconnected:unix:/run/user/1000/console.sock,server=on"
 * ```
 */
export class SocketChardev extends Chardev {
  readonly kind = "socket";
  #listener: NetListener | null = null;
  #connection: NetConnection | null = null;
  /** Accepted clients waiting for the current one to leave, oldest first. */
  readonly #waiting: NetConnection[] = [];
  /** Watch callbacks waiting for the connection's queue to drain. */
  readonly #watches = new Set<() => void>();
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  #destroyed = false;
  /** Resolves a `wait=on` open once the first client is served. */
  #firstClientServed: (() => void) | null = null;
  #refusedConnections = 0;
  /** A UNIX server's check that its socket file is still there. */
  #socketFileCheck: ReturnType<typeof setInterval> | null = null;
  #relistening = false;
  /**
   * The connection has finished its handshakes (WebSocket upgrade, telnet negotiation) and is
   * open: QEMU's CONNECTED state. Before, writes fail with EIO and no OPENED has been sent.
   */
  #linkOpen = false;
  /** The current connection's WebSocket upgrade, until it is read; then its frame reader. */
  #upgrade: UpgradeRequestReader | null = null;
  #frames: WebSocketFrameDecoder | null = null;
  /** The current connection's telnet command stripper (telnet and tn3270 servers). */
  #telnetInput: TelnetInputParser | null = null;
  /** Connections let go that still send their last bytes (a refusal, a CLOSE frame), with their give-up timers. */
  readonly #closing = new Map<NetConnection, ReturnType<typeof setTimeout>>();

  /** Lets go of the TLS credentials object, so `object-del` may remove it once we are gone. */
  readonly #releaseTlsCreds: (() => void) | null;

  constructor(
    id: string,
    context: ChardevContext,
    readonly net: HostNet,
    readonly options: SocketOptions,
    /** The `tls-creds` object, already checked for this chardev's role; null for plain TCP. */
    readonly tlsCreds: TlsCredsX509 | null = null,
  ) {
    super(id, context);
    this.#releaseTlsCreds = tlsCreds?.hold() ?? null;
  }

  /** Whether a peer is connected now. */
  get connected(): boolean {
    return this.#connection !== null;
  }

  /** Connections closed unread because another user made them (see `access`). */
  get refusedConnections(): number {
    return this.#refusedConnections;
  }

  /** Output taken but not yet in the kernel; never above `options.highWaterMark`. */
  get bufferedBytes(): number {
    return this.#connection?.bufferedBytes ?? 0;
  }

  /** Where a server listens (with the port it got when asked for port 0), else where a client connects. */
  get address(): NetAddress {
    const address = this.#listener?.address ?? this.options.address;
    // Only a client's connected fd= has no address of its own; `filename` says `fd:N` for it.
    return address.transport === "fd" ? { transport: "unix", path: "" } : address;
  }

  /**
   * QEMU's forms: `disconnected:tcp:127.0.0.1:4444,server=on`,
   * `tcp:127.0.0.1:4444,server=on <-> 127.0.0.1:51234`, `unix:/path,server=on`.
   */
  override get filename(): string {
    const serverMark = this.options.server ? ",server=on" : "";
    const connection = this.#linkOpen ? this.#connection : null;
    const address = this.#listener?.address ?? this.options.address;
    // QEMU names a TCP address by its protocol (qemu_chr_socket_protocol): telnet before websocket.
    const protocol = this.options.telnet ? "telnet" : this.options.websocket ? "websocket" : "tcp";
    const described = describeAddress(address).replace(/^tcp:/, `${protocol}:`);
    if (!connection) return `disconnected:${described}${serverMark}`;
    if (address.transport === "fd") return `${described}${serverMark}`;
    if (address.transport === "unix") return `unix:${address.path}${serverMark}`;
    return `${protocol}:${connection.localAddress}${serverMark} <-> ${connection.remoteAddress}`;
  }

  /**
   * Listens or connects. Resolves when the chardev is ready for the registry: at once for a
   * `wait=off` server and a reconnecting client, after the first client for `wait=on`, after
   * connecting for a plain client. Throws ChardevError OPEN_FAILED, leaving nothing open.
   */
  async start(): Promise<void> {
    const { address, server, wait, reconnectMs } = this.options;
    if (server) {
      try {
        this.#listener = await this.#listen();
      } catch (error) {
        throw new ChardevError("OPEN_FAILED", `socket: could not listen on ${describeAddress(address)}: ${reason(error)}`);
      }
      this.#watchSocketFile();
      const bound = this.#listener.address;
      const exposed = bound.transport === "tcp" && plainNetworkListenerWarning("socket", this.id, bound, this.options.tlsCreds !== undefined);
      if (exposed) this.context.warn(exposed);
      if (wait && !this.#connection) {
        // QEMU's info_report, so whoever started us knows what it waits for.
        this.context.warn(`info: QEMU waiting for connection on: ${this.filename}`);
        await new Promise<void>((resolve) => (this.#firstClientServed = resolve));
      }
      return;
    }
    if (reconnectMs > 0) {
      this.#connectInBackground();
      return;
    }
    let connection: NetConnection;
    try {
      connection = await this.net.connect(address, { tls: this.tlsCreds?.tls });
    } catch (error) {
      throw new ChardevError("OPEN_FAILED", `socket: could not connect to ${describeAddress(address)}: ${reason(error)}`);
    }
    this.#serve(connection);
  }

  #listen(): Promise<NetListener> {
    return this.net.listen(this.options.address, (connection) => this.#incoming(connection), {
      tls: this.tlsCreds?.tls,
      // One client's failed handshake (no certificate under verify-peer=on) closes that client only.
      onTlsFailure: (peer, why) => this.context.warn(`socket: ${this.id}: refused ${peer}: TLS handshake failed: ${why}`),
    });
  }

  /** A UNIX server whose socket file is deleted listens again at the same path (0600 again). */
  #watchSocketFile(): void {
    const host = this.context.runtime.process;
    if (this.options.address.transport !== "unix" || !host) return;
    const path = this.options.address.path;
    this.#socketFileCheck = setInterval(() => {
      if (!this.#relistening && this.#listener && !host.exists(path)) void this.#relisten(path);
    }, SOCKET_FILE_CHECK_MS);
    // The listener keeps a program alive, not this check.
    (this.#socketFileCheck as { unref?: () => void }).unref?.();
  }

  async #relisten(path: string): Promise<void> {
    this.#relistening = true;
    // Closing removes nothing now (the file is gone); connected clients stay.
    this.#listener?.close();
    this.#listener = null;
    try {
      const listener = await this.#listen();
      if (this.#destroyed) return listener.close();
      this.#listener = listener;
      this.context.warn(`socket: ${this.id}: socket file ${path} was deleted; listening there again`);
    } catch (error) {
      if (this.#destroyed) return;
      // The path cannot be bound (its directory is gone, or something else took it): say we no longer listen there.
      this.#stopSocketFileCheck();
      this.context.warn(`socket: ${this.id}: socket file ${path} was deleted and could not be made again: ${reason(error)}`);
    } finally {
      this.#relistening = false;
    }
  }

  #stopSocketFileCheck(): void {
    if (this.#socketFileCheck) clearInterval(this.#socketFileCheck);
    this.#socketFileCheck = null;
  }

  #incoming(connection: NetConnection): void {
    if (this.#destroyed) return connection.close();
    // Before anything is read or queued: another user's bytes must never reach the holder.
    const refusal = loopbackPeerRefusal(this.context.runtime, "socket", this.id, this.options.access, connection.local, connection.remote);
    if (refusal) {
      connection.close();
      this.#refusedConnections++;
      this.context.warn(refusal);
      return;
    }
    if (this.#waiting.length >= MAX_WAITING_CLIENTS) return connection.close();
    if (this.#connection) this.#waiting.push(connection);
    else this.#serve(connection);
  }

  /**
   * Makes `connection` the peer. A plain one opens at once: OPENED first, so the holder hears
   * of it before any input. A WebSocket one opens once its upgrade is answered, a telnet one
   * once its negotiation is queued (QEMU's tcp_chr_new_client: TLS, websocket, telnet, connect).
   */
  #serve(connection: NetConnection): void {
    this.#connection = connection;
    this.#linkOpen = false;
    const { server, telnet, tn3270, websocket } = this.options;
    // QEMU speaks telnet as a server only (do_telnetopt); a client merely calls itself telnet.
    this.#telnetInput = server && (telnet || tn3270) ? new TelnetInputParser(tn3270) : null;
    this.#upgrade = websocket ? new UpgradeRequestReader() : null;
    this.#frames = null;
    if (this.options.nodelay) connection.setNoDelay(true);
    if (!websocket) this.#openLink(connection);
    connection.start({
      data: (chunk) => this.#received(connection, chunk),
      drain: () => this.#drained(connection),
      closed: () => this.#disconnected(connection),
    });
    this.#firstClientServed?.();
    this.#firstClientServed = null;
  }

  /** The handshakes are done: telnet's negotiation goes out first, then the holder hears OPENED. */
  #openLink(connection: NetConnection): void {
    if (this.#telnetInput) this.#send(connection, this.options.tn3270 ? TN3270_NEGOTIATION : TELNET_NEGOTIATION);
    this.#linkOpen = true;
    this.emitEvent(ChrEvent.OPENED);
  }

  /** Queues bytes of ours (not the holder's), framed when the link is a WebSocket. */
  #send(connection: NetConnection, data: Uint8Array): void {
    connection.write(this.options.websocket ? binaryFrame(data) : data.slice());
  }

  /** Bytes from the peer, through the upgrade, the frames and telnet; false pauses reading. */
  #received(connection: NetConnection, chunk: Uint8Array): boolean {
    // A connection being let go (its refusal still leaving) reads nothing more.
    if (connection !== this.#connection) return false;
    if (this.#upgrade) {
      const request = this.#upgrade.feed(chunk);
      if (request === null) return true;
      this.#upgrade = null;
      if (!request.ok) {
        this.context.warn(`socket: ${this.id}: refused a WebSocket upgrade: ${request.reason}`);
        connection.write(request.response);
        this.#closeAfterFlush(connection);
        return false;
      }
      // The accept key's SHA-1 is asynchronous: reading waits, the bytes after the request with it.
      void upgradeResponse(request.key).then((response) => {
        if (this.#connection !== connection) return;
        connection.write(response);
        this.#frames = new WebSocketFrameDecoder();
        this.#openLink(connection);
        if (this.#received(connection, request.rest)) connection.resume();
      }, (error: unknown) => {
        // No SHA-1 in this runtime's Web Crypto: QEMU answers a failed hash 500 and closes.
        if (this.#connection !== connection) return;
        this.context.warn(`socket: ${this.id}: cannot answer a WebSocket upgrade: ${String(error).slice(0, 200)}`);
        connection.write(new TextEncoder().encode("HTTP/1.1 500 Internal Server Error\r\nServer: QEMU VNC\r\nConnection: close\r\n\r\n"));
        this.#closeAfterFlush(connection);
      });
      return false;
    }
    let data = chunk;
    if (this.#frames) {
      const decoded = this.#frames.feed(chunk);
      for (const reply of decoded.replies) connection.write(reply);
      if (decoded.error) this.context.warn(`socket: ${this.id}: WebSocket client broke the protocol: ${decoded.error}`);
      if (decoded.closed) {
        // Its data came before its close: the holder gets it before CLOSED.
        this.#deliver(decoded.data);
        this.#closeAfterFlush(connection);
        return false;
      }
      data = decoded.data;
    }
    return this.#deliver(data);
  }

  /** Hands input to the holder, with a telnet client's commands taken out. */
  #deliver(data: Uint8Array): boolean {
    if (!this.#telnetInput) return data.length === 0 || this.deliverInput(data);
    let keepReading = true;
    for (const piece of this.#telnetInput.feed(data)) {
      // QEMU sends the BREAK while it scans; here it keeps its place among the bytes.
      if (piece === TELNET_BREAK) this.emitEvent(ChrEvent.BREAK);
      else keepReading = this.deliverInput(piece) && keepReading;
    }
    return keepReading;
  }

  /**
   * Ends a connection once what we queued (a refusal, a CLOSE frame) has left, or after
   * REFUSAL_FLUSH_MS for a peer that does not read; the chardev is free for the next client now.
   */
  #closeAfterFlush(connection: NetConnection): void {
    this.#disconnected(connection);
    if (connection.bufferedBytes === 0) return connection.close();
    connection.pause();
    this.#closing.set(connection, setTimeout(() => this.#finishClosing(connection), REFUSAL_FLUSH_MS));
  }

  #finishClosing(connection: NetConnection): void {
    clearTimeout(this.#closing.get(connection));
    this.#closing.delete(connection);
    connection.close();
  }

  /** Output reached the kernel: a closing connection may go, the current one's watches fire. */
  #drained(connection: NetConnection): void {
    if (this.#closing.has(connection)) this.#finishClosing(connection);
    else if (connection === this.#connection) this.#fireWatches();
  }

  #disconnected(connection: NetConnection): void {
    // A connection closing after its last bytes: the peer went first, nothing is left to send.
    if (this.#closing.has(connection)) this.#finishClosing(connection);
    if (this.#connection !== connection) return;
    this.#connection = null;
    this.#upgrade = null;
    this.#frames = null;
    this.#telnetInput = null;
    const wasOpen = this.#linkOpen;
    this.#linkOpen = false;
    // QEMU sends CLOSED only for a connection that got as far as OPENED.
    if (wasOpen) this.emitEvent(ChrEvent.CLOSED);
    // Writes no longer wait for this peer: a blocked hub goes on with its other backends.
    this.#fireWatches();
    if (this.options.server) {
      const next = this.#waiting.shift();
      if (next) this.#serve(next);
    } else {
      this.#scheduleReconnect();
    }
  }

  #connectInBackground(): void {
    this.#reconnectTimer = null;
    if (this.#destroyed || this.#connection) return;
    this.net.connect(this.options.address, { tls: this.tlsCreds?.tls }).then(
      (connection) => {
        if (this.#destroyed) connection.close();
        else this.#serve(connection);
      },
      () => this.#scheduleReconnect(),
    );
  }

  #scheduleReconnect(): void {
    if (this.#destroyed || this.options.reconnectMs <= 0 || this.#reconnectTimer) return;
    this.#reconnectTimer = setTimeout(() => this.#connectInBackground(), this.options.reconnectMs);
  }

  protected override resumeInput(): void {
    // A WebSocket whose upgrade is being answered reads again only once it is (see #received).
    if (this.options.websocket && !this.#linkOpen) return;
    this.#connection?.resume();
  }

  /**
   * Takes what fits under the high-water mark (QEMU's tcp_chr_write sends what the kernel
   * takes). No peer: -EIO, as QEMU 10 answers; a hub skips a closed backend anyway.
   */
  protected writeOut(data: Uint8Array): number {
    const connection = this.#connection;
    // Still in its handshakes: QEMU's tcp_chr_write answers EIO until CONNECTED.
    if (!connection || !this.#linkOpen) return -ERRNO.EIO;
    const room = this.options.highWaterMark - connection.bufferedBytes;
    if (room <= 0) return -ERRNO.EAGAIN;
    const taken = Math.min(room, data.length);
    // `data` views WASM memory that the next write reuses, and the runtime keeps what it is
    // given until the kernel takes it: hand it a copy (#send copies, or frames a copy).
    // Telnet output goes as is: QEMU doubles no 0xFF either.
    this.#send(connection, data.subarray(0, taken));
    return taken;
  }

  /**
   * Fires once the queued output has gone to the kernel (or the peer left). No peer: no
   * watch, as QEMU has no channel to watch then.
   */
  override addWatch(callback: () => void): (() => void) | null {
    const connection = this.#connection;
    if (!connection || !this.#linkOpen) return null;
    if (connection.bufferedBytes === 0) {
      const timer = setTimeout(callback, 0);
      return () => clearTimeout(timer);
    }
    const once = () => callback();
    this.#watches.add(once);
    return () => this.#watches.delete(once);
  }

  /** A hub evicted us for stalling: the stalled peer is let go (the next waiting client, if any, is served). */
  override evicted(_reason: string): void {
    this.#connection?.close();
  }

  #fireWatches(): void {
    const callbacks = [...this.#watches];
    this.#watches.clear();
    for (const callback of callbacks) callback();
  }

  override async destroy(): Promise<void> {
    this.#destroyed = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#watches.clear();
    for (const waiting of this.#waiting.splice(0)) waiting.close();
    for (const closing of [...this.#closing.keys()]) this.#finishClosing(closing);
    const connection = this.#connection;
    this.#connection = null;
    connection?.close();
    this.#stopSocketFileCheck();
    this.#listener?.close();
    this.#listener = null;
    // QEMU's finalize sends CLOSED; nobody holds us by now, but a stray holder learns it.
    if (this.beOpen) this.emitEvent(ChrEvent.CLOSED);
    this.#releaseTlsCreds?.();
    await super.destroy();
  }
}

// ---- options: `-chardev` keys and QAPI ChardevSocket ----

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

function socketDataFromOptions(options: Map<string, string>): BackendData {
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
    // No host: the loopback address, for a server (see DEFAULT_HOST) and a client alike.
    return { transport: "tcp", host: inet.host || DEFAULT_HOST, port };
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
 * // { address: { transport: "unix", path: "/tmp/vm.sock" }, server: true, wait: false, reconnectMs: 0, nodelay: false, highWaterMark: 65536, access: "user", telnet: false, tn3270: false, websocket: false }
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
];
registerOptionKeys(...optionKeys(socketOptions));

/**
 * The `socket` backend kind (built in; see docs/socket.md).
 *
 * @example A registry without built-ins still gets sockets by registering it
 * ```ts
 * import { ChardevRegistry } from "chardev-hub/edge"; // the host-neutral registry: no sockets built in
 * import type { HostRuntime } from "chardev-hub";
 * declare const runtime: HostRuntime; // one with `net`: the running Node's, Deno's or Bun's
 * const reg = await ChardevRegistry.create({ runtime });
 * reg.registerDriver(socketDriver);
 * await reg.add("socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off");
 * ```
 */
export const socketDriver: ChardevDriver = {
  type: "socket",
  options: socketOptions,
  fields: qapiFields(socketOptions),
  // The address keys make one QMP `addr` and QEMU's -chardev defaults differ from QAPI's: a hook.
  fromOptions: socketDataFromOptions,
  async open(id, data, context) {
    const given = socketOptionsFromData(data);
    // systemd socket activation: a server whose id names a passed socket serves on it instead of binding.
    const activated = given.server ? context.activatedSocket?.(id) : undefined;
    const options: SocketOptions = activated === undefined ? given : { ...given, address: { transport: "fd", fd: activated } };
    const net = context.runtime.net;
    if (!net) throw new ChardevError("UNSUPPORTED", `socket: the ${context.runtime.name} runtime has no sockets`);
    // QEMU's texts: "No TLS credentials with id 'X'", "Expected TLS credentials for a server endpoint".
    const tlsCreds = options.tlsCreds === undefined ? null : tlsCredsFor(context, options.tlsCreds, options.server ? "server" : "client");
    const chardev = new SocketChardev(id, context, net, options, tlsCreds);
    try {
      await chardev.start();
    } catch (error) {
      await chardev.destroy();
      throw error;
    }
    return chardev;
  },
};
