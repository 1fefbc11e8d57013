// The client side of the control socket: `chardev-hub list | who | attach | tail`, dispatched
// before the QEMU-style options are read (main.ts). One connection per request; `attach` and
// `tail` keep theirs as the console's byte stream (attach_terminal.ts is the terminal part).
// The protocol is in docs/control.md.

import { parseSize } from "../options.ts";
import { quoteInput } from "../limits.ts";
import type { HostRuntime, NetConnection, StdioPrimitives } from "../runtime/types.ts";
import { runAttachTerminal } from "./attach_terminal.ts";
import { DEFAULT_CONTROL_PATH, MAX_CONTROL_LINE_BYTES, UNATTENDED_KINDS } from "./control_server.ts";
import { type ControlTarget, resolveControlTarget } from "./control_address.ts";
import { ChardevError } from "../errors.ts";
import { isNatsUrl, type NatsClientAuth, type NatsTarget, parseNatsTarget, runNatsAttach, runNatsList, runNatsTail } from "./nats_client.ts";
import { type ClientCommand, isClientCommand } from "./client_commands.ts";

export { CLIENT_COMMANDS, type ClientCommand, isClientCommand } from "./client_commands.ts";

/** The escape prefix of `attach` unless `--escape` says otherwise: Ctrl-] (telnet's, conserver's ^]). */
export const DEFAULT_ESCAPE = 0x1d;
/** An answer line longer than this is the server's bug or not our server: refused. */
const MAX_ANSWER_LINE_BYTES = 1024 * 1024;

/**
 * How long an answer may take. The server answers at once; a connection that neither answers
 * nor closes (a Deno server leaves a refused TLS client's connection open) must not hang the
 * client, nor let a runtime whose event loop empties end it silently with status 0.
 */
const ANSWER_TIMEOUT_MS = 10_000;

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** A failure the client reports as one line (`chardev-hub: MESSAGE`) and `status`. */
export class ClientError extends Error {
  override name = "ClientError";
  constructor(
    message: string,
    readonly status: number = EXIT_FAILED,
  ) {
    super(message);
  }
}

/** What a subcommand's arguments ask for. */
export interface ClientOptions {
  readonly command: ClientCommand;
  readonly console: string | null;
  /** `--control`: a socket path, or `tcp:HOST:PORT` (control_address.ts). */
  readonly controlPath: string;
  /** `--tls-creds DIR`: TLS to a `tcp:` control socket with QEMU's client files (ca-cert.pem, client-cert.pem, client-key.pem); null for none. */
  readonly tlsCredsDir: string | null;
  readonly readOnly: boolean;
  /**
   * Bytes of recent output to replay on attach, or "screen"; null when not given: `attach`
   * then gets the console's own default (named consoles and the default setup: the screen), `tail` none.
   */
  readonly replay: number | "screen" | null;
  /** The escape prefix byte. @default DEFAULT_ESCAPE */
  readonly escape: number;
  /** `list --json`: the server's answer as is. */
  readonly json: boolean;
  readonly help: boolean;
  /** A `nats://HOST:PORT[/NAME]` argument instead of a local console (nats_client.ts); null for the control socket. */
  readonly nats: NatsTarget | null;
  /** `--creds`, `--token`, `--user`/`--password`, `--stream`: only with `nats`. */
  readonly natsAuth: NatsClientAuth;
}

