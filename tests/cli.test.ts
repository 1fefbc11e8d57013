// The `chardev-hub` command end to end: the real dist/cli.js in a child process, real programs
// as devices (sh on a pty) and as clients (UNIX sockets, tio in tmux, a QMP client), real files.
// Needs socat-free tools only: sh, stty, seq, head (coreutils), tio and tmux for the pty client.

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry } from "../host-ts/mod.ts";
import { CliProcess, readText, ROOT, SocketClient, until } from "./cli/_cli.ts";

let dir: string;
let clients: SocketClient[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-cli-test-"));
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

/**
 * The issue's setup: a shell (or `device`, id `sh`) behind a hub with two socket clients and a
 * log, plus `more` backends (`-chardev` specs whose ids follow `id=`).
 */
function shellBehindHub(device = "spawn,id=sh,cmd=sh", more: string[] = []): string[] {
  const moreIds = more.map((spec) => /(?:^|,)id=([^,]+)/.exec(spec)![1]);
  const backends = ["s0", "s1", "log", ...moreIds].map((id, index) => `chardevs.${index}=${id}`).join(",");
  return [
    "-chardev", device,
    ...socketServers("s0", "s1"),
    "-chardev", `file,id=log,path=${at("console.log")}`,
    ...more.flatMap((spec) => ["-chardev", spec]),
    "-chardev", `hub,id=hub0,${backends}`,
    "-frontend", "sh,chardev=hub0",
  ];
}

describe("chardev-hub --help and --version", () => {
  it("--help documents the options and every chardev kind the registry knows, and exits 0", async () => {
    const { code, stdout, stderr } = await CliProcess.run(["--help"]);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    for (const option of ["-chardev SPEC", "-frontend DEVICE_ID,chardev=HUB_ID", "-qmp ADDRESS", "--qemu-compat", "--default", "--version"]) {
      expect(stdout).toContain(option);
    }
    const reg = await ChardevRegistry.create();
    for (const kind of reg.registeredKinds()) expect(stdout, `--help names ${kind}`).toMatch(new RegExp(`(^  ${kind} |\\(alias ${kind}\\))`, "m"));
    await reg.close();
    expect(stdout).toContain("socat - UNIX-CONNECT:run/hub.sock");
    expect(stdout).toContain("Examples:");
  });

  it("--version prints the package version and exits 0", async () => {
    const { code, stdout } = await CliProcess.run(["--version"]);
    const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^chardev-hub ${version.replaceAll(".", "\\.")} `));
  });
});

describe("chardev-hub command-line mistakes", () => {
  const mistakes: [string, string[], string][] = [
    ["an unknown option", ["-chardevv", "null,id=n"], "chardev-hub: unknown option '-chardevv' (see --help)"],
    ["an option without its argument", ["-chardev"], "chardev-hub: option '-chardev' needs an argument"],
    ["chardevs but no -frontend", ["-chardev", "null,id=n"], "chardev-hub: missing -frontend DEVICE_ID,chardev=HUB_ID: which chardev plays the device, and which hub it talks to"],
    ["a -frontend without chardev=", ["-chardev", "null,id=n", "-frontend", "n"], "chardev-hub: -frontend: no 'chardev=' naming the hub (-frontend expects DEVICE_ID,chardev=HUB_ID)"],
    ["two -frontend options", ["-chardev", "null,id=n", "-frontend", "n,chardev=h", "-frontend", "n,chardev=g"], "chardev-hub: only one -frontend can be given: a hub has one frontend"],
    ["a stray argument", ["ringbuf,id=r"], "chardev-hub: unexpected argument 'ringbuf,id=r': every chardev comes with -chardev (see --help)"],
    ["--qemu-compat with the default setup", ["--qemu-compat"], "chardev-hub: --qemu-compat cannot run the default setup: its hub has 5 backends and QEMU's hub takes 4"],
  ];
  for (const [what, args, message] of mistakes) {
    it(`${what} gives one line on stderr and exit code 2`, async () => {
      const { code, stdout, stderr } = await CliProcess.run(args);
      expect(stderr).toBe(`${message}\n`);
      expect(stdout).toBe("");
      expect(code).toBe(2);
    });
  }
});

describe("chardev-hub chardevs that cannot be set up", () => {
  const failures: [string, (dir: string) => string[], string][] = [
    ["an unknown kind", () => ["-chardev", "teleport,id=t", "-frontend", "t,chardev=h"], "'teleport' is not a valid char driver name"],
    ["a fifth hub backend in QEMU mode", () => ["--qemu-compat", "-chardev", "null,id=n", "-chardev", "hub,id=h,chardevs.0=n,chardevs.4=n", "-frontend", "n,chardev=h"], "Invalid parameter 'chardevs.4'"],
    ["a -frontend naming no chardev", () => ["-chardev", "null,id=n", "-frontend", "n,chardev=hub0"], "Chardev 'hub0' not found"],
    ["a program that does not exist", () => ["-chardev", "spawn,id=x,cmd=no-such-program-here", "-chardev", "null,id=n", "-frontend", "x,chardev=n"], "spawn: cannot run 'no-such-program-here': command not found"],
  ];
  for (const [what, args, message] of failures) {
    it(`${what} prints QEMU's message and exits 1`, async () => {
      const { code, stderr } = await CliProcess.run(args(dir));
      expect(stderr).toBe(`chardev-hub: ${message}\n`);
      expect(code).toBe(1);
    });
  }

  it("a failure after a socket was set up removes the socket file again", async () => {
    const { code, stderr } = await CliProcess.run([...socketServers("s0"), "-chardev", "hub,id=h,chardevs.0=s0,chardevs.1=missing", "-frontend", "s0,chardev=h"]);
    expect(stderr).toBe("chardev-hub: hub: chardev can't be found by id 'missing'\n");
    expect(code).toBe(1);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe("chardev-hub with a spawned shell behind a hub", () => {
  it("typing in one socket client runs the command, and both clients and the log see hub-42", async () => {
    const cli = new CliProcess(shellBehindHub());
    const typist = await connect("s0.sock");
    const watcher = await connect("s1.sock");
    // The shell's answer to the watcher's own line shows its connection is served.
    watcher.send("\r");
    await watcher.waitFor("\r\n");
    typist.send("echo hub-$((6*7))\r");
    await typist.waitFor("hub-42\r\n");
    await watcher.waitFor("hub-42\r\n");
    await until(() => readText(at("console.log")).includes("hub-42\r\n"), "the log to show hub-42");
    // The shell echoed the command line to everyone, the typist included.
    expect(watcher.text).toContain("echo hub-$((6*7))\r\n");
    expect(cli.ended).toBeNull();
  });

  it("SIGINT ends it with status 0 and leaves no socket files or pty links behind", async () => {
    const cli = new CliProcess([...shellBehindHub(undefined, [`pty,id=p,path=${at("pty")}`]), "-qmp", `unix:${at("qmp.sock")},server=on,wait=off`]);
    await cli.waitForStderr(`char device redirected to `);
    await connect("s0.sock");
    expect(fs.existsSync(at("qmp.sock"))).toBe(true);
    expect(fs.lstatSync(at("pty")).isSymbolicLink()).toBe(true);
    const ended = await cli.stop("SIGINT");
    expect(ended).toEqual({ code: 0, signal: null });
    expect(cli.stderr).toContain("chardev-hub: terminating on signal SIGINT\n");
    expect(fs.readdirSync(dir).sort()).toEqual(["console.log"]);
  });

  it("SIGTERM ends it the same way", async () => {
    const cli = new CliProcess(shellBehindHub());
    await connect("s1.sock");
    expect(await cli.stop("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(fs.readdirSync(dir).sort()).toEqual(["console.log"]);
  });

  it("the spawned program's exit ends the run with its status, after its last output reached the log", async () => {
    const cli = new CliProcess(shellBehindHub("spawn,id=sh,cmd=sh,args.0=-c,args.1=read line; echo bye $line; exit 3"));
    const client = await connect("s0.sock");
    client.send("now\r");
    const ended = await cli.exit;
    expect(ended.code).toBe(3);
    expect(cli.stderr).toContain("chardev-hub: 'sh' exited with status 3\n");
    expect(readText(at("console.log"))).toContain("bye now\r\n");
    expect(fs.readdirSync(dir).sort()).toEqual(["console.log"]);
  });

  it("all the device's output reaches a client that stopped reading, in order and once, after it reads again", async () => {
    // The hub is QEMU's (unbuffered): the stalled client holds everyone back, through EAGAIN
    // at the hub, the bridge's full queue, the pty and finally the program itself.
    const lines = 150_000;
    const cli = new CliProcess(shellBehindHub(`spawn,id=sh,cmd=sh,args.0=-c,args.1=read go; seq 1 ${lines}; echo END; read done`));
    const reader = await connect("s0.sock");
    reader.socket.pause();
    reader.send("go\r");
    // Wait until the log has stopped growing: the program is blocked behind the paused client.
    let last = -1;
    let unchangedPolls = 0;
    await until(() => {
      const size = readText(at("console.log")).length;
      unchangedPolls = size === last && size > 0 ? unchangedPolls + 1 : 0;
      last = size;
      return unchangedPolls >= 20;
    }, "the log to stop growing");
    const expected = `go\r\n${Array.from({ length: lines }, (_, i) => `${i + 1}\r\n`).join("")}END\r\n`;
    expect(readText(at("console.log")).length).toBeLessThan(expected.length);
    reader.socket.resume();
    await reader.waitFor("END\r\n");
    expect(reader.text).toBe(expected);
    await until(() => readText(at("console.log")).length >= expected.length, "the log to catch up");
    expect(readText(at("console.log"))).toBe(expected);
    reader.send("\r");
    expect((await cli.exit).code).toBe(0);
  });

  it("input larger than the program's terminal buffer reaches it whole, in order", async () => {
    const size = 300_000;
    const received = at("received.bin");
    // It waits for a line first: output before the client connects goes only to the log.
    const program = `read go; stty raw -echo; echo READY; head -c ${size} > ${received}; echo DONE`;
    const cli = new CliProcess(shellBehindHub(`spawn,id=sh,cmd=sh,args.0=-c,args.1=${program}`));
    const client = await connect("s0.sock");
    client.send("go\r");
    await client.waitFor("READY");
    // Every byte value but the ones a raw terminal still might treat specially is fine; use a
    // pattern that shows where a byte went missing or came twice.
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = 0x21 + ((i * 7 + (i >> 10)) % 90);
    client.send(payload);
    await client.waitFor("DONE");
    expect((await cli.exit).code).toBe(0);
    expect(fs.readFileSync(received).equals(payload)).toBe(true);
  });

  it("a browser tab's terminal size reaches the spawned program", async () => {
    const { default: WebSocket } = await import("ws");
    const cli = new CliProcess([
      "-chardev", "spawn,id=sh,cmd=sh,cols=80,rows=24",
      ...socketServers("s0"),
      "-chardev", "web,id=web0,port=0",
      "-chardev", "hub,id=hub0,chardevs.0=s0,chardevs.1=web0",
      "-frontend", "sh,chardev=hub0",
    ]);
    await cli.waitForStderr(/web terminal at (\S+) \(label web0\)/);
    // The printed address carries the secret; the socket takes it as the page does.
    const url = new URL(/web terminal at (\S+) \(label web0\)/.exec(cli.stderr)![1]);
    expect(url.searchParams.get("token")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const tab = new WebSocket(`ws://${url.host}/ws${url.search}`, "chardev-hub.terminal.v1");
    await new Promise((resolve, reject) => tab.once("open", resolve).once("error", reject));
    tab.send(JSON.stringify({ type: "resize", cols: 132, rows: 43 }));
    const client = await connect("s0.sock");
    // stty runs on its own; ask until the program sees the new size. Each answer is two lines
    // (the echoed command, the size): once both are in, ask again (an early answer may predate
    // the resize).
    let asked = 0;
    await until(() => {
      if (client.text.includes("43 132\r\n")) return true;
      if (asked === 0 || client.text.split("\r\n").length >= asked) {
        asked = client.text.split("\r\n").length + 2;
        client.send("stty size\r");
      }
      return false;
    }, "stty size to show 43 132");
    tab.close();
  });
});

describe("chardev-hub on every runtime", () => {
  for (const runtime of ["node", "deno", "bun"] as const) {
    it(`the same dist/cli.js runs on ${runtime}: --help, then a shell behind a hub until SIGINT`, async () => {
      const help = await CliProcess.run(["--help"], { runtime });
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("-frontend DEVICE_ID,chardev=HUB_ID");
      const cli = new CliProcess(shellBehindHub(), { runtime });
      const client = await connect("s0.sock");
      client.send("echo hub-$((6*7))\r");
      await client.waitFor("hub-42\r\n");
      expect(await cli.stop("SIGINT")).toEqual({ code: 0, signal: null });
      expect(fs.readdirSync(dir)).toEqual(["console.log"]);
    });
  }
});

describe("chardev-hub with real clients", () => {
  it("tio on the pty link, driven in tmux, types into the shell and shows its answer", async () => {
    const server = `chardev-hub-test-${process.pid}-${Date.now()}`;
    const tmux = (...args: string[]) => spawnSync("tmux", ["-L", server, ...args], { encoding: "utf8" });
    const cli = new CliProcess(shellBehindHub(undefined, [`pty,id=pty0,path=${at("pty")}`]));
    await cli.waitForStderr("(label pty0)");
    try {
      expect(tmux("new-session", "-d", "-x", "120", "-y", "30", `tio ${at("pty")}`).status).toBe(0);
      const screen = () => tmux("capture-pane", "-p").stdout ?? "";
      await until(() => /Connected/.test(screen()), "tio to connect");
      tmux("send-keys", "-l", "echo hub-$((6*7))");
      tmux("send-keys", "Enter");
      await until(() => /^hub-42\s*$/m.test(screen()), `tio's screen to show hub-42 (it shows ${screen()})`);
      await until(() => readText(at("console.log")).includes("hub-42\r\n"), "the log to show hub-42");
    } finally {
      tmux("kill-server");
    }
  });

  it("QMP through a plain socket: handshake, a ringbuf added, written and read, and QEMU's error for a busy chardev", async () => {
    const cli = new CliProcess([...shellBehindHub(), "-qmp", `unix:${at("qmp.sock")},server=on,wait=off`]);
    const qmp = await connect("qmp.sock");
    let seen = 0;
    const next = async (): Promise<any> => {
      await until(() => qmp.text.slice(seen).includes("\r\n"), "a QMP message");
      const end = qmp.text.indexOf("\r\n", seen);
      const line = qmp.text.slice(seen, end);
      seen = end + 2;
      return JSON.parse(line);
    };
    const execute = async (command: string, args?: object) => {
      qmp.send(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + "\n");
      for (;;) {
        const message = await next();
        if (!("event" in message)) return message;
      }
    };
    const greeting = await next();
    expect(greeting.QMP.version.qemu).toEqual({ major: 10, minor: 0, micro: 0 });
    expect(await execute("qmp_capabilities")).toEqual({ return: {} });
    expect(await execute("chardev-add", { id: "rb", backend: { type: "ringbuf", data: { size: 1024 } } })).toEqual({ return: {} });
    expect(await execute("ringbuf-write", { device: "rb", data: "hello hub" })).toEqual({ return: {} });
    expect(await execute("ringbuf-read", { device: "rb", size: 1024 })).toEqual({ return: "hello hub" });
    expect(await execute("chardev-remove", { id: "s0" })).toEqual({ error: { class: "GenericError", desc: "Chardev 's0' is busy" } });
    expect(await execute("chardev-remove", { id: "hub0" })).toEqual({ error: { class: "GenericError", desc: "Chardev 'hub0' is busy" } });
    expect(await execute("chardev-remove", { id: "rb" })).toEqual({ return: {} });
    const labels = ((await execute("query-chardev")).return as { label: string }[]).map((info) => info.label);
    expect(labels).toEqual(expect.arrayContaining(["sh", "s0", "s1", "log", "hub0"]));
    expect(labels).not.toContain("rb");
    expect(cli.ended).toBeNull();
  });
});

describe("chardev-hub's default setup (npm start)", () => {
  it("comes up with a pipe for stdin: prints how to attach, echoes through run/hub.sock, and SIGINT removes the socket", async () => {
    const cli = new CliProcess(["--default"], { cwd: dir, env: { SHELL: "/bin/sh" } });
    await cli.waitForStderr("run/console.log");
    expect(cli.stderr).toContain("chardev-hub: /bin/sh on a new terminal, shared with:\n");
    expect(cli.stderr).toContain("(stdin is not a terminal, so this terminal is not attached)\n");
    expect(cli.stderr).toContain("  socat - UNIX-CONNECT:run/hub.sock\n");
    expect(cli.stderr).toContain("  tio run/pty\n");
    expect(cli.stderr).toMatch(/^ {2}http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43} {3}\(the browser terminal; its secret is in the address\)$/m);
    expect(cli.stderr).toMatch(/^ {2}http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43} {3}\(view only\)$/m);
    const client = await connect(path.join("run", "hub.sock"));
    client.send("echo hub-$((6*7))\r");
    await client.waitFor("hub-42\r\n");
    expect(fs.statSync(at("run/hub.sock")).mode & 0o777).toBe(0o600);
    expect((await cli.stop("SIGINT")).code).toBe(0);
    expect(fs.existsSync(at("run/hub.sock"))).toBe(false);
    expect(fs.existsSync(at("run/pty"))).toBe(false);
    expect(readText(at("run/console.log"))).toContain("hub-42\r\n");
  });
});

describe("chardev-hub's default setup, twice in one directory", () => {
  it("the second run refuses to take over the first one's socket, which keeps working", async () => {
    const first = new CliProcess(["--default"], { cwd: dir, env: { SHELL: "/bin/sh" } });
    await first.waitForStderr("run/console.log");
    const second = await CliProcess.run(["--default"], { cwd: dir });
    expect(second.stderr).toBe(
      "chardev-hub: run/hub.sock is served by another chardev-hub running here: attach to it (socat - UNIX-CONNECT:run/hub.sock) or end it first\n",
    );
    expect(second.code).toBe(1);
    const client = await connect(path.join("run", "hub.sock"));
    client.send("echo still-$((6*7))\r");
    await client.waitFor("still-42\r\n");
    expect((await first.stop("SIGINT")).code).toBe(0);
  });
});

describe("Alex Bennée's command line from the hub thread", () => {
  const alexs = (extra: string[] = []) => [
    ...extra,
    "-chardev", "spawn,id=sh,cmd=sh",
    "-chardev", "stdio,mux=on,id=char0",
    "-chardev", "file,path=console.log,id=clog",
    "-chardev", "hub,id=hub0,chardevs.0=char0,chardevs.1=clog",
    "-frontend", "sh,chardev=hub0",
  ];

  it("runs: a tee of the console to stdio (through the mux) and a log, and C-a x ends it", async () => {
    const cli = new CliProcess(alexs(), { cwd: dir });
    cli.send("echo hub-$((6*7))\n");
    await cli.waitForStdout("hub-42\r\n");
    await until(() => readText(at("console.log")).includes("hub-42\r\n"), "console.log to show hub-42");
    cli.send("\x01x");
    const ended = await cli.exit;
    expect(ended.code).toBe(0);
    expect(cli.stderr).toContain("chardev-hub: exit requested (C-a x)\n");
  });

  it("is refused with QEMU's stacking error under --qemu-compat, as QEMU 10.0 refused it", async () => {
    const cli = new CliProcess(alexs(["--qemu-compat"]), { cwd: dir });
    cli.child.stdin.end();
    expect((await cli.exit).code).toBe(1);
    expect(cli.stderr).toBe(
      "chardev-hub: hub: multiplexers and hub devices can't be stacked, check chardev 'char0', chardev should not be a hub device or have 'mux=on' enabled\n",
    );
  });
});
