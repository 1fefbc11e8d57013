// A UNIX socket server whose socket file is deleted under it (a tmp cleaner, a careless rm)
// listens again at the same path, mode 0600, says so on stderr (the registry's warning), and a
// new client can connect; the client it was serving is not disturbed.

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import { bytes, FeHandler } from "./_fe_handler.ts";

let reg: ChardevRegistry;
let dir: string;
let warnings: string[];
const clients: net.Socket[] = [];

beforeEach(async () => {
  warnings = [];
  reg = await ChardevRegistry.create({ qemuCompat: true, onWarning: (line) => warnings.push(line) });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-relisten-"));
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Bounded by the test runner's timeout; polls the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** A client of `socketPath` and the text it has received. */
async function connect(socketPath: string): Promise<{ socket: net.Socket; text: () => string }> {
  let received = "";
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const attempt = net.connect({ path: socketPath }, () => resolve(attempt));
    attempt.once("error", reject);
  });
  socket.on("data", (chunk: Buffer) => (received += chunk.toString()));
  socket.on("error", () => {});
  clients.push(socket);
  return { socket, text: () => received };
}

describe("socket server: a deleted socket file", () => {
  it("is made again at the same path, mode 0600, with a warning, and a new client connects", async () => {
    const socketPath = path.join(dir, "console.sock");
    await reg.add(`socket,id=s0,path=${socketPath},server=on,wait=off`);
    const fe = new FeHandler();
    const frontend = reg.attach("s0", fe);

    const first = await connect(socketPath);
    await until(() => fe.events.includes(ChrEvent.OPENED));
    fs.unlinkSync(socketPath);
    await until(() => warnings.length > 0 && fs.existsSync(socketPath));
    expect(warnings).toEqual([`socket: s0: socket file ${socketPath} was deleted; listening there again`]);
    const made = fs.lstatSync(socketPath);
    expect(made.isSocket()).toBe(true);
    expect(made.mode & 0o777).toBe(0o600);

    // The client it was serving still is.
    expect(frontend.write(bytes("still here\n"))).toBe(11);
    await until(() => first.text() === "still here\n");

    // Once it leaves, a client of the new file is served.
    first.socket.destroy();
    await until(() => fe.events.filter((event) => event === ChrEvent.CLOSED).length === 1);
    const second = await connect(socketPath);
    await until(() => fe.events.filter((event) => event === ChrEvent.OPENED).length === 2);
    expect(frontend.write(bytes("hello again\n"))).toBe(12);
    await until(() => second.text() === "hello again\n");
    second.socket.write("typed\n");
    let typed = "";
    await until(() => (typed += fe.take()) === "typed\n");
    expect(warnings).toHaveLength(1);
  });

  it("whose directory is gone too is reported once, and nothing is made", async () => {
    const socketDir = path.join(dir, "run");
    fs.mkdirSync(socketDir);
    const socketPath = path.join(socketDir, "console.sock");
    await reg.add(`socket,id=s1,path=${socketPath},server=on,wait=off`);
    reg.attach("s1", new FeHandler());
    fs.rmSync(socketDir, { recursive: true }); // a tmp cleaner took the directory with it
    await until(() => warnings.length > 0);
    expect(warnings).toEqual([`socket: s1: socket file ${socketPath} was deleted and could not be made again: No such file or directory`]);
    expect(fs.existsSync(socketDir)).toBe(false);
    // It stopped looking: making the directory again later brings no second attempt or line.
    fs.mkdirSync(socketDir);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(warnings).toHaveLength(1);
    expect(fs.existsSync(socketPath)).toBe(false);
  });
});
