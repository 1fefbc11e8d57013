// QEMU's `ringbuf` storage: a power-of-two byte ring that overwrites its oldest bytes.
// Positions are u64 and never wrap, so `produced - consumed` is always the fill level.

const PRODUCED: usize = 0; // u64: bytes ever written
const CONSUMED: usize = 8; // u64: bytes ever read or overwritten
const SIZE: usize = 16; // u32: capacity, a power of two
export const RINGBUF_HEADER_SIZE: usize = 24;

@inline function bytes(ring: usize): usize {
  return ring + RINGBUF_HEADER_SIZE;
}

/** Allocates a ring of `size` bytes (the host has checked it is a power of two). */
export function ringbufNew(size: u32): usize {
  const ring = heap.alloc(RINGBUF_HEADER_SIZE + <usize>size);
  store<u64>(ring + PRODUCED, 0);
  store<u64>(ring + CONSUMED, 0);
  store<u32>(ring + SIZE, size);
  return ring;
}

export function ringbufFree(ring: usize): void {
  heap.free(ring);
}

/** Appends `len` bytes, dropping the oldest when full; always accepts all of them, as QEMU. */
export function ringbufWrite(ring: usize, data: usize, len: u32): u32 {
  const size = load<u32>(ring + SIZE);
  const mask = <u64>(size - 1);
  let produced = load<u64>(ring + PRODUCED);
  // Only the last `size` bytes can survive; copying the rest would be overwritten anyway.
  let skip: u32 = len > size ? len - size : 0;
  produced += <u64>skip;
  let left = len - skip;
  let from = data + <usize>skip;
  while (left > 0) {
    const at = <u32>(produced & mask);
    const run = min<u32>(left, size - at);
    memory.copy(bytes(ring) + <usize>at, from, <usize>run);
    produced += <u64>run;
    from += <usize>run;
    left -= run;
  }
  store<u64>(ring + PRODUCED, produced);
  if (produced - load<u64>(ring + CONSUMED) > <u64>size) {
    store<u64>(ring + CONSUMED, produced - <u64>size);
  }
  return len;
}

/** Bytes waiting to be read. */
export function ringbufCount(ring: usize): u32 {
  return <u32>(load<u64>(ring + PRODUCED) - load<u64>(ring + CONSUMED));
}

/** Moves up to `size` of the oldest bytes to `out`; returns how many. */
export function ringbufRead(ring: usize, out: usize, size: u32): u32 {
  const capacity = load<u32>(ring + SIZE);
  const mask = <u64>(capacity - 1);
  let consumed = load<u64>(ring + CONSUMED);
  const count = min<u32>(size, <u32>(load<u64>(ring + PRODUCED) - consumed));
  let left = count;
  let to = out;
  while (left > 0) {
    const at = <u32>(consumed & mask);
    const run = min<u32>(left, capacity - at);
    memory.copy(to, bytes(ring) + <usize>at, <usize>run);
    consumed += <u64>run;
    to += <usize>run;
    left -= run;
  }
  store<u64>(ring + CONSUMED, consumed);
  return count;
}

// ---------------------------------------------------------------------------------------------
// The broadcast ring: one writer, N readers with their own u64 cursors. The writer copies once
// into the ring; each backend is drained in contiguous slices straight from ring memory. Space
// is freed when the slowest *blocking* reader passes it; `drop` readers never hold the writer
// back: when they fall too far behind they skip ahead to a safe boundary and are told the gap.

/** Imported from the host: backend `index` of ring hub `hub` missed `bytes` bytes. */
@external("host", "backendGap")
declare function backendGap(hub: usize, index: u32, bytes: f64): void;

@external("host", "backendWrite")
declare function ringBackendWrite(hub: usize, index: u32, data: usize, len: u32): i32;

export const POLICY_BLOCK: u32 = 0;
export const POLICY_DROP: u32 = 1;
/** Blocks like `block`; the host evicts it after it stays stalled too long. */
export const POLICY_EVICT: u32 = 2;

const EAGAIN: i32 = 11;
const ESC: u8 = 0x1b;
const NEWLINE: u8 = 0x0a;

// Broadcast ring header.
const BC_HEAD: usize = 0; // u64: bytes ever accepted from the writer
const BC_TAIL: usize = 8; // u64: oldest byte a blocking reader still needs (cached)
const BC_SIZE: usize = 16; // u32: ring bytes, a power of two
const BC_SLOT_COUNT: usize = 20; // u32: slots in use or freed (high-water mark)
const BC_CAPACITY: usize = 24; // u32: slots allocated
const BC_BLOCKING: usize = 28; // u32: attached, open readers that hold the writer back
const BC_SLOTS: usize = 32; // usize: slot array
const BC_DATA: usize = 36; // usize: ring bytes
export const BC_HEADER_SIZE: usize = 40;

