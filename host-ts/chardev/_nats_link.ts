// What both roles of the `nats` chardev share: the subjects, the offset header, the checked
// options, the connection (auth, TLS, reconnecting) and the JetStream stream the output lives in.

import type { ConnectionOptions, NatsConnection } from "@nats-io/nats-core";
import type { JetStreamManager, StreamInfo } from "@nats-io/jetstream";
import { loadNatsApi, natsApi } from "./_nats_api.ts";
import { ChardevError } from "../errors.ts";
import { strerror } from "../errno.ts";
import { quoteInput } from "../limits.ts";
import type { TlsCredsX509 } from "../tls_creds.ts";
import type { BackendData, ChardevContext } from "./_chardev.ts";

/** The header that carries a message's absolute byte offset in its console's output. */
export const OFFSET_HEADER = "Chardev-Hub-Offset";

/** Where the stream's subjects put a console's output (`console.NAME.out`). */
export const outputSubject = (console: string): string => `console.${console}.out`;
/** Where a console answers requests for its screen (`console.NAME.screen`, from=screen); plain NATS request and reply. */
export const screenSubject = (console: string): string => `console.${console}.screen`;
/** Where input for a console is published (`console.NAME.in`); plain NATS, never stored. */
export const inputSubject = (console: string): string => `console.${console}.in`;
/** The subjects a stream we create takes: every console's output, no input. */
export const STREAM_SUBJECTS = ["console.*.out"];

/** How long a JetStream request (an ack, a stream lookup) may take before it counts as failed. */
export const REQUEST_TIMEOUT_MS = 5000;
/** How long the first connect may take before `-chardev` setup fails. */
const CONNECT_TIMEOUT_MS = 5000;
/** Between reconnect attempts; the client tries forever, across every server of the list. */
const RECONNECT_WAIT_MS = 250;
/** JetStream drops a re-sent message with the same id within this window (a publish retried after a failover). */
const DUPLICATE_WINDOW_NS = 120 * 1e9;
/** The most a `creds=` file may hold (a JWT and an nkey seed are a few hundred bytes). */
const MAX_CREDS_BYTES = 64 * 1024;

/** Where a viewer starts following: the stream's start, only new output, a byte offset, or the console's screen. */
export type NatsFrom = { readonly kind: "start" } | { readonly kind: "new" } | { readonly kind: "screen" } | { readonly kind: "offset"; readonly offset: number };

/** A `nats` chardev's settings, checked. */
export interface NatsOptions {
  readonly servers: readonly string[];
  readonly console: string;
  readonly stream: string;
  /** Stream limits for a stream we create; 0 is no limit. */
  readonly maxBytes: number;
  readonly maxAgeSeconds: number;
  readonly replicas: number;
  readonly creds?: string;
  readonly token?: string;
  readonly user?: string;
  readonly password?: string;
  readonly tlsCreds?: string;
  readonly role: "console" | "viewer";
  readonly from: NatsFrom;
  readonly input: boolean;
  /** Console: keep a screen for from=screen viewers. */
  readonly screen: boolean;
  /** Console: the device's name on its card. */
  readonly device?: string;
}

