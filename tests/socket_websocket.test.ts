// `socket` with websocket=on (QEMU's char-socket over io/channel-websock.c): the `ws` client
// upgrades with the `binary` subprotocol, then bytes go both ways in binary frames; QEMU's
// refusals (no `binary`, a path other than /, a websocket client) and its end of a connection
// on a text frame; a PING answered; the hub then serves the next client.

import * as net from "node:net";
import WebSocket from "ws";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import type { SocketChardev } from "../host-ts/chardev/socket.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { makeTestPki } from "./_tls_certs.ts";
import * as fs from "node:fs";
import fc from "fast-check";
import { UpgradeRequestReader, WebSocketFrameDecoder } from "../host-ts/chardev/_socket_websocket.ts";

const { OPENED, CLOSED } = ChrEvent;

let reg: ChardevRegistry;
let warnings: string[];
let cleanups: (() => void)[];

beforeEach(async () => {
  warnings = [];
  reg = await ChardevRegistry.create({ qemuCompat: true, onWarning: (line) => warnings.push(line) });
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups) cleanup();
  await reg.close();
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

async function websocketServer(id: string, extra = ""): Promise<{ chardev: SocketChardev; port: number }> {
  const chardev = (await reg.add(`socket,id=${id},host=127.0.0.1,port=0,server=on,wait=off,websocket=on${extra}`)) as SocketChardev;
  return { chardev, port: (chardev.address as { port: number }).port };
}

/** A `ws` client: the messages it got (with whether each was binary) and how it ended. */
class Client {
  messages: { data: Buffer; binary: boolean }[] = [];
  closed = false;
  pongs = 0;
  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data: Buffer, binary: boolean) => this.messages.push({ data: Buffer.from(data), binary }));
    socket.on("close", () => (this.closed = true));
    socket.on("pong", () => this.pongs++);
    socket.on("error", () => {});
    cleanups.push(() => socket.terminate());
  }
  static open(url: string, protocols: string[] = ["binary"], options: WebSocket.ClientOptions = {}): Promise<Client> {
    const socket = new WebSocket(url, protocols, options);
    const client = new Client(socket);
    return new Promise((resolve, reject) => {
      socket.once("open", () => resolve(client));
      socket.once("error", reject);
    });
  }
  get received(): Buffer {
    return Buffer.concat(this.messages.map((message) => message.data));
  }
}

/** Sends a raw HTTP request and returns the first line of the answer. */
async function rawRequest(port: number, request: string): Promise<string> {
  const socket = net.connect({ host: "127.0.0.1", port });
  cleanups.push(() => socket.destroy());
  let answer = "";
  socket.on("data", (chunk: Buffer) => (answer += chunk.toString("latin1")));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.write(request);
  await closed;
  return answer;
}

