// The `-frontend DEVICE_ID,chardev=HUB_ID` of the command-line tool: a frontend on the device
// chardev and one on the hub, and a bounded queue each way between them. Each direction keeps
// the write contract of `Frontend.write`: a short write leaves the rest at the head of the
// queue, -1/EAGAIN waits for the watch and the same bytes are offered again, so nothing is lost
// or sent twice (../output_queue.ts does this for all writers). A full queue makes
// the receiving side's `canRead` answer 0, which holds the sender back instead of growing
// memory. A BREAK a hub client sent goes to the device in its place among the bytes: it waits
// until the bytes typed before it are written, and the bytes typed after it wait for it.

import type { ChardevRegistry } from "../registry.ts";
import type { Frontend } from "../frontend.ts";
import { ChrEvent } from "../events.ts";
import { OutputQueue } from "../output_queue.ts";

/**
 * Bytes each direction holds at most.
 * @default 64 KiB
 */
export const DEFAULT_BRIDGE_QUEUE_BYTES = 64 * 1024;

/** A BREAK held in its place among the bytes of a direction. */
const BREAK_MARK = "break" as const;

/**
 * One direction: bytes read from `from`, waiting in an `OutputQueue` to be written to `to`.
 * Behind a BREAK that waits for the bytes before it, what comes after is held here, in order.
 */
class Direction {
  readonly #output: OutputQueue;
  #throttled = false;
  #stopped = false;
  /** A BREAK waiting for the queue to empty, and whatever arrived after it (BREAKs too). */
  readonly #held: (Uint8Array | typeof BREAK_MARK)[] = [];
  #heldBytes = 0;
  /** `#releaseHeld` is running (a push it makes flushes, and flushing calls it again). */
  #releasing = false;
  /** Sends a BREAK to the target, its turn come. */
  onBreak: () => void = () => {};
  /** Bytes the target refused with an error other than EAGAIN (it is gone): dropped, as QEMU's devices drop them. */
  dropped = 0;
  /** Set once both frontends are attached. */
  from: Frontend | null = null;

