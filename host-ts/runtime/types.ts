// The runtime-neutral contract: the few host primitives that differ between Node, Deno and
// Bun. Shared code only sees these types; each runtime/ file fills them.

import type { ConnectionOptions as NatsConnectionOptions, NatsConnection } from "@nats-io/nats-core";

/** An append-only sink for `logfile=`. Writes are synchronous, as QEMU's. */
export interface LogSink {
  write(data: Uint8Array): void;
  close(): void;
}

/** A source of input bytes that can pause while the holder is full. */
export interface InputSource {
  pause(): void;
  resume(): void;
  close(): void;
}

export interface InputHandlers {
  data(chunk: Uint8Array): boolean | void;
  end(): void;
  error?(error: unknown): void;
}

/**
 * `terminal`: read and write, non-blocking, and never as our controlling terminal (O_NOCTTY),
 * for a host tty such as a serial port.
 */
export type FileOpenMode = "write" | "append" | "read" | "readwrite-nonblocking" | "terminal";

/** The process's own stdin/stdout, for the `stdio` chardev. */
export interface StdioPrimitives {
  readonly isTerminal: boolean;
  /** Raw mode on a terminal stdin (no echo, no line editing, no signal keys). */
  setRaw(raw: boolean): void;
  readInput(handlers: InputHandlers): InputSource;
  /** Bytes taken, or -EAGAIN while too much output is queued. */
  write(data: Uint8Array): number;
  /** Calls `callback` once queued output has drained; returns a cancel function. */
  onDrain(callback: () => void): () => void;
  /** Delivers the interrupt signal to this process, as the terminal's Ctrl-C would. */
  interrupt(): void;
}

/** A freshly allocated pty pair: we keep the master, a peer opens the slave. */
export interface PtyPair {
  /** The master's file descriptor, non-blocking and close-on-exec. */
  readonly fd: number;
  /** The slave's device path, e.g. `/dev/pts/3`. */
  readonly slavePath: string;
}

/** A pty master's state from one poll(2) that does not wait. */
export interface PtyReadiness {
  /** Input from the peer is waiting (POLLIN). */
  readonly readable: boolean;
  /** A write would take bytes now (POLLOUT). */
  readonly writable: boolean;
  /** Nobody has the slave open (POLLHUP); an fd that cannot be polled reads as hung up too. */
  readonly hangup: boolean;
}

/**
 * POSIX pty calls for the `pty` chardev. Nothing here blocks or spawns a process; the chardev
 * polls on a timer, as QEMU does. The data calls never throw.
 */
export interface PtyPrimitives {
  /**
   * Allocates a pty pair and prepares its slave as QEMU does: raw mode (cfmakeraw) and, so only
   * our user can connect, mode 0600. The slave is opened once and closed again, which makes
   * the master report POLLHUP until a peer opens it. Throws an error with an errno `code`.
   */
  openpt(): PtyPair;
  poll(fd: number): PtyReadiness;
  /** One read(2) of at most `max` bytes: the bytes (empty at EOF), or -errno (-EAGAIN, -EIO). */
  read(fd: number, max: number): Uint8Array | number;
  /** One write(2): bytes written, or -errno (-EAGAIN when the pty is full). */
  write(fd: number, data: Uint8Array): number;
  close(fd: number): void;
  /** symlink(2) `path` -> `target`; throws an error with an errno `code` (EEXIST if `path` exists). */
  symlink(target: string, path: string): void;
  /** unlink(2) `path`, ignoring failure (the link may be gone already). */
  unlink(path: string): void;
  /** What is at `path` now, so the chardev can tell a live link from a stale one before `symlink`. */
  inspectLink(path: string): PtyLinkState;
}

/**
 * What is at a pty link's path: nothing; a symbolic link, with its target and what that is now
 * (a character device such as a /dev/pts/N, which exists only while some master holds it;
 * another kind of file; or nothing: the link dangles) and whether that target changed status
 * (ctime) after the link was made, as a /dev/pts/N number handed out again does; or anything
 * else (a file, a directory).
 */
export type PtyLinkState =
  | { readonly kind: "none" }
  | {
    readonly kind: "link";
    readonly target: string;
    readonly leadsTo: "terminal" | "other" | "nothing";
    readonly targetNewerThanLink: boolean;
  }
  | { readonly kind: "other" };

