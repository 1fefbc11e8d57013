// `socket` with `max-clients=N` (issue 13, item 1): many clients on one listening socket, each
// its own backend of the hub. End to end with the real command (dist/cli.js) on the runtime
// under test, a real device (sh or seq on a pty, `spawn`) and real `socat` clients; QMP over a
// UNIX socket. The option checks and the hub's rows run in process, with real sockets too.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry, ChrEvent, type HubChardev } from "../host-ts/mod.ts";
import type { SocketChardev } from "../host-ts/chardev/socket.ts";
import { CliProcess, GIVE_UP_MS, readText, SocketClient, until } from "./cli/_cli.ts";
import { FeHandler } from "./_fe_handler.ts";
import { TELNET_NEGOTIATION } from "../host-ts/chardev/_telnet.ts";
import { freePort } from "./_ports.ts";

/** One `socat` client (`socat - ADDRESS`, as a rule): what it prints, what we type into it, how it ended. */
class Socat {
  readonly child: ChildProcessWithoutNullStreams;
  text = "";
  exitCode: number | null | undefined = undefined;
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn("socat", args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.on("data", (chunk: Buffer) => (this.text += chunk.toString("latin1")));
    this.child.stderr.on("data", () => {});
    this.child.stdin.on("error", () => {});
    this.exited = new Promise((resolve) =>
      this.child.on("close", (code) => {
        this.exitCode = code;
        resolve(code);
      }),
    );
    running.push(this);
  }

  send(text: string): void {
    this.child.stdin.write(text);
  }

  async waitFor(text: string): Promise<void> {
    await until(() => this.text.includes(text), `socat to print ${JSON.stringify(text)} (it has ${JSON.stringify(this.text.slice(-200))})`);
  }

  /** Ends its input: socat shuts down its side and exits. */
  end(): void {
    this.child.stdin.end();
  }

  kill(): void {
    if (this.exitCode === undefined) this.child.kill("SIGKILL");
  }
}

