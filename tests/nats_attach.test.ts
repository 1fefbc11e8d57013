// The client subcommands against consoles on NATS: `chardev-hub list nats://HOST:PORT` (the
// consoles' KV cards), `attach nats://HOST:PORT/NAME` (under a private tmux server for the
// terminal, with piped stdin for the rest) and `tail nats://...`, all the real dist/cli.js
// against a real `nats-server -js` (tests/_nats.ts) and a chardev-hub whose console (`sh` on a
// pty behind a hub) publishes with `nats,role=console`. Needs nats-server, sh, stty and tmux.

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { replayStart } from "../host-ts/cli/nats_client.ts";
import { afterAll, afterEach, beforeAll, describe, expect, it, testRuntime } from "./_harness.ts";
import { CLI, CliProcess, readText, until } from "./cli/_cli.ts";
import { natsTmp, startServer, stopAll, type NatsServer } from "./_nats.ts";

let server: NatsServer;
let consoleCount = 0;

beforeAll(async () => {
  server = await startServer();
}, 30_000);
afterAll(async () => {
  await CliProcess.stopAll();
  await stopAll();
});
afterEach(async () => {
  await CliProcess.stopAll();
});

/** A console name of its own for each test (they share one server and its stream). */
function newConsoleName(): string {
  return `vm${process.pid}x${++consoleCount}`;
}

/**
 * A chardev-hub whose device (`spawn`, `sh` unless `device` says otherwise) is shared by a hub
 * with a file log and a NATS console; resolves once the console's card is in the KV bucket.
 */
async function startConsole(name: string, options: { device?: string; natsKeys?: string; at?: NatsServer } = {}): Promise<{ cli: CliProcess; log: string }> {
  const url = (options.at ?? server).url;
  const log = path.join(natsTmp(), `${name}.log`);
  const cli = new CliProcess([
    "-chardev", options.device ?? "spawn,id=sh,cmd=sh",
    "-chardev", `file,id=log,path=${log}`,
    "-chardev", `nats,id=up,server=${url},console=${name}${options.natsKeys ?? ""}`,
    "-chardev", "hub,id=hub0,ring=64K,chardevs.0=log,chardevs.1=up",
    "-frontend", "sh,chardev=hub0",
  ]);
  await until(() => cli.ended !== null || listed(name, url), `console ${name} on the list (stderr: ${cli.stderr})`);
  if (cli.ended) throw new Error(`chardev-hub ended: ${cli.stderr}`);
  return { cli, log };
}

/** Whether `list nats://... --json` shows console `name` open (run synchronously: a poll). */
function listed(name: string, url: string): boolean {
  const [command, prefix] = testRuntime === "deno" ? [process.execPath, ["run", "-A", CLI]] : [process.execPath, [CLI]];
  const result = spawnSync(command, [...prefix, "list", url, "--json"], { encoding: "utf8" });
  if (result.status !== 0) return false;
  const consoles = (JSON.parse(result.stdout) as { consoles: { console: string; state: string }[] }).consoles;
  return consoles.some((card) => card.console === name && card.state === "open");
}

/** The attach command line for a tmux pane on the runtime under test. */
function paneAttach(target: string, after: string): string {
  const runtimeCommand = testRuntime === "deno" ? `${process.execPath} run -A` : process.execPath;
  return `${runtimeCommand} ${CLI} attach ${target}; echo attach-exit=$?; stty -a > ${after}; sleep 60`;
}

