// UDP sockets over node:dgram (Deno and Bun run it too, so their runtimes inherit this).

import * as dgram from "node:dgram";
import * as net from "node:net";
import type { DatagramHandlers, DatagramOptions, DatagramSocket, HostDatagram } from "./types.ts";

/** The family a socket needs for `host`: its literal's form, else `family`, else IPv4. */
function socketType(host: string, family: 4 | 6 | null): "udp4" | "udp6" {
  if (family !== null) return family === 6 ? "udp6" : "udp4";
  return net.isIPv6(host) ? "udp6" : "udp4";
}

/** IPv4-mapped IPv6 (`::ffff:127.0.0.1`) and plain IPv4 name the same sender. */
function sameHost(a: string, b: string): boolean {
  const plain = (host: string) => host.replace(/^::ffff:/i, "");
  return plain(a) === plain(b);
}

function open(options: DatagramOptions, handlers: DatagramHandlers): Promise<DatagramSocket> {
  const socket = dgram.createSocket(socketType(options.remote.host, options.family));
  return new Promise<DatagramSocket>((resolve, reject) => {
    const failed = (error: Error) => {
      socket.close();
      reject(error);
    };
    socket.once("error", failed);
    socket.bind({ port: options.local.port, address: options.local.host || undefined }, () => {
      // connect(2) makes the kernel answer send() without an address and, on Node and Bun,
      // drop datagrams from anyone but the remote; Deno's does not, so we check the sender too.
      socket.connect(options.remote.port, options.remote.host, () => {
        socket.off("error", failed);
        resolve(wrap(socket, handlers));
      });
    });
  });
}

function wrap(socket: dgram.Socket, handlers: DatagramHandlers): DatagramSocket {
  const bound = socket.address();
  const peer = socket.remoteAddress();
  let buffered = 0;
  let closed = false;
  const drainWaiters = new Set<() => void>();
  // One send at a time: Deno's node:dgram runs overlapping sends in any order, and datagrams
  // of a console stream must leave in the order written.
  const queue: Uint8Array[] = [];
  const sendHead = () => {
    const head = queue[0];
    socket.send(head, () => {
      queue.shift();
      buffered -= head.length;
      if (closed) return;
      if (queue.length > 0) return sendHead();
      const waiters = [...drainWaiters];
      drainWaiters.clear();
      for (const waiter of waiters) waiter();
    });
  };
  // A failed send (ECONNREFUSED after an ICMP port unreachable, EMSGSIZE) loses that datagram,
  // as a UDP send does; the socket goes on.
  socket.on("error", () => {});
  socket.on("message", (message: Buffer, from: dgram.RemoteInfo) => {
    if (closed || from.port !== peer.port || !sameHost(from.address, peer.address)) return;
    handlers.message(new Uint8Array(message.buffer, message.byteOffset, message.length));
  });
  return {
    local: { host: bound.address, port: bound.port },
    remote: { host: peer.address, port: peer.port },
    get bufferedBytes() {
      return buffered;
    },
    send(data) {
      buffered += data.length;
      queue.push(data);
      if (queue.length === 1) sendHead();
    },
    onDrain(callback) {
      drainWaiters.add(callback);
      return () => drainWaiters.delete(callback);
    },
    close() {
      if (closed) return;
      closed = true;
      drainWaiters.clear();
      socket.close();
    },
  };
}

/**
 * node:dgram sockets in the shape of the runtime contract.
 *
 * @example A socket that sends to a port on this machine
 * ```ts
 * const socket = await nodeUdp.open(
 *   { remote: { host: "127.0.0.1", port: 4555 }, local: { host: "127.0.0.1", port: 0 }, family: null },
 *   { message: (data) => console.log(data.length) },
 * );
 * socket.send(new TextEncoder().encode("hello"));
 * socket.close();
 * ```
 */
export const nodeUdp: HostDatagram = { open };
