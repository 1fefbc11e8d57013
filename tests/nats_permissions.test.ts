// NATS authorization and TLS for the clients of a console on NATS: a nats-server whose users
// have exactly the permissions docs/nats.md lists for console owners, operators and viewers,
// with a chardev-hub publishing `sh` as the owner; the real dist/cli.js's `attach`, `tail` and
// `list` (and a `nats,role=viewer` chardev) as the others. Then `--tls-creds DIR` of the
// `nats://` clients against a server that verifies client certificates (tests/_tls_certs.ts).
// Needs nats-server, sh and openssl; runs under Node, Deno and Bun.

import * as path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry } from "../host-ts/mod.ts";
import { bytes, FeHandler } from "./_fe_handler.ts";
import { CliProcess, readText, until } from "./cli/_cli.ts";
import { makeTestPki } from "./_tls_certs.ts";
import { natsTmp, startServer, stopAll, type NatsServer } from "./_nats.ts";

/** What every client that follows a console may publish: JetStream requests to read the stream and the cards, and the screen request. */
const FOLLOW = [
  "console.*.screen",
  "$JS.API.INFO",
  "$JS.API.STREAM.INFO.CONSOLES",
  "$JS.API.STREAM.MSG.GET.CONSOLES",
  "$JS.API.CONSUMER.CREATE.CONSOLES.>",
  "$JS.API.CONSUMER.DELETE.CONSOLES.>",
  "$JS.API.CONSUMER.INFO.CONSOLES.>",
  "$JS.API.CONSUMER.MSG.NEXT.CONSOLES.>",
  "$JS.API.STREAM.INFO.KV_chardev-hub-consoles",
  "$JS.API.CONSUMER.CREATE.KV_chardev-hub-consoles.>",
  "$JS.API.CONSUMER.INFO.KV_chardev-hub-consoles.>",
  "$JS.API.STREAM.MSG.GET.KV_chardev-hub-consoles",
];
/** The console's owner: its output, its stream, its last offset, its KV card. */
const OWNER_PUBLISH = [
  "console.*.out",
  "$JS.API.INFO",
  "$JS.API.STREAM.INFO.CONSOLES",
  "$JS.API.STREAM.CREATE.CONSOLES",
  "$JS.API.STREAM.MSG.GET.CONSOLES",
  "$JS.API.STREAM.INFO.KV_chardev-hub-consoles",
  "$JS.API.STREAM.CREATE.KV_chardev-hub-consoles",
  "$KV.chardev-hub-consoles.*",
];
const list = (subjects: readonly string[]) => `[${subjects.map((subject) => JSON.stringify(subject)).join(", ")}]`;

const CONFIG = `
authorization {
  users = [
    { user: owner, password: ownerpw, permissions: { publish: { allow: ${list(OWNER_PUBLISH)} }, subscribe: { allow: ["console.*.in", "console.*.screen", "_INBOX.>"] }, allow_responses: true } }
    { user: operator, password: operatorpw, permissions: { publish: { allow: ${list(["console.*.in", ...FOLLOW])} }, subscribe: { allow: ["_INBOX.>"] } } }
    { user: watcher, password: watcherpw, permissions: { publish: { allow: ${list(FOLLOW)} }, subscribe: { allow: ["_INBOX.>"] } } }
  ]
}
`;

let server: NatsServer;
let registries: ChardevRegistry[] = [];
let consoleCount = 0;

beforeAll(async () => {
  server = await startServer({ config: CONFIG });
}, 30_000);
afterAll(async () => {
  await CliProcess.stopAll();
  await stopAll();
});
beforeEach(() => {
  registries = [];
});
afterEach(async () => {
  await CliProcess.stopAll();
  for (const reg of registries) await reg.close();
});

