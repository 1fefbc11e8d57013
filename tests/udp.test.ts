// The `udp` chardev with real UDP sockets: each write one datagram to the remote, datagrams
// from the remote (and no one else) as input, QEMU's option defaults and texts, and socat as a
// peer.

import { spawn } from "node:child_process";
import * as dgram from "node:dgram";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import { MAX_DATAGRAM_BYTES, UdpChardev, udpDriver, udpOptionsFromData } from "../host-ts/chardev/udp.ts";
import { parseChardevOptions } from "../host-ts/options.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";

let reg: ChardevRegistry;
/** Sockets and processes a test opened, closed after it whatever happened. */
let cleanups: (() => void)[];

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: true });
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups) cleanup();
  await reg.close();
});

/** Waits (on the event loop, without a clock) until `condition` holds; the test timeout bounds it. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

/** A loopback UDP peer of the test's own that records every datagram and who sent it. */
async function peer(): Promise<{ socket: dgram.Socket; port: number; received: { text: string; from: number }[] }> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  cleanups.push(() => {
    try {
      socket.close();
    } catch {
      // Closed by the test already.
    }
  });
  const received: { text: string; from: number }[] = [];
  socket.on("message", (message, from) => received.push({ text: message.toString(), from: from.port }));
  return { socket, port: socket.address().port, received };
}

function send(socket: dgram.Socket, text: string | Uint8Array, port: number): Promise<void> {
  return new Promise((resolve, reject) => socket.send(text, port, "127.0.0.1", (error) => (error ? reject(error) : resolve())));
}