describe("socket websocket=on", () => {
  it("the ws client connects with the binary subprotocol and bytes go both ways in binary frames", async () => {
    const { chardev, port } = await websocketServer("w0");
    const h = new FeHandler();
    h.room = 1 << 20;
    const fe = reg.attach("w0", h);
    expect(chardev.filename).toBe(`disconnected:websocket:127.0.0.1:${port},server=on`);
    const client = await Client.open(`ws://127.0.0.1:${port}/`);
    expect(client.socket.protocol).toBe("binary");
    await until(() => h.isOpen);
    expect(chardev.filename).toMatch(new RegExp(`^websocket:127\\.0\\.0\\.1:${port},server=on <-> 127\\.0\\.0\\.1:\\d+$`));

    client.socket.send(Buffer.from("echo hi\r"));
    await until(() => h.readCount === 8);
    expect(h.take()).toBe("echo hi\r");

    expect(fe.write(bytes("hi\r\n"))).toBe(4);
    await until(() => client.messages.length === 1);
    expect(client.messages[0]).toEqual({ data: Buffer.from("hi\r\n"), binary: true });
    expect(h.events).toEqual([OPENED]);
  });

  it("frames of every length encoding (7-bit, 16-bit, 64-bit) and fragmented messages arrive whole, both ways", async () => {
    const { port } = await websocketServer("w0", ",high-water-mark=1M");
    const h = new FeHandler();
    h.room = 1 << 22;
    const fe = reg.attach("w0", h);
    const client = await Client.open(`ws://127.0.0.1:${port}/`);
    await until(() => h.isOpen);
    const pattern = (length: number, seed: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff));
    const sent = [pattern(100, 1), pattern(300, 2), pattern(70_000, 3)];
    for (const payload of sent) client.socket.send(payload);
    // A message in three fragments.
    const fragments = [pattern(10, 4), pattern(200, 5), pattern(5, 6)];
    client.socket.send(fragments[0], { fin: false });
    client.socket.send(fragments[1], { fin: false });
    client.socket.send(fragments[2], { fin: true });
    const all = Buffer.concat([...sent, ...fragments]);
    await until(() => h.readCount === all.length);
    expect(Buffer.from(h.readBuf).equals(all)).toBe(true);

    for (const payload of sent) expect(fe.write(payload)).toBe(payload.length);
    await until(() => client.messages.length === sent.length);
    expect(client.messages.map((message) => message.binary)).toEqual([true, true, true]);
    expect(client.messages.map((message) => message.data.length)).toEqual([100, 300, 70_000]);
    expect(client.received.equals(Buffer.concat(sent))).toBe(true);
  });

  it("a PING is answered with a PONG and its payload is not input", async () => {
    const { port } = await websocketServer("w0");
    const h = new FeHandler();
    reg.attach("w0", h);
    const client = await Client.open(`ws://127.0.0.1:${port}/`);
    await until(() => h.isOpen);
    client.socket.ping(Buffer.from("are you there"));
    await until(() => client.pongs === 1);
    client.socket.send(Buffer.from("x"));
    await until(() => h.readCount === 1);
    expect(h.take()).toBe("x");
  });

  it("a client without the binary subprotocol is refused with 400 as QEMU does, and the next client is served", async () => {
    const { port } = await websocketServer("w0");
    const h = new FeHandler();
    reg.attach("w0", h);
    const refused = new WebSocket(`ws://127.0.0.1:${port}/`);
    cleanups.push(() => refused.terminate());
    const status = await new Promise<number>((resolve) => {
      refused.on("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0));
      refused.on("error", () => resolve(-1));
    });
    expect(status).toBe(400);
    expect(warnings).toEqual(["socket: w0: refused a WebSocket upgrade: Missing websocket protocol header data"]);
    expect(h.events).toEqual([]);

    const client = await Client.open(`ws://127.0.0.1:${port}/`);
    await until(() => h.isOpen);
    client.socket.send(Buffer.from("ok"));
    await until(() => h.readCount === 2);
    expect(h.take()).toBe("ok");
  });

  it("QEMU's upgrade checks, with its HTTP answers: a path other than / is 404, an unknown subprotocol 400, no end of headers in 4096 bytes 403", async () => {
    const { port } = await websocketServer("w0");
    reg.attach("w0", new FeHandler());
    const upgrade = (target: string, protocol: string) =>
      `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`;
    expect((await rawRequest(port, upgrade("/other", "binary"))).split("\r\n")[0]).toBe("HTTP/1.1 404 Not Found");
    expect((await rawRequest(port, upgrade("/", "base64"))).split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
    expect((await rawRequest(port, `GET / HTTP/1.1\r\nX: ${"a".repeat(5000)}`)).split("\r\n")[0]).toBe("HTTP/1.1 403 Request Entity Too Large");
    const accepted = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      cleanups.push(() => socket.destroy());
      let answer = "";
      socket.on("data", (chunk: Buffer) => {
        answer += chunk.toString("latin1");
        if (answer.includes("\r\n\r\n")) resolve(answer);
      });
      socket.write(upgrade("/", "binary"));
    });
    // RFC 6455's own example key and accept value.
    expect(accepted).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(accepted).toContain("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
    expect(accepted).toContain("\r\nSec-WebSocket-Protocol: binary\r\n");
    expect(warnings).toEqual([
      "socket: w0: refused a WebSocket upgrade: Unexpected HTTP path /other",
      "socket: w0: refused a WebSocket upgrade: No 'binary' protocol is supported by client 'base64'",
      "socket: w0: refused a WebSocket upgrade: End of headers not found in first 4096 bytes",
    ]);
  });

  it("a text frame ends the connection, as QEMU takes only binary frames; its text is not input", async () => {
    const { port } = await websocketServer("w0");
    const h = new FeHandler();
    reg.attach("w0", h);
    const client = await Client.open(`ws://127.0.0.1:${port}/`);
    await until(() => h.isOpen);
    client.socket.send("text");
    await until(() => client.closed && h.events.length === 2);
    expect(h.events).toEqual([OPENED, CLOSED]);
    expect(h.readCount).toBe(0);
    expect(warnings).toEqual(["socket: w0: WebSocket client broke the protocol: unsupported opcode: 0x01; only binary, ping, and pong websocket frames are supported"]);
  });

  it("a client's close ends the connection with CLOSED, after the data it sent before", async () => {
    const { port } = await websocketServer("w0");
    const h = new FeHandler();
    const log: (string | ChrEvent)[] = [];
    reg.attach("w0", {
      canRead: () => h.canRead(),
      read: (data) => (h.read(data), log.push(Buffer.from(data).toString("latin1"))),
      event: (event) => (h.event(event), log.push(event)),
    });
    const client = await Client.open(`ws://127.0.0.1:${port}/`);
    await until(() => h.isOpen);
    client.socket.send(Buffer.from("bye"));
    client.socket.close(1000);
    await until(() => client.closed && h.events.length === 2);
    expect(log).toEqual([OPENED, "bye", CLOSED]);
  });

  it("websocket=on with telnet=on: the telnet negotiation comes in the first binary frame after the upgrade", async () => {
    const { chardev, port } = await websocketServer("w0", ",telnet=on");
    const h = new FeHandler();
    reg.attach("w0", h);
    // telnet wins the protocol name, as in QEMU.
    expect(chardev.filename).toBe(`disconnected:telnet:127.0.0.1:${port},server=on`);
    const client = await Client.open(`ws://127.0.0.1:${port}/`);
    await until(() => client.messages.length === 1);
    expect([...client.messages[0].data]).toEqual([0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x00]);
    client.socket.send(Buffer.from([0x61, 0xff, 0xfd, 0x01, 0x62]));
    await until(() => h.readCount === 2);
    expect(h.take()).toBe("ab");
  });

  it("with tls-creds the upgrade and the frames go over TLS (wss), as QEMU layers them", async () => {
    const pki = makeTestPki();
    cleanups.push(() => pki.remove());
    await reg.addObject(`tls-creds-x509,id=tls0,endpoint=server,dir=${pki.serverDir},verify-peer=off`);
    const { port } = await websocketServer("w0", ",tls-creds=tls0");
    const h = new FeHandler();
    const fe = reg.attach("w0", h);
    const client = await Client.open(`wss://127.0.0.1:${port}/`, ["binary"], { ca: fs.readFileSync(pki.caCert) });
    await until(() => h.isOpen);
    client.socket.send(Buffer.from("secret"));
    await until(() => h.readCount === 6);
    expect(h.take()).toBe("secret");
    expect(fe.write(bytes("answer"))).toBe(6);
    await until(() => client.messages.length === 1);
    expect(client.messages[0]).toEqual({ data: Buffer.from("answer"), binary: true });
  });

  it("a websocket client is refused with QEMU's text, from -chardev and from QMP", async () => {
    expect((await errorOf(() => reg.add("socket,id=c0,host=127.0.0.1,port=1,websocket=on"))).message).toBe("Websocket client is not implemented");
    const qmp = { id: "c1", backend: { type: "socket", data: { addr: { type: "inet", data: { host: "127.0.0.1", port: "1" } }, server: false, websocket: true } } };
    expect((await errorOf(() => reg.add(qmp))).message).toBe("Websocket client is not implemented");
    expect(reg.query()).toEqual([]);
  });
});

