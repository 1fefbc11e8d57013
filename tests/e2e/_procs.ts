// Helpers for end-to-end tests: start the chardev-hub CLI, talk to its sockets, wait for text.

import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const sharedDir = path.resolve(repoRoot, "..", "shared");
export const cliPath = path.join(repoRoot, "dist", "cli.js");

/** Waits until `check()` is true; the deadline only stops a hung test, it asserts no speed. */
export async function until(check: () => boolean, what: string, deadlineMs = 90_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** How long a refused connect to a socket file is tried again. */
const CONNECT_RETRY_MS = 5000;

/** The chardev-hub command, run with `args`; collects its output. */
export class Cli {
  readonly process: ChildProcess;
  output = "";
  exitCode: number | null = null;
  readonly exited: Promise<number | null>;

  constructor(args: string[], cwd = repoRoot) {
    this.process = spawn(process.execPath, [cliPath, ...args], { cwd, stdio: ["pipe", "pipe", "pipe"] });
    this.process.stdout!.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
    this.process.stderr!.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => this.process.on("exit", (code) => resolve((this.exitCode = code))));
  }

  async stop(): Promise<number | null> {
    if (this.exitCode === null) this.process.kill("SIGINT");
    return this.exited;
  }
}

/** A UNIX socket client that keeps everything it received. */
export class SocketClient {
  readonly socket: net.Socket;
  received = "";

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk) => (this.received += chunk.toString("latin1")));
  }

  /**
   * Connects once the socket file exists. A refused connect is tried again for a while (a file
   * can exist a moment before its listener listens); `server`, when given, is the command whose
   * output a failure shows, and whose exit ends the wait at once.
   */
  static async connect(socketPath: string, server?: Cli): Promise<SocketClient> {
    const context = () => (server ? ` (chardev-hub ${server.exitCode === null ? "running" : `exited ${server.exitCode}`}; its output: ${JSON.stringify(server.output)})` : "");
    await until(() => fs.existsSync(socketPath) || server?.exitCode != null, `${socketPath} to exist${context()}`);
    const end = Date.now() + CONNECT_RETRY_MS;
    for (;;) {
      const socket = net.connect(socketPath);
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once("connect", resolve);
          socket.once("error", reject);
        });
        return new SocketClient(socket);
      } catch (error) {
        socket.destroy();
        const code = (error as NodeJS.ErrnoException).code;
        if ((code !== "ECONNREFUSED" && code !== "ENOENT") || Date.now() > end || server?.exitCode != null) {
          throw new Error(`connect ${socketPath}: ${(error as Error).message}${context()}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  send(text: string): void {
    this.socket.write(text);
  }

  close(): void {
    this.socket.destroy();
  }
}
