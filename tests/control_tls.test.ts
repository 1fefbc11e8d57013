// Remote attach over TCP+TLS: `-control tcp:HOST:PORT,tls-creds=ID` served by the real
// dist/cli.js (sh on a pty as the device), and its client commands with `--control tcp:...
// --tls-creds DIR`, with certificates made by `openssl` for the test (tests/_tls_certs.ts).
// Needs sh, openssl, and for the other-user case root, socat and setpriv (util-linux).

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "./_harness.ts";
import { asIntruder, ensureIntruderAccount } from "./_intruder.ts";
import { makeTestPki, type TestPki } from "./_tls_certs.ts";
import { CliProcess } from "./cli/_cli.ts";

let pki: TestPki;
let dir: string;

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-control-tls-test-"));
});
afterEach(async () => {
  await CliProcess.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

const CONSOLE_ARGS = ["-chardev", "spawn,id=sh,cmd=sh", "-chardev", "hub,id=hub0,ring=64K", "-frontend", "sh,chardev=hub0"];

/** A run whose control socket listens on `control` (port 0: the port it got is read from its line). */
async function startRun(control: string, objects: string[] = []): Promise<{ cli: CliProcess; address: string }> {
  const cli = new CliProcess([...objects.flatMap((object) => ["-object", object]), ...CONSOLE_ARGS, "-control", control]);
  await cli.waitForStderr(/control socket on tcp:\S+/);
  const address = /control socket on (tcp:\S+)/.exec(cli.stderr)![1];
  return { cli, address };
}

/** A run with verify-peer=on server credentials and its TLS control socket on 127.0.0.1. */
function startTlsRun(): Promise<{ cli: CliProcess; address: string }> {
  return startRun("tcp:127.0.0.1:0,tls-creds=tls0", [`tls-creds-x509,id=tls0,endpoint=server,dir=${pki.serverDir},verify-peer=on`]);
}

describe("control socket over TCP+TLS", () => {
  it("announces a TLS control socket with the port it got", async () => {
    const { address } = await startTlsRun();
    expect(address).toMatch(/^tcp:127\.0\.0\.1:[1-9]\d*$/);
    expect(address).not.toBe("tcp:127.0.0.1:0");
  });

  it("list over TLS with a client certificate lists the console", async () => {
    const { address } = await startTlsRun();
    const list = await CliProcess.run(["list", "--control", address, "--tls-creds", pki.clientDir]);
    expect(list.stderr).toBe("");
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^sh: device 'sh' open, 0 rw, 0 ro, ring 64\.0 KiB, input /);
    const json = await CliProcess.run(["list", "--json", "--control", address, "--tls-creds", pki.clientDir]);
    expect((JSON.parse(json.stdout) as { consoles: { name: string }[] }).consoles.map((entry) => entry.name)).toEqual(["sh"]);
  });

  it("tail over TLS streams what the device prints, typed by an attach over TLS", async () => {
    const { address } = await startTlsRun();
    const tail = new CliProcess(["tail", "sh", "--control", address, "--tls-creds", pki.clientDir]);
    // `who` over TLS too: tail is in once it is listed.
    for (let tries = 0; ; tries++) {
      const who = await CliProcess.run(["who", "sh", "--control", address, "--tls-creds", pki.clientDir]);
      if (/^attach-\d+ /m.test(who.stdout)) break;
      if (tries > 200 || tail.ended) throw new Error(`tail never attached: ${tail.stderr} ${who.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const typist = new CliProcess(["attach", "sh", "--control", address, "--tls-creds", pki.clientDir]);
    await typist.waitForStdout("[-- sh: attached rw, 1 other --]");
    typist.send("echo over-tls-$((6*7))\r");
    await tail.waitForStdout("over-tls-42");
    expect(tail.stdout).not.toContain("[--");
    expect(await tail.stop("SIGINT")).toEqual({ code: 0, signal: null });
  });

  it("a client without a certificate is refused by a verify-peer=on server: one line, status 1", async () => {
    const { cli, address } = await startTlsRun();
    const refused = await CliProcess.run(["list", "--control", address, "--tls-creds", pki.anonymousClientDir]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toMatch(new RegExp(`^chardev-hub: control: TLS handshake with ${address} failed: [^\\n]+\\n$`));
    // The server goes on serving clients that have one.
    expect((await CliProcess.run(["list", "--control", address, "--tls-creds", pki.clientDir])).code).toBe(0);
    expect(cli.ended).toBe(null);
  });

  it("a client certificate from another CA is refused", async () => {
    const { address } = await startTlsRun();
    const rogueDir = path.join(dir, "rogue");
    fs.mkdirSync(rogueDir);
    fs.copyFileSync(pki.caCert, path.join(rogueDir, "ca-cert.pem"));
    fs.copyFileSync(pki.rogue.clientCert, path.join(rogueDir, "client-cert.pem"));
    fs.copyFileSync(pki.rogue.clientKey, path.join(rogueDir, "client-key.pem"));
    const refused = await CliProcess.run(["list", "--control", address, "--tls-creds", rogueDir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^chardev-hub: control: TLS handshake with tcp:127\.0\.0\.1:\d+ failed: [^\n]+\n$/);
  });

  it("a plain TCP client of a TLS control socket gets no answer it can read", async () => {
    const { address } = await startTlsRun();
    const plain = await CliProcess.run(["list", "--control", address]);
    expect(plain.code).toBe(1);
    expect(plain.stdout).toBe("");
    expect(plain.stderr.split("\n").length).toBe(2); // one line
  });

  it("a plain TCP control socket on 127.0.0.1 serves our own user without TLS", async () => {
    const { address } = await startRun("tcp:127.0.0.1:0");
    const list = await CliProcess.run(["list", "--control", address]);
    expect(list.stderr).toBe("");
    expect(list.stdout).toMatch(/^sh: device 'sh' open/);
  });

  it("plain -control tcp:0.0.0.0:PORT without tls-creds is refused at start", async () => {
    const run = await CliProcess.run([...CONSOLE_ARGS, "-control", "tcp:0.0.0.0:7000"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "control: -control tcp:0.0.0.0:7000: a TCP control socket without TLS is only for a loopback address (127.0.0.1, ::1); add tls-creds=ID (an -object tls-creds-x509 with endpoint=server) to listen on 0.0.0.0",
    );
  });

  it("-control tcp: with an unknown credentials id, client credentials, or a bad address is refused with a clear line", async () => {
    const unknown = await CliProcess.run([...CONSOLE_ARGS, "-control", "tcp:127.0.0.1:0,tls-creds=nope"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("No TLS credentials with id 'nope'");
    const client = await CliProcess.run(["-object", `tls-creds-x509,id=c0,endpoint=client,dir=${pki.clientDir}`, ...CONSOLE_ARGS, "-control", "tcp:127.0.0.1:0,tls-creds=c0"]);
    expect(client.code).toBe(1);
    expect(client.stderr).toContain("Expected TLS credentials for a server endpoint");
    const bad = await CliProcess.run([...CONSOLE_ARGS, "-control", "tcp:127.0.0.1"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("control: -control expects tcp:HOST:PORT (tcp:[IPV6]:PORT for IPv6; port 0 to 65535), not 'tcp:127.0.0.1'");
  });

  it("the client refuses plain TCP to a non-loopback address, and --tls-creds on a UNIX socket", async () => {
    const remote = await CliProcess.run(["list", "--control", "tcp:192.0.2.7:7000"]);
    expect(remote).toEqual({
      code: 2,
      stdout: "",
      stderr: "chardev-hub: control: tcp:192.0.2.7:7000 is not a loopback address: a remote control socket needs TLS (--tls-creds DIR, with ca-cert.pem)\n",
    });
    const unix = await CliProcess.run(["list", "--control", path.join(dir, "c.sock"), "--tls-creds", pki.clientDir]);
    expect(unix).toEqual({ code: 2, stdout: "", stderr: "chardev-hub: control: --tls-creds is for a TCP control socket (--control tcp:HOST:PORT)\n" });
  });
});

describe("plain TCP control socket on loopback", () => {
  it("closes another local user's connection unread and says so on stderr (needs root: useradd, setpriv)", async () => {
    const intruder = ensureIntruderAccount();
    const { cli, address } = await startRun("tcp:127.0.0.1:0");
    const port = address.slice("tcp:127.0.0.1:".length);
    const [command, ...args] = asIntruder(intruder, ["socat", "-", `TCP:127.0.0.1:${port}`]);
    const result = spawnSync(command, args, { input: `${JSON.stringify({ cmd: "list" })}\n`, encoding: "utf8", timeout: 10_000 });
    expect(result.stdout).toBe("");
    await cli.waitForStderr(`control: ${address}: refused a connection from 127.0.0.1:`);
    expect(cli.stderr).toContain(`: uid ${intruder.uid} is not ours (uid ${process.getuid!()})\n`);
    // Our own user is still served.
    const list = await CliProcess.run(["list", "--control", address]);
    expect(list.stdout).toMatch(/^sh: device 'sh' open/);
  });
});
