// The QMP monitor: QEMU's monitor/qmp.c as the frontend of a chardev, written anew from its
// observable behaviour. The greeting on OPENED, capabilities negotiation, one session per
// client (CLOSED forgets its input, queued commands and unsent answers), requests run in order
// with QEMU's dispatch checks (qapi/qmp-dispatch.c), `{"return": ...}` / `{"error": {"class",
// "desc"}}` with the request's `id` echoed, events, and output held until the chardev's watch
// says it has room. Input framing is ./json_streamer.ts, output encoding ./encoder.ts; the
// commands come from ./commands_chardev.ts and the backends' own files (chardev/*_qmp.ts).
// Out-of-band execution is not offered (`capabilities` is empty), as in any QEMU monitor
// without an I/O thread.

import { onEveryHubEvent } from "../chardev/hub.ts";
import { hubEventToQmp, OWN_QMP_EVENTS } from "../chardev/hub_qmp.ts";
import { QUIT_SHUTDOWN_DATA, runStateCommands } from "./commands_run_state.ts";
import { hubCommands } from "../chardev/hub_qmp.ts";
import { ringbufCommands } from "../chardev/ringbuf_qmp.ts";
import { ChrEvent } from "../events.ts";
import type { Frontend } from "../frontend.ts";
import { OutputQueue } from "../output_queue.ts";
import type { ChardevRegistry } from "../registry.ts";
import { checkArguments, genericError, isBoolean, isListOf, isObject, isOneOf, QmpError, type QmpArguments, type QmpCommand, type QmpErrorClass } from "./args.ts";
import { chardevCommands, chardevEventCommands, objectCommands } from "./commands_chardev.ts";
import { encodeQmpJson } from "./encoder.ts";
import { QmpJsonStreamer, type QmpInput } from "./json_streamer.ts";

/** QEMU 10.0.0: the version QMP clients see, in the greeting and `query-version`. */
const QEMU_VERSION = { micro: 0, minor: 0, major: 10 } as const;

/** Options of a QMP monitor. */
export interface QmpMonitorOptions {
  /**
   * The `package` string of the greeting and `query-version`.
   * @default "chardev-hub"
   */
  package?: string;
  /**
   * Called after a client's `quit` was answered (QEMU's order: the SHUTDOWN event, then `{}`).
   * The command-line tool flushes its logs and exits 0; a library decides for itself.
   * @default nothing happens beyond the answer
   */
  onQuit?: (monitor: QmpMonitor) => void;
}

/**
 * Requests a monitor queues before it stops reading input (QEMU's QMP_REQ_QUEUE_LEN_MAX); a
 * client that floods commands waits instead of growing our memory.
 */
const MAX_QUEUED_REQUESTS = 8;
/** Output held for a client that does not read, before input is paused the same way. */
const MAX_OUTPUT_BACKLOG = 1024 * 1024;
/** What `canRead` offers while the monitor takes input. */
const INPUT_CHUNK = 4096;

interface QueuedInput {
  /** The client session the input came from; its answer is dropped if that client left. */
  readonly session: number;
  readonly input: QmpInput;
}

type Response = Record<string, unknown>;

/** Monitors made by `startQmp`, which remove their own chardev on `close`. */
const monitorsOwningChardev = new WeakSet<QmpMonitor>();

/** Makes `monitor.close()` remove its chardev too (for `startQmp`, which made that chardev). */
export function monitorOwnsChardev(monitor: QmpMonitor): void {
  monitorsOwningChardev.add(monitor);
}

