// The nats console keeps its output in offset order in the stream across server restarts: a
// device writes all the time while a real nats-server is restarted (same port, same store)
// again and again; a from=start viewer then gets exactly the device's bytes with no gap, and
// the stream itself, read message by message, holds strictly contiguous offsets.

import { afterAll, afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, type Frontend } from "../host-ts/mod.ts";
import { jetstream } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";
import { nodeNats } from "../host-ts/runtime/node_nats.ts";
import { NatsConsoleChardev, NatsViewerChardev } from "../host-ts/chardev/nats.ts";
import { bytes, FeHandler } from "./_fe_handler.ts";
import { startServer, stopAll, stopServer, until, type NatsServer } from "./_nats.ts";

let registries: ChardevRegistry[];
let warnings: string[];

beforeEach(() => {
  registries = [];
  warnings = [];
});
afterEach(async () => {
  for (const reg of registries) await reg.close();
});
afterAll(async () => {
  await stopAll();
});

async function registry(): Promise<ChardevRegistry> {
  const reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: (line) => warnings.push(line) });
  registries.push(reg);
  return reg;
}

/**
 * A device that writes until stopped: a short numbered line a turn (many small messages), now
 * and then a long one (messages cut at the console's batch); on EAGAIN it waits on the watch.
 */
class Device {
  readonly #chunks: Uint8Array[] = [];
  blockedWrites = 0;
  #stopped = false;
  #line = 0;
  readonly done: Promise<void>;

  constructor(private readonly fe: Frontend) {
    this.done = this.#run();
  }

  /** Every byte the hub took from the device, in order. */
  written(): Uint8Array {
    const all = new Uint8Array(this.#chunks.reduce((sum, chunk) => sum + chunk.length, 0));
    let at = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return all;
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return this.done;
  }

  async #run(): Promise<void> {
    let pending: Uint8Array = new Uint8Array(0);
    while (!this.#stopped || pending.length > 0) {
      if (pending.length === 0) {
        const n = this.#line++;
        pending = bytes(`line ${String(n).padStart(7, "0")} ${n % 50 === 0 ? "=".repeat(3000) : "x".repeat(n % 13)}\r\n`);
      }
      const taken = this.fe.write(pending);
      if (taken > 0) {
        this.#chunks.push(pending.slice(0, taken));
        pending = pending.subarray(taken);
        await new Promise((resolve) => setTimeout(resolve, 0));
        continue;
      }
      if (this.fe.lastError !== "EAGAIN") throw new Error(`write failed: ${this.fe.lastError}`);
      this.blockedWrites++;
      await new Promise<void>((resolve) => {
        if (this.fe.addWatch(resolve) === 0) setTimeout(resolve, 0);
      });
    }
  }
}

/** Every message the stream holds for `subject`, in stream order: its offset header and length. */
async function storedMessages(server: NatsServer, stream: string, subject: string): Promise<{ offset: number; length: number }[]> {
  const client = await nodeNats.connect({ servers: server.url });
  try {
    const consumer = await jetstream(client).consumers.get(stream, { filter_subjects: subject });
    const stored: { offset: number; length: number }[] = [];
    const messages = await consumer.consume({ max_messages: 256 });
    for await (const message of messages) {
      stored.push({ offset: Number(message.headers?.get("Chardev-Hub-Offset")), length: message.data.length });
      if (message.info.pending === 0) break;
    }
    await messages.close();
    return stored;
  } finally {
    await client.close();
  }
}

describe("nats console across reconnects", () => {
  it("a device writing all through repeated server restarts leaves the stream in contiguous offset order, and a from=start viewer gets its bytes exactly", async () => {
    const server = await startServer();
    const name = `order${process.pid}`;
    const reg = await registry();
    const chardev = (await reg.add(`nats,id=n0,server=${server.url},console=${name}`)) as NatsConsoleChardev;
    await reg.add("hub,id=h0,chardevs.0=n0");
    const fed = new FeHandler();
    fed.room = 1 << 20;
    const device = new Device(reg.attach("h0", fed));

    const restarts = 5;
    for (let round = 0; round < restarts; round++) {
      // Let output flow on this connection first.
      const acked = chardev.ackedBytes;
      await until(() => chardev.ackedBytes > acked + 20_000);
      const blocked = device.blockedWrites;
      await stopServer(server);
      // Odd rounds: a long outage, the device held back at the full window. Even rounds: the
      // server comes straight back, often before the console has heard of the disconnect.
      if (round % 2 === 1) await until(() => device.blockedWrites > blocked);
      await startServer({ again: server });
    }
    const acked = chardev.ackedBytes;
    await until(() => chardev.ackedBytes > acked + 20_000);
    await device.stop();
    const written = device.written();
    await until(() => chardev.unackedBytes === 0 && chardev.nextOffset === written.length);
    expect(warnings.some((line) => line.startsWith("nats: n0: lost the connection to "))).toBe(true);

    // The stream holds each offset once, in order: every message starts where the one before it ended.
    const stored = await storedMessages(server, "CONSOLES", `console.${name}.out`);
    let next = 0;
    const disorder: string[] = [];
    for (const message of stored) {
      if (message.offset !== next) disorder.push(`${message.offset} where ${next} was due`);
      next = Math.max(next, message.offset + message.length);
    }
    expect(disorder).toEqual([]);
    expect(next).toBe(written.length);

    const watcher = await registry();
    const viewer = (await watcher.add(`nats,id=v0,role=viewer,server=${server.url},console=${name},from=start`)) as NatsViewerChardev;
    const screen = new FeHandler();
    screen.room = 1 << 26;
    watcher.attach("v0", screen);
    await until(() => viewer.nextOffset === written.length);
    expect(viewer.gaps).toEqual([]);
    expect(screen.take()).toBe(new TextDecoder().decode(written));
  }, 120_000);

  it("a viewer cuts a re-sent copy that overlaps what it has to its unseen tail, and skips a whole repeat, with no gap", async () => {
    const server = await startServer();
    const name = `overlap${process.pid}`;
    const reg = await registry();
    // The console makes the stream; the test then stores copies by hand, as a dedup window that missed them would leave them.
    await reg.add(`nats,id=n0,server=${server.url},console=${name}`);
    const client = await nodeNats.connect({ servers: server.url });
    try {
      const js = jetstream(client);
      const store = async (offset: number, text: string) => {
        const headerSet = headers();
        headerSet.set("Chardev-Hub-Offset", String(offset));
        await js.publish(`console.${name}.out`, bytes(text), { headers: headerSet });
      };
      await store(0, "abcd");
      await store(2, "cdef"); // overlaps: only "ef" is new
      await store(0, "abcd"); // a whole repeat
      await store(6, "gh");
    } finally {
      await client.close();
    }
    const viewer = (await reg.add(`nats,id=v0,role=viewer,server=${server.url},console=${name},from=start`)) as NatsViewerChardev;
    const fe = new FeHandler();
    fe.room = 1 << 20;
    reg.attach("v0", fe);
    await until(() => viewer.nextOffset === 8);
    expect(fe.take()).toBe("abcdefgh");
    expect(viewer.gaps).toEqual([]);
  }, 30_000);
});