/** One static resource a web server answers GET (and HEAD) with. */
export interface WebResource {
  readonly contentType: string;
  readonly body: string | Uint8Array;
}

/** What a server tells about an HTTP request or WebSocket upgrade before answering it. */
export interface WebRequestInfo {
  /** "page" for a plain HTTP request, "socket" for a WebSocket upgrade at `socketPath`. */
  readonly kind: "page" | "socket";
  /** The request target as sent: path and query (`/?token=...`). */
  readonly target: string;
  /** The `Host` header as sent, or "" when absent. */
  readonly host: string;
  /** The `Origin` header as sent, or null when absent (non-browser clients send none). */
  readonly origin: string | null;
  /** The `Authorization` header as sent, or null when absent. */
  readonly authorization: string | null;
  /** The `Cookie` header as sent, or null when absent. */
  readonly cookie: string | null;
}

/** What the server's user decided about one request. */
export type WebVerdict =
  /** Serve it: a page with these extra headers (e.g. Set-Cookie), a socket with this role. */
  | { readonly admit: true; readonly role: "rw" | "ro"; readonly headers?: Readonly<Record<string, string>> }
  /** Refuse it with this status (401, 403, 503), these headers and a one-line text body. */
  | { readonly admit: false; readonly status: number; readonly text: string; readonly headers?: Readonly<Record<string, string>> };

/** One end of a TCP connection. */
export interface TcpEndpoint {
  readonly host: string;
  readonly port: number;
}

/** One WebSocket connection, as the web server hands it to its user. */
export interface WebSocketPeer {
  /** The WebSocket subprotocol agreed in the handshake, or "" when none. */
  readonly protocol: string;
  /** Bytes queued for this peer that the OS has not taken yet. */
  readonly bufferedAmount: number;
  /** The TCP connection's far end (the browser's address), and ours: who the tab is. */
  readonly remote: TcpEndpoint;
  readonly local: TcpEndpoint;
  /** Queues one binary frame. Keeps a reference to `data`: pass bytes nobody will change. */
  send(data: Uint8Array): void;
  /** Queues one text frame (a control message to the page). */
  sendText(text: string): void;
  /** Stops reading frames from this peer until `resume` (input backpressure). */
  pause(): void;
  resume(): void;
  /**
   * Sends a close frame after what is queued; drops the connection if the peer does not
   * finish the close handshake soon (a stalled peer must not hold memory).
   */
  close(code: number, reason: string): void;
}

/** What the web server's user does with one WebSocket connection. */
export interface WebSocketHandlers {
  /** A frame arrived: binary frames as bytes, text frames as a string. */
  message(data: Uint8Array | string): void;
  /** The connection ended, however it ended. Called once. */
  close(): void;
}

export interface WebServerOptions {
  /** Address to listen on ("127.0.0.1", "::1", "0.0.0.0", ...). */
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** GET answers by path ("/", "/terminal.js"); anything else is 404. */
  resources: ReadonlyMap<string, WebResource>;
  /** Headers every HTTP answer carries (e.g. a Content-Security-Policy). */
  headers: Readonly<Record<string, string>>;
  /** The path where WebSocket upgrades are accepted. */
  socketPath: string;
  /** WebSocket subprotocols the server agrees to when a client offers them. */
  socketProtocols: readonly string[];
  /** Largest frame a peer may send; a bigger one closes that connection. */
  maxFrameBytes: number;
  /** Serve HTTPS and WSS with these credentials (a server's: `cert` and `key` are required). */
  tls?: TlsOptions;
  /** An HTTPS client's TLS handshake failed; that connection is closed. `peer` is `host:port`. */
  onTlsFailure?(peer: string, reason: string): void;
  /** TCP connections served at once (page loads and sockets together); more are closed. */
  maxConnections: number;
  /**
   * Called for every TCP connection before anything is read from it; false closes it at once
   * (e.g. another local user's connection to a loopback listener).
   */
  acceptConnection(local: TcpEndpoint, remote: TcpEndpoint): boolean;
  /** Checks every request and upgrade (origin, host, secret) before it is answered. */
  check(request: WebRequestInfo): WebVerdict;
  /** A WebSocket connected with the role its upgrade was admitted with; returns what to do with its frames. */
  connect(peer: WebSocketPeer, role: "rw" | "ro"): WebSocketHandlers;
}

