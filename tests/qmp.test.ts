// The QMP monitor as the frontend of a chardev, over real transports: a ringbuf driven with
// backendWrite, a FIFO pair, UNIX and TCP sockets (startQmp) with node:net clients, and socat.
// The protocol cases run over every transport; answers are compared as the wire carries them.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry, ChrEvent, RingbufChardev } from "../host-ts/mod.ts";
import { encodeQmpJson, QmpMonitor, qmpChardevSpec, startQmp } from "../host-ts/qmp.ts";
import type { SocketChardev } from "../host-ts/chardev/socket.ts";
import { errorOf, FeHandler } from "./_fe_handler.ts";
import { connectClient, connectOptionsOf, FifoClient, QmpTestClient, SocketClient, TRANSPORTS, until } from "./qmp/_clients.ts";

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 10}, "package": "chardev-hub"}, "capabilities": []}}';
const VERSION = { qemu: { micro: 0, minor: 0, major: 10 }, package: "chardev-hub" };
const EXPECTING_NEGOTIATION = "Expecting capabilities negotiation with 'qmp_capabilities'";
const COMMANDS = [
  "qmp_capabilities",
  "query-commands",
  "query-version",
  "chardev-add",
  "chardev-remove",
  "chardev-change",
  "query-chardev",
  "query-chardev-backends",
  "chardev-reopen-logs",
  "ringbuf-write",
  "ringbuf-read",
  "chardev-send-break",
  "object-add",
  "object-del",
  "hub-attach",
  "hub-detach",
  "query-hub",
  "hub-history",
  "hub-events",
  "query-status",
  "quit",
];

const genericError = (desc: string, id?: unknown) => ({ error: { class: "GenericError", desc }, ...(id !== undefined ? { id } : {}) });
const notFound = (desc: string, id?: unknown) => ({ error: { class: "CommandNotFound", desc }, ...(id !== undefined ? { id } : {}) });

let reg: ChardevRegistry;
let dir: string;
/** Clients and processes a test opened, closed after it whatever happened. */
let cleanups: (() => unknown)[];

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-qmp-test-"));
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups) await cleanup();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function open(transport: (typeof TRANSPORTS)[number]): Promise<QmpTestClient> {
  const client = await connectClient(reg, transport, dir);
  cleanups.push(() => client.close());
  return client;
}

