// `web`'s options: the keys of `-chardev web,...` (the option schema that `--help`, the docs'
// tables and QMP `chardev-add` share), their checks, the secrets read from files, and
// WebChardevOptions, the same keys for the library's `WebChardev.open` (web.ts).

import { ChardevError } from "../errors.ts";
import { strerror } from "../errno.ts";
import type { OptionSchema } from "../option_schema.ts";
import { checkSize, MAX_CLIENT_BUFFER_BYTES, MAX_CLIENTS, MAX_RING_BYTES, MIN_CLIENTS, quoteInput } from "../limits.ts";
import { parseSize } from "../options.ts";
import type { BackendData, ChardevContext } from "./_chardev.ts";
import { parsePeerAccess, type PeerAccess } from "./_peer_access.ts";
import { type HubReplay, isScreenReplay } from "./_hub_screen_contract.ts";
import { checkSecret, MAX_SECRET_LENGTH } from "./_web_auth.ts";

/** Options of {@link WebChardev.open} (the `-chardev web,...` keys). */
export interface WebChardevOptions {
  /**
   * Address to listen on. `0.0.0.0` or `::` opens the terminal to the network.
   * @default "127.0.0.1"
   */
  host?: string;
  /**
   * TCP port; 0 picks a free one (read it back from `port` or `url`).
   * @default 0
   */
  port?: number;
  /**
   * Bytes of output a tab may have queued before it is disconnected as too far behind; a tab
   * that is a hub backend of its own takes no more output past this (the hub's policy decides).
   * @default 1048576
   */
  queueLimit?: number;
  /**
   * `token`: the page and its socket ask for a secret; `none`: anyone who reaches the
   * address may type (a warning says so).
   * @default "token"
   */
  auth?: "token" | "none";
  /**
   * The secret for typing tabs.
   * @default 256 random bits, base64url, from the runtime's CSPRNG
   */
  token?: string;
  /**
   * The secret for view-only tabs (they see the console but cannot type or resize).
   * @default 256 random bits, like `token`
   */
  roToken?: string;
  /**
   * Tabs connected at once; the next one is refused (HTTP 503) until one leaves. Above 1, a
   * hub that holds the chardev (outside qemuCompat) takes every tab as a backend of its own.
   * @default 64
   */
  maxClients?: number;
  /**
   * `user`: on a loopback address, only our own user's connections are served (Linux);
   * `any`: every local user's.
   * @default "user"
   */
  access?: PeerAccess;
  /**
   * The id of a `tls-creds-x509` object with a server endpoint: serve HTTPS and WSS. With its
   * `verify-peer=on` a browser must present a client certificate signed by its CA.
   */
  tlsCreds?: string;
  /**
   * What a new tab is replayed when a ring hub takes the tabs apart and its `replay.N` for this
   * chardev is not given: bytes of recent output, or `screen` (`screen:LINES`), the screen as it stands.
   */
  replay?: HubReplay;
}


function parsePort(value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port <= 65535)) throw new ChardevError("INVALID_VALUE", "Parameter 'port' expects a port number (0 to 65535)");
  return port;
}

function oneOf<T extends string>(key: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new ChardevError("INVALID_VALUE", `web: '${key}' must be ${allowed.map((name) => `'${name}'`).join(" or ")}`);
}

function parseCount(key: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new ChardevError("INVALID_VALUE", `Parameter '${key}' expects a number`);
  return Number(value);
}

/** A secret's file: its first line, which must be all there is of the secret. */
function readSecretFile(context: ChardevContext, key: string, path: string): string {
  const read = context.runtime.readSmallFile;
  if (!read) throw new ChardevError("UNSUPPORTED", `web: '${key}': this runtime (${context.runtime.name}) cannot read files`);
  let bytes: Uint8Array;
  try {
    bytes = read(path, MAX_SECRET_LENGTH + 2);
  } catch (error) {
    throw new ChardevError("OPEN_FAILED", `web: could not read '${key}' ${quoteInput(path)}: ${strerror(error)}`);
  }
  const text = new TextDecoder().decode(bytes).replace(/\r?\n$/, "");
  if (text.includes("\n")) throw new ChardevError("INVALID_VALUE", `web: '${key}' ${quoteInput(path)} must hold one line, the secret`);
  return checkSecret(key, text);
}