describe("chardev-hub list nats://HOST:PORT", () => {
  it("shows a console a chardev-hub publishes, as a table and as JSON, and closed once it stopped", async () => {
    const name = newConsoleName();
    const { cli } = await startConsole(name);
    const table = await CliProcess.run(["list", server.url]);
    expect(table.stderr).toBe("");
    expect(table.code).toBe(0);
    const header = table.stdout.split("\n")[0];
    expect(header).toMatch(/^CONSOLE\s+HOST\s+DEVICE\s+SIZE\s+CHARDEV\s+STATE\s+STARTED\s+HEARTBEAT\s+OUTPUT$/);
    const row = table.stdout.split("\n").find((line) => line.startsWith(`${name} `));
    expect(row, table.stdout).toBeDefined();
    // The device is the hub the console is a backend of (no device= given), at the hub's agreed size.
    expect(row).toMatch(new RegExp(`^${name}\\s+\\S+:${cli.child.pid}\\s+hub0\\s+80x24\\s+up\\s+open\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+\\d+ s ago\\s+\\d+ B$`));

    const json = await CliProcess.run(["list", server.url, "--json"]);
    expect(json.code).toBe(0);
    const card = (JSON.parse(json.stdout) as { consoles: Record<string, unknown>[] }).consoles.find((each) => each.console === name);
    expect(card).toMatchObject({ console: name, chardev: "up", pid: cli.child.pid, stream: "CONSOLES", output: `console.${name}.out`, input: `console.${name}.in`, state: "open", stale: false, device: "hub0", cols: 80, rows: 24 });

    await cli.stop("SIGTERM");
    const afterStop = await CliProcess.run(["list", server.url]);
    expect(afterStop.stdout.split("\n").find((line) => line.startsWith(`${name} `))).toMatch(/\sclosed\s/);
  });

  it("a server that cannot be reached, and a nats:// address with a console name, are one line each", async () => {
    const unreachable = await CliProcess.run(["list", "nats://127.0.0.1:1"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stdout).toBe("");
    expect(unreachable.stderr).toMatch(/^chardev-hub: nats: could not connect to nats:\/\/127\.0\.0\.1:1: [^\n]+\n$/);
    expect(await CliProcess.run(["list", `${server.url}/vm1`])).toEqual({ code: 2, stdout: "", stderr: "chardev-hub: list: nats://HOST:PORT names the servers only (no /NAME)\n" });
    expect(await CliProcess.run(["who", `${server.url}/vm1`])).toEqual({
      code: 2,
      stdout: "",
      stderr: "chardev-hub: who: not available over NATS (the console's hub knows who is attached: ask on its host)\n",
    });
    expect(await CliProcess.run(["list", "--token", "x"])).toEqual({ code: 2, stdout: "", stderr: "chardev-hub: list: --token is for consoles on NATS (nats://HOST:PORT...)\n" });
  });
});

describe("chardev-hub attach nats://HOST:PORT/NAME", () => {
  it("under tmux: typing reaches the shell over NATS, and Ctrl-] . detaches with the terminal restored", async () => {
    const name = newConsoleName();
    const { log } = await startConsole(name);
    const tmuxServer = `chub-nats-${process.pid}-${Date.now()}`;
    const tmux = (...args: string[]) => spawnSync("tmux", ["-L", tmuxServer, ...args], { encoding: "utf8" });
    const after = path.join(natsTmp(), `${name}-stty-after.txt`);
    try {
      expect(tmux("new-session", "-d", "-x", "120", "-y", "30", paneAttach(`${server.url}/${name}`, after)).status).toBe(0);
      const screen = () => tmux("capture-pane", "-p").stdout ?? "";
      await until(() => screen().includes(`[-- ${name}: attached rw over NATS (${server.url}) --]`), `the attach notice (screen: ${screen()})`);
      // Raw mode while attached: no line editing, no echo by the terminal.
      const paneTty = tmux("display-message", "-p", "#{pane_tty}").stdout.trim();
      // (The notice is printed just before the session sets raw mode: wait for it, do not race it.)
      const paneMode = () => spawnSync("stty", ["-a", "-F", paneTty], { encoding: "utf8" }).stdout;
      await until(() => /(^|\s)-icanon(\s|$)[\s\S]*(^|\s)-echo(\s|$)/m.test(paneMode()), `raw mode on the pane (stty: ${paneMode()})`);
      tmux("send-keys", "-l", "echo hi-$((6*7))");
      tmux("send-keys", "Enter");
      await until(() => /^hi-42\s*$/m.test(screen()), `the shell's answer (screen: ${screen()})`);
      // The device itself ran it: the console's log has the answer too.
      expect(readText(log)).toMatch(/^hi-42\r?$/m);
      // The commands that need the console's hub say so.
      tmux("send-keys", "C-]");
      tmux("send-keys", "-l", "w");
      await until(() => screen().includes(`[-- ${name}: 'w' is not available here (it needs the console's own hub: attach on its host) --]`), `w's refusal (screen: ${screen()})`);
      tmux("send-keys", "C-]");
      tmux("send-keys", "-l", ".");
      await until(() => readText(after).includes("speed"), "stty -a after the detach");
      expect(screen()).toContain(`[-- ${name}: detached --]`);
      expect(screen()).toContain("attach-exit=0");
      const restored = readText(after);
      expect(restored).toMatch(/(^|\s)icanon(\s|$)/m);
      expect(restored).toMatch(/(^|\s)echo(\s|$)/m);
      expect(restored).not.toMatch(/(^|\s)-icanon(\s|$)/m);
    } finally {
      tmux("kill-server");
    }
  });

  it("--ro: its typing never reaches the device, while it sees what another client types", async () => {
    const name = newConsoleName();
    const { log } = await startConsole(name);
    const target = `${server.url}/${name}`;
    const viewer = new CliProcess(["attach", target, "--ro"]);
    await viewer.waitForStderr(`[-- ${name}: attached ro over NATS (${server.url}) --]`);
    viewer.send("echo ro-$((5*5))\n");
    const typist = new CliProcess(["attach", target]);
    await typist.waitForStderr(`[-- ${name}: attached rw over NATS (${server.url}) --]`);
    typist.send("echo rw-$((3*3))\n");
    await viewer.waitForStdout("rw-9");
    await typist.waitForStdout("rw-9");
    // What the device got is all in its log: the typist's line, never the viewer's.
    await until(() => /^rw-9\r?$/m.test(readText(log)), "the typist's answer in the console's log");
    expect(readText(log)).not.toContain("ro-");
    expect(viewer.stdout).not.toContain("ro-25");
    viewer.send("\x1d.");
    typist.send("\x1d.");
    expect((await viewer.exit).code).toBe(0);
    expect((await typist.exit).code).toBe(0);
    expect(viewer.stderr).toContain(`[-- ${name}: detached --]`);
  });

  it("a console published with input=off is attached read-only, saying why", async () => {
    const name = newConsoleName();
    await startConsole(name, { natsKeys: ",input=off" });
    const session = new CliProcess(["attach", `${server.url}/${name}`]);
    await session.waitForStderr(`[-- ${name}: attached ro over NATS (${server.url}) --]`);
    expect(session.stderr).toContain(`chardev-hub: console '${name}' ignores typing (input=off): attached read-only\n`);
    session.send("\x1d.");
    expect((await session.exit).code).toBe(0);
  });

  it("a console with no card is followed all the same, with a line saying so", async () => {
    await startConsole(newConsoleName()); // the stream exists (a console creates it); this name has no card
    const session = new CliProcess(["attach", `${server.url}/nobody${process.pid}`, "--ro"]);
    await session.waitForStderr(`[-- nobody${process.pid}: attached ro over NATS (${server.url}) --]`);
    expect(session.stderr).toContain(`chardev-hub: console 'nobody${process.pid}' has no card in KV bucket chardev-hub-consoles: waiting for its output anyway\n`);
    session.send("\x1d.");
    expect((await session.exit).code).toBe(0);
  });

  it("a console that does not exist is refused before the terminal is touched; --replay screen of one that keeps no screen says why", async () => {
    const missingStream = await CliProcess.run(["attach", `${server.url}/nobody`, "--stream", "NOSUCHSTREAM"]);
    expect(missingStream).toEqual({ code: 1, stdout: "", stderr: "chardev-hub: nats: stream 'NOSUCHSTREAM' does not exist (a console creates it)\n" });
    const name = newConsoleName();
    await startConsole(name, { natsKeys: ",screen=off" });
    expect(await CliProcess.run(["attach", `${server.url}/${name}`, "--replay", "screen"])).toEqual({
      code: 1,
      stdout: "",
      stderr: `chardev-hub: nats: from=screen: console '${name}' gave no screen: the console keeps no screen (screen=off)\n`,
    });
  });

  it("attach and tail with --replay screen start with the console's screen as it stands, then follow; a local tail refuses it", async () => {
    const name = newConsoleName();
    const { log } = await startConsole(name);
    const typist = new CliProcess(["attach", `${server.url}/${name}`]);
    await typist.waitForStderr(`[-- ${name}: attached rw over NATS (${server.url}) --]`);
    typist.send("echo before-$((20+1))\n");
    await until(() => /^before-21\r?$/m.test(readText(log)), "the shell's answer in the console's log");
    const late = new CliProcess(["attach", `${server.url}/${name}`, "--replay", "screen", "--ro"]);
    await late.waitForStderr(`[-- ${name}: attached ro over NATS (${server.url}) --]`);
    // The screen comes first: a terminal reset, then what the shell printed before.
    await late.waitForStdout("before-21");
    expect(late.stdout.startsWith("\x1bc")).toBe(true);
    // tail takes --replay screen over NATS too: the same screen first, on stdout.
    const tail = new CliProcess(["tail", `${server.url}/${name}`, "--replay", "screen"]);
    await tail.waitForStdout("before-21");
    expect(tail.stdout.startsWith("\x1bc")).toBe(true);
    typist.send("echo after-$((20+2))\n");
    await late.waitForStdout("after-22");
    await tail.waitForStdout("after-22");
    await tail.stop("SIGINT");
    // A local console's tail has no screen to ask for: a usage error, before anything connects.
    expect(await CliProcess.run(["tail", name, "--replay", "screen"])).toEqual({
      code: 2,
      stdout: "",
      stderr: "chardev-hub: tail: --replay screen is for consoles on NATS (tail nats://HOST:PORT/NAME); here give a byte count\n",
    });
    typist.send("\x1d.");
    late.send("\x1d.");
    expect((await typist.exit).code).toBe(0);
    expect((await late.exit).code).toBe(0);
  });
});

describe("chardev-hub tail nats://HOST:PORT/NAME", () => {
  it("--replay BYTES starts exactly that many bytes before the end; what the stream's limits discarded is an exact [-- N bytes missed --] line", async () => {
    const name = newConsoleName();
    const lines = 300_000;
    // A server and a stream of their own (a second stream may not take console.*.out on the
    // first), 1 MiB at most, for ~2 MB of output: the oldest is discarded.
    const small = await startServer();
    await startConsole(name, { device: `spawn,id=sh,cmd=sh,args.0=-c,args.1=seq 1 ${lines}; sleep 600`, natsKeys: ",stream=SMALL,max-bytes=1M", at: small });
    const client = await connect({ servers: small.url });
    try {
      const manager = await jetstreamManager(client);
      const subject = `console.${name}.out`;
      const lastEnd = async () => {
        const last = await manager.streams.getMessage("SMALL", { last_by_subj: subject }).catch(() => null);
        return last ? { end: Number(last.header.get("Chardev-Hub-Offset")) + last.data.length, tail: new TextDecoder().decode(last.data) } : null;
      };
      for (;;) {
        const last = await lastEnd();
        if (last?.tail.endsWith(`\n${lines}\r\n`)) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const end = (await lastEnd())!.end;
      const info = await manager.streams.info("SMALL");
      const first = await manager.streams.getMessage("SMALL", { seq: info.state.first_seq });
      const firstOffset = Number(first!.header.get("Chardev-Hub-Offset"));
      expect(firstOffset).toBeGreaterThan(0);

      // 1000 bytes: exactly the last 1000 bytes of the output, no gap.
      const recent = new CliProcess(["tail", `${small.url}/${name}`, "--replay", "1000", "--stream", "SMALL"]);
      await recent.waitForStdout(`\n${lines}\r\n`);
      await recent.stop("SIGINT");
      expect(recent.stdout.length).toBe(1000);
      expect(recent.stdout).toMatch(new RegExp(`\\r\\n${lines}\\r\\n$`));

      // More than the stream holds: the discarded start is one exact gap, then everything stored.
      const all = new CliProcess(["tail", `${small.url}/${name}`, "--replay", "100M", "--stream", "SMALL"]);
      await all.waitForStdout(`\n${lines}\r\n`);
      await all.stop("SIGINT");
      const note = `\r\n[-- ${firstOffset} bytes missed --]\r\n`;
      expect(all.stdout.startsWith(note)).toBe(true);
      expect(all.stdout.length - note.length).toBe(end - firstOffset);
      expect(all.stdout.slice(note.length).startsWith(Buffer.from(first!.data).toString("latin1"))).toBe(true);
      expect(all.stderr).toContain(`${firstOffset} bytes of console.${name}.out missed at offset 0`);
    } finally {
      await client.close();
    }
  });
});

describe("where --replay BYTES starts in the stream", () => {
  it("is the sequence of the console's message holding that offset, among other consoles' messages", async () => {
    const own = await startServer();
    const client = await connect({ servers: own.url });
    try {
      const manager = await jetstreamManager(client);
      await manager.streams.add({ name: "MIXED", subjects: ["console.*.out"] });
      const js = jetstream(client);
      // Console a: 10 messages of 100 bytes (offsets 0, 100, ... 900), each after one of console b's.
      const sequenceOfA: number[] = [];
      for (let i = 0; i < 10; i++) {
        const other = headers();
        other.set("Chardev-Hub-Offset", String(i * 7));
        await js.publish("console.b.out", new Uint8Array(7), { headers: other });
        const mine = headers();
        mine.set("Chardev-Hub-Offset", String(i * 100));
        sequenceOfA.push((await js.publish("console.a.out", new Uint8Array(100).fill(0x61 + i), { headers: mine })).seq);
      }
      // The end is 1000: 250 bytes back is offset 750, in the message at 700 (the 8th).
      expect(await replayStart(manager, "MIXED", "a", 250)).toEqual({ from: 750, sequence: sequenceOfA[7] });
      expect(await replayStart(manager, "MIXED", "a", 300)).toEqual({ from: 700, sequence: sequenceOfA[7] });
      expect(await replayStart(manager, "MIXED", "a", 5000)).toEqual({ from: 0, sequence: sequenceOfA[0] });
      expect(await replayStart(manager, "MIXED", "a", 1)).toEqual({ from: 999, sequence: sequenceOfA[9] });
      // A console with no output yet: nothing to replay.
      expect(await replayStart(manager, "MIXED", "c", 100)).toEqual({ from: 0 });
      // Once the oldest are gone (purged up to a's 4th message), an earlier start has no sequence: the viewer reports the gap.
      await manager.streams.purge("MIXED", { seq: sequenceOfA[3] });
      expect(await replayStart(manager, "MIXED", "a", 5000)).toEqual({ from: 0, sequence: undefined });
      expect(await replayStart(manager, "MIXED", "a", 650)).toEqual({ from: 350, sequence: sequenceOfA[3] });
    } finally {
      await client.close();
    }
  });
});