for (const transport of TRANSPORTS) {
  describe(`QMP over ${transport}`, () => {
    it("a client is greeted with QEMU 10.0.0's version and no capabilities", async () => {
      const client = await open(transport);
      expect(await client.nextLine()).toBe(GREETING);
    });

    it("commands before qmp_capabilities are refused, and negotiating twice is refused too", async () => {
      const client = await open(transport);
      await client.nextLine();
      expect(await client.execute("query-version")).toEqual(notFound(EXPECTING_NEGOTIATION));
      expect(await client.execute("no-such-command", undefined, 1)).toEqual(notFound(EXPECTING_NEGOTIATION, 1));
      expect(client.monitor.negotiated).toBe(false);
      // Argument errors are GenericError and keep their own text even before negotiation.
      expect(await client.execute("qmp_capabilities", { enable: "oob" })).toEqual(genericError("Invalid parameter type for 'enable', expected: array"));
      expect(await client.execute("qmp_capabilities", { enable: ["turbo"] })).toEqual(genericError("Parameter 'enable[0]' does not accept value 'turbo'"));
      expect(await client.execute("qmp_capabilities", { enable: ["oob"] })).toEqual(genericError("Capability oob not available"));

      client.send('{"execute": "qmp_capabilities", "id": "neg"}');
      expect(await client.nextLine()).toBe('{"return": {}, "id": "neg"}');
      expect(client.monitor.negotiated).toBe(true);
      expect(await client.execute("qmp_capabilities")).toEqual(notFound("Capabilities negotiation is already complete, command ignored"));
      expect(await client.execute("query-version")).toEqual({ return: VERSION });
    });

    it("an unknown command is not found, and ids are echoed exactly as sent", async () => {
      const client = await open(transport);
      await client.negotiate();
      client.send('{"execute": "query-version", "id": "abc"}');
      expect(await client.nextLine()).toBe('{"return": {"qemu": {"micro": 0, "minor": 0, "major": 10}, "package": "chardev-hub"}, "id": "abc"}');
      client.send('{"execute": "foo", "id": {"n": [1, "two", null, true, -2.5]}}');
      expect(await client.nextLine()).toBe('{"error": {"class": "CommandNotFound", "desc": "The command foo has not been found"}, "id": {"n": [1, "two", null, true, -2.5]}}');
      client.send('{"id": 9, "execute": 5}');
      expect(await client.next()).toEqual(genericError("QMP input member 'execute' must be a string", 9));
      // A request that is not even JSON has no id to echo.
      client.send('{"execute": "query-version", "id": 3, }');
      expect(await client.next()).toEqual(genericError("JSON parse error, expecting value"));
    });

    it("bad JSON is answered with QEMU's parse error and the next command still runs", async () => {
      const client = await open(transport);
      await client.negotiate();
      const cases: [string, ...string[]][] = [
        ['{"execute": }', "JSON parse error, expecting value"],
        ['{"execute" "query-version"}', "JSON parse error, missing : in object pair"],
        ['{"execute": "query-version" "id": 1}', "JSON parse error, expected separator in dict"],
        ['{"execute": "query-version", "execute": "x"}', "JSON parse error, duplicate key"],
        ["{1: 2}", "JSON parse error, key is not a string in object"],
        ["[1 2]", "JSON parse error, expected separator in list"],
        [String.raw`{"execute": "x\q"}`, "JSON parse error, invalid escape sequence in string"],
        [String.raw`{"execute": "\uD800"}`, String.raw`JSON parse error, \uD800 is not a valid Unicode character`],
        ['{"execute": nul}', "JSON parse error, invalid keyword 'nul'"],
        // A lexical error drops the message so far; the `}` that follows then closes nothing.
        ['{"execute": 01}', "JSON parse error, stray '01'", "JSON parse error, expecting value"],
        ["@", "JSON parse error, stray '@'"],
        ["}", "JSON parse error, expecting value"],
        ["[1, 2]", "QMP input must be a JSON object"],
        ['"text"', "QMP input must be a JSON object"],
        ['{"arguments": {}}', "QMP input lacks member 'execute'"],
        ['{"execute": "query-version", "arguments": []}', "QMP input member 'arguments' must be an object"],
        ['{"execute": "query-version", "exec-oob": "query-version"}', "QMP input member 'exec-oob' is unexpected"],
        ['{"execute": "query-version", "colour": 1}', "QMP input member 'colour' is unexpected"],
      ];
      for (const [input, ...descs] of cases) {
        client.send(`${input}\n`);
        for (const desc of descs) expect(await client.next(), input).toEqual(genericError(desc));
        expect(await client.execute("query-version", undefined, "after"), `after ${input}`).toEqual({ return: VERSION, id: "after" });
      }
    });

    it("a command sent one byte at a time, with braces, quotes and UTF-8 inside strings, is framed exactly", async () => {
      const client = await open(transport);
      await client.negotiate();
      await reg.add("ringbuf,id=r,size=256");
      const data = `{"}\\" ]' é€😀 [[`;
      const write = JSON.stringify({ execute: "ringbuf-write", arguments: { device: "r", data }, id: "a}b{" });
      // QEMU's extensions: single-quoted strings, and \' inside them.
      const read = String.raw`{'execute': 'ringbuf-read', 'arguments': {'device': 'r', 'size': 256}, 'id': 'it\'s'}`;
      for (const byte of new TextEncoder().encode(write + read)) client.send(Uint8Array.of(byte));
      expect(await client.next()).toEqual({ return: {}, id: "a}b{" });
      const answer = await client.nextLine();
      expect(answer).toMatch(/^[\x20-\x7e]*$/); // non-ASCII goes out as \u escapes, as QEMU writes it
      expect(JSON.parse(answer)).toEqual({ return: data, id: "it's" });
    });

    it("several commands in one write, with CRLF line ends, are answered in order", async () => {
      const client = await open(transport);
      await client.negotiate();
      client.send('{"execute":"query-version","id":1}\r\n{"execute":"query-commands","id":2}\r\n\r\n{"execute":"foo","id":3}\r\n');
      expect(await client.next()).toEqual({ return: VERSION, id: 1 });
      expect(await client.next()).toEqual({ return: COMMANDS.map((name) => ({ name })), id: 2 });
      expect(await client.next()).toEqual(notFound("The command foo has not been found", 3));
    });

    it("a 0xFF byte abandons a half-sent command, as QEMU's resync does", async () => {
      const client = await open(transport);
      await client.nextLine();
      client.send(new TextEncoder().encode('{"execute": "qmp_capa'));
      client.send(Uint8Array.of(0xff));
      client.send('{"execute": "qmp_capabilities"}');
      expect(await client.next()).toEqual(genericError(`JSON parse error, stray '"qmp_capa\uFFFD'`));
      expect(await client.next()).toEqual({ return: {} });
    });

    it("nesting deeper than 1024 is refused and what follows is read afresh", async () => {
      const client = await open(transport);
      await client.negotiate();
      client.send(`${"[".repeat(1025)}\n{"execute": "query-version", "id": "after"}`);
      expect(await client.next()).toEqual(genericError("JSON nesting depth limit exceeded"));
      expect(await client.next()).toEqual({ return: VERSION, id: "after" });
    });
  });
}

