// Startup (issue 17; Node only, `--only=startup`): how long `node dist/cli.js --help` takes to
// exit, and how long from spawning a hub until its socket chardev accepts a connection, against
// socat doing the same (`socat -h`; `socat UNIX-LISTEN:PATH STDIO`), with `node -e 0` for what
// the runtime alone costs. Wall times from spawn, interleaved by round; the median is reported.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { median, type Row } from "./_report.ts";
import { now } from "./_runtime.ts";

type Measure = "help" | "listening";

interface Subject {
  name: string;
  ours: boolean;
  measure: Measure;
  command: (socketPath: string) => [string, string[]];
}

/** Milliseconds from spawn until the process exits (it must exit 0). */
function timeToExit(command: string, args: string[]): Promise<number> {
  const started = now();
  const child = spawn(command, args, { stdio: "ignore" });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(now() - started) : reject(new Error(`startup: ${command} ${args.join(" ")} exited ${code}`))));
  });
}

/** Tries to connect until a connection succeeds; resolves with the connected socket. */
function connectWhenListening(socketPath: string, limitMs: number): Promise<net.Socket> {
  const started = now();
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = net.connect(socketPath);
      socket.once("connect", () => resolve(socket));
      socket.once("error", (error) => {
        socket.destroy();
        if (now() - started > limitMs) reject(new Error(`startup: nothing listened on ${socketPath} in ${limitMs} ms (${error.message})`));
        else setImmediate(attempt);
      });
    };
    attempt();
  });
}

/** Milliseconds from spawn until a connection to `socketPath` succeeds; the process is then ended. */
async function timeToListen(command: string, args: string[], socketPath: string): Promise<number> {
  fs.rmSync(socketPath, { force: true });
  const started = now();
  const child = spawn(command, args, { stdio: "ignore" });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    const socket = await connectWhenListening(socketPath, 20_000);
    const ms = now() - started;
    socket.destroy();
    return ms;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  }
}

export async function runStartupCase(options: { quick: boolean; root: string; socat: boolean; log: (line: string) => void }): Promise<Row[]> {
  const cli = path.join(options.root, "dist", "cli.js");
  const node = process.execPath;
  const subjects: Subject[] = [
    { name: "chardev-hub --help", ours: true, measure: "help", command: () => [node, [cli, "--help"]] },
    { name: "node -e 0 (the runtime alone)", ours: false, measure: "help", command: () => [node, ["-e", "0"]] },
    {
      name: "chardev-hub: a hub's socket chardev accepts",
      ours: true,
      measure: "listening",
      command: (socketPath) => [node, [cli, "-chardev", "null,id=dev", "-chardev", `socket,id=s,path=${socketPath},server=on,wait=off`, "-chardev", "hub,id=hub0,chardevs.0=s", "-frontend", "dev,chardev=hub0"]],
    },
  ];
  if (options.socat) {
    subjects.push(
      { name: "socat -h", ours: false, measure: "help", command: () => ["socat", ["-h"]] },
      { name: "socat UNIX-LISTEN:PATH STDIO accepts", ours: false, measure: "listening", command: (socketPath) => ["socat", [`UNIX-LISTEN:${socketPath}`, "STDIO"]] },
    );
  }
  const rounds = options.quick ? 5 : 15;
  options.log(`startup: ${rounds} rounds of ${subjects.map((s) => s.name).join(", ")} (load ${os.loadavg()[0].toFixed(2)})`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-bench-start-"));
  const times = subjects.map(() => [] as number[]);
  try {
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < subjects.length; i++) {
        const index = (i + round) % subjects.length;
        const subject = subjects[index];
        const socketPath = path.join(dir, "listen.sock");
        const [command, args] = subject.command(socketPath);
        times[index].push(subject.measure === "help" ? await timeToExit(command, args) : await timeToListen(command, args, socketPath));
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const load = os.loadavg()[0];
  return subjects.map((subject, i) => ({
    case: "startup",
    runtime: "node",
    chunk: 0,
    n: 1,
    variant: subject.name,
    ours: subject.ours,
    mbps: null,
    mbpsRounds: [],
    hubRatio: null,
    producerNsPerWrite: null,
    bytesPerRun: 0,
    peakRssMiB: 0,
    extra: { measure: subject.measure, medianMs: median(times[i]), minMs: Math.min(...times[i]), rounds: times[i].length, loadAverage1m: load },
  }));
}
