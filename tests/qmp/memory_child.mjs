// A QMP monitor on a UNIX socket in a process of its own, so that its memory can be measured
// alone: `measure` on stdin collects garbage and prints the memory in use, and the largest
// resident size seen since the previous `measure`, as one JSON line. Ends when stdin closes.
// Run with the garbage collector exposed: node --expose-gc, deno run --v8-flags=--expose-gc, bun.
import process from "node:process";
import * as readline from "node:readline";

const [socketPath, modulePath = "../../dist/mod.js"] = process.argv.slice(2);
const { ChardevRegistry, startQmp } = await import(modulePath);

const reg = await ChardevRegistry.create({ qemuCompat: true });
await startQmp(reg, `unix:${socketPath},server=on,wait=off`);

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 5);

function collectGarbage() {
  if (globalThis.Bun) globalThis.Bun.gc(true);
  else for (let i = 0; i < 3; i++) globalThis.gc();
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  if (line !== "measure") return;
  // Let the monitor finish what it was given before looking.
  await new Promise((resolve) => setTimeout(resolve, 50));
  collectGarbage();
  const { rss, heapUsed, arrayBuffers } = process.memoryUsage();
  console.log(JSON.stringify({ rss, heapUsed, arrayBuffers, peakRss: Math.max(peakRss, rss) }));
  peakRss = 0;
});
lines.on("close", async () => {
  clearInterval(sampler);
  await reg.close();
  process.exit(0);
});
console.log("ready");
