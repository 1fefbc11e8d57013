// TLS, QEMU's way: `tls-creds-x509` objects (from `-object` strings and QMP `object-add`) and
// the `socket` chardev with `tls-creds=ID`, against real peers: `openssl s_client`, socat's
// OPENSSL and OPENSSL-LISTEN, with a throwaway CA made by `openssl` (tests/_tls_certs.ts).
// The error texts were checked against QEMU 7.2's qemu-system-x86_64 (and QEMU 10's sources).

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, testRuntime } from "./_harness.ts";
import { ChardevRegistry, ChrEvent, type Frontend } from "../host-ts/mod.ts";
import type { SocketChardev } from "../host-ts/chardev/socket.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { connectClient } from "./qmp/_clients.ts";
import { makeTestPki, type TestPki } from "./_tls_certs.ts";
import { freePort } from "./_ports.ts";

const { OPENED, CLOSED } = ChrEvent;
/** Only a bound on waiting for something that should happen; no test measures time. */
const GIVE_UP_MS = 15_000;

let pki: TestPki;
let reg: ChardevRegistry;
let dir: string;
/** Warnings the registry's chardevs gave (what the command prints on stderr). */
let warnings: string[];
/** Processes and sockets a test opened, closed after it whatever happened. */
let cleanups: (() => unknown)[];

beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.remove());
beforeEach(async () => {
  warnings = [];
  reg = await ChardevRegistry.create({ qemuCompat: true, onWarning: (line) => warnings.push(line) });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-tls-test-"));
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups) await cleanup();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + GIVE_UP_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** An external program (openssl, socat) with its output collected. */
class Program {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = "";
  stderr = "";
  exitCode: number | null | undefined = undefined;
  readonly exited: Promise<number | null>;

  constructor(command: string, args: string[]) {
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.on("data", (chunk: Buffer) => (this.stdout += chunk.toString("latin1")));
    this.child.stderr.on("data", (chunk: Buffer) => (this.stderr += chunk.toString("latin1")));
    // A peer that closes first makes our writes fail with EPIPE; the test looks at what arrived.
    this.child.stdin.on("error", () => {});
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve((this.exitCode = code))));
    cleanups.push(() => this.stop());
  }

  write(text: string): void {
    this.child.stdin.write(text);
  }

  async stop(): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
}

/**
 * A `wait=off` TLS server chardev on a free loopback port, under a hub with a frontend. The
 * hub has no other backend, so the frontend's OPENED and CLOSED are the TLS client's.
 */
async function tlsServer(credsSpec: string): Promise<{ socket: SocketChardev; fe: FeHandler; frontend: Frontend; port: number }> {
  await reg.addObject(credsSpec);
  const socket = (await reg.add("socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=tls0")) as SocketChardev;
  await reg.add("hub,id=hub0,chardevs.0=s0");
  const fe = new FeHandler();
  fe.room = 1 << 20;
  const frontend = reg.attach("hub0", fe);
  cleanups.push(() => frontend.detach());
  const address = socket.address;
  if (address.transport !== "tcp") throw new Error("expected a TCP listener");
  return { socket, fe, frontend, port: address.port };
}

