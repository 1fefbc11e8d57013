// The `nats` chardev against real `nats-server` processes (Debian nats-server, JetStream on,
// loopback ports, a store of their own): a console hub publishes, viewer hubs follow and fan
// out to socket clients, offsets are checked, stream limits show as exact gaps, and typing is
// refused where it must be.

import * as net from "node:net";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, type Frontend } from "../host-ts/mod.ts";
import { DeviceBridge } from "../host-ts/cli/bridge.ts";
import { Kvm } from "@nats-io/kv";
import { jetstream } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";
import { nodeNats } from "../host-ts/runtime/node_nats.ts";
import { CONSOLE_BUCKET, missedNote, NATS_UNACKED_LIMIT_BYTES, NATS_UNACKED_LIMIT_MESSAGES, type ConsoleCard, NatsConsoleChardev, NatsViewerChardev } from "../host-ts/chardev/nats.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { freePort } from "./_ports.ts";
import { makeTestPki } from "./_tls_certs.ts";
import { CliProcess, SocketClient as CliSocketClient } from "./cli/_cli.ts";
import { natsTmp, startServer, stopAll, stopServer, until, type NatsServer } from "./_nats.ts";

const tmp = natsTmp();

let shared: NatsServer;
let registries: ChardevRegistry[];
let warnings: string[];

beforeAll(async () => {
  shared = await startServer();
}, 30_000);
afterAll(async () => {
  await stopAll();
});
beforeEach(() => {
  registries = [];
  warnings = [];
});
afterEach(async () => {
  for (const reg of registries) await reg.close();
});

async function registry(): Promise<ChardevRegistry> {
  const reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: (line) => warnings.push(line) });
  registries.push(reg);
  return reg;
}

let consoleCount = 0;
/** A console name no other test uses. */
const freshName = () => `t${process.pid}-${++consoleCount}`;

/** A hub whose one backend publishes console `name`; the frontend writes the device's output. */
async function consoleHub(server: NatsServer, name: string, extra = ""): Promise<{ reg: ChardevRegistry; fe: Frontend; fed: FeHandler; chardev: NatsConsoleChardev }> {
  const reg = await registry();
  const chardev = (await reg.add(`nats,id=n0,server=${server.url},console=${name}${extra}`)) as NatsConsoleChardev;
  await reg.add("hub,id=h0,chardevs.0=n0");
  const fed = new FeHandler();
  fed.room = 1 << 20;
  const fe = reg.attach("h0", fed);
  return { reg, fe, fed, chardev };
}

/** Writes all of `data` into the hub, waiting on its watch whenever it answers EAGAIN. */
async function writeAll(fe: Frontend, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const taken = fe.write(data.subarray(at, at + 8192));
    if (taken > 0) {
      at += taken;
      continue;
    }
    if (fe.lastError !== "EAGAIN") throw new Error(`write failed: ${fe.lastError}`);
    await new Promise<void>((resolve) => {
      if (fe.addWatch(resolve) === 0) setTimeout(resolve, 1);
    });
  }
}

/** `count` numbered lines, each different, as a console prints them. */
function consoleLines(count: number, from = 0): Uint8Array {
  let text = "";
  for (let i = from; i < from + count; i++) text += `line ${String(i).padStart(6, "0")} ${"abcdefghij".repeat(1 + (i % 5))}\r\n`;
  return bytes(text);
}

/**
 * A viewer hub: a hub serving a UNIX socket, a client on it, then the viewer chardev bridged in
 * as the hub's device (a client that connects later sees only what comes after it, as with any hub).
 */
async function viewerHub(server: NatsServer, name: string, extra = ""): Promise<{ reg: ChardevRegistry; viewer: NatsViewerChardev; client: SocketClient; bridge: DeviceBridge }> {
  const reg = await registry();
  const socketPath = path.join(tmp, `${name}-${registries.length}.sock`);
  await reg.add(`socket,id=s0,path=${socketPath},server=on,wait=off`);
  await reg.add("hub,id=h1,chardevs.0=s0");
  const client = await socketClient(socketPath);
  await until(() => reg.get("s0").beOpen);
  const viewer = (await reg.add(`nats,id=v0,role=viewer,server=${server.url},console=${name}${extra}`)) as NatsViewerChardev;
  const bridge = DeviceBridge.connect(reg, "v0", "h1");
  return { reg, viewer, client, bridge };
}

