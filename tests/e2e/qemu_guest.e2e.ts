// A real QEMU guest's serial console shared by chardev-hub among two socket clients and a log.
// (QEMU 7.2's own socket serves one client at a time; the hub is what lets both type and see.)

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cli, SocketClient, sharedDir, until } from "./_procs.ts";

const guestTools = path.join(sharedDir, "tools", "qemu-guest");
let dir: string;
let guestPid: string;
let cli: Cli;

beforeAll(() => {
  // Idempotent: installs QEMU and builds the guest only when missing (.ci/run runs it first).
  execFileSync("bash", [path.join(guestTools, "setup.sh")], { stdio: "ignore" });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-qemu-"));
  guestPid = execFileSync("bash", [path.join(guestTools, "boot.sh"), path.join(dir, "ttyS0.sock")]).toString().trim();
}, 300_000);

afterAll(async () => {
  await cli?.stop();
  if (guestPid) execFileSync("bash", [path.join(guestTools, "stop.sh"), guestPid], { stdio: "ignore" });
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("chardev-hub in front of a real QEMU guest", () => {
  it("a command typed on one client runs in the guest and its output reaches both clients and the log", async () => {
    const sock = (name: string) => path.join(dir, name);
    cli = new Cli([
      "-chardev", `socket,id=guest,path=${sock("ttyS0.sock")}`,
      "-chardev", `socket,id=c1,path=${sock("c1.sock")},server=on,wait=off`,
      "-chardev", `socket,id=c2,path=${sock("c2.sock")},server=on,wait=off`,
      "-chardev", `file,id=log,path=${sock("console.log")}`,
      "-chardev", "hub,id=hub0,chardevs.0=c1,chardevs.1=c2,chardevs.2=log",
      "-frontend", "guest,chardev=hub0",
    ]);
    const first = await SocketClient.connect(sock("c1.sock"), cli);
    const second = await SocketClient.connect(sock("c2.sock"), cli);

    // Wait for the shell: press Enter until a prompt shows (input before the UART is up is lost).
    await until(() => {
      if (first.received.includes("guest# ")) return true;
      first.send("\r");
      return false;
    }, "the guest's prompt", 120_000);

    first.send("echo hub-$((6*7))\r");
    const answer = /^hub-42\r?$/m;
    await until(() => answer.test(first.received) && answer.test(second.received), "hub-42 on both clients");
    expect(first.received).toMatch(answer);
    expect(second.received).toMatch(answer);
    // The second client also saw the command being typed (the guest's echo goes to everyone).
    expect(second.received).toContain("echo hub-$((6*7))");
    await until(() => answer.test(fs.readFileSync(sock("console.log"), "latin1")), "hub-42 in the log");
    expect(fs.readFileSync(sock("console.log"), "latin1")).toMatch(answer);

    first.close();
    second.close();
    expect(await cli.stop()).toBe(0);
    expect(fs.existsSync(sock("c1.sock"))).toBe(false);
  }, 300_000);
});
