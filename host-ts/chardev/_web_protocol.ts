// The wire protocol between the `web` chardev and its page (web/terminal.ts), in the one place
// both sides import, so they cannot drift apart. It imports nothing: the page bundles it.

/** Where the page's WebSocket connects, relative to the page (so a reverse proxy may add a prefix). */
export const SOCKET_PATH = "ws";

/**
 * The subprotocol the page asks for. With it, binary frames are input and text frames are
 * control messages ({@link ControlMessage}). Without it (a plain `ws` client, websocat), every
 * frame, text or binary, is input. Output is always binary frames.
 */
export const TERMINAL_PROTOCOL = "chardev-hub.terminal.v1";

/** A control message from the page: its terminal's size in character cells. */
export interface ResizeMessage {
  type: "resize";
  cols: number;
  rows: number;
}

/** Every control message the page may send (unknown types are ignored, for newer pages). */
export type ControlMessage = ResizeMessage;

/**
 * The server's first text frame to a page: whether this tab may type. A read-only (view)
 * tab's keys and size are ignored by the server; the page says so instead of pretending.
 */
export interface HelloMessage {
  type: "hello";
  readOnly: boolean;
}

/**
 * WebSocket close codes the chardev uses; the close reason says the same in words.
 * 4000-4999 are the range RFC 6455 leaves to applications.
 */
export const WebCloseCode = {
  /** The chardev was removed or the registry closed (RFC 6455's "going away"). */
  GOING_AWAY: 1001,
  /** `max-clients` tabs are connected already (RFC 6455's "try again later"). */
  TRY_AGAIN_LATER: 1013,
  /** The tab fell more than `queue-limit` bytes behind the output and was dropped. */
  TOO_FAR_BEHIND: 4000,
  /** A hub with `policy=evict` detached this chardev for stalling (the reason says how long). */
  EVICTED: 4001,
} as const;

/** Largest terminal dimension a resize may report; larger values are ignored as bogus. */
export const MAX_TERMINAL_CELLS = 65535;
