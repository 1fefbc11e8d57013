// The nats chardev on a 3-node nats-server cluster with an R3 stream: the stream's leader is
// killed (SIGKILL) mid-stream and the viewer still gets the console's bytes whole, in order,
// offsets contiguous. Heavier than the rest (three servers, an election), so it runs on its own:
// `npm run test:nats` (vitest.nats.config.ts), Node only.

import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, afterEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChardevError } from "../host-ts/mod.ts";
import { NatsConsoleChardev, NatsViewerChardev } from "../host-ts/chardev/nats.ts";
import { bytes, FeHandler } from "./_fe_handler.ts";
import { startCluster, stopAll, stopServer, until } from "./_nats.ts";

const registries: ChardevRegistry[] = [];
afterEach(async () => {
  for (const reg of registries.splice(0)) await reg.close();
});
afterAll(async () => {
  await stopAll();
});

async function registry(): Promise<ChardevRegistry> {
  const reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: () => {} });
  registries.push(reg);
  return reg;
}

/** Adds `spec`, again while the cluster is still electing its JetStream leader (setup fails cleanly then). */
async function addOnceClusterIsUp(reg: ChardevRegistry, spec: string): Promise<unknown> {
  for (;;) {
    try {
      return await reg.add(spec);
    } catch (error) {
      if (!(error instanceof ChardevError) || error.code !== "OPEN_FAILED") throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

function consoleLines(count: number): Uint8Array {
  let text = "";
  for (let i = 0; i < count; i++) text += `line ${String(i).padStart(6, "0")} ${"abcdefghij".repeat(1 + (i % 5))}\r\n`;
  return bytes(text);
}

describe("nats chardev on a 3-node cluster", () => {
  it("a viewer gets the console's 20,000 lines whole and in order while the R3 stream's leader is killed mid-stream", async () => {
    const nodes = await startCluster(3);
    const servers = nodes.map((node) => node.url).join(",,");
    const source = await registry();
    const publisher = (await addOnceClusterIsUp(source, `nats,id=n0,server=${servers},console=vm1,replicas=3`)) as NatsConsoleChardev;
    await source.add("hub,id=h0,chardevs.0=n0");
    const device = new FeHandler();
    const fe = source.attach("h0", device);
    const watcher = await registry();
    const viewer = (await addOnceClusterIsUp(watcher, `nats,id=v0,role=viewer,server=${servers},console=vm1,from=start`)) as NatsViewerChardev;
    const screen = new FeHandler();
    screen.room = 1 << 24;
    watcher.attach("v0", screen);

    const output = consoleLines(20_000);
    let written = 0;
    const writing = (async () => {
      while (written < output.length) {
        const taken = fe.write(output.subarray(written, written + 4096));
        if (taken > 0) {
          written += taken;
          continue;
        }
        expect(fe.lastError).toBe("EAGAIN");
        await new Promise<void>((resolve) => {
          if (fe.addWatch(resolve) === 0) setTimeout(resolve, 1);
        });
      }
    })();
    await until(() => screen.readCount >= output.length / 3);
    const manager = await jetstreamManager(publisher.connection);
    const leader = (await manager.streams.info("CONSOLES")).cluster?.leader;
    const victim = nodes.find((node) => node.name === leader);
    expect(victim).toBeDefined();
    await stopServer(victim!, "SIGKILL");
    await writing;
    await until(() => screen.readCount >= output.length);
    expect(screen.readCount).toBe(output.length);
    expect(Buffer.compare(Buffer.from(screen.readBuf), Buffer.from(output))).toBe(0);
    expect(viewer.gaps).toEqual([]);
    await until(() => publisher.unackedBytes === 0);
    expect(publisher.ackedBytes).toBe(output.length);
  }, 120_000);
});
