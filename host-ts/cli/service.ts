// Service mode (issue 13, item 4): `-pidfile FILE` and `-daemonize` (QEMU's options), `-D FILE`
// (QEMU's log file: our messages instead of stderr), and readiness to systemd over
// $NOTIFY_SOCKET. Everything a runtime does differently is in ServicePrimitives (runtime/).
//
// The one order that matters: a pid file is written, systemd is told READY=1 and a waiting
// foreground is let go only after every chardev and monitor is set up (every listener
// listens), so whoever waits on any of them can connect at once.

import { quoteInput } from "../limits.ts";
import type { HostRuntime, LogSink, ProcessPrimitives, ServicePrimitives } from "../runtime/types.ts";

/** A `-pidfile`, `-daemonize`, `-D` or readiness failure: printed as `chardev-hub: MESSAGE`, setup fails. */
export class ServiceError extends Error {
  override name = "ServiceError";
}

/** What the command line asks of service mode. */
export interface ServiceOptions {
  /** `-pidfile FILE`; null without it. */
  readonly pidfile: string | null;
  /** `-daemonize`: run in the background once set up. */
  readonly daemonize: boolean;
  /** `-D FILE`: our messages go to FILE (appended) instead of stderr; null without it. */
  readonly logFile: string | null;
}

/**
 * The pid file's mode. QEMU creates it 0600; ours is 0644 (less the umask): a pid is no secret
 * (`ps` shows it to everyone), and the file exists for others to read: a monitoring check or an
 * operator's `kill -HUP $(cat FILE)` that does not run as the service's user.
 */
export const PIDFILE_MODE = 0o644;
/** A pid file is one number and a newline; more than this is not one of ours. */
const PIDFILE_MAX_BYTES = 64;
/** What a background copy sends its foreground once it is up (its other bytes are its stderr text). */
const READY_MARK = "\0";
/** The most `systemd-notify` may take (its barrier waits up to 5 s for a manager that is not reading). */
const NOTIFY_WAIT_MS = 6000;
/** QEMU's text when a stdio chardev is asked for under -daemonize (chardev/char-stdio.c). */
export const STDIO_WITH_DAEMONIZE = "cannot use stdio with -daemonize";

function errorText(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  return quoteInput(message ?? code ?? String(error));
}

/**
 * `-pidfile FILE`: our pid and a newline, written once setup succeeded and removed on the way
 * out. Node has no fcntl lock, so where QEMU locks the file (`cannot create PID file: Cannot
 * lock pid file: Resource temporarily unavailable`) we read the pid in it: a process that still
 * runs keeps the file and we refuse to start; a dead one's file is stale and replaced. A file
 * that does not hold a pid is never replaced (it may be something else, named by mistake).
 *
 * @example One run's pid file
 * ```ts
 * import { nodeService } from "../runtime/node_service.ts";
 * const pidfile = new PidFile(nodeService, "run/hub.pid", 1234);
 * pidfile.checkFree(); // before setup: throws ServiceError if run/hub.pid names another live process
 * pidfile.write(); // after setup: "1234\n", mode 0644
 * pidfile.remove(); // on the way out
 * ```
 */
export class PidFile {
  #written = false;

  /**
   * @param service the runtime's service primitives
   * @param path where the file goes (relative to our working directory, which we keep)
   * @param pid the pid the file names: ours
   */
  constructor(
    private readonly service: ServicePrimitives,
    readonly path: string,
    readonly pid: number,
  ) {}

  /** Throws ServiceError when the file names another process that still runs, or holds no pid. */
  checkFree(): void {
    let text: string | null;
    try {
      text = this.service.readTextFile(this.path, PIDFILE_MAX_BYTES);
    } catch (error) {
      throw new ServiceError(`cannot create PID file: ${quoteInput(this.path)}: ${errorText(error)}`);
    }
    if (text === null || text.trim() === "") return;
    const holder = text.trim();
    if (!/^\d{1,10}$/.test(holder)) {
      throw new ServiceError(`cannot create PID file: ${quoteInput(this.path)} exists and does not hold a pid; not replacing it`);
    }
    const pid = Number(holder);
    if (pid !== this.pid && pid > 0 && this.service.processExists(pid)) {
      throw new ServiceError(`cannot create PID file: ${quoteInput(this.path)} names pid ${pid}, which is still running (another chardev-hub?); stop it, or remove the file if that process is not one`);
    }
  }

  /** Writes the file whole (a stale one is replaced); throws ServiceError when it cannot. */
  write(): void {
    for (let attempt = 0; ; attempt++) {
      try {
        this.service.createFileExclusive(this.path, `${this.pid}\n`, PIDFILE_MODE);
        this.#written = true;
        return;
      } catch (error) {
        // Once: a stale file is removed and we try again; a second EEXIST is a start racing ours.
        if ((error as { code?: string }).code !== "EEXIST" || attempt > 0) {
          throw new ServiceError(`cannot create PID file: ${quoteInput(this.path)}: ${errorText(error)}`);
        }
        this.checkFree();
        this.service.removeFile(this.path);
      }
    }
  }