/** A NATS subject token or stream name: what needs no escaping anywhere (no dots, wildcards, spaces). */
const NAME = /^[A-Za-z0-9_-]{1,128}$/;
/** One server URL: `nats://HOST:PORT`, `tls://HOST:PORT` or `HOST:PORT` (IPv6 in brackets). */
const SERVER = /^((nats|tls):\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/**
 * The server list of `server=`: QEMU's option syntax doubles a comma inside a value, so
 * `server=nats://a:4222,,nats://b:4222` is two servers; `;` and spaces separate them too.
 *
 * @example Two servers, as the option parser hands them on (`,,` already made `,`)
 * ```ts
 * parseServers("nats://a:4222,nats://b:4222"); // ["nats://a:4222", "nats://b:4222"]
 * parseServers("nats://a:4222; tls://b:4443"); // ["nats://a:4222", "tls://b:4443"]
 * ```
 */
export function parseServers(text: string): string[] {
  const servers = text.split(/[,;\s]+/).filter((part) => part !== "");
  if (servers.length === 0) throw new ChardevError("INVALID_VALUE", "nats: 'server' names no server");
  for (const server of servers) {
    if (!SERVER.test(server)) throw new ChardevError("INVALID_VALUE", `nats: server '${quoteInput(server)}' is not nats://HOST:PORT`);
  }
  return servers;
}

/**
 * `from=start|new|screen|OFFSET`.
 *
 * @example A byte offset
 * ```ts
 * parseFrom("1048576"); // { kind: "offset", offset: 1048576 }
 * ```
 */
export function parseFrom(text: string): NatsFrom {
  if (text === "start" || text === "new" || text === "screen") return { kind: text };
  if (/^\d{1,15}$/.test(text)) return { kind: "offset", offset: Number(text) };
  throw new ChardevError("INVALID_VALUE", `nats: 'from' must be 'start', 'new', 'screen' or a byte offset, not '${quoteInput(text)}'`);
}

function checkName(key: string, value: string): string {
  if (!NAME.test(value)) throw new ChardevError("INVALID_VALUE", `nats: '${key}' must be letters, digits, '-' or '_' (a NATS subject token), not '${quoteInput(value)}'`);
  return value;
}

/**
 * Checked settings from QAPI-shaped `data` (the schema checked the types already).
 *
 * @example A viewer of console vm1 with the defaults
 * ```ts
 * const options = natsOptionsFromData({ console: "vm1", role: "viewer" });
 * options.stream; // "CONSOLES"
 * options.from; // { kind: "start" }
 * ```
 */
export function natsOptionsFromData(data: BackendData): NatsOptions {
  const text = (key: string) => data[key] as string | undefined;
  const count = (key: string, max: number) => {
    const value = (data[key] as number | undefined) ?? 0;
    if (value < 0 || value > max) throw new ChardevError("INVALID_VALUE", `nats: '${key}' must be from 0 to ${max}`);
    return value;
  };
  const consoleName = text("console");
  if (consoleName === undefined) throw new ChardevError("MISSING_PARAMETER", "nats: 'console' is required (console=NAME)");
  const role = text("role") ?? "console";
  if (role !== "console" && role !== "viewer") throw new ChardevError("INVALID_VALUE", `nats: 'role' must be 'console' or 'viewer', not '${quoteInput(role)}'`);
  const replicas = (data.replicas as number | undefined) ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new ChardevError("INVALID_VALUE", "nats: 'replicas' must be from 1 to 5");
  const user = text("user");
  const password = text("password");
  if ((user === undefined) !== (password === undefined)) throw new ChardevError("INVALID_PARAMETER", "nats: 'user' and 'password' go together");
  const authKinds = [text("creds"), text("token"), user].filter((given) => given !== undefined).length;
  if (authKinds > 1) throw new ChardevError("INVALID_PARAMETER", "nats: 'creds', 'token' and 'user' are mutually exclusive");
  return {
    servers: parseServers(text("server") ?? "nats://127.0.0.1:4222"),
    console: checkName("console", consoleName),
    stream: checkName("stream", text("stream") ?? "CONSOLES"),
    maxBytes: count("max-bytes", Number.MAX_SAFE_INTEGER),
    maxAgeSeconds: count("max-age", 10 * 365 * 86400),
    replicas,
    creds: text("creds"),
    token: text("token"),
    user,
    password,
    tlsCreds: text("tls-creds"),
    role,
    from: parseFrom(text("from") ?? "start"),
    input: (data.input as boolean | undefined) ?? true,
    screen: (data.screen as boolean | undefined) ?? true,
    device: text("device"),
  };
}

/**
 * The client's connection options: servers, auth, TLS, and a reconnect loop that never gives up.
 *
 * @example What a console with a token connects with
 * ```ts
 * import type { ChardevContext } from "./_chardev.ts";
 * declare const context: ChardevContext;
 * const options = natsOptionsFromData({ console: "vm1", token: "s3cret" });
 * connectionOptions("n0", options, context, null).token; // "s3cret"
 * ```
 */
export function connectionOptions(id: string, options: NatsOptions, context: ChardevContext, tls: TlsCredsX509 | null): ConnectionOptions {
  const connection: ConnectionOptions = {
    servers: [...options.servers],
    name: `chardev-hub ${id}`,
    timeout: CONNECT_TIMEOUT_MS,
    maxReconnectAttempts: -1,
    reconnectTimeWait: RECONNECT_WAIT_MS,
  };
  if (options.token !== undefined) connection.token = options.token;
  if (options.user !== undefined) {
    connection.user = options.user;
    connection.pass = options.password;
  }
  if (options.creds !== undefined) {
    const read = context.runtime.readSmallFile;
    if (!read) throw new ChardevError("UNSUPPORTED", `nats: 'creds': this runtime (${context.runtime.name}) cannot read files`);
    let creds: Uint8Array;
    try {
      creds = read(options.creds, MAX_CREDS_BYTES);
    } catch (error) {
      throw new ChardevError("OPEN_FAILED", `nats: could not read 'creds' ${quoteInput(options.creds)}: ${strerror(error)}`);
    }
    connection.authenticator = natsApi().credsAuthenticator(creds);
  }
  if (tls) {
    const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));
    connection.tls = { ca: text(tls.tls.ca), cert: text(tls.tls.cert), key: text(tls.tls.key) };
  }
  return connection;
}

