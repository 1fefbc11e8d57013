// Property tests: the WASM core (core-as/, through host-ts/core.ts) against the pure-TypeScript
// reference models in _hub_model.ts, written from QEMU 10.0's rules. Every random run applies
// the same scripted backend behaviour to both sides and requires identical results after
// every step. On failure fast-check prints the seed and the shrunk counterexample.

import { beforeAll, describe, expect, it } from "./_harness.ts";
import fc from "fast-check";
import { Core } from "../host-ts/core.ts";
import { BREAK, CLOSED, EAGAIN, EIO, HubModel, MUX_IN, MUX_OUT, OPENED, RingbufModel } from "./_hub_model.ts";

const MAX_BACKENDS = 6;
/** HUB_PROPERTY_RUNS=100000 for a longer hunt; the default keeps the file at a few seconds. */
const MAIN_RUNS = Number(process.env.HUB_PROPERTY_RUNS ?? 10_000);
const STREAM_RUNS = 2_000;
const RINGBUF_RUNS = 2_000;

let core: Core;

beforeAll(async () => {
  core = await Core.load();
});

// ---------------------------------------------------------------------------------------------
// Scripted backends

/** What one backend does with one write: the script both sides follow. */
type Response =
  | { kind: "all" }
  | { kind: "partial"; k: number } // takes `k % (len + 1)` bytes, so 0..len
  | { kind: "eagain" }
  | { kind: "eio" };

function resolve(response: Response, len: number): number {
  switch (response.kind) {
    case "all":
      return len;
    case "partial":
      return response.k % (len + 1);
    case "eagain":
      return -EAGAIN;
    case "eio":
      return -EIO;
  }
}

const responseArb: fc.Arbitrary<Response> = fc.oneof(
  { weight: 5, arbitrary: fc.constant<Response>({ kind: "all" }) },
  { weight: 3, arbitrary: fc.nat(40).map((k): Response => ({ kind: "partial", k })) },
  { weight: 1, arbitrary: fc.constant<Response>({ kind: "eagain" }) },
  { weight: 1, arbitrary: fc.constant<Response>({ kind: "eio" }) },
);

/** One backend write as a side saw it: who was called with which bytes, and what it said. */
interface Call {
  index: number;
  data: number[];
  result: number;
}

/** One side's view of its backends: the calls of the current write and every byte taken. */
class Backends {
  calls: Call[] = [];
  readonly received: number[][] = [];

  constructor(private readonly respond: (index: number, len: number) => number) {}

  /** The backend write hook: records the call and appends the accepted prefix. */
  write(index: number, data: Uint8Array): number {
    const result = this.respond(index, data.length);
    const bytes = Array.from(data);
    this.calls.push({ index, data: bytes, result });
    if (result >= 0) {
      const into = (this.received[index] ??= []);
      for (let j = 0; j < result; j++) into.push(bytes[j]!);
    }
    return result;
  }
}

/** Everything the core's books say about `hub`, in a comparable form. */
function coreState(hub: number) {
  const count = core.hubBackendCount(hub);
  const backends: { written: bigint; open: boolean }[] = [];
  for (let i = 0; i < count; i++) {
    backends.push({ written: core.hubBackendWritten(hub, i), open: core.hubBackendOpen(hub, i) });
  }
  return {
    minWritten: core.hubMinWritten(hub),
    openedEvents: core.hubOpenedEvents(hub),
    blockedBackend: core.hubBlockedBackend(hub),
    backends,
  };
}

function modelState(model: HubModel) {
  return {
    minWritten: model.minWritten,
    openedEvents: model.openedEvents,
    blockedBackend: model.blockedBackend,
    backends: model.backends.map((b) => ({ written: b.written, open: b.open })),
  };
}

const show = (value: unknown) => JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));

/** Throws, with both sides shown, unless the core and the model agree. Cheaper than expect() per step. */
function agree(what: string, wasm: unknown, model: unknown): void {
  const a = show(wasm);
  const b = show(model);
  if (a !== b) throw new Error(`${what} differ:\n  wasm:  ${a}\n  model: ${b}`);
}

