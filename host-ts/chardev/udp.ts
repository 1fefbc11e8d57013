// `udp`: a UDP socket with one remote (QEMU's char-udp). Every write is one datagram to the
// remote; every datagram from the remote is input. The socket is connected (connect(2)), so
// datagrams from anyone else are dropped, as QEMU's connected socket drops them.

import { ChardevError } from "../errors.ts";
import { ERRNO, strerror } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import { parseBool } from "../options.ts";
import { quoteInput } from "../limits.ts";
import type { DatagramSocket, HostDatagram } from "../runtime/types.ts";
import type { OptionSchema } from "../option_schema.ts";
import { Chardev, type BackendData, type ChardevContext, defineDriver, startedOrDestroyed, runtimePart } from "./_chardev.ts";
import { PushedInputHold } from "./_pushed_input.ts";

/**
 * Largest datagram one write sends: the most an IPv4 UDP datagram can carry. A longer write
 * takes this much and the writer sends the rest next (QEMU would send it whole and fail).
 */
export const MAX_DATAGRAM_BYTES = 65507;

/** Output queued for the kernel before writes answer EAGAIN (a datagram never waits for a peer, only for the kernel). */
const SEND_HIGH_WATER_BYTES = 256 * 1024;

/**
 * Input held while the holder cannot take it, like a kernel receive buffer (Linux's default
 * rmem, 208 KiB): beyond it datagrams are dropped, as the kernel drops them when QEMU stops
 * reading. A UDP socket cannot be paused, so without this a silent holder would grow memory.
 */
const RECEIVE_HOLD_BYTES = 208 * 1024;

/** A udp chardev's settings, checked. */
export interface UdpOptions {
  readonly remote: { readonly host: string; readonly port: number };
  /** "" is any address; port 0 a free port. */
  readonly local: { readonly host: string; readonly port: number };
  /** From `ipv4`/`ipv6` of the remote: null lets the remote's form decide (a name: IPv4). */
  readonly family: 4 | 6 | null;
}

/**
 * A udp chardev. Made by the registry from `-chardev udp,...` or QMP `chardev-add`.
 *
 * @example Send to a port on this machine, hear its answers
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * await reg.add("udp,id=net0,host=127.0.0.1,port=4555,localaddr=127.0.0.1,localport=4556");
 * reg.query().find((c) => c.label === "net0")?.filename; // "udp:127.0.0.1:4555@127.0.0.1:4556"
 * ```
 */
export class UdpChardev extends Chardev {
  readonly kind = "udp";
  #socket: DatagramSocket | null = null;
  /** While input waits for the holder: bytes held since, and datagrams dropped past the hold. */
  readonly #hold = new PushedInputHold(RECEIVE_HOLD_BYTES);
  #droppedDatagrams = 0;

  constructor(id: string, context: ChardevContext, readonly options: UdpOptions) {
    super(id, context);
  }

  /** Datagrams dropped because the holder took no input for too long. */
  get droppedDatagrams(): number {
    return this.#droppedDatagrams;
  }

  /** Our bound end (the port picked when `localport` was 0); null before open and after close. */
  get local(): { host: string; port: number } | null {
    return this.#socket?.local ?? null;
  }

  /** QEMU's legacy spec form: `udp:REMOTE:PORT@LOCAL:PORT`, numeric once open. */
  override get filename(): string {
    const remote = this.#socket?.remote ?? this.options.remote;
    const local = this.#socket?.local ?? this.options.local;
    return `udp:${remote.host}:${remote.port}@${local.host}:${local.port}`;
  }

  /** Binds and connects. Throws ChardevError OPEN_FAILED, leaving nothing open. */
  async start(udp: HostDatagram): Promise<void> {
    const { remote, local, family } = this.options;
    try {
      this.#socket = await udp.open({ remote, local, family }, { message: (data) => this.#arrived(data) });
    } catch (error) {
      throw new ChardevError("OPEN_FAILED", `udp: could not open a socket to ${quoteInput(remote.host)}:${remote.port}: ${strerror(error)}`);
    }
    // QEMU leaves a udp chardev closed for good (no connection ever comes), so its hub would
    // skip it; a datagram socket can send from the start, so we report it open.
    this.emitEvent(ChrEvent.OPENED);
  }

