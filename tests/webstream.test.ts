// The `webstream` backend: output queued for its ReadableStream with a FIFO's backpressure
// (EAGAIN at the high-water mark, the watch fires when the consumer pulls), input from its
// WritableStream held back while the frontend is full, CLOSED when the consumer cancels.

import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import { WebStreamChardev } from "../host-ts/chardev/webstream.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";

let reg: ChardevRegistry;
beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: true });
});
afterEach(async () => {
  await reg.close();
});

async function addStream(spec: string): Promise<WebStreamChardev> {
  const chardev = await reg.add(spec);
  expect(chardev).toBeInstanceOf(WebStreamChardev);
  return chardev as WebStreamChardev;
}

const text = (data: Uint8Array | undefined) => new TextDecoder().decode(data);

/** Lets pending promise jobs (stream internals, watch callbacks) run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("webstream output", () => {
  it("a write takes what fits below the high-water mark, then EAGAIN, and reading fires the watch", async () => {
    const ws = await addStream("webstream,id=w0,high-water-mark=8");
    const fe = reg.attach("w0", new FeHandler());

    expect(fe.write(bytes("abcdef"))).toBe(6);
    expect(fe.write(bytes("ghijkl"))).toBe(2);
    expect(fe.write(bytes("ijkl"))).toBe(-1);
    expect(fe.lastError).toBe("EAGAIN");

    let woke = 0;
    expect(fe.addWatch(() => woke++)).not.toBe(0);
    await settle();
    expect(woke).toBe(0);

    const reader = ws.readable.getReader();
    expect(text((await reader.read()).value)).toBe("abcdef");
    await settle();
    expect(woke).toBe(1);

    expect(fe.write(bytes("ijkl"))).toBe(4);
    expect(text((await reader.read()).value)).toBe("gh");
    expect(text((await reader.read()).value)).toBe("ijkl");
    fe.detach();
  });

  it("a watch added after the consumer already made room fires without another read", async () => {
    const ws = await addStream("webstream,id=w0,high-water-mark=4");
    const fe = reg.attach("w0", new FeHandler());
    expect(fe.write(bytes("abcd"))).toBe(4);
    expect(fe.write(bytes("e"))).toBe(-1);
    const reader = ws.readable.getReader();
    await reader.read();
    await settle();
    let woke = false;
    fe.addWatch(() => (woke = true));
    await settle();
    expect(woke).toBe(true);
    fe.detach();
  });

  it("a hub over two webstreams waits for the slower consumer and loses no byte", async () => {
    const fast = await addStream("webstream,id=fast,high-water-mark=16");
    const slow = await addStream("webstream,id=slow,high-water-mark=4");
    await reg.add("hub,id=hub0,chardevs.0=fast,chardevs.1=slow");
    const fe = reg.attach("hub0", new FeHandler());

    const message = bytes("the quick brown fox jumps over the lazy dog");
    const collect = async (readable: ReadableStream<Uint8Array>) => {
      let all = "";
      for (const reader = readable.getReader(); ; ) {
        const { value, done } = await reader.read();
        if (done) return all;
        all += text(value);
      }
    };
    const got = [collect(fast.readable), collect(slow.readable)];
    let eagain = 0;
    for (let offset = 0; offset < message.length; ) {
      const taken = fe.write(message.subarray(offset));
      if (taken > 0) {
        offset += taken;
        continue;
      }
      expect(fe.lastError).toBe("EAGAIN");
      eagain++;
      await new Promise<void>((resolve) => {
        if (fe.addWatch(resolve) === 0) resolve();
      });
    }
    expect(eagain).toBeGreaterThan(0);
    fe.detach();
    await reg.remove("hub0");
    await reg.remove("fast");
    await reg.remove("slow");
    expect(await Promise.all(got)).toEqual([text(message), text(message)]);
  });

  it("cancelling the readable side sends CLOSED and the hub stops writing to it", async () => {
    const gone = await addStream("webstream,id=gone,high-water-mark=4");
    await reg.add("ringbuf,id=r0,size=64");
    await reg.add("hub,id=hub0,chardevs.0=gone,chardevs.1=r0");
    const h = new FeHandler();
    const fe = reg.attach("hub0", h);
    expect(h.events).toEqual([ChrEvent.OPENED]);

    await gone.readable.cancel();
    expect(gone.beOpen).toBe(false);
    // The ringbuf is still open, so the hub's frontend sees no CLOSED yet.
    expect(h.events).toEqual([ChrEvent.OPENED]);
    expect(fe.write(bytes("more than four bytes"))).toBe(20);
    expect(reg.ringbufRead("r0", 64)).toBe("more than four bytes");
    fe.detach();
  });

  it("the high-water mark must be at least 1", async () => {
    const error = await errorOf(() => reg.add("webstream,id=w0,high-water-mark=0"));
    expect(error.code).toBe("INVALID_VALUE");
    expect(error.message).toBe("webstream: 'high-water-mark' must be at least 1");
    expect(reg.find("w0")).toBeUndefined();
  });
});

describe("webstream input", () => {
  it("bytes written into the writable side reach the frontend, and a write waits while it is full", async () => {
    const ws = await addStream("webstream,id=w0");
    const h = new FeHandler();
    h.room = 4;
    const fe = reg.attach("w0", h);
    const writer = ws.writable.getWriter();

    await writer.write(bytes("abc"));
    expect(h.take()).toBe("abc");

    let written = false;
    const pending = writer.write(bytes("defghij")).then(() => (written = true));
    await settle();
    expect(h.take()).toBe("defg");
    expect(written).toBe(false);

    h.room = 128;
    fe.acceptInput();
    await pending;
    expect(written).toBe(true);
    expect(h.take()).toBe("hij");
    fe.detach();
  });

  it("removing the chardev ends the readable side after what is queued and errors the writable side", async () => {
    const ws = await addStream("webstream,id=w0");
    const fe = reg.attach("w0", new FeHandler());
    expect(fe.write(bytes("last words"))).toBe(10);
    fe.detach();
    await reg.remove("w0");

    const reader = ws.readable.getReader();
    expect(text((await reader.read()).value)).toBe("last words");
    expect((await reader.read()).done).toBe(true);
    const error = await errorOf(() => ws.writable.getWriter().write(bytes("x")));
    expect(error.message).toBe("Chardev 'w0' was removed");
  });
});
