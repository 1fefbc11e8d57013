// The edge bundle (dist/edge.js, from host-ts/mod_web.ts): it holds no Node, Deno or Bun API,
// and it runs where only Web APIs exist: in workerd (Cloudflare's runtime) serving a module
// Worker, and in Deno with no permissions at all. Both fan a body out through a hub to 3
// webstream sinks (tests/edge/fanout.js) and report each sink's length and SHA-256.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry, coreWasmBytes, webRuntime } from "../dist/edge.js";
import { errorOf } from "./_fe_handler.ts";
import { EDGE_BODY, sha256, streamOf, testChunks, type FanOutReport } from "./edge/fanout.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The binaries `npx workerd` and `npx deno` run, started directly so we hold their pids. */
const bin = (name: string) => path.join(root, "node_modules/.bin", name);

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[]): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk) => (stdout += chunk));
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Each sink must have read exactly `body`, whole and in order. */
async function expectEverySinkGot(report: FanOutReport, body: Uint8Array[]): Promise<void> {
  const all = new Uint8Array(body.reduce((sum, chunk) => sum + chunk.length, 0));
  body.reduce((offset, chunk) => (all.set(chunk, offset), offset + chunk.length), 0);
  const digest = await sha256(all);
  expect(report.sent).toBe(all.length);
  expect(report.sinks).toHaveLength(3);
  for (const sink of report.sinks) expect({ length: sink.length, sha256: sink.sha256 }).toEqual({ length: all.length, sha256: digest });
  // The sinks' queues (1 KiB) are far smaller than the body: the frontend met EAGAIN and
  // waited on the hub's watch, so backpressure was exercised, not bypassed.
  expect(report.eagain).toBeGreaterThan(0);
}

describe("the edge bundle", () => {
  it("imports nothing, so it reaches no node: module", () => {
    const text = fs.readFileSync(path.join(root, "dist/edge.js"), "utf8");
    expect(text.match(/\b(?:import|export)\b[^;]*?\bfrom\s*["'][^"']+["']/g)).toBeNull();
    expect(text.match(/\bimport\s*\(|\brequire\s*\(/g)).toBeNull();
    expect(text.includes("node:")).toBe(false);
  });

  it("embeds the core that the build made, byte for byte", () => {
    const built = new Uint8Array(fs.readFileSync(path.join(root, "dist/core.wasm")));
    expect(coreWasmBytes()).toEqual(built);
  });

  it("refuses file and pipe backends with UNSUPPORTED, and a logfile too", async () => {
    const reg = await ChardevRegistry.create();
    try {
      for (const spec of ["file,id=f0,path=/tmp/edge-file", "pipe,id=p0,path=/tmp/edge-pipe", "ringbuf,id=r0,logfile=/tmp/edge-log"]) {
        const error = await errorOf(() => reg.add(spec));
        expect(error).toBeInstanceOf(ChardevError);
        expect(error.code).toBe("UNSUPPORTED");
      }
      expect((await errorOf(() => reg.add("pipe,id=p1,path=/x"))).message).toBe("this runtime (web) has no files or FIFOs: cannot open '/x'");
      expect(reg.query()).toEqual([]);
    } finally {
      await reg.close();
    }
  });

  it("knows hub, ringbuf, null, mux and webstream, and not the kinds that need a host", async () => {
    const reg = await ChardevRegistry.create({ runtime: webRuntime });
    try {
      for (const spec of ["null,id=n0", "ringbuf,id=r0", "webstream,id=w0", "hub,id=h0,chardevs.0=n0,chardevs.1=w0", "null,id=m0,mux=on"]) {
        await reg.add(spec);
      }
      expect(reg.query().map((info) => [info.label, reg.get(info.label).kind])).toEqual([
        ["n0", "null"],
        ["r0", "ringbuf"],
        ["w0", "webstream"],
        ["h0", "hub"],
        ["m0-base", "null"],
        ["m0", "mux"],
      ]);
      for (const kind of ["stdio", "socket", "pty", "web"]) {
        expect((await errorOf(() => reg.add(`${kind},id=x0`))).code).toBe("UNKNOWN_BACKEND");
      }
    } finally {
      await reg.close();
    }
  });
});

describe("the edge bundle in workerd", () => {
  let workerd: ChildProcess | undefined;
  let log = "";
  let url = "";

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}/`;
    // Its own process group, so stopping it stops nothing but what we started.
    workerd = spawn(bin("workerd"), ["serve", "tests/edge/worker.capnp", "--socket-addr", `http=127.0.0.1:${port}`], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    workerd.stdout!.on("data", (chunk) => (log += chunk));
    workerd.stderr!.on("data", (chunk) => (log += chunk));
    let exited = false;
    workerd.on("exit", () => (exited = true));
    // Ready once it answers; a GET is refused with 405 by the Worker itself.
    for (let attempt = 0; ; attempt++) {
      if (exited) throw new Error(`workerd exited:\n${log}`);
      const status = await fetch(url).then((response) => response.status, () => 0);
      if (status === 405) return;
      if (attempt === 400) throw new Error(`workerd did not answer on ${url}:\n${log}`);
      await sleep(25);
    }
  });

  afterAll(async () => {
    if (!workerd || workerd.exitCode !== null || workerd.signalCode !== null) return;
    const exited = new Promise((resolve) => workerd!.on("exit", resolve));
    process.kill(-workerd.pid!, "SIGTERM");
    await exited;
  });

  it("fans a multi-chunk POST body out through a hub to 3 webstream sinks, and every sink gets every byte", async () => {
    // 1.5 MiB in 24 chunks of uneven sizes, streamed (the body is never whole on our side).
    const sizes = Array.from({ length: 24 }, (_, i) => 1 + ((i * 7919 * 13) % 131_072));
    const body = testChunks(0xed9e, sizes);
    const response = await fetch(url, {
      method: "POST",
      body: streamOf(body),
      headers: { "content-type": "application/octet-stream" },
      duplex: "half",
    } as RequestInit);
    const text = await response.text();
    expect({ status: response.status, text: response.status === 200 ? "" : text }).toEqual({ status: 200, text: "" });
    const report = JSON.parse(text) as FanOutReport & { runtime: string };
    expect(report.runtime).toBe("workerd");
    expect(report.chunks).toBeGreaterThan(1);
    await expectEverySinkGot(report, body);
  });
});

describe("the edge bundle in Deno without permissions", () => {
  it("fans a body out through a hub to 3 webstream sinks with every permission still ungranted", async () => {
    // No flags at all: `deno run FILE`.
    const { code, stdout, stderr } = await run(bin("deno"), ["run", "tests/edge/deno_noperm.ts"]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const report = JSON.parse(stdout) as FanOutReport & { runtime: string; permissions: Record<string, string>; fileBackend: string };
    expect(report.runtime).toBe("deno");
    for (const state of Object.values(report.permissions)) expect(state).not.toBe("granted");
    expect(Object.keys(report.permissions)).toHaveLength(7);
    expect(report.fileBackend).toBe("UNSUPPORTED");
    expect(report.chunks).toBe(EDGE_BODY.sizes.length);
    await expectEverySinkGot(report, testChunks(EDGE_BODY.seed, EDGE_BODY.sizes));
  });
});
