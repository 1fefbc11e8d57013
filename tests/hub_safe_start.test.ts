// Safe starts: a backend that opens on a ring hub without asking for replay starts at the next
// safe boundary of the stream, never inside a UTF-8 character or an escape sequence (issue 10:
// without it a client joining mid-stream started inside a character 21 times in 25).
//
// The writer is a frontend writing terminal output (multi-byte characters, CSI, OSC and DCS
// sequences) in chunks cut at arbitrary bytes, so the hub's head is usually inside a piece when
// the joiner opens; it waits on the hub's watch when the hub refuses bytes. Every piece is a
// whole character or a whole escape sequence, so "a piece boundary" is exactly "a safe start".
//
// QEMU's hub (ring=0) has no ring: a backend that opens gets the next byte the frontend writes,
// as in QEMU, wherever that falls (docs/hub.md, "Safe starts"); there is nothing to test there.

import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, type Frontend } from "../host-ts/mod.ts";
import { FeHandler } from "./_fe_handler.ts";
import { SwitchChardev, switchDriver } from "./_switch_chardev.ts";

const PIECES = [
  "a", "Z", " ", "\r", "\n", "é", "ß", "€", "日", "本", "😀", "🎉",
  "\x1b[1;31m", "\x1b[0m", "\x1b[38;2;10;200;30m", "\x1b[?25l", "\x1b[2J", "\x1b[H",
  "\x1b]0;tïtle ✓\x07", "\x1b]8;;http://127.0.0.1/\x1b\\", "\x1bP1$r0m\x1b\\", "\x1b(B", "\x1b7",
];
const encoder = new TextEncoder();
const ENCODED = PIECES.map((piece) => encoder.encode(piece));

let reg: ChardevRegistry;
beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: false });
  reg.registerDriver(switchDriver);
});
afterEach(async () => {
  await reg.close();
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** The stream so far, and where each piece starts in it. */
class TerminalStream {
  readonly bytes: number[] = [];
  readonly pieceStarts = new Set<number>([0]);
  #random = 7;

  next(limit: number): number {
    this.#random = (this.#random * 1103515245 + 12345) >>> 0;
    return (this.#random >>> 8) % limit;
  }

  /** Appends `count` random pieces; returns their bytes. */
  pieces(count: number): Uint8Array {
    const from = this.bytes.length;
    for (let i = 0; i < count; i++) {
      for (const byte of ENCODED[this.next(ENCODED.length)]!) this.bytes.push(byte);
      this.pieceStarts.add(this.bytes.length);
    }
    return Uint8Array.from(this.bytes.slice(from));
  }
}

/** Writes all of `data` through the frontend, waiting on the hub's watch whenever it refuses. */
async function writeAll(fe: Frontend, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const written = fe.write(data.subarray(at));
    if (written > 0) {
      at += written;
      continue;
    }
    expect(fe.lastError).toBe("EAGAIN");
    await new Promise<void>((resolve) => {
      if (fe.addWatch(() => resolve()) === 0) setTimeout(resolve, 1);
    });
  }
}

describe("safe starts on a ring hub", () => {
  it("a backend that joins mid-stream 200 times always starts on a whole character outside any escape sequence", async () => {
    const keeper = (await reg.add("switch,id=keeper")) as SwitchChardev;
    const joiner = (await reg.add("switch,id=joiner")) as SwitchChardev;
    keeper.open();
    keeper.countOnly = true;
    await reg.add("hub,id=hub0,chardevs.0=keeper,chardevs.1=joiner,ring=4096");
    const fe = reg.attach("hub0", new FeHandler());
    const stream = new TerminalStream();
    const fatal = new TextDecoder("utf-8", { fatal: true });
    let joinedInsideAPiece = 0;
    let waitedOnTheWatch = 0;

    for (let join = 0; join < 200; join++) {
      // Some text, then a chunk cut anywhere: the head is usually inside a piece now.
      const before = stream.pieces(1 + stream.next(6));
      const cut = stream.next(before.length + 1);
      if (join % 10 === 0) {
        // The keeper stalls: the writer meets EAGAIN and waits on the watch until it resumes.
        keeper.stalled = true;
        const waiting = writeAll(fe, before);
        await settle();
        keeper.resume();
        await waiting;
        waitedOnTheWatch++;
      } else {
        await writeAll(fe, before.subarray(0, cut));
      }
      const head = join % 10 === 0 ? stream.bytes.length : stream.bytes.length - (before.length - cut);
      if (!stream.pieceStarts.has(head)) joinedInsideAPiece++;

      joiner.chunks = [];
      joiner.open();
      await settle();
      if (join % 10 !== 0) await writeAll(fe, before.subarray(cut));
      await writeAll(fe, stream.pieces(4));
      await settle();

      const received = joiner.receivedBytes;
      expect(received.length, `join ${join}: the joiner got nothing`).toBeGreaterThan(0);
      // Where in the stream it started: its bytes are the stream's from there to the end.
      const start = stream.bytes.length - received.length;
      expect(start, `join ${join}: started before the head it joined at`).toBeGreaterThanOrEqual(head);
      expect(Array.from(received), `join ${join}: not the stream's bytes`).toEqual(stream.bytes.slice(start));
      expect(stream.pieceStarts.has(start), `join ${join}: started at ${start}, inside a piece (head ${head}): ${JSON.stringify(new TextDecoder().decode(Uint8Array.from(stream.bytes.slice(start - 12, start + 4))))}`).toBe(true);
      // A first chunk may end inside a character (the writer cut it there); it must not start inside one.
      expect(() => new TextDecoder("utf-8", { fatal: true }).decode(joiner.chunks[0], { stream: true }), `join ${join}: first chunk`).not.toThrow();
      expect(() => fatal.decode(received), `join ${join}: all it got`).not.toThrow();
      // Its first bytes are text or the ESC that starts a sequence, never a sequence's tail.
      const first = received[0]!;
      expect(first === 0x1b || first >= 0x20 || first === 0x0d || first === 0x0a, `join ${join}: starts with byte ${first}`).toBe(true);
      joiner.close();
    }
    // The cuts did land inside characters and sequences (what the issue measured), and the watch was used.
    expect(joinedInsideAPiece).toBeGreaterThan(100);
    expect(waitedOnTheWatch).toBe(20);
  });

  it("the first chunk a joiner gets decodes as UTF-8 on its own", async () => {
    const joiner = (await reg.add("switch,id=joiner")) as SwitchChardev;
    await reg.add("hub,id=hub0,chardevs.0=joiner,ring=1024");
    const fe = reg.attach("hub0", new FeHandler());
    const euro = encoder.encode("€€");
    expect(fe.write(euro.subarray(0, 4))).toBe(4); // "€" and the first byte of the next
    joiner.open();
    expect(fe.write(euro.subarray(4))).toBe(2);
    expect(fe.write(encoder.encode("x\x1b]0;ti"))).toBe(7);
    expect(fe.write(encoder.encode("tle\x07ok"))).toBe(6);
    await settle();
    expect(joiner.received).toBe("x\x1b]0;title\x07ok");
    joiner.close();
    expect(fe.write(encoder.encode("\x1b]0;long"))).toBe(8);
    joiner.open(); // inside an OSC string: it starts after the string's BEL
    expect(fe.write(encoder.encode(" title\x07\x1b[1mB"))).toBe(12);
    await settle();
    expect(joiner.received).toBe("x\x1b]0;title\x07ok\x1b[1mB");
  });
});