/**
 * A QMP server attached as the frontend of chardev `chardevId`, like a QEMU monitor made with
 * `-mon chardev=ID,mode=control`. Every OPENED of the chardev (a client connecting) gets a
 * fresh greeting and a fresh negotiation; CLOSED forgets the client's half-read input, its
 * queued commands and unsent answers.
 *
 * Commands: `qmp_capabilities`, `query-commands`, `query-version`, `chardev-add`,
 * `chardev-remove`, `chardev-change`, `query-chardev`, `query-chardev-backends`,
 * `ringbuf-write`, `ringbuf-read`, `chardev-send-break`, `object-add` and `object-del` (TLS
 * credentials, `tls-creds-x509`). `chardev-change` works as QEMU's
 * for a chardev nobody holds (the old one goes, the new one is added in its place; as in QEMU
 * the old one is gone even if adding the new one fails). A held chardev is refused with
 * QEMU's `Chardev user does not support chardev hotswap`: our frontends cannot move to a new
 * chardev. A hub or mux is refused as in QEMU. `query-status` answers QEMU's "running";
 * `quit` answers as QEMU (SHUTDOWN, then `{}`) and calls the `onQuit` option.
 *
 * Ours: `hub-attach`, `hub-detach`, `query-hub`, and `hub-events`, with which a client asks
 * for our own events (OWN_QMP_EVENTS); a client that does not ask gets QEMU's events only.
 *
 * Output goes through `Frontend.write`: a short write or EAGAIN keeps the rest queued until
 * the chardev's watch fires. A write that fails otherwise (the peer is gone) drops what was
 * queued, as QEMU's monitor does; the next client starts with a new greeting anyway.
 *
 * @example A monitor on a ringbuf, driven as a client would drive a socket
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * await reg.add("ringbuf,id=mon0,size=65536");
 * const monitor = QmpMonitor.attach(reg, "mon0");
 * reg.ringbufRead("mon0", 65536); // '{"QMP": {"version": {...}, "capabilities": []}}\r\n'
 * reg.backendWrite("mon0", new TextEncoder().encode('{"execute": "qmp_capabilities", "id": 1}'));
 * reg.ringbufRead("mon0", 65536); // '{"return": {}, "id": 1}\r\n'
 * monitor.detach();
 * ```
 */
export class QmpMonitor {
  readonly #reg: ChardevRegistry;
  readonly #package: string;
  #frontend: Frontend | null = null;
  #detached = false;
  /** Stops forwarding the hubs' events (ours, sent to a client that asked with `hub-events`). */
  #stopHubEvents: () => void = () => {};
  /** The events of ours this client asked for (`hub-events`); none until it asks. */
  #ownEvents = new Set<string>();
  readonly #onQuit: ((monitor: QmpMonitor) => void) | undefined;
  readonly #streamer: QmpJsonStreamer;
  readonly #commands: Map<string, QmpCommand>;

  /** Bumped on OPENED and CLOSED: work of an earlier client must not reach a later one. */
  #session = 0;
  #negotiated = false;
  #queue: QueuedInput[] = [];
  #dispatching = false;
  /** canRead said 0: input waits in the chardev until we ask for it again. */
  #inputPaused = false;

  /** Answers and events on their way to the chardev; the rounds a watch starts resume input too. */
  readonly #output = new OutputQueue(null, { onFlushed: () => this.#resumeInputIfRoom() });

  private constructor(
    reg: ChardevRegistry,
    /** The chardev this monitor is the frontend of. */
    readonly chardevId: string,
    options: QmpMonitorOptions,
  ) {
    this.#reg = reg;
    this.#package = options.package ?? "chardev-hub";
    this.#onQuit = options.onQuit;
    this.#streamer = new QmpJsonStreamer((input) => this.#queue.push({ session: this.#session, input }));
    this.#commands = this.#commandTable();
  }

