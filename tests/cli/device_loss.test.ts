// Device loss through the command: the device is a UNIX socket served by this test (the "VM"),
// the command connects to it as a client. When the VM closes the connection the command says so
// on stderr, to QMP clients (CHARDEV_DEVICE_CLOSED) and in the console stream (a
// `[-- device closed --]` line to the socket clients and the log); without reconnect-ms it exits
// with status 3 once everything the VM wrote is in the log; with reconnect-ms it connects again
// and `[-- device back --]` follows.

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "../_harness.ts";
import { CliProcess, readText, SocketClient, until } from "./_cli.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "device-loss-"));
const at = (name: string) => path.join(dir, name);

/** The VM's end of its serial socket: a UNIX server, and the connections the command made to it. */
class FakeVm {
  readonly connections: net.Socket[] = [];
  readonly received: Buffer[] = [];
  private constructor(readonly server: net.Server) {}

  static async listen(socketPath: string): Promise<FakeVm> {
    fs.rmSync(socketPath, { force: true });
    let vm: FakeVm;
    const server = net.createServer((connection) => {
      vm.connections.push(connection);
      connection.on("data", (chunk: Buffer) => vm.received.push(chunk));
      connection.on("error", () => {});
    });
    vm = new FakeVm(server);
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return vm;
  }

  close(): void {
    for (const connection of this.connections) connection.destroy();
    this.server.close();
  }
}

/** Numbered lines, so a missing or repeated byte shows. */
const lines = (from: number, count: number) => Array.from({ length: count }, (_, i) => `line ${from + i} of the console\r\n`).join("");

const vms: FakeVm[] = [];
afterEach(async () => {
  await CliProcess.stopAll();
  for (const vm of vms.splice(0)) vm.close();
});

async function qmpClient(socketPath: string): Promise<SocketClient> {
  const qmp = await SocketClient.connect(socketPath);
  await qmp.waitFor('"QMP"');
  qmp.send('{"execute": "qmp_capabilities"}\n');
  await qmp.waitFor('"return"');
  // CHARDEV_DEVICE_CLOSED and _BACK are ours: a client gets them once it asks.
  qmp.send('{"execute": "hub-events", "arguments": {"enable": true}}\n');
  await until(() => qmp.text.split('"return"').length === 3, "hub-events to be answered");
  return qmp;
}

describe("device loss (through the command)", () => {
  it("a device that closes without reconnect-ms is reported to clients, QMP and stderr, and the command exits with status 3 after the log is complete", async () => {
    const vm = await FakeVm.listen(at("vm1.sock"));
    vms.push(vm);
    const log = at("console1.log");
    const cli = new CliProcess([
      "-chardev", `socket,id=vm,path=${at("vm1.sock")}`,
      "-chardev", `socket,id=c1,path=${at("c1.sock")},server=on,wait=off`,
      "-chardev", `file,id=log,path=${log}`,
      "-chardev", "hub,id=hub0,chardevs.0=c1,chardevs.1=log",
      "-frontend", "vm,chardev=hub0",
      "-qmp", `unix:${at("qmp1.sock")},server=on,wait=off`,
    ]);
    const client = await SocketClient.connect(at("c1.sock"));
    const qmp = await qmpClient(at("qmp1.sock"));
    await until(() => vm.connections.length === 1, "the command to connect to the VM");
    const output = lines(0, 5000); // ~130 KB: more than the bridge's queue
    vm.connections[0]!.end(output);

    const ended = await cli.exit;
    expect(ended.code).toBe(3);
    expect(cli.stderr).toContain("chardev-hub: device 'vm' closed\n");
    await client.waitFor("[-- device closed --]");
    expect(client.text).toBe(`${output}\r\n[-- device closed --]\r\n`);
    // The log has every byte the VM wrote, then the marker: it was flushed before the exit.
    expect(readText(log)).toBe(`${output}\r\n[-- device closed --]\r\n`);
    await qmp.waitFor("CHARDEV_DEVICE_CLOSED");
    const event = JSON.parse(qmp.text.split("\r\n").find((line) => line.includes("CHARDEV_DEVICE_CLOSED"))!);
    expect(event.data).toEqual({ id: "vm", "comes-back": false });
    expect(Object.keys(event.timestamp)).toEqual(["seconds", "microseconds"]);
    // Everything it served is gone with it.
    expect(fs.existsSync(at("c1.sock"))).toBe(false);
    client.close();
    qmp.close();
  });

  it("with reconnect-ms the device is reported closed, connected again, reported back, and its output flows again", async () => {
    const vm = await FakeVm.listen(at("vm2.sock"));
    vms.push(vm);
    const log = at("console2.log");
    const cli = new CliProcess([
      "-chardev", `socket,id=vm,path=${at("vm2.sock")},reconnect-ms=100`,
      "-chardev", `socket,id=c2,path=${at("c2.sock")},server=on,wait=off`,
      "-chardev", `file,id=log,path=${log}`,
      "-chardev", "hub,id=hub0,chardevs.0=c2,chardevs.1=log",
      "-frontend", "vm,chardev=hub0",
      "-qmp", `unix:${at("qmp2.sock")},server=on,wait=off`,
    ]);
    const client = await SocketClient.connect(at("c2.sock"));
    const qmp = await qmpClient(at("qmp2.sock"));
    await until(() => vm.connections.length === 1, "the command to connect to the VM");
    vm.connections[0]!.end(lines(0, 100));
    await client.waitFor("[-- device closed --]");
    await cli.waitForStderr("chardev-hub: device 'vm' closed (reconnecting every 100 ms)");
    await qmp.waitFor("CHARDEV_DEVICE_CLOSED");

    await until(() => vm.connections.length === 2, "the command to connect again");
    await client.waitFor("[-- device back --]");
    await cli.waitForStderr("chardev-hub: device 'vm' is back");
    await qmp.waitFor("CHARDEV_DEVICE_BACK");
    vm.connections[1]!.write(lines(100, 100));
    await client.waitFor(lines(199, 1));
    const expected = `${lines(0, 100)}\r\n[-- device closed --]\r\n\r\n[-- device back --]\r\n${lines(100, 100)}`;
    expect(client.text).toBe(expected);
    // Input reaches the device again.
    client.send("typed after the comeback\r");
    await until(() => Buffer.concat(vm.received).toString().includes("typed after the comeback"), "the VM to get the input");
    expect(cli.ended).toBeNull();
    await until(() => readText(log) === expected, "the log to hold the whole stream");
    const back = JSON.parse(qmp.text.split("\r\n").find((line) => line.includes("CHARDEV_DEVICE_BACK"))!);
    expect(back.data).toEqual({ id: "vm" });
    expect((await cli.stop("SIGTERM")).code).toBe(0);
    client.close();
    qmp.close();
  });
});
