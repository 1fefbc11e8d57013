// What running as a service needs of our own process (`-pidfile`, `-daemonize`): files that
// must appear whole and only once, whether a process still exists, and a copy of ourselves
// started in the background with a pipe back. Node's node:fs, node:child_process and
// node:process; Deno and Bun provide the same modules, so their runtimes take this as it is.

import { spawn as spawnChild } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import type { BackgroundCopy, ProcessExit, ServicePrimitives } from "./types.ts";

/** The fd the background copy finds its pipe back to the foreground on (after stdin, stdout, stderr). */
const BACKGROUND_CHANNEL_FD = 3;
/** After the copy exited, how long its pipe may take to deliver its last bytes. */
const CHANNEL_END_WAIT_MS = 1000;
/** A `-D` log we create: private, as every log of ours (it holds what the console printed about its clients). */
const LOG_FILE_MODE = 0o600;

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is only not ours to signal (another user's process).
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readTextFile(file: string, maxBytes: number): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  try {
    const buffer = Buffer.alloc(maxBytes);
    const length = fs.readSync(fd, buffer, 0, maxBytes, 0);
    return buffer.subarray(0, length).toString("utf8");
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes a file beside the target, then link(2)s it into place: the file appears whole (a reader
 * never sees it half written) and link fails with EEXIST when something is already there, so of
 * two processes racing for the same name one wins.
 */
function createFileExclusive(file: string, text: string, mode: number): void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(temporary, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    fs.writeSync(fd, text);
    fs.closeSync(fd);
    fs.linkSync(temporary, file);
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

function removeFile(file: string): void {
  fs.rmSync(file, { force: true });
}

/**
 * Starts this same script again with `args`, in a new session (setsid(2): no controlling
 * terminal, our terminal's signals don't reach it), in our working directory, stdin from
 * /dev/null, stdout and stderr to `outputFile` (appended) or /dev/null, and fd 3 a pipe whose
 * bytes reach `onMessage`. The runtime and its flags are ours: process.execPath and execArgv.
 */
function startBackgroundCopy(args: readonly string[], options: { env: Readonly<Record<string, string>>; outputFile: string | null; onMessage(text: string): void }): BackgroundCopy {
  const output = options.outputFile === null ? "ignore" : fs.openSync(options.outputFile, "a", LOG_FILE_MODE);
  let child;
  try {
    child = spawnChild(process.execPath, [...process.execArgv, process.argv[1], ...args], {
      detached: true,
      stdio: ["ignore", output, output, "pipe"],
      env: { ...process.env, ...options.env, CHARDEV_HUB_CHANNEL_FD: String(BACKGROUND_CHANNEL_FD) },
    });
  } finally {
    // The child has its own copy now (or failed to start).
    if (typeof output === "number") fs.closeSync(output);
  }
  const channel = child.stdio[BACKGROUND_CHANNEL_FD] as NodeJS.ReadableStream | null;
  channel?.on("data", (chunk: Buffer) => options.onMessage(chunk.toString("utf8")));
  channel?.on("error", () => {});
  // 'exit' may come before the last bytes of the pipe: its end (or a short wait, should a program
  // the copy started hold the pipe open) comes first, so the foreground prints why the copy failed.
  const channelEnded = new Promise<void>((resolve) => {
    if (!channel) return resolve();
    channel.once("close", resolve);
    channel.once("end", resolve);
  });
  const exit = new Promise<ProcessExit>((resolve) => {
    child.once("error", (error: Error) => {
      options.onMessage(`${process.execPath}: ${error.message}\n`);
      resolve({ code: 127, signal: null });
    });
    child.once("exit", (code, signal) => {
      const ended = { code, signal };
      void Promise.race([channelEnded, new Promise((wait) => setTimeout(wait, CHANNEL_END_WAIT_MS))]).then(() => resolve(ended));
    });
  });
  return {
    pid: child.pid ?? -1,
    exit,
    release() {
      // Our event loop no longer waits for it (or its pipe): the foreground can exit while it runs.
      (channel as unknown as { destroy?(): void } | null)?.destroy?.();
      child.unref();
    },
  };
}

function backgroundChannel(): { send(text: string): void; close(): void } | null {
  const named = process.env.CHARDEV_HUB_CHANNEL_FD;
  if (named === undefined || !/^\d+$/.test(named)) return null;
  // Taken once: a program we start later must not think it is a background copy too.
  delete process.env.CHARDEV_HUB_CHANNEL_FD;
  let fd = Number(named);
  // Programs the copy starts (a spawn device's shell) must not inherit the pipe and keep it open:
  // on Linux, reopening it through /proc gives a close-on-exec descriptor of the same pipe.
  try {
    const reopened = fs.openSync(`/proc/self/fd/${fd}`, "w");
    fs.closeSync(fd);
    fd = reopened;
  } catch {
    // No /proc: the inherited descriptor it is.
  }
  let open = true;
  return {
    send(text) {
      if (!open) return;
      try {
        fs.writeSync(fd, text);
      } catch {
        // The foreground is gone (killed while waiting): nobody to tell; carry on.
        open = false;
      }
    },
    close() {
      if (!open) return;
      open = false;
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    },
  };
}

/** Node's (and Deno's and Bun's) service primitives. */
export const nodeService: ServicePrimitives = {
  processExists,
  readTextFile,
  createFileExclusive,
  removeFile,
  absolutePath: (file) => path.resolve(file),
  startBackgroundCopy,
  backgroundChannel,
};