/**
 * The client's error, short: its message (and its cause when that says more), cut to a sane length.
 *
 * @example
 * ```ts
 * describeNatsError(new Error("Authorization Violation")); // "Authorization Violation"
 * ```
 */
export function describeNatsError(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const why = cause instanceof Error && cause.message && !error.message.includes(cause.message) ? `${error.message}: ${cause.message}` : error.message;
    return quoteInput(why || error.name);
  }
  return quoteInput(String(error));
}

/**
 * Connects, or throws OPEN_FAILED naming the servers and the client's reason.
 *
 * @example
 * ```ts
 * import type { ChardevContext } from "./_chardev.ts";
 * declare const context: ChardevContext;
 * const connection = await connectNats("n0", natsOptionsFromData({ console: "vm1" }), context, null);
 * await connection.close();
 * ```
 */
export async function connectNats(id: string, options: NatsOptions, context: ChardevContext, tls: TlsCredsX509 | null): Promise<NatsConnection> {
  const nats = context.runtime.nats;
  if (!nats) throw new ChardevError("UNSUPPORTED", `nats: the ${context.runtime.name} runtime has no NATS transport`);
  await loadNatsApi();
  const connection = connectionOptions(id, options, context, tls);
  try {
    return await nats.connect(connection);
  } catch (error) {
    throw new ChardevError("OPEN_FAILED", `nats: could not connect to ${quoteInput(options.servers.join(","))}: ${describeNatsError(error)}`);
  }
}

/**
 * Whether NATS subject `pattern` (with `*` and `>`) takes `subject`.
 *
 * @example
 * ```ts
 * subjectMatches("console.*.out", "console.vm1.out"); // true
 * subjectMatches("console.*.out", "console.vm1.in"); // false
 * ```
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const want = pattern.split(".");
  const have = subject.split(".");
  for (let i = 0; i < want.length; i++) {
    if (want[i] === ">") return have.length > i;
    if (i >= have.length || (want[i] !== "*" && want[i] !== have[i])) return false;
  }
  return want.length === have.length;
}

/**
 * The stream that holds `console.NAME.out`: found, or (when `create`) made with the limits
 * of `options`. Throws OPEN_FAILED when JetStream is off, the stream cannot be made, or an
 * existing stream of that name does not take the subject.
 *
 * @example A console's stream, made if missing
 * ```ts
 * import type { NatsConnection } from "@nats-io/nats-core";
 * declare const connection: NatsConnection;
 * const { info } = await ensureStream(connection, natsOptionsFromData({ console: "vm1", "max-bytes": 1 << 30 }), true);
 * info.config.name; // "CONSOLES"
 * ```
 */
export async function ensureStream(connection: NatsConnection, options: NatsOptions, create: boolean): Promise<{ manager: JetStreamManager; info: StreamInfo }> {
  const subject = outputSubject(options.console);
  let manager: JetStreamManager;
  try {
    manager = await natsApi().jetstreamManager(connection, { timeout: REQUEST_TIMEOUT_MS });
  } catch (error) {
    throw new ChardevError("OPEN_FAILED", `nats: JetStream is not available: ${describeNatsError(error)}`);
  }
  let info: StreamInfo | null = null;
  try {
    info = await manager.streams.info(options.stream);
  } catch (error) {
    const code = (error as { code?: unknown; api_error?: { err_code?: number } }).api_error?.err_code;
    // 10059: stream not found; anything else (a permission, a timeout) is a failure to say.
    if (code !== 10059 && (error as Error).name !== "StreamNotFoundError") {
      throw new ChardevError("OPEN_FAILED", `nats: could not look up stream '${options.stream}': ${describeNatsError(error)}`);
    }
  }
  if (info === null) {
    if (!create) throw new ChardevError("OPEN_FAILED", `nats: stream '${options.stream}' does not exist (a console creates it)`);
    try {
      info = await manager.streams.add({
        name: options.stream,
        subjects: STREAM_SUBJECTS,
        max_bytes: options.maxBytes > 0 ? options.maxBytes : -1,
        max_age: options.maxAgeSeconds * 1e9,
        num_replicas: options.replicas,
        duplicate_window: DUPLICATE_WINDOW_NS,
      });
    } catch (error) {
      throw new ChardevError("OPEN_FAILED", `nats: could not create stream '${options.stream}': ${describeNatsError(error)}`);
    }
  }
  if (!info.config.subjects?.some((pattern) => subjectMatches(pattern, subject))) {
    throw new ChardevError("OPEN_FAILED", `nats: stream '${options.stream}' does not take subject ${subject} (its subjects: ${quoteInput((info.config.subjects ?? []).join(" "))})`);
  }
  return { manager, info };
}
