// One connection of a `socket` chardev, as a chardev: what QEMU's char-socket does per
// connection (telnet's negotiation and input parsing for a server, the WebSocket upgrade and
// frames; TLS is the listener's or the connect's), OPENED once its handshakes are done, CLOSED
// when the connection ends; then it is of no further use. A server with `max-clients=N` (N > 1)
// hands each one to its hub as a backend of its own (see _client_source.ts): it is in no
// registry, the hub forgets it when it closes, and the server counts it until then. With one
// client at a time the socket chardev holds its current one and passes on what it hears.

import { ERRNO } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { NetConnection } from "../runtime/types.ts";
import { Chardev, type ChardevContext } from "./_chardev.ts";
import type { ClientInfo } from "./_client_source.ts";
import type { SocketOptions } from "./_socket_options.ts";
import { binaryFrame, upgradeResponse, UpgradeRequestReader, WebSocketFrameDecoder } from "./_socket_websocket.ts";
import { IAC, TELNET_BREAK, TELNET_NEGOTIATION, type TelnetInput, TelnetInputParser, TN3270_NEGOTIATION } from "./_telnet.ts";

/** Telnet's BREAK command byte (RFC 854), sent after IAC. */
const TELNET_BREAK_BYTE = 0xf3;

/** The give-up time for our last bytes (a refused upgrade's answer, a CLOSE frame) to leave. */
const LAST_BYTES_FLUSH_MS = 1000;

/**
 * One connection of a socket chardev. Made by SocketChardev for each connection it serves
 * (each client of a `max-clients` server; the current one otherwise); `start` begins reading.
 *
 * @example Serve one accepted connection as a chardev of its own
 * ```ts
 * import type { NetConnection } from "../runtime/types.ts";
 * import type { ChardevContext } from "./_chardev.ts";
 * import { socketOptionsFromData } from "./_socket_options.ts";
 * declare const context: ChardevContext; // the registry's
 * declare const connection: NetConnection; // just accepted by a listener
 * const options = socketOptionsFromData({ addr: { type: "unix", data: { path: "/run/c.sock" } }, "max-clients": 4 });
 * const client = new SocketClientChardev("s0#1", context, connection, options, { peer: "unix:/run/c.sock", since: Date.now() }, () => {});
 * client.start(); // OPENED at once (no WebSocket upgrade to wait for); CLOSED when the peer leaves
 * ```
 */
export class SocketClientChardev extends Chardev {
  readonly kind = "socket";
  /** The handshakes are done (QEMU's CONNECTED): before, writes fail with EIO. */
  #linkOpen = false;
  #ended = false;
  #upgrade: UpgradeRequestReader | null;
  #frames: WebSocketFrameDecoder | null = null;
  readonly #telnetInput: TelnetInputParser | null;
  /** Telnet input parsed but not yet handed on: what followed data the holder had no room for. */
  readonly #parsedWaiting: TelnetInput[] = [];
  #deliveringParsed = false;
  #flushTimer: ReturnType<typeof setTimeout> | null = null;
  /** Input the holder had no room for yet is kept (reading paused). */
  #inputHeld = false;
  /** The peer hung up while input was held: the end waits until the holder has it all. */
  #hungUpWithInputHeld = false;
  readonly #gone: (client: SocketClientChardev) => void;

  constructor(
    id: string,
    context: ChardevContext,
    readonly connection: NetConnection,
    readonly options: SocketOptions,
    /** Who connected, and when (query-hub's `peer`, `uid`, `since`). */
    readonly info: ClientInfo,
    /** Called once when the connection is gone, whoever ended it: the server counts clients. */
    gone: (client: SocketClientChardev) => void,
  ) {
    super(id, context);
    this.#gone = gone;
    // QEMU speaks telnet as a server only (do_telnetopt); a client merely calls itself telnet.
    this.#telnetInput = options.server && (options.telnet || options.tn3270) ? new TelnetInputParser(options.tn3270) : null;
    this.#upgrade = options.websocket ? new UpgradeRequestReader() : null;
  }

  /** QEMU's forms for a connected socket: `tcp:LOCAL,server=on <-> REMOTE`, `unix:PATH,server=on`, `fd:N`. */
  override get filename(): string {
    const { connection, options } = this;
    const serverMark = options.server ? ",server=on" : "";
    const { address } = options;
    if (address.transport === "fd") return `fd:${address.fd}${serverMark}`;
    if (address.transport === "unix" || !connection.remote) return `unix:${address.transport === "unix" ? address.path : ""}${serverMark}`;
    // QEMU names a TCP address by its protocol (qemu_chr_socket_protocol): telnet before websocket.
    const protocol = options.telnet ? "telnet" : options.websocket ? "websocket" : "tcp";
    return `${protocol}:${connection.localAddress}${serverMark} <-> ${connection.remoteAddress}`;
  }

  /** Its handshakes are done (QEMU's CONNECTED): OPENED was sent and writes go out. */
  get linkOpen(): boolean {
    return this.#linkOpen;
  }

