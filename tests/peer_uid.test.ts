// Same user on loopback TCP: the /proc/net/tcp{,6} lookup of who owns the other end of a
// connection, and the TCP listeners that use it (the `socket` chardev as a server, QMP over
// TCP), against a real second local account. The intruder is a system user this suite adds
// with useradd and runs socat as with setpriv, so it needs root: CI runs as root; anywhere else
// these cases fail in their setup, saying why, rather than pass without having run.

import { spawn, type ChildProcess } from "node:child_process";
import * as net from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry, ChrEvent, qmpChardevSpec, startQmp, type SocketChardev } from "../host-ts/mod.ts";
import { isLoopbackAddress, ipAddressBytes } from "../host-ts/runtime/_ip_address.ts";
import { detectRuntime } from "../host-ts/runtime/detect.ts";
import type { PeerIdentity, TcpEndpoint } from "../host-ts/runtime/types.ts";
import { loopbackPeerRefusal, plainNetworkListenerWarning } from "../host-ts/chardev/_peer_access.ts";
import { errorOf, FeHandler } from "./_fe_handler.ts";
import { asIntruder, ensureIntruderAccount } from "./_intruder.ts";

const { OPENED, CLOSED } = ChrEvent;

/** The intruder's uid and gid, once setup has made sure the account exists. */
let intruder: { uid: number; gid: number };
let peers: PeerIdentity;

beforeAll(async () => {
  intruder = ensureIntruderAccount();
  const runtime = await detectRuntime();
  if (!runtime.peers) throw new Error(`the ${runtime.name} runtime offers no peer lookup here (Linux only)`);
  peers = runtime.peers;
});

/** Waits (on the event loop, without a clock) until `condition` holds; the test timeout bounds it. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

/** A socat client, run as us or as the intruder; what it printed and how it ended. */
class Socat {
  readonly process: ChildProcess;
  output = "";
  exitCode: number | null = null;
  readonly exited: Promise<number>;

  constructor(as: "us" | "intruder", address: string) {
    const command = ["socat", "-", address];
    const argv = as === "us" ? command : asIntruder(intruder, command);
    this.process = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    this.process.stdout!.on("data", (chunk: Uint8Array) => (this.output += new TextDecoder().decode(chunk)));
    this.exited = new Promise((resolve) => this.process.on("exit", (code) => resolve((this.exitCode = code ?? -1))));
  }

  type(text: string): void {
    this.process.stdin!.write(text);
  }

  end(): void {
    this.process.stdin!.end();
  }
}

/** Processes and sockets a test opened, ended after it whatever happened. */
let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function startSocat(as: "us" | "intruder", address: string): Socat {
  const socat = new Socat(as, address);
  cleanups.push(() => socat.exitCode === null && socat.process.kill());
  return socat;
}

/** socat's spelling of a TCP address: `TCP:127.0.0.1:PORT`, `TCP6:[::1]:PORT`. */
function socatTcp(host: string, port: number): string {
  return host.includes(":") ? `TCP6:[${host}]:${port}` : `TCP:${host}:${port}`;
}

// ---- the lookup itself ---------------------------------------------------------------------

describe("isLoopbackAddress", () => {
  it("accepts 127.0.0.0/8, ::1 and IPv4-mapped loopback, in every spelling a runtime reports", () => {
    for (const host of ["127.0.0.1", "127.255.0.9", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "::FFFF:127.1.2.3"]) {
      expect([host, isLoopbackAddress(host)]).toEqual([host, true]);
    }
  });

  it("refuses wildcards, network addresses, names and garbage", () => {
    for (const host of ["0.0.0.0", "::", "192.168.1.5", "::ffff:10.0.0.1", "::2", "1::1", "localhost", "127.0.0.256", "::1%lo", "", "1:2:3:4:5:6:7:8:9"]) {
      expect([host, isLoopbackAddress(host)]).toEqual([host, false]);
    }
  });

  it("reads an IPv4-mapped address as its IPv4 bytes", () => {
    expect(Array.from(ipAddressBytes("::ffff:127.0.0.1")!)).toEqual([127, 0, 0, 1]);
    expect(ipAddressBytes("::1")!.length).toBe(16);
  });
});

/** A plain node:net server on `host` that keeps every connection it accepts. */
async function acceptingServer(host: string): Promise<{ server: net.Server; port: number; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => accepted.push(socket));
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, resolve));
  cleanups.push(() => {
    for (const socket of accepted) socket.destroy();
    server.close();
  });
  return { server, port: (server.address() as net.AddressInfo).port, accepted };
}

