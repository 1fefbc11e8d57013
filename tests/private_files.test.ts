// Private files (issue 9): what we create is 0600 even under the usual umask 022, unless the
// file chardev's `mode=` asks for more; a file that exists keeps its mode, as open(2) does.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry } from "../host-ts/mod.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { CliProcess, SocketClient, until } from "./cli/_cli.ts";

let reg: ChardevRegistry;
let dir: string;
let previousUmask: number;

beforeEach(async () => {
  // The umask most systems give users: without our own mode, new files would be 0644.
  previousUmask = process.umask(0o022);
  reg = await ChardevRegistry.create({ qemuCompat: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-private-test-"));
});
afterEach(async () => {
  await CliProcess.stopAll();
  await reg.close();
  process.umask(previousUmask);
  fs.rmSync(dir, { recursive: true, force: true });
});

const permissions = (file: string) => fs.statSync(file).mode & 0o777;

describe("files we create are private", () => {
  it("the umask in effect is 022, so a file made without a mode of ours would be 0644", () => {
    const plain = path.join(dir, "plain.txt");
    fs.writeFileSync(plain, "x");
    expect(permissions(plain)).toBe(0o644);
  });

  it("the file chardev creates its file 0600 and writes to it", async () => {
    const log = path.join(dir, "console.log");
    await reg.add(`file,id=log,path=${log}`);
    expect(permissions(log)).toBe(0o600);
    const fe = reg.attach("log", new FeHandler());
    expect(fe.write(bytes("private\n"))).toBe(8);
    expect(fs.readFileSync(log, "utf8")).toBe("private\n");
  });

  it("the file chardev with append=on creates its file 0600 too", async () => {
    const log = path.join(dir, "appended.log");
    await reg.add(`file,id=log,path=${log},append=on`);
    expect(permissions(log)).toBe(0o600);
  });

  it("logfile= creates its log 0600, whatever the chardev", async () => {
    const log = path.join(dir, "ring.log");
    const appended = path.join(dir, "ring-appended.log");
    await reg.add(`ringbuf,id=rb,size=64,logfile=${log}`);
    await reg.add(`ringbuf,id=rb2,size=64,logfile=${appended},logappend=on`);
    expect(permissions(log)).toBe(0o600);
    expect(permissions(appended)).toBe(0o600);
    const fe = reg.attach("rb", new FeHandler());
    fe.write(bytes("logged"));
    expect(fs.readFileSync(log, "utf8")).toBe("logged");
  });

  it("a file that exists keeps its mode (as open(2)): truncated and written, not made private", async () => {
    const shared = path.join(dir, "shared.log");
    fs.writeFileSync(shared, "old contents");
    fs.chmodSync(shared, 0o644);
    await reg.add(`file,id=log,path=${shared}`);
    expect(permissions(shared)).toBe(0o644);
    expect(fs.readFileSync(shared, "utf8")).toBe("");
  });
});

describe("the file chardev's mode=", () => {
  it("mode=0640 creates the file 0640", async () => {
    const log = path.join(dir, "group.log");
    await reg.add(`file,id=log,path=${log},mode=0640`);
    expect(permissions(log)).toBe(0o640);
  });

  it("mode=640 without the leading zero is octal too", async () => {
    const log = path.join(dir, "group.log");
    await reg.add(`file,id=log,path=${log},mode=640`);
    expect(permissions(log)).toBe(0o640);
  });

  it("mode= is open(2)'s: the umask still applies, so mode=0666 under umask 022 gives 0644", async () => {
    const log = path.join(dir, "world.log");
    await reg.add(`file,id=log,path=${log},mode=0666`);
    expect(permissions(log)).toBe(0o644);
  });

  it("mode= applies to the output only: input-path is read, never created", async () => {
    const input = path.join(dir, "missing-input");
    const error = await errorOf(() => reg.add(`file,id=log,path=${path.join(dir, "out.log")},input-path=${input},mode=0640`));
    expect(error.message).toBe(`Could not open '${input}': No such file or directory`);
    expect(fs.existsSync(input)).toBe(false);
  });

  for (const bad of ["rw", "0999", "4755", "06400", "0x1a4", "", "-600"]) {
    it(`mode=${bad || "(empty)"} is refused with INVALID_VALUE before any file is made`, async () => {
      const log = path.join(dir, "never.log");
      const error = await errorOf(() => reg.add(`file,id=log,path=${log},mode=${bad}`));
      expect(error).toBeInstanceOf(ChardevError);
      expect(error.code).toBe("INVALID_VALUE");
      expect(error.message).toBe("Parameter 'mode' expects octal permissions such as 0600 or 0640");
      expect(fs.existsSync(log)).toBe(false);
      expect(reg.find("log")).toBeUndefined();
    });
  }

  it("QMP chardev-add takes data.mode as the same octal string, and refuses a number", async () => {
    const log = path.join(dir, "qmp.log");
    await reg.add({ id: "log", backend: { type: "file", data: { out: log, mode: "0640" } } });
    expect(permissions(log)).toBe(0o640);
    const error = await errorOf(() => reg.add({ id: "log2", backend: { type: "file", data: { out: path.join(dir, "n.log"), mode: 416 } } }));
    expect(error.code).toBe("INVALID_VALUE");
    expect(error.message).toBe("Invalid parameter type for 'backend.data.mode', expected: string");
  });
});

describe("chardev-hub's files", () => {
  it("the default setup (npm start) under umask 022 logs the shell to run/console.log 0600, in a run/ directory 0700", async () => {
    // The child inherits the umask set in beforeEach.
    const cli = new CliProcess(["--default"], { cwd: dir, env: { SHELL: "/bin/sh" } });
    await cli.waitForStderr("run/console.log");
    const client = await SocketClient.connect(path.join(dir, "run", "hub.sock"));
    client.send("echo secret-$((6*7))\r");
    await client.waitFor("secret-42");
    client.close();
    const log = path.join(dir, "run", "console.log");
    await until(() => fs.readFileSync(log, "latin1").includes("secret-42"), "the log to hold the shell's output");
    expect(permissions(log)).toBe(0o600);
    expect(permissions(path.join(dir, "run"))).toBe(0o700);
    expect((await cli.stop("SIGINT")).code).toBe(0);
  });
});
