// One soak client: connects to a UNIX socket, checks every byte with StreamChecker as it
// arrives, and reports its state as one JSON line on stdout every 100 ms and when the
// connection ends. Commands on stdin, one per line: `stall` (stop reading, so the kernel's
// buffers fill and the hub sees EAGAIN), `resume`, `close` (report and exit).
// Arguments: socket path, policy (block, drop, evict).
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { StreamChecker } from "./_stream.mjs";

const [path, policy] = process.argv.slice(2);
const checker = new StreamChecker(policy);
let state = "connecting";
let eof = false;

function report(final = false) {
  process.stdout.write(JSON.stringify({ ...checker.summary(), state, eof, final, at: Date.now() }) + "\n");
}

const socket = connect(path);
socket.on("connect", () => {
  state = "reading";
  report();
});
socket.on("data", (chunk) => checker.push(chunk));
socket.on("end", () => {
  eof = true;
});
socket.on("error", (error) => {
  state = `error ${error.code ?? error.message}`;
});
socket.on("close", () => {
  if (state === "reading" || state === "stalled") state = "closed";
  report(true);
  process.exit(0);
});
const timer = setInterval(report, 100);

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "stall") {
    socket.pause();
    state = "stalled";
  } else if (line === "resume") {
    socket.resume();
    state = "reading";
  } else if (line === "close") {
    clearInterval(timer);
    state = "closed by us";
    socket.destroy();
  }
  report();
});
