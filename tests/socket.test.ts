// The `socket` chardev with real TCP and UNIX sockets: QEMU's connect/disconnect events, one
// client at a time, the hub's catch-up, backpressure, reconnecting, socat as a peer, and the
// security defaults. Every behaviour test runs over both transports.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import { DEFAULT_HIGH_WATER_MARK, SocketChardev } from "../host-ts/chardev/socket.ts";
import type { NetAddress } from "../host-ts/runtime/types.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { freePort } from "./_ports.ts";

type Transport = "tcp" | "unix";
const TRANSPORTS: Transport[] = ["tcp", "unix"];
const { OPENED, CLOSED } = ChrEvent;

let reg: ChardevRegistry;
let dir: string;
/** Sockets and processes a test opened, closed after it whatever happened. */
let cleanups: (() => void)[];

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-socket-test-"));
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups) cleanup();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Waits (on the event loop, without a clock) until `condition` holds; vitest's timeout bounds it. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

/** The `-chardev` address keys of a fresh address on `transport` (TCP: any free port). */
function addressKeys(transport: Transport, name: string, port = 0): string {
  return transport === "tcp" ? `host=127.0.0.1,port=${port}` : `path=${path.join(dir, `${name}.sock`)}`;
}

/** A `wait=off` server chardev named `id`. */
async function addServer(transport: Transport, id: string, extra = ""): Promise<SocketChardev> {
  const chardev = await reg.add(`socket,id=${id},${addressKeys(transport, id)},server=on,wait=off${extra}`);
  return chardev as SocketChardev;
}

/** `tcp:127.0.0.1:4444` or `unix:/path`, as the filename spells an address. */
function shown(address: NetAddress): string {
  return address.transport === "tcp" ? `tcp:${address.host}:${address.port}` : `unix:${address.path}`;
}

function connectOptions(address: NetAddress): net.NetConnectOpts {
  return address.transport === "tcp" ? { host: address.host, port: address.port } : { path: address.path };
}

/** The far end of a chardev's socket, as a test drives it. */
class Peer {
  readonly #chunks: Buffer[] = [];
  receivedLength = 0;
  closed = false;

  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.receivedLength += chunk.length;
    });
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => {});
    cleanups.push(() => socket.destroy());
  }

  /** Connects; a `paused` peer reads nothing until `resume`. */
  static connect(address: NetAddress, { paused = false } = {}): Promise<Peer> {
    const socket = net.connect(connectOptions(address));
    if (paused) socket.pause();
    const peer = new Peer(socket);
    return new Promise((resolve, reject) => {
      socket.once("connect", () => resolve(peer));
      socket.once("error", reject);
    });
  }

  /** Connects as soon as `address` accepts (for servers that are not listening yet). */
  static async connectWhenListening(address: NetAddress): Promise<Peer> {
    let testOver = false;
    cleanups.push(() => (testOver = true));
    while (!testOver) {
      try {
        return await Peer.connect(address);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    throw new Error("the test ended before the server listened");
  }

  received(): Buffer {
    return Buffer.concat(this.#chunks);
  }
  text(): string {
    return this.received().toString();
  }
  write(text: string): void {
    this.socket.write(text);
  }
}

/** A plain node server standing in for a remote service the chardev connects to. */
class TestServer {
  readonly clients: net.Socket[] = [];
  private constructor(
    readonly server: net.Server,
    readonly address: NetAddress,
  ) {}

  static async listen(address: NetAddress): Promise<TestServer> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      if (address.transport === "tcp") server.listen(address.port, address.host, resolve);
      else server.listen(address.path, resolve);
    });
    const bound: NetAddress = address.transport === "tcp" ? { ...address, port: (server.address() as net.AddressInfo).port } : address;
    const testServer = new TestServer(server, bound);
    server.on("connection", (socket) => {
      socket.on("error", () => {});
      testServer.clients.push(socket);
    });
    cleanups.push(() => testServer.stop());
    return testServer;
  }

  /** Stops listening and drops its clients. */
  stop(): void {
    for (const client of this.clients) client.destroy();
    this.server.close();
  }
}

