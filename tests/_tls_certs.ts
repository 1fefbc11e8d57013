// A throwaway PKI for TLS tests, made with the `openssl` command: a CA, a server certificate
// for 127.0.0.1, ::1 and localhost, and a client certificate, written under QEMU's
// tls-creds-x509 file names so a directory serves `-object tls-creds-x509,dir=...` as is.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** Where the files of one test PKI are. */
export interface TestPki {
  /** The root: `ca-cert.pem` and `ca-key.pem` (the CA's key, for signing more certificates). */
  readonly root: string;
  /** endpoint=server credentials: ca-cert.pem, server-cert.pem, server-key.pem. */
  readonly serverDir: string;
  /** endpoint=client credentials with a client certificate: ca-cert.pem, client-cert.pem, client-key.pem. */
  readonly clientDir: string;
  /** endpoint=client credentials without a certificate of its own: ca-cert.pem only. */
  readonly anonymousClientDir: string;
  /** A second CA nobody trusts, with a server and a client certificate it signed (`rogue-*.pem` in `root`). */
  readonly rogue: { readonly caCert: string; readonly serverCert: string; readonly serverKey: string; readonly clientCert: string; readonly clientKey: string };
  /** The CA's certificate (same file as serverDir's ca-cert.pem). */
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Removes every file. */
  remove(): void;
}

function openssl(cwd: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/** A key and a certificate signed by `caName` (its `-cert.pem` and `-key.pem` in `cwd`). */
function issue(cwd: string, name: string, caName: string, subject: string, extensions: string): void {
  openssl(cwd, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", subject);
  fs.writeFileSync(path.join(cwd, `${name}.ext`), extensions);
  openssl(cwd, "x509", "-req", "-in", `${name}.csr`, "-CA", `${caName}-cert.pem`, "-CAkey", `${caName}-key.pem`, "-set_serial", String(Date.now() + Math.floor(Math.random() * 1e6)), "-days", "2", "-out", `${name}-cert.pem`, "-extfile", `${name}.ext`);
}

function selfSignedCa(cwd: string, name: string, subject: string): void {
  openssl(cwd, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}-key.pem`, "-out", `${name}-cert.pem`, "-days", "2", "-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
}

const SERVER_EXTENSIONS = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n";
const CLIENT_EXTENSIONS = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";

/**
 * Makes a CA, a server certificate (CN 127.0.0.1; SAN 127.0.0.1, ::1, localhost) and a client
 * certificate (CN client) in a new temporary directory, plus QEMU-style credential
 * directories for each endpoint. RSA 2048, valid two days. Needs `openssl` on PATH.
 *
 * @example
 * ```ts
 * const pki = makeTestPki();
 * await reg.addObject(`tls-creds-x509,id=tls0,endpoint=server,dir=${pki.serverDir},verify-peer=on`);
 * // browsers: trust pki.caCert; curl --cacert pki.caCert --cert pki.clientCert --key pki.clientKey
 * pki.remove();
 * ```
 */
export function makeTestPki(): TestPki {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-tls-pki-"));
  selfSignedCa(root, "ca", "/CN=chardev-hub test CA");
  issue(root, "server", "ca", "/CN=127.0.0.1", SERVER_EXTENSIONS);
  issue(root, "client", "ca", "/CN=client", CLIENT_EXTENSIONS);
  selfSignedCa(root, "rogue-ca", "/CN=rogue CA");
  issue(root, "rogue-server", "rogue-ca", "/CN=127.0.0.1", SERVER_EXTENSIONS);
  issue(root, "rogue-client", "rogue-ca", "/CN=rogue client", CLIENT_EXTENSIONS);

  const file = (name: string) => path.join(root, name);
  const credentials = (dirName: string, files: Record<string, string>) => {
    const dir = file(dirName);
    fs.mkdirSync(dir);
    for (const [target, source] of Object.entries(files)) fs.copyFileSync(file(source), path.join(dir, target));
    return dir;
  };
  const serverDir = credentials("server", { "ca-cert.pem": "ca-cert.pem", "server-cert.pem": "server-cert.pem", "server-key.pem": "server-key.pem" });
  const clientDir = credentials("client", { "ca-cert.pem": "ca-cert.pem", "client-cert.pem": "client-cert.pem", "client-key.pem": "client-key.pem" });
  const anonymousClientDir = credentials("anonymous-client", { "ca-cert.pem": "ca-cert.pem" });
  return {
    root,
    serverDir,
    clientDir,
    anonymousClientDir,
    rogue: {
      caCert: file("rogue-ca-cert.pem"),
      serverCert: file("rogue-server-cert.pem"),
      serverKey: file("rogue-server-key.pem"),
      clientCert: file("rogue-client-cert.pem"),
      clientKey: file("rogue-client-key.pem"),
    },
    caCert: file("ca-cert.pem"),
    serverCert: file("server-cert.pem"),
    serverKey: file("server-key.pem"),
    clientCert: file("client-cert.pem"),
    clientKey: file("client-key.pem"),
    remove: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}
