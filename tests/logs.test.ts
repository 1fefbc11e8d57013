// Logs as operators need them (issue 14, item 3): stamped lines, hub events as lines, rotation
// by size, reopening (QMP and SIGHUP) so logrotate can move a log away, and O_APPEND so
// copytruncate leaves no NUL hole. Real files, a real truncate, the real command and signal.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, type HubChardev } from "../host-ts/mod.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { openSwitches, switchDriver } from "./_switch_chardev.ts";
import { CliProcess, readText, SocketClient, until } from "./cli/_cli.ts";
import { asIntruder, ensureIntruderAccount } from "./_intruder.ts";
import { freePort } from "./_ports.ts";
import { spawn } from "node:child_process";

let reg: ChardevRegistry;
let dir: string;

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: false });
  reg.registerDriver(switchDriver);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-logs-test-"));
});
afterEach(async () => {
  await CliProcess.stopAll();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const STAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Each line of `text` (LF-terminated; the last may be open) as [stamp ms, rest]; throws on a line without a stamp. */
function stampedLines(text: string): [number, string][] {
  const lines = text.split(/(?<=\n)/);
  return lines.map((line) => {
    const match = STAMP.exec(line);
    if (!match) throw new Error(`a line without a stamp: ${JSON.stringify(line)}`);
    return [Date.parse(match[1]), line.slice(match[0].length)];
  });
}

/** `count` numbered lines, `#00001 xxxxx...\n`, as one string. */
function numberedLines(count: number, width = 30): string {
  let text = "";
  for (let index = 0; index < count; index++) text += `#${String(index).padStart(5, "0")} `.padEnd(width - 1, "x") + "\n";
  return text;
}

describe("timestamp=on", () => {
  it("the file chardev stamps every line with the UTC time of its first byte, once per line however the writes split it", async () => {
    const log = path.join(dir, "console.log");
    await reg.add(`file,id=log,path=${log},timestamp=on`);
    const fe = reg.attach("log", new FeHandler());
    const before = Date.now();
    expect(fe.write(bytes("boot: a"))).toBe(7);
    const afterFirstByte = Date.now();
    await sleep(30);
    expect(fe.write(bytes("b\r\nsecond line\nthi"))).toBe(18);
    const afterSecondWrite = Date.now();
    expect(fe.write(bytes("rd\n"))).toBe(3);
    const lines = stampedLines(fs.readFileSync(log, "utf8"));
    expect(lines.map(([, rest]) => rest)).toEqual(["boot: ab\r\n", "second line\n", "third\n"]);
    // Stamped when its first byte came, not when the line ended 30 ms later.
    expect(lines[0][0]).toBeGreaterThanOrEqual(before - 1);
    expect(lines[0][0]).toBeLessThanOrEqual(afterFirstByte);
    expect(lines[1][0]).toBeGreaterThan(afterFirstByte);
    expect(lines[2][0]).toBeLessThanOrEqual(afterSecondWrite);
  });

  it("a lone CR does not end a line (a progress bar stays one line); LF and CRLF do", async () => {
    const log = path.join(dir, "console.log");
    await reg.add(`file,id=log,path=${log},timestamp=on`);
    const fe = reg.attach("log", new FeHandler());
    fe.write(bytes("10%\r50%\r100%\r\nok\n"));
    expect(stampedLines(fs.readFileSync(log, "utf8")).map(([, rest]) => rest)).toEqual(["10%\r50%\r100%\r\n", "ok\n"]);
  });

  it("logfile= of any chardev is stamped with timestamp=on, the chardev's own output untouched", async () => {
    const log = path.join(dir, "ring.log");
    await reg.add(`ringbuf,id=rb,size=64,logfile=${log},timestamp=on`);
    const fe = reg.attach("rb", new FeHandler());
    fe.write(bytes("one\ntwo\n"));
    expect(stampedLines(fs.readFileSync(log, "utf8")).map(([, rest]) => rest)).toEqual(["one\n", "two\n"]);
    expect(reg.ringbufRead("rb", 64)).toBe("one\ntwo\n");
  });

  it("QMP chardev-add takes timestamp as a member of backend.data", async () => {
    const log = path.join(dir, "qmp.log");
    await reg.add({ id: "log", backend: { type: "file", data: { out: log, timestamp: true } } });
    reg.attach("log", new FeHandler()).write(bytes("x\n"));
    expect(stampedLines(fs.readFileSync(log, "utf8")).map(([, rest]) => rest)).toEqual(["x\n"]);
  });
});

describe("rotation by size", () => {
  it("logfilemax=BYTES rotates to FILE.1 ... FILE.N and no byte is lost across the files", async () => {
    const log = path.join(dir, "console.log");
    await reg.add(`file,id=log,path=${log},logfilemax=300,rotate=50`);
    const fe = reg.attach("log", new FeHandler());
    const stream = numberedLines(100); // 3000 bytes, written 70 bytes at a time
    for (let at = 0; at < stream.length; at += 70) expect(fe.write(bytes(stream.slice(at, at + 70)))).toBe(Math.min(70, stream.length - at));
    const rotated = fs.readdirSync(dir).filter((name) => name.startsWith("console.log.")).length;
    expect(rotated).toBeGreaterThanOrEqual(8);
    let joined = "";
    for (let index = rotated; index >= 1; index--) {
      const part = fs.readFileSync(`${log}.${index}`, "utf8");
      // Rotated after the write that took it to 300 bytes or beyond.
      expect(part.length).toBeGreaterThanOrEqual(300);
      expect(part.length).toBeLessThan(300 + 70);
      joined += part;
    }
    joined += fs.readFileSync(log, "utf8");
    expect(joined).toBe(stream);
  });

  it("rotate=N keeps N older files: the oldest go, what is kept is the stream's end, whole", async () => {
    const log = path.join(dir, "console.log");
    await reg.add(`file,id=log,path=${log},logfilemax=300,rotate=3,timestamp=on`);
    const fe = reg.attach("log", new FeHandler());
    const stream = numberedLines(100);
    for (let at = 0; at < stream.length; at += 90) fe.write(bytes(stream.slice(at, at + 90)));
    expect(fs.readdirSync(dir).sort()).toEqual(["console.log", "console.log.1", "console.log.2", "console.log.3"]);
    let joined = "";
    for (const name of ["console.log.3", "console.log.2", "console.log.1", "console.log"]) {
      const text = fs.readFileSync(path.join(dir, name), "utf8");
      // With stamps a file is cut after a whole line: each starts with a stamp.
      joined += stampedLines(text).map(([, rest]) => rest).join("");
    }
    expect(joined.length).toBeGreaterThan(0);
    expect(stream.endsWith(joined)).toBe(true);
    expect(joined.startsWith("#")).toBe(true);
  });

  it("logfile= rotates too, and rotate=0 empties the log instead of keeping files", async () => {
    const log = path.join(dir, "ring.log");
    await reg.add(`ringbuf,id=rb,size=64,logfile=${log},logfilemax=100,rotate=0`);
    const fe = reg.attach("rb", new FeHandler());
    for (let index = 0; index < 9; index++) fe.write(bytes(`${String(index).repeat(29)}\n`)); // 270 bytes
    expect(fs.readdirSync(dir)).toEqual(["ring.log"]);
    // Emptied after 120 and after 240 bytes: the last 30 are what is left.
    expect(fs.readFileSync(log, "utf8")).toBe(`${"8".repeat(29)}\n`);
  });

  it("rotate out of range is refused with the option's name", async () => {
    const error = await errorOf(() => reg.add(`file,id=log,path=${path.join(dir, "x.log")},logfilemax=1K,rotate=100000`));
    expect(error.code).toBe("INVALID_VALUE");
    expect(error.message).toBe("Parameter 'rotate' expects a number of files from 0 to 1000");
    expect(fs.existsSync(path.join(dir, "x.log"))).toBe(false);
  });
});

describe("reopening and logrotate", () => {
  it("reopenLogs after mv: the next bytes go to a new file at the path, the moved one gets nothing more", async () => {
    const log = path.join(dir, "console.log");
    const other = path.join(dir, "ring.log");
    await reg.add(`file,id=log,path=${log}`);
    await reg.add(`ringbuf,id=rb,size=64,logfile=${other}`);
    const fe = reg.attach("log", new FeHandler());
    const ring = reg.attach("rb", new FeHandler());
    fe.write(bytes("before\n"));
    ring.write(bytes("ring before\n"));
    fs.renameSync(log, `${log}.1`);
    fs.renameSync(other, `${other}.1`);
    fe.write(bytes("still old\n")); // not reopened yet: the moved file has it
    reg.find("log")!.reopenLogs();
    reg.find("rb")!.reopenLogs();
    fe.write(bytes("after\n"));
    ring.write(bytes("ring after\n"));
    expect(fs.readFileSync(`${log}.1`, "utf8")).toBe("before\nstill old\n");
    expect(fs.readFileSync(log, "utf8")).toBe("after\n");
    expect(fs.readFileSync(`${other}.1`, "utf8")).toBe("ring before\n");
    expect(fs.readFileSync(other, "utf8")).toBe("ring after\n");
    expect(fs.statSync(log).mode & 0o777).toBe(0o600);
  });

  it("a copytruncate while writing leaves no NUL hole (the file is written O_APPEND even with append=off)", async () => {
    const log = path.join(dir, "console.log");
    fs.writeFileSync(log, "old contents that append=off truncates\n");
    await reg.add(`file,id=log,path=${log}`);
    expect(fs.readFileSync(log, "utf8")).toBe("");
    const fe = reg.attach("log", new FeHandler());
    const first = numberedLines(200);
    fe.write(bytes(first));
    // What logrotate's copytruncate does: copy, then truncate the file in place, the writer unaware.
    fs.copyFileSync(log, `${log}.1`);
    fs.truncateSync(log, 0);
    fe.write(bytes("after the truncate\n"));
    const after = fs.readFileSync(log);
    expect(after.includes(0)).toBe(false);
    expect(after.toString("utf8")).toBe("after the truncate\n");
    expect(fs.readFileSync(`${log}.1`, "utf8")).toBe(first);
  });

  it("logfile= survives a copytruncate the same way", async () => {
    const log = path.join(dir, "ring.log");
    await reg.add(`ringbuf,id=rb,size=64,logfile=${log}`);
    const fe = reg.attach("rb", new FeHandler());
    fe.write(bytes(numberedLines(50)));
    fs.truncateSync(log, 0);
    fe.write(bytes("next\n"));
    expect(fs.readFileSync(log, "utf8")).toBe("next\n");
  });
});

describe("log-events=on", () => {
  it("a file behind a hub gets attach, detach, open and close lines of the other backends, on lines of their own", async () => {
    const log = path.join(dir, "console.log");
    await reg.add(`file,id=log,path=${log},log-events=on`);
    const [viewer] = await openSwitches(reg, "viewer");
    await reg.add("hub,id=hub0,chardevs.0=log,ring=4096");
    const fe = reg.attach("hub0", new FeHandler());
    fe.write(bytes("a line left open"));
    await sleep(10);
    reg.hubAttach("hub0", "viewer", { mode: "ro" });
    viewer.close();
    reg.hubDetach("hub0", "viewer");
    fe.write(bytes("more\n"));
    await sleep(10); // a ring hub writes its backends from the ring, just after
    expect(fs.readFileSync(log, "utf8")).toBe("a line left open\r\n[-- viewer attached ro --]\r\n[-- viewer detached --]\r\nmore\n");
  });

  it("an evicted backend's lines say it left and why: [-- evicted: stalled N ms --]", async () => {
    const log = path.join(dir, "console.log");
    await reg.add(`file,id=log,path=${log},log-events=on`);
    const [stuck] = await openSwitches(reg, "stuck");
    const hub = (await reg.add("hub,id=hub0,chardevs.0=log,chardevs.1=stuck,ring=1024,policy.1=evict,stall-ms.1=30")) as HubChardev;
    const evicted = new Promise<void>((resolve) => hub.onEvent((event) => event.type === "evict" && resolve()));
    stuck.stalled = true;
    reg.attach("hub0", new FeHandler()).write(bytes("hello\n"));
    await evicted;
    expect(fs.readFileSync(log, "utf8")).toBe("[-- stuck attached rw --]\r\nhello\n[-- stuck detached --]\r\n[-- evicted: stalled 30 ms --]\r\n");
  });

  it("a drop backend's gaps are lines in the log, adding up to what the hub reports dropped", async () => {
    const log = path.join(dir, "console.log");
    await reg.add(`file,id=log,path=${log},log-events=on`);
    const [slow] = await openSwitches(reg, "slow");
    const hub = (await reg.add("hub,id=hub0,chardevs.0=log,chardevs.1=slow,ring=4096,policy.1=drop")) as HubChardev;
    const fe = reg.attach("hub0", new FeHandler());
    slow.stalled = true;
    const stream = numberedLines(1000);
    for (let at = 0; at < stream.length; at += 1500) {
      expect(fe.write(bytes(stream.slice(at, at + 1500)))).toBeGreaterThan(0);
      await sleep(0);
    }
    slow.resume();
    await sleep(10);
    const dropped = hub.stats().find((row) => row.id === "slow")!.bytesDropped;
    expect(dropped).toBeGreaterThan(0);
    const text = fs.readFileSync(log, "utf8");
    const gapLines = [...text.matchAll(/\[-- slow: gap: (\d+) bytes dropped --\]\r\n/g)];
    expect(gapLines.length).toBeGreaterThan(0);
    expect(gapLines.reduce((sum, match) => sum + Number(match[1]), 0)).toBe(dropped);
    // Output and notes: the output is whole once the notes are taken out.
    expect(text.replace(/\[-- [^\n]* --\]\r\n/g, "")).toBe(stream);
  });

  it("a connection of another local user to a max-clients listener is named by its uid: [-- uid N attached ro --], then detached", async () => {
    // Needs root (useradd, setpriv) and Linux's /proc/net/tcp for the peer's uid, as peer_uid.test.ts.
    const intruder = ensureIntruderAccount();
    const port = await freePort();
    const log = path.join(dir, "console.log");
    await reg.add(`file,id=log,path=${log},log-events=on`);
    await reg.add(`socket,id=tcp,host=127.0.0.1,port=${port},server=on,wait=off,max-clients=4,access=any`);
    await reg.add("hub,id=hub0,ring=65536,chardevs.0=log,chardevs.1=tcp,mode.1=ro");
    const fe = reg.attach("hub0", new FeHandler());
    // socat as the other user: connected until its stdin ends.
    const [command, ...args] = asIntruder(intruder, ["socat", "-u", `TCP:127.0.0.1:${port}`, "-"]);
    const viewer = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let seen = "";
    viewer.stdout.on("data", (chunk: Buffer) => (seen += chunk.toString("utf8")));
    await until(() => readText(log).includes(`[-- uid ${intruder.uid} attached ro --]`), "the viewer's attach line");
    fe.write(bytes("hello viewer\n"));
    await until(() => seen.includes("hello viewer"), "the viewer to get the output");
    viewer.kill("SIGTERM"); // a process we started
    await until(() => readText(log).includes(`[-- uid ${intruder.uid} detached --]`), "the viewer's detach line");
    const lines = readText(log).split("\r\n").filter((line) => line.includes(`uid ${intruder.uid}`));
    expect(lines).toEqual([`[-- uid ${intruder.uid} attached ro --]`, `hello viewer\n[-- uid ${intruder.uid} detached --]`]);
  });

  it("a BREAK from a read-write backend is a line; a viewer's, discarded by the hub, is not", async () => {
    const log = path.join(dir, "console.log");
    await reg.add(`file,id=log,path=${log},log-events=on`);
    const [typist, viewer] = await openSwitches(reg, "typist", "viewer");
    await reg.add("hub,id=hub0,ring=4096,chardevs.0=log,chardevs.1=typist,chardevs.2=viewer,mode.2=ro");
    reg.attach("hub0", new FeHandler());
    viewer.sendBreak();
    typist.sendBreak();
    expect(fs.readFileSync(log, "utf8")).toBe("[-- typist attached rw --]\r\n[-- viewer attached ro --]\r\n[-- typist sent a break --]\r\n");
  });

  it("a single-client socket's peer coming and going is [-- ID connected --] and [-- ID disconnected --]", async () => {
    const log = path.join(dir, "console.log");
    const sock = path.join(dir, "c1.sock");
    await reg.add(`file,id=log,path=${log},log-events=on`);
    await reg.add(`socket,id=c1,path=${sock},server=on,wait=off`);
    await reg.add("hub,id=hub0,ring=4096,chardevs.0=log,chardevs.1=c1");
    const fe = reg.attach("hub0", new FeHandler());
    const client = await SocketClient.connect(sock);
    await until(() => readText(log).includes("[-- c1 connected --]"), "the connect line");
    fe.write(bytes("for you\n"));
    await client.waitFor("for you\n");
    client.close();
    await until(() => readText(log).includes("[-- c1 disconnected --]"), "the disconnect line");
    expect(readText(log)).toBe("[-- c1 attached rw --]\r\n[-- c1 connected --]\r\nfor you\n[-- c1 disconnected --]\r\n");
  });

  it("without log-events a file behind a hub has output only", async () => {
    const log = path.join(dir, "console.log");
    await reg.add(`file,id=log,path=${log}`);
    await openSwitches(reg, "viewer");
    await reg.add("hub,id=hub0,chardevs.0=log,ring=4096");
    reg.hubAttach("hub0", "viewer");
    reg.attach("hub0", new FeHandler()).write(bytes("only this\n"));
    await sleep(10);
    expect(fs.readFileSync(log, "utf8")).toBe("only this\n");
  });
});

describe("SIGHUP to the command", () => {
  it("reopens every log: after mv and HUP a new file gets the next bytes, the moved one nothing more, and the run goes on", async () => {
    const devSock = path.join(dir, "dev.sock");
    const log = path.join(dir, "console.log");
    const ringLog = path.join(dir, "ring.log");
    const cli = new CliProcess([
      "-chardev", `socket,id=dev,path=${devSock},server=on,wait=off`,
      "-chardev", `file,id=log,path=${log},timestamp=on`,
      "-chardev", `ringbuf,id=rb,size=4096,logfile=${ringLog}`,
      "-chardev", "hub,id=hub0,ring=65536,chardevs.0=log,chardevs.1=rb",
      "-frontend", "dev,chardev=hub0",
    ]);
    // The device is a socket: what its client sends is the console's output.
    const device = await SocketClient.connect(devSock);
    device.send("before\n");
    await until(() => fs.existsSync(ringLog) && readText(ringLog) === "before\n", "the first line in both logs");
    fs.renameSync(log, `${log}.1`);
    fs.renameSync(ringLog, `${ringLog}.1`);
    process.kill(cli.child.pid!, "SIGHUP");
    await until(() => fs.existsSync(log) && fs.existsSync(ringLog), "SIGHUP to make new files at the paths");
    device.send("after\n");
    await until(() => readText(ringLog) === "after\n", "the next line in the new ring log");
    await until(() => readText(log).endsWith("after\n"), "the next line in the new file");
    expect(stampedLines(readText(log)).map(([, rest]) => rest)).toEqual(["after\n"]);
    expect(stampedLines(readText(`${log}.1`)).map(([, rest]) => rest)).toEqual(["before\n"]);
    expect(readText(`${ringLog}.1`)).toBe("before\n");
    expect(fs.statSync(log).mode & 0o777).toBe(0o600);
    expect(cli.ended).toBeNull();
    expect(cli.stderr).not.toContain("terminating");
    device.close();
    expect(await cli.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });
});

describe("QMP chardev-reopen-logs", () => {
  it("reopens every log by path through a real QMP socket, or one chardev's with id; a path that cannot be opened is an error naming it", async () => {
    const devSock = path.join(dir, "dev.sock");
    const qmpSock = path.join(dir, "qmp.sock");
    const logDir = path.join(dir, "logs");
    fs.mkdirSync(logDir);
    const log = path.join(logDir, "console.log");
    const other = path.join(dir, "other.log");
    const cli = new CliProcess([
      "-chardev", `socket,id=dev,path=${devSock},server=on,wait=off`,
      "-chardev", `file,id=log,path=${log}`,
      "-chardev", `file,id=other,path=${other}`,
      "-chardev", "hub,id=hub0,ring=65536,chardevs.0=log,chardevs.1=other",
      "-frontend", "dev,chardev=hub0",
      "-qmp", `unix:${qmpSock},server=on,wait=off`,
    ]);
    const device = await SocketClient.connect(devSock);
    const qmp = await SocketClient.connect(qmpSock);
    await qmp.waitFor('"QMP"');
    qmp.send('{"execute": "qmp_capabilities"}\n');
    await qmp.waitFor('"return"');
    device.send("one\n");
    await until(() => readText(log) === "one\n" && readText(other) === "one\n", "the first line in both files");
    fs.renameSync(log, `${log}.1`);
    fs.renameSync(other, `${other}.1`);
    // Only `log`'s: `other` writes on in its moved file.
    qmp.send('{"execute": "chardev-reopen-logs", "arguments": {"id": "log"}, "id": 1}\n');
    await qmp.waitFor('{"return": {}, "id": 1}');
    device.send("two\n");
    await until(() => readText(log) === "two\n" && readText(`${other}.1`) === "one\ntwo\n", "the second line");
    expect(fs.existsSync(other)).toBe(false);
    // Every log: `other` too now. The directory of `log` is gone, so that one fails and says so.
    fs.renameSync(log, `${log}.2`);
    fs.renameSync(logDir, `${logDir}.gone`);
    qmp.send('{"execute": "chardev-reopen-logs", "id": 2}\n');
    await qmp.waitFor('"id": 2}');
    expect(qmp.text).toContain(`{"error": {"class": "GenericError", "desc": "chardev 'log': cannot reopen its log: No such file or directory"}, "id": 2}`);
    device.send("three\n");
    await until(() => readText(other) === "three\n", "the third line in the reopened file");
    // The log that could not be reopened wrote on where it was.
    await until(() => readText(path.join(`${logDir}.gone`, "console.log.2")) === "two\nthree\n", "the third line where the failed log was");
    device.close();
    expect(await cli.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });
});
