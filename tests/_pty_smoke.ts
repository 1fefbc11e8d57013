// A script, not a suite: allocates a `pty` chardev on whatever runtime runs it and carries bytes
// both ways through the slave, so tests/pty.test.ts can check the Deno and Bun primitives
// (Deno.dlopen, bun:ffi) from a Node run:
//   npx deno run -A tests/_pty_smoke.ts      npx bun tests/_pty_smoke.ts
// Prints one line per step and `pty smoke ok on RUNTIME` last; exits 1 with the reason otherwise.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import type { PtyChardev } from "../host-ts/chardev/pty.ts";
import { detectRuntime } from "../host-ts/runtime/detect.ts";
import { FeHandler } from "./_fe_handler.ts";

const GIVE_UP_MS = 10_000;

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + GIVE_UP_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

/** Reads the slave (non-blocking) until `count` bytes came. */
async function readSlave(fd: number, count: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  await until(() => {
    const buf = new Uint8Array(count - got);
    try {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      chunks.push(buf.subarray(0, n));
      got += n;
    } catch (error) {
      if ((error as { code?: string }).code !== "EAGAIN") throw error;
    }
    return got >= count;
  }, `${count} bytes on the slave`);
  return new TextDecoder().decode(Buffer.concat(chunks));
}

const runtime = await detectRuntime();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-pty-smoke-"));
const link = path.join(dir, "console");
const reg = await ChardevRegistry.create({ runtime });
try {
  const pty = (await reg.add(`pty,id=pty0,path=${link}`)) as PtyChardev;
  console.log(`runtime ${runtime.name}, slave ${pty.slavePath}`);
  check(pty.filename === `pty:${pty.slavePath}` && /^\/dev\/pts\/\d+$/.test(pty.slavePath), "filename is pty:/dev/pts/N");
  check((fs.statSync(pty.slavePath).mode & 0o777) === 0o600, "slave mode is 0600");
  check(fs.readlinkSync(link) === pty.slavePath, "path= links to the slave");

  const fe = new FeHandler();
  reg.attach("pty0", fe);
  check(fe.events.length === 0, "no OPENED before a peer");
  check(reg.get("pty0").write(new TextEncoder().encode("dropped")) === 7, "a write without a peer is dropped whole");

  const slave = fs.openSync(link, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
  await until(() => fe.isOpen, "OPENED");
  check(fe.events[0] === ChrEvent.OPENED, "the peer is seen as OPENED");

  fs.writeSync(slave, "ping\r\n\x03");
  await until(() => fe.readCount >= 7, "the peer's bytes");
  check(fe.take() === "ping\r\n\x03", "the peer's bytes reach the frontend unchanged (raw)");

  check(reg.get("pty0").write(new TextEncoder().encode("pong\n")) === 5, "the frontend writes to the peer");
  check((await readSlave(slave, 5)) === "pong\n", "the frontend's bytes reach the peer unchanged, without the dropped ones");

  fs.closeSync(slave);
  await until(() => !fe.isOpen, "CLOSED");
  check(fe.events.at(-1) === ChrEvent.CLOSED, "the peer leaving is seen as CLOSED");

  await reg.close();
  check(!fs.existsSync(link) && fs.lstatSync(dir).isDirectory(), "the link is removed with the chardev");
  console.log(`pty smoke ok on ${runtime.name}`);
} catch (error) {
  console.log(`pty smoke FAILED on ${runtime.name}: ${(error as Error).stack ?? error}`);
  await reg.close();
  process.exitCode = 1;
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
