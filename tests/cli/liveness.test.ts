// Liveness through the command: a device streaming at full speed (`yes`) into a ring hub with a
// healthy socket client and one that never reads. Once the stalled client is evicted, or
// detached over QMP, the healthy one keeps getting output (before the fix it got nothing more).

import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "../_harness.ts";
import { CliProcess, SocketClient, until } from "./_cli.ts";

const dir = os.tmpdir();
const sock = (name: string) => path.join(dir, `liveness-${process.pid}-${name}.sock`);

afterEach(async () => {
  await CliProcess.stopAll();
});

/** The healthy client gets `bytes` more once `since` was read. */
async function keepsFlowing(client: SocketClient, bytes: number): Promise<void> {
  const since = client.receivedBytes;
  await until(() => client.receivedBytes > since + bytes, `the healthy client to get ${bytes} more bytes`);
}

describe("a stalled client's removal frees the ring (through the command)", () => {
  it("an evicted stalled client is closed, and the healthy client keeps getting output", async () => {
    const cli = new CliProcess([
      "-chardev", "spawn,id=dev,cmd=yes",
      "-chardev", `socket,id=a,path=${sock("a")},server=on,wait=off`,
      "-chardev", `socket,id=b,path=${sock("b")},server=on,wait=off`,
      "-chardev", "hub,id=hub0,ring=65536,chardevs.0=a,chardevs.1=b,policy.1=evict,stall-ms.1=200",
      "-frontend", "dev,chardev=hub0",
    ]);
    const healthy = await SocketClient.connect(sock("a"));
    const stalled = await SocketClient.connect(sock("b"));
    stalled.socket.pause(); // never reads: the kernel buffers fill, then the hub's ring
    // 4 MiB through a 64 KiB ring: only possible once the stalled client is out.
    await keepsFlowing(healthy, 4 * 1024 * 1024);
    expect(cli.ended).toBeNull();
    // Reading again, it finds what the kernel held for it, then the end: its connection was closed.
    stalled.socket.resume();
    await until(() => stalled.closed, "the stalled client to see its connection closed by the eviction");
    healthy.close();
  });

  it("QMP hub-detach of a stalled blocking client leaves the hub running for the healthy one", async () => {
    const cli = new CliProcess([
      "-chardev", "spawn,id=dev,cmd=yes",
      "-chardev", `socket,id=a,path=${sock("c")},server=on,wait=off`,
      "-chardev", `socket,id=b,path=${sock("d")},server=on,wait=off`,
      "-chardev", "hub,id=hub0,ring=65536,chardevs.0=a,chardevs.1=b",
      "-frontend", "dev,chardev=hub0",
      "-qmp", `unix:${sock("qmp")},server=on,wait=off`,
    ]);
    const healthy = await SocketClient.connect(sock("c"));
    const stalled = await SocketClient.connect(sock("d"));
    stalled.socket.pause();
    await until(() => healthy.receivedBytes > 0, "output to start");
    const qmp = await SocketClient.connect(sock("qmp"));
    await qmp.waitFor('"QMP"');
    qmp.send('{"execute": "qmp_capabilities"}\n');
    await qmp.waitFor('"return"');
    qmp.send('{"execute": "hub-detach", "arguments": {"hub": "hub0", "chardev": "b"}, "id": 2}\n');
    await qmp.waitFor('"id": 2');
    expect(qmp.text).toContain('{"return": {}, "id": 2}');
    await keepsFlowing(healthy, 4 * 1024 * 1024);
    expect(cli.ended).toBeNull();
    healthy.close();
    stalled.close();
    qmp.close();
  });
});
