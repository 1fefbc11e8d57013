// Liveness and failing backends, through the library: a writer that waits on the hub's watch
// (as a device bridge does, never polling) is woken by anything that frees space: a stalled
// backend evicted, detached, closed or failing. A backend whose write fails for good is taken
// out alone (outside qemuCompat); the others get every byte.

import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, type Frontend, type HubEvent } from "../host-ts/mod.ts";
import { QmpMonitor } from "../host-ts/qmp.ts";
import { FeHandler } from "./_fe_handler.ts";
import { SwitchChardev, switchSubclassDriver as driver } from "./_switch_chardev.ts";

const EIO = 5;
const ENOSPC = 28;
/** Only a bound on waiting for something that should happen; no test measures time. */
const GIVE_UP_MS = 5000;

/** A switch whose writes can fail for good, and that can come back after (as a file does). */
class FailingSwitch extends SwitchChardev {
  /** While set, every write fails with -failWith. */
  failWith = 0;
  /** Whether it implements the comeback: `resumeAfterLoss` calls, as (lost, errno). */
  notes: [number, string][] = [];
  protected override writeOut(data: Uint8Array): number {
    return this.failWith ? -this.failWith : super.writeOut(data);
  }
}

class ResumingSwitch extends FailingSwitch {
  override resumeAfterLoss(lost: number, errno: string): boolean {
    if (this.failWith) return false;
    this.notes.push([lost, errno]);
    return true;
  }
}


let reg: ChardevRegistry;
let warnings: string[];

async function makeRegistry(qemuCompat: boolean): Promise<void> {
  warnings = [];
  reg = await ChardevRegistry.create({ qemuCompat, onWarning: (line) => warnings.push(line) });
  reg.registerDriver(driver("switch", (id, context) => new SwitchChardev(id, context)));
  reg.registerDriver(driver("failing", (id, context) => new FailingSwitch(id, context)));
  reg.registerDriver(driver("resuming", (id, context) => new ResumingSwitch(id, context)));
}

beforeEach(async () => makeRegistry(false));
afterEach(async () => {
  await reg.close();
});

async function backend<T extends SwitchChardev>(spec: string): Promise<T> {
  const chardev = (await reg.add(spec)) as T;
  chardev.open();
  return chardev;
}

/** Lines of letters: every byte is a safe place to join. */
function streamBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = i % 64 === 63 ? 0x0a : 0x61 + ((i * 7) % 26);
  return out;
}

/**
 * Writes `stream` to the hub as a device would: as much as it takes; on EAGAIN it waits for
 * the watch and nothing else (no timer). `finished` settles once all is written.
 */
class WatchingWriter {
  sent = 0;
  /** Times it waited on a watch. */
  waits = 0;
  waiting = false;
  readonly finished: Promise<void>;
  #resolve!: () => void;
  #reject!: (error: Error) => void;

  constructor(
    readonly fe: Frontend,
    readonly stream: Uint8Array,
  ) {
    this.finished = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.pump();
  }

  pump = (): void => {
    this.waiting = false;
    while (this.sent < this.stream.length) {
      const taken = this.fe.write(this.stream.subarray(this.sent, this.sent + 4096));
      if (taken > 0) {
        this.sent += taken;
        continue;
      }
      if (taken < 0 && this.fe.lastError !== "EAGAIN") return this.#reject(new Error(`write failed with ${this.fe.lastError}`));
      if (this.fe.addWatch(this.pump) === 0) return this.#reject(new Error("refused, but no watch to wait on"));
      this.waits++;
      this.waiting = true;
      return;
    }
    this.#resolve();
  };

  /** Resolves once it waits on a watch, having written at least `bytes`. */
  async blockedAfter(bytes: number): Promise<void> {
    await until(() => this.waiting && this.sent >= bytes, "the writer to wait on its watch");
  }

  /** Settles with the writer, or fails (with what it got to) if it stays stuck. */
  async done(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`writer stuck at ${this.sent} of ${this.stream.length} bytes`)), GIVE_UP_MS);
    });
    try {
      await Promise.race([this.finished, stuck]);
    } finally {
      clearTimeout(timer);
    }
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + GIVE_UP_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Byte-for-byte equality, reported as where the first difference is (fast on large arrays). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  let firstDifference = -1;
  for (let i = 0; i < Math.min(actual.length, expected.length) && firstDifference < 0; i++) if (actual[i] !== expected[i]) firstDifference = i;
  expect({ length: actual.length, firstDifference }).toEqual({ length: expected.length, firstDifference: -1 });
}

function recordEvents(hubId: string): HubEvent[] {
  const events: HubEvent[] = [];
  reg.hub(hubId).onEvent((event) => events.push(event));
  return events;
}

const STREAM = streamBytes(256 * 1024);

