// Sockets opened by someone else: systemd socket activation (systemd-socket-activate passes a
// listening socket named after a chardev) and QEMU's fd=N (a listening fd the parent passes),
// with the real command under the runtime running the suite and socat as the client.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { afterEach, describe, expect, it, testRuntime } from "./_harness.ts";
import { activatedSockets } from "../host-ts/socket_activation.ts";
import { freePort } from "./_ports.ts";

const CLI = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "dist", "cli.js");
/** The runtime running this suite, started so that it is the process systemd-socket-activate execs (LISTEN_PID). */
const RUNTIME_COMMAND: string[] = testRuntime === "deno" ? [process.execPath, "run", "-A", CLI] : [process.execPath, CLI];

let children: ChildProcess[] = [];
/** Commands socat started (it cannot pass on its own SIGKILL): their pids, from a file each wrote. */
let grandchildPidFiles: string[] = [];
afterEach(() => {
  for (const child of children) child.kill("SIGKILL");
  children = [];
  for (const file of grandchildPidFiles) {
    try {
      process.kill(Number(fs.readFileSync(file, "utf8")), "SIGTERM");
    } catch {
      // Never started, or already gone.
    }
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
  grandchildPidFiles = [];
});

/** A device that prints `tick` lines for as long as it runs. */
const TICKER = "spawn,id=sh,cmd=sh,args.0=-c,args.1=while :; do echo tick; sleep 0.1; done";

/** Runs the command under systemd-socket-activate listening on 127.0.0.1:port; stderr is collected. */
function activate(port: number, activateArgs: string[], cliArgs: string[]): { stderr: () => string } {
  const child = spawn("systemd-socket-activate", ["-l", `127.0.0.1:${port}`, ...activateArgs, ...RUNTIME_COMMAND, ...cliArgs], { stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return { stderr: () => stderr };
}

/** Connects socat to the port and returns the first `want` bytes it prints (retrying until the command serves). */
async function readFrom(port: number, want: number): Promise<string> {
  for (;;) {
    const socat = spawn("socat", ["-u", `TCP:127.0.0.1:${port}`, "-"], { stdio: ["ignore", "pipe", "ignore"] });
    children.push(socat);
    let output = "";
    const got = await new Promise<string>((resolve) => {
      socat.stdout!.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.length >= want) resolve(output);
      });
      socat.once("exit", () => resolve(output));
    });
    socat.kill();
    if (got.length >= want) return got.slice(0, want);
    // The command has not started serving yet (systemd-socket-activate accepts nothing itself).
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("socket activation and fd=", () => {
  it("reads LISTEN_FDS and LISTEN_FDNAMES only when LISTEN_PID is ours", () => {
    const env = (vars: Record<string, string>) => (name: string) => vars[name];
    expect(activatedSockets(env({ LISTEN_PID: "42", LISTEN_FDS: "2", LISTEN_FDNAMES: "console:qmp" }), 42)).toEqual(
      new Map([["console", [3]], ["qmp", [4]]]),
    );
    expect(activatedSockets(env({ LISTEN_PID: "41", LISTEN_FDS: "1", LISTEN_FDNAMES: "console" }), 42)).toEqual(new Map());
    expect(activatedSockets(env({ LISTEN_PID: "42", LISTEN_FDS: "2" }), 42)).toEqual(new Map([["unknown", [3, 4]]]));
    expect(activatedSockets(env({}), 42)).toEqual(new Map());
  });

  it("a socket chardev named like the passed socket serves on it instead of binding its own address", async () => {
    const port = await freePort();
    // The chardev's own address is the one systemd-socket-activate holds: binding it would fail (EADDRINUSE).
    const run = activate(port, ["--fdname=console"], ["-chardev", TICKER, "-serial", "chardev:console", "-chardev", `socket,id=console,host=127.0.0.1,port=${port},server=on,wait=off`]);
    expect(await readFrom(port, 10)).toBe("tick\r\ntick");
    expect(run.stderr()).not.toContain("could not listen");
  });

  it("fd=3 serves on a listening socket its parent passed", async () => {
    const port = await freePort();
    // No name matches the chardev's id: only fd=3 makes it use the socket.
    activate(port, ["--fdname=other"], ["-chardev", TICKER, "-serial", "chardev:console", "-chardev", "socket,id=console,fd=3,server=on,wait=off"]);
    expect(await readFrom(port, 10)).toBe("tick\r\ntick");
  });

  it("fd=3 without server=on talks over a connected socket its parent passed (Bun refuses it by name)", async () => {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-fd-test-"));
    try {
      // socat accepts the TCP client and starts the command with the connection's other end
      // (a connected socketpair) on fd 3; commas would end socat's EXEC address, so a script.
      const script = path.join(dir, "child.sh");
      const quoted = [...RUNTIME_COMMAND, "-chardev", TICKER, "-serial", "chardev:console", "-chardev", "socket,id=console,fd=3"].map((arg) => `'${arg}'`).join(" ");
      // The command's pid (exec keeps the shell's) goes to a file in a directory kept until afterEach.
      const pidFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "chardev-fd-pid-")), "pid");
      grandchildPidFiles.push(pidFile);
      fs.writeFileSync(script, `#!/bin/sh\necho $$ > ${pidFile}\nexec ${quoted} 2>${path.join(dir, "stderr")}\n`, { mode: 0o700 });
      const socat = spawn("socat", [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr`, `EXEC:${script},fdin=3,fdout=3`], { stdio: "ignore" });
      children.push(socat);
      if (testRuntime === "bun") {
        const client = spawn("socat", ["-u", `TCP:127.0.0.1:${port},retry=100,interval=0.05`, "-"], { stdio: "ignore" });
        children.push(client);
        const stderr = path.join(dir, "stderr");
        while (!(fs.existsSync(stderr) && fs.readFileSync(stderr, "utf8").includes("\n"))) await new Promise((resolve) => setTimeout(resolve, 20));
        expect(fs.readFileSync(stderr, "utf8")).toContain("socket: could not connect to fd:3: the bun runtime cannot take over a connected socket fd");
      } else {
        expect(await readFrom(port, 10)).toBe("tick\r\ntick");
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
