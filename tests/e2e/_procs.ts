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

  static async connect(socketPath: string): Promise<SocketClient> {
    await until(() => fs.existsSync(socketPath), `${socketPath} to exist`);
    const socket = net.connect(socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new SocketClient(socket);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  close(): void {
    this.socket.destroy();
  }
}
