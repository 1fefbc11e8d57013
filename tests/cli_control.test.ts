// The control socket (`-control PATH`) and its client, the same binary: `chardev-hub list`,
// `who`, `attach` (under a private tmux server for the terminal, with piped stdin for the rest)
// and `tail`, against the real dist/cli.js running `sh` on a pty as the device. Needs sh, stty,
// tmux, socat (another user's connect) and, for that one test, root (useradd, setpriv).

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it, testRuntime } from "./_harness.ts";
import { asIntruder, ensureIntruderAccount } from "./_intruder.ts";
import { CLI, CliProcess, readText, until, untilListening } from "./cli/_cli.ts";

let dir: string;
let protocolClients: ProtocolClient[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-control-test-"));
  protocolClients = [];
});
afterEach(async () => {
  for (const client of protocolClients) client.close();
  await stopEveryCli();
  fs.rmSync(dir, { recursive: true, force: true });
});

const at = (name: string) => path.join(dir, name);

/**
 * CliProcess.stopAll, tried again when it meets a client that ended on its own between the
 * check and the kill (ESRCH): ending the run ends its attached clients too.
 */
async function stopEveryCli(): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await CliProcess.stopAll();
    } catch (error) {
      if ((error as { code?: string }).code !== "ESRCH" || attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** A run with console `sh` (sh on a pty) behind a ring hub with `hubKeys`, and a control socket. */
async function startRun(hubKeys = ""): Promise<{ cli: CliProcess; control: string }> {
  const control = at("control.sock");
  const cli = new CliProcess(["-chardev", "spawn,id=sh,cmd=sh", "-chardev", `hub,id=hub0,ring=64K${hubKeys}`, "-frontend", "sh,chardev=hub0", "-control", control]);
  await untilListening(control, cli, "the control socket to listen");
  if (cli.ended) throw new Error(`chardev-hub ended before listening: ${cli.stderr}`);
  return { cli, control };
}

/** `chardev-hub attach ...` with a pipe for stdin (no terminal: nothing is made raw). */
function attach(control: string, ...args: string[]): CliProcess {
  return new CliProcess(["attach", "sh", "--control", control, ...args]);
}

/** A raw client of the protocol: JSON lines, then the console's bytes after an attach. */
class ProtocolClient {
  text = "";
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => (this.text += chunk.toString("latin1")));
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => {});
  }

  static async connect(socketPath: string): Promise<ProtocolClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const attempt = net.connect({ path: socketPath }, () => resolve(attempt));
      attempt.once("error", reject);
    });
    const client = new ProtocolClient(socket);
    protocolClients.push(client);
    return client;
  }

  send(text: string): void {
    this.socket.write(Buffer.from(text, "latin1"));
  }

  /** The answer lines so far, parsed. */
  answers(): Record<string, unknown>[] {
    return this.text.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
  }

  async waitFor(text: string): Promise<void> {
    await until(() => this.text.includes(text), `the protocol client to receive ${JSON.stringify(text)} (it has ${JSON.stringify(this.text.slice(-300))})`);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The shell's answer to `expression` typed by `typist`, seen by `watcher` (bytes of the console). */
async function expectAnswer(watcher: () => string, what: string): Promise<void> {
  await until(() => watcher().includes(what), `${JSON.stringify(what)} in ${JSON.stringify(watcher().slice(-300))}`);
}

describe("chardev-hub list, who and the control protocol", () => {
  it("list shows two consoles of one run, their devices open and an attached client", async () => {
    const control = at("control.sock");
    const cli = new CliProcess([
      "-chardev", "spawn,id=dev1,cmd=sh",
      "-chardev", "spawn,id=dev2,cmd=sh",
      "-console", "one,device=dev1",
      "-console", "two,device=dev2",
      "-control", control,
    ]);
    await untilListening(control, cli, "the control socket to listen");
    expect(cli.ended, cli.stderr).toBeNull();
    const watcher = await ProtocolClient.connect(control);
    watcher.send(`${JSON.stringify({ cmd: "attach", console: "two", mode: "ro" })}\n`);
    await watcher.waitFor('"attached"');
    const listed = await CliProcess.run(["list", "--control", control]);
    expect(listed.stderr).toBe("");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^one: device 'dev1' open, 0 rw, 0 ro, ring 1\.0 MiB/m);
    expect(listed.stdout).toMatch(/^two: device 'dev2' open, 0 rw, 1 ro, ring 1\.0 MiB/m);
    expect(listed.stdout).toMatch(/^ {2}attach-1 +attach +open +ro +\d+ /m);
    const json = JSON.parse((await CliProcess.run(["list", "--json", "--control", control])).stdout);
    expect(json.consoles.map((entry: { name: string }) => entry.name)).toEqual(["one", "two"]);
    expect(json.consoles[1].clients).toContainEqual(expect.objectContaining({ id: "attach-1", kind: "attach", open: true, mode: "ro", uid: process.getuid!() }));
  });

  it("who lists an attached client with its uid and mode, and a console nobody is on says so", async () => {
    const { control } = await startRun();
    const quiet = await CliProcess.run(["who", "sh", "--control", control]);
    expect(quiet).toEqual({ code: 0, stdout: "sh: nobody attached\n", stderr: "" });
    const client = await ProtocolClient.connect(control);
    client.send(`${JSON.stringify({ cmd: "attach", console: "sh" })}\n`);
    await client.waitFor("[-- sh: attached rw, 0 others --]");
    const who = await CliProcess.run(["who", "sh", "--control", control]);
    expect(who.code).toBe(0);
    expect(who.stdout).toMatch(new RegExp(`^sh: 1 attached\\nID +KIND +MODE +UID +SINCE\\nattach-1 +attach +rw +${process.getuid!()} +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\n$`));
  });

  it("who and list show a max-clients socket's connections and its listener row", async () => {
    const control = at("control.sock");
    const cli = new CliProcess([
      "-chardev", "spawn,id=sh,cmd=sh",
      "-chardev", `socket,id=s0,path=${at("s0.sock")},server=on,wait=off,max-clients=4`,
      "-chardev", "hub,id=hub0,ring=64K,chardevs.0=s0",
      "-frontend", "sh,chardev=hub0",
      "-control", control,
    ]);
    await untilListening(control, cli, "the control socket to listen");
    const socketClient = await ProtocolClient.connect(at("s0.sock"));
    socketClient.send("echo s-$((4*4))\r");
    await socketClient.waitFor("s-16");
    const who = await CliProcess.run(["who", "sh", "--control", control]);
    // A UNIX connection's uid is not known to every runtime (no SO_PEERCRED in Node): a uid or "-".
    expect(who.stdout).toMatch(new RegExp(`^s0#1 +socket +rw +(${process.getuid!()}|-) +\\d{4}-`, "m"));
    const listed = JSON.parse((await CliProcess.run(["list", "--json", "--control", control])).stdout);
    expect(listed.consoles[0].clients).toContainEqual(expect.objectContaining({ id: "s0", kind: "listener", open: false, clients: 1 }));
    expect(listed.consoles[0].clients).toContainEqual(expect.objectContaining({ id: "s0#1", kind: "socket", open: true, listener: "s0", peer: expect.stringMatching(/^unix:/) }));
  });

  it("the protocol answers mistakes with one error line each and goes on serving the connection", async () => {
    const { control } = await startRun();
    const client = await ProtocolClient.connect(control);
    client.send("not json\n");
    client.send(`${JSON.stringify({ cmd: "teleport" })}\n`);
    client.send(`${JSON.stringify({ cmd: "who", console: "nope" })}\n`);
    client.send(`${JSON.stringify({ cmd: "attach", console: "sh", mode: "rx" })}\n`);
    client.send(`${JSON.stringify({ cmd: "mode", client: "attach-9", mode: "rw" })}\n`);
    client.send(`${JSON.stringify({ cmd: "list" })}\n`);
    await until(() => client.answers().length === 6, "six answers");
    expect(client.answers().slice(0, 5)).toEqual([
      { error: "control: not a JSON object: 'not json'" },
      { error: "control: unknown command 'teleport' (list, who, attach, mode, break, resize)" },
      { error: "control: no console 'nope'" },
      { error: "control: 'mode' must be 'rw' or 'ro'" },
      { error: "control: no attached client 'attach-9'" },
    ]);
    expect(client.answers()[5]).toEqual({ consoles: [expect.objectContaining({ name: "sh", device: "sh", "device-open": true })] });
    // A line with no end past the limit is refused, and that connection closed.
    client.send("x".repeat(5000));
    await until(() => client.closed, "the connection to be closed");
    expect(client.answers().at(-1)).toEqual({ error: "control: request longer than 4096 bytes" });
  });

  it("each client command has --help, and a mistake on its command line is one line with exit status 2", async () => {
    for (const [command, usage] of [
      ["list", "Usage: chardev-hub list [--json] [--control PATH]\n"],
      ["who", "Usage: chardev-hub who NAME [--control PATH]\n"],
      ["tail", "Usage: chardev-hub tail NAME [--replay BYTES] [--control PATH]\n"],
      ["attach", "Usage: chardev-hub attach NAME [--ro] [--replay BYTES|screen] [--escape CHAR] [--control PATH]\n"],
    ]) {
      const help = await CliProcess.run([command, "--help"]);
      expect(help.code).toBe(0);
      expect(help.stdout.startsWith(usage)).toBe(true);
    }
    expect((await CliProcess.run(["attach", "--help"])).stdout).toContain("  .  detach\n");
    expect(await CliProcess.run(["tail", "sh", "--ro"])).toEqual({ code: 2, stdout: "", stderr: "chardev-hub: tail: unknown option '--ro' (see tail --help)\n" });
    expect(await CliProcess.run(["attach", "sh", "--escape", "^^^"])).toEqual({ code: 2, stdout: "", stderr: "chardev-hub: --escape expects ^X (a Ctrl key) or one ASCII character, not '^^^'\n" });
    expect(await CliProcess.run(["attach", "sh", "--replay", "lots"])).toEqual({ code: 2, stdout: "", stderr: "chardev-hub: attach: --replay expects a byte count (K, M suffixes) or 'screen', not 'lots'\n" });
  });

  it("a client command for a run that is not there says where it looked, with exit status 1", async () => {
    const result = await CliProcess.run(["list", "--control", at("nothing.sock")]);
    expect(result.stderr).toBe(`chardev-hub: cannot reach the control socket ${at("nothing.sock")}: is chardev-hub running here with a control socket? (--control PATH names another)\n`);
    expect(result.code).toBe(1);
    const usage = await CliProcess.run(["attach", "--control", at("nothing.sock")]);
    expect(usage).toEqual({ code: 2, stdout: "", stderr: "chardev-hub: attach: which console? (attach NAME; `list` shows them)\n" });
  });
});

