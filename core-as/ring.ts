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
const RD_JOIN_STATE: usize = 48; // u32: terminal parser state while it seeks a safe start (0: not seeking)
const RD_JOIN_SCANNED: usize = 52; // u32: bytes skipped by the current seek
const RD_JOIN_SKIPPED: usize = 56; // u64: bytes skipped at its starts, all told
export const BC_SLOT_SIZE: usize = 64;

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

// A reader that opens at the head joins a stream in motion: the last bytes written may be the
// first half of a UTF-8 character or of an escape sequence, whose rest would reach it alone. It
// seeks the next safe start instead: a tiny terminal parser (UTF-8 lengths; ESC, CSI, the string
// sequences OSC/DCS/SOS/PM/APC ended by BEL or ST; CAN/SUB cancel) is run over the bytes just
// before the head to learn the state there, then over the new bytes until it is back in the
// ground state; those bytes are skipped (not a gap: the reader never had them).

/** Bytes before the head read at a join to learn the parser state there. */
const JOIN_LOOKBACK: u64 = 1024;
/** A seek gives up on an escape sequence after this many bytes (an unterminated string) and
 * starts at the next byte that does not continue a UTF-8 character. */
const JOIN_SEEK_LIMIT: u32 = 4096;

const TS_GROUND: u32 = 0;
const TS_ESCAPE: u32 = 1;
const TS_INTERMEDIATE: u32 = 2;
const TS_CSI: u32 = 3;
const TS_STRING: u32 = 4;
const TS_STRING_ESC: u32 = 5;

/**
 * One byte through the terminal parser. `state` is the escape state in the low byte and the
 * UTF-8 continuation bytes still expected above it; 0 means "a reader may start here".
 */
export function terminalStep(state: u32, byte: u32): u32 {
  let escape = state & 0xff;
  const pending = state >> 8;
  if (pending > 0) {
    if ((byte & 0xc0) == 0x80) return escape | ((pending - 1) << 8);
    // A broken character ends where it breaks; this byte starts afresh.
  }
  if (byte == 0x18 || byte == 0x1a) return TS_GROUND; // CAN, SUB cancel any sequence
  if (byte == <u32>ESC) return escape == TS_STRING ? TS_STRING_ESC : TS_ESCAPE;
  if (escape == TS_STRING_ESC) {
    if (byte == 0x5c) return TS_GROUND; // ESC \ (ST) ends the string
    escape = TS_ESCAPE; // any other byte after ESC: a new escape sequence
  }
  if (escape == TS_STRING) return byte == 0x07 ? TS_GROUND : TS_STRING; // BEL ends an OSC too
  if (escape != TS_GROUND && byte < 0x20) return escape; // C0 controls act inside a sequence
  if (escape == TS_ESCAPE) {
    if (byte == 0x5b) return TS_CSI; // [
    if (byte == 0x5d || byte == 0x50 || byte == 0x58 || byte == 0x5e || byte == 0x5f) return TS_STRING; // ] P X ^ _
    if (byte >= 0x20 && byte <= 0x2f) return TS_INTERMEDIATE;
    if (byte <= 0x7e) return TS_GROUND;
    if (byte == 0x7f) return escape;
  } else if (escape == TS_INTERMEDIATE) {
    if (byte <= 0x2f) return escape;
    if (byte <= 0x7e) return TS_GROUND;
    if (byte == 0x7f) return escape;
  } else if (escape == TS_CSI) {
    if (byte <= 0x3f) return escape;
    if (byte <= 0x7e) return TS_GROUND;
    if (byte == 0x7f) return escape;
  }
  // Ground, or a sequence broken by a byte of 0x80 and up: read it as text.
  if (byte >= 0xc2 && byte <= 0xdf) return 1 << 8;
  if (byte >= 0xe0 && byte <= 0xef) return 2 << 8;
  if (byte >= 0xf0 && byte <= 0xf4) return 3 << 8;
  return TS_GROUND;
}

/** The parser state at the head, read from up to JOIN_LOOKBACK bytes before it (from a line
 * start or an ESC in them when there is one, where the parser is in a known state). */
function stateAtHead(ring: usize): u32 {
  const head = load<u64>(ring + BC_HEAD);
  const first = oldest(ring);
  const window = head - first > JOIN_LOOKBACK ? head - JOIN_LOOKBACK : first;
  let from = bcastSafeBoundary(ring, window, head);
  if (from == head) from = window;
  let state: u32 = TS_GROUND;
  for (let q = from; q < head; q++) state = terminalStep(state, <u32>byteAt(ring, q));
  return state;
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
    const start = bcastSafeBoundary(ring, head - replay, head);
    store<u64>(slot + RD_CURSOR, start);
    // No history to start from: start at the head unless it is inside a sequence.
    store<u32>(slot + RD_JOIN_STATE, start == head && head != 0 ? stateAtHead(ring) : 0);
    store<u32>(slot + RD_JOIN_SCANNED, 0);
    setFlags(ring, index, (flags | FLAG_OPEN) & ~FLAG_BLOCKED);
    // Replay may move the cursor behind the cached tail: the writer must not overwrite it.
    recomputeTail(ring);
  } else {
    store<u32>(slot + RD_JOIN_STATE, 0);
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
        store<u32>(slot + RD_JOIN_STATE, 0); // a gap lands on a safe boundary: the seek is over
        backendGap(ring, index, <f64>(resume - cursor));
        continue;
      }
    }
    let joinState = load<u32>(slot + RD_JOIN_STATE);
    if (joinState != 0) {
      let scanned = load<u32>(slot + RD_JOIN_SCANNED);
      let q = cursor;
      while (q < head && joinState != 0) {
        joinState = terminalStep(joinState, <u32>byteAt(ring, q));
        q++;
        scanned++;
        // An escape sequence this long is not one a terminal would still be in.
        if (scanned >= JOIN_SEEK_LIMIT && joinState >> 8 == 0) joinState = 0;
      }
      store<u32>(slot + RD_JOIN_STATE, joinState);
      store<u32>(slot + RD_JOIN_SCANNED, scanned);
      store<u64>(slot + RD_CURSOR, q);
      store<u64>(slot + RD_JOIN_SKIPPED, load<u64>(slot + RD_JOIN_SKIPPED) + (q - cursor));
      continue;
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
/** Bytes reader `index` skipped to start at a safe boundary when it joined (all its joins). */
export function bcastJoinSkipped(ring: usize, index: u32): u64 {
  return load<u64>(reader(ring, index) + RD_JOIN_SKIPPED);
}
export function bcastStalls(ring: usize, index: u32): u32 {
  return load<u32>(reader(ring, index) + RD_STALLS);
}
export function bcastBlocked(ring: usize, index: u32): u32 {
  return (load<u32>(reader(ring, index) + RD_FLAGS) & FLAG_BLOCKED) != 0 ? 1 : 0;
}
