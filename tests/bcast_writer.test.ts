// The broadcast ring's windowed writer (host-ts/core.ts BcastWriter, core-as/ring.ts
// bcastReserve/bcastHeadAddress/bcastCommit) against the plain `bcastWrite`: two cores run the
// same random script, one writing through the window and settling before every other call (as
// the hub does), the other calling bcastWrite; every write result, every byte each reader gets
// and every counter must agree.

import { describe, expect, it } from "./_harness.ts";
import { Core } from "../host-ts/mod.ts";

/** A small deterministic PRNG (mulberry32). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Policy = "block" | "drop";

/** What a reader does with a slice, decided by the script (the same on both sides). */
interface Reader {
  received: number[];
  gaps: number;
  /** Bytes it takes per write: Infinity, a few, or 0 (EAGAIN). */
  takes: number;
}

class Side {
  readonly readers: Reader[] = [];
  readonly ring: number;
  readonly writer;

  constructor(
    readonly core: Core,
    size: number,
    policies: Policy[],
  ) {
    this.ring = core.bcastNew(size);
    this.writer = core.bcastWriter(this.ring);
    core.onBackendWrite = (_ring, index, data) => {
      const reader = this.readers[index];
      const taken = Math.min(reader.takes, data.length);
      if (taken === 0) return -11;
      for (let i = 0; i < taken; i++) reader.received.push(data[i]);
      return taken;
    };
    core.onBackendGap = (_ring, index, bytes) => {
      this.readers[index].gaps += bytes;
    };
    for (const policy of policies) {
      const index = core.bcastAddBackend(this.ring, policy, size / 2, 16);
      core.bcastSetOpen(this.ring, index, true);
      this.readers[index] = { received: [], gaps: 0, takes: Infinity };
    }
  }

  books(): unknown {
    const { core, ring } = this;
    return {
      head: core.bcastHead(ring),
      writable: core.bcastWritable(ring),
      readers: this.readers.map((reader, i) => ({
        cursor: core.bcastCursor(ring, i),
        delivered: core.bcastDelivered(ring, i),
        dropped: core.bcastDropped(ring, i),
        blocked: core.bcastBlocked(ring, i),
        received: reader.received.length,
        gaps: reader.gaps,
      })),
    };
  }
}

/** Text with newlines and the odd ESC, so drop readers find safe boundaries. */
function payload(next: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const roll = next();
    out[i] = roll < 0.05 ? 0x0a : roll < 0.06 ? 0x1b : 0x61 + Math.floor(next() * 26);
  }
  return out;
}

async function runScript(seed: number, steps: number): Promise<void> {
  const next = random(seed);
  const size = 1 << (6 + Math.floor(next() * 5)); // 64 .. 1024
  const policies: Policy[] = ["block", "drop", next() < 0.5 ? "block" : "drop"];
  const plain = new Side(await Core.load(), size, policies);
  const windowed = new Side(await Core.load(), size, policies);
  const both = (act: (side: Side) => void) => {
    act(plain);
    windowed.writer.settle();
    act(windowed);
  };
  for (let step = 0; step < steps; step++) {
    const roll = next();
    const where = `seed ${seed}, step ${step}`;
    if (roll < 0.55) {
      // Mostly small writes, some larger than the ring's free run, a few empty.
      const length = next() < 0.1 ? 0 : next() < 0.8 ? 1 + Math.floor(next() * 24) : Math.floor(next() * size * 1.5);
      const data = payload(next, length);
      const viaPlain = plain.core.bcastWrite(plain.ring, data);
      const viaWindow = windowed.writer.write(data);
      expect(viaWindow, `${where}: write of ${length}`).toBe(viaPlain);
    } else if (roll < 0.8) {
      both((side) => side.core.bcastDrain(side.ring));
    } else if (roll < 0.9) {
      // A reader changes its behaviour; a blocked one is woken (its watch fired).
      const index = Math.floor(next() * policies.length);
      const takes = [Infinity, 1 + Math.floor(next() * 8), 0][Math.floor(next() * 3)];
      both((side) => {
        side.readers[index].takes = takes;
        side.core.bcastUnblock(side.ring, index);
      });
    } else if (roll < 0.95) {
      // Close and reopen a reader: it comes back at the head with up to 16 bytes of replay.
      const index = Math.floor(next() * policies.length);
      both((side) => {
        side.core.bcastSetOpen(side.ring, index, false);
        side.core.bcastSetOpen(side.ring, index, true);
      });
    } else {
      // Grow core memory under the open window: its view detaches; nothing may be lost.
      windowed.core.bcastNew(1 << 16);
      plain.core.bcastNew(1 << 16);
    }
    if (step % 16 === 15) {
      windowed.writer.settle();
      expect(windowed.books(), where).toEqual(plain.books());
    }
  }
  both((side) => {
    for (const reader of side.readers) reader.takes = Infinity;
    for (let i = 0; i < side.readers.length; i++) side.core.bcastUnblock(side.ring, i);
    side.core.bcastDrain(side.ring);
  });
  expect(windowed.books()).toEqual(plain.books());
  windowed.readers.forEach((reader, i) => expect(reader.received, `seed ${seed}: reader ${i}'s bytes`).toEqual(plain.readers[i].received));
}

describe("BcastWriter", () => {
  it("gives the same write results, bytes, gaps and counters as bcastWrite on random scripts", async () => {
    for (let seed = 1; seed <= 40; seed++) await runScript(seed, 400);
  });

  it("copies a write that fits the free run with no call into the core", async () => {
    const core = await Core.load();
    const ring = core.bcastNew(1024);
    core.bcastSetOpen(ring, core.bcastAddBackend(ring, "block", 1024, 0), true);
    const writer = core.bcastWriter(ring);
    expect(writer.write(new Uint8Array(100))).toBe(100); // opens the window
    const head = core.bcastHead(ring);
    for (let i = 0; i < 9; i++) expect(writer.write(new Uint8Array(100))).toBe(100);
    expect(core.bcastHead(ring)).toBe(head); // not booked yet: nothing called the core
    writer.settle();
    expect(core.bcastHead(ring)).toBe(1000);
    expect(core.bcastWritable(ring)).toBe(24);
    expect(writer.write(new Uint8Array(100))).toBe(24); // short, as bcastWrite
    expect(writer.write(new Uint8Array(1))).toBe(0); // full
  });
});
