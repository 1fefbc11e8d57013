// Loads the WASM core and gives each export a typed binding. The bytes are embedded at build
// time (host-ts/_core_wasm.ts), so loading needs neither fs nor fetch. The ABI and the memory
// layout are documented in core-as/index.ts.

import { CORE_WASM_BASE64 } from "./_core_wasm.ts";

/** Writes `len` bytes at `data` (an address in core memory) to backend `index` of `hub`. */
export type BackendWriteHook = (hub: number, index: number, data: Uint8Array) => number;
/** Backend `index` of broadcast ring `ring` skipped `bytes` bytes it was too slow for. */
export type BackendGapHook = (ring: number, index: number, bytes: number) => void;

/** Reader policies of the broadcast ring (core-as/ring.ts POLICY_*). */
export const RingPolicy = { block: 0, drop: 1, evict: 2 } as const;
export type RingPolicy = keyof typeof RingPolicy;

/**
 * The core ABI (exports, import, memory layout; core-as/index.ts) this host was written for.
 * `Core.load` refuses a core.wasm whose `abiVersion()` differs.
 */
export const CORE_ABI_VERSION = 1;

interface CoreExports {
  memory: WebAssembly.Memory;
  /** abiVersion(): u32 */
  abiVersion(): number;
  /** scratch(slot: i32, len: usize): usize */
  scratch(slot: number, len: number): number;
  /** hubNew(initialCapacity: u32): usize */
  hubNew(initialCapacity: number): number;
  /** hubFree(hub: usize): void */
  hubFree(hub: number): void;
  /** hubAddBackend(hub: usize): u32 */
  hubAddBackend(hub: number): number;
  /** hubWrite(hub: usize, data: usize, len: i32): i32 */
  hubWrite(hub: number, data: number, len: number): number;
  /** hubEvent(hub: usize, index: u32, event: u32): u32 */
  hubEvent(hub: number, index: number, event: number): number;
  /** hubBlockedBackend(hub: usize): i32 */
  hubBlockedBackend(hub: number): number;
  /** hubBackendCount(hub: usize): u32 */
  hubBackendCount(hub: number): number;
  /** hubOpenedEvents(hub: usize): u32 */
  hubOpenedEvents(hub: number): number;
  /** hubMinWritten(hub: usize): u64 */
  hubMinWritten(hub: number): bigint;
  /** hubBackendWritten(hub: usize, index: u32): u64 */
  hubBackendWritten(hub: number, index: number): bigint;
  /** hubBackendOpen(hub: usize, index: u32): u32 */
  hubBackendOpen(hub: number, index: number): number;
  /** hubBackendDelivered(hub: usize, index: u32): u64 */
  hubBackendDelivered(hub: number, index: number): bigint;
  /** hubBackendStalls(hub: usize, index: u32): u32 */
  hubBackendStalls(hub: number, index: number): number;
  /** bcastNew(size: u32): usize */
  bcastNew(size: number): number;
  /** bcastFree(ring: usize): void */
  bcastFree(ring: number): void;
  /** bcastAddBackend(ring: usize, policy: u32, lagLimit: u64, replay: u32): u32 */
  bcastAddBackend(ring: number, policy: number, lagLimit: bigint, replay: number): number;
  /** bcastRemoveBackend(ring: usize, index: u32): void */
  bcastRemoveBackend(ring: number, index: number): void;
  /** bcastSetOpen(ring: usize, index: u32, open: u32): void */
  bcastSetOpen(ring: number, index: number, open: number): void;
  /** bcastUnblock(ring: usize, index: u32): void */
  bcastUnblock(ring: number, index: number): void;
  /** bcastWritable(ring: usize): u32 */
  bcastWritable(ring: number): number;
  /** bcastWrite(ring: usize, data: usize, len: u32): u32 */
  bcastWrite(ring: number, data: number, len: number): number;
  /** bcastReserve(ring: usize): u32 */
  bcastReserve(ring: number): number;
  /** bcastHeadAddress(ring: usize): usize */
  bcastHeadAddress(ring: number): number;
  /** bcastCommit(ring: usize, len: u32): void */
  bcastCommit(ring: number, len: number): void;
  /** bcastDrainBackend(ring: usize, index: u32): i32 */
  bcastDrainBackend(ring: number, index: number): number;
  /** bcastDrain(ring: usize): u32 */
  bcastDrain(ring: number): number;
  /** bcastHead(ring: usize): u64 */
  bcastHead(ring: number): bigint;
  /** bcastCursor(ring: usize, index: u32): u64 */
  bcastCursor(ring: number, index: number): bigint;
  /** bcastDelivered(ring: usize, index: u32): u64 */
  bcastDelivered(ring: number, index: number): bigint;
  /** bcastDropped(ring: usize, index: u32): u64 */
  bcastDropped(ring: number, index: number): bigint;
  /** bcastStalls(ring: usize, index: u32): u32 */
  bcastStalls(ring: number, index: number): number;
  /** bcastJoinSkipped(ring: usize, index: u32): u64 */
  bcastJoinSkipped(ring: number, index: number): bigint;
  /** bcastBlocked(ring: usize, index: u32): u32 */
  bcastBlocked(ring: number, index: number): number;
  /** ringbufNew(size: u32): usize */
  ringbufNew(size: number): number;
  /** ringbufFree(ring: usize): void */
  ringbufFree(ring: number): void;
  /** ringbufWrite(ring: usize, data: usize, len: u32): u32 */
  ringbufWrite(ring: number, data: number, len: number): number;
  /** ringbufCount(ring: usize): u32 */
  ringbufCount(ring: number): number;
  /** ringbufRead(ring: usize, out: usize, size: u32): u32 */
  ringbufRead(ring: number, out: number, size: number): number;
}

