// Named consoles end to end (issue 13 items 2 and 5): the real dist/cli.js with several
// `-console`s in one process, `-readconfig` and its re-reading on SIGHUP, and the sharing
// defaults (a 1 MiB ring, `drop` clients, the log on `block`) seen through QMP `query-hub`.
// Devices are real programs (sh on a pty) or a UNIX socket this test serves as a VM would;
// clients are UNIX socket clients. Runs on Node, Deno and Bun alike.

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { CliProcess, readText, SocketClient, until } from "./cli/_cli.ts";

let dir: string;
let clients: SocketClient[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-consoles-"));
  clients = [];
});
afterEach(async () => {
  for (const client of clients) client.close();
  await CliProcess.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

const at = (name: string) => path.join(dir, name);

async function connect(name: string): Promise<SocketClient> {
  const client = await SocketClient.connect(at(name));
  clients.push(client);
  return client;
}

/** `-chardev` arguments for UNIX socket servers named after their ids. */
function socketServers(...ids: string[]): string[] {
  return ids.flatMap((id) => ["-chardev", `socket,id=${id},path=${at(`${id}.sock`)},server=on,wait=off`]);
}

/** A QMP client past the greeting and capabilities negotiation. */
async function qmpClient(name: string): Promise<SocketClient> {
  const qmp = await connect(name);
  await qmp.waitFor('"QMP"');
  qmp.send('{"execute": "qmp_capabilities"}\n');
  await qmp.waitFor('"return"');
  return qmp;
}

/** Sends one command and returns its answer's `return` (the client's answers so far are counted, so each call gets its own). */
async function qmpExecute(qmp: SocketClient, command: string, args: Record<string, unknown>): Promise<any> {
  const answered = qmp.text.split("\r\n").filter((line) => line.includes('"return"') || line.includes('"error"')).length;
  qmp.send(`${JSON.stringify({ execute: command, arguments: args })}\n`);
  const answers = () => qmp.text.split("\r\n").filter((line) => line.includes('"return"') || line.includes('"error"'));
  await until(() => answers().length > answered, `an answer to ${command}`);
  const answer = JSON.parse(answers()[answered]);
  if (answer.error) throw new Error(`${command}: ${answer.error.desc}`);
  return answer.return;
}

/** Numbered lines, so a missing or repeated byte shows. */
const lines = (from: number, count: number) => Array.from({ length: count }, (_, i) => `line ${from + i} of the kept console\r\n`).join("");

/** The VM's end of a device socket chardev: a client connection to the command's server socket. */
async function connectVm(socketPath: string): Promise<net.Socket> {
  const client = await SocketClient.connect(socketPath);
  clients.push(client);
  return client.socket;
}

describe("named consoles (-console)", () => {
  it("two consoles in one process each bridge their own device to their own socket and log", async () => {
    const cli = new CliProcess([
      "-chardev", "spawn,id=sh1,cmd=sh",
      "-chardev", "spawn,id=sh2,cmd=sh",
      ...socketServers("s1", "s2"),
      "-console", `one,device=sh1,chardevs.0=s1,log=${at("one.log")}`,
      "-console", "two,device=sh2,chardevs.0=s2",
      "-qmp", `unix:${at("qmp.sock")},server=on,wait=off`,
    ]);
    await cli.waitForStderr("chardev-hub: console 'two': device 'sh2', hub 'two' with s2\n");
    expect(cli.stderr).toContain("chardev-hub: console 'one': device 'sh1', hub 'one' with s1, one-log\n");
    const one = await connect("s1.sock");
    const two = await connect("s2.sock");
    // Arithmetic, so the answer is the shell's output and not the terminal echoing the command.
    one.send("echo one-$((40+1))\r");
    two.send("echo two-$((40+2))\r");
    await one.waitFor("one-41\r\n");
    await two.waitFor("two-42\r\n");
    expect(one.text).not.toContain("two-");
    expect(two.text).not.toContain("one-");
    await until(() => readText(at("one.log")).includes("one-41\r\n"), "console one's log to have the answer");
    expect(readText(at("one.log"))).not.toContain("two-");

    // The sharing defaults: a 1 MiB ring, the socket client on `drop`, the log on `block`.
    const qmp = await qmpClient("qmp.sock");
    const hubOne = await qmpExecute(qmp, "query-hub", { id: "one" });
    expect(hubOne.ring).toBe(1048576);
    expect(hubOne.backends.map((backend: any) => [backend.id, backend.policy])).toEqual([["s1", "drop"], ["one-log", "block"]]);
    const hubTwo = await qmpExecute(qmp, "query-hub", { id: "two" });
    expect(hubTwo.backends.map((backend: any) => [backend.id, backend.policy])).toEqual([["s2", "drop"]]);
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });

  it("a console whose device ends for good is closed and the process goes on serving the other", async () => {
    const cli = new CliProcess([
      "-chardev", "spawn,id=brief,cmd=sh,args.0=-c,args.1=echo brief-done",
      "-chardev", "spawn,id=sh2,cmd=sh",
      ...socketServers("s1", "s2"),
      "-console", "short,device=brief,chardevs.0=s1",
      "-console", "long,device=sh2,chardevs.0=s2",
    ]);
    await cli.waitForStderr(/chardev-hub: console 'short': 'sh' exited with status 0; its console stays, closed \(1 open\)/);
    // The closed console keeps its history for a late client (the replay), with the marker.
    const late = await connect("s1.sock");
    await late.waitFor("brief-done");
    await late.waitFor("[-- device closed --]");
    const two = await connect("s2.sock");
    two.send("echo still-$((1+1))\r");
    await two.waitFor("still-2\r\n");
    expect(cli.ended).toBeNull();
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });

  it("a socket device that closes for good closes its console: stderr, QMP and the stream say so with the console's name, and the other console goes on", async () => {
    // The VM's end of its serial socket: the command connects to it as a client (no reconnect-ms).
    const vmConnections: net.Socket[] = [];
    const vmServer = net.createServer((connection) => {
      vmConnections.push(connection);
      connection.on("error", () => {});
    });
    await new Promise<void>((resolve) => vmServer.listen(at("vm.sock"), resolve));
    try {
      const cli = new CliProcess([
        "-chardev", `socket,id=vm,path=${at("vm.sock")}`,
        "-chardev", "spawn,id=sh2,cmd=sh",
        ...socketServers("s1", "s2"),
        "-console", `vm1,device=vm,chardevs.0=s1,log=${at("vm1.log")}`,
        "-console", "shell,device=sh2,chardevs.0=s2",
        "-qmp", `unix:${at("qmp.sock")},server=on,wait=off`,
      ]);
      await cli.waitForStderr("chardev-hub: console 'shell':");
      const qmp = await qmpClient("qmp.sock");
      await qmpExecute(qmp, "hub-events", { enable: true });
      const viewer = await connect("s1.sock");
      await until(() => vmConnections.length === 1, "the command to connect to the VM");
      vmConnections[0].end("last words of the VM\r\n");
      await cli.waitForStderr("chardev-hub: console 'vm1': device 'vm' closed; its console stays, closed (1 open)\n");
      await viewer.waitFor("last words of the VM\r\n\r\n[-- device closed --]\r\n");
      await until(() => readText(at("vm1.log")) === "last words of the VM\r\n\r\n[-- device closed --]\r\n", "the log to end with the marker");
      await qmp.waitFor("CHARDEV_DEVICE_CLOSED");
      const event = JSON.parse(qmp.text.split("\r\n").find((line) => line.includes("CHARDEV_DEVICE_CLOSED"))!);
      expect(event.data).toEqual({ id: "vm", "comes-back": false, console: "vm1" });
      const shell = await connect("s2.sock");
      shell.send("echo alive-$((9+9))\r");
      await shell.waitFor("alive-18\r\n");
      expect(cli.ended).toBeNull();
      expect((await cli.stop("SIGTERM")).code).toBe(0);
    } finally {
      for (const connection of vmConnections) connection.destroy();
      vmServer.close();
    }
  });

  it("without -readconfig the run ends with status 3 once every console's device is gone", async () => {
    const { code, stderr } = await CliProcess.run(["-chardev", "spawn,id=brief,cmd=sh,args.0=-c,args.1=echo bye", "-console", "only,device=brief"], { cwd: dir });
    expect(stderr).toContain("chardev-hub: console 'only': 'sh' exited with status 0; its console stays, closed (0 open)\n");
    expect(stderr).toContain("chardev-hub: every console's device is gone\n");
    expect(code).toBe(3);
  });

  it("a late client of a named console gets the screen as it stands, not the output a clear wiped", async () => {
    const cli = new CliProcess(["-chardev", "spawn,id=sh,cmd=sh", ...socketServers("s1"), "-console", "one,device=sh,chardevs.0=s1"]);
    await cli.waitForStderr("chardev-hub: console 'one': device 'sh', hub 'one' with s1\n");
    const first = await connect("s1.sock");
    first.send("echo before-$((1+1)); printf '\\033[2J\\033[H'; echo after-$((2+2))\r");
    await first.waitFor("after-4\r\n");
    expect(first.text).toContain("before-2\r\n");
    // A socket chardev serves one client at a time (QEMU's rule): the late one comes after.
    first.close();
    const late = await connect("s1.sock");
    await late.waitFor("after-4");
    // A byte replay (the old default) would have "before-2" too: the screen has only what is on it.
    expect(late.text).not.toContain("before-2");
    late.send("echo later-$((3+3))\r");
    await late.waitFor("later-6\r\n");
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });

  it("under --qemu-compat a console's hub is QEMU's: no ring and no policies added", async () => {
    const cli = new CliProcess([
      "--qemu-compat",
      "-chardev", "spawn,id=sh,cmd=sh",
      ...socketServers("s1"),
      "-console", `one,device=sh,chardevs.0=s1,log=${at("one.log")}`,
      "-qmp", `unix:${at("qmp.sock")},server=on,wait=off`,
    ]);
    await cli.waitForStderr("chardev-hub: console 'one': device 'sh', hub 'one' with s1, one-log\n");
    const qmp = await qmpClient("qmp.sock");
    const hub = await qmpExecute(qmp, "query-hub", { id: "one" });
    expect(hub.ring).toBe(0);
    expect(hub.backends.map((backend: any) => [backend.id, backend.policy])).toEqual([["s1", "block"], ["one-log", "block"]]);
    const client = await connect("s1.sock");
    client.send("echo compat-$((4+4))\r");
    await client.waitFor("compat-8\r\n");
    await until(() => readText(at("one.log")).includes("compat-8"), "the log to have the answer");
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });

  const mistakes: [string, string[], number, string][] = [
    ["an unknown device", ["-chardev", "spawn,id=sh,cmd=sh", "-console", "c,device=nope"], 1, "chardev-hub: console 'c': device chardev 'nope' not found"],
    ["a name another chardev has", ["-chardev", "spawn,id=sh,cmd=sh", "-chardev", "ringbuf,id=r", "-console", "r,device=sh"], 1, "chardev-hub: console 'r': Chardev with id 'r' already exists"],
    ["a hub key with a bad value", ["-chardev", "spawn,id=sh,cmd=sh", ...["-chardev", "ringbuf,id=r"], "-console", "c,device=sh,chardevs.0=r,policy.0=bogus"], 1, "chardev-hub: console 'c': hub: 'policy of r' must be block, drop, evict, not 'bogus'"],
    ["a hub key the hub does not know", ["-chardev", "spawn,id=sh,cmd=sh", "-console", "c,device=sh,colour=blue"], 1, "chardev-hub: console 'c': Invalid parameter 'colour'"],
    ["no device", ["-chardev", "spawn,id=sh,cmd=sh", "-console", "c,ring=1M"], 2, "chardev-hub: console 'c': no 'device=' naming the chardev that plays the device"],
    ["a -frontend too", ["-chardev", "spawn,id=sh,cmd=sh", "-chardev", "hub,id=h", "-frontend", "sh,chardev=h", "-console", "c,device=sh"], 2, "chardev-hub: -console and -readconfig make a hub per console: give no -frontend or -serial with them"],
  ];
  for (const [what, args, status, message] of mistakes) {
    it(`-console with ${what} is refused with a clear message (exit ${status})`, async () => {
      const { code, stderr } = await CliProcess.run(args, { cwd: dir });
      expect(stderr).toContain(message);
      expect(code).toBe(status);
    });
  }
});

describe("-readconfig", () => {
  /**
   * A config in QEMU's -readconfig syntax: the device VM socket and its client, `keep` always;
   * `old` or `new` besides, whose client sockets leave `wait` out (a config's servers never wait
   * for a first client, or the command would not come up, nor a reload finish, before one).
   */
  function config(extra: "old" | "new" | "both"): string {
    const kept = `# consoles for the test
[chardev "vm"]
  backend = "socket"
  path = "${at("vm.sock")}"
  server = "on"
  wait = "off"

[chardev "keep-client"]
  backend = "socket"
  path = "${at("keep.sock")}"
  server = "on"
  wait = "off"

[console "keep"]
  device = "vm"
  chardevs.0 = "keep-client"
  log = "${at("keep.log")}"
  # No replay: the client's bytes are then exactly the stream (a screen replay starts with a repaint).
  replay = "0"
`;
    const console = (name: string) => `
[chardev "${name}-sh"]
  backend = "spawn"
  cmd = "sh"

[chardev "${name}-client"]
  backend = "socket"
  path = "${at(`${name}.sock`)}"
  server = "on"

[console "${name}"]
  device = "${name}-sh"
  chardevs.0 = "${name}-client"
`;
    return kept + (extra === "both" ? console("old") + console("new") : console(extra));
  }

  it("SIGHUP adds a console and removes another while a third keeps streaming with no byte lost or repeated", async () => {
    const file = at("consoles.ini");
    fs.writeFileSync(file, config("old"));
    const cli = new CliProcess(["-readconfig", file]);
    await cli.waitForStderr("chardev-hub: console 'old': device 'old-sh', hub 'old' with old-client\n");
    const keepClient = await connect("keep.sock");
    const vm = await connectVm(at("vm.sock"));
    let vmClosed = false;
    vm.on("close", () => (vmClosed = true));
    const oldClient = await connect("old.sock");
    oldClient.send("echo old-$((2+3))\r");
    await oldClient.waitFor("old-5\r\n");

    // The VM writes numbered lines in batches, each once the client has the one before: a
    // writer that waits, so the stream runs through the reload whatever the machine's speed.
    let sent = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        vm.write(lines(sent, 20));
        sent += 20;
        const expected = lines(0, sent).length;
        await until(() => keepClient.receivedBytes >= expected || keepClient.closed, "the kept console's client to get the batch");
        if (keepClient.closed) return;
      }
    })();
    await until(() => sent >= 200, "a first part of the stream");

    fs.writeFileSync(file, config("new"));
    process.kill(cli.child.pid!, "SIGHUP");
    await cli.waitForStderr(`chardev-hub: re-read ${file}: console 'new' added, console 'old' removed, 1 unchanged\n`);
    await cli.waitForStderr("chardev-hub: console 'new': device 'new-sh', hub 'new' with new-client\n");
    // The removed console's client is let go, and its socket is gone with its chardev.
    await until(() => oldClient.closed, "the removed console's client to be closed");
    expect(fs.existsSync(at("old.sock"))).toBe(false);
    const newClient = await connect("new.sock");
    newClient.send("echo new-$((3+4))\r");
    await newClient.waitFor("new-7\r\n");
    const atReload = sent;
    await until(() => sent >= atReload + 200, "more of the stream after the reload");
    stop = true;
    await writer;

    expect(keepClient.closed).toBe(false);
    expect(vmClosed).toBe(false);
    expect(keepClient.text).toBe(lines(0, sent));
    await until(() => readText(at("keep.log")).length >= lines(0, sent).length, "the kept console's log to have the stream");
    expect(readText(at("keep.log"))).toBe(lines(0, sent));
    // Input still reaches the kept console's device.
    const typed: Buffer[] = [];
    vm.on("data", (chunk: Buffer) => typed.push(chunk));
    keepClient.send("typed after the reload\r");
    await until(() => Buffer.concat(typed).toString().includes("typed after the reload"), "the VM to get the input");
    expect(cli.ended).toBeNull();
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });

  it("SIGHUP makes a console whose section changed again, with its new keys, keeping the chardevs that did not change", async () => {
    const file = at("consoles.ini");
    fs.writeFileSync(file, config("new"));
    const cli = new CliProcess(["-readconfig", file, "-qmp", `unix:${at("qmp.sock")},server=on,wait=off`]);
    await cli.waitForStderr("chardev-hub: console 'new': device 'new-sh', hub 'new' with new-client\n");
    const qmp = await qmpClient("qmp.sock");
    expect((await qmpExecute(qmp, "query-hub", { id: "new" })).backends[0].policy).toBe("drop");
    const before = await connect("new.sock");
    before.send("echo first-$((1+2))\r");
    await before.waitFor("first-3\r\n");

    fs.writeFileSync(file, config("new").replace('  chardevs.0 = "new-client"\n', '  chardevs.0 = "new-client"\n  policy.0 = "block"\n'));
    process.kill(cli.child.pid!, "SIGHUP");
    await cli.waitForStderr(`chardev-hub: re-read ${file}: console 'new' made again, 1 unchanged\n`);
    expect((await qmpExecute(qmp, "query-hub", { id: "new" })).backends[0].policy).toBe("block");
    // Its chardevs did not change, so they stay: the same client and shell, behind the new hub.
    before.send("echo second-$((2+2))\r");
    await before.waitFor("second-4\r\n");
    expect(before.closed).toBe(false);
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });

  it("a file with a mistake on SIGHUP is reported with its line and changes nothing", async () => {
    const file = at("consoles.ini");
    fs.writeFileSync(file, config("both"));
    const cli = new CliProcess(["-readconfig", file]);
    await cli.waitForStderr("chardev-hub: console 'new': device 'new-sh'");
    // Without `old`, and with a line QEMU's parser refuses: none of it may happen.
    fs.writeFileSync(file, `${config("new")}\n[console "more"]\n  device = new-sh\n`);
    const badLine = config("new").split("\n").length + 2;
    process.kill(cli.child.pid!, "SIGHUP");
    await cli.waitForStderr(`chardev-hub: -readconfig ${file}: not re-read, nothing changed: ${file}:${badLine}: parse error\n`);
    for (const name of ["old", "new"]) {
      const client = await connect(`${name}.sock`);
      client.send(`echo ${name}-$((5+5))\r`);
      await client.waitFor(`${name}-10\r\n`);
    }
    expect(cli.stderr).not.toContain("chardev-hub: re-read");
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });

  const badFiles: [string, string, string][] = [
    ["a key before any section", `ring = "1M"\n`, ":1: no group defined"],
    ["a group chardev-hub does not read", `# drives are QEMU's\n[drive "d0"]\n  file = "disk.img"\n`, `:2: There is no option group 'drive'`],
    ["a value without its quotes", `[chardev "c"]\n  backend = "socket"\n  path = /tmp/x.sock\n`, ":3: parse error"],
    ["a chardev with no backend", `\n[chardev "c"]\n  path = "x.sock"\n`, `:2: chardev: "c" missing backend`],
    ["the same chardev twice", `[chardev "c"]\n  backend = "null"\n[chardev "c"]\n  backend = "null"\n`, ":3: Duplicate ID 'c' for chardev"],
    ["a chardev key its kind does not know", `[chardev "c"]\n  backend = "null"\n  colour = "blue"\n`, ":1: Invalid parameter 'colour'"],
    ["a console with no device", `[console "c"]\n  ring = "1M"\n`, ":1: console 'c': no 'device=' naming the chardev that plays the device"],
    ["a console whose device is nowhere", `[chardev "c"]\n  backend = "null"\n\n[console "con"]\n  device = "nope"\n`, ":4: console 'con': device chardev 'nope' not found"],
  ];
  for (const [what, text, message] of badFiles) {
    it(`a config file with ${what} is refused naming file and line`, async () => {
      const file = at("bad.ini");
      fs.writeFileSync(file, text);
      const { code, stderr } = await CliProcess.run(["-readconfig", file], { cwd: dir });
      expect(stderr).toContain(`chardev-hub: ${file}${message}`);
      expect(code).toBe(1);
    });
  }

  it("a config file that cannot be read is refused with QEMU's text", async () => {
    const { code, stderr } = await CliProcess.run(["-readconfig", at("missing.ini")], { cwd: dir });
    expect(stderr).toContain(`chardev-hub: Could not open '${at("missing.ini")}': No such file or directory`);
    expect(code).toBe(1);
  });
});

