// Property tests: the WASM broadcast ring (core-as/ring.ts, through host-ts/core.ts) against the
// pure-TypeScript reference model in _ring_model.ts. Every random run applies the same scripted
// reader behaviour to both sides and requires identical results after every step: return
// values, every reader write (its index and bytes), every gap, and every reader's books. Both
// sides also check what the ring promises its readers: each receives the writer's stream from
// where it started, byte for byte, minus exactly the gaps it was told about.
// On failure fast-check prints the seed and the shrunk counterexample.

import { beforeAll, describe, expect, it } from "./_harness.ts";
import fc from "fast-check";
import { Core, type RingPolicy } from "../host-ts/core.ts";
import { BLOCK, DROP, EAGAIN, EIO, ESC, EVICT, NEWLINE, RingModel } from "./_ring_model.ts";

const MAX_READERS = 5;
/** RING_PROPERTY_RUNS=100000 for a longer hunt; the default keeps the file at a few seconds. */
const MAIN_RUNS = Number(process.env.RING_PROPERTY_RUNS ?? 5_000);
/**
 * Runs and shrinking stop here, so a failure reports its best counterexample so far before the
 * runner's 30 s test timeout; running out of time before `MAIN_RUNS` runs fails the test. A
 * longer hunt raises both: RING_PROPERTY_TIME_MS=600000 ... vitest run --testTimeout=700000.
 */
const TIME_LIMIT_MS = Number(process.env.RING_PROPERTY_TIME_MS ?? 20_000);

const POLICY_NAMES: Record<number, RingPolicy> = { [BLOCK]: "block", [DROP]: "drop", [EVICT]: "evict" };

let core: Core;

beforeAll(async () => {
  core = await Core.load();
});

// ---------------------------------------------------------------------------------------------
// Scripted readers

/** What a reader does with every write it is offered until told otherwise. */
type Behaviour =
  | { kind: "all" }
  | { kind: "partial"; k: number } // takes `k % (len + 1)` bytes, so 0..len
  | { kind: "eagain" }
  | { kind: "zero" }
  | { kind: "eio" };

function resolve(behaviour: Behaviour, len: number): number {
  switch (behaviour.kind) {
    case "all":
      return len;
    case "partial":
      return behaviour.k % (len + 1);
    case "eagain":
      return -EAGAIN;
    case "zero":
      return 0;
    case "eio":
      return -EIO;
  }
}

const behaviourArb: fc.Arbitrary<Behaviour> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Behaviour>({ kind: "all" }) },
  { weight: 3, arbitrary: fc.nat(300).map((k): Behaviour => ({ kind: "partial", k })) },
  { weight: 2, arbitrary: fc.constant<Behaviour>({ kind: "eagain" }) },
  { weight: 1, arbitrary: fc.constant<Behaviour>({ kind: "zero" }) },
  { weight: 1, arbitrary: fc.constant<Behaviour>({ kind: "eio" }) },
);

/** One reader write as a side saw it: which reader was offered which bytes, and what it said. */
interface Call {
  index: number;
  data: number[];
  result: number;
}

interface Gap {
  index: number;
  bytes: number;
}

/**
 * One side of a run: the writer's accepted stream, the reader writes and gaps of the current
 * step, every byte each slot took, and each slot's position in the stream as rebuilt from what
 * it was offered and told. Any byte offered that is not the stream's byte at that position
 * fails the run on the spot.
 */
class Side {
  calls: Call[] = [];
  gaps: Gap[] = [];
  /** Every byte the writer had accepted, in order: the stream. */
  readonly stream: number[] = [];
  /** Per slot: every byte its readers took. */
  readonly received: number[][] = [];
  /** Per slot: the stream position its reader should be offered next. */
  readonly position: number[] = [];
  /** Per slot: the side's count of bytes skipped at safe starts, as last seen. */
  readonly #joinSkipped: number[] = [];

