// The stdio chardev in a real child process: its stdin and stdout are pipes we drive.

import { spawn } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "./_harness.ts";

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), "stdio", "child.mjs");

/** Runs the child, feeding `inputs` one at a time after each answer, then ends its stdin. */
function runChild(signal: string, inputs: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const proc = spawn("node", [child, signal], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let answered = 0;
    const next = () => {
      if (answered < inputs.length) proc.stdin.write(inputs[answered]);
      else proc.stdin.end();
    };
    proc.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const lines = stdout.split("\n").filter((line) => line.startsWith("got:")).length;
      if (stdout.includes("opened\n") && lines === answered) next();
      else if (lines > answered) {
        answered = lines;
        next();
      }
    });
    proc.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    proc.on("error", reject);
    proc.on("close", (code) => resolve({ stdout, stderr, code }));
  });
}

describe("stdio chardev", () => {
  it("input on stdin reaches the hub's frontend and its output reaches stdout and the ringbuf", async () => {
    const { stdout, stderr, code } = await runChild("on", ["hello", "world"]);
    expect(stdout).toBe('opened\ngot:"hello"\ngot:"world"\n');
    // The ringbuf is still open, so the hub's frontend does not see the stdio backend close.
    expect(stderr).toBe('frontend saw CLOSED: false; ringbuf has "opened\\ngot:\\"hello\\"\\ngot:\\"world\\"\\n"\n');
    expect(code).toBe(0);
  });

  it("Ctrl-C from a pipe (not a terminal) is data, even with signal=on", async () => {
    const { stdout, code } = await runChild("on", ["\x03"]);
    expect(stdout).toBe('opened\ngot:"\\u0003"\n');
    expect(code).toBe(0);
  });
});
