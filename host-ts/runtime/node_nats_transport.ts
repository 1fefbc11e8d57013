// The NATS client's transport over `node:net` and `node:tls`, written so that no socket error can
// escape. `@nats-io/transport-node`'s own transport calls removeAllListeners() on its sockets at
// every step (after the TCP connect, after the INFO line, after the TLS handshake, when it
// closes) and adds new ones a turn later. A socket error that comes in such a moment has no
// listener, and an EventEmitter 'error' with no listener is thrown: an uncaught error that ends
// the whole process. Under Deno's node:tls a server's BadCertificate alert lands in that moment
// after the handshake, and a reset (ECONNRESET) after a nats-server restart after a close. Here
// every socket gets its 'error', 'close' and 'data' listeners when it is made, and keeps them for
// its life; what they do depends on the connection's phase.

import * as dns from "node:dns";
import * as fs from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import type { ConnectionOptions, NatsConnection, Server, TlsOptions } from "@nats-io/nats-core";
import type { Transport } from "@nats-io/nats-core/internal";

/** The first line a NATS server sends may be this long (its INFO JSON) before we give up on it. */
const MAX_INFO_BYTES = 64 * 1024;
const CRLF = "\r\n";

/** A promise and the functions that settle it. */
function settleable<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  // Settled and never awaited (a connect the client stopped waiting for) is not an unhandled rejection.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Where a connection is: dialing, reading the server's INFO, in the TLS handshake, connected, or done. */
type Phase = "dial" | "info" | "tls" | "connected" | "done";

/**
 * One connection to one NATS server, as nats-core's protocol uses it (one per dial attempt).
 * Every socket error becomes the connection's error: a failed connect, or the reason it closed.
 */
export class GuardedNatsTransport implements Transport {
  readonly lang = "nats.js";
  readonly version = "chardev-hub";
  closeError?: Error;
  private phase: Phase = "dial";
  private socket: net.Socket | null = null;
  /** The last error a socket of this connection reported (what a close that follows it means). */
  private socketError: Error | undefined;
  /** Received and not yet taken by the protocol's reader (the INFO line stays for it too). */
  private frames: Uint8Array[] = [];
  private wake = settleable<void>();
  private readonly closedNotice = settleable<void | Error>();
  /** Settles the connect in progress: resolve after the handshake, reject on any failure. */
  private pending: ReturnType<typeof settleable<void>> | null = null;
  private options: ConnectionOptions = {};
  /** The name the server's certificate must carry: the host name it was given by, or its address. */
  private tlsName = "";

  get isClosed(): boolean {
    return this.phase === "done";
  }

  /** Connects to `server`: TCP, the server's INFO, TLS when the server asks for it or offers it. */
  async connect(server: Server, options: ConnectionOptions): Promise<void> {
    this.options = options;
    this.tlsName = server.tlsName || server.hostname;
    this.pending = settleable<void>();
    const raw = net.createConnection({ host: server.hostname, port: server.port });
    raw.setNoDelay(true);
    this.watch(raw);
    raw.once("connect", () => {
      if (this.phase === "dial") this.phase = "info";
    });
    await this.pending.promise;
    if (this.phase === "done") throw new Error("nats: connection closed while connecting");
  }

  /** Gives `socket` the listeners it keeps for its life: no error of it can go unheard. */
  private watch(socket: net.Socket): void {
    this.socket = socket;
    socket.on("error", (error: Error) => {
      if (this.socket === socket) this.socketError = error;
    });
    socket.on("close", () => {
      if (this.socket === socket) this.socketClosed();
    });
    socket.on("data", this.reader);
  }

  private readonly reader = (chunk: Uint8Array): void => this.received(chunk);

  private received(chunk: Uint8Array): void {
    if (this.phase === "done") return;
    this.frames.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if (this.phase === "connected") {
      this.wake.resolve();
      return;
    }
    if (this.phase !== "info") return;
    const text = new TextDecoder().decode(concat(this.frames));
    const end = text.indexOf(CRLF);
    if (end < 0) {
      if (text.length > MAX_INFO_BYTES) this.fail(new Error("nats: the server's first line is not an INFO line"));
      return;
    }
    const match = /^INFO\s+(\{.*\})\s*$/i.exec(text.slice(0, end));
    let info: { tls_required?: boolean; tls_available?: boolean };
    try {
      if (!match) throw new Error("not INFO");
      info = JSON.parse(match[1]);
    } catch {
      this.fail(new Error("nats: unexpected response from server (not an INFO line)"));
      return;
    }
    // As the NATS client does: TLS when the server requires it, or offers it and TLS is not turned off.
    if (info.tls_required === true || (info.tls_available === true && this.options.tls !== null)) {
      this.startTls();
    } else {
      this.connected();
    }
  }