/** Bytes `offset`..`offset+length` of an endless pattern that never lines up with chunk sizes. */
function pattern(offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (offset + i) % 251;
  return out;
}

/** The most a kernel can hold between a sender and a receiver that does not read, on Linux. */
function kernelBufferLimit(transport: Transport): number {
  const maxOf = (file: string) => Math.max(...fs.readFileSync(file, "utf8").trim().split(/\s+/).map(Number));
  return transport === "tcp"
    ? maxOf("/proc/sys/net/ipv4/tcp_wmem") + maxOf("/proc/sys/net/ipv4/tcp_rmem")
    : maxOf("/proc/sys/net/core/wmem_max") + maxOf("/proc/sys/net/core/rmem_max");
}

for (const transport of TRANSPORTS) {
  describe(`socket over ${transport}`, () => {
    it("a client connecting sends OPENED, leaving sends CLOSED, and the server then takes a new client", async () => {
      const s0 = await addServer(transport, "s0");
      const h = new FeHandler();
      const fe = reg.attach("s0", h);
      expect(s0.filename).toBe(`disconnected:${shown(s0.address)},server=on`);
      expect(h.events).toEqual([]);

      const first = await Peer.connect(s0.address);
      await until(() => h.isOpen);
      expect(h.events).toEqual([OPENED]);
      expect(s0.filename).toBe(
        transport === "tcp"
          ? `tcp:127.0.0.1:${(s0.address as { port: number }).port},server=on <-> 127.0.0.1:${first.socket.localPort}`
          : `unix:${(s0.address as { path: string }).path},server=on`,
      );
      first.write("hello");
      await until(() => h.readCount === 5);
      expect(h.take()).toBe("hello");

      first.socket.end();
      await until(() => !h.isOpen);
      expect(h.events).toEqual([OPENED, CLOSED]);
      expect(s0.filename).toBe(`disconnected:${shown(s0.address)},server=on`);
      // No peer: QEMU 10's tcp_chr_write answers EIO, and there is nothing to watch.
      expect(fe.write(bytes("lost"))).toBe(-1);
      expect(fe.lastError).toBe("EIO");
      expect(fe.addWatch(() => {})).toBe(0);

      const second = await Peer.connect(s0.address);
      await until(() => h.isOpen);
      expect(h.events).toEqual([OPENED, CLOSED, OPENED]);
      expect(fe.write(bytes("welcome back"))).toBe(12);
      await until(() => second.receivedLength === 12);
      expect(second.text()).toBe("welcome back");
    });

    it("a second client waits until the first one leaves, and its early input is kept", async () => {
      const s0 = await addServer(transport, "s0");
      const h = new FeHandler();
      const fe = reg.attach("s0", h);
      const first = await Peer.connect(s0.address);
      await until(() => h.isOpen);
      const second = await Peer.connect(s0.address);
      second.write("early from second");

      first.write("from first");
      await until(() => h.readCount === 10);
      expect(h.take()).toBe("from first");
      expect(fe.write(bytes("for first"))).toBe(9);
      await until(() => first.receivedLength === 9);
      expect(first.text()).toBe("for first");
      expect(second.receivedLength).toBe(0);

      first.socket.end();
      await until(() => h.events.length === 3);
      expect(h.events).toEqual([OPENED, CLOSED, OPENED]);
      await until(() => h.readCount === 17);
      expect(h.take()).toBe("early from second");
      expect(fe.write(bytes("for second"))).toBe(10);
      await until(() => second.receivedLength === 10);
      expect(second.text()).toBe("for second");
    });

    it("input waits while the frontend can take nothing, and flows when it can again", async () => {
      class CountingHandler extends FeHandler {
        polls = 0;
        override canRead(): number {
          this.polls++;
          return super.canRead();
        }
      }
      const s0 = await addServer(transport, "s0");
      const h = new CountingHandler();
      h.room = 0;
      const fe = reg.attach("s0", h);
      const peer = await Peer.connect(s0.address);
      await until(() => h.isOpen);
      peer.write("held back");
      await until(() => h.polls > 0);
      expect(h.readCount).toBe(0);

      h.room = 128;
      fe.acceptInput();
      expect(h.take()).toBe("held back");
    });

    it("server=on alone (wait=on, QEMU's default) makes add wait for the first client", async () => {
      const keys = transport === "tcp" ? addressKeys("tcp", "s0", await freePort()) : addressKeys("unix", "s0");
      const adding = reg.add(`socket,id=s0,${keys},server=on`);
      const address: NetAddress =
        transport === "tcp" ? { transport, host: "127.0.0.1", port: Number(/port=(\d+)/.exec(keys)![1]) } : { transport, path: path.join(dir, "s0.sock") };
      const connecting = Peer.connectWhenListening(address);
      connecting.catch(() => {}); // if add fails, that is the failure to report

      const s0 = (await adding) as SocketChardev;
      const peer = await connecting;
      expect(s0.connected).toBe(true);
      const h = new FeHandler();
      const fe = reg.attach("s0", h);
      expect(h.events).toEqual([OPENED]);
      expect(fe.write(bytes("you were first"))).toBe(14);
      await until(() => peer.receivedLength === 14);
      expect(peer.text()).toBe("you were first");
    });

    it("a client that connects to the hub later gets only what is written after it connected", async () => {
      await reg.add("ringbuf,id=r0,size=128");
      const s0 = await addServer(transport, "s0");
      await reg.add("hub,id=hub0,chardevs.0=r0,chardevs.1=s0");
      const h = new FeHandler();
      const fe = reg.attach("hub0", h);
      expect(fe.write(bytes("before "))).toBe(7);

      const peer = await Peer.connect(s0.address);
      await until(() => s0.connected);
      expect(fe.write(bytes("after"))).toBe(5);
      await until(() => peer.receivedLength === 5);
      expect(peer.text()).toBe("after");
      expect(reg.ringbufRead("r0", 128)).toBe("before after");
      // The ringbuf opened the hub already: the socket's OPENED does not reach the frontend again.
      expect(h.events).toEqual([OPENED]);
    });

    it("two socket clients and a file behind one hub: input from either reaches the frontend, frontend output reaches both clients and the file", async () => {
      const s1 = await addServer(transport, "s1");
      const s2 = await addServer(transport, "s2");
      const logPath = path.join(dir, "console.log");
      await reg.add(`file,id=f0,path=${logPath}`);
      await reg.add("hub,id=hub0,chardevs.0=s1,chardevs.1=s2,chardevs.2=f0");
      const h = new FeHandler();
      const fe = reg.attach("hub0", h);
      const a = await Peer.connect(s1.address);
      const b = await Peer.connect(s2.address);
      await until(() => s1.connected && s2.connected);

      a.write("from a\n");
      await until(() => h.readCount === 7);
      expect(h.take()).toBe("from a\n");
      b.write("from b\n");
      await until(() => h.readCount === 7);
      expect(h.take()).toBe("from b\n");

      expect(fe.write(bytes("to all\n"))).toBe(7);
      await until(() => a.receivedLength === 7 && b.receivedLength === 7);
      expect(a.text()).toBe("to all\n");
      expect(b.text()).toBe("to all\n");
      expect(fs.readFileSync(logPath, "utf8")).toBe("to all\n");
    });

    it("a client that stops reading makes write return EAGAIN instead of growing memory", async () => {
      const s0 = await addServer(transport, "s0");
      await reg.add("hub,id=hub0,chardevs.0=s0");
      const fe = reg.attach("hub0", new FeHandler());
      const peer = await Peer.connect(s0.address, { paused: true });
      await until(() => s0.connected);

      const CHUNK = 16 * 1024;
      // Kernel buffers, our mark, and what the peer's socket read before it paused.
      const bound = kernelBufferLimit(transport) + DEFAULT_HIGH_WATER_MARK + peer.socket.readableHighWaterMark;
      let accepted = 0;
      // Bounded, so a chardev that grows without limit fails here instead of looping forever.
      while (accepted <= bound) {
        const taken = fe.write(pattern(accepted, CHUNK));
        if (taken === -1) break;
        accepted += taken;
        expect(s0.bufferedBytes).toBeLessThanOrEqual(DEFAULT_HIGH_WATER_MARK);
      }
      expect(fe.lastError).toBe("EAGAIN");
      expect(accepted).toBeLessThanOrEqual(bound);
      // What we hold is exactly the mark; the rest sits in the kernel's buffers.
      expect(s0.bufferedBytes).toBe(DEFAULT_HIGH_WATER_MARK);
      expect(fe.write(bytes("x"))).toBe(-1);
      expect(fe.lastError).toBe("EAGAIN");

      let woke = false;
      expect(fe.addWatch(() => (woke = true))).not.toBe(0);
      peer.socket.resume();
      await until(() => woke);

      // The rest flows, each EAGAIN waited out with a watch.
      const total = accepted + 256 * 1024;
      while (accepted < total) {
        const taken = fe.write(pattern(accepted, Math.min(CHUNK, total - accepted)));
        if (taken === -1) {
          expect(fe.lastError).toBe("EAGAIN");
          await new Promise<void>((resolve) => {
            if (fe.addWatch(resolve) === 0) resolve();
          });
          continue;
        }
        accepted += taken;
      }
      await until(() => peer.receivedLength === total);
      expect(Buffer.compare(peer.received(), pattern(0, total))).toBe(0);
    });

    it("a client with reconnect-ms connects again after the server restarts", async () => {
      const first = await TestServer.listen(transport === "tcp" ? { transport, host: "127.0.0.1", port: 0 } : { transport, path: path.join(dir, "remote.sock") });
      const keys = first.address.transport === "tcp" ? `host=127.0.0.1,port=${first.address.port}` : `path=${first.address.path}`;
      const c0 = (await reg.add(`socket,id=c0,${keys},reconnect-ms=20`)) as SocketChardev;
      const h = new FeHandler();
      const fe = reg.attach("c0", h);
      await until(() => h.isOpen && first.clients.length === 1);
      expect(c0.filename).toBe(
        transport === "tcp"
          ? `tcp:127.0.0.1:${first.clients[0].remotePort} <-> ${shown(first.address).slice(4)}`
          : `unix:${(first.address as { path: string }).path}`,
      );
      first.clients[0].write("hello");
      await until(() => h.readCount === 5);
      expect(h.take()).toBe("hello");

      first.stop();
      await until(() => !h.isOpen);
      expect(c0.filename).toBe(`disconnected:${shown(first.address)}`);

      const second = await TestServer.listen(first.address);
      await until(() => h.isOpen && second.clients.length === 1);
      expect(h.events).toEqual([OPENED, CLOSED, OPENED]);
      expect(fe.write(bytes("again"))).toBe(5);
      const received: Buffer[] = [];
      second.clients[0].on("data", (chunk: Buffer) => received.push(chunk));
      await until(() => Buffer.concat(received).length === 5);
      expect(Buffer.concat(received).toString()).toBe("again");
    });

    it("a client without reconnect-ms fails to open when nobody listens, and nothing is registered", async () => {
      const keys = transport === "tcp" ? `host=127.0.0.1,port=${await freePort()}` : `path=${path.join(dir, "nobody.sock")}`;
      const error = await errorOf(() => reg.add(`socket,id=c0,${keys}`));
      expect(error).toBeInstanceOf(ChardevError);
      expect(error.code).toBe("OPEN_FAILED");
      // QEMU's texts (util/qemu-sockets.c), as tests/qmp_qemu_table.test.ts compares them.
      const target = transport === "tcp" ? keys.replace("host=", "").replace(",port=", ":") : path.join(dir, "nobody.sock");
      const why = transport === "tcp" ? "Connection refused" : "No such file or directory";
      expect(error.message).toBe(`Failed to connect to '${target}': ${why}`);
      expect(reg.find("c0")).toBeUndefined();
    });

    it("socat as the peer: its input reaches the frontend and frontend output reaches it", async () => {
      const s0 = await addServer(transport, "s0");
      const h = new FeHandler();
      const fe = reg.attach("s0", h);
      const address = s0.address;
      const target = address.transport === "tcp" ? `TCP:127.0.0.1:${address.port}` : `UNIX-CONNECT:${address.path}`;
      const socat = spawn("socat", ["-", target], { stdio: ["pipe", "pipe", "inherit"] });
      cleanups.push(() => socat.kill());
      let output = "";
      socat.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => socat.on("exit", resolve));

      await until(() => h.isOpen);
      socat.stdin.write("ping from socat\n");
      await until(() => h.readCount === 16);
      expect(h.take()).toBe("ping from socat\n");
      expect(fe.write(bytes("pong from the frontend\n"))).toBe(23);
      await until(() => output.length === 23);
      expect(output).toBe("pong from the frontend\n");

      // socat's stdin ends: it shuts its side, we close ours, it exits.
      socat.stdin.end();
      await until(() => !h.isOpen);
      expect(h.events).toEqual([OPENED, CLOSED]);
      expect(await exited).toBe(0);
    });
  });
}