  constructor(
    private readonly name: string,
    private readonly respond: (index: number, len: number) => number,
    /** The side's own count of bytes reader `index` skipped to start at a safe boundary. */
    private readonly joinSkippedOf: (index: number) => number,
  ) {}

  /** A joining reader's skip to a safe start moves it on without a write or a gap: follow it. */
  followJoinSkip(index: number): void {
    const skipped = this.joinSkippedOf(index);
    this.position[index] = this.position[index]! + (skipped - (this.#joinSkipped[index] ?? 0));
    this.#joinSkipped[index] = skipped;
  }

  /** The writer's `taken` first bytes of `data` joined the stream. */
  accepted(data: Uint8Array, taken: number): void {
    for (let j = 0; j < taken; j++) this.stream.push(data[j]!);
  }

  /** Reader `index` (re)starts at stream position `cursor`: added, or opened. */
  seek(index: number, cursor: number): void {
    this.position[index] = cursor;
    this.#joinSkipped[index] = this.joinSkippedOf(index);
  }

  /** The reader write hook: checks the offered bytes against the stream, then takes the prefix. */
  write(index: number, data: Uint8Array): number {
    const bytes = Array.from(data);
    this.followJoinSkip(index);
    const at = this.position[index]!;
    if (bytes.length === 0) throw new Error(`${this.name}: reader ${index} was offered an empty write`);
    if (at + bytes.length > this.stream.length) {
      throw new Error(`${this.name}: reader ${index} offered [${at}, ${at + bytes.length}) but the writer only sent ${this.stream.length} bytes`);
    }
    for (let j = 0; j < bytes.length; j++) {
      if (bytes[j] !== this.stream[at + j]) {
        throw new Error(
          `${this.name}: reader ${index} offered byte ${bytes[j]} at stream position ${at + j}, the writer sent ${this.stream[at + j]} ` +
            `(offered ${show(bytes)} from ${at}; stream there ${show(this.stream.slice(at, at + bytes.length))})`,
        );
      }
    }
    const result = this.respond(index, bytes.length);
    this.calls.push({ index, data: bytes, result });
    if (result > 0) {
      const into = (this.received[index] ??= []);
      for (let j = 0; j < result; j++) into.push(bytes[j]!);
      this.position[index] = at + result;
    }
    return result;
  }

  /** The gap hook: the reader's next byte is `bytes` further on. */
  gap(index: number, bytes: number): void {
    this.gaps.push({ index, bytes });
    this.followJoinSkip(index);
    this.position[index] = this.position[index]! + bytes;
  }
}

const show = (value: unknown) => JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v));

/** Throws, with both sides shown, unless the core and the model agree. Cheaper than expect() per step. */
function agree(what: string, wasm: unknown, model: unknown): void {
  const a = show(wasm);
  const b = show(model);
  if (a !== b) throw new Error(`${what} differ:\n  wasm:  ${a}\n  model: ${b}`);
}

/** The core's books for every slot. `writable` is not read here: reading it refreshes the core's cached tail. */
function coreState(ring: number, slots: number) {
  const readers: unknown[] = [];
  for (let i = 0; i < slots; i++) {
    readers.push([
      core.bcastCursor(ring, i),
      core.bcastDelivered(ring, i),
      core.bcastDropped(ring, i),
      core.bcastStalls(ring, i),
      core.bcastBlocked(ring, i),
      core.bcastJoinSkipped(ring, i),
    ]);
  }
  return { head: core.bcastHead(ring), readers };
}

function modelState(model: RingModel) {
  return {
    head: model.head,
    readers: model.readers.map((r) => [r.cursor, r.delivered, r.dropped, r.stalls, r.blocked, r.joinSkipped]),
  };
}

// ---------------------------------------------------------------------------------------------
// Commands

interface ReaderSpec {
  policy: number;
  lagLimit: number;
  replay: number;
  behaviour: Behaviour;
}

