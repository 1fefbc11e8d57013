// `-serial SPEC`, QEMU's legacy forms, through the command (dist/cli.js) with real clients:
// socat and nc (Debian netcat-openbsd) on `-serial tcp:…,server,nowait` share a spawned shell
// with a `-serial file:` log; `-serial unix:…,server,nowait`; `-serial chardev:ID` naming a
// `-chardev` written with QEMU's deprecated shorthand, whose warning lines reach stderr; and the
// errors for a command line that names no device, or two.

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "../_harness.ts";
import { freePort } from "../_ports.ts";
import { CliProcess, readText, SocketClient, until } from "./_cli.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "serial-forms-"));
const at = (name: string) => path.join(dir, name);

/** A client program (socat, nc) of ours: what it printed, and its stdin to type into. */
class ClientProgram {
  readonly child: ChildProcessWithoutNullStreams;
  output = "";
  ended = false;

  constructor(command: string, args: string[]) {
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.on("data", (chunk: Buffer) => (this.output += chunk.toString("latin1")));
    this.child.on("close", () => (this.ended = true));
    this.child.stdin.on("error", () => {});
  }

  type(text: string): void {
    this.child.stdin.write(text);
  }

  async waitFor(text: string): Promise<void> {
    await until(() => this.output.includes(text) || this.ended, `${this.child.spawnfile} to print ${JSON.stringify(text)}`);
    if (!this.output.includes(text)) throw new Error(`${this.child.spawnfile} ended before printing ${JSON.stringify(text)}; it printed ${JSON.stringify(this.output.slice(-200))}`);
  }

  /** Ends the client (a process we started: its own PID). */
  stop(): void {
    if (!this.ended) this.child.kill("SIGTERM");
  }
}

const clients: ClientProgram[] = [];
function client(command: string, args: string[]): ClientProgram {
  const program = new ClientProgram(command, args);
  clients.push(program);
  return program;
}

afterEach(async () => {
  for (const program of clients.splice(0)) program.stop();
  await CliProcess.stopAll();
});

/** A spawned shell whose answers differ from what was typed (`$((6*7))` prints 42). */
const SHELL = "spawn,id=sh,cmd=sh";

