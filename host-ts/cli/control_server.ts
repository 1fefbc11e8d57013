// The control socket (`-control PATH`): a UNIX socket, mode 0600, through which the same
// binary lists the run's consoles, tells who is attached, and attaches a terminal to a console
// (`chardev-hub list | who | attach | tail`). The protocol is line-delimited JSON, one request
// and one answer per line, documented in docs/control.md; an `attach` request turns its
// connection into a raw byte stream that is a backend of the console's hub.

import { AttachedClientChardev } from "../chardev/_attached_client.ts";
import type { Chardev } from "../chardev/_chardev.ts";
import type { HubBackendOptions, HubBackendStats, HubChardev } from "../chardev/hub.ts";
import { ChardevError } from "../errors.ts";
import { MAX_RING_BYTES, quoteInput } from "../limits.ts";
import type { HostRuntime, NetAddress, NetConnection, NetListener, TlsOptions } from "../runtime/types.ts";
import { loopbackPeerRefusal } from "../chardev/_peer_access.ts";
import type { ConsoleDirectory, ConsoleEntry } from "./console_directory.ts";

/** A request line longer than this is refused and its connection closed (nobody needs more). */
export const MAX_CONTROL_LINE_BYTES = 4096;
/** Connections served at once (command connections and attached clients together). */
export const MAX_CONTROL_CONNECTIONS = 256;
/** Where the default setup puts the control socket, and where the client looks by default. */
export const DEFAULT_CONTROL_PATH = "run/chardev-hub.sock";
/** How long a refused connection's last answer may take to leave before it is closed anyway. */
const CLOSE_FLUSH_MS = 1000;
/** Kinds of hub backend that are not people (counted out of "N others", and of `list`'s rw/ro). */
export const UNATTENDED_KINDS: ReadonlySet<string> = new Set(["file", "ringbuf", "null", "asciicast", "pipe"]);
/** The largest window size a client may ask for (a terminal's cells, as `stty` takes them). */
const MAX_WINDOW_CELLS = 10_000;

/** What the server needs of the run it serves. */
export interface ControlServerOptions {
  readonly runtime: HostRuntime;
  /** The socket file; or, with `tcp`, the `-control` value (for messages). */
  readonly path: string;
  /**
   * Listen on TCP instead of `path` (`-control tcp:HOST:PORT[,tls-creds=ID]`, control_address.ts):
   * with `tls`, every connection is a TLS session (a client certificate from the CA when it
   * verifies peers); without, only our own user is served (loopback, as `access=user`).
   */
  readonly tcp?: { readonly host: string; readonly port: number; readonly tls: TlsOptions | null };
  /** The run's consoles. */
  readonly directory: ConsoleDirectory;
  /** A chardev by id: a console's device, which takes a read-write client's window size when it can (`resize`). */
  readonly findChardev: (id: string) => Chardev | undefined;
}

/** One attached client, as `who` shows it. */
interface Attached {
  readonly id: string;
  readonly console: string;
  readonly hub: HubChardev;
  readonly chardev: AttachedClientChardev;
  readonly uid: number | null;
  readonly since: number;
  /** `tail`: no notices on its stream (a script reads the console's bytes only). */
  readonly quiet: boolean;
}

/**
 * Who is on the other end of a backend, where known: an attached client's uid, or what the
 * hub knows of a listener's connection (`max-clients`: peer, uid, since, its listener).
 */
function whoIsOn(stats: HubBackendStats, client: Attached | undefined): Record<string, unknown> {
  if (client) return { uid: client.uid, since: client.since, peer: "control" };
  const known: Record<string, unknown> = {};
  if (stats.uid !== undefined) known.uid = stats.uid;
  if (stats.since !== undefined) known.since = stats.since;
  if (stats.peer !== undefined) known.peer = stats.peer;
  if (stats.listener !== undefined) known.listener = stats.listener;
  if (stats.clients !== undefined) known.clients = stats.clients;
  return known;
}

/** A mistake in a request: answered as `{"error": message}`; the connection stays. */
class RequestError extends Error {}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `[-- uid 1001 attached ro --]` as conserver shows a client, or without a uid where unknown. */
function describeClient(client: Attached): string {
  return client.uid === null ? `client ${client.id}` : `uid ${client.uid}`;
}

function noticeLine(text: string): string {
  return `\r\n[-- ${text} --]\r\n`;
}

