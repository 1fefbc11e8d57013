// QMP `quit` and our own events through the command, as a QEMU user drives them: the client gets
// QEMU's SHUTDOWN event and `{}`, the command flushes its log and exits 0; a client that never
// asked for our events (`hub-events`) sees none of them, one that asked does.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "../_harness.ts";
import { CliProcess, readText, SocketClient, until } from "./_cli.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmp-quit-"));
const at = (name: string) => path.join(dir, name);

afterEach(async () => {
  await CliProcess.stopAll();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The messages a QMP client has received, parsed, one per line. */
function messages(client: SocketClient): any[] {
  return client.text.split("\r\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line));
}

async function negotiated(socketPath: string): Promise<SocketClient> {
  const qmp = await SocketClient.connect(socketPath);
  await qmp.waitFor('"QMP"');
  qmp.send('{"execute": "qmp_capabilities"}\n');
  await qmp.waitFor('"return"');
  return qmp;
}

describe("QMP quit and our events (through the command)", () => {
  it("quit answers SHUTDOWN then {}, and the command exits 0 with its log complete", async () => {
    const log = at("quit.log");
    const cli = new CliProcess([
      "-chardev", "spawn,id=sh,cmd=sh,args.0=-c,args.1=echo ready-for-quit; exec sleep 60",
      "-chardev", `file,id=log,path=${log}`,
      "-chardev", "hub,id=hub0,chardevs.0=log",
      "-frontend", "sh,chardev=hub0",
      "-qmp", `unix:${at("qmp1.sock")},server=on,wait=off`,
    ]);
    const qmp = await negotiated(at("qmp1.sock"));
    await until(() => fs.existsSync(log) && readText(log).includes("ready-for-quit"), "the program's output in the log");
    qmp.send('{"execute": "quit", "id": "bye"}\n');
    const ended = await cli.exit;
    expect(ended.code).toBe(0);
    await qmp.waitFor('"id": "bye"');
    const [, , shutdown, answer] = messages(qmp); // after the greeting and the negotiation
    expect(shutdown.event).toBe("SHUTDOWN");
    expect(shutdown.data).toEqual({ guest: false, reason: "host-qmp-quit" });
    expect(answer).toEqual({ return: {}, id: "bye" });
    expect(readText(log)).toContain("ready-for-quit");
    expect(cli.stderr).toContain("terminating on QMP quit");
  });

  it("hub events reach only the client that asked for them", async () => {
    const cli = new CliProcess([
      "-chardev", "spawn,id=sh,cmd=sleep,args.0=60",
      "-chardev", "null,id=n0",
      "-chardev", "null,id=n1",
      "-chardev", "hub,id=hub0,chardevs.0=n0",
      "-frontend", "sh,chardev=hub0",
      "-qmp", `unix:${at("qmp2.sock")},server=on,wait=off`,
      "-qmp", `unix:${at("qmp3.sock")},server=on,wait=off`,
    ]);
    const quiet = await negotiated(at("qmp2.sock"));
    const asking = await negotiated(at("qmp3.sock"));
    asking.send('{"execute": "hub-events", "arguments": {"enable": true}, "id": 1}\n');
    await asking.waitFor('"id": 1');
    quiet.send('{"execute": "hub-attach", "arguments": {"hub": "hub0", "chardev": "n1"}, "id": 2}\n');
    await quiet.waitFor('"id": 2');
    await asking.waitFor("HUB_BACKEND_ATTACHED");
    const attached = messages(asking).find((message) => message.event === "HUB_BACKEND_ATTACHED");
    expect(attached.data).toEqual({ hub: "hub0", chardev: "n1" });
    // The quiet client's next answer comes after anything the attach made: no event among them.
    quiet.send('{"execute": "query-status", "id": 3}\n');
    await quiet.waitFor('"id": 3');
    expect(messages(quiet).filter((message) => "event" in message)).toEqual([]);
    expect(cli.ended).toBeNull();
  });
});
