// A socket peer that writes and hangs up while its holder has no room: its last bytes are not
// lost. QEMU reads a closed socket's last bytes before it sees the hang-up; we read them before
// we know, so the end (CLOSED) waits until the holder has taken them. Found by the command's
// socket fan-out, where a device that wrote its last 64 KiB and closed while the hub was full
// lost them. Real TCP and UNIX sockets, node:net peers.

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import type { SocketChardev } from "../host-ts/chardev/socket.ts";
import type { NetAddress } from "../host-ts/runtime/types.ts";
import { FeHandler } from "./_fe_handler.ts";

type Transport = "tcp" | "unix";
const TRANSPORTS: Transport[] = ["tcp", "unix"];

/** Event-loop turns given to the chardev to see the hang-up once the peer's socket has closed. */
const TURNS_AFTER_HANGUP = 25;

let reg: ChardevRegistry;
let dir: string;
let peers: net.Socket[];

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-socket-hangup-"));
  peers = [];
});
afterEach(async () => {
  for (const peer of peers) peer.destroy();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Waits (on the event loop, without a clock) until `condition` holds; the test's timeout bounds it. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

function connectOptions(address: NetAddress): net.NetConnectOpts {
  return address.transport === "tcp" ? { host: address.host, port: address.port } : { path: address.path };
}

for (const transport of TRANSPORTS) {
  describe(`a socket peer that hangs up with input held (${transport})`, () => {
    it("its last bytes reach the holder once it has room, and CLOSED comes after them", async () => {
      const keys = transport === "tcp" ? "host=127.0.0.1,port=0" : `path=${path.join(dir, "s0.sock")}`;
      const s0 = (await reg.add(`socket,id=s0,${keys},server=on,wait=off`)) as SocketChardev;
      const h = new FeHandler();
      h.room = 0;
      const fe = reg.attach("s0", h);
      const peer = net.connect(connectOptions(s0.address));
      peers.push(peer);
      peer.on("error", () => {});
      await until(() => h.isOpen);

      const lastWords = "the peer's last words\n".repeat(200);
      const peerClosed = new Promise<void>((resolve) => peer.once("close", () => resolve()));
      peer.end(lastWords);
      // The peer's socket closes once ours answered its FIN: we have seen the hang-up by then,
      // or within a few turns.
      await peerClosed;
      let turns = 0;
      await until(() => ++turns > TURNS_AFTER_HANGUP);
      expect(h.readCount).toBe(0);
      expect(h.events).toEqual([ChrEvent.OPENED]);

      h.room = lastWords.length;
      fe.acceptInput();
      await until(() => h.readCount === lastWords.length && h.events.includes(ChrEvent.CLOSED));
      expect(h.take()).toBe(lastWords);
      expect(h.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
    });

    it("a peer that hangs up with nothing held ends at once, as before", async () => {
      const keys = transport === "tcp" ? "host=127.0.0.1,port=0" : `path=${path.join(dir, "s1.sock")}`;
      const s1 = (await reg.add(`socket,id=s1,${keys},server=on,wait=off`)) as SocketChardev;
      const h = new FeHandler();
      reg.attach("s1", h);
      const peer = net.connect(connectOptions(s1.address));
      peers.push(peer);
      peer.on("error", () => {});
      await until(() => h.isOpen);
      peer.end("bye\n");
      await until(() => h.events.includes(ChrEvent.CLOSED));
      expect(h.take()).toBe("bye\n");
      expect(h.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
    });
  });
}
