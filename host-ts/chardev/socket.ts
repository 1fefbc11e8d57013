// `socket`: a TCP or UNIX stream socket, as a server or a client (QEMU's char-socket). OPENED
// when a peer connects, CLOSED when it leaves. A server serves one client at a time; later
// clients wait their turn. A client may reconnect every `reconnect-ms`. Output is bounded by a
// high-water mark, so a peer that stops reading makes writes answer EAGAIN instead of growing
// memory. A server with `max-clients=N` (N > 1) serves N connections at once instead, each a
// chardev of its own (_socket_client.ts) that the socket's hub takes as a backend (a ClientSource).

import { ChardevError } from "../errors.ts";
import { ERRNO, strerror } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { HostNet, InheritedSocket, NetAddress, NetConnection, NetListener } from "../runtime/types.ts";
import { tlsCredsFor, type TlsCredsX509 } from "../tls_creds.ts";
import { Chardev, type ChardevContext, type ChardevUser, defineDriver, startedOrDestroyed, runtimePart } from "./_chardev.ts";
import type { ClientInfo, ClientSource } from "./_client_source.ts";
import { SocketClientChardev } from "./_socket_client.ts";
import { socketDataFromOptions, socketOptions, socketOptionsFromData, type SocketOptions } from "./_socket_options.ts";
import { loopbackPeerRefusal, plainNetworkListenerWarning } from "./_peer_access.ts";

export { DEFAULT_HIGH_WATER_MARK, socketOptions, socketOptionsFromData, type SocketOptions } from "./_socket_options.ts";

/**
 * Clients a busy server keeps waiting, unread, until it is free. QEMU leaves them in the
 * kernel's listen backlog; node accepts eagerly, so we hold them instead, and close those
 * beyond this many, as a full backlog would turn them away.
 */
export const MAX_WAITING_CLIENTS = 8;

/**
 * How often a UNIX server looks for its socket file. A file deleted under a listener (a tmp
 * cleaner, a careless `rm`) leaves it serving no one who can find it; there is no portable way
 * to be told (inotify is Linux only, and not in every runtime), and one lstat a second is cheap.
 */
const SOCKET_FILE_CHECK_MS = 1000;

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

/** A failed name lookup: QEMU says so before it tries any address. */
const RESOLUTION_ERRORS = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME"]);

/**
 * Why a listen or connect failed, in QEMU's words (util/qemu-sockets.c): `Failed to bind socket
 * to PATH: …`, `Failed to connect to 'PATH': …`, `Failed to connect to 'HOST:PORT': …`,
 * `Failed to find an available port: Address already in use`, `address resolution failed for
 * HOST:PORT: …`. An inherited fd, which QEMU gets another way, keeps our own text.
 */
