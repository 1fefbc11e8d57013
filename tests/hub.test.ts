// QEMU's char_hub_test (tests/unit/test-char.c), scenario by scenario, with its exact values
// and error strings, plus the event counting of the final QEMU 10.0 hub.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";

const RB_SIZE = 128;

let reg: ChardevRegistry;
beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: true });
});
afterEach(async () => {
  await reg.close();
});

describe("hub: invalid configurations (QEMU char_hub_test part 1)", () => {
  it("a hub without chardevs.N is refused", async () => {
    const error = await errorOf(() => reg.add("hub,id=hub0"));
    expect(error).toBeInstanceOf(ChardevError);
    expect(error.message).toBe("hub: 'chardevs' list is not defined");
    expect(reg.find("hub0")).toBeUndefined();
  });

  it("a hub over a mux=on chardev is refused, and so is one over the mux's base", async () => {
    await reg.add(`ringbuf,id=chr0,mux=on,size=${RB_SIZE}`);
    expect(reg.find("chr0-base")).toBeDefined();

    const stacked = await errorOf(() => reg.add("hub,id=hub0,chardevs.0=chr0"));
    expect(stacked.message).toBe(
      "hub: multiplexers and hub devices can't be stacked, check chardev 'chr0', chardev should not be a hub device or have 'mux=on' enabled",
    );
    const inUse = await errorOf(() => reg.add("hub,id=hub0,chardevs.0=chr0-base"));
    expect(inUse.message).toBe("chardev 'chr0-base' is already in use");
    expect(reg.find("hub0")).toBeUndefined();

    await reg.remove("chr0");
    expect(reg.find("chr0")).toBeUndefined();
  });

  it("chardevs.4 is an invalid parameter: QEMU's hub takes at most 4", async () => {
    let spec = "hub,id=hub0";
    let failure: { message: string } | undefined;
    for (let i = 0; i < 10 && !failure; i++) {
      spec += `,chardevs.${i}=chr${i}`;
      try {
        // Only option parsing can fail here: none of chr0..chr9 exist, so stop at that error.
        await reg.add(spec);
      } catch (error) {
        const message = (error as Error).message;
        if (message.startsWith("Invalid parameter")) failure = error as Error;
      }
    }
    expect(failure?.message).toBe("Invalid parameter 'chardevs.4'");
  });

  it("QMP chardev-add with 5 chardevs gives QEMU's too-many error and leaves nothing behind", async () => {
    for (let i = 0; i < 5; i++) await reg.add(`ringbuf,id=chr${i},size=${RB_SIZE}`);
    const error = await errorOf(() =>
      reg.add({ id: "hub0", backend: { type: "hub", data: { chardevs: ["chr0", "chr1", "chr2", "chr3", "chr4"] } } }),
    );
    expect(error.message).toBe("hub: too many uses of chardevs 'hub0' (maximum is 4)");
    expect(reg.find("hub0")).toBeUndefined();
    // The four it had taken were let go: they can be removed.
    for (let i = 0; i < 5; i++) await reg.remove(`chr${i}`);
  });
});

describe("hub: data aggregation over two ringbufs (QEMU char_hub_test part 2)", () => {
  it("input from either backend reaches the frontend and output reaches both", async () => {
    await reg.add(`ringbuf,id=chr1,size=${RB_SIZE}`);
    await reg.add(`ringbuf,id=chr2,size=${RB_SIZE}`);
    await reg.add("hub,id=hub0,chardevs.0=chr1,chardevs.1=chr2");

    const h = new FeHandler();
    const fe = reg.attach("hub0", h);

    const second = await errorOf(() => reg.attach("hub0", new FeHandler()));
    expect(second.message).toBe("hub: chardev 'hub0' is already used");

    expect(reg.backendCanWrite("chr1")).not.toBe(0);
    reg.backendWrite("chr1", bytes("hello\0"));
    expect(h.readCount).toBe(6);
    expect(h.take()).toBe("hello\0");

    expect(reg.backendCanWrite("chr2")).not.toBe(0);
    reg.backendWrite("chr2", bytes("olleh\0"));
    expect(h.readCount).toBe(6);
    expect(h.take()).toBe("olleh\0");

    expect(fe.write(bytes("heyhey"))).toBe(6);
    expect(reg.ringbufRead("chr1", RB_SIZE)).toBe("heyhey");
    expect(reg.ringbufRead("chr2", RB_SIZE)).toBe("heyhey");

    expect((await errorOf(() => reg.remove("chr1"))).message).toBe("Chardev 'chr1' is busy");
    expect((await errorOf(() => reg.remove("hub0"))).message).toBe("Chardev 'hub0' is busy");

    fe.detach();
    await reg.remove("hub0");
    await reg.remove("chr1");
    await reg.remove("chr2");
    expect(reg.query()).toEqual([]);
  });
});

