// The hub's books: one frontend, N backends, QEMU 10.0's write-to-all accounting.
//
// A hub lives in linear memory (layout in index.ts). The host owns every backend's I/O;
// this file only decides whom to write, with which bytes, and keeps the counters that make a
// retried write skip the backends that already took it.

/** QEMU's QEMUChrEvent numbering (include/chardev/char.h). */
export const EVENT_BREAK: u32 = 0;
export const EVENT_OPENED: u32 = 1;
export const EVENT_MUX_IN: u32 = 2;
export const EVENT_MUX_OUT: u32 = 3;
export const EVENT_CLOSED: u32 = 4;

/** Linux errno for "would block"; the host returns `-EAGAIN` from a backend write. */
export const EAGAIN: i32 = 11;

// Hub header offsets.
const MIN_WRITTEN: usize = 0; // u64: bytes every open backend has taken
const BACKEND_COUNT: usize = 8; // u32
const BACKEND_CAPACITY: usize = 12; // u32: slots allocated
const OPENED_EVENTS: usize = 16; // u32: OPENED minus CLOSED seen, never below zero
const BLOCKED_BACKEND: usize = 20; // i32: index that last returned EAGAIN, -1 if none
const BACKENDS: usize = 24; // usize: pointer to the slot array
export const HUB_HEADER_SIZE: usize = 32;

// Backend slot offsets.
const WRITTEN: usize = 0; // u64: bytes of the frontend stream this backend took
const OPEN: usize = 8; // u32: 1 while the backend is open (QEMU's be_open)
const STALLS: usize = 12; // u32: writes it refused with EAGAIN
const DELIVERED: usize = 16; // u64: bytes it actually took (catch-up skips are not counted)
export const BACKEND_SLOT_SIZE: usize = 32;

/**
 * Writes `len` bytes at `data` to backend `index` of `hub`: returns the bytes taken, or a
 * negative errno (`-EAGAIN` when it would block). Provided by the host.
 */
@external("host", "backendWrite")
declare function backendWrite(hub: usize, index: u32, data: usize, len: u32): i32;

@inline function slot(hub: usize, index: u32): usize {
  return load<usize>(hub + BACKENDS) + <usize>index * BACKEND_SLOT_SIZE;
}

/** Allocates an empty hub; returns its address, which is also its identity for the host. */
export function hubNew(initialCapacity: u32): usize {
  const capacity = max<u32>(initialCapacity, 4);
  const hub = heap.alloc(HUB_HEADER_SIZE);
  memory.fill(hub, 0, HUB_HEADER_SIZE);
  const backends = heap.alloc(<usize>capacity * BACKEND_SLOT_SIZE);
  memory.fill(backends, 0, <usize>capacity * BACKEND_SLOT_SIZE);
  store<u32>(hub + BACKEND_CAPACITY, capacity);
  store<i32>(hub + BLOCKED_BACKEND, -1);
  store<usize>(hub + BACKENDS, backends);
  return hub;
}

export function hubFree(hub: usize): void {
  heap.free(load<usize>(hub + BACKENDS));
  heap.free(hub);
}

/**
 * Appends a closed backend and returns its index. A backend joins already caught up: it
 * owes nothing of what was written before it existed.
 */
export function hubAddBackend(hub: usize): u32 {
  const index = load<u32>(hub + BACKEND_COUNT);
  let capacity = load<u32>(hub + BACKEND_CAPACITY);
  if (index == capacity) {
    capacity *= 2;
    const grown = heap.realloc(load<usize>(hub + BACKENDS), <usize>capacity * BACKEND_SLOT_SIZE);
    store<usize>(hub + BACKENDS, grown);
    store<u32>(hub + BACKEND_CAPACITY, capacity);
  }
  const s = slot(hub, index);
  memory.fill(s, 0, BACKEND_SLOT_SIZE);
  store<u64>(s + WRITTEN, load<u64>(hub + MIN_WRITTEN));
  store<u32>(hub + BACKEND_COUNT, index + 1);
  return index;
}

