// `socket` with telnet=on and tn3270=on (QEMU's char-socket): the negotiation on connect,
// telnet commands taken out of the input (a property test of the parser against a model),
// IAC BREAK as a BREAK event, output not escaped, QEMU's filename and "waiting for connection"
// line; and Debian's `telnet` in tmux sharing a shell through the real command.

import { spawnSync } from "node:child_process";
import * as net from "node:net";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import type { SocketChardev } from "../host-ts/chardev/socket.ts";
import { TELNET_BREAK, TELNET_NEGOTIATION, TelnetInputParser, TN3270_NEGOTIATION, type TelnetInput } from "../host-ts/chardev/_telnet.ts";
import { bytes, FeHandler } from "./_fe_handler.ts";
import { freePort } from "./_ports.ts";
import { CliProcess, until as untilOrGiveUp } from "./cli/_cli.ts";

const { OPENED, CLOSED, BREAK } = ChrEvent;
const IAC = 0xff;

let reg: ChardevRegistry;
let warnings: string[];
let cleanups: (() => void)[];

beforeEach(async () => {
  warnings = [];
  reg = await ChardevRegistry.create({ qemuCompat: true, onWarning: (line) => warnings.push(line) });
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups) cleanup();
  await reg.close();
  await CliProcess.stopAll();
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

/** A raw TCP client: what it received, byte for byte. */
class RawClient {
  received = Buffer.alloc(0);
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => (this.received = Buffer.concat([this.received, chunk])));
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => {});
    cleanups.push(() => socket.destroy());
  }
  static connect(port: number): Promise<RawClient> {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.setNoDelay(true);
    const client = new RawClient(socket);
    return new Promise((resolve, reject) => {
      socket.once("connect", () => resolve(client));
      socket.once("error", reject);
    });
  }
  write(data: number[] | string): void {
    this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : Buffer.from(data));
  }
}

async function telnetServer(id: string, extra = ""): Promise<{ chardev: SocketChardev; port: number }> {
  const chardev = (await reg.add(`socket,id=${id},host=127.0.0.1,port=0,server=on,wait=off${extra}`)) as SocketChardev;
  return { chardev, port: (chardev.address as { port: number }).port };
}

/** A frontend that keeps data and events in one ordered list, to see where a BREAK falls. */
class OrderedHandler extends FeHandler {
  log: (string | ChrEvent)[] = [];
  override read(data: Uint8Array): void {
    super.read(data);
    this.log.push(Buffer.from(data).toString("latin1"));
  }
  override event(event: ChrEvent): void {
    super.event(event);
    this.log.push(event);
  }
}

