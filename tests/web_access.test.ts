// Same user on loopback for the browser terminal: another local account that knows the
// secret still cannot reach the page or the socket on 127.0.0.1 or ::1, unless access=any.
// The intruder is a second account (tests/_intruder.ts), so this needs root, as CI has.

import { spawn } from "node:child_process";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry } from "../host-ts/mod.ts";
import type { WebChardev } from "../host-ts/chardev/web.ts";
import { asIntruder, ensureIntruderAccount } from "./_intruder.ts";

let intruder: { uid: number; gid: number };
let reg: ChardevRegistry;
let warnings: string[];

beforeAll(() => {
  intruder = ensureIntruderAccount();
});
beforeEach(async () => {
  warnings = [];
  reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: (line) => warnings.push(line) });
});
afterEach(async () => {
  await reg.close();
});

/**
 * One HTTP request sent by socat, as us or as the intruder, with the typing secret: what came
 * back (nothing at all when the connection was closed unread).
 */
function request(as: "us" | "intruder", host: string, port: number, target: string): Promise<string> {
  const address = host.includes(":") ? `TCP6:[${host}]:${port}` : `TCP:${host}:${port}`;
  const command = ["socat", "-", address];
  const argv = as === "us" ? command : asIntruder(intruder, command);
  const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "ignore"] });
  let answer = "";
  child.stdout!.on("data", (chunk: Uint8Array) => (answer += new TextDecoder().decode(chunk)));
  const hostHeader = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  child.stdin!.end(`GET ${target} HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`);
  return new Promise((resolve) => child.on("exit", () => resolve(answer)));
}

describe("web chardev: same user only on loopback", () => {
  for (const host of ["127.0.0.1", "::1"]) {
    it(`another uid with the secret is closed unread on ${host}, with a line naming its uid; our uid is served`, async () => {
      const web = (await reg.add(`web,id=web0,host=${host},port=0,token=letmein-0123456789`)) as WebChardev;
      const theirs = await request("intruder", host, web.port, "/?token=letmein-0123456789");
      expect(theirs).toBe("");
      expect(web.refusals.otherUsers).toBe(1);
      const shown = host.includes(":") ? `[${host}]` : host;
      expect(warnings).toEqual([
        expect.stringMatching(
          new RegExp(`^web: web0: refused a connection from ${shown.replace(/[[\].]/g, "\\$&")}:\\d+: uid ${intruder.uid} is not ours \\(uid ${process.getuid!()}\\); access=any allows it$`),
        ),
      ]);
      const ours = await request("us", host, web.port, "/?token=letmein-0123456789");
      expect(ours).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(ours).toContain('<script src="terminal.js"></script>');
    });
  }

  it("with access=any another uid is served (and still needs the secret)", async () => {
    const web = (await reg.add("web,id=web0,port=0,token=letmein-0123456789,access=any")) as WebChardev;
    expect(await request("intruder", "127.0.0.1", web.port, "/?token=letmein-0123456789")).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(await request("intruder", "127.0.0.1", web.port, "/")).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    expect(web.refusals.otherUsers).toBe(0);
    expect(warnings).toEqual([]);
  });
});