  /** Removes the file if we wrote it and it still names us (a later start may have replaced it). */
  remove(): void {
    if (!this.#written) return;
    this.#written = false;
    try {
      if (this.service.readTextFile(this.path, PIDFILE_MAX_BYTES)?.trim() === String(this.pid)) this.service.removeFile(this.path);
    } catch {
      // Gone already, or unreadable now: nothing of ours to remove.
    }
  }
}

/**
 * sd_notify(3) to systemd (Type=notify): `READY=1` once every listener is up, `STOPPING=1` on
 * the way out. Node has no AF_UNIX datagram socket, so the message goes through systemd's own
 * `systemd-notify --pid=OUR_PID` (Debian package systemd), which knows every form of
 * $NOTIFY_SOCKET (a path, `@abstract`), adds MAINPID=, and waits until the manager has read it.
 * As root it sends our pid as the sender; as another user the sender is systemd-notify itself,
 * so the unit needs NotifyAccess=all (docs/service.md).
 *
 * @example Telling systemd we are up, and then that we are leaving
 * ```ts
 * import { nodeProcess } from "../runtime/node_process.ts";
 * const notifier = SystemdNotifier.fromEnvironment(nodeProcess, (line) => console.error(line));
 * await notifier?.ready(); // READY=1 and MAINPID=, when $NOTIFY_SOCKET is set
 * await notifier?.stopping(); // STOPPING=1
 * ```
 */
export class SystemdNotifier {
  #readySent = false;

  private constructor(
    private readonly host: ProcessPrimitives,
    private readonly pid: number,
    private readonly warn: (line: string) => void,
  ) {}

  /** A notifier when $NOTIFY_SOCKET is set (systemd started us as Type=notify), else null. */
  static fromEnvironment(host: ProcessPrimitives, warn: (line: string) => void): SystemdNotifier | null {
    const socket = host.env("NOTIFY_SOCKET");
    if (!socket || host.pid === undefined) return null;
    return new SystemdNotifier(host, host.pid, warn);
  }

  /** READY=1 (and MAINPID=). */
  async ready(): Promise<void> {
    this.#readySent = true;
    await this.#send("READY=1");
  }

  /** STOPPING=1, if READY=1 went out (a start that failed was never ready: nothing to stop). */
  async stopping(): Promise<void> {
    if (this.#readySent) await this.#send("STOPPING=1");
  }

  async #send(assignment: string): Promise<void> {
    const sent = this.host.run("systemd-notify", [`--pid=${this.pid}`, assignment]);
    const timedOut = new Promise<null>((resolve) => setTimeout(resolve, NOTIFY_WAIT_MS, null));
    const result = await Promise.race([sent, timedOut]);
    if (result === null) return this.warn(`sd_notify: systemd-notify ${assignment} did not finish in ${NOTIFY_WAIT_MS} ms`);
    if (result.exit.code === 0) return;
    const why = result.exit.code === 127 ? "systemd-notify could not be run (Debian package systemd)" : `systemd-notify ${assignment} failed`;
    this.warn(`sd_notify: NOTIFY_SOCKET is set, but ${why}: ${quoteInput(result.output.trim())}`);
  }
}

/**
 * Starts the background copy of `-daemonize` and waits until it is up: what it prints while
 * setting up comes to our stderr; the answer is the foreground's exit status: 0 once the copy
 * is up (every listener listens, the pid file is written), else the copy's failure status.
 * The copy keeps our working directory (QEMU's chdir("/") is not copied): relative chardev
 * paths, -readconfig on SIGHUP, the pid file and QMP's chardev-add mean what they meant here.
 *
 * @example The foreground of `chardev-hub -daemonize ...`
 * ```ts
 * import { nodeProcess } from "../runtime/node_process.ts";
 * const status = await startBackgroundCopy(nodeProcess, "node", nodeProcess.args, null);
 * await nodeProcess.exit(status); // 0 once the copy listens; its failure status otherwise
 * ```
 */
export async function startBackgroundCopy(host: ProcessPrimitives, runtimeName: string, args: readonly string[], logFile: string | null): Promise<number> {
  const service = host.service;
  if (!service) throw new ServiceError(`-daemonize: the ${runtimeName} runtime cannot start a copy of this program in the background`);
  let ready = false;
  let markSeen: () => void = () => {};
  const upAndRunning = new Promise<"ready">((resolve) => (markSeen = () => resolve("ready")));
  const copy = service.startBackgroundCopy(args, {
    env: {},
    outputFile: logFile,
    onMessage(text) {
      if (ready) return;
      const mark = text.indexOf(READY_MARK);
      host.print("stderr", mark < 0 ? text : text.slice(0, mark));
      if (mark >= 0) {
        ready = true;
        markSeen();
      }
    },
  });
  const outcome = await Promise.race([upAndRunning, copy.exit]);
  if (outcome === "ready") {
    copy.release();
    return 0;
  }
  // It wrote why on its way out (through our pipe); a copy that ended "well" before it was up is a failure too.
  if (outcome.code === 0 || outcome.code === null) {
    host.print("stderr", `chardev-hub: -daemonize: the background copy ended before it was up (${outcome.signal ?? `status ${outcome.code}`})\n`);
    return 1;
  }
  return outcome.code;
}

/**
 * One run's service duties in the process that serves: the pid file, systemd's notices, the
 * report to a waiting `-daemonize` foreground, and `-D`'s log.
 *
 * @example Around a run's setup
 * ```ts
 * import { detectRuntime } from "../runtime/detect.ts";
 * const service = new ServiceMode(await detectRuntime(), { pidfile: "run/hub.pid", daemonize: false, logFile: null });
 * service.beforeSetup(); // refuses a pid file naming a live process
 * // ... open every chardev and listener ...
 * await service.ready(); // pid file, READY=1, a waiting foreground let go
 * // ... on the way out:
 * await service.stopping();
 * service.cleanUp();
 * ```
 */
export class ServiceMode {
  readonly #pidfile: PidFile | null;
  readonly #notifier: SystemdNotifier | null;
  readonly #channel: { send(text: string): void; close(): void } | null;
  #log: LogSink | null = null;
  /** Set on the way out: a setup that finishes after a signal came must not write the pid file or say READY=1. */
  #leaving = false;
  /** The process primitives the run uses: `print` goes to `-D`'s log and the waiting foreground. */
  readonly host: ProcessPrimitives;

