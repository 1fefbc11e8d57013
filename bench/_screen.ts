// The screen emulator's cost (issue 14): a ring hub (1 MiB) with one fast sink, written as fast
// as it takes a terminal-like stream (a `top`-like full-screen redraw: cursor moves, colours,
// UTF-8, clears), with no screen-replay backend and with one attached (the hub then keeps a
// headless xterm.js fed from the ring, a `drop` reader). Measured: the stream's MB/s until every
// byte is at the sink (what the device sees), the producer's time per write (the device's path:
// only a copy into the ring either way), how long after that the emulator has caught up (it
// skips ahead when a ring behind), and how long a late joiner waits for its repaint.

import { ChardevRegistry, ChrEvent, type Frontend, type HubChardev } from "../host-ts/mod.ts";
import { SinkChardev, sinkDriver } from "./_memory.ts";
import { median, type Row } from "./_report.ts";
import { now, runtimeName } from "./_runtime.ts";
import { SinkStore } from "./_stream.ts";

const RING = 1 << 20;
const CHUNK = 1024;

/** One redraw of a 80x24 `top`-like screen: ~2.3 KiB of cursor moves, SGR and text. */
function redraw(frame: number): string {
  let text = "\x1b[H\x1b[2J\x1b[7m top - frame " + frame + " \u2014 load 0.42 0.37 0.30 \x1b[0m";
  for (let row = 3; row <= 24; row++) {
    text += `\x1b[${row};1H\x1b[3${row % 8}m${String(1000 + row * 7 + frame).padStart(6)} user  20   0 ${(frame * row) % 9999}k S  ${(row * 3.7).toFixed(1)} \u00e9t\u00e9 process-${row}\x1b[0m\x1b[K`;
  }
  return text;
}

/** `bytes` of redraws cut in CHUNK-byte writes (frames cross writes, as a pty delivers them). */
function streamChunks(bytes: number): Uint8Array[] {
  const encoder = new TextEncoder();
  const whole = new Uint8Array(bytes);
  let at = 0;
  for (let frame = 0; at < bytes; frame++) {
    const piece = encoder.encode(redraw(frame));
    whole.set(piece.subarray(0, Math.min(piece.length, bytes - at)), at);
    at += piece.length;
  }
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < bytes; offset += CHUNK) chunks.push(whole.subarray(offset, offset + CHUNK));
  return chunks;
}

function writable(fe: Frontend): Promise<void> {
  return new Promise((resolve) => {
    if (fe.addWatch(resolve) === 0) resolve();
  });
}

interface Setup {
  registry: ChardevRegistry;
  hub: HubChardev;
  fe: Frontend;
  sink: SinkChardev;
  screen: boolean;
}

async function setup(screen: boolean): Promise<Setup> {
  const registry = await ChardevRegistry.create({ qemuCompat: false });
  registry.registerDriver(sinkDriver);
  const sink = (await registry.add("bench-sink,id=fast")) as SinkChardev;
  sink.store = new SinkStore();
  sink.emitEvent(ChrEvent.OPENED);
  const ids = ["fast"];
  if (screen) {
    const viewer = (await registry.add("bench-sink,id=viewer")) as SinkChardev;
    viewer.store = new SinkStore();
    ids.push("viewer");
  }
  const options = screen ? { viewer: { replay: "screen" } } : {};
  const hub = (await registry.add({ id: "hub", backend: { type: "hub", data: { chardevs: ids, ring: RING, options } } })) as HubChardev;
  const fe = registry.attach("hub", { canRead: () => 0, read() {}, event() {} });
  return { registry, hub, fe, sink, screen };
}