/** `--help` of each subcommand. */
export function clientHelp(program: string, command: ClientCommand): string {
  const control =
    `  --control PATH    the control socket (default ${DEFAULT_CONTROL_PATH}, where \`npm start\` runs)\n` +
    `  --control tcp:HOST:PORT   a TCP control socket (-control tcp:...): plain on a loopback address only,\n` +
    `                    else with --tls-creds\n` +
    `  --tls-creds DIR   speak TLS to it: DIR holds ca-cert.pem, and client-cert.pem and client-key.pem\n` +
    `                    when the server verifies peers (docs/control.md)\n`;
  const nats =
    `\nA console published on NATS (a \`nats\` chardev, docs/nats.md) instead: nats://HOST:PORT${command === "list" ? "" : "/NAME"}, with\n` +
    `  --creds FILE      a NATS credentials file\n` +
    `  --token TOKEN     a NATS token\n` +
    `  --user USER --password PASSWORD   a NATS user\n` +
    `  --tls-creds DIR   TLS to the NATS servers: DIR holds ca-cert.pem, and client-cert.pem and\n` +
    `                    client-key.pem for servers that verify clients\n` +
    (command === "list" ? "" : `  --stream NAME     the JetStream stream (default: the console's card's, else CONSOLES)\n`);
  switch (command) {
    case "list":
      return (
        `Usage: ${program} list [--json] [--control PATH]\n       ${program} list [--json] --control tcp:HOST:PORT [--tls-creds DIR]\n       ${program} list nats://HOST:PORT [--json] [--creds FILE | --token TOKEN | --user USER --password PASSWORD] [--tls-creds DIR]\n\n` +
        `The consoles of a running ${program}: device state, clients (rw/ro), bytes, lag.\n` +
        `Over NATS: the consoles' cards (KV bucket chardev-hub-consoles): host, state (open, closed, stale), started, heartbeat age.\n\n` +
        `  --json            the server's answer (or the cards) as JSON\n${control}${nats}`
      );
    case "who":
      return `Usage: ${program} who NAME [--control PATH]\n\nWho is attached to console NAME: attached clients with their uid, and the hub's other open backends.\n\n${control}`;
    case "tail":
      return `Usage: ${program} tail NAME [--replay BYTES] [--control PATH]\n       ${program} tail nats://HOST:PORT/NAME [--replay BYTES|screen] [NATS options]\n\nConsole NAME's output on stdout, read-only, until the console ends or SIGINT (for scripts).\n\n  --replay BYTES    start with up to BYTES of recent output (a ring hub's, or the NATS stream's; K, M suffixes)\n  --replay screen   (nats:// only) start with the console's screen as it stands, then follow\n${control}${nats}`;
    case "attach":
      return (
        `Usage: ${program} attach NAME [--ro] [--replay BYTES|screen] [--escape CHAR] [--control PATH]\n` +
        `       ${program} attach nats://HOST:PORT/NAME [--ro] [--replay BYTES|screen] [--escape CHAR] [NATS options]\n\n` +
        `Attaches this terminal to console NAME (raw mode; the window size goes to the device when read-write).\n\n` +
        `  --ro              only watch: keys and BREAKs do not reach the device\n` +
        `  --replay BYTES    start with up to BYTES of recent output (a ring hub's; K, M suffixes;\n` +
        `                    by default the console's own replay=: the screen on named consoles);\n` +
        `                    'screen' asks for the screen as it stands (where the console keeps one)\n` +
        `  --escape CHAR     the escape prefix: ^X for Ctrl-X, or one character (default ^])\n` +
        control +
        nats +
        `Over NATS, typing goes to console.NAME.in and output is followed from console.NAME.out: by default\n` +
        `from now on, with --replay BYTES from that many bytes before its end, with --replay screen from the\n` +
        `console's screen as it stands; a hole is a [-- N bytes missed --] line.\n` +
        `\nAfter the escape prefix (Ctrl-] by default):\n${ESCAPE_COMMANDS_HELP}` +
        `(w, b, f and s need the console's own hub: not over NATS)\n`
      );
  }
}

/** The commands after the escape prefix, one per line (also `?` in a session). */
export const ESCAPE_COMMANDS_HELP =
  "  .  detach\n  ?  this help\n  w  who is attached\n  r  replay the last lines\n  b  send a BREAK to the device\n" +
  "  f  force read-write (take the floor under input=exclusive)\n  s  become read-only\n  the prefix again sends it to the device\n";

/**
 * `--escape`: `^]`, `^A` (Ctrl keys) or one ASCII character, as the byte it types.
 *
 * @example Ctrl-A, and a plain character
 * ```ts
 * parseEscape("^A"); // 1
 * parseEscape("~"); // 126
 * ```
 */
export function parseEscape(text: string): number {
  if (/^\^[@A-Za-z[\\\]^_]$/.test(text)) return text.toUpperCase().charCodeAt(1) & 0x1f;
  if (text.length === 1 && text.charCodeAt(0) < 0x80) return text.charCodeAt(0);
  throw new ClientError(`--escape expects ^X (a Ctrl key) or one ASCII character, not '${quoteInput(text.slice(0, 32))}'`, EXIT_USAGE);
}

/**
 * Reads a subcommand's arguments (`args` starts with the subcommand). Throws ClientError (status 2).
 *
 * @example A read-only attach with a replay, to a socket elsewhere
 * ```ts
 * const options = parseClientArgs(["attach", "vm1", "--ro", "--replay", "4K", "--control", "/run/hub.sock"]);
 * // options.console === "vm1", options.readOnly === true, options.replay === 4096
 * ```
 */