// Reader slot.
const RD_CURSOR: usize = 0; // u64: next stream position this reader gets
const RD_DELIVERED: usize = 8; // u64: bytes it took
const RD_DROPPED: usize = 16; // u64: bytes it skipped (sum of its gaps)
const RD_LAG_LIMIT: usize = 24; // u64: drop readers skip ahead past this lag
const RD_FLAGS: usize = 32; // u32: FLAG_*
const RD_POLICY: usize = 36; // u32: POLICY_*
const RD_STALLS: usize = 40; // u32: times it refused bytes (EAGAIN, short or zero write)
const RD_REPLAY: usize = 44; // u32: bytes of history it gets when it opens
export const BC_SLOT_SIZE: usize = 48;

const FLAG_ATTACHED: u32 = 1;
const FLAG_OPEN: u32 = 2;
const FLAG_BLOCKED: u32 = 4;

@inline function reader(ring: usize, index: u32): usize {
  return load<usize>(ring + BC_SLOTS) + <usize>index * BC_SLOT_SIZE;
}

@inline function holdsWriter(slot: usize): bool {
  const flags = load<u32>(slot + RD_FLAGS);
  return (flags & (FLAG_ATTACHED | FLAG_OPEN)) == (FLAG_ATTACHED | FLAG_OPEN) && load<u32>(slot + RD_POLICY) != POLICY_DROP;
}

@inline function byteAt(ring: usize, position: u64): u8 {
  const mask = <u64>(load<u32>(ring + BC_SIZE) - 1);
  return load<u8>(load<usize>(ring + BC_DATA) + <usize>(position & mask));
}

/** Oldest stream position still held in the ring. */
@inline function oldest(ring: usize): u64 {
  const head = load<u64>(ring + BC_HEAD);
  const size = <u64>load<u32>(ring + BC_SIZE);
  return head > size ? head - size : 0;
}

/** Allocates a broadcast ring of `size` bytes (a power of two) with no readers. */
export function bcastNew(size: u32): usize {
  const ring = heap.alloc(BC_HEADER_SIZE);
  memory.fill(ring, 0, BC_HEADER_SIZE);
  store<u32>(ring + BC_SIZE, size);
  const capacity: u32 = 8;
  const slots = heap.alloc(<usize>capacity * BC_SLOT_SIZE);
  memory.fill(slots, 0, <usize>capacity * BC_SLOT_SIZE);
  store<u32>(ring + BC_CAPACITY, capacity);
  store<usize>(ring + BC_SLOTS, slots);
  store<usize>(ring + BC_DATA, heap.alloc(<usize>size));
  return ring;
}

export function bcastFree(ring: usize): void {
  heap.free(load<usize>(ring + BC_DATA));
  heap.free(load<usize>(ring + BC_SLOTS));
  heap.free(ring);
}

/**
 * First position in [from, to] where a reader can start without landing inside a UTF-8
 * sequence or an ANSI escape sequence: the start of a line or an ESC. `to` (the write head)
 * when there is none, so a skipping reader never starts mid-sequence.
 */
export function bcastSafeBoundary(ring: usize, from: u64, to: u64): u64 {
  if (from == 0) return 0;
  const first = oldest(ring);
  for (let q = from; q < to; q++) {
    if (byteAt(ring, q) == ESC) return q;
    if (q - 1 >= first && byteAt(ring, q - 1) == NEWLINE) return q;
  }
  return to;
}

/** Adds a closed reader (reusing a removed slot) and returns its index. */
export function bcastAddBackend(ring: usize, policy: u32, lagLimit: u64, replay: u32): u32 {
  let index: u32 = 0;
  const count = load<u32>(ring + BC_SLOT_COUNT);
  while (index < count && (load<u32>(reader(ring, index) + RD_FLAGS) & FLAG_ATTACHED) != 0) index++;
  if (index == count) {
    let capacity = load<u32>(ring + BC_CAPACITY);
    if (count == capacity) {
      capacity *= 2;
      store<usize>(ring + BC_SLOTS, heap.realloc(load<usize>(ring + BC_SLOTS), <usize>capacity * BC_SLOT_SIZE));
      store<u32>(ring + BC_CAPACITY, capacity);
    }
    store<u32>(ring + BC_SLOT_COUNT, count + 1);
  }
  const slot = reader(ring, index);
  memory.fill(slot, 0, BC_SLOT_SIZE);
  store<u64>(slot + RD_CURSOR, load<u64>(ring + BC_HEAD));
  store<u64>(slot + RD_LAG_LIMIT, lagLimit);
  store<u32>(slot + RD_POLICY, policy);
  store<u32>(slot + RD_REPLAY, replay);
  store<u32>(slot + RD_FLAGS, FLAG_ATTACHED);
  return index;
}

