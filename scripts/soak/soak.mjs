#!/usr/bin/env node
// `npm run soak [-- --seconds N] [--seed S] [--json FILE] [--keep]`: the chaos soak, through
// the real command (dist/cli.js). A spawn device prints numbered lines at full speed (see
// _stream.mjs) into a ring hub; a file log, a healthy blocking client and blocking, drop and
// evict socket clients hang off it, each client a process of its own (_client.mjs) that
// checks every byte as it comes. Random stalls, `kill -9`s, closes and reconnects; QMP
// hot-plugs (chardev-add + hub-attach, later hub-detach + chardev-remove) of more clients.
// Then the device is told to end the stream, and it verifies:
//   - blocking and evict clients got exactly a contiguous piece of the stream while connected,
//     and those connected at the end got it to the end line;
//   - drop clients got the stream minus gaps that end at line starts, and those connected at
//     the end saw exactly the bytes the hub reports dropped for them (QMP query-hub);
//   - every client started on a whole character (the hub's safe start: never inside a UTF-8 sequence);
//   - an evicted client's connection was closed;
//   - the log holds the whole stream;
//   - the command's RSS grew by at most the ring + 32 MiB;
//   - the healthy client's throughput never collapsed (under 1% of its median) in a second
//     when no blocking client was stalled: a stalled evict client, once evicted, must not hold
//     anyone back (every CALM_EVERY-th second of the chaos no client is stalled, so even a
//     20 s run has seconds to measure);
//   - the command exits 0 on SIGTERM.
// Prints a summary table; exits 1 if any check failed.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { LINE_BYTES, StreamChecker } from "./_stream.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const cliPath = join(root, "dist", "cli.js");

const RING = 1 << 20;
const STALL_MS = 500;
const LAG_LIMIT = 256 * 1024;
const RSS_ALLOWANCE = RING + 32 * 1024 * 1024;
/** A healthy client's second counts as collapsed under this share of its median second. */
const COLLAPSE_SHARE = 0.01;
/**
 * Every this-many-th second of the chaos is calm: no client is stalled in it (the forced
 * eviction aside),
 * so the healthy client's throughput has free seconds to be measured in (a random schedule
 * once left a 20 s run a single free second).
 */
const CALM_EVERY = 4;
/** A stall ends this long before a calm second (timers run late under load; a stall's interval is padded by 300 ms). */
const CALM_MARGIN_MS = 700;
/** How long a closed connection, an end line or an evicted client's close may take to show. */
const SETTLE_MS = 3000;

// ---------------------------------------------------------------------------------------------
// Arguments and randomness

function parseArgs(argv) {
  const options = { seconds: 60, seed: Date.now() % 2 ** 31, json: "", keep: false };
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].replace(/^--?/, "").split("=", 2);
    const value = () => inline ?? argv[++i];
    if (name === "seconds") options.seconds = Number(value());
    else if (name === "seed") options.seed = Number(value());
    else if (name === "json") options.json = value();
    else if (name === "keep") options.keep = true;
    else {
      console.error(`soak: unknown option '${argv[i]}' (--seconds N, --seed S, --json FILE, --keep)`);
      process.exit(2);
    }
  }
  if (!(options.seconds >= 5)) {
    console.error("soak: --seconds must be at least 5");
    process.exit(2);
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));