/** Reader indices are reduced modulo the slots that exist when the command runs (removed ones included). */
type Command =
  | { op: "write"; data: Uint8Array }
  | { op: "drain" }
  | { op: "drainBackend"; reader: number }
  | { op: "behave"; reader: number; behaviour: Behaviour }
  | { op: "unblock"; reader: number }
  | { op: "open"; reader: number; open: boolean }
  | { op: "add"; spec: ReaderSpec }
  | { op: "remove"; reader: number };

/**
 * A step and whether to compare `bcastWritable` after it. Not after every step: the core's
 * bcastWritable refreshes its cached tail, so asking after each step would hide a stale cache
 * from the next write.
 */
interface Step {
  command: Command;
  peek: boolean;
}

const readerSpecArb: fc.Arbitrary<ReaderSpec> = fc.record({
  policy: fc.oneof({ weight: 2, arbitrary: fc.constant(BLOCK) }, { weight: 3, arbitrary: fc.constant(DROP) }, { weight: 1, arbitrary: fc.constant(EVICT) }),
  lagLimit: fc.oneof(fc.nat(40), fc.nat(1500), fc.constant(2 ** 40)),
  replay: fc.oneof(fc.constant(0), fc.nat(48), fc.nat(1500)),
  behaviour: behaviourArb,
});

/** Mostly text, with newlines and ESCs for safe boundaries; some writes have neither. */
const byteArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant(NEWLINE) },
  { weight: 2, arbitrary: fc.constant(ESC) },
  { weight: 14, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
/** Terminal output: UTF-8 characters and escape sequences, cut anywhere (a join may land inside one). */
const TERMINAL_PIECES = ["a", "é", "€", "😀", "\n", "\x1b[1;31m", "\x1b[0m", "\x1b]0;tïtle\x07", "\x1b]2;t\x1b\\", "\x1bP1$r\x1b\\", "\x1b(B", "\x1b7", "\x1b[?25l", "\x1b[\x18x"];
const terminalArb = fc
  .tuple(fc.array(fc.constantFrom(...TERMINAL_PIECES), { maxLength: 40 }), fc.nat(8))
  .map(([pieces, cut]) => {
    const bytes = Array.from(new TextEncoder().encode(pieces.join("")));
    return bytes.slice(0, Math.max(0, bytes.length - cut));
  });
const dataArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.array(byteArb, { maxLength: 200, size: "max" }) },
  { weight: 1, arbitrary: fc.array(fc.integer({ min: 0x61, max: 0x7a }), { maxLength: 200, size: "max" }) },
  { weight: 2, arbitrary: terminalArb },
).map((bytes) => Uint8Array.from(bytes));

const readerArb = fc.nat(MAX_READERS - 1);

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("write" as const), data: dataArb }) },
  { weight: 3, arbitrary: fc.constant<Command>({ op: "drain" }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("drainBackend" as const), reader: readerArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("behave" as const), reader: readerArb, behaviour: behaviourArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("unblock" as const), reader: readerArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("open" as const), reader: readerArb, open: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("add" as const), spec: readerSpecArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("remove" as const), reader: readerArb }) },
);

const stepArb: fc.Arbitrary<Step> = fc.record({
  command: commandArb,
  peek: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});

interface Scenario {
  size: number;
  readers: (ReaderSpec & { open: boolean })[];
  steps: Step[];
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  size: fc.integer({ min: 4, max: 10 }).map((k) => 1 << k),
  readers: fc.array(
    fc.tuple(readerSpecArb, fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) })).map(([spec, open]) => ({ ...spec, open })),
    { minLength: 1, maxLength: MAX_READERS },
  ),
  // size "max": lengths spread over the whole range, not fast-check's default of about ten.
  steps: fc.array(stepArb, { minLength: 1, maxLength: 50, size: "max" }),
});

