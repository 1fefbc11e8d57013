// A fan-out client for bench/_socket.ts: connects to a UNIX socket, reads until it has the
// expected byte count, and prints one JSON line with the count and the md5 of what it read
// (the parent compares it with the stream's). Plain JavaScript, so any `node` runs it.
import { createHash } from "node:crypto";
import { connect } from "node:net";

const [path, expectedText] = process.argv.slice(2);
const expected = Number(expectedText);
const hash = createHash("md5");
let bytes = 0;
let reported = false;
const report = (ok) => {
  if (reported) return;
  reported = true;
  process.stdout.write(JSON.stringify({ bytes, md5: ok ? hash.digest("hex") : null }) + "\n", () => process.exit(ok ? 0 : 1));
};
const socket = connect(path);
socket.on("connect", () => process.stdout.write("connected\n"));
socket.on("data", (chunk) => {
  hash.update(chunk);
  bytes += chunk.length;
  if (bytes >= expected) {
    socket.destroy();
    report(true);
  }
});
socket.on("error", () => {});
socket.on("close", () => report(bytes >= expected));
