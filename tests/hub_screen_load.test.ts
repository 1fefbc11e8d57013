// The terminal emulator behind `replay=screen` is imported when a hub first needs a screen, not
// with the module or the command. A backend that opens while it is still loading must get the
// screen as it stood when it opened, then the live stream, with nothing missing or repeated.
//
// This file imports no xterm.js itself. A runtime that runs several test files in one process
// (Bun) may have loaded the emulator for an earlier file; then the first case takes the
// ordinary path (the screen made at once) and must give the same bytes.

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry } from "../host-ts/mod.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");

let reg: ChardevRegistry;

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: false });
});
afterEach(async () => {
  await reg.close();
});

/** Resolves once `condition` holds, checking every few ms; rejects after `limitMs` saying what it waited for. */
async function until(condition: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const occurrences = (text: string, part: string): number => text.split(part).length - 1;

describe("the screen emulator, loaded on first use", () => {
  it("gives a backend that opened while the emulator was loading the screen as it stood, then the live stream", async () => {
    await reg.add("ringbuf,id=first,size=65536");
    await reg.add("ringbuf,id=late,size=65536");
    await reg.add("hub,id=hub0,ring=65536,chardevs.0=first");
    const frontend = reg.attach("hub0", { canRead: () => 0, read() {}, event() {} });
    const encoder = new TextEncoder();
    expect(frontend.write(encoder.encode("hello\r\n\x1b[31mred"))).toBe(15);
    // Attached and open in one turn: the emulator's import has not resolved yet (in a fresh process).
    reg.hubAttach("hub0", "late", { replay: "screen" });
    expect(frontend.write(encoder.encode(" after"))).toBe(6);
    await reg.hub("hub0").screenParsed();
    let got = "";
    await until(() => (got += reg.ringbufRead("late", 65536)).endsWith(" after"), "the live stream after the repaint");
    expect(got.startsWith("\x1bc")).toBe(true); // the repaint first: RIS, then the screen
    expect(occurrences(got, "hello")).toBe(1);
    expect(occurrences(got, "red")).toBe(1);
    expect(occurrences(got, " after")).toBe(1); // not in the repaint: it came after the opening head
    expect(got.indexOf("\x1b[31m")).toBeLessThan(got.indexOf("red")); // the colour is on the screen
    // The hub's own backend had everything once, as written.
    expect(reg.ringbufRead("first", 65536)).toBe("hello\r\n\x1b[31mred after");
  });

  it("leaves xterm.js out of the command's entry bundle, in a chunk imported when a hub first needs a screen", () => {
    const entry = fs.readFileSync(path.join(root, "dist/cli.js"), "utf8");
    expect(entry.includes("node_modules/@xterm/headless")).toBe(false);
    const chunks = fs.readdirSync(path.join(root, "dist/cli-chunks")).filter((name) => name.endsWith(".js"));
    const withEmulator = chunks.filter((name) => fs.readFileSync(path.join(root, "dist/cli-chunks", name), "utf8").includes("node_modules/@xterm/headless"));
    expect(withEmulator.length).toBe(1);
  });
});
