// Real nats-server processes for the nats chardev's tests: JetStream on, loopback ports, a store
// of their own under one temporary folder, stopped (only the processes started here) by stopAll.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { freePort, freePorts } from "./_ports.ts";

/** A nats-server we started: its URL, its store, and its process. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** The -c file's text, kept so a restart runs the same configuration. */
  readonly config: string | undefined;
  readonly name: string;
  child: ChildProcess;
  /** The last few KiB it logged. */
  log: string;
}

const started: NatsServer[] = [];
let tmp: string | null = null;

/** The tests' temporary folder (made on first use, removed by stopAll). */
export function natsTmp(): string {
  tmp ??= fs.mkdtempSync(path.join(os.tmpdir(), "nats-test-"));
  return tmp;
}

/** Waits (on the event loop, without a clock) until `condition` holds; the test timeout bounds it. */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Starts `nats-server -js -sd DIR -p PORT -a 127.0.0.1` (with `config` as its -c file) and
 * waits until it says it is ready. `again` restarts a server stopped before, on its port and store.
 */
export async function startServer(options: { config?: string; port?: number; name?: string; again?: NatsServer } = {}): Promise<NatsServer> {
  const again = options.again;
  const port = again?.port ?? options.port ?? (await freePort());
  const dir = again?.dir ?? fs.mkdtempSync(path.join(natsTmp(), "js-"));
  const config = again?.config ?? options.config;
  const name = again?.name ?? options.name ?? `n${port}`;
  const args = ["-js", "-sd", dir, "-p", String(port), "-a", "127.0.0.1", "-n", name];
  if (config !== undefined) {
    const file = path.join(dir, "server.conf");
    fs.writeFileSync(file, config);
    args.push("-c", file);
  }
  const child = spawn("nats-server", args, { stdio: ["ignore", "ignore", "pipe"] });
  const server: NatsServer = again ?? { url: `nats://127.0.0.1:${port}`, port, dir, config, name, child, log: "" };
  server.child = child;
  server.log = "";
  child.stderr!.on("data", (chunk: Buffer) => (server.log = (server.log + chunk.toString()).slice(-8000)));
  if (!again) started.push(server);
  let exited = false;
  child.once("exit", () => (exited = true));
  while (!(await accepts(port))) {
    if (exited) throw new Error(`nats-server exited: ${server.log}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await until(() => server.log.includes("Server is ready") || exited);
  if (exited) throw new Error(`nats-server exited: ${server.log}`);
  return server;
}

/** Stops a server we started (SIGTERM, or SIGKILL for a node that dies) and waits for it to exit. */
export async function stopServer(server: NatsServer, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill(signal);
  await exited;
}

/** Stops every server started here and removes their stores. */
export async function stopAll(): Promise<void> {
  for (const server of started.splice(0)) await stopServer(server);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = null;
}

/** A cluster of `size` servers (JetStream clustered, routes among all), each ready. */
export async function startCluster(size: number): Promise<NatsServer[]> {
  // Client and route ports picked together, so no two of them are the same port (picked one at
  // a time, the kernel may hand a just-released port out again: "Duplicate route entry").
  const ports = await freePorts(2 * size);
  const clusterPorts = ports.slice(0, size);
  const routes = clusterPorts.map((port) => `nats-route://127.0.0.1:${port}`).join(", ");
  return Promise.all(
    clusterPorts.map((clusterPort, i) =>
      startServer({ name: `node${i + 1}`, port: ports[size + i], config: `cluster {\n  name: tests\n  listen: 127.0.0.1:${clusterPort}\n  routes: [${routes}]\n}\n` }),
    ),
  );
}
