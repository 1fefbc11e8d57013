// The idiomatic Hub: Web streams in and out, backend handles with counters, events by `for await`.

import { describe, expect, it } from "./_harness.ts";
import { Hub } from "../host-ts/mod.ts";
import { SwitchChardev, switchDriver } from "./_switch_chardev.ts";

async function hubWithSwitches(ring: number, ...ids: string[]): Promise<{ hub: Hub; backends: SwitchChardev[] }> {
  const hub = await Hub.create({ ring });
  hub.registry.registerDriver(switchDriver);
  const backends: SwitchChardev[] = [];
  for (const id of ids) {
    const chardev = (await hub.registry.add(`switch,id=${id}`)) as SwitchChardev;
    chardev.open();
    backends.push(chardev);
  }
  return { hub, backends };
}

function chunksOf(total: number, size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const chunk = new Uint8Array(Math.min(size, total - sent)).map((_, i) => (sent + i) % 251);
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

describe("Hub (streams API)", () => {
  it("pipeTo the writable waits for a blocking backend instead of losing bytes", async () => {
    const { hub, backends } = await hubWithSwitches(4096, "steady", "bursty");
    const [steady, bursty] = backends;
    await hub.attach(steady);
    const burstyHandle = await hub.attach(bursty);
    bursty.stalled = true;
    // Unstall now and then, as a slow reader would.
    const timer = setInterval(() => bursty.resume(), 1);
    await chunksOf(200_000, 1000).pipeTo(hub.writable);
    clearInterval(timer);
    bursty.resume();
    hub.flush();
    const expected = new Uint8Array(200_000).map((_, i) => i % 251);
    expect(steady.receivedBytes).toEqual(expected);
    expect(bursty.receivedBytes).toEqual(expected);
    expect(burstyHandle.stats()).toMatchObject({ id: "bursty", bytesOut: 200_000, bytesDropped: 0 });
    expect(burstyHandle.stats().stalls).toBeGreaterThan(0);
    await hub.close();
  });

  it("a drop backend's gaps arrive through for await, and the others get everything", async () => {
    const { hub, backends } = await hubWithSwitches(1024, "fast", "stuck");
    const [fast, stuck] = backends;
    await hub.attach(fast);
    const handle = await hub.attach(stuck, { policy: "drop" });
    stuck.stalled = true;
    const abort = new AbortController();
    const gaps: number[] = [];
    const collecting = (async () => {
      for await (const event of handle.events(abort.signal)) if (event.type === "gap") gaps.push(event.bytes);
    })();
    const writer = hub.writable.getWriter();
    for (let i = 0; i < 50; i++) await writer.write(new TextEncoder().encode(`line ${i}\n`.padStart(100, ".")));
    stuck.resume();
    hub.flush();
    await new Promise((resolve) => setTimeout(resolve, 0));
    abort.abort();
    await collecting;
    expect(fast.bytes).toBe(5000);
    expect(gaps.reduce((a, b) => a + b, 0)).toBe(handle.stats().bytesDropped);
    expect(stuck.bytes + handle.stats().bytesDropped).toBe(5000);
    expect(stuck.received.startsWith("...")).toBe(true); // resumed at a line start
    await hub.close();
  });

  it("the readable merges input from every backend", async () => {
    const { hub, backends } = await hubWithSwitches(0, "a", "b");
    for (const backend of backends) await hub.attach(backend);
    backends[0].type("from-a;");
    backends[1].type("from-b;");
    const reader = hub.readable.getReader();
    let text = "";
    while (text.length < 14) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toBe("from-a;from-b;");
    reader.releaseLock();
    await hub.close();
  });
});
