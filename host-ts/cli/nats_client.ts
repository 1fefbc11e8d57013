// `chardev-hub list nats://HOST:PORT` and `chardev-hub attach|tail nats://HOST:PORT/NAME`: the
// client subcommands against consoles published on NATS (docs/nats.md) instead of a local
// control socket. `list` reads the console cards of the KV bucket; `attach` and `tail` follow
// `console.NAME.out` with the `nats` chardev's own viewer (role=viewer, so the offsets are
// checked the same way and a hole is the same `[-- N bytes missed --]` line), held as its
// frontend would hold it, and `attach` hands its typing to `console.NAME.in`. The terminal part
// is attach_terminal.ts's, shared with the local attach.

import type { NatsConnection } from "@nats-io/nats-core";
import type { JetStreamManager, MsgRequest } from "@nats-io/jetstream";
import { natsApi } from "../chardev/_nats_api.ts";
import type { ChardevContext } from "../chardev/_chardev.ts";
import { connectNats, describeNatsError, ensureStream, natsOptionsFromData, OFFSET_HEADER, outputSubject, type NatsOptions } from "../chardev/_nats_link.ts";
import { NatsViewerChardev } from "../chardev/_nats_viewer.ts";
import { CONSOLE_BUCKET, HEARTBEAT_MS, type ConsoleCard } from "../chardev/_nats_metadata.ts";
import { ChardevError } from "../errors.ts";
import { ChrEvent } from "../events.ts";
import { Core } from "../core.ts";
import { quoteInput } from "../limits.ts";
import { createTlsCredsX509, TLS_CREDS_X509 } from "../tls_creds.ts";
import type { HostRuntime } from "../runtime/types.ts";
import { type AttachStreamHandlers, type AttachTransport, runAttachSession } from "./attach_terminal.ts";
import { ClientError, type ClientOptions } from "./control_client.ts";

/** A card whose heartbeat is older than this many periods belongs to a console whose host stopped without closing it. */
const STALE_HEARTBEATS = 3;
/** Output the viewer may hand the screen before the screen says it is full. */
const SCREEN_CHUNK_BYTES = 64 * 1024;
/** The stream a console publishes to unless its card or `--stream` says otherwise. */
const DEFAULT_STREAM = "CONSOLES";
/** The chardev id of the client's viewer and the name of its NATS connection. */
const VIEWER_ID = "nats-attach";

/** Where a `nats://` argument points: servers, and (for attach and tail) the console. */
export interface NatsTarget {
  /** What was given, for messages. */
  readonly url: string;
  readonly servers: readonly string[];
  readonly console: string | null;
}

/** How the client logs in to NATS (the `nats` chardev's options of the same names). */
export interface NatsClientAuth {
  readonly creds?: string;
  readonly token?: string;
  readonly user?: string;
  readonly password?: string;
  /** The JetStream stream; by default the one on the console's card, else CONSOLES. */
  readonly stream?: string;
}

/** Whether a subcommand's argument is a NATS address rather than a console name. */
export function isNatsUrl(text: string): boolean {
  return /^(nats|tls):\/\//.test(text);
}

/**
 * `nats://HOST:PORT[/NAME]` (`tls://` too; several servers as `nats://a:4222,b:4222/NAME`).
 *
 * @example A console on a local server
 * ```ts
 * parseNatsTarget("nats://127.0.0.1:4222/vm1"); // { url: "nats://127.0.0.1:4222/vm1", servers: ["nats://127.0.0.1:4222"], console: "vm1" }
 * ```
 */
