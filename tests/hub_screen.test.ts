// Screen replay (`replay.N=screen`) and the size policy (`size=latest|smallest|largest|manual`)
// of a ring hub, with real UNIX sockets as the late joiners and a real @xterm/headless as the
// terminal that judges what they got.

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import xtermHeadless from "@xterm/headless";
import xtermSerialize from "@xterm/addon-serialize";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, type HubChardev, type HubEvent } from "../host-ts/mod.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { TERMINAL_PROTOCOL, type WebChardev } from "../host-ts/chardev/web.ts";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, Tab } from "./_web_clients.ts";
import { SwitchChardev, switchDriver } from "./_switch_chardev.ts";
import { hubCommands } from "../host-ts/chardev/hub_qmp.ts";
import { CliProcess } from "./cli/_cli.ts";
import { freePort } from "./_ports.ts";

let reg: ChardevRegistry;
let dir: string;
const sockets: net.Socket[] = [];

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: false });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-screen-"));
});
afterEach(async () => {
  await CliProcess.stopAll();
  for (const socket of sockets.splice(0)) socket.destroy();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Waits (on the event loop, without a clock) until `condition` holds; the test timeout bounds it. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

/** A terminal like the one a late joiner runs, fed `data`; resolves once it has parsed it all. */
async function terminalFedWith(data: Uint8Array, cols = 80, rows = 24) {
  const terminal = new xtermHeadless.Terminal({ cols, rows, scrollback: 1000, allowProposedApi: true });
  const serializer = new xtermSerialize.SerializeAddon();
  terminal.loadAddon(serializer);
  await new Promise<void>((resolve) => terminal.write(data, resolve));
  const screen = {
    everything: serializer.serialize({ scrollback: 1000 }),
    visible: serializer.serialize({ scrollback: 0 }),
    cursor: [terminal.buffer.active.cursorX, terminal.buffer.active.cursorY],
    alternate: terminal.buffer.active.type === "alternate",
    applicationCursorKeys: terminal.modes.applicationCursorKeysMode,
    bracketedPaste: terminal.modes.bracketedPasteMode,
  };
  terminal.dispose();
  return screen;
}

/** A client of a UNIX socket chardev that keeps every byte it receives. */
async function connect(socketPath: string): Promise<{ received: () => Uint8Array; length: () => number }> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  const socket = net.connect({ path: socketPath });
  sockets.push(socket);
  socket.on("data", (chunk: Uint8Array) => {
    chunks.push(new Uint8Array(chunk));
    length += chunk.length;
  });
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return {
    length: () => length,
    received: () => {
      const out = new Uint8Array(length);
      let at = 0;
      for (const chunk of chunks) {
        out.set(chunk, at);
        at += chunk.length;
      }
      return out;
    },
  };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Where `needle` starts in `haystack`, or -1. */
function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** A boot log that scrolls, then a full-screen program's screen over a cleared display. */
function drawnScreen(alternate: boolean): string {
  let text = "";
  for (let i = 1; i <= 60; i++) text += `boot line ${i} \u00e9t\u00e9 ok\r\n`;
  if (alternate) text += "\x1b[?1049h"; // vim, less: the alternate screen
  text += "\x1b[?1h\x1b=\x1b[?2004h"; // application cursor keys and keypad, bracketed paste
  text += "\x1b[H\x1b[2J\x1b[3J"; // `clear`: the earlier output is gone
  text += "\x1b[1;1H\x1b[7m top - 13:37:00 up 1 day \x1b[0m";
  for (let row = 3; row <= 22; row++) text += `\x1b[${row};2H\x1b[3${row % 8}mprocess ${row} \u2502 ${row * 7}%\x1b[0m`;
  text += "\x1b[4;21r"; // a scroll region, as top and vim keep one
  text += "\x1b[10;5H";
  return text;
}

/** Numbered lines in the scroll region after the snapshot: any byte missing or repeated shows. */
function numberedLines(from: number, count: number): string {
  let text = "";
  for (let i = from; i < from + count; i++) text += `later ${String(i).padStart(4, "0")}\r\n`;
  return text;
}

describe("screen replay", () => {
  for (const alternate of [false, true]) {
    it(`a late backend gets exactly the current screen${alternate ? " (alternate screen)" : ""}, then every later byte once`, async () => {
      const sockPath = path.join(dir, "late.sock");
      await reg.add(`socket,id=late,path=${sockPath},server=on,wait=off`);
      const hub = (await reg.add("hub,id=hub0,chardevs.0=late,ring=65536,replay.0=screen")) as HubChardev;
      const fe = reg.attach("hub0", new FeHandler());
      const before = bytes(drawnScreen(alternate));
      // Written in pieces cut anywhere, a UTF-8 character and escape sequences included.
      for (let at = 0; at < before.length; at += 97) fe.write(before.subarray(at, at + 97));
      const opened = new Promise<void>((resolve) => hub.onEvent((event: HubEvent) => event.type === "open" && resolve()));
      const client = await connect(sockPath);
      await opened;
      // Written at once after the join, before the emulator could have parsed what came before.
      const marker = bytes("\x1b]2;after the join\x07");
      const after: Uint8Array[] = [marker];
      for (let part = 0; part < 8; part++) {
        const piece = bytes(numberedLines(part * 10, 10));
        expect(fe.write(piece)).toBe(piece.length);
        after.push(piece);
        if (part % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      fe.write(marker);
      after.splice(0, 1);
      const later = concat(...after, marker);
      // The client got a repaint, then exactly the bytes written after it joined.
      await until(() => indexOf(client.received(), marker) >= 0);
      const received = client.received();
      const laterStart = indexOf(received, bytes("later 0000"));
      expect(laterStart).toBeGreaterThan(0);
      const repaint = received.subarray(0, laterStart);
      expect(received.subarray(laterStart)).toEqual(later);
      // The repaint has none of the later bytes in it, and is not the raw history either.
      expect(indexOf(repaint, bytes("later"))).toBe(-1);
      // (`clear` took the boot log from the normal screen; under the alternate one it stays.)
      if (alternate) expect(indexOf(repaint, bytes("boot line 1 "))).toBeGreaterThan(0);
      else expect(indexOf(repaint, bytes("boot line 1 "))).toBe(-1);
      // A terminal fed the repaint and the rest shows what one fed the whole stream shows.
      const whole = await terminalFedWith(concat(before, later));
      const late = await terminalFedWith(received);
      expect(late.visible).toBe(whole.visible);
      expect(late.everything).toBe(whole.everything);
      expect(late.cursor).toEqual(whole.cursor);
      expect(late.alternate).toBe(alternate);
      expect(late.applicationCursorKeys).toBe(true);
      expect(late.bracketedPaste).toBe(true);
      // And the screen at the join really was the drawn one, scroll region and all.
      expect(late.visible).toContain("later 0079");
      expect(whole.visible).toContain("top - 13:37:00");
    });
  }

  it("a backend that joins while the device is silent gets the screen at once", async () => {
    const sockPath = path.join(dir, "quiet.sock");
    await reg.add(`socket,id=quiet,path=${sockPath},server=on,wait=off`);
    await reg.add("hub,id=hub0,chardevs.0=quiet,ring=65536,replay.0=screen");
    const fe = reg.attach("hub0", new FeHandler());
    const drawn = bytes(drawnScreen(false));
    fe.write(drawn);
    const client = await connect(sockPath);
    const whole = await terminalFedWith(drawn);
    // No byte is written after the join: the repaint alone must make the same screen.
    await until(() => client.length() > 0);
    let seen = -1;
    while (seen !== client.length()) {
      seen = client.length();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const late = await terminalFedWith(client.received());
    expect(late.everything).toBe(whole.everything);
    expect(late.cursor).toEqual(whole.cursor);
  });

  it("a backend that joins inside an escape sequence starts after it, with the screen it made", async () => {
    const sockPath = path.join(dir, "mid.sock");
    await reg.add(`socket,id=mid,path=${sockPath},server=on,wait=off`);
    const hub = (await reg.add("hub,id=hub0,chardevs.0=mid,ring=65536,replay.0=screen")) as HubChardev;
    const fe = reg.attach("hub0", new FeHandler());
    const before = concat(bytes(drawnScreen(false)), bytes("\x1b[1")); // half a CSI
    fe.write(before);
    const opened = new Promise<void>((resolve) => hub.onEvent((event: HubEvent) => event.type === "open" && resolve()));
    const client = await connect(sockPath);
    await opened;
    const rest = bytes(`2;7H${numberedLines(0, 5)}\x1b]2;end\x07`);
    fe.write(rest);
    await until(() => indexOf(client.received(), bytes("\x1b]2;end\x07")) >= 0);
    const received = client.received();
    // It never sees the sequence's tail alone ("2;7H" printed as text)...
    const start = indexOf(received, bytes("later 0000"));
    expect(start).toBeGreaterThan(0);
    expect(received.subarray(start)).toEqual(rest.subarray(4));
    // ...and its screen is the one the whole stream made.
    const whole = await terminalFedWith(concat(before, rest));
    const late = await terminalFedWith(received);
    expect(late.everything).toBe(whole.everything);
  });

  it("a new browser tab starts with the screen, and every tab of the listener gets its own", async () => {
    const web = (await reg.add("web,id=web0,port=0,token=SECRET,max-clients=4")) as WebChardev;
    await reg.add("hub,id=hub0,ring=65536,chardevs.0=web0,replay.0=screen");
    const fe = reg.attach("hub0", new FeHandler());
    const drawn = bytes(drawnScreen(true));
    fe.write(drawn);
    const url = `${web.baseUrl.replace(/^http/, "ws")}ws?token=SECRET`;
    const whole = await terminalFedWith(drawn);
    for (let tabs = 0; tabs < 2; tabs++) {
      const tab = await Tab.open(url, { protocol: TERMINAL_PROTOCOL });
      try {
        await until(() => tab.receivedBytes > 0);
        const marker = bytes(`\x1b]2;tab ${tabs}\x07`);
        fe.write(marker);
        await until(() => indexOf(new Uint8Array(Buffer.concat(tab.received)), marker) >= 0);
        const received = new Uint8Array(Buffer.concat(tab.received));
        // The repaint, then the marker and nothing else: the tab never got the raw history.
        expect(indexOf(received, marker)).toBe(received.length - marker.length);
        const late = await terminalFedWith(received.subarray(0, received.length - marker.length));
        expect(late.everything).toBe(whole.everything);
        expect(late.alternate).toBe(true);
      } finally {
        await tab.close();
      }
    }
  });

  it("a late browser tab (Chromium) shows the screen a program drew before it opened", async () => {
    const web = (await reg.add("web,id=web0,port=0,token=SECRET,max-clients=4")) as WebChardev;
    await reg.add("hub,id=hub0,ring=65536,chardevs.0=web0,replay.0=screen");
    const fe = reg.attach("hub0", new FeHandler());
    // A boot log, cleared, then a menu drawn with cursor moves: raw replay would show the log.
    let boot = "";
    for (let i = 0; i < 40; i++) boot += `boot message ${i}\r\n`;
    fe.write(bytes(`${boot}\x1b[H\x1b[2J\x1b[3J\x1b[2;5H\x1b[1mGNU GRUB menu\x1b[0m\x1b[4;5H\x1b[7m*Debian GNU/Linux\x1b[0m\x1b[5;6HAdvanced options\x1b[8;1H`));
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 800, height: 480 } });
      await page.goto(web.url);
      await page.waitForFunction(() => (document.querySelector(".xterm-rows")?.textContent ?? "").includes("Advanced options"));
      const rows = await page.evaluate(() =>
        Array.from(document.querySelectorAll(".xterm-rows > div"), (row) => (row.textContent ?? "").replace(/\u00a0/g, " ").trimEnd()),
      );
      expect(rows.slice(0, 6)).toEqual(["", "    GNU GRUB menu", "", "    *Debian GNU/Linux", "     Advanced options", ""]);
      expect(rows.join("\n")).not.toContain("boot message");
      // And it goes on live from there.
      fe.write(bytes("grub> "));
      await page.waitForFunction(() => (document.querySelector(".xterm-rows")?.textContent ?? "").includes("grub>"));
      const after = await page.evaluate(() => (document.querySelectorAll(".xterm-rows > div")[7]?.textContent ?? "").replace(/\u00a0/g, " ").trimEnd());
      expect(after).toBe("grub>");
      await page.close();
    } finally {
      await browser.close();
    }
  });

  it("a backend that takes its repaint a few bytes at a time (EAGAIN between) gets it whole, then the stream", async () => {
    reg.registerDriver(switchDriver);
    const slow = (await reg.add("switch,id=slow")) as SwitchChardev;
    slow.takes = 50;
    const hub = (await reg.add("hub,id=hub0,chardevs.0=slow,ring=65536,replay.0=screen")) as HubChardev;
    const fe = reg.attach("hub0", new FeHandler());
    const drawn = bytes(drawnScreen(false));
    fe.write(drawn);
    await hub.screenParsed();
    slow.stalled = true; // its first write is refused outright: it waits on its watch
    slow.open();
    const later = bytes(numberedLines(0, 30));
    fe.write(later);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(slow.bytes).toBe(0);
    // As a socket that drains: its watch fires again and again (it takes 50 bytes a write).
    await until(() => {
      slow.resume();
      return indexOf(slow.receivedBytes, bytes("later 0029\r\n")) >= 0;
    });
    const received = slow.receivedBytes;
    const start = indexOf(received, bytes("later 0000"));
    expect(received.subarray(start)).toEqual(later);
    expect(slow.writes).toBeGreaterThan(received.length / 50 - 1); // it really came 50 bytes at a time
    const whole = await terminalFedWith(concat(drawn, later));
    expect((await terminalFedWith(received)).everything).toBe(whole.everything);
  });

  it("a screen backend hot-plugged with QMP hub-attach (replay \"screen\") gets the screen drawn before it was attached", async () => {
    reg.registerDriver(switchDriver);
    await reg.add("null,id=first");
    await reg.add("hub,id=hub0,chardevs.0=first,ring=65536");
    const fe = reg.attach("hub0", new FeHandler());
    const drawn = bytes(drawnScreen(true));
    fe.write(drawn);
    const late = (await reg.add("switch,id=late")) as SwitchChardev;
    const attach = new Map(hubCommands(reg)).get("hub-attach")!;
    expect(() => attach({ hub: "hub0", chardev: "late", replay: "screens" })).toThrow();
    await attach({ hub: "hub0", chardev: "late", replay: "screen" });
    late.open();
    await until(() => late.bytes > 0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The emulator, made at the attach, read the ring's history: the screen is the whole one.
    expect((await terminalFedWith(late.receivedBytes)).everything).toBe((await terminalFedWith(drawn)).everything);
  });

  it("a backend that leaves before its repaint went out holds nothing back", async () => {
    reg.registerDriver(switchDriver);
    const [gone, stays] = [(await reg.add("switch,id=gone")) as SwitchChardev, (await reg.add("switch,id=stays")) as SwitchChardev];
    const hub = (await reg.add("hub,id=hub0,chardevs.0=gone,chardevs.1=stays,ring=4096,replay.0=screen")) as HubChardev;
    stays.open();
    const fe = reg.attach("hub0", new FeHandler());
    fe.write(bytes(drawnScreen(false)));
    gone.stalled = true;
    gone.open();
    hub.detachBackend("gone");
    // More than the ring holds goes through to the one that stayed: nobody waits for the leaver.
    const more = bytes(numberedLines(0, 400));
    let written = 0;
    while (written < more.length) {
      const taken = fe.write(more.subarray(written));
      if (taken > 0) written += taken;
      else await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await until(() => indexOf(stays.receivedBytes, bytes("later 0399")) >= 0);
    expect(gone.bytes).toBe(0);
    await hub.screenParsed();
  });

  it("an evict backend stalled on its repaint is evicted after stall-ms, and the writer goes on", async () => {
    reg.registerDriver(switchDriver);
    const stuck = (await reg.add("switch,id=stuck")) as SwitchChardev;
    const hub = (await reg.add("hub,id=hub0,chardevs.0=stuck,ring=4096,replay.0=screen,policy.0=evict,stall-ms.0=50")) as HubChardev;
    const fe = reg.attach("hub0", new FeHandler());
    fe.write(bytes(drawnScreen(false).slice(-1000)));
    await hub.screenParsed();
    stuck.stalled = true;
    const evicted = new Promise<HubEvent>((resolve) => hub.onEvent((event) => event.type === "evict" && resolve(event)));
    stuck.open();
    expect(await evicted).toEqual({ type: "evict", backend: "stuck", reason: "stalled for more than 50 ms" });
    // Nothing holds the ring now: more than it holds goes in.
    const more = bytes(numberedLines(0, 200));
    let written = 0;
    while (written < more.length) {
      const taken = fe.write(more.subarray(written));
      if (taken > 0) written += taken;
      else await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(written).toBe(more.length);
    expect(stuck.bytes).toBe(0);
  });

  it("a device far faster than the emulator is never held back by it; the screen is right again after a redraw", async () => {
    reg.registerDriver(switchDriver);
    const fast = (await reg.add("switch,id=fast")) as SwitchChardev;
    fast.countOnly = true;
    const sockPath = path.join(dir, "viewer.sock");
    await reg.add(`socket,id=viewer,path=${sockPath},server=on,wait=off`);
    const hub = (await reg.add("hub,id=hub0,chardevs.0=fast,chardevs.1=viewer,ring=65536,policy.0=block,replay.1=screen")) as HubChardev;
    fast.open();
    const fe = reg.attach("hub0", new FeHandler());
    // 4 MiB, yielding only to microtasks (the ring's drain runs there; xterm.js parses in
    // timers): a writer that waited for the emulator would never get through.
    const flood = bytes(numberedLines(0, 1000));
    let written = 0;
    let idle = 0;
    while (written < 4 << 20) {
      const taken = fe.write(flood.subarray(written % flood.length));
      if (taken > 0) {
        written += taken;
        idle = 0;
      } else {
        expect(++idle, "the writer is held back").toBeLessThan(1000);
        await Promise.resolve();
      }
    }
    // The program redraws its whole screen: from here the screen is exact again.
    const redraw = bytes("\x1b[H\x1b[2J" + drawnScreen(false).slice(drawnScreen(false).indexOf("\x1b[1;1H")));
    for (let at = 0; at < redraw.length; ) {
      const taken = fe.write(redraw.subarray(at));
      if (taken > 0) at += taken;
      else await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await hub.screenParsed();
    const client = await connect(sockPath);
    await until(() => client.length() > 0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const late = await terminalFedWith(client.received());
    expect(late.visible).toBe((await terminalFedWith(redraw)).visible);
    expect(late.visible).toContain("top - 13:37:00");
  });

  it("replay=screen is refused without a ring, and bad values with the hub's text", async () => {
    await reg.add("null,id=n0");
    expect((await errorOf(() => reg.add("hub,id=hub0,chardevs.0=n0,replay.0=screen"))).message).toBe("hub: replay of chardev 'n0' needs a ring (ring=BYTES)");
    expect((await errorOf(() => reg.add("hub,id=hub0,chardevs.0=n0,ring=4096,replay.0=screens"))).message).toContain("replay.0");
    await reg.add("hub,id=hub0,chardevs.0=n0,ring=4096,replay.0=screen:100");
  });
});

describe("size policy", () => {
  async function hubOfTwo(options: string): Promise<HubChardev> {
    await reg.add("null,id=tab1");
    await reg.add("null,id=tab2");
    return (await reg.add(`hub,id=hub0,chardevs.0=tab1,chardevs.1=tab2,ring=4096${options}`)) as HubChardev;
  }

  it("two backends of different sizes under size=smallest give the device the smaller of each", async () => {
    const hub = await hubOfTwo(",size=smallest");
    const told: string[] = [];
    hub.onSize(({ cols, rows }) => told.push(`${cols}x${rows}`));
    expect(hub.terminalSize).toEqual({ cols: 80, rows: 24 });
    hub.resize("tab1", 120, 40);
    hub.resize("tab2", 100, 50);
    expect(hub.terminalSize).toEqual({ cols: 100, rows: 40 });
    hub.resize("tab2", 130, 50); // tab1 is the smaller in both now
    expect(told).toEqual(["120x40", "100x40", "120x40"]);
    const query = new Map(hubCommands(reg)).get("query-hub")!;
    expect(((await query({ id: "hub0" })) as { size: unknown }).size).toEqual({ policy: "smallest", cols: 120, rows: 40 });
  });

  it("size=largest takes the larger, size=latest the last to resize, until it leaves", async () => {
    const largest = await hubOfTwo(",size=largest");
    largest.resize("tab1", 120, 40);
    largest.resize("tab2", 100, 50);
    expect(largest.terminalSize).toEqual({ cols: 120, rows: 50 });
    await reg.remove("hub0");
    await reg.remove("tab1");
    await reg.remove("tab2");
    const latest = await hubOfTwo("");
    latest.resize("tab1", 120, 40);
    latest.resize("tab2", 100, 50);
    expect(latest.terminalSize).toEqual({ cols: 100, rows: 50 });
    latest.detachBackend("tab2");
    expect(latest.terminalSize).toEqual({ cols: 120, rows: 40 });
  });

  it("a read-only backend never resizes, and size=manual keeps cols and rows", async () => {
    const hub = await hubOfTwo(",mode.1=ro");
    const told: string[] = [];
    hub.onSize(({ cols, rows }) => told.push(`${cols}x${rows}`));
    hub.resize("tab2", 20, 10);
    expect(hub.terminalSize).toEqual({ cols: 80, rows: 24 });
    hub.resize("tab1", 90, 30);
    hub.resize("tab2", 20, 10);
    expect(told).toEqual(["90x30"]);
    await reg.remove("hub0");
    const manual = (await reg.add("hub,id=hub1,chardevs.0=tab1,ring=4096,size=manual,cols=132,rows=43")) as HubChardev;
    manual.resize("tab1", 90, 30);
    expect(manual.terminalSize).toEqual({ cols: 132, rows: 43 });
    expect((await errorOf(() => reg.add("hub,id=hub2,chardevs.0=tab2,size=biggest"))).message).toBe("hub: 'size' must be latest, smallest, largest, manual, not 'biggest'");
  });

  it("the command gives a spawned program the smaller of two tabs under size=smallest; a view-only tab's size is ignored", async () => {
    const port = await freePort();
    // The program says its window size (stty) whenever it changes.
    const script = "trap 'echo; echo size $(stty size)' WINCH; echo ready; while :; do sleep 0.05; done";
    const cli = new CliProcess([
      "-chardev", `spawn,id=sh,cmd=sh,args.0=-c,args.1=${script.replaceAll(",", ",,")}`,
      "-chardev", `web,id=web0,port=${port},token=SECRET,ro-token=VIEW,max-clients=4`,
      "-chardev", "hub,id=h,ring=65536,chardevs.0=web0,size=smallest",
      "-frontend", "sh,chardev=h",
    ]);
    cli.child.stdin.end();
    const url = (token: string) => `ws://127.0.0.1:${port}/ws?token=${token}`;
    let first: Tab | null = null;
    while (!first) {
      first = await Tab.open(url("SECRET"), { protocol: TERMINAL_PROTOCOL }).catch(() => null);
      if (!first && cli.ended) throw new Error(`chardev-hub ended: ${cli.stderr}`);
      if (!first) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const second = await Tab.open(url("SECRET"), { protocol: TERMINAL_PROTOCOL });
    const viewer = await Tab.open(url("VIEW"), { protocol: TERMINAL_PROTOCOL });
    try {
      const sizes = () => [...first!.text().matchAll(/size (\d+) (\d+)/g)].map((match) => `${match[2]}x${match[1]}`);
      first.socket.send(JSON.stringify({ type: "resize", cols: 120, rows: 40 }));
      await until(() => sizes().includes("120x40"));
      second.socket.send(JSON.stringify({ type: "resize", cols: 100, rows: 50 }));
      await until(() => sizes().includes("100x40"));
      viewer.socket.send(JSON.stringify({ type: "resize", cols: 30, rows: 10 }));
      second.socket.send(JSON.stringify({ type: "resize", cols: 90, rows: 50 }));
      await until(() => sizes().includes("90x40"));
      // The viewer's 30x10 never reached the program, and every size it got was the smaller of each.
      expect(sizes()).toEqual(["120x40", "100x40", "90x40"]);
    } finally {
      for (const tab of [first, second, viewer]) tab.socket.terminate();
      await cli.stop("SIGTERM");
    }
  });

  it("the screen emulator follows the agreed size: a late backend's repaint is drawn at it", async () => {
    const sockPath = path.join(dir, "sized.sock");
    await reg.add("null,id=tab1");
    await reg.add(`socket,id=late,path=${sockPath},server=on,wait=off`);
    const hub = (await reg.add("hub,id=hub0,chardevs.0=tab1,chardevs.1=late,ring=65536,replay.1=screen,mode.1=ro")) as HubChardev;
    const fe = reg.attach("hub0", new FeHandler());
    fe.write(bytes("at 80 columns\r\n"));
    hub.resize("tab1", 40, 10);
    // A program redraws for 40x10: a line that only fits at 40 columns, at the bottom row.
    const redraw = bytes(`\x1b[H\x1b[2J\x1b[10;1H${"x".repeat(39)}|`);
    fe.write(redraw);
    const client = await connect(sockPath);
    await until(() => client.length() > 0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const late = await terminalFedWith(client.received(), 40, 10);
    const whole = await terminalFedWith(redraw, 40, 10);
    expect(late.visible).toBe(whole.visible);
    expect(late.cursor).toEqual(whole.cursor);
    expect(late.visible).toContain(`${"x".repeat(39)}|`);
  });
});
