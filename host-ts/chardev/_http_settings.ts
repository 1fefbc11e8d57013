// The `http` sink's settings from its checked QAPI data, and the retry rules (which answers are
// tried again, and after how long). Apart from http.ts so the chardev holds only its data path.

import { ChardevError } from "../errors.ts";
import { checkMilliseconds, checkRange, checkSize, quoteInput } from "../limits.ts";
import type { BackendData } from "./_chardev.ts";

/** `batch-bytes=`'s default: a body of up to 64 KiB. */
export const DEFAULT_HTTP_BATCH_BYTES = 64 * 1024;
/** The largest `batch-bytes=`: one body stays a bounded allocation. */
export const MAX_HTTP_BATCH_BYTES = 16 * 1024 * 1024;
/** `batch-ms=`'s default: a batch goes out at most this long after its first byte. */
export const DEFAULT_HTTP_BATCH_MS = 200;
/** The most requests `concurrency=` lets one sink have in flight. */
export const MAX_HTTP_CONCURRENCY = 64;
/** `retry-ms=`'s default: the first wait before a batch is sent again. */
export const DEFAULT_HTTP_RETRY_MS = 500;
/** `retry-max=`'s default: how often one batch is sent again before the sink gives up. */
export const DEFAULT_HTTP_RETRY_MAX = 10;
/** The exponential backoff doubles up to this wait. */
export const MAX_HTTP_BACKOFF_MS = 30_000;
/** A receiver's `Retry-After` is honoured up to this wait (a longer one is cut to it). */
export const MAX_HTTP_RETRY_AFTER_MS = 300_000;
/** `content-type=`'s default. */
export const DEFAULT_HTTP_CONTENT_TYPE = "text/plain; charset=utf-8";

/** The methods a sink may send a body with. */
export const HTTP_METHODS = ["POST", "PUT", "PATCH"] as const;

/** Header names a sink sets itself, or that belong to the connection, not to a configuration. */
const RESERVED_HEADERS = new Set(["content-length", "transfer-encoding", "host", "connection", "chardev-hub-gap"]);

/** An HTTP token (RFC 9110 section 5.6.2): what a header name is made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** What one `http` sink does, checked. */
export interface HttpSinkSettings {
  readonly url: URL;
  readonly method: (typeof HTTP_METHODS)[number];
  /** `headers.N`, in order, as name and value. */
  readonly headers: readonly (readonly [string, string])[];
  readonly batchBytes: number;
  readonly batchMs: number;
  readonly concurrency: number;
  readonly retryMs: number;
  readonly retryMax: number;
  readonly contentType: string;
}

/** The URL as messages and `query-chardev` show it: no query string (it may hold a token). */
export function shownUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * One `headers.N=Name: value` entry as name and value; throws INVALID_VALUE saying what is
 * wrong with it (no colon, a name that is no token, CR/LF/NUL in the value, a reserved name).
 */
export function parseHeader(entry: string, index: number): [string, string] {
  const key = `headers.${index}`;
  const colon = entry.indexOf(":");
  if (colon <= 0) throw new ChardevError("INVALID_VALUE", `http: '${key}' must be 'Name: value', not '${quoteInput(entry)}'`);
  const name = entry.slice(0, colon).trim();
  const value = entry.slice(colon + 1).trim();
  if (!TOKEN.test(name)) throw new ChardevError("INVALID_VALUE", `http: '${key}' has an invalid header name '${quoteInput(name)}'`);
  if (/[\r\n\0]/.test(value)) throw new ChardevError("INVALID_VALUE", `http: '${key}' (${quoteInput(name)}): a header value must not hold CR, LF or NUL`);
  if (RESERVED_HEADERS.has(name.toLowerCase())) throw new ChardevError("INVALID_VALUE", `http: '${key}': header '${name}' is set by the sink itself`);
  return [name, value];
}

/** The sink's settings from `data` (QAPI types already checked); throws ChardevError naming the key. */
export function httpSettingsFromData(data: BackendData): HttpSinkSettings {
  const text = data.url as string | undefined;
  if (text === undefined || text === "") throw new ChardevError("MISSING_PARAMETER", "http: 'url' is required (url=http://HOST/PATH)");
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ChardevError("INVALID_VALUE", `http: 'url' is not a URL: '${quoteInput(text)}'`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ChardevError("INVALID_VALUE", `http: 'url' must be an http: or https: URL, not '${quoteInput(url.protocol)}'`);
  }
  // fetch refuses such a URL, and the password would show in every message.
  if (url.username !== "" || url.password !== "") {
    throw new ChardevError("INVALID_VALUE", "http: 'url' must not hold a user or password; send them with headers.N=Authorization: ...");
  }
  const method = ((data.method as string | undefined) ?? "POST").toUpperCase();
  if (!(HTTP_METHODS as readonly string[]).includes(method)) {
    throw new ChardevError("INVALID_VALUE", `http: 'method' must be one of ${HTTP_METHODS.join(", ")}, not '${quoteInput(method)}'`);
  }
  const headers = ((data.headers as string[] | undefined) ?? []).map((entry, index) => parseHeader(entry, index));
  const contentType = (data["content-type"] as string | undefined) ?? DEFAULT_HTTP_CONTENT_TYPE;
  if (contentType === "" || /[\r\n\0]/.test(contentType)) throw new ChardevError("INVALID_VALUE", "http: 'content-type' must be a non-empty value without CR, LF or NUL");
  return {
    url,
    method: method as HttpSinkSettings["method"],
    headers,
    batchBytes: checkSize("http", "batch-bytes", (data["batch-bytes"] as number | undefined) ?? DEFAULT_HTTP_BATCH_BYTES, MAX_HTTP_BATCH_BYTES, 1),
    batchMs: checkMilliseconds("http", "batch-ms", (data["batch-ms"] as number | undefined) ?? DEFAULT_HTTP_BATCH_MS),
    concurrency: checkRange("http", "concurrency", (data.concurrency as number | undefined) ?? 1, 1, MAX_HTTP_CONCURRENCY),
    retryMs: checkMilliseconds("http", "retry-ms", (data["retry-ms"] as number | undefined) ?? DEFAULT_HTTP_RETRY_MS),
    retryMax: checkRange("http", "retry-max", (data["retry-max"] as number | undefined) ?? DEFAULT_HTTP_RETRY_MAX, 0, 1000),
    contentType,
  };
}

/** Whether an answer with this status is tried again (429 and 5xx); any other non-2xx is final. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/**
 * The wait a `Retry-After` header asks for (seconds, or an HTTP date), in ms from `now`,
 * at most MAX_HTTP_RETRY_AFTER_MS; null when there is none or it cannot be read.
 *
 * @example Seconds and dates
 * ```ts
 * retryAfterMs("2", 0); // 2000
 * retryAfterMs("Thu, 01 Jan 1970 00:00:05 GMT", 1000); // 4000
 * ```
 */
export function retryAfterMs(header: string | null, now: number): number | null {
  if (header === null) return null;
  const text = header.trim();
  let wait: number;
  if (/^\d+$/.test(text)) wait = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return null;
    wait = at - now;
  }
  return Math.min(Math.max(wait, 0), MAX_HTTP_RETRY_AFTER_MS);
}

/** The wait before retry number `retry` (1, 2, ...): `retry-ms`, doubled each time, at most MAX_HTTP_BACKOFF_MS. */
export function backoffMs(retryMs: number, retry: number): number {
  return Math.min(retryMs * 2 ** Math.min(retry - 1, 30), MAX_HTTP_BACKOFF_MS);
}