describe("socket telnet=on", () => {
  it("a client is sent QEMU's negotiation first, exactly IAC WILL ECHO, IAC WILL SGA, IAC WILL BINARY, IAC DO BINARY, then the frontend's output", async () => {
    const { port } = await telnetServer("t0", ",telnet=on");
    const h = new FeHandler();
    const fe = reg.attach("t0", h);
    const client = await RawClient.connect(port);
    await until(() => h.isOpen);
    expect(fe.write(bytes("login: "))).toBe(7);
    await until(() => client.received.length >= 19);
    expect([...client.received]).toEqual([0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x00, ...bytes("login: ")]);
    expect([...TELNET_NEGOTIATION]).toEqual([...client.received.subarray(0, 12)]);
  });

  it("every new client is negotiated with again, and the filename says telnet: as QEMU's does", async () => {
    const { chardev, port } = await telnetServer("t0", ",telnet=on");
    const h = new FeHandler();
    reg.attach("t0", h);
    expect(chardev.filename).toBe(`disconnected:telnet:127.0.0.1:${port},server=on`);
    const first = await RawClient.connect(port);
    await until(() => first.received.length === 12);
    expect(chardev.filename).toBe(`telnet:127.0.0.1:${port},server=on <-> 127.0.0.1:${first.socket.localPort}`);
    first.socket.end();
    await until(() => h.events.length === 2);
    const second = await RawClient.connect(port);
    await until(() => second.received.length === 12);
    expect([...second.received]).toEqual([...TELNET_NEGOTIATION]);
    expect(h.events).toEqual([OPENED, CLOSED, OPENED]);
  });

  it("telnet commands are taken out of the input: IAC IAC is 0xFF, option replies and a subnegotiation vanish, IAC NOP eats no typed byte", async () => {
    const { port } = await telnetServer("t0", ",telnet=on");
    const h = new FeHandler();
    h.room = 1 << 20;
    reg.attach("t0", h);
    const client = await RawClient.connect(port);
    await until(() => h.isOpen);
    // What Debian's telnet answers to the negotiation, then a window-size subnegotiation (with
    // an escaped 0xFF in it), typed text around an escaped 0xFF, and a NOP.
    client.write([IAC, 0xfd, 0x01, IAC, 0xfd, 0x03, IAC, 0xfd, 0x00, IAC, 0xfb, 0x00]);
    client.write([IAC, 0xfa, 0x1f, 0x00, 0x50, IAC, IAC, 0x18, IAC, 0xf0]);
    client.write([0x61, IAC, IAC, 0x62, IAC, 0xf1, 0x63, 0x0d]);
    await until(() => h.readBuf.length >= 4);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect([...h.readBuf]).toEqual([0x61, 0xff, 0x62, 0x63, 0x0d]);
    expect(h.events).toEqual([OPENED]);
  });

  it("IAC BREAK reaches the frontend as a BREAK event, between the bytes typed before and after it", async () => {
    const { port } = await telnetServer("t0", ",telnet=on");
    const h = new OrderedHandler();
    reg.attach("t0", h);
    const client = await RawClient.connect(port);
    await until(() => h.isOpen);
    client.write([0x78, IAC, 0xf3, 0x79]);
    await until(() => h.log.includes("y") || h.log.includes("xy"));
    expect(h.log).toEqual([OPENED, "x", BREAK, "y"]);
  });

  it("output is sent as written: a 0xFF from the frontend reaches the client as one byte, as QEMU sends it", async () => {
    const { port } = await telnetServer("t0", ",telnet=on");
    const h = new FeHandler();
    const fe = reg.attach("t0", h);
    const client = await RawClient.connect(port);
    await until(() => h.isOpen);
    expect(fe.write(Uint8Array.of(0x41, 0xff, 0x42))).toBe(3);
    await until(() => client.received.length === 15);
    expect([...client.received.subarray(12)]).toEqual([0x41, 0xff, 0x42]);
  });

  it("tn3270=on sends RFC 1576's negotiation as QEMU does and keeps IAC EOR in the input", async () => {
    const { chardev, port } = await telnetServer("t0", ",tn3270=on");
    const h = new OrderedHandler();
    reg.attach("t0", h);
    // QEMU names only telnet=on `telnet:`; a tn3270 server is `tcp:`.
    expect(chardev.filename).toBe(`disconnected:tcp:127.0.0.1:${port},server=on`);
    const client = await RawClient.connect(port);
    await until(() => client.received.length === 21);
    expect([...client.received]).toEqual([...TN3270_NEGOTIATION]);
    expect([...TN3270_NEGOTIATION]).toEqual([0xff, 0xfd, 0x19, 0xff, 0xfb, 0x19, 0xff, 0xfd, 0x00, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x18, 0xff, 0xfa, 0x18, 0x01, 0xff, 0xf0]);
    client.write([0x7d, IAC, 0xef, IAC, 0xf3]);
    await until(() => h.log.includes(BREAK));
    expect(Buffer.from(h.readBuf).toString("latin1")).toBe("\x7d\xff\xef");
  });

  it("a telnet=on client negotiates nothing and takes its input as is, as QEMU's client does", async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => server.close());
    const accepted = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const client = (await reg.add(`socket,id=c0,host=127.0.0.1,port=${port},telnet=on`)) as SocketChardev;
    const h = new FeHandler();
    reg.attach("c0", h);
    const peer = await accepted;
    cleanups.push(() => peer.destroy());
    let fromChardev = Buffer.alloc(0);
    peer.on("data", (chunk: Buffer) => (fromChardev = Buffer.concat([fromChardev, chunk])));
    peer.write(Buffer.from([0x61, IAC, 0xf3, 0x62]));
    await until(() => h.readBuf.length === 4);
    expect([...h.readBuf]).toEqual([0x61, IAC, 0xf3, 0x62]);
    expect(client.filename).toMatch(/^telnet:127\.0\.0\.1:\d+ <-> 127\.0\.0\.1:\d+$/);
    expect(fromChardev.length).toBe(0);
  });

  it("QMP chardev-add takes telnet: true in ChardevSocket data", async () => {
    const chardev = (await reg.add({
      id: "q0",
      backend: { type: "socket", data: { addr: { type: "inet", data: { host: "127.0.0.1", port: "0" } }, server: true, wait: false, telnet: true } },
    })) as SocketChardev;
    const port = (chardev.address as { port: number }).port;
    reg.attach("q0", new FeHandler());
    const client = await RawClient.connect(port);
    await until(() => client.received.length === 12);
    expect([...client.received]).toEqual([...TELNET_NEGOTIATION]);
  });

  it("a wait=on server says QEMU's 'waiting for connection' line through the warning hook before it waits", async () => {
    const port = await freePort();
    const adding = reg.add(`socket,id=w0,host=127.0.0.1,port=${port},server=on,wait=on,telnet=on`);
    await until(() => warnings.length > 0);
    expect(warnings).toEqual([`info: QEMU waiting for connection on: disconnected:telnet:127.0.0.1:${port},server=on`]);
    const client = await RawClient.connect(port);
    await adding;
    await until(() => client.received.length === 12);
    expect([...client.received]).toEqual([...TELNET_NEGOTIATION]);
  });
});

