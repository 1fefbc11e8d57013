// The `serial` chardev on real terminals: a pty slave is a real tty, so the "serial device"
// here is the slave of a pty whose master plays the far end of the cable, either socat (the
// bytes on its stdin and stdout) or our own `pty` chardev (which lets the test stop reading, to
// fill the line). Needs socat and stty.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import type { PtyChardev } from "../host-ts/chardev/pty.ts";
import type { SerialChardev } from "../host-ts/chardev/serial.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { until } from "./cli/_cli.ts";

let reg: ChardevRegistry;
let dir: string;
let socats: ChildProcessWithoutNullStreams[];

beforeEach(async () => {
  reg = await ChardevRegistry.create();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-serial-test-"));
  socats = [];
});
afterEach(async () => {
  await reg.close();
  for (const socat of socats) {
    if (socat.exitCode === null && socat.signalCode === null) {
      const gone = new Promise((resolve) => socat.once("close", resolve));
      socat.kill("SIGTERM");
      await gone;
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

/** socat holding a pty's master, its slave linked at DIR/tty: what it reads from the master comes out on its stdout. */
async function socatCable(): Promise<{ tty: string; socat: ChildProcessWithoutNullStreams; output: () => string }> {
  const tty = path.join(dir, "tty");
  const socat = spawn("socat", [`PTY,link=${tty},raw,echo=0`, "STDIO"], { stdio: ["pipe", "pipe", "pipe"] });
  socats.push(socat);
  let output = "";
  socat.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("latin1")));
  await until(() => fs.existsSync(tty), "socat to make its pty");
  return { tty, socat, output: () => output };
}

function sttySettings(tty: string): string {
  return spawnSync("stty", ["-F", tty, "-a"], { encoding: "utf8" }).stdout;
}

describe("serial chardev", () => {
  it("opens a tty raw at the given speed, writes to it and reads from it", async () => {
    const cable = await socatCable();
    const serial = (await reg.add(`serial,id=ttyS0,path=${cable.tty},speed=115200`)) as SerialChardev;
    expect(serial.filename).toBe(`serial:${cable.tty}`);
    const settings = sttySettings(cable.tty);
    expect(settings).toMatch(/speed 115200 baud/);
    expect(settings).toMatch(/(^|\s)-icanon(\s|;|$)/);
    expect(settings).toMatch(/(^|\s)-echo(\s|;|$)/);

    const fe = new FeHandler();
    const frontend = reg.attach("ttyS0", fe);
    expect(fe.events).toEqual([ChrEvent.OPENED]);
    expect(frontend.write(bytes("AT\r\n"))).toBe(4);
    await until(() => cable.output() === "AT\r\n", "the far end to receive AT");
    // Raw: a CR from the far end stays a CR, and nothing is echoed back to it.
    cable.socat.stdin.write("OK\r\n");
    await until(() => fe.readCount === 4, "the serial chardev to read OK");
    expect(fe.take()).toBe("OK\r\n");
    expect(cable.output()).toBe("AT\r\n");
    frontend.detach();
  });

  it("takes QMP's form, with QEMU's `device` member", async () => {
    const cable = await socatCable();
    await reg.add({ id: "ttyS1", backend: { type: "serial", data: { device: cable.tty, speed: 9600 } } });
    expect(sttySettings(cable.tty)).toMatch(/speed 9600 baud/);
    expect(reg.query().find((info) => info.label === "ttyS1")?.filename).toBe(`serial:${cable.tty}`);
  });

  it("answers EAGAIN when the line is full, and its watch fires once the far end reads", async () => {
    // Our own pty chardev holds the master; its frontend takes nothing until told to.
    const far = (await reg.add("pty,id=far")) as PtyChardev;
    const farFe = new FeHandler();
    farFe.room = 0;
    reg.attach("far", farFe);
    await reg.add(`serial,id=ttyS0,path=${far.slavePath}`);
    const frontend = reg.attach("ttyS0", new FeHandler());

    const chunk = new Uint8Array(4096);
    let sent = 0;
    const pattern = (offset: number) => chunk.map((_, i) => 0x30 + ((offset + i) % 64));
    for (;;) {
      const result = frontend.write(pattern(sent));
      if (result === -1) break;
      sent += result;
    }
    expect(frontend.lastError).toBe("EAGAIN");
    expect(sent).toBeGreaterThan(0);
    let watchFired = false;
    expect(frontend.addWatch(() => (watchFired = true))).not.toBe(0);

    // The far end reads: room appears, the watch fires, and the rest goes through.
    farFe.room = Number.MAX_SAFE_INTEGER;
    far.flushInput();
    await until(() => watchFired, "the watch to fire");
    const rest = pattern(sent).subarray(0, 1000);
    let restSent = 0;
    while (restSent < rest.length) {
      const result = frontend.write(rest.subarray(restSent));
      if (result === -1) await new Promise<void>((resolve) => frontend.addWatch(resolve) || resolve());
      else restSent += result;
    }
    const total = sent + rest.length;
    await until(() => farFe.readCount === total, `the far end to read all ${total} bytes`);
    const expected = Uint8Array.from({ length: total }, (_, i) => 0x30 + (i % 64));
    expect(Buffer.from(farFe.readBuf).equals(Buffer.from(expected))).toBe(true);
  });

  it("reports CLOSED when the device goes away", async () => {
    const far = (await reg.add("pty,id=far")) as PtyChardev;
    await reg.add(`serial,id=ttyS0,path=${far.slavePath}`);
    const fe = new FeHandler();
    const frontend = reg.attach("ttyS0", fe);
    await reg.remove("far");
    await until(() => fe.events.includes(ChrEvent.CLOSED), "CLOSED");
    expect(fe.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
    expect(frontend.write(bytes("anyone?"))).toBe(-1);
    expect(frontend.lastError).toBe("EIO");
  });

  it("refuses what it cannot open or set up, with the reason, and leaves nothing registered", async () => {
    expect(await errorOf(() => reg.add(`serial,id=s,path=${path.join(dir, "ttyUSB9")}`))).toMatchObject({
      code: "OPEN_FAILED",
      message: `Could not open '${path.join(dir, "ttyUSB9")}': No such file or directory`,
    });
    expect(await errorOf(() => reg.add("serial,id=s,path=/dev/null"))).toMatchObject({
      code: "OPEN_FAILED",
      message: "serial: cannot set up '/dev/null': Inappropriate ioctl for device",
    });
    expect(await errorOf(() => reg.add("serial,id=s,path=/dev/null,speed=12345"))).toMatchObject({
      code: "INVALID_VALUE",
      message: expect.stringMatching(/^serial: speed 12345 is not one a terminal can be set to/),
    });
    expect(await errorOf(() => reg.add("serial,id=s"))).toEqual(expect.objectContaining({ code: "MISSING_PARAMETER", message: "chardev: serial/tty: no device path given" }));
    expect(reg.query()).toEqual([]);
  });
});
