// The soak's device: prints the numbered lines of _stream.mjs at full speed to its terminal
// (the spawn chardev's pty) until SIGUSR1, then the end line `#END <lines>`, then waits for the
// hangup that ends the run. Writes block while the pty is full: that is the hub's back-pressure.
// Arguments: a file to write our pid to (the soak signals us through it).
import { writeFileSync, writeSync } from "node:fs";
import { END_PREFIX, generatorLine } from "./_stream.mjs";

writeFileSync(process.argv[2], String(process.pid));
const BATCH_LINES = 512;
let next = 0;
let stopping = false;
process.on("SIGUSR1", () => (stopping = true));

function writeAll(text) {
  const bytes = Buffer.from(text);
  let done = 0;
  while (done < bytes.length) {
    try {
      done += writeSync(1, bytes, done);
    } catch (error) {
      if (error.code !== "EAGAIN") throw error;
    }
  }
}

function batch() {
  if (stopping) {
    writeAll(`${END_PREFIX}${next}\n`);
    setInterval(() => {}, 1 << 30);
    return;
  }
  let text = "";
  for (let k = 0; k < BATCH_LINES; k++) text += generatorLine(next++);
  writeAll(text);
  // Back to the event loop between batches, so SIGUSR1 is seen.
  setImmediate(batch);
}
batch();
