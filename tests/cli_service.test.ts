// Service mode through the real command (dist/cli.js): `-daemonize` and `-pidfile` (QEMU's
// options), `-D FILE`, and readiness to systemd over $NOTIFY_SOCKET. The daemon is a real
// background process in a session of its own, its clients real UNIX socket clients; systemd's
// side is a real AF_UNIX datagram socket: a small C program built here with `cc` that reads
// what `systemd-notify` sends (credentials and passed fds included, as systemd does) and, on
// each message, tries the command's socket at once, so READY=1 can be seen to come after the
// listener answers. Needs cc (Debian build-essential/gcc + libc6-dev) and systemd-notify
// (Debian systemd). Every runtime runs it: Node, Deno and Bun each start their background copy
// through node:child_process.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { CliProcess, SocketClient, until } from "./cli/_cli.ts";

let dir: string;
/** Daemons the tests started (by pid, read from their pid files), ended hard after each test. */
const daemons = new Set<number>();
const clients: SocketClient[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "chardev-service-"));
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const pid of daemons) if (alive(pid)) process.kill(pid, "SIGKILL");
  daemons.clear();
  await CliProcess.stopAll();
  for (const receiver of receivers.splice(0)) receiver.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const at = (name: string) => path.join(dir, name);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The session id of a process (field 6 of /proc/PID/stat, after the parenthesised name). */
function sessionOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3]);
}

/**
 * A shell device behind a hub with one socket server `s0.sock`, in relative paths (the tests
 * run the command in `dir`: a daemon must keep resolving them where it was started).
 */
function shellWithSocket(socket = "s0.sock"): string[] {
  return [
    "-chardev", "spawn,id=sh,cmd=sh",
    "-chardev", `socket,id=s0,path=${socket},server=on,wait=off`,
    "-chardev", "hub,id=hub0,chardevs.0=s0",
    "-frontend", "sh,chardev=hub0",
  ];
}