interface SocketClient {
  received(): Uint8Array;
  length(): number;
  readonly socket: net.Socket;
}

/** A socket client that keeps everything it reads. */
async function socketClient(socketPath: string): Promise<SocketClient> {
  const socket = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const chunks: Buffer[] = [];
  let length = 0;
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    length += chunk.length;
  });
  return { received: () => new Uint8Array(Buffer.concat(chunks)), length: () => length, socket };
}

const text = (data: Uint8Array) => new TextDecoder().decode(data);

describe("nats chardev", () => {
  it("a console hub's 20,000 lines reach a socket client behind a viewer hub whole and in order", async () => {
    const name = freshName();
    const source = await consoleHub(shared, name);
    const remote = await viewerHub(shared, name);
    const client = remote.client;
    const output = consoleLines(20_000);
    await writeAll(source.fe, output);
    await until(() => client.length() >= output.length);
    expect(client.length()).toBe(output.length);
    expect(Buffer.compare(Buffer.from(client.received()), Buffer.from(output))).toBe(0);
    expect(remote.viewer.gaps).toEqual([]);
    expect(remote.viewer.nextOffset).toBe(output.length);
    await until(() => source.chardev.unackedBytes === 0);
    expect(source.chardev.ackedBytes).toBe(output.length);
    client.socket.destroy();
    remote.bridge.stop();
  }, 60_000);

  it("the chardev-hub command with a viewer device serves the console to its socket clients, and their typing reaches the console", async () => {
    const name = freshName();
    const source = await consoleHub(shared, name);
    const socketPath = path.join(tmp, `${name}-cli.sock`);
    const qmpPath = path.join(tmp, `${name}-qmp.sock`);
    const deadPort = await freePort();
    // Two servers in QEMU's option syntax (a doubled comma); the second is down, the client takes the first.
    const cli = new CliProcess([
      "-chardev", `nats,id=vm,role=viewer,server=${shared.url},,nats://127.0.0.1:${deadPort},console=${name},from=start`,
      "-chardev", `socket,id=s,path=${socketPath},server=on,wait=off`,
      "-chardev", "hub,id=h,chardevs.0=s",
      "-frontend", "vm,chardev=h",
      "-qmp", `unix:${qmpPath},server=on,wait=off`,
    ]);
    try {
      // The client comes once the command is set up (its QMP greets): a client that connects
      // while the command still sets up its hub may miss output that arrives in that moment, as
      // with any device; this test is about what comes after.
      const qmp = await CliSocketClient.connect(qmpPath);
      await qmp.waitFor("QMP");
      qmp.close();
      const client = await CliSocketClient.connect(socketPath);
      await writeAll(source.fe, bytes("after the client came\r\n"));
      await client.waitFor("after the client came\r\n").catch((error: Error) => {
        throw new Error(`${error.message}; chardev-hub said: ${cli.stderr.slice(-2000)}`);
      });
      client.send("typed through two hubs");
      await until(() => source.fed.readCount >= "typed through two hubs".length);
      expect(source.fed.take()).toBe("typed through two hubs");
      client.close();
    } finally {
      await cli.stop("SIGTERM");
    }
    expect(cli.ended?.code).toBe(0);
  }, 60_000);

  it("a late viewer hub with from=start gives its socket client the whole 20,000-line console, in order", async () => {
    const name = freshName();
    const source = await consoleHub(shared, name);
    const output = consoleLines(20_000);
    await writeAll(source.fe, output);
    await until(() => source.chardev.unackedBytes === 0);
    const remote = await viewerHub(shared, name, ",from=start");
    const client = remote.client;
    await until(() => client.length() >= output.length);
    expect(text(client.received())).toBe(text(output));
    expect(remote.viewer.gaps).toEqual([]);
    client.socket.destroy();
    remote.bridge.stop();
  }, 60_000);

  it("a viewer with from=OFFSET starts at that byte, and one with from=new sees only what comes after it", async () => {
    const name = freshName();
    const source = await consoleHub(shared, name);
    const first = consoleLines(100);
    await writeAll(source.fe, first);
    await until(() => source.chardev.unackedBytes === 0);
    const fromOffset = await registry();
    const offsetViewer = (await fromOffset.add(`nats,id=v0,role=viewer,server=${shared.url},console=${name},from=1000`)) as NatsViewerChardev;
    const offsetFe = new FeHandler();
    offsetFe.room = 1 << 20;
    fromOffset.attach("v0", offsetFe);
    const fromNew = await registry();
    await fromNew.add(`nats,id=v0,role=viewer,server=${shared.url},console=${name},from=new`);
    const newFe = new FeHandler();
    newFe.room = 1 << 20;
    fromNew.attach("v0", newFe);
    await until(() => offsetFe.readCount >= first.length - 1000);
    const second = bytes("after the viewers came\r\n");
    await writeAll(source.fe, second);
    await until(() => newFe.readCount >= second.length && offsetFe.readCount >= first.length - 1000 + second.length);
    expect(offsetFe.take()).toBe(text(first.subarray(1000)) + text(second));
    expect(newFe.take()).toBe(text(second));
    expect(offsetViewer.gaps).toEqual([]);
  }, 30_000);

  it("a restarted console goes on at the offset where its stream ends", async () => {
    const name = freshName();
    const before = await consoleHub(shared, name);
    await writeAll(before.fe, bytes("first run\r\n"));
    await until(() => before.chardev.unackedBytes === 0);
    await before.reg.close();
    registries.splice(registries.indexOf(before.reg), 1);
    const after = await consoleHub(shared, name);
    expect(after.chardev.nextOffset).toBe("first run\r\n".length);
    await writeAll(after.fe, bytes("second run\r\n"));
    const reg = await registry();
    const viewer = (await reg.add(`nats,id=v0,role=viewer,server=${shared.url},console=${name}`)) as NatsViewerChardev;
    const fe = new FeHandler();
    reg.attach("v0", fe);
    await until(() => fe.readCount >= "first run\r\nsecond run\r\n".length);
    expect(fe.take()).toBe("first run\r\nsecond run\r\n");
    expect(viewer.gaps).toEqual([]);
  }, 30_000);

  it("a server restart mid-stream: writes answer EAGAIN while it is gone, then both sides go on from the last offset", async () => {
    const own = await startServer();
    const name = freshName();
    const source = await consoleHub(own, name);
    const reg = await registry();
    const viewer = (await reg.add(`nats,id=v0,role=viewer,server=${own.url},console=${name}`)) as NatsViewerChardev;
    const fe = new FeHandler();
    fe.room = 1 << 23;
    reg.attach("v0", fe);
    const first = consoleLines(2000);
    await writeAll(source.fe, first);
    await until(() => fe.readCount >= first.length);
    await stopServer(own);
    // More than the unacknowledged window: the hub's writer must be held back, not buffered without end.
    const second = consoleLines(30_000, 2000);
    expect(second.length).toBeGreaterThan(NATS_UNACKED_LIMIT_BYTES);
    let sawEagain = false;
    const writing = (async () => {
      let at = 0;
      while (at < second.length) {
        const taken = source.fe.write(second.subarray(at, at + 8192));
        if (taken > 0) {
          at += taken;
          continue;
        }
        expect(source.fe.lastError).toBe("EAGAIN");
        sawEagain = true;
        await new Promise<void>((resolve) => {
          if (source.fe.addWatch(resolve) === 0) setTimeout(resolve, 1);
        });
      }
    })();
    await until(() => sawEagain);
    expect(source.chardev.unackedBytes).toBe(NATS_UNACKED_LIMIT_BYTES);
    await startServer({ again: own });
    await writing;
    await until(() => fe.readCount >= first.length + second.length);
    expect(fe.readCount).toBe(first.length + second.length);
    expect(fe.take()).toBe(text(first) + text(second));
    expect(viewer.gaps).toEqual([]);
    await until(() => source.chardev.unackedBytes === 0);
  }, 60_000);

  it("a device that writes a byte a turn while NATS is away is held back at the message window, then every byte arrives in order", async () => {
    const own = await startServer();
    const name = freshName();
    const source = await consoleHub(own, name);
    await stopServer(own);
    let written = 0;
    for (;;) {
      // One byte a turn: each turn's write is a message of its own.
      if (source.fe.write(bytes(String.fromCharCode(97 + (written % 26)))) !== 1) break;
      written++;
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    expect(source.fe.lastError).toBe("EAGAIN");
    expect(source.chardev.unackedMessages).toBe(NATS_UNACKED_LIMIT_MESSAGES);
    expect(written).toBe(NATS_UNACKED_LIMIT_MESSAGES);
    await startServer({ again: own });
    await until(() => source.chardev.unackedMessages === 0);
    const reg = await registry();
    const viewer = (await reg.add(`nats,id=v0,role=viewer,server=${own.url},console=${name}`)) as NatsViewerChardev;
    const fe = new FeHandler();
    fe.room = 1 << 20;
    reg.attach("v0", fe);
    await until(() => viewer.nextOffset === written);
    let expected = "";
    for (let i = 0; i < written; i++) expected += String.fromCharCode(97 + (i % 26));
    expect(fe.take()).toBe(expected);
    expect(viewer.gaps).toEqual([]);
  }, 60_000);

  it("a console under a hub's drop policy: what the hub skipped while NATS was away is an exact gap for every viewer", async () => {
    const own = await startServer();
    const name = freshName();
    const reg = await registry();
    const chardev = (await reg.add(`nats,id=n0,server=${own.url},console=${name}`)) as NatsConsoleChardev;
    await reg.add("hub,id=h0,ring=1M,chardevs.0=n0,policy.0=drop,lag-limit.0=256K");
    const fe = reg.attach("h0", new FeHandler());
    const first = consoleLines(1000);
    await writeAll(fe, first);
    await until(() => chardev.unackedBytes === 0);
    await stopServer(own);
    // Far more than the unacknowledged window and the lag limit: the hub skips ahead for NATS.
    const second = consoleLines(40_000, 1000);
    await writeAll(fe, second);
    await until(() => chardev.skippedBytes > 0);
    await startServer({ again: own });
    const third = consoleLines(100, 41_000);
    await writeAll(fe, third);
    const output = new Uint8Array([...first, ...second, ...third]);
    await until(() => chardev.unackedBytes === 0 && chardev.nextOffset === output.length);
    const watcher = await registry();
    const viewer = (await watcher.add(`nats,id=v0,role=viewer,server=${own.url},console=${name}`)) as NatsViewerChardev;
    const screen = new FeHandler();
    screen.room = 1 << 24;
    watcher.attach("v0", screen);
    await until(() => viewer.nextOffset === output.length);
    expect(viewer.missedBytes).toBe(chardev.skippedBytes);
    // What the viewer shows is the output with each skipped range replaced by its note.
    let expected = "";
    let at = 0;
    for (const gap of viewer.gaps) {
      expected += text(output.subarray(at, gap.offset)) + text(missedNote(gap.bytes));
      at = gap.offset + gap.bytes;
    }
    expected += text(output.subarray(at));
    expect(screen.take()).toBe(expected);
  }, 60_000);

  it("a viewer puts output stored out of order back in order, and reports a hole that never fills as an exact gap", async () => {
    const name = freshName();
    // The console makes the stream; the test then stores messages by hand, as a failover could leave them.
    await consoleHub(shared, name);
    const client = await nodeNats.connect({ servers: shared.url });
    try {
      const js = jetstream(client);
      const store = async (offset: number, text: string) => {
        const headerSet = headers();
        headerSet.set("Chardev-Hub-Offset", String(offset));
        await js.publish(`console.${name}.out`, bytes(text), { headers: headerSet });
      };
      await store(0, "aaaa");
      await store(8, "cccc");
      await store(4, "bbbb");
      await store(4, "bbbb"); // a repeat: skipped
      await store(16, "eeee"); // 12..16 never comes
    } finally {
      await client.close();
    }
    const reg = await registry();
    const viewer = (await reg.add(`nats,id=v0,role=viewer,server=${shared.url},console=${name}`)) as NatsViewerChardev;
    const fe = new FeHandler();
    fe.room = 1 << 20;
    reg.attach("v0", fe);
    await until(() => viewer.nextOffset === 20);
    expect(fe.take()).toBe("aaaabbbbcccc" + text(missedNote(4)) + "eeee");
    expect(viewer.gaps).toEqual([{ offset: 12, bytes: 4 }]);
  }, 30_000);

  it("a second stream over the same subjects is refused with the server's reason", async () => {
    const name = freshName();
    await consoleHub(shared, name);
    const failure = await errorOf(() => consoleHub(shared, name, ",stream=OTHER"));
    expect(failure.code).toBe("OPEN_FAILED");
    expect(failure.message).toMatch(/^nats: could not create stream 'OTHER': .*overlap/i);
  }, 30_000);

  it("a viewer of a stream whose max-bytes discarded old output reports the exact gap, then the rest whole", async () => {
    // A server of its own: its only stream is the small one.
    const small = await startServer();
    const name = freshName();
    const source = await consoleHub(small, name, ",stream=SMALL,max-bytes=64K");
    const output = consoleLines(4000);
    await writeAll(source.fe, output);
    await until(() => source.chardev.unackedBytes === 0);
    const reg = await registry();
    const viewer = (await reg.add(`nats,id=v0,role=viewer,server=${small.url},console=${name},stream=SMALL,from=start`)) as NatsViewerChardev;
    const fe = new FeHandler();
    fe.room = 1 << 22;
    const gaps: number[] = [];
    viewer.onGap = (gap) => gaps.push(gap.bytes);
    reg.attach("v0", fe);
    await until(() => viewer.nextOffset === output.length);
    expect(gaps.length).toBe(1);
    const missed = gaps[0];
    // The stream kept at most 64 KiB: everything before was discarded, and said so exactly.
    expect(output.length - missed).toBeLessThanOrEqual(64 * 1024);
    expect(missed).toBeGreaterThan(0);
    expect(viewer.gaps).toEqual([{ offset: 0, bytes: missed }]);
    expect(fe.take()).toBe(text(missedNote(missed)) + text(output.subarray(missed)));
    expect(warnings).toContain(`nats: v0: ${missed} bytes of console.${name}.out missed at offset 0 (discarded by the stream's limits, or lost)`);
  }, 60_000);

  it("a console with input=off drops remote typing that one with input=on gets", async () => {
    const name = freshName();
    const deaf = await consoleHub(shared, name, ",input=off");
    const hearing = await consoleHub(shared, name);
    const typist = await registry();
    await typist.add(`nats,id=v0,role=viewer,server=${shared.url},console=${name},from=new`);
    typist.attach("v0", new FeHandler()).write(bytes("typed remotely"));
    await until(() => hearing.fed.readCount >= "typed remotely".length);
    expect(hearing.fed.take()).toBe("typed remotely");
    // The server sent the typing to every subscriber at once: after a round trip on the deaf
    // console's own connection, anything sent to it would have arrived.
    await deaf.chardev.connection.flush();
    expect(deaf.fed.readCount).toBe(0);
  }, 30_000);

  it("a console's card in the KV bucket says where it publishes, beats, and says closed when it goes", async () => {
    const name = freshName();
    const source = await consoleHub(shared, name);
    await writeAll(source.fe, bytes("hello\r\n"));
    const client = await nodeNats.connect({ servers: shared.url });
    try {
      const bucket = await new Kvm(client).open(CONSOLE_BUCKET);
      const first = await bucket.get(name);
      const card = first!.json<ConsoleCard>();
      expect(card).toMatchObject({ console: name, chardev: "n0", stream: "CONSOLES", output: `console.${name}.out`, input: `console.${name}.in`, state: "open" });
      expect(card.heartbeatSeconds).toBeGreaterThan(0);
      // The next heartbeat is a new revision with the offset the console has reached.
      let next = first!;
      while (next.revision === first!.revision) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        next = (await bucket.get(name))!;
      }
      expect(next.json<ConsoleCard>()).toMatchObject({ state: "open", offset: "hello\r\n".length, started: card.started });
      await source.reg.close();
      registries.splice(registries.indexOf(source.reg), 1);
      expect((await bucket.get(name))!.json<ConsoleCard>().state).toBe("closed");
    } finally {
      await client.close();
    }
  }, 30_000);

  it("QMP's chardev-add takes the same members as JSON, and a viewer of a stream that does not exist says so", async () => {
    const name = freshName();
    const source = await consoleHub(shared, name);
    await writeAll(source.fe, bytes("over qmp\r\n"));
    const reg = await registry();
    const viewer = (await reg.add({ id: "v0", backend: { type: "nats", data: { server: shared.url, console: name, role: "viewer", from: "start" } } })) as NatsViewerChardev;
    expect(viewer).toBeInstanceOf(NatsViewerChardev);
    const fe = new FeHandler();
    reg.attach("v0", fe);
    await until(() => fe.readCount >= "over qmp\r\n".length);
    expect(fe.take()).toBe("over qmp\r\n");
    expect(await errorOf(() => reg.add({ id: "v1", backend: { type: "nats", data: { server: shared.url, console: name, role: "viewer", stream: "NOSUCH" } } }))).toMatchObject({
      code: "OPEN_FAILED",
      message: "nats: stream 'NOSUCH' does not exist (a console creates it)",
    });
    expect(await errorOf(() => reg.add({ id: "v1", backend: { type: "nats", data: { console: name, replicas: "3" } } }))).toMatchObject({ message: "Invalid parameter type for 'backend.data.replicas', expected: integer" });
  }, 30_000);

  it("rejects bad options with clear errors", async () => {
    const reg = await registry();
    expect(await errorOf(() => reg.add("nats,id=n0"))).toMatchObject({ code: "MISSING_PARAMETER", message: "nats: 'console' is required (console=NAME)" });
    expect(await errorOf(() => reg.add("nats,id=n0,console=a.b"))).toMatchObject({ code: "INVALID_VALUE", message: "nats: 'console' must be letters, digits, '-' or '_' (a NATS subject token), not 'a.b'" });
    expect(await errorOf(() => reg.add("nats,id=n0,console=c,from=yesterday"))).toMatchObject({ code: "INVALID_VALUE", message: "nats: 'from' must be 'start', 'new', 'screen' or a byte offset, not 'yesterday'" });
    expect(await errorOf(() => reg.add("nats,id=n0,console=c,role=boss"))).toMatchObject({ code: "INVALID_VALUE", message: "nats: 'role' must be 'console' or 'viewer', not 'boss'" });
    expect(await errorOf(() => reg.add("nats,id=n0,console=c,server=http://x"))).toMatchObject({ code: "INVALID_VALUE", message: "nats: server 'http://x' is not nats://HOST:PORT" });
    expect(await errorOf(() => reg.add("nats,id=n0,console=c,user=u"))).toMatchObject({ code: "INVALID_PARAMETER", message: "nats: 'user' and 'password' go together" });
    const closedPort = await freePort();
    const refused = await errorOf(() => reg.add(`nats,id=n0,console=c,server=nats://127.0.0.1:${closedPort},,nats://127.0.0.1:${closedPort}`));
    expect(refused.code).toBe("OPEN_FAILED");
    expect(refused.message).toContain(`nats: could not connect to nats://127.0.0.1:${closedPort},nats://127.0.0.1:${closedPort}: `);
    expect(reg.query().length).toBe(0);
  }, 30_000);
});

