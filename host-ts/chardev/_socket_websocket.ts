// The WebSocket server side of the `socket` chardev's `websocket=on` (QEMU's
// io/channel-websock.c): the HTTP upgrade, then binary frames both ways. Written over the
// socket's own byte stream rather than a web server, so a websocket socket keeps everything a
// socket has (one client at a time, `access`, `tls-creds`, `fd=`) in every runtime. Pure: no
// I/O; the SHA-1 of the handshake is the runtime's Web Crypto.

/** QEMU reads at most this much of the upgrade request; a longer one is refused (403). */
export const MAX_UPGRADE_REQUEST_BYTES = 4096;
/** The subprotocol QEMU insists on, and answers with. */
export const WEBSOCKET_PROTOCOL = "binary";
const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const KEY_LENGTH = 24;

const OPCODE_CONTINUATION = 0x0;
const OPCODE_BINARY = 0x2;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;

/** An upgrade request read whole: the client's key, or why it is refused and with which answer. */
export type UpgradeRequest =
  | { readonly ok: true; readonly key: string; readonly rest: Uint8Array }
  | { readonly ok: false; readonly reason: string; readonly response: Uint8Array };

/** `Tue, 03 Dec 2026 11:30:00 GMT`, as QEMU dates its answers. */
function httpDate(): string {
  return new Date().toUTCString();
}

/** Cuts a value a client sent to a size fit for an error line. */
function shorten(value: string): string {
  const printable = value.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > 64 ? `${printable.slice(0, 64)}...` : printable;
}

function refusal(status: string, reason: string, extraHeaders = ""): UpgradeRequest {
  const text = `HTTP/1.1 ${status}\r\nServer: QEMU VNC\r\nDate: ${httpDate()}\r\nConnection: close\r\n${extraHeaders}\r\n`;
  return { ok: false, reason, response: new TextEncoder().encode(text) };
}

const badRequest = (reason: string) => refusal("400 Bad Request", reason, "Sec-WebSocket-Version: 13\r\n");

/**
 * Collects a client's HTTP upgrade request and checks it as QEMU does: `GET / HTTP/1.1`, the
 * path exactly `/` (else 404), a `Sec-WebSocket-Protocol` that names `binary`, version 13, a
 * 24-character key, `Host`, `Connection: Upgrade` and `Upgrade: websocket`; at most 4096 bytes
 * (else 403). The reasons are QEMU's texts.
 *
 * @example A request that has not ended yet
 * ```ts
 * const reader = new UpgradeRequestReader();
 * reader.feed(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")); // null: no blank line yet
 * ```
 */
export class UpgradeRequestReader {
  #buffer = new Uint8Array(0);