function setFlags(ring: usize, index: u32, flags: u32): void {
  const slot = reader(ring, index);
  const wasHolding = holdsWriter(slot);
  store<u32>(slot + RD_FLAGS, flags);
  const nowHolding = holdsWriter(slot);
  if (wasHolding != nowHolding) {
    const blocking = load<u32>(ring + BC_BLOCKING);
    store<u32>(ring + BC_BLOCKING, nowHolding ? blocking + 1 : blocking - 1);
  }
}

/** Detaches a reader; its slot is reused by a later add. */
export function bcastRemoveBackend(ring: usize, index: u32): void {
  setFlags(ring, index, 0);
}

/**
 * Marks a reader open or closed. An opening reader starts at the head, or `replay` bytes
 * before it at a safe boundary: it never gets what was written while it was away (QEMU's
 * catch-up), only the history it asked for.
 */
export function bcastSetOpen(ring: usize, index: u32, open: u32): void {
  const slot = reader(ring, index);
  const flags = load<u32>(slot + RD_FLAGS);
  if (open != 0) {
    const head = load<u64>(ring + BC_HEAD);
    const available = head - oldest(ring);
    const replay = min<u64>(<u64>load<u32>(slot + RD_REPLAY), available);
    store<u64>(slot + RD_CURSOR, bcastSafeBoundary(ring, head - replay, head));
    setFlags(ring, index, (flags | FLAG_OPEN) & ~FLAG_BLOCKED);
    // Replay may move the cursor behind the cached tail: the writer must not overwrite it.
    recomputeTail(ring);
  } else {
    setFlags(ring, index, flags & ~(FLAG_OPEN | FLAG_BLOCKED));
  }
}

/** Clears a reader's blocked mark (its watch fired); the next drain tries it again. */
export function bcastUnblock(ring: usize, index: u32): void {
  const slot = reader(ring, index);
  store<u32>(slot + RD_FLAGS, load<u32>(slot + RD_FLAGS) & ~FLAG_BLOCKED);
}

/** Oldest position a blocking reader still needs; the head when none holds the writer. */
function recomputeTail(ring: usize): u64 {
  let tail = load<u64>(ring + BC_HEAD);
  if (load<u32>(ring + BC_BLOCKING) != 0) {
    const count = load<u32>(ring + BC_SLOT_COUNT);
    for (let i: u32 = 0; i < count; i++) {
      const slot = reader(ring, i);
      if (holdsWriter(slot)) tail = min<u64>(tail, load<u64>(slot + RD_CURSOR));
    }
  }
  store<u64>(ring + BC_TAIL, tail);
  return tail;
}

/** Bytes the writer may write now without overwriting what a blocking reader still needs. */
export function bcastWritable(ring: usize): u32 {
  const size = <u64>load<u32>(ring + BC_SIZE);
  return <u32>(size - (load<u64>(ring + BC_HEAD) - recomputeTail(ring)));
}

/**
 * The writer's one copy: takes as much of `data` as fits and returns that count (0 when the
 * slowest blocking reader is a whole ring behind). Readers are served by `bcastDrain`.
 */
export function bcastWrite(ring: usize, data: usize, len: u32): u32 {
  const size = load<u32>(ring + BC_SIZE);
  let head = load<u64>(ring + BC_HEAD);
  // The cached tail only ever lags the true one, so it is safe; look again only when short.
  let room = <u64>size - (head - load<u64>(ring + BC_TAIL));
  if (room < <u64>len) room = <u64>size - (head - recomputeTail(ring));
  const taken = <u32>min<u64>(room, <u64>len);
  const base = load<usize>(ring + BC_DATA);
  let left = taken;
  let from = data;
  while (left > 0) {
    const at = <u32>(head & <u64>(size - 1));
    const run = min<u32>(left, size - at);
    memory.copy(base + <usize>at, from, <usize>run);
    head += <u64>run;
    from += <usize>run;
    left -= run;
  }
  store<u64>(ring + BC_HEAD, head);
  if (load<u32>(ring + BC_BLOCKING) == 0) store<u64>(ring + BC_TAIL, head);
  return taken;
}

// The writer's window: lets the host copy many small writes straight into the ring (at
// `bcastHeadAddress`, up to `bcastReserve` bytes) and book them with one `bcastCommit`, so a
// 64-byte write costs one copy and no call into the core. Nothing else may touch the ring
// between the reserve and the commit: a reader added or reopened meanwhile could need bytes
// the window overwrites.