describe("nats chardev with authorization", () => {
  let secured: NatsServer;
  beforeAll(async () => {
    // The three roles of docs/nats.md, each with only its subjects: the console's owner
    // publishes output and its KV card and takes typing; an operator follows and types; a
    // watcher follows and publishes nothing else: no typing.
    secured = await startServer({ config: `
authorization {
  users = [
    { user: owner, password: ownerpw, permissions: {
        publish: { allow: ["console.*.out", "$JS.API.INFO", "$JS.API.STREAM.INFO.CONSOLES", "$JS.API.STREAM.CREATE.CONSOLES", "$JS.API.STREAM.MSG.GET.CONSOLES", "$JS.API.STREAM.INFO.KV_chardev-hub-consoles", "$JS.API.STREAM.CREATE.KV_chardev-hub-consoles", "$KV.chardev-hub-consoles.*"] }
        subscribe: { allow: ["console.*.in", "_INBOX.>"] }
    } }
    { user: operator, password: operatorpw, permissions: {
        publish: { allow: ["console.*.in", "$JS.API.INFO", "$JS.API.STREAM.INFO.CONSOLES", "$JS.API.CONSUMER.CREATE.CONSOLES.>", "$JS.API.CONSUMER.DELETE.CONSOLES.>", "$JS.API.CONSUMER.INFO.CONSOLES.>", "$JS.API.CONSUMER.MSG.NEXT.CONSOLES.>"] }
        subscribe: { allow: ["_INBOX.>"] }
    } }
    { user: watcher, password: watcherpw, permissions: {
        publish: { allow: ["$JS.API.INFO", "$JS.API.STREAM.INFO.CONSOLES", "$JS.API.CONSUMER.CREATE.CONSOLES.>", "$JS.API.CONSUMER.DELETE.CONSOLES.>", "$JS.API.CONSUMER.INFO.CONSOLES.>", "$JS.API.CONSUMER.MSG.NEXT.CONSOLES.>"] }
        subscribe: { allow: ["_INBOX.>"] }
    } }
  ]
}
` });
  }, 30_000);

  it("a user that may only subscribe cannot type, while an operator can", async () => {
    const name = freshName();
    const source = await consoleHub(secured, name, ",user=owner,password=ownerpw");
    const watcher = await registry();
    await watcher.add(`nats,id=v0,role=viewer,server=${secured.url},console=${name},user=watcher,password=watcherpw`);
    const watcherFe = new FeHandler();
    watcherFe.room = 1 << 20;
    watcher.attach("v0", watcherFe).write(bytes("let me in"));
    await until(() => warnings.some((line) => line.startsWith("nats: v0: typing is not permitted")));
    await writeAll(source.fe, bytes("visible to the watcher\r\n"));
    await until(() => watcherFe.readCount >= "visible to the watcher\r\n".length);
    expect(watcherFe.take()).toBe("visible to the watcher\r\n");
    const operator = await registry();
    await operator.add(`nats,id=v0,role=viewer,server=${secured.url},console=${name},user=operator,password=operatorpw,from=new`);
    operator.attach("v0", new FeHandler()).write(bytes("operator types"));
    await until(() => source.fed.readCount >= "operator types".length);
    // The watcher's typing never arrived before (or with) the operator's.
    expect(source.fed.take()).toBe("operator types");
    // The owner's narrow permissions were enough for everything, its KV card included.
    expect(warnings.filter((line) => line.startsWith("nats: n0:"))).toEqual([]);
  }, 30_000);

  it("wrong credentials fail setup with the server's reason", async () => {
    const reg = await registry();
    const failure = await errorOf(() => reg.add(`nats,id=n0,console=c,server=${secured.url},user=owner,password=wrong`));
    expect(failure.code).toBe("OPEN_FAILED");
    expect(failure.message).toMatch(/^nats: could not connect to nats:\/\/127\.0\.0\.1:\d+: .*[Aa]uthorization/);
  }, 30_000);
});

