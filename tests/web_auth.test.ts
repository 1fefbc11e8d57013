// The web chardev's secrets: without one the page and the socket are refused, with the typing
// secret a tab types, with the view-only secret it watches and can neither type nor resize;
// max-clients bounds the tabs; auth=none opens it with a warning. Then the same in headless
// Chromium, as a user opens the printed addresses.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium } from "playwright-core";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import { TERMINAL_PROTOCOL, WebChardev, WebCloseCode } from "../host-ts/chardev/web.ts";
import { bytes, errorOf } from "./_fe_handler.ts";
import { CHROMIUM, CHROMIUM_ARGS, webBehindHub, Tab, until, upgradeStatus } from "./_web_clients.ts";

const SECRET = "correct-horse-battery-staple";
const VIEW_SECRET = "view-only-secret-1234";

let reg: ChardevRegistry;
let warnings: string[];
let scratch: string;
beforeEach(async () => {
  warnings = [];
  reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: (line) => warnings.push(line) });
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "web-auth-"));
});
afterEach(async () => {
  await reg.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

const wsBase = (web: WebChardev) => `${web.baseUrl.replace(/^http/, "ws")}ws`;

describe("web chardev secrets", () => {
  it("generates a 256-bit secret per chardev and prints it in the URL; the view-only URL differs", async () => {
    const a = (await reg.add("web,id=a,port=0")) as WebChardev;
    const b = (await reg.add("web,id=b,port=0")) as WebChardev;
    const secretOf = (url: string) => new URL(url).searchParams.get("token")!;
    for (const web of [a, b]) {
      expect(secretOf(web.url)).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(secretOf(web.viewUrl)).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(web.viewUrl).not.toBe(web.url);
    }
    expect(secretOf(a.url)).not.toBe(secretOf(b.url));
    expect(reg.query().map((info) => info.filename)).toEqual([`web:${a.baseUrl}`, `web:${b.baseUrl}`]);
    expect(warnings).toEqual([]);
  });

  it("refuses the page, its script and the socket with 401 without the secret or with a wrong one", async () => {
    const web = (await reg.add(`web,id=web0,port=0,token=${SECRET}`)) as WebChardev;
    for (const url of [web.baseUrl, `${web.baseUrl}terminal.js`, `${web.baseUrl}?token=wrong`, `${web.baseUrl}?token=`]) {
      const answer = await fetch(url);
      expect(answer.status, url).toBe(401);
      expect(answer.headers.get("www-authenticate")).toBe('Bearer realm="chardev-hub"');
      expect(await answer.text()).not.toContain("<script");
    }
    expect((await fetch(web.baseUrl, { headers: { Authorization: "Bearer nope" } })).status).toBe(401);
    expect((await fetch(web.baseUrl, { headers: { Cookie: `chardev-hub-${web.port}=nope` } })).status).toBe(401);
    expect(await upgradeStatus(wsBase(web))).toBe(401);
    expect(await upgradeStatus(`${wsBase(web)}?token=${SECRET}x`)).toBe(401);
    expect(await upgradeStatus(wsBase(web), { headers: { Authorization: `Bearer ${SECRET.slice(1)}` } })).toBe(401);
    expect(web.clientCount).toBe(0);
    expect(web.refusals.requests).toBe(9);
  });

  it("takes the secret as ?token=, as a Bearer header, or as the HttpOnly SameSite=Strict cookie the page load sets", async () => {
    const { web, fe } = await webBehindHub(reg, `,token=${SECRET}`);
    const page = await fetch(`${web.baseUrl}?token=${SECRET}`);
    expect(page.status).toBe(200);
    const cookie = page.headers.get("set-cookie")!;
    expect(cookie).toBe(`chardev-hub-${web.port}=${SECRET}; Path=/; HttpOnly; SameSite=Strict`);
    const sent = { Cookie: cookie.split(";")[0] };
    expect((await fetch(`${web.baseUrl}terminal.js`, { headers: sent })).status).toBe(200);
    const script = await fetch(`${web.baseUrl}terminal.js`, { headers: { Authorization: `Bearer ${SECRET}` } });
    expect(script.status).toBe(200);
    expect(script.headers.get("set-cookie"), "only a ?token= page load sets the cookie").toBeNull();

    const byCookie = await Tab.open(wsBase(web), { headers: sent });
    const byBearer = await Tab.open(wsBase(web), { headers: { Authorization: `Bearer ${SECRET}` } });
    const byQuery = await Tab.open(`${wsBase(web)}?token=${SECRET}`);
    await until(() => web.clientCount === 3);
    byCookie.socket.send(bytes("a"));
    byBearer.socket.send(bytes("b"));
    byQuery.socket.send(bytes("c"));
    await until(() => fe.readCount === 3);
    expect([...fe.take()].sort().join("")).toBe("abc");
  });

  it("a view-only tab sees the output but its keys and resizes are dropped and counted; the page hears it is read-only", async () => {
    const { web, fe, frontend } = await webBehindHub(reg, `,token=${SECRET},ro-token=${VIEW_SECRET}`);
    const sizes: [number, number][] = [];
    web.onResize((cols, rows) => sizes.push([cols, rows]));
    const viewer = await Tab.open(`${wsBase(web)}?token=${VIEW_SECRET}`, { protocol: TERMINAL_PROTOCOL });
    const typist = await Tab.open(`${wsBase(web)}?token=${SECRET}`, { protocol: TERMINAL_PROTOCOL });
    await until(() => viewer.controls.length === 1 && typist.controls.length === 1);
    expect(viewer.controls).toEqual([{ type: "hello", readOnly: true }]);
    expect(typist.controls).toEqual([{ type: "hello", readOnly: false }]);

    viewer.socket.send(bytes("rm -rf /\r"));
    viewer.socket.send(JSON.stringify({ type: "resize", cols: 65535, rows: 65535 }));
    typist.socket.send(JSON.stringify({ type: "resize", cols: 100, rows: 30 }));
    typist.socket.send(bytes("ls\r"));
    await until(() => fe.readCount === 3);
    expect(fe.take()).toBe("ls\r");
    expect(sizes).toEqual([[100, 30]]);
    expect(web.terminalSize).toEqual({ cols: 100, rows: 30 });
    expect(web.refusals).toEqual(expect.objectContaining({ readOnlyInputBytes: 9, readOnlyResizes: 1 }));

    expect(frontend.write(bytes("both see this"))).toBe(13);
    await until(() => viewer.receivedBytes === 13 && typist.receivedBytes === 13);
    expect(viewer.text()).toBe("both see this");
    expect(fe.events).toEqual([ChrEvent.OPENED]);
  });

  it("reads the secrets from token-file and ro-token-file (one line each)", async () => {
    fs.writeFileSync(path.join(scratch, "rw"), `${SECRET}\n`, { mode: 0o600 });
    fs.writeFileSync(path.join(scratch, "ro"), VIEW_SECRET, { mode: 0o600 });
    const web = (await reg.add(`web,id=web0,port=0,token-file=${scratch}/rw,ro-token-file=${scratch}/ro`)) as WebChardev;
    expect(web.url).toBe(`${web.baseUrl}?token=${SECRET}`);
    expect(web.viewUrl).toBe(`${web.baseUrl}?token=${VIEW_SECRET}`);
    expect(await upgradeStatus(`${wsBase(web)}?token=${SECRET}`)).toBe("open");
  });

  it("refuses bad secret settings with a clear message and leaves nothing listening", async () => {
    fs.writeFileSync(path.join(scratch, "two-lines"), "one\ntwo\n");
    fs.writeFileSync(path.join(scratch, "huge"), "x".repeat(5000));
    const cases: [string, string, string][] = [
      ["web,id=w,auth=maybe", "INVALID_VALUE", "web: 'auth' must be 'token' or 'none'"],
      ["web,id=w,access=everyone", "INVALID_VALUE", "web: 'access' must be 'user' or 'any', not 'everyone'"],
      ["web,id=w,auth=none,token=abc", "INVALID_PARAMETER", "web: auth=none takes no token"],
      [`web,id=w,token=same,ro-token=same`, "INVALID_VALUE", "web: 'token' and 'ro-token' must differ"],
      [`web,id=w,token=a;b`, "INVALID_VALUE", `web: 'token' may hold only printable ASCII without spaces, '"', ',', ';' or '\\'`],
      [`web,id=w,token=x,token-file=${scratch}/two-lines`, "INVALID_PARAMETER", "web: 'token' and 'token-file' are mutually exclusive"],
      [`web,id=w,token-file=${scratch}/two-lines`, "INVALID_VALUE", `web: 'token-file' ${scratch}/two-lines must hold one line, the secret`],
      [`web,id=w,token-file=${scratch}/huge`, "OPEN_FAILED", `web: could not read 'token-file' ${scratch}/huge: larger than 1026 bytes`],
      [`web,id=w,ro-token-file=${scratch}/missing`, "OPEN_FAILED", `web: could not read 'ro-token-file' ${scratch}/missing: No such file or directory`],
      ["web,id=w,max-clients=0", "INVALID_VALUE", "web: max-clients must be between 1 and 65535"],
      ["web,id=w,max-clients=many", "INVALID_VALUE", "Parameter 'max-clients' expects a number"],
    ];
    for (const [spec, code, message] of cases) {
      expect(await errorOf(() => reg.add(spec)), spec).toEqual(expect.objectContaining({ code, message }));
      expect(reg.find("w")).toBeUndefined();
    }
  });

  it("auth=none serves anyone who reaches the address, and says so on stderr", async () => {
    const web = (await reg.add("web,id=web0,port=0,auth=none")) as WebChardev;
    expect(web.url).toBe(web.baseUrl);
    expect((await fetch(web.baseUrl)).status).toBe(200);
    expect(await upgradeStatus(wsBase(web))).toBe("open");
    expect(warnings).toEqual([`web: web0: auth=none: anyone who can reach ${web.baseUrl} can type into this console`]);
  });

  it("the Origin and Host checks stay with the secret: a foreign origin gets 403 even with it", async () => {
    const web = (await reg.add(`web,id=web0,port=0,token=${SECRET}`)) as WebChardev;
    expect(await upgradeStatus(`${wsBase(web)}?token=${SECRET}`, { origin: "http://evil.example" })).toBe(403);
    expect(await upgradeStatus(`${wsBase(web)}?token=${SECRET}`, { host: `rebound.example:${web.port}` })).toBe(403);
  });

  it("max-clients bounds the tabs: the next upgrade gets 503 until one leaves", async () => {
    const web = (await reg.add(`web,id=web0,port=0,token=${SECRET},max-clients=2`)) as WebChardev;
    const url = `${wsBase(web)}?token=${SECRET}`;
    const first = await Tab.open(url);
    await Tab.open(url);
    await until(() => web.clientCount === 2);
    expect(await upgradeStatus(url)).toBe(503);
    expect(web.refusals.tooManyClients).toBe(1);
    await first.close();
    await until(() => web.clientCount === 1);
    expect(await upgradeStatus(url)).toBe("open");
  });

  it("a view-only tab keeps its close code semantics: removing the chardev sends GOING_AWAY to every tab", async () => {
    const web = (await reg.add(`web,id=web0,port=0,ro-token=${VIEW_SECRET}`)) as WebChardev;
    const viewer = await Tab.open(`${wsBase(web)}?token=${VIEW_SECRET}`);
    const closed = new Promise<number>((resolve) => viewer.socket.once("close", (code) => resolve(code)));
    await reg.remove("web0");
    expect(await closed).toBe(WebCloseCode.GOING_AWAY);
  });
});

describe("web chardev secrets in a real browser", () => {
  it("the printed URL opens a typing terminal that drops the secret from the address bar; the view-only URL opens one that cannot type", async () => {
    const { web, fe } = await webBehindHub(reg);
    const sizes: [number, number][] = [];
    web.onResize((cols, rows) => sizes.push([cols, rows]));
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const context = await browser.newContext({ viewport: { width: 800, height: 480 } });
      const typing = await context.newPage();
      await typing.goto(web.url);
      await until(() => sizes.length === 1);
      expect(typing.url(), "the secret left the address bar").toBe(web.baseUrl);
      expect(await typing.evaluate(() => document.cookie), "the cookie is HttpOnly").toBe("");
      await typing.click("#terminal");
      await typing.keyboard.type("whoami");
      await until(() => fe.readCount === 6);
      expect(fe.take()).toBe("whoami");
      expect(await typing.evaluate(() => document.body.dataset.mode)).toBe("rw");

      // A second browser profile, as another person would open the view-only address.
      const viewerContext = await browser.newContext({ viewport: { width: 300, height: 200 } });
      const viewing = await viewerContext.newPage();
      await viewing.goto(web.viewUrl);
      await viewing.waitForFunction(() => document.body.dataset.mode === "ro");
      expect(await viewing.title()).toBe("chardev-hub (view only)");
      expect(await viewing.textContent("#mode")).toBe("view only");
      await viewing.click("#terminal");
      await viewing.keyboard.type("reboot");
      await viewing.keyboard.press("Enter");
      // The typing tab's next key arrives alone: nothing of the viewer's came first.
      await typing.keyboard.type("!");
      await until(() => fe.readCount === 1);
      expect(fe.take()).toBe("!");
      expect(sizes, "the small view-only window did not resize the terminal").toHaveLength(1);
      expect(web.clientCount).toBe(2);

      // Without the secret the page is not served at all.
      const stranger = await (await browser.newContext()).newPage();
      const answer = await stranger.goto(web.baseUrl);
      expect(answer?.status()).toBe(401);
      expect(await stranger.locator(".xterm").count()).toBe(0);
    } finally {
      await browser.close();
    }
  });
});