/** A client frame as RFC 6455 writes it: masked with `mask`, FIN as given. */
function clientFrame(opcode: number, payload: Uint8Array, mask: number[], fin = true): Uint8Array {
  const length = payload.length;
  const lengthBytes = length < 126 ? [0x80 | length] : length < 65536 ? [0x80 | 126, length >> 8, length & 0xff] : [0x80 | 127, 0, 0, 0, 0, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff];
  const header = [(fin ? 0x80 : 0) | opcode, ...lengthBytes, ...mask];
  const out = new Uint8Array(header.length + length);
  out.set(header);
  for (let i = 0; i < length; i++) out[header.length + i] = payload[i] ^ mask[i % 4];
  return out;
}

function cutInto(stream: Uint8Array, cutPoints: number[]): Uint8Array[] {
  const cuts = [...new Set(cutPoints.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const cut of [...cuts, stream.length]) {
    chunks.push(stream.subarray(from, cut));
    from = cut;
  }
  return chunks;
}

describe("websocket frame decoder", () => {
  it("gives back every binary payload, fragmented or not, with a PONG per PING, however the stream is cut into reads", () => {
    const messageArb = fc.record({
      payload: fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: 126, maxLength: 70_000, size: "medium" })),
      fragments: fc.integer({ min: 1, max: 3 }),
      pingBefore: fc.boolean(),
      mask: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }),
    });
    fc.assert(
      fc.property(fc.array(messageArb, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (messages, cutPoints) => {
        const frames: Uint8Array[] = [];
        let pings = 0;
        for (const message of messages) {
          if (message.pingBefore) {
            frames.push(clientFrame(0x9, Uint8Array.of(pings), message.mask));
            pings++;
          }
          const size = Math.ceil(message.payload.length / message.fragments);
          for (let k = 0; k < message.fragments; k++) {
            const part = message.payload.subarray(k * size, (k + 1) * size);
            frames.push(clientFrame(k === 0 ? 0x2 : 0x0, part, message.mask, k === message.fragments - 1));
          }
        }
        const stream = new Uint8Array(frames.reduce((sum, frame) => sum + frame.length, 0));
        let at = 0;
        for (const frame of frames) (stream.set(frame, at), (at += frame.length));
        const decoder = new WebSocketFrameDecoder();
        const data: number[] = [];
        const replies: Uint8Array[] = [];
        for (const chunk of cutInto(stream, cutPoints)) {
          const decoded = decoder.feed(chunk);
          expect(decoded.error).toBe(null);
          expect(decoded.closed).toBe(false);
          data.push(...decoded.data);
          replies.push(...decoded.replies);
        }
        expect(Buffer.from(data).equals(Buffer.concat(messages.map((message) => message.payload)))).toBe(true);
        // Each PONG: FIN + opcode 0xA, length 1, the PING's byte.
        expect(replies.map((reply) => [...reply])).toEqual(Array.from({ length: pings }, (_, i) => [0x8a, 1, i]));
      }),
      { numRuns: 100 },
    );
  });

  it("never throws on bytes that are not frames, and a broken stream ends with an error", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 8 }), (stream, cutPoints) => {
        const decoder = new WebSocketFrameDecoder();
        for (const chunk of cutInto(stream, cutPoints)) {
          const decoded = decoder.feed(chunk);
          if (decoded.closed) break;
        }
        const reader = new UpgradeRequestReader();
        for (const chunk of cutInto(stream, cutPoints)) if (reader.feed(chunk) !== null) break;
      }),
      { numRuns: 300 },
    );
    const unmasked = new WebSocketFrameDecoder().feed(Uint8Array.of(0x82, 0x01, 0x41));
    expect(unmasked).toMatchObject({ closed: true, error: "client websocket frames must be masked" });
    const bigPing = new WebSocketFrameDecoder().feed(Uint8Array.of(0x89, 0x80 | 126, 0, 200, 1, 2, 3, 4));
    expect(bigPing).toMatchObject({ closed: true, error: "websocket control frame is too large" });
    const fragmentedText = new WebSocketFrameDecoder().feed(Uint8Array.of(0x01, 0x80, 1, 2, 3, 4));
    expect(fragmentedText).toMatchObject({ closed: true, error: "only binary websocket frames may be fragmented" });
  });
});