describe("chardev-hub attach", () => {
  it("under tmux: typing reaches the shell, the window size is the device's, and Ctrl-] . detaches with the terminal restored", async () => {
    const { control } = await startRun();
    const server = `chub-control-${process.pid}-${Date.now()}`;
    const tmux = (...args: string[]) => spawnSync("tmux", ["-L", server, ...args], { encoding: "utf8" });
    const runtimeCommand = testRuntime === "deno" ? `${process.execPath} run -A` : process.execPath;
    const after = at("stty-after.txt");
    const paneCommand = `${runtimeCommand} ${CLI} attach sh --control ${control}; echo attach-exit=$?; stty -a > ${after}; sleep 60`;
    try {
      expect(tmux("new-session", "-d", "-x", "120", "-y", "30", paneCommand).status).toBe(0);
      const screen = () => tmux("capture-pane", "-p").stdout ?? "";
      await until(() => screen().includes("[-- sh: attached rw, 0 others --]"), `the attach notice (screen: ${screen()})`);
      // Raw mode while attached: no line editing, no echo by the terminal.
      const paneTty = tmux("display-message", "-p", "#{pane_tty}").stdout.trim();
      expect(spawnSync("stty", ["-a", "-F", paneTty], { encoding: "utf8" }).stdout).toMatch(/(^|\s)-icanon(\s|$)[\s\S]*(^|\s)-echo(\s|$)/m);
      tmux("send-keys", "-l", "echo hub-$((6*7)); stty size");
      tmux("send-keys", "Enter");
      await until(() => /^hub-42\s*$/m.test(screen()) && /^30 120\s*$/m.test(screen()), `the shell's answer and the size 30 120 (screen: ${screen()})`);
      // SIGWINCH: the new size reaches the device.
      expect(tmux("resize-window", "-x", "100", "-y", "25").status).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 300));
      tmux("send-keys", "-l", "clear; stty size");
      tmux("send-keys", "Enter");
      await until(() => /^25 100\s*$/m.test(screen()), `the size 25 100 (screen: ${screen()})`);
      tmux("send-keys", "C-]");
      tmux("send-keys", "-l", ".");
      await until(() => readText(after).includes("speed"), "stty -a after the detach");
      expect(screen()).toContain("[-- sh: detached --]");
      expect(screen()).toContain("attach-exit=0");
      const restored = readText(after);
      expect(restored).toMatch(/(^|\s)icanon(\s|$)/m);
      expect(restored).toMatch(/(^|\s)echo(\s|$)/m);
      expect(restored).not.toMatch(/(^|\s)-icanon(\s|$)/m);
    } finally {
      tmux("kill-server");
    }
  });

  for (const [way, status] of [["the run ends", 1], ["SIGTERM reaches the client", 143]] as const) {
    it(`under tmux: when ${way}, the client leaves with status ${status} and the terminal is restored`, async () => {
      const { cli, control } = await startRun();
      const server = `chub-control-${process.pid}-${Date.now()}`;
      const tmux = (...args: string[]) => spawnSync("tmux", ["-L", server, ...args], { encoding: "utf8" });
      const runtimeCommand = testRuntime === "deno" ? `${process.execPath} run -A` : process.execPath;
      const after = at("stty-after.txt");
      const paneCommand = `${runtimeCommand} ${CLI} attach sh --control ${control}; echo attach-exit=$?; stty -a > ${after}; sleep 60`;
      try {
        expect(tmux("new-session", "-d", "-x", "100", "-y", "30", paneCommand).status).toBe(0);
        const screen = () => tmux("capture-pane", "-p").stdout ?? "";
        await until(() => screen().includes("[-- sh: attached rw, 0 others --]"), `the attach notice (screen: ${screen()})`);
        const paneTty = tmux("display-message", "-p", "#{pane_tty}").stdout.trim();
        expect(spawnSync("stty", ["-a", "-F", paneTty], { encoding: "utf8" }).stdout).toMatch(/(^|\s)-icanon(\s|$)/m);
        if (way === "the run ends") {
          await cli.stop("SIGTERM");
        } else {
          // The pane's shell runs the client as its one child.
          const shellPid = tmux("display-message", "-p", "#{pane_pid}").stdout.trim();
          const children = fs.readFileSync(`/proc/${shellPid}/task/${shellPid}/children`, "utf8").trim().split(/\s+/);
          expect(children).toHaveLength(1);
          process.kill(Number(children[0]), "SIGTERM");
        }
        await until(() => readText(after).includes("speed"), `stty -a after the client left (screen: ${screen()})`);
        expect(screen()).toContain(`attach-exit=${status}`);
        expect(readText(after)).toMatch(/(^|\s)icanon(\s|$)/m);
        expect(readText(after)).toMatch(/(^|\s)echo(\s|$)/m);
      } finally {
        tmux("kill-server");
      }
    });
  }

  it("--ro can't type: its keys never reach the device, while it still sees the output", async () => {
    const { control } = await startRun();
    const viewer = attach(control, "--ro");
    await viewer.waitForStdout("[-- sh: attached ro, 0 others --]");
    viewer.send("echo ro-$((5*5))\r");
    viewer.send("\x1db"); // a BREAK from a viewer is refused too
    await viewer.waitForStderr("control: client 'attach-1' is read-only: a BREAK from it would be discarded");
    const typist = attach(control);
    await typist.waitForStdout("[-- sh: attached rw, 1 other --]");
    await viewer.waitForStdout("[-- uid ");
    expect(viewer.stdout).toContain(`[-- uid ${process.getuid!()} attached rw --]`);
    typist.send("echo rw-$((7*7))\r");
    await expectAnswer(() => viewer.stdout, "rw-49");
    await expectAnswer(() => typist.stdout, "rw-49");
    // Had the viewer's line reached the shell, its echo and answer would have come first.
    expect(viewer.stdout).not.toContain("ro-");
    expect(typist.stdout).not.toContain("ro-");
    const listed = JSON.parse((await CliProcess.run(["list", "--json", "--control", control])).stdout);
    expect(listed.consoles[0].clients).toContainEqual(expect.objectContaining({ id: "attach-1", mode: "ro", "bytes-in": "echo ro-$((5*5))\r".length }));
  });

  it("f takes the floor on an input=exclusive hub, and s gives it up", async () => {
    const { control } = await startRun(",input=exclusive,input-idle-ms=600000");
    const first = attach(control);
    await first.waitForStdout("[-- sh: attached rw, 0 others --]");
    first.send("echo a-$((1+1))\r");
    await expectAnswer(() => first.stdout, "a-2");
    const second = attach(control);
    await second.waitForStdout("[-- sh: attached rw, 1 other --]");
    // The first holds the floor for ten minutes of idleness: the second's line goes nowhere.
    second.send("echo b-$((2+2))\r");
    second.send("\x1df");
    await second.waitForStdout("[-- sh: now rw, with the floor --]");
    await first.waitForStdout(`[-- uid ${process.getuid!()} is now rw --]`);
    second.send("echo c-$((3+3))\r");
    await expectAnswer(() => first.stdout, "c-6");
    await expectAnswer(() => second.stdout, "c-6");
    expect(first.stdout + second.stdout).not.toContain("b-");
    // Now the first is the one whose keys go nowhere.
    first.send("echo d-$((4+4))\r");
    second.send("echo e-$((5+5))\r");
    await expectAnswer(() => first.stdout, "e-10");
    expect(first.stdout).not.toContain("d-");
    // `s`: the second becomes read-only and lets go of the floor; the first types again.
    second.send("\x1ds");
    await second.waitForStdout("[-- sh: now ro --]");
    first.send("echo g-$((6+6))\r");
    await expectAnswer(() => second.stdout, "g-12");
  });

  it("a detaching client is announced to the others, and an attach to a console that does not exist is refused", async () => {
    const { control } = await startRun();
    const stay = attach(control);
    await stay.waitForStdout("[-- sh: attached rw, 0 others --]");
    const leave = attach(control, "--ro");
    await leave.waitForStdout("[-- sh: attached ro, 1 other --]");
    leave.send("\x1d.");
    expect((await leave.exit).code).toBe(0);
    expect(leave.stderr).toContain("[-- sh: detached --]");
    await stay.waitForStdout(`[-- uid ${process.getuid!()} detached --]`);
    const missing = await CliProcess.run(["attach", "nope", "--control", control]);
    expect(missing).toEqual({ code: 1, stdout: "", stderr: "chardev-hub: control: no console 'nope'\n" });
  });

  it("--replay BYTES starts with recent output of the ring", async () => {
    const { control } = await startRun();
    const typist = attach(control);
    typist.send("echo early-$((8*8))\r");
    await expectAnswer(() => typist.stdout, "early-64");
    const late = attach(control, "--ro", "--replay", "4K");
    await late.waitForStdout("early-64");
    const none = attach(control, "--ro", "--replay", "0");
    await none.waitForStdout("[-- sh: attached ro");
    typist.send("echo later-$((9*9))\r");
    await expectAnswer(() => none.stdout, "later-81");
    expect(none.stdout).not.toContain("early-64");
  });
});

