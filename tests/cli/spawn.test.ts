// The `spawn` chardev in process, with real programs (sh, stty, cat) on real ptys: events, the
// controlling terminal, window size, exit status, a full terminal's EAGAIN and watch.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "../_harness.ts";
import { ChardevRegistry, ChrEvent, type Frontend } from "../../host-ts/mod.ts";
import { describeExit, type SpawnChardev } from "../../host-ts/chardev/spawn.ts";
import { bytes, errorOf, FeHandler } from "../_fe_handler.ts";
import { until } from "./_cli.ts";

let reg: ChardevRegistry;
let dir: string;

beforeEach(async () => {
  reg = await ChardevRegistry.create();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-spawn-test-"));
});
afterEach(async () => {
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A frontend that takes everything, so output never waits on it. */
function attachReader(id: string): { fe: FeHandler; frontend: Frontend } {
  const fe = new FeHandler();
  fe.room = Number.MAX_SAFE_INTEGER;
  return { fe, frontend: reg.attach(id, fe) };
}

/** `spawn,id=ID,cmd=sh,args.0=-c,args.1=SCRIPT` with commas escaped. */
function shell(id: string, script: string, extra = ""): string {
  return `spawn,id=${id},cmd=sh,args.0=-c,args.1=${script.replaceAll(",", ",,")}${extra}`;
}

const text = (fe: FeHandler) => new TextDecoder().decode(fe.readBuf);

describe("spawn chardev", () => {
  it("is OPENED while the program runs, passes its output on and types what is written, then CLOSED with its exit status", async () => {
    const sh = (await reg.add(shell("sh", "read name; echo hello $name; exit 5"))) as SpawnChardev;
    const { fe, frontend } = attachReader("sh");
    expect(fe.events).toEqual([ChrEvent.OPENED]);
    expect(sh.filename).toMatch(/^spawn:\/dev\/pts\/\d+$/);
    expect(frontend.write(bytes("world\r"))).toBe(6);
    const exit = await sh.exited;
    expect(exit).toEqual({ code: 5, signal: null });
    expect(describeExit(exit)).toBe("exited with status 5");
    // The terminal echoes the typed line (cooked mode, as a terminal emulator's), then the answer.
    expect(text(fe)).toBe("world\r\nhello world\r\n");
    expect(fe.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
    expect(sh.exitStatus).toEqual(exit);
    expect(frontend.write(bytes("late"))).toBe(-1);
    expect(frontend.lastError).toBe("EIO");
  });

  it("runs the program in a session of its own, with the pty as its controlling terminal", async () => {
    const sh = (await reg.add(shell("sh", 'echo "tty=$(tty)"; echo ctty > /dev/tty && echo "sid=$(cut -d " " -f 6 /proc/$$/stat) pid=$$"'))) as SpawnChardev;
    const { fe } = attachReader("sh");
    await sh.exited;
    expect(text(fe)).toContain(`tty=${sh.slavePath}\r\n`);
    expect(text(fe)).toContain("ctty\r\n");
    expect(text(fe)).toContain(`sid=${sh.pid} pid=${sh.pid}\r\n`);
  });

  it("gives the program cols x rows, 80x24 by default, and resize() changes them while it runs", async () => {
    const fixed = (await reg.add(shell("fixed", "stty size", ",cols=120,rows=40"))) as SpawnChardev;
    const plain = (await reg.add(shell("plain", "stty size"))) as SpawnChardev;
    const fixedReader = attachReader("fixed").fe;
    const plainReader = attachReader("plain").fe;
    await Promise.all([fixed.exited, plain.exited]);
    expect(text(fixedReader)).toBe("40 120\r\n");
    expect(text(plainReader)).toBe("24 80\r\n");

    // A program that reports every SIGWINCH with the size it then has.
    const live = (await reg.add(shell("live", 'trap "stty size" WINCH; echo ready; while :; do sleep 0.05; done'))) as SpawnChardev;
    const { fe } = attachReader("live");
    await until(() => text(fe).includes("ready"), "the program to start");
    await live.resize(100, 30);
    expect([live.cols, live.rows]).toEqual([100, 30]);
    await until(() => text(fe).includes("30 100\r\n"), "the program to see 30 100");
    expect(await errorOf(() => live.resize(0, 30))).toMatchObject({ code: "INVALID_VALUE" });
  });

  it("answers EAGAIN once a program that does not read has a full terminal, and its watch fires when it reads", async () => {
    const go = path.join(dir, "go");
    const out = path.join(dir, "out");
    const sh = (await reg.add(shell("sh", `stty raw -echo; echo ready; while [ ! -e ${go} ]; do sleep 0.02; done; exec cat > ${out}`))) as SpawnChardev;
    const { fe, frontend } = attachReader("sh");
    await until(() => text(fe).includes("ready"), "raw mode");
    const payload = Uint8Array.from({ length: 1 << 20 }, (_, i) => 0x20 + (i % 95));
    let sent = 0;
    while (sent < payload.length) {
      const result = frontend.write(payload.subarray(sent));
      if (result === -1) break;
      sent += result;
    }
    expect(frontend.lastError).toBe("EAGAIN");
    expect(sent).toBeLessThan(payload.length);
    let woke = false;
    expect(frontend.addWatch(() => (woke = true))).not.toBe(0);
    fs.writeFileSync(go, "");
    await until(() => woke, "the watch");
    while (sent < payload.length) {
      const result = frontend.write(payload.subarray(sent));
      if (result === -1) await new Promise<void>((resolve) => frontend.addWatch(resolve) || resolve());
      else sent += result;
    }
    await until(() => fs.existsSync(out) && fs.statSync(out).size === payload.length, "cat to write everything");
    expect(fs.readFileSync(out).equals(Buffer.from(payload))).toBe(true);
    void sh;
  });

  it("hangs the program up when it is removed", async () => {
    const sh = (await reg.add(shell("sh", 'trap "" INT; echo up; while :; do sleep 1; done'))) as SpawnChardev;
    const { fe, frontend } = attachReader("sh");
    await until(() => text(fe).includes("up"), "the program to start");
    frontend.detach();
    await reg.remove("sh");
    expect(await sh.exited).toEqual({ code: null, signal: "SIGHUP" });
  });

  it("takes QMP's form, with args as a list", async () => {
    await reg.add({ id: "sh", backend: { type: "spawn", data: { cmd: "sh", args: ["-c", "echo $0 $1", "one", "two, three"], cols: 90, rows: 20 } } });
    const { fe } = attachReader("sh");
    await (reg.get("sh") as SpawnChardev).exited;
    expect(text(fe)).toBe("one two, three\r\n");
  });

  it("refuses a program it cannot find, an empty cmd and a bad size, and registers nothing", async () => {
    expect(await errorOf(() => reg.add("spawn,id=x,cmd=surely-not-a-program"))).toEqual(
      expect.objectContaining({ code: "OPEN_FAILED", message: "spawn: cannot run 'surely-not-a-program': command not found" }),
    );
    expect(await errorOf(() => reg.add("spawn,id=x"))).toEqual(expect.objectContaining({ code: "MISSING_PARAMETER", message: "chardev: spawn: no program given (cmd=PROGRAM)" }));
    expect(await errorOf(() => reg.add("spawn,id=x,cmd=sh,cols=0"))).toEqual(expect.objectContaining({ code: "INVALID_VALUE", message: "spawn: 'cols' must be between 1 and 65535" }));
    expect(await errorOf(() => reg.add({ id: "x", backend: { type: "spawn", data: {} } }))).toEqual(expect.objectContaining({ message: "Parameter 'backend.data.cmd' is missing" }));
    expect(reg.query()).toEqual([]);
  });
});