/** Connects once, with no retry: the caller claims the socket is already listening. */
function connectNow(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** The pid a pid file names, checked to be one number and a newline. */
function pidIn(file: string): number {
  const text = fs.readFileSync(file, "utf8");
  expect(text).toMatch(/^[1-9]\d*\n$/);
  return Number(text);
}

async function untilGone(pid: number): Promise<void> {
  await until(() => !alive(pid), `process ${pid} to end`);
}

/** Starts the command with -daemonize and returns its result once the foreground has exited. */
async function daemonize(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string; foregroundPid: number }> {
  const cli = new CliProcess(["-daemonize", ...args], { cwd: dir, env });
  cli.child.stdin.end();
  const foregroundPid = cli.child.pid!;
  const { code } = await cli.exit;
  if (fs.existsSync(at("hub.pid"))) daemons.add(Number(fs.readFileSync(at("hub.pid"), "utf8")));
  return { code, stdout: cli.stdout, stderr: cli.stderr, foregroundPid };
}

describe("chardev-hub -daemonize and -pidfile", () => {
  it("-daemonize returns 0 once the background copy listens, and its pid file names it", async () => {
    const { code, stderr, foregroundPid } = await daemonize(["-pidfile", "hub.pid", ...shellWithSocket()]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const pid = pidIn(at("hub.pid"));
    expect(pid).not.toBe(foregroundPid);
    expect(alive(pid)).toBe(true);
    // setsid(2): a session of its own, away from the terminal it was started from.
    expect(sessionOf(pid)).toBe(pid);
    expect((fs.statSync(at("hub.pid")).mode & 0o777) & ~0o022).toBe(0o644 & ~0o022);
    // Listening already when the command returned: one connect, no retry.
    const socket = await connectNow(at("s0.sock"));
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    socket.write("echo daemon-$((6*7))\n");
    await until(() => received.includes("daemon-42"), "the daemon's shell to answer");
    socket.destroy();
  });

  it("SIGTERM to the daemon removes its pid file and its socket", async () => {
    const { code } = await daemonize(["-pidfile", "hub.pid", ...shellWithSocket()]);
    expect(code).toBe(0);
    const pid = pidIn(at("hub.pid"));
    expect(fs.existsSync(at("s0.sock"))).toBe(true);
    process.kill(pid, "SIGTERM");
    await untilGone(pid);
    expect(fs.existsSync(at("hub.pid"))).toBe(false);
    expect(fs.existsSync(at("s0.sock"))).toBe(false);
  });

  it("a second start with the same pid file is refused while the first runs, which keeps serving", async () => {
    expect((await daemonize(["-pidfile", "hub.pid", ...shellWithSocket()])).code).toBe(0);
    const first = pidIn(at("hub.pid"));
    const second = await daemonize(["-pidfile", "hub.pid", ...shellWithSocket("s1.sock")]);
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(`chardev-hub: cannot create PID file: hub.pid names pid ${first}, which is still running (another chardev-hub?); stop it, or remove the file if that process is not one\n`);
    expect(pidIn(at("hub.pid"))).toBe(first);
    expect(fs.existsSync(at("s1.sock"))).toBe(false);
    // Without -daemonize too, and nothing is opened.
    const foreground = await CliProcess.run(["-pidfile", "hub.pid", ...shellWithSocket("s2.sock")], { cwd: dir });
    expect(foreground.code).toBe(1);
    expect(foreground.stderr).toContain(`cannot create PID file: hub.pid names pid ${first}, which is still running`);
    expect(fs.existsSync(at("s2.sock"))).toBe(false);
    const client = await SocketClient.connect(at("s0.sock"));
    clients.push(client);
    client.send("echo still-$((40+2))\n");
    await client.waitFor("still-42");
  });

  it("a stale pid file (its process has ended) is replaced, and removed again on SIGINT", async () => {
    const ended = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
    const deadPid = Number(ended.stdout.trim());
    expect(alive(deadPid)).toBe(false);
    fs.writeFileSync(at("hub.pid"), `${deadPid}\n`);
    const cli = new CliProcess(["-pidfile", "hub.pid", ...shellWithSocket()], { cwd: dir });
    await until(() => fs.existsSync(at("hub.pid")) && fs.readFileSync(at("hub.pid"), "utf8") === `${cli.child.pid}\n`, "the pid file to name the new process");
    await SocketClient.connect(at("s0.sock")).then((client) => clients.push(client));
    expect(await cli.stop("SIGINT")).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(at("hub.pid"))).toBe(false);
  });

  it("a pid file that does not hold a pid is never replaced", async () => {
    fs.writeFileSync(at("notes.txt"), "important notes\n");
    const { code, stderr } = await CliProcess.run(["-pidfile", "notes.txt", ...shellWithSocket()], { cwd: dir });
    expect(code).toBe(1);
    expect(stderr).toBe("chardev-hub: cannot create PID file: notes.txt exists and does not hold a pid; not replacing it\n");
    expect(fs.readFileSync(at("notes.txt"), "utf8")).toBe("important notes\n");
  });

  it("QMP quit removes the pid file on the way out", async () => {
    const cli = new CliProcess(["-pidfile", "hub.pid", "-qmp", "unix:qmp.sock,server=on,wait=off", ...shellWithSocket()], { cwd: dir });
    await until(() => fs.existsSync(at("hub.pid")), "the pid file");
    const qmp = await SocketClient.connect(at("qmp.sock"));
    clients.push(qmp);
    await qmp.waitFor('"QMP"');
    qmp.send('{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n');
    expect(await cli.exit).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(at("hub.pid"))).toBe(false);
  });

  it("the device's end (its program exits) removes the pid file, with the program's status", async () => {
    const cli = new CliProcess([
      "-pidfile", "hub.pid",
      "-chardev", "spawn,id=sh,cmd=sh,args.0=-c,args.1=read line; exit 3",
      "-chardev", "socket,id=s0,path=s0.sock,server=on,wait=off",
      "-chardev", "hub,id=hub0,chardevs.0=s0",
      "-frontend", "sh,chardev=hub0",
    ], { cwd: dir });
    await until(() => fs.existsSync(at("hub.pid")), "the pid file");
    expect(pidIn(at("hub.pid"))).toBe(cli.child.pid);
    const client = await SocketClient.connect(at("s0.sock"));
    clients.push(client);
    client.send("go\n");
    expect(await cli.exit).toEqual({ code: 3, signal: null });
    expect(fs.existsSync(at("hub.pid"))).toBe(false);
  });

  it("service options without a file name, and -daemonize with the default setup, are command-line mistakes", async () => {
    const noPidfile = await CliProcess.run(["-pidfile=", ...shellWithSocket()], { cwd: dir });
    expect(noPidfile.code).toBe(2);
    expect(noPidfile.stderr).toBe("chardev-hub: option '-pidfile' needs a file name\n");
    const noLog = await CliProcess.run([...shellWithSocket(), "-D"], { cwd: dir });
    expect(noLog.code).toBe(2);
    expect(noLog.stderr).toBe("chardev-hub: option '-D' needs an argument\n");
    const withDefault = await CliProcess.run(["-daemonize"], { cwd: dir });
    expect(withDefault.code).toBe(2);
    expect(withDefault.stderr).toContain("-daemonize cannot run the default setup");
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("-daemonize reports a setup failure of the background copy and exits 1, leaving no pid file", async () => {
    const { code, stderr } = await daemonize(["-pidfile", "hub.pid", ...shellWithSocket("no-such-dir/s0.sock")]);
    expect(code).toBe(1);
    expect(stderr).toContain("Failed to bind socket to no-such-dir/s0.sock");
    expect(fs.existsSync(at("hub.pid"))).toBe(false);
  });

  it("-daemonize refuses a stdio chardev with QEMU's text", async () => {
    const { code, stderr } = await daemonize([
      "-chardev", "spawn,id=sh,cmd=sh",
      "-chardev", "stdio,id=term",
      "-chardev", "hub,id=hub0,chardevs.0=term",
      "-frontend", "sh,chardev=hub0",
    ]);
    expect(code).toBe(1);
    expect(stderr).toContain("chardev-hub: cannot use stdio with -daemonize\n");
  });

  it("-D FILE takes the daemon's messages, the last one included", async () => {
    const { code } = await daemonize(["-pidfile", "hub.pid", "-D", "hub.log", ...shellWithSocket()]);
    expect(code).toBe(0);
    const pid = pidIn(at("hub.pid"));
    process.kill(pid, "SIGTERM");
    await untilGone(pid);
    expect(fs.readFileSync(at("hub.log"), "utf8")).toContain("chardev-hub: terminating on signal SIGTERM\n");
    expect(fs.statSync(at("hub.log")).mode & 0o077).toBe(0);
  });
});

// ---- systemd readiness ----

/** The datagram receiver: systemd's end of $NOTIFY_SOCKET, as far as a test needs it. */
const RECEIVER_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* receiver SOCKET PROBE [FILE]: binds SOCKET (a path, or @name in the abstract namespace),
   prints "bound", then one line per datagram: "pid=SENDER probe=ok|ERRNAME file=yes|no MESSAGE"
   (newlines in the message as spaces). PROBE, a UNIX stream socket, is connected to at once on
   each datagram, and whether FILE exists is looked at then too.
   Passed fds (systemd-notify's BARRIER=1) are closed, as systemd closes them. */
static socklen_t address(const char *name, struct sockaddr_un *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  size_t n = strlen(name);
  if (n >= sizeof sa->sun_path) n = sizeof sa->sun_path - 1;
  memcpy(sa->sun_path, name, n);
  if (name[0] == '@') sa->sun_path[0] = 0;
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) return 2;
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  struct sockaddr_un sa;
  socklen_t len = address(argv[1], &sa);
  if (bind(s, (struct sockaddr *)&sa, len) < 0) { perror("bind"); return 1; }
  printf("bound\n");
  fflush(stdout);
  for (;;) {
    char data[4096];
    union { char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)]; struct cmsghdr align; } control;
    struct iovec iov = { data, sizeof data - 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    ssize_t n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) { if (errno == EINTR) continue; perror("recvmsg"); return 1; }
    long pid = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        struct ucred cred;
        memcpy(&cred, CMSG_DATA(c), sizeof cred);
        pid = cred.pid;
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < count; i++) { int fd; memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd); close(fd); }
      }
    }
    data[n] = 0;
    for (ssize_t i = 0; i < n; i++) if (data[i] == '\n' || data[i] == 0) data[i] = ' ';
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un pa;
    socklen_t plen = address(argv[2], &pa);
    const char *probed = connect(probe, (struct sockaddr *)&pa, plen) == 0 ? "ok" : strerrorname_np(errno);
    close(probe);
    const char *file = argc == 4 && access(argv[3], F_OK) == 0 ? "yes" : "no";
    printf("pid=%ld probe=%s file=%s %s\n", pid, probed ? probed : "error", file, data);
    fflush(stdout);
  }
}
`;

const buildDir = fs.mkdtempSync(path.join(os.tmpdir(), "notify-receiver-"));
afterAll(() => fs.rmSync(buildDir, { recursive: true, force: true }));
let receiverProgram: string | null = null;

/** Builds the receiver once (cc), failing the test with cc's output if it cannot. */
function receiverBinary(): string {
  if (receiverProgram) return receiverProgram;
  fs.writeFileSync(path.join(buildDir, "receiver.c"), RECEIVER_C);
  const built = spawnSync("cc", ["-O", "-Wall", "-o", path.join(buildDir, "receiver"), path.join(buildDir, "receiver.c")], { encoding: "utf8" });
  if (built.status !== 0) throw new Error(`cc could not build the notify receiver: ${built.error ?? ""}${built.stderr}`);
  receiverProgram = path.join(buildDir, "receiver");
  return receiverProgram;
}

interface Notice {
  senderPid: number;
  probe: string;
  /** Whether the receiver's FILE existed when the message arrived. */
  file: boolean;
  fields: Map<string, string>;
}

const receivers: NotifyReceiver[] = [];

/** A real AF_UNIX datagram socket standing in for systemd's notify socket. */
class NotifyReceiver {
  readonly #child: ChildProcessWithoutNullStreams;
  #output = "";

  constructor(readonly socket: string, probe: string, file?: string) {
    this.#child = spawn(receiverBinary(), file === undefined ? [socket, probe] : [socket, probe, file]);
    this.#child.stdout.on("data", (chunk: Buffer) => (this.#output += chunk.toString("utf8")));
    this.#child.stderr.on("data", (chunk: Buffer) => (this.#output += chunk.toString("utf8")));
    receivers.push(this);
  }

  async bound(): Promise<void> {
    await until(() => this.#output.includes("bound\n") || this.#output.includes("bind"), "the notify receiver to bind");
    expect(this.#output).toBe("bound\n");
  }

  /** Every datagram so far, in order. */
  get notices(): Notice[] {
    return this.#output
      .split("\n")
      .filter((line) => line.startsWith("pid="))
      .map((line) => {
        const [pid, probe, file, ...assignments] = line.split(" ").filter(Boolean);
        return {
          senderPid: Number(pid.slice(4)),
          probe: probe.slice(6),
          file: file === "file=yes",
          fields: new Map(assignments.map((assignment) => [assignment.slice(0, assignment.indexOf("=")), assignment.slice(assignment.indexOf("=") + 1)])),
        };
      });
  }

  async noticeWith(field: string): Promise<Notice> {
    await until(() => this.notices.some((notice) => notice.fields.has(field)), `a notice with ${field} (so far: ${JSON.stringify(this.#output)})`);
    return this.notices.find((notice) => notice.fields.has(field))!;
  }

  stop(): void {
    if (this.#child.exitCode === null) this.#child.kill("SIGKILL");
  }
}

describe("chardev-hub and systemd's notify socket", () => {
  for (const [kind, socketName] of [["a path", () => at("notify.sock")], ["an abstract name (@...)", () => `@chardev-hub-test-${process.pid}-${Date.now()}`]] as const) {
    it(`READY=1 and MAINPID arrive once the socket listens, STOPPING=1 on SIGTERM (NOTIFY_SOCKET ${kind})`, async () => {
      const receiver = new NotifyReceiver(socketName(), at("s0.sock"));
      await receiver.bound();
      const cli = new CliProcess(shellWithSocket(), { cwd: dir, env: { NOTIFY_SOCKET: receiver.socket } });
      const ready = await receiver.noticeWith("READY");
      expect(ready.fields.get("READY")).toBe("1");
      expect(ready.fields.get("MAINPID")).toBe(String(cli.child.pid));
      // As root (CI), systemd-notify sends our pid as the sender's credentials: systemd takes it
      // as the main process's own message. Another user's systemd-notify sends its own pid.
      if (process.getuid?.() === 0) expect(ready.senderPid).toBe(cli.child.pid);
      else expect(ready.senderPid).not.toBe(cli.child.pid);
      // The receiver tried the command's socket the moment READY=1 arrived: it was listening.
      expect(ready.probe).toBe("ok");
      expect(receiver.notices.some((notice) => notice.fields.has("STOPPING"))).toBe(false);
      expect(await cli.stop("SIGTERM")).toEqual({ code: 0, signal: null });
      const stopping = await receiver.noticeWith("STOPPING");
      expect(stopping.fields.get("STOPPING")).toBe("1");
      expect(receiver.notices.findIndex((notice) => notice.fields.has("STOPPING"))).toBeGreaterThan(receiver.notices.findIndex((notice) => notice.fields.has("READY")));
    });
  }

  it("under -daemonize, READY=1 names the background copy as MAINPID, after its pid file is written", async () => {
    const receiver = new NotifyReceiver(at("notify.sock"), at("s0.sock"), at("hub.pid"));
    await receiver.bound();
    const { code, foregroundPid } = await daemonize(["-pidfile", "hub.pid", ...shellWithSocket()], { NOTIFY_SOCKET: receiver.socket });
    expect(code).toBe(0);
    const pid = pidIn(at("hub.pid"));
    const ready = await receiver.noticeWith("READY");
    expect(ready.fields.get("MAINPID")).toBe(String(pid));
    expect(ready.fields.get("MAINPID")).not.toBe(String(foregroundPid));
    expect(ready.probe).toBe("ok");
    expect(ready.file).toBe(true);
    process.kill(pid, "SIGTERM");
    await untilGone(pid);
    expect((await receiver.noticeWith("STOPPING")).fields.get("STOPPING")).toBe("1");
    expect(fs.existsSync(at("hub.pid"))).toBe(false);
  });

  it("a start that fails is never READY", async () => {
    const receiver = new NotifyReceiver(at("notify.sock"), at("s0.sock"));
    await receiver.bound();
    const cli = new CliProcess(shellWithSocket("no-such-dir/s0.sock"), { cwd: dir, env: { NOTIFY_SOCKET: receiver.socket } });
    cli.child.stdin.end();
    expect((await cli.exit).code).toBe(1);
    expect(cli.stderr).toContain("Failed to bind socket to no-such-dir/s0.sock");
    // A message sent now arrives after any the command sent: all of them are in by then.
    spawnSync("systemd-notify", ["--pid=1", "STATUS=sentinel"], { env: { ...process.env, NOTIFY_SOCKET: receiver.socket } });
    await receiver.noticeWith("STATUS");
    expect(receiver.notices.filter((notice) => notice.fields.has("READY") || notice.fields.has("STOPPING"))).toEqual([]);
  });
});