describe("QMP chardev commands", () => {
  let client: QmpTestClient;
  beforeEach(async () => {
    client = await open("unix");
    await client.negotiate();
  });

  it("chardev-add adds a ringbuf; ringbuf-write then ringbuf-read gives the data back", async () => {
    client.send('{"execute": "chardev-add", "arguments": {"id": "chr1", "backend": {"type": "ringbuf", "data": {"size": 64}}}, "id": 1}');
    expect(await client.nextLine()).toBe('{"return": {}, "id": 1}');
    expect(reg.get("chr1")).toBeInstanceOf(RingbufChardev);
    expect(await client.execute("ringbuf-write", { device: "chr1", data: "hello, hub" })).toEqual({ return: {} });
    expect(await client.execute("ringbuf-read", { device: "chr1", size: 64 })).toEqual({ return: "hello, hub" });
    expect(await client.execute("ringbuf-write", { device: "chr1", data: "AAECA/8=", format: "base64" })).toEqual({ return: {} });
    expect(await client.execute("ringbuf-read", { device: "chr1", size: 64, format: "base64" })).toEqual({ return: "AAECA/8=" });
  });

  it("ringbuf commands check their arguments with QAPI's texts", async () => {
    await reg.add("ringbuf,id=chr1,size=64");
    await reg.add("null,id=nul");
    const cases: [Record<string, unknown>, string][] = [
      [{ size: 8 }, "Parameter 'device' is missing"],
      [{ device: 7, size: 8 }, "Invalid parameter type for 'device', expected: string"],
      [{ device: "chr1" }, "Parameter 'size' is missing"],
      [{ device: "chr1", size: "8" }, "Invalid parameter type for 'size', expected: integer"],
      [{ device: "chr1", size: 8, format: "hex" }, "Parameter 'format' does not accept value 'hex'"],
      [{ device: "chr1", size: 8, colour: "red" }, "Parameter 'colour' is unexpected"],
      [{ device: "chr1", size: 0 }, "size must be greater than zero"],
      [{ device: "ghost", size: 8 }, "Device 'ghost' not found"],
      [{ device: "nul", size: 8 }, "nul is not a ringbuf device"],
    ];
    for (const [args, desc] of cases) expect(await client.execute("ringbuf-read", args), JSON.stringify(args)).toEqual(genericError(desc));
    expect(await client.execute("ringbuf-write", { device: "chr1", data: "!!", format: "base64" })).toEqual(
      genericError("Base64 data contains invalid characters"),
    );
  });

  it("query-chardev lists every chardev's label, filename and frontend-open", async () => {
    await client.execute("chardev-add", { id: "chr1", backend: { type: "ringbuf", data: { size: 8 } } });
    await client.execute("chardev-add", { id: "hub0", backend: { type: "hub", data: { chardevs: ["chr1"] } } });
    const { path: socketPath } = connectOptionsOf(reg, client.monitor) as { path: string };
    client.send('{"execute": "query-chardev"}');
    expect(await client.nextLine()).toBe(
      `{"return": [{"label": "compat_monitor0", "filename": "unix:${socketPath},server=on", "frontend-open": true}, ` +
        `{"label": "chr1", "filename": "ringbuf", "frontend-open": true}, {"label": "hub0", "filename": "hub", "frontend-open": false}]}`,
    );
  });

  it("chardev-remove of a ringbuf behind a hub is refused: it is busy", async () => {
    await client.execute("chardev-add", { id: "chr1", backend: { type: "ringbuf", data: { size: 8 } } });
    await client.execute("chardev-add", { id: "hub0", backend: { type: "hub", data: { chardevs: ["chr1"] } } });
    client.send('{"execute": "chardev-remove", "arguments": {"id": "chr1"}, "id": "rm"}');
    expect(await client.nextLine()).toBe(`{"error": {"class": "GenericError", "desc": "Chardev 'chr1' is busy"}, "id": "rm"}`);
    expect(await client.execute("chardev-remove", { id: "hub0" })).toEqual({ return: {} });
    expect(await client.execute("chardev-remove", { id: "chr1" })).toEqual({ return: {} });
    expect(await client.execute("chardev-remove", { id: "chr1" })).toEqual(genericError("Chardev 'chr1' not found"));
    expect(await client.execute("chardev-remove", { id: client.monitor.chardevId })).toEqual(genericError("Chardev 'compat_monitor0' is busy"));
  });

  it("chardev-add reports a taken id and QAPI's checks as they are, and a failed open after the id", async () => {
    await client.execute("chardev-add", { id: "chr1", backend: { type: "ringbuf", data: { size: 8 } } });
    const cases: [unknown, string][] = [
      [{ id: "chr1", backend: { type: "null" } }, "Chardev with id 'chr1' already exists"],
      [{ backend: { type: "null" } }, "Parameter 'id' is missing"],
      [{ id: "n", backend: { type: "warp" } }, "Parameter 'type' does not accept value 'warp'"],
      [{ id: "n", backend: { type: "null", data: { colour: 1 } } }, "Parameter 'backend.data.colour' is unexpected"],
      [{ id: "r", backend: { type: "ringbuf", data: { size: "8" } } }, "Invalid parameter type for 'backend.data.size', expected: integer"],
      [{ id: "r", backend: { type: "ringbuf", data: { size: 3 } } }, "Failed to add chardev 'r': size of ringbuf chardev must be power of two"],
      [{ id: "h", backend: { type: "hub", data: { chardevs: ["ghost"] } } }, "Failed to add chardev 'h': hub: chardev can't be found by id 'ghost'"],
      [
        { id: "h", backend: { type: "hub", data: { chardevs: ["a", "b", "c", "d", "e"] } } },
        "Failed to add chardev 'h': hub: too many uses of chardevs 'h' (maximum is 4)",
      ],
    ];
    for (const add of ["a", "b", "c", "d", "e"]) await reg.add(`ringbuf,id=${add},size=8`);
    for (const [args, desc] of cases) expect(await client.execute("chardev-add", args as never), JSON.stringify(args)).toEqual(genericError(desc));
    expect(reg.query().map((row) => row.label)).toEqual(["compat_monitor0", "chr1", "a", "b", "c", "d", "e"]);
  });

  it("chardev-add of a pty returns the slave path, as query-chardev shows it", async () => {
    const answer = await client.execute("chardev-add", { id: "pty0", backend: { type: "pty", data: {} } }, "pty");
    expect(answer.id).toBe("pty");
    expect(answer.return.pty).toMatch(/^\/dev\/pts\/\d+$/);
    const rows = (await client.execute("query-chardev")).return;
    expect(rows).toContainEqual({ label: "pty0", filename: `pty:${answer.return.pty}`, "frontend-open": false });
  });

  it("chardev-change on a hub or a mux is refused with QEMU's text", async () => {
    await reg.add("ringbuf,id=chr1,size=8");
    await reg.add("hub,id=hub0,chardevs.0=chr1");
    await reg.add("ringbuf,id=m,size=8,mux=on");
    for (const id of ["hub0", "m"]) {
      expect(await client.execute("chardev-change", { id, backend: { type: "null" } })).toEqual(genericError("For mux or hub device hotswap is not supported yet"));
    }
    expect(reg.get("hub0").kind).toBe("hub");
  });

  it("chardev-change refuses a held chardev and replaces an idle one in place", async () => {
    await reg.add("ringbuf,id=chr1,size=8");
    await reg.add("hub,id=hub0,chardevs.0=chr1");
    await reg.add("ringbuf,id=idle,size=8");
    expect(await client.execute("chardev-change", { id: "chr1", backend: { type: "null" } })).toEqual(
      genericError("Chardev user does not support chardev hotswap"),
    );
    expect(await client.execute("chardev-change", { id: "ghost", backend: { type: "null" } })).toEqual(genericError("Chardev 'ghost' does not exist"));
    // A bad backend type is caught before anything is removed.
    expect(await client.execute("chardev-change", { id: "idle", backend: { type: "warp" } })).toEqual(
      genericError("Parameter 'type' does not accept value 'warp'"),
    );
    expect(await client.execute("chardev-change", { id: "idle", backend: { type: "ringbuf", colour: 1 } })).toEqual(
      genericError("Parameter 'backend.colour' is unexpected"),
    );
    expect((reg.get("idle") as RingbufChardev).size).toBe(8);

    expect(await client.execute("chardev-change", { id: "idle", backend: { type: "ringbuf", data: { size: 16 } } })).toEqual({ return: {} });
    expect((reg.get("idle") as RingbufChardev).size).toBe(16);
    expect(reg.query().map((row) => row.label)).toEqual(["compat_monitor0", "chr1", "hub0", "idle"]);
  });

  it("query-chardev-backends lists every kind, aliases included, and query-commands every command", async () => {
    const backends = (await client.execute("query-chardev-backends")).return as { name: string }[];
    expect(backends).toEqual(reg.registeredKinds().map((name) => ({ name })));
    for (const name of ["hub", "ringbuf", "memory", "null", "file", "pipe", "socket", "pty", "stdio", "mux"]) expect(backends).toContainEqual({ name });
    expect(await client.execute("query-commands")).toEqual({ return: COMMANDS.map((name) => ({ name })) });
    expect(await client.execute("query-commands", { verbose: true })).toEqual(genericError("Parameter 'verbose' is unexpected"));
  });

  it("chardev-send-break gives the chardev's frontend a BREAK", async () => {
    await reg.add("ringbuf,id=chr1,size=8");
    const h = new FeHandler();
    reg.attach("chr1", h);
    expect(await client.execute("chardev-send-break", { id: "chr1" })).toEqual({ return: {} });
    expect(h.events).toEqual([ChrEvent.OPENED, ChrEvent.BREAK]);
    expect(await client.execute("chardev-send-break", { id: "ghost" })).toEqual(genericError("Chardev 'ghost' not found"));
    expect(await client.execute("chardev-send-break", {})).toEqual(genericError("Parameter 'id' is missing"));
  });
});

