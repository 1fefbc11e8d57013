/**
 * Chardev events, numbered as QEMU's QEMUChrEvent (and as the WASM core books them).
 *
 * @example React to the first backend opening
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * await reg.add("hub,id=hub0");
 * reg.attach("hub0", { canRead: () => 4096, read() {}, event: (ev: ChrEvent) => { if (ev === ChrEvent.OPENED) console.log("up"); } });
 * ```
 */
export const ChrEvent = {
  BREAK: 0,
  OPENED: 1,
  MUX_IN: 2,
  MUX_OUT: 3,
  CLOSED: 4,
} as const;

export type ChrEvent = (typeof ChrEvent)[keyof typeof ChrEvent];
