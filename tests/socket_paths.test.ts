// Safe paths (issue 9): a UNIX socket path or pty link something still answers on is refused
// with "Address already in use" and left untouched; one left behind by a process killed with
// SIGKILL is replaced. Real listeners (socat, another registry, another chardev-hub), real
// SIGKILLs, real ptys.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry } from "../host-ts/mod.ts";
import type { PtyChardev } from "../host-ts/chardev/pty.ts";
import type { SocketChardev } from "../host-ts/chardev/socket.ts";
import { errorOf } from "./_fe_handler.ts";
import { CliProcess, SocketClient, until } from "./cli/_cli.ts";

let dir: string;
/** Registries, programs and clients a test opened, closed after it whatever happened. */
let registries: ChardevRegistry[];
let children: ChildProcess[];
let clients: (SocketClient | net.Socket)[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-paths-test-"));
  registries = [];
  children = [];
  clients = [];
});
afterEach(async () => {
  for (const client of clients) client instanceof SocketClient ? client.close() : client.destroy();
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await CliProcess.stopAll();
  for (const reg of registries) await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function registry(): Promise<ChardevRegistry> {
  const reg = await ChardevRegistry.create({ qemuCompat: true });
  registries.push(reg);
  return reg;
}

/** Starts a program the test ends (SIGKILL) if it is still running afterwards. */
function startChild(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ["pipe", "ignore", "inherit"] });
  children.push(child);
  return child;
}

/** Kills `child` with SIGKILL (no cleanup on its side) and waits until it is gone. */
async function killHard(child: ChildProcess): Promise<void> {
  const gone = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await gone;
}

/** Sends `text` on a new connection to `socketPath` and resolves with what comes back once it includes `expected`. */
async function roundTrip(socketPath: string, text: string, expected = text): Promise<string> {
  const client = await SocketClient.connect(socketPath);
  clients.push(client);
  client.send(text);
  await client.waitFor(expected);
  client.close();
  return client.text;
}

describe("a live UNIX socket path is refused", () => {
  it("a path socat listens on is refused with Address already in use, and socat keeps its socket and its clients", async () => {
    const socketPath = path.join(dir, "socat.sock");
    startChild("socat", [`UNIX-LISTEN:${socketPath},fork`, "EXEC:cat"]);
    await until(() => fs.existsSync(socketPath), "socat's socket");
    const inode = fs.statSync(socketPath).ino;
    const reg = await registry();

    const error = await errorOf(() => reg.add(`socket,id=s0,path=${socketPath},server=on,wait=off`));
    expect(error).toBeInstanceOf(ChardevError);
    expect(error.code).toBe("OPEN_FAILED");
    expect(error.message).toBe(`Failed to bind socket to ${socketPath}: Address already in use`);
    expect(reg.find("s0")).toBeUndefined();

    expect(fs.statSync(socketPath).ino).toBe(inode);
    expect(await roundTrip(socketPath, "still socat's\n")).toBe("still socat's\n");
    // Closing the registry that was refused must not remove the socket it never owned.
    await reg.close();
    expect(fs.statSync(socketPath).ino).toBe(inode);
  });

  it("a path another socket chardev serves is refused, and the first chardev keeps its socket file and takes clients", async () => {
    const socketPath = path.join(dir, "hub.sock");
    const first = await registry();
    const owner = (await first.add(`socket,id=s0,path=${socketPath},server=on,wait=off`)) as SocketChardev;
    const inode = fs.statSync(socketPath).ino;
    const second = await registry();

    const error = await errorOf(() => second.add(`socket,id=s0,path=${socketPath},server=on,wait=off`));
    expect(error.code).toBe("OPEN_FAILED");
    expect(error.message).toBe(`Failed to bind socket to ${socketPath}: Address already in use`);
    await second.close();

    expect(fs.statSync(socketPath).ino).toBe(inode);
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o600);
    // The probe came and went; a real client is the one the chardev serves now.
    const client = await SocketClient.connect(socketPath);
    clients.push(client);
    await until(() => owner.connected, "the first chardev to take the client");
  });
});

describe("a stale UNIX socket path is replaced", () => {
  it("the socket file of a listener killed with SIGKILL is replaced, served 0600 and removed with the chardev", async () => {
    const socketPath = path.join(dir, "stale.sock");
    const socat = startChild("socat", [`UNIX-LISTEN:${socketPath}`, "-"]);
    await until(() => fs.existsSync(socketPath), "socat's socket");
    await killHard(socat);
    expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
    // Marked, so the new socket file is told apart from it (inode numbers are reused).
    fs.chmodSync(socketPath, 0o755);

    const reg = await registry();
    const chardev = (await reg.add(`socket,id=s0,path=${socketPath},server=on,wait=off`)) as SocketChardev;
    const now = fs.statSync(socketPath);
    expect(now.isSocket()).toBe(true);
    expect(now.mode & 0o777).toBe(0o600);
    const client = await SocketClient.connect(socketPath);
    clients.push(client);
    await until(() => chardev.connected, "the chardev to take the client");

    await reg.remove("s0");
    expect(fs.existsSync(socketPath)).toBe(false);
  });
});

