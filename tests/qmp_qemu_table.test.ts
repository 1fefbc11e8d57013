// QMP as QEMU answers it: one table of commands, each sent to a real QEMU 7.2
// (`qemu-system-x86_64 -machine none -nodefaults -display none -qmp unix:...`, no guest) and to
// our monitor, over a UNIX socket each, and the answers compared member by member. Where QEMU
// 7.2 and QEMU 10.0 differ (the hub is 10.0's) the case is not in this table but in
// tests/qmp.test.ts, with 10.0's source as the reference.
//
// A case may set chardevs up first (its own ids, so cases do not depend on each other); only the
// answer to its last command is compared. Answers that name things of the host (a pty's path, a
// version) are not in the table.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry } from "../host-ts/mod.ts";
import { startQmp, type QmpMonitor } from "../host-ts/qmp.ts";
import { freePort } from "./_ports.ts";

/** Only a bound on waiting for an answer that should come; nothing here measures time. */
const GIVE_UP_MS = 15_000;
const QEMU = "qemu-system-x86_64";

interface Case {
  name: string;
  /** Commands run before, each of which must succeed on both sides. */
  setup?: object[];
  /** The command whose answer is compared (a function when it needs a port found at run time). */
  command: object | (() => object);
}

/** A loopback port nobody listens on, and one something listens on; set before the cases run. */
const ports = { closed: 0, busy: 0 };

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-qmp-table-"));
const missingDir = path.join(dir, "no", "such", "dir");