  /** null while the request is incomplete, then the verdict (with any bytes after it). */
  feed(chunk: Uint8Array): UpgradeRequest | null {
    const joined = new Uint8Array(this.#buffer.length + chunk.length);
    joined.set(this.#buffer);
    joined.set(chunk, this.#buffer.length);
    const end = findHeadEnd(joined);
    if (end < 0 || end + 4 > MAX_UPGRADE_REQUEST_BYTES) {
      if (joined.length < MAX_UPGRADE_REQUEST_BYTES) {
        this.#buffer = joined;
        return null;
      }
      return refusal("403 Request Entity Too Large", "End of headers not found in first 4096 bytes");
    }
    this.#buffer = new Uint8Array(0);
    const head = new TextDecoder("latin1").decode(joined.subarray(0, end));
    const verdict = checkUpgrade(head);
    return verdict.ok ? { ...verdict, rest: joined.slice(end + 4) } : verdict;
  }
}

function findHeadEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
  }
  return -1;
}

function checkUpgrade(head: string): UpgradeRequest {
  const lines = head.split("\r\n");
  const [method, path, version, ...extra] = lines[0].split(" ");
  if (path === undefined) return badRequest("Missing HTTP path delimiter");
  if (method !== "GET") return badRequest(`Unsupported HTTP method ${shorten(method)}`);
  if (version === undefined) return badRequest("Missing HTTP version delimiter");
  if (path !== "/") return refusal("404 Not Found", `Unexpected HTTP path ${shorten(path)}`);
  if (version !== "HTTP/1.1" || extra.length > 0) return badRequest(`Unsupported HTTP version ${shorten([version, ...extra].join(" "))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon < 0) return badRequest("Malformed HTTP header");
    if (headers.size >= 32) return badRequest("Too many HTTP headers");
    const name = line.slice(0, colon).toLowerCase();
    // The first of a repeated header counts, as in QEMU.
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).replace(/^ +/, ""));
  }
  const wanted: [string, string][] = [
    ["sec-websocket-protocol", "protocol"],
    ["sec-websocket-version", "version"],
    ["sec-websocket-key", "key"],
    ["host", "host"],
    ["connection", "connection"],
    ["upgrade", "upgrade"],
  ];
  for (const [name, what] of wanted) {
    if (!headers.has(name)) return badRequest(`Missing websocket ${what} header data`);
  }
  const protocols = headers.get("sec-websocket-protocol")!;
  const clientVersion = headers.get("sec-websocket-version")!;
  const key = headers.get("sec-websocket-key")!;
  const connection = headers.get("connection")!;
  const upgrade = headers.get("upgrade")!;
  // QEMU looks for the word anywhere in the list (g_strrstr), so `binary, base64` passes.
  if (!protocols.includes(WEBSOCKET_PROTOCOL)) return badRequest(`No '${WEBSOCKET_PROTOCOL}' protocol is supported by client '${shorten(protocols)}'`);
  if (clientVersion !== "13") return badRequest(`Version '13' is not supported by client '${shorten(clientVersion)}'`);
  if (key.length !== KEY_LENGTH) return badRequest(`Key length '${key.length}' was not as expected '${KEY_LENGTH}'`);
  if (connection.toLowerCase() !== "upgrade") return badRequest(`No connection upgrade requested '${shorten(connection)}'`);
  if (upgrade.toLowerCase() !== "websocket") return badRequest(`Incorrect upgrade method '${shorten(upgrade)}'`);
  return { ok: true, key, rest: new Uint8Array(0) };
}

/** QEMU's 101 answer to a good upgrade: `Sec-WebSocket-Accept` for `key`, protocol `binary`. */
export async function upgradeResponse(key: string): Promise<Uint8Array> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + WEBSOCKET_GUID));
  const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
  const text = "HTTP/1.1 101 Switching Protocols\r\nServer: QEMU VNC\r\n" +
    `Date: ${httpDate()}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${WEBSOCKET_PROTOCOL}\r\n\r\n`;
  return new TextEncoder().encode(text);
}

/** One unmasked server frame, FIN set, carrying a copy of `payload`. */
function frame(opcode: number, payload: Uint8Array): Uint8Array {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const out = new Uint8Array(headerLength + length);
  out[0] = 0x80 | opcode;
  if (length < 126) {
    out[1] = length;
  } else if (length < 65536) {
    out[1] = 126;
    out[2] = length >>> 8;
    out[3] = length & 0xff;
  } else {
    out[1] = 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(length));
  }
  out.set(payload, headerLength);
  return out;
}

/** A binary frame of `data`, as QEMU frames every write (a copy: `data` may be reused). */
export function binaryFrame(data: Uint8Array): Uint8Array {
  return frame(OPCODE_BINARY, data);
}

/** What one read of frames came to. */
export interface DecodedFrames {
  /** The binary payload, unmasked, in order. */
  readonly data: Uint8Array;
  /** Frames to send back now: a PONG per PING, and the CLOSE answering a CLOSE. */
  readonly replies: Uint8Array[];
  /** The client closed: the connection ends after the replies. */
  readonly closed: boolean;
  /** The client broke the protocol (QEMU's texts); the connection ends. */
  readonly error: string | null;
}

const enum DecodeState {
  Header,
  Payload,
}

/**
 * Reads client frames as QEMU does: binary frames (fragmented or not) carry the data; PING and
 * PONG are control frames (a PING is answered with a PONG, as RFC 6455 asks; the QEMU
 * source we ported from drops it unanswered); CLOSE ends the
 * connection; a text frame, an unmasked frame or a control frame over 125 bytes is an error.
 * Payloads stream through: memory stays bounded by the read, whatever a frame's length.
 */
export class WebSocketFrameDecoder {
  #state = DecodeState.Header;
  #header = new Uint8Array(14);
  #headerLength = 0;
  #opcode = 0;
  /** The opcode of the fragmented message under way, for its continuation frames. */
  #messageOpcode = 0;
  #mask = new Uint8Array(4);
  #maskIndex = 0;
  #remaining = 0;
  /** A control frame's payload, collected (at most 125 bytes) to answer it. */
  #control: number[] = [];
  #headerError: string | null = null;

  /** Reads one chunk of the stream; a frame may end in a later chunk. */
  feed(chunk: Uint8Array): DecodedFrames {
    const data = new Uint8Array(chunk.length);
    let dataLength = 0;
    const replies: Uint8Array[] = [];
    const result = (closed: boolean, error: string | null): DecodedFrames => ({ data: data.subarray(0, dataLength), replies, closed, error });
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === DecodeState.Header) {
        this.#header[this.#headerLength++] = chunk[i++];
        const needed = this.#headerNeeds();
        if (needed === "error") return result(true, this.#headerError!);
        if (this.#headerLength < needed) continue;
        const verdict = this.#startFrame();
        if (verdict !== null) return result(true, verdict);
        if (this.#opcode === OPCODE_CLOSE) {
          replies.push(frame(OPCODE_CLOSE, new Uint8Array(0)));
          return result(true, null);
        }
        if (this.#remaining === 0) this.#endFrame(replies);
        continue;
      }
      const take = Math.min(this.#remaining, chunk.length - i);
      for (let k = 0; k < take; k++) {
        const byte = chunk[i + k] ^ this.#mask[this.#maskIndex];
        this.#maskIndex = (this.#maskIndex + 1) & 3;
        if (this.#opcode === OPCODE_BINARY) data[dataLength++] = byte;
        else this.#control.push(byte);
      }
      i += take;
      this.#remaining -= take;
      if (this.#remaining === 0) this.#endFrame(replies);
    }
    return result(false, null);
  }

  /** Header bytes this frame needs, known from its first two. */
  #headerNeeds(): number | "error" {
    if (this.#headerLength < 2) return 2;
    const length7 = this.#header[1] & 0x7f;
    const masked = (this.#header[1] & 0x80) !== 0;
    if (!masked) {
      this.#headerError = "client websocket frames must be masked";
      return "error";
    }
    return (length7 < 126 ? 2 : length7 === 126 ? 4 : 10) + 4;
  }

  /** Checks a complete header and sets up its payload; returns an error text or null. */
  #startFrame(): string | null {
    const header = this.#header;
    const fin = (header[0] & 0x80) !== 0;
    let opcode = header[0] & 0x0f;
    const length7 = header[1] & 0x7f;
    const control = (opcode & 0x8) !== 0;
    if (opcode === OPCODE_CONTINUATION) opcode = this.#messageOpcode;
    else if (!control) this.#messageOpcode = fin ? 0 : opcode;
    if (opcode !== OPCODE_CLOSE) {
      if (!fin && opcode !== OPCODE_BINARY) return "only binary websocket frames may be fragmented";
      if (opcode !== OPCODE_BINARY && opcode !== OPCODE_PING && opcode !== OPCODE_PONG) {
        return `unsupported opcode: 0x${opcode.toString(16).padStart(2, "0")}; only binary, ping, and pong websocket frames are supported`;
      }
    }
    if (control && length7 >= 126) return "websocket control frame is too large";
    let length = length7;
    let maskAt = 2;
    if (length7 === 126) {
      length = (header[2] << 8) | header[3];
      maskAt = 4;
    } else if (length7 === 127) {
      const view = new DataView(header.buffer, 2, 8);
      // 2^53 bytes is beyond any stream we will see; a larger length is a broken client.
      if (view.getUint32(0) >= 0x200000) return "websocket frame is too large";
      length = view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
      maskAt = 10;
    }
    this.#mask = header.slice(maskAt, maskAt + 4);
    this.#maskIndex = 0;
    this.#opcode = opcode;
    this.#remaining = length;
    this.#headerLength = 0;
    this.#control = [];
    this.#state = length === 0 ? DecodeState.Header : DecodeState.Payload;
    return null;
  }

  /** A frame's payload is complete: answer a PING, then read the next header. */
  #endFrame(replies: Uint8Array[]): void {
    if (this.#opcode === OPCODE_PING) replies.push(frame(OPCODE_PONG, Uint8Array.from(this.#control)));
    this.#control = [];
    this.#state = DecodeState.Header;
  }
}