describe("a writer waiting on the hub's watch is woken by whatever frees space", () => {
  for (const ring of [4096, 0]) {
    const kind = ring ? "a ring hub" : "a ring=0 hub";

    it(`in ${kind}, hub-detach of a stalled blocking backend wakes the writer and the healthy backend gets the whole stream`, async () => {
      const healthy = await backend<SwitchChardev>("switch,id=a");
      const stalled = await backend<SwitchChardev>("switch,id=b");
      await reg.add(`hub,id=hub0,chardevs.0=a,chardevs.1=b,ring=${ring}`);
      stalled.stalled = true;
      const writer = new WatchingWriter(reg.attach("hub0", new FeHandler()), STREAM);
      await writer.blockedAfter(0);
      reg.hubDetach("hub0", "b");
      await writer.done();
      expectSameBytes(healthy.receivedBytes, STREAM);
    });

    it(`in ${kind}, a stalled blocking backend that closes wakes the writer`, async () => {
      const healthy = await backend<SwitchChardev>("switch,id=a");
      const stalled = await backend<SwitchChardev>("switch,id=b");
      await reg.add(`hub,id=hub0,chardevs.0=a,chardevs.1=b,ring=${ring}`);
      stalled.stalled = true;
      const writer = new WatchingWriter(reg.attach("hub0", new FeHandler()), STREAM);
      await writer.blockedAfter(0);
      stalled.close();
      await writer.done();
      expectSameBytes(healthy.receivedBytes, STREAM);
    });

    it(`in ${kind}, a stalled backend detached and then removed (chardev-remove) leaves the writer running`, async () => {
      const healthy = await backend<SwitchChardev>("switch,id=a");
      const stalled = await backend<SwitchChardev>("switch,id=b");
      await reg.add(`hub,id=hub0,chardevs.0=a,chardevs.1=b,ring=${ring}`);
      stalled.stalled = true;
      const writer = new WatchingWriter(reg.attach("hub0", new FeHandler()), STREAM);
      await writer.blockedAfter(0);
      reg.hubDetach("hub0", "b");
      await reg.remove("b");
      await writer.done();
      expectSameBytes(healthy.receivedBytes, STREAM);
    });
  }

  it("an evicted backend wakes the writer: the healthy backend gets every byte, the events say evict", async () => {
    const healthy = await backend<SwitchChardev>("switch,id=a");
    const stalled = await backend<SwitchChardev>("switch,id=b");
    await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=b,ring=4096,policy.1=evict,stall-ms.1=20");
    const events = recordEvents("hub0");
    stalled.stalled = true;
    const writer = new WatchingWriter(reg.attach("hub0", new FeHandler()), STREAM);
    await writer.done();
    expectSameBytes(healthy.receivedBytes, STREAM);
    expect(writer.waits).toBeGreaterThan(0);
    expect(events).toContainEqual({ type: "evict", backend: "b", reason: "stalled for more than 20 ms" });
    expect(reg.hub("hub0").backends.map((chardev) => chardev.id)).toEqual(["a"]);
  });

  it("the streams API's writable keeps going after a stalled backend is detached", async () => {
    const { Hub } = await import("../host-ts/hub.ts");
    const hub = Hub.open(reg, (await reg.add("hub,id=hub1,ring=4096")).id);
    const healthy = await backend<SwitchChardev>("switch,id=c");
    const stalled = await backend<SwitchChardev>("switch,id=d");
    await hub.attach(healthy);
    await hub.attach(stalled);
    stalled.stalled = true;
    const writer = hub.writable.getWriter();
    const written = writer.write(STREAM);
    await until(() => healthy.bytes >= 4096, "the healthy backend to get the first ring");
    hub.registry.hubDetach("hub1", "d");
    await written;
    await until(() => healthy.bytes === STREAM.length, "the healthy backend to get the stream");
    expectSameBytes(healthy.receivedBytes, STREAM);
    writer.releaseLock();
  });
});

