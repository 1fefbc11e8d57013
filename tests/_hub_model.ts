// Pure-TypeScript reference models of the hub's accounting and of the ringbuf, written from
// QEMU 10.0's rules (chardev/char-hub.c, chardev/char-ringbuf.c) rather than from core-as/.
// The property tests in hub_core.property.test.ts require the WASM core to agree with them.
// Counters are bigints so the model can neither wrap nor lose precision.

/** QEMU's QEMUChrEvent numbering. */
export const BREAK = 0;
export const OPENED = 1;
export const MUX_IN = 2;
export const MUX_OUT = 3;
export const CLOSED = 4;

/** The errno values the tests script backends with. */
export const EAGAIN = 11;
export const EIO = 5;

/** Writes `data` to backend `index`: returns the bytes taken, or a negative errno. */
export type ModelBackendWrite = (index: number, data: Uint8Array) => number;

interface ModelBackend {
  /** Bytes of the frontend stream this backend has taken. */
  written: bigint;
  /** QEMU's be_open. */
  open: boolean;
}

/** The hub: one frontend writing to every open backend, QEMU 10.0 style. */
export class HubModel {
  minWritten = 0n;
  openedEvents = 0;
  blockedBackend = -1;
  readonly backends: ModelBackend[] = [];

  /** A new backend starts closed and owes nothing written before it existed. */
  addBackend(): number {
    this.backends.push({ written: this.minWritten, open: false });
    return this.backends.length - 1;
  }

  /**
   * Writes `data` to every open backend that is not already ahead of the common minimum;
   * returns how many bytes every open backend now has, or the first negative errno.
   */
  write(data: Uint8Array, backendWrite: ModelBackendWrite): number {
    let ret = BigInt(data.length);
    this.blockedBackend = -1;
    for (let i = 0; i < this.backends.length; i++) {
      const backend = this.backends[i]!;
      if (!backend.open) continue;
      const ahead = backend.written - this.minWritten;
      if (ahead !== 0n) {
        if (ahead < ret) ret = ahead;
        continue;
      }
      const r = backendWrite(i, data);
      if (r < 0) {
        if (r === -EAGAIN) this.blockedBackend = i;
        return r;
      }
      backend.written += BigInt(r);
      if (BigInt(r) < ret) ret = BigInt(r);
    }
    this.minWritten += ret;
    return Number(ret);
  }

  /** Books event `ev` from backend `index`; true when the frontend should see it. */
  event(index: number, ev: number): boolean {
    const backend = this.backends[index]!;
    switch (ev) {
      case OPENED: {
        backend.open = true;
        backend.written = this.minWritten;
        const wasNone = this.openedEvents === 0;
        this.openedEvents++;
        return wasNone;
      }
      case CLOSED: {
        backend.open = false;
        if (this.openedEvents === 0) return false;
        this.openedEvents--;
        return this.openedEvents === 0;
      }
      default:
        return true;
    }
  }
}

/** QEMU's ringbuf: keeps the newest `size` bytes written, oldest first. */
export class RingbufModel {
  readonly size: number;
  #bytes: number[] = [];

  constructor(size: number) {
    if (size <= 0 || (size & (size - 1)) !== 0) throw new RangeError(`ringbuf size ${size} is not a power of two`);
    this.size = size;
  }

  /** Appends every byte, dropping the oldest beyond `size`; always returns `data.length`. */
  write(data: Uint8Array): number {
    for (const byte of data) {
      this.#bytes.push(byte);
      if (this.#bytes.length > this.size) this.#bytes.shift();
    }
    return data.length;
  }

  /** Removes and returns up to `n` of the oldest bytes. */
  read(n: number): Uint8Array {
    return Uint8Array.from(this.#bytes.splice(0, Math.max(0, n)));
  }

  count(): number {
    return this.#bytes.length;
  }
}