describe("QMP hub commands of our own", () => {
  it("hub-attach and hub-detach change a live hub, and query-hub shows its counters", async () => {
    const client = await open("unix");
    await client.negotiate();
    await reg.add("ringbuf,id=a,size=64");
    await reg.add("ringbuf,id=b,size=64");
    await reg.add("hub,id=hub0,chardevs.0=a,ring=1024");
    const fe = reg.attach("hub0", { canRead: () => 0, read() {}, event() {} });
    expect(await client.execute("hub-attach", { hub: "hub0", chardev: "b", policy: "drop", mode: "ro" })).toEqual({ return: {} });
    fe.write(new TextEncoder().encode("hello"));
    reg.hub("hub0").flush();
    const answer = (await client.execute("query-hub", { id: "hub0" })) as { return: { ring: number; backends: Record<string, unknown>[] } };
    expect(answer.return.ring).toBe(1024);
    expect(answer.return.backends).toEqual([
      { id: "a", open: true, policy: "block", mode: "rw", "bytes-in": 0, "bytes-out": 5, "bytes-dropped": 0, "input-discarded": 0, "events-discarded": 0, lag: 0, stalls: 0 },
      { id: "b", open: true, policy: "drop", mode: "ro", "bytes-in": 0, "bytes-out": 5, "bytes-dropped": 0, "input-discarded": 0, "events-discarded": 0, lag: 0, stalls: 0 },
    ]);
    expect(await client.execute("hub-detach", { hub: "hub0", chardev: "b" })).toEqual({ return: {} });
    expect(await client.execute("hub-detach", { hub: "hub0", chardev: "b" })).toEqual(genericError("hub: chardev 'b' is not a backend of hub 'hub0'"));
    expect(await client.execute("hub-attach", { hub: "a", chardev: "b" })).toEqual(genericError("'a' is not a hub"));
    expect(await client.execute("hub-attach", { hub: "hub0", chardev: "b", policy: "maybe" })).toEqual(
      genericError("Parameter 'policy' does not accept value 'maybe'"),
    );
    fe.detach();
  });
});