  constructor(readonly capacity: number) {
    this.#output = new OutputQueue(null, {
      onFlushed: () => {
        this.#releaseHeld();
        this.#resumeSourceIfRoom();
      },
      onFailed: (_errno, dropped) => {
        this.dropped += dropped;
      },
    });
  }

  /** Bytes written to the target. */
  get delivered(): number {
    return this.#output.writtenBytes;
  }

  /** Bytes waiting (those held behind a BREAK too). */
  get queued(): number {
    return this.#output.queuedBytes + this.#heldBytes;
  }

  /** Both ends are attached; `pump` then writes what the source delivered meanwhile. */
  connect(from: Frontend, to: Frontend): void {
    this.from = from;
    this.#output.target = to;
  }

  /** Writes queued bytes until the target blocks or the queue is empty. */
  pump(): void {
    this.#output.flush();
  }

  /** The source's `canRead`: free room. Answering 0 is remembered, to tell the source when room is back. */
  room(): number {
    const room = Math.max(0, this.capacity - this.queued);
    if (room === 0) this.#throttled = true;
    return room;
  }

  /**
   * The source's `read`, whose bytes may be a view valid only during the call: written on at
   * once where the target takes them, and what has to wait is a copy.
   */
  push(data: Uint8Array): void {
    if (this.#stopped || data.length === 0) return;
    if (this.#held.length > 0) {
      this.#held.push(data.slice());
      this.#heldBytes += data.length;
      return;
    }
    this.#output.pushBorrowed(data);
  }

  /** A BREAK after the bytes pushed so far: sent now if they are all written, else once they are. */
  pushBreak(): void {
    if (this.#stopped) return;
    this.#held.push(BREAK_MARK);
    this.#releaseHeld();
  }

  /** Moves held bytes on to the queue, and sends each held BREAK once everything before it is written. */
  #releaseHeld(): void {
    if (this.#releasing) return;
    this.#releasing = true;
    try {
      while (!this.#stopped && this.#held.length > 0) {
        const head = this.#held[0];
        if (head === BREAK_MARK) {
          // Not before the target has all the bytes typed before it (nor with no target yet).
          if (this.#output.queuedBytes > 0 || !this.#output.target) return;
          this.#held.shift();
          this.onBreak();
        } else {
          this.#held.shift();
          this.#heldBytes -= head.length;
          this.#output.push(head);
        }
      }
    } finally {
      this.#releasing = false;
    }
  }

  #resumeSourceIfRoom(): void {
    if (this.#stopped || !this.from || !this.#throttled || this.queued >= this.capacity) return;
    this.#throttled = false;
    // Input the source kept while we were full (and paused reading for) comes now.
    this.from.acceptInput();
  }

  /** Resolves once nothing is queued (at once if nothing is). */
  drained(): Promise<void> {
    return this.#output.drained();
  }

  stop(): void {
    this.#stopped = true;
    this.#held.length = 0;
    this.#heldBytes = 0;
    this.#output.close();
  }
}

/** Options of a bridge. */
export interface BridgeOptions {
  /**
   * Bytes queued each way before the sending side is held back.
   * @default DEFAULT_BRIDGE_QUEUE_BYTES
   */
  queueBytes?: number;
  /** Events of the device chardev (OPENED when it runs or connects, CLOSED when it ends). */
  onDeviceEvent?: (event: ChrEvent) => void;
}

/**
 * Bridges a device chardev to the frontend end of a hub: the device's output is written to
 * the hub (so to every open backend), the hub's aggregated input is written to the device, and
 * a BREAK from a read-write backend goes to the device's far end (`Chardev.sendBreakToPeer`:
 * IAC BREAK on a telnet socket) in its place among those bytes. A device that cannot send
 * one drops it and the operator is told once.
 *
 * @example A spawned shell behind a hub with a socket and a log
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create({ qemuCompat: false });
 * await reg.add("spawn,id=sh,cmd=sh");
 * await reg.add("socket,id=s0,path=/tmp/sh.sock,server=on,wait=off");
 * await reg.add("file,id=log,path=/tmp/sh.log");
 * await reg.add("hub,id=hub0,chardevs.0=s0,chardevs.1=log");
 * const bridge = DeviceBridge.connect(reg, "sh", "hub0");
 * // ... later
 * await bridge.toHubDrained();
 * bridge.stop();
 * ```
 */
export class DeviceBridge {
  readonly #deviceFe: Frontend;
  readonly #hubFe: Frontend;
  /** Device output on its way to the hub. */
  readonly #toHub: Direction;
  /** Hub input on its way to the device. */
  readonly #toDevice: Direction;

  private constructor(deviceFe: Frontend, hubFe: Frontend, toHub: Direction, toDevice: Direction) {
    this.#deviceFe = deviceFe;
    this.#hubFe = hubFe;
    this.#toHub = toHub;
    this.#toDevice = toDevice;
  }

  /**
   * Attaches to both chardevs (the hub first, so output the device has waiting finds it).
   * Throws ChardevError when either is missing or held by someone else; nothing stays attached then.
   */
  static connect(reg: ChardevRegistry, deviceId: string, hubId: string, options: BridgeOptions = {}): DeviceBridge {
    const capacity = options.queueBytes ?? DEFAULT_BRIDGE_QUEUE_BYTES;
    const toHub = new Direction(capacity);
    const toDevice = new Direction(capacity);
    reg.get(deviceId); // "Chardev 'X' not found" before anything is attached
    const hubFe = reg.attach(hubId, {
      canRead: () => toDevice.room(),
      read: (data) => toDevice.push(data),
      copiesInput: true, // Direction.push
      // The hub's OPENED/CLOSED (its first backend came, its last left) mean nothing to a device.
      event: (event) => {
        if (event === ChrEvent.BREAK) toDevice.pushBreak();
      },
    });
    let deviceFe: Frontend;
    try {
      deviceFe = reg.attach(deviceId, {
        canRead: () => toHub.room(),
        read: (data) => toHub.push(data),
        copiesInput: true, // Direction.push
        event: (event) => options.onDeviceEvent?.(event),
      });
    } catch (error) {
      hubFe.detach();
      throw error;
    }
    const device = reg.get(deviceId);
    toDevice.onBreak = () => void device.sendBreakToPeer();
    toHub.connect(deviceFe, hubFe);
    toDevice.connect(hubFe, deviceFe);
    // Anything either side delivered while the other was not attached yet goes now.
    toHub.pump();
    toDevice.pump();
    return new DeviceBridge(deviceFe, hubFe, toHub, toDevice);
  }

  /** Byte counts each way: delivered, waiting, dropped because the target was gone. */
  get stats(): { toHub: { delivered: number; queued: number; dropped: number }; toDevice: { delivered: number; queued: number; dropped: number } } {
    const of = (d: Direction) => ({ delivered: d.delivered, queued: d.queued, dropped: d.dropped });
    return { toHub: of(this.#toHub), toDevice: of(this.#toDevice) };
  }

  /**
   * Queues `data` for the hub after the device output already queued, with the same write
   * contract: the command's own lines in the console stream (`[-- device closed --]`).
   */
  sendToHub(data: Uint8Array): void {
    this.#toHub.push(data);
  }

  /** Resolves once the device's output queued so far has all been written to the hub. */
  toHubDrained(): Promise<void> {
    return this.#toHub.drained();
  }

  /** Stops both directions and detaches both frontends; what is still queued is dropped. */
  stop(): void {
    this.#toHub.stop();
    this.#toDevice.stop();
    this.#deviceFe.detach();
    this.#hubFe.detach();
  }
}