function stringField(request: Record<string, unknown>, name: string): string {
  const value = request[name];
  if (typeof value !== "string" || value === "") throw new RequestError(`control: '${name}' must be a non-empty string`);
  return value;
}

/** A window dimension: a positive integer no larger than MAX_WINDOW_CELLS, or absent. */
function cellsField(request: Record<string, unknown>, name: string): number | undefined {
  const value = request[name];
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > MAX_WINDOW_CELLS) {
    throw new RequestError(`control: '${name}' must be an integer from 1 to ${MAX_WINDOW_CELLS}`);
  }
  return value as number;
}

/**
 * The control socket of one run.
 *
 * @example Serve the consoles of a run on run/chardev-hub.sock
 * ```ts
 * import { detectRuntime } from "../runtime/detect.ts";
 * import type { ConsoleDirectory } from "./console_directory.ts";
 * declare const directory: ConsoleDirectory; // the run's consoles
 * const runtime = await detectRuntime();
 * const server = await ControlServer.start({ runtime, path: "run/chardev-hub.sock", directory, findChardev: () => undefined });
 * // ... later
 * server.close();
 * ```
 */
export class ControlServer {
  readonly #options: ControlServerOptions;
  #listener: NetListener | null = null;
  readonly #connections = new Set<NetConnection>();
  readonly #attached = new Map<string, Attached>();
  #nextClient = 1;

  private constructor(options: ControlServerOptions) {
    this.#options = options;
  }

  /**
   * Listens on `options.path` (created 0600; a stale socket file is replaced, a live one
   * refused). Throws ChardevError OPEN_FAILED with the reason.
   */
  static async start(options: ControlServerOptions): Promise<ControlServer> {
    const net = options.runtime.net;
    if (!net) throw new ChardevError("UNSUPPORTED", `control: ${options.runtime.name} has no sockets`);
    const server = new ControlServer(options);
    const tcp = options.tcp;
    const address: NetAddress = tcp ? { transport: "tcp", host: tcp.host, port: tcp.port } : { transport: "unix", path: options.path };
    // A failed handshake (no certificate, another CA's) is the client's to hear about; we note it on one line.
    const onTlsFailure = (peer: string, reason: string) => options.runtime.process?.print("stderr", `control: refused a TLS connection from ${quoteInput(peer)}: ${quoteInput(reason)}\n`);
    try {
      server.#listener = await net.listen(address, (connection) => server.#accept(connection), tcp?.tls ? { tls: tcp.tls, onTlsFailure } : undefined);
    } catch (error) {
      const code = (error as { code?: string }).code;
      const why = code === "EADDRINUSE" ? "another chardev-hub answers on it" : quoteInput((error as Error).message);
      throw new ChardevError("OPEN_FAILED", `control: cannot listen on ${quoteInput(options.path)}: ${why}`);
    }
    return server;
  }

  /** The socket file it listens on (or the `-control tcp:...` value). */
  get path(): string {
    return this.#options.path;
  }

  /** Where it listens: with `tcp`, the port it got when asked for port 0. */
  get address(): NetAddress | null {
    return this.#listener?.address ?? null;
  }

  /**
   * A plain TCP control socket (loopback only) serves our own user only, as an `access=user`
   * socket does: another local account must not attach to our consoles. TLS connections
   * proved themselves with a certificate (or the listener does not ask for one: its owner's choice).
   */
  #accept(connection: NetConnection): void {
    const tcp = this.#options.tcp;
    if (tcp && !tcp.tls) {
      // Named by where it listens (the port it got, not the 0 it may have asked for).
      const bound = this.address;
      const name = bound?.transport === "tcp" ? `tcp:${bound.host.includes(":") ? `[${bound.host}]` : bound.host}:${bound.port}` : this.#options.path;
      const refusal = loopbackPeerRefusal(this.#options.runtime, "control", name, "user", connection.local, connection.remote);
      if (refusal) {
        connection.close();
        this.#options.runtime.process?.print("stderr", `${refusal.replace(/; access=any allows it$/, "")}\n`);
        return;
      }
    }
    this.#serve(connection);
  }

