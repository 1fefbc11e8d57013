// The WASM ABI of chardev-hub's core: every export the host calls and the one import it
// supplies, with the layout of what they share in linear memory.
//
// Import (module "host"):
//   backendWrite(hub: usize, index: u32, data: usize, len: u32): i32
//     write `len` bytes at `data` to backend `index`; bytes taken or -errno (-11 = EAGAIN).
//     The bytes are only valid during the call: a backend that keeps them must copy.
//
// Linear memory (addresses are u32; all objects come from the TLSF heap):
//
//   hub (HUB_HEADER_SIZE = 32)               backend slot (BACKEND_SLOT_SIZE = 16), x capacity
//   +0  u64 minWritten                       +0  u64 written
//   +8  u32 backendCount                     +8  u32 open (QEMU's be_open)
//   +12 u32 backendCapacity                  +12 u32 reserved
//   +16 u32 openedEvents
//   +20 i32 blockedBackend (-1: none)
//   +24 usize backends -> slot array
//
//   ringbuf (RINGBUF_HEADER_SIZE = 24, then `size` bytes of data)
//   +0  u64 produced   +8 u64 consumed   +16 u32 size (power of two)   +24 data...
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
} from "./hub";
export { ringbufNew, ringbufFree, ringbufWrite, ringbufCount, ringbufRead } from "./ring";

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