/** What a parser should make of a token list: its data bytes and BREAKs, merged in order. */
type Token =
  | { kind: "data"; byte: number }
  | { kind: "escapedIac" }
  | { kind: "break" }
  | { kind: "option"; verb: number; option: number }
  | { kind: "command"; command: number }
  | { kind: "subnegotiation"; payload: number[] };

const tokenArb: fc.Arbitrary<Token> = fc.oneof(
  fc.record({ kind: fc.constant("data" as const), byte: fc.integer({ min: 0, max: 0xfe }) }),
  fc.constant({ kind: "escapedIac" as const }),
  fc.constant({ kind: "break" as const }),
  fc.record({ kind: fc.constant("option" as const), verb: fc.integer({ min: 0xfb, max: 0xfe }), option: fc.integer({ min: 0, max: 0xff }) }),
  // The 2-byte commands: SE (stray), NOP, DM, IP, AO, AYT, EC, EL, GA (and EOR).
  fc.record({ kind: fc.constant("command" as const), command: fc.constantFrom(0xef, 0xf0, 0xf1, 0xf2, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9) }),
  fc.record({ kind: fc.constant("subnegotiation" as const), payload: fc.array(fc.integer({ min: 0, max: 0xff }), { maxLength: 8 }) }),
);

function encode(tokens: Token[]): number[] {
  return tokens.flatMap((token): number[] => {
    switch (token.kind) {
      case "data":
        return [token.byte];
      case "escapedIac":
        return [IAC, IAC];
      case "break":
        return [IAC, 0xf3];
      case "option":
        return [IAC, token.verb, token.option];
      case "command":
        return [IAC, token.command];
      case "subnegotiation":
        return [IAC, 0xfa, ...token.payload.flatMap((byte) => (byte === IAC ? [IAC, IAC] : [byte])), IAC, 0xf0];
    }
  });
}

/** The model: RFC 854 read token by token. */
function expected(tokens: Token[]): (number[] | "break")[] {
  const out: (number[] | "break")[] = [];
  for (const token of tokens) {
    if (token.kind === "break") out.push("break");
    else if (token.kind === "data" || token.kind === "escapedIac") {
      const byte = token.kind === "data" ? token.byte : IAC;
      const last = out[out.length - 1];
      if (Array.isArray(last)) last.push(byte);
      else out.push([byte]);
    }
  }
  return out;
}

/** The parser's pieces with neighbouring data pieces merged (where a read ends is not meaningful). */
function merged(pieces: TelnetInput[]): (number[] | "break")[] {
  const out: (number[] | "break")[] = [];
  for (const piece of pieces) {
    if (piece === TELNET_BREAK) out.push("break");
    else {
      const last = out[out.length - 1];
      if (Array.isArray(last)) last.push(...piece);
      else out.push([...piece]);
    }
  }
  return out;
}

describe("telnet input parser", () => {
  it("agrees with RFC 854 read token by token, however the input is cut into reads", () => {
    fc.assert(
      fc.property(fc.array(tokenArb, { maxLength: 40 }), fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 10 }), (tokens, cutPoints) => {
        const stream = Uint8Array.from(encode(tokens));
        const cuts = [...new Set(cutPoints.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
        const parser = new TelnetInputParser(false);
        const pieces: TelnetInput[] = [];
        let from = 0;
        for (const cut of [...cuts, stream.length]) {
          pieces.push(...parser.feed(stream.subarray(from, cut)));
          from = cut;
        }
        for (const piece of pieces) if (piece !== TELNET_BREAK) expect(piece.length).toBeGreaterThan(0);
        expect(merged(pieces)).toEqual(expected(tokens));
      }),
      { numRuns: 500 },
    );
  });

  it("a command cut after its IAC, byte by byte, is still taken out", () => {
    const parser = new TelnetInputParser(false);
    const pieces = [0x61, IAC, 0xfd, 0x01, IAC, 0xf3, IAC, IAC, 0x62].flatMap((byte) => parser.feed(Uint8Array.of(byte)));
    expect(merged(pieces)).toEqual([[0x61], "break", [IAC, 0x62]]);
  });
});