/** mulberry32: a small seeded generator, so a failing run can be repeated with --seed. */
let seedState = options.seed >>> 0;
function random() {
  seedState = (seedState + 0x6d2b79f5) >>> 0;
  let t = seedState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const between = (low, high) => low + Math.floor(random() * (high - low));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// QMP

class Qmp {
  #socket;
  #waiting = new Map();
  #next = 1;
  events = [];

  static async open(path) {
    const qmp = new Qmp();
    await qmp.#connect(path);
    await qmp.command("qmp_capabilities");
    return qmp;
  }

  #connect(path) {
    return new Promise((resolve, reject) => {
      this.#socket = connect(path);
      this.#socket.once("error", reject);
      let greeted = false;
      createInterface({ input: this.#socket }).on("line", (line) => {
        const message = JSON.parse(line);
        if (!greeted && message.QMP) {
          greeted = true;
          resolve();
        } else if (message.event) this.events.push(message);
        else {
          const waiter = this.#waiting.get(message.id);
          this.#waiting.delete(message.id);
          if (!waiter) return;
          if (message.error) waiter.reject(new Error(`${message.error.class}: ${message.error.desc}`));
          else waiter.resolve(message.return);
        }
      });
    });
  }

  /** Runs one command; rejects with QMP's error. */
  command(execute, args) {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#socket.write(JSON.stringify(args ? { execute, arguments: args, id } : { execute, id }) + "\n");
    });
  }

  close() {
    this.#socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Clients

const now = () => Date.now();

/** One connection: a client process and what it reported. */
class Connection {
  constructor(slot, droppedBefore) {
    this.slot = slot;
    this.policy = slot.policy;
    this.droppedBefore = droppedBefore;
    this.droppedAfter = -1;
    this.openedAt = now();
    this.closedAt = 0;
    this.how = "";
    this.last = null;
    this.reports = [];
    this.stalled = false;
    this.stalls = 0;
    this.evictedAt = 0;
    this.resumedAt = 0;
    this.process = spawn(process.execPath, [join(here, "_client.mjs"), slot.path, slot.policy], { stdio: ["pipe", "pipe", "inherit"] });
    this.exited = new Promise((resolve) => this.process.on("exit", resolve));
    createInterface({ input: this.process.stdout }).on("line", (line) => {
      this.last = JSON.parse(line);
      if (slot.keepReports) this.reports.push({ at: this.last.at, received: this.last.received });
    });
    this.process.stdin.on("error", () => {});
    this.exited.then(() => {
      this.closedAt = now();
      if (!this.how) this.how = this.last?.eof ? "closed by the hub" : "ended";
    });
  }

  get alive() {
    return this.closedAt === 0;
  }

  #send(command) {
    if (this.alive) this.process.stdin.write(command + "\n");
  }

  stall() {
    this.#send("stall");
    this.stalled = true;
    this.stalls++;
  }

  resume() {
    this.#send("resume");
    this.stalled = false;
    this.resumedAt = now();
  }

  /** Closes the socket; resolves once the client has reported and exited. */
  close() {
    this.how = "closed by us";
    this.#send("close");
    return this.exited;
  }

  kill() {
    this.how = "kill -9";
    this.process.kill("SIGKILL");
    return this.exited;
  }
}