export function parseNatsTarget(text: string): NatsTarget {
  const match = /^(nats|tls):\/\/([^/]+)(?:\/([^/]*))?$/.exec(text);
  if (!match) throw new ClientError(`'${quoteInput(text.slice(0, 128))}' is not nats://HOST:PORT or nats://HOST:PORT/NAME`, 2);
  const [, scheme, hosts, name] = match;
  const servers = hosts.split(",").filter((host) => host !== "").map((host) => `${scheme}://${host}`);
  if (name !== undefined && name !== "" && !/^[A-Za-z0-9_-]{1,128}$/.test(name)) {
    throw new ClientError(`the console name in '${quoteInput(text.slice(0, 128))}' must be letters, digits, '-' or '_'`, 2);
  }
  return { url: text, servers, console: name ? name : null };
}

/** The `nats` chardev's checked options for this target (the same checks as `-chardev nats,...`). */
function targetOptions(target: NatsTarget, auth: NatsClientAuth, extra: Record<string, unknown> = {}): NatsOptions {
  try {
    return natsOptionsFromData({
      server: target.servers.join(","),
      console: target.console ?? "list",
      stream: auth.stream ?? DEFAULT_STREAM,
      ...(auth.creds !== undefined ? { creds: auth.creds } : {}),
      ...(auth.token !== undefined ? { token: auth.token } : {}),
      ...(auth.user !== undefined ? { user: auth.user } : {}),
      ...(auth.password !== undefined ? { password: auth.password } : {}),
      ...extra,
    });
  } catch (error) {
    if (error instanceof ChardevError) throw new ClientError(error.message, 2);
    throw error;
  }
}

/**
 * What the `nats` chardev's code needs around it, for a client that runs no registry: the
 * runtime (the transport, a creds file), the core, and warnings to stderr.
 */
async function clientContext(runtime: HostRuntime, warn: (line: string) => void): Promise<ChardevContext> {
  return { core: await Core.load(), runtime, qemuCompat: false, find: () => undefined, requestExit: () => {}, warn, tlsCreds: () => undefined };
}

/**
 * A NATS connection of the client's own, with TLS from `--tls-creds DIR` (QEMU's client file
 * names, as `--control tcp:` reads them) when given; a ClientError (status 1) says why not.
 */
async function connect(context: ChardevContext, options: NatsOptions, tlsCredsDir: string | null): Promise<NatsConnection> {
  try {
    const tls = tlsCredsDir === null ? null : await createTlsCredsX509({ "qom-type": TLS_CREDS_X509, id: VIEWER_ID, endpoint: "client", dir: tlsCredsDir, "verify-peer": true }, context.runtime);
    return await connectNats(VIEWER_ID, options, context, tls);
  } catch (error) {
    if (error instanceof ChardevError) throw new ClientError(error.message);
    throw error;
  }
}

/** Every console card in the bucket (none when the bucket does not exist yet). */
async function readCards(connection: NatsConnection): Promise<ConsoleCard[]> {
  let bucket;
  try {
    bucket = await new (natsApi().Kvm)(connection).open(CONSOLE_BUCKET);
    await bucket.status();
  } catch (error) {
    if (/not found/i.test(describeNatsError(error))) return [];
    throw new ClientError(`nats: could not read KV bucket '${CONSOLE_BUCKET}': ${describeNatsError(error)}`);
  }
  const cards: ConsoleCard[] = [];
  const names: string[] = [];
  try {
    for await (const key of await bucket.keys()) names.push(key);
    for (const key of names.sort()) {
      const entry = await bucket.get(key);
      if (!entry || entry.operation !== "PUT") continue;
      try {
        cards.push(JSON.parse(entry.string()) as ConsoleCard);
      } catch {
        // Not a card of ours: nothing to show.
      }
    }
  } catch (error) {
    // A user that may open the bucket but not list or read it (docs/nats.md, permissions).
    throw new ClientError(`nats: could not read KV bucket '${CONSOLE_BUCKET}': ${describeNatsError(error)}`);
  }
  return cards;
}

/** One card's state as a person reads it: open, closed, or stale (open, but no heartbeat for a while). */
function cardState(card: ConsoleCard, now: number): string {
  if (card.state !== "open") return card.state;
  const periods = (card.heartbeatSeconds || HEARTBEAT_MS / 1000) * 1000 * STALE_HEARTBEATS;
  return now - Date.parse(card.heartbeat) > periods ? "stale" : "open";
}