/** Bytes the writer may write now at the head without wrapping (bcastWrite's room, contiguous). */
export function bcastReserve(ring: usize): u32 {
  const size = load<u32>(ring + BC_SIZE);
  const head = load<u64>(ring + BC_HEAD);
  const room = <u64>size - (head - recomputeTail(ring));
  return <u32>min<u64>(room, <u64>(size - <u32>(head & <u64>(size - 1))));
}

/** Address in linear memory of the next byte the writer writes. */
export function bcastHeadAddress(ring: usize): usize {
  const mask = <u64>(load<u32>(ring + BC_SIZE) - 1);
  return load<usize>(ring + BC_DATA) + <usize>(load<u64>(ring + BC_HEAD) & mask);
}

/** Books `len` bytes the host copied to `bcastHeadAddress` (at most what `bcastReserve` gave). */
export function bcastCommit(ring: usize, len: u32): void {
  const head = load<u64>(ring + BC_HEAD) + <u64>len;
  store<u64>(ring + BC_HEAD, head);
  if (load<u32>(ring + BC_BLOCKING) == 0) store<u64>(ring + BC_TAIL, head);
}

/**
 * Serves reader `index` until it is caught up or refuses: contiguous slices straight from ring
 * memory. A `drop` reader more than its lag limit behind skips to a safe boundary first and
 * the host hears the exact gap. Returns 0 when caught up, 1 when it refused (now blocked), or
 * the negative errno of a failed write.
 */
export function bcastDrainBackend(ring: usize, index: u32): i32 {
  while (true) {
    let slot = reader(ring, index);
    const flags = load<u32>(slot + RD_FLAGS);
    if ((flags & (FLAG_ATTACHED | FLAG_OPEN)) != (FLAG_ATTACHED | FLAG_OPEN) || (flags & FLAG_BLOCKED) != 0) return 0;
    const head = load<u64>(ring + BC_HEAD);
    const cursor = load<u64>(slot + RD_CURSOR);
    if (cursor >= head) return 0;
    const size = load<u32>(ring + BC_SIZE);
    if (load<u32>(slot + RD_POLICY) == POLICY_DROP) {
      const limit = min<u64>(load<u64>(slot + RD_LAG_LIMIT), <u64>size);
      if (head - cursor > limit) {
        const resume = bcastSafeBoundary(ring, head - limit, head);
        store<u64>(slot + RD_CURSOR, resume);
        store<u64>(slot + RD_DROPPED, load<u64>(slot + RD_DROPPED) + (resume - cursor));
        backendGap(ring, index, <f64>(resume - cursor));
        continue;
      }
    }
    const at = <u32>(cursor & <u64>(size - 1));
    const run = <u32>min<u64>(head - cursor, <u64>(size - at));
    const result = ringBackendWrite(ring, index, load<usize>(ring + BC_DATA) + <usize>at, run);
    slot = reader(ring, index); // the host may have added readers (and moved the slots)
    if (result > 0) {
      store<u64>(slot + RD_CURSOR, load<u64>(slot + RD_CURSOR) + <u64>result);
      store<u64>(slot + RD_DELIVERED, load<u64>(slot + RD_DELIVERED) + <u64>result);
    }
    if (result < <i32>run) {
      store<u32>(slot + RD_STALLS, load<u32>(slot + RD_STALLS) + 1);
      store<u32>(slot + RD_FLAGS, load<u32>(slot + RD_FLAGS) | FLAG_BLOCKED);
      return result < 0 && result != -EAGAIN ? result : 1;
    }
  }
}

/** Serves every reader; returns how many refused during this call. Refreshes the cached tail. */
export function bcastDrain(ring: usize): u32 {
  let blocked: u32 = 0;
  for (let i: u32 = 0; i < load<u32>(ring + BC_SLOT_COUNT); i++) {
    if (bcastDrainBackend(ring, i) != 0) blocked++;
  }
  recomputeTail(ring);
  return blocked;
}

export function bcastHead(ring: usize): u64 {
  return load<u64>(ring + BC_HEAD);
}
export function bcastTail(ring: usize): u64 {
  return load<u64>(ring + BC_TAIL);
}
export function bcastCursor(ring: usize, index: u32): u64 {
  return load<u64>(reader(ring, index) + RD_CURSOR);
}
export function bcastDelivered(ring: usize, index: u32): u64 {
  return load<u64>(reader(ring, index) + RD_DELIVERED);
}
export function bcastDropped(ring: usize, index: u32): u64 {
  return load<u64>(reader(ring, index) + RD_DROPPED);
}
export function bcastStalls(ring: usize, index: u32): u32 {
  return load<u32>(reader(ring, index) + RD_STALLS);
}
export function bcastBlocked(ring: usize, index: u32): u32 {
  return (load<u32>(reader(ring, index) + RD_FLAGS) & FLAG_BLOCKED) != 0 ? 1 : 0;
}
