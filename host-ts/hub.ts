// The idiomatic face of a hub: Web streams in and out, backends attached as handles with
// their counters, and hub events as an async iterable. Built on the QEMU-style registry and
// frontend, so it behaves the same; usable wherever the registry is (edge runtimes included).

import type { Chardev } from "./chardev/_chardev.ts";
import { checkHubBackendOptions, HubChardev, type HubBackendOptions, type HubBackendStats, type HubEvent, type HubOptions } from "./chardev/hub.ts";
import { ChardevError } from "./errors.ts";
import type { Frontend } from "./frontend.ts";
import { type OutputChunk, outputChunkLength, OutputQueue } from "./output_queue.ts";
import { ChardevRegistry, type RegistryOptions } from "./registry.ts";

/** Bytes a writer may queue on `writable` before `ready` waits. */
const WRITABLE_HIGH_WATER_MARK = 64 * 1024;
/** Input a reader may leave unread before backends are paused. */
const READABLE_HIGH_WATER_MARK = 64 * 1024;

export interface HubCreateOptions extends HubOptions, Pick<RegistryOptions, "runtime"> {
  /** Registry to create the hub in (a new one with `qemuCompat: false` when omitted). */
  registry?: ChardevRegistry;
  /** @default "hub0" */
  id?: string;
}

/** A backend attached to a `Hub`. */
export interface HubBackendHandle {
  readonly id: string;
  readonly chardev: Chardev;
  stats(): HubBackendStats;
  /** This backend's events only (gaps, open, close, evict). */
  events(signal?: AbortSignal): AsyncGenerator<HubEvent>;
  /** Hot-unplug; the chardev stays registered. */
  detach(): void;
}

/**
 * A hub driven through Web streams.
 *
 * @example Fan a stream out to two ring buffers, one allowed to fall behind
 * ```ts
 * const hub = await Hub.create({ ring: 1 << 16 });
 * await hub.attach("ringbuf,id=a,size=1024");
 * await hub.attach("ringbuf,id=b,size=1024", { policy: "drop" });
 * const someReadable = ReadableStream.from([new TextEncoder().encode("boot log\n")]);
 * await someReadable.pipeTo(hub.writable);
 * ```
 *
 * @example Many small lines per write: an array chunk is one batched write (`Frontend.writev`)
 * ```ts
 * const hub = await Hub.create({ ring: 1 << 16 });
 * await hub.attach("ringbuf,id=log,size=1024");
 * const lines = ["one\n", "two\n", "three\n"].map((line) => new TextEncoder().encode(line));
 * const writer = hub.writable.getWriter();
 * await writer.write(lines); // the three lines, in order, as one chunk of 14 bytes
 * ```
 */
export class Hub {
  /**
   * Frontend writes, honouring backpressure: a full hub makes `write` wait for its watch. A
   * chunk is a `Uint8Array`, or an array of them written as their concatenation in one batched
   * write (`Frontend.writev`: a ring hub copies them all in one pass); its size toward the
   * high-water mark is its bytes.
   */
  readonly writable: WritableStream<OutputChunk>;
  /** Input from every backend, merged (a chunk is never interleaved with another's). */
  readonly readable: ReadableStream<Uint8Array>;
  readonly #frontend: Frontend;
  /** The writable's chunks on their way to the hub (one at a time: the stream serialises writes). */
  readonly #output: OutputQueue;
  readonly #ownsRegistry: boolean;

  protected constructor(
    readonly registry: ChardevRegistry,
    readonly chardev: HubChardev,
    ownsRegistry: boolean,
  ) {
    this.#ownsRegistry = ownsRegistry;
    let input!: ReadableStreamDefaultController<Uint8Array>;
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          input = controller;
        },
        pull: () => this.#frontend.acceptInput(),
      },
      { highWaterMark: READABLE_HIGH_WATER_MARK, size: (chunk) => chunk.length },
    );
    this.#frontend = registry.attach(chardev.id, {
      canRead: () => Math.max(0, input.desiredSize ?? 0),
      read: (data) => input.enqueue(data.slice()),
      copiesInput: true,
      event: () => {},
    });
    this.#output = new OutputQueue(this.#frontend, {
      errorFor: (errno) => new ChardevError("OPEN_FAILED", `hub '${chardev.id}': write failed with ${errno}`),
    });
    this.writable = new WritableStream<OutputChunk>(
      // Taken at once: no promise; only a remainder makes the stream wait (for the hub's watch).
      // Queue by bytes so small writes don't wait one at a time.
      { write: (chunk) => this.#output.write(chunk) },
      { highWaterMark: WRITABLE_HIGH_WATER_MARK, size: outputChunkLength },
    );
  }

  /** The registry a `create` without `registry` makes; the main entry's knows every kind. */
  protected static createRegistry(options: RegistryOptions): Promise<ChardevRegistry> {
    return ChardevRegistry.create(options);
  }

  /** Creates an empty hub; attach backends with `attach`. */
  static async create(options: HubCreateOptions = {}): Promise<Hub> {
    const ownsRegistry = !options.registry;
    const registry = options.registry ?? (await this.createRegistry({ qemuCompat: false, runtime: options.runtime }));
    const data: Record<string, unknown> = { ring: options.ring ?? 0 };
    if (options.open) data.open = options.open;
    if (options.primary) data.primary = options.primary;
    if (options.input) data.input = options.input;
    if (options.inputIdleMs !== undefined) data["input-idle-ms"] = options.inputIdleMs;
    if (options.keepHead !== undefined) data["keep-head"] = options.keepHead;
    if (options.size) data.size = options.size;
    if (options.cols !== undefined) data.cols = options.cols;
    if (options.rows !== undefined) data.rows = options.rows;
    const chardev = await registry.add({ id: options.id ?? "hub0", backend: { type: "hub", data } });
    return new this(registry, chardev as HubChardev, ownsRegistry);
  }

  /** Drives an existing hub chardev of `registry` (becoming its frontend). */
  static open(registry: ChardevRegistry, id: string): Hub {
    return new this(registry, registry.hub(id), false);
  }

  /**
   * Attaches a backend: a chardev of the registry, or a `-chardev` string that is added first.
   */
  async attach(backend: Chardev | string, options: HubBackendOptions = {}): Promise<HubBackendHandle> {
    // Limits (stall-ms, replay) checked before a backend string adds anything.
    checkHubBackendOptions(typeof backend === "string" ? "backend" : backend.id, options);
    const chardev = typeof backend === "string" ? await this.registry.add(backend) : backend;
    this.chardev.attachBackend(chardev, options);
    const hub = this.chardev;
    return {
      id: chardev.id,
      chardev,
      stats: () => hub.stats().find((row) => row.id === chardev.id)!,
      async *events(signal?: AbortSignal) {
        for await (const event of hub.events(signal)) if (event.backend === chardev.id) yield event;
      },
      detach: () => hub.detachBackend(chardev.id),
    };
  }

  /** Every hub event; see `HubChardev.events`. */
  events(signal?: AbortSignal): AsyncGenerator<HubEvent> {
    return this.chardev.events(signal);
  }

  stats(): HubBackendStats[] {
    return this.chardev.stats();
  }

  /** Serves the backends now (a ring hub otherwise does it at the end of the turn). */
  flush(): void {
    this.chardev.flush();
  }

  /** Detaches the frontend; closes the registry too if `create` made it. */
  async close(): Promise<void> {
    this.#frontend.detach();
    if (this.#ownsRegistry) await this.registry.close();
  }
}