describe("a backend whose write fails for good is taken out alone (outside qemuCompat)", () => {
  for (const ring of [4096, 0]) {
    const kind = ring ? "a ring hub" : "a ring=0 hub";

    it(`in ${kind}, EIO from one backend: an error event, CLOSED for it, one warning, and the others get every byte`, async () => {
      const healthy = await backend<SwitchChardev>("switch,id=a");
      const failing = await backend<FailingSwitch>("failing,id=bad");
      await reg.add(`hub,id=hub0,chardevs.0=a,chardevs.1=bad,ring=${ring}`);
      const events = recordEvents("hub0");
      const fe = reg.attach("hub0", new FeHandler());
      await new WatchingWriter(fe, STREAM.subarray(0, 10_000)).done();
      await until(() => failing.bytes === 10_000, "the first part");
      failing.failWith = EIO;
      await new WatchingWriter(fe, STREAM.subarray(10_000)).done();
      await until(() => healthy.bytes === STREAM.length, "the healthy backend to get the stream");
      expectSameBytes(healthy.receivedBytes, STREAM);
      expect(events.filter((event) => event.backend === "bad" && event.type !== "attach")).toEqual([
        { type: "error", backend: "bad", errno: "EIO" },
        { type: "close", backend: "bad" },
      ]);
      expect(warnings).toEqual(["hub: chardev 'bad' failed with EIO: hub 'hub0' goes on without it"]);
      expect(reg.hub("hub0").stats().find((row) => row.id === "bad")!.open).toBe(false);
      // What it took before failing is the stream's start, nothing else.
      expectSameBytes(failing.receivedBytes, STREAM.subarray(0, 10_000));
    });

    it(`in ${kind}, a backend that can come back is asked with a backoff and notes exactly the bytes it missed`, async () => {
      const healthy = await backend<SwitchChardev>("switch,id=a");
      const failing = await backend<ResumingSwitch>("resuming,id=file");
      await reg.add(`hub,id=hub0,chardevs.0=a,chardevs.1=file,ring=${ring}`);
      const events = recordEvents("hub0");
      const fe = reg.attach("hub0", new FeHandler());
      const first = new WatchingWriter(fe, STREAM.subarray(0, 100_000));
      await first.done();
      await until(() => healthy.bytes === 100_000, "the first part");
      failing.failWith = ENOSPC;
      const second = new WatchingWriter(fe, STREAM.subarray(100_000, 150_000));
      await second.done();
      await until(() => events.some((event) => event.type === "error"), "the error event");
      failing.failWith = 0;
      await until(() => failing.notes.length === 1, "the backend to be asked back");
      const third = new WatchingWriter(fe, STREAM.subarray(150_000));
      await third.done();
      await until(() => healthy.bytes === STREAM.length && failing.bytes + failing.notes[0]![0] === STREAM.length, "the rest");
      expectSameBytes(healthy.receivedBytes, STREAM);
      const [lost, errno] = failing.notes[0]!;
      expect(errno).toBe("ENOSPC");
      expect(lost).toBe(50_000);
      expectSameBytes(failing.receivedBytes, new Uint8Array([...STREAM.subarray(0, 100_000), ...STREAM.subarray(150_000)]));
      expect(events.filter((event) => event.backend === "file" && event.type !== "attach").map((event) => event.type)).toEqual(["error", "close", "open"]);
    });
  }

  it("with qemuCompat, the failing write returns its errno to the frontend, as QEMU", async () => {
    await reg.close();
    await makeRegistry(true);
    await backend<SwitchChardev>("switch,id=a");
    const failing = await backend<FailingSwitch>("failing,id=bad");
    await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=bad");
    const fe = reg.attach("hub0", new FeHandler());
    failing.failWith = EIO;
    expect(fe.write(STREAM.subarray(0, 100))).toBe(-1);
    expect(fe.lastError).toBe("EIO");
    expect(warnings).toEqual([]);
  });

  it("a QMP client that asked for our events gets a HUB_BACKEND_ERROR event with the errno", async () => {
    await reg.add("ringbuf,id=mon0,size=65536");
    const monitor = QmpMonitor.attach(reg, "mon0");
    reg.ringbufRead("mon0", 65536); // greeting
    reg.backendWrite("mon0", new TextEncoder().encode('{"execute": "qmp_capabilities"}'));
    await until(() => reg.ringbufRead("mon0", 65536).includes('"return"'), "qmp_capabilities");
    // HUB_BACKEND_ERROR is ours: a client gets it once it asks.
    reg.backendWrite("mon0", new TextEncoder().encode('{"execute": "hub-events", "arguments": {"enable": true, "events": ["HUB_BACKEND_ERROR"]}}'));
    await until(() => reg.ringbufRead("mon0", 65536).includes('"return"'), "hub-events");
    await backend<SwitchChardev>("switch,id=a");
    const failing = await backend<FailingSwitch>("failing,id=bad");
    await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=bad,ring=4096");
    const fe = reg.attach("hub0", new FeHandler());
    failing.failWith = ENOSPC;
    fe.write(STREAM.subarray(0, 100));
    let output = "";
    await until(() => (output += reg.ringbufRead("mon0", 65536)).includes("HUB_BACKEND_ERROR"), "the QMP event");
    const event = JSON.parse(output.trim().split("\r\n").find((line) => line.includes("HUB_BACKEND_ERROR"))!);
    expect(event.event).toBe("HUB_BACKEND_ERROR");
    expect(event.data).toEqual({ hub: "hub0", chardev: "bad", errno: "ENOSPC" });
    expect(Object.keys(event.timestamp).sort()).toEqual(["microseconds", "seconds"]);
    monitor.detach();
  });
});
