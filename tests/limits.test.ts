// Every number bounded (host-ts/limits.ts): values past a limit are refused where options are
// parsed, with INVALID_VALUE naming the key, in option strings, QAPI (QMP chardev-add), QMP
// hub-attach and the library's Hub API alike; values at a limit work. Error messages quote at
// most 256 characters of input, so a megabyte of input gives a short message.

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, Hub, RingbufChardev } from "../host-ts/mod.ts";
import {
  checkMilliseconds,
  LIMITS,
  MAX_CLIENTS,
  MAX_QUOTED_INPUT,
  MAX_RING_BYTES,
  MAX_RINGBUF_BYTES,
  MAX_TIMER_MS,
  MAX_UNIX_PATH_BYTES,
  quoteInput,
  utf8Length,
} from "../host-ts/limits.ts";
import type { SocketChardev } from "../host-ts/chardev/socket.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";
import { SwitchChardev, switchDriver, openSwitches } from "./_switch_chardev.ts";
import { connectClient, type QmpTestClient, until } from "./qmp/_clients.ts";

const MEGABYTE = "x".repeat(2 ** 20);
const MEGABYTE_OF_DIGITS = "9".repeat(2 ** 20);

let reg: ChardevRegistry;
let dir: string;
let cleanups: (() => unknown)[];

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: false });
  reg.registerDriver(switchDriver);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-limits-"));
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const switches = (...ids: string[]) => openSwitches(reg, ...ids);

/** Lets queued microtasks and zero timers (the ring's drain) run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A QMP client on a UNIX socket of this test's registry, negotiated. */
async function qmpClient(): Promise<QmpTestClient> {
  const client = await connectClient(reg, "unix", dir);
  cleanups.push(() => client.close());
  await client.negotiate();
  return client;
}

/** A path in this test's directory exactly `length` bytes long in UTF-8, ending in `fill` characters. */
function pathOfBytes(length: number, fill = "s"): string {
  const base = `${dir}/`;
  const fillBytes = utf8Length(fill);
  let name = "";
  while (utf8Length(base + name) + fillBytes <= length) name += fill;
  name = name + "p".repeat(length - utf8Length(base + name));
  const result = base + name;
  expect(utf8Length(result)).toBe(length);
  return result;
}

const TOO_LONG = (socketPath: string) => `UNIX socket path '${quoteInput(socketPath)}' is too long`;

describe("the table of limits", () => {
  it("names each limit with its range, unit and reason", () => {
    expect(LIMITS.length).toBeGreaterThan(5);
    for (const limit of LIMITS) {
      expect(limit.max).toBeGreaterThanOrEqual(limit.min);
      expect(limit.why.length).toBeGreaterThan(0);
    }
    expect(MAX_RING_BYTES).toBe(512 * 2 ** 20);
    expect(MAX_TIMER_MS).toBe(2147483647);
    expect(MAX_UNIX_PATH_BYTES).toBe(107);
  });

  it("quoteInput keeps short input whole and cuts long input to 256 characters and '...'", () => {
    expect(quoteInput("short")).toBe("short");
    expect(quoteInput("a".repeat(MAX_QUOTED_INPUT))).toBe("a".repeat(MAX_QUOTED_INPUT));
    expect(quoteInput("a".repeat(1000))).toBe(`${"a".repeat(MAX_QUOTED_INPUT)}...`);
    // A surrogate pair straddling the cut is left out whole, never halved.
    const cut = quoteInput(`${"a".repeat(MAX_QUOTED_INPUT - 1)}😀tail`);
    expect(cut).toBe(`${"a".repeat(MAX_QUOTED_INPUT - 1)}...`);
  });

  it("utf8Length counts bytes, not characters", () => {
    expect(utf8Length("abc")).toBe(3);
    expect(utf8Length("é")).toBe(2);
    expect(utf8Length("€")).toBe(3);
    expect(utf8Length("😀")).toBe(4);
    expect(utf8Length("a😀é")).toBe(new TextEncoder().encode("a😀é").length);
  });

  it("checkMilliseconds accepts 2^31-1 and refuses 2^31 naming the key", async () => {
    expect(checkMilliseconds("x", "some-ms", MAX_TIMER_MS)).toBe(MAX_TIMER_MS);
    const error = await errorOf(() => checkMilliseconds("x", "some-ms", 2 ** 31));
    expect(error.code).toBe("INVALID_VALUE");
    expect(error.message).toBe("x: 'some-ms' must be at most 2147483647 ms, not 2147483648");
  });
});