describe("nats chardev over TLS", () => {
  it("tls-creds with a client certificate reaches a server that requires one; without it, setup fails", async () => {
    const pki = makeTestPki();
    const server = await startServer({ config: `
tls {
  cert_file: "${path.join(pki.serverDir, "server-cert.pem")}"
  key_file: "${path.join(pki.serverDir, "server-key.pem")}"
  ca_file: "${path.join(pki.serverDir, "ca-cert.pem")}"
  verify: true
}
` });
    const name = freshName();
    const reg = await registry();
    await reg.addObject(`tls-creds-x509,id=tls0,endpoint=client,dir=${pki.clientDir}`);
    await reg.add(`nats,id=n0,server=tls://127.0.0.1:${server.port},console=${name},tls-creds=tls0`);
    await reg.add("hub,id=h0,chardevs.0=n0");
    const fe = reg.attach("h0", new FeHandler());
    await writeAll(fe, bytes("over TLS\r\n"));
    await reg.add(`nats,id=v0,role=viewer,server=tls://127.0.0.1:${server.port},console=${name},tls-creds=tls0`);
    const screen = new FeHandler();
    reg.attach("v0", screen);
    await until(() => screen.readCount >= "over TLS\r\n".length);
    expect(screen.take()).toBe("over TLS\r\n");
    // The server's BadCertificate alert comes after the client's side of the handshake is done
    // (TLS 1.3); it must end that connection, never escape as an uncaught error (it did under Deno).
    await reg.addObject(`tls-creds-x509,id=anon,endpoint=client,dir=${pki.anonymousClientDir}`);
    const refused = await errorOf(() => reg.add(`nats,id=v1,role=viewer,server=tls://127.0.0.1:${server.port},console=${name},tls-creds=anon`));
    expect(refused.code).toBe("OPEN_FAILED");
    expect(refused.message).toMatch(/^nats: could not connect to tls:\/\/127\.0\.0\.1:\d+: /);
    // A client certificate of the wrong kind of endpoint is refused before any connection, with QEMU's text.
    await reg.addObject(`tls-creds-x509,id=srv,endpoint=server,dir=${pki.serverDir}`);
    expect(await errorOf(() => reg.add(`nats,id=v2,role=viewer,server=tls://127.0.0.1:${server.port},console=${name},tls-creds=srv`))).toMatchObject({
      message: "Expected TLS credentials for a client endpoint",
    });
  }, 30_000);
});
