// Beyond QEMU: the broadcast ring, its per-backend policies, open policies, input control,
// hot-plug, stacking and scale (qemuCompat off).

import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent, HubChardev, type HubEvent } from "../host-ts/mod.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { SwitchChardev, switchDriver, openSwitches } from "./_switch_chardev.ts";

let reg: ChardevRegistry;
beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: false });
  reg.registerDriver(switchDriver);
});
afterEach(async () => {
  await reg.close();
});

const switches = (...ids: string[]) => openSwitches(reg, ...ids);

/** Lets queued microtasks (the ring's coalesced drain) run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A deterministic byte stream: lines of text so safe boundaries exist. */
function streamBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out[i] = i % 64 === 63 ? 0x0a : 0x61 + ((state >>> 16) % 26);
  }
  return out;
}

describe("broadcast ring", () => {
  it("keys only a ring gives meaning are refused on a hub without one, and nothing is left behind", async () => {
    await switches("a", "b");
    for (const [key, value, text] of [
      ["policy", "drop", "hub: policy 'drop' of chardev 'b' needs a ring (ring=BYTES)"],
      ["lag-limit", "1024", "hub: lag-limit of chardev 'b' needs a ring (ring=BYTES)"],
      ["stall-ms", "100", "hub: stall-ms of chardev 'b' needs a ring (ring=BYTES)"],
      ["replay", "4096", "hub: replay of chardev 'b' needs a ring (ring=BYTES)"],
    ]) {
      const error = await errorOf(() => reg.add(`hub,id=hub0,chardevs.0=a,chardevs.1=b,${key}.1=${value}`));
      expect(error.message).toBe(text);
      expect(reg.find("hub0")).toBeUndefined();
      expect(reg.get("a").isBusy()).toBe(false);
    }
    // The same hub with a ring takes them.
    await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=b,ring=8192,policy.1=evict,stall-ms.1=100,replay.1=4096");
  });

  it("many small writes reach each backend as few large writes, in order", async () => {
    const [a, b] = await switches("a", "b");
    await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=b,ring=65536");
    const fe = reg.attach("hub0", new FeHandler());
    for (let i = 0; i < 1000; i++) expect(fe.write(bytes(`${i % 10}`))).toBe(1);
    await settle();
    const expected = Array.from({ length: 1000 }, (_, i) => `${i % 10}`).join("");
    expect(a.received).toBe(expected);
    expect(b.received).toBe(expected);
    expect(a.writes).toBe(1);
  });

  it("a stalled block backend fills the ring, then the writer gets EAGAIN and its watch", async () => {
    const [fast, slow] = await switches("fast", "slow");
    await reg.add("hub,id=hub0,chardevs.0=fast,chardevs.1=slow,ring=1024");
    const fe = reg.attach("hub0", new FeHandler());
    slow.stalled = true;
    let accepted = 0;
    while (true) {
      const result = fe.write(streamBytes(100));
      if (result === -1) break;
      accepted += result;
      await settle();
    }
    expect(fe.lastError).toBe("EAGAIN");
    expect(accepted).toBe(1024);
    let woke = false;
    expect(fe.addWatch(() => (woke = true))).not.toBe(0);
    slow.resume();
    await settle();
    expect(woke).toBe(true);
    expect(slow.bytes).toBe(1024);
    expect(fast.bytes).toBe(1024);
  });

  it("under drop, a stalled backend never holds the others back and gets exact gaps at safe boundaries", async () => {
    const [fast, slow] = await switches("fast", "slow");
    const hub = (await reg.add("hub,id=hub0,chardevs.0=fast,chardevs.1=slow,ring=4096,policy.1=drop")) as HubChardev;
    const gaps: HubEvent[] = [];
    hub.onEvent((event) => event.type === "gap" && gaps.push(event));
    const fe = reg.attach("hub0", new FeHandler());
    const stream = streamBytes(100_000);
    let written = 0;
    let round = 0;
    while (written < stream.length) {
      // The slow one stalls for long stretches and wakes now and then.
      slow.stalled = round % 7 !== 0;
      if (!slow.stalled) slow.resume();
      const result = fe.write(stream.subarray(written, Math.min(written + 1500, stream.length)));
      expect(result).toBeGreaterThan(0); // drop never blocks the writer
      written += result;
      round++;
      await settle();
    }
    slow.resume();
    await settle();
    // The fast backend got every byte in order.
    expect(fast.receivedBytes).toEqual(stream);
    // The slow one got the stream minus exactly the reported gaps, each resuming at a line start.
    const gapTotal = gaps.reduce((sum, gap) => sum + (gap as { bytes: number }).bytes, 0);
    expect(gaps.length).toBeGreaterThan(0);
    expect(slow.bytes + gapTotal).toBe(stream.length);
    const stats = hub.stats().find((row) => row.id === "slow")!;
    expect(stats.bytesDropped).toBe(gapTotal);
    expect(stats.bytesOut).toBe(slow.bytes);
    // Reassemble: walk the stream, skipping each gap; every delivered byte must match.
    const received = slow.receivedBytes;
    let streamAt = 0;
    let receivedAt = 0;
    let chunkIndex = 0;
    const events = [...slow.chunks.map((chunk) => ({ kind: "data" as const, length: chunk.length }))];
    // Gaps happen between chunks; rebuild by matching each chunk at the stream position after preceding gaps.
    const gapQueue = gaps.map((gap) => (gap as { bytes: number }).bytes);
    for (const event of events) {
      while (gapQueue.length > 0 && stream.subarray(streamAt, streamAt + event.length).some((byte, i) => byte !== received[receivedAt + i])) {
        const skip = gapQueue.shift()!;
        streamAt += skip;
        expect(stream[streamAt - 1]).toBe(0x0a); // resumed right after a newline
      }
      expect(received.subarray(receivedAt, receivedAt + event.length)).toEqual(stream.subarray(streamAt, streamAt + event.length));
      streamAt += event.length;
      receivedAt += event.length;
      chunkIndex++;
    }
    expect(chunkIndex).toBe(slow.chunks.length);
    expect(streamAt + gapQueue.reduce((sum, gap) => sum + gap, 0)).toBe(stream.length);
  });

  it("under evict, a backend stalled longer than stall-ms is detached with a reason", async () => {
    const [, stuck] = await switches("ok", "stuck");
    const hub = (await reg.add("hub,id=hub0,chardevs.0=ok,chardevs.1=stuck,ring=1024,policy.1=evict,stall-ms.1=30")) as HubChardev;
    const fe = reg.attach("hub0", new FeHandler());
    stuck.stalled = true;
    const evicted = new Promise<HubEvent>((resolve) => hub.onEvent((event) => event.type === "evict" && resolve(event)));
    fe.write(bytes("hello\n"));
    expect(await evicted).toEqual({ type: "evict", backend: "stuck", reason: "stalled for more than 30 ms" });
    expect(hub.backends.map((chardev) => chardev.id)).toEqual(["ok"]);
    expect(hub.evictions).toBe(1);
    // Evicted means free: it can be removed or used elsewhere.
    await reg.remove("stuck");
  });

  it("a drop backend's memory stays bounded while 256 MiB flow past it", async () => {
    const [fast, slow] = await switches("fast", "slow");
    fast.countOnly = true;
    slow.countOnly = true;
    slow.stalled = true;
    const ring = 1 << 20;
    await reg.add(`hub,id=hub0,chardevs.0=fast,chardevs.1=slow,ring=${ring},policy.1=drop`);
    const fe = reg.attach("hub0", new FeHandler());
    const chunk = streamBytes(64 * 1024);
    const total = 256 * 1024 * 1024;
    const before = process.memoryUsage().rss;
    let peak = before;
    for (let sent = 0; sent < total; ) {
      const result = fe.write(chunk);
      expect(result).toBe(chunk.length);
      sent += result;
      // Let the fast (blocking) backend drain before the 1 MiB ring fills.
      if ((sent / chunk.length) % 8 === 0) {
        await settle();
        peak = Math.max(peak, process.memoryUsage().rss);
      }
    }
    await settle();
    expect(fast.bytes).toBe(total);
    expect(slow.bytes).toBe(0);
    // Ring + a small constant (the chunk, staging, allocator slack), not the 256 MiB that flowed.
    expect(peak - before).toBeLessThan(ring + 16 * 1024 * 1024);
  });

  it("1,024 backends on one hub all receive every byte", async () => {
    const ids = Array.from({ length: 1024 }, (_, i) => `b${i}`);
    const all = await switches(...ids);
    const hub = (await reg.add("hub,id=hub0,ring=65536")) as HubChardev;
    for (const chardev of all) reg.hubAttach("hub0", chardev.id);
    const fe = reg.attach("hub0", new FeHandler());
    for (let i = 0; i < 100; i++) fe.write(bytes("0123456789"));
    await settle();
    expect(all.every((chardev) => chardev.bytes === 1000)).toBe(true);
    expect(hub.stats()).toHaveLength(1024);
  });

  it("a backend that opens later gets the replay it asked for, from a line start", async () => {
    const [a] = await switches("a");
    const late = (await reg.add("switch,id=late")) as SwitchChardev;
    await reg.add({ id: "hub0", backend: { type: "hub", data: { chardevs: ["a", "late"], ring: 1024, options: { late: { replay: 10 } } } } });
    const fe = reg.attach("hub0", new FeHandler());
    fe.write(bytes("first line\nsecond\n"));
    await settle();
    late.open();
    await settle();
    // 10 bytes back lands inside "first line"; it starts at the next line instead.
    expect(late.received).toBe("second\n");
    expect(a.received).toBe("first line\nsecond\n");
  });
});

