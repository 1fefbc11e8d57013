// Running the real `chardev-hub` (dist/cli.js, built by scripts/build.mjs) as a child process,
// on the runtime the tests run on (node, `deno run -A`, bun), and talking to it the way users
// do: UNIX socket clients, its stdin and stdout, files it writes.

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { testRuntime } from "../_harness.ts";

export const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CLI = path.join(ROOT, "dist", "cli.js");
/** Only a bound on waiting for something that should happen; no test measures time. */
export const GIVE_UP_MS = 20_000;

/** Waits, polling on the event loop, until `condition` holds; gives up (failing) after GIVE_UP_MS. */
export async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + GIVE_UP_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Waits until a UNIX socket at `socketPath` takes a connection (closed at once), or `cli`
 * has ended. The file alone is not enough: under Deno's node:net a socket file can exist a
 * moment before its listener listens, and a connect then is refused.
 */
export async function untilListening(socketPath: string, cli: { readonly ended: unknown }, what = `${socketPath} to listen`): Promise<void> {
  const deadline = Date.now() + GIVE_UP_MS;
  while (cli.ended === null) {
    if (fs.existsSync(socketPath)) {
      const answered = await new Promise<boolean>((resolve) => {
        const probe = net.connect({ path: socketPath }, () => {
          probe.destroy();
          resolve(true);
        });
        probe.once("error", () => resolve(false));
      });
      if (answered) return;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The runtimes dist/cli.js runs on. */
export type CliRuntime = "node" | "deno" | "bun";

/** How to start dist/cli.js on `runtime` (by default the one running the tests). */
function cliCommand(runtime: CliRuntime = testRuntime): [string, string[]] {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`node scripts/build.mjs\` first`);
  const executable = runtime === testRuntime ? process.execPath : runtime === "node" ? "node" : path.join(ROOT, "node_modules", ".bin", runtime);
  return [executable, runtime === "deno" ? ["run", "-A", CLI] : [CLI]];
}

/** How a child process ended. */
export interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Every CLI a test started, so `stopAll` can end those a failing test left running. */
const running = new Set<CliProcess>();

/** One run of `chardev-hub`. */
export class CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = "";
  stderr = "";
  ended: Ended | null = null;
  readonly exit: Promise<Ended>;

  constructor(args: readonly string[], options: { cwd?: string; env?: Record<string, string>; runtime?: CliRuntime } = {}) {
    const [command, prefix] = cliCommand(options.runtime);
    this.child = spawn(command, [...prefix, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child.stdout.on("data", (chunk: Buffer) => (this.stdout += chunk.toString("latin1")));
    this.child.stderr.on("data", (chunk: Buffer) => (this.stderr += chunk.toString("utf8")));
    this.exit = new Promise((resolve) =>
      this.child.on("close", (code, signal) => {
        this.ended = { code, signal };
        running.delete(this);
        resolve(this.ended);
      }),
    );
    running.add(this);
  }

  /** Runs to its end (stdin closed at once): exit code and output. */
  static async run(args: readonly string[], options?: { cwd?: string; runtime?: CliRuntime }): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const cli = new CliProcess(args, options);
    cli.child.stdin.end();
    const { code } = await cli.exit;
    return { code, stdout: cli.stdout, stderr: cli.stderr };
  }

  /** Types into its stdin (latin1: one char, one byte). */
  send(text: string): void {
    this.child.stdin.write(Buffer.from(text, "latin1"));
  }

  async waitForStderr(text: string | RegExp): Promise<void> {
    await until(() => (typeof text === "string" ? this.stderr.includes(text) : text.test(this.stderr)) || this.ended !== null, `stderr to show ${text}`);
    if (!(typeof text === "string" ? this.stderr.includes(text) : text.test(this.stderr))) {
      throw new Error(`chardev-hub ended (${JSON.stringify(this.ended)}) before stderr showed ${text}; stderr: ${this.stderr}`);
    }
  }

  async waitForStdout(text: string): Promise<void> {
    await until(() => this.stdout.includes(text) || this.ended !== null, `stdout to show ${JSON.stringify(text)}`);
    if (!this.stdout.includes(text)) throw new Error(`chardev-hub ended before stdout showed ${JSON.stringify(text)}; stdout: ${this.stdout}`);
  }

  /**
   * Sends `signal` and waits for the end. Through process.kill, not child.kill: Deno's
   * child_process reports any child it was asked to kill as killed by that signal, even one
   * that caught it and exited with a status of its own.
   */
  async stop(signal: NodeJS.Signals = "SIGINT"): Promise<Ended> {
    if (!this.ended) process.kill(this.child.pid!, signal);
    return this.exit;
  }

  /** Ends every CLI still running (a test that failed half way), hard. */
  static async stopAll(): Promise<void> {
    for (const cli of [...running]) await cli.stop("SIGKILL");
  }
}

/** A UNIX socket client of one of the CLI's socket chardevs. */
export class SocketClient {
  readonly #chunks: Buffer[] = [];
  receivedBytes = 0;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.receivedBytes += chunk.length;
    });
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => {});
  }

  /** Connects once the CLI is listening (retrying until the socket file accepts). */
  static async connect(socketPath: string): Promise<SocketClient> {
    const deadline = Date.now() + GIVE_UP_MS;
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const attempt = net.connect({ path: socketPath }, () => resolve(attempt));
          attempt.once("error", reject);
        });
        return new SocketClient(socket);
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  /** Everything received, as latin1 text (one char per byte). */
  get text(): string {
    return Buffer.concat(this.#chunks).toString("latin1");
  }

  send(data: string | Uint8Array): void {
    this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
  }

  async waitFor(text: string): Promise<void> {
    await until(() => this.text.includes(text), `a socket client to receive ${JSON.stringify(text)} (it has ${JSON.stringify(this.text.slice(-200))})`);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A file's text, or "" while it does not exist yet. */
export function readText(file: string): string {
  try {
    return fs.readFileSync(file, "latin1");
  } catch {
    return "";
  }
}