function endpointsOf(socket: net.Socket): { local: TcpEndpoint; remote: TcpEndpoint } {
  return { local: { host: socket.localAddress!, port: socket.localPort! }, remote: { host: socket.remoteAddress!, port: socket.remotePort! } };
}

describe("the /proc/net/tcp lookup of a peer's uid", () => {
  for (const host of ["127.0.0.1", "::1"]) {
    it(`names our own uid for a connection we made to ${host}`, async () => {
      const { port, accepted } = await acceptingServer(host);
      const client = net.connect({ host, port });
      cleanups.push(() => client.destroy());
      await until(() => accepted.length === 1);
      const { local, remote } = endpointsOf(accepted[0]);
      expect(peers.tcpPeerUid(local, remote)).toBe(peers.ownUid);
      // From the client's side, the server's socket is ours as well.
      const clientSide = endpointsOf(client);
      expect(peers.tcpPeerUid(clientSide.local, clientSide.remote)).toBe(peers.ownUid);
    });

    it(`names the other user's uid for a connection it made to ${host}`, async () => {
      const { port, accepted } = await acceptingServer(host);
      const socat = startSocat("intruder", socatTcp(host, port));
      await until(() => accepted.length === 1);
      const { local, remote } = endpointsOf(accepted[0]);
      expect(intruder.uid).not.toBe(peers.ownUid);
      expect(peers.tcpPeerUid(local, remote)).toBe(intruder.uid);
      socat.end();
    });
  }

  it("finds an IPv6 socket that connected to an IPv4 listener through a mapped address", async () => {
    const { port, accepted } = await acceptingServer("127.0.0.1");
    // socat's TCP6 socket to ::ffff:127.0.0.1 is listed in /proc/net/tcp6, ours in /proc/net/tcp.
    const socat = startSocat("intruder", `TCP6:[::ffff:127.0.0.1]:${port}`);
    await until(() => accepted.length === 1);
    const { local, remote } = endpointsOf(accepted[0]);
    expect(remote.host).toBe("127.0.0.1");
    expect(peers.tcpPeerUid(local, remote)).toBe(intruder.uid);
    socat.end();
  });

  it("answers null for a peer that is not there", async () => {
    const { port, accepted } = await acceptingServer("127.0.0.1");
    const client = net.connect({ host: "127.0.0.1", port });
    cleanups.push(() => client.destroy());
    await until(() => accepted.length === 1);
    const { local, remote } = endpointsOf(accepted[0]);
    // Same connection, but a port on the peer's side that no socket of this connection has.
    const wrongPort = remote.port === 65535 ? 65534 : remote.port + 1;
    expect(peers.tcpPeerUid(local, { host: remote.host, port: wrongPort })).toBeNull();
    expect(peers.tcpPeerUid(local, { host: "127.0.0.2", port: remote.port })).toBeNull();
  });

  it("answers null once the peer has closed its socket, rather than the uid 0 the kernel shows for it", async () => {
    const { port, accepted } = await acceptingServer("127.0.0.1");
    const socat = startSocat("intruder", `TCP:127.0.0.1:${port}`);
    await until(() => accepted.length === 1);
    const server = accepted[0];
    const { local, remote } = endpointsOf(server);
    expect(peers.tcpPeerUid(local, remote)).toBe(intruder.uid);
    let ended = false;
    server.on("end", () => (ended = true));
    server.resume();
    // socat's stdin ends: it sends FIN and, waiting on us, its socket stays in FIN_WAIT2, yet
    // once socat has exited that socket belongs to no file and shows uid 0.
    socat.end();
    await until(() => ended);
    await socat.exited;
    expect(peers.tcpPeerUid(local, remote)).toBeNull();
  });
});

// ---- the listeners -------------------------------------------------------------------------

let reg: ChardevRegistry;
let warnings: string[];
beforeEach(async () => {
  warnings = [];
  reg = await ChardevRegistry.create({ qemuCompat: true, onWarning: (line) => warnings.push(line) });
});
afterEach(async () => {
  await reg.close();
});

/** The line a refused connection prints, with the intruder's port left open. */
function refusalLine(id: string, host: string, uid: number): RegExp {
  const from = host.includes(":") ? `\\[${host.replace(/\./g, "\\.")}\\]` : host.replace(/\./g, "\\.");
  return new RegExp(`^socket: ${id}: refused a connection from ${from}:\\d+: uid ${uid} is not ours \\(uid ${peers.ownUid}\\); access=any allows it$`);
}

