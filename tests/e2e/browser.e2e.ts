// The browser terminal end to end: chardev-hub runs a shell on a pty behind a hub with a web
// terminal and a socket client; headless Chromium types into the page.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { Cli, SocketClient, repoRoot, until } from "./_procs.ts";
import { upgradeStatus } from "../_web_clients.ts";

const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-browser-"));
let cli: Cli | undefined;

afterAll(async () => {
  await cli?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("browser terminal through the chardev-hub command", () => {
  it("typing in the page runs in the shell, and the echo shows in the page and on a socket client", async () => {
    const clientSock = path.join(dir, "c1.sock");
    cli = new Cli([
      "-chardev", "spawn,id=sh,cmd=sh",
      "-chardev", "web,id=web0,port=0",
      "-chardev", `socket,id=c1,path=${clientSock},server=on,wait=off`,
      "-chardev", "hub,id=hub0,chardevs.0=web0,chardevs.1=c1",
      "-frontend", "sh,chardev=hub0",
    ]);
    // The address exactly as printed, secret and all: what a user would paste into a browser.
    const printed = /web terminal at (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+) \(label web0\)/;
    await until(() => printed.test(cli!.output), "the web terminal's URL");
    const url = printed.exec(cli.output)![1];
    // Without the secret the shell is out of reach: the page and the socket answer 401.
    const bare = new URL(url);
    bare.search = "";
    expect((await fetch(bare)).status).toBe(401);
    expect(await upgradeStatus(`ws://${bare.host}/ws`)).toBe(401);
    const watcher = await SocketClient.connect(clientSock);

    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 500 } });
      await page.goto(url);
      const screen = () => page.evaluate(() => (document.querySelector(".xterm-rows")?.textContent ?? "").replace(/\u00a0/g, " "));
      await page.locator(".xterm").click();
      await page.keyboard.type("echo browser-$((6*7))");
      await page.keyboard.press("Enter");
      let text = "";
      // Poll the page (async) until the shell's answer shows.
      const end = Date.now() + 60_000;
      while (!(text = await screen()).replace("echo browser-$((6*7))", "").includes("browser-42") && Date.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(text.replace("echo browser-$((6*7))", "")).toContain("browser-42");
      await until(() => /^browser-42\r?$/m.test(watcher.received), "the echo on the socket client");
      expect(watcher.received).toMatch(/^browser-42\r?$/m);

      const artifacts = path.join(repoRoot, "test-artifacts");
      fs.mkdirSync(artifacts, { recursive: true });
      const shot = path.join(artifacts, "browser-e2e.png");
      await page.screenshot({ path: shot });
      expect(fs.readFileSync(shot).subarray(1, 4).toString()).toBe("PNG");
    } finally {
      await browser.close();
      watcher.close();
    }
    expect(await cli.stop()).toBe(0);
  }, 120_000);
});
