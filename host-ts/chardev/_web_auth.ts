// The browser terminal's secrets (private to web.ts). Whoever reaches the page can type into
// the console, and on a shared machine every local user reaches 127.0.0.1: so the page and
// its WebSocket ask for a secret, as ttyd and gotty do. A secret arrives as `?token=` (the
// printed URL), as `Authorization: Bearer` (scripts), or as the cookie the page set after a
// `?token=` load (so the secret leaves the address bar and the history).

import { ChardevError } from "../errors.ts";
import type { WebRequestInfo } from "../runtime/types.ts";

/** Random bytes in a generated secret: 256 bits, twice the least the issue asks for. */
const SECRET_BYTES = 32;

/** Longest secret taken from an option or a file; a longer one is a mistake, not a secret. */
export const MAX_SECRET_LENGTH = 1024;

/** What may stand in a secret: printable ASCII that is safe in a cookie value as it is. */
const SECRET_CHARACTERS = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$/;

/** A secret from the runtime's CSPRNG (Web Crypto, in Node, Deno, Bun and workers alike), base64url. */
export function generateSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(SECRET_BYTES));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Checks a secret given by the user (`token=`, `ro-token=`, or a token file's first line). */
export function checkSecret(key: string, secret: string): string {
  if (secret.length === 0) throw new ChardevError("INVALID_VALUE", `web: '${key}' must not be empty`);
  if (secret.length > MAX_SECRET_LENGTH) throw new ChardevError("INVALID_VALUE", `web: '${key}' is longer than ${MAX_SECRET_LENGTH} characters`);
  if (!SECRET_CHARACTERS.test(secret)) {
    throw new ChardevError("INVALID_VALUE", `web: '${key}' may hold only printable ASCII without spaces, '"', ',', ';' or '\\'`);
  }
  return secret;
}

/**
 * Compares in time that depends only on the expected secret's length, so a client cannot
 * learn a secret one character at a time from how fast it is refused.
 */
export function secretsEqual(given: string, expected: string): boolean {
  let difference = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) {
    difference |= (given.charCodeAt(i % Math.max(given.length, 1)) || 0) ^ expected.charCodeAt(i);
  }
  return difference === 0;
}

/**
 * The cookie's name, one per port: cookies do not tell ports apart, so two terminals on
 * 127.0.0.1 must not overwrite each other's.
 */
export function cookieName(port: number): string {
  return `chardev-hub-${port}`;
}

/** The secret a request presents and how: the URL's `token`, a Bearer header, or our cookie. */
export interface PresentedSecret {
  readonly secret: string;
  readonly via: "query" | "bearer" | "cookie";
}

/**
 * The first secret a request presents, in the order URL, header, cookie: a URL or header is
 * what the client asks for now, while a cookie may be left over from an earlier run.
 */
export function presentedSecret(request: WebRequestInfo, cookie: string): PresentedSecret | null {
  const query = new URL(request.target, "http://request.invalid").searchParams.get("token");
  if (query !== null) return { secret: query, via: "query" };
  const bearer = /^Bearer[ ]+(\S+)\s*$/i.exec(request.authorization ?? "");
  if (bearer) return { secret: bearer[1], via: "bearer" };
  for (const pair of (request.cookie ?? "").split(";")) {
    const at = pair.indexOf("=");
    if (at > 0 && pair.slice(0, at).trim() === cookie) return { secret: pair.slice(at + 1).trim(), via: "cookie" };
  }
  return null;
}

/** The cookie a page load with `?token=` sets: never readable by scripts, never sent cross-site. */
export function sessionCookie(name: string, secret: string, secure: boolean): string {
  return `${name}=${secret}; Path=/; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}
