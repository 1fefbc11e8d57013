// `nats,role=viewer`: the device of a local hub that follows a remote console. Its input (what
// it hands its holder) is the console's output read from JetStream through an ordered
// consumer; what its holder writes is typing, published to `console.NAME.in`. JetStream
// ordered consumers have had gap-detection bugs (nats.go#2107) and stream limits discard old
// output, so every message's byte offset is checked against the next one expected: a repeat
// is cut off, a hole becomes an exact `[-- N bytes missed --]` note in the output and a gap
// report, never a silent loss.

import type { NatsConnection } from "@nats-io/nats-core";
import type { ConsumerMessages, OrderedConsumerOptions } from "@nats-io/jetstream";
import { natsApi } from "./_nats_api.ts";
import { ERRNO } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { ChardevContext } from "./_chardev.ts";
import { NatsChardev } from "./_nats_chardev.ts";
import { describeNatsError, inputSubject, OFFSET_HEADER, outputSubject, REQUEST_TIMEOUT_MS, screenSubject, type NatsOptions } from "./_nats_link.ts";
import { ChardevError } from "../errors.ts";
import { SCREEN_ERROR_HEADER } from "./_nats_screen.ts";
import { quoteInput } from "../limits.ts";

/** Messages the client fetches ahead of the holder; reading pauses beyond them. */
const PREFETCH_MESSAGES = 16;
/**
 * Output held past a hole while the hole may still fill: a publish retried after a failover
 * can be stored after messages that followed it. Beyond this much, or REORDER_WAIT_MS without
 * the missing bytes, the hole is a gap.
 */
export const REORDER_HOLD_BYTES = 1024 * 1024;
/** How long a hole may wait for its bytes once output beyond it has come. */
export const REORDER_WAIT_MS = 1000;

/** A hole in the followed output: where it starts and how many bytes are missing. */
export interface NatsGap {
  readonly offset: number;
  readonly bytes: number;
}

/**
 * The note a terminal client sees where output is missing (its own line, CR LF as a terminal wants).
 *
 * @example
 * ```ts
 * new TextDecoder().decode(missedNote(4096)); // "\r\n[-- 4096 bytes missed --]\r\n"
 * ```
 */
export function missedNote(bytes: number): Uint8Array {
  return new TextEncoder().encode(`\r\n[-- ${bytes} bytes missed --]\r\n`);
}

/**
 * The viewer side of the `nats` chardev (made by natsDriver).
 *
 * @example Follow console vm1 and count what is missing
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * const viewer = (await reg.add("nats,id=vm1,role=viewer,console=vm1,from=start")) as NatsViewerChardev;
 * viewer.onGap = (gap) => console.log(`${gap.bytes} bytes missed at ${gap.offset}`);
 * ```
 */
export class NatsViewerChardev extends NatsChardev {
  readonly #inSubject: string;
  /** The next offset expected; null until the first message under from=new, or the screen's offset under from=screen. */
  #expected: number | null;
  #messages: ConsumerMessages | null = null;
  /** Resolves when the holder takes input again after deliverInput said to pause. */
  #resume: (() => void) | null = null;
  readonly #gaps: NatsGap[] = [];
  #missed = 0;
  #deniedWarned = false;
  #destroyed = false;
  /** Messages past a hole, by offset, until the hole fills or is declared a gap. */
  readonly #held = new Map<number, Uint8Array>();
  #heldBytes = 0;
  #holeTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * The first message decides at once: a hole before it is output the stream's limits
   * discarded before we came (nothing retried can fill it), not a reordering.
   */
  #first = true;
  /** Called for every gap (a hub's gap event, a test); also reported on stderr. */
  onGap: ((gap: NatsGap) => void) | null = null;

  constructor(id: string, context: ChardevContext, options: NatsOptions, connection: NatsConnection) {
    super(id, context, options, connection);
    this.#inSubject = inputSubject(options.console);
    const from = options.from;
    this.#expected = from.kind === "start" ? 0 : from.kind === "offset" ? from.offset : null;
  }

  /** `nats:console.NAME.out@SERVERS,viewer`. */
  override get filename(): string {
    return `nats:${outputSubject(this.options.console)}@${this.options.servers.join(",")},viewer`;
  }