describe("QMP sessions on a socket", () => {
  it("each new client gets a fresh greeting and must negotiate again", async () => {
    const monitor = await startQmp(reg, `unix:${path.join(dir, "qmp.sock")},server=on,wait=off`);
    const socket = reg.get(monitor.chardevId) as SocketChardev;
    for (let round = 0; round < 3; round++) {
      const client = await SocketClient.connect(monitor, connectOptionsOf(reg, monitor));
      cleanups.push(() => client.close());
      expect(await client.nextLine()).toBe(GREETING);
      expect(await client.execute("query-version")).toEqual(notFound(EXPECTING_NEGOTIATION));
      expect(await client.execute("qmp_capabilities")).toEqual({ return: {} });
      expect(await client.execute("query-version")).toEqual({ return: VERSION });
      await client.close();
      await until(() => !socket.connected);
      expect(monitor.negotiated).toBe(false);
    }
  });

  it("the half-sent command of a client that left does not spoil the next client's input", async () => {
    const monitor = await startQmp(reg, `unix:${path.join(dir, "qmp.sock")},server=on,wait=off`);
    const socket = reg.get(monitor.chardevId) as SocketChardev;
    const first = await SocketClient.connect(monitor, connectOptionsOf(reg, monitor));
    await first.nextLine();
    first.send('{"execute": "qmp_capa');
    await first.close();
    await until(() => !socket.connected);

    const second = await SocketClient.connect(monitor, connectOptionsOf(reg, monitor));
    cleanups.push(() => second.close());
    expect(await second.nextLine()).toBe(GREETING);
    expect(await second.execute("qmp_capabilities")).toEqual({ return: {} });
  });

  it("events reach a client only once it has negotiated", async () => {
    const client = await open("unix");
    await client.nextLine();
    expect(client.monitor.sendEvent("SHUTDOWN", { guest: false })).toBe(false);
    expect(await client.execute("qmp_capabilities")).toEqual({ return: {} });
    expect(client.monitor.sendEvent("SHUTDOWN", { guest: false })).toBe(true);
    expect(await client.nextLine()).toMatch(/^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}, "event": "SHUTDOWN", "data": \{"guest": false\}\}$/);
  });

  for (const transport of ["unix", "tcp"] as const) {
    it(`socat, a real QMP client, negotiates and runs commands over ${transport}, one session after another`, async () => {
      const address = transport === "unix" ? `unix:${path.join(dir, "qmp.sock")}` : "tcp:127.0.0.1:0";
      const monitor = await startQmp(reg, `${address},server=on,wait=off`);
      const target = connectOptionsOf(reg, monitor) as { path?: string; host?: string; port?: number };
      const socatAddress = target.path ? `UNIX-CONNECT:${target.path}` : `TCP:${target.host}:${target.port}`;
      for (const session of ["one", "two"]) {
        const socat = spawn("socat", ["-", socatAddress], { stdio: ["pipe", "pipe", "pipe"] });
        let output = "";
        let exitCode: number | null = null;
        socat.stdout.on("data", (chunk: Uint8Array) => (output += new TextDecoder().decode(chunk)));
        socat.on("exit", (code) => (exitCode = code ?? -1));
        cleanups.push(() => socat.kill());
        await until(() => output.includes("\r\n"));
        socat.stdin.write(`{"execute": "qmp_capabilities"}\n{"execute": "query-version", "id": "${session}"}\n`);
        await until(() => output.split("\r\n").length >= 4);
        expect(output.split("\r\n")).toEqual([GREETING, '{"return": {}}', `{"return": ${encodeQmpJson(VERSION)}, "id": "${session}"}`, ""]);
        socat.stdin.end();
        await until(() => exitCode !== null);
        expect(exitCode).toBe(0);
      }
    });
  }
});