/** Staging buffer for frontend writes into a hub. */
const SCRATCH_FRONTEND = 0;
/** Staging buffer for everything else (ringbuf writes and reads). */
const SCRATCH_OTHER = 1;

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Throws unless the instance reports the ABI this host expects: a stale or foreign core.wasm
 * would otherwise fail later with wrong offsets or missing exports, far from the cause.
 */
function checkAbiVersion(instance: WebAssembly.Instance): void {
  const abiVersion = instance.exports["abiVersion"];
  // A core built before the export existed has no version: it reads as ABI 0.
  const found = typeof abiVersion === "function" ? Number((abiVersion as () => number)()) : 0;
  if (found !== CORE_ABI_VERSION) {
    throw new Error(`chardev-hub: core.wasm ABI ${found}, host expects ${CORE_ABI_VERSION}`);
  }
}

let compiled: Promise<WebAssembly.Module> | undefined;

/** The core's WASM bytes as embedded at build time (what `Core.load` compiles). */
export function coreWasmBytes(): Uint8Array {
  return decodeBase64(CORE_WASM_BASE64);
}

/**
 * One instance of the WASM core: its memory holds every hub and ringbuf of one registry.
 *
 * @example Write to a hub with two backends that each take everything
 * ```ts
 * const core = await Core.load();
 * const taken: number[] = [];
 * core.onBackendWrite = (_hub, index, data) => (taken[index] = data.length);
 * const hub = core.hubNew(4);
 * core.hubEvent(hub, core.hubAddBackend(hub), 1);
 * core.hubEvent(hub, core.hubAddBackend(hub), 1);
 * core.hubWrite(hub, new TextEncoder().encode("hi")); // 2
 * ```
 */
export class Core {
  /** Called by the core's write-to-all loop for each backend it writes. */
  onBackendWrite: BackendWriteHook = () => -5; // EIO until a registry installs itself
  /** Called when a `drop` reader of a broadcast ring skips ahead. */
  onBackendGap: BackendGapHook = () => {};
  readonly #exports: CoreExports;
  /** All of core memory; replaced when a grow detaches it (its length reads 0 then). */
  #bytes: Uint8Array;
  /** Staging buffers by slot: address and a size they are known to have (the core may have more). */
  readonly #scratchAddress = [0, 0];
  readonly #scratchSize = [0, 0];
  /** The last view handed to a backend write, and where it points. */
  #lastView: Uint8Array = new Uint8Array(0);
  #lastAddress = -1;