describe("chardev-hub attach --replay screen", () => {
  it("a late client gets the screen as it stands, not the output a clear wiped", async () => {
    const { control } = await startRun();
    const typist = attach(control);
    typist.send("echo before-$((2*2))\r");
    await expectAnswer(() => typist.stdout, "before-4");
    typist.send("printf '\\033[2J\\033[H'; echo after-$((3*3))\r");
    await expectAnswer(() => typist.stdout, "after-9");
    const late = attach(control, "--ro", "--replay", "screen");
    await late.waitForStdout("after-9");
    expect(late.stdout).not.toContain("before-4");
    // The same history as bytes still holds the wiped line: the screen is what made the difference.
    const bytes = attach(control, "--ro", "--replay", "64K");
    await bytes.waitForStdout("after-9");
    expect(bytes.stdout).toContain("before-4");
  });
});

describe("chardev-hub attach's commands", () => {
  it("? lists the commands, w shows who is attached, r shows the last lines again, and the prefix twice sends it", async () => {
    const { control } = await startRun();
    const client = attach(control);
    await client.waitForStdout("[-- sh: attached rw, 0 others --]");
    client.send("\x1d?");
    await client.waitForStderr("[-- sh: commands after Ctrl-] --]");
    expect(client.stderr).toContain("  f  force read-write (take the floor under input=exclusive)\n");
    client.send("\x1dw");
    await client.waitForStderr("sh: 1 attached\n");
    expect(client.stderr).toMatch(new RegExp(`^attach-1 +attach +rw +${process.getuid!()} `, "m"));
    client.send("echo again-$((3*4))\r");
    await expectAnswer(() => client.stdout, "again-12");
    const before = client.stdout.split("again-12").length;
    client.send("\x1dr");
    await client.waitForStderr("[-- sh: the last 20 lines --]");
    await until(() => client.stdout.split("again-12").length > before, "the replayed line");
    // Ctrl-] Ctrl-] is one Ctrl-] for the shell: sh's line editing shows it as ^] and the line runs.
    client.send("echo x\x1d\x1dy\r");
    await until(() => /x\x1dy|x\^\]y/.test(client.stdout), `the escape byte passed through (${JSON.stringify(client.stdout.slice(-200))})`);
    client.send("\x1dq");
    await client.waitForStderr("[-- unknown command 'q': Ctrl-] ? lists them --]");
  });

  it("a client of a console that a -readconfig re-read removes sees its connection end, with status 1", async () => {
    const file = at("consoles.ini");
    const control = at("control.sock");
    const section = (name: string) => `[chardev "${name}-sh"]\n  backend = "spawn"\n  cmd = "sh"\n\n[console "${name}"]\n  device = "${name}-sh"\n\n`;
    fs.writeFileSync(file, section("stays") + section("goes"));
    const cli = new CliProcess(["-readconfig", file, "-control", control]);
    await untilListening(control, cli, "the control socket to listen");
    const leaving = new CliProcess(["attach", "goes", "--control", control]);
    await leaving.waitForStdout("[-- goes: attached rw, 0 others --]");
    const staying = new CliProcess(["attach", "stays", "--control", control]);
    await staying.waitForStdout("[-- stays: attached rw, 0 others --]");
    fs.writeFileSync(file, section("stays"));
    process.kill(cli.child.pid!, "SIGHUP");
    await until(() => leaving.ended !== null, "the removed console's client to end");
    expect(leaving.ended).toEqual({ code: 1, signal: null });
    expect(leaving.stderr).toContain("[-- goes: the console went away");
    staying.send("echo still-$((1+2))\r");
    await expectAnswer(() => staying.stdout, "still-3");
    expect(staying.ended).toBeNull();
  });
});