describe("pty links: live refused, stale replaced", () => {
  it("a link to a pty another chardev holds is refused with Address already in use and still leads to that pty", async () => {
    const link = path.join(dir, "console");
    const first = await registry();
    const owner = (await first.add(`pty,id=pty0,path=${link}`)) as PtyChardev;
    const second = await registry();

    const error = await errorOf(() => second.add(`pty,id=pty0,path=${link}`));
    expect(error).toBeInstanceOf(ChardevError);
    expect(error.code).toBe("OPEN_FAILED");
    expect(error.message).toBe(`Failed to create PTY symlink: Address already in use ('${link}' leads to ${owner.slavePath}, a terminal in use)`);
    expect(second.find("pty0")).toBeUndefined();
    await second.close();
    expect(fs.readlinkSync(link)).toBe(owner.slavePath);
  });

  it("a dangling link, whose pty is gone, is replaced by a link to the new pty", async () => {
    const link = path.join(dir, "console");
    // A pty that existed and is gone again: the link a killed chardev-hub leaves behind.
    const earlier = await registry();
    const gonePty = ((await earlier.add("pty,id=old")) as PtyChardev).slavePath;
    await earlier.close();
    fs.symlinkSync(gonePty, link);
    // Its /dev/pts/N goes with its master; if another program got the number meanwhile, the
    // link is live again and the test below is not about a stale link.
    if (fs.existsSync(gonePty)) fs.unlinkSync(link), fs.symlinkSync(path.join(dir, "no-such-pts"), link);

    const reg = await registry();
    const pty = (await reg.add(`pty,id=pty0,path=${link}`)) as PtyChardev;
    expect(fs.readlinkSync(link)).toBe(pty.slavePath);
    expect(fs.statSync(link).isCharacterDevice()).toBe(true);
    await reg.remove("pty0");
    expect(() => fs.lstatSync(link)).toThrow();
  });

  it("removing a pty chardev leaves its path alone once the link there leads elsewhere", async () => {
    const link = path.join(dir, "console");
    const reg = await registry();
    await reg.add(`pty,id=pty0,path=${link}`);
    // Someone else's link now (as after a takeover): not ours to remove.
    fs.unlinkSync(link);
    fs.symlinkSync("/dev/null", link);
    await reg.remove("pty0");
    expect(fs.readlinkSync(link)).toBe("/dev/null");
  });

  it("a link to a regular file is not a stale pty link: refused with File exists, link and file left alone", async () => {
    const notes = path.join(dir, "notes.txt");
    fs.writeFileSync(notes, "keep me");
    const link = path.join(dir, "console");
    fs.symlinkSync(notes, link);
    const reg = await registry();

    const error = await errorOf(() => reg.add(`pty,id=pty0,path=${link}`));
    expect(error.code).toBe("OPEN_FAILED");
    expect(error.message).toBe("Failed to create PTY symlink: File exists");
    expect(fs.readlinkSync(link)).toBe(notes);
    expect(fs.readFileSync(notes, "utf8")).toBe("keep me");
  });
});

describe("chardev-hub on a path another chardev-hub uses", () => {
  /** A shell behind a hub with one socket server at `socketPath`. */
  const shellOnSocket = (socketPath: string) => [
    "-chardev", "spawn,id=sh,cmd=sh",
    "-chardev", `socket,id=s0,path=${socketPath},server=on,wait=off`,
    "-chardev", "hub,id=hub0,chardevs.0=s0",
    "-frontend", "sh,chardev=hub0",
  ];

  it("a second chardev-hub on the same socket path exits with Address already in use and the first keeps serving", async () => {
    const socketPath = path.join(dir, "shell.sock");
    const first = new CliProcess(shellOnSocket(socketPath));
    await until(() => fs.existsSync(socketPath), "the first chardev-hub's socket");
    const inode = fs.statSync(socketPath).ino;

    const second = await CliProcess.run(shellOnSocket(socketPath));
    expect(second.stderr).toBe(`chardev-hub: Failed to bind socket to ${socketPath}: Address already in use\n`);
    expect(second.code).toBe(1);

    expect(fs.statSync(socketPath).ino).toBe(inode);
    expect(await roundTrip(socketPath, "echo first-$((6*7))\n", "first-42")).toContain("first-42");
    expect(first.ended).toBeNull();
  });

  it("after the default setup is killed with SIGKILL, the next run replaces its stale socket and pty link and serves", async () => {
    const first = new CliProcess(["--default"], { cwd: dir, env: { SHELL: "/bin/sh" } });
    await first.waitForStderr("run/console.log");
    const socketPath = path.join(dir, "run", "hub.sock");
    const link = path.join(dir, "run", "pty");
    const firstPty = fs.readlinkSync(link);
    await first.stop("SIGKILL");
    // Killed, it removed nothing: a socket file nobody answers on and a link to a gone pty.
    expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    await until(() => !fs.existsSync(firstPty) || fs.readlinkSync(link) !== firstPty, "the killed run's pty to go");

    const second = new CliProcess(["--default"], { cwd: dir, env: { SHELL: "/bin/sh" } });
    await second.waitForStderr("run/console.log");
    expect(second.stderr).not.toContain("Address already in use");
    expect(fs.statSync(link).isCharacterDevice()).toBe(true);
    expect(await roundTrip(socketPath, "echo second-$((6*7))\r", "second-42")).toContain("second-42");
    expect((await second.stop("SIGINT")).code).toBe(0);
    expect(fs.existsSync(socketPath)).toBe(false);
    expect(() => fs.lstatSync(link)).toThrow();
  });
});
