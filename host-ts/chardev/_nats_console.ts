// `nats,role=console`: a hub backend that publishes the console's output to JetStream and
// takes input from NATS. Output is copied into a batch, cut into messages of at most the
// server's max payload, each with its absolute byte offset in a header and a message id
// (`NAME-OFFSET`) that lets the stream drop a re-sent copy. Bytes not yet acknowledged are
// bounded: past the window writes answer EAGAIN, and the watch fires when acks free room, so a
// hub's block/drop/evict policies treat NATS as any slow backend.
//
// Order in the stream is the viewers' proof that nothing is lost, so it is kept across a
// reconnect. Messages are pipelined on one server connection, which delivers them in order; what
// breaks that is a connection ending: the client drops what it buffered for the old connection
// when it dials again, so messages sent before the end may never be stored while later ones,
// sent on the new connection, are. Therefore every message is sent on the connection the client
// is on now only after every earlier unacknowledged one was (re)sent on that same connection;
// while the client is disconnected nothing is sent (output waits in the window); and after a
// failed publish nothing newer is sent until all unacknowledged messages went again, in order.

import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { natsApi } from "./_nats_api.ts";
import { ERRNO } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { ChardevContext } from "./_chardev.ts";
import { NatsChardev } from "./_nats_chardev.ts";
import { onEveryHubEvent, type HubChardev } from "./hub.ts";
import { describeNatsError, inputSubject, OFFSET_HEADER, outputSubject, REQUEST_TIMEOUT_MS, screenSubject, type NatsOptions } from "./_nats_link.ts";
import { NatsConsoleScreen, SCREEN_ERROR_HEADER, SCREEN_SIZE_HEADER } from "./_nats_screen.ts";
import { ConsoleMetadata } from "./_nats_metadata.ts";
import { PushedInputHold } from "./_pushed_input.ts";
import { quoteInput } from "../limits.ts";

/** Output taken but not yet acknowledged by JetStream before writes answer EAGAIN. */
export const NATS_UNACKED_LIMIT_BYTES = 1024 * 1024;
/**
 * Messages published and not yet acknowledged before writes answer EAGAIN: a device that
 * writes a byte a turn (echoed typing) makes a message a turn, and each waits for its ack.
 */
export const NATS_UNACKED_LIMIT_MESSAGES = 1024;
/** The largest message we publish, below the server's max payload (room left for headers). */
const MAX_MESSAGE_BYTES = 128 * 1024;
const HEADER_ROOM_BYTES = 512;
/** After a failed publish (no server, an ack lost in a failover), the unacknowledged messages are sent again after this. */
const RETRY_MS = 250;
/** How long closing waits for output still unacknowledged (a console's last words) before it lets go. */
const CLOSE_DRAIN_MS = 2000;
/**
 * Input held while the holder takes none, like a kernel receive buffer: NATS cannot be
 * paused, so beyond this typing is dropped (and counted) instead of growing memory.
 */
const INPUT_HOLD_BYTES = 64 * 1024;

/** One message of output from when it is cut until JetStream acknowledges it: where it starts, its bytes. */
interface Unacked {
  readonly offset: number;
  readonly data: Uint8Array;
  /**
   * How often it was handed to the connection. Only the latest send's failure means anything:
   * an earlier one (on a connection since replaced) was superseded by the re-send.
   */
  sends: number;
  acked: boolean;
}

/**
 * The console side of the `nats` chardev (made by natsDriver).
 *
 * @example A hub's output on NATS, and how far JetStream has it
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * const up = (await reg.add("nats,id=up,console=vm1")) as NatsConsoleChardev;
 * await reg.add("hub,id=hub0,chardevs.0=up");
 * up.ackedBytes; // output JetStream has acknowledged so far
 * ```
 */
