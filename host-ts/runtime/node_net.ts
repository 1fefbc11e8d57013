// Stream sockets over node:net. Deno and Bun run node:net too, so their runtimes inherit this
// through their `...nodeRuntime` spread; only a runtime without node:net needs its own.

import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import process from "node:process";
import * as tls from "node:tls";
import type { HostNet, InheritedSocket, NetAddress, NetConnectOptions, NetListenOptions, TlsOptions } from "./types.ts";
import type { NetConnection, NetConnectionHandlers, NetListener, TcpEndpoint } from "./types.ts";

/**
 * listen(2) backlog. A busy chardev server also keeps a few accepted connections waiting in
 * user space (see socket.ts), so this only bounds what the kernel holds beyond those.
 */
const LISTEN_BACKLOG = 8;

/** umask that makes bind(2) create the socket file 0600 (0777 & ~0177). */
const OWNER_ONLY_UMASK = 0o177;

function hostPort(host: string | undefined, port: number | undefined): string {
  if (host === undefined || port === undefined) return "";
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A TCP socket's end; null for a UNIX socket, which has no port. */
function tcpEndpoint(host: string | undefined, port: number | undefined): TcpEndpoint | null {
  return host === undefined || port === undefined ? null : { host, port };
}

/** Node's Buffer, seen as the plain Uint8Array the contract promises. */
function asBytes(chunk: Buffer): Uint8Array {
  return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
}

/**
 * Bun's plain sockets send what the kernel takes at once and copy the rest into a buffer of
 * their own when nothing is queued yet; a write while one is pending is queued by reference.
 * Node (libuv) and Deno keep a reference to what they cannot send at once in every case.
 * tests/socket_borrowed_write.test.ts checks this on each runtime.
 */
const COPIES_FIRST_WRITE = "Bun" in globalThis;

/**
 * Node: a borrowed write with nothing queued goes to the kernel straight from the caller's
 * memory (a non-blocking write(2) on the socket's fd: what libuv's own first try does, but
 * before libuv could keep a reference), and only what the kernel refuses is copied. Deno's and
 * Bun's socket handles have no fd of ours to write to.
 */
const WRITES_TO_FD = !("Deno" in globalThis) && !("Bun" in globalThis);

/**
 * Node: a plain client socket whose reader copies what it keeps reads into one buffer of ours
 * (net's `onread`), reused for every read: no buffer allocated per read and none of the
 * Readable stream's work. Node's own reads are 64 KiB too. Deno's and Bun's node:net may not
 * honour `onread`: they read as before.
 */
const READS_INTO_OWN_BUFFER = !("Deno" in globalThis) && !("Bun" in globalThis);
const READ_BUFFER_BYTES = 64 * 1024;

/** Where a socket that reads into its own buffer delivers: set once the connection is wrapped. */
interface OwnBufferReads {
  deliver: ((chunk: Uint8Array) => boolean) | null;
}

/** net's `onread` options for a socket reading into one reused buffer; `reads.deliver` gets each chunk. */
function ownBufferReading(reads: OwnBufferReads): net.OnReadOpts {
  const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const view = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
  // false pauses the socket (node stops reading until resume).
  return { buffer, callback: (length) => reads.deliver?.(view.subarray(0, length)) !== false };
}

/** A live plain socket's fd; -1 once destroyed (the fd may be another file's by then). */
function plainSocketFd(socket: net.Socket): number {
  if (socket.destroyed) return -1;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === "number" ? fd : -1;
}

/** Bytes of `data` the kernel took at once from a non-blocking socket fd; 0 on any error (EAGAIN, EPIPE: the queued write reports it). */
function sendNow(fd: number, data: Uint8Array): number {
  try {
    return fs.writeSync(fd, data);
  } catch {
    return 0;
  }
}

/**
 * Bytes a direct write keeps of what the kernel refused: enough for libuv to wait for the
 * socket to be writable and report it, small enough to come from node's buffer pool (no
 * allocation of its own). Keeping more would only copy bytes the caller still has.
 */
const WAKE_COPY_BYTES = 4096;

/**
 * A copy of borrowed bytes for a socket to keep. `Buffer.from` takes uninitialised memory
 * (small ones from node's pool), where `slice()` zero-fills a fresh buffer before copying.
 */
function keepableCopy(data: Uint8Array): Uint8Array {
  return Buffer.from(data);
}

/**
 * Wraps a connected node socket that is paused and has read nothing yet; `ownReads`: it was
 * made with `ownBufferReading`, so its input comes through there, not as 'data' events.
 */
function wrapSocket(socket: net.Socket, ownReads: OwnBufferReads | null = null): NetConnection {
  // TLS sockets encrypt through a path of their own: a borrowed write is always copied there.
  const plain = !(socket instanceof tls.TLSSocket);
  const sendsBorrowedAtOnce = COPIES_FIRST_WRITE && plain;
  const writesToFd = WRITES_TO_FD && plain;
  let handlers: NetConnectionHandlers | null = null;
  let closedByUs = false;
  let peerGone = false;
  /** A direct write found the kernel's buffer full; cleared when libuv's queue is written. */
  let kernelRefused = false;
  const reportClosed = () => {
    if (closedByUs || !handlers) return;
    const current = handlers;
    handlers = null;
    current.closed();
  };
  // An error is always followed by 'close', which is where we report it; without a listener
  // node would throw it.
  socket.on("error", () => {});
  socket.on("close", () => {
    peerGone = true;
    reportClosed();
  });
  if (ownReads) ownReads.deliver = (chunk) => handlers?.data(chunk) !== false;
  else {
    socket.on("data", (chunk: Buffer) => {
      if (handlers?.data(asBytes(chunk)) === false) socket.pause();
    });
  }
  // Called once per write when its bytes reach the kernel (or the socket dies): the queue is
  // empty when the last one runs. Unlike 'drain', this does not depend on node's own
  // highWaterMark, which differs from the chardev's.
  const afterWrite = () => {
    if (socket.writableLength !== 0) return;
    kernelRefused = false; // libuv has written everything: the kernel took bytes again
    if (!closedByUs) handlers?.drain();
  };
  return {
    readsBorrowed: ownReads !== null,
    localAddress: hostPort(socket.localAddress, socket.localPort),
    remoteAddress: hostPort(socket.remoteAddress, socket.remotePort),
    local: tcpEndpoint(socket.localAddress, socket.localPort),
    remote: tcpEndpoint(socket.remoteAddress, socket.remotePort),
    get bufferedBytes() {
      return socket.writableLength;
    },
    start(given) {
      handlers = given;
      // A connection that died while it waited its turn is reported now, not lost.
      if (peerGone) queueMicrotask(reportClosed);
      else socket.resume();
    },
    write(data) {
      socket.write(data, afterWrite);
    },
    writeBorrowed(data, keepAtMost) {
      // Without a bound everything is taken (copied as needed); with one, the runtime may keep less.
      const bounded = keepAtMost !== undefined;
      let keep = keepAtMost ?? data.length;
      let rest = data;
      let sent = 0;
      // Only with nothing queued: bytes sent now must not overtake bytes queued before them.
      if (socket.writableLength === 0 && !socket.connecting && !socket.writableEnded) {
        if (sendsBorrowedAtOnce) {
          const taken = Math.min(data.length, keep);
          socket.write(taken === data.length ? data : data.subarray(0, taken), afterWrite);
          return taken;
        }
        const fd = writesToFd ? plainSocketFd(socket) : -1;
        if (fd >= 0) {
          // A kernel that refused us takes nothing until libuv reports its queue written:
          // trying anyway costs a failed write(2) and the exception fs.writeSync makes of it.
          if (!kernelRefused) {
            sent = sendNow(fd, data);
            if (sent === data.length) return sent;
            kernelRefused = true;
            rest = data.subarray(sent);
          }
          // The kernel's buffer is full: what we keep only has to tell us when it has room
          // (its 'drain'); the caller offers the rest again from its own memory then.
          if (bounded) keep = Math.min(keep, WAKE_COPY_BYTES);
        }
      }
      if (keep <= 0) return sent;
      const kept = rest.length <= keep ? rest : rest.subarray(0, keep);
      socket.write(keepableCopy(kept), afterWrite);
      return sent + kept.length;
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    setNoDelay: (enabled) => socket.setNoDelay(enabled),
    close() {
      closedByUs = true;
      handlers = null;
      socket.destroy();
    },
  };
}

/**
 * libuv reports a missing directory as EACCES when binding a UNIX socket; the parent
 * directory tells the real reason.
 */
function unixBindError(error: NodeJS.ErrnoException, socketPath: string): unknown {
  if (error.code !== "EACCES") return error;
  try {
    fs.statSync(path.dirname(socketPath));
  } catch (parentError) {
    return parentError;
  }
  return error;
}

/** How long the liveness probe of an existing socket file may take before it counts as live. */
const SOCKET_PROBE_TIMEOUT_MS = 2_000;

/** Connects to a UNIX socket and hangs up at once: "connected", or the errno name it failed with. */
function probeUnixSocket(socketPath: string): Promise<string> {
  return new Promise((resolve) => {
    const probe = net.connect({ path: socketPath });
    const done = (answer: string) => {
      clearTimeout(timer);
      probe.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done("ETIMEDOUT"), SOCKET_PROBE_TIMEOUT_MS);
    probe.once("connect", () => done("connected"));
    probe.once("error", (error: NodeJS.ErrnoException) => done(error.code ?? "EIO"));
  });
}

/**
 * QEMU replaces whatever is at the path; we replace only a stale socket: one whose listener is
 * gone (killed with SIGKILL, say), so connecting to it is refused. A socket that answers (or
 * whose queue is full, or that we may not probe) is live: we refuse it with EADDRINUSE instead
 * of taking it over, and its listener sees one connection that closes at once. Any other
 * kind of file is left for bind to report.
 */
async function removeStaleSocket(socketPath: string): Promise<void> {
  try {
    if (!fs.lstatSync(socketPath).isSocket()) return;
  } catch {
    return; // Nothing there (or not ours to look at): bind reports what is wrong.
  }
  const answer = await probeUnixSocket(socketPath);
  if (answer === "ENOENT") return; // removed meanwhile
  if (answer !== "ECONNREFUSED") {
    throw Object.assign(new Error(`a listener answers on ${socketPath}`), { code: "EADDRINUSE" });
  }
  try {
    fs.unlinkSync(socketPath);
  } catch {
    // Removed meanwhile: bind reports anything else.
  }
}

/**
 * Starts `server` listening on a UNIX path with the file created 0600. node binds
 * synchronously inside listen(), so the umask covers exactly that bind (Deno and Bun do the
 * same). umask is process-wide: a file another thread creates in that instant gets the
 * stricter mode, never a looser one.
 */
function listenUnixOwnerOnly(server: net.Server, socketPath: string): void {
  let previous: number;
  try {
    previous = process.umask(OWNER_ONLY_UMASK);
  } catch {
    // Worker threads may not set the umask; a socket file open to others for a moment is
    // worse than no socket.
    throw Object.assign(new Error("cannot create the socket 0600 here: process.umask is not available in this thread"), {
      code: "EPERM",
    });
  }
  try {
    server.listen({ path: socketPath, backlog: LISTEN_BACKLOG });
  } finally {
    process.umask(previous);
  }
}

/**
 * How long a client may take to finish its TLS handshake. node's default is 120 s; a client
 * that connects and says nothing must not hold a socket that long.
 */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Longest TLS failure reason passed on (OpenSSL's texts are short; a peer's alert is not ours to echo whole). */
const MAX_TLS_REASON = 200;

/** OpenSSL's message without its `error:0A0000C7:SSL routines::` prefix, on one bounded line. */
function tlsReason(error: Error): string {
  const text = error.message.replace(/^error:[0-9A-Fa-f]+:[^:]*:[^:]*:/, "").replace(/\s+/g, " ").trim();
  return text.length > MAX_TLS_REASON ? `${text.slice(0, MAX_TLS_REASON)}...` : text;
}

/** The PEM material in node:tls's terms (Buffers that view the same bytes). */
function secureContextOptions(options: TlsOptions): tls.SecureContextOptions {
  const pem = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { ca: pem(options.ca), cert: options.cert && pem(options.cert), key: options.key && pem(options.key) };
}

/** A plain server whose sockets arrive paused, or a TLS server whose sockets arrive paused after their handshake. */
function createServer(onConnection: (connection: NetConnection) => void, options: NetListenOptions): net.Server {
  const credentials = options.tls;
  if (!credentials) {
    const server = net.createServer({ pauseOnConnect: true });
    server.on("connection", (socket) => onConnection(wrapSocket(socket)));
    return server;
  }
  const server = tls.createServer({
    ...secureContextOptions(credentials),
    requestCert: credentials.verifyPeer,
    rejectUnauthorized: credentials.verifyPeer,
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
  });
  // Paused before any 'data' listener exists, the decrypted input waits for the chardev's start.
  server.on("secureConnection", (socket: tls.TLSSocket) => onConnection(wrapSocket(socket.pause())));
  // That one socket is closed (node does it itself; Deno's compat layer leaves it open); the
  // listener keeps serving.
  server.on("tlsClientError", (error: Error, socket: tls.TLSSocket) => {
    const peer = hostPort(socket.remoteAddress, socket.remotePort) || "a client";
    socket.destroy();
    options.onTlsFailure?.(peer, tlsReason(error));
  });
  return server;
}

function listen(address: NetAddress | InheritedSocket, onConnection: (connection: NetConnection) => void, options: NetListenOptions = {}): Promise<NetListener> {
  const server = createServer(onConnection, options);
  return new Promise<NetListener>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      server.close();
      reject(address.transport === "unix" ? unixBindError(error, address.path) : error);
    };
    server.once("error", failed);
    server.once("listening", () => {
      server.off("error", failed);
      // A failed accept (EMFILE, ENFILE) lands here and is not fatal: libuv gives up a reserved
      // fd, accepts and closes what waits in the backlog so the socket stops polling readable,
      // and takes the reserve back, so node neither spins nor stops listening
      // (tests/emfile.test.ts). Deno's and Bun's node:net report nothing: _accept_guard.ts.
      server.on("error", () => {});
      resolve(address.transport === "fd" ? inheritedListener(server) : address.transport === "unix" ? unixListener(server, address) : tcpListener(server));
    });
    try {
      if (address.transport === "fd") {
        server.listen({ fd: address.fd, backlog: LISTEN_BACKLOG });
      } else if (address.transport === "unix") {
        removeStaleSocket(address.path).then(() => listenUnixOwnerOnly(server, address.path)).catch(failed);
      } else {
        server.listen({ host: address.host, port: address.port, backlog: LISTEN_BACKLOG });
      }
    } catch (error) {
      failed(error as NodeJS.ErrnoException);
    }
  });
}

