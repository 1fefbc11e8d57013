// `tls-creds-x509`, QEMU's TLS credentials object (crypto/tlscredsx509.c): a directory of PEM
// files under QEMU's names, read once when the object is created, then named by chardevs with
// `tls-creds=ID`. Created from `-object tls-creds-x509,...` or QMP `object-add`; the registry
// keeps the objects (QEMU's /objects container).

import { ChardevError } from "./errors.ts";
import { strerror } from "./errno.ts";
import { parseBool, splitParams, validateId } from "./options.ts";
import type { HostRuntime, TlsOptions } from "./runtime/types.ts";
import { quoteInput } from "./limits.ts";

/** Which side of a TLS session the credentials are for (QAPI QCryptoTLSCredsEndpoint). */
export type TlsEndpoint = "server" | "client";

/** QEMU's file names inside `dir` (crypto/tlscredsx509.h). */
export const TLS_CREDS_X509_FILES = {
  caCert: "ca-cert.pem",
  serverCert: "server-cert.pem",
  serverKey: "server-key.pem",
  clientCert: "client-cert.pem",
  clientKey: "client-key.pem",
} as const;

/** The one object type we create. */
export const TLS_CREDS_X509 = "tls-creds-x509";

/** QMP `object-add` arguments (QAPI ObjectOptions): `qom-type`, `id` and the type's properties. */
export interface ObjectAddArgs {
  "qom-type": string;
  id: string;
  [property: string]: unknown;
}

/** Properties of tls-creds-x509 we implement, with their QAPI types. */
const PROPERTIES: Record<string, "string" | "boolean"> = { endpoint: "string", dir: "string", "verify-peer": "boolean" };
/** Properties QEMU has that we do not implement; refused rather than ignored. */
const UNSUPPORTED_PROPERTIES = new Set(["priority", "sanity-check", "passwordid", "loaded"]);

/**
 * A PEM file bigger than this is not a certificate: refused before it is read whole (the
 * directory is the user's, but `dir=/dev` must not read a device forever).
 */
const MAX_PEM_BYTES = 1024 * 1024;

/**
 * TLS credentials loaded from a directory, as QEMU's tls-creds-x509 object. Chardevs take it
 * by id (`tls-creds=ID`) and hand `tls` to the runtime's listen or connect.
 *
 * @example A server's credentials, then a TLS socket server that uses them
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * await reg.addObject("tls-creds-x509,id=tls0,endpoint=server,dir=/etc/pki/qemu,verify-peer=on");
 * await reg.add("socket,id=s0,host=0.0.0.0,port=4444,server=on,wait=off,tls-creds=tls0");
 * ```
 */
export class TlsCredsX509 {
  readonly qomType = TLS_CREDS_X509;
  #holders = 0;

  constructor(
    readonly id: string,
    readonly endpoint: TlsEndpoint,
    /** The directory the files were read from. */
    readonly dir: string,
    /**
     * A server requires a client certificate signed by the CA; a client checks the server's
     * certificate against the CA and the host name. QEMU's default.
     * @default true
     */
    readonly verifyPeer: boolean,
    /** The PEM contents, in the runtime's terms. */
    readonly tls: TlsOptions,
  ) {}

  /** Held by a chardev, so `object-del` must refuse. */
  get inUse(): boolean {
    return this.#holders > 0;
  }

  /** Marks one holder (a chardev that uses these credentials); returns the function that lets go, once. */
  hold(): () => void {
    this.#holders++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holders--;
    };
  }
}

/** What a chardev needs to look credentials up: the registry's objects (ChardevContext has it). */
export interface TlsCredsLookup {
  tlsCreds(id: string): TlsCredsX509 | undefined;
}

/**
 * The credentials named by a chardev's `tls-creds=ID`, checked for the chardev's role, with
 * QEMU's texts (chardev/char-socket.c, crypto/tlscreds.c).
 *
 * @example A listening chardev (socket server=on, web) asks for server credentials
 * ```ts
 * import type { HostRuntime, WebServerOptions } from "./runtime/types.ts";
 * declare const context: TlsCredsLookup; // the chardev's (its registry's objects)
 * declare const runtime: HostRuntime;
 * declare const options: WebServerOptions; // the web chardev's address and handlers
 * const creds = tlsCredsFor(context, "tls0", "server"); // throws "No TLS credentials with id 'tls0'" when absent
 * await runtime.web?.listen({ ...options, tls: creds.tls });
 * ```
 */