/** One run: every chunk written (EAGAIN: wait for the watch), then until the sink (and the emulator) has it all. */
async function run(s: Setup, chunks: Uint8Array[]): Promise<{ ms: number; producerNs: number; catchUpMs: number }> {
  const bytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const before = s.sink.store!.pos;
  let producerMs = 0;
  const started = now();
  for (let i = 0; i < chunks.length; ) {
    const segment = now();
    let full = false;
    while (i < chunks.length) {
      const taken = s.fe.write(chunks[i]);
      if (taken === chunks[i].length) i++;
      else if (taken > 0) chunks[i] = chunks[i].subarray(taken);
      else {
        full = true;
        break;
      }
    }
    producerMs += now() - segment;
    if (full) await writable(s.fe);
  }
  while (s.sink.store!.pos - before < bytes) await new Promise((resolve) => setTimeout(resolve, 0));
  const ms = now() - started;
  if (s.screen) await s.hub.screenParsed();
  return { ms, producerNs: (producerMs * 1e6) / chunks.length, catchUpMs: now() - started - ms };
}

/** A late joiner's wait: from its OPENED to the last byte of its repaint. */
async function joinMs(s: Setup): Promise<number> {
  const viewer = s.registry.find("viewer") as SinkChardev;
  viewer.emitEvent(ChrEvent.CLOSED);
  const before = viewer.store!.pos;
  const started = now();
  viewer.emitEvent(ChrEvent.OPENED);
  let last = before;
  let settledAt = now();
  // The repaint is one burst: done when nothing more came for a while.
  while (now() - settledAt < 20) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (viewer.store!.pos !== last) {
      last = viewer.store!.pos;
      settledAt = now();
    }
  }
  if (last === before) throw new Error("bench: the joiner got no repaint");
  return settledAt - started;
}

/** The screen case on this runtime: rows for no screen and one screen-replay backend. */
export async function runScreenCase(options: { quick: boolean; log: (line: string) => void }): Promise<Row[]> {
  const bytes = (options.quick ? 16 : 64) << 20;
  const rounds = options.quick ? 3 : 5;
  const rows: Row[] = [];
  options.log(`screen emulator cost: ${bytes >> 20} MiB of full-screen redraws in ${CHUNK}-byte writes, ring 1 MiB, ${rounds} rounds`);
  const results: Record<string, { mbps: number[]; ns: number[]; catchUp: number[]; join?: number[] }> = {};
  for (const screen of [false, true]) {
    const name = screen ? "hub + a replay=screen backend" : "hub, no screen";
    const s = await setup(screen);
    const tally = (results[name] = { mbps: [] as number[], ns: [] as number[], catchUp: [] as number[], join: screen ? ([] as number[]) : undefined });
    await run(s, streamChunks(1 << 20)); // warm up
    for (let round = 0; round < rounds; round++) {
      const { ms, producerNs, catchUpMs } = await run(s, streamChunks(bytes));
      tally.mbps.push(bytes / (1 << 20) / (ms / 1000));
      tally.ns.push(producerNs);
      tally.catchUp.push(catchUpMs);
      if (screen) tally.join!.push(await joinMs(s));
    }
    s.fe.detach();
    await s.registry.close();
    options.log(`  ${name}: ${median(tally.mbps).toFixed(1)} MB/s, ${median(tally.ns).toFixed(0)} ns per write${tally.join ? `, emulator caught up ${median(tally.catchUp).toFixed(0)} ms later, repaint in ${median(tally.join).toFixed(1)} ms` : ""}`);
  }
  const base = median(results["hub, no screen"].mbps);
  for (const [variant, tally] of Object.entries(results)) {
    rows.push({
      case: "screen",
      runtime: runtimeName,
      chunk: CHUNK,
      n: variant.startsWith("hub +") ? 2 : 1,
      variant,
      ours: true,
      mbps: median(tally.mbps),
      mbpsRounds: tally.mbps,
      hubRatio: base / median(tally.mbps),
      producerNsPerWrite: median(tally.ns),
      bytesPerRun: bytes,
      peakRssMiB: 0,
      extra: tally.join ? { repaintMs: median(tally.join), catchUpMs: median(tally.catchUp) } : {},
    });
  }
  return rows;
}