  private startTls(): void {
    this.phase = "tls";
    const raw = this.socket!;
    const given: TlsOptions = this.options.tls ?? {};
    const file = (name: string | undefined) => (name === undefined ? undefined : fs.readFileSync(name));
    // The TLS socket reads the TCP socket from now on.
    raw.off("data", this.reader);
    const options: tls.ConnectionOptions = {
      socket: raw,
      host: this.tlsName,
      rejectUnauthorized: true,
      ca: given.ca ?? file(given.caFile),
      cert: given.cert ?? file(given.certFile),
      key: given.key ?? file(given.keyFile),
    };
    // A host name is the name the certificate must carry; an address is checked by its IP entries.
    if (!net.isIP(this.tlsName)) options.servername = this.tlsName;
    let secure: tls.TLSSocket;
    try {
      secure = tls.connect(options);
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    // From now on the TLS socket is the connection; the TCP socket under it keeps its 'error'
    // and 'close' listeners, which ignore it (what happens to it shows on the TLS socket too).
    this.watch(secure);
    secure.once("secureConnect", () => {
      if (this.phase !== "tls") return;
      if (!secure.authorized) {
        this.fail(secure.authorizationError ?? new Error("nats: the server's certificate is not trusted"));
        return;
      }
      this.connected();
    });
  }

  private connected(): void {
    this.phase = "connected";
    this.pending?.resolve();
    this.pending = null;
    this.wake.resolve();
  }

  /** A failure before the connection is made: the connect rejects and the socket goes. */
  private fail(error: Error): void {
    if (this.phase === "done") return;
    this.phase = "done";
    this.socket?.destroy();
    this.pending?.reject(error);
    this.pending = null;
    this.wake.resolve();
  }

  private socketClosed(): void {
    if (this.phase === "connected") {
      this.finish(this.socketError);
      return;
    }
    const error = this.socketError;
    const refused = (error as { code?: string } | undefined)?.code === "ECONNREFUSED";
    this.fail(refused ? new Error("connection refused", { cause: error }) : (error ?? new Error("nats: the server closed the connection")));
  }

  /** The end of a made connection: the protocol hears of it through closed(). */
  private finish(error: Error | undefined): void {
    if (this.phase !== "connected") {
      this.fail(error ?? new Error("nats: connection closed"));
      return;
    }
    this.phase = "done";
    this.closeError = error;
    this.socket?.destroy();
    this.wake.resolve();
    this.closedNotice.resolve(error);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this.iterate();
  }

  private async *iterate(): AsyncIterableIterator<Uint8Array> {
    for (;;) {
      if (this.frames.length === 0) {
        if (this.phase === "done") return;
        await this.wake.promise;
        this.wake = settleable<void>();
        continue;
      }
      const frames = this.frames;
      this.frames = [];
      for (const frame of frames) yield frame;
    }
  }

  isEncrypted(): boolean {
    return this.socket instanceof tls.TLSSocket;
  }

  send(frame: Uint8Array): void {
    // A write that fails shows as the socket's error and close; the protocol hears it there.
    if (this.phase === "connected") this.socket?.write(frame);
  }

  close(error?: Error): Promise<void> {
    if (this.phase === "connected") this.finish(error);
    // Never made: the protocol gave up on it (a timeout); it never reported closed() for it.
    else this.fail(error ?? new Error("nats: connection closed"));
    return Promise.resolve();
  }

  disconnect(): void {
    // What was written goes out first (the write's callback), then the connection ends.
    if (this.phase === "connected") this.socket?.write(new Uint8Array(0), () => this.finish(undefined));
  }

  closed(): Promise<void | Error> {
    return this.closedNotice.promise;
  }

  discard(): void {
    this.fail(new Error("nats: connection discarded"));
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const all = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

/** Every address of a host name (a cluster's name may have several), for the client to try in turn. */
function resolveHost(host: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    dns.lookup(host, { all: true }, (error, addresses) => {
      if (error) reject(error);
      else resolve(addresses.length > 0 ? addresses.map((entry) => entry.address) : [host]);
    });
  });
}

/**
 * Connects with nats-core's protocol over {@link GuardedNatsTransport}.
 *
 * @example Connect and close
 * ```ts
 * const connection = await connectGuarded({ servers: "nats://127.0.0.1:4222" });
 * await connection.close();
 * ```
 */
export async function connectGuarded(options: ConnectionOptions): Promise<NatsConnection> {
  const core = await import("@nats-io/nats-core/internal");
  // The factory is global to nats-core: set before every connect (as the client's own connect
  // does), so that the reconnects of every connection made here use this transport.
  core.setTransportFactory({ factory: () => new GuardedNatsTransport(), dnsResolveFn: resolveHost });
  return core.NatsConnectionImpl.connect(options);
}
