// QMP clients over the transports a monitor can sit on, all real: a ringbuf driven with
// backendWrite, a FIFO pair (the `pipe` chardev), and UNIX and TCP sockets made by startQmp.
// Each one sends raw bytes and hands back whole messages as the wire carried them.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { ChardevRegistry } from "../../host-ts/mod.ts";
import { QmpMonitor, startQmp } from "../../host-ts/qmp.ts";
import type { SocketChardev } from "../../host-ts/chardev/socket.ts";

/** Waits (on the event loop, without a clock) until `condition` holds; the test timeout bounds it. */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

export type TransportName = "ringbuf" | "fifo" | "unix" | "tcp";
export const TRANSPORTS: TransportName[] = ["ringbuf", "fifo", "unix", "tcp"];

const encoder = new TextEncoder();

/** The client side of one QMP conversation. */
export abstract class QmpTestClient {
  /** Everything received and not yet taken as a message. */
  protected received = "";
  /** Bytes received in all. */
  receivedBytes = 0;

  constructor(readonly monitor: QmpMonitor) {}

  /** Sends text (UTF-8) or raw bytes as one write. */
  abstract send(data: string | Uint8Array): void;

  /** Pulls what has arrived into `received` (transports that are not pushed to). */
  protected poll(): void {}

  protected take(text: string): void {
    this.received += text;
    this.receivedBytes += encoder.encode(text).length;
  }

  /** The next message exactly as sent (without its "\r\n"), once it has fully arrived. */
  async nextLine(): Promise<string> {
    await until(() => {
      this.poll();
      return this.received.includes("\r\n");
    });
    const end = this.received.indexOf("\r\n");
    const line = this.received.slice(0, end);
    this.received = this.received.slice(end + 2);
    return line;
  }

  /** The next message, parsed. */
  async next(): Promise<any> {
    return JSON.parse(await this.nextLine());
  }

  /** Sends one command and returns its answer (the client must have nothing else pending). */
  async execute(command: string, args?: Record<string, unknown>, id?: unknown): Promise<any> {
    this.send(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), ...(id !== undefined ? { id } : {}) }));
    return this.next();
  }

  /** Reads the greeting and completes negotiation. */
  async negotiate(): Promise<void> {
    await this.nextLine();
    const answer = await this.execute("qmp_capabilities");
    if (JSON.stringify(answer) !== '{"return":{}}') throw new Error(`negotiation failed: ${JSON.stringify(answer)}`);
  }

  abstract close(): Promise<void>;
}

/** The monitor on a ringbuf: input through backendWrite, output read back with ringbufRead. */
class RingbufClient extends QmpTestClient {
  constructor(
    readonly reg: ChardevRegistry,
    readonly id: string,
  ) {
    super(QmpMonitor.attach(reg, id));
  }
  send(data: string | Uint8Array): void {
    this.reg.backendWrite(this.id, typeof data === "string" ? encoder.encode(data) : data);
  }
  protected override poll(): void {
    this.take(this.reg.ringbufRead(this.id, 65536));
  }
  async close(): Promise<void> {
    this.monitor.detach();
  }
}

/** The monitor on a `pipe` chardev: we write PATH.in and read PATH.out, as a peer process would. */
export class FifoClient extends QmpTestClient {
  readonly #in: number;
  readonly #out: number;
  readonly #buffer = new Uint8Array(65536);
  readonly #decoder = new TextDecoder();

  constructor(monitor: QmpMonitor, fifoPath: string) {
    super(monitor);
    // The chardev holds both FIFOs open read-write, so neither open waits for a peer.
    this.#in = fs.openSync(`${fifoPath}.in`, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    this.#out = fs.openSync(`${fifoPath}.out`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  }
  send(data: string | Uint8Array): void {
    fs.writeSync(this.#in, typeof data === "string" ? encoder.encode(data) : data);
  }
  protected override poll(): void {
    for (;;) {
      let got: number;
      try {
        got = fs.readSync(this.#out, this.#buffer, 0, this.#buffer.length, null);
      } catch (error) {
        if ((error as { code?: string }).code === "EAGAIN") return;
        throw error;
      }
      if (got <= 0) return;
      this.take(this.#decoder.decode(this.#buffer.subarray(0, got), { stream: true }));
    }
  }
  async close(): Promise<void> {
    this.monitor.detach();
    fs.closeSync(this.#in);
    fs.closeSync(this.#out);
  }
}

/** A plain socket client (node:net) of a monitor made by startQmp. */
export class SocketClient extends QmpTestClient {
  closed = false;
  readonly #decoder = new TextDecoder();

  constructor(
    monitor: QmpMonitor,
    readonly socket: net.Socket,
  ) {
    super(monitor);
    socket.on("data", (chunk: Uint8Array) => this.take(this.#decoder.decode(chunk, { stream: true })));
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => {});
  }

  static async connect(monitor: QmpMonitor, options: net.NetConnectOpts): Promise<SocketClient> {
    const socket = net.connect(options);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new SocketClient(monitor, socket);
  }

  send(data: string | Uint8Array): void {
    this.socket.write(typeof data === "string" ? encoder.encode(data) : data);
  }

  /** Leaves; the monitor's chardev stays (the next client may come). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.socket.end();
    await until(() => this.closed);
  }
}

/** Where a monitor made by startQmp listens, for a client to connect to. */
export function connectOptionsOf(reg: ChardevRegistry, monitor: QmpMonitor): net.NetConnectOpts {
  const address = (reg.get(monitor.chardevId) as SocketChardev).address;
  return address.transport === "unix" ? { path: address.path } : { host: address.host, port: address.port };
}

/** A monitor with one connected client on `transport`, in a fresh scratch directory `dir`. */
export async function connectClient(reg: ChardevRegistry, transport: TransportName, dir: string): Promise<QmpTestClient> {
  switch (transport) {
    case "ringbuf":
      await reg.add("ringbuf,id=mon,size=65536");
      return new RingbufClient(reg, "mon");
    case "fifo": {
      const fifo = path.join(dir, "qmp");
      execFileSync("mkfifo", ["-m", "0600", `${fifo}.in`, `${fifo}.out`]);
      await reg.add(`pipe,id=mon,path=${fifo}`);
      return new FifoClient(QmpMonitor.attach(reg, "mon"), fifo);
    }
    case "unix":
    case "tcp": {
      const address = transport === "unix" ? `unix:${path.join(dir, "qmp.sock")}` : "tcp:127.0.0.1:0";
      const monitor = await startQmp(reg, `${address},server=on,wait=off`);
      return SocketClient.connect(monitor, connectOptionsOf(reg, monitor));
    }
  }
}
