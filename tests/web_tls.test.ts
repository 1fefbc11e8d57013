// The browser terminal over HTTPS and WSS with QEMU's tls-creds-x509 object: headless
// Chromium trusting the test CA types into it; with verify-peer=on a client without a
// certificate from that CA is refused in the handshake, one with it gets in (and still needs
// the secret).

import { execFileSync } from "node:child_process";
import * as https from "node:https";
import * as fs from "node:fs";
import { chromium } from "playwright-core";
import WebSocket from "ws";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, testRuntime } from "./_harness.ts";
import { ChardevRegistry, type Frontend } from "../host-ts/mod.ts";
import type { WebChardev } from "../host-ts/chardev/web.ts";
import { errorOf, FeHandler } from "./_fe_handler.ts";
import { makeTestPki, type TestPki } from "./_tls_certs.ts";
import { CHROMIUM, CHROMIUM_ARGS, until } from "./_web_clients.ts";

const SECRET = "tls-terminal-secret-0001";

let pki: TestPki;
let reg: ChardevRegistry;
let warnings: string[];

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());
beforeEach(async () => {
  warnings = [];
  reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: (line) => warnings.push(line) });
});
afterEach(async () => {
  await reg.close();
});

/** A web chardev over TLS behind a hub, with the frontend attached. */
async function tlsWeb(verifyPeer: boolean): Promise<{ web: WebChardev; fe: FeHandler; frontend: Frontend }> {
  await reg.addObject(`tls-creds-x509,id=tls0,endpoint=server,dir=${pki.serverDir},verify-peer=${verifyPeer ? "on" : "off"}`);
  const web = (await reg.add(`web,id=web0,port=0,token=${SECRET},tls-creds=tls0`)) as WebChardev;
  await reg.add("hub,id=hub0,chardevs.0=web0");
  const fe = new FeHandler();
  return { web, fe, frontend: reg.attach("hub0", fe) };
}

/** base64 SHA-256 of a certificate's public key: what Chromium's SPKI trust list takes. */
function spkiHash(certificate: string): string {
  const publicKey = execFileSync("openssl", ["x509", "-in", certificate, "-pubkey", "-noout"]);
  const der = execFileSync("openssl", ["pkey", "-pubin", "-outform", "der"], { input: publicKey });
  return execFileSync("openssl", ["dgst", "-sha256", "-binary"], { input: der }).toString("base64");
}

/** GET over HTTPS with the test CA (and a client certificate if given): the status, or the error's code. */
function httpsStatus(url: string, client?: { cert: string; key: string }): Promise<number | string> {
  return new Promise((resolve) => {
    const request = https.get(
      url,
      { ca: fs.readFileSync(pki.caCert), cert: client && fs.readFileSync(client.cert), key: client && fs.readFileSync(client.key) },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

describe("web chardev over TLS", () => {
  it("serves https:// and wss://, says so in its addresses, sets a Secure cookie, and warns about nothing on loopback", async () => {
    const { web, fe } = await tlsWeb(false);
    expect(web.baseUrl).toBe(`https://127.0.0.1:${web.port}/`);
    expect(web.url).toBe(`https://127.0.0.1:${web.port}/?token=${SECRET}`);
    expect(reg.query().find((info) => info.label === "web0")!.filename).toBe(`web:https://127.0.0.1:${web.port}/`);
    expect(await httpsStatus(web.url)).toBe(200);
    expect(await httpsStatus(web.baseUrl)).toBe(401);

    const cookie = await new Promise<string>((resolve, reject) =>
      https.get(web.url, { ca: fs.readFileSync(pki.caCert) }, (response) => {
        response.resume();
        resolve(String(response.headers["set-cookie"]));
      }).on("error", reject),
    );
    expect(cookie).toBe(`chardev-hub-${web.port}=${SECRET}; Path=/; HttpOnly; SameSite=Strict; Secure`);

    const tab = new WebSocket(`wss://127.0.0.1:${web.port}/ws?token=${SECRET}`, { ca: fs.readFileSync(pki.caCert) });
    await new Promise((resolve, reject) => tab.once("open", resolve).once("error", reject));
    tab.send(Buffer.from("over tls"));
    await until(() => fe.readCount === 8);
    expect(fe.take()).toBe("over tls");
    tab.close();
    expect(warnings).toEqual([]);
  });

  it("a plain http:// request to the TLS port gets no page", async () => {
    const { web } = await tlsWeb(false);
    const answer = await fetch(`http://127.0.0.1:${web.port}/?token=${SECRET}`).then(
      (response) => response.status,
      () => "refused",
    );
    expect(answer).not.toBe(200);
  });

  it("verify-peer=on refuses a client without a certificate, or with one from another CA, in the handshake; one from the CA gets in", async () => {
    const { web } = await tlsWeb(true);
    expect(await httpsStatus(web.url)).not.toBe(200);
    expect(await httpsStatus(web.url, { cert: pki.rogue.clientCert, key: pki.rogue.clientKey })).not.toBe(200);
    if (testRuntime === "bun") {
      // Bun's node:tls refuses the handshake but emits no tlsClientError: nothing to count.
      expect(web.refusals.tlsHandshakes).toBe(0);
    } else {
      await until(() => web.refusals.tlsHandshakes >= 2);
      // Deno's node:tls does not tell the failed peer's address: "a client" then.
      expect(warnings[0]).toMatch(/^web: web0: refused (127\.0\.0\.1:\d+|a client): TLS handshake failed: .+/);
    }
    expect(await httpsStatus(web.url, { cert: pki.clientCert, key: pki.clientKey })).toBe(200);
    expect(await httpsStatus(web.baseUrl, { cert: pki.clientCert, key: pki.clientKey }), "the secret is still asked for").toBe(401);
  });

  it("refuses credentials of the client endpoint and an unknown id with QEMU's texts", async () => {
    await reg.addObject(`tls-creds-x509,id=tlsc,endpoint=client,dir=${pki.clientDir}`);
    expect(await errorOf(() => reg.add("web,id=w,port=0,tls-creds=tlsc"))).toEqual(
      expect.objectContaining({ message: "Expected TLS credentials for a server endpoint" }),
    );
    expect(await errorOf(() => reg.add("web,id=w,port=0,tls-creds=nope"))).toEqual(expect.objectContaining({ message: "No TLS credentials with id 'nope'" }));
    expect(reg.find("w")).toBeUndefined();
  });
});

describe("web chardev over TLS in a real browser", () => {
  it("headless Chromium trusting the test CA opens the printed https:// address and types into the console", async () => {
    const { web, fe } = await tlsWeb(false);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Trust exactly the test CA's key, as a user would import the CA.
      args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spkiHash(pki.caCert)}`],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 800, height: 480 } });
      const response = await page.goto(web.url);
      expect(response?.status()).toBe(200);
      expect(page.url()).toBe(web.baseUrl);
      await page.waitForFunction(() => document.body.dataset.mode === "rw");
      await page.click("#terminal");
      await page.keyboard.type("secure");
      await until(() => fe.readCount === 6);
      expect(fe.take()).toBe("secure");
    } finally {
      await browser.close();
    }
  });

  it("without trusting the CA, Chromium refuses the certificate", async () => {
    const { web } = await tlsWeb(false);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      const failure = await page.goto(web.url).then(
        () => "loaded",
        (error: Error) => error.message,
      );
      expect(failure).toMatch(/ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await browser.close();
    }
  });
});