const CASES: Case[] = [
  { name: "an unknown command", command: { execute: "no-such-command" } },
  { name: "no execute member", command: { arguments: {} } },
  { name: "arguments that are not an object", command: { execute: "query-chardev", arguments: 7 } },
  { name: "an argument a command does not take", command: { execute: "query-chardev", arguments: { x: 1 } } },
  { name: "chardev-add without id", command: { execute: "chardev-add", arguments: { backend: { type: "null" } } } },
  { name: "chardev-add without backend", command: { execute: "chardev-add", arguments: { id: "t1" } } },
  { name: "chardev-add of an unknown type", command: { execute: "chardev-add", arguments: { id: "t2", backend: { type: "warp" } } } },
  { name: "chardev-add of a file without out", command: { execute: "chardev-add", arguments: { id: "t3", backend: { type: "file", data: {} } } } },
  { name: "chardev-add of a file with out of the wrong type", command: { execute: "chardev-add", arguments: { id: "t4", backend: { type: "file", data: { out: 5 } } } } },
  { name: "chardev-add of a null chardev", command: { execute: "chardev-add", arguments: { id: "t5", backend: { type: "null", data: {} } } } },
  {
    name: "chardev-add of an id that exists",
    setup: [{ execute: "chardev-add", arguments: { id: "t6", backend: { type: "null", data: {} } } }],
    command: { execute: "chardev-add", arguments: { id: "t6", backend: { type: "null", data: {} } } },
  },
  { name: "chardev-add of an invalid id", command: { execute: "chardev-add", arguments: { id: "1bad", backend: { type: "null", data: {} } } } },
  { name: "chardev-add of a ringbuf of a size not a power of two", command: { execute: "chardev-add", arguments: { id: "t7", backend: { type: "ringbuf", data: { size: 1000 } } } } },
  { name: "chardev-add of a mux over a chardev that does not exist", command: { execute: "chardev-add", arguments: { id: "t8", backend: { type: "mux", data: { chardev: "nope" } } } } },
  { name: "chardev-add of a file in a directory that does not exist", command: { execute: "chardev-add", arguments: { id: "t9", backend: { type: "file", data: { out: path.join(missingDir, "x.log") } } } } },
  {
    name: "chardev-add of a socket server in a directory that does not exist",
    command: { execute: "chardev-add", arguments: { id: "t10", backend: { type: "socket", data: { addr: { type: "unix", data: { path: path.join(missingDir, "s.sock") } }, server: true, wait: false } } } },
  },
  {
    name: "chardev-add of a socket client to a path nobody listens on",
    command: { execute: "chardev-add", arguments: { id: "t11", backend: { type: "socket", data: { addr: { type: "unix", data: { path: path.join(dir, "nobody.sock") } }, server: false } } } },
  },
  {
    name: "chardev-add of a socket with telnet",
    command: { execute: "chardev-add", arguments: { id: "t12", backend: { type: "socket", data: { addr: { type: "unix", data: { path: path.join(dir, "telnet12.sock") } }, server: true, wait: false, telnet: true } } } },
  },
  {
    name: "chardev-add of a TCP socket client to a port nobody listens on",
    command: () => ({ execute: "chardev-add", arguments: { id: "t20", backend: { type: "socket", data: { addr: { type: "inet", data: { host: "127.0.0.1", port: String(ports.closed) } }, server: false } } } }),
  },
  {
    name: "chardev-add of a TCP socket server on a port in use",
    command: () => ({ execute: "chardev-add", arguments: { id: "t21", backend: { type: "socket", data: { addr: { type: "inet", data: { host: "127.0.0.1", port: String(ports.busy) } }, server: true, wait: false } } } }),
  },
  { name: "chardev-remove of a chardev that does not exist", command: { execute: "chardev-remove", arguments: { id: "nope" } } },
  { name: "chardev-remove without id", command: { execute: "chardev-remove" } },
  {
    name: "chardev-remove of a chardev",
    setup: [{ execute: "chardev-add", arguments: { id: "t13", backend: { type: "null", data: {} } } }],
    command: { execute: "chardev-remove", arguments: { id: "t13" } },
  },
  {
    name: "query-chardev shows a ringbuf",
    setup: [{ execute: "chardev-add", arguments: { id: "t14", backend: { type: "ringbuf", data: { size: 1024 } } } }],
    command: { execute: "query-chardev" },
  },
  {
    name: "ringbuf-write of base64 with invalid characters",
    setup: [{ execute: "chardev-add", arguments: { id: "t15", backend: { type: "ringbuf", data: {} } } }],
    command: { execute: "ringbuf-write", arguments: { device: "t15", data: "!!!!", format: "base64" } },
  },
  {
    name: "ringbuf-read after unpadded base64",
    setup: [
      { execute: "chardev-add", arguments: { id: "t16", backend: { type: "ringbuf", data: {} } } },
      { execute: "ringbuf-write", arguments: { device: "t16", data: "AAECAw", format: "base64" } },
    ],
    command: { execute: "ringbuf-read", arguments: { device: "t16", size: 100, format: "base64" } },
  },
  {
    name: "ringbuf-read of utf8 text",
    setup: [
      { execute: "chardev-add", arguments: { id: "t17", backend: { type: "ringbuf", data: { size: 16 } } } },
      { execute: "ringbuf-write", arguments: { device: "t17", data: "héllo, wörld, and more" } },
    ],
    command: { execute: "ringbuf-read", arguments: { device: "t17", size: 100 } },
  },
  { name: "ringbuf-read of a chardev that does not exist", command: { execute: "ringbuf-read", arguments: { device: "nope", size: 1 } } },
  {
    name: "ringbuf-read of a chardev that is no ringbuf",
    setup: [{ execute: "chardev-add", arguments: { id: "t18", backend: { type: "null", data: {} } } }],
    command: { execute: "ringbuf-read", arguments: { device: "t18", size: 1 } },
  },
  {
    name: "ringbuf-read of a negative size",
    setup: [{ execute: "chardev-add", arguments: { id: "t19", backend: { type: "ringbuf", data: {} } } }],
    command: { execute: "ringbuf-read", arguments: { device: "t19", size: -1 } },
  },
  { name: "chardev-send-break to a chardev that does not exist", command: { execute: "chardev-send-break", arguments: { id: "nope" } } },
  { name: "chardev-change of a chardev that does not exist", command: { execute: "chardev-change", arguments: { id: "nope", backend: { type: "null", data: {} } } } },
  { name: "query-status", command: { execute: "query-status" } },
  { name: "object-add of an unknown type", command: { execute: "object-add", arguments: { "qom-type": "warp", id: "o1" } } },
  { name: "object-del of an object that does not exist", command: { execute: "object-del", arguments: { id: "nope" } } },
];

/** A QMP conversation over a UNIX socket, message by message. */
class LineClient {
  #received = "";
  #waiting: (() => void) | null = null;
  constructor(readonly socket: net.Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => {
      this.#received += text;
      this.#waiting?.();
    });
  }

  static async connect(socketPath: string): Promise<LineClient> {
    const deadline = Date.now() + GIVE_UP_MS;
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(socketPath, () => resolve(s));
          s.once("error", reject);
        });
        return new LineClient(socket);
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  async next(): Promise<any> {
    const deadline = Date.now() + GIVE_UP_MS;
    while (!this.#received.includes("\n")) {
      if (Date.now() > deadline) throw new Error(`no answer; got ${JSON.stringify(this.#received)}`);
      await new Promise<void>((resolve) => {
        this.#waiting = resolve;
        setTimeout(resolve, 100);
      });
    }
    const end = this.#received.indexOf("\n");
    const line = this.#received.slice(0, end);
    this.#received = this.#received.slice(end + 1);
    return JSON.parse(line);
  }

  /** Sends one message and returns the next answer that is not an event. */
  async send(message: object): Promise<any> {
    this.socket.write(JSON.stringify(message) + "\n");
    for (;;) {
      const answer = await this.next();
      if (!("event" in answer)) return answer;
    }
  }
}