export function tlsCredsFor(lookup: TlsCredsLookup, id: string, endpoint: TlsEndpoint): TlsCredsX509 {
  const creds = lookup.tlsCreds(id);
  if (!creds) throw new ChardevError("NOT_FOUND", `No TLS credentials with id '${quoteInput(id)}'`);
  if (creds.endpoint !== endpoint) throw new ChardevError("INVALID_VALUE", `Expected TLS credentials for a ${endpoint} endpoint`);
  return creds;
}

/**
 * `-object TYPE,id=ID,key=value,...` to QMP `object-add` arguments, with QEMU's texts for
 * unknown types and keys. A bare `key` means `key=on` (QEMU still takes it, with a warning).
 *
 * @example An -object option string
 * ```ts
 * parseObjectOptions("tls-creds-x509,id=tls0,endpoint=server,dir=/etc/pki/qemu,verify-peer=off");
 * // { "qom-type": "tls-creds-x509", id: "tls0", endpoint: "server", dir: "/etc/pki/qemu", "verify-peer": false }
 * ```
 */
export function parseObjectOptions(text: string): ObjectAddArgs {
  const values = new Map<string, string>();
  splitParams(text).forEach((param, index) => {
    const eq = param.indexOf("=");
    const key = eq >= 0 ? param.slice(0, eq) : index === 0 ? "qom-type" : param;
    const value = eq >= 0 ? param.slice(eq + 1) : index === 0 ? param : "on";
    values.set(key, value);
  });
  const type = values.get("qom-type");
  if (!type) throw new ChardevError("MISSING_PARAMETER", "Parameter 'qom-type' is missing");
  if (type !== TLS_CREDS_X509) throw new ChardevError("INVALID_VALUE", `Parameter 'qom-type' does not accept value '${cut(type)}'`);
  const id = values.get("id");
  if (id === undefined) throw new ChardevError("MISSING_PARAMETER", "Parameter 'id' is missing");
  const args: ObjectAddArgs = { "qom-type": type, id };
  for (const [key, value] of values) {
    if (key === "qom-type" || key === "id") continue;
    if (UNSUPPORTED_PROPERTIES.has(key)) throw unsupported(key);
    const kind = PROPERTIES[key];
    if (!kind) throw new ChardevError("INVALID_PARAMETER", `Invalid parameter '${cut(key)}'`);
    args[key] = kind === "boolean" ? parseBool(key, value) : value;
  }
  return args;
}