  #arrived(data: Uint8Array): void {
    if (!this.#hold.arrive(data, (bytes) => this.deliverInput(bytes))) this.#droppedDatagrams++;
  }

  protected override resumeInput(): void {
    this.#hold.resume();
  }

  /** One datagram of at most MAX_DATAGRAM_BYTES; -EAGAIN while the kernel has not taken what is queued. */
  protected writeOut(data: Uint8Array): number {
    const socket = this.#socket;
    if (!socket) return -ERRNO.EIO;
    if (socket.bufferedBytes >= SEND_HIGH_WATER_BYTES) return -ERRNO.EAGAIN;
    const taken = Math.min(data.length, MAX_DATAGRAM_BYTES);
    // `data` views WASM memory that the next write reuses; the runtime keeps what it is given.
    socket.send(data.slice(0, taken));
    return taken;
  }

  override addWatch(callback: () => void): (() => void) | null {
    const socket = this.#socket;
    if (!socket) return null;
    if (socket.bufferedBytes < SEND_HIGH_WATER_BYTES) {
      // Room now: at the end of this turn (a timer cost ≥ 1 ms a wait); the next send is taken.
      let waiting = true;
      queueMicrotask(() => {
        if (waiting) callback();
        waiting = false;
      });
      return () => void (waiting = false);
    }
    return socket.onDrain(callback);
  }

  override async destroy(): Promise<void> {
    this.#socket?.close();
    this.#socket = null;
    // QEMU's finalize sends CLOSED.
    if (this.beOpen) this.emitEvent(ChrEvent.CLOSED);
    await super.destroy();
  }
}

// ---- options: `-chardev` keys and QAPI ChardevUdp ----

/** QEMU's qemu_chr_parse_udp: `-chardev` keys to QAPI ChardevUdp (`remote`, and `local` when a local key is given). */
function udpDataFromOptions(options: Map<string, string>): BackendData {
  const port = options.get("port");
  if (!port) throw new ChardevError("MISSING_PARAMETER", "chardev: udp: remote port not specified");
  const remote: Record<string, unknown> = { host: options.get("host") || "localhost", port };
  for (const key of ["ipv4", "ipv6"]) {
    if (options.has(key)) remote[key] = parseBool(key, options.get(key)!);
  }
  const data: BackendData = { remote: { type: "inet", data: remote } };
  const localaddr = options.get("localaddr") || "";
  const localport = options.get("localport") || "";
  if (localaddr !== "" || localport !== "") {
    data.local = { type: "inet", data: { host: localaddr, port: localport || "0" } };
  }
  return data;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The InetSocketAddress members we take; others QEMU has (`to`, `numeric`, ...) are refused by name. */
const INET_MEMBERS: Record<string, "string" | "boolean"> = { host: "string", port: "string", ipv4: "boolean", ipv6: "boolean" };

/** QAPI SocketAddressLegacy of kind inet, checked as QAPI checks it. */
function inetFromQapi(value: unknown, where: string): { host: string; port: number; ipv4?: boolean; ipv6?: boolean } {
  if (!isObject(value)) throw new ChardevError("INVALID_VALUE", `Invalid parameter type for '${where}', expected: object`);
  for (const key of Object.keys(value)) {
    if (key !== "type" && key !== "data") throw new ChardevError("INVALID_PARAMETER", `Parameter '${where}.${quoteInput(key)}' is unexpected`);
  }
  if (typeof value.type !== "string") throw new ChardevError("MISSING_PARAMETER", `Parameter '${where}.type' is missing`);
  if (value.type === "unix" || value.type === "fd" || value.type === "vsock") {
    // QEMU's socket_dgram text.
    throw new ChardevError("INVALID_PARAMETER", "socket type unsupported for datagram");
  }
  if (value.type !== "inet") throw new ChardevError("INVALID_VALUE", `Parameter '${where}.type' does not accept value '${quoteInput(value.type)}'`);
  const inet = value.data;
  if (!isObject(inet)) throw new ChardevError("INVALID_VALUE", `Invalid parameter type for '${where}.data', expected: object`);
  for (const [key, member] of Object.entries(inet)) {
    const expected = INET_MEMBERS[key];
    if (!expected) throw new ChardevError("INVALID_PARAMETER", `Parameter '${where}.data.${quoteInput(key)}' is unexpected`);
    if (typeof member !== expected) throw new ChardevError("INVALID_VALUE", `Invalid parameter type for '${where}.data.${key}', expected: ${expected}`);
  }
  if (inet.host === undefined) throw new ChardevError("MISSING_PARAMETER", `Parameter '${where}.data.host' is missing`);
  if (inet.port === undefined) throw new ChardevError("MISSING_PARAMETER", `Parameter '${where}.data.port' is missing`);
  const portText = inet.port as string;
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new ChardevError("INVALID_VALUE", `udp: port '${quoteInput(portText)}' is not a number from 0 to 65535`);
  }
  return { host: inet.host as string, port, ipv4: inet.ipv4 as boolean | undefined, ipv6: inet.ipv6 as boolean | undefined };
}