let running: Socat[];
let openSockets: net.Socket[];
let dir: string;
const at = (name: string) => path.join(dir, name);

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-max-clients-"));
  running = [];
  openSockets = [];
});
afterEach(async () => {
  for (const socat of running) socat.kill();
  for (const socket of openSockets) socket.destroy();
  await CliProcess.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A QMP client of the command's `-qmp unix:...` socket. */
async function qmpClient(socketPath: string): Promise<(command: string, args?: object) => Promise<any>> {
  const qmp = await SocketClient.connect(socketPath);
  let seen = 0;
  const next = async (): Promise<any> => {
    await until(() => qmp.text.slice(seen).includes("\r\n"), "a QMP message");
    const end = qmp.text.indexOf("\r\n", seen);
    const line = qmp.text.slice(seen, end);
    seen = end + 2;
    return JSON.parse(line);
  };
  const execute = async (command: string, args?: object) => {
    qmp.send(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + "\n");
    for (;;) {
      const message = await next();
      if (!("event" in message)) return message;
    }
  };
  await next(); // the greeting
  expect(await execute("qmp_capabilities")).toEqual({ return: {} });
  return execute;
}

/** The command sharing `device` through a hub over socket `s` (`socketKeys` added), with QMP. */
function command(device: string, socketKeys: string, hubKeys = ""): CliProcess {
  return new CliProcess([
    "-chardev", device,
    "-chardev", `socket,id=s,path=${at("c.sock")},server=on,wait=off,${socketKeys}`,
    "-chardev", `hub,id=h,chardevs.0=s${hubKeys}`,
    "-frontend", "dev,chardev=h",
    "-qmp", `unix:${at("qmp.sock")},server=on,wait=off`,
  ]);
}

type Execute = (command: string, args?: object) => Promise<any>;

/** The hub's rows for the connections of listener `s` (query-hub). */
async function connectionRows(qmp: Execute): Promise<Record<string, unknown>[]> {
  const answer = await qmp("query-hub", { id: "h" });
  return (answer.return.backends as Record<string, unknown>[]).filter((row) => row.listener === "s");
}

/** Polls query-hub until `count` connections of `s` are open backends of the hub. */
async function untilConnections(qmp: Execute, count: number): Promise<Record<string, unknown>[]> {
  let rows: Record<string, unknown>[] = [];
  const deadline = Date.now() + GIVE_UP_MS;
  for (;;) {
    rows = await connectionRows(qmp);
    if (rows.length === count && rows.every((row) => row.open === true)) return rows;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${count} open connections; query-hub shows ${JSON.stringify(rows)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const FULL_LINE = "chardev-hub: socket 's' is full: max-clients=3 clients are connected\r\n";

describe("socket max-clients=N with the command", () => {
  it("three socat clients at once all see the shell's output and all type into it; a fourth is told the socket is full", async () => {
    const cli = command("spawn,id=dev,cmd=sh", "max-clients=3");
    const qmp = await qmpClient(at("qmp.sock"));
    const clients = [0, 1, 2].map(() => new Socat(["-", `UNIX-CONNECT:${at("c.sock")}`]));
    await untilConnections(qmp, 3);
    for (const [index, client] of clients.entries()) {
      // The shell computes the answer: only a command that reached it prints `answer-N`.
      client.send(`echo answer-$((${index} + 100))\n`);
      for (const reader of clients) await reader.waitFor(`answer-${index + 100}`);
    }
    const fourth = new Socat(["-", `UNIX-CONNECT:${at("c.sock")}`]);
    expect(await fourth.exited).toBe(0);
    expect(fourth.text).toBe(FULL_LINE);
    await cli.waitForStderr("socket: s: refused a connection from unix:");
    expect(cli.stderr).toContain(`socket: s: refused a connection from unix:${at("c.sock")}: max-clients=3 clients are connected\n`);
    // One leaves: the hub forgets it, its place is free again, and the next one is served (a
    // refused connection got no id: ids count the clients served). The three socats connected
    // at once, so which of s#1..s#3 the first of them got is the kernel's order, not ours.
    clients[0].end();
    expect(await clients[0].exited).toBe(0);
    const stayed = (await untilConnections(qmp, 2)).map((row) => row.id as string);
    expect(stayed).toHaveLength(2);
    for (const id of stayed) expect(["s#1", "s#2", "s#3"]).toContain(id);
    const fifth = new Socat(["-", `UNIX-CONNECT:${at("c.sock")}`]);
    expect((await untilConnections(qmp, 3)).map((row) => row.id)).toEqual([...stayed, "s#4"]);
    fifth.send("echo answer-$((7 * 6))\n");
    await fifth.waitFor("answer-42");
    await clients[1].waitFor("answer-42");
    await clients[2].waitFor("answer-42");
    expect(clients[0].text).not.toContain("answer-42");
    expect(cli.ended).toBeNull();
  });

  it("query-hub shows the listener and every connection with its peer, uid and since; hub-detach of the listener closes them all", async () => {
    const port = await freePort();
    const before = Date.now();
    const cli = new CliProcess([
      "-chardev", "spawn,id=dev,cmd=sh",
      "-chardev", `socket,id=s,host=127.0.0.1,port=${port},server=on,wait=off,max-clients=4`,
      "-chardev", "hub,id=h,chardevs.0=s,ring=64K,policy.0=drop,mode.0=ro",
      "-frontend", "dev,chardev=h",
      "-qmp", `unix:${at("qmp.sock")},server=on,wait=off`,
    ]);
    const qmp = await qmpClient(at("qmp.sock"));
    const clients = [0, 1, 2].map(() => new Socat(["-", `TCP:127.0.0.1:${port}`]));
    const rows = await untilConnections(qmp, 3);
    const answer = await qmp("query-hub", { id: "h" });
    const listenerRow = answer.return.backends.find((row: Record<string, unknown>) => row.id === "s");
    expect(listenerRow).toEqual({ id: "s", open: false, policy: "drop", mode: "ro", "bytes-in": 0, "bytes-out": 0, "bytes-dropped": 0, "input-discarded": 0, "events-discarded": 0, lag: 0, stalls: 0, clients: 3 });
    const uid = process.getuid!();
    for (const row of rows) {
      // The listener's options are each connection's.
      expect(row).toMatchObject({ open: true, policy: "drop", mode: "ro", listener: "s", uid });
      expect(row.peer).toMatch(/^tcp:127\.0\.0\.1:\d+$/);
      const since = Date.parse(row.since as string);
      expect(new Date(since).toISOString()).toBe(row.since);
      expect(since).toBeGreaterThanOrEqual(before - 1000);
      expect(since).toBeLessThanOrEqual(Date.now() + 1000);
    }
    // Every connection came from its own port.
    expect(new Set(rows.map((row) => row.peer)).size).toBe(3);
    // mode=ro was applied to each: what they type is counted and discarded.
    const typed = "echo never-$((1 + 1))\n";
    clients[0].send(typed);
    const deadline = Date.now() + GIVE_UP_MS;
    const discarded = async () => (await connectionRows(qmp)).reduce((sum, row) => sum + (row["input-discarded"] as number), 0);
    while ((await discarded()) !== typed.length) {
      if (Date.now() > deadline) throw new Error("gave up waiting for the read-only connection's input to be discarded");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await qmp("hub-detach", { hub: "h", chardev: "s" })).toEqual({ return: {} });
    for (const client of clients) expect(await client.exited).toBe(0);
    expect((await qmp("query-hub", { id: "h" })).return.backends).toEqual([]);
    expect(cli.ended).toBeNull();
  });

  it("a stalled client under policy=drop falls behind and loses bytes while the others keep streaming to the end", async () => {
    const lines = 400_000;
    const cli = command(`spawn,id=dev,cmd=sh,args.0=-c,args.1=read go; seq 1 ${lines}; echo END-OF-STREAM; read done`, "max-clients=3", ",ring=256K,policy.0=drop");
    const qmp = await qmpClient(at("qmp.sock"));
    const [healthy, other] = [0, 1].map(() => new Socat(["-", `UNIX-CONNECT:${at("c.sock")}`]));
    await untilConnections(qmp, 2);
    // The stalled client: socat hands what it reads to a shell that reads nothing until the
    // gate FIFO opens, so its pipe fills, socat stops reading, the socket's buffers fill.
    const gate = at("gate");
    spawnSync("mkfifo", [gate]);
    const received = at("stalled.out");
    const stalledSocat = new Socat(["-u", `UNIX-CONNECT:${at("c.sock")}`, `SYSTEM:read go < ${gate}; exec cat > ${received},pipes`]);
    await untilConnections(qmp, 3);
    healthy.send("go\n");
    // With policy=block the stalled client would hold the device back and nobody would get here.
    await healthy.waitFor("END-OF-STREAM");
    await other.waitFor("END-OF-STREAM");
    const stalledRow = (await connectionRows(qmp)).find((row) => row.id === "s#3")!;
    expect(stalledRow.policy).toBe("drop");
    // It is behind: output it has not taken (the hub books the skip when it is served again).
    expect(stalledRow.lag as number).toBeGreaterThan(0);
    expect(readText(received)).toBe("");
    expect(stalledSocat.exitCode).toBeUndefined();
    // Once it reads again it gets the rest: the end of the stream, with a hole where it stalled.
    await fs.promises.writeFile(gate, "go\n");
    await until(() => readText(received).includes("END-OF-STREAM"), "the stalled client to get the end of the stream");
    const text = readText(received);
    expect(text).toContain("\r\n1\r\n");
    const stalledLines = text.split("\r\n").filter((line) => /^\d+$/.test(line)).length;
    expect(stalledLines).toBeLessThan(lines);
    const afterRow = (await connectionRows(qmp)).find((row) => row.id === "s#3")!;
    expect(afterRow["bytes-dropped"] as number).toBeGreaterThan(0);
    expect(cli.ended).toBeNull();
  });

  it("a stalled client under policy=evict is evicted and closed while the others stream to the end", async () => {
    const cli = command("spawn,id=dev,cmd=sh,args.0=-c,args.1=read go; seq 1 400000; echo END-OF-STREAM; read done", "max-clients=3", ",ring=64K,policy.0=evict,stall-ms.0=300");
    const qmp = await qmpClient(at("qmp.sock"));
    const [healthy, other] = [0, 1].map(() => new Socat(["-", `UNIX-CONNECT:${at("c.sock")}`]));
    await untilConnections(qmp, 2);
    const gate = at("gate");
    spawnSync("mkfifo", [gate]);
    const received = at("stalled.out");
    const stalled = new Socat(["-u", `UNIX-CONNECT:${at("c.sock")}`, `SYSTEM:read go < ${gate}; exec cat > ${received},pipes`]);
    await untilConnections(qmp, 3);
    healthy.send("go\n");
    // The device waits for the stalled client (evict blocks) until it is evicted; then the rest flows.
    await healthy.waitFor("END-OF-STREAM");
    await other.waitFor("END-OF-STREAM");
    const answer = await qmp("query-hub", { id: "h" });
    expect(answer.return.evictions).toBe(1);
    expect((await connectionRows(qmp)).map((row) => row.id)).toEqual(["s#1", "s#2"]);
    // Its connection was closed: once its reader runs, it reads to the end of what it got, without the end line.
    await fs.promises.writeFile(gate, "go\n");
    expect(await stalled.exited).toBe(0);
    const text = readText(received);
    expect(text).toContain("\r\n1\r\n");
    expect(text).not.toContain("END-OF-STREAM");
    expect(cli.ended).toBeNull();
  });

  it("with the default max-clients=1 a second client waits, unserved, until the first leaves (QEMU's rule)", async () => {
    const cli = command("spawn,id=dev,cmd=sh", "max-clients=1");
    const qmp = await qmpClient(at("qmp.sock"));
    const first = new Socat(["-", `UNIX-CONNECT:${at("c.sock")}`]);
    const deadline = Date.now() + GIVE_UP_MS;
    while (!(await qmp("query-hub", { id: "h" })).return.backends[0].open) {
      if (Date.now() > deadline) throw new Error("gave up waiting for the first client to be served");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const second = new Socat(["-", `UNIX-CONNECT:${at("c.sock")}`]);
    first.send("echo first-$((1 + 1))\n");
    await first.waitFor("first-2");
    // The second is connected (socat still runs) but neither served nor told anything.
    expect(second.exitCode).toBeUndefined();
    expect(second.text).toBe("");
    // One row for the socket: no listener, no connections of its own.
    const rows = (await qmp("query-hub", { id: "h" })).return.backends;
    expect(rows).toEqual([expect.objectContaining({ id: "s", open: true })]);
    expect(rows[0]).not.toHaveProperty("listener");
    expect(rows[0]).not.toHaveProperty("clients");
    first.end();
    await first.exited;
    second.send("echo second-$((2 + 2))\n");
    await second.waitFor("second-4");
    expect(first.text).not.toContain("second-4");
    expect(cli.ended).toBeNull();
  });

  it("a max-clients socket as the device (held by the bridge, not by a hub) is refused with a clear error and leaves no socket file", async () => {
    const { code, stderr } = await CliProcess.run([
      "-chardev", `socket,id=s,path=${at("c.sock")},server=on,wait=off,max-clients=2`,
      "-chardev", "ringbuf,id=r",
      "-chardev", "hub,id=h,chardevs.0=r",
      "-frontend", "s,chardev=h",
    ]);
    expect(fs.existsSync(at("c.sock"))).toBe(false);
    expect(stderr).toBe("chardev-hub: socket: chardev 's' has max-clients=2: each client is a backend of its own of a hub, so it can only be a hub's backend (hub,chardevs.N=s), not a frontend's chardev\n");
    expect(code).toBe(1);
  });
});

describe("socket max-clients=N in the library", () => {
  let reg: ChardevRegistry;
  beforeEach(async () => {
    // Not QEMU's mode: its hub takes 4 backends, and a ring.
    reg = await ChardevRegistry.create({ qemuCompat: false });
  });
  afterEach(async () => {
    await reg.close();
  });

  const refusals: [string, string, string][] = [
    ["on a client socket", "socket,id=s,path=PATH,max-clients=2", "socket: 'max-clients' needs server=on: a client has one connection"],
    ["of 0", "socket,id=s,path=PATH,server=on,wait=off,max-clients=0", "socket: 'max-clients' must be at least 1, not 0"],
    ["above the limit", "socket,id=s,path=PATH,server=on,wait=off,max-clients=65536", "socket: 'max-clients' must be at most 65535, not 65536"],
    ["that is not a number", "socket,id=s,path=PATH,server=on,wait=off,max-clients=many", "Parameter 'max-clients' expects a number"],
  ];
  for (const [what, spec, message] of refusals) {
    it(`max-clients ${what} is refused naming the key`, async () => {
      const error = await reg.add(spec.replace("PATH", at("c.sock"))).then(() => null, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(ChardevError);
      expect((error as ChardevError).message).toBe(message);
    });
  }

  it("a frontend cannot hold a max-clients socket, a write-all hub refuses a policy for its connections, and a hub that holds it keeps it busy", async () => {
    await reg.add(`socket,id=s,path=${at("c.sock")},server=on,wait=off,max-clients=2`);
    expect(() => reg.attach("s", new FeHandler())).toThrow("socket: chardev 's' has max-clients=2");
    await expect(reg.add("hub,id=h0,chardevs.0=s,policy.0=drop")).rejects.toThrow("hub: policy 'drop' of chardev 's' needs a ring (ring=BYTES)");
    await reg.add("hub,id=h,chardevs.0=s,ring=4K");
    await expect(reg.add("hub,id=h2,chardevs.0=s,ring=4K")).rejects.toThrow("chardev 's' is already in use");
    await expect(reg.remove("s")).rejects.toThrow("Chardev 's' is busy");
    expect((reg.get("h") as HubChardev).stats()).toEqual([
      { id: "s", open: false, policy: "block", mode: "rw", bytesIn: 0, bytesOut: 0, bytesDropped: 0, inputDiscarded: 0, eventsDiscarded: 0, lag: 0, stalls: 0, clients: 0 },
    ]);
  });

  it("each connection is a backend: the frontend hears every client, every client hears the frontend, and the hub's OPENED comes with the first", async () => {
    await reg.add(`socket,id=s,path=${at("c.sock")},server=on,wait=off,max-clients=3`);
    await reg.add("hub,id=h,chardevs.0=s,ring=4K");
    const fe = new FeHandler();
    fe.room = 1 << 20;
    const frontend = reg.attach("h", fe);
    expect(fe.events).toEqual([]);
    const a = await SocketClient.connect(at("c.sock"));
    const b = await SocketClient.connect(at("c.sock"));
    const hub = reg.get("h") as HubChardev;
    await until(() => hub.stats().filter((row) => row.listener === "s" && row.open).length === 2, "two connections");
    expect(fe.events).toEqual([ChrEvent.OPENED]);
    a.send("from-a;");
    await until(() => fe.readCount === 7, "a's bytes");
    b.send("from-b;");
    await until(() => fe.readCount === 14, "b's bytes");
    expect(fe.take()).toBe("from-a;from-b;");
    frontend.write(new TextEncoder().encode("to-all"));
    await a.waitFor("to-all");
    await b.waitFor("to-all");
    a.close();
    await until(() => hub.stats().filter((row) => row.listener === "s").length === 1, "a forgotten");
    expect(fe.events).toEqual([ChrEvent.OPENED]); // b is still there
    b.close();
    await until(() => fe.events.length === 2, "the last CLOSED");
    expect(fe.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
    expect(hub.stats().map((row) => row.id)).toEqual(["s"]);
    frontend.detach();
  });

  it("each connection gets the listener's replay when it opens, and hub-detach of one connection closes that one only", async () => {
    await reg.add(`socket,id=s,path=${at("c.sock")},server=on,wait=off,max-clients=3`);
    await reg.add("hub,id=h,chardevs.0=s,ring=4K,replay.0=1K");
    const fe = new FeHandler();
    const frontend = reg.attach("h", fe);
    const hub = reg.get("h") as HubChardev;
    frontend.write(new TextEncoder().encode("history line\n"));
    hub.flush();
    const first = await SocketClient.connect(at("c.sock"));
    await first.waitFor("history line\n");
    const second = await SocketClient.connect(at("c.sock"));
    await second.waitFor("history line\n");
    expect(first.text).toBe("history line\n");
    expect(second.text).toBe("history line\n");
    await until(() => hub.stats().filter((row) => row.listener === "s" && row.open).length === 2, "two open connections");
    reg.hubDetach("h", "s#1");
    await until(() => first.closed, "the detached connection to be closed");
    frontend.write(new TextEncoder().encode("later\n"));
    await second.waitFor("later\n");
    expect(second.closed).toBe(false);
    expect(hub.stats().map((row) => row.id)).toEqual(["s", "s#2"]);
    frontend.detach();
    second.close();
  });

  it("a listener as the hub's primary: the frontend is open while any of its connections is", async () => {
    await reg.add("ringbuf,id=log,size=1024");
    await reg.add(`socket,id=s,path=${at("c.sock")},server=on,wait=off,max-clients=2`);
    await reg.add("hub,id=h,chardevs.0=log,chardevs.1=s,ring=4K,primary=s");
    const fe = new FeHandler();
    const frontend = reg.attach("h", fe);
    expect(fe.events).toEqual([]); // the ringbuf is open, the primary is not
    const a = await SocketClient.connect(at("c.sock"));
    await until(() => fe.events.length === 1, "OPENED");
    const b = await SocketClient.connect(at("c.sock"));
    const hub = reg.get("h") as HubChardev;
    await until(() => hub.stats().filter((row) => row.listener === "s" && row.open).length === 2, "two open connections");
    a.close();
    await until(() => hub.stats().filter((row) => row.listener === "s").length === 1, "a forgotten");
    expect(fe.events).toEqual([ChrEvent.OPENED]);
    b.close();
    await until(() => fe.events.length === 2, "CLOSED");
    expect(fe.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
    frontend.detach();
  });

  it("telnet=on negotiates on every connection, and one client's IAC BREAK reaches the frontend as a BREAK", async () => {
    const socket = (await reg.add("socket,id=s,host=127.0.0.1,port=0,server=on,wait=off,telnet=on,max-clients=2")) as SocketChardev;
    const port = (socket.address as { port: number }).port;
    await reg.add("hub,id=h,chardevs.0=s,ring=4K");
    const fe = new FeHandler();
    const frontend = reg.attach("h", fe);
    const clients = [await rawClient(port), await rawClient(port)];
    for (const client of clients) await until(() => client.received.length >= TELNET_NEGOTIATION.length, "the negotiation");
    for (const client of clients) expect([...client.received]).toEqual([...TELNET_NEGOTIATION]);
    clients[1].socket.write(Buffer.from([0x61, 0xff, 0xf3, 0x62])); // a, IAC BREAK, b
    await until(() => fe.events.includes(ChrEvent.BREAK) && fe.readCount === 2, "the BREAK and the bytes around it");
    expect(fe.take()).toBe("ab");
    expect(fe.events).toEqual([ChrEvent.OPENED, ChrEvent.BREAK]);
    frontend.detach();
  });

  it("websocket=on upgrades every connection, and the upgrade past max-clients is answered 503 with the full line", async () => {
    const socket = (await reg.add("socket,id=s,host=127.0.0.1,port=0,server=on,wait=off,websocket=on,max-clients=2")) as SocketChardev;
    const port = (socket.address as { port: number }).port;
    await reg.add("hub,id=h,chardevs.0=s,ring=4K");
    const fe = new FeHandler();
    const frontend = reg.attach("h", fe);
    const hub = reg.get("h") as HubChardev;
    const upgrade = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n";
    const clients = [await rawClient(port), await rawClient(port)];
    for (const client of clients) client.socket.write(upgrade);
    for (const client of clients) await until(() => client.received.toString("latin1").includes("\r\n\r\n"), "the upgrade's answer");
    for (const client of clients) expect(client.received.toString("latin1")).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    await until(() => hub.stats().filter((row) => row.listener === "s" && row.open).length === 2, "two open connections");
    const third = await rawClient(port);
    third.socket.write(upgrade);
    await until(() => third.closed, "the third to be closed");
    const line = "chardev-hub: socket 's' is full: max-clients=2 clients are connected\r\n";
    expect(third.received.toString("latin1")).toBe(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: ${line.length}\r\nConnection: close\r\n\r\n${line}`);
    // A masked binary frame "hi" from the first client reaches the frontend.
    clients[0].socket.write(Buffer.from([0x82, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2]));
    await until(() => fe.readCount === 2, "the frame's payload");
    expect(fe.take()).toBe("hi");
    frontend.detach();
  });
});

/** A raw TCP client of a loopback port: what it received, whether it was closed. */
async function rawClient(port: number): Promise<{ socket: net.Socket; received: Buffer; closed: boolean }> {
  const socket = net.connect({ host: "127.0.0.1", port });
  const client = { socket, received: Buffer.alloc(0), closed: false };
  socket.on("data", (chunk: Buffer) => (client.received = Buffer.concat([client.received, chunk])));
  socket.on("close", () => (client.closed = true));
  socket.on("error", () => {});
  openSockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  return client;
}