  /** Output taken but not yet in the kernel; never above `options.highWaterMark`. */
  get bufferedBytes(): number {
    return this.connection.bufferedBytes;
  }

  /** Starts reading. A plain connection opens at once; a WebSocket one once its upgrade is answered. */
  start(): void {
    if (this.options.nodelay) this.connection.setNoDelay(true);
    if (!this.options.websocket) this.#openLink();
    this.connection.start({
      data: (chunk) => this.#received(chunk),
      drain: () => this.#drained(),
      closed: () => this.#peerHungUp(),
    });
  }

  /** Telnet's negotiation goes out first, then the holder hears OPENED. */
  #openLink(): void {
    if (this.#telnetInput) this.#send(this.options.tn3270 ? TN3270_NEGOTIATION : TELNET_NEGOTIATION);
    this.#linkOpen = true;
    this.emitEvent(ChrEvent.OPENED);
  }

  /** Queues bytes of ours (a copy), framed when the link is a WebSocket. */
  #send(data: Uint8Array): void {
    this.connection.write(this.options.websocket ? binaryFrame(data) : data.slice());
  }

  /**
   * Bytes from the peer, through the upgrade, the frames and telnet; false pauses reading.
   * `chunk` may be valid only during this call (a client connection reads into one buffer,
   * `borrowedReads`): whatever is kept past it is a copy.
   */
  #received(borrowed: Uint8Array): boolean {
    if (this.#ended || this.#flushTimer) return false;
    // The upgrade, the frame decoder and the telnet parser may keep pieces of what they are
    // fed. Only a connecting socket reads borrowed (socket.ts asks for it when it connects), and
    // today all three are a server's: the copy is for a client that ever has one.
    const chunk = this.connection.readsBorrowed === true && (this.#upgrade || this.#frames || this.#telnetInput) ? borrowed.slice() : borrowed;
    if (this.#upgrade) {
      const request = this.#upgrade.feed(chunk);
      if (request === null) return true;
      this.#upgrade = null;
      if (!request.ok) {
        this.context.warn(`socket: ${this.id}: refused a WebSocket upgrade: ${request.reason}`);
        this.connection.write(request.response);
        this.#endAfterFlush();
        return false;
      }
      // The accept key's SHA-1 is asynchronous: reading waits, the bytes after the request with it.
      void upgradeResponse(request.key).then((response) => {
        if (this.#ended) return;
        this.connection.write(response);
        this.#frames = new WebSocketFrameDecoder();
        this.#openLink();
        if (this.#received(request.rest)) this.connection.resume();
      }, (error: unknown) => {
        if (this.#ended) return;
        this.context.warn(`socket: ${this.id}: cannot answer a WebSocket upgrade: ${String(error).slice(0, 200)}`);
        this.connection.write(new TextEncoder().encode("HTTP/1.1 500 Internal Server Error\r\nServer: QEMU VNC\r\nConnection: close\r\n\r\n"));
        this.#endAfterFlush();
      });
      return false;
    }
    let data = chunk;
    if (this.#frames) {
      const decoded = this.#frames.feed(chunk);
      for (const reply of decoded.replies) this.connection.write(reply);
      if (decoded.error) this.context.warn(`socket: ${this.id}: WebSocket client broke the protocol: ${decoded.error}`);
      if (decoded.closed) {
        // Its data came before its close: the holder gets it before CLOSED.
        this.#deliver(decoded.data);
        this.#endAfterFlush();
        return false;
      }
      data = decoded.data;
    }
    return this.#deliver(data);
  }

  /** Hands input to the holder, with a telnet client's commands taken out. */
  #deliver(data: Uint8Array): boolean {
    let allTaken: boolean;
    if (!this.#telnetInput) allTaken = data.length === 0 || this.#deliverPlain(data);
    else {
      for (const piece of this.#telnetInput.feed(data)) this.#parsedWaiting.push(piece);
      allTaken = this.#deliverParsed();
    }
    this.#inputHeld = !allTaken;
    return allTaken;
  }

  /**
   * Plain input to the holder: what it has room for now as is; the rest as a copy, since
   * deliverInput keeps that until the holder takes it and the chunk may be read into again.
   */
  #deliverPlain(borrowed: Uint8Array): boolean {
    // A connecting socket's chunk is a view of the buffer it reads into next: a holder that
    // may keep it gets a copy of its own.
    const owned = this.connection.readsBorrowed !== true || this.user?.copiesInput === true ? null : borrowed.slice();
    const data = owned ?? borrowed;
    const room = this.#inputHeld ? 0 : Math.max(0, this.canReceive());
    if (room >= data.length) return this.deliverInput(data);
    if (room > 0) this.deliverInput(data.subarray(0, room));
    // deliverInput keeps the rest until the holder takes it: ours, or a copy.
    return this.deliverInput(owned ? owned.subarray(room) : data.slice(room));
  }

  /**
   * The connection closed. Input read before the hang-up but not yet taken is the peer's last
   * words: the end (CLOSED) waits until the holder has taken it, as QEMU reads a socket's last
   * bytes before it sees the hang-up. Without this a device that wrote and closed while the
   * hub was full lost its last chunk.
   */
  #peerHungUp(): void {
    if (this.#inputHeld && !this.#ended) this.#hungUpWithInputHeld = true;
    else this.#end();
  }

  /**
   * Parsed telnet input, in order, until the holder is full: then the rest waits (false) for
   * `resumeInput`, so a BREAK never overtakes the bytes typed before it.
   */
  #deliverParsed(): boolean {
    // deliverInput calls resumeInput when all is taken: the loop running already goes on.
    if (this.#deliveringParsed) return true;
    this.#deliveringParsed = true;
    try {
      while (this.#parsedWaiting.length > 0 && !this.#ended) {
        const piece = this.#parsedWaiting.shift()!;
        if (piece === TELNET_BREAK) this.emitEvent(ChrEvent.BREAK);
        else if (!this.deliverInput(piece)) return false;
      }
      return true;
    } finally {
      this.#deliveringParsed = false;
    }
  }

  /** Ends the client now and lets the connection go once our last bytes left (or after a second). */
  #endAfterFlush(): void {
    this.#end();
    if (this.connection.bufferedBytes === 0) return this.connection.close();
    this.connection.pause();
    this.#flushTimer = setTimeout(() => this.connection.close(), LAST_BYTES_FLUSH_MS);
  }

  #drained(): void {
    if (this.#flushTimer) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
      this.connection.close();
      return;
    }
    this.fireWatches();
  }

  /**
   * The connection is over: CLOSED (always, so the hub forgets it even when its handshakes never
   * finished), waiting writers woken, the server told. Once only.
   */
  #end(): void {
    if (this.#ended) {
      // Our last bytes are stuck with a peer that went away: nothing is left to wait for.
      if (this.#flushTimer) this.#drained();
      return;
    }
    this.#ended = true;
    this.#linkOpen = false;
    this.emitEvent(ChrEvent.CLOSED);
    this.fireWatches();
    this.#gone(this);
  }

  protected override resumeInput(): void {
    // A WebSocket whose upgrade is being answered reads again only once it is (see #received).
    if (this.options.websocket && !this.#linkOpen) return;
    // Inside #deliverParsed's loop, the loop decides whether reading goes on.
    if (this.#ended || this.#deliveringParsed) return;
    if (!this.#deliverParsed()) return;
    this.#inputHeld = false;
    if (this.#hungUpWithInputHeld) this.#end();
    else this.connection.resume();
  }

  /**
   * Takes what the kernel accepts now plus what fits under the high-water mark; EIO before the
   * handshakes are done and after the end.
   */
  protected writeOut(data: Uint8Array): number {
    if (!this.#linkOpen) return -ERRNO.EIO;
    const room = this.options.highWaterMark - this.connection.bufferedBytes;
    if (room <= 0) return -ERRNO.EAGAIN;
    if (this.options.websocket) {
      const taken = Math.min(room, data.length);
      this.connection.write(binaryFrame(data.subarray(0, taken))); // a frame is a copy
      return taken;
    }
    // `data` views ring memory the writer reuses. All of it is offered: what the kernel takes
    // at once costs no copy and no user-space memory (one write(2) per slice, not per
    // high-water mark); the runtime keeps a copy of at most `room` bytes of the rest.
    return this.connection.writeBorrowed(data, room);
  }

  /** A telnet connection (`telnet=on` or `tn3270=on`, either end) can: IAC BREAK. */
  override get canSendBreak(): boolean {
    return this.options.telnet || this.options.tn3270;
  }

  /**
   * IAC BREAK to the peer, after the output already taken: how a guest behind QEMU's `-serial
   * telnet::PORT,server` gets a BREAK. False (dropped) when the link is not open, or for a
   * connection that is not telnet (told once, as the base does).
   */
  override sendBreakToPeer(): boolean {
    if (!this.canSendBreak) return super.sendBreakToPeer();
    if (!this.#linkOpen) return false;
    this.#send(Uint8Array.of(IAC, TELNET_BREAK_BYTE));
    return true;
  }

  /**
   * Fires once the queued output has gone to the kernel (the connection's drain, or the peer
   * left); with nothing queued, at the end of this turn. Never a timer: a timer's ≥ 1 ms per
   * wait was a third of a fast stream's time. The microtask cannot spin: with nothing queued
   * the next write takes a whole high-water mark.
   */
  override addWatch(callback: () => void): (() => void) | null {
    if (!this.#linkOpen) return null;
    const cancel = this.addToWatchList(callback);
    if (this.connection.bufferedBytes === 0) {
      queueMicrotask(() => {
        if (cancel()) callback();
      });
    }
    return () => void cancel();
  }

  /** A hub evicted this client for stalling: its connection is closed. */
  override evicted(_reason: string): void {
    void this.destroy();
  }

  /** Closes the connection (queued output is dropped: the client is being let go). Safe to call twice. */
  override async destroy(): Promise<void> {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    // Whoever waited on it is going too: its watches are forgotten, not fired.
    this.cancelWatches();
    this.#end();
    this.connection.close();
    await super.destroy();
  }
}