describe("hub: EAGAIN and the watch with a real FIFO (QEMU char_hub_test part 3)", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-test-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a full pipe stops the hub, the watch wakes it, and no byte is lost or repeated", async () => {
    const pipe = path.join(dir, "pipe");
    execFileSync("mkfifo", ["-m", "0600", `${pipe}.in`, `${pipe}.out`]);

    await reg.add(`ringbuf,id=chr1,size=${RB_SIZE}`);
    await reg.add(`ringbuf,id=chr2,size=${RB_SIZE}`);
    await reg.add(`pipe,id=chr3,path=${pipe}`);
    await reg.add("hub,id=hub0,chardevs.0=chr1,chardevs.1=chr2,chardevs.2=chr3");
    const fe = reg.attach("hub0", new FeHandler());

    expect(fe.write(bytes("thisis"))).toBe(6);
    expect(reg.ringbufRead("chr1", RB_SIZE)).toBe("thisis");
    expect(reg.ringbufRead("chr2", RB_SIZE)).toBe("thisis");

    const reader = fs.openSync(`${pipe}.out`, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    const buf = Buffer.alloc(128);
    let got = fs.readSync(reader, buf, 0, buf.length, null);
    expect(got).toBe(6);
    expect(buf.subarray(0, got).toString()).toBe("thisis");

    // Nothing is blocked: no watch.
    expect(fe.addWatch(() => {})).toBe(0);

    // Fill the pipe; 8 divides its capacity, so it fills exactly.
    let len = 0;
    let ret: number;
    while ((ret = fe.write(bytes("thisisit"))) !== -1) len += ret;
    expect(fe.lastError).toBe("EAGAIN");

    expect(fe.write(bytes("b"))).toBe(-1);
    expect(fe.lastError).toBe("EAGAIN");

    let woke = false;
    const watch = fe.addWatch(() => (woke = true));
    expect(watch).not.toBe(0);

    // Drain the pipe; the watch fires once it can take bytes again.
    while (len > 0) {
      got = fs.readSync(reader, buf, 0, Math.min(buf.length, len), null);
      len -= got;
    }
    await new Promise<void>((resolve) => {
      const poll = () => (woke ? resolve() : setTimeout(poll, 1));
      poll();
    });
    expect(woke).toBe(true);

    expect(reg.ringbufRead("chr1", RB_SIZE)).toHaveLength(128);
    expect(reg.ringbufRead("chr2", RB_SIZE)).toHaveLength(128);

    // The "lost" write: the ringbufs already have it, only the pipe takes it now.
    expect(fe.write(bytes("thisisit"))).toBe(8);
    expect(fe.write(bytes("streamisrestored"))).toBe(16);

    expect(reg.ringbufRead("chr1", RB_SIZE)).toBe("streamisrestored");
    expect(reg.ringbufRead("chr2", RB_SIZE)).toBe("streamisrestored");

    got = fs.readSync(reader, buf, 0, buf.length, null);
    expect(got).toBe(24);
    expect(buf.subarray(0, got).toString()).toBe("thisisitstreamisrestored");
    fs.closeSync(reader);

    fe.detach();
    await reg.remove("hub0");
    await reg.remove("chr1");
    await reg.remove("chr2");
    await reg.remove("chr3");
  });
});