describe("telnet (Debian's client) sharing a shell through chardev-hub", () => {
  it("telnet's `send brk` reaches the frontend as a BREAK, and typed keys arrive one by one with CR alone", async () => {
    const { port } = await telnetServer("t0", ",telnet=on");
    const h = new OrderedHandler();
    reg.attach("t0", h);
    const server = `chardev-hub-telnet-brk-${process.pid}-${Date.now()}`;
    const tmux = (...args: string[]) => spawnSync("tmux", ["-L", server, ...args], { encoding: "utf8" });
    try {
      expect(tmux("new-session", "-d", "-x", "100", "-y", "20", `telnet 127.0.0.1 ${port}`).status).toBe(0);
      await untilOrGiveUp(() => h.isOpen, "telnet to connect");
      tmux("send-keys", "-l", "ab");
      await untilOrGiveUp(() => h.readCount === 2, "the keys to arrive");
      // Ctrl-] is telnet's escape to its command prompt; after one command it goes back to the session.
      tmux("send-keys", "C-]");
      await untilOrGiveUp(() => /telnet> *$/m.test(tmux("capture-pane", "-p").stdout ?? ""), "telnet's prompt");
      tmux("send-keys", "-l", "send brk");
      tmux("send-keys", "Enter");
      await untilOrGiveUp(() => h.log.includes(BREAK), "the BREAK");
      tmux("send-keys", "-l", "c");
      tmux("send-keys", "Enter");
      await untilOrGiveUp(() => h.readCount === 4, "the keys after the BREAK");
      // Binary mode both ways: Enter is CR alone (no CR LF, no CR NUL), so one Enter is one Enter.
      // (Neighbouring reads joined: how keys are cut into reads is not what is tested.)
      const joined = h.log.filter((entry) => entry !== OPENED).reduce<(string | ChrEvent)[]>((out, entry) => {
        if (typeof entry === "string" && typeof out[out.length - 1] === "string") out[out.length - 1] += entry;
        else out.push(entry);
        return out;
      }, []);
      expect(joined).toEqual(["ab", BREAK, "c\r"]);
    } finally {
      tmux("kill-server");
    }
  });

  it("typing `echo` shows the command once and its output once, with no extra Enter (no second prompt)", async () => {
    const port = await freePort();
    const cli = new CliProcess(
      ["-chardev", "spawn,id=sh,cmd=bash,args.0=--norc,args.1=--noprofile,args.2=-i", "-serial", `telnet:127.0.0.1:${port},server=on`],
      { env: { PS1: "tn$ ", HISTFILE: "/dev/null", TERM: "xterm" } },
    );
    // wait=on (QEMU's -chardev default for a server): QEMU's waiting line first.
    await cli.waitForStderr(`QEMU waiting for connection on: disconnected:telnet:127.0.0.1:${port},server=on`);
    const server = `chardev-hub-telnet-${process.pid}-${Date.now()}`;
    const tmux = (...args: string[]) => spawnSync("tmux", ["-L", server, ...args], { encoding: "utf8" });
    try {
      expect(tmux("new-session", "-d", "-x", "120", "-y", "30", `telnet 127.0.0.1 ${port}`).status).toBe(0);
      const screen = () => tmux("capture-pane", "-p").stdout ?? "";
      // capture-pane drops trailing blanks: an empty prompt is "tn$".
      const prompts = () => screen().split("\n").filter((line) => line.startsWith("tn$")).length;
      await untilOrGiveUp(() => /Escape character is/.test(screen()), "telnet to connect");
      await untilOrGiveUp(() => prompts() >= 1, `a prompt (screen: ${screen()})`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const before = prompts();
      tmux("send-keys", "-l", "echo hi-$((6*7))");
      tmux("send-keys", "Enter");
      await untilOrGiveUp(() => /^hi-42\s*$/m.test(screen()) && prompts() >= before + 1, `hi-42 and a new prompt (screen: ${screen()})`);
      // An extra Enter (CR LF, or a local echo's line) would show up as one more prompt.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const lines = screen().split("\n");
      expect(lines.filter((line) => line.includes("echo hi-$((6*7))")).length).toBe(1);
      expect(lines.filter((line) => /^hi-42\s*$/.test(line)).length).toBe(1);
      expect(prompts()).toBe(before + 1);
      expect(lines.filter((line) => line.startsWith("tn$ echo hi-"))).toEqual(["tn$ echo hi-$((6*7))"]);
    } finally {
      tmux("kill-server");
    }
    expect(await cli.stop("SIGINT")).toEqual({ code: 0, signal: null });
  });
});
