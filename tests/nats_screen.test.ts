// `from=screen` on the `nats` chardev and the console's card (device, terminal size), against a
// real `nats-server -js` (tests/_nats.ts): a console hub publishes while a viewer joins with the
// console's screen, and the screen it starts with plus what follows must draw exactly what the
// whole output draws. Runs under Node, Deno and Bun (no server restarts, no refused handshakes).

import xtermHeadless from "@xterm/headless";
import { Kvm } from "@nats-io/kv";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, type Frontend, type HubChardev } from "../host-ts/mod.ts";
import { nodeNats } from "../host-ts/runtime/node_nats.ts";
import { CONSOLE_BUCKET, type ConsoleCard, type NatsConsoleChardev, type NatsViewerChardev } from "../host-ts/chardev/nats.ts";
import { NATS_SCREEN_SCROLLBACK_LINES } from "../host-ts/chardev/_nats_screen.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { startServer, stopAll, until, type NatsServer } from "./_nats.ts";

let server: NatsServer;
let registries: ChardevRegistry[];
let warnings: string[];
let consoleCount = 0;

beforeAll(async () => {
  server = await startServer();
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

const freshName = () => `scr${process.pid}-${++consoleCount}`;

/** A hub (`hubKeys` its extra keys) whose one backend publishes console `name`; the frontend is the device. */
async function consoleHub(name: string, natsKeys = "", hubKeys = ""): Promise<{ reg: ChardevRegistry; fe: Frontend; chardev: NatsConsoleChardev }> {
  const reg = await registry();
  const chardev = (await reg.add(`nats,id=n0,server=${server.url},console=${name}${natsKeys}`)) as NatsConsoleChardev;
  await reg.add(`hub,id=h0,chardevs.0=n0${hubKeys}`);
  const fed = new FeHandler();
  fed.room = 1 << 20;
  return { reg, fe: reg.attach("h0", fed), chardev };
}

/** Writes all of `data`, waiting on the hub's watch whenever it answers EAGAIN. */
async function writeAll(fe: Frontend, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const taken = fe.write(data.subarray(at, at + 4096));
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

/** Numbered lines in colour, with the cursor moved about, as a busy console prints them. */
function busyOutput(count: number, from: number): Uint8Array {
  let text = "";
  for (let i = from; i < from + count; i++) text += `\x1b[3${i % 8}mline ${String(i).padStart(6, "0")}\x1b[0m ${"ab".repeat(i % 17)}\r\n${i % 50 === 0 ? "\x1b[2A\x1b[5Cx\x1b[2B\r" : ""}`;
  return bytes(text);
}

/** The bottom `lines` lines of the buffer `data` draws on a fresh 80x24 terminal. */
async function drawn(data: Uint8Array, lines: number): Promise<string[]> {
  const terminal = new xtermHeadless.Terminal({ cols: 80, rows: 24, scrollback: 1000, allowProposedApi: true });
  await new Promise<void>((resolve) => terminal.write(data, resolve));
  const buffer = terminal.buffer.active;
  const out: string[] = [];
  for (let y = Math.max(0, buffer.length - lines); y < buffer.length; y++) out.push(buffer.getLine(y)!.translateToString(true));
  const cursor = `cursor ${buffer.cursorX},${buffer.cursorY}`;
  terminal.dispose();
  return [...out, cursor];
}

function joined(parts: readonly Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

describe("nats viewer from=screen", () => {
  it("starts with the console's screen as it stands, then its output from exactly there, while the console keeps writing", async () => {
    const name = freshName();
    const source = await consoleHub(name);
    const before = busyOutput(1500, 0);
    await writeAll(source.fe, before);
    await until(() => source.chardev.unackedBytes === 0);
    // The viewer joins while the device goes on writing.
    const during = busyOutput(1500, 1500);
    const writing = writeAll(source.fe, during);
    const watcher = await registry();
    const viewer = (await watcher.add(`nats,id=v0,role=viewer,server=${server.url},console=${name},from=screen`)) as NatsViewerChardev;
    const fe = new FeHandler();
    fe.room = 1 << 24;
    watcher.attach("v0", fe);
    await writing;
    const total = before.length + during.length;
    await until(() => viewer.nextOffset === total);
    const got = fe.readBuf;
    // It begins with the screen (RIS, then the repaint), not with the stream's first byte.
    expect(new TextDecoder().decode(got.subarray(0, 2))).toBe("\x1bc");
    expect(new TextDecoder().decode(got)).not.toContain("line 000000");
    expect(viewer.gaps).toEqual([]);
    expect(warnings).toEqual([]);
    // The screen plus what followed draws what the whole output draws: no byte missing or
    // repeated at the seam (the repaint's scrollback and the screen below it).
    const lines = NATS_SCREEN_SCROLLBACK_LINES + 24;
    expect(await drawn(got, lines)).toEqual(await drawn(joined([before, during]), lines));
  }, 60_000);

  it("gets the screen at the console's terminal size, and a console with screen=off, or none at all, is refused with the reason", async () => {
    const name = freshName();
    const source = await consoleHub(name, "", ",size=manual,cols=100,rows=30");
    await writeAll(source.fe, bytes(`${"x".repeat(90)}\r\n`));
    const watcher = await registry();
    const fe = new FeHandler();
    fe.room = 1 << 20;
    await watcher.add(`nats,id=v0,role=viewer,server=${server.url},console=${name},from=screen`);
    watcher.attach("v0", fe);
    // At 80 columns the 90 x's would wrap; at the console's 100 they are one row.
    await until(() => fe.readCount > 0);
    const terminal = new xtermHeadless.Terminal({ cols: 100, rows: 30, allowProposedApi: true });
    await new Promise<void>((resolve) => terminal.write(fe.readBuf, resolve));
    expect(terminal.buffer.active.getLine(0)!.translateToString(true)).toBe("x".repeat(90));
    terminal.dispose();

    const blind = freshName();
    await consoleHub(blind, ",screen=off");
    expect(await errorOf(() => watcher.add(`nats,id=v1,role=viewer,server=${server.url},console=${blind},from=screen`))).toMatchObject({
      code: "OPEN_FAILED",
      message: `nats: from=screen: console '${blind}' gave no screen: the console keeps no screen (screen=off)`,
    });
    const absent = await errorOf(() => watcher.add(`nats,id=v2,role=viewer,server=${server.url},console=nobody${process.pid},from=screen`));
    expect(absent.code).toBe("OPEN_FAILED");
    expect(absent.message).toMatch(new RegExp(`^nats: from=screen: console 'nobody${process.pid}' did not answer on console\\.nobody${process.pid}\\.screen: `));
    expect(watcher.query().map((info) => info.label)).toEqual(["v0"]);
  }, 60_000);
});

describe("a nats console's card", () => {
  it("names the device and the hub's agreed terminal size, and follows a resize", async () => {
    const name = freshName();
    const source = await consoleHub(name, ",device=ttyS0");
    const client = await nodeNats.connect({ servers: server.url });
    try {
      const bucket = await new Kvm(client).open(CONSOLE_BUCKET);
      /** The card once `ready` holds for it (the console rewrites it when its hub attaches it or resizes). */
      const card = async (console: string, ready: (card: ConsoleCard) => boolean) => {
        for (;;) {
          const entry = await bucket.get(console);
          if (entry && ready(entry.json<ConsoleCard>())) return entry.json<ConsoleCard>();
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      };
      expect(await card(name, (now) => now.cols !== null)).toMatchObject({ console: name, device: "ttyS0", cols: 80, rows: 24, state: "open" });
      (source.reg.get("h0") as HubChardev).resize("n0", 132, 43);
      expect(await card(name, (now) => now.cols !== 80)).toMatchObject({ device: "ttyS0", cols: 132, rows: 43, state: "open" });

      // Without device=, the card names the hub the console is a backend of.
      const other = freshName();
      await consoleHub(other);
      expect(await card(other, (now) => now.device !== null)).toMatchObject({ device: "h0", cols: 80, rows: 24 });
    } finally {
      await client.close();
    }
  }, 30_000);
});