/** A listening web server. */
export interface WebServer {
  /** The port actually bound (the one picked when `port` was 0). */
  readonly port: number;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

/** An HTTP + WebSocket server, for the `web` chardev. */
export interface WebServerPrimitives {
  /** Starts listening; rejects with the runtime's error (with an errno `code`, e.g. EADDRINUSE), leaving nothing open. */
  listen(options: WebServerOptions): Promise<WebServer>;
}

export interface HostRuntime {
  /** "node", "deno", "bun" or "web". */
  readonly name: string;
  /**
   * Opens a file or FIFO; throws the runtime's error (with an errno `code`) on failure. A file
   * that `write` or `append` creates gets `createMode` as open(2)'s mode, so the umask still
   * applies and a file that already exists keeps its own mode.
   *
   * @param createMode permissions of a file this call creates; 0o600 when absent (private: a
   *   console log holds whatever the guest or shell printed)
   */
  openFile(path: string, mode: FileOpenMode, createMode?: number): number;
  /** One write(2): bytes written, or -errno (-EAGAIN on a full non-blocking FIFO). */
  writeFd(fd: number, data: Uint8Array): number;
  closeFd(fd: number): void;
  /** Reads `fd` (a FIFO or regular file) in the background until EOF or close; owns `fd` from now on. */
  readFd(fd: number, handlers: InputHandlers): InputSource;
  /** Calls `callback` once when `fd` may be writable again; returns a cancel function. */
  watchWritable(fd: number, callback: () => void): () => void;
  /**
   * Reads a small file whole (a secret, a certificate); throws the runtime's error, or one
   * with code EFBIG when the file holds more than `maxBytes`. Absent where there are no files.
   */
  readSmallFile?(path: string, maxBytes: number): Uint8Array;
  /** rename(2), for rotating logs (`logfilemax=`); throws the runtime's error. Absent where there are no files. */
  renameFile?(from: string, to: string): void;
  /** The size of the file open as `fd` (fstat), where a rotated log starts counting. Absent where there are no files. */
  fileSize?(fd: number): number;
  /** A synchronous appending (or truncating) log file, created 0600 (an existing one keeps its mode). */
  openLog(path: string, append: boolean): LogSink;
  /** Stream sockets (TCP, UNIX) for the `socket` chardev; absent where there are none (edge). */
  net?: HostNet;
  /** The process's terminal; absent where there is none (edge runtimes). */
  stdio?: StdioPrimitives;
  /** An HTTP + WebSocket server; absent where a runtime cannot listen (edge runtimes). */
  web?: WebServerPrimitives;
  /** Pseudo-terminals; absent where the runtime cannot allocate them. */
  pty?: PtyPrimitives;
  /** Programs: the ones we start (`spawn`, `stty`) and our own (the command-line tool); absent on the edge. */
  process?: ProcessPrimitives;
  /** Who is at the other end of a loopback TCP connection (Linux: /proc/net/tcp{,6}); absent where unknown. */
  peers?: PeerIdentity;
  /** UDP sockets for the `udp` chardev; absent where there are none (edge). */
  udp?: HostDatagram;
  /** NATS connections for the `nats` chardev; absent where there is no TCP transport (edge). */
  nats?: HostNats;
}

// ---- NATS (the `nats` chardev) ----

/**
 * Connects to NATS with the runtime's transport. The protocol client (nats-core, JetStream,
 * KV) is runtime neutral; only the transport under it is not: Node, Deno and Bun all run
 * runtime/node_nats_transport.ts over `node:net` and `node:tls` (Deno and Bun through theirs).
 */
export interface HostNats {
  /** Connects (the client's own reconnect loop keeps it connected); rejects with the client's error. */
  connect(options: NatsConnectionOptions): Promise<NatsConnection>;
}

// ---- datagram sockets (the `udp` chardev) ----

/** How a UDP socket is made: bound locally, and sending to (and hearing only from) one remote. */
export interface DatagramOptions {
  /** Where datagrams go; a host name is looked up once, when the socket is made. */
  readonly remote: { readonly host: string; readonly port: number };
  /** Where to bind; "" is any address, port 0 a free port. */
  readonly local: { readonly host: string; readonly port: number };
  /** The address family: by the remote host's form when null (a name means IPv4 unless `family` is 6). */
  readonly family: 4 | 6 | null;
}

/** What a UDP socket's user does with what arrives. */
export interface DatagramHandlers {
  /** One datagram's payload from the remote (datagrams from anyone else are dropped before this). */
  message(data: Uint8Array): void;
}

/** A bound UDP socket with a fixed remote. */
export interface DatagramSocket {
  /** Our bound end, numeric. */
  readonly local: TcpEndpoint;
  /** The remote, its name looked up. */
  readonly remote: TcpEndpoint;
  /** Bytes handed to `send` that the kernel has not taken yet. */
  readonly bufferedBytes: number;
  /** Queues `data` as one datagram to the remote; keeps a reference: pass bytes nobody changes. */
  send(data: Uint8Array): void;
  /** Calls `callback` once what is queued has gone to the kernel; returns a cancel function. */
  onDrain(callback: () => void): () => void;
  close(): void;
}

/** Datagram sockets. Failures reject with the runtime's error, whose `code` is the errno name. */
export interface HostDatagram {
  open(options: DatagramOptions, handlers: DatagramHandlers): Promise<DatagramSocket>;
}

/** Who owns the other end of a TCP connection made on this machine. */
export interface PeerIdentity {
  /** Our own uid (process.getuid()). */
  readonly ownUid: number;
  /** The uid owning the TCP socket at `remote` that is connected to our `local` end; null when it cannot be found. */
  tcpPeerUid(local: { host: string; port: number }, remote: { host: string; port: number }): number | null;
}

// ---- stream sockets (the `socket` chardev) ----

/** Where a stream socket listens or connects (QAPI's SocketAddress, inet and unix kinds). */
export type NetAddress =
  | { readonly transport: "tcp"; readonly host: string; readonly port: number }
  | { readonly transport: "unix"; readonly path: string };

/**
 * A socket already open in this process (QEMU's `fd=`, systemd socket activation): a
 * listening one for `listen`, a connected one for `connect`. Closed with the listener or
 * connection made of it.
 */
export interface InheritedSocket {
  readonly transport: "fd";
  readonly fd: number;
}

/** Callbacks of one connection, given once to `NetConnection.start`. */
export interface NetConnectionHandlers {
  /**
   * Bytes from the peer; returning false pauses reading until `resume`. With `borrowedReads`
   * the chunk is valid only during the call.
   */
  data(chunk: Uint8Array): boolean | void;
  /** Everything queued by `write` has gone to the kernel. */
  drain(): void;
  /** The peer left or the connection failed. Called once, and never after our own `close`. */
  closed(): void;
}

/** A connected stream socket. It reads nothing until `start`, so it can wait its turn. */
export interface NetConnection {
  /** Our end as `host:port` (`[::1]:4444` for IPv6); "" for UNIX sockets. */
  readonly localAddress: string;
  /** The peer's end, in the same form. */
  readonly remoteAddress: string;
  /** Our end of a TCP connection, the host numeric as the runtime reports it ("::ffff:127.0.0.1"); null for UNIX sockets. */
  readonly local: TcpEndpoint | null;
  /** The peer's end of a TCP connection; null for UNIX sockets. */
  readonly remote: TcpEndpoint | null;
  /** Bytes taken by `write` that the kernel has not accepted yet (user-space memory in use). */
  readonly bufferedBytes: number;
  /** Sets the handlers and starts reading. */
  start(handlers: NetConnectionHandlers): void;
  /** Queues `data` and keeps a reference until it is sent: pass bytes nobody changes later. */
  write(data: Uint8Array): void;
  /**
   * Takes bytes the caller overwrites once this returns (a view of ring memory): what the
   * kernel accepts at once goes straight from `data` where the runtime can, and the runtime
   * keeps (copies) what it has to of the rest. Without `keepAtMost` all of `data` is taken;
   * with it, at most `keepAtMost` bytes are kept, and fewer when the kernel's buffer is full
   * (a small piece, to learn when it has room). Returns the bytes taken, sent and kept; the
   * caller offers the rest again after `drain`.
   */
  writeBorrowed(data: Uint8Array, keepAtMost?: number): number;
  /** `data` chunks view one buffer the runtime reads into again (asked for with `borrowedReads`, honoured where the runtime can). */
  readonly readsBorrowed?: boolean;
  pause(): void;
  resume(): void;
  /** TCP_NODELAY; no effect on UNIX sockets. */
  setNoDelay(enabled: boolean): void;
  /** Closes at once; queued bytes not yet in the kernel are dropped. */
  close(): void;
}

/** A listening socket. */
export interface NetListener {
  /** The bound address: the real port when port 0 was asked, the numeric host. */
  readonly address: NetAddress;
  /** Stops listening; a UNIX listener removes its socket file. Accepted connections stay open. */
  close(): void;
}

/**
 * TLS with X.509 certificates, PEM-encoded (QEMU's tls-creds-x509 files, already read).
 * A server always has `cert` and `key`; a client has them when it presents a certificate.
 */
export interface TlsOptions {
  /** CA certificates a peer's certificate must chain to (`ca-cert.pem`). */
  readonly ca: Uint8Array;
  /** Our certificate chain (`server-cert.pem` or `client-cert.pem`). */
  readonly cert?: Uint8Array;
  /** Its private key (`server-key.pem` or `client-key.pem`). */
  readonly key?: Uint8Array;
  /**
   * A server asks every client for a certificate and refuses the handshake without a valid
   * one; a client refuses a server whose certificate does not chain to `ca` or does not name
   * the host it connected to.
   */
  readonly verifyPeer: boolean;
}

/** How a listener serves its connections. */
export interface NetListenOptions {
  /** Every connection is TLS; `onConnection` gets it after a successful handshake only. */
  readonly tls?: TlsOptions;
  /**
   * A client's TLS handshake failed (no certificate, a wrong one, not TLS at all): that
   * connection is closed and the listener goes on. `peer` is `host:port`, `reason` one line.
   */
  onTlsFailure?(peer: string, reason: string): void;
}

/** How a connection is made. */
export interface NetConnectOptions {
  /** Speak TLS: the connection resolves after a successful handshake (with the server verified when `verifyPeer`). */
  readonly tls?: TlsOptions;
  /**
   * The caller's `data` handler copies whatever it keeps of a chunk past the call: the runtime
   * may then read every chunk into one buffer it reuses (Node, plain sockets), with no
   * allocation per read.
   */
  readonly borrowedReads?: boolean;
}

/** Stream sockets. Failures reject with the runtime's error, whose `code` is the errno name. */
export interface HostNet {
  /**
   * Listens on `address`; every accepted connection is handed to `onConnection` unstarted.
   * A UNIX socket file is created mode 0600 from the start, replacing a stale socket file
   * (one that refuses connections; never another kind of file). A socket file something still
   * answers on is refused with an EADDRINUSE error.
   */
  listen(address: NetAddress | InheritedSocket, onConnection: (connection: NetConnection) => void, options?: NetListenOptions): Promise<NetListener>;
  /** Connects to `address` (or takes over a connected socket); the connection is unstarted. */
  connect(address: NetAddress | InheritedSocket, options?: NetConnectOptions): Promise<NetConnection>;
  /**
   * Checks that TLS material can be used (PEM parses, the key matches the certificate);
   * throws an Error whose message says what is wrong. Absent where TLS is not available.
   */
  checkTls?(tls: TlsOptions): void;
}

// ---- programs (the `spawn` and `serial` chardevs, the command-line tool) ----

/** How a program ended: its exit code, or the name of the signal that killed it. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: string | null;
}

/** A program we started. */
export interface SpawnedProcess {
  readonly pid: number;
  /** Resolves once the program has ended (never rejects: a failure to start is an exit too). */
  readonly exit: Promise<ProcessExit>;
  /** Sends a signal ("SIGHUP", "SIGKILL"); does nothing once it has ended. */
  kill(signal: string): void;
  /**
   * What it wrote to the stderr it was started with (a pipe of ours), e.g. a complaint before
   * it opened a terminal of its own; kept up to a few KiB.
   */
  startupErrors(): string;
}

export interface SpawnOptions {
  /** Variables added to (or replacing) our environment. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Run in a new session (setsid(2)), so the first terminal it opens becomes its controlling
   * terminal and our terminal's signals do not reach it.
   */
  readonly newSession?: boolean;
}

/** What the program (the command-line tool) is told when its terminal changes size. */
export interface TerminalSizeInfo {
  readonly cols: number;
  readonly rows: number;
}

/**
 * Starting programs, and the few facts and controls of our own process a command-line tool
 * needs. Shared code reaches no `process` global and no `node:*` module except through this.
 */
export interface ProcessPrimitives {
  /**
   * Starts `command` with no stdin or stdout (it opens a terminal of its own); its stderr is a
   * pipe read into `startupErrors`. Failing to start shows as an exit with code 127.
   */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): SpawnedProcess;
  /** Runs `command` to its end: how it ended and what it wrote (stdout, then stderr). */
  run(command: string, args: readonly string[]): Promise<{ readonly exit: ProcessExit; readonly output: string }>;

