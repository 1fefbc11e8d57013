// `chardev-hub -object tls-creds-x509,...` with a TLS socket server: a shell shared over TLS
// with client certificates, driven by socat's OPENSSL client; and QEMU's texts (exit code 1)
// for credentials that cannot be loaded or are not there.

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "../_harness.ts";
import { makeTestPki, type TestPki } from "../_tls_certs.ts";
import { CliProcess, until } from "./_cli.ts";
import { freePort } from "../_ports.ts";

let pki: TestPki;
let dir: string;
let programs: ChildProcessWithoutNullStreams[];

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-cli-tls-"));
  programs = [];
});
afterEach(async () => {
  for (const program of programs) program.kill("SIGKILL");
  await CliProcess.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** `socat - OPENSSL:127.0.0.1:PORT` verifying the server against the test CA, with `certificate` args if given. */
function socatClient(port: number, certificate = ""): { child: ChildProcessWithoutNullStreams; output: () => string; exited: Promise<number | null> } {
  const child = spawn("socat", ["-", `OPENSSL:127.0.0.1:${port},cafile=${pki.caCert}${certificate}`], { stdio: ["pipe", "pipe", "pipe"] });
  programs.push(child);
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("latin1")));
  child.stdin.on("error", () => {});
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  return { child, output: () => output, exited };
}

describe("chardev-hub -object tls-creds-x509", () => {
  it("shares a shell over TLS with a client certificate and refuses a client without one", async () => {
    const port = await freePort();
    const cli = new CliProcess([
      "-object", `tls-creds-x509,id=tls0,endpoint=server,dir=${pki.serverDir},verify-peer=on`,
      "-chardev", "spawn,id=sh,cmd=sh",
      "-chardev", `socket,id=net0,host=127.0.0.1,port=${port},server=on,wait=off,tls-creds=tls0`,
      "-chardev", "hub,id=hub0,chardevs.0=net0",
      "-frontend", "sh,chardev=hub0",
    ]);
    const refusals = () => cli.stderr.split("\n").filter((line) => /^chardev-hub: socket: net0: refused .+: TLS handshake failed: /.test(line)).length;
    // Until it listens: a plain TCP probe is itself refused (it speaks no TLS), with a warning.
    await until(() => {
      const probe = net.connect({ host: "127.0.0.1", port }, () => probe.end("not TLS\r\n\r\n"));
      probe.on("error", () => {});
      return refusals() > 0 || cli.ended !== null;
    }, "the TLS listener");
    const before = refusals();
    const intruder = socatClient(port);
    const mark = path.join(dir, "intruder-was-here");
    intruder.child.stdin.write(`touch ${mark}; echo intruder-$((40+2))\n`);
    // Under TLS 1.3 socat learns of the refusal after its side of the handshake: it ends
    // (the exit status varies), having been given nothing.
    await intruder.exited;
    await until(() => refusals() > before, "a warning naming the refused client");
    expect(intruder.output()).not.toContain("intruder-42");

    const friend = socatClient(port, `,cert=${pki.clientCert},key=${pki.clientKey}`);
    friend.child.stdin.write("echo friend-$((40+2))\n");
    await until(() => friend.output().includes("friend-42"), "the shell's answer over TLS");
    // The shell runs lines in order: had the intruder's line reached it, the file would exist.
    expect(fs.existsSync(mark)).toBe(false);
    expect(cli.ended).toBeNull();
    await cli.stop();
  });

  it("exits 1 with QEMU's text when the credentials cannot be loaded", async () => {
    const missing = await CliProcess.run([
      "-object", `tls-creds-x509,id=tls0,endpoint=server,dir=${dir}/nowhere`,
      "-chardev", "ringbuf,id=r", "-chardev", "hub,id=h,chardevs.0=r", "-frontend", "r,chardev=h",
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`chardev-hub: Unable to access credentials ${dir}/nowhere/ca-cert.pem: No such file or directory\n`);
  });

  it("exits 1 with QEMU's text when a socket names credentials that do not exist", async () => {
    const unknown = await CliProcess.run([
      "-chardev", "socket,id=net0,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=nope",
      "-chardev", "ringbuf,id=r", "-chardev", "hub,id=h,chardevs.0=net0", "-frontend", "r,chardev=h",
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("chardev-hub: No TLS credentials with id 'nope'\n");
  });
});