describe("ring and ringbuf sizes", () => {
  for (const size of ["1G", "2G", "4G", "8G", "1T"]) {
    it(`ring=${size} is refused with INVALID_VALUE naming 'ring', in an option string`, async () => {
      await switches("a");
      const error = await errorOf(() => reg.add(`hub,id=h,chardevs.0=a,ring=${size}`));
      expect(error.code).toBe("INVALID_VALUE");
      expect(error.message).toMatch(/^hub: 'ring' must be at most 536870912 bytes \(512 MiB\), not \d+$/);
      expect(reg.find("h")).toBeUndefined();
    });
  }

  it("ring of 4 GiB is refused through QAPI (chardev-add's form) and the Hub API, never wrapped to 0", async () => {
    await switches("a");
    const qapi = await errorOf(() => reg.add({ id: "h", backend: { type: "hub", data: { chardevs: ["a"], ring: 2 ** 32 } } }));
    expect(qapi.code).toBe("INVALID_VALUE");
    expect(qapi.message).toBe("hub: 'ring' must be at most 536870912 bytes (512 MiB), not 4294967296");
    const api = await errorOf(() => Hub.create({ ring: 2 ** 32 }));
    expect(api.code).toBe("INVALID_VALUE");
    expect(api.message).toContain("'ring'");
  });

  it("ring=4G through QMP chardev-add answers a GenericError naming 'ring'", async () => {
    await switches("a");
    const client = await qmpClient();
    const answer = await client.execute("chardev-add", { id: "h", backend: { type: "hub", data: { chardevs: ["a"], ring: 2 ** 32 } } });
    expect(answer).toEqual({ error: { class: "GenericError", desc: "Failed to add chardev 'h': hub: 'ring' must be at most 536870912 bytes (512 MiB), not 4294967296" } });
  });

  it("a ring of the largest size (512 MiB) is accepted and delivers bytes; one byte more is refused", async () => {
    const [a] = await switches("a");
    const off = await errorOf(() => reg.add(`hub,id=h,chardevs.0=a,ring=${MAX_RING_BYTES + 1}`));
    expect(off.code).toBe("INVALID_VALUE");
    expect(off.message).toContain("'ring'");
    // Pages of core memory are touched only as bytes flow: a few bytes cost a few pages.
    await reg.add(`hub,id=h,chardevs.0=a,ring=512M`);
    const fe = reg.attach("h", new FeHandler());
    expect(fe.write(bytes("through the largest ring\n"))).toBe(25);
    await settle();
    expect(a.received).toBe("through the largest ring\n");
  });

  it("a ringbuf of the largest size (512 MiB) keeps bytes; 1G and 4G are refused naming 'size'", async () => {
    const ring = (await reg.add("ringbuf,id=r,size=512M")) as RingbufChardev;
    expect(ring.size).toBe(MAX_RINGBUF_BYTES);
    ring.writeRing(bytes("kept"));
    expect(new TextDecoder().decode(ring.read(100))).toBe("kept");
    for (const size of ["1G", "4G"]) {
      const error = await errorOf(() => reg.add(`ringbuf,id=r${size},size=${size}`));
      expect(error.code).toBe("INVALID_VALUE");
      expect(error.message).toMatch(/^ringbuf: 'size' must be at most 536870912 bytes \(512 MiB\), not \d+$/);
    }
    // QEMU's own text for a size that is not a power of two stays.
    expect((await errorOf(() => reg.add("ringbuf,id=odd,size=3000"))).message).toBe("size of ringbuf chardev must be power of two");
  });

  it("rings that would pass the core's 4 GiB are refused before they are made, and the registry still works", async () => {
    // Seven rings of 512 MiB fit (the core's memory is reserved, not touched); the eighth would
    // need the core to grow past what 32-bit WASM addresses, which would break the allocator.
    // The rings above 2 GiB are written and read too: their addresses read negative as i32.
    const made: RingbufChardev[] = [];
    let refused: { code: string; message: string } | undefined;
    for (let i = 0; i < 9 && !refused; i++) {
      try {
        made.push((await reg.add(`ringbuf,id=big${i},size=512M`)) as RingbufChardev);
      } catch (error) {
        refused = error as { code: string; message: string };
      }
    }
    expect(made.length).toBe(7);
    expect(refused?.code).toBe("INVALID_VALUE");
    expect(refused?.message).toMatch(/^ringbuf: 'size' of 536870912 bytes does not fit: the core's memory holds \d+ bytes of the 4294967296 it can address$/);
    const small = (await reg.add("ringbuf,id=small,size=64k")) as RingbufChardev;
    small.writeRing(bytes("still fine"));
    expect(new TextDecoder().decode(small.read(100))).toBe("still fine");
    for (const [index, ring] of made.entries()) {
      ring.writeRing(bytes(`ring ${index}`));
      expect(new TextDecoder().decode(ring.read(100))).toBe(`ring ${index}`);
    }
  });

  it("replay.N above the largest ring is refused naming the key", async () => {
    await switches("a");
    const error = await errorOf(() => reg.add(`hub,id=h,chardevs.0=a,ring=64k,replay.0=1G`));
    expect(error.code).toBe("INVALID_VALUE");
    expect(error.message).toBe("hub: 'replay.0' must be at most 536870912 bytes (512 MiB), not 1073741824");
  });
});

describe("millisecond options", () => {
  it("stall-ms.N accepts 2^31-1 and refuses 2^31 naming 'stall-ms.1'", async () => {
    await switches("a", "b", "c");
    await reg.add(`hub,id=ok,chardevs.0=a,ring=64k,policy.0=evict,stall-ms.0=${MAX_TIMER_MS}`);
    const error = await errorOf(() => reg.add(`hub,id=h,chardevs.0=b,chardevs.1=c,ring=64k,policy.1=evict,stall-ms.1=${2 ** 31}`));
    expect(error.code).toBe("INVALID_VALUE");
    expect(error.message).toBe("hub: 'stall-ms.1' must be at most 2147483647 ms, not 2147483648");
  });

  it("stall-ms in QAPI options, QMP hub-attach and Hub.attach refuses 2^31 and takes 2^31-1", async () => {
    await switches("a", "b", "c", "d");
    const qapi = await errorOf(() =>
      reg.add({ id: "q", backend: { type: "hub", data: { chardevs: ["a"], ring: 65536, options: { a: { "stall-ms": 2 ** 31 } } } } }),
    );
    expect(qapi.code).toBe("INVALID_VALUE");
    expect(qapi.message).toBe("hub: 'stall-ms of a' must be at most 2147483647 ms, not 2147483648");

    await reg.add("hub,id=h,ring=64k");
    const client = await qmpClient();
    expect(await client.execute("hub-attach", { hub: "h", chardev: "b", policy: "evict", "stall-ms": 2 ** 31 })).toEqual({
      error: { class: "GenericError", desc: "hub: 'stall-ms of b' must be at most 2147483647 ms, not 2147483648" },
    });
    expect(await client.execute("hub-attach", { hub: "h", chardev: "b", policy: "evict", "stall-ms": MAX_TIMER_MS })).toEqual({ return: {} });

    const hub = await Hub.create({ registry: reg, id: "api", ring: 65536 });
    const api = await errorOf(() => hub.attach(reg.get("c"), { policy: "evict", stallMs: 2 ** 31 }));
    expect(api.code).toBe("INVALID_VALUE");
    expect(api.message).toContain("'stall-ms of c'");
    // A backend string is not even added when its options are out of range.
    await errorOf(() => hub.attach("switch,id=never", { stallMs: 2 ** 31 }));
    expect(reg.find("never")).toBeUndefined();
    await hub.attach(reg.get("d"), { policy: "evict", stallMs: MAX_TIMER_MS });
  });

  it("input-idle-ms accepts 2^31-1 and refuses 2^31, in option strings, QAPI and the Hub API", async () => {
    await switches("a", "b");
    await reg.add(`hub,id=ok,chardevs.0=a,input-idle-ms=${MAX_TIMER_MS}`);
    const text = await errorOf(() => reg.add(`hub,id=h,chardevs.0=b,input-idle-ms=${2 ** 31}`));
    expect(text.code).toBe("INVALID_VALUE");
    expect(text.message).toBe("hub: 'input-idle-ms' must be at most 2147483647 ms, not 2147483648");
    const qapi = await errorOf(() => reg.add({ id: "q", backend: { type: "hub", data: { chardevs: ["b"], "input-idle-ms": 2 ** 31 } } }));
    expect(qapi.message).toBe("hub: 'input-idle-ms' must be at most 2147483647 ms, not 2147483648");
    const api = await errorOf(() => Hub.create({ registry: reg, id: "api", inputIdleMs: 2 ** 31 }));
    expect(api.message).toContain("'input-idle-ms'");
  });

  it("reconnect-ms accepts 2^31-1 and refuses 2^31 (and 3000000000), in option strings and QMP chardev-add", async () => {
    const target = path.join(dir, "nobody.sock");
    const client = (await reg.add(`socket,id=ok,path=${target},reconnect-ms=${MAX_TIMER_MS}`)) as SocketChardev;
    expect(client.options.reconnectMs).toBe(MAX_TIMER_MS);
    for (const value of [2 ** 31, 3000000000]) {
      const error = await errorOf(() => reg.add(`socket,id=c,path=${target},reconnect-ms=${value}`));
      expect(error.code).toBe("INVALID_VALUE");
      expect(error.message).toBe(`socket: 'reconnect-ms' must be at most 2147483647 ms, not ${value}`);
    }
    const qmp = await qmpClient();
    const addr = { type: "unix", data: { path: target } };
    expect(await qmp.execute("chardev-add", { id: "c", backend: { type: "socket", data: { addr, server: false, "reconnect-ms": 2 ** 31 } } })).toEqual({
      error: { class: "GenericError", desc: "Failed to add chardev 'c': socket: 'reconnect-ms' must be at most 2147483647 ms, not 2147483648" },
    });
  });

  it("reconnect (seconds) accepts 2147483 and refuses 2147484, which would pass 2^31-1 ms", async () => {
    const target = path.join(dir, "nobody.sock");
    await reg.add(`socket,id=ok,path=${target},reconnect=2147483`);
    const error = await errorOf(() => reg.add(`socket,id=c,path=${target},reconnect=2147484`));
    expect(error.code).toBe("INVALID_VALUE");
    expect(error.message).toBe("socket: 'reconnect' must be at most 2147483 s, not 2147484");
  });
});

describe("UNIX socket path length", () => {
  it("a path of 107 bytes listens and serves; one of 108 bytes is refused with QEMU's text", async () => {
    const longest = pathOfBytes(MAX_UNIX_PATH_BYTES);
    const socket = (await reg.add(`socket,id=s,path=${longest},server=on,wait=off`)) as SocketChardev;
    expect(fs.statSync(longest).isSocket()).toBe(true);
    const fe = reg.attach("s", new FeHandler());
    const peer = net.connect({ path: longest });
    cleanups.push(() => peer.destroy());
    let got = "";
    peer.on("data", (data) => (got += data.toString()));
    await until(() => socket.connected);
    fe.write(bytes("hello at 107 bytes"));
    await until(() => got === "hello at 107 bytes");

    const tooLong = pathOfBytes(MAX_UNIX_PATH_BYTES + 1, "t");
    const error = await errorOf(() => reg.add(`socket,id=t,path=${tooLong},server=on,wait=off`));
    expect(error.code).toBe("INVALID_VALUE");
    expect(error.message).toBe(TOO_LONG(tooLong));
    expect(fs.existsSync(tooLong.slice(0, MAX_UNIX_PATH_BYTES))).toBe(false); // nothing made under the cut name
  });

  it("the length is counted in UTF-8 bytes: 54 two-byte characters are refused though they are fewer than 108", async () => {
    const tooLong = pathOfBytes(MAX_UNIX_PATH_BYTES + 1, "é");
    expect(tooLong.length).toBeLessThan(MAX_UNIX_PATH_BYTES);
    const error = await errorOf(() => reg.add(`socket,id=t,path=${tooLong},server=on,wait=off`));
    expect(error.message).toBe(TOO_LONG(tooLong));
    const fits = pathOfBytes(MAX_UNIX_PATH_BYTES, "é");
    await reg.add(`socket,id=s,path=${fits},server=on,wait=off`);
    expect(fs.statSync(fits).isSocket()).toBe(true);
  });

  it("QMP chardev-add refuses a 108-byte path with QEMU's text, and a client path too", async () => {
    const client = await qmpClient();
    const tooLong = pathOfBytes(MAX_UNIX_PATH_BYTES + 1);
    for (const server of [true, false]) {
      const answer = await client.execute("chardev-add", { id: "t", backend: { type: "socket", data: { addr: { type: "unix", data: { path: tooLong } }, server, wait: server ? false : undefined } } });
      expect(answer).toEqual({ error: { class: "GenericError", desc: `Failed to add chardev 't': ${TOO_LONG(tooLong)}` } });
    }
    const longest = pathOfBytes(MAX_UNIX_PATH_BYTES);
    expect(await client.execute("chardev-add", { id: "s", backend: { type: "socket", data: { addr: { type: "unix", data: { path: longest } }, server: true, wait: false } } })).toEqual({ return: {} });
  });
});

describe("web max-clients", () => {
  it("max-clients accepts 1 and 65535 and refuses 0 and 65536", async () => {
    await reg.add("web,id=one,port=0,max-clients=1");
    await reg.add(`web,id=many,port=0,max-clients=${MAX_CLIENTS}`);
    for (const value of [0, MAX_CLIENTS + 1]) {
      const error = await errorOf(() => reg.add(`web,id=w${value},port=0,max-clients=${value}`));
      expect(error.code).toBe("INVALID_VALUE");
      expect(error.message).toBe("web: max-clients must be between 1 and 65535");
    }
  });

  it("queue-limit above 1 GiB is refused naming the key", async () => {
    const error = await errorOf(() => reg.add("web,id=w,port=0,queue-limit=2G"));
    expect(error.code).toBe("INVALID_VALUE");
    expect(error.message).toBe("web: 'queue-limit' must be at most 1073741824 bytes (1 GiB), not 2147483648");
  });
});

describe("error messages quote at most 256 characters of input", () => {
  /** A megabyte of input in one option: the message is short and still says which key. */
  const cases: [string, string, RegExp | string][] = [
    ["a socket path", `socket,id=s,path=/tmp/${MEGABYTE},server=on,wait=off`, "UNIX socket path '"],
    ["a file path", `file,id=f,path=/nonexistent/${MEGABYTE}`, "Could not open '/nonexistent/"],
    ["a ring size", `hub,id=h,ring=${MEGABYTE_OF_DIGITS}`, "'ring'"],
    ["a stall-ms", `hub,id=h,chardevs.0=a,stall-ms.0=${MEGABYTE_OF_DIGITS}`, "'stall-ms.0'"],
    ["an unknown key", `hub,id=h,${MEGABYTE}=1`, "Invalid parameter 'xxx"],
    ["a backend name", `${MEGABYTE},id=h`, "is not a valid char driver name"],
    ["a hub member", `hub,id=h,chardevs.0=a${MEGABYTE}`, "hub: chardev can't be found by id 'axxx"],
    ["a primary", `hub,id=h,chardevs.0=a,primary=${MEGABYTE}`, "hub: primary 'xxx"],
    ["a policy", `hub,id=h,chardevs.0=a,ring=64k,policy.0=${MEGABYTE}`, "'policy of a' must be"],
    ["an access", `socket,id=s,path=/tmp/x.sock,server=on,wait=off,access=${MEGABYTE}`, "'access'"],
    ["a token file", `web,id=w,port=0,token-file=/nonexistent/${MEGABYTE}`, "'token-file'"],
    ["a reconnect-ms", `socket,id=s,path=/tmp/x.sock,reconnect-ms=${MEGABYTE_OF_DIGITS}`, "'reconnect-ms'"],
  ];
  for (const [what, spec, names] of cases) {
    it(`a megabyte in ${what} gives a message under 1 KiB that still names it`, async () => {
      await switches("a");
      const error = await errorOf(() => reg.add(spec));
      expect(error.message.length).toBeLessThanOrEqual(1024);
      expect(error.message).toContain(names);
    });
  }

  it("a megabyte in QMP chardev-add (id, type, path) gives answers under 1 KiB", async () => {
    const client = await qmpClient();
    const answers = [
      await client.execute("chardev-add", { id: "s", backend: { type: "socket", data: { addr: { type: "unix", data: { path: `/tmp/${MEGABYTE}` } } } } }),
      await client.execute("chardev-add", { id: "s", backend: { type: MEGABYTE, data: {} } }),
      await client.execute("chardev-remove", { id: `a${MEGABYTE}` }),
    ];
    for (const answer of answers) {
      expect(answer.error.class).toBe("GenericError");
      expect(JSON.stringify(answer).length).toBeLessThanOrEqual(1024);
    }
    expect(answers[0].error.desc).toMatch(/^Failed to add chardev 's': UNIX socket path '\/tmp\/x{251}\.\.\.' is too long$/);
  });
});