/** How often the runs reached the states worth testing; checked so the property cannot go vacuous. */
const coverage = {
  writes: 0,
  shortWrites: 0, // the writer got part of its data in
  fullRing: 0, // the writer got nothing in
  readerWrites: 0,
  wrappedSlices: 0, // a slice stopped at the ring's physical end with more to come
  stalls: 0,
  errors: 0, // a reader failed with an errno other than EAGAIN
  gaps: 0,
  gapsToBoundary: 0, // a skip stopped at a boundary before the head
  gapsToHead: 0, // a skip found no boundary and went to the head
  replays: 0, // an open started before the head
  reusedSlots: 0,
  joinSeeks: 0, // a reader opened at the head inside a UTF-8 character or an escape sequence
  writablePeeks: 0,
};

// ---------------------------------------------------------------------------------------------
// One run

function runScenario({ size, readers, steps }: Scenario): void {
  const ring = core.bcastNew(size);
  try {
    const model = new RingModel(size);
    /** Per slot: what its reader does now; both sides follow it. */
    const behaviour: Behaviour[] = [];
    const respond = (index: number, len: number) => resolve(behaviour[index]!, len);
    const wasm = new Side("wasm", respond, (index) => core.bcastJoinSkipped(ring, index));
    const mirror = new Side("model", respond, (index) => model.readers[index]!.joinSkipped);
    core.onBackendWrite = (h, index, data) => {
      if (h !== ring) throw new Error(`reader write for ring ${h}, expected ${ring}`);
      return wasm.write(index, data);
    };
    core.onBackendGap = (h, index, bytes) => {
      if (h !== ring) throw new Error(`gap for ring ${h}, expected ${ring}`);
      wasm.gap(index, bytes);
    };
    const modelWrite = (index: number, data: Uint8Array) => mirror.write(index, data);
    const modelGap = (index: number, bytes: number) => {
      // Called before the model moves the cursor: see where the skip lands.
      if (model.readers[index]!.cursor + bytes < model.head) coverage.gapsToBoundary++;
      else coverage.gapsToHead++;
      mirror.gap(index, bytes);
    };

    const add = (spec: ReaderSpec) => {
      const reused = model.readers.some((r) => !r.attached);
      const index = core.bcastAddBackend(ring, POLICY_NAMES[spec.policy]!, spec.lagLimit, spec.replay);
      agree("addBackend results", index, model.addBackend(spec.policy, spec.lagLimit, spec.replay));
      if (reused) coverage.reusedSlots++;
      behaviour[index] = spec.behaviour;
      wasm.seek(index, model.readers[index]!.cursor);
      mirror.seek(index, model.readers[index]!.cursor);
      return index;
    };
    const setOpen = (index: number, open: boolean) => {
      core.bcastSetOpen(ring, index, open);
      model.setOpen(index, open);
      if (open) {
        // The one jump the readers cannot see: read where the model says the reader starts.
        const cursor = model.readers[index]!.cursor;
        if (cursor < model.head) coverage.replays++;
        if (model.readers[index]!.joining) coverage.joinSeeks++;
        wasm.seek(index, cursor);
        mirror.seek(index, cursor);
      }
    };

    for (const spec of readers) {
      const index = add(spec);
      if (spec.open) setOpen(index, true);
    }
    agree("initial books", coreState(ring, model.readers.length), modelState(model));

    steps.forEach(({ command, peek }, step) => {
      const at = `size ${size}, step ${step} (${show(command)})`;
      const slots = model.readers.length;
      wasm.calls = [];
      wasm.gaps = [];
      mirror.calls = [];
      mirror.gaps = [];
      switch (command.op) {
        case "write": {
          const taken = core.bcastWrite(ring, command.data);
          agree(`${at}: write results`, taken, model.write(command.data));
          wasm.accepted(command.data, taken);
          mirror.accepted(command.data, taken);
          coverage.writes++;
          if (taken === 0 && command.data.length > 0) coverage.fullRing++;
          else if (taken < command.data.length) coverage.shortWrites++;
          break;
        }
        case "drain": {
          const result = core.bcastDrain(ring);
          agree(`${at}: drain results`, result, model.drain(modelWrite, modelGap));
          break;
        }
        case "drainBackend": {
          const index = command.reader % slots;
          const result = core.bcastDrainBackend(ring, index);
          agree(`${at}: drainBackend results`, result, model.drainBackend(index, modelWrite, modelGap));
          break;
        }
        case "behave":
          behaviour[command.reader % slots] = command.behaviour;
          break;
        case "unblock": {
          const index = command.reader % slots;
          core.bcastUnblock(ring, index);
          model.unblock(index);
          break;
        }
        case "open":
          setOpen(command.reader % slots, command.open);
          break;
        case "add":
          if (model.readers.filter((r) => r.attached).length < MAX_READERS) add(command.spec);
          break;
        case "remove": {
          const index = command.reader % slots;
          core.bcastRemoveBackend(ring, index);
          model.removeBackend(index);
          break;
        }
      }
      if (command.op === "drain" || command.op === "drainBackend") {
        agree(`${at}: reader writes`, wasm.calls, mirror.calls);
        agree(`${at}: gaps`, wasm.gaps, mirror.gaps);
        coverage.gaps += mirror.gaps.length;
        for (const call of mirror.calls) {
          coverage.readerWrites++;
          if (call.result < call.data.length) coverage.stalls++;
          if (call.result < 0 && call.result !== -EAGAIN) coverage.errors++;
        }
        for (let i = 0; i < mirror.calls.length - 1; i++) {
          const call = mirror.calls[i]!;
          if (call.result === call.data.length && mirror.calls[i + 1]!.index === call.index) coverage.wrappedSlices++;
        }
      } else {
        agree(`${at}: reader writes`, wasm.calls, []);
        agree(`${at}: gaps`, wasm.gaps, []);
      }
      agree(`${at}: books`, coreState(ring, model.readers.length), modelState(model));
      if (peek) {
        agree(`${at}: writable`, core.bcastWritable(ring), model.writable());
        coverage.writablePeeks++;
      }
      // Both sides rebuilt each reader's position from the bytes it took and the gaps it was
      // told about; the core's cursor must be exactly there, so nothing went missing unreported.
      for (let i = 0; i < model.readers.length; i++) {
        wasm.followJoinSkip(i);
        mirror.followJoinSkip(i);
        agree(`${at}: reader ${i}'s rebuilt position and cursor`, [wasm.position[i], mirror.position[i]], [core.bcastCursor(ring, i), model.readers[i]!.cursor]);
        agree(`${at}: bytes taken by reader ${i}`, wasm.received[i]?.length ?? 0, mirror.received[i]?.length ?? 0);
      }
    });

    agree("the writer's streams", wasm.stream, mirror.stream);
    for (let i = 0; i < model.readers.length; i++) {
      const a = Buffer.from(wasm.received[i] ?? []);
      const b = Buffer.from(mirror.received[i] ?? []);
      if (Buffer.compare(a, b) !== 0) throw new Error(`slot ${i} took different bytes:\n  wasm:  ${show([...a])}\n  model: ${show([...b])}`);
      // Only a drop reader may ever miss bytes; a block or evict reader holds the writer instead.
      const policy = model.readers[i]!.policy;
      if (policy !== DROP && core.bcastDropped(ring, i) !== 0) throw new Error(`slot ${i} (policy ${policy}) dropped ${core.bcastDropped(ring, i)} bytes`);
    }
  } finally {
    core.bcastFree(ring);
  }
}

