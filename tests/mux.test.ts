// The mux's escape commands, typed on its base: focus, break, help, exit, timestamps, literal.

import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import { bytes, FeHandler } from "./_fe_handler.ts";

const CA = "\x01";
let reg: ChardevRegistry;
let exits: number;
let first: FeHandler;
let second: FeHandler;

beforeEach(async () => {
  exits = 0;
  reg = await ChardevRegistry.create({ onExitRequest: () => exits++ });
  await reg.add("ringbuf,id=con,mux=on,size=4096");
  first = new FeHandler();
  second = new FeHandler();
});
afterEach(async () => {
  await reg.close();
});

const type = (text: string) => reg.backendWrite("con-base", bytes(text));

describe("mux escape commands", () => {
  it("the newest frontend has focus and input goes only to it", () => {
    reg.attach("con", first);
    reg.attach("con", second);
    expect(first.events).toEqual([ChrEvent.OPENED, ChrEvent.MUX_IN, ChrEvent.MUX_OUT]);
    expect(second.events).toEqual([ChrEvent.OPENED, ChrEvent.MUX_IN]);
    type("ls\r");
    expect(second.take()).toBe("ls\r");
    expect(first.take()).toBe("");
  });

  it("C-a c moves focus to the next frontend, wrapping around", () => {
    reg.attach("con", first);
    reg.attach("con", second);
    type(`${CA}cto-first`);
    expect(first.take()).toBe("to-first");
    expect(second.events.at(-1)).toBe(ChrEvent.MUX_OUT);
    expect(first.events.at(-1)).toBe(ChrEvent.MUX_IN);
    type(`${CA}`);
    type(`cto-second`); // the command may arrive in the next chunk
    expect(second.take()).toBe("to-second");
  });

  it("C-a C-a types one literal C-a", () => {
    reg.attach("con", first);
    type(`a${CA}${CA}b`);
    expect(first.take()).toBe(`a${CA}b`);
  });

  it("C-a b sends BREAK to the focused frontend only", () => {
    reg.attach("con", first);
    reg.attach("con", second);
    type(`${CA}b`);
    expect(second.events.at(-1)).toBe(ChrEvent.BREAK);
    expect(first.events).not.toContain(ChrEvent.BREAK);
  });

  it("C-a h prints the commands on the base and C-a x asks to exit", () => {
    reg.attach("con", first);
    type(`${CA}h`);
    const help = reg.ringbufRead("con-base", 4096);
    for (const command of ["C-a h", "C-a x", "C-a t", "C-a b", "C-a c", "C-a C-a"]) expect(help).toContain(command);
    expect(first.take()).toBe("");
    type(`${CA}x`);
    expect(exits).toBe(1);
  });

  it("C-a t stamps each output line with the time since the first stamp", () => {
    const fe = reg.attach("con", first);
    type(`${CA}t`);
    expect(fe.write(bytes("one\ntwo\n"))).toBe(8);
    // Turning stamps on mid-line stamps from the next line on, as QEMU.
    expect(fe.write(bytes("three\n"))).toBe(6);
    const out = reg.ringbufRead("con-base", 4096);
    expect(out).toMatch(/^one\n\[\d\d:\d\d:\d\d\.\d{3}\] two\n\[\d\d:\d\d:\d\d\.\d{3}\] three\n$/);
    type(`${CA}t`);
    fe.write(bytes("plain\n"));
    expect(reg.ringbufRead("con-base", 4096)).toBe("plain\n");
  });

  it("a detached frontend gives focus back to the one before", () => {
    reg.attach("con", first);
    const fe2 = reg.attach("con", second);
    fe2.detach();
    type("after");
    expect(first.take()).toBe("after");
  });
});