/** `token=` or `token-file=` (one of them), for the typing or the view-only secret. */
function secretOption(context: ChardevContext, data: BackendData, key: string): string | undefined {
  const given = data[key] as string | undefined;
  const file = data[`${key}-file`] as string | undefined;
  if (given !== undefined && file !== undefined) throw new ChardevError("INVALID_PARAMETER", `web: '${key}' and '${key}-file' are mutually exclusive`);
  return file !== undefined ? readSecretFile(context, `${key}-file`, file) : given;
}

/** `web`'s options (ours). */
export const webOptions: OptionSchema = [
  { key: "host", type: "string", default: "127.0.0.1", help: "the address to listen on" },
  { key: "port", type: "integer", min: 0, max: 65535, default: "0", parse: parsePort, help: "the TCP port; 0 picks a free one" },
  { key: "queue-limit", type: "size", default: "1M", min: 1, max: MAX_CLIENT_BUFFER_BYTES, help: "output held per tab; past it a tab is dropped (close code 4000), or, as a hub backend of its own, takes no more until it reads (the hub's policy decides)" },
  { key: "auth", type: "string", values: ["token", "none"], default: "token", help: "none serves anyone who reaches the address (a warning says so)" },
  { key: "token", type: "string", default: "256 random bits", help: "the secret a tab must show (?token=, a Bearer header or the page's cookie)" },
  { key: "token-file", type: "string", help: "read `token` from this file's first line" },
  { key: "ro-token", type: "string", default: "random", help: "the secret of view-only tabs (no typing, no resizing)" },
  { key: "ro-token-file", type: "string", help: "read `ro-token` from this file's first line" },
  { key: "max-clients", type: "integer", default: "64", min: MIN_CLIENTS, max: MAX_CLIENTS, parse: (value) => parseCount("max-clients", value), help: "tabs at once; the next gets HTTP 503. Above 1, a ring hub holding the web chardev (not under --qemu-compat) takes each tab as a backend of its own, `ID#N`, with the hub's keys for ID" },
  { key: "access", type: "string", values: ["user", "any"], default: "user", help: "on loopback, only our own uid's connections (Linux), or anyone" },
  { key: "tls-creds", type: "string", help: "HTTPS and WSS with the tls-creds-x509 object of that id (endpoint=server)" },
  { key: "replay", type: "string", help: "what a new tab gets first when a ring hub takes the tabs apart and says nothing for this chardev (`replay.N`): `screen` (`screen:LINES`), the screen as it stands, or BYTES of recent output" },
];

/** `replay=screen`, `screen:LINES` or a size (`64K`). */
function parseReplay(value: string): HubReplay {
  if (isScreenReplay(value)) return value;
  return checkSize("web", "replay", parseSize("replay", value), MAX_RING_BYTES);
}

/** The checked `WebChardevOptions` of QMP's or an option string's data; reads the secrets' files. */
export function webChardevOptionsFromData(data: BackendData, context: ChardevContext): WebChardevOptions {
  return {
    host: data.host as string | undefined,
    port: data.port as number | undefined,
    queueLimit: data["queue-limit"] as number | undefined,
    auth: data.auth === undefined ? undefined : oneOf("auth", data.auth as string, ["token", "none"] as const),
    token: secretOption(context, data, "token"),
    roToken: secretOption(context, data, "ro-token"),
    maxClients: data["max-clients"] as number | undefined,
    access: data.access === undefined ? undefined : parsePeerAccess("web", data.access as string),
    tlsCreds: data["tls-creds"] as string | undefined,
    replay: data.replay === undefined ? undefined : parseReplay(data.replay as string),
  };
}