// ---------------------------------------------------------------------------------------------

describe("broadcast ring core against the reference model", () => {
  it("the WASM ring and the reference model agree on every random run, and readers get the stream minus the reported gaps", () => {
    fc.assert(fc.property(scenarioArb, runScenario), {
      numRuns: MAIN_RUNS,
      plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS, { failOnInterrupt: true })],
    });
    for (const [what, times] of Object.entries(coverage)) {
      expect(times, `${what} happened ${times} times`).toBeGreaterThan(100);
    }
  });

  it("the model follows the rules on hand-checked examples", () => {
    const text = (s: string) => new TextEncoder().encode(s);
    const taken: number[] = [];
    const gaps: [number, number][] = [];
    const all = (i: number, d: Uint8Array) => (taken.push(i, d.length), d.length);
    const gap = (i: number, n: number) => void gaps.push([i, n]);

    // A block reader holds the writer; it gets slices up to the ring's physical end.
    const model = new RingModel(16);
    const slow = model.addBackend(BLOCK, 0, 0);
    model.setOpen(slow, true);
    expect(model.write(text("0123456789"))).toBe(10);
    expect(model.drainBackend(slow, (_i, d) => d.length, gap)).toBe(0);
    expect(model.write(text("abcdefghijklmnopqrstu"))).toBe(16); // the whole ring, not more
    expect(model.writable()).toBe(0);
    expect(model.drainBackend(slow, (_i, d) => (taken.push(d.length), 2), gap)).toBe(1); // took 2 of 6
    expect([taken, model.readers[slow]!.cursor, model.readers[slow]!.stalls, model.readers[slow]!.blocked]).toEqual([[6], 12, 1, true]);
    expect(model.writable()).toBe(2);
    expect(model.drainBackend(slow, all, gap)).toBe(0); // still blocked
    model.unblock(slow);
    taken.length = 0;
    expect(model.drainBackend(slow, all, gap)).toBe(0);
    expect(taken).toEqual([slow, 4, slow, 10]); // to the physical end, then from its start

    // A drop reader behind by more than its lag limit skips to the byte after a newline.
    const ring = new RingModel(16);
    const fast = ring.addBackend(DROP, 8, 0);
    ring.setOpen(fast, true);
    expect(ring.write(text("aaaaaaa\nbbbbbbbbcc"))).toBe(16); // nothing holds the writer: one ring's worth
    expect(ring.write(text("cc"))).toBe(2); // head 18; limit 8 -> from 10; the line start 8 is before it
    gaps.length = 0;
    expect(ring.drainBackend(fast, () => -EAGAIN, gap)).toBe(0); // skipped to the head: caught up
    expect(gaps).toEqual([[fast, 18]]);
    ring.write(text("xx\x1byy")); // head 23
    ring.unblock(fast);
    gaps.length = 0;
    expect(ring.drainBackend(fast, () => -EIO, gap)).toBe(-EIO); // lag 5 <= 8: no skip
    expect(gaps).toEqual([]);
    ring.write(text("zzzzz\nw")); // head 30: lag 12 > 8, from 22; the ESC at 20 is before it
    ring.unblock(fast);
    expect(ring.drainBackend(fast, () => 0, gap)).toBe(1);
    expect(gaps).toEqual([[fast, 29 - 18]]); // after the newline at 28
    expect(ring.readers[fast]!.dropped).toBe(29);

    // Replay starts at a boundary inside the history; a new reader reuses the lowest free slot.
    const history = new RingModel(16);
    history.write(text("one\ntwo\n"));
    history.write(text("three\nfour\n")); // head 19, oldest 3
    const late = history.addBackend(EVICT, 0, 100);
    history.setOpen(late, true);
    expect(history.readers[late]!.cursor).toBe(4); // oldest 3 is "\n": the next byte starts a line
    expect(history.writable()).toBe(16 - 15);
    history.removeBackend(late);
    expect(history.writable()).toBe(16);
    expect(history.addBackend(BLOCK, 0, 0)).toBe(late);
    expect(history.readers[late]!.cursor).toBe(19);
  });
});
