// The `web` chardev's HTTP + WebSocket server on node:http and the `ws` package. Deno and Bun
// run both through their Node compatibility, so this one file serves all three runtimes.

import * as http from "node:http";
import * as https from "node:https";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import type { WebRequestInfo, WebServer, WebServerOptions, WebServerPrimitives, WebSocketPeer, WebVerdict, TcpEndpoint } from "./types.ts";

/**
 * How long a peer we close may take to answer the close frame. A stalled peer never answers;
 * after this it is dropped so its queued output is freed.
 */
const CLOSE_GRACE_MS = 10_000;

/** How long an HTTPS client may take to finish its TLS handshake (node's default is 120 s). */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

function requestInfo(request: http.IncomingMessage, kind: "page" | "socket"): WebRequestInfo {
  const { host, origin, authorization, cookie } = request.headers;
  return { kind, target: request.url ?? "/", host: host ?? "", origin: origin ?? null, authorization: authorization ?? null, cookie: cookie ?? null };
}

function pathOf(request: http.IncomingMessage): string {
  // Only the path matters; the base just makes a relative request URL parseable.
  return new URL(request.url ?? "/", "http://request.invalid").pathname;
}

/** Answers a raw upgrade socket with a plain HTTP error and closes it. */
function refuseUpgrade(socket: Socket, status: number, text = "", headers: Readonly<Record<string, string>> = {}): void {
  const body = Buffer.from(text ? `${text}\n` : "", "utf8");
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n${extra}` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n${body.toString("utf8")}`,
  );
}

function refusePage(response: http.ServerResponse, verdict: WebVerdict & { admit: false }): void {
  response.writeHead(verdict.status, { ...verdict.headers, "Content-Type": "text/plain; charset=utf-8" }).end(`${verdict.text}\n`);
}

/** One end of an accepted connection, as the connection filter sees it. */
function endpointOf(address: string | undefined, port: number | undefined): TcpEndpoint {
  return { host: address ?? "", port: port ?? 0 };
}

/** A binary frame as bytes, a text frame as a string. The Buffer is ours: ws made it for this message. */
function frameOf(data: RawData, isBinary: boolean): Uint8Array | string {
  const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  return isBinary ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : buffer.toString("utf8");
}

function peerOf(socket: WebSocket, connection: Socket): WebSocketPeer {
  return {
    protocol: socket.protocol,
    remote: endpointOf(connection.remoteAddress, connection.remotePort),
    local: endpointOf(connection.localAddress, connection.localPort),
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    send: (data) => socket.send(data, { binary: true }),
    sendText: (text) => socket.send(text, { binary: false }),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close(code, reason) {
      socket.close(code, reason);
      const dropIfStalled = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
      // The timer must not keep a process alive that has nothing else left to do.
      dropIfStalled.unref?.();
      socket.once("close", () => clearTimeout(dropIfStalled));
    },
  };
}

function answer(options: WebServerOptions, request: http.IncomingMessage, response: http.ServerResponse): void {
  for (const [name, value] of Object.entries(options.headers)) response.setHeader(name, value);
  const verdict = options.check(requestInfo(request, "page"));
  if (!verdict.admit) return refusePage(response, verdict);
  for (const [name, value] of Object.entries(verdict.headers ?? {})) response.setHeader(name, value);
  if (request.method !== "GET" && request.method !== "HEAD") {
    response.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" }).end("Method Not Allowed\n");
    return;
  }
  const resource = options.resources.get(pathOf(request));
  if (!resource) {
    response.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("Not Found\n");
    return;
  }
  const body = typeof resource.body === "string" ? Buffer.from(resource.body, "utf8") : resource.body;
  response.writeHead(200, { "Content-Type": resource.contentType, "Content-Length": body.byteLength });
  response.end(request.method === "HEAD" ? undefined : body);
}

/** HTTP, or HTTPS (and so WSS) when `options.tls` is given; a failed handshake closes that connection only. */
function createServer(options: WebServerOptions): http.Server {
  const handler = (request: http.IncomingMessage, response: http.ServerResponse) => answer(options, request, response);
  const credentials = options.tls;
  if (!credentials) return http.createServer(handler);
  const pem = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const server = https.createServer(
    {
      ca: pem(credentials.ca),
      cert: credentials.cert && pem(credentials.cert),
      key: credentials.key && pem(credentials.key),
      requestCert: credentials.verifyPeer,
      rejectUnauthorized: credentials.verifyPeer,
      handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    },
    handler,
  );
  server.on("tlsClientError", (error: Error, socket: TLSSocket) => {
    const peer = socket.remoteAddress === undefined ? "a client" : `${socket.remoteAddress}:${socket.remotePort}`;
    // node closes it itself; Deno's compat layer leaves it open.
    socket.destroy();
    const reason = error.message.replace(/^error:[0-9A-Fa-f]+:[^:]*:[^:]*:/, "").replace(/\s+/g, " ").trim().slice(0, 200);
    options.onTlsFailure?.(peer, reason);
  });
  // https.Server is an http.Server as far as requests, upgrades and close are concerned.
  return server as unknown as http.Server;
}

async function listen(options: WebServerOptions): Promise<WebServer> {
  const sockets = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxFrameBytes,
    perMessageDeflate: false,
    handleProtocols: (offered) => options.socketProtocols.find((name) => offered.has(name)) ?? false,
  });
  const server = createServer(options);
  // Idle connections (page loads, tabs) each hold a file descriptor: beyond this many, node
  // closes new ones at once, so idle clients cannot fill the fd table.
  server.maxConnections = options.maxConnections;
  // Every TCP connection, upgraded or not, so close() can drop them all at once.
  const connections = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    if (!options.acceptConnection(endpointOf(socket.localAddress, socket.localPort), endpointOf(socket.remoteAddress, socket.remotePort))) {
      socket.destroy();
      return;
    }
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
  });
  server.on("upgrade", (request: http.IncomingMessage, socket: Socket, head: Buffer) => {
    if (pathOf(request) !== `/${options.socketPath}`) return refuseUpgrade(socket, 404);
    const verdict = options.check(requestInfo(request, "socket"));
    if (!verdict.admit) return refuseUpgrade(socket, verdict.status, verdict.text, verdict.headers);
    sockets.handleUpgrade(request, socket, head, (webSocket) => {
      const handlers = options.connect(peerOf(webSocket, socket), verdict.role);
      webSocket.on("message", (data, isBinary) => handlers.message(frameOf(data, isBinary)));
      webSocket.once("close", () => handlers.close());
      // ws closes the connection itself after an error (a too-big frame, a bad frame); the
      // listener only keeps the error from being thrown as unhandled.
      webSocket.on("error", () => {});
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      server.off("listening", onListening);
      reject(error);
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ host: options.host, port: options.port, exclusive: true });
  });
  // Errors after listening (e.g. EMFILE on accept) must not crash the process.
  server.on("error", () => {});

  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of connections) socket.destroy();
      for (const client of sockets.clients) client.terminate();
      sockets.close();
      await closed;
    },
  };
}

/** The web server primitives of Node (and of Deno and Bun through their Node compatibility). */
export const nodeWeb: WebServerPrimitives = { listen };