export function parseClientArgs(args: readonly string[]): ClientOptions {
  const command = args[0];
  if (!isClientCommand(command)) throw new ClientError(`unknown command '${quoteInput(String(command))}'`, EXIT_USAGE);
  let consoleName: string | null = null;
  let controlPath = DEFAULT_CONTROL_PATH;
  let tlsCredsDir: string | null = null;
  let readOnly = false;
  let replay: number | "screen" | null = null;
  let escape = DEFAULT_ESCAPE;
  let json = false;
  let help = false;
  const natsAuth: Record<string, string> = {};
  const natsKeys = command === "who" ? [] : command === "list" ? ["creds", "token", "user", "password"] : ["creds", "token", "user", "password", "stream"];
  const takes = new Set([...(command === "attach" ? ["control", "replay", "escape"] : command === "tail" ? ["control", "replay"] : ["control"]), "tls-creds", ...natsKeys]);
  const flags = new Set(command === "attach" ? ["ro", "help", "h"] : command === "list" ? ["json", "help", "h"] : ["help", "h"]);
  for (let i = 1; i < args.length; i++) {
    const arg = args[i];
    const match = /^--?([A-Za-z][A-Za-z-]*)(?:=(.*))?$/s.exec(arg);
    if (!match) {
      if ((command === "list" && !isNatsUrl(arg)) || consoleName !== null) throw new ClientError(`${command}: unexpected argument '${quoteInput(arg.slice(0, 64))}' (see ${command} --help)`, EXIT_USAGE);
      consoleName = arg;
      continue;
    }
    const [, name, inline] = match;
    if (flags.has(name) && inline === undefined) {
      if (name === "ro") readOnly = true;
      else if (name === "json") json = true;
      else help = true;
      continue;
    }
    if (!takes.has(name)) throw new ClientError(`${command}: unknown option '${quoteInput(arg.split("=")[0].slice(0, 64))}' (see ${command} --help)`, EXIT_USAGE);
    const value = inline ?? args[++i];
    if (value === undefined) throw new ClientError(`${command}: option '--${name}' needs an argument`, EXIT_USAGE);
    if (natsKeys.includes(name)) natsAuth[name] = value;
    else if (name === "control") controlPath = value;
    else if (name === "tls-creds") tlsCredsDir = value;
    else if (name === "escape") escape = parseEscape(value);
    else if (value === "screen" && (command === "attach" || command === "tail")) replay = "screen";
    else {
      try {
        replay = parseSize("replay", value);
      } catch {
        throw new ClientError(`${command}: --replay expects a byte count (K, M suffixes)${command === "attach" ? " or 'screen'" : ""}, not '${quoteInput(value.slice(0, 32))}'`, EXIT_USAGE);
      }
    }
  }
  if (!help && command !== "list" && consoleName === null) throw new ClientError(`${command}: which console? (${command} NAME; \`list\` shows them)`, EXIT_USAGE);
  const nats = consoleName !== null && isNatsUrl(consoleName) ? parseNatsTarget(consoleName) : null;
  // A local tail asks the hub for bytes; the screen over NATS comes from the console itself.
  if (replay === "screen" && command === "tail" && !nats) throw new ClientError("tail: --replay screen is for consoles on NATS (tail nats://HOST:PORT/NAME); here give a byte count", EXIT_USAGE);
  if (nats && command === "who") throw new ClientError("who: not available over NATS (the console's hub knows who is attached: ask on its host)", EXIT_USAGE);
  if (nats && command === "list" && nats.console !== null) throw new ClientError("list: nats://HOST:PORT names the servers only (no /NAME)", EXIT_USAGE);
  if (nats && command !== "list" && nats.console === null) throw new ClientError(`${command}: which console? (${command} nats://HOST:PORT/NAME)`, EXIT_USAGE);
  const given = Object.keys(natsAuth);
  if (!nats && given.length > 0) throw new ClientError(`${command}: --${given[0]} is for consoles on NATS (nats://HOST:PORT...)`, EXIT_USAGE);
  return { command, console: consoleName, controlPath, tlsCredsDir, readOnly, replay, escape, json, help, nats, natsAuth };
}

/**
 * One connection to the control socket: requests and their answers, line by line, until
 * `takeOver` makes it the console's byte stream.
 */