  /** Our process id (systemd's LISTEN_PID names the process its sockets are for); absent where unknown. */
  readonly pid?: number;
  /** Our command-line arguments, after the runtime and the script. */
  readonly args: readonly string[];
  /** An environment variable of ours. */
  env(name: string): string | undefined;
  /** Whether our stdin is a terminal. */
  readonly stdinIsTerminal: boolean;
  /** Our stdout's terminal size, or null when stdout is not a terminal. */
  terminalSize(): TerminalSizeInfo | null;
  /** Calls `listener` when our stdout's terminal changes size; returns a function that stops it. */
  onTerminalResize(listener: (size: TerminalSizeInfo) => void): () => void;
  /** Calls `handler` on SIGINT, SIGTERM or SIGHUP instead of dying; returns a function that stops it. */
  onSignal(signal: "SIGINT" | "SIGTERM" | "SIGHUP", handler: () => void): () => void;
  /** Writes text to stdout or stderr. */
  print(stream: "stdout" | "stderr", text: string): void;
  /** mkdir -p with `mode` for what it creates; throws with an errno `code`. */
  makeDirectory(path: string, mode: number): void;
  /** Whether something (a file, socket or link, even a dangling one) is at `path`. */
  exists(path: string): boolean;
  /** Ends the process with `code` once what it wrote to stdout and stderr has gone out. */
  exit(code: number): Promise<never>;
  /** What `-pidfile` and `-daemonize` need; absent where a runtime cannot provide it. */
  readonly service?: ServicePrimitives;
}

