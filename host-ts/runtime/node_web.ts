// The `web` chardev's HTTP + WebSocket server on node:http and the `ws` package. Deno and Bun
// run both through their Node compatibility, so this one file serves all three runtimes.

import * as http from "node:http";
import type { Socket } from "node:net";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import type { WebRequestInfo, WebServer, WebServerOptions, WebServerPrimitives, WebSocketPeer } from "./types.ts";

/**
 * How long a peer we close may take to answer the close frame. A stalled peer never answers;
 * after this it is dropped so its queued output is freed.
 */
const CLOSE_GRACE_MS = 10_000;

function requestInfo(request: http.IncomingMessage): WebRequestInfo {
  return { host: request.headers.host ?? "", origin: request.headers.origin ?? null };
}

function pathOf(request: http.IncomingMessage): string {
  // Only the path matters; the base just makes a relative request URL parseable.
  return new URL(request.url ?? "/", "http://request.invalid").pathname;
}

/** Answers a raw upgrade socket with a plain HTTP error and closes it. */
function refuseUpgrade(socket: Socket, status: number): void {
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** A binary frame as bytes, a text frame as a string. The Buffer is ours: ws made it for this message. */
function frameOf(data: RawData, isBinary: boolean): Uint8Array | string {
  const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  return isBinary ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : buffer.toString("utf8");
}

function peerOf(socket: WebSocket): WebSocketPeer {
  return {
    protocol: socket.protocol,
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    send: (data) => socket.send(data, { binary: true }),
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
  if (!options.allow(requestInfo(request))) {
    response.writeHead(403, { "Content-Type": "text/plain; charset=utf-8" }).end("Forbidden\n");
    return;
  }
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

async function listen(options: WebServerOptions): Promise<WebServer> {
  const sockets = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxFrameBytes,
    perMessageDeflate: false,
    handleProtocols: (offered) => options.socketProtocols.find((name) => offered.has(name)) ?? false,
  });
  const server = http.createServer((request, response) => answer(options, request, response));
  // Every TCP connection, upgraded or not, so close() can drop them all at once.
  const connections = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
  });
  server.on("upgrade", (request: http.IncomingMessage, socket: Socket, head: Buffer) => {
    if (pathOf(request) !== `/${options.socketPath}`) return refuseUpgrade(socket, 404);
    if (!options.allow(requestInfo(request))) return refuseUpgrade(socket, 403);
    sockets.handleUpgrade(request, socket, head, (webSocket) => {
      const handlers = options.connect(peerOf(webSocket));
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