  /** Stops listening (the socket file goes) and lets every client go. */
  close(): void {
    this.#listener?.close();
    this.#listener = null;
    for (const client of [...this.#attached.values()]) client.chardev.disconnect();
    for (const connection of this.#connections) connection.close();
    this.#connections.clear();
  }

  /**
   * One connection: requests, line by line, until it closes or attaches. The socket's mode
   * (0600, in a 0700 directory by default) keeps other users out: only our uid, or root, can
   * connect to it at all.
   */
  #serve(connection: NetConnection): void {
    if (this.#connections.size >= MAX_CONTROL_CONNECTIONS) {
      connection.write(encoder.encode(`${JSON.stringify({ error: `control: too many connections (at most ${MAX_CONTROL_CONNECTIONS})` })}\n`));
      setTimeout(() => connection.close(), CLOSE_FLUSH_MS);
      return;
    }
    this.#connections.add(connection);
    let pending = new Uint8Array(0);
    let attached: AttachedClientChardev | null = null;
    /** Set once the connection is to end after its last answer is out. */
    let closing = false;
    const closeAfterAnswer = () => {
      closing = true;
      connection.pause();
      this.#connections.delete(connection);
      if (connection.bufferedBytes === 0) connection.close();
      else setTimeout(() => connection.close(), CLOSE_FLUSH_MS); // a peer that does not read
    };
    const answer = (value: unknown) => connection.write(encoder.encode(`${JSON.stringify(value)}\n`));
    connection.start({
      data: (chunk) => {
        if (attached) return attached.received(chunk);
        const joined = new Uint8Array(pending.length + chunk.length);
        joined.set(pending);
        joined.set(chunk, pending.length);
        pending = joined;
        for (;;) {
          const end = pending.indexOf(0x0a);
          if (end < 0) break;
          const line = decoder.decode(pending.subarray(0, end));
          pending = pending.slice(end + 1);
          const outcome = this.#handle(line, connection, answer);
          if (outcome) {
            attached = outcome;
            // Keys typed right behind the attach line, in the same read.
            return pending.length > 0 ? attached.received(pending) : true;
          }
        }
        if (pending.length > MAX_CONTROL_LINE_BYTES) {
          answer({ error: `control: request longer than ${MAX_CONTROL_LINE_BYTES} bytes` });
          pending = new Uint8Array(0);
          closeAfterAnswer();
          return false;
        }
        return true;
      },
      drain: () => {
        if (closing) connection.close();
        else attached?.drained();
      },
      closed: () => {
        this.#connections.delete(connection);
        attached?.closed();
      },
    });
  }

  /** Answers one request line; returns the client's chardev when the connection attached. */
  #handle(line: string, connection: NetConnection, answer: (value: unknown) => void): AttachedClientChardev | null {
    if (line.trim() === "") return null;
    if (line.length > MAX_CONTROL_LINE_BYTES) {
      answer({ error: `control: request longer than ${MAX_CONTROL_LINE_BYTES} bytes` });
      return null;
    }
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch {
      answer({ error: `control: not a JSON object: '${quoteInput(line.slice(0, 64))}'` });
      return null;
    }
    try {
      if (typeof request !== "object" || request === null || Array.isArray(request)) throw new RequestError("control: a request is a JSON object with a 'cmd'");
      const fields = request as Record<string, unknown>;
      switch (fields.cmd) {
        case "list":
          answer({ consoles: this.#options.directory.list().map((entry) => this.#describeConsole(entry)) });
          return null;
        case "who":
          answer(this.#who(this.#console(fields)));
          return null;
        case "attach":
          return this.#attach(this.#console(fields), fields, connection, answer);
        case "mode":
          answer(this.#mode(this.#client(fields), fields));
          return null;
        case "break":
          answer(this.#break(this.#client(fields)));
          return null;
        case "resize":
          answer(this.#resize(this.#client(fields), fields));
          return null;
        default:
          throw new RequestError(`control: unknown command '${quoteInput(String(fields.cmd).slice(0, 64))}' (list, who, attach, mode, break, resize)`);
      }
    } catch (error) {
      if (!(error instanceof RequestError) && !(error instanceof ChardevError)) throw error;
      answer({ error: error.message });
      return null;
    }
  }

  #console(request: Record<string, unknown>): ConsoleEntry {
    const name = stringField(request, "console");
    const entry = this.#options.directory.find(name);
    if (!entry) throw new RequestError(`control: no console '${quoteInput(name.slice(0, 64))}'`);
    return entry;
  }

  #client(request: Record<string, unknown>): Attached {
    const id = stringField(request, "client");
    const client = this.#attached.get(id);
    if (!client) throw new RequestError(`control: no attached client '${quoteInput(id.slice(0, 64))}'`);
    return client;
  }

  #describeConsole(entry: ConsoleEntry): Record<string, unknown> {
    const kinds = new Map(entry.hub.backends.map((chardev) => [chardev.id, chardev.kind]));
    return {
      name: entry.name,
      device: entry.deviceId,
      "device-open": entry.deviceOpen,
      closed: entry.closed ?? false,
      since: entry.since,
      ring: entry.hub.options.ring,
      input: entry.hub.options.input,
      clients: entry.hub.stats().map((stats) => {
        const client = this.#attached.get(stats.id);
        return {
          id: stats.id,
          kind: kinds.get(stats.id) ?? (stats.clients !== undefined ? "listener" : ""),
          open: stats.open,
          mode: stats.mode,
          policy: stats.policy,
          "bytes-in": stats.bytesIn,
          "bytes-out": stats.bytesOut,
          "bytes-dropped": stats.bytesDropped,
          lag: stats.lag,
          ...whoIsOn(stats, client),
        };
      }),
    };
  }

  /** Every open backend of the console: attached clients with their uid, the others by kind. */
  #who(entry: ConsoleEntry): Record<string, unknown> {
    const kinds = new Map(entry.hub.backends.map((chardev) => [chardev.id, chardev.kind]));
    const clients = entry.hub.stats().filter((stats) => stats.open).map((stats) => {
      const client = this.#attached.get(stats.id);
      return { id: stats.id, kind: kinds.get(stats.id) ?? (stats.clients !== undefined ? "listener" : ""), mode: stats.mode, ...whoIsOn(stats, client) };
    });
    return { console: entry.name, clients };
  }

  #attach(entry: ConsoleEntry, request: Record<string, unknown>, connection: NetConnection, answer: (value: unknown) => void): AttachedClientChardev {
    const mode = request.mode ?? "rw";
    if (mode !== "rw" && mode !== "ro") throw new RequestError("control: 'mode' must be 'rw' or 'ro'");
    // A client that asks for nothing gets the console's own default (named consoles: the screen).
    const replay = request.replay ?? (entry.hub.isRing ? (entry.replay ?? 0) : 0);
    const hub = entry.hub;
    // `screen`, or `screen:LINES` (a console's default may name the scrollback lines it keeps).
    const screen = typeof replay === "string" && /^screen(:\d{1,9})?$/.test(replay);
    if (screen && !hub.isRing) {
      throw new RequestError(`control: replay=screen is not available: console '${quoteInput(entry.name)}' has an unbuffered hub (ring=0), which keeps no screen`);
    }
    if (!screen && (!Number.isSafeInteger(replay) || (replay as number) < 0 || (replay as number) > MAX_RING_BYTES)) {
      throw new RequestError(`control: 'replay' must be a byte count from 0 to ${MAX_RING_BYTES}, or 'screen'`);
    }
    const cols = cellsField(request, "cols");
    const rows = cellsField(request, "rows");
    // A ring hub lets a slow client fall behind (drop, with the replay it asked for); QEMU's
    // unbuffered hub knows only `block`, and has no history to replay.
    const backendOptions: HubBackendOptions = hub.isRing ? { policy: "drop", replay: replay as HubBackendOptions["replay"], mode } : { mode };
    const id = `attach-${this.#nextClient++}`;
    const peers = this.#options.runtime.peers;
    const others = this.#othersOn(hub);
    const client: Attached = {
      id,
      console: entry.name,
      hub,
      // A TLS client may be anyone with a certificate: its uid is not ours to claim.
      uid: peers && !this.#options.tcp?.tls ? peers.ownUid : null,
      since: Date.now(),
      quiet: request.quiet === true,
      chardev: null!,
    };
    const chardev = hub.attachNew((context) => new AttachedClientChardev(id, context, connection, () => this.#left(client)), backendOptions);
    (client as { chardev: AttachedClientChardev }).chardev = chardev;
    this.#attached.set(id, client);
    answer({ attached: id, console: entry.name, mode, uid: client.uid, others });
    if (!client.quiet) chardev.notify(noticeLine(`${entry.name}: attached ${mode}, ${others} ${others === 1 ? "other" : "others"}`));
    this.#tellOthers(client, `${describeClient(client)} attached ${mode}`);
    // The answer and the notice go out first; then the replay and the live stream.
    chardev.start();
    if (mode === "rw" && cols !== undefined && rows !== undefined) this.#resizeDevice(entry, id, cols, rows);
    return chardev;
  }

  /** Open backends of `hub` that are people (terminals, sockets, tabs, attached clients), not logs. */
  #othersOn(hub: HubChardev): number {
    const kinds = new Map(hub.backends.map((chardev) => [chardev.id, chardev.kind]));
    return hub.stats().filter((stats) => stats.open && !UNATTENDED_KINDS.has(kinds.get(stats.id) ?? "")).length;
  }

  #tellOthers(client: Attached, text: string): void {
    for (const other of this.#attached.values()) {
      if (other !== client && other.hub === client.hub && !other.quiet) other.chardev.notify(noticeLine(text));
    }
  }

  /** The client's connection ended (it detached, was evicted, or the server closes). */
  #left(client: Attached): void {
    if (!this.#attached.delete(client.id)) return;
    // An evicted client is no longer the hub's; one whose hub went away neither.
    if (client.hub.backends.includes(client.chardev)) client.hub.detachBackend(client.id);
    this.#tellOthers(client, `${describeClient(client)} detached`);
  }

  /** `f` (rw, with force: the floor under input=exclusive) and `s` (ro). */
  #mode(client: Attached, request: Record<string, unknown>): Record<string, unknown> {
    const mode = request.mode;
    if (mode !== "rw" && mode !== "ro") throw new RequestError("control: 'mode' must be 'rw' or 'ro'");
    client.hub.setBackendMode(client.id, mode);
    if (mode === "rw" && request.force === true) client.hub.giveFloor(client.id);
    if (!client.quiet) client.chardev.notify(noticeLine(`${client.console}: now ${mode}${mode === "rw" && request.force === true ? ", with the floor" : ""}`));
    this.#tellOthers(client, `${describeClient(client)} is now ${mode}`);
    return { client: client.id, mode };
  }

  /**
   * `b`: the BREAK goes through the hub to the console's device, which sends it to its far end
   * (IAC BREAK on a telnet socket). A device that cannot is refused here, so the client's
   * notice says so instead of "BREAK sent".
   */
  #break(client: Attached): Record<string, unknown> {
    const mode = client.hub.stats().find((stats) => stats.id === client.id)?.mode;
    if (mode !== "rw") throw new RequestError(`control: client '${client.id}' is read-only: a BREAK from it would be discarded`);
    const entry = this.#options.directory.find(client.console);
    const device = entry ? this.#options.findChardev(entry.deviceId) : undefined;
    if (device && !device.canSendBreak) {
      throw new RequestError(`control: device '${quoteInput(device.id)}' cannot send a BREAK (${device.kind}): not sent`);
    }
    client.chardev.sendBreak();
    return { client: client.id, break: true };
  }