describe("chardev-hub tail", () => {
  /** Waits until `who` shows `count` attached clients (tail says nothing when it is in). */
  async function attachedClients(control: string, count: number): Promise<void> {
    for (let tries = 0; ; tries++) {
      const who = await CliProcess.run(["who", "sh", "--control", control]);
      if ((who.stdout.match(/^attach-\d+ /gm) ?? []).length === count) return;
      if (tries > 200) throw new Error(`gave up waiting for ${count} attached clients: ${who.stdout}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("streams the console's output to stdout without notices, and ends with status 0 when the run ends", async () => {
    const { cli, control } = await startRun();
    const tail = new CliProcess(["tail", "sh", "--control", control]);
    await attachedClients(control, 1);
    const typist = attach(control);
    await typist.waitForStdout("[-- sh: attached rw, 1 other --]");
    typist.send("echo tail-$((2*3))\r");
    await tail.waitForStdout("tail-6");
    expect(tail.stdout).not.toContain("[--");
    await cli.stop("SIGINT");
    expect(await tail.exit).toEqual({ code: 0, signal: null });
  });

  it("ends with status 0 on SIGINT, and is gone from who", async () => {
    const { control } = await startRun();
    const tail = new CliProcess(["tail", "sh", "--control", control]);
    await attachedClients(control, 1);
    expect(await tail.stop("SIGINT")).toEqual({ code: 0, signal: null });
    await attachedClients(control, 0);
  });
});

describe("the control socket's access", () => {
  it("is mode 0600, and another user cannot connect to it", async () => {
    const { control } = await startRun();
    const stat = fs.statSync(control);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(stat.uid).toBe(process.getuid!());
    const intruder = ensureIntruderAccount();
    fs.chmodSync(dir, 0o755); // only the socket's own mode stands in the way
    const [command, ...args] = asIntruder(intruder, ["socat", "-", `UNIX-CONNECT:${control}`]);
    const result = spawnSync(command, args, { input: `${JSON.stringify({ cmd: "list" })}\n`, encoding: "utf8", timeout: 10_000 });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("Permission denied");
    expect(result.stdout).toBe("");
  });
});

describe("the default setup's control socket", () => {
  it("prints `chardev-hub attach shell`, and `chardev-hub list` in its directory finds console shell", async () => {
    const cli = new CliProcess([], { cwd: dir });
    await cli.waitForStderr("chardev-hub attach shell");
    const listed = await CliProcess.run(["list"], { cwd: dir });
    expect(listed.stderr).toBe("");
    expect(listed.stdout).toMatch(/^shell: device 'shell' open/m);
    expect((fs.statSync(at("run/chardev-hub.sock")).mode & 0o777)).toBe(0o600);
    expect(await cli.stop("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(at("run/chardev-hub.sock"))).toBe(false);
  });
});