describe("sharing defaults of the default setup", () => {
  it("the default setup's hub has a 1 MiB ring, its clients on drop with the screen replayed and its log on block", async () => {
    const cli = new CliProcess(["--default", "-qmp", `unix:${at("qmp.sock")},server=on,wait=off`], { cwd: dir });
    await cli.waitForStderr("run/console.log");
    const qmp = await qmpClient("qmp.sock");
    const hub = await qmpExecute(qmp, "query-hub", { id: "hub" });
    expect(hub.ring).toBe(1048576);
    const policies = Object.fromEntries(hub.backends.map((backend: any) => [backend.id, backend.policy]));
    expect(policies).toEqual({ socket: "drop", pty: "drop", web: "drop", log: "block" });
    // A late client gets the screen as it stands (the replay), so it is not a blank screen.
    const first = await SocketClient.connect(path.join(dir, "run", "hub.sock"));
    clients.push(first);
    first.send("echo replayed-$((6*7))\r");
    await first.waitFor("replayed-42\r\n");
    // A socket chardev serves one client at a time (QEMU's rule): the late one comes after.
    first.close();
    const late = await SocketClient.connect(path.join(dir, "run", "hub.sock"));
    clients.push(late);
    // The screen as it stands (a repaint: its lines may be joined by cursor moves, not CR LF).
    await late.waitFor("replayed-42");
    expect((await cli.stop("SIGTERM")).code).toBe(0);
  });
});
