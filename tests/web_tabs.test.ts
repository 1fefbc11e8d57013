// Browser tabs as hub backends of their own (issue 13): a `web` chardev with max-clients > 1
// held by a hub (outside qemuCompat) hands every tab to the hub, which takes it with the
// per-backend options given for the web chardev. Plain WebSocket clients play the tabs; QMP
// runs on a real UNIX socket; the last test drives the real page in headless Chromium
// (/usr/bin/chromium, Debian's `chromium`).

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent, type Frontend } from "../host-ts/mod.ts";
import { TERMINAL_PROTOCOL, WebChardev, WebCloseCode } from "../host-ts/chardev/web.ts";
import type { HubBackendStats, HubChardev, HubEvent } from "../host-ts/chardev/hub.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { connectClient } from "./qmp/_clients.ts";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, Tab, until, upgradeStatus } from "./_web_clients.ts";

const SECRET = "typing-secret-for-tests";
const VIEW_SECRET = "viewing-secret-for-tests";

let reg: ChardevRegistry;
let dir: string;
let cleanups: (() => unknown)[];

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: () => {} });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-web-tabs-"));
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups) await cleanup();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A web chardev `web0` (more keys in `webKeys`) in ring hub `hub0` (more keys in `hubKeys`), with a frontend. */
async function tabsOnRingHub(webKeys = "", hubKeys = ""): Promise<{ web: WebChardev; hub: HubChardev; fe: FeHandler; frontend: Frontend }> {
  const web = (await reg.add(`web,id=web0,port=0,token=${SECRET},ro-token=${VIEW_SECRET}${webKeys}`)) as WebChardev;
  await reg.add(`hub,id=hub0,ring=65536,chardevs.0=web0${hubKeys}`);
  const fe = new FeHandler();
  const frontend = reg.attach("hub0", fe);
  return { web, hub: reg.hub("hub0"), fe, frontend };
}

const socketUrl = (web: WebChardev, secret = SECRET) => `${web.baseUrl.replace(/^http/, "ws")}ws?token=${secret}`;

async function openTab(web: WebChardev, secret = SECRET, protocol?: string): Promise<Tab> {
  const tab = await Tab.open(socketUrl(web, secret), { protocol });
  cleanups.push(() => tab.socket.terminate());
  return tab;
}

/**
 * The addresses this machine's open connections to 127.0.0.1:`serverPort` come from, as the
 * kernel lists them (/proc/net/tcp, ESTABLISHED): the tabs' ends, which the server sees as
 * their peers. (Bun's WebSocket client does not show its socket, so the test asks the kernel.)
 */
function clientAddressesOf(serverPort: number): string[] {
  const hexPort = serverPort.toString(16).toUpperCase().padStart(4, "0");
  return fs
    .readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[2] === `0100007F:${hexPort}` && fields[3] === "01")
    .map((fields) => `127.0.0.1:${parseInt(fields[1].split(":")[1], 16)}`)
    .sort();
}

/** The hub's row of backend `id`. */
function row(hub: HubChardev, id: string): HubBackendStats {
  const found = hub.stats().find((candidate) => candidate.id === id);
  if (!found) throw new Error(`no row '${id}' in ${JSON.stringify(hub.stats().map((r) => r.id))}`);
  return found;
}

