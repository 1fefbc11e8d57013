// The one fake frontend every test uses (QEMU test-char.c's FeHandler): records what it reads
// and the events it sees.

import { ChrEvent, type FrontendHandlers } from "../host-ts/mod.ts";

export class FeHandler implements FrontendHandlers {
  readBuf = new Uint8Array(0);
  readCount = 0;
  events: ChrEvent[] = [];
  isOpen = false;
  /** Its buffer size; QEMU's FeHandler takes up to 128 bytes until read out. */
  room = 128;

  canRead(): number {
    return Math.max(0, this.room - this.readCount);
  }
  read(data: Uint8Array): void {
    const joined = new Uint8Array(this.readBuf.length + data.length);
    joined.set(this.readBuf);
    joined.set(data, this.readBuf.length);
    this.readBuf = joined;
    this.readCount += data.length;
  }
  event(event: ChrEvent): void {
    this.events.push(event);
    if (event === ChrEvent.OPENED) this.isOpen = true;
    if (event === ChrEvent.CLOSED) this.isOpen = false;
  }
  /** What was read as text, and forget it. */
  take(): string {
    const text = new TextDecoder().decode(this.readBuf);
    this.readBuf = new Uint8Array(0);
    this.readCount = 0;
    return text;
  }
}

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** The ChardevError thrown by `fn` (sync or async), or a failure. */
export async function errorOf(fn: () => unknown): Promise<{ code: string; message: string }> {
  try {
    await fn();
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error("expected an error, none was thrown");
}