/** `openssl s_client` to 127.0.0.1:port, verifying the server against the test CA, quiet (only data on stdout). */
function sClient(port: number, ...extra: string[]): Program {
  return new Program("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", pki.caCert, "-verify_return_error", "-quiet", "-no_ign_eof", ...extra]);
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (socat forks, so a probe costs nothing). */
async function listening(port: number): Promise<void> {
  const deadline = Date.now() + GIVE_UP_MS;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const probe = net.connect({ host: "127.0.0.1", port }, () => {
        probe.destroy();
        resolve(true);
      });
      probe.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("tls-creds-x509 objects", () => {
  it("an -object string creates server credentials with QEMU's default verify-peer=on", async () => {
    const creds = await reg.addObject(`tls-creds-x509,id=tls0,endpoint=server,dir=${pki.serverDir}`);
    expect(creds.id).toBe("tls0");
    expect(creds.endpoint).toBe("server");
    expect(creds.verifyPeer).toBe(true);
    expect(creds.tls.verifyPeer).toBe(true);
    expect(new TextDecoder().decode(creds.tls.cert)).toBe(fs.readFileSync(pki.serverCert, "utf8"));
    expect(new TextDecoder().decode(creds.tls.key)).toBe(fs.readFileSync(pki.serverKey, "utf8"));
    expect(new TextDecoder().decode(creds.tls.ca)).toBe(fs.readFileSync(pki.caCert, "utf8"));
    expect(reg.findObject("tls0")).toBe(creds);
  });

  it("client credentials need only ca-cert.pem, and carry the client certificate when both its files are there", async () => {
    const anonymous = await reg.addObject(`tls-creds-x509,id=anon,endpoint=client,dir=${pki.anonymousClientDir}`);
    expect(anonymous.tls.cert).toBeUndefined();
    expect(anonymous.tls.key).toBeUndefined();
    // QEMU's default endpoint is client.
    const withCert = await reg.addObject(`tls-creds-x509,id=mine,dir=${pki.clientDir},verify-peer=off`);
    expect(withCert.endpoint).toBe("client");
    expect(withCert.verifyPeer).toBe(false);
    expect(new TextDecoder().decode(withCert.tls.cert)).toBe(fs.readFileSync(pki.clientCert, "utf8"));
  });

  it("bad -object strings fail with QEMU's texts", async () => {
    const garbageCa = path.join(dir, "garbage-ca");
    fs.mkdirSync(garbageCa);
    fs.writeFileSync(path.join(garbageCa, "ca-cert.pem"), "garbage\n");
    const cases: [string, string][] = [
      ["tls-creds-x509,id=t0,endpoint=server", "Missing 'dir' property value"],
      [`tls-creds-x509,id=t0,endpoint=server,dir=${dir}/nowhere`, `Unable to access credentials ${dir}/nowhere/ca-cert.pem: No such file or directory`],
      [`tls-creds-x509,id=t0,endpoint=server,dir=${pki.anonymousClientDir}`, `Unable to access credentials ${pki.anonymousClientDir}/server-cert.pem: No such file or directory`],
      [`tls-creds-x509,id=t0,endpoint=client,dir=${garbageCa}`, `Unable to import CA certificate list ${garbageCa}/ca-cert.pem`],
      ["tls-creds-x509,id=t0,endpoint=bogus,dir=/tmp", "Parameter 'endpoint' does not accept value 'bogus'"],
      [`tls-creds-x509,id=t0,endpoint=server,dir=${pki.serverDir},verify-peer=maybe`, "Parameter 'verify-peer' expects 'on' or 'off'"],
      [`tls-creds-x509,id=t0,endpoint=server,dir=${pki.serverDir},bogus=1`, "Invalid parameter 'bogus'"],
      ["bogus-type,id=t0", "Parameter 'qom-type' does not accept value 'bogus-type'"],
      [`tls-creds-x509,endpoint=server,dir=${pki.serverDir}`, "Parameter 'id' is missing"],
      [`tls-creds-x509,id=1t,endpoint=server,dir=${pki.serverDir}`, "Parameter 'id' expects an identifier"],
    ];
    for (const [spec, message] of cases) {
      expect((await errorOf(() => reg.addObject(spec))).message).toBe(message);
    }
    await reg.addObject(`tls-creds-x509,id=t0,endpoint=server,dir=${pki.serverDir}`);
    expect((await errorOf(() => reg.addObject(`tls-creds-x509,id=t0,endpoint=server,dir=${pki.serverDir}`))).message).toBe("Duplicate ID 't0' for object");
  });

  it("a key that does not match the certificate is refused when the object is created", async () => {
    const mismatched = path.join(dir, "mismatched");
    fs.mkdirSync(mismatched);
    fs.copyFileSync(pki.caCert, path.join(mismatched, "ca-cert.pem"));
    fs.copyFileSync(pki.serverCert, path.join(mismatched, "server-cert.pem"));
    fs.copyFileSync(pki.clientKey, path.join(mismatched, "server-key.pem"));
    const error = await errorOf(() => reg.addObject(`tls-creds-x509,id=t0,endpoint=server,dir=${mismatched}`));
    // QEMU: "Cannot load certificate 'C' & key 'K': <GnuTLS's reason>"; the reason is OpenSSL's here.
    expect(error.message.startsWith(`Cannot load certificate '${mismatched}/server-cert.pem' & key '${mismatched}/server-key.pem': `)).toBe(true);
    expect(reg.findObject("t0")).toBeUndefined();
  });

  it("socket chardevs name credentials with QEMU's texts for an unknown id, the wrong endpoint and a UNIX path", async () => {
    await reg.addObject(`tls-creds-x509,id=srv,endpoint=server,dir=${pki.serverDir}`);
    await reg.addObject(`tls-creds-x509,id=cli,endpoint=client,dir=${pki.clientDir}`);
    const cases: [string, string][] = [
      ["socket,id=s,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=nope", "No TLS credentials with id 'nope'"],
      ["socket,id=s,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=cli", "Expected TLS credentials for a server endpoint"],
      ["socket,id=s,host=127.0.0.1,port=1,server=off,tls-creds=srv", "Expected TLS credentials for a client endpoint"],
      [`socket,id=s,path=${dir}/s.sock,server=on,wait=off,tls-creds=srv`, "'tls_creds' option is incompatible with 'unix' address type"],
    ];
    for (const [spec, message] of cases) {
      expect((await errorOf(() => reg.add(spec))).message).toBe(message);
      expect(reg.find("s")).toBeUndefined();
    }
    // A refused chardev does not hold the credentials.
    reg.removeObject("srv");
    reg.removeObject("cli");
  });

  it("credentials a chardev uses cannot be deleted; once it is removed they can", async () => {
    await reg.addObject(`tls-creds-x509,id=tls0,endpoint=server,dir=${pki.serverDir}`);
    await reg.add("socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=tls0");
    expect(await errorOf(() => reg.removeObject("tls0"))).toMatchObject({ code: "BUSY", message: "object 'tls0' is in use, can not be deleted" });
    await reg.remove("s0");
    reg.removeObject("tls0");
    expect(reg.findObject("tls0")).toBeUndefined();
    expect(await errorOf(() => reg.removeObject("tls0"))).toMatchObject({ code: "NOT_FOUND", message: "object 'tls0' not found" });
  });
});

describe("a TLS socket server", () => {
  it("openssl s_client exchanges bytes both ways with a hub through it (verify-peer=off)", async () => {
    const { socket, fe, frontend, port } = await tlsServer(`tls-creds-x509,id=tls0,endpoint=server,dir=${pki.serverDir},verify-peer=off`);
    expect(socket.filename).toBe(`disconnected:tcp:127.0.0.1:${port},server=on`);
    const client = sClient(port);
    await until(() => fe.events.includes(OPENED), "the TLS client to be served");
    expect(socket.filename).toMatch(new RegExp(`^tcp:127\\.0\\.0\\.1:${port},server=on <-> 127\\.0\\.0\\.1:\\d+$`));
    client.write("typed through TLS\n");
    await until(() => fe.readCount === 18, "the client's line");
    expect(fe.take()).toBe("typed through TLS\n");
    const hubOutput = "the hub answers\n";
    expect(frontend.write(bytes(hubOutput))).toBe(hubOutput.length);
    await until(() => client.stdout.includes(hubOutput), "s_client to print the hub's line");
    expect(warnings).toEqual([]);
  });

  it("with verify-peer=on, socat with a client certificate exchanges bytes both ways", async () => {
    const { fe, frontend, port } = await tlsServer(`tls-creds-x509,id=tls0,endpoint=server,dir=${pki.serverDir},verify-peer=on`);
    const socat = new Program("socat", ["-", `OPENSSL:127.0.0.1:${port},cafile=${pki.caCert},cert=${pki.clientCert},key=${pki.clientKey}`]);
    await until(() => fe.events.includes(OPENED), "the TLS client to be served");
    socat.write("socat with a certificate\n");
    await until(() => fe.readCount === 25, "socat's line");
    expect(fe.take()).toBe("socat with a certificate\n");
    expect(frontend.write(bytes("welcome\n"))).toBe(8);
    await until(() => socat.stdout === "welcome\n", "socat to print the hub's line");
  });

  it("with verify-peer=on a client without a certificate is refused, nothing it sent arrives, and the next good client is served", async () => {
    const { socket, fe, port } = await tlsServer(`tls-creds-x509,id=tls0,endpoint=server,dir=${pki.serverDir},verify-peer=on`);
    const intruder = sClient(port);
    intruder.write("id\n");
    expect(await intruder.exited).not.toBe(0);
    await until(() => warnings.length === 1, "a warning about the refused client");
    expect(warnings[0]).toMatch(/^socket: s0: refused .+: TLS handshake failed: .+/);
    expect(fe.events).toEqual([]);
    expect(fe.readCount).toBe(0);
    expect(socket.connected).toBe(false);

    const friend = sClient(port, "-cert", pki.clientCert, "-key", pki.clientKey);
    await until(() => fe.events.includes(OPENED), "the good client to be served");
    friend.write("friend\n");
    await until(() => fe.readCount === 7, "the good client's line");
    expect(fe.take()).toBe("friend\n");
    await friend.stop();
    await until(() => fe.events.includes(CLOSED), "the good client to leave");
    expect(fe.events).toEqual([OPENED, CLOSED]);
  });

  it("with verify-peer=on a certificate from another CA and a plain TCP client are refused too", async () => {
    const { fe, port } = await tlsServer(`tls-creds-x509,id=tls0,endpoint=server,dir=${pki.serverDir},verify-peer=on`);
    const rogue = sClient(port, "-cert", pki.rogue.clientCert, "-key", pki.rogue.clientKey);
    rogue.write("rogue\n");
    expect(await rogue.exited).not.toBe(0);

    const plain = net.connect({ host: "127.0.0.1", port });
    cleanups.push(() => plain.destroy());
    plain.on("error", () => {});
    const plainClosed = new Promise((resolve) => plain.on("close", resolve));
    plain.write("plain text, no TLS\r\n\r\n");

    await until(() => warnings.length === 2, "a warning for each refused client");
    // Node closes the refused connection. Deno's and Bun's node:tls compat layers leave the TCP
    // connection of a failed handshake open (destroying the socket there does not close it):
    // nothing from it is read any more, but the client is not told, so this is Node only.
    if (testRuntime === "node") await plainClosed;
    for (const line of warnings) expect(line).toMatch(/^socket: s0: refused .+: TLS handshake failed: /);
    expect(fe.events).toEqual([]);
    expect(fe.readCount).toBe(0);
  });
});

describe("a TLS socket client", () => {
  it("connects to socat OPENSSL-LISTEN, verifies it, presents its certificate, and exchanges bytes", async () => {
    const port = await freePort();
    // verify=1: socat requires our client certificate, signed by the CA it is given.
    const server = new Program("socat", [
      `OPENSSL-LISTEN:${port},bind=127.0.0.1,reuseaddr,cert=${pki.serverCert},key=${pki.serverKey},cafile=${pki.caCert},verify=1`,
      "-",
    ]);
    await reg.addObject(`tls-creds-x509,id=tls0,endpoint=client,dir=${pki.clientDir}`);
    // It retries until socat listens; the first connection that gets through is the real one.
    const chardev = (await reg.add(`socket,id=c0,host=127.0.0.1,port=${port},server=off,reconnect-ms=20,tls-creds=tls0`)) as SocketChardev;
    const fe = new FeHandler();
    reg.attach("c0", fe);
    await until(() => chardev.connected, "the TLS connection to socat");
    expect(fe.events).toEqual([OPENED]);
    expect(chardev.write(bytes("from the chardev\n"))).toBe(17);
    await until(() => server.stdout === "from the chardev\n", "socat to print our line");
    server.write("from socat\n");
    await until(() => fe.readCount === 11, "socat's line");
    expect(fe.take()).toBe("from socat\n");
  });

  it("refuses a server whose certificate another CA signed", async () => {
    const port = await freePort();
    new Program("socat", [`OPENSSL-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,cert=${pki.rogue.serverCert},key=${pki.rogue.serverKey},verify=0`, "SYSTEM:cat"]);
    await listening(port);
    await reg.addObject(`tls-creds-x509,id=tls0,endpoint=client,dir=${pki.clientDir}`);
    const error = await errorOf(() => reg.add(`socket,id=c0,host=127.0.0.1,port=${port},server=off,tls-creds=tls0`));
    expect(error.message.startsWith(`Failed to connect to '127.0.0.1:${port}': `)).toBe(true);
    expect(reg.find("c0")).toBeUndefined();
    // With verify-peer=off the same server is accepted: the refusal above was the verification.
    await reg.addObject(`tls-creds-x509,id=lax,endpoint=client,dir=${pki.clientDir},verify-peer=off`);
    const chardev = (await reg.add(`socket,id=c1,host=127.0.0.1,port=${port},server=off,tls-creds=lax`)) as SocketChardev;
    expect(chardev.connected).toBe(true);
  });
});

describe("QMP object-add and object-del", () => {
  it("add credentials, a TLS socket that uses them, and refuse to delete them while it does", async () => {
    const client = await connectClient(reg, "unix", dir);
    cleanups.push(() => client.close());
    await client.next(); // greeting
    expect(await client.execute("qmp_capabilities")).toEqual({ return: {} });
    const add = (args: Record<string, unknown>) => client.execute("object-add", args);
    expect(await add({ "qom-type": "tls-creds-x509", id: "tls0", endpoint: "server", dir: pki.serverDir, "verify-peer": true })).toEqual({ return: {} });
    const error = (desc: string) => ({ error: { class: "GenericError", desc } });
    expect(await add({ "qom-type": "tls-creds-x509", id: "tls0", endpoint: "server", dir: pki.serverDir })).toEqual(
      error("attempt to add duplicate property 'tls0' to object (type 'container')"),
    );
    expect(await add({ "qom-type": "tls-creds-x509", id: "t1", endpoint: "server" })).toEqual(error("Missing 'dir' property value"));
    expect(await add({ "qom-type": "tls-creds-x509", id: "t1", endpoint: "server", dir: pki.serverDir, "verify-peer": "yes" })).toEqual(
      error("Invalid parameter type for 'verify-peer', expected: boolean"),
    );
    expect(await add({ "qom-type": "tls-creds-x509", id: "t1", dir: pki.serverDir, foo: 1 })).toEqual(error("Parameter 'foo' is unexpected"));
    expect(await add({ "qom-type": "nope", id: "t1" })).toEqual(error("Parameter 'qom-type' does not accept value 'nope'"));
    expect(await add({ id: "t1" })).toEqual(error("Parameter 'qom-type' is missing"));
    expect(await add({ "qom-type": "tls-creds-x509" })).toEqual(error("Parameter 'id' is missing"));

    const socketAdd = (id: string, creds: string) =>
      client.execute("chardev-add", {
        id,
        backend: { type: "socket", data: { addr: { type: "inet", data: { host: "127.0.0.1", port: "0" } }, server: true, wait: false, "tls-creds": creds } },
      });
    expect(await socketAdd("s1", "zz")).toEqual(error("Failed to add chardev 's1': No TLS credentials with id 'zz'"));
    expect(await socketAdd("s0", "tls0")).toEqual({ return: {} });
    expect(await client.execute("object-del", { id: "tls0" })).toEqual(error("object 'tls0' is in use, can not be deleted"));
    expect(await client.execute("object-del", { id: "nope" })).toEqual(error("object 'nope' not found"));
    expect(await client.execute("object-del", {})).toEqual(error("Parameter 'id' is missing"));
    expect(await client.execute("chardev-remove", { id: "s0" })).toEqual({ return: {} });
    expect(await client.execute("object-del", { id: "tls0" })).toEqual({ return: {} });
    expect(await client.execute("object-del", { id: "tls0" })).toEqual(error("object 'tls0' not found"));
  });
});