  constructor(
    runtime: HostRuntime,
    readonly options: ServiceOptions,
  ) {
    const host = runtime.process!;
    this.#channel = host.service?.backgroundChannel() ?? null;
    if (this.#channel === null && options.logFile !== null) {
      // In a background copy stdout and stderr already are the log (the foreground opened it).
      try {
        this.#log = runtime.openLog(options.logFile, true);
      } catch (error) {
        throw new ServiceError(`-D: cannot open ${quoteInput(options.logFile)}: ${errorText(error)}`);
      }
    }
    this.host = this.#wrap(host);
    this.#notifier = SystemdNotifier.fromEnvironment(host, (line) => this.host.print("stderr", `chardev-hub: ${line}\n`));
    if (options.pidfile !== null) {
      if (!host.service || host.pid === undefined) throw new ServiceError(`-pidfile: the ${runtime.name} runtime cannot write a pid file`);
      this.#pidfile = new PidFile(host.service, options.pidfile, host.pid);
    } else {
      this.#pidfile = null;
    }
  }

  /** Whether this process is the foreground of `-daemonize`, which only starts the copy and waits. */
  get startsBackgroundCopy(): boolean {
    return this.options.daemonize && this.#channel === null;
  }

  /** Whether this process is the background copy of `-daemonize`. */
  get isBackgroundCopy(): boolean {
    return this.#channel !== null;
  }

  /** Before anything is opened: refuses a pid file that names a process still running. */
  beforeSetup(): void {
    this.#pidfile?.checkFree();
  }

  /** Setup succeeded: the pid file, then READY=1, then the waiting foreground is let go. */
  async ready(): Promise<void> {
    if (this.#leaving) return;
    this.#pidfile?.write();
    await this.#notifier?.ready();
    this.#channel?.send(READY_MARK);
    this.#channel?.close();
  }

  /** First thing on the way out: STOPPING=1. */
  async stopping(): Promise<void> {
    this.#leaving = true;
    await this.#notifier?.stopping();
  }

  /** Last thing on the way out: the pid file goes (its process is about to); `-D`'s log stays open for the last line. */
  cleanUp(): void {
    this.#pidfile?.remove();
    this.#channel?.close();
  }

  #wrap(host: ProcessPrimitives): ProcessPrimitives {
    if (this.#log === null && this.#channel === null) return host;
    const encoder = new TextEncoder();
    const print = (stream: "stdout" | "stderr", text: string): void => {
      if (stream === "stderr") this.#channel?.send(text);
      if (this.#log !== null) {
        try {
          this.#log.write(encoder.encode(text));
          return;
        } catch {
          // A log that fails (a full disk) must not take our messages with it: stderr instead.
        }
      }
      host.print(stream, text);
    };
    return Object.create(host, { print: { value: print } }) as ProcessPrimitives;
  }
}