/** Seconds as `4 s`, `3 min`, `2 h`, `5 d`. */
function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

/** Cut a card's text field for a table cell (cards are other people's data). */
const cell = (value: unknown): string => (value === undefined || value === null || value === "" ? "-" : quoteInput(String(value).slice(0, 64)));

/**
 * `list nats://...`'s table: one row per console card.
 *
 * @example
 * ```ts
 * formatNatsList([], Date.now()); // "no consoles\n"
 * ```
 */
export function formatNatsList(cards: readonly ConsoleCard[], now: number): string {
  if (cards.length === 0) return "no consoles\n";
  const rows = [["CONSOLE", "HOST", "DEVICE", "SIZE", "CHARDEV", "STATE", "STARTED", "HEARTBEAT", "OUTPUT"]];
  for (const card of cards) {
    rows.push([
      cell(card.console),
      card.pid ? `${cell(card.host)}:${card.pid}` : cell(card.host),
      // Cards written before they named the device and the size show `-`.
      cell(card.device),
      Number.isSafeInteger(card.cols) && Number.isSafeInteger(card.rows) ? `${card.cols}x${card.rows}` : "-",
      cell(card.chardev),
      cardState(card, now),
      cell(String(card.started).replace("T", " ").slice(0, 19)),
      Number.isNaN(Date.parse(card.heartbeat)) ? "-" : `${formatAge(now - Date.parse(card.heartbeat))} ago`,
      typeof card.offset === "number" ? `${card.offset} B` : "-",
    ]);
  }
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((text, column) => (column === row.length - 1 ? text : text.padEnd(widths[column]))).join("  ")).join("\n") + "\n";
}

/** `list nats://HOST:PORT`: the consoles' cards as a table, or `--json`. */
export async function runNatsList(runtime: HostRuntime, options: ClientOptions, target: NatsTarget, auth: NatsClientAuth): Promise<number> {
  const host = runtime.process!;
  const context = await clientContext(runtime, (line) => host.print("stderr", `${line}\n`));
  const connection = await connect(context, targetOptions(target, auth), options.tlsCredsDir);
  try {
    const cards = await readCards(connection);
    const now = Date.now();
    if (options.json) {
      const consoles = cards.map((card) => ({ ...card, stale: cardState(card, now) === "stale" }));
      host.print("stdout", `${JSON.stringify({ consoles })}\n`);
    } else {
      host.print("stdout", formatNatsList(cards, now));
    }
    return 0;
  } finally {
    await connection.close().catch(() => {});
  }
}

/** The offset in a message's header (the console's byte offset of its first byte), or NaN. */
function offsetOf(message: { header: { get(key: string): string } } | null): number {
  return Number(message?.header.get(OFFSET_HEADER));
}

/** Whether a JetStream "get message" failed because there is no such message (10037). */
function noMessage(error: unknown): boolean {
  const code = (error as { api_error?: { err_code?: number } }).api_error?.err_code;
  return code === 10037 || /no message found/i.test(String((error as Error)?.message));
}

/**
 * Where `--replay BYTES` starts: the offset BYTES before the end of the console's last stored
 * message, and the stream sequence of the message holding it (a binary search over the
 * stream's sequences, each step the next message of this console at or after one), so the
 * viewer starts there instead of reading the whole stream to skip it. No sequence when the
 * wanted start is no longer stored (the viewer then reports the exact gap) or cannot be looked up.
 *
 * @example Where the last 4 KiB of vm1 start
 * ```ts
 * import type { JetStreamManager } from "@nats-io/jetstream";
 * declare const manager: JetStreamManager;
 * const { from, sequence } = await replayStart(manager, "CONSOLES", "vm1", 4096);
 * ```
 */
