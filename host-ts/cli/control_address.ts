// Where the control socket is: a UNIX socket path (the default, 0600: only our user), or
// `tcp:HOST:PORT` for remote attach. A TCP control socket anyone on the network can reach
// must speak TLS: without `tls-creds` only a loopback address is taken, and then only our own
// user is served (the same-user check of chardev/_peer_access.ts, as `access=user` sockets).

import { ChardevError } from "../errors.ts";
import { quoteInput } from "../limits.ts";
import { isLoopbackAddress } from "../runtime/_ip_address.ts";
import { createTlsCredsX509, TLS_CREDS_X509 } from "../tls_creds.ts";
import type { HostRuntime, TlsOptions } from "../runtime/types.ts";

/** A control socket's address, as `-control` (server) or `--control` (client) gives it. */
export type ControlAddress =
  | { readonly transport: "unix"; readonly path: string }
  | {
      readonly transport: "tcp";
      readonly host: string;
      readonly port: number;
      /** Server side: the `-object tls-creds-x509` id of `tls-creds=ID`; null for plain TCP (loopback only). */
      readonly tlsCreds: string | null;
    };

/** Where a client connects, with the TLS it speaks there (none on a UNIX socket or plain loopback TCP). */
export interface ControlTarget {
  /** The `--control` value, for messages. */
  readonly text: string;
  readonly address: ControlAddress;
  readonly tls: TlsOptions | undefined;
}

const TCP_PREFIX = "tcp:";

/** `HOST:PORT` or `[IPV6]:PORT`; throws with `what` (the option) in the message. Port 0 (any free one) only for a listener. */
function parseHostPort(what: string, text: string, lowestPort: 0 | 1): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < lowestPort || port > 65535) {
    throw new ChardevError("INVALID_VALUE", `control: ${what} expects tcp:HOST:PORT (tcp:[IPV6]:PORT for IPv6; port ${lowestPort} to 65535), not '${quoteInput(TCP_PREFIX + text)}'`);
  }
  return { host: match[1] ?? match[2], port };
}

/**
 * `-control VALUE`: a socket path (unchanged), or `tcp:HOST:PORT[,tls-creds=ID]`. Plain TCP on
 * an address other hosts can reach is refused: anyone there could attach and type.
 *
 * @example A path, a TLS listener on every interface, and a refused plain one
 * ```ts
 * parseControlListenAddress("run/chardev-hub.sock"); // { transport: "unix", path: "run/chardev-hub.sock" }
 * parseControlListenAddress("tcp:0.0.0.0:7000,tls-creds=tls0"); // { transport: "tcp", host: "0.0.0.0", port: 7000, tlsCreds: "tls0" }
 * parseControlListenAddress("tcp:0.0.0.0:7000"); // throws: without tls-creds only a loopback address
 * ```
 */
export function parseControlListenAddress(text: string): ControlAddress {
  if (!text.startsWith(TCP_PREFIX)) return { transport: "unix", path: text };
  const [hostPort, ...params] = text.slice(TCP_PREFIX.length).split(",");
  let tlsCreds: string | null = null;
  for (const param of params) {
    const eq = param.indexOf("=");
    const key = eq < 0 ? param : param.slice(0, eq);
    if (key !== "tls-creds" || eq < 0 || param.length === eq + 1) {
      throw new ChardevError("INVALID_PARAMETER", `control: -control tcp:HOST:PORT takes only tls-creds=ID, not '${quoteInput(param)}'`);
    }
    tlsCreds = param.slice(eq + 1);
  }
  const { host, port } = parseHostPort("-control", hostPort, 0);
  if (tlsCreds === null && !isLoopbackAddress(host)) {
    throw new ChardevError(
      "INVALID_VALUE",
      `control: -control ${quoteInput(text)}: a TCP control socket without TLS is only for a loopback address (127.0.0.1, ::1); add tls-creds=ID (an -object ${TLS_CREDS_X509} with endpoint=server) to listen on ${quoteInput(host)}`,
    );
  }
  return { transport: "tcp", host, port, tlsCreds };
}

/**
 * `--control VALUE [--tls-creds DIR]` of the client commands, resolved: the address, and the TLS
 * credentials read from DIR under QEMU's client file names (ca-cert.pem; client-cert.pem and
 * client-key.pem when the server verifies peers). Throws ChardevError with QEMU's texts for
 * unreadable credentials.
 *
 * @example A remote console over TLS
 * ```ts
 * import type { HostRuntime } from "../runtime/types.ts";
 * declare const runtime: HostRuntime;
 * const target = await resolveControlTarget(runtime, "tcp:192.0.2.7:7000", "/etc/pki/chardev-hub");
 * target.tls?.verifyPeer; // true: the server's certificate must chain to ca-cert.pem and name 192.0.2.7
 * ```
 */
export async function resolveControlTarget(runtime: HostRuntime, text: string, tlsCredsDir: string | null): Promise<ControlTarget> {
  if (!text.startsWith(TCP_PREFIX)) {
    if (tlsCredsDir !== null) throw new ChardevError("INVALID_VALUE", "control: --tls-creds is for a TCP control socket (--control tcp:HOST:PORT)");
    return { text, address: { transport: "unix", path: text }, tls: undefined };
  }
  const { host, port } = parseHostPort("--control", text.slice(TCP_PREFIX.length), 1);
  const address: ControlAddress = { transport: "tcp", host, port, tlsCreds: null };
  if (tlsCredsDir === null) {
    if (!isLoopbackAddress(host)) {
      throw new ChardevError("INVALID_VALUE", `control: ${quoteInput(text)} is not a loopback address: a remote control socket needs TLS (--tls-creds DIR, with ca-cert.pem)`);
    }
    return { text, address, tls: undefined };
  }
  const creds = await createTlsCredsX509({ "qom-type": TLS_CREDS_X509, id: "control", endpoint: "client", dir: tlsCredsDir, "verify-peer": true }, runtime);
  return { text, address, tls: creds.tls };
}