  /** A read-write client's window size goes to the console's device, when the device has a size. */
  #resize(client: Attached, request: Record<string, unknown>): Record<string, unknown> {
    const cols = cellsField(request, "cols");
    const rows = cellsField(request, "rows");
    if (cols === undefined || rows === undefined) throw new RequestError("control: resize needs 'cols' and 'rows'");
    const entry = this.#options.directory.find(client.console);
    const mode = client.hub.stats().find((stats) => stats.id === client.id)?.mode;
    const resized = entry !== undefined && mode === "rw" && this.#resizeDevice(entry, client.id, cols, rows);
    return { client: client.id, resized };
  }

  /**
   * A hub that agrees on a size among its clients (`size=latest|smallest|...`) is told the
   * client's, and the device gets the agreed one; without such a hub the device gets the
   * client's own. True when the device has a size at all.
   */
  #resizeDevice(entry: ConsoleEntry, clientId: string, cols: number, rows: number): boolean {
    const hub = entry.hub as HubChardev & { resize?(id: string, cols: number, rows: number): void; readonly terminalSize?: { cols: number; rows: number } };
    let size = { cols, rows };
    if (typeof hub.resize === "function") {
      hub.resize(clientId, cols, rows);
      if (hub.terminalSize) size = hub.terminalSize;
    }
    const device = this.#options.findChardev(entry.deviceId) as (Chardev & { resize?: (cols: number, rows: number) => Promise<void> }) | undefined;
    if (typeof device?.resize !== "function") return false;
    void device.resize(size.cols, size.rows).catch(() => {});
    return true;
  }
}
