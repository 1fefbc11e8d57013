// The chardev namespace: option strings and QMP objects, their errors, file and pipe
// backends, logfiles, remove and query. Bad input never leaves a half-made chardev.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry, parseChardevOptions } from "../host-ts/mod.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";

let reg: ChardevRegistry;
let dir: string;
beforeEach(async () => {
  reg = await ChardevRegistry.create();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-hub-reg-"));
});
afterEach(async () => {
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Waits until `check` holds, polling the event loop (bounded by the test timeout). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 2));
}

describe("-chardev option strings", () => {
  it("a doubled comma is a literal comma and a bare key means on", () => {
    const parsed = parseChardevOptions("file,id=f,path=/tmp/a,,b,append");
    expect(parsed).toEqual({ id: "f", backend: "file", options: new Map([["path", "/tmp/a,b"], ["append", "on"]]) });
  });

  const cases: [string, string][] = [
    ["ringbuf,id=r,colour=blue", "Invalid parameter 'colour'"],
    ["ringbuf,size=8", "Parameter 'id' is missing"],
    ["id=r", 'chardev: "r" missing backend'],
    ["", "Parameter 'backend' is missing"],
    ["teleport,id=t", "'teleport' is not a valid char driver name"],
    ["file,id=f,path=/tmp/x,append=maybe", "Parameter 'append' expects 'on' or 'off'"],
    ["ringbuf,id=r,size=lots", "Parameter 'size' expects a non-negative number below 2^64"],
    ["ringbuf,id=9r", "Parameter 'id' expects an identifier"],
    ["ringbuf,id=r,mux=perhaps", "Parameter 'mux' expects 'on' or 'off'"],
    ["file,id=f", "chardev: file: no filename given"],
    ["pipe,id=p", "chardev: pipe: no filename given"],
    ["hub,id=h,chardevs.0=ghost", "hub: chardev can't be found by id 'ghost'"],
    ["ringbuf,id=r,size=0", "size of ringbuf chardev must be power of two"],
  ];
  for (const [spec, message] of cases) {
    it(`"${spec}" is refused with "${message}"`, async () => {
      const error = await errorOf(() => reg.add(spec));
      expect(error).toBeInstanceOf(ChardevError);
      expect(error.message).toBe(message);
      expect(reg.query()).toEqual([]);
    });
  }

  it("a second chardev with the same id is refused and the first is kept", async () => {
    await reg.add("ringbuf,id=r,size=8");
    const error = await errorOf(() => reg.add("null,id=r"));
    expect(error.message).toBe("Chardev with id 'r' already exists");
    expect(error.code).toBe("DUPLICATE_ID");
    expect(reg.query()).toEqual([{ label: "r", filename: "ringbuf", frontendOpen: false }]);
  });

  it("random option strings either add a chardev or throw a ChardevError, never anything else", async () => {
    const token = fc.constantFrom("ringbuf", "null", "hub", "file", "pipe", "id=x", "id=", "size=8", "size=3", "size=k", ",", ",,", "=", "mux=on", "chardevs.0=x", "chardevs.9=x", "path=", "logfile=", "append=on");
    await fc.assert(
      fc.asyncProperty(fc.array(token, { maxLength: 6 }), async (tokens) => {
        const spec = tokens.join(",");
        const before = reg.query().length;
        try {
          await reg.add(spec);
          await reg.close();
        } catch (error) {
          expect(error).toBeInstanceOf(ChardevError);
          expect(reg.query()).toHaveLength(before);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("QMP chardev-add objects", () => {
  const cases: [unknown, string][] = [
    [{ backend: { type: "null" } }, "Parameter 'id' is missing"],
    [{ id: 7, backend: { type: "null" } }, "Invalid parameter type for 'id', expected: string"],
    [{ id: "n" }, "Parameter 'backend' is missing"],
    [{ id: "n", backend: {} }, "Parameter 'backend.type' is missing"],
    [{ id: "n", backend: { type: "warp" } }, "Parameter 'type' does not accept value 'warp'"],
    [{ id: "n", backend: { type: "null", data: { colour: 1 } } }, "Parameter 'backend.data.colour' is unexpected"],
    [{ id: "r", backend: { type: "ringbuf", data: { size: "8" } } }, "Invalid parameter type for 'backend.data.size', expected: integer"],
    [{ id: "h", backend: { type: "hub", data: { chardevs: "a" } } }, "Invalid parameter type for 'backend.data.chardevs', expected: array"],
    [{ id: "h", backend: { type: "hub", data: { chardevs: [] } } }, "hub: 'chardevs' list is not defined"],
    [{ id: "n", backend: { type: "null" }, extra: true }, "Parameter 'extra' is unexpected"],
    [null, "Invalid parameter type for 'arguments', expected: object"],
  ];
  for (const [args, message] of cases) {
    it(`${JSON.stringify(args)} is refused with "${message}"`, async () => {
      const error = await errorOf(() => reg.add(args as never));
      expect(error).toBeInstanceOf(ChardevError);
      expect(error.message).toBe(message);
      expect(reg.query()).toEqual([]);
    });
  }

  it("a valid QMP object adds the same chardev as the option string", async () => {
    await reg.add({ id: "r", backend: { type: "memory", data: { size: 4 } } });
    await reg.add({ id: "h", backend: { type: "hub", data: { chardevs: ["r"] } } });
    expect(reg.query()).toEqual([
      { label: "r", filename: "memory", frontendOpen: true },
      { label: "h", filename: "hub", frontendOpen: false },
    ]);
  });
});

describe("file backend and logfile", () => {
  it("file writes output, truncating unless append=on", async () => {
    const out = path.join(dir, "out,log");
    fs.writeFileSync(out, "old\n");
    await reg.add(`file,id=f,path=${out.replace(/,/g, ",,")}`);
    const fe = reg.attach("f", new FeHandler());
    expect(fe.write(bytes("new\n"))).toBe(4);
    expect(fs.readFileSync(out, "utf8")).toBe("new\n");
    fe.detach();
    await reg.remove("f");
    await reg.add(`file,id=f,path=${out.replace(/,/g, ",,")},append=on`);
    reg.attach("f", new FeHandler()).write(bytes("more\n"));
    expect(fs.readFileSync(out, "utf8")).toBe("new\nmore\n");
  });

  it("file input-path feeds the frontend", async () => {
    const input = path.join(dir, "in");
    fs.writeFileSync(input, "typed");
    await reg.add(`file,id=f,path=${path.join(dir, "out")},input-path=${input}`);
    const h = new FeHandler();
    reg.attach("f", h);
    await until(() => h.readCount === 5);
    expect(h.take()).toBe("typed");
  });

  it("a file that cannot be opened gives QEMU's error and registers nothing", async () => {
    const error = await errorOf(() => reg.add("file,id=f,path=/nonexistent-dir/x"));
    expect(error.message).toBe("Could not open '/nonexistent-dir/x': No such file or directory");
    expect(error.code).toBe("OPEN_FAILED");
    expect(reg.find("f")).toBeUndefined();
  });

  it("logfile= records what the chardev wrote; logappend=on keeps the old log", async () => {
    const log = path.join(dir, "console.log");
    fs.writeFileSync(log, "earlier\n");
    await reg.add(`ringbuf,id=r,size=4,logfile=${log},logappend=on`);
    const fe = reg.attach("r", new FeHandler());
    fe.write(bytes("abcdefgh"));
    expect(reg.ringbufRead("r", 8)).toBe("efgh");
    expect(fs.readFileSync(log, "utf8")).toBe("earlier\nabcdefgh");
  });

  it("a logfile that cannot be opened fails the add and leaves nothing", async () => {
    const error = await errorOf(() => reg.add("ringbuf,id=r,logfile=/nonexistent-dir/log"));
    expect(error.message).toBe("Could not open '/nonexistent-dir/log': No such file or directory");
    expect(reg.query()).toEqual([]);
  });
});

describe("pipe backend", () => {
  it("one FIFO both ways when PATH.in and PATH.out do not exist", async () => {
    const fifo = path.join(dir, "both");
    execFileSync("mkfifo", ["-m", "0600", fifo]);
    await reg.add(`pipe,id=p,path=${fifo}`);
    const h = new FeHandler();
    const fe = reg.attach("p", h);
    // QEMU opens the single FIFO read-write, so it reads back what it writes.
    expect(fe.write(bytes("echo"))).toBe(4);
    await until(() => h.readCount === 4);
    expect(h.take()).toBe("echo");
  });

  it("PATH.in feeds the frontend through a hub", async () => {
    const base = path.join(dir, "p");
    execFileSync("mkfifo", ["-m", "0600", `${base}.in`, `${base}.out`]);
    await reg.add(`pipe,id=p,path=${base}`);
    await reg.add("hub,id=hub0,chardevs.0=p");
    const h = new FeHandler();
    reg.attach("hub0", h);
    const writer = fs.openSync(`${base}.in`, fs.constants.O_RDWR);
    fs.writeSync(writer, "from-outside");
    fs.closeSync(writer);
    await until(() => h.readCount === 12);
    expect(h.take()).toBe("from-outside");
  });

  it("a missing FIFO gives QEMU's open error", async () => {
    const error = await errorOf(() => reg.add(`pipe,id=p,path=${path.join(dir, "none")}`));
    expect(error.message).toBe(`Could not open '${path.join(dir, "none")}': No such file or directory`);
  });
});

describe("remove, mux and query", () => {
  it("remove of an unknown chardev says it is not found", async () => {
    expect((await errorOf(() => reg.remove("ghost"))).message).toBe("Chardev 'ghost' not found");
  });

  it("mux=on makes ID-base; removing the mux removes its base too", async () => {
    await reg.add("ringbuf,id=m,mux=on,size=8");
    expect(reg.query().map((row) => row.label)).toEqual(["m-base", "m"]);
    expect((await errorOf(() => reg.remove("m-base"))).message).toBe("Chardev 'm-base' is busy");
    const fe = reg.attach("m", new FeHandler());
    expect((await errorOf(() => reg.remove("m"))).message).toBe("Chardev 'm' is busy");
    fe.write(bytes("via-mux"));
    expect(reg.ringbufRead("m-base", 16)).toBe("via-mux");
    fe.detach();
    await reg.remove("m");
    expect(reg.query()).toEqual([]);
  });

  it("a mux takes at most 4 frontends", async () => {
    await reg.add("null,id=m,mux=on");
    for (let i = 0; i < 4; i++) reg.attach("m", new FeHandler());
    const error = await errorOf(() => reg.attach("m", new FeHandler()));
    expect(error.message).toBe("mux: too many uses of multiplexed chardev 'm' (maximum is 4)");
  });

  it("a plain chardev takes one frontend", async () => {
    await reg.add("null,id=n");
    reg.attach("n", new FeHandler());
    expect((await errorOf(() => reg.attach("n", new FeHandler()))).message).toBe("chardev 'n' is already in use");
  });
});