describe("udp chardev", () => {
  it("sends each frontend write as one datagram to the remote, from its local port", async () => {
    const remote = await peer();
    const chardev = (await reg.add(`udp,id=u0,host=127.0.0.1,port=${remote.port},localaddr=127.0.0.1`)) as UdpChardev;
    const fe = reg.attach("u0", new FeHandler());
    expect(fe.write(bytes("first"))).toBe(5);
    expect(fe.write(bytes("second"))).toBe(6);
    await until(() => remote.received.length === 2);
    expect(remote.received).toEqual([
      { text: "first", from: chardev.local!.port },
      { text: "second", from: chardev.local!.port },
    ]);
  });

  it("delivers datagrams from the remote to the frontend and drops those from anyone else", async () => {
    const remote = await peer();
    const stranger = await peer();
    const chardev = (await reg.add(`udp,id=u0,host=127.0.0.1,port=${remote.port},localaddr=127.0.0.1`)) as UdpChardev;
    const h = new FeHandler();
    reg.attach("u0", h);
    const localPort = chardev.local!.port;
    await send(stranger.socket, "from a stranger", localPort);
    await send(remote.socket, "hello ", localPort);
    await send(remote.socket, "world", localPort);
    await until(() => h.readCount >= 11);
    // The stranger's datagram went first: had it been taken it would lead.
    expect(h.take()).toBe("hello world");
  });

  it("reports itself open once the socket is bound, and lets go of its port when removed", async () => {
    const remote = await peer();
    const chardev = (await reg.add(`udp,id=u0,host=127.0.0.1,port=${remote.port}`)) as UdpChardev;
    const h = new FeHandler();
    const fe = reg.attach("u0", h);
    expect(h.events).toEqual([ChrEvent.OPENED]);
    // Bound to any address; once connected, Node and Bun report the loopback one, Deno the wildcard.
    expect(reg.query().find((c) => c.label === "u0")?.filename).toMatch(new RegExp(`^udp:127\\.0\\.0\\.1:${remote.port}@(127\\.0\\.0\\.1|0\\.0\\.0\\.0):\\d+$`));
    fe.detach();
    const localPort = chardev.local!.port;
    await reg.remove("u0");
    // Removed, it let go of its port: binding it again works (Deno closes in the background:
    // try until it does; the test's timeout bounds the wait).
    for (;;) {
      const again = dgram.createSocket("udp4");
      const bound = await new Promise<boolean>((resolve) => {
        again.once("error", () => resolve(false));
        again.bind(localPort, "127.0.0.1", () => resolve(true));
      });
      again.close();
      if (bound) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });

  it("binds the given local port, so a peer can answer a fixed address", async () => {
    const remote = await peer();
    const probe = await peer();
    const localPort = probe.port;
    // Free the port the probe held, then give it to the chardev.
    await new Promise<void>((resolve) => probe.socket.close(() => resolve()));
    const chardev = (await reg.add(`udp,id=u0,host=127.0.0.1,port=${remote.port},localaddr=127.0.0.1,localport=${localPort}`)) as UdpChardev;
    expect(chardev.local).toEqual({ host: "127.0.0.1", port: localPort });
  });

  it("cuts a write longer than one datagram can carry and sends the rest next", async () => {
    const remote = await peer();
    await reg.add(`udp,id=u0,host=127.0.0.1,port=${remote.port},localaddr=127.0.0.1`);
    const fe = reg.attach("u0", new FeHandler());
    const long = new Uint8Array(MAX_DATAGRAM_BYTES + 10).fill(0x61);
    expect(fe.write(long)).toBe(MAX_DATAGRAM_BYTES);
    await until(() => remote.received.length === 1);
    expect(remote.received[0].text.length).toBe(MAX_DATAGRAM_BYTES);
  });

  it("works as a hub backend: the hub's output reaches the remote and the remote's input the hub's frontend", async () => {
    const remote = await peer();
    const chardev = (await reg.add(`udp,id=u0,host=127.0.0.1,port=${remote.port},localaddr=127.0.0.1`)) as UdpChardev;
    await reg.add("ringbuf,id=log,size=1024");
    await reg.add("hub,id=hub0,chardevs.0=u0,chardevs.1=log");
    const h = new FeHandler();
    const fe = reg.attach("hub0", h);
    expect(fe.write(bytes("to everyone"))).toBe(11);
    await until(() => remote.received.length === 1);
    expect(remote.received[0].text).toBe("to everyone");
    await send(remote.socket, "key", chardev.local!.port);
    await until(() => h.readCount >= 3);
    expect(h.take()).toBe("key");
  });

  it("takes QEMU's QMP shape (remote and local SocketAddressLegacy)", async () => {
    const remote = await peer();
    const chardev = (await reg.add({
      id: "u0",
      backend: {
        type: "udp",
        data: {
          remote: { type: "inet", data: { host: "127.0.0.1", port: String(remote.port) } },
          local: { type: "inet", data: { host: "127.0.0.1", port: "0" } },
        },
      },
    })) as UdpChardev;
    expect(chardev.local?.host).toBe("127.0.0.1");
    const fe = reg.attach("u0", new FeHandler());
    fe.write(bytes("qmp"));
    await until(() => remote.received.length === 1);
    expect(remote.received[0].text).toBe("qmp");
  });

  it("refuses a missing remote port with QEMU's text, and a UNIX address with QEMU's datagram text", async () => {
    expect(await errorOf(() => reg.add("udp,id=u0,host=127.0.0.1"))).toMatchObject({ message: "chardev: udp: remote port not specified" });
    expect(
      await errorOf(() => reg.add({ id: "u1", backend: { type: "udp", data: { remote: { type: "unix", data: { path: "/tmp/x" } } } } })),
    ).toMatchObject({ message: "socket type unsupported for datagram" });
    expect(await errorOf(() => reg.add("udp,id=u2,port=70000"))).toMatchObject({ message: "udp: port '70000' is not a number from 0 to 65535" });
    expect(reg.query().map((c) => c.label)).toEqual([]);
  });

  it("defaults as QEMU: remote host localhost, no local address unless localaddr or localport is given", () => {
    const parse = (text: string) => udpOptionsFromData(udpDriver.fromOptions(parseChardevOptions(text).options));
    expect(parse("udp,id=u,port=4555")).toEqual({ remote: { host: "localhost", port: 4555 }, local: { host: "", port: 0 }, family: null });
    expect(parse("udp,id=u,host=::1,port=4555,localport=4556,ipv6=on")).toEqual({
      remote: { host: "::1", port: 4555 },
      local: { host: "", port: 4556 },
      family: 6,
    });
  });

  it("socat as the peer: its input reaches the frontend and frontend output reaches it", async () => {
    const remote = await peer();
    const socatPort = remote.port;
    await new Promise<void>((resolve) => remote.socket.close(() => resolve()));
    const chardev = (await reg.add(`udp,id=u0,host=127.0.0.1,port=${socatPort},localaddr=127.0.0.1`)) as UdpChardev;
    const h = new FeHandler();
    const fe = reg.attach("u0", h);
    // socat listens on the chardev's remote port and sends to the chardev's local port.
    const socat = spawn("socat", ["-", `UDP4-DATAGRAM:127.0.0.1:${chardev.local!.port},bind=127.0.0.1:${socatPort}`], { stdio: ["pipe", "pipe", "inherit"] });
    cleanups.push(() => socat.kill());
    let output = "";
    socat.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    socat.stdin.write("typed in socat\n");
    await until(() => h.readCount >= 15);
    expect(h.take()).toBe("typed in socat\n");
    // socat's socket is bound by now (it sent): what we send reaches it.
    fe.write(bytes("printed by the guest\n"));
    await until(() => output.includes("\n"));
    expect(output).toBe("printed by the guest\n");
  });
});
