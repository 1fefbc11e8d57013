// Client processes for the socket cases: spawned, awaited for their "connected" line, then
// for their one-line JSON result.

import { spawn, type ChildProcess } from "node:child_process";

export interface ClientResult {
  bytes: number;
  md5: string | null;
  [key: string]: unknown;
}

export class Client {
  readonly child: ChildProcess;
  readonly connected: Promise<void>;
  readonly result: Promise<ClientResult>;

  constructor(script: string, args: string[]) {
    this.child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let buffered = "";
    let onConnected!: () => void;
    let onResult!: (result: ClientResult) => void;
    let onFailure!: (error: Error) => void;
    let notConnected!: (error: Error) => void;
    this.connected = new Promise((resolve, reject) => {
      onConnected = resolve;
      notConnected = reject;
    });
    this.result = new Promise((resolve, reject) => {
      onResult = resolve;
      onFailure = reject;
    });
    // Whoever awaits them sees a failure; nobody awaiting must not crash the process.
    this.connected.catch(() => {});
    this.result.catch(() => {});
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (text: string) => {
      buffered += text;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line === "connected") onConnected();
        else onResult(JSON.parse(line) as ClientResult);
      }
    });
    // 'close', not 'exit': the last line may still be in the pipe when the process exits.
    this.child.on("close", (code) => {
      const error = new Error(`client ${script} exited with ${code} before reporting`);
      notConnected(error);
      onFailure(error);
    });
    this.child.on("error", (error) => {
      notConnected(error);
      onFailure(error);
    });
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill();
  }
}

/** Samples RSS every few ms while the event loop turns; `stop()` gives the peak; `start` the first reading. */
export function rssSampler(rss: () => number, everyMs = 5): { start: number; stop(): number } {
  const start = rss();
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, rss())), everyMs);
  return {
    start,
    stop() {
      clearInterval(timer);
      return Math.max(peak, rss());
    },
  };
}