  /**
   * Attaches a monitor to chardev `chardevId` as its frontend. Throws ChardevError if the
   * chardev does not exist or is held already. A chardev that is open already (a ringbuf, a
   * connected socket) gets the greeting at once.
   *
   * @example Serve QMP on a socket chardev made by hand
   * ```ts
   * import { ChardevRegistry } from "chardev-hub";
   * const reg = await ChardevRegistry.create();
   * await reg.add("socket,id=qmp0,path=/tmp/qmp.sock,server=on,wait=off");
   * const monitor = QmpMonitor.attach(reg, "qmp0");
   * // socat - UNIX-CONNECT:/tmp/qmp.sock
   * ```
   */
  static attach(reg: ChardevRegistry, chardevId: string, options: QmpMonitorOptions = {}): QmpMonitor {
    const monitor = new QmpMonitor(reg, chardevId, options);
    // The chardev may report OPENED inside attach, before the frontend is ours to write with:
    // the greeting waits in the output queue and goes out just below.
    monitor.#frontend = reg.attach(chardevId, {
      canRead: () => monitor.#canRead(),
      read: (data) => monitor.#read(data),
      event: (event) => monitor.#event(event),
    });
    monitor.#output.target = monitor.#frontend;
    monitor.#output.flush();
    // Our own events (QEMU's hub has none), for the hubs of this registry.
    monitor.#stopHubEvents = onEveryHubEvent((hub, event) => {
      if (reg.find(hub.id) === hub) monitor.sendOwnEvent(...hubEventToQmp(hub.id, event));
    });
    return monitor;
  }

  /** The current client has completed `qmp_capabilities`. */
  get negotiated(): boolean {
    return this.#negotiated;
  }

  /**
   * Sends an event to the client, if it has completed negotiation (QEMU sends none before).
   * Returns whether it was sent.
   *
   * @example Tell the client the machine is going away
   * ```ts
   * declare const monitor: QmpMonitor;
   * monitor.sendEvent("SHUTDOWN", { guest: false, reason: "host-qmp-quit" });
   * // {"timestamp": {"seconds": 1732550400, "microseconds": 123456}, "event": "SHUTDOWN", "data": {...}}
   * ```
   */
  sendEvent(event: string, data?: Record<string, unknown>): boolean {
    if (this.#detached || !this.#negotiated) return false;
    const micros = Math.round((performance.timeOrigin + performance.now()) * 1000);
    this.#send({ timestamp: { seconds: Math.floor(micros / 1e6), microseconds: micros % 1e6 }, event, data });
    return true;
  }

  /**
   * Sends one of our own events (OWN_QMP_EVENTS: a hub's backend attached, left, lost bytes,
   * was evicted or failed; the command-line tool's device went away or came back) to a client
   * that asked for it with `hub-events`. QEMU has none of these, so a client that does not ask
   * sees QEMU's protocol unchanged. Returns whether it was sent.
   */
  sendOwnEvent(event: string, data?: Record<string, unknown>): boolean {
    return this.#ownEvents.has(event) && this.sendEvent(event, data);
  }

  /** Resolves once every answer and event queued so far has been written to the chardev. */
  drained(): Promise<void> {
    return this.#output.drained();
  }

  /** Lets go of the chardev (it stays registered); queued commands and output are dropped. */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#stopHubEvents();
    this.#forgetClient();
    this.#frontend?.detach();
    this.#frontend = null;
    this.#output.target = null;
  }

  /** Detaches, and removes the chardev too when `startQmp` made it. */
  async close(): Promise<void> {
    this.detach();
    if (monitorsOwningChardev.has(this) && this.#reg.find(this.chardevId)) await this.#reg.remove(this.chardevId);
  }

  // ---- input ----

  #canRead(): number {
    const full = this.#queue.length >= MAX_QUEUED_REQUESTS || this.#output.queuedBytes >= MAX_OUTPUT_BACKLOG;
    if (full) this.#inputPaused = true;
    return full ? 0 : INPUT_CHUNK;
  }

  /** Asks the chardev for the input it held back, once there is room again. */
  #resumeInputIfRoom(): void {
    if (!this.#inputPaused || this.#detached || this.#canRead() === 0) return;
    this.#inputPaused = false;
    // Not from inside our own read or write: the chardev re-enters us with the held input.
    queueMicrotask(() => this.#frontend?.acceptInput());
  }

  #read(data: Uint8Array): void {
    if (this.#detached) return;
    try {
      this.#streamer.feed(data);
    } catch (error) {
      // Not reachable by any input we know of; the data path must not throw regardless.
      this.#streamer.reset();
      this.#queue.push({ session: this.#session, input: { error: `JSON parse error, ${String(error)}` } });
    }
    this.#dispatch();
  }

  #event(event: ChrEvent): void {
    if (this.#detached) return;
    if (event === ChrEvent.OPENED) {
      this.#forgetClient();
      this.#send({ QMP: { version: this.#versionInfo(), capabilities: [] } });
    } else if (event === ChrEvent.CLOSED) {
      this.#forgetClient();
    }
    // BREAK, MUX_IN, MUX_OUT mean nothing to a monitor (QEMU ignores them too).
  }

  /** A client came or went: nothing of the previous one carries over. */
  #forgetClient(): void {
    this.#session++;
    this.#negotiated = false;
    this.#ownEvents.clear();
    this.#queue = [];
    this.#streamer.reset();
    this.#dropOutput();
    this.#resumeInputIfRoom();
  }

  // ---- dispatch ----

  /** Runs queued requests in order, one at a time; an async command holds the rest back. */
  #dispatch(): void {
    if (this.#dispatching) return;
    this.#dispatching = true;
    while (this.#queue.length > 0) {
      const { session, input } = this.#queue.shift()!;
      const response = this.#execute(input);
      if (response instanceof Promise) {
        void response.then((settled) => {
          this.#respond(session, settled);
          this.#dispatching = false;
          this.#dispatch();
        });
        return;
      }
      this.#respond(session, response);
    }
    this.#dispatching = false;
    this.#resumeInputIfRoom();
  }

  #respond(session: number, response: Response): void {
    if (session === this.#session && !this.#detached) this.#send(response);
  }

  /** One request to its response; never throws, and a Promise only for async commands. */
  #execute(input: QmpInput): Response | Promise<Response> {
    if ("error" in input) return errorResponse(genericError(input.error));
    const request = input.value;
    if (!isObject(request)) return errorResponse(genericError("QMP input must be a JSON object"));
    const id = Object.hasOwn(request, "id") ? request.id : undefined;
    try {
      const result = this.#run(request);
      if (result instanceof Promise) {
        return result.then(
          (value) => successResponse(value, id),
          (error: unknown) => errorResponse(error, id),
        );
      }
      return successResponse(result, id);
    } catch (error) {
      return errorResponse(error, id);
    }
  }

  /** QEMU's qmp_dispatch: check the request's members, find the command, run it. */
  #run(request: QmpArguments): unknown {
    let command: string | undefined;
    for (const [member, value] of Object.entries(request)) {
      if (member === "execute") {
        if (typeof value !== "string") throw genericError("QMP input member 'execute' must be a string");
        command = value;
      } else if (member === "arguments") {
        if (!isObject(value)) throw genericError("QMP input member 'arguments' must be an object");
      } else if (member !== "id") {
        // `exec-oob` too: out-of-band execution was not offered in the greeting.
        throw genericError(`QMP input member '${member}' is unexpected`);
      }
    }
    if (command === undefined) throw genericError("QMP input lacks member 'execute'");
    const handler = this.#commands.get(command);
    if (!handler || (!this.#negotiated && command !== "qmp_capabilities")) {
      // Before negotiation only qmp_capabilities exists; QEMU then says what it expects.
      const desc = this.#negotiated ? `The command ${command} has not been found` : "Expecting capabilities negotiation with 'qmp_capabilities'";
      throw new QmpError("CommandNotFound", desc);
    }
    return handler((request.arguments as QmpArguments | undefined) ?? {});
  }

  #versionInfo(): Record<string, unknown> {
    return { qemu: { ...QEMU_VERSION }, package: this.#package };
  }
  /**
   * The commands in `query-commands` order: the monitor's own, then what each subject
   * contributes (chardevs, the ringbuf's, events, objects, the hub's).
   */
  #commandTable(): Map<string, QmpCommand> {
    const reg = this.#reg;
    return new Map<string, QmpCommand>([
      [
        "qmp_capabilities",
        (args) => {
          checkArguments(args, { enable: { check: isListOf(isOneOf("oob")), optional: true } });
          if (this.#negotiated) {
            throw new QmpError("CommandNotFound", "Capabilities negotiation is already complete, command ignored");
          }
          // QMP's only capability, `oob`, was not offered in our greeting.
          const enable = (args.enable as string[] | undefined) ?? [];
          if (enable.length > 0) throw genericError(`Capability ${enable.join(", ")} not available`);
          this.#negotiated = true;
        },
      ],
      [
        "query-commands",
        (args) => {
          checkArguments(args, {});
          return [...this.#commands.keys()].map((name) => ({ name }));
        },
      ],
      [
        "query-version",
        (args) => {
          checkArguments(args, {});
          return this.#versionInfo();
        },
      ],
      ...chardevCommands(reg),
      ...ringbufCommands(reg),
      ...chardevEventCommands(reg),
      ...objectCommands(reg),
      ...hubCommands(reg),
      [
        "hub-events",
        (args) => {
          checkArguments(args, { enable: { check: isBoolean }, events: { check: isListOf(isOneOf(...OWN_QMP_EVENTS)), optional: true } });
          const names = (args.events as string[] | undefined) ?? OWN_QMP_EVENTS;
          for (const name of names) {
            if (args.enable) this.#ownEvents.add(name);
            else this.#ownEvents.delete(name);
          }
        },
      ],
      ...runStateCommands({
        announceShutdown: () => this.sendEvent("SHUTDOWN", { ...QUIT_SHUTDOWN_DATA }),
        quit: () => this.#onQuit?.(this),
      }),
    ]);
  }

  // ---- output ----

  #send(message: Response): void {
    // A write that makes the chardev report OPENED or CLOSED clears the queue (#forgetClient);
    // the new client's greeting, queued by that event, goes next.
    this.#output.push(new TextEncoder().encode(`${encodeQmpJson(message)}\r\n`));
  }

  #dropOutput(): void {
    this.#output.clear();
  }
}

function successResponse(value: unknown, id: unknown): Response {
  return { return: value ?? {}, id };
}

function errorResponse(error: unknown, id?: unknown): Response {
  const errorClass: QmpErrorClass = error instanceof QmpError ? error.errorClass : "GenericError";
  const desc = error instanceof Error ? error.message : String(error);
  return { error: { class: errorClass, desc }, id };
}

