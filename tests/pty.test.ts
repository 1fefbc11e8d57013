// The `pty` backend with real peers: socat (and stty) open the slave as a user would, behind a
// hub as in the hub series' own example (`-chardev pty,path=/tmp/pty,id=pty0`). Needs socat.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry, ChrEvent, type Frontend } from "../host-ts/mod.ts";
import type { PtyChardev } from "../host-ts/chardev/pty.ts";
import { bytes, errorOf, FeHandler } from "./_fe_handler.ts";

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
/** Only a bound on waiting for something that should happen; no test measures time. */
const GIVE_UP_MS = 15_000;

async function until(condition: () => boolean, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + GIVE_UP_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A socat joining its stdin/stdout to the pty slave (or a link to it). */
class Socat {
  readonly child: ChildProcessWithoutNullStreams;
  output = "";
  errors = "";
  exited = false;
  readonly exit: Promise<void>;

  /** `slaveOptions` empty: socat leaves the terminal as it finds it. */
  constructor(slave: string, slaveOptions = ",raw,echo=0") {
    this.child = spawn("socat", ["-", `${slave}${slaveOptions}`], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.on("data", (chunk: Buffer) => (this.output += chunk.toString("latin1")));
    this.child.stderr.on("data", (chunk: Buffer) => (this.errors += chunk.toString()));
    this.exit = new Promise((resolve) =>
      this.child.on("exit", () => {
        this.exited = true;
        resolve();
      }),
    );
  }

  send(text: string): void {
    this.child.stdin.write(Buffer.from(text, "latin1"));
  }

  async kill(): Promise<void> {
    if (!this.exited) this.child.kill("SIGTERM");
    await this.exit;
  }
}

let reg: ChardevRegistry;
let dir: string;
let peers: Socat[];

beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-pty-test-"));
  peers = [];
});
afterEach(async () => {
  for (const peer of peers) await peer.kill();
  await reg.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function socat(slave: string, slaveOptions?: string): Socat {
  const peer = new Socat(slave, slaveOptions);
  peers.push(peer);
  return peer;
}

async function addPty(spec = "pty,id=pty0"): Promise<PtyChardev> {
  return (await reg.add(spec)) as PtyChardev;
}

describe("pty: the pair and its slave", () => {
  it("a pty allocates /dev/pts/N, spawns nothing, and shows it as pty:/dev/pts/N", async () => {
    const pty = await addPty();
    expect(pty.kind).toBe("pty");
    expect(pty.slavePath).toMatch(/^\/dev\/pts\/\d+$/);
    expect(pty.filename).toBe(`pty:${pty.slavePath}`);
    expect(fs.statSync(pty.slavePath).isCharacterDevice()).toBe(true);
    expect(reg.query()).toEqual([{ label: "pty0", filename: `pty:${pty.slavePath}`, frontendOpen: false }]);
    expect(pty.connected).toBe(false);
  });

  it("the slave is mode 0600 and raw, as stty reads it", async () => {
    const pty = await addPty();
    expect(fs.statSync(pty.slavePath).mode & 0o777).toBe(0o600);
    const stty = spawnSync("stty", ["-F", pty.slavePath, "-a"], { encoding: "utf8" });
    expect(stty.status).toBe(0);
    const flags = stty.stdout.split(/\s+/);
    for (const flag of ["-icanon", "-echo", "-isig", "-icrnl", "-opost", "cs8"]) expect(flags).toContain(flag);
  });

  it("bytes pass unchanged both ways even when the peer sets no terminal mode", async () => {
    const pty = await addPty();
    const h = new FeHandler();
    const fe = reg.attach("pty0", h);
    const peer = socat(pty.slavePath, "");
    await until(() => h.isOpen, "OPENED");

    // Line editing, CR/LF mapping, signals or echo would each change one of these.
    const tricky = "a\rb\nc\x03d\x7fe\x15f\x04g";
    peer.send(tricky);
    await until(() => h.readCount >= tricky.length, "the peer's bytes");
    expect(h.take()).toBe(tricky);

    expect(fe.write(bytes("x\ny\rz"))).toBe(5);
    await until(() => peer.output.length >= 5, "the frontend's bytes at the peer");
    expect(peer.output).toBe("x\ny\rz");
  });

  it("each pty gets its own slave, and removing one gives its slave back", async () => {
    const first = await addPty("pty,id=pty0");
    const second = await addPty("pty,id=pty1");
    expect(second.slavePath).not.toBe(first.slavePath);
    await reg.remove("pty0");
    // The master is closed with the chardev: the kernel takes the slave back.
    await until(() => !fs.existsSync(first.slavePath), `${first.slavePath} to go away`);
    expect(fs.existsSync(second.slavePath)).toBe(true);
  });
});

describe("pty: path= links to the slave", () => {
  it("path= makes a symlink to the slave, usable by a peer, removed with the chardev", async () => {
    const link = path.join(dir, "console");
    const pty = await addPty(`pty,id=pty0,path=${link}`);
    expect(pty.linkPath).toBe(link);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(link)).toBe(pty.slavePath);

    const h = new FeHandler();
    const fe = reg.attach("pty0", h);
    const peer = socat(link);
    await until(() => h.isOpen, "OPENED through the link");
    peer.send("via link");
    await until(() => h.readCount >= 8, "input through the link");
    expect(h.take()).toBe("via link");

    fe.detach();
    await peer.kill();
    await reg.remove("pty0");
    expect(fs.existsSync(link)).toBe(false);
    expect(() => fs.lstatSync(link)).toThrow();
  });

  it("path= refuses a link that exists, and leaves nothing behind", async () => {
    const link = path.join(dir, "taken");
    fs.writeFileSync(link, "mine");
    const error = await errorOf(() => reg.add(`pty,id=pty0,path=${link}`));
    expect(error).toBeInstanceOf(ChardevError);
    expect(error.code).toBe("OPEN_FAILED");
    expect(error.message).toBe("Failed to create PTY symlink: File exists");
    expect(reg.find("pty0")).toBeUndefined();
    expect(fs.readFileSync(link, "utf8")).toBe("mine");
  });

  it("QMP chardev-add takes { type: 'pty', data: { path } } and checks its type", async () => {
    const link = path.join(dir, "qmp-console");
    const pty = (await reg.add({ id: "pty0", backend: { type: "pty", data: { path: link } } })) as PtyChardev;
    expect(fs.readlinkSync(link)).toBe(pty.slavePath);
    const plain = (await reg.add({ id: "pty1", backend: { type: "pty" } })) as PtyChardev;
    expect(plain.linkPath).toBeUndefined();

    const wrongType = await errorOf(() => reg.add({ id: "pty2", backend: { type: "pty", data: { path: 5 } } }));
    expect(wrongType.message).toBe("Invalid parameter type for 'backend.data.path', expected: string");
    const unknown = await errorOf(() => reg.add({ id: "pty2", backend: { type: "pty", data: { size: 4 } } }));
    expect(unknown.message).toBe("Parameter 'backend.data.size' is unexpected");
  });
});

describe("pty: the peer comes and goes (patch 1/4)", () => {
  it("a pty alone behind a hub: socat connecting is OPENED, killing it CLOSED, a new one OPENED again", async () => {
    const pty = await addPty();
    await reg.add("hub,id=hub0,chardevs.0=pty0");
    const h = new FeHandler();
    reg.attach("hub0", h);
    expect(h.events).toEqual([]);

    const first = socat(pty.slavePath);
    await until(() => h.isOpen, "OPENED from the first socat");
    expect(h.events).toEqual([ChrEvent.OPENED]);

    await first.kill();
    await until(() => !h.isOpen, "CLOSED after killing socat");
    expect(h.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
    expect(pty.connected).toBe(false);

    const second = socat(pty.slavePath);
    await until(() => h.isOpen, "OPENED from the second socat");
    expect(h.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED, ChrEvent.OPENED]);
    second.send("again");
    await until(() => h.readCount >= 5, "input from the second socat");
    expect(h.take()).toBe("again");
  });

  it("socat ending on its own (stdin closed) is CLOSED too, after its last bytes arrive", async () => {
    const pty = await addPty();
    const h = new FeHandler();
    reg.attach("pty0", h);
    const peer = socat(pty.slavePath);
    await until(() => h.isOpen, "OPENED");
    peer.send("last words");
    peer.child.stdin.end();
    await peer.exit;
    await until(() => !h.isOpen, "CLOSED after socat exits");
    expect(h.take()).toBe("last words");
    expect(h.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
  });

  it("writes while nobody is on the slave are dropped with their full length, and never reach a later peer", async () => {
    const pty = await addPty();
    const h = new FeHandler();
    const fe = reg.attach("pty0", h);
    expect(fe.write(bytes("dropped"))).toBe(7);
    expect(fe.lastError).toBe(null);

    const peer = socat(pty.slavePath);
    await until(() => h.isOpen, "OPENED");
    expect(fe.write(bytes("kept"))).toBe(4);
    await until(() => peer.output.length >= 4, "the kept bytes");
    expect(peer.output).toBe("kept");
  });

  it("input waits while the frontend is full and arrives whole and in order once it takes more", async () => {
    const pty = await addPty();
    const h = new FeHandler();
    h.room = 0;
    const fe = reg.attach("pty0", h);
    const peer = socat(pty.slavePath);
    await until(() => h.isOpen, "OPENED");
    const text = Array.from({ length: 4000 }, (_, i) => `${i},`).join("");
    peer.send(text);
    // The frontend takes 512 bytes at a time from now on, like a guest with a small buffer.
    h.room = 512;
    let received = "";
    await until(() => {
      received += h.take();
      fe.acceptInput();
      return received.length >= text.length;
    }, () => `all of the peer's input (${received.length} of ${text.length})`);
    expect(received).toBe(text);
  });

  it("closing the registry while socat is on the pty tells the frontend CLOSED and hangs up socat", async () => {
    const pty = await addPty();
    const h = new FeHandler();
    reg.attach("pty0", h);
    const peer = socat(pty.slavePath);
    await until(() => h.isOpen, "OPENED");
    await reg.close();
    expect(h.events).toEqual([ChrEvent.OPENED, ChrEvent.CLOSED]);
    await peer.exit; // socat reads the hangup on the slave and ends by itself
    expect(peer.exited).toBe(true);
  });
});

describe("pty: behind a hub with a ringbuf", () => {
  async function hubWithPty(): Promise<{ pty: PtyChardev; h: FeHandler; fe: Frontend }> {
    const pty = await addPty();
    await reg.add("ringbuf,id=rb0,size=256");
    await reg.add("hub,id=hub0,chardevs.0=pty0,chardevs.1=rb0");
    const h = new FeHandler();
    return { pty, h, fe: reg.attach("hub0", h) };
  }

  it("socat's stdin reaches the hub's frontend and the frontend's output reaches socat's stdout", async () => {
    const { pty, h, fe } = await hubWithPty();
    // The ringbuf is open from the start: the frontend sees OPENED once, and never the pty's.
    expect(h.events).toEqual([ChrEvent.OPENED]);
    const peer = socat(pty.slavePath);
    await until(() => pty.connected, "the pty to see socat");

    peer.send("hello from socat\n");
    await until(() => h.readCount >= 17, "socat's line at the frontend");
    expect(h.take()).toBe("hello from socat\n");

    expect(fe.write(bytes("hello from the frontend\n"))).toBe(24);
    await until(() => peer.output.length >= 24, "the frontend's line at socat");
    expect(peer.output).toBe("hello from the frontend\n");
    expect(reg.ringbufRead("rb0", 256)).toBe("hello from the frontend\n");
    expect(h.events).toEqual([ChrEvent.OPENED]);
  });

  it("the hub skips the pty while nobody is on it and resumes it for the next peer", async () => {
    const { pty, h, fe } = await hubWithPty();
    const first = socat(pty.slavePath);
    await until(() => pty.connected, "the first socat");
    await first.kill();
    await until(() => !pty.connected, "the pty to see socat leave");
    // The last CLOSED is not the frontend's: the ringbuf is still open.
    expect(h.events).toEqual([ChrEvent.OPENED]);

    expect(fe.write(bytes("while nobody listens;"))).toBe(21);
    expect(reg.ringbufRead("rb0", 256)).toBe("while nobody listens;");

    const second = socat(pty.slavePath);
    await until(() => pty.connected, "the second socat");
    expect(fe.write(bytes("welcome back"))).toBe(12);
    await until(() => second.output.length >= 12, "output at the second socat");
    expect(second.output).toBe("welcome back");
    expect(first.output).toBe("");
    expect(reg.ringbufRead("rb0", 256)).toBe("welcome back");
  });

  it("a full pty stops the hub with EAGAIN, the watch wakes it as the peer reads, and no byte is lost or repeated", async () => {
    const { pty, fe } = await hubWithPty();
    // The peer: this test, reading the slave only when it chooses to.
    const slave = fs.openSync(pty.slavePath, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
    try {
      await until(() => pty.connected, "the pty to see the reader");
      const stream = new Uint8Array(256 * 1024).map((_, i) => 0x20 + ((i * 7 + (i >> 10)) % 95));
      const received = new Uint8Array(stream.length);
      let sent = 0;
      let got = 0;
      let blocked = 0;
      const readSlave = (): void => {
        const room = received.subarray(got);
        try {
          got += fs.readSync(slave, room, 0, Math.min(room.length, 4096), null);
        } catch (error) {
          if ((error as { code?: string }).code !== "EAGAIN") throw error;
        }
      };
      while (sent < stream.length) {
        const taken = fe.write(stream.subarray(sent));
        if (taken > 0) {
          sent += taken;
          continue;
        }
        expect(taken).toBe(-1);
        expect(fe.lastError).toBe("EAGAIN");
        blocked++;
        let woke = false;
        expect(fe.addWatch(() => (woke = true))).not.toBe(0);
        await until(() => {
          readSlave();
          return woke;
        }, "the watch after reading the slave");
      }
      await until(() => {
        readSlave();
        return got >= sent;
      }, "the rest at the slave");
      expect(blocked).toBeGreaterThan(0);
      expect(got).toBe(stream.length);
      expect(Buffer.from(received).equals(Buffer.from(stream))).toBe(true);
      // The ringbuf kept the newest 256 bytes of the same stream.
      expect(reg.ringbufRead("rb0", 256, "base64")).toBe(Buffer.from(stream.subarray(-256)).toString("base64"));
      // Nothing is blocked now: no watch.
      expect(fe.addWatch(() => {})).toBe(0);
    } finally {
      fs.closeSync(slave);
    }
  });
});

describe("pty: the Deno and Bun primitives", () => {
  const runtimes: [string, string[]][] = [
    ["deno", ["deno", "run", "-A", "tests/_pty_smoke.ts"]],
    ["bun", ["bun", "tests/_pty_smoke.ts"]],
  ];
  for (const [name, command] of runtimes) {
    it(`${name} allocates a pty and carries bytes both ways through it (tests/_pty_smoke.ts)`, () => {
      const run = spawnSync("npx", command, { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
      const output = `${run.stdout}${run.stderr}`;
      expect(output).toContain(`runtime ${name}, slave /dev/pts/`);
      expect(output).toContain("ok: the peer leaving is seen as CLOSED");
      expect(output).toContain(`pty smoke ok on ${name}`);
      expect(run.status, output).toBe(0);
    });
  }
});
