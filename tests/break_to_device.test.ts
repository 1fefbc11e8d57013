// A BREAK from a console client reaches the device: the real dist/cli.js with a device
// `socket,...,telnet=on` that connects to a TCP server of ours on 127.0.0.1 (it plays QEMU's
// `-serial telnet::PORT,server`), and BREAKs sent by a telnet client on a backend socket and by
// an attached client (`chardev-hub attach`'s `b`, sent as the control protocol's `break`).
// A `spawn` device cannot send one: the run says so on stderr, and `b` is answered with why.
// Runs under Node, Deno and Bun alike (node:net and node:child_process only).

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "./_ports.ts";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import { CliProcess, until, untilListening } from "./cli/_cli.ts";

const IAC_BREAK = "\xff\xf3";

let dir: string;
let sockets: net.Socket[];
let servers: net.Server[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-break-test-"));
  sockets = [];
  servers = [];
});
afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  await CliProcess.stopAll();
  for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const at = (name: string) => path.join(dir, name);

/** A connection whose received bytes are kept as latin1 text (one char, one byte). */
interface Peer {
  readonly socket: net.Socket;
  text: string;
}

function keep(socket: net.Socket): Peer {
  const peer: Peer = { socket, text: "" };
  sockets.push(socket);
  socket.on("data", (chunk: Buffer) => (peer.text += chunk.toString("latin1")));
  socket.on("error", () => {});
  return peer;
}

/** The guest's side: a TCP server on 127.0.0.1 that the device socket connects to; its one connection. */
async function guestServer(): Promise<{ port: number; connection: Promise<Peer> }> {
  let accepted!: (peer: Peer) => void;
  const connection = new Promise<Peer>((resolve) => (accepted = resolve));
  const server = net.createServer((socket) => accepted(keep(socket)));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as net.AddressInfo).port, connection };
}

async function connectTcp(port: number): Promise<Peer> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const attempt = net.connect({ host: "127.0.0.1", port }, () => resolve(attempt));
    attempt.once("error", reject);
  });
  return keep(socket);
}

async function connectUnix(socketPath: string): Promise<Peer> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const attempt = net.connect({ path: socketPath }, () => resolve(attempt));
    attempt.once("error", reject);
  });
  return keep(socket);
}

async function received(peer: Peer, what: string, who: string): Promise<void> {
  await until(() => peer.text.includes(what), `${who} to receive ${JSON.stringify(what)} (it has ${JSON.stringify(peer.text.slice(-200))})`);
}

/** One request on a connection of its own, and its answer line, parsed. */
async function request(control: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const peer = await connectUnix(control);
  peer.socket.write(`${JSON.stringify(body)}\n`);
  await received(peer, "\n", "the control client");
  peer.socket.destroy();
  return JSON.parse(peer.text.slice(0, peer.text.indexOf("\n")));
}

/**
 * A run whose device is `device` (a chardev spec with id `dev`), bridged to a hub whose backend is
 * a telnet server on a free loopback port, with a control socket. Returns once both listen.
 */
async function startRun(device: string, ...options: string[]): Promise<{ cli: CliProcess; control: string; telnetPort: number }> {
  const control = at("control.sock");
  const telnetPort = await freePort();
  const cli = new CliProcess([
    "-chardev", device,
    "-chardev", `socket,id=tn,host=127.0.0.1,port=${telnetPort},server=on,wait=off,telnet=on`,
    "-chardev", "hub,id=hub0,chardevs.0=tn",
    "-frontend", "dev,chardev=hub0",
    "-control", control,
    ...options,
  ]);
  await untilListening(control, cli, "the control socket to listen");
  if (cli.ended) throw new Error(`chardev-hub ended before listening: ${cli.stderr}`);
  return { cli, control, telnetPort };
}

