// Another process, measured from outside (Linux /proc): its CPU time and its peak RSS, and a
// way to start and stop it that keeps the tail of its stderr for an error message.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";

const CLOCK_TICKS = 100; // USER_HZ on Linux: /proc/PID/stat counts CPU time in 1/100 s

/** User + system CPU seconds a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** The process's peak resident set size (VmHWM) in bytes. */
export function peakRss(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`bench: no VmHWM for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** A process the benchmark started; `stop()` ends it (SIGTERM, then SIGKILL after 5 s). */
export class Served {
  readonly child: ChildProcess;
  log = "";
  readonly exited: Promise<number | null>;
  constructor(command: string, args: string[]) {
    this.child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
    this.child.stderr!.on("data", (chunk: Buffer) => (this.log = (this.log + chunk.toString()).slice(-4000)));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }
  get pid(): number {
    return this.child.pid!;
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
