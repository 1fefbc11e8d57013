// The keystroke client for bench/_latency.ts: connects to a UNIX socket, then types one byte
// at a time and waits for its echo, `warmup` times unmeasured and `count` times measured.
// Prints "connected", then one JSON line: the round-trip times in microseconds.
import { connect } from "node:net";

const [path, countText, warmupText] = process.argv.slice(2);
const count = Number(countText);
const warmup = Number(warmupText);
const socket = connect(path);
let waiting = null;
socket.on("data", (chunk) => {
  const at = process.hrtime.bigint();
  if (chunk.length !== 1 || !waiting) {
    process.stderr.write(`echo client: unexpected ${chunk.length} bytes\n`);
    process.exit(2);
  }
  const resolve = waiting;
  waiting = null;
  resolve(at);
});
socket.on("error", (error) => {
  process.stderr.write(`echo client: ${error.message}\n`);
  process.exit(1);
});
socket.on("connect", async () => {
  process.stdout.write("connected\n");
  await new Promise((resolve) => setTimeout(resolve, 50)); // let the server side settle
  const samples = [];
  const key = Buffer.from("a");
  for (let i = 0; i < warmup + count; i++) {
    const echoed = new Promise((resolve) => (waiting = resolve));
    const sent = process.hrtime.bigint();
    socket.write(key);
    const back = await echoed;
    if (i >= warmup) samples.push(Number(back - sent) / 1000);
  }
  process.stdout.write(JSON.stringify({ bytes: 0, md5: null, samples }) + "\n", () => process.exit(0));
});