/**
 * Checked settings from QAPI ChardevUdp `data` (`remote` required, `local` optional).
 * Throws ChardevError with QEMU's texts where QEMU has one.
 *
 * @example The remote only: any local address, a free port
 * ```ts
 * udpOptionsFromData({ remote: { type: "inet", data: { host: "127.0.0.1", port: "4555" } } });
 * // { remote: { host: "127.0.0.1", port: 4555 }, local: { host: "", port: 0 }, family: null }
 * ```
 */
export function udpOptionsFromData(data: BackendData): UdpOptions {
  if (data.remote === undefined) throw new ChardevError("MISSING_PARAMETER", "Parameter 'backend.data.remote' is missing");
  const remote = inetFromQapi(data.remote, "backend.data.remote");
  if (remote.port === 0) throw new ChardevError("INVALID_VALUE", "udp: the remote port must not be 0");
  const local = data.local === undefined ? { host: "", port: 0 } : inetFromQapi(data.local, "backend.data.local");
  // QEMU's inet_ai_family_from_address: only one of the two on picks that family.
  const v4 = remote.ipv4 === true || remote.ipv6 === false;
  const v6 = remote.ipv6 === true || remote.ipv4 === false;
  const family = v4 && !v6 ? 4 : v6 && !v4 ? 6 : null;
  return { remote: { host: remote.host || "localhost", port: remote.port }, local: { host: local.host, port: local.port }, family };
}

/**
 * The `udp` backend kind (built in; see docs/socket.md).
 *
 * @example Two chardevs that talk to each other over loopback
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * await reg.add("udp,id=a,host=127.0.0.1,port=4556,localaddr=127.0.0.1,localport=4555");
 * await reg.add("udp,id=b,host=127.0.0.1,port=4555,localaddr=127.0.0.1,localport=4556");
 * ```
 */
/**
 * `udp`'s options (QEMU's ChardevUdp). The keys make QMP's `remote` and `local` addresses
 * (udpDataFromOptions), so they have no member of their own.
 */
export const udpOptions: OptionSchema = [
  { key: "host", member: null, via: "remote", type: "string", default: "localhost", help: "where each write goes as one datagram, and the only sender whose datagrams are taken" },
  { key: "port", member: null, via: "remote", type: "string", help: "the remote port (required)" },
  { key: "localaddr", member: null, via: "local", type: "string", help: "the local address to bind" },
  { key: "localport", member: null, via: "local", type: "string", default: "any", help: "the local port to bind" },
  { key: "ipv4", member: null, via: "remote", type: "bool", help: "IPv4 only" },
  { key: "ipv6", member: null, via: "remote", type: "bool", help: "IPv6 only" },
  { member: "remote", type: "object", required: true, help: "QMP's SocketAddressLegacy of type `inet`: `{type: \"inet\", data: {host, port}}`" },
  { member: "local", type: "object", help: "QMP: the local address, the same shape" },
];

export const udpDriver = defineDriver({
  type: "udp",
  options: udpOptions,
  // The keys make QMP's two addresses, as QEMU's qemu_chr_parse_udp: a hook.
  fromOptions: udpDataFromOptions,
  async open(id, data, context) {
    const options = udpOptionsFromData(data);
    const udp = runtimePart(context, "udp", (runtime) => `udp: the ${runtime} runtime has no UDP sockets`);
    return startedOrDestroyed(new UdpChardev(id, context, options), (chardev) => chardev.start(udp));
  },
});