  /** The offset of the next output byte expected (null before the first message under from=new). */
  get nextOffset(): number | null {
    return this.#expected;
  }

  /** Every hole seen so far, in order. */
  get gaps(): readonly NatsGap[] {
    return this.#gaps;
  }

  /** Bytes missing in all (the sum of the gaps). */
  get missedBytes(): number {
    return this.#missed;
  }

  /**
   * Creates the ordered consumer, opens, and follows in the background. `startSequence`: a
   * stream sequence at or before the first offset wanted (found by the attach client), so a
   * `from=OFFSET` near the end does not read the console's whole stream to skip it.
   *
   * `from=screen`: the consumer takes new messages first, then the console is asked for its
   * screen, which it answers at the offset N its output has reached. Every byte at N or later
   * was taken by the console after the consumer existed, so it comes through the consumer;
   * what came through before N is cut off as a repeat. The screen goes to the holder first.
   */
  async start(startSequence?: number): Promise<void> {
    const screen = this.options.from.kind === "screen";
    const consumerOptions: Partial<OrderedConsumerOptions> = {
      filter_subjects: outputSubject(this.options.console),
      deliver_policy:
        startSequence !== undefined ? natsApi().DeliverPolicy.StartSequence : this.options.from.kind === "new" || screen ? natsApi().DeliverPolicy.New : natsApi().DeliverPolicy.All,
      ...(startSequence !== undefined ? { opt_start_seq: startSequence } : {}),
    };
    const consumer = await natsApi().jetstream(this.connection).consumers.get(this.options.stream, consumerOptions);
    this.#messages = await consumer.consume({ max_messages: PREFETCH_MESSAGES });
    // Following starts at once, held at its first message until the screen is out: the client
    // closes a consumer that is being read (destroy(), after a failed request), not one left unread.
    let release = () => {};
    this.#resume = () => release();
    void this.#follow(this.#messages, new Promise<void>((resolve) => (release = resolve)));
    const { repaint, offset } = screen ? await this.#requestScreen() : { repaint: null, offset: this.#expected };
    this.#expected = offset;
    this.#watchStatus();
    this.emitEvent(ChrEvent.OPENED);
    if (repaint && repaint.length > 0) this.deliverInput(repaint);
    this.#resume = null;
    release();
  }

