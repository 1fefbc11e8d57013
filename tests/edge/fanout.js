// @ts-self-types="./fanout.d.ts"
// The edge scenario, shared by the workerd Worker (worker.js) and the permission-less Deno run
// (deno_noperm.ts): a byte stream goes through a hub's frontend and out to N webstream sinks,
// each read by its own consumer at its own pace; each sink reports its length and SHA-256.
// Plain JavaScript so workerd loads it as is; types in fanout.d.ts.

import { ChardevRegistry } from "../../dist/edge.js";

/** Bytes the hub's frontend has written may sit in each sink's queue before writes see EAGAIN. */
export const SINK_HIGH_WATER_MARK = 1024;

/** Lower-case hex SHA-256 of `bytes`. */
export async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * A test body as chunks of the given sizes, filled from a xorshift32 generator seeded with
 * `seed`, so a test and a script make the same bytes without sending them to each other.
 */
export function testChunks(seed, sizes) {
  let state = seed >>> 0 || 1;
  return sizes.map((size) => {
    const chunk = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      chunk[i] = state & 0xff;
    }
    return chunk;
  });
}

/** The body both the Deno script and the test build: `testChunks(EDGE_BODY.seed, EDGE_BODY.sizes)`. */
export const EDGE_BODY = { seed: 0x5eed, sizes: [1, 4096, 65536, 3, 100_000, 1024, 7, 250_000, 2048, 65535] };

/** A ReadableStream that yields `chunks` one by one. */
export function streamOf(chunks) {
  let next = 0;
  return new ReadableStream({
    pull(controller) {
      if (next < chunks.length) controller.enqueue(chunks[next++]);
      else controller.close();
    },
  });
}

/**
 * Reads `readable` to its end, letting `pace` rounds of other jobs run after each read (the
 * producer among them), so a higher pace is a slower consumer; its length, SHA-256 and reads.
 */
async function drain(readable, pace) {
  const reader = readable.getReader();
  const parts = [];
  let length = 0;
  let reads = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    length += value.length;
    reads++;
    for (let i = 0; i < pace; i++) await null;
  }
  const all = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return { length, sha256: await sha256(all), reads };
}

/**
 * Writes `body` through a hub to `sinks` webstream backends and waits for every sink's consumer
 * to reach the end. The frontend retries on EAGAIN once the hub's watch fires, as a QEMU
 * device would. `wasmModule`: the core compiled by the host (workerd), else compiled here.
 */
export async function fanOut(body, { sinks = 3, wasmModule } = {}) {
  const reg = await ChardevRegistry.create({ wasmModule });
  const ids = Array.from({ length: sinks }, (_, i) => `sink${i}`);
  for (const id of ids) await reg.add(`webstream,id=${id},high-water-mark=${SINK_HIGH_WATER_MARK}`);
  await reg.add(`hub,id=hub0,${ids.map((id, i) => `chardevs.${i}=${id}`).join(",")}`);
  const fe = reg.attach("hub0", { canRead: () => 0, read() {}, event() {} });
  // Sink i lets 8i rounds of jobs run after each read: the sinks fall behind by different amounts.
  const consumers = ids.map((id, i) => drain(reg.get(id).readable, 8 * i));

  let chunks = 0;
  let sent = 0;
  let eagain = 0;
  const reader = body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks++;
    let offset = 0;
    while (offset < value.length) {
      const taken = fe.write(value.subarray(offset));
      if (taken > 0) {
        offset += taken;
        continue;
      }
      if (taken === 0 || fe.lastError !== "EAGAIN") throw new Error(`hub write failed: ${taken} ${fe.lastError}`);
      eagain++;
      await new Promise((resolve) => {
        if (fe.addWatch(resolve) === 0) resolve();
      });
    }
    sent += value.length;
  }
  fe.detach();
  // Removing the sinks ends their streams once their consumers have read what is queued.
  await reg.close();
  return { chunks, sent, eagain, sinks: await Promise.all(consumers) };
}