export class NatsConsoleChardev extends NatsChardev {
  readonly #subject: string;
  #client: JetStreamClient;
  /** Output taken and not yet cut into messages. */
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #flushQueued = false;
  /** Cut into messages and not yet acknowledged (sent or still waiting to be), in offset order. */
  #unacked: Unacked[] = [];
  #unackedMessageBytes = 0;
  /**
   * The server connection the first #sentCount messages of #unacked were (re)sent on, in order:
   * the client's `info`, a new object for every connection it makes (and for a server's
   * cluster update, which only costs a harmless re-send). Read synchronously before each send,
   * so a reconnect the status events have not told us of yet is seen all the same.
   */
  #sentOn: unknown = null;
  #sentCount = 0;
  /** Set between a disconnect and the reconnect the client reports: nothing is sent meanwhile. */
  #linkDown = false;
  /** After a failed publish: until it fires, nothing is sent; then everything unacknowledged goes again. */
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  /** The absolute offset of the next byte taken: where the stream's last message for this console ended. */
  #nextOffset = 0;
  #acked = 0;
  #input: Subscription | null = null;
  #screenRequests: Subscription | null = null;
  /** The screen for from=screen viewers; null under screen=off. */
  readonly #screen: NatsConsoleScreen | null;
  /** The hub this console is a backend of (its agreed terminal size is the card's and the screen's). */
  #hub: HubChardev | null = null;
  #stopHubSize: (() => void) | null = null;
  readonly #hold = new PushedInputHold(INPUT_HOLD_BYTES);
  #droppedInputBytes = 0;
  #destroyed = false;
  #skippedBytes = 0;
  #failureWarned = false;
  /** Resolves a closing console's wait once nothing is unacknowledged. */
  #drained: (() => void) | null = null;
  readonly #maxMessageBytes: number;
  readonly #metadata: ConsoleMetadata;
  readonly #stopHubEvents: () => void;