/** A socket chardev of the hub and the connections it had. */
class Slot {
  constructor(id, policy, dir, hot) {
    this.id = id;
    this.policy = policy;
    this.path = join(dir, `${id}.sock`);
    this.hot = hot;
    this.attached = true;
    this.connection = null;
    this.connections = [];
    this.keepReports = false;
    this.removeAt = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// The run

const failures = [];
function check(ok, what) {
  if (!ok) failures.push(what);
  return ok;
}

function rssOf(pid) {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function until(condition, ms) {
  const end = now() + ms;
  while (!condition()) {
    if (now() > end) return false;
    await sleep(20);
  }
  return true;
}

async function main() {
  if (!existsSync(cliPath)) {
    const built = spawnSync(process.execPath, [join(root, "scripts/build.mjs")], { cwd: root, stdio: "inherit" });
    if (built.status !== 0) process.exit(built.status ?? 1);
  }
  const dir = mkdtempSync(join(tmpdir(), "chardev-hub-soak-"));
  const pidFile = join(dir, "generator.pid");
  const logPath = join(dir, "console.log");
  const qmpPath = join(dir, "qmp.sock");
  const monitor = new Slot("mon", "block", dir, false);
  monitor.keepReports = true;
  const statics = [monitor, new Slot("b1", "block", dir, false), new Slot("d1", "drop", dir, false), new Slot("d2", "drop", dir, false), new Slot("e1", "evict", dir, false)];
  const slots = new Map(statics.map((slot) => [slot.id, slot]));
  const args = ["-chardev", `spawn,id=dev,cmd=${process.execPath},args.0=${join(here, "_generator.mjs")},args.1=${pidFile}`, "-chardev", `file,id=log,path=${logPath}`];
  for (const slot of statics) args.push("-chardev", `socket,id=${slot.id},path=${slot.path},server=on,wait=off`);
  const hubKeys = [`hub,id=hub0,ring=${RING}`, "chardevs.0=log"];
  statics.forEach((slot, k) => {
    const n = k + 1;
    hubKeys.push(`chardevs.${n}=${slot.id}`, `policy.${n}=${slot.policy}`);
    if (slot.policy === "drop") hubKeys.push(`lag-limit.${n}=${LAG_LIMIT}`);
    if (slot.policy === "evict") hubKeys.push(`stall-ms.${n}=${STALL_MS}`);
  });
  args.push("-chardev", hubKeys.join(","), "-frontend", "dev,chardev=hub0", "-qmp", `unix:${qmpPath},server=on,wait=off`);

  console.log(`soak: ${options.seconds} s, seed ${options.seed}, in ${dir}`);
  const command = spawn(process.execPath, [cliPath, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let commandOutput = "";
  command.stdout.on("data", (chunk) => (commandOutput += chunk));
  command.stderr.on("data", (chunk) => (commandOutput += chunk));
  let commandExit = null;
  const commandExited = new Promise((resolve) => command.on("exit", (code, signal) => resolve((commandExit = { code, signal }))));

  const stop = async (why) => {
    console.error(`soak: ${why}\n${commandOutput.slice(-2000)}`);
    command.kill("SIGKILL");
    for (const slot of slots.values()) slot.connection?.process.kill("SIGKILL");
    process.exit(1);
  };
  if (!(await until(() => existsSync(qmpPath) && existsSync(pidFile) || commandExit !== null, 30_000)) || commandExit) await stop("the command did not start");
  const qmp = await Qmp.open(qmpPath);
  const start = now();
  const chaosEnd = start + options.seconds * 1000;

  let hub = await qmp.command("query-hub", { id: "hub0" });
  const refreshHub = async () => (hub = await qmp.command("query-hub", { id: "hub0" }));
  const row = (id) => hub.backends.find((backend) => backend.id === id);

  const stallIntervals = []; // [from, to] while a client that holds the writer back was stalled
  const counters = { hotAdds: 0, hotRemoves: 0, evictions: 0, evictionsConnected: 0, evictionsClosed: 0, kills: 0, stalls: 0, connects: 0, removedClosed: 0 };

  /** Connects a client to a slot whose previous connection the hub has seen close. */
  const connectSlot = async (slot) => {
    await refreshHub();
    const backend = row(slot.id);
    if (!backend || backend.open) return false;
    const connection = new Connection(slot, backend["bytes-dropped"]);
    slot.connection = connection;
    slot.connections.push(connection);
    counters.connects++;
    await until(() => connection.last !== null || !connection.alive, SETTLE_MS);
    return true;
  };

  const endStall = (connection) => {
    if (!connection.stalled) return;
    const from = connection.stallFrom;
    const cap = connection.policy === "evict" ? Math.min(now(), from + STALL_MS + 1000) : now();
    stallIntervals.push([from, cap + 300]);
    connection.resume();
  };

  const stallFor = (connection, ms) => {
    connection.stall();
    connection.stallFrom = now();
    counters.stalls++;
    setTimeout(() => {
      if (connection.alive && connection.stalled) endStall(connection);
    }, ms);
  };

  /** When the next calm second starts (now, if this second is calm). */
  const nextCalmSecond = (t) => {
    const second = Math.floor((t - start) / 1000);
    return start + (second + ((CALM_EVERY - 1 - (second % CALM_EVERY)) + CALM_EVERY) % CALM_EVERY) * 1000;
  };

  /** A stall cut to end before the next calm second; none in a calm second (a stall of any policy counts as busy in the throughput check). */
  const stallBeforeCalm = (connection, ms) => {
    const room = nextCalmSecond(now()) - now() - CALM_MARGIN_MS;
    if (room >= 50) stallFor(connection, Math.min(ms, room));
  };

  const finishConnection = async (slot, how) => {
    const connection = slot.connection;
    if (!connection) return;
    if (connection.stalled && connection.policy !== "drop") {
      stallIntervals.push([connection.stallFrom, now() + 300]);
      connection.stalled = false;
    }
    if (how === "kill") {
      counters.kills++;
      await connection.kill();
    } else await connection.close();
    slot.connection = null;
  };

  /** An evicted client: its connection must close once it reads again; then re-attach. */
  const handleEviction = async (slot) => {
    const connection = slot.connection;
    slot.attached = false;
    counters.evictions++;
    // A slot evicted while its client was away (killed, not yet back) has no connection to close.
    if (connection) {
      counters.evictionsConnected++;
      connection.evictedAt = now();
      if (connection.stalled) endStall(connection);
      const closed = await until(() => !connection.alive, SETTLE_MS);
      if (closed) counters.evictionsClosed++;
      else {
        check(false, `${slot.id}: the connection stayed open ${SETTLE_MS} ms after the client was evicted and read again`);
        await connection.kill();
      }
      slot.connection = null;
    }
    if (!slot.hot) {
      await until(() => false, 100);
      await refreshHub();
      if (row(slot.id)?.open) await until(() => false, 500);
      await qmp.command("hub-attach", { hub: "hub0", chardev: slot.id, policy: "evict", "stall-ms": STALL_MS });
      slot.attached = true;
    }
  };

  let hotNumber = 0;
  const hotPlug = async () => {
    const policy = ["block", "drop", "evict"][between(0, 3)];
    const slot = new Slot(`h${++hotNumber}`, policy, dir, true);
    await qmp.command("chardev-add", { id: slot.id, backend: { type: "socket", data: { addr: { type: "unix", data: { path: slot.path } }, server: true, wait: false } } });
    const extra = policy === "drop" ? { "lag-limit": LAG_LIMIT } : policy === "evict" ? { "stall-ms": STALL_MS } : {};
    await qmp.command("hub-attach", { hub: "hub0", chardev: slot.id, policy, ...extra });
    counters.hotAdds++;
    slot.removeAt = now() + between(2000, 6000);
    slots.set(slot.id, slot);
    await connectSlot(slot);
  };

  const hotUnplug = async (slot) => {
    const connection = slot.connection;
    if (connection?.stalled) {
      endStall(connection);
      await sleep(300);
    }
    if (slot.attached) await qmp.command("hub-detach", { hub: "hub0", chardev: slot.id });
    slot.attached = false;
    await qmp.command("chardev-remove", { id: slot.id });
    counters.hotRemoves++;
    if (connection?.alive) {
      if (await until(() => !connection.alive, SETTLE_MS)) counters.removedClosed++;
      else {
        check(false, `${slot.id}: the connection stayed open ${SETTLE_MS} ms after chardev-remove`);
        await connection.kill();
      }
    }
    slot.connection = null;
    slots.delete(slot.id);
    retired.push(slot);
  };
  const retired = [];

  // RSS: the baseline once everything is up and streaming.
  for (const slot of statics) await connectSlot(slot);
  await sleep(500);
  const rssBaseline = rssOf(command.pid);
  let rssPeak = rssBaseline;
  const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, rssOf(command.pid))), 200);

  // Chaos.
  let forcedEviction = false;
  while (now() < chaosEnd && commandExit === null) {
    await sleep(between(100, 400));
    await refreshHub();
    for (const slot of [...slots.values()]) {
      if (slot.policy === "evict" && slot.attached && !row(slot.id)) await handleEviction(slot);
    }
    for (const slot of [...slots.values()]) {
      if (slot.hot && now() > slot.removeAt) await hotUnplug(slot);
    }
    if (hotNumber - retired.length < 2 && random() < 0.15) await hotPlug();
    // One eviction for sure: the evict client stalls well past stall-ms a third of the way in.
    const evictClient = slots.get("e1").connection;
    if (!forcedEviction && now() > start + (chaosEnd - start) / 3 && evictClient?.alive && !evictClient.stalled) {
      forcedEviction = true;
      stallFor(evictClient, STALL_MS * 5);
      continue;
    }
    const candidates = [...slots.values()].filter((slot) => slot !== monitor && slot.attached);
    const slot = candidates[between(0, candidates.length)];
    if (!slot) continue;
    const connection = slot.connection;
    if (!connection || !connection.alive) {
      slot.connection = null;
      if (random() < 0.6) await connectSlot(slot);
      continue;
    }
    const roll = random();
    if (connection.stalled) {
      if (roll < 0.25) await finishConnection(slot, "kill");
      continue;
    }
    if (slot.policy === "block") {
      if (roll < 0.15) stallBeforeCalm(connection, between(50, 300));
      else if (roll < 0.25) await finishConnection(slot, "kill");
      else if (roll < 0.3) await finishConnection(slot, "close");
    } else if (slot.policy === "drop") {
      if (roll < 0.35) stallBeforeCalm(connection, between(300, 3000));
      else if (roll < 0.45) await finishConnection(slot, "kill");
      else if (roll < 0.5) await finishConnection(slot, "close");
    } else {
      if (roll < 0.3) stallBeforeCalm(connection, between(100, 3000));
      else if (roll < 0.4) await finishConnection(slot, "kill");
      else if (roll < 0.45) await finishConnection(slot, "close");
    }
  }

  // The end: everyone reads again, hot clients go, every static slot is connected, then the
  // device ends the stream and everyone still connected must get it to the end line.
  for (const slot of slots.values()) if (slot.connection?.stalled) endStall(slot.connection);
  await sleep(300);
  await refreshHub();
  for (const slot of [...slots.values()]) {
    if (slot.policy === "evict" && slot.attached && !row(slot.id)) await handleEviction(slot);
  }
  for (const slot of [...slots.values()]) if (slot.hot) await hotUnplug(slot);
  for (const slot of statics) {
    if (!slot.connection || !slot.connection.alive) {
      slot.connection = null;
      await until(() => false, 200);
      if (!(await connectSlot(slot))) {
        await until(() => false, SETTLE_MS);
        await connectSlot(slot);
      }
    }
  }
  await sleep(500);
  const endAt = now();
  process.kill(Number(readFileSync(pidFile, "utf8")), "SIGUSR1");
  const atEnd = statics.map((slot) => slot.connection).filter((connection) => connection?.alive);
  const allEnded = await until(() => atEnd.every((connection) => connection.last?.ended || connection.last?.error || !connection.alive), 60_000);
  check(allEnded, `not every client connected at the end got the end line within 60 s`);
  clearInterval(rssTimer);
  await refreshHub();
  for (const connection of atEnd) connection.droppedAfter = row(connection.slot.id)?.["bytes-dropped"] ?? -1;
  const logEnded = await until(() => readTail(logPath).includes("#END "), 30_000);
  check(logEnded, "the log did not get the end line within 30 s");
  for (const connection of atEnd) await connection.close();
  qmp.close();
  command.kill("SIGTERM");
  await Promise.race([commandExited, sleep(10_000)]);
  if (commandExit === null) command.kill("SIGKILL");
  check(commandExit?.code === 0, `the command exited with ${JSON.stringify(commandExit)} on SIGTERM, not 0`);

  // ------------------------------------------------------------------------------------------
  // Verdicts

  const log = checkFile(logPath);
  check(!log.error && log.startOffset === 0 && log.ended && log.safeStart, `the log is not the whole stream: ${JSON.stringify(log)}`);
  const streamBytes = log.endOffset;

  const rows = [];
  for (const slot of [...statics, ...retired]) {
    const group = slot.hot ? `hot ${slot.policy}` : slot.id;
    let entry = rows.find((r) => r.group === group);
    if (!entry) rows.push((entry = { group, policy: slot.policy, connections: 0, kills: 0, stalls: 0, received: 0, gaps: 0, seenDropped: 0, reportedDropped: 0, exact: 0, unsafe: 0, failures: 0 }));
    for (const connection of slot.connections) {
      const summary = connection.last;
      entry.connections++;
      entry.stalls += connection.stalls;
      if (connection.how === "kill -9") entry.kills++;
      if (!summary) continue;
      entry.received += summary.received;
      const fail = (what) => {
        entry.failures++;
        check(false, `${slot.id} (${slot.policy}, connection ${slot.connections.indexOf(connection) + 1}, ${atEnd.includes(connection) ? "to the end" : connection.how}): ${what}`);
      };
      if (summary.error) fail(summary.error);
      if (summary.received > 0 && !summary.safeStart) {
        entry.unsafe++;
        fail(`started inside a line, at stream offset ${summary.startOffset}`);
      }
      if (atEnd.includes(connection) && !summary.ended) fail(`did not get the stream to its end line`);
      if (slot.policy === "drop") {
        entry.gaps += summary.gaps;
        if (atEnd.includes(connection)) {
          entry.seenDropped += summary.gapBytes;
          const reported = connection.droppedAfter - connection.droppedBefore;
          entry.reportedDropped += reported;
          if (summary.unplacedGaps > 0) fail(`${summary.unplacedGaps} gaps inside a line number: their sizes cannot be checked`);
          else if (summary.gapBytes !== reported) fail(`saw ${summary.gapBytes} bytes missing in ${summary.gaps} gaps, the hub reports ${reported} dropped`);
          else entry.exact++;
        }
      } else if (summary.gaps > 0) fail(`${summary.gaps} gaps in a ${slot.policy} client`);
    }
  }

  // Healthy throughput: the monitor's bytes per second in the seconds when nobody held the
  // writer back.
  const reports = monitor.connections[0].reports;
  const receivedAt = (t) => {
    let value = 0;
    for (const report of reports) {
      if (report.at > t) break;
      value = report.received;
    }
    return value;
  };
  const windows = [];
  for (let t = start + 1000; t + 1000 <= chaosEnd; t += 1000) {
    const busy = stallIntervals.some(([from, to]) => from < t + 1000 && to > t);
    if (!busy) windows.push(receivedAt(t + 1000) - receivedAt(t));
  }
  const sorted = [...windows].sort((a, b) => a - b);
  const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
  const collapsed = windows.filter((bytes) => bytes < median * COLLAPSE_SHARE).length;
  check(windows.length >= 3, `only ${windows.length} seconds without a stalled blocking client: throughput not measured`);
  check(collapsed === 0, `the healthy client's throughput collapsed (under ${COLLAPSE_SHARE * 100}% of its median) in ${collapsed} of ${windows.length} free seconds`);
  const rssGrowth = rssPeak - rssBaseline;
  check(rssGrowth <= RSS_ALLOWANCE, `RSS grew ${mib(rssGrowth)} MiB, more than the ring + 32 MiB`);

  const seconds = (endAt - start) / 1000;
  const lines = [];
  lines.push(`| client | policy | connections | kill -9 | stalls | MiB received | gaps | bytes missing / reported dropped (connections to the end) | exact | unsafe starts | failures |`);
  lines.push(`| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  for (const r of rows) {
    const dropped = r.policy === "drop" ? `${r.seenDropped.toLocaleString("en-US")} / ${r.reportedDropped.toLocaleString("en-US")}` : "—";
    lines.push(`| ${r.group} | ${r.policy} | ${r.connections} | ${r.kills} | ${r.stalls} | ${mib(r.received)} | ${r.policy === "drop" ? r.gaps : "—"} | ${dropped} | ${r.policy === "drop" ? r.exact : "—"} | ${r.unsafe} | ${r.failures} |`);
  }
  lines.push("");
  lines.push(`| check | measured | bound | result |`);
  lines.push(`| --- | --- | --- | --- |`);
  lines.push(`| stream | ${mib(streamBytes)} MiB in ${seconds.toFixed(0)} s (${(streamBytes / 2 ** 20 / seconds).toFixed(1)} MiB/s), ${(streamBytes / LINE_BYTES).toLocaleString("en-US")} lines | | |`);
  lines.push(`| log | ${log.error ? log.error : `${mib(log.received)} MiB, offset 0 to the end line`} | the whole stream | ${verdict(!log.error && log.startOffset === 0 && log.ended)} |`);
  lines.push(`| RSS growth | ${mib(rssGrowth)} MiB (${mib(rssBaseline)} → ${mib(rssPeak)}) | ring + 32 MiB = ${mib(RSS_ALLOWANCE)} MiB | ${verdict(rssGrowth <= RSS_ALLOWANCE)} |`);
  lines.push(`| healthy client, free seconds | ${windows.length} s, median ${mib(median)} MiB/s, lowest ${mib(sorted[0] ?? 0)} MiB/s | ≥ ${COLLAPSE_SHARE * 100}% of the median | ${verdict(collapsed === 0 && windows.length >= 3)} |`);
  lines.push(`| evictions | ${counters.evictions}, ${counters.evictionsConnected} with a client connected, ${counters.evictionsClosed} of those closed by the hub | all closed | ${verdict(counters.evictionsConnected === counters.evictionsClosed)} |`);
  lines.push(`| QMP hot-plugs | ${counters.hotAdds} added, ${counters.hotRemoves} removed, ${counters.removedClosed} connections closed by chardev-remove | | |`);
  lines.push(`| chaos | ${counters.connects} connections, ${counters.kills} kill -9, ${counters.stalls} stalls | | |`);
  lines.push(`| exit on SIGTERM | ${JSON.stringify(commandExit)} | 0 | ${verdict(commandExit?.code === 0)} |`);
  console.log(lines.join("\n"));
  if (failures.length) {
    console.log(`\nsoak: FAILED (${failures.length}), seed ${options.seed}:`);
    for (const failure of failures.slice(0, 40)) console.log(`  - ${failure}`);
    if (failures.length > 40) console.log(`  ... and ${failures.length - 40} more`);
  } else console.log(`\nsoak: passed (seed ${options.seed})`);
  if (options.json) writeFileSync(options.json, JSON.stringify({ seed: options.seed, seconds, failures, rows, counters, rssBaseline, rssPeak, windows, log, commandExit }, null, 2));
  if (!options.keep) rmSync(dir, { recursive: true, force: true });
  process.exit(failures.length ? 1 : 0);
}

function mib(bytes) {
  return (bytes / 2 ** 20).toFixed(1);
}

function verdict(ok) {
  return ok ? "pass" : "**FAIL**";
}

/** The last 4 KiB of a file ("" while it does not exist). */
function readTail(path) {
  try {
    const fd = openSync(path, "r");
    try {
      const buffer = Buffer.alloc(4096);
      const read = readSync(fd, buffer, 0, buffer.length, Math.max(0, statSync(path).size - buffer.length));
      return buffer.subarray(0, read).toString("latin1");
    } finally {
      closeSync(fd);
    }
  } catch {
    return "";
  }
}

/** Checks a whole file as a blocking client of the stream, in 1 MiB pieces. */
function checkFile(path) {
  const checker = new StreamChecker("block");
  const fd = openSync(path, "r");
  const buffer = Buffer.alloc(1 << 20);
  try {
    for (;;) {
      const read = readSync(fd, buffer, 0, buffer.length, null);
      if (read === 0) break;
      checker.push(buffer.subarray(0, read));
    }
  } finally {
    closeSync(fd);
  }
  return checker.summary();
}

await main();
