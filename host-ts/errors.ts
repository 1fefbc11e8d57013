// Configuration errors. The data path never throws (it returns -errno); configuring does,
// with a stable `code` (listed in docs/errors.md) and QEMU's message verbatim where QEMU has one.

/** Stable error codes; docs/errors.md says when each is thrown. */
export type ChardevErrorCode =
  | "INVALID_PARAMETER"
  | "INVALID_VALUE"
  | "MISSING_PARAMETER"
  | "UNKNOWN_BACKEND"
  | "DUPLICATE_ID"
  | "NOT_FOUND"
  | "BUSY"
  | "IN_USE"
  | "HUB_NO_CHARDEVS"
  | "HUB_STACKING"
  | "HUB_TOO_MANY"
  | "HUB_CYCLE"
  | "NOT_RINGBUF"
  | "OPEN_FAILED"
  | "UNSUPPORTED";

/**
 * Longest error message: a backstop for a message that quotes input without cutting it
 * (sites cut input to 256 characters with quoteInput of limits.ts; this catches the rest).
 */
export const MAX_ERROR_MESSAGE = 4096;

/**
 * A chardev could not be configured, found or removed.
 *
 * @example Catch QEMU's message
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * try { await reg.remove("nope"); } catch (e) { if (e instanceof ChardevError) console.log(e.code, e.message); }
 * // NOT_FOUND Chardev 'nope' not found
 * ```
 */
export class ChardevError extends Error {
  override name = "ChardevError";
  constructor(
    readonly code: ChardevErrorCode,
    message: string,
  ) {
    super(message.length <= MAX_ERROR_MESSAGE ? message : `${message.slice(0, MAX_ERROR_MESSAGE)}...`);
  }
}