/** A fresh hub for one run, freed however the run ends. */
function withHub<T>(run: (hub: number) => T): T {
  const hub = core.hubNew(4);
  try {
    return run(hub);
  } finally {
    core.hubFree(hub);
  }
}

// ---------------------------------------------------------------------------------------------
// Commands for the main property

type Command =
  | { op: "add" }
  | { op: "event"; backend: number; event: number }
  | { op: "write"; data: Uint8Array; responses: Response[] };

const eventArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(OPENED) },
  { weight: 3, arbitrary: fc.constant(CLOSED) },
  { weight: 1, arbitrary: fc.constant(BREAK) },
  { weight: 1, arbitrary: fc.constantFrom(MUX_IN, MUX_OUT) },
);

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Command>({ op: "add" }) },
  {
    weight: 3,
    // `backend` is reduced modulo the backends that exist when the command runs.
    arbitrary: fc.record({ op: fc.constant("event" as const), backend: fc.nat(MAX_BACKENDS - 1), event: eventArb }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("write" as const),
      data: fc.uint8Array({ minLength: 0, maxLength: 40, size: "max" }),
      responses: fc.array(responseArb, { minLength: MAX_BACKENDS, maxLength: MAX_BACKENDS }),
    }),
  },
);

const scenarioArb = fc.record({
  initialBackends: fc.integer({ min: 1, max: MAX_BACKENDS }),
  // size "max": lengths spread over the whole range, not fast-check's default of about ten.
  commands: fc.array(commandArb, { minLength: 1, maxLength: 60, size: "max" }),
});

/** How often the main property reached the states worth testing; checked so it cannot go vacuous. */
const coverage = { writes: 0, eagain: 0, otherError: 0, partial: 0, skippedAhead: 0, backendCalls: 0, reopened: 0, grown: 0 };

