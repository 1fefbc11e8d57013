// The command's registry (host-ts/cli/cli_registry.ts): every built-in kind, some of them
// registered by name and loaded when a chardev of the kind is first added, so that a start
// compiles only the kinds it uses (issue 17, startup). The command's own runs are in
// tests/cli*.test.ts; here the registry in-process, on every runtime.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "./_harness.ts";
import { BUILTIN_DRIVERS } from "../host-ts/chardev/drivers.ts";
import { CliRegistry, isWebChardev, LAZY_KIND_KEYS, LAZY_KINDS } from "../host-ts/cli/cli_registry.ts";
import { optionKeys } from "../host-ts/option_schema.ts";
import { kindOfSpec } from "../host-ts/registry.ts";
import { detectRuntime } from "../host-ts/runtime/detect.ts";

const sorted = (names: Iterable<string>) => [...names].sort();

describe("the command's registry", () => {
  let reg: CliRegistry | null = null;
  let dir: string | null = null;
  afterEach(async () => {
    await reg?.close();
    reg = null;
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  it("knows every built-in kind and alias before any lazy kind has loaded", async () => {
    reg = await CliRegistry.create({ runtime: await detectRuntime() });
    const builtin = BUILTIN_DRIVERS.flatMap((driver) => [driver.type, ...(driver.aliases ?? [])]);
    expect(sorted(reg.registeredKinds())).toEqual(sorted(builtin));
  });

  it("names each lazy kind as its driver does, type first, then its aliases", async () => {
    for (const lazy of LAZY_KINDS) {
      const driver = await lazy.load();
      expect([driver.type, ...(driver.aliases ?? [])]).toEqual([lazy.type, ...(lazy.aliases ?? [])]);
    }
  });

  it("knows every -chardev key of the lazy kinds' schemas before they load, and no other", async () => {
    const schemaKeys = new Set<string>();
    for (const lazy of LAZY_KINDS) for (const key of optionKeys((await lazy.load()).options ?? [])) schemaKeys.add(key);
    expect(sorted(LAZY_KIND_KEYS)).toEqual(sorted(schemaKeys));
  });

  it("adds a chardev of a lazy kind from its -chardev string, and from QMP chardev-add arguments", async () => {
    reg = await CliRegistry.create({ runtime: await detectRuntime() });
    const web = await reg.add("web,id=web0,host=127.0.0.1,port=0");
    expect(isWebChardev(web)).toBe(true);
    expect(reg.registeredKinds().filter((kind) => kind === "web")).toEqual(["web"]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-cli-registry-"));
    const cast = path.join(dir, "session.cast");
    const recording = await reg.add({ id: "cast0", backend: { type: "asciicast", data: { path: cast, cols: 100 } } });
    expect(recording.kind).toBe("asciicast");
    expect(fs.existsSync(cast)).toBe(true);
  });

  it("still refuses an unknown kind with QEMU's text", async () => {
    reg = await CliRegistry.create({ runtime: await detectRuntime() });
    await expect(reg.add("teleport,id=t0")).rejects.toThrow("'teleport' is not a valid char driver name");
  });

  it("reads a spec's kind as the -chardev parser does: the bare first item, else the last backend=", () => {
    expect(kindOfSpec("web,id=w,port=0")).toBe("web");
    expect(kindOfSpec("id=w,backend=udp")).toBe("udp");
    expect(kindOfSpec("id=w,backend=udp,backend=pty")).toBe("pty");
    expect(kindOfSpec("id=w,port=0")).toBe(undefined);
  });
});