/** A copy of this program started in the background by `-daemonize`. */
export interface BackgroundCopy {
  readonly pid: number;
  /** Resolves once it has ended (a failure to start is an exit with code 127). */
  readonly exit: Promise<ProcessExit>;
  /** Lets the foreground exit while the copy runs on (stops reading its pipe). */
  release(): void;
}

/**
 * The few things running as a service needs of our own process (`-pidfile`, `-daemonize`),
 * besides ProcessPrimitives.
 */
export interface ServicePrimitives {
  /** Whether a process with this id exists (one of another user's counts). */
  processExists(pid: number): boolean;
  /** A small file's text (at most `maxBytes` read), or null when there is no file; throws the runtime's error otherwise. */
  readTextFile(path: string, maxBytes: number): string | null;
  /** Creates `path` holding `text`, whole at once, only if nothing is there (an error with code EEXIST otherwise). */
  createFileExclusive(path: string, text: string, mode: number): void;
  /** Removes a file; none there is fine. */
  removeFile(path: string): void;
  /** `path` from our working directory, as an absolute path. */
  absolutePath(path: string): string;
  /**
   * Starts this program again with `args` (same runtime, same script, same working directory)
   * in a new session, stdin from /dev/null, stdout and stderr to `outputFile` (appended,
   * created 0600) or /dev/null, and a pipe back whose text reaches `onMessage`.
   */
  startBackgroundCopy(args: readonly string[], options: { env: Readonly<Record<string, string>>; outputFile: string | null; onMessage(text: string): void }): BackgroundCopy;
  /** In a background copy: its pipe back to the foreground that started it (taken once); null elsewhere. */
  backgroundChannel(): { send(text: string): void; close(): void } | null;
}
