// The hub's event counting: the frontend sees the first OPENED and the last CLOSED, never goes
// below zero, and a backend that reopens catches up instead of replaying what it missed.

import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import { bytes, FeHandler } from "./_fe_handler.ts";
import { SwitchChardev, switchDriver } from "./_switch_chardev.ts";

let reg: ChardevRegistry;
let a: SwitchChardev;
let b: SwitchChardev;
let h: FeHandler;

beforeEach(async () => {
  reg = await ChardevRegistry.create();
  reg.registerDriver(switchDriver);
  a = (await reg.add("switch,id=a")) as SwitchChardev;
  b = (await reg.add("switch,id=b")) as SwitchChardev;
  await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=b");
  h = new FeHandler();
});
afterEach(async () => {
  await reg.close();
});

describe("hub events", () => {
  it("only the first OPENED and the last CLOSED reach the frontend", () => {
    reg.attach("hub0", h);
    expect(h.events).toEqual([]);
    a.open();
    b.open();
    expect(h.events).toEqual([ChrEvent.OPENED]);
    a.close();
    expect(h.events).toEqual([ChrEvent.OPENED]);
    b.close();
    expect(h.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
  });

  it("CLOSED never takes the count below zero", () => {
    reg.attach("hub0", h);
    a.close();
    b.close();
    expect(h.events).toEqual([]);
    a.open();
    expect(h.events).toEqual([ChrEvent.OPENED]);
  });

  it("other events pass straight through", () => {
    reg.attach("hub0", h);
    reg.get("a").emitEvent(ChrEvent.BREAK);
    expect(h.events).toEqual([ChrEvent.BREAK]);
  });

  it("a frontend attaching to a hub with an open backend gets OPENED at once", () => {
    a.open();
    reg.attach("hub0", h);
    expect(h.events).toEqual([ChrEvent.OPENED]);
  });

  it("closed backends are skipped and do not limit what a write returns", () => {
    const fe = reg.attach("hub0", h);
    a.open();
    b.takes = 0; // closed anyway: must not matter
    expect(fe.write(bytes("only-a"))).toBe(6);
    expect(a.received).toBe("only-a");
    expect(b.received).toBe("");
  });

  it("a reopened backend catches up: it gets only what is written after it reopened", () => {
    const fe = reg.attach("hub0", h);
    a.open();
    b.open();
    expect(fe.write(bytes("one,"))).toBe(4);
    b.close();
    expect(fe.write(bytes("two,"))).toBe(4);
    b.open();
    expect(fe.write(bytes("three"))).toBe(5);
    expect(a.received).toBe("one,two,three");
    expect(b.received).toBe("one,three");
  });

  it("a partial write returns the minimum and the retry does not duplicate bytes", () => {
    const fe = reg.attach("hub0", h);
    a.open();
    b.open();
    b.takes = 2;
    expect(fe.write(bytes("abcdef"))).toBe(2);
    b.takes = Infinity;
    // The frontend retries the rest: a already has it, only b takes it.
    expect(fe.write(bytes("cdef"))).toBe(4);
    expect(a.received).toBe("abcdef");
    expect(b.received).toBe("abcdef");
  });
});
