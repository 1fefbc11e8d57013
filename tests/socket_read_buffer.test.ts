// A socket chardev that connects (server=off) reads on Node into one buffer it reuses for every
// read (`borrowedReads`: no allocation per read). Input the frontend has no room for waits, and
// reads go on into that same buffer once it has taken it: what waited must be a copy. The
// frontend here takes the stream in bites of varying size (none at all, a few bytes, more than
// one read) and each byte must arrive as the peer wrote it, in order. Deno's and Bun's
// node:net read into fresh buffers (the option is Node's only); there this checks the same
// delivery without the reuse. Real TCP and UNIX sockets, node:net peers.

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent, type FrontendHandlers } from "../host-ts/mod.ts";

type Transport = "tcp" | "unix";
const TRANSPORTS: Transport[] = ["tcp", "unix"];

/** Many reads' worth (a read is at most 64 KiB), and more than the kernel's socket buffers hold. */
const STREAM_BYTES = 3 << 20;
/** What a peer writes before it hangs up: more than one read, less than the socket buffers hold. */
const LAST_WORDS_BYTES = 150_000;
/** The frontend's room per bite, in turn: nothing, less than a read, more than a read, an odd few. */
const BITES = [0, 4099, 200_000, 123, 65_536, 1];

/** Byte i of the stream: a period that no read or bite size divides, so a stale or shifted byte shows. */
function streamByte(i: number): number {
  return (i * 7 + (i >> 16)) % 253;
}

/** The index of the first byte of `received` that is not the stream's, or -1. */
function firstWrongByte(received: Uint8Array): number {
  for (let i = 0; i < received.length; i++) if (received[i] !== streamByte(i)) return i;
  return -1;
}

/**
 * A frontend that takes at most `room` bytes until given more, and copies what it reads (it
 * keeps it): it says so (`copiesInput`), so on Node it is handed views of the reused buffer.
 */
class BitingFrontend implements FrontendHandlers {
  readonly copiesInput = true;
  readonly received = new Uint8Array(STREAM_BYTES);
  count = 0;
  room = 0;
  events: ChrEvent[] = [];
  canRead(): number {
    return this.room;
  }
  read(data: Uint8Array): void {
    this.received.set(data, this.count);
    this.count += data.length;
    this.room -= data.length;
  }
  event(event: ChrEvent): void {
    this.events.push(event);
  }
}

let reg: ChardevRegistry;
let dir: string;
let servers: net.Server[];
let peers: net.Socket[];

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-socket-read-buffer-"));
  servers = [];
  peers = [];
});
afterEach(async () => {
  for (const peer of peers) peer.destroy();
  await reg.close();
  for (const server of servers) server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Waits (on the event loop) until `condition` holds; the test's timeout bounds it. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1));
}

/** A peer listening where the chardev connects; resolves its keys for `-chardev socket` and the accepted socket. */
async function listeningPeer(transport: Transport): Promise<{ keys: string; accepted: Promise<net.Socket> }> {
  let onAccept!: (socket: net.Socket) => void;
  const accepted = new Promise<net.Socket>((resolve) => (onAccept = resolve));
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    peers.push(socket);
    onAccept(socket);
  });
  servers.push(server);
  const socketPath = path.join(dir, "peer.sock");
  await new Promise<void>((resolve) => (transport === "tcp" ? server.listen(0, "127.0.0.1", resolve) : server.listen(socketPath, resolve)));
  const address = server.address();
  const keys = transport === "tcp" ? `host=127.0.0.1,port=${(address as net.AddressInfo).port}` : `path=${socketPath}`;
  return { keys, accepted };
}

function streamBytes(): Uint8Array {
  const stream = new Uint8Array(STREAM_BYTES);
  for (let i = 0; i < STREAM_BYTES; i++) stream[i] = streamByte(i);
  return stream;
}

for (const transport of TRANSPORTS) {
  describe(`a connecting socket's input, read into one reused buffer (${transport})`, () => {
    it("arrives as the peer wrote it when the frontend takes it in bites, pausing in between", async () => {
      const { keys, accepted } = await listeningPeer(transport);
      await reg.add(`socket,id=dev,${keys},server=off`);
      const fe = new BitingFrontend();
      const frontend = reg.attach("dev", fe);
      const peer = await accepted;
      peer.write(streamBytes());

      for (let bite = 0; fe.count < STREAM_BYTES; bite++) {
        const before = fe.count;
        fe.room = BITES[bite % BITES.length];
        frontend.acceptInput();
        // Reading resumes once what waited is taken: give the next read time to land before
        // the next bite (a bite of 0 lets reads arrive while the frontend takes nothing).
        await until(() => fe.count > before || fe.room === 0 || fe.count === STREAM_BYTES);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      expect(fe.count).toBe(STREAM_BYTES);
      expect(firstWrongByte(fe.received)).toBe(-1);
    });

    it("the peer's last bytes, written and hung up on while the frontend had no room, arrive intact before CLOSED", async () => {
      const { keys, accepted } = await listeningPeer(transport);
      await reg.add(`socket,id=dev,${keys},server=off`);
      const fe = new BitingFrontend();
      const frontend = reg.attach("dev", fe);
      const peer = await accepted;
      const peerFinished = new Promise<void>((resolve) => peer.once("finish", () => resolve()));
      // Fewer bytes than the kernel's socket buffers hold, so the peer's write and FIN are out
      // while we read nothing; still several reads' worth.
      peer.end(streamBytes().subarray(0, LAST_WORDS_BYTES));
      await peerFinished;
      expect(fe.events).not.toContain(ChrEvent.CLOSED);

      for (let bite = 0; fe.count < LAST_WORDS_BYTES; bite++) {
        const before = fe.count;
        fe.room = BITES[bite % BITES.length] || 1;
        frontend.acceptInput();
        await until(() => fe.count > before);
      }
      await until(() => fe.events.includes(ChrEvent.CLOSED));
      expect(fe.count).toBe(LAST_WORDS_BYTES);
      expect(firstWrongByte(fe.received.subarray(0, LAST_WORDS_BYTES))).toBe(-1);
    });

    it("a frontend that keeps the chunks it is given, as they are (no copiesInput), finds them intact afterwards", async () => {
      const { keys, accepted } = await listeningPeer(transport);
      await reg.add(`socket,id=dev,${keys},server=off`);
      const kept: Uint8Array[] = [];
      let count = 0;
      reg.attach("dev", {
        canRead: () => STREAM_BYTES,
        read: (data) => {
          kept.push(data); // no copy: the chunk must be the frontend's own
          count += data.length;
        },
        event() {},
      });
      const peer = await accepted;
      peer.write(streamBytes());
      await until(() => count === STREAM_BYTES);
      // Many reads' worth: had the chunks viewed one reused buffer, the early ones would now
      // hold later bytes.
      expect(kept.length).toBeGreaterThan(1);
      const received = new Uint8Array(STREAM_BYTES);
      let at = 0;
      for (const chunk of kept) {
        received.set(chunk, at);
        at += chunk.length;
      }
      expect(at).toBe(STREAM_BYTES);
      expect(firstWrongByte(received)).toBe(-1);
    });
  });
}