describe("a TCP socket server chardev serves only our own uid from loopback", () => {
  for (const host of ["127.0.0.1", "::1"]) {
    it(`closes another user's connection on ${host} unread, says so on stderr and counts it`, async () => {
      const s0 = (await reg.add(`socket,id=s0,host=${host},port=0,server=on,wait=off`)) as SocketChardev;
      const h = new FeHandler();
      reg.attach("s0", h);
      const socat = startSocat("intruder", socatTcp(host, s0.address.transport === "tcp" ? s0.address.port : 0));
      socat.type("id\n");
      // stdin stays open: socat ends only because we closed the connection.
      await until(() => warnings.length === 1);
      await socat.exited;
      expect(warnings[0]).toMatch(refusalLine("s0", host, intruder.uid));
      expect(s0.refusedConnections).toBe(1);
      expect(h.events).toEqual([]);
      expect(h.take()).toBe("");
      expect(socat.output).toBe("");
      expect(s0.connected).toBe(false);
    });

    it(`serves the same connection on ${host} from our own uid`, async () => {
      const s0 = (await reg.add(`socket,id=s0,host=${host},port=0,server=on,wait=off`)) as SocketChardev;
      const h = new FeHandler();
      reg.attach("s0", h);
      const socat = startSocat("us", socatTcp(host, s0.address.transport === "tcp" ? s0.address.port : 0));
      socat.type("id\n");
      await until(() => h.readCount === 3);
      expect(h.take()).toBe("id\n");
      socat.end();
      await until(() => !h.isOpen);
      expect(h.events).toEqual([OPENED, CLOSED]);
      expect(await socat.exited).toBe(0);
      expect(s0.refusedConnections).toBe(0);
      expect(warnings).toEqual([]);
    });

    it(`serves another user on ${host} with access=any`, async () => {
      const s0 = (await reg.add(`socket,id=s0,host=${host},port=0,server=on,wait=off,access=any`)) as SocketChardev;
      const h = new FeHandler();
      reg.attach("s0", h);
      const socat = startSocat("intruder", socatTcp(host, s0.address.transport === "tcp" ? s0.address.port : 0));
      socat.type("id\n");
      await until(() => h.readCount === 3);
      expect(h.take()).toBe("id\n");
      socat.end();
      await until(() => !h.isOpen);
      expect(h.events).toEqual([OPENED, CLOSED]);
      expect(s0.refusedConnections).toBe(0);
      expect(warnings).toEqual([]);
    });
  }

  it("refuses an intruder who comes while our own client is connected, and never queues it", async () => {
    const s0 = (await reg.add("socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off")) as SocketChardev;
    const h = new FeHandler();
    reg.attach("s0", h);
    const port = s0.address.transport === "tcp" ? s0.address.port : 0;
    const ours = startSocat("us", `TCP:127.0.0.1:${port}`);
    await until(() => h.isOpen);
    const theirs = startSocat("intruder", `TCP:127.0.0.1:${port}`);
    theirs.type("intruded\n");
    await theirs.exited;
    expect(s0.refusedConnections).toBe(1);
    // Our client leaves: nobody waits behind it, so the chardev stays closed.
    ours.end();
    await ours.exited;
    await until(() => !h.isOpen);
    expect(h.events).toEqual([OPENED, CLOSED]);
    expect(h.take()).toBe("");
  });
});

