// QEMU's char_ringbuf_test with its exact values, plus ringbuf-read/ringbuf-write (QMP) rules.

import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry } from "../host-ts/mod.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";

let reg: ChardevRegistry;
beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: true });
});
afterEach(async () => {
  await reg.close();
});

describe("ringbuf (QEMU char_ringbuf_test)", () => {
  it("a size that is not a power of two is refused", async () => {
    const error = await errorOf(() => reg.add("ringbuf,id=ringbuf-label,size=5"));
    expect(error.message).toBe("size of ringbuf chardev must be power of two");
    expect(error.code).toBe("INVALID_VALUE");
    expect(reg.find("ringbuf-label")).toBeUndefined();
  });

  it("ringbuf drops the oldest bytes when full and reads empty afterwards", async () => {
    await reg.add("ringbuf,id=ringbuf-label,size=2");
    const fe = reg.attach("ringbuf-label", new FeHandler());
    expect(fe.write(bytes("buff"))).toBe(4);
    expect(reg.ringbufRead("ringbuf-label", 4)).toBe("ff");
    expect(reg.ringbufRead("ringbuf-label", 4)).toBe("");
    fe.detach();
  });

  it("memory is an alias of ringbuf", async () => {
    const chardev = await reg.add("memory,id=memory-label,size=2");
    expect(chardev.kind).toBe("ringbuf");
    expect(reg.query()).toEqual([{ label: "memory-label", filename: "memory", frontendOpen: false }]);
  });

  it("the default size is QEMU's 64 KiB", async () => {
    await reg.add("ringbuf,id=big");
    reg.ringbufWrite("big", "x".repeat(65536 + 10));
    expect(reg.ringbufRead("big", 1 << 20)).toHaveLength(65536);
  });
});

describe("ringbuf-read and ringbuf-write", () => {
  it("ringbuf-write then ringbuf-read returns the bytes in order, in utf8 or base64", async () => {
    await reg.add({ id: "rb", backend: { type: "ringbuf", data: { size: 16 } } });
    reg.ringbufWrite("rb", "héllo");
    expect(reg.ringbufRead("rb", 3)).toBe("hé");
    expect(reg.ringbufRead("rb", 100)).toBe("llo");
    reg.ringbufWrite("rb", "AAEC/w==", "base64");
    expect(reg.ringbufRead("rb", 100, "base64")).toBe("AAEC/w==");
  });

  it("utf8 output ends at the first NUL, as QEMU's C string does, and the rest is consumed", async () => {
    await reg.add("ringbuf,id=rb,size=16");
    reg.ringbufWrite("rb", "YWIAY2Q=", "base64"); // "ab\0cd"
    expect(reg.ringbufRead("rb", 16)).toBe("ab");
    expect(reg.ringbufRead("rb", 16)).toBe("");
  });

  it("invalid utf8 comes back as U+FFFD", async () => {
    await reg.add("ringbuf,id=rb,size=16");
    reg.ringbufWrite("rb", "/w==", "base64"); // 0xff
    expect(reg.ringbufRead("rb", 16)).toBe("\uFFFD");
  });

  it("bad ringbuf requests get QEMU's errors", async () => {
    await reg.add("ringbuf,id=rb,size=16");
    await reg.add("null,id=nul");
    expect((await errorOf(() => reg.ringbufRead("nope", 1))).message).toBe("Device 'nope' not found");
    expect((await errorOf(() => reg.ringbufRead("nul", 1))).message).toBe("nul is not a ringbuf device");
    expect((await errorOf(() => reg.ringbufRead("rb", 0))).message).toBe("size must be greater than zero");
    expect((await errorOf(() => reg.ringbufWrite("nul", "x"))).message).toBe("nul is not a ringbuf device");
    expect((await errorOf(() => reg.ringbufWrite("rb", "!!!", "base64"))).code).toBe("INVALID_VALUE");
    expect(reg.ringbufRead("rb", 16)).toBe("");
  });
});