/** A value echoed in an error, cut so a long one cannot flood a log. */
function cut(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...` : text;
}

function unsupported(property: string): ChardevError {
  return new ChardevError("UNSUPPORTED", `${TLS_CREDS_X509}: property '${property}' is not supported`);
}

/** QAPI's checks of `object-add` arguments for tls-creds-x509, with its texts. */
function checkArgs(args: unknown): { id: string; endpoint: TlsEndpoint; dir: string | undefined; verifyPeer: boolean } {
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    throw new ChardevError("INVALID_VALUE", "Invalid parameter type for 'arguments', expected: object");
  }
  const given = args as Record<string, unknown>;
  const type = given["qom-type"];
  if (type === undefined) throw new ChardevError("MISSING_PARAMETER", "Parameter 'qom-type' is missing");
  if (typeof type !== "string") throw new ChardevError("INVALID_VALUE", "Invalid parameter type for 'qom-type', expected: string");
  if (type !== TLS_CREDS_X509) throw new ChardevError("INVALID_VALUE", `Parameter 'qom-type' does not accept value '${cut(type)}'`);
  if (given.id === undefined) throw new ChardevError("MISSING_PARAMETER", "Parameter 'id' is missing");
  if (typeof given.id !== "string") throw new ChardevError("INVALID_VALUE", "Invalid parameter type for 'id', expected: string");
  validateId(given.id);
  for (const [key, value] of Object.entries(given)) {
    if (key === "qom-type" || key === "id") continue;
    if (UNSUPPORTED_PROPERTIES.has(key)) throw unsupported(key);
    const kind = PROPERTIES[key];
    if (!kind) throw new ChardevError("INVALID_PARAMETER", `Parameter '${cut(key)}' is unexpected`);
    if (typeof value !== kind) throw new ChardevError("INVALID_VALUE", `Invalid parameter type for '${quoteInput(key)}', expected: ${kind}`);
  }
  const endpoint = given.endpoint ?? "client"; // QEMU's default endpoint
  if (endpoint !== "server" && endpoint !== "client") {
    throw new ChardevError("INVALID_VALUE", `Parameter 'endpoint' does not accept value '${cut(String(endpoint))}'`);
  }
  return { id: given.id, endpoint, dir: given.dir as string | undefined, verifyPeer: (given["verify-peer"] as boolean | undefined) ?? true };
}

function isMissing(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "ENOENT";
}

/**
 * One credentials file, QEMU's way (qcrypto_tls_creds_get_path): a required one must be
 * there; an optional one may be absent (null) but not unreadable.
 */
function readCredential(runtime: HostRuntime, dir: string, name: string, required: boolean): Uint8Array | null {
  const path = `${dir}/${name}`;
  const read = runtime.readSmallFile;
  if (!read) throw new ChardevError("UNSUPPORTED", `${TLS_CREDS_X509}: the ${runtime.name} runtime has no files`);
  try {
    return read(path, MAX_PEM_BYTES);
  } catch (error) {
    if (isMissing(error) && !required) return null;
    throw new ChardevError("OPEN_FAILED", `Unable to access credentials ${quoteInput(path)}: ${strerror(error)}`);
  }
}

const PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----";

/** A runtime error's text, on one bounded line. */
function describe(error: unknown): string {
  const text = (error instanceof Error ? error.message : String(error)).replace(/^error:[0-9A-Fa-f]+:[^:]*:[^:]*:/, "");
  return cut(text.replace(/\s+/g, " ").trim());
}

/**
 * Creates a tls-creds-x509 object from QMP `object-add` arguments (or `parseObjectOptions`'s
 * result): reads `ca-cert.pem`, and the server's or the client's certificate and key, as QEMU
 * 10.0 does, failing with its texts. Does not register it (the registry does).
 *
 * @example Server credentials from object-add arguments
 * ```ts
 * import type { HostRuntime } from "./runtime/types.ts";
 * declare const runtime: HostRuntime;
 * const creds = await createTlsCredsX509({ "qom-type": "tls-creds-x509", id: "tls0", endpoint: "server", dir: "/etc/pki/qemu" }, runtime);
 * creds.tls.verifyPeer; // true: QEMU's default
 * ```
 */
export async function createTlsCredsX509(args: unknown, runtime: HostRuntime): Promise<TlsCredsX509> {
  const { id, endpoint, dir, verifyPeer } = checkArgs(args);
  if (dir === undefined) throw new ChardevError("MISSING_PARAMETER", "Missing 'dir' property value");
  const isServer = endpoint === "server";
  const names = TLS_CREDS_X509_FILES;
  const ca = readCredential(runtime, dir, names.caCert, true)!;
  const certName = isServer ? names.serverCert : names.clientCert;
  const keyName = isServer ? names.serverKey : names.clientKey;
  // A server must have its certificate and key; a client presents one only when both are there.
  const cert = readCredential(runtime, dir, certName, isServer);
  const key = readCredential(runtime, dir, keyName, isServer);
  const identity = cert && key ? { cert, key } : {};
  const tls: TlsOptions = { ca, ...identity, verifyPeer };

  if (!new TextDecoder().decode(ca).includes(PEM_CERTIFICATE)) {
    throw new ChardevError("OPEN_FAILED", `Unable to import CA certificate list ${dir}/${names.caCert}`);
  }
  const check = runtime.net?.checkTls;
  if (check && identity.cert) {
    try {
      check({ ca, cert: identity.cert, verifyPeer });
    } catch (error) {
      throw new ChardevError("OPEN_FAILED", `Unable to import ${endpoint} certificate ${dir}/${certName}: ${describe(error)}`);
    }
    try {
      check(tls);
    } catch (error) {
      throw new ChardevError("OPEN_FAILED", `Cannot load certificate '${dir}/${certName}' & key '${dir}/${keyName}': ${describe(error)}`);
    }
  }
  return new TlsCredsX509(id, endpoint, dir, verifyPeer, tls);
}