function runScenario({ initialBackends, commands }: { initialBackends: number; commands: Command[] }): void {
  withHub((hub) => {
    const model = new HubModel();
    let script: Response[] = [];
    const respond = (index: number, len: number) => resolve(script[index]!, len);
    const wasmSide = new Backends(respond);
    const modelSide = new Backends(respond);
    core.onBackendWrite = (h, index, data) => {
      if (h !== hub) throw new Error(`backend write for hub ${h}, expected ${hub}`);
      return wasmSide.write(index, data);
    };

    const addBackend = () => agree("addBackend results", core.hubAddBackend(hub), model.addBackend());
    for (let i = 0; i < initialBackends; i++) addBackend();
    agree("initial state", coreState(hub), modelState(model));

    commands.forEach((command, step) => {
      const at = `step ${step} (${show(command)})`;
      const count = model.backends.length;
      if (command.op === "add") {
        if (count < MAX_BACKENDS) addBackend();
        if (count === 4) coverage.grown++;
      } else if (command.op === "event") {
        const index = command.backend % count;
        if (command.event === OPENED && model.backends[index]!.written !== model.minWritten) coverage.reopened++;
        agree(`${at}: forwarded`, core.hubEvent(hub, index, command.event), model.event(index, command.event));
      } else {
        script = command.responses;
        if (model.backends.some((b) => b.open && b.written !== model.minWritten)) coverage.skippedAhead++;
        wasmSide.calls = [];
        modelSide.calls = [];
        const wasmResult = core.hubWrite(hub, command.data);
        const modelResult = model.write(command.data, (index, data) => modelSide.write(index, data));
        agree(`${at}: write results`, wasmResult, modelResult);
        agree(`${at}: backend calls`, wasmSide.calls, modelSide.calls);
        coverage.writes++;
        coverage.backendCalls += wasmSide.calls.length;
        if (wasmResult === -EAGAIN) coverage.eagain++;
        else if (wasmResult < 0) coverage.otherError++;
        else if (wasmResult < command.data.length) coverage.partial++;
      }
      agree(`${at}: books`, coreState(hub), modelState(model));
      for (let i = 0; i < model.backends.length; i++) {
        agree(`${at}: bytes received by backend ${i}`, wasmSide.received[i]?.length ?? 0, modelSide.received[i]?.length ?? 0);
      }
    });

    // Lengths were compared at every step and each step's bytes through the call logs; the
    // whole streams once more, byte for byte.
    for (let i = 0; i < model.backends.length; i++) {
      const wasmBytes = wasmSide.received[i] ?? [];
      const modelBytes = modelSide.received[i] ?? [];
      if (Buffer.compare(Buffer.from(wasmBytes), Buffer.from(modelBytes)) !== 0) {
        throw new Error(`backend ${i} received different bytes:\n  wasm:  ${show(wasmBytes)}\n  model: ${show(modelBytes)}`);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The frontend's retry invariant

/** A backend's behaviour over successive calls; once the script runs out it takes everything. */
const progressResponseArb: fc.Arbitrary<Response> = fc.oneof(
  { weight: 2, arbitrary: fc.constant<Response>({ kind: "all" }) },
  { weight: 3, arbitrary: fc.nat(64).map((k): Response => ({ kind: "partial", k })) },
  { weight: 2, arbitrary: fc.constant<Response>({ kind: "eagain" }) },
);

const streamArb = fc.record({
  stream: fc.uint8Array({ minLength: 0, maxLength: 300, size: "max" }),
  chunkSizes: fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 16 }),
  scripts: fc.array(fc.array(progressResponseArb, { maxLength: 30 }), { minLength: 1, maxLength: MAX_BACKENDS }),
});

/** How often the stream property had to retry; checked so it cannot go vacuous. */
const streamCoverage = { retriedAfterEagain: 0, retriedAfterPartial: 0, skippedAhead: 0 };

function runStream({ stream, chunkSizes, scripts }: { stream: Uint8Array; chunkSizes: number[]; scripts: Response[][] }): void {
  withHub((hub) => {
    const model = new HubModel();
    // Each side consumes its own copy of every backend's script, one response per call.
    const scripted = () => {
      const next = scripts.map(() => 0);
      return (index: number, len: number) => resolve(scripts[index]![next[index]++] ?? { kind: "all" }, len);
    };
    const wasmSide = new Backends(scripted());
    const modelSide = new Backends(scripted());
    core.onBackendWrite = (_h, index, data) => wasmSide.write(index, data);

    for (let i = 0; i < scripts.length; i++) {
      agree("addBackend results", core.hubAddBackend(hub), model.addBackend());
      agree("forwarded OPENED", core.hubEvent(hub, i, OPENED), model.event(i, OPENED));
    }

    // The frontend: writes the stream in chunks, retrying each chunk's unaccepted remainder
    // (after a partial write, a zero, or EAGAIN) until the whole chunk is taken.
    let pos = 0;
    let attempts = 0;
    for (let c = 0; pos < stream.length; c++) {
      const end = Math.min(stream.length, pos + chunkSizes[c % chunkSizes.length]!);
      while (pos < end) {
        if (++attempts > 10_000) throw new Error("the frontend made no progress");
        const data = stream.subarray(pos, end);
        if (model.backends.some((b) => b.written !== model.minWritten)) streamCoverage.skippedAhead++;
        const wasmResult = core.hubWrite(hub, data);
        const modelResult = model.write(data, (index, bytes) => modelSide.write(index, bytes));
        agree(`write at ${pos}: results`, wasmResult, modelResult);
        agree(`write at ${pos}: books`, coreState(hub), modelState(model));
        if (wasmResult === -EAGAIN) {
          streamCoverage.retriedAfterEagain++;
          if (core.hubBlockedBackend(hub) < 0) throw new Error("EAGAIN without a blocked backend");
        } else if (wasmResult < 0) {
          throw new Error(`unexpected error ${wasmResult}`);
        } else {
          if (wasmResult > data.length) throw new Error(`write took ${wasmResult} of ${data.length} bytes`);
          pos += wasmResult;
          if (pos < end) streamCoverage.retriedAfterPartial++;
        }
        if (core.hubMinWritten(hub) !== BigInt(pos)) {
          throw new Error(`minWritten ${core.hubMinWritten(hub)} but the frontend is at ${pos}`);
        }
      }
    }

    for (const side of [wasmSide, modelSide]) {
      for (let i = 0; i < scripts.length; i++) {
        const got = Buffer.from(side.received[i] ?? []);
        if (Buffer.compare(got, Buffer.from(stream)) !== 0) {
          throw new Error(
            `${side === wasmSide ? "wasm" : "model"} backend ${i} received ${show(Array.from(got))}, ` +
              `the frontend sent ${show(Array.from(stream))}`,
          );
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Ringbuf

type RingOp = { op: "write"; data: Uint8Array } | { op: "read"; n: number };

const ringArb = fc.record({
  size: fc.integer({ min: 0, max: 8 }).map((k) => 1 << k),
  ops: fc.array(
    fc.oneof(
      fc.record({ op: fc.constant("write" as const), data: fc.uint8Array({ minLength: 0, maxLength: 300 }) }),
      fc.record({ op: fc.constant("read" as const), n: fc.nat(300) }),
    ) as fc.Arbitrary<RingOp>,
    { minLength: 1, maxLength: 40 },
  ),
});

function runRing({ size, ops }: { size: number; ops: RingOp[] }): void {
  const ring = core.ringbufNew(size);
  try {
    const model = new RingbufModel(size);
    ops.forEach((op, step) => {
      const at = `size ${size}, step ${step} (${op.op})`;
      if (op.op === "write") {
        agree(`${at}: write results`, core.ringbufWrite(ring, op.data), model.write(op.data));
      } else {
        agree(`${at}: bytes read`, Array.from(core.ringbufRead(ring, op.n)), Array.from(model.read(op.n)));
      }
      agree(`${at}: count`, core.ringbufCount(ring), model.count());
    });
    // Drain: what is left must match too.
    agree(`size ${size}: remaining bytes`, Array.from(core.ringbufRead(ring, size)), Array.from(model.read(size)));
  } finally {
    core.ringbufFree(ring);
  }
}

// ---------------------------------------------------------------------------------------------

describe("hub core against the reference model", () => {
  it("the WASM hub and the reference model agree on every random run", () => {
    fc.assert(fc.property(scenarioArb, runScenario), { numRuns: MAIN_RUNS });
    // The runs must have exercised every path of the write loop, not just the easy ones.
    for (const [what, times] of Object.entries(coverage)) {
      expect(times, `${what} happened ${times} times`).toBeGreaterThan(100);
    }
  });

  it("every backend that stays open receives the frontend's stream exactly once, in order, when the frontend retries", () => {
    fc.assert(fc.property(streamArb, runStream), { numRuns: STREAM_RUNS });
    for (const [what, times] of Object.entries(streamCoverage)) {
      expect(times, `${what} happened ${times} times`).toBeGreaterThan(100);
    }
  });

  it("the WASM ringbuf and the reference model agree on random writes and reads", () => {
    fc.assert(fc.property(ringArb, runRing), { numRuns: RINGBUF_RUNS });
  });

  it("the model's bookkeeping follows the rules on a hand-checked example", () => {
    // Guards the model itself: two open backends, the second takes 2 of 5 bytes, then EAGAIN.
    const model = new HubModel();
    model.addBackend();
    model.addBackend();
    expect(model.event(0, OPENED)).toBe(true);
    expect(model.event(1, OPENED)).toBe(false);
    expect(model.write(new Uint8Array(5), (i, d) => (i === 0 ? d.length : 2))).toBe(2);
    expect([model.minWritten, model.backends[0]!.written, model.backends[1]!.written]).toEqual([2n, 5n, 2n]);
    // Retry of the remaining 3: backend 0 is 3 ahead and skipped, backend 1 would block.
    expect(model.write(new Uint8Array(3), () => -EAGAIN)).toBe(-EAGAIN);
    expect(model.blockedBackend).toBe(1);
    expect(model.write(new Uint8Array(3), (i) => (i === 1 ? 3 : -EIO))).toBe(3);
    expect([model.minWritten, model.blockedBackend]).toEqual([5n, -1]);
    expect(model.event(0, CLOSED)).toBe(false);
    expect(model.event(1, CLOSED)).toBe(true);
    expect(model.event(1, CLOSED)).toBe(false);
    expect(model.openedEvents).toBe(0);
  });
});
