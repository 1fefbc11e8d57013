// The WASM ABI of chardev-hub's core: every export the host calls and the one import it
// supplies, with the layout of what they share in linear memory.
//
// ABI version: abiVersion() returns ABI_VERSION below. Raise it whenever an export, the import,
// or the memory layout below changes in a way the host must know about; host-ts/core.ts holds
// the number it was written for (CORE_ABI_VERSION) and refuses a core.wasm with another one.
//
// Import (module "host"):
//   backendWrite(hub: usize, index: u32, data: usize, len: u32): i32
//     write `len` bytes at `data` to backend `index`; bytes taken or -errno (-11 = EAGAIN).
//     The bytes are only valid during the call: a backend that keeps them must copy.
//
// Linear memory (addresses are u32; all objects come from the TLSF heap):
//
//   hub (HUB_HEADER_SIZE = 32)               backend slot (BACKEND_SLOT_SIZE = 32), x capacity
//   +0  u64 minWritten                       +0  u64 written
//   +8  u32 backendCount                     +8  u32 open (QEMU's be_open)
//   +12 u32 backendCapacity                  +12 u32 stalls (EAGAIN count)
//                                            +16 u64 delivered (bytes it took)
//   +16 u32 openedEvents
//   +20 i32 blockedBackend (-1: none)
//   +24 usize backends -> slot array
//
//   ringbuf (RINGBUF_HEADER_SIZE = 24, then `size` bytes of data)
//   +0  u64 produced   +8 u64 consumed   +16 u32 size (power of two)   +24 data...
//
//   broadcast ring (BC_HEADER_SIZE = 40)     reader slot (BC_SLOT_SIZE = 64), x capacity
//   +0  u64 head (bytes ever written)        +0  u64 cursor (next position it gets)
//   +8  u64 tail (cached; oldest still       +8  u64 delivered
//           needed by a blocking reader)     +16 u64 dropped (sum of its gaps)
//   +16 u32 size (power of two)              +24 u64 lagLimit (drop readers)
//   +20 u32 slotCount                        +32 u32 flags (1 attached, 2 open, 4 blocked)
//   +24 u32 capacity                         +36 u32 policy (0 block, 1 drop, 2 evict)
//   +28 u32 blockingReaders                  +40 u32 stalls
//   +32 usize slots   +36 usize data         +44 u32 replay (history on open)
//                                            +48 u32 joinState (parser state while it seeks
//                                                a safe start; 0: not seeking)
//                                            +52 u32 joinScanned (bytes of this seek)
//                                            +56 u64 joinSkipped (bytes skipped at starts)
//
//   The writer's window: bcastReserve(ring) -> contiguous bytes free at the head;
//   bcastHeadAddress(ring) -> where they start; the host copies writes there and books them
//   with bcastCommit(ring, len) before any other call on that ring (see ring.ts).
//
//   The ring's readers are written through the same `backendWrite` import, with the ring's
//   address as `hub`; a reader that skips ahead is reported through
//   backendGap(hub: usize, index: u32, bytes: f64).
//
//   scratch: two host-owned staging buffers (slot 0: frontend writes, slot 1: everything
//   else), grown on demand; any grow may move them, so the host re-asks after each call.

export {
  hubNew,
  hubFree,
  hubAddBackend,
  hubWrite,
  hubEvent,
  hubBlockedBackend,
  hubBackendCount,
  hubOpenedEvents,
  hubMinWritten,
  hubBackendWritten,
  hubBackendOpen,
  hubBackendDelivered,
  hubBackendStalls,
} from "./hub";
export { ringbufNew, ringbufFree, ringbufWrite, ringbufCount, ringbufRead } from "./ring";
export {
  bcastNew,
  bcastFree,
  bcastAddBackend,
  bcastRemoveBackend,
  bcastSetOpen,
  bcastUnblock,
  bcastWritable,
  bcastWrite,
  bcastReserve,
  bcastHeadAddress,
  bcastCommit,
  bcastDrainBackend,
  bcastDrain,
  bcastSafeBoundary,
  bcastHead,
  bcastTail,
  bcastCursor,
  bcastDelivered,
  bcastDropped,
  bcastStalls,
  bcastJoinSkipped,
  bcastBlocked,
} from "./ring";

/** The ABI this core implements (see the header); host-ts/core.ts CORE_ABI_VERSION must match. */
const ABI_VERSION: u32 = 1;

/** The ABI version of this core.wasm; the host checks it right after instantiation. */
export function abiVersion(): u32 {
  return ABI_VERSION;
}

const SCRATCH_SLOTS: i32 = 2;
const scratchPointers = new StaticArray<usize>(SCRATCH_SLOTS);
const scratchSizes = new StaticArray<usize>(SCRATCH_SLOTS);

/** Address of staging buffer `slotIndex` holding at least `len` bytes. */
export function scratch(slotIndex: i32, len: usize): usize {
  if (unchecked(scratchSizes[slotIndex]) < len) {
    const size = max<usize>(len, 4096);
    const old = unchecked(scratchPointers[slotIndex]);
    unchecked((scratchPointers[slotIndex] = old == 0 ? heap.alloc(size) : heap.realloc(old, size)));
    unchecked((scratchSizes[slotIndex] = size));
  }
  return unchecked(scratchPointers[slotIndex]);
}