  constructor(id: string, context: ChardevContext, options: NatsOptions, connection: NatsConnection) {
    super(id, context, options, connection);
    this.#subject = outputSubject(options.console);
    this.#client = natsApi().jetstream(connection, { timeout: REQUEST_TIMEOUT_MS });
    const maxPayload = connection.info?.max_payload ?? 1024 * 1024;
    this.#maxMessageBytes = Math.max(1024, Math.min(MAX_MESSAGE_BYTES, maxPayload - HEADER_ROOM_BYTES));
    this.#screen = options.screen ? new NatsConsoleScreen() : null;
    this.#metadata = new ConsoleMetadata(id, options, connection, context, () => ({
      offset: this.#nextOffset,
      device: options.device ?? this.#hub?.id ?? null,
      size: this.#hub?.terminalSize ?? null,
    }));
    this.#stopHubEvents = onEveryHubEvent((hub, event) => {
      if (event.backend !== this.id || !hub.children.includes(this)) return;
      // A hub's `drop` policy skipping output for us must not vanish from the offsets: the
      // skipped bytes advance them, so every viewer reports the exact gap.
      if (event.type === "gap") this.#skipped(event.bytes);
      else if (event.type === "attach" || event.type === "open") this.#heldBy(hub);
    });
  }

  /** Follows the agreed terminal size of the hub that holds us: the screen draws at it, the card shows it. */
  #heldBy(hub: HubChardev): void {
    if (this.#hub === hub || this.#destroyed) return;
    this.#stopHubSize?.();
    this.#hub = hub;
    const sized = ({ cols, rows }: { cols: number; rows: number }) => {
      this.#screen?.resize(cols, rows);
      this.#metadata.refresh();
    };
    this.#stopHubSize = hub.onSize(sized);
    sized(hub.terminalSize);
  }

  /** `bytes` of the console's output will never reach us: what is batched goes first, then the offsets jump. */
  #skipped(bytes: number): void {
    if (this.#destroyed || bytes <= 0) return;
    if (this.#batchBytes > 0) this.#flush();
    this.#nextOffset += bytes;
    this.#skippedBytes += bytes;
  }

  /** Output a hub's `drop` policy skipped for this backend: a gap every viewer sees exactly. */
  get skippedBytes(): number {
    return this.#skippedBytes;
  }

  /** `nats:console.NAME.out@SERVERS`. */
  override get filename(): string {
    return `nats:${this.#subject}@${this.options.servers.join(",")}`;
  }

  /** The absolute offset the next output byte gets. */
  get nextOffset(): number {
    return this.#nextOffset;
  }

  /** Output JetStream has acknowledged (this run). */
  get ackedBytes(): number {
    return this.#acked;
  }

  /** Output taken and not yet acknowledged. */
  get unackedBytes(): number {
    return this.#batchBytes + this.#unackedMessageBytes;
  }

  /** Messages not yet acknowledged: sent, or waiting for a connection (acked ones waiting behind an unacked one included). */
  get unackedMessages(): number {
    return this.#unacked.length;
  }

  /** Typing dropped because the device took no input for too long. */
  get droppedInputBytes(): number {
    return this.#droppedInputBytes;
  }

  /**
   * Continues the console's offsets where the stream's last message for it ends (a restarted
   * console goes on, it does not start again at 0), subscribes to input, then opens.
   */
  async start(manager: JetStreamManager): Promise<void> {
    try {
      const last = await manager.streams.getMessage(this.options.stream, { last_by_subj: this.#subject });
      const offset = Number(last?.header?.get(OFFSET_HEADER));
      if (last && Number.isSafeInteger(offset)) this.#nextOffset = offset + last.data.length;
    } catch (error) {
      // 10037: no message for the subject yet, a console's first run.
      const code = (error as { api_error?: { err_code?: number } }).api_error?.err_code;
      if (code !== 10037 && !/no message found/i.test(String((error as Error).message))) {
        throw new Error(`could not read the console's last offset: ${describeNatsError(error)}`);
      }
    }
    if (this.options.input) {
      this.#input = this.connection.subscribe(inputSubject(this.options.console), {
        callback: (error, message) => {
          if (!error) this.#arrived(message.data);
        },
      });
    }
    this.#screenRequests = this.connection.subscribe(screenSubject(this.options.console), {
      callback: (error, message) => {
        if (!error) void this.#answerScreen(message);
      },
    });
    await this.#metadata.start();
    this.#followConnection();
    this.emitEvent(ChrEvent.OPENED);
  }

  /**
   * Follows the client's connection state: while it is disconnected nothing is sent (the output
   * stays in the window, so writes answer EAGAIN once it is full); once it has reconnected, every
   * unacknowledged message goes again, in offset order, before anything newer.
   */
  #followConnection(): void {
    void (async () => {
      for await (const status of this.connection.status()) {
        if (this.#connectionClosed) return;
        if (status.type === "disconnect") {
          this.#linkDown = true;
          if (!this.#failureWarned && !this.#destroyed) {
            this.#failureWarned = true;
            this.context.warn(`nats: ${this.id}: lost the connection to ${quoteInput(status.server)}; output waits, and goes again in order once reconnected`);
          }
        } else if (status.type === "reconnect") {
          this.#linkDown = false;
          this.#send();
        }
      }
    })().catch(() => {});
  }

  /**
   * A from=screen viewer's request: the screen at the offset the output has reached now (the
   * emulator has been fed exactly up to it), with that offset in the reply's header; the viewer
   * follows the stream from there. Under screen=off, or a screen too large for one message, the
   * reply is empty with SCREEN_ERROR_HEADER saying why.
   */
  async #answerScreen(request: Msg): Promise<void> {
    const offset = this.#nextOffset;
    const snapshot = this.#screen ? await this.#screen.snapshot(this.#maxMessageBytes) : null;
    const headerSet = natsApi().headers();
    if (snapshot) {
      headerSet.set(OFFSET_HEADER, String(offset));
      headerSet.set(SCREEN_SIZE_HEADER, `${snapshot.cols}x${snapshot.rows}`);
    } else {
      headerSet.set(SCREEN_ERROR_HEADER, this.#screen ? "the console's screen is not available now (too large for one message, or its emulator fell behind)" : "the console keeps no screen (screen=off)");
    }
    try {
      request.respond(snapshot?.repaint ?? new Uint8Array(0), { headers: headerSet });
    } catch {
      // The connection closed meanwhile: the viewer's request times out and says so.
    }
  }

  #arrived(data: Uint8Array): void {
    if (this.#destroyed || data.length === 0) return;
    if (!this.#hold.arrive(data, (bytes) => this.deliverInput(bytes))) this.#droppedInputBytes += data.length;
  }

  protected override resumeInput(): void {
    this.#hold.resume();
  }

  /** Whether the unacknowledged window is full (in bytes, or in messages). */
  get #windowFull(): boolean {
    return this.unackedBytes >= NATS_UNACKED_LIMIT_BYTES || this.#unacked.length >= NATS_UNACKED_LIMIT_MESSAGES;
  }

  /** Takes what fits in the unacknowledged window; -EAGAIN when it is full. */
  protected writeOut(data: Uint8Array): number {
    if (this.#destroyed) return -ERRNO.EIO;
    if (this.#windowFull) return -ERRNO.EAGAIN;
    const room = NATS_UNACKED_LIMIT_BYTES - this.unackedBytes;
    const taken = Math.min(room, data.length);
    // `data` views WASM memory that the next write reuses: keep a copy.
    const copy = data.slice(0, taken);
    this.#batch.push(copy);
    this.#screen?.feed(copy);
    this.#batchBytes += taken;
    this.#nextOffset += taken;
    if (!this.#flushQueued) {
      // Coalesce the writes of this turn into as few messages as they fit.
      this.#flushQueued = true;
      queueMicrotask(() => this.#flush());
    }
    return taken;
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#destroyed) return;
    let offset = this.#nextOffset - this.#batchBytes;
    const joined = new Uint8Array(this.#batchBytes);
    let at = 0;
    for (const chunk of this.#batch) {
      joined.set(chunk, at);
      at += chunk.length;
    }
    this.#batch = [];
    this.#batchBytes = 0;
    for (let start = 0; start < joined.length; start += this.#maxMessageBytes) {
      const message: Unacked = { offset, data: joined.subarray(start, start + this.#maxMessageBytes), sends: 0, acked: false };
      offset += message.data.length;
      this.#unacked.push(message);
      this.#unackedMessageBytes += message.data.length;
    }
    this.#send();
  }

  /**
   * Hands to the connection, in offset order, every unacknowledged message not yet sent on the
   * connection the client is on now: after a reconnect that is all of them (the stream drops a
   * copy it already has by its id), otherwise only the new ones. Nothing while disconnected,
   * dialing, or waiting to retry after a failure.
   */
  #send(): void {
    if (this.#connectionClosed || this.#linkDown || this.#retryTimer) return;
    const connectedTo = this.connection.info;
    if (connectedTo === undefined) return;
    if (connectedTo !== this.#sentOn) {
      this.#sentOn = connectedTo;
      this.#sentCount = 0;
    }
    for (; this.#sentCount < this.#unacked.length; this.#sentCount++) {
      const message = this.#unacked[this.#sentCount];
      if (!message.acked) this.#publish(message);
    }
  }

  #publish(message: Unacked): void {
    const headerSet = natsApi().headers();
    headerSet.set(OFFSET_HEADER, String(message.offset));
    const send = ++message.sends;
    this.#client.publish(this.#subject, message.data, { msgID: `${this.options.console}-${message.offset}`, headers: headerSet }).then(
      () => this.#ackedMessage(message),
      (error: unknown) => {
        if (send === message.sends) this.#failed(message, error);
      },
    );
  }

  #ackedMessage(message: Unacked): void {
    if (message.acked) return;
    message.acked = true;
    this.#acked += message.data.length;
    this.#unackedMessageBytes -= message.data.length;
    this.#failureWarned = false;
    // Acks come in order on one connection, so acked messages leave from the head; one acked
    // out of order (a retry) waits in place until those before it are acked too.
    let acked = 0;
    while (acked < this.#unacked.length && this.#unacked[acked].acked) acked++;
    if (acked > 0) {
      this.#unacked.splice(0, acked);
      this.#sentCount = Math.max(0, this.#sentCount - acked);
    }
    if (this.#unacked.length === 0) this.#drained?.();
    if (this.#destroyed) return;
    if (this.watchesWaiting && !this.#windowFull) this.fireWatches();
  }

  /**
   * A publish failed (no ack in time, JetStream not ready): messages after it may be stored
   * already, so nothing newer goes until, after RETRY_MS, every unacknowledged message went again in order.
   */
  #failed(message: Unacked, error: unknown): void {
    if (message.acked || this.#retryTimer || this.#connectionClosed) return;
    // Once per outage: the next ack ends it.
    if (!this.#failureWarned) {
      this.#failureWarned = true;
      this.context.warn(`nats: ${this.id}: publish of offset ${message.offset} failed (${describeNatsError(error)}); sending again until JetStream acknowledges`);
    }
    this.#retryTimer = setTimeout(() => this.#retry(), RETRY_MS);
  }

  /** Sends every unacknowledged message again, in offset order; the message ids make a second copy a no-op. */
  #retry(): void {
    this.#retryTimer = null;
    this.#sentCount = 0;
    this.#send();
  }

  /** Fires when acks bring the unacknowledged bytes under the window. */
  override addWatch(callback: () => void): (() => void) | null {
    if (this.#destroyed) return null;
    if (!this.#windowFull) {
      const timer = setTimeout(callback, 0);
      return () => clearTimeout(timer);
    }
    const cancel = this.addToWatchList(callback);
    return () => void cancel();
  }

  /** Set once we close the connection: nothing is published or retried after. */
  #connectionClosed = false;

  /**
   * Output already taken is the console's: closing publishes what is batched and waits (at
   * most CLOSE_DRAIN_MS) for it to be acknowledged, then lets go.
   */
  override async destroy(): Promise<void> {
    if (this.#flushQueued) this.#flush();
    this.#destroyed = true;
    this.#stopHubEvents();
    this.#input?.unsubscribe();
    this.#input = null;
    this.#screenRequests?.unsubscribe();
    this.#screenRequests = null;
    this.#stopHubSize?.();
    this.#stopHubSize = null;
    this.#screen?.dispose();
    if (this.beOpen) this.emitEvent(ChrEvent.CLOSED);
    if (this.#unacked.length > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        timer = setTimeout(resolve, CLOSE_DRAIN_MS);
      });
      clearTimeout(timer);
      if (this.#unacked.length > 0) {
        this.context.warn(`nats: ${this.id}: closed with ${this.#unackedMessageBytes} bytes of output not acknowledged by JetStream`);
      }
    }
    await this.#metadata.stop();
    this.#connectionClosed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    await this.closeConnection();
    await super.destroy();
  }
}