export async function replayStart(manager: JetStreamManager, stream: string, name: string, replay: number): Promise<{ from: number; sequence?: number }> {
  const subject = outputSubject(name);
  let last;
  try {
    last = await manager.streams.getMessage(stream, { last_by_subj: subject });
  } catch (error) {
    // No message yet: the console has written nothing, so there is nothing to replay.
    if (noMessage(error)) return { from: 0 };
    throw new ClientError(`nats: could not read where console '${name}' ends in stream '${stream}': ${describeNatsError(error)}`);
  }
  const end = offsetOf(last);
  if (!last || !Number.isSafeInteger(end)) return { from: 0 };
  const from = Math.max(0, end + last.data.length - replay);
  try {
    const info = await manager.streams.info(stream);
    let low = info.state.first_seq;
    let high = last.seq;
    let found: number | undefined;
    while (low <= high) {
      const middle = Math.floor((low + high) / 2);
      // STREAM.MSG.GET takes next_by_subj (nats-server 2.9+); the client's type does not list it.
      const next = await manager.streams.getMessage(stream, { seq: middle, next_by_subj: subject } as unknown as MsgRequest);
      // A server that ignored next_by_subj answered another subject's message: no shortcut.
      if (!next || next.subject !== subject) return { from };
      if (offsetOf(next) <= from) {
        found = next.seq;
        low = next.seq + 1;
      } else {
        high = middle - 1;
      }
    }
    return { from, sequence: found };
  } catch {
    // A server or a user that cannot look messages up this way: the viewer reads from the stream's start.
    return { from };
  }
}

/** A viewer of the console, started where the session asks, and the console's card (when it has one). */
async function openViewer(runtime: HostRuntime, target: NatsTarget, auth: NatsClientAuth, session: Pick<ClientOptions, "replay" | "tlsCredsDir">, warn: (line: string) => void): Promise<{ viewer: NatsViewerChardev; card: ConsoleCard | null }> {
  const name = target.console!;
  const replay = session.replay;
  const context = await clientContext(runtime, warn);
  const connection = await connect(context, targetOptions(target, auth), session.tlsCredsDir);
  try {
    let card: ConsoleCard | null = null;
    try {
      card = (await readCards(connection)).find((each) => each.console === name) ?? null;
    } catch {
      // A user that may not read the bucket can still follow the stream.
    }
    const stream = auth.stream ?? card?.stream ?? DEFAULT_STREAM;
    let manager: JetStreamManager;
    try {
      manager = (await ensureStream(connection, targetOptions(target, { ...auth, stream }), false)).manager;
    } catch (error) {
      if (error instanceof ChardevError) throw new ClientError(error.message);
      throw error;
    }
    const start = typeof replay === "number" && replay > 0 ? await replayStart(manager, stream, name, replay) : null;
    const from = replay === "screen" ? "screen" : start ? String(start.from) : "new";
    const options = targetOptions(target, { ...auth, stream }, { role: "viewer", from });
    const viewer = new NatsViewerChardev(VIEWER_ID, context, options, connection);
    try {
      await viewer.start(start?.sequence);
    } catch (error) {
      await viewer.destroy().catch(() => {});
      if (error instanceof ChardevError) throw new ClientError(error.message);
      throw error;
    }
    return { viewer, card };
  } catch (error) {
    await connection.close().catch(() => {});
    throw error;
  }
}

/**
 * The NATS transport of a terminal session: a `nats,role=viewer` chardev of the client's own,
 * held by this as its frontend would hold it.
 */
class NatsAttachTransport implements AttachTransport {
  readonly goneText: string;
  readonly helpNote = "  (w, b, f and s need the console's own hub: not available over NATS)\n";
  #paused = false;
  #held = false;

  constructor(
    readonly name: string,
    readonly viewer: NatsViewerChardev,
    readonly readOnly: boolean,
  ) {
    this.goneText = `${name}: the NATS viewer stopped`;
  }