  private constructor(instance: WebAssembly.Instance) {
    this.#exports = instance.exports as unknown as CoreExports;
    this.#bytes = new Uint8Array(this.#exports.memory.buffer);
  }

  /**
   * Compiles (once per process) and instantiates the core.
   *
   * @param module The core already compiled, for hosts that refuse to compile WASM from bytes
   * at run time (Cloudflare Workers, workerd): there the same bytes (`coreWasmBytes()`) are
   * given to the host as a WASM module and the compiled module is passed here.
   * @default compiled from the embedded bytes
   */
  static async load(module?: WebAssembly.Module): Promise<Core> {
    module ??= await (compiled ??= WebAssembly.compile(coreWasmBytes() as BufferSource));
    let core: Core | undefined;
    const imports = {
      env: {
        abort(_message: number, _file: number, line: number, column: number): never {
          throw new Error(`chardev-hub core aborted at ${line}:${column} (out of memory?)`);
        },
      },
      host: {
        backendWrite(hub: number, index: number, data: number, len: number): number {
          return core!.onBackendWrite(hub, index, core!.#backendView(data, len));
        },
        backendGap(ring: number, index: number, bytes: number): void {
          core!.onBackendGap(ring, index, bytes);
        },
      },
    };
    const instance = await WebAssembly.instantiate(module, imports);
    checkAbiVersion(instance);
    core = new Core(instance);
    return core;
  }

  /** The ABI version the loaded core.wasm reports (equal to `CORE_ABI_VERSION`). */
  get abiVersion(): number {
    return this.#exports.abiVersion();
  }

  /** A view of core memory; valid until the next call that may allocate. */
  view(address: number, length: number): Uint8Array {
    // `usize` comes back as a signed i32: an address past 2 GiB reads negative (>>> 0 mends it).
    return new Uint8Array(this.#memory().buffer, address >>> 0, length);
  }

  /**
   * The view a backend write gets. Every backend of one hub write, and every caught-up reader of
   * one drain, is handed the same bytes: they share one view instead of one allocation each.
   */
  #backendView(address: number, length: number): Uint8Array {
    const last = this.#lastView;
    // A grow detaches the old view (its length reads 0), so a stale one never matches.
    if (address === this.#lastAddress && length === last.length && length !== 0) return last;
    const view = this.view(address, length);
    this.#lastView = view;
    this.#lastAddress = address;
    return view;
  }

  /** All of core memory, without asking the (slow) `memory.buffer` getter on every write. */
  #memory(): Uint8Array {
    if (this.#bytes.byteLength === 0) this.#bytes = new Uint8Array(this.#exports.memory.buffer);
    return this.#bytes;
  }

  /** Staging buffer `slot`, at least `len` bytes; asks the core only when it must grow. */
  #scratch(slot: number, len: number): number {
    if (this.#scratchSize[slot] < len || this.#scratchAddress[slot] === 0) {
      this.#scratchAddress[slot] = this.#exports.scratch(slot, len);
      this.#scratchSize[slot] = len;
    }
    return this.#scratchAddress[slot];
  }

  /** Address of `data` in core memory, copying it into staging buffer `slot` unless it is already there. */
  #stage(data: Uint8Array, slot: number): number {
    const memory = this.#memory();
    if (data.buffer === memory.buffer) return data.byteOffset;
    const address = this.#scratch(slot, data.length);
    this.#memory().set(data, address >>> 0); // the scratch may have grown memory; see view()
    return address;
  }

