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