/** Runs every case on one side and returns the compared answers by case name. */
async function runCases(client: LineClient): Promise<Map<string, unknown>> {
  await client.next(); // the greeting
  const negotiated = await client.send({ execute: "qmp_capabilities" });
  if (JSON.stringify(negotiated) !== '{"return":{}}') throw new Error(`negotiation: ${JSON.stringify(negotiated)}`);
  const answers = new Map<string, unknown>();
  for (const testCase of CASES) {
    for (const step of testCase.setup ?? []) {
      const answer = await client.send(step);
      if (!("return" in answer)) throw new Error(`${testCase.name}: setup ${JSON.stringify(step)} failed: ${JSON.stringify(answer)}`);
    }
    const command = typeof testCase.command === "function" ? testCase.command() : testCase.command;
    answers.set(testCase.name, await client.send(command));
  }
  // Last: `quit`, whose answer is QEMU's SHUTDOWN event and then `{}` (the timestamp differs).
  client.socket.write('{"execute": "quit"}\n');
  const shutdown = await client.next();
  const quitAnswer = await client.next();
  answers.set(QUIT, [shutdown.event, shutdown.data, Object.keys(shutdown.timestamp), quitAnswer]);
  return answers;
}

/**
 * query-chardev lists the monitors' own chardevs too (named differently on each side) and in
 * QEMU's hash-table order: the compared rows are the cases', sorted by label.
 */
function comparable(answer: any): unknown {
  if (Array.isArray(answer?.return)) {
    const rows = answer.return.filter((row: any) => !/^compat_monitor/.test(String(row?.label)));
    return { return: rows.sort((a: any, b: any) => String(a.label).localeCompare(String(b.label))) };
  }
  return answer;
}

const QUIT = "quit: the SHUTDOWN event, then {}";

let qemu: ChildProcess | null = null;
let qemuExit: Promise<number | null>;
let quitCalls = 0;
let busyListener: net.Server;
let reg: ChardevRegistry;
let monitor: QmpMonitor;
let theirs: Map<string, unknown>;
let ours: Map<string, unknown>;

beforeAll(async () => {
  ports.closed = await freePort();
  busyListener = net.createServer();
  await new Promise<void>((resolve) => busyListener.listen(0, "127.0.0.1", resolve));
  ports.busy = (busyListener.address() as net.AddressInfo).port;
  const qemuSocket = path.join(dir, "qemu.sock");
  qemu = spawn(QEMU, ["-machine", "none", "-nodefaults", "-display", "none", "-qmp", `unix:${qemuSocket},server=on,wait=off`], { stdio: "ignore" });
  qemuExit = new Promise((resolve) => qemu!.on("exit", (code) => resolve(code)));
  const qemuClient = await LineClient.connect(qemuSocket);
  theirs = await runCases(qemuClient);
  qemuClient.socket.destroy();

  reg = await ChardevRegistry.create({ qemuCompat: true, onWarning: () => {} });
  const ourSocket = path.join(dir, "ours.sock");
  monitor = await startQmp(reg, `unix:${ourSocket},server=on,wait=off`, { onQuit: () => quitCalls++ });
  const ourClient = await LineClient.connect(ourSocket);
  ours = await runCases(ourClient);
  ourClient.socket.destroy();
});

afterAll(async () => {
  qemu?.kill("SIGKILL");
  busyListener?.close();
  monitor?.detach();
  await reg?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("QMP answers as a real QEMU 7.2 gives them", () => {
  for (const testCase of CASES) {
    it(testCase.name, () => {
      expect(comparable(ours.get(testCase.name))).toEqual(comparable(theirs.get(testCase.name)));
    });
  }

  it(QUIT, async () => {
    expect(theirs.get(QUIT)).toEqual(["SHUTDOWN", { guest: false, reason: "host-qmp-quit" }, ["seconds", "microseconds"], { return: {} }]);
    expect(ours.get(QUIT)).toEqual(theirs.get(QUIT));
    // QEMU ends with status 0; our monitor asks its owner to end, once.
    expect(await qemuExit).toBe(0);
    expect(quitCalls).toBe(1);
  });
});