  hubNew(initialCapacity: number): number {
    return this.#exports.hubNew(initialCapacity);
  }
  hubFree(hub: number): void {
    this.#exports.hubFree(hub);
  }
  hubAddBackend(hub: number): number {
    return this.#exports.hubAddBackend(hub);
  }
  /** The write-to-all loop: bytes every open backend has taken, or a negative errno. */
  hubWrite(hub: number, data: Uint8Array): number {
    return this.#exports.hubWrite(hub, this.#stage(data, SCRATCH_FRONTEND), data.length);
  }
  /** Books a backend event; true when the frontend should see it. */
  hubEvent(hub: number, index: number, event: number): boolean {
    return this.#exports.hubEvent(hub, index, event) !== 0;
  }
  hubBlockedBackend(hub: number): number {
    return this.#exports.hubBlockedBackend(hub);
  }
  hubBackendCount(hub: number): number {
    return this.#exports.hubBackendCount(hub);
  }
  hubOpenedEvents(hub: number): number {
    return this.#exports.hubOpenedEvents(hub);
  }
  hubMinWritten(hub: number): bigint {
    return BigInt.asUintN(64, this.#exports.hubMinWritten(hub));
  }
  hubBackendWritten(hub: number, index: number): bigint {
    return BigInt.asUintN(64, this.#exports.hubBackendWritten(hub, index));
  }
  hubBackendOpen(hub: number, index: number): boolean {
    return this.#exports.hubBackendOpen(hub, index) !== 0;
  }

  hubBackendDelivered(hub: number, index: number): number {
    return Number(BigInt.asUintN(64, this.#exports.hubBackendDelivered(hub, index)));
  }
  hubBackendStalls(hub: number, index: number): number {
    return this.#exports.hubBackendStalls(hub, index);
  }

  // ---- broadcast ring (core-as/ring.ts) ----

  bcastNew(size: number): number {
    return this.#exports.bcastNew(size);
  }
  bcastFree(ring: number): void {
    this.#exports.bcastFree(ring);
  }
  /** Adds a closed reader; returns its index. `lagLimit` only matters for `drop`. */
  bcastAddBackend(ring: number, policy: RingPolicy, lagLimit: number, replay: number): number {
    return this.#exports.bcastAddBackend(ring, RingPolicy[policy], BigInt(lagLimit), replay);
  }
  bcastRemoveBackend(ring: number, index: number): void {
    this.#exports.bcastRemoveBackend(ring, index);
  }
  bcastSetOpen(ring: number, index: number, open: boolean): void {
    this.#exports.bcastSetOpen(ring, index, open ? 1 : 0);
  }
  bcastUnblock(ring: number, index: number): void {
    this.#exports.bcastUnblock(ring, index);
  }
  /** Bytes the writer may write now. */
  bcastWritable(ring: number): number {
    return this.#exports.bcastWritable(ring);
  }
  /** Copies what fits of `data` into the ring; returns that count. */
  bcastWrite(ring: number, data: Uint8Array): number {
    return this.#exports.bcastWrite(ring, this.#stage(data, SCRATCH_FRONTEND), data.length);
  }
  /**
   * The ring's writer with a host-side fast path: small writes are copied straight into the
   * ring and booked together. Its `settle()` must run before any other call on the ring.
   */
  bcastWriter(ring: number): BcastWriter {
    return new BcastWriter(this, ring);
  }
  /** Contiguous bytes the writer may copy to `bcastHeadAddress` now. */
  bcastReserve(ring: number): number {
    return this.#exports.bcastReserve(ring);
  }
  bcastHeadAddress(ring: number): number {
    return this.#exports.bcastHeadAddress(ring);
  }
  /** Books `len` bytes copied to the head (at most what `bcastReserve` gave). */
  bcastCommit(ring: number, len: number): void {
    this.#exports.bcastCommit(ring, len);
  }
  /** Serves one reader: 0 caught up, 1 blocked, or a negative errno. */
  bcastDrainBackend(ring: number, index: number): number {
    return this.#exports.bcastDrainBackend(ring, index);
  }
  /** Serves every reader; returns how many refused during this call. */
  bcastDrain(ring: number): number {
    return this.#exports.bcastDrain(ring);
  }
  bcastHead(ring: number): number {
    return Number(BigInt.asUintN(64, this.#exports.bcastHead(ring)));
  }
  bcastCursor(ring: number, index: number): number {
    return Number(BigInt.asUintN(64, this.#exports.bcastCursor(ring, index)));
  }
  bcastDelivered(ring: number, index: number): number {
    return Number(BigInt.asUintN(64, this.#exports.bcastDelivered(ring, index)));
  }
  bcastDropped(ring: number, index: number): number {
    return Number(BigInt.asUintN(64, this.#exports.bcastDropped(ring, index)));
  }
  /** Bytes reader `index` skipped to start at a safe boundary when it joined mid-sequence. */
  bcastJoinSkipped(ring: number, index: number): number {
    return Number(BigInt.asUintN(64, this.#exports.bcastJoinSkipped(ring, index)));
  }
  bcastStalls(ring: number, index: number): number {
    return this.#exports.bcastStalls(ring, index);
  }
  bcastBlocked(ring: number, index: number): boolean {
    return this.#exports.bcastBlocked(ring, index) !== 0;
  }

  ringbufNew(size: number): number {
    return this.#exports.ringbufNew(size);
  }
  ringbufFree(ring: number): void {
    this.#exports.ringbufFree(ring);
  }
  ringbufWrite(ring: number, data: Uint8Array): number {
    return this.#exports.ringbufWrite(ring, this.#stage(data, SCRATCH_OTHER), data.length);
  }
  ringbufCount(ring: number): number {
    return this.#exports.ringbufCount(ring);
  }
  /** Removes and returns up to `size` of the oldest bytes. */
  ringbufRead(ring: number, size: number): Uint8Array {
    const wanted = Math.min(size, this.ringbufCount(ring));
    const out = this.#scratch(SCRATCH_OTHER, wanted);
    const count = this.#exports.ringbufRead(ring, out, wanted);
    return this.view(out, count).slice();
  }
}

const NO_WINDOW = new Uint8Array(0);

/**
 * Writes into one broadcast ring as `Core.bcastWrite` does (same results, byte for byte), but
 * a write that fits the free run at the head is only a copy into core memory: the bytes are
 * booked in one call when the window runs out or at `settle()`. Readers see nothing until
 * then, which costs nothing here: a ring's readers are served by a drain, and the drain's
 * owner settles first.
 *
 * @example Many small writes, one call into the core
 * ```ts
 * const core = await Core.load();
 * const ring = core.bcastNew(1 << 16);
 * const lines = ["one\n", "two\n"].map((line) => new TextEncoder().encode(line));
 * const writer = core.bcastWriter(ring);
 * for (const line of lines) writer.write(line);
 * writer.settle(); // now bcastDrain(ring) serves them
 * ```
 */
export class BcastWriter {
  /** Free ring bytes at the head, seen from the host; empty when closed (or detached by a grow). */
  #window: Uint8Array = NO_WINDOW;
  /** Bytes of the window filled so far, not yet booked. */
  #filled = 0;

  constructor(
    readonly core: Core,
    readonly ring: number,
  ) {}

  /** Bytes taken (all of `data` unless the ring is short of room; 0 when full). */
  write(data: Uint8Array): number {
    const window = this.#window;
    const at = this.#filled;
    const length = data.length;
    if (length !== 0 && at + length <= window.length) {
      window.set(data, at);
      this.#filled = at + length;
      return length;
    }
    return this.#writeSlow(data);
  }

  /**
   * Copies `chunks` in order as successive `write`s would, in one pass that keeps the window
   * across them: bytes taken, a prefix of their concatenation (it stops at the first chunk the
   * ring is short of room for).
   */
  writev(chunks: readonly Uint8Array[]): number {
    let total = 0;
    for (let i = 0; i < chunks.length; i++) {
      const data = chunks[i];
      const length = data.length;
      if (length === 0) continue;
      const at = this.#filled;
      if (at + length <= this.#window.length) {
        this.#window.set(data, at);
        this.#filled = at + length;
        total += length;
        continue;
      }
      const taken = this.#writeSlow(data);
      total += taken;
      if (taken < length) break;
    }
    return total;
  }

  #writeSlow(data: Uint8Array): number {
    this.settle();
    const core = this.core;
    const room = core.bcastReserve(this.ring);
    if (room >= data.length && room > 0) {
      const window = core.view(core.bcastHeadAddress(this.ring), room);
      window.set(data);
      this.#window = window;
      this.#filled = data.length;
      return data.length;
    }
    // Wraps around the ring's end, or there is not room for all of it.
    return core.bcastWrite(this.ring, data);
  }

  /** Books what the window holds and closes it; call before anything else touches the ring. */
  settle(): void {
    if (this.#filled > 0) this.core.bcastCommit(this.ring, this.#filled);
    this.#filled = 0;
    this.#window = NO_WINDOW;
  }
}