describe("QMP output and the write contract", () => {
  it("answers held back by a full FIFO all arrive in order, none lost or repeated", async () => {
    const client = (await open("fifo")) as FifoClient;
    await client.negotiate();
    await reg.add("ringbuf,id=big,size=65536");
    const ring = reg.get("big") as RingbufChardev;
    // Five answers of 55000 bytes cannot fit in a 64 KiB FIFO that nobody reads: the monitor
    // meets EAGAIN and must wait for the pipe's watch.
    const payloads = ["a", "b", "c", "d", "e"].map((letter, i) => `${i}:` + `${letter}0123456789`.repeat(5000));
    for (const [i, payload] of payloads.entries()) {
      reg.ringbufWrite("big", payload);
      client.send(`{"execute": "ringbuf-read", "arguments": {"device": "big", "size": 65536}, "id": ${i}}`);
      await until(() => ring.count === 0); // the command ran; its answer waits in the monitor or the FIFO
    }
    for (const [i, payload] of payloads.entries()) expect(await client.next()).toEqual({ return: payload, id: i });
    expect(await client.execute("query-version", undefined, "last")).toEqual({ return: VERSION, id: "last" });
  });
});

describe("-qmp addresses and startQmp", () => {
  const specs: [string, string][] = [
    ["unix:/tmp/q.sock,server=on,wait=off", "socket,id=c0,path=/tmp/q.sock,server=on,wait=off"],
    ["unix:/tmp/a,,b.sock,server,nowait", "socket,id=c0,path=/tmp/a,,b.sock,server,wait=off"],
    ["tcp:localhost:4444,server=on,wait=off", "socket,id=c0,host=localhost,port=4444,server=on,wait=off"],
    ["tcp::4444,server=on", "socket,id=c0,host=,port=4444,server=on"],
    ["tcp:[::1]:4444,server=on,wait=off", "socket,id=c0,host=::1,port=4444,server=on,wait=off"],
  ];
  for (const [address, chardev] of specs) {
    it(`-qmp ${address} is -chardev ${chardev}`, () => {
      expect(qmpChardevSpec(address, "c0")).toBe(chardev);
    });
  }

  const refused: [string, string][] = [
    ["stdio", "qmp: 'stdio' is not a QMP address we serve (unix:PATH or tcp:HOST:PORT)"],
    ["unix:", "qmp: 'unix:' is not a QMP address we serve (unix:PATH or tcp:HOST:PORT)"],
    ["tcp:localhost,server=on", "qmp: 'tcp:localhost,server=on' has no port (tcp:HOST:PORT)"],
  ];
  for (const [address, message] of refused) {
    it(`-qmp ${address} is refused and adds nothing`, async () => {
      const error = await errorOf(() => startQmp(reg, address));
      expect(error).toBeInstanceOf(ChardevError);
      expect(error.message).toBe(message);
      expect(reg.query()).toEqual([]);
    });
  }

  it("startQmp names its chardevs compat_monitorN, as QEMU does, and close removes them", async () => {
    const first = await startQmp(reg, `unix:${path.join(dir, "a.sock")},server=on,wait=off`);
    const second = await startQmp(reg, `unix:${path.join(dir, "b.sock")},server=on,wait=off`);
    expect([first.chardevId, second.chardevId]).toEqual(["compat_monitor0", "compat_monitor1"]);
    await first.close();
    expect(reg.find("compat_monitor0")).toBeUndefined();
    expect(reg.query().map((row) => row.label)).toEqual(["compat_monitor1"]);
  });

  it("a monitor attached by hand leaves its chardev registered when it closes", async () => {
    await reg.add("ringbuf,id=mon,size=4096");
    const monitor = QmpMonitor.attach(reg, "mon");
    expect(reg.ringbufRead("mon", 4096)).toBe(`${GREETING}\r\n`);
    await monitor.close();
    expect(reg.query()).toEqual([{ label: "mon", filename: "ringbuf", frontendOpen: false }]);
    expect((await errorOf(() => QmpMonitor.attach(reg, "ghost"))).message).toBe("Chardev 'ghost' not found");
  });
});