describe("socket security defaults and failures", () => {
  it("a UNIX socket is created mode 0600 and removed when the chardev goes", async () => {
    const socketPath = path.join(dir, "private.sock");
    await reg.add(`socket,id=s0,path=${socketPath},server=on,wait=off`);
    const stat = fs.statSync(socketPath);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(reg.query()).toEqual([{ label: "s0", filename: `disconnected:unix:${socketPath},server=on`, frontendOpen: false }]);

    await reg.remove("s0");
    expect(fs.existsSync(socketPath)).toBe(false);
  });

  it("a stale UNIX socket file is replaced, but any other file at the path is left alone", async () => {
    const stalePath = path.join(dir, "stale.sock");
    // socat killed without a chance to clean up leaves its socket file behind.
    const socat = spawn("socat", [`UNIX-LISTEN:${stalePath}`, "-"], { stdio: ["pipe", "ignore", "inherit"] });
    cleanups.push(() => socat.kill("SIGKILL"));
    await until(() => fs.existsSync(stalePath));
    socat.kill("SIGKILL");
    await new Promise((resolve) => socat.on("exit", resolve));
    expect(fs.statSync(stalePath).isSocket()).toBe(true);
    await reg.add(`socket,id=s0,path=${stalePath},server=on,wait=off`);
    expect(fs.statSync(stalePath).mode & 0o777).toBe(0o600);
    const peer = await Peer.connect({ transport: "unix", path: stalePath });
    await until(() => (reg.get("s0") as SocketChardev).connected);
    peer.socket.destroy();

    const filePath = path.join(dir, "notes.txt");
    fs.writeFileSync(filePath, "keep me");
    const error = await errorOf(() => reg.add(`socket,id=s1,path=${filePath},server=on,wait=off`));
    expect(error.code).toBe("OPEN_FAILED");
    expect(error.message).toBe(`Failed to bind socket to ${filePath}: Address already in use`);
    expect(fs.readFileSync(filePath, "utf8")).toBe("keep me");
    expect(reg.find("s1")).toBeUndefined();
  });

  it("a TCP server with an empty host binds 127.0.0.1, not every interface", async () => {
    const s0 = (await reg.add("socket,id=s0,host=,port=0,server=on,wait=off")) as SocketChardev;
    expect(s0.address).toMatchObject({ transport: "tcp", host: "127.0.0.1" });
    expect(s0.filename).toBe(`disconnected:tcp:127.0.0.1:${(s0.address as { port: number }).port},server=on`);
  });

  it("a busy TCP port gives OPEN_FAILED, registers nothing and holds no socket", async () => {
    const s0 = (await reg.add("socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off")) as SocketChardev;
    const port = (s0.address as { port: number }).port;
    const error = await errorOf(() => reg.add(`socket,id=s1,host=127.0.0.1,port=${port},server=on,wait=off`));
    expect(error).toBeInstanceOf(ChardevError);
    expect(error.code).toBe("OPEN_FAILED");
    expect(error.message).toBe(`Failed to find an available port: Address already in use`);
    expect(reg.find("s1")).toBeUndefined();

    // Once the owner goes, the port is free again: the failed attempt kept nothing on it.
    await reg.remove("s0");
    await reg.add(`socket,id=s1,host=127.0.0.1,port=${port},server=on,wait=off`);
  });

  it("a bad UNIX path gives OPEN_FAILED with the OS reason and leaves no file", async () => {
    const badPath = path.join(dir, "missing", "s.sock");
    const error = await errorOf(() => reg.add(`socket,id=s0,path=${badPath},server=on,wait=off`));
    expect(error).toBeInstanceOf(ChardevError);
    expect(error.code).toBe("OPEN_FAILED");
    expect(error.message).toBe(`Failed to bind socket to ${badPath}: No such file or directory`);
    expect(reg.find("s0")).toBeUndefined();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe("socket options", () => {
  it("QEMU's option errors come with QEMU's words", async () => {
    const cases: [string, string][] = [
      ["socket,id=s0,path=/tmp/x.sock,wait=on", "'wait' option is incompatible with socket in client connect mode"],
      ["socket,id=s0,path=/tmp/x.sock,host=localhost,port=1", "None or one of 'path', 'fd' or 'host' option required."],
      ["socket,id=s0,host=localhost", "chardev: socket: no port given"],
      ["socket,id=s0,host=localhost,port=1,server=on,reconnect=1", "'reconnect' option is incompatible with socket in server listen mode"],
      ["socket,id=s0,host=localhost,port=1,reconnect=1,reconnect-ms=5", "'reconnect' and 'reconnect-ms' are mutually exclusive"],
      ["socket,id=s0,host=localhost,port=1,delay=off,nodelay=on", "'delay' and 'nodelay' are mutually exclusive"],
      ["socket,id=s0,host=localhost,port=1,websocket=on", "Websocket client is not implemented"],
      ["socket,id=s0,host=localhost,port=http", "socket: port 'http' is not a number from 0 to 65535"],
    ];
    for (const [spec, message] of cases) {
      expect((await errorOf(() => reg.add(spec))).message).toBe(message);
    }
    expect(reg.query()).toEqual([]);
  });

  it("QMP chardev-add takes QAPI's ChardevSocket, with QAPI's defaults (server on, wait off)", async () => {
    const socketPath = path.join(dir, "qmp.sock");
    const s0 = await reg.add({ id: "s0", backend: { type: "socket", data: { addr: { type: "unix", data: { path: socketPath } } } } });
    expect(s0.filename).toBe(`disconnected:unix:${socketPath},server=on`);

    const s1 = await reg.add({
      id: "s1",
      backend: { type: "socket", data: { addr: { type: "inet", data: { host: "127.0.0.1", port: "0" } }, nodelay: true, "high-water-mark": 4096 } },
    });
    expect((s1 as SocketChardev).options).toMatchObject({ server: true, wait: false, nodelay: true, highWaterMark: 4096 });

    const wrongPort = await errorOf(() =>
      reg.add({ id: "s2", backend: { type: "socket", data: { addr: { type: "inet", data: { host: "127.0.0.1", port: 4444 } } } } }),
    );
    expect(wrongPort.message).toBe("Invalid parameter type for 'backend.data.addr.data.port', expected: string");
    const notObject = await errorOf(() => reg.add({ id: "s2", backend: { type: "socket", data: { addr: "127.0.0.1:4444" } } }));
    expect(notObject.message).toBe("Invalid parameter type for 'backend.data.addr', expected: object");
    const vsock = await errorOf(() => reg.add({ id: "s2", backend: { type: "socket", data: { addr: { type: "vsock", data: {} } } } }));
    expect(vsock.message).toBe("socket: address type 'vsock' is not supported");
    expect(reg.find("s2")).toBeUndefined();
  });
});