  /** Asks the console for its screen; throws OPEN_FAILED saying why there is none. */
  async #requestScreen(): Promise<{ repaint: Uint8Array; offset: number }> {
    const subject = screenSubject(this.options.console);
    let reply;
    try {
      reply = await this.connection.request(subject, new Uint8Array(0), { timeout: REQUEST_TIMEOUT_MS });
    } catch (error) {
      throw new ChardevError("OPEN_FAILED", `nats: from=screen: console '${this.options.console}' did not answer on ${subject}: ${describeNatsError(error)} (is it running, and a version that keeps a screen?)`);
    }
    const given = reply.headers?.get(OFFSET_HEADER) ?? "";
    const offset = /^\d{1,15}$/.test(given) ? Number(given) : -1;
    if (offset < 0) {
      const why = reply.headers?.get(SCREEN_ERROR_HEADER) || "its reply has no offset";
      throw new ChardevError("OPEN_FAILED", `nats: from=screen: console '${this.options.console}' gave no screen: ${quoteInput(why)}`);
    }
    return { repaint: reply.data, offset };
  }

  async #follow(messages: ConsumerMessages, started: Promise<void>): Promise<void> {
    try {
      for await (const message of messages) {
        await started;
        if (this.#destroyed) break;
        const offset = Number(message.headers?.get(OFFSET_HEADER));
        if (!Number.isSafeInteger(offset) || offset < 0) {
          this.context.warn(`nats: ${this.id}: a message on ${message.subject} without a valid ${OFFSET_HEADER} header was skipped`);
          continue;
        }
        if (!this.#take(offset, message.data)) await new Promise<void>((resolve) => (this.#resume = resolve));
      }
    } catch (error) {
      if (!this.#destroyed) this.context.warn(`nats: ${this.id}: following ${outputSubject(this.options.console)} stopped: ${describeNatsError(error)}`);
    }
  }

  /** Checks one message's offset and hands on its new bytes; false when the holder is full. */
  #take(offset: number, data: Uint8Array): boolean {
    const expected = this.#expected ?? offset;
    const first = this.#first;
    this.#first = false;
    // A repeat (a publish retried after a failover, a redelivery): only what is past `expected` is new.
    if (offset + data.length <= expected) return true;
    if (offset > expected) {
      if (!first) return this.#hold(offset, data);
      this.#reportGap(expected, offset - expected);
      this.#expected = offset;
    }
    return this.#deliverFrom(offset, data) && this.#drainHeld();
  }

  /** Hands on what of `data` (at `offset`, not past `expected`) is new, and moves `expected` past it. */
  #deliverFrom(offset: number, data: Uint8Array): boolean {
    const expected = this.#expected ?? offset;
    const end = offset + data.length;
    if (end <= expected) return true;
    this.#expected = end;
    return this.deliverInput(offset < expected ? data.subarray(expected - offset) : data);
  }

  /** Keeps a message beyond a hole; a hole that stays too long or holds too much becomes a gap. */
  #hold(offset: number, data: Uint8Array): boolean {
    if (!this.#held.has(offset)) {
      this.#held.set(offset, data);
      this.#heldBytes += data.length;
    }
    if (this.#heldBytes > REORDER_HOLD_BYTES) return this.#declareHole();
    this.#holeTimer ??= setTimeout(() => {
      this.#holeTimer = null;
      this.#declareHole();
    }, REORDER_WAIT_MS);
    return true;
  }

  /** The hole before the first held message is a gap: reported exactly, then the held output goes on. */
  #declareHole(): boolean {
    if (this.#held.size === 0 || this.#expected === null) return true;
    const next = Math.min(...this.#held.keys());
    if (next > this.#expected) {
      this.#reportGap(this.#expected, next - this.#expected);
      this.#expected = next;
    }
    return this.#drainHeld();
  }

  /** Hands on held messages that now follow on; a hole still open keeps (or restarts) its wait. */
  #drainHeld(): boolean {
    let keepReading = true;
    for (;;) {
      const ready = [...this.#held.keys()].filter((offset) => offset <= this.#expected!).sort((a, b) => a - b);
      if (ready.length === 0) break;
      for (const offset of ready) {
        const data = this.#held.get(offset)!;
        this.#held.delete(offset);
        this.#heldBytes -= data.length;
        keepReading = this.#deliverFrom(offset, data) && keepReading;
      }
    }
    if (this.#held.size === 0 && this.#holeTimer) {
      clearTimeout(this.#holeTimer);
      this.#holeTimer = null;
    }
    return keepReading;
  }

  #reportGap(offset: number, bytes: number): void {
    const gap = { offset, bytes };
    this.#gaps.push(gap);
    this.#missed += bytes;
    this.context.warn(`nats: ${this.id}: ${bytes} bytes of ${outputSubject(this.options.console)} missed at offset ${offset} (discarded by the stream's limits, or lost)`);
    this.deliverInput(missedNote(bytes));
    this.onGap?.(gap);
  }

  protected override resumeInput(): void {
    const resume = this.#resume;
    this.#resume = null;
    resume?.();
  }

  /** A publish we may not make (a viewer that may only watch) is said once on stderr. */
  #watchStatus(): void {
    void (async () => {
      for await (const status of this.connection.status()) {
        if (this.#destroyed) return;
        if (status.type !== "error") continue;
        const text = describeNatsError(status.error);
        if (/permission/i.test(text) && !this.#deniedWarned) {
          this.#deniedWarned = true;
          this.context.warn(`nats: ${this.id}: typing is not permitted: ${text}`);
        }
      }
    })().catch(() => {});
  }

  /** Typing for the console: one plain NATS message (the client holds it while reconnecting). */
  protected writeOut(data: Uint8Array): number {
    if (this.#destroyed || this.connection.isClosed()) return -ERRNO.EIO;
    this.connection.publish(this.#inSubject, data.slice());
    return data.length;
  }

  override async destroy(): Promise<void> {
    this.#destroyed = true;
    if (this.#holeTimer) clearTimeout(this.#holeTimer);
    this.#holeTimer = null;
    this.resumeInput();
    try {
      await this.#messages?.close();
    } catch {
      // The consumer is gone with its server; nothing to release.
    }
    if (this.beOpen) this.emitEvent(ChrEvent.CLOSED);
    await this.closeConnection();
    await super.destroy();
  }
}
