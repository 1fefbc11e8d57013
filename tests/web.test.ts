// The web chardev: plain WebSocket clients as tabs, then the real page in headless Chromium.
// Chromium must be at /usr/bin/chromium (Debian's `chromium`): without it the browser test
// fails rather than skips.

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import { TERMINAL_PROTOCOL, WebChardev, WebCloseCode } from "../host-ts/chardev/web.ts";
import { bytes, errorOf } from "./_fe_handler.ts";
import { CHROMIUM, CHROMIUM_ARGS, webBehindHub, nextTurn, Tab, until, upgradeStatus } from "./_web_clients.ts";

const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "test-artifacts");
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The socket's address with the typing secret, as a script (not the page) would use it. */
const socketUrl = (web: WebChardev) => `${web.baseUrl.replace(/^http/, "ws")}ws?token=${encodeURIComponent(web.secrets!.rw)}`;
/** Headers that carry the typing secret. */
const bearer = (web: WebChardev) => ({ Authorization: `Bearer ${web.secrets!.rw}` });

let reg: ChardevRegistry;
beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: true });
});
afterEach(async () => {
  await reg.close();
});

describe("web chardev with WebSocket clients", () => {
  it("listens on 127.0.0.1 by default and shows its URL as the filename", async () => {
    const web = (await reg.add("web,id=web0,port=0")) as WebChardev;
    expect(web).toBeInstanceOf(WebChardev);
    expect(web.baseUrl).toBe(`http://127.0.0.1:${web.port}/`);
    expect(web.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${web.port}/\\?token=[A-Za-z0-9_-]{43}$`));
    expect(web.port).toBeGreaterThan(0);
    expect(reg.query()).toEqual([{ label: "web0", filename: `web:http://127.0.0.1:${web.port}/`, frontendOpen: false }]);
  });

  it("two tabs behind a hub both get the frontend's output, input from either reaches it, OPENED comes first and CLOSED last", async () => {
    const { web, fe, frontend } = await webBehindHub(reg);
    expect(fe.events).toEqual([]);

    const a = await Tab.open(socketUrl(web));
    await until(() => fe.events.length > 0);
    expect(fe.events).toEqual([ChrEvent.OPENED]);
    const b = await Tab.open(socketUrl(web));
    await until(() => web.clientCount === 2);

    expect(frontend.write(bytes("hello, both tabs"))).toBe(16);
    await until(() => a.receivedBytes === 16 && b.receivedBytes === 16);
    expect(a.text()).toBe("hello, both tabs");
    expect(b.text()).toBe("hello, both tabs");

    a.socket.send("typed in a"); // a text frame
    await until(() => fe.readCount === 10);
    expect(fe.take()).toBe("typed in a");
    b.socket.send(bytes("typed in b")); // a binary frame
    await until(() => fe.readCount === 10);
    expect(fe.take()).toBe("typed in b");

    await a.close();
    await until(() => web.clientCount === 1);
    expect(fe.events, "one tab left: still open").toEqual([ChrEvent.OPENED]);
    await b.close();
    await until(() => fe.events.length === 2);
    expect(fe.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
  });

  it("a tab that falls more than queue-limit behind is closed with code 4000 while the other tab gets everything", async () => {
    const { web, fe, frontend } = await webBehindHub(reg, ",queue-limit=256k");
    const healthy = await Tab.open(socketUrl(web));
    const stalled = await Tab.open(socketUrl(web));
    await until(() => web.clientCount === 2);
    // The stalled tab stops reading: first the kernel's socket buffers fill, then our queue.
    stalled.socket.pause();

    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    let written = 0;
    while (web.clientCount === 2) {
      expect(written, "the stalled tab is dropped long before this").toBeLessThan(512 * 1024 * 1024);
      expect(frontend.write(chunk)).toBe(chunk.length);
      written += chunk.length;
      // The healthy tab reads everything before the next write: it is never behind.
      await until(() => healthy.receivedBytes === written);
    }

    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      stalled.socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    stalled.socket.resume();
    expect(await closed).toEqual({ code: WebCloseCode.TOO_FAR_BEHIND, reason: "output queue over 262144 bytes: tab too far behind" });
    expect(stalled.receivedBytes).toBeLessThan(written);

    expect(frontend.write(bytes("still here"))).toBe(10);
    await until(() => healthy.receivedBytes === written + 10);
    expect(healthy.text().endsWith("still here")).toBe(true);
    expect(fe.events, "the healthy tab keeps the chardev open").toEqual([ChrEvent.OPENED]);
  });

  it("the last tab dropped for falling behind brings CLOSED", async () => {
    const { web, fe, frontend } = await webBehindHub(reg, ",queue-limit=64k");
    const stalled = await Tab.open(socketUrl(web));
    await until(() => fe.events.length === 1);
    stalled.socket.pause();
    const chunk = new Uint8Array(64 * 1024);
    while (web.clientCount === 1) {
      expect(frontend.write(chunk)).toBe(chunk.length);
      await nextTurn();
    }
    await until(() => fe.events.length === 2);
    expect(fe.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
    stalled.socket.terminate();
  });

  it("input waits while the frontend cannot take it and arrives in order when it can", async () => {
    const { web, fe, frontend } = await webBehindHub(reg);
    const tab = await Tab.open(socketUrl(web));
    await until(() => web.clientCount === 1);
    let asked = 0;
    const room = fe.canRead.bind(fe);
    fe.canRead = () => {
      asked++;
      return room();
    };
    fe.room = 0;
    tab.socket.send("first ");
    await until(() => asked > 0);
    expect(fe.readCount, "the frontend said it has no room").toBe(0);
    tab.socket.send("second");

    fe.room = 128;
    frontend.acceptInput();
    await until(() => fe.readCount === 12);
    expect(fe.take()).toBe("first second");
  });

  it("with the terminal subprotocol a text frame is a resize, without it the same text is input", async () => {
    const { web, fe } = await webBehindHub(reg);
    const sizes: [number, number][] = [];
    web.onResize((cols, rows) => sizes.push([cols, rows]));

    const page = await Tab.open(socketUrl(web), { protocol: TERMINAL_PROTOCOL });
    expect(page.socket.protocol).toBe(TERMINAL_PROTOCOL);
    page.socket.send(JSON.stringify({ type: "resize", cols: 132, rows: 43 }));
    page.socket.send(JSON.stringify({ type: "resize", cols: 0, rows: 43 })); // not a size: ignored
    page.socket.send("not json"); // ignored
    page.socket.send(bytes("x"));
    await until(() => fe.readCount === 1);
    expect(fe.take()).toBe("x");
    expect(sizes).toEqual([[132, 43]]);
    expect(web.terminalSize).toEqual({ cols: 132, rows: 43 });

    const plain = await Tab.open(socketUrl(web));
    const resizeText = JSON.stringify({ type: "resize", cols: 80, rows: 24 });
    plain.socket.send(resizeText);
    await until(() => fe.readCount === resizeText.length);
    expect(fe.take()).toBe(resizeText);
    expect(sizes).toEqual([[132, 43]]);
  });

  it("refuses a WebSocket from a foreign origin or for a foreign host name with 403", async () => {
    const web = (await reg.add("web,id=web0,port=0")) as WebChardev;
    const url = socketUrl(web);
    expect(await upgradeStatus(url, { origin: "http://evil.example" })).toBe(403);
    expect(await upgradeStatus(url, { host: `rebound.example:${web.port}`, origin: `http://rebound.example:${web.port}` })).toBe(403);
    expect(await upgradeStatus(url, { origin: `http://127.0.0.1:${web.port}` })).toBe("open");
    expect(await upgradeStatus(url, { host: `localhost:${web.port}`, origin: `http://localhost:${web.port}` })).toBe("open");
    expect(await upgradeStatus(url, {})).toBe("open");
  });

  it("serves the page with a policy that lets it load nothing from elsewhere", async () => {
    const web = (await reg.add("web,id=web0,port=0")) as WebChardev;
    const page = await fetch(web.url);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(await page.text()).toContain('<script src="terminal.js"></script>');
    const script = await fetch(new URL("terminal.js", web.url), { headers: bearer(web) });
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect((await script.text()).length).toBeGreaterThan(10_000);
    expect((await fetch(new URL("nothing-here", web.url), { headers: bearer(web) })).status).toBe(404);
    expect((await fetch(web.url, { method: "POST" })).status).toBe(405);
  });

  it("a busy port fails with OPEN_FAILED and registers nothing; removing the chardev frees its port", async () => {
    const first = (await reg.add("web,id=web0,port=0")) as WebChardev;
    const port = first.port;
    const error = await errorOf(() => reg.add(`web,id=web1,port=${port}`));
    expect(error).toEqual(expect.objectContaining({ code: "OPEN_FAILED", message: `web: Failed to listen on 127.0.0.1:${port}: Address already in use` }));
    expect(reg.find("web1")).toBeUndefined();

    await reg.remove("web0");
    const again = (await reg.add(`web,id=web2,port=${port}`)) as WebChardev;
    expect(again.port).toBe(port);
  });

  it("rejects a bad port or queue-limit with a clear message", async () => {
    expect(await errorOf(() => reg.add("web,id=w,port=http"))).toEqual(
      expect.objectContaining({ code: "INVALID_VALUE", message: "Parameter 'port' expects a port number (0 to 65535)" }),
    );
    expect(await errorOf(() => reg.add({ id: "w", backend: { type: "web", data: { port: 70000 } } }))).toEqual(
      expect.objectContaining({ code: "INVALID_VALUE", message: "web: port must be between 0 and 65535" }),
    );
    expect(await errorOf(() => reg.add("web,id=w,queue-limit=0"))).toEqual(
      expect.objectContaining({ code: "INVALID_VALUE", message: "web: queue-limit must be greater than zero" }),
    );
    expect(reg.find("w")).toBeUndefined();
  });
});

describe("web chardev in a real browser", () => {
  it("the page's terminal shows the frontend's output, typing reaches the frontend, and a screenshot is taken", async () => {
    const { web, fe, frontend } = await webBehindHub(reg);
    const sizes: [number, number][] = [];
    web.onResize((cols, rows) => sizes.push([cols, rows]));

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 800, height: 480 } });
      const foreignRequests: string[] = [];
      const pageErrors: string[] = [];
      page.on("request", (request) => {
        const own = [web.baseUrl, web.baseUrl.replace(/^http/, "ws"), "data:"];
        if (!own.some((prefix) => request.url().startsWith(prefix))) {
          foreignRequests.push(request.url());
        }
      });
      page.on("console", (message) => {
        if (message.type() === "error") pageErrors.push(message.text());
      });
      page.on("pageerror", (error) => pageErrors.push(error.message));

      await page.goto(web.url);
      await until(() => fe.events.length === 1);
      expect(fe.events).toEqual([ChrEvent.OPENED]);
      await until(() => sizes.length > 0);
      const [cols, rows] = sizes[0];
      expect(cols).toBeGreaterThan(20);
      expect(rows).toBeGreaterThan(5);

      const output = bytes("Hello from the frontend\r\n\x1b[32mgreen\x1b[0m text\r\n");
      expect(frontend.write(output)).toBe(output.length);
      const screenRows = () =>
        page.evaluate(() =>
          Array.from(document.querySelectorAll(".xterm-rows > div"), (row) => (row.textContent ?? "").replace(/\u00a0/g, " ").trimEnd()),
        );
      await page.waitForFunction(() => (document.querySelector(".xterm-rows")?.textContent ?? "").replace(/\u00a0/g, " ").includes("green text"));
      expect((await screenRows()).slice(0, 3)).toEqual(["Hello from the frontend", "green text", ""]);

      await page.click("#terminal");
      await page.keyboard.type("typed in Chromium");
      await page.keyboard.press("Enter");
      await until(() => fe.readCount === 18);
      expect(fe.take()).toBe("typed in Chromium\r");

      fs.mkdirSync(ARTIFACTS, { recursive: true });
      const screenshot = path.join(ARTIFACTS, "web-terminal.png");
      fs.rmSync(screenshot, { force: true });
      await page.screenshot({ path: screenshot });
      const png = fs.readFileSync(screenshot);
      expect(png.length).toBeGreaterThan(PNG_SIGNATURE.length);
      expect([...png.subarray(0, PNG_SIGNATURE.length)]).toEqual(PNG_SIGNATURE);

      // A narrower window: the fit addon gives the terminal fewer columns and the page reports them.
      await page.setViewportSize({ width: 400, height: 480 });
      await until(() => web.terminalSize !== null && web.terminalSize.cols < cols);
      expect(web.terminalSize!.rows).toBe(rows);

      await page.close();
      await until(() => fe.events.length === 2);
      expect(fe.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
      expect(foreignRequests, "the page fetched nothing from anywhere else").toEqual([]);
      expect(pageErrors, "no script errors or CSP violations").toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