  start(handlers: AttachStreamHandlers): void {
    this.#held = true;
    this.viewer.attachUser({
      canRead: () => (this.#paused ? 0 : SCREEN_CHUNK_BYTES),
      read: (data) => {
        if (handlers.data(data) === false) this.#paused = true;
      },
      event: (event) => {
        if (event === ChrEvent.CLOSED && this.#held) handlers.closed();
      },
    });
  }

  /** Typing to `console.NAME.in`; a read-only session sends nothing. */
  write(data: Uint8Array): void {
    if (this.readOnly || !this.#held) return;
    this.viewer.write(data);
  }

  /** The NATS client queues typing itself (and holds it while reconnecting). */
  get bufferedBytes(): number {
    return 0;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.viewer.flushInput();
  }

  /** Ends the viewer; closing its connection drains it, so typing sent just before a detach still goes out. */
  async close(): Promise<void> {
    this.#held = false;
    await this.viewer.destroy().catch(() => {});
  }

  /** The terminal's size belongs to the console's host: NATS carries bytes only. */
  resize(): void {}

  hubCommand(): boolean {
    return false;
  }
}

/** `attach nats://HOST:PORT/NAME`: the terminal session over NATS. */
export async function runNatsAttach(program: string, runtime: HostRuntime, options: ClientOptions, target: NatsTarget, auth: NatsClientAuth): Promise<number> {
  const host = runtime.process!;
  const terminal = runtime.stdio!.isTerminal;
  const eol = terminal ? "\r\n" : "\n";
  const warn = (line: string) => host.print("stderr", `${program}: ${line}${eol}`);
  const { viewer, card } = await openViewer(runtime, target, auth, options, warn);
  // Following a name nobody publishes would wait silently: say what the cards know.
  if (card === null) host.print("stderr", `${program}: console '${target.console}' has no card in KV bucket ${CONSOLE_BUCKET}: waiting for its output anyway${eol}`);
  else if (card.state !== "open") host.print("stderr", `${program}: console '${target.console}' is closed (its card says so since ${quoteInput(String(card.heartbeat).slice(0, 32))})${eol}`);
  if (!options.readOnly && card && card.input === null) {
    host.print("stderr", `${program}: console '${target.console}' ignores typing (input=off): attached read-only${eol}`);
  }
  const readOnly = options.readOnly || (card !== null && card.input === null);
  const transport = new NatsAttachTransport(target.console!, viewer, readOnly);
  host.print("stderr", `[-- ${target.console}: attached ${readOnly ? "ro" : "rw"} over NATS (${quoteInput(target.servers.join(","))}) --]${eol}`);
  return await runAttachSession(program, runtime, options, transport);
}

/** `tail nats://HOST:PORT/NAME`: the console's output on stdout until SIGINT or SIGTERM. */
export async function runNatsTail(runtime: HostRuntime, options: ClientOptions, target: NatsTarget, auth: NatsClientAuth): Promise<number> {
  const host = runtime.process!;
  const stdio = runtime.stdio!;
  const { viewer } = await openViewer(runtime, target, auth, options, (line) => host.print("stderr", `${line}\n`));
  const transport = new NatsAttachTransport(target.console!, viewer, true);
  return await new Promise<number>((resolve) => {
    const stops: (() => void)[] = [];
    let ended = false;
    const finish = (status: number) => {
      if (ended) return;
      ended = true;
      for (const stop of stops) stop();
      void transport.close().then(() => resolve(status));
    };
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) stops.push(host.onSignal(signal, () => finish(0)));
    const writeOut = (chunk: Uint8Array): boolean => {
      if (stdio.write(chunk) >= 0) return true;
      // stdout is full (a slow pipe): hold this chunk and the viewer until it drains.
      stops.push(
        stdio.onDrain(() => {
          if (writeOut(chunk)) transport.resume();
        }),
      );
      return false;
    };
    transport.start({ data: (chunk) => writeOut(chunk.slice()), drain: () => {}, closed: () => finish(1) });
  });
}