function openFailure(listening: boolean, address: NetAddress | InheritedSocket, error: unknown): ChardevError {
  const why = reason(error);
  const code = (error as { code?: unknown } | null)?.code;
  let text: string;
  if (address.transport === "fd") text = `socket: could not ${listening ? "listen on" : "connect to"} fd:${address.fd}: ${why}`;
  else if (address.transport === "unix") text = listening ? `Failed to bind socket to ${address.path}: ${why}` : `Failed to connect to '${address.path}': ${why}`;
  else if (typeof code === "string" && RESOLUTION_ERRORS.has(code)) text = `address resolution failed for ${address.host}:${address.port}: ${why}`;
  else if (!listening) text = `Failed to connect to '${address.host}:${address.port}': ${why}`;
  else text = code === "EADDRINUSE" ? `Failed to find an available port: ${why}` : `Failed to bind socket: ${why}`;
  return new ChardevError("OPEN_FAILED", text);
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
 *
 * @example Up to 8 clients at once, each a backend of its own of the hub (`max-clients`)
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create({ qemuCompat: false });
 * await reg.add("socket,id=s0,path=/run/user/1000/console.sock,server=on,wait=off,max-clients=8");
 * await reg.add("hub,id=hub0,chardevs.0=s0,ring=1M,policy.0=drop");
 * reg.hub("hub0").stats().map((row) => row.id); // ["s0"], then "s0#1", "s0#2", ... as clients connect
 * ```
 */
export class SocketChardev extends Chardev implements ClientSource {
  readonly kind = "socket";
  /** With `max-clients` > 1: the clients connected now, each its own chardev. */
  readonly #clients = new Set<SocketClientChardev>();
  /** Clients that came before anyone listened for them (a `wait=on` server's first), handed out by `onClient`. */
  readonly #unclaimed: [SocketClientChardev, ClientInfo][] = [];
  #clientListener: ((client: Chardev, info: ClientInfo) => void) | null = null;
  /** Clients made so far: the N of their ids `ID#N`, never used twice. */
  #clientsMade = 0;
  #fullRefusals = 0;
  #listener: NetListener | null = null;
  /** With `max-clients=1`: the client served now (its connection's protocol, on our behalf). */
  #current: SocketClientChardev | null = null;
  /** Accepted clients waiting for the current one to leave, oldest first. */
  readonly #waiting: NetConnection[] = [];
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  #destroyed = false;
  /** Resolves a `wait=on` open once the first client is served. */
  #firstClientServed: (() => void) | null = null;
  #refusedConnections = 0;
  /** A UNIX server's check that its socket file is still there. */
  #socketFileCheck: ReturnType<typeof setInterval> | null = null;
  #relistening = false;
  /** Connections turned away that still send their last bytes (the full line), with their give-up timers. */
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

  /** Whether a peer is connected now (with `max-clients` > 1: any). */
  get connected(): boolean {
    return this.#current !== null || this.#clients.size > 0;
  }

  /** Connections served at once (`max-clients`); more than 1 makes this a ClientSource. */
  get maxClients(): number {
    return this.options.maxClients;
  }

  /** With `max-clients` > 1: how many clients are connected now. */
  get clientCount(): number {
    return this.#clients.size;
  }

  /** Connections turned away because `max-clients` clients were connected. */
  get fullRefusals(): number {
    return this.#fullRefusals;
  }

  /** Connections closed unread because another user made them (see `access`). */
  get refusedConnections(): number {
    return this.#refusedConnections;
  }

  /** Output taken but not yet in the kernel; never above `options.highWaterMark`. */
  get bufferedBytes(): number {
    return this.#current?.bufferedBytes ?? 0;
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
    const connection = this.#current?.linkOpen ? this.#current.connection : null;
    const address = this.#listener?.address ?? this.options.address;
    // QEMU names a TCP address by its protocol (qemu_chr_socket_protocol): telnet before websocket.
    const protocol = this.options.telnet ? "telnet" : this.options.websocket ? "websocket" : "tcp";
    const described = describeAddress(address).replace(/^tcp:/, `${protocol}:`);
    if (this.maxClients > 1) return this.#clients.size === 0 ? `disconnected:${described}${serverMark}` : `${described}${serverMark} (${this.#clients.size} clients)`;
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
        throw openFailure(true, address, error);
      }
      this.#watchSocketFile();
      const bound = this.#listener.address;
      const exposed = bound.transport === "tcp" && plainNetworkListenerWarning("socket", this.id, bound, this.options.tlsCreds !== undefined);
      if (exposed) this.context.warn(exposed);
      if (wait && !this.connected) {
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
      connection = await this.net.connect(address, { tls: this.tlsCreds?.tls, borrowedReads: true });
    } catch (error) {
      throw openFailure(false, address, error);
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
    if (this.maxClients > 1) return this.#admit(connection);
    if (this.#waiting.length >= MAX_WAITING_CLIENTS) return connection.close();
    if (this.#current) this.#waiting.push(connection);
    else this.#serve(connection);
  }

  /**
   * Makes `connection` the peer. Its protocol (QEMU's tcp_chr_new_client: TLS, websocket,
   * telnet, connect) is the connection chardev's, the same one a many-client server gives each
   * client; this socket holds it and passes on what it hears: input, BREAK, OPENED (a plain
   * connection at once, a WebSocket once its upgrade is answered, a telnet one once its
   * negotiation is queued) and CLOSED (only after an OPENED, as QEMU).
   */
  #serve(connection: NetConnection): void {
    const current = new SocketClientChardev(this.id, this.context, connection, this.options, { peer: this.#peerOf(connection), since: Date.now() }, (gone) => this.#disconnected(gone));
    this.#current = current;
    const holder = () => this.user;
    current.attachUser({
      canRead: () => (this.#current === current ? this.canReceive() : 0),
      read: (data) => this.receive(data),
      // Whoever holds this socket now (a frontend may attach and leave during the connection).
      get copiesInput() {
        return holder()?.copiesInput === true;
      },
      event: (event) => {
        if (this.#current !== current) return;
        // QEMU sends CLOSED only for a connection that got as far as OPENED.
        if (event === ChrEvent.CLOSED && !this.beOpen) return;
        this.emitEvent(event);
      },
    });
    current.start();
    this.#firstClientServed?.();
    this.#firstClientServed = null;
  }

  // ---- many clients at once (max-clients > 1) ----

  /**
   * A hub calls this to take each connection as a backend of its own. One listener only: a
   * second hub is refused as a second frontend would be. Clients that came first are handed
   * out now.
   */
  onClient(listener: (client: Chardev, info: ClientInfo) => void): () => void {
    if (this.#clientListener) throw new ChardevError("IN_USE", `chardev '${this.id}' is already in use`);
    this.#clientListener = listener;
    for (const [client, info] of this.#unclaimed.splice(0)) listener(client, info);
    return () => {
      if (this.#clientListener === listener) this.#clientListener = null;
    };
  }

  /**
   * A many-client server is a ClientSource: its clients are a hub's backends, and nothing else
   * can hold it (QEMU's one-client socket behind a frontend is max-clients=1).
   */
  override attachUser(user: ChardevUser): void {
    if (this.maxClients > 1) {
      throw new ChardevError(
        "IN_USE",
        `socket: chardev '${this.id}' has max-clients=${this.maxClients}: each client is a backend of its own of a hub, so it can only be a hub's backend (hub,chardevs.N=${this.id}), not a frontend's chardev`,
      );
    }
    super.attachUser(user);
  }

  /** Held by a hub that takes its clients, too. */
  override isBusy(): boolean {
    return super.isBusy() || this.#clientListener !== null;
  }

  /** Serves `connection` as a client of its own, or turns it away with a line when `max-clients` are connected. */
  #admit(connection: NetConnection): void {
    if (this.#clients.size + this.#unclaimed.length >= this.maxClients) return this.#refuseFull(connection);
    const info: ClientInfo = { peer: this.#peerOf(connection), since: Date.now(), ...this.#uidOf(connection) };
    const client = new SocketClientChardev(`${this.id}#${++this.#clientsMade}`, this.context, connection, this.options, info, (gone) => {
      this.#clients.delete(gone);
      const unclaimed = this.#unclaimed.findIndex(([waiting]) => waiting === gone);
      if (unclaimed >= 0) this.#unclaimed.splice(unclaimed, 1);
    });
    this.#clients.add(client);
    client.start();
    if (this.#clientListener) this.#clientListener(client, info);
    else this.#unclaimed.push([client, info]);
    this.#firstClientServed?.();
    this.#firstClientServed = null;
  }

  /** `unix:PATH` (the server's: a client socket has no name of its own) or `tcp:HOST:PORT` of the peer. */
  #peerOf(connection: NetConnection): string {
    if (!connection.remote) return describeAddress(this.options.address);
    return `tcp:${connection.remoteAddress}`;
  }

  /** The peer's uid where the runtime can tell (a TCP peer on this machine, Linux). */
  #uidOf(connection: NetConnection): { uid?: number } {
    const peers = this.context.runtime.peers;
    if (!peers || !connection.local || !connection.remote) return {};
    const uid = peers.tcpPeerUid(connection.local, connection.remote);
    return uid === null ? {} : { uid };
  }

  /**
   * The N+1th client is told why in one line (a WebSocket client as an HTTP 503, the line its
   * body) and closed once the line left; the operator gets the same line on stderr.
   */
  #refuseFull(connection: NetConnection): void {
    this.#fullRefusals++;
    const why = `socket '${this.id}' is full: max-clients=${this.maxClients} clients are connected`;
    this.context.warn(`socket: ${this.id}: refused a connection from ${this.#peerOf(connection).slice(0, 200)}: max-clients=${this.maxClients} clients are connected`);
    const line = `chardev-hub: ${why}\r\n`;
    const text = this.options.websocket
      ? `HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: ${line.length}\r\nConnection: close\r\n\r\n${line}`
      : line;
    connection.start({
      data: () => false,
      drain: () => this.#finishClosing(connection),
      closed: () => this.#finishClosing(connection),
    });
    connection.write(new TextEncoder().encode(text));
    this.#closeAfterFlush(connection);
  }

  /** Ends a turned-away connection once its line has left, or after REFUSAL_FLUSH_MS for a peer that does not read. */
  #closeAfterFlush(connection: NetConnection): void {
    if (connection.bufferedBytes === 0) return connection.close();
    connection.pause();
    this.#closing.set(connection, setTimeout(() => this.#finishClosing(connection), REFUSAL_FLUSH_MS));
  }

  #finishClosing(connection: NetConnection): void {
    clearTimeout(this.#closing.get(connection));
    this.#closing.delete(connection);
    connection.close();
  }

  /** The client served now is gone (it left, was let go or evicted): writers go on, the next is served. */
  #disconnected(gone: SocketClientChardev): void {
    if (this.#current !== gone) return;
    this.#current = null;
    // Writes no longer wait for this peer: a blocked hub goes on with its other backends.
    this.fireWatches();
    if (this.#destroyed) return;
    if (this.options.server) {
      const next = this.#waiting.shift();
      if (next) this.#serve(next);
    } else {
      this.#scheduleReconnect();
    }
  }

  #connectInBackground(): void {
    this.#reconnectTimer = null;
    if (this.#destroyed || this.#current) return;
    this.net.connect(this.options.address, { tls: this.tlsCreds?.tls, borrowedReads: true }).then(
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

  /** Kept input of the client served now goes on to the holder, which has room again. */
  protected override resumeInput(): void {
    this.#current?.flushInput();
  }

  /**
   * The served client takes what fits under the high-water mark (QEMU's tcp_chr_write sends
   * what the kernel takes). No peer, or one still in its handshakes: -EIO, as QEMU 10 answers
   * until CONNECTED; a hub skips a closed backend anyway.
   */
  protected writeOut(data: Uint8Array): number {
    return this.#current ? this.#current.write(data) : -ERRNO.EIO;
  }

  /** With `telnet=on` (or `tn3270=on`), server or client, a BREAK goes out as IAC BREAK. */
  override get canSendBreak(): boolean {
    return this.options.telnet || this.options.tn3270;
  }

  /**
   * IAC BREAK to the peer served now, after the output it already took; false (dropped) when
   * no peer is connected. Not telnet: dropped, and the operator told once.
   */
  override sendBreakToPeer(): boolean {
    if (!this.canSendBreak) return super.sendBreakToPeer();
    return this.#current?.sendBreakToPeer() ?? false;
  }

  /**
   * Fires once the queued output has gone to the kernel (or the peer left). No peer: no
   * watch, as QEMU has no channel to watch then.
   */
  override addWatch(callback: () => void): (() => void) | null {
    return this.#current?.addWatch(callback) ?? null;
  }

  /** A hub evicted us for stalling: the stalled peer is let go (the next waiting client, if any, is served). */
  override evicted(_reason: string): void {
    void this.#current?.destroy();
  }

  override async destroy(): Promise<void> {
    this.#destroyed = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.cancelWatches();
    for (const waiting of this.#waiting.splice(0)) waiting.close();
    this.#clientListener = null;
    this.#unclaimed.length = 0;
    // Each client's CLOSED tells its hub, which forgets it.
    await Promise.all([...this.#clients].map((client) => client.destroy()));
    for (const closing of [...this.#closing.keys()]) this.#finishClosing(closing);
    const current = this.#current;
    this.#current = null;
    await current?.destroy();
    this.#stopSocketFileCheck();
    this.#listener?.close();
    this.#listener = null;
    // QEMU's finalize sends CLOSED; nobody holds us by now, but a stray holder learns it.
    if (this.beOpen) this.emitEvent(ChrEvent.CLOSED);
    this.#releaseTlsCreds?.();
    await super.destroy();
  }
}

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
export const socketDriver = defineDriver({
  type: "socket",
  options: socketOptions,
  // The address keys make one QMP `addr` and QEMU's -chardev defaults differ from QAPI's: a hook.
  fromOptions: socketDataFromOptions,
  async open(id, data, context) {
    const given = socketOptionsFromData(data);
    // systemd socket activation: a server whose id names a passed socket serves on it instead of binding.
    const activated = given.server ? context.activatedSocket?.(id) : undefined;
    const options: SocketOptions = activated === undefined ? given : { ...given, address: { transport: "fd", fd: activated } };
    const net = runtimePart(context, "net", (runtime) => `socket: the ${runtime} runtime has no sockets`);
    // QEMU's texts: "No TLS credentials with id 'X'", "Expected TLS credentials for a server endpoint".
    const tlsCreds = options.tlsCreds === undefined ? null : tlsCredsFor(context, options.tlsCreds, options.server ? "server" : "client");
    return startedOrDestroyed(new SocketChardev(id, context, net, options, tlsCreds), (chardev) => chardev.start());
  },
});
