// Programs through Node's node:child_process, and our own process through `process` and
// node:fs: the `spawn` and `serial` chardevs start programs here, and the command-line tool
// reads its arguments, signals and terminal here. Deno and Bun provide the same modules, so
// their runtimes take this as it is.

import { spawn as spawnChild } from "node:child_process";
import * as fs from "node:fs";
import process from "node:process";
import { nodeService } from "./node_service.ts";
import type { ProcessExit, ProcessPrimitives, SpawnedProcess, SpawnOptions, TerminalSizeInfo } from "./types.ts";

/** A wrapper's complaint is a line or two; a program that keeps writing to stderr gets no more memory. */
const STARTUP_ERRORS_LIMIT = 4096;
/** How long `exit` waits for stdout and stderr to drain before it exits anyway. */
const EXIT_FLUSH_LIMIT_MS = 2000;
/** POSIX shells answer 127 for a program that cannot be found or started. */
const CANNOT_START = 127;

function startChild(command: string, args: readonly string[], options: SpawnOptions = {}): SpawnedProcess {
  const child = spawnChild(command, [...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: options.env ? { ...process.env, ...options.env } : process.env,
    // Node's `detached` is setsid(2) on POSIX: a new session, and no signals from our terminal.
    detached: options.newSession === true,
  });
  let errors = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    if (errors.length < STARTUP_ERRORS_LIMIT) errors += chunk.toString("utf8").slice(0, STARTUP_ERRORS_LIMIT - errors.length);
  });
  let ended = false;
  const exit = new Promise<ProcessExit>((resolve) => {
    child.once("error", (error: Error) => {
      // Only a failure to start reaches here (kill() of a running child does not throw).
      errors += `${command}: ${error.message}\n`;
      ended = true;
      resolve({ code: CANNOT_START, signal: null });
    });
    child.once("exit", (code, signal) => {
      ended = true;
      resolve({ code, signal });
    });
  });
  return {
    pid: child.pid ?? -1,
    exit,
    kill(signal) {
      if (!ended) child.kill(signal as NodeJS.Signals);
    },
    startupErrors: () => errors,
  };
}

function run(command: string, args: readonly string[]): Promise<{ exit: ProcessExit; output: string }> {
  return new Promise((resolve) => {
    const child = spawnChild(command, [...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.once("error", (error: Error) => resolve({ exit: { code: CANNOT_START, signal: null }, output: `${command}: ${error.message}\n` }));
    // `close`, not `exit`: the output is complete only once both pipes have ended.
    child.once("close", (code, signal) => resolve({ exit: { code, signal }, output: stdout + stderr }));
  });
}

function terminalSize(): TerminalSizeInfo | null {
  const out = process.stdout;
  return out.isTTY && out.columns > 0 && out.rows > 0 ? { cols: out.columns, rows: out.rows } : null;
}

/** Resolves when `stream` has handed everything it was given to the OS, or after the limit. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, EXIT_FLUSH_LIMIT_MS);
    stream.once("drain", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Node's (and Deno's and Bun's) program primitives. */
export const nodeProcess: ProcessPrimitives = {
  spawn: startChild,
  run,
  pid: process.pid,
  args: process.argv.slice(2),
  env: (name) => process.env[name],
  get stdinIsTerminal() {
    return process.stdin.isTTY === true;
  },
  terminalSize,
  onTerminalResize(listener) {
    const onResize = () => {
      const size = terminalSize();
      if (size) listener(size);
    };
    process.stdout.on("resize", onResize);
    return () => process.stdout.off("resize", onResize);
  },
  onSignal(signal, handler) {
    process.on(signal, handler);
    return () => process.off(signal, handler);
  },
  print(stream, text) {
    (stream === "stdout" ? process.stdout : process.stderr).write(text);
  },
  makeDirectory(path, mode) {
    fs.mkdirSync(path, { recursive: true, mode });
  },
  exists(path) {
    try {
      fs.lstatSync(path);
      return true;
    } catch {
      return false;
    }
  },
  async exit(code) {
    await Promise.all([drained(process.stdout), drained(process.stderr)]);
    process.exit(code);
  },
  service: nodeService,
};