function tcpListener(server: net.Server): NetListener {
  const bound = server.address() as net.AddressInfo;
  return {
    address: { transport: "tcp", host: bound.address, port: bound.port },
    close: () => server.close(),
  };
}

/**
 * A listener on a socket someone else made (a parent, systemd): its address as bound (TCP or
 * UNIX), and closing leaves a UNIX socket file alone, since it was never ours to remove.
 */
function inheritedListener(server: net.Server): NetListener {
  const bound = server.address();
  const address: NetAddress = typeof bound === "string" ? { transport: "unix", path: bound } : bound ? { transport: "tcp", host: bound.address, port: bound.port } : { transport: "unix", path: "" };
  return { address, close: () => server.close() };
}

function unixListener(server: net.Server, address: NetAddress & { transport: "unix" }): NetListener {
  let inode = -1;
  try {
    inode = fs.statSync(address.path).ino;
  } catch {
    // Removed already by someone else: then close has nothing of ours to remove.
  }
  return {
    address,
    close() {
      server.close(); // libuv unlinks the path here; other runtimes may not
      try {
        const now = fs.lstatSync(address.path);
        // Only our own socket: someone may have bound a new one at this path since.
        if (now.isSocket() && now.ino === inode) fs.unlinkSync(address.path);
      } catch {
        // Already gone.
      }
    },
  };
}

