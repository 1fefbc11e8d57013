// A full disk, for real: a 1 MiB tmpfs mounted by the test (root only: CI runs as root). A
// `file` backend that hits ENOSPC is taken out of its hub alone (error event, a warning,
// CLOSED), the healthy backend gets every byte, and once space is freed the file resumes with
// `[-- N bytes lost: ENOSPC --]` where the hole is, N exact. A `logfile=` on the full disk never
// takes the command down.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, testRuntime } from "./_harness.ts";
import { ChardevRegistry, type HubEvent } from "../host-ts/mod.ts";
import { FeHandler } from "./_fe_handler.ts";
import { SwitchChardev, switchDriver } from "./_switch_chardev.ts";
import { CliProcess, SocketClient, until } from "./cli/_cli.ts";

let mountPoint = "";

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error("full-disk tests mount a tmpfs and need root (CI runs them as root); run as root");
  mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-full-disk-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint]);
});

afterAll(() => {
  if (!mountPoint) return;
  try {
    execFileSync("umount", [mountPoint]);
  } finally {
    fs.rmdirSync(mountPoint);
  }
});

/** Fills the tmpfs to the last byte; returns the filler's path (delete it to free the space). */
function fillDisk(name: string): string {
  const filler = path.join(mountPoint, name);
  const fd = fs.openSync(filler, "w");
  const block = new Uint8Array(4096);
  try {
    for (;;) {
      try {
        if (fs.writeSync(fd, block) === 0) break;
      } catch (error) {
        if ((error as { code?: string }).code === "ENOSPC") break;
        throw error;
      }
    }
    // The last page may still take a few bytes.
    for (;;) {
      try {
        if (fs.writeSync(fd, block.subarray(0, 1)) === 0) break;
      } catch {
        break;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

/** Lines of numbered text, deterministic. */
function streamBytes(length: number): Uint8Array {
  let text = "";
  for (let line = 0; text.length < length; line++) text += `line ${line} of the console output\n`;
  return new TextEncoder().encode(text.slice(0, length));
}

describe("a file backend on a full disk (tmpfs)", () => {
  let reg: ChardevRegistry;
  let warnings: string[];
  beforeEach(async () => {
    warnings = [];
    reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: (line) => warnings.push(line) });
    reg.registerDriver(switchDriver);
  });
  afterEach(async () => {
    await reg.close();
    for (const name of fs.readdirSync(mountPoint)) fs.rmSync(path.join(mountPoint, name));
  });

  // Deno's node:fs writeSync reports ENOSPC for a write that went in part (the last bytes of a
  // page), so the hub cannot know those bytes reached the file and the marker counts them as
  // lost too: the exact count is checked under Node and Bun only (shown as skipped on Deno).
  const exactWrites = testRuntime === "deno" ? it.skip : it;
  for (const ring of [65536, 0]) {
    exactWrites(`in a ${ring ? "ring" : "ring=0"} hub, is taken out alone at ENOSPC and resumes with the exact loss marked once space is freed`, async () => {
      const logPath = path.join(mountPoint, `out-${ring}.log`);
      await reg.add(`file,id=log,path=${logPath}`);
      const healthy = (await reg.add("switch,id=client")) as SwitchChardev;
      healthy.open();
      await reg.add(`hub,id=hub0,chardevs.0=client,chardevs.1=log,ring=${ring}`);
      const events: HubEvent[] = [];
      reg.hub("hub0").onEvent((event) => events.push(event));
      const fe = reg.attach("hub0", new FeHandler());
      const stream = streamBytes(300_000);
      const write = async (from: number, to: number) => {
        // The healthy backend never blocks here, so the hub takes everything: no watch needed.
        for (let at = from; at < to; ) {
          const taken = fe.write(stream.subarray(at, Math.min(to, at + 8192)));
          expect(taken).toBeGreaterThan(0);
          at += taken;
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
        reg.hub("hub0").flush();
      };
      await write(0, 10_000);
      expect(fs.statSync(logPath).size).toBe(10_000);
      const filler = fillDisk("filler");
      await write(10_000, 200_000);
      await until(() => events.some((event) => event.type === "error"), "the error event");
      expect(events.filter((event) => event.backend === "log" && event.type !== "attach")).toEqual([
        { type: "error", backend: "log", errno: "ENOSPC" },
        { type: "close", backend: "log" },
      ]);
      expect(warnings).toEqual(["hub: chardev 'log' failed with ENOSPC: hub 'hub0' goes on without it"]);
      expect(reg.hub("hub0").stats().find((row) => row.id === "log")!.open).toBe(false);
      fs.rmSync(filler);
      await until(() => events.some((event) => event.type === "open" && event.backend === "log"), "the file to resume");
      await write(200_000, 300_000);
      expect(healthy.bytes).toBe(300_000);
      expect(Buffer.from(healthy.receivedBytes).equals(Buffer.from(stream))).toBe(true);
      // The file: the stream up to where the disk filled, the marker, then the stream again.
      const text = fs.readFileSync(logPath, "latin1");
      const streamText = Buffer.from(stream).toString("latin1");
      const at = text.indexOf("[-- ");
      expect(at).toBeGreaterThanOrEqual(10_000);
      const marker = /^\[-- (\d+) bytes lost: ENOSPC --\]\n/.exec(text.slice(at));
      expect(marker).not.toBeNull();
      const lost = Number(marker![1]);
      expect(lost).toBe(200_000 - at);
      expect(text.slice(0, at)).toBe(streamText.slice(0, at));
      expect(text.slice(at + marker![0].length)).toBe(streamText.slice(200_000));
    });
  }
});

describe("logfile= on a full disk (through the command)", () => {
  afterEach(async () => {
    await CliProcess.stopAll();
    for (const name of fs.readdirSync(mountPoint)) fs.rmSync(path.join(mountPoint, name), { force: true });
  });

  it("never takes the command down: one warning, and the socket client goes on getting output", async () => {
    const socketPath = path.join(os.tmpdir(), `full-disk-${process.pid}.sock`);
    const logPath = path.join(mountPoint, "device.log");
    const cli = new CliProcess([
      "-chardev", "spawn,id=dev,cmd=yes",
      // A chardev's log holds what is written to it: here, the device's output for the client.
      "-chardev", `socket,id=s0,path=${socketPath},server=on,wait=off,logfile=${logPath}`,
      "-chardev", "hub,id=hub0,ring=65536,chardevs.0=s0",
      "-frontend", "dev,chardev=hub0",
    ]);
    const client = await SocketClient.connect(socketPath);
    await cli.waitForStderr("logfile: ENOSPC");
    const after = client.receivedBytes;
    await until(() => client.receivedBytes > after + 4 * 1024 * 1024, "4 MiB more output after the disk filled");
    expect(cli.ended).toBeNull();
    expect(cli.stderr.match(/logfile: ENOSPC/g)).toHaveLength(1);
    expect(cli.stderr).not.toMatch(/Error|at .*\.js/);
    client.close();
    const ended = await cli.stop();
    expect(ended.code).toBe(0);
  });
});