describe("a BREAK from a console client reaches the device", () => {
  it("a telnet client's IAC BREAK reaches a telnet device's peer as IAC BREAK between the bytes typed before and after", async () => {
    const guest = await guestServer();
    const { cli, telnetPort } = await startRun(`socket,id=dev,host=127.0.0.1,port=${guest.port},telnet=on`);
    const device = await guest.connection;
    const client = await connectTcp(telnetPort);
    // The server's negotiation first: the connection is served.
    await received(client, "\xff\xfb\x01", "the telnet client");
    client.socket.write(Buffer.from(`before${IAC_BREAK}after`, "latin1"));
    await received(device, "after", "the guest");
    expect(device.text).toBe(`before${IAC_BREAK}after`);
    // A second BREAK, typed on its own, arrives on its own too.
    client.socket.write(Buffer.from(`one${IAC_BREAK}`, "latin1"));
    await received(device, `one${IAC_BREAK}`, "the guest");
    client.socket.write(Buffer.from("two", "latin1"));
    await received(device, "two", "the guest");
    expect(device.text).toBe(`before${IAC_BREAK}afterone${IAC_BREAK}two`);
    expect(cli.stderr).not.toContain("BREAK");
  });

  // QEMU's hub (--qemu-compat) hands input straight to the bridge; ours first queues up to
  // 64 KiB of input of its own, and a BREAK waits behind that queue too.
  for (const compat of [true, false]) it(`a BREAK sent while the bridge${compat ? "" : " and our hub's input queue"} hold bytes the guest has not read yet reaches it after them, not before${compat ? " (--qemu-compat)" : ""}`, async () => {
    const guest = await guestServer();
    // A device that holds little (4 KiB) past the kernel: the rest waits in the bridge's queue.
    const { control } = await startRun(`socket,id=dev,host=127.0.0.1,port=${guest.port},telnet=on,high-water-mark=4096`, ...(compat ? ["--qemu-compat"] : []));
    const device = await guest.connection;
    // The guest reads nothing for now: the kernel's buffers, the device, then the bridge fill up.
    device.socket.pause();
    const attached = await connectUnix(control);
    attached.socket.write(`${JSON.stringify({ cmd: "attach", console: "dev" })}\n`);
    await received(attached, "[-- dev: attached rw", "the attached client");
    const clientId = JSON.parse(attached.text.slice(0, attached.text.indexOf("\n"))).attached as string;
    const total = 16 * 1024 * 1024;
    const line = "0123456789abcdef".repeat(4) + "\n";
    const bulk = line.repeat(Math.ceil(total / line.length)).slice(0, total);
    attached.socket.write(bulk);
    // Held back for good: the hub took part of the bulk and no more (the bridge is full), the
    // same count twice in a row 300 ms apart (a bound on waiting, not a measurement).
    const bytesIn = async () => {
      const listed = await request(control, { cmd: "list" });
      const consoles = listed.consoles as { clients: { id: string; "bytes-in": number }[] }[];
      return consoles[0].clients.find((backend) => backend.id === clientId)?.["bytes-in"] ?? -1;
    };
    let taken = -1;
    for (;;) {
      const now = await bytesIn();
      if (now > 0 && now === taken) break;
      taken = now;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    expect(taken).toBeLessThan(total);
    expect(await request(control, { cmd: "break", client: clientId })).toEqual({ client: clientId, break: true });
    device.socket.resume();
    await until(() => device.text.length >= total + IAC_BREAK.length, "the guest to receive the bulk and the BREAK");
    // Every byte the hub had taken went first; the bulk the client still had came after.
    expect(device.text.indexOf(IAC_BREAK)).toBe(taken);
    expect(device.text.length).toBe(total + IAC_BREAK.length);
    expect(device.text.slice(0, taken) + device.text.slice(taken + IAC_BREAK.length) === bulk).toBe(true);
  });

  it("an attached client's b (the control protocol's break) reaches the telnet device's peer as IAC BREAK in its place", async () => {
    const guest = await guestServer();
    const { control } = await startRun(`socket,id=dev,host=127.0.0.1,port=${guest.port},telnet=on`);
    const device = await guest.connection;
    const attached = await connectUnix(control);
    attached.socket.write(`${JSON.stringify({ cmd: "attach", console: "dev" })}\n`);
    await received(attached, "[-- dev: attached rw", "the attached client");
    const clientId = JSON.parse(attached.text.slice(0, attached.text.indexOf("\n"))).attached as string;
    expect(clientId).toMatch(/^attach-\d+$/);
    attached.socket.write("typed-before");
    await received(device, "typed-before", "the guest");
    expect(await request(control, { cmd: "break", client: clientId })).toEqual({ client: clientId, break: true });
    await received(device, `typed-before${IAC_BREAK}`, "the guest");
    attached.socket.write("typed-after");
    await received(device, "typed-after", "the guest");
    expect(device.text).toBe(`typed-before${IAC_BREAK}typed-after`);
  });

  it("chardev-hub attach's b reaches the telnet device's peer as IAC BREAK and says BREAK sent", async () => {
    const guest = await guestServer();
    const { control } = await startRun(`socket,id=dev,host=127.0.0.1,port=${guest.port},telnet=on`);
    const device = await guest.connection;
    // A pipe for stdin: nothing is made raw, the escape prefix (Ctrl-]) works the same.
    const attach = new CliProcess(["attach", "dev", "--control", control]);
    await attach.waitForStdout("[-- dev: attached rw, 0 others --]");
    attach.send("typed-before");
    await received(device, "typed-before", "the guest");
    attach.send("\x1db");
    await attach.waitForStderr("[-- dev: BREAK sent --]");
    await received(device, `typed-before${IAC_BREAK}`, "the guest");
    attach.send("typed-after");
    await received(device, "typed-after", "the guest");
    expect(device.text).toBe(`typed-before${IAC_BREAK}typed-after`);
  });

  it("a read-only attached client's break is refused and nothing reaches the device", async () => {
    const guest = await guestServer();
    const { control } = await startRun(`socket,id=dev,host=127.0.0.1,port=${guest.port},telnet=on`);
    const device = await guest.connection;
    const viewer = await connectUnix(control);
    viewer.socket.write(`${JSON.stringify({ cmd: "attach", console: "dev", mode: "ro" })}\n`);
    await received(viewer, "[-- dev: attached ro", "the viewer");
    const clientId = JSON.parse(viewer.text.slice(0, viewer.text.indexOf("\n"))).attached as string;
    expect(await request(control, { cmd: "break", client: clientId })).toEqual({ error: `control: client '${clientId}' is read-only: a BREAK from it would be discarded` });
    // A writer's bytes after it arrive alone: no BREAK went before them.
    const writer = await connectUnix(control);
    writer.socket.write(`${JSON.stringify({ cmd: "attach", console: "dev" })}\n`);
    await received(writer, "[-- dev: attached rw", "the writer");
    writer.socket.write("after");
    await received(device, "after", "the guest");
    expect(device.text).toBe("after");
  });

  it("a spawn device cannot send a BREAK: the run says so once on stderr, and b is answered with why", async () => {
    const { cli, control, telnetPort } = await startRun("spawn,id=dev,cmd=sh");
    const client = await connectTcp(telnetPort);
    await received(client, "\xff\xfb\x01", "the telnet client");
    client.socket.write(Buffer.from(`${IAC_BREAK}echo one-$((40+2))\r`, "latin1"));
    await received(client, "one-42", "the telnet client");
    await cli.waitForStderr("device 'dev' cannot send a BREAK (spawn): dropped");
    client.socket.write(Buffer.from(`${IAC_BREAK}echo two-$((50+3))\r`, "latin1"));
    await received(client, "two-53", "the telnet client");
    // Told once, not on every BREAK.
    expect(cli.stderr.split("cannot send a BREAK").length - 1).toBe(1);

    const attached = await connectUnix(control);
    attached.socket.write(`${JSON.stringify({ cmd: "attach", console: "dev" })}\n`);
    await received(attached, "[-- dev: attached rw", "the attached client");
    const clientId = JSON.parse(attached.text.slice(0, attached.text.indexOf("\n"))).attached as string;
    expect(await request(control, { cmd: "break", client: clientId })).toEqual({ error: "control: device 'dev' cannot send a BREAK (spawn): not sent" });

    // What a person at `chardev-hub attach` sees after Ctrl-] b.
    const person = new CliProcess(["attach", "dev", "--control", control]);
    await person.waitForStdout("[-- dev: attached rw, ");
    person.send("\x1db");
    await person.waitForStderr("[-- control: device 'dev' cannot send a BREAK (spawn): not sent --]");
    expect(person.stderr).not.toContain("BREAK sent");
  });
});

describe("a telnet server connection keeps a BREAK in its place", () => {
  it("a BREAK typed after bytes its holder had no room for reaches the holder after them", async () => {
    const reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: () => {} });
    try {
      const port = await freePort();
      await reg.add(`socket,id=tn,host=127.0.0.1,port=${port},server=on,wait=off,telnet=on`);
      // The holder's log: bytes as latin1 text, a BREAK as "<BREAK>", in one string because
      // their order is the point (FeHandler keeps reads and events apart); no room until we say so.
      let log = "";
      let room = 0;
      const frontend = reg.attach("tn", {
        canRead: () => room,
        read: (data) => {
          log += Buffer.from(data).toString("latin1");
          room -= data.length;
        },
        event: (event) => {
          if (event === ChrEvent.BREAK) log += "<BREAK>";
        },
      });
      const client = await connectTcp(port);
      await received(client, "\xff\xfb\x01", "the telnet client");
      client.socket.write(Buffer.from(`abc${IAC_BREAK}def`, "latin1"));
      // Nothing, not even the BREAK, until the bytes before it are taken. (The wait only gives
      // the bytes time to arrive; before they do, the log is empty too.)
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(log).toBe("");
      room = 2;
      frontend.acceptInput();
      expect(log).toBe("ab");
      room = 100;
      frontend.acceptInput();
      await until(() => log.length >= "abc<BREAK>def".length, "the rest to reach the holder");
      expect(log).toBe("abc<BREAK>def");
    } finally {
      await reg.close();
    }
  });
});