/** A chardev-hub publishing `sh` (on a pipe) as console `name` with the owner's login, and the console's log. */
async function startOwnedConsole(name: string): Promise<{ cli: CliProcess; log: string }> {
  const log = path.join(natsTmp(), `${name}.log`);
  const cli = new CliProcess([
    "-chardev", "spawn,id=sh,cmd=sh",
    "-chardev", `file,id=log,path=${log}`,
    "-chardev", `nats,id=up,server=${server.url},console=${name},user=owner,password=ownerpw`,
    "-chardev", "hub,id=hub0,ring=64K,chardevs.0=log,chardevs.1=up",
    "-frontend", "sh,chardev=hub0",
  ]);
  // Ready once its card is on the list (which the watcher may read).
  for (;;) {
    if (cli.ended) throw new Error(`chardev-hub ended: ${cli.stderr}`);
    const listed = await CliProcess.run(["list", server.url, "--json", "--user", "watcher", "--password", "watcherpw"]);
    if (listed.code === 0 && (JSON.parse(listed.stdout) as { consoles: { console: string; state: string }[] }).consoles.some((card) => card.console === name && card.state === "open")) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { cli, log };
}

describe("nats permissions for console owners, operators and viewers (docs/nats.md)", () => {
  it("a viewer-only user follows the console with attach, tail and a viewer chardev, but its typing never reaches the device and it is told so; an operator types", async () => {
    const name = `perm${process.pid}x${++consoleCount}`;
    const { cli: owner, log } = await startOwnedConsole(name);
    const target = `${server.url}/${name}`;

    const operator = new CliProcess(["attach", target, "--user", "operator", "--password", "operatorpw"]);
    await operator.waitForStderr(`[-- ${name}: attached rw over NATS (${server.url}) --]`);
    operator.send("echo op-$((2*3))\n");
    await until(() => /^op-6\r?$/m.test(readText(log)), "the operator's answer in the console's log");

    // attach --replay screen as the watcher: the screen shows what the operator made the shell print.
    const watcher = new CliProcess(["attach", target, "--replay", "screen", "--user", "watcher", "--password", "watcherpw"]);
    await watcher.waitForStderr(`[-- ${name}: attached rw over NATS (${server.url}) --]`);
    await watcher.waitForStdout("op-6");
    watcher.send("echo wv-$((7*7))\n");
    await watcher.waitForStderr(/chardev-hub: nats: nats-attach: typing is not permitted: [^\n]*[Pp]ermissions [Vv]iolation[^\n]*console\.[^\n]+\.in/);

    // tail --replay as the watcher: everything the console printed so far.
    const tail = new CliProcess(["tail", target, "--replay", "1M", "--user", "watcher", "--password", "watcherpw"]);
    await tail.waitForStdout("op-6");

    // A viewer chardev with from=start as the watcher: the whole output, and its typing is refused too.
    const warnings: string[] = [];
    const reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: (line) => warnings.push(line) });
    registries.push(reg);
    await reg.add(`nats,id=v0,role=viewer,server=${server.url},console=${name},from=start,user=watcher,password=watcherpw`);
    const fe = new FeHandler();
    fe.room = 1 << 20;
    reg.attach("v0", fe).write(bytes("echo chardev-$((4*4))\n"));
    await until(() => new TextDecoder().decode(fe.readBuf).includes("op-6"), "the viewer chardev to get the operator's answer");
    await until(() => warnings.some((line) => line.startsWith("nats: v0: typing is not permitted: ")), "the viewer chardev's notice");

    // The operator's next line reaches the device after all of that: the watchers' typing never did.
    operator.send("echo after-$((1+1))\n");
    await until(() => /^after-2\r?$/m.test(readText(log)), "the operator's second answer in the console's log");
    await watcher.waitForStdout("after-2");
    await tail.waitForStdout("after-2");
    expect(readText(log)).not.toContain("wv-");
    expect(readText(log)).not.toContain("chardev-");
    expect(readText(log)).not.toContain("49");
    // The owner's permissions were enough for all it does (stream, card, typing, screen).
    expect(owner.stderr).toBe("");

    watcher.send("\x1d.");
    operator.send("\x1d.");
    expect((await watcher.exit).code).toBe(0);
    expect((await operator.exit).code).toBe(0);
    expect((await tail.stop("SIGINT")).code).toBe(0);
  }, 60_000);
});

describe("nats:// clients over TLS with a client certificate (--tls-creds DIR)", () => {
  it("list, attach and tail reach a server that verifies client certificates", async () => {
    const pki = makeTestPki();
    const secure = await startServer({
      config: `
tls {
  cert_file: "${path.join(pki.serverDir, "server-cert.pem")}"
  key_file: "${path.join(pki.serverDir, "server-key.pem")}"
  ca_file: "${path.join(pki.serverDir, "ca-cert.pem")}"
  verify: true
}
`,
    });
    const url = `tls://127.0.0.1:${secure.port}`;
    const name = `tls${process.pid}x${++consoleCount}`;
    const log = path.join(natsTmp(), `${name}.log`);
    const owner = new CliProcess([
      "-object", `tls-creds-x509,id=tls0,endpoint=client,dir=${pki.clientDir}`,
      "-chardev", "spawn,id=sh,cmd=sh",
      "-chardev", `file,id=log,path=${log}`,
      "-chardev", `nats,id=up,server=${url},console=${name},tls-creds=tls0`,
      "-chardev", "hub,id=hub0,ring=64K,chardevs.0=log,chardevs.1=up",
      "-frontend", "sh,chardev=hub0",
    ]);
    for (;;) {
      if (owner.ended) throw new Error(`chardev-hub ended: ${owner.stderr}`);
      const listed = await CliProcess.run(["list", url, "--tls-creds", pki.clientDir]);
      if (listed.code === 0 && listed.stdout.split("\n").some((line) => line.startsWith(`${name} `) && /\sopen\s/.test(line))) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const session = new CliProcess(["attach", `${url}/${name}`, "--tls-creds", pki.clientDir]);
    await session.waitForStderr(`[-- ${name}: attached rw over NATS (${url}) --]`);
    session.send("echo tls-$((6*7))\n");
    await session.waitForStdout("tls-42");
    await until(() => /^tls-42\r?$/m.test(readText(log)), "the answer in the console's log");
    const tail = new CliProcess(["tail", `${url}/${name}`, "--replay", "1M", "--tls-creds", pki.clientDir]);
    await tail.waitForStdout("tls-42");
    session.send("\x1d.");
    expect((await session.exit).code).toBe(0);
    expect((await tail.stop("SIGINT")).code).toBe(0);
    // A directory without the CA is refused before any connection, with QEMU's text.
    const missing = await CliProcess.run(["list", url, "--tls-creds", path.join(natsTmp(), "nowhere")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^chardev-hub: Unable to access credentials [^\n]*ca-cert\.pem: [^\n]+\n$/);
  }, 60_000);
});