export class ControlConnection {
  readonly #connection: NetConnection;
  #buffer = new Uint8Array(0);
  #waiting: ((line: string | null) => void) | null = null;
  #closed = false;
  #raw: { data(chunk: Uint8Array): boolean | void; drain(): void; closed(): void } | null = null;
  /** Over TLS: the target, until its first answer (a TLS 1.3 server refuses a client certificate only after the handshake). */
  #unansweredTls: ControlTarget | null;

  private constructor(connection: NetConnection, target: ControlTarget) {
    this.#connection = connection;
    this.#unansweredTls = target.tls ? target : null;
    connection.start({
      data: (chunk) => {
        if (this.#raw) return this.#raw.data(chunk);
        const joined = new Uint8Array(this.#buffer.length + chunk.length);
        joined.set(this.#buffer);
        joined.set(chunk, this.#buffer.length);
        this.#buffer = joined;
        this.#offerLine();
        return true;
      },
      drain: () => this.#raw?.drain(),
      closed: () => {
        this.#closed = true;
        if (this.#raw) this.#raw.closed();
        else this.#offerLine();
      },
    });
  }

  /** Connects to the control socket `target` (controlTarget); a ClientError says why not, and what to check. */
  static async open(runtime: HostRuntime, target: ControlTarget): Promise<ControlConnection> {
    if (!runtime.net) throw new ClientError(`${runtime.name} has no sockets`);
    const address = target.address;
    const path = target.text;
    try {
      const netAddress = address.transport === "unix" ? address : { transport: "tcp" as const, host: address.host, port: address.port };
      return new ControlConnection(await runtime.net.connect(netAddress, { tls: target.tls }), target);
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      // Over TLS, anything but a refused connection is the handshake: a certificate missing, or not from the CA.
      if (target.tls && code !== "ECONNREFUSED") {
        const why = (error as Error).message.replace(/\s+/g, " ").slice(0, 200);
        throw new ClientError(`control: TLS handshake with ${quoteInput(path)} failed: ${quoteInput(why)}`);
      }
      const hint =
        code === "ENOENT" || code === "ECONNREFUSED"
          ? `: is chardev-hub running ${address.transport === "unix" ? "here " : ""}with a control socket? (--control PATH names another)`
          : code === "EACCES"
            ? ": permission denied (the control socket is its owner's only)"
            : `: ${quoteInput((error as Error).message.slice(0, 200))}`;
      throw new ClientError(`cannot reach the control socket ${quoteInput(path)}${hint}`);
    }
  }

  #offerLine(): void {
    if (!this.#waiting) return;
    const end = this.#buffer.indexOf(0x0a);
    if (end < 0 && !this.#closed) return;
    const waiting = this.#waiting;
    this.#waiting = null;
    if (end < 0) return waiting(null);
    const line = new TextDecoder().decode(this.#buffer.subarray(0, end));
    this.#buffer = this.#buffer.slice(end + 1);
    waiting(line);
  }

  /** Sends one request; resolves with its answer. A ClientError for an `{"error"}` answer or a lost connection. */
  async request(request: Record<string, unknown>): Promise<Record<string, unknown>> {
    const line = JSON.stringify(request);
    if (line.length >= MAX_CONTROL_LINE_BYTES) throw new ClientError("control: request too long");
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const answer = new Promise<string | null>((resolve) => {
      this.#waiting = resolve;
      timer = setTimeout(() => {
        timedOut = true;
        this.#waiting = null;
        resolve(null);
      }, ANSWER_TIMEOUT_MS);
    });
    this.#connection.write(new TextEncoder().encode(`${line}\n`));
    this.#offerLine();
    const text = await answer;
    clearTimeout(timer);
    const silence = timedOut ? `no answer within ${ANSWER_TIMEOUT_MS / 1000} s` : "the server ended the session unanswered";
    if (text === null && this.#unansweredTls) {
      const dir = this.#unansweredTls.tls?.cert ? "its client certificate is not from the server's CA" : "it presented no client certificate (client-cert.pem, client-key.pem in --tls-creds DIR)";
      throw new ClientError(`control: TLS handshake with ${quoteInput(this.#unansweredTls.text)} failed: ${silence}: ${dir}`);
    }
    this.#unansweredTls = null;
    if (text === null && timedOut) throw new ClientError(`control: ${silence}`);
    if (text === null) throw new ClientError(this.#buffer.length > MAX_ANSWER_LINE_BYTES ? "control: answer too long" : "control: the server closed the connection");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ClientError(`control: not an answer: '${quoteInput(text.slice(0, 64))}'`);
    }
    if (typeof parsed !== "object" || parsed === null) throw new ClientError("control: not an answer");
    const fields = parsed as Record<string, unknown>;
    if (typeof fields.error === "string") throw new ClientError(quoteInput(fields.error));
    return fields;
  }

  /**
   * From now on the connection is raw bytes: what came after the answer, then every chunk, go
   * to `handlers.data` (false pauses reading until `resume`).
   */
  takeOver(handlers: { data(chunk: Uint8Array): boolean | void; drain(): void; closed(): void }): void {
    this.#raw = handlers;
    const rest = this.#buffer;
    this.#buffer = new Uint8Array(0);
    if (rest.length > 0 && handlers.data(rest) === false) this.#connection.pause();
    if (this.#closed) handlers.closed();
  }

  /** Sends console input (after `takeOver`). */
  write(data: Uint8Array): void {
    this.#connection.write(data);
  }

  /** Bytes written but not yet taken by the kernel. */
  get bufferedBytes(): number {
    return this.#connection.bufferedBytes;
  }

  /** Stops reading until `resume` (the screen cannot take more yet). */
  pause(): void {
    this.#connection.pause();
  }

  resume(): void {
    this.#connection.resume();
  }

  /** Ends the connection: after an attach, that detaches. */
  close(): void {
    this.#closed = true;
    this.#connection.close();
  }
}

/**
 * The control socket the options name (`--control`, `--tls-creds`), its TLS credentials read;
 * a ClientError when they cannot be (QEMU's texts for the files).
 */
export async function controlTarget(runtime: HostRuntime, options: Pick<ClientOptions, "controlPath" | "tlsCredsDir">): Promise<ControlTarget> {
  try {
    return await resolveControlTarget(runtime, options.controlPath, options.tlsCredsDir);
  } catch (error) {
    if (error instanceof ChardevError) throw new ClientError(error.message, error.code === "INVALID_VALUE" || error.code === "INVALID_PARAMETER" ? EXIT_USAGE : EXIT_FAILED);
    throw error;
  }
}

/** One request on a connection of its own (list, who, and an attached session's commands). */
export async function requestOnce(runtime: HostRuntime, target: ControlTarget, request: Record<string, unknown>): Promise<Record<string, unknown>> {
  const connection = await ControlConnection.open(runtime, target);
  try {
    return await connection.request(request);
  } finally {
    connection.close();
  }
}

/**
 * A byte count for people.
 *
 * @example Three sizes
 * ```ts
 * formatBytes(1000); // "1000 B"
 * formatBytes(12390); // "12.1 KiB"
 * formatBytes(3 * 1024 * 1024); // "3.0 MiB"
 * ```
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** Rows of cells as left-aligned columns, two spaces apart. */
function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join("  ").trimEnd()).join("\n") + "\n";
}

interface ClientRow {
  id: string;
  kind: string;
  open: boolean;
  mode: string;
  policy?: string;
  "bytes-in"?: number;
  "bytes-out"?: number;
  "bytes-dropped"?: number;
  lag?: number;
  uid?: number | null;
  since?: number;
  /** A `max-clients` listener's own row: its connections now. */
  clients?: number;
}

interface ConsoleRow {
  name: string;
  device: string;
  "device-open": boolean;
  ring: number;
  input: string;
  clients: ClientRow[];
}

/** `list`'s table: one row per console, then its clients indented. */
export function formatList(answer: Record<string, unknown>): string {
  const consoles = (answer.consoles ?? []) as ConsoleRow[];
  if (consoles.length === 0) return "no consoles\n";
  let text = "";
  for (const entry of consoles) {
    // People only: logs and a listener's own row are not clients.
    const open = entry.clients.filter((client) => client.open && !UNATTENDED_KINDS.has(client.kind) && client.clients === undefined);
    const rw = open.filter((client) => client.mode === "rw").length;
    const hub = entry.ring > 0 ? `ring ${formatBytes(entry.ring)}` : "unbuffered";
    text += `${entry.name}: device '${entry.device}' ${entry["device-open"] ? "open" : "closed"}, ${rw} rw, ${open.length - rw} ro, ${hub}, input ${entry.input}\n`;
    const rows = [["  CLIENT", "KIND", "STATE", "MODE", "UID", "IN", "OUT", "DROPPED", "LAG"]];
    for (const client of entry.clients) {
      rows.push([
        `  ${client.id}`,
        client.kind,
        client.clients !== undefined ? `${client.clients} conn` : client.open ? "open" : "closed",
        client.mode,
        client.uid === undefined || client.uid === null ? "-" : String(client.uid),
        formatBytes(client["bytes-in"] ?? 0),
        formatBytes(client["bytes-out"] ?? 0),
        formatBytes(client["bytes-dropped"] ?? 0),
        formatBytes(client.lag ?? 0),
      ]);
    }
    text += table(rows);
  }
  return text;
}

/** `who`'s lines: one per open backend, attached clients with their uid and since when. */
export function formatWho(answer: Record<string, unknown>, eol = "\n"): string {
  const clients = (answer.clients ?? []) as ClientRow[];
  const name = String(answer.console);
  if (clients.length === 0) return `${name}: nobody attached${eol}`;
  const rows = [["ID", "KIND", "MODE", "UID", "SINCE"]];
  for (const client of clients) {
    rows.push([
      client.id,
      client.kind,
      client.mode,
      client.uid === undefined || client.uid === null ? "-" : String(client.uid),
      client.since === undefined ? "-" : new Date(client.since).toISOString().replace("T", " ").slice(0, 19),
    ]);
  }
  return `${name}: ${clients.length} attached${eol}` + table(rows).replaceAll("\n", eol);
}

/**
 * Runs a subcommand to its end; returns the exit status. Usage and connection failures are
 * reported as one `PROGRAM: ...` line.
 */
export async function runClientCommand(program: string, runtime: HostRuntime, args: readonly string[]): Promise<number> {
  const host = runtime.process!;
  let options: ClientOptions;
  try {
    options = parseClientArgs(args);
    if (options.help) {
      host.print("stdout", clientHelp(program, options.command));
      return 0;
    }
    if (options.nats) {
      switch (options.command) {
        case "list":
          return await runNatsList(runtime, options, options.nats, options.natsAuth);
        case "tail":
          return await runNatsTail(runtime, options, options.nats, options.natsAuth);
        case "attach":
          return await runNatsAttach(program, runtime, options, options.nats, options.natsAuth);
      }
    }
    switch (options.command) {
      case "list": {
        const answer = await requestOnce(runtime, await controlTarget(runtime, options), { cmd: "list" });
        host.print("stdout", options.json ? `${JSON.stringify(answer)}\n` : formatList(answer));
        return 0;
      }
      case "who": {
        host.print("stdout", formatWho(await requestOnce(runtime, await controlTarget(runtime, options), { cmd: "who", console: options.console })));
        return 0;
      }
      case "tail":
        return await runTail(runtime, options);
      case "attach":
        return await runAttachTerminal(program, runtime, options);
    }
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    host.print("stderr", `${program}: ${error.message}\n`);
    return error.status;
  }
}

/**
 * Console output to stdout for `tail` and `attach`: a chunk stdout cannot take now (a slow pipe
 * or terminal) is held and `false` returned, so the caller holds the connection back; once
 * stdout drains the chunk is written and `resume` called (unless `live` says the session is
 * over). `stops` collects the drain waits, for the caller to cancel when it ends.
 */
export function stdoutWriter(stdio: StdioPrimitives, stops: (() => void)[], resume: () => void, live: () => boolean = () => true): (chunk: Uint8Array) => boolean {
  let held: Uint8Array | null = null;
  const write = (chunk: Uint8Array): boolean => {
    if (stdio.write(chunk) >= 0) return true;
    held = chunk;
    stops.push(
      stdio.onDrain(() => {
        const again = held!;
        held = null;
        if (live() && write(again)) resume();
      }),
    );
    return false;
  };
  return write;
}

/** `tail NAME`: a quiet read-only attach whose bytes go to stdout as they come. */
async function runTail(runtime: HostRuntime, options: ClientOptions): Promise<number> {
  const host = runtime.process!;
  const stdio = runtime.stdio!;
  const connection = await ControlConnection.open(runtime, await controlTarget(runtime, options));
  await connection.request({ cmd: "attach", console: options.console, mode: "ro", replay: options.replay ?? 0, quiet: true });
  return await new Promise<number>((resolve) => {
    const stops: (() => void)[] = [];
    const finish = (status: number) => {
      for (const stop of stops) stop();
      connection.close();
      resolve(status);
    };
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) stops.push(host.onSignal(signal, () => finish(0)));
    const writeOut = stdoutWriter(stdio, stops, () => connection.resume());
    connection.takeOver({
      data: (chunk) => writeOut(chunk.slice()),
      drain: () => {},
      closed: () => finish(0),
    });
  });
}