/**
 * The write-to-all loop of QEMU 10.0. Backends that already took more than the common
 * minimum in an earlier, partly failed call are skipped, so a retry never duplicates bytes;
 * the return value is what every open backend has now taken, and the caller retries the
 * rest. A negative errno from any backend ends the call at once.
 */
export function hubWrite(hub: usize, data: usize, len: i32): i32 {
  let accepted = len;
  // A fresh write invalidates the old blocked index: only this call's EAGAIN counts.
  store<i32>(hub + BLOCKED_BACKEND, -1);
  // Reload count and slots every round: the host may add a backend from inside a write.
  for (let i: u32 = 0; i < load<u32>(hub + BACKEND_COUNT); i++) {
    if (load<u32>(slot(hub, i) + OPEN) == 0) continue;
    const ahead = load<u64>(slot(hub, i) + WRITTEN) - load<u64>(hub + MIN_WRITTEN);
    if (ahead != 0) {
      if (ahead < <u64>accepted) accepted = <i32>ahead;
      continue;
    }
    const result = backendWrite(hub, i, data, <u32>len);
    if (result < 0) {
      if (result == -EAGAIN) {
        store<i32>(hub + BLOCKED_BACKEND, <i32>i);
        store<u32>(slot(hub, i) + STALLS, load<u32>(slot(hub, i) + STALLS) + 1);
      }
      return result;
    }
    // The host took this backend out from inside its write (a hard error, outside qemuCompat):
    // like a backend closed before the call, it limits nothing and is owed nothing.
    if (load<u32>(slot(hub, i) + OPEN) == 0) continue;
    const s = slot(hub, i);
    store<u64>(s + WRITTEN, load<u64>(s + WRITTEN) + <u64>result);
    store<u64>(s + DELIVERED, load<u64>(s + DELIVERED) + <u64>result);
    if (result < accepted) accepted = result;
  }
  store<u64>(hub + MIN_WRITTEN, load<u64>(hub + MIN_WRITTEN) + <u64>accepted);
  return accepted;
}

/**
 * Books an event from backend `index`; returns 1 when the frontend should see it. Only the
 * first OPENED and the last CLOSED pass ("the last one turns off the light"); a reopened
 * backend catches up, skipping what was written while it was away.
 */
export function hubEvent(hub: usize, index: u32, event: u32): u32 {
  const s = slot(hub, index);
  if (event == EVENT_OPENED) {
    store<u32>(s + OPEN, 1);
    store<u64>(s + WRITTEN, load<u64>(hub + MIN_WRITTEN));
    const opened = load<u32>(hub + OPENED_EVENTS);
    store<u32>(hub + OPENED_EVENTS, opened + 1);
    return opened == 0 ? 1 : 0;
  }
  if (event == EVENT_CLOSED) {
    store<u32>(s + OPEN, 0);
    const opened = load<u32>(hub + OPENED_EVENTS);
    if (opened == 0) return 0;
    store<u32>(hub + OPENED_EVENTS, opened - 1);
    return opened == 1 ? 1 : 0;
  }
  return 1;
}

/** Index of the backend whose EAGAIN ended the last write, or -1: what a watch waits on. */
export function hubBlockedBackend(hub: usize): i32 {
  return load<i32>(hub + BLOCKED_BACKEND);
}

export function hubBackendCount(hub: usize): u32 {
  return load<u32>(hub + BACKEND_COUNT);
}

export function hubOpenedEvents(hub: usize): u32 {
  return load<u32>(hub + OPENED_EVENTS);
}

export function hubMinWritten(hub: usize): u64 {
  return load<u64>(hub + MIN_WRITTEN);
}

export function hubBackendWritten(hub: usize, index: u32): u64 {
  return load<u64>(slot(hub, index) + WRITTEN);
}

export function hubBackendDelivered(hub: usize, index: u32): u64 {
  return load<u64>(slot(hub, index) + DELIVERED);
}

export function hubBackendStalls(hub: usize, index: u32): u32 {
  return load<u32>(slot(hub, index) + STALLS);
}

export function hubBackendOpen(hub: usize, index: u32): u32 {
  return load<u32>(slot(hub, index) + OPEN);
}