/** Writes all of `data` through the frontend, waiting a turn whenever the ring is full. */
async function writeAll(frontend: Frontend, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const taken = frontend.write(data.subarray(offset));
    if (taken > 0) offset += taken;
    else await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

describe("web tabs as hub backends of their own", () => {
  it("three tabs on a ring hub are three backends, each with its peer, uid and since in hub.stats() and QMP query-hub; the fourth is refused with 503", async () => {
    const { web, hub, fe, frontend } = await tabsOnRingHub(",max-clients=3");
    expect(web.handsOutTabs, "the hub took the web chardev as a listener").toBe(true);
    const before = Date.now();
    const tabs = [await openTab(web), await openTab(web), await openTab(web)];
    const after = Date.now();
    await until(() => hub.stats().filter((r) => r.listener === "web0").length === 3);

    const rows = hub.stats();
    expect(rows.map((r) => r.id)).toEqual(["web0", "web0#1", "web0#2", "web0#3"]);
    expect(rows[0]).toEqual(expect.objectContaining({ id: "web0", open: false, clients: 3, bytesOut: 0 }));
    const clientAddresses = clientAddressesOf(web.port);
    expect(clientAddresses).toHaveLength(3);
    expect(rows.slice(1).map((client) => client.peer).sort(), "each tab's peer is its own connection's far end").toEqual(clientAddresses);
    rows.slice(1).forEach((client) => {
      expect(client).toEqual(expect.objectContaining({ open: true, mode: "rw", listener: "web0", uid: process.getuid!() }));
      expect(client.since).toBeGreaterThanOrEqual(before);
      expect(client.since).toBeLessThanOrEqual(after);
    });
    expect(fe.events, "the first tab opened the hub").toEqual([ChrEvent.OPENED]);

    expect(await upgradeStatus(socketUrl(web)), "max-clients=3 tabs are connected").toBe(503);
    expect(web.refusals.tooManyClients).toBe(1);

    await writeAll(frontend, bytes("to every tab"));
    await until(() => tabs.every((tab) => tab.receivedBytes === 12));
    expect(tabs.map((tab) => tab.text())).toEqual(["to every tab", "to every tab", "to every tab"]);
    tabs[1].socket.send(bytes("typed in the second tab"));
    await until(() => fe.readCount === 23);
    expect(fe.take()).toBe("typed in the second tab");
    await until(() => row(hub, "web0#2").bytesIn === 23);
    expect(row(hub, "web0#1").bytesIn).toBe(0);

    const qmp = await connectClient(reg, "unix", dir);
    cleanups.push(() => qmp.close());
    await qmp.negotiate();
    const answer = (await qmp.execute("query-hub", { id: "hub0" })) as { return: { backends: Record<string, unknown>[] } };
    const backends = answer.return.backends;
    expect(backends.map((backend) => backend.id)).toEqual(["web0", "web0#1", "web0#2", "web0#3"]);
    backends.slice(1).forEach((backend, index) => {
      expect(backend).toEqual(expect.objectContaining({ listener: "web0", peer: rows[index + 1].peer, uid: process.getuid!(), "bytes-out": 12 }));
      const since = Date.parse(backend.since as string);
      expect(since).toBeGreaterThanOrEqual(before);
      expect(since).toBeLessThanOrEqual(after);
    });

    // A tab that leaves is gone from the hub; the others stay.
    await tabs[0].close();
    await until(() => hub.stats().length === 3);
    expect(hub.stats().map((r) => r.id)).toEqual(["web0", "web0#2", "web0#3"]);
    expect(web.clientCount).toBe(2);
    expect(fe.events, "two tabs still keep the hub open").toEqual([ChrEvent.OPENED]);
    // One tab detached by id (QMP hub-detach) is closed, told why; the last one stays.
    const closed = new Promise<{ code: number; reason: string }>((resolve) => tabs[1].socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    expect(await qmp.execute("hub-detach", { hub: "hub0", chardev: "web0#2" })).toEqual({ return: {} });
    expect(await closed).toEqual({ code: WebCloseCode.GOING_AWAY, reason: "detached from the hub" });
    await until(() => web.clientCount === 1);
    expect(hub.stats().map((r) => r.id)).toEqual(["web0", "web0#3"]);
    await writeAll(frontend, bytes("!"));
    await until(() => tabs[2].receivedBytes === 13);
    expect(tabs[2].text()).toBe("to every tab!");
  });

  it("a stalled tab with policy=drop gets gaps that end at line starts while the other tabs keep streaming every byte", async () => {
    const { web, hub, frontend } = await tabsOnRingHub(",queue-limit=16k", ",policy.0=drop,lag-limit.0=32768");
    const healthy = [await openTab(web), await openTab(web)];
    const stalled = await openTab(web);
    await until(() => web.clientCount === 3 && hub.stats().length === 4);
    const gaps: HubEvent[] = [];
    hub.onEvent((event) => {
      if (event.type === "gap") gaps.push(event);
    });
    // The stalled tab stops reading: the kernel's buffers fill, then its queue, then it lags in the ring.
    stalled.socket.pause();

    let line = 0;
    let written = 0;
    // Far past lag-limit and the ring: the hub skips it ahead when it is served next.
    while (row(hub, "web0#3").lag <= 4 * 65536) {
      expect(written, "the stalled tab misses output long before this").toBeLessThan(256 * 1024 * 1024);
      // Well under lag-limit: a healthy tab that reads every chunk before the next never lags past it.
      let chunk = "";
      while (chunk.length < 8192) chunk += `line ${line++}\n`;
      await writeAll(frontend, bytes(chunk));
      written += chunk.length;
      // The healthy tabs read everything before the next write: they never lag.
      await until(() => healthy.every((tab) => tab.receivedBytes === written));
    }
    stalled.socket.resume();
    const end = `line ${line++} the end\n`;
    await writeAll(frontend, bytes(end));
    written += end.length;
    await until(() => healthy.every((tab) => tab.receivedBytes === written) && stalled.text().endsWith(end));
    expect(gaps.length).toBeGreaterThan(0);
    expect(gaps.every((gap) => gap.backend === "web0#3"), "only the stalled tab missed anything").toBe(true);

    const expected = Array.from({ length: line - 1 }, (_, n) => `line ${n}\n`).join("") + end;
    for (const tab of healthy) expect(tab.text(), "a healthy tab got every byte").toBe(expected);
    // What the stalled tab got: the stream with pieces missing, each gap ending at a line start
    // (it may begin inside a line the tab had taken part of).
    const pieces = stalled.text().split(/(?<=\n)|(?=line \d)/);
    let previous = -1;
    let gapsSeen = 0;
    const wrong: string[] = [];
    pieces.forEach((piece, index) => {
      const whole = /^line (\d+)( the end)?\n$/.exec(piece);
      if (whole) {
        const number = Number(whole[1]);
        if (number <= previous) wrong.push(`line ${number} after line ${previous}`);
        if (number !== previous + 1) gapsSeen++;
        previous = number;
        return;
      }
      // A line cut short by a gap: the start of the next line, then a skip ahead.
      const next = /^line (\d+)/.exec(pieces[index + 1] ?? "");
      const cutThenSkip = `line ${previous + 1}\n`.startsWith(piece) && next !== null && Number(next[1]) > previous + 1;
      if (!cutThenSkip) wrong.push(`piece ${JSON.stringify(piece.slice(0, 40))} after line ${previous}`);
    });
    expect(wrong.slice(0, 3), "every gap ends at a line start").toEqual([]);
    expect(previous, "the stalled tab got the end").toBe(line - 1);
    expect(gapsSeen).toBeGreaterThan(0);
    const missed = written - stalled.receivedBytes;
    expect(row(hub, "web0#3").bytesDropped, "the hub counted exactly what the tab missed").toBe(missed);
    expect(gaps.reduce((sum, gap) => sum + (gap as { bytes: number }).bytes, 0)).toBe(missed);
    expect(row(hub, "web0#1").bytesDropped).toBe(0);
    expect(row(hub, "web0#2").bytesDropped).toBe(0);
  });

  it("a view-only tab's input is discarded and counted on its own row, and its resizes are ignored", async () => {
    const { web, hub, fe } = await tabsOnRingHub();
    const sizes: [number, number, string][] = [];
    web.onResize((cols, rows, backendId) => sizes.push([cols, rows, backendId]));
    const viewer = await openTab(web, VIEW_SECRET, TERMINAL_PROTOCOL);
    const typist = await openTab(web, SECRET, TERMINAL_PROTOCOL);
    await until(() => viewer.controls.length === 1 && typist.controls.length === 1);
    expect(viewer.controls).toEqual([{ type: "hello", readOnly: true }]);

    viewer.socket.send(bytes("rm -rf /\r"));
    viewer.socket.send(JSON.stringify({ type: "resize", cols: 300, rows: 100 }));
    typist.socket.send(JSON.stringify({ type: "resize", cols: 100, rows: 30 }));
    typist.socket.send(bytes("ls\r"));
    await until(() => fe.readCount === 3 && row(hub, "web0#1").inputDiscarded === 9);
    expect(fe.take()).toBe("ls\r");
    expect(row(hub, "web0#1")).toEqual(expect.objectContaining({ mode: "ro", bytesIn: 9, inputDiscarded: 9, listener: "web0" }));
    expect(row(hub, "web0#2")).toEqual(expect.objectContaining({ mode: "rw", bytesIn: 3, inputDiscarded: 0, listener: "web0" }));
    expect(sizes, "only the typing tab's size, as its own backend's").toEqual([[100, 30, "web0#2"]]);
    expect(web.refusals).toEqual(expect.objectContaining({ readOnlyInputBytes: 9, readOnlyResizes: 1 }));
  });

  it("a tab that joins late gets the last replay bytes, then the live output with nothing missing or repeated", async () => {
    const { web, fe, frontend } = await tabsOnRingHub("", ",replay.0=16");
    const early = await openTab(web);
    await until(() => fe.events.length === 1);
    await writeAll(frontend, bytes("line 01\nline 02\nline 03\nline 04\n"));
    await until(() => early.receivedBytes === 32);

    const late = await openTab(web, SECRET, TERMINAL_PROTOCOL);
    await until(() => late.receivedBytes === 16);
    expect(late.controls, "the page hears its mode before the replay").toEqual([{ type: "hello", readOnly: false }]);
    expect(late.text()).toBe("line 03\nline 04\n");
    await writeAll(frontend, bytes("line 05\n"));
    await until(() => late.receivedBytes === 24 && early.receivedBytes === 40);
    expect(late.text()).toBe("line 03\nline 04\nline 05\n");
    expect(early.text()).toBe("line 01\nline 02\nline 03\nline 04\nline 05\n");
  });

  it("under size=smallest two typing tabs of different sizes give the hub the smaller; a view-only tab's size never counts", async () => {
    const { web, hub } = await tabsOnRingHub("", ",size=smallest");
    web.onResize((cols, rows, backendId) => hub.resize(backendId, cols, rows));
    const wide = await openTab(web, SECRET, TERMINAL_PROTOCOL);
    const narrow = await openTab(web, SECRET, TERMINAL_PROTOCOL);
    const viewer = await openTab(web, VIEW_SECRET, TERMINAL_PROTOCOL);
    await until(() => [wide, narrow, viewer].every((tab) => tab.controls.length === 1));
    wide.socket.send(JSON.stringify({ type: "resize", cols: 160, rows: 40 }));
    narrow.socket.send(JSON.stringify({ type: "resize", cols: 100, rows: 50 }));
    viewer.socket.send(JSON.stringify({ type: "resize", cols: 20, rows: 10 }));
    await until(() => hub.terminalSize.cols === 100 && web.refusals.readOnlyResizes === 1);
    expect(hub.terminalSize).toEqual(expect.objectContaining({ cols: 100, rows: 40 }));
    // The narrow tab leaves: its size no longer counts.
    await narrow.close();
    await until(() => hub.terminalSize.cols === 160);
    expect(hub.terminalSize).toEqual(expect.objectContaining({ cols: 160, rows: 40 }));
  });

  it("a tab stalled past stall-ms with policy=evict is closed with code 4001 and leaves the hub; the others go on", async () => {
    const { web, hub, frontend } = await tabsOnRingHub(",queue-limit=16k", ",policy.0=evict,stall-ms.0=500");
    const healthy = await openTab(web);
    const stalled = await openTab(web);
    await until(() => hub.stats().length === 3);
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      stalled.socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    stalled.socket.pause();

    const chunk = new Uint8Array(16 * 1024).fill(0x61);
    let written = 0;
    while (hub.evictions === 0) {
      expect(written, "the stalled tab is evicted long before this").toBeLessThan(256 * 1024 * 1024);
      // The writer may wait for the stalled tab until it is evicted: the healthy tab reads on,
      // and is never left behind (it must not stall itself on a loaded machine).
      await writeAll(frontend, chunk);
      written += chunk.length;
      await until(() => healthy.receivedBytes === written);
    }
    stalled.socket.resume();
    expect(await closed).toEqual({ code: WebCloseCode.EVICTED, reason: "evicted by the hub: stalled for more than 500 ms" });
    await until(() => web.clientCount === 1);
    expect(hub.stats().map((r) => r.id)).toEqual(["web0", "web0#1"]);
    await writeAll(frontend, bytes("still here"));
    written += 10;
    await until(() => healthy.receivedBytes === written);
    expect(healthy.text().endsWith("still here")).toBe(true);
  });

  it("a tab's input waits while the frontend cannot take it and arrives in order, while another tab's output goes on", async () => {
    const { web, fe, frontend } = await tabsOnRingHub();
    const typist = await openTab(web);
    const watcher = await openTab(web);
    await until(() => web.clientCount === 2 && fe.events.length === 1);
    fe.room = 0;
    typist.socket.send(bytes("first "));
    typist.socket.send(bytes("second"));
    await writeAll(frontend, bytes("output meanwhile"));
    await until(() => watcher.receivedBytes === 16 && typist.receivedBytes === 16);
    expect(fe.readCount, "the frontend said it has no room").toBe(0);
    fe.room = 128;
    frontend.acceptInput();
    await until(() => fe.readCount === 12);
    expect(fe.take()).toBe("first second");
  });

  it("a web chardev whose tabs a hub takes is busy: chardev-remove and a second holder are refused", async () => {
    const { web } = await tabsOnRingHub();
    const tab = await openTab(web);
    await until(() => web.clientCount === 1);
    expect(await errorOf(() => reg.remove("web0"))).toEqual(expect.objectContaining({ code: "BUSY", message: "Chardev 'web0' is busy" }));
    expect(await errorOf(() => reg.attach("web0", new FeHandler()))).toEqual(expect.objectContaining({ code: "IN_USE", message: "chardev 'web0' is already in use" }));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => tab.socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    reg.hub("hub0").detachBackend("web0");
    expect(await closed, "its tabs are closed with it").toEqual({ code: WebCloseCode.GOING_AWAY, reason: "detached from the hub" });
    expect(web.handsOutTabs).toBe(false);
    await reg.remove("web0");
    expect(reg.find("web0")).toBeUndefined();
  });

  it("web's own replay= is what a late tab gets when the hub's replay.N for it is not given; replay.N wins over it", async () => {
    const { web, frontend, fe } = await tabsOnRingHub(",replay=16");
    const early = await openTab(web);
    await until(() => fe.events.length === 1);
    await writeAll(frontend, bytes("line 01\nline 02\nline 03\nline 04\n"));
    await until(() => early.receivedBytes === 32);
    const late = await openTab(web);
    await until(() => late.receivedBytes === 16);
    expect(late.text()).toBe("line 03\nline 04\n");

    const other = (await reg.add(`web,id=web1,port=0,token=${SECRET},replay=16`)) as WebChardev;
    await reg.add("hub,id=hub1,ring=65536,chardevs.0=web1,replay.0=8");
    const fe1 = new FeHandler();
    const frontend1 = reg.attach("hub1", fe1);
    const first = await openTab(other);
    await until(() => fe1.events.length === 1);
    await writeAll(frontend1, bytes("line 01\nline 02\n"));
    await until(() => first.receivedBytes === 16);
    const second = await openTab(other);
    await until(() => second.receivedBytes === 8);
    expect(second.text()).toBe("line 02\n");
  });

  it("a hub without a ring (QEMU's, block only) leaves the tabs to the web chardev: one backend, which fans out to every tab", async () => {
    const web = (await reg.add(`web,id=plain,port=0,token=${SECRET}`)) as WebChardev;
    await reg.add("hub,id=h0,chardevs.0=plain");
    const fe = new FeHandler();
    const frontend = reg.attach("h0", fe);
    const tabs = [await openTab(web), await openTab(web)];
    await until(() => web.clientCount === 2);
    expect(web.handsOutTabs).toBe(false);
    expect(reg.hub("h0").stats().map((r) => r.id)).toEqual(["plain"]);
    expect(frontend.write(bytes("both"))).toBe(4);
    await until(() => tabs.every((tab) => tab.receivedBytes === 4));
    expect(fe.events).toEqual([ChrEvent.OPENED]);
  });

  it("with max-clients=1, or under qemuCompat, the web chardev stays one backend that fans out to its tabs", async () => {
    const single = (await reg.add(`web,id=single,port=0,token=${SECRET},max-clients=1`)) as WebChardev;
    await reg.add("hub,id=h1,ring=65536,chardevs.0=single");
    expect(single.handsOutTabs).toBe(false);
    const one = await openTab(single);
    await until(() => reg.hub("h1").stats()[0].open);
    expect(reg.hub("h1").stats().map((r) => r.id)).toEqual(["single"]);
    one.socket.send(bytes("x"));

    const compat = await ChardevRegistry.create({ qemuCompat: true });
    cleanups.push(() => compat.close());
    const web = (await compat.add(`web,id=w,port=0,token=${SECRET}`)) as WebChardev;
    await compat.add("hub,id=h,chardevs.0=w");
    const fe = new FeHandler();
    const frontend = compat.attach("h", fe);
    const tabs = [await openTab(web), await openTab(web)];
    await until(() => web.clientCount === 2);
    expect(web.handsOutTabs).toBe(false);
    expect(compat.hub("h").stats().map((r) => r.id)).toEqual(["w"]);
    expect(frontend.write(bytes("both"))).toBe(4);
    await until(() => tabs.every((tab) => tab.receivedBytes === 4));
    expect(fe.events).toEqual([ChrEvent.OPENED]);
  });
});

describe("web tabs as hub backends in a real browser", () => {
  it("a page opened late shows the replayed lines, then live output; typing in it reaches the frontend on its own row", async () => {
    const { web, hub, fe, frontend } = await tabsOnRingHub("", ",policy.0=drop,replay.0=4096");
    await writeAll(frontend, bytes("written before any tab\r\nsecond line\r\n"));
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    cleanups.push(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 800, height: 480 } });
    const screen = () => page.evaluate(() => (document.querySelector(".xterm-rows")?.textContent ?? "").replace(/\u00a0/g, " "));
    await page.goto(web.url);
    await page.waitForFunction(() => (document.querySelector(".xterm-rows")?.textContent ?? "").includes("second line"));
    expect(await screen()).toContain("written before any tab");
    await writeAll(frontend, bytes("live after the page\r\n"));
    await page.waitForFunction(() => (document.querySelector(".xterm-rows")?.textContent ?? "").includes("live after the page"));

    await page.click("#terminal");
    await page.keyboard.type("typed");
    await until(() => fe.readCount === 5);
    expect(fe.take()).toBe("typed");
    expect(hub.stats().map((r) => r.id)).toEqual(["web0", "web0#1"]);
    expect(hub.stats()[1]).toEqual(expect.objectContaining({ mode: "rw", bytesIn: 5, listener: "web0" }));
    await page.close();
    await until(() => hub.stats().length === 1);
  });
});