describe("QMP over TCP serves only our own uid", () => {
  const GREETING_START = '{"QMP": {"version": ';
  const ADD_A_CHARDEV = '{"execute": "qmp_capabilities"}\n{"execute": "chardev-add", "arguments": {"id": "intruded", "backend": {"type": "null", "data": {}}}}\n';

  async function qmpPort(address: string): Promise<number> {
    // reg.close() after each test removes the monitor's chardev with the rest.
    await startQmp(reg, address);
    const chardev = reg.find("compat_monitor0") as SocketChardev;
    return chardev.address.transport === "tcp" ? chardev.address.port : 0;
  }

  it("closes another user's connection before the greeting; its commands never run", async () => {
    const port = await qmpPort("tcp:127.0.0.1:0,server=on,wait=off");
    const socat = startSocat("intruder", `TCP:127.0.0.1:${port}`);
    socat.type(ADD_A_CHARDEV);
    await socat.exited;
    expect(socat.output).toBe("");
    expect(reg.find("intruded")).toBeUndefined();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(refusalLine("compat_monitor0", "127.0.0.1", intruder.uid));
  });

  it("greets our own uid and runs its commands", async () => {
    const port = await qmpPort("tcp:127.0.0.1:0,server=on,wait=off");
    const socat = startSocat("us", `TCP:127.0.0.1:${port}`);
    socat.type(ADD_A_CHARDEV);
    await until(() => socat.output.split("\r\n").length >= 4);
    const [greeting, ...answers] = socat.output.split("\r\n");
    expect(greeting.startsWith(GREETING_START)).toBe(true);
    expect(answers).toEqual(['{"return": {}}', '{"return": {}}', ""]);
    expect(reg.find("intruded")).toBeDefined();
    socat.end();
    await socat.exited;
    expect(warnings).toEqual([]);
  });

  it("greets another user with -qmp ...,access=any", async () => {
    const port = await qmpPort("tcp:127.0.0.1:0,server=on,wait=off,access=any");
    const socat = startSocat("intruder", `TCP:127.0.0.1:${port}`);
    socat.type(ADD_A_CHARDEV);
    await until(() => socat.output.split("\r\n").length >= 4);
    const [greeting, ...answers] = socat.output.split("\r\n");
    expect(greeting.startsWith(GREETING_START)).toBe(true);
    expect(answers).toEqual(['{"return": {}}', '{"return": {}}', ""]);
    expect(reg.find("intruded")).toBeDefined();
    socat.end();
    await socat.exited;
    expect(warnings).toEqual([]);
  });

  it("passes access=any through to the socket chardev", () => {
    expect(qmpChardevSpec("tcp:127.0.0.1:4444,server=on,wait=off,access=any", "compat_monitor0")).toBe(
      "socket,id=compat_monitor0,host=127.0.0.1,port=4444,server=on,wait=off,access=any",
    );
  });
});

// ---- the options and the network warning -------------------------------------------------------

describe("the access option and the plain-network warning", () => {
  it("refuses an access value other than user or any, with a clear error", async () => {
    const error = await errorOf(() => reg.add("socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off,access=all"));
    expect(error).toBeInstanceOf(ChardevError);
    expect(error.code).toBe("INVALID_VALUE");
    expect(error.message).toBe("socket: 'access' must be 'user' or 'any', not 'all'");
    const qmpForm = await errorOf(() =>
      reg.add({ id: "s1", backend: { type: "socket", data: { addr: { type: "inet", data: { host: "127.0.0.1", port: "0" } }, access: "everyone" } } }),
    );
    expect(qmpForm.message).toBe("socket: 'access' must be 'user' or 'any', not 'everyone'");
    expect(reg.find("s0")).toBeUndefined();
    expect(reg.find("s1")).toBeUndefined();
  });

  it("a loopback listener prints no warning", async () => {
    await reg.add("socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off");
    await reg.add("socket,id=s1,host=::1,port=0,server=on,wait=off");
    expect(warnings).toEqual([]);
  });

  // Binding a real listener to a network address would expose the test machine, so the
  // warning's text is checked on the function the chardev calls after listening.
  it("a listener on a network address without TLS is warned about; with TLS it is not", () => {
    expect(plainNetworkListenerWarning("socket", "c1", { host: "0.0.0.0", port: 4444 }, false)).toBe(
      "socket: c1: listening on 0.0.0.0:4444 without TLS: anyone on the network can type into this console",
    );
    expect(plainNetworkListenerWarning("socket", "c1", { host: "::", port: 4444 }, false)).toBe(
      "socket: c1: listening on [::]:4444 without TLS: anyone on the network can type into this console",
    );
    expect(plainNetworkListenerWarning("socket", "c1", { host: "0.0.0.0", port: 4444 }, true)).toBeNull();
    expect(plainNetworkListenerWarning("socket", "c1", { host: "127.0.0.1", port: 4444 }, false)).toBeNull();
  });

  it("a peer from a network address that is not on this machine is served; a loopback one that cannot be found is not", async () => {
    const runtime = await detectRuntime();
    const local = { host: "127.0.0.1", port: 1 };
    // No socket of this machine is 198.51.100.7 (TEST-NET-2): another host, served.
    expect(loopbackPeerRefusal(runtime, "socket", "c1", "user", local, { host: "198.51.100.7", port: 2 })).toBeNull();
    expect(loopbackPeerRefusal(runtime, "socket", "c1", "user", local, { host: "127.0.0.1", port: 2 })).toBe(
      `socket: c1: refused a connection from 127.0.0.1:2: an unknown user is not ours (uid ${peers.ownUid}); access=any allows it`,
    );
    expect(loopbackPeerRefusal(runtime, "socket", "c1", "any", local, { host: "127.0.0.1", port: 2 })).toBeNull();
  });
});

afterAll(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});
