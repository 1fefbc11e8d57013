// A hub's head and tail history: `keep-head=BYTES` keeps the start of the output besides the
// ring, and QMP `hub-history {id, from, size}` (hub.history) reads it by absolute offset over a
// real QMP socket (UNIX and TCP on 127.0.0.1), saying which ranges are gone; and the same through
// the real command (dist/cli.js), a program's output against its log file.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry } from "../host-ts/mod.ts";
import type { Frontend } from "../host-ts/frontend.ts";
import { MAX_HISTORY_READ_BYTES } from "../host-ts/chardev/hub.ts";
import { connectClient, type QmpTestClient } from "./qmp/_clients.ts";
import { CliProcess, readText, SocketClient, until } from "./cli/_cli.ts";

const RING = 4096;
const KEEP_HEAD = 1000;

/** Numbered ASCII lines, so every offset holds a known byte and a misplaced slice shows. */
function stream(length: number): Uint8Array {
  let text = "";
  for (let line = 0; text.length < length; line++) text += `line ${line} of the boot log ${"=".repeat(line % 17)}\n`;
  return new TextEncoder().encode(text.slice(0, length));
}

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const genericError = (desc: string) => ({ error: { class: "GenericError", desc } });

let reg: ChardevRegistry;
let dir: string;
let cleanups: (() => unknown)[];

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: false });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-history-"));
  cleanups = [];
});
afterEach(async () => {
  await CliProcess.stopAll();
  for (const cleanup of cleanups) await cleanup();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function qmpClient(transport: "unix" | "tcp"): Promise<QmpTestClient> {
  const client = await connectClient(reg, transport, dir);
  cleanups.push(() => client.close());
  await client.negotiate();
  return client;
}

/** The frontend writes all of `data` in `chunk`-byte writes, letting the hub drain when it is full. */
function writeAll(fe: Frontend, hubId: string, data: Uint8Array, chunk: number): void {
  for (let at = 0; at < data.length;) {
    const wrote = fe.write(data.subarray(at, Math.min(at + chunk, data.length)));
    if (wrote > 0) at += wrote;
    else reg.hub(hubId).flush(); // the blocking backend takes what the ring holds: room again
  }
  reg.hub(hubId).flush();
}

/** A ring hub with keep-head and one real backend (`null`, which takes every byte). */
async function hubWithHistory(spec = `ring=${RING},keep-head=${KEEP_HEAD}`): Promise<Frontend> {
  await reg.add("null,id=sink");
  await reg.add(`hub,id=hub0,chardevs.0=sink,${spec}`);
  const fe = reg.attach("hub0", { canRead: () => 0, read() {}, event() {} });
  cleanups.push(() => fe.detach());
  return fe;
}

for (const transport of ["unix", "tcp"] as const) {
  describe(`hub-history over QMP on ${transport}`, () => {
    it("returns the head after the ring wrapped, the middle as gone with exact offsets, and the tail as the ring's last bytes", async () => {
      const fe = await hubWithHistory();
      const client = await qmpClient(transport);
      const output = stream(30_000);
      writeAll(fe, "hub0", output, 700);
      const ringStart = output.length - RING;

      const whole = await client.execute("hub-history", { id: "hub0", from: 0, size: output.length });
      const kept = new Uint8Array([...output.subarray(0, KEEP_HEAD), ...output.subarray(ringStart)]);
      expect(whole).toEqual({
        return: { from: 0, to: 30_000, size: KEEP_HEAD + RING, data: base64(kept), gone: [{ from: KEEP_HEAD, to: ringStart }], written: 30_000 },
      });

      // Within the head, across the head's end, across the ring's start, past the end.
      expect((await client.execute("hub-history", { id: "hub0", from: 100, size: 200 })).return).toEqual({
        from: 100, to: 300, size: 200, data: base64(output.subarray(100, 300)), gone: [], written: 30_000,
      });
      expect((await client.execute("hub-history", { id: "hub0", from: 900, size: 300 })).return).toEqual({
        from: 900, to: 1200, size: 100, data: base64(output.subarray(900, 1000)), gone: [{ from: 1000, to: 1200 }], written: 30_000,
      });
      expect((await client.execute("hub-history", { id: "hub0", from: ringStart - 50, size: 150 })).return).toEqual({
        from: ringStart - 50, to: ringStart + 100, size: 100, data: base64(output.subarray(ringStart, ringStart + 100)), gone: [{ from: ringStart - 50, to: ringStart }], written: 30_000,
      });
      expect((await client.execute("hub-history", { id: "hub0", from: 29_990, size: 100 })).return).toEqual({
        from: 29_990, to: 30_000, size: 10, data: base64(output.subarray(29_990)), gone: [], written: 30_000,
      });
      expect((await client.execute("hub-history", { id: "hub0", from: 50_000, size: 10 })).return).toEqual({
        from: 30_000, to: 30_000, size: 0, data: "", gone: [], written: 30_000,
      });
      // format utf8 (ringbuf-read's convention): the same bytes as text.
      expect((await client.execute("hub-history", { id: "hub0", from: 0, size: 64, format: "utf8" })).return.data).toBe(
        new TextDecoder().decode(output.subarray(0, 64)),
      );
    });

    it("refuses bad arguments with QEMU's texts", async () => {
      await hubWithHistory();
      await reg.add("null,id=plain");
      const client = await qmpClient(transport);
      const cases: [Record<string, unknown>, string][] = [
        [{ id: "hub0", from: 0 }, "Parameter 'size' is missing"],
        [{ id: "hub0", size: 10 }, "Parameter 'from' is missing"],
        [{ from: 0, size: 10 }, "Parameter 'id' is missing"],
        [{ id: "hub0", from: 0, size: 0 }, "Parameter 'size' expects a value between 1 and 1048576"],
        [{ id: "hub0", from: 0, size: MAX_HISTORY_READ_BYTES + 1 }, "Parameter 'size' expects a value between 1 and 1048576"],
        [{ id: "hub0", from: 0, size: "10" }, "Invalid parameter type for 'size', expected: integer"],
        [{ id: "hub0", from: -1, size: 10 }, "Parameter 'from' expects a non-negative integer"],
        [{ id: "hub0", from: 1.5, size: 10 }, "Invalid parameter type for 'from', expected: integer"],
        [{ id: "hub0", from: 0, size: 10, format: "hex" }, "Parameter 'format' does not accept value 'hex'"],
        [{ id: "hub0", from: 0, size: 10, offset: 3 }, "Parameter 'offset' is unexpected"],
        [{ id: "ghost", from: 0, size: 10 }, "Chardev 'ghost' not found"],
        [{ id: "plain", from: 0, size: 10 }, "'plain' is not a hub"],
      ];
      for (const [args, desc] of cases) expect([args, await client.execute("hub-history", args)]).toEqual([args, genericError(desc)]);
      expect(MAX_HISTORY_READ_BYTES).toBe(1048576);
    });
  });
}

describe("keep-head", () => {
  it("is refused on a hub without a ring, with a clear error, from option strings and from QMP chardev-add", async () => {
    await reg.add("null,id=sink");
    const error = await reg.add("hub,id=hub0,chardevs.0=sink,keep-head=4K").then(() => null, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(ChardevError);
    expect((error as ChardevError).code).toBe("INVALID_VALUE");
    expect((error as ChardevError).message).toBe("hub: keep-head needs a ring (ring=BYTES): QEMU's unbuffered hub keeps no history");
    expect(reg.find("hub0")).toBeUndefined();
    // The backend was not kept by a half-made hub: a ring hub may take it now.
    await reg.add("hub,id=hub1,chardevs.0=sink,ring=4096,keep-head=4K");

    const client = await qmpClient("unix");
    const answer = await client.execute("chardev-add", { id: "hub2", backend: { type: "hub", data: { chardevs: [], "keep-head": 4096 } } });
    expect(answer).toEqual(genericError("Failed to add chardev 'hub2': hub: keep-head needs a ring (ring=BYTES): QEMU's unbuffered hub keeps no history"));
  });

  it("is bounded like a ring: past 512 MiB it is refused naming the key", async () => {
    await reg.add("null,id=sink");
    const error = await reg.add("hub,id=hub0,chardevs.0=sink,ring=4096,keep-head=1G").then(() => null, (caught: unknown) => caught);
    expect((error as ChardevError).code).toBe("INVALID_VALUE");
    expect((error as ChardevError).message).toMatch(/^hub: 'keep-head' must be at most 536870912 bytes/);
  });

  it("keeps the head exactly when the ring wraps several times before any drain", async () => {
    // A drop backend never holds the writer back: five rings' worth goes in during one turn.
    const fe = await hubWithHistory(`ring=${RING},keep-head=${KEEP_HEAD},policy.0=drop`);
    const output = stream(5 * RING + 123);
    for (let at = 0; at < output.length; at += 300) expect(fe.write(output.subarray(at, at + 300))).toBe(Math.min(300, output.length - at));
    const history = reg.hub("hub0").history(0, output.length);
    expect(history.written).toBe(output.length);
    expect([...history.data.subarray(0, KEEP_HEAD)]).toEqual([...output.subarray(0, KEEP_HEAD)]);
    expect([...history.data.subarray(KEEP_HEAD)]).toEqual([...output.subarray(output.length - RING)]);
    expect(history.gone).toEqual([{ from: KEEP_HEAD, to: output.length - RING }]);
  });

  it("gives everything with nothing gone while the ring has not wrapped, and the head keep overlaps the ring", async () => {
    const fe = await hubWithHistory();
    const output = stream(3000);
    writeAll(fe, "hub0", output, 512);
    const history = reg.hub("hub0").history(0, 10_000);
    expect(history).toEqual({ from: 0, to: 3000, data: output, gone: [], written: 3000 });
  });

  it("is not needed for a hub without a ring: its whole range is reported gone", async () => {
    await reg.add("null,id=sink");
    await reg.add("hub,id=hub0,chardevs.0=sink");
    const fe = reg.attach("hub0", { canRead: () => 0, read() {}, event() {} });
    cleanups.push(() => fe.detach());
    expect(fe.write(stream(500))).toBe(500);
    expect(reg.hub("hub0").history(100, 1000)).toEqual({ from: 100, to: 500, data: new Uint8Array(0), gone: [{ from: 100, to: 500 }], written: 500 });
  });
});

describe("hub-history through the command", () => {
  it("gives a program's first bytes from keep-head and its last from the ring, as its log has them", async () => {
    const log = path.join(dir, "console.log");
    const qmpPath = path.join(dir, "qmp.sock");
    new CliProcess([
      "-chardev", "spawn,id=dev,cmd=sh,args.0=-c,args.1=seq 1 20000; echo END-OF-BOOT; exec sleep 60",
      "-chardev", `file,id=log,path=${log}`,
      "-chardev", `hub,id=hub0,chardevs.0=log,ring=${RING},keep-head=${KEEP_HEAD}`,
      "-frontend", "dev,chardev=hub0",
      "-qmp", `unix:${qmpPath},server=on,wait=off`,
    ]);
    const qmp = await SocketClient.connect(qmpPath);
    cleanups.push(() => qmp.close());
    await qmp.waitFor('"QMP"');
    qmp.send('{"execute": "qmp_capabilities"}\n');
    await qmp.waitFor('"return"');
    await until(() => readText(log).endsWith("END-OF-BOOT\r\n"), "the program's last line in the log");
    const logged = new Uint8Array(fs.readFileSync(log)); // the file backend blocks: every byte
    qmp.send(JSON.stringify({ execute: "hub-history", arguments: { id: "hub0", from: 0, size: logged.length }, id: 1 }) + "\n");
    await qmp.waitFor('"id": 1');
    const answer = JSON.parse(qmp.text.split("\r\n").find((line) => line.includes('"id": 1'))!).return;
    expect(logged.length).toBeGreaterThan(100_000);
    expect(answer.written).toBe(logged.length);
    expect(answer.gone).toEqual([{ from: KEEP_HEAD, to: logged.length - RING }]);
    expect(answer.data).toBe(base64(new Uint8Array([...logged.subarray(0, KEEP_HEAD), ...logged.subarray(logged.length - RING)])));
    expect(new TextDecoder().decode(logged.subarray(0, 9))).toBe("1\r\n2\r\n3\r\n"); // the boot log's start, through the pty
  });
});