describe("open policies", () => {
  for (const [policy, expected] of [
    ["any", [ChrEvent.OPENED, ChrEvent.CLOSED]],
    ["all", [ChrEvent.OPENED, ChrEvent.CLOSED]],
    ["always", [ChrEvent.OPENED]],
  ] as const) {
    it(`open=${policy} decides when the frontend sees OPENED and CLOSED`, async () => {
      const a = (await reg.add("switch,id=a")) as SwitchChardev;
      const b = (await reg.add("switch,id=b")) as SwitchChardev;
      await reg.add(`hub,id=hub0,chardevs.0=a,chardevs.1=b,ring=1024,open=${policy}`);
      const h = new FeHandler();
      reg.attach("hub0", h);
      const log: string[] = [];
      const mark = (what: string) => log.push(`${what}:${h.events.join(",")}`);
      a.open();
      mark("a");
      b.open();
      mark("b");
      a.close();
      mark("a-");
      b.close();
      mark("b-");
      const seen = h.events;
      expect(seen).toEqual(expected);
      if (policy === "any") expect(log).toEqual(["a:1", "b:1", "a-:1", "b-:1,4"]);
      if (policy === "all") expect(log).toEqual(["a:", "b:1", "a-:1,4", "b-:1,4"]);
      if (policy === "always") expect(log).toEqual(["a:1", "b:1", "a-:1", "b-:1"]);
    });
  }

  it("open=primary follows only the primary backend", async () => {
    const a = (await reg.add("switch,id=a")) as SwitchChardev;
    const b = (await reg.add("switch,id=b")) as SwitchChardev;
    await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=b,primary=b");
    const h = new FeHandler();
    reg.attach("hub0", h);
    a.open();
    expect(h.events).toEqual([]);
    b.open();
    expect(h.events).toEqual([ChrEvent.OPENED]);
    b.close();
    expect(h.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
  });

  it("a primary that is not one of the chardevs is refused", async () => {
    await switches("a");
    expect((await errorOf(() => reg.add("hub,id=hub0,chardevs.0=a,primary=zz"))).message).toBe("hub: primary 'zz' is not one of the hub's chardevs");
    expect(reg.find("hub0")).toBeUndefined();
  });
});

describe("input control", () => {
  it("a read-only viewer's input is discarded and counted", async () => {
    const [typist, viewer] = await switches("typist", "viewer");
    const hub = (await reg.add("hub,id=hub0,chardevs.0=typist,chardevs.1=viewer,mode.1=ro")) as HubChardev;
    const h = new FeHandler();
    reg.attach("hub0", h);
    viewer.type("rm -rf /\r");
    typist.type("ls\r");
    expect(h.take()).toBe("ls\r");
    const stats = hub.stats();
    expect(stats[1]).toMatchObject({ id: "viewer", mode: "ro", bytesIn: 9, inputDiscarded: 9 });
    expect(stats[0]).toMatchObject({ id: "typist", bytesIn: 3, inputDiscarded: 0 });
  });

  it("a read-only viewer's BREAK is dropped and counted; a typist's reaches the frontend", async () => {
    const [typist, viewer] = await switches("typist", "viewer");
    const hub = (await reg.add("hub,id=hub0,chardevs.0=typist,chardevs.1=viewer,mode.1=ro")) as HubChardev;
    const h = new FeHandler();
    reg.attach("hub0", h);
    const before = h.events.length;
    viewer.sendBreak();
    expect(h.events.slice(before)).toEqual([]);
    typist.sendBreak();
    expect(h.events.slice(before)).toEqual([ChrEvent.BREAK]);
    expect(hub.stats().map((row) => [row.id, row.eventsDiscarded])).toEqual([["typist", 0], ["viewer", 1]]);
  });

  it("input=exclusive lets the first typist hold the floor until it goes idle", async () => {
    const [a, b] = await switches("a", "b");
    await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=b,input=exclusive,input-idle-ms=20");
    const h = new FeHandler();
    reg.attach("hub0", h);
    a.type("a1");
    b.type("b1");
    a.type("a2");
    expect(h.take()).toBe("a1a2");
    await new Promise((resolve) => setTimeout(resolve, 40));
    b.type("b2");
    a.type("a3");
    expect(h.take()).toBe("b2");
  });

  it("input from different backends is never interleaved inside a chunk", async () => {
    const [a, b] = await switches("a", "b");
    await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=b");
    const h = new FeHandler();
    h.room = 3;
    const fe = reg.attach("hub0", h);
    a.type("AAAAAAAA");
    b.type("BBBB");
    expect(h.take()).toBe("AAA");
    fe.acceptInput();
    expect(h.take()).toBe("AAA");
    fe.acceptInput();
    expect(h.take()).toBe("AAB"); // A's chunk ends before B's starts
    fe.acceptInput();
    expect(h.take()).toBe("BBB");
  });
});

describe("hot-plug and stacking", () => {
  it("backends can be attached to and detached from a live hub", async () => {
    const [a, b] = await switches("a", "b");
    const hub = (await reg.add("hub,id=hub0,chardevs.0=a,ring=1024")) as HubChardev;
    const fe = reg.attach("hub0", new FeHandler());
    fe.write(bytes("one,"));
    reg.hubAttach("hub0", "b");
    fe.write(bytes("two,"));
    reg.hubDetach("hub0", "a");
    fe.write(bytes("three"));
    await settle();
    expect(a.received).toBe("one,two,");
    expect(b.received).toBe("two,three");
    expect(hub.backends.map((chardev) => chardev.id)).toEqual(["b"]);
    expect((await errorOf(() => reg.hubDetach("hub0", "a"))).message).toBe("hub: chardev 'a' is not a backend of hub 'hub0'");
  });

  it("a hub under a hub works, and a cycle is refused", async () => {
    const [leaf] = await switches("leaf");
    await reg.add("hub,id=inner,chardevs.0=leaf");
    await reg.add("hub,id=outer,chardevs.0=inner");
    const fe = reg.attach("outer", new FeHandler());
    expect(fe.write(bytes("nested"))).toBe(6);
    expect(leaf.received).toBe("nested");
    // An empty hub (qemuCompat off) takes backends later.
    await reg.add("hub,id=third");
    await switches("leaf2");
    reg.hubAttach("third", "leaf2");
    const cycle = await errorOf(() => reg.hubAttach("inner", "outer"));
    expect(cycle.message).toBe("hub: chardev 'outer' can't be attached to hub 'inner': it would make a cycle");
    expect(cycle.code).toBe("HUB_CYCLE");
    expect((await errorOf(() => reg.hubAttach("inner", "inner"))).code).toBe("HUB_CYCLE");
  });

  it("a mux under a hub works with qemuCompat off (Alex Bennée's command line)", async () => {
    await reg.add("ringbuf,id=char0,mux=on,size=1024");
    await reg.add("ringbuf,id=clog,size=1024");
    await reg.add("hub,id=hub0,chardevs.0=char0,chardevs.1=clog");
    // The monitor shares the mux with the hub.
    const monitor = new FeHandler();
    reg.attach("char0", monitor);
    const serial = new FeHandler();
    const fe = reg.attach("hub0", serial);
    expect(fe.write(bytes("boot log\n"))).toBe(9);
    expect(reg.ringbufRead("char0-base", 1024)).toBe("boot log\n");
    expect(reg.ringbufRead("clog", 1024)).toBe("boot log\n");
  });

  it("qemuCompat still refuses stacking and more than 4 backends", async () => {
    const compat = await ChardevRegistry.create({ qemuCompat: true });
    await compat.add("null,id=n0");
    await compat.add("hub,id=inner,chardevs.0=n0");
    const stacked = await errorOf(() => compat.add("hub,id=outer,chardevs.0=inner"));
    expect(stacked.code).toBe("HUB_STACKING");
    await compat.close();
  });
});