/** A TLS client socket; with `verifyPeer` the server's certificate must chain to `ca` and name the host. */
function connectTls(address: NetAddress, credentials: TlsOptions): tls.TLSSocket {
  const where = address.transport === "unix" ? { path: address.path } : { host: address.host, port: address.port };
  return tls.connect({
    ...where,
    ...secureContextOptions(credentials),
    rejectUnauthorized: credentials.verifyPeer,
    // SNI carries names only; for an IP address node checks the certificate's IP entries itself.
    servername: address.transport === "tcp" && !net.isIP(address.host) ? address.host : undefined,
  });
}

/**
 * Takes over a connected socket fd (QEMU's `fd=` for a client). A TLS client over one is
 * refused before this (QEMU does too).
 */
function adoptConnected(fd: number): Promise<NetConnection> {
  return new Promise<NetConnection>((resolve, reject) => {
    let socket: net.Socket;
    try {
      socket = new net.Socket({ fd, readable: true, writable: true });
    } catch (error) {
      reject(error);
      return;
    }
    // Paused until the chardev starts it, like a connection we made.
    socket.pause();
    resolve(wrapSocket(socket));
  });
}

function connect(address: NetAddress | InheritedSocket, options: NetConnectOptions = {}): Promise<NetConnection> {
  if (address.transport === "fd") return adoptConnected(address.fd);
  return new Promise<NetConnection>((resolve, reject) => {
    const ownReads: OwnBufferReads | null = options.borrowedReads && READS_INTO_OWN_BUFFER && !options.tls ? { deliver: null } : null;
    const onread = ownReads ? ownBufferReading(ownReads) : undefined;
    const socket = options.tls
      ? connectTls(address, options.tls)
      : address.transport === "unix"
        ? net.connect({ path: address.path, onread })
        : net.connect({ host: address.host, port: address.port, onread });
    // Paused before it connects, node reads nothing until the chardev starts the connection.
    socket.pause();
    const failed = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.once("error", failed);
    // A TLS connection is ours once the handshake (and the server's verification) is done.
    socket.once(options.tls ? "secureConnect" : "connect", () => {
      socket.off("error", failed);
      resolve(wrapSocket(socket, ownReads));
    });
  });
}

/**
 * node:net sockets in the shape of the runtime contract.
 *
 * @example Listen on a free loopback port
 * ```ts
 * const listener = await nodeNet.listen({ transport: "tcp", host: "127.0.0.1", port: 0 }, (connection) => {
 *   connection.start({ data: (chunk) => connection.write(chunk.slice()), drain() {}, closed() {} }); // echo
 * });
 * listener.address; // { transport: "tcp", host: "127.0.0.1", port: 40123 }
 * listener.close();
 * ```
 */
export const nodeNet: HostNet = {
  listen,
  connect,
  checkTls(credentials) {
    const { cert, key } = secureContextOptions(credentials);
    // node:crypto parses and compares the same way on Node, Deno and Bun (Deno's
    // createSecureContext checks nothing).
    if (cert) {
      const certificate = new crypto.X509Certificate(cert as Buffer);
      if (key && !certificate.checkPrivateKey(crypto.createPrivateKey(key as Buffer))) {
        throw new Error("The certificate and the given key do not match.");
      }
    }
    tls.createSecureContext(secureContextOptions(credentials));
  },
};