describe("-serial (QEMU's legacy forms, through the command)", () => {
  it("lets socat and nc on two -serial tcp: servers share a spawned shell while -serial file: logs the same bytes", async () => {
    const [socatPort, ncPort] = [await freePort(), await freePort()];
    const log = at("tcp-console.log");
    const cli = new CliProcess(["-chardev", SHELL, "-serial", `tcp:127.0.0.1:${socatPort},server,nowait`, "-serial", `tcp:127.0.0.1:${ncPort},server,nowait`, "-serial", `file:${log}`]);
    // socat retries until the command listens; nc is started once socat is in, so it is listening.
    const socat = client("socat", ["-", `TCP:127.0.0.1:${socatPort},retry=400,interval=0.05`]);
    socat.type("echo socat$((6*7))\n");
    await socat.waitFor("socat42");
    const nc = client("nc", ["127.0.0.1", String(ncPort)]);
    // The shell is shared: what nc types, socat sees answered, and the other way round.
    nc.type("echo nc$((5*5))\n");
    await socat.waitFor("nc25");
    await nc.waitFor("nc25");
    socat.type("echo both$((7*7))\n");
    await nc.waitFor("both49");
    await until(() => readText(log).includes("both49"), "the log to receive both49");
    for (const mark of ["socat42", "nc25", "both49"]) expect(readText(log)).toContain(mark);
    // QEMU reads the options of a legacy spec without its shorthand warning; so do we.
    expect(cli.stderr).not.toContain("deprecated");
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });

  it("serves -serial unix:PATH,server,nowait to a socat client", async () => {
    const socketPath = at("unix-console.sock");
    const cli = new CliProcess(["-chardev", SHELL, "-serial", `unix:${socketPath},server,nowait`, "-serial", "null"]);
    const socat = client("socat", ["-", `UNIX-CONNECT:${socketPath},retry=400,interval=0.05`]);
    socat.type("echo unix$((8*8))\n");
    await socat.waitFor("unix64");
    expect(cli.stderr).not.toContain("deprecated");
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });

  it("puts a mux in front of -serial mon:unix:…, whose client reaches the shell, and says where -serial pty went as QEMU does", async () => {
    const socketPath = at("mon.sock");
    const cli = new CliProcess(["-chardev", SHELL, "-serial", `mon:unix:${socketPath},server,nowait`, "-serial", "pty"]);
    await cli.waitForStderr(/char device redirected to (\/dev\/pts\/\d+) \(label serial1\)/);
    const ptyPath = /char device redirected to (\/dev\/pts\/\d+)/.exec(cli.stderr)![1];
    const onPty = client("socat", ["-", `${ptyPath},raw,echo=0`]);
    const socat = client("socat", ["-", `UNIX-CONNECT:${socketPath},retry=400,interval=0.05`]);
    socat.type("echo mux$((4*4))\n");
    await socat.waitFor("mux16");
    // The pty counts as open once the hub has seen its peer (it polls for it), and output before
    // that is not its to get: ask again until an answer reaches it too.
    const asking = setInterval(() => socat.type("echo pty$((5*5))\n"), 300);
    try {
      await onPty.waitFor("pty25");
    } finally {
      clearInterval(asking);
    }
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });

  it("puts a -chardev named by -serial chardev:ID in the hub, and says QEMU's deprecation lines for its shorthand", async () => {
    const socketPath = at("shorthand.sock");
    const log = at("shorthand.log");
    const cli = new CliProcess(["-chardev", `socket,id=ctl,path=${socketPath},server,nowait`, "-chardev", SHELL, "-serial", "chardev:ctl", "-serial", `file:${log}`]);
    const socket = await SocketClient.connect(socketPath);
    socket.send("echo ctl$((9*9))\n");
    await socket.waitFor("ctl81");
    await until(() => readText(log).includes("ctl81"), "the log to receive ctl81");
    // QEMU 7.2 says, for `qemu-system-x86_64 -chardev socket,id=c0,path=/tmp/x.sock,server,nowait`:
    //   qemu-system-x86_64: -chardev socket,id=c0,path=/tmp/x.sock,server,nowait: warning: short-form boolean option 'server' deprecated
    //   Please use server=on instead
    //   (the same two for 'nowait', "Please use wait=off instead")
    const spec = `socket,id=ctl,path=${socketPath},server,nowait`;
    const expected =
      `chardev-hub: -chardev ${spec}: warning: short-form boolean option 'server' deprecated\n` +
      "Please use server=on instead\n" +
      `chardev-hub: -chardev ${spec}: warning: short-form boolean option 'nowait' deprecated\n` +
      "Please use wait=off instead\n";
    expect(cli.stderr.slice(0, expected.length)).toBe(expected);
    socket.close();
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });

  it("refuses a command line with two possible devices, naming them", async () => {
    const { code, stderr } = await CliProcess.run(["-chardev", "null,id=a", "-chardev", "null,id=b", "-serial", "null"]);
    expect(code).toBe(1);
    expect(stderr).toContain("chardev-hub: -serial: which chardev is the device? 'a', 'b' are not named by any -serial chardev:ID");
  });

  it("refuses a command line whose only -chardev is named by -serial chardev:ID: there is no device", async () => {
    const { code, stderr } = await CliProcess.run(["-chardev", "null,id=a", "-serial", "chardev:a"]);
    expect(code).toBe(1);
    expect(stderr).toContain("chardev-hub: -serial: no device:");
  });

  it("refuses -serial without any -chardev, and -serial with -frontend, as usage errors", async () => {
    const alone = await CliProcess.run(["-serial", "null"]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toBe("chardev-hub: -serial shares a device, but no -chardev defines one (e.g. -chardev spawn,id=sh,cmd=bash)\n");
    const both = await CliProcess.run(["-chardev", "null,id=a", "-serial", "null", "-frontend", "a,chardev=h"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("-serial makes its own hub for the device: give no -frontend with it");
  });

  it("reports a bad spec as QEMU does: the reason, then QEMU's -serial line", async () => {
    const { code, stderr } = await CliProcess.run(["-chardev", "null,id=a", "-serial", "bogus"]);
    expect(code).toBe(1);
    expect(stderr).toBe(
      "chardev-hub: -serial bogus: 'bogus' is not a valid char driver\n" +
        "chardev-hub: -serial bogus: could not connect serial device to character backend 'bogus'\n",
    );
  });
});

describe("-serial in --help", () => {
  it("--help lists -serial and every legacy form", async () => {
    const { code, stdout } = await CliProcess.run(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain("-serial SPEC");
    for (const form of ["null", "none", "vc[:WxH|:COLSCxROWSC]", "pty:LINK", "stdio", "file:PATH", "pipe:PATH", "tcp:[HOST]:PORT[,OPTS]", "telnet:[HOST]:PORT[,OPTS]", "websocket:[HOST]:PORT[,OPTS]", "unix:PATH[,OPTS]", "udp:[HOST]:PORT[@[LOCALADDR]:LOCALPORT]", "/dev/TTY", "mon:SPEC", "chardev:ID"]) {
      expect(stdout, `--help names ${form}`).toContain(form);
    }
  });
});
