// Fuzzing the WebSocket side of the `web` chardev: a raw TCP client completes a real upgrade
// (with the secret, with or without the terminal subprotocol), then sends random frames: any
// opcode, RSV bits, masked or not, lengths in all three encodings (claimed lengths up to 2^63
// that never come), text control messages with random fields, or plain random bytes. Asserted:
// nothing throws in the server's process, the connection is kept or closed (never hangs the
// server), memory stays bounded, and afterwards a real tab still connects and gets the output.
import fc from "fast-check";
import * as net from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, type Frontend } from "../host-ts/mod.ts";
import { TERMINAL_PROTOCOL, type WebChardev } from "../host-ts/chardev/web.ts";
import { Tab, until } from "./_web_clients.ts";

const SECRET = "fuzzing-secret-0123456789";
/** RSS growth allowed over the whole fuzz run (each run sends at most a few KiB). */
const MEMORY_BOUND = 64 * 1024 * 1024;
const encoder = new TextEncoder();

let reg: ChardevRegistry;
let web: WebChardev;
let fe: Frontend;
let input = 0;
beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: () => {} });
  web = (await reg.add(`web,id=web0,port=0,token=${SECRET}`)) as WebChardev;
  input = 0;
  fe = reg.attach("web0", { canRead: () => 65536, read: (data) => (input += data.length), event: () => {} });
});
afterEach(async () => {
  fe.detach();
  await reg.close();
});

const frame = fc
  .record({
    fin: fc.boolean(),
    rsv: fc.integer({ min: 0, max: 7 }),
    opcode: fc.oneof(fc.constantFrom(0, 1, 2, 8, 9, 10), fc.integer({ min: 0, max: 15 })),
    masked: fc.oneof(fc.constant(true), fc.boolean()),
    payload: fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.record({ type: fc.oneof(fc.constant("resize"), fc.string({ maxLength: 8 })), cols: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 5 })), rows: fc.anything({ maxDepth: 1 }) }, { requiredKeys: [] }).map((message) => encoder.encode(JSON.stringify(message))),
    ),
    claim: fc.oneof(fc.constant(-1), fc.constantFrom(125, 126, 65535, 65536, 2 ** 32, 2 ** 53 - 1)),
  })
  .map(({ fin, rsv, opcode, masked, payload, claim }) => {
    const length = claim < 0 ? payload.length : claim;
    const header: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
    if (length < 126) header.push((masked ? 0x80 : 0) | length);
    else if (length < 65536) header.push((masked ? 0x80 : 0) | 126, length >> 8, length & 0xff);
    else {
      header.push((masked ? 0x80 : 0) | 127);
      const high = Math.floor(length / 2 ** 32);
      header.push((high >>> 24) & 0xff, (high >>> 16) & 0xff, (high >>> 8) & 0xff, high & 0xff, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
    }
    const mask = [0x12, 0x34, 0x56, 0x78];
    if (masked) header.push(...mask);
    const body = masked ? payload.map((byte, k) => byte ^ mask[k % 4]) : payload;
    const bytes = new Uint8Array(header.length + body.length);
    bytes.set(header);
    bytes.set(body, header.length);
    return bytes;
  });

const session = fc.record({
  protocol: fc.boolean(),
  frames: fc.array(fc.oneof({ weight: 4, arbitrary: frame }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }) }), { minLength: 1, maxLength: 8 }),
});

/** A raw upgrade; resolves with the socket once the 101 has come. */
async function rawUpgrade(protocol: boolean): Promise<{ socket: net.Socket; closed: () => boolean }> {
  const socket = net.connect({ host: "127.0.0.1", port: web.port });
  let closed = false;
  let answer = "";
  socket.on("close", () => (closed = true));
  socket.on("error", () => {});
  socket.on("data", (chunk: Buffer) => (answer += chunk.toString("latin1")));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write(
    `GET /ws?token=${SECRET} HTTP/1.1\r\nHost: 127.0.0.1:${web.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
      (protocol ? `Sec-WebSocket-Protocol: ${TERMINAL_PROTOCOL}\r\n` : "") +
      "\r\n",
  );
  await until(() => answer.includes("\r\n\r\n") || closed);
  expect(answer.slice(0, 12)).toBe("HTTP/1.1 101");
  return { socket, closed: () => closed };
}

describe("the web chardev's WebSocket protocol under fuzzing", () => {
  it("survives random frames from an authenticated client: no exception, bounded memory, and a real tab served after", async () => {
    const before = process.memoryUsage().rss;
    let peak = before;
    await fc.assert(
      fc.asyncProperty(session, async ({ protocol, frames }) => {
        const { socket, closed } = await rawUpgrade(protocol);
        for (const bytes of frames) if (!closed()) socket.write(bytes);
        // The server answers (a close, a pong, output) or waits for the rest of a frame;
        // either way we leave, and it must let the connection go.
        await new Promise((resolve) => setImmediate(resolve));
        socket.destroy();
        await until(() => web.clientCount === 0);
        peak = Math.max(peak, process.memoryUsage().rss);
      }),
      { numRuns: 120 },
    );
    expect(peak - before).toBeLessThanOrEqual(MEMORY_BOUND);
    // Still serving: a real tab connects and gets what the frontend writes.
    const tab = await Tab.open(`${web.baseUrl.replace(/^http/, "ws")}ws?token=${SECRET}`);
    await until(() => web.clientCount === 1);
    expect(fe.write(encoder.encode("still here"))).toBe(10);
    await until(() => tab.text() === "still here");
    await tab.close();
  });
});
