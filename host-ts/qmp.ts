// QMP, the QEMU Machine Protocol, as the frontend of a chardev: exactly how QEMU runs
// `-qmp unix:PATH,server=on,wait=off` (a socket chardev with the monitor attached as its
// frontend). Anything a chardev carries can carry QMP: a socket, a FIFO pair, a ringbuf
// driven by `backendWrite`, a hub that also logs the conversation.
//
// The wire protocol is QEMU's (monitor/qmp.c, qapi/qmp-dispatch.c, qobject/json-*.c), written
// anew from its observable behaviour: the greeting on OPENED, capabilities negotiation,
// `{"return": ...}` / `{"error": {"class", "desc"}}` with the request's `id` echoed, the JSON
// streamer's framing and error recovery (a lexical error answers once, then input is skipped
// up to the next structural character), QEMU's error texts, and "\r\n" after every message.
// Out-of-band execution is not offered (`capabilities` is empty), as in any QEMU monitor
// without an I/O thread.

import type { Chardev } from "./chardev/_chardev.ts";
import { checkHubBackendOptions, onEveryHubEvent, type HubBackendOptions } from "./chardev/hub.ts";
import { ChardevError } from "./errors.ts";
import { ChrEvent } from "./events.ts";
import type { Frontend } from "./frontend.ts";
import type { ChardevAddArgs, ChardevRegistry, RingbufFormat } from "./registry.ts";
import type { ObjectAddArgs } from "./tls_creds.ts";
import { quoteInput } from "./limits.ts";

// ---- the JSON wire format ----------------------------------------------------------------------

/**
 * QEMU's per-message limits (qobject/json-streamer.c): memory and recursion a client can force.
 * A message's size counts every token's text, structural characters included, as QEMU does.
 */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const MAX_MESSAGE_TOKENS = 2 * 1024 * 1024;
const MAX_NESTING = 1024;

/**
 * Token kinds as stored in a byte: a structural token is its own character (`{` `}` `[` `]` `:`
 * `,`), the others are small numbers. NO_TOKEN is what the parser sees past the last token.
 */
const NO_TOKEN = 0;
const STRING = 1;
const INTEGER = 2;
const FLOAT = 3;
const KEYWORD = 4;
const LCURLY = 0x7b;
const RCURLY = 0x7d;
const LSQUARE = 0x5b;
const RSQUARE = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;

/** Lexer states. The grammar is RFC 8259's plus QEMU's single-quoted strings and `\'`. */
const IN_START = 0;
const IN_DQ_STRING = 1;
const IN_DQ_ESCAPE = 2;
const IN_SQ_STRING = 3;
const IN_SQ_ESCAPE = 4;
const IN_SIGN = 5;
const IN_ZERO = 6;
const IN_DIGITS = 7;
const IN_MANTISSA = 8;
const IN_MANTISSA_DIGITS = 9;
const IN_EXP_E = 10;
const IN_EXP_SIGN = 11;
const IN_EXP_DIGITS = 12;
const IN_KEYWORD = 13;
/** After a lexical error: skip to a promising place to start again. */
const IN_RECOVERY = 14;

const isStructural = (byte: number) =>
  byte === LCURLY || byte === RCURLY || byte === LSQUARE || byte === RSQUARE || byte === COLON || byte === COMMA;
const isDigit = (byte: number) => byte >= 0x30 && byte <= 0x39;
const isWhitespace = (byte: number) => byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
/** Bytes a string may hold as they are: no control characters, and never 0xFE/0xFF (not UTF-8). */
const isStringByte = (byte: number) => byte >= 0x20 && byte <= 0xfd;
/**
 * Where recovery stops: structural characters and line ends are likely message boundaries, and
 * 0xFE/0xFF (never valid UTF-8) let a client force a reset, as QEMU's QMP spec suggests.
 */
const endsRecovery = (byte: number) => (byte < 0x20 && byte !== 0x09) || byte >= 0xfe || isStructural(byte);

/**
 * How much of a refused token a "stray" error quotes. QEMU quotes all of it (up to 64 MiB); we
 * quote it whole up to this size, else its start, "...", and the byte that was refused.
 */
const STRAY_QUOTED_BYTES = 200;

/** What a message's buffers shrink back to when it ends, so one huge message pins nothing. */
const SMALL_TOKEN_CAPACITY = 256;
const SMALL_TEXT_CAPACITY = 4096;

/**
 * One message's tokens, packed: kinds in a byte array, where each token's text ends in a
 * Uint32Array, and every text back to back in one byte buffer (structural tokens have none).
 * About 5 bytes per token plus its text, where one object and one Uint8Array per token cost
 * hundreds; and the arrays are replaced by small ones when the message ends, so a refused
 * message of 2 million tokens leaves nothing behind.
 */
class MessageTokens {
  kinds = new Uint8Array(SMALL_TOKEN_CAPACITY);
  ends = new Uint32Array(SMALL_TOKEN_CAPACITY);
  text = new Uint8Array(SMALL_TEXT_CAPACITY);
  count = 0;
  /** Bytes of `text` in use: the finished tokens' and what is kept of the one being lexed. */
  textLength = 0;

  kind(index: number): number {
    return index < this.count ? this.kinds[index] : NO_TOKEN;
  }

  /** Where token `index`'s text starts in `text` (it ends at `ends[index]`). */
  start(index: number): number {
    return index === 0 ? 0 : this.ends[index - 1];
  }

  /** What is kept of the token being lexed. */
  pendingText(): Uint8Array {
    return this.text.subarray(this.start(this.count), this.textLength);
  }

  pushByte(byte: number): void {
    if (this.textLength === this.text.length) {
      // A message's text never needs more than its limit (plus a stray's quote): no 128 MiB step.
      const grown = new Uint8Array(Math.min(this.text.length * 2, MAX_MESSAGE_BYTES + STRAY_QUOTED_BYTES));
      grown.set(this.text);
      this.text = grown;
    }
    this.text[this.textLength++] = byte;
  }

  /** Ends the token being lexed: its text is what `pushByte` kept since the previous one. */
  pushToken(kind: number): void {
    if (this.count === this.kinds.length) {
      const kinds = new Uint8Array(this.count * 2);
      kinds.set(this.kinds);
      this.kinds = kinds;
      const ends = new Uint32Array(this.count * 2);
      ends.set(this.ends);
      this.ends = ends;
    }
    this.kinds[this.count] = kind;
    this.ends[this.count] = this.textLength;
    this.count++;
  }

  /** Forgets every token; buffers a big message grew are dropped, small ones reused. */
  clear(): void {
    this.count = 0;
    this.textLength = 0;
    if (this.kinds.length > SMALL_TOKEN_CAPACITY) {
      this.kinds = new Uint8Array(SMALL_TOKEN_CAPACITY);
      this.ends = new Uint32Array(SMALL_TOKEN_CAPACITY);
    }
    if (this.text.length > SMALL_TEXT_CAPACITY) this.text = new Uint8Array(SMALL_TEXT_CAPACITY);
  }
}

/** What the streamer hands on: one complete JSON value, or why the input was not one. */
export type QmpInput = { readonly value: unknown } | { readonly error: string };

const lossyUtf8 = new TextDecoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const ascii = (bytes: Uint8Array) => lossyUtf8.decode(bytes);

/** A syntax error found while parsing one message's tokens. */
class ParseFailure {
  constructor(readonly reason: string) {}
}

/** Recursive descent over one message's tokens, with QEMU's error texts (qobject/json-parser.c). */
class TokenParser {
  #next = 0;
  constructor(readonly tokens: MessageTokens) {}

  static parse(tokens: MessageTokens): unknown {
    return new TokenParser(tokens).#value();
  }

  #peek(): number {
    return this.tokens.kind(this.#next);
  }

  #pop(): number {
    const kind = this.tokens.kind(this.#next++);
    if (kind === NO_TOKEN) throw new ParseFailure("premature EOI");
    return kind;
  }

  #value(): unknown {
    const kind = this.#peek();
    switch (kind) {
      case NO_TOKEN:
        throw new ParseFailure("premature EOI");
      case LCURLY:
        return this.#object();
      case LSQUARE:
        return this.#array();
      case STRING:
        return this.#string(this.#next++);
      case INTEGER:
      case FLOAT:
        return Number(this.#ascii(this.#next++));
      case KEYWORD: {
        const word = this.#ascii(this.#next++);
        if (word === "true") return true;
        if (word === "false") return false;
        if (word === "null") return null;
        throw new ParseFailure(`invalid keyword '${word}'`);
      }
      default:
        throw new ParseFailure("expecting value");
    }
  }

  #ascii(index: number): string {
    const { text, ends } = this.tokens;
    const start = this.tokens.start(index);
    return shortAscii(text, start, ends[index]) ?? ascii(text.subarray(start, ends[index]));
  }

  #string(index: number): string {
    const { text, ends } = this.tokens;
    const start = this.tokens.start(index);
    // Most strings of a QMP command are short, plain ASCII: no escape to undo, nothing to check.
    return shortAscii(text, start + 1, ends[index] - 1) ?? decodeString(text.subarray(start, ends[index]));
  }

  #object(): Record<string, unknown> {
    this.#next++; // {
    const object: Record<string, unknown> = {};
    const first = this.#peek();
    if (first === NO_TOKEN) throw new ParseFailure("premature EOI");
    if (first === RCURLY) {
      this.#next++;
      return object;
    }
    this.#pair(object);
    for (let kind = this.#pop(); kind !== RCURLY; kind = this.#pop()) {
      if (kind !== COMMA) throw new ParseFailure("expected separator in dict");
      this.#pair(object);
    }
    return object;
  }

  #pair(object: Record<string, unknown>): void {
    if (this.#peek() === NO_TOKEN) throw new ParseFailure("premature EOI");
    const key = this.#value();
    if (typeof key !== "string") throw new ParseFailure("key is not a string in object");
    if (this.#pop() !== COLON) throw new ParseFailure("missing : in object pair");
    const value = this.#value();
    if (Object.hasOwn(object, key)) throw new ParseFailure("duplicate key");
    // A key named "__proto__" must be data, not the object's prototype; it is the only setter a
    // plain object inherits. (defineProperty for every key would make each object slow.)
    if (key === "__proto__") Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
    else object[key] = value;
  }

  #array(): unknown[] {
    this.#next++; // [
    const array: unknown[] = [];
    const first = this.#peek();
    if (first === NO_TOKEN) throw new ParseFailure("premature EOI");
    if (first === RSQUARE) {
      this.#next++;
      return array;
    }
    array.push(this.#value());
    for (let kind = this.#pop(); kind !== RSQUARE; kind = this.#pop()) {
      if (kind !== COMMA) throw new ParseFailure("expected separator in list");
      array.push(this.#value());
    }
    return array;
  }
}

/** Up to 64 bytes of ASCII other than a backslash, as a string; undefined for anything else. */
function shortAscii(bytes: Uint8Array, start: number, end: number): string | undefined {
  if (end - start > 64) return undefined;
  let text = "";
  for (let i = start; i < end; i++) {
    const byte = bytes[i];
    if (byte >= 0x80 || byte === 0x5c) return undefined;
    text += String.fromCharCode(byte);
  }
  return text;
}

function hex4(text: Uint8Array, at: number, end: number): number {
  if (at + 4 > end) return -1;
  const digits = ascii(text.subarray(at, at + 4));
  return /^[0-9A-Fa-f]{4}$/.test(digits) ? parseInt(digits, 16) : -1;
}

const SIMPLE_ESCAPES: Record<number, number> = {
  0x22: 0x22, 0x27: 0x27, 0x5c: 0x5c, 0x2f: 0x2f, // " ' \ /
  0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, // b f n r t
};

/** Writes a code point as UTF-8 at `at`; returns where the next byte goes. */
function putUtf8(out: Uint8Array, at: number, codePoint: number): number {
  if (codePoint < 0x80) {
    out[at++] = codePoint;
  } else if (codePoint < 0x800) {
    out[at++] = 0xc0 | (codePoint >> 6);
    out[at++] = 0x80 | (codePoint & 0x3f);
  } else if (codePoint < 0x10000) {
    out[at++] = 0xe0 | (codePoint >> 12);
    out[at++] = 0x80 | ((codePoint >> 6) & 0x3f);
    out[at++] = 0x80 | (codePoint & 0x3f);
  } else {
    out[at++] = 0xf0 | (codePoint >> 18);
    out[at++] = 0x80 | ((codePoint >> 12) & 0x3f);
    out[at++] = 0x80 | ((codePoint >> 6) & 0x3f);
    out[at++] = 0x80 | (codePoint & 0x3f);
  }
  return at;
}

function strictString(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new ParseFailure("invalid UTF-8 sequence in string");
  }
}

/** A string token (quotes included) to its value; raw bytes must be UTF-8, escapes valid Unicode. */
function decodeString(text: Uint8Array): string {
  const end = text.length - 1; // the closing quote
  const body = text.subarray(1, end);
  if (!body.includes(0x5c)) return strictString(body);
  // Every escape is longer than the UTF-8 it stands for, so the value fits in the token's size.
  const out = new Uint8Array(end);
  let length = 0;
  for (let i = 1; i < end; i++) {
    const byte = text[i];
    if (byte !== 0x5c) {
      out[length++] = byte;
      continue;
    }
    const escaped = text[i + 1];
    if (escaped in SIMPLE_ESCAPES) {
      out[length++] = SIMPLE_ESCAPES[escaped];
      i++;
      continue;
    }
    if (escaped !== 0x75) throw new ParseFailure("invalid escape sequence in string");
    const begin = i;
    let codePoint = hex4(text, i + 2, end);
    let escapeLength = 6;
    if (codePoint >= 0xd800 && codePoint <= 0xdbff && text[i + 6] === 0x5c && text[i + 7] === 0x75) {
      const low = hex4(text, i + 8, end);
      if (low >= 0xdc00 && low <= 0xdfff) {
        codePoint = 0x10000 + ((codePoint - 0xd800) << 10) + (low - 0xdc00);
        escapeLength = 12;
      } else {
        codePoint = -1;
      }
    }
    if (codePoint < 0 || (codePoint >= 0xd800 && codePoint <= 0xdfff)) {
      throw new ParseFailure(`${ascii(text.subarray(begin, Math.min(begin + 6, end)))} is not a valid Unicode character`);
    }
    length = putUtf8(out, length, codePoint);
    i += escapeLength - 1;
  }
  return strictString(out.subarray(0, length));
}

/**
 * Splits a byte stream into JSON values, as QEMU 7.2's JSON streamer does: tokens are collected
 * until every `{` and `[` is closed (or more are closed than opened), then parsed as one
 * message. Chunk boundaries may fall anywhere, inside a token or a UTF-8 sequence.
 *
 * A message over QEMU's limits (64 MiB of token text, 2 Mi tokens, nesting 1024) is refused
 * once, at the token that crosses the limit, and the tokens after it start afresh, as in QEMU.
 * Tokens are stored packed (see MessageTokens), and what a big message grew is given back when
 * it ends, whether parsed or refused.
 *
 * @example Frame a byte stream, whatever its chunks
 * ```ts
 * const streamer = new QmpJsonStreamer((input) => console.log(input));
 * streamer.feed(new TextEncoder().encode('{"execute": "qmp_cap'));
 * streamer.feed(new TextEncoder().encode('abilities"}\r\n@'));
 * // { value: { execute: "qmp_capabilities" } }
 * // { error: "JSON parse error, stray '@'" }
 * ```
 */
export class QmpJsonStreamer {
  #state = IN_START;
  readonly #tokens = new MessageTokens();
  /** The token being lexed: its length (only its start may be kept once the message is doomed). */
  #tokenLength = 0;
  /** How many bytes of the token being lexed are worth keeping (see #startToken). */
  #tokenKeep = 0;
  /** QEMU's token_size: the length of every token of the message so far. */
  #messageBytes = 0;
  #braces = 0;
  #brackets = 0;

  /** @param emit receives each value or error, in input order. */
  constructor(readonly emit: (input: QmpInput) => void) {}

  /** Forgets everything half-read (a new client starts clean). */
  reset(): void {
    this.#state = IN_START;
    this.#restartMessage();
  }

  feed(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; i++) this.#feedByte(chunk[i]);
  }

  #feedByte(byte: number): void {
    // A state that needs to see the byte after a token (numbers, keywords, recovery) ends the
    // token and looks at the same byte again from IN_START.
    for (;;) {
      switch (this.#state) {
        case IN_START: {
          if (isWhitespace(byte)) return;
          if (isStructural(byte)) return this.#endToken(byte, 1);
          this.#startToken();
          this.#push(byte);
          if (byte === 0x22) this.#state = IN_DQ_STRING;
          else if (byte === 0x27) this.#state = IN_SQ_STRING;
          else if (byte === 0x2d) this.#state = IN_SIGN;
          else if (byte === 0x30) this.#state = IN_ZERO;
          else if (isDigit(byte)) this.#state = IN_DIGITS;
          else if (byte >= 0x61 && byte <= 0x7a) this.#state = IN_KEYWORD;
          else return this.#lexicalError(byte);
          return this.#checkTokenSize();
        }
        case IN_DQ_STRING:
        case IN_SQ_STRING: {
          this.#push(byte);
          if (!isStringByte(byte)) return this.#lexicalError(byte);
          const quote = this.#state === IN_DQ_STRING ? 0x22 : 0x27;
          if (byte === 0x5c) this.#state = this.#state === IN_DQ_STRING ? IN_DQ_ESCAPE : IN_SQ_ESCAPE;
          else if (byte === quote) return this.#endToken(STRING, this.#tokenLength);
          return this.#checkTokenSize();
        }
        case IN_DQ_ESCAPE:
        case IN_SQ_ESCAPE:
          this.#push(byte);
          if (!isStringByte(byte)) return this.#lexicalError(byte);
          this.#state = this.#state === IN_DQ_ESCAPE ? IN_DQ_STRING : IN_SQ_STRING;
          return this.#checkTokenSize();
        case IN_SIGN:
          this.#push(byte);
          if (byte === 0x30) this.#state = IN_ZERO;
          else if (isDigit(byte)) this.#state = IN_DIGITS;
          else return this.#lexicalError(byte);
          return this.#checkTokenSize();
        case IN_ZERO:
          if (isDigit(byte)) {
            this.#push(byte);
            return this.#lexicalError(byte);
          }
          if (byte === 0x2e) return this.#tokenPart(byte, IN_MANTISSA);
          this.#endToken(INTEGER, this.#tokenLength);
          continue;
        case IN_DIGITS:
          if (isDigit(byte)) return this.#tokenPart(byte, IN_DIGITS);
          if (byte === 0x2e) return this.#tokenPart(byte, IN_MANTISSA);
          if (byte === 0x65 || byte === 0x45) return this.#tokenPart(byte, IN_EXP_E);
          this.#endToken(INTEGER, this.#tokenLength);
          continue;
        case IN_MANTISSA:
          this.#push(byte);
          if (!isDigit(byte)) return this.#lexicalError(byte);
          this.#state = IN_MANTISSA_DIGITS;
          return this.#checkTokenSize();
        case IN_MANTISSA_DIGITS:
          if (isDigit(byte)) return this.#tokenPart(byte, IN_MANTISSA_DIGITS);
          if (byte === 0x65 || byte === 0x45) return this.#tokenPart(byte, IN_EXP_E);
          this.#endToken(FLOAT, this.#tokenLength);
          continue;
        case IN_EXP_E:
          this.#push(byte);
          if (byte === 0x2b || byte === 0x2d) this.#state = IN_EXP_SIGN;
          else if (isDigit(byte)) this.#state = IN_EXP_DIGITS;
          else return this.#lexicalError(byte);
          return this.#checkTokenSize();
        case IN_EXP_SIGN:
          this.#push(byte);
          if (!isDigit(byte)) return this.#lexicalError(byte);
          this.#state = IN_EXP_DIGITS;
          return this.#checkTokenSize();
        case IN_EXP_DIGITS:
          if (isDigit(byte)) return this.#tokenPart(byte, IN_EXP_DIGITS);
          this.#endToken(FLOAT, this.#tokenLength);
          continue;
        case IN_KEYWORD:
          if (byte >= 0x61 && byte <= 0x7a) return this.#tokenPart(byte, IN_KEYWORD);
          this.#endToken(KEYWORD, this.#tokenLength);
          continue;
        case IN_RECOVERY:
          if (!endsRecovery(byte)) return;
          this.#state = IN_START;
          continue;
      }
    }
  }

  /**
   * A token begins. A message whose text already fills the limit is refused when this token ends
   * (or outgrows the lexer), so of this token only what a "stray" error would quote is kept.
   */
  #startToken(): void {
    this.#tokenLength = 0;
    this.#tokenKeep = Math.max(STRAY_QUOTED_BYTES, MAX_MESSAGE_BYTES - 1 - this.#messageBytes);
  }

  #push(byte: number): void {
    if (this.#tokenLength++ < this.#tokenKeep) this.#tokens.pushByte(byte);
  }

  #tokenPart(byte: number, next: number): void {
    this.#push(byte);
    this.#state = next;
    this.#checkTokenSize();
  }

  /**
   * QEMU's lexer hands on a token that grew past the limit as it is, and starts lexing afresh
   * with the next byte; the streamer then refuses the message for its size.
   */
  #checkTokenSize(): void {
    if (this.#tokenLength <= MAX_MESSAGE_BYTES) return;
    this.#state = IN_START;
    this.#fail("JSON token size limit exceeded");
  }

  #lexicalError(byte: number): void {
    this.#state = IN_RECOVERY;
    this.#fail(`JSON parse error, stray '${this.#strayText(byte)}'`);
  }

  /** The refused token as QEMU quotes it, cut if it is long. */
  #strayText(refused: number): string {
    // QEMU formats it as a C string, so a refused NUL byte (always the last one) is not quoted.
    const length = refused === 0 ? this.#tokenLength - 1 : this.#tokenLength;
    const kept = this.#tokens.pendingText();
    if (length <= STRAY_QUOTED_BYTES) return ascii(kept.subarray(0, length));
    return `${ascii(kept.subarray(0, STRAY_QUOTED_BYTES))}...${refused === 0 ? "" : ascii(Uint8Array.of(refused))}`;
  }

  /** A complete token: QEMU's checks, then parse the message once nothing is left open. */
  #endToken(kind: number, length: number): void {
    this.#state = IN_START;
    if (kind === LCURLY) this.#braces++;
    else if (kind === RCURLY) this.#braces--;
    else if (kind === LSQUARE) this.#brackets++;
    else if (kind === RSQUARE) this.#brackets--;
    // The limits are checked before the token is taken, so even a closing token can cross them.
    if (this.#messageBytes + length + 1 > MAX_MESSAGE_BYTES) return this.#fail("JSON token size limit exceeded");
    if (this.#tokens.count + 1 > MAX_MESSAGE_TOKENS) return this.#fail("JSON token count limit exceeded");
    if (this.#braces + this.#brackets > MAX_NESTING) return this.#fail("JSON nesting depth limit exceeded");
    this.#tokens.pushToken(kind);
    this.#messageBytes += length;
    // A message ends when nothing is open, or when more was closed than opened (`[}` is one).
    if ((this.#braces > 0 || this.#brackets > 0) && this.#braces >= 0 && this.#brackets >= 0) return;
    let input: QmpInput;
    try {
      input = { value: TokenParser.parse(this.#tokens) };
    } catch (failure) {
      if (!(failure instanceof ParseFailure)) throw failure;
      input = { error: `JSON parse error, ${failure.reason}` };
    }
    this.#restartMessage();
    this.emit(input);
  }

  #fail(error: string): void {
    this.#restartMessage();
    this.emit({ error });
  }

  #restartMessage(): void {
    this.#tokens.clear();
    this.#tokenLength = 0;
    this.#messageBytes = 0;
    this.#braces = 0;
    this.#brackets = 0;
  }
}

/** `\u00E9`: QEMU writes every non-ASCII and control character as an escape. */
function escapeCodeUnit(unit: number): string {
  return `\\u${unit.toString(16).toUpperCase().padStart(4, "0")}`;
}

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function quoteJson(text: string): string {
  let quoted = '"';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    const unit = text.charCodeAt(i);
    if (SHORT_ESCAPES[ch]) quoted += SHORT_ESCAPES[ch];
    else if (unit < 0x20 || unit >= 0x7f) quoted += escapeCodeUnit(unit);
    else quoted += ch;
  }
  return quoted + '"';
}

/**
 * A value as QEMU's monitor writes it: one line, `": "` and `", "` between members, ASCII only.
 *
 * @example A response line's JSON
 * ```ts
 * encodeQmpJson({ return: { pty: "/dev/pts/3" }, id: 1 }); // '{"return": {"pty": "/dev/pts/3"}, "id": 1}'
 * ```
 */
export function encodeQmpJson(value: unknown): string {
  switch (typeof value) {
    case "string":
      return quoteJson(value);
    case "number":
      return Number.isFinite(value) ? String(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "object":
      if (value === null) return "null";
      if (Array.isArray(value)) return `[${value.map(encodeQmpJson).join(", ")}]`;
      return `{${Object.entries(value)
        .filter(([, member]) => member !== undefined)
        .map(([key, member]) => `${quoteJson(key)}: ${encodeQmpJson(member)}`)
        .join(", ")}}`;
    default:
      return "null";
  }
}

// ---- commands ----------------------------------------------------------------------------------

/** QMP error classes we answer with (QEMU's QapiErrorClass). */
export type QmpErrorClass = "GenericError" | "CommandNotFound";

/** A command failed; becomes `{"error": {"class", "desc"}}`. */
class QmpError extends Error {
  constructor(
    readonly errorClass: QmpErrorClass,
    desc: string,
  ) {
    super(desc);
  }
}

const generic = (desc: string) => new QmpError("GenericError", desc);

type Arguments = Record<string, unknown>;

const isObject = (value: unknown): value is Arguments => typeof value === "object" && value !== null && !Array.isArray(value);

/** Checks the value of a QAPI member that is present; `name` is its full name (`enable[0]`). */
type MemberCheck = (value: unknown, name: string) => void;

const isString: MemberCheck = (value, name) => {
  if (typeof value !== "string") throw generic(`Invalid parameter type for '${name}', expected: string`);
};

const isInteger: MemberCheck = (value, name) => {
  if (!Number.isInteger(value)) throw generic(`Invalid parameter type for '${name}', expected: integer`);
};

const isStruct: MemberCheck = (value, name) => {
  if (!isObject(value)) throw generic(`Invalid parameter type for '${name}', expected: object`);
};

/** An enum: a string, and one of `values`. */
const isOneOf =
  (...values: string[]): MemberCheck =>
  (value, name) => {
    isString(value, name);
    if (!values.includes(value as string)) throw generic(`Parameter '${name}' does not accept value '${value}'`);
  };

const isListOf =
  (item: MemberCheck): MemberCheck =>
  (value, name) => {
    if (!Array.isArray(value)) throw generic(`Invalid parameter type for '${name}', expected: array`);
    value.forEach((element, i) => item(element, `${name}[${i}]`));
  };

/** QAPI's DataFormat, the `format` of the ringbuf commands. */
const isDataFormat = isOneOf("utf8", "base64");

interface Member {
  readonly check: MemberCheck;
  readonly optional?: boolean;
}

/**
 * QAPI's input checks with its texts: members in schema order (missing, wrong type, bad enum
 * value), then any member the schema lacks. `prefix` names a nested struct (`backend.`).
 */
function checkArguments(args: Arguments, members: Record<string, Member>, prefix = ""): void {
  for (const [name, { check, optional }] of Object.entries(members)) {
    const value = Object.hasOwn(args, name) ? args[name] : undefined;
    if (value !== undefined) check(value, prefix + name);
    else if (!optional) throw generic(`Parameter '${prefix}${name}' is missing`);
  }
  for (const name of Object.keys(args)) {
    if (!Object.hasOwn(members, name)) throw generic(`Parameter '${prefix}${name}' is unexpected`);
  }
}

/** QEMU 10.0.0: the version QMP clients see, in the greeting and `query-version`. */
const QEMU_VERSION = { micro: 0, minor: 0, major: 10 } as const;

/**
 * Errors of QAPI's argument checks, and a taken id, reach the client as they are; QEMU prefixes
 * every other `chardev-add` failure (those of opening the backend) with the chardev's id.
 */
const QAPI_CHECK_TEXT = /^(Parameter '[^']*' (is missing|is unexpected|does not accept value )|Invalid parameter type for ')/;

function addFailure(id: unknown, error: unknown): unknown {
  if (!(error instanceof ChardevError) || error.code === "DUPLICATE_ID" || QAPI_CHECK_TEXT.test(error.message)) return error;
  return generic(`Failed to add chardev '${String(id)}': ${error.message}`);
}

/** `chardev-add`'s return: the slave path of a pty (QEMU's filename is `pty:PATH`), else `{}`. */
function chardevReturn(chardev: Chardev): { pty?: string } {
  return chardev.kind === "pty" && chardev.filename.startsWith("pty:") ? { pty: chardev.filename.slice(4) } : {};
}

// ---- the monitor -------------------------------------------------------------------------------

/** Options of a QMP monitor. */
export interface QmpMonitorOptions {
  /**
   * The `package` string of the greeting and `query-version`.
   * @default "chardev-hub"
   */
  package?: string;
}

/**
 * Requests a monitor queues before it stops reading input (QEMU's QMP_REQ_QUEUE_LEN_MAX); a
 * client that floods commands waits instead of growing our memory.
 */
const MAX_QUEUED_REQUESTS = 8;
/** Output held for a client that does not read, before input is paused the same way. */
const MAX_OUTPUT_BACKLOG = 1024 * 1024;
/** What `canRead` offers while the monitor takes input. */
const INPUT_CHUNK = 4096;
/**
 * A chardev that refuses a write but has no watch to offer (it returned 0, or EAGAIN without
 * a blocked channel) is tried again after this long: the only way left not to lose the bytes.
 */
const WRITE_RETRY_MS = 10;

interface QueuedInput {
  /** The client session the input came from; its answer is dropped if that client left. */
  readonly session: number;
  readonly input: QmpInput;
}

type Response = Record<string, unknown>;

/** Monitors made by `startQmp`, which remove their own chardev on `close`. */
const monitorsOwningChardev = new WeakSet<QmpMonitor>();

/**
 * A QMP server attached as the frontend of chardev `chardevId`, like a QEMU monitor made with
 * `-mon chardev=ID,mode=control`. Every OPENED of the chardev (a client connecting) gets a
 * fresh greeting and a fresh negotiation; CLOSED forgets the client's half-read input, its
 * queued commands and unsent answers.
 *
 * Commands: `qmp_capabilities`, `query-commands`, `query-version`, `chardev-add`,
 * `chardev-remove`, `chardev-change`, `query-chardev`, `query-chardev-backends`,
 * `ringbuf-write`, `ringbuf-read`, `chardev-send-break`, `object-add` and `object-del` (TLS
 * credentials, `tls-creds-x509`). `chardev-change` works as QEMU's
 * for a chardev nobody holds (the old one goes, the new one is added in its place; as in QEMU
 * the old one is gone even if adding the new one fails). A held chardev is refused with
 * QEMU's `Chardev user does not support chardev hotswap`: our frontends cannot move to a new
 * chardev. A hub or mux is refused as in QEMU.
 *
 * Output goes through `Frontend.write`: a short write or EAGAIN keeps the rest queued until
 * the chardev's watch fires. A write that fails otherwise (the peer is gone) drops what was
 * queued, as QEMU's monitor does; the next client starts with a new greeting anyway.
 *
 * @example A monitor on a ringbuf, driven as a client would drive a socket
 * ```ts
 * const reg = await ChardevRegistry.create();
 * await reg.add("ringbuf,id=mon0,size=65536");
 * const monitor = QmpMonitor.attach(reg, "mon0");
 * reg.ringbufRead("mon0", 65536); // '{"QMP": {"version": {...}, "capabilities": []}}\r\n'
 * reg.backendWrite("mon0", new TextEncoder().encode('{"execute": "qmp_capabilities", "id": 1}'));
 * reg.ringbufRead("mon0", 65536); // '{"return": {}, "id": 1}\r\n'
 * monitor.detach();
 * ```
 */
export class QmpMonitor {
  readonly #reg: ChardevRegistry;
  readonly #package: string;
  #frontend: Frontend | null = null;
  #detached = false;
  /** Stops forwarding hub backend errors (HUB_BACKEND_ERROR events). */
  #stopHubEvents: () => void = () => {};
  readonly #streamer: QmpJsonStreamer;
  readonly #commands: Map<string, (args: Arguments) => unknown>;

  /** Bumped on OPENED and CLOSED: work of an earlier client must not reach a later one. */
  #session = 0;
  #negotiated = false;
  #queue: QueuedInput[] = [];
  #dispatching = false;
  /** canRead said 0: input waits in the chardev until we ask for it again. */
  #inputPaused = false;

  #output: Uint8Array[] = [];
  #outputBytes = 0;
  #flushing = false;
  #flushAgain = false;
  #watchId = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    reg: ChardevRegistry,
    /** The chardev this monitor is the frontend of. */
    readonly chardevId: string,
    options: QmpMonitorOptions,
  ) {
    this.#reg = reg;
    this.#package = options.package ?? "chardev-hub";
    this.#streamer = new QmpJsonStreamer((input) => this.#queue.push({ session: this.#session, input }));
    this.#commands = this.#commandTable();
  }

  /**
   * Attaches a monitor to chardev `chardevId` as its frontend. Throws ChardevError if the
   * chardev does not exist or is held already. A chardev that is open already (a ringbuf, a
   * connected socket) gets the greeting at once.
   *
   * @example Serve QMP on a socket chardev made by hand
   * ```ts
   * await reg.add("socket,id=qmp0,path=/tmp/qmp.sock,server=on,wait=off");
   * const monitor = QmpMonitor.attach(reg, "qmp0");
   * // socat - UNIX-CONNECT:/tmp/qmp.sock
   * ```
   */
  static attach(reg: ChardevRegistry, chardevId: string, options: QmpMonitorOptions = {}): QmpMonitor {
    const monitor = new QmpMonitor(reg, chardevId, options);
    // The chardev may report OPENED inside attach, before the frontend is ours to write with:
    // the greeting waits in the output queue and goes out just below.
    monitor.#frontend = reg.attach(chardevId, {
      canRead: () => monitor.#canRead(),
      read: (data) => monitor.#read(data),
      event: (event) => monitor.#event(event),
    });
    monitor.#flush();
    // Our own event (QEMU has no hub errors): a backend of one of this registry's hubs failed.
    monitor.#stopHubEvents = onEveryHubEvent((hub, event) => {
      if (event.type === "error" && reg.find(hub.id) === hub) monitor.sendEvent("HUB_BACKEND_ERROR", { hub: hub.id, chardev: event.backend, errno: event.errno });
    });
    return monitor;
  }

  /** The current client has completed `qmp_capabilities`. */
  get negotiated(): boolean {
    return this.#negotiated;
  }

  /**
   * Sends an event to the client, if it has completed negotiation (QEMU sends none before).
   * Returns whether it was sent.
   *
   * @example Tell the client the machine is going away
   * ```ts
   * monitor.sendEvent("SHUTDOWN", { guest: false, reason: "host-qmp-quit" });
   * // {"timestamp": {"seconds": 1732550400, "microseconds": 123456}, "event": "SHUTDOWN", "data": {...}}
   * ```
   */
  sendEvent(event: string, data?: Record<string, unknown>): boolean {
    if (this.#detached || !this.#negotiated) return false;
    const micros = Math.round((performance.timeOrigin + performance.now()) * 1000);
    this.#send({ timestamp: { seconds: Math.floor(micros / 1e6), microseconds: micros % 1e6 }, event, data });
    return true;
  }

  /** Lets go of the chardev (it stays registered); queued commands and output are dropped. */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#stopHubEvents();
    this.#forgetClient();
    this.#frontend?.detach();
    this.#frontend = null;
  }

  /** Detaches, and removes the chardev too when `startQmp` made it. */
  async close(): Promise<void> {
    this.detach();
    if (monitorsOwningChardev.has(this) && this.#reg.find(this.chardevId)) await this.#reg.remove(this.chardevId);
  }

  // ---- input ----

  #canRead(): number {
    const full = this.#queue.length >= MAX_QUEUED_REQUESTS || this.#outputBytes >= MAX_OUTPUT_BACKLOG;
    if (full) this.#inputPaused = true;
    return full ? 0 : INPUT_CHUNK;
  }

  /** Asks the chardev for the input it held back, once there is room again. */
  #resumeInputIfRoom(): void {
    if (!this.#inputPaused || this.#detached || this.#canRead() === 0) return;
    this.#inputPaused = false;
    // Not from inside our own read or write: the chardev re-enters us with the held input.
    queueMicrotask(() => this.#frontend?.acceptInput());
  }

  #read(data: Uint8Array): void {
    if (this.#detached) return;
    try {
      this.#streamer.feed(data);
    } catch (error) {
      // Not reachable by any input we know of; the data path must not throw regardless.
      this.#streamer.reset();
      this.#queue.push({ session: this.#session, input: { error: `JSON parse error, ${String(error)}` } });
    }
    this.#dispatch();
  }

  #event(event: ChrEvent): void {
    if (this.#detached) return;
    if (event === ChrEvent.OPENED) {
      this.#forgetClient();
      this.#send({ QMP: { version: this.#versionInfo(), capabilities: [] } });
    } else if (event === ChrEvent.CLOSED) {
      this.#forgetClient();
    }
    // BREAK, MUX_IN, MUX_OUT mean nothing to a monitor (QEMU ignores them too).
  }

  /** A client came or went: nothing of the previous one carries over. */
  #forgetClient(): void {
    this.#session++;
    this.#negotiated = false;
    this.#queue = [];
    this.#streamer.reset();
    this.#dropOutput();
    this.#resumeInputIfRoom();
  }

  // ---- dispatch ----

  /** Runs queued requests in order, one at a time; an async command holds the rest back. */
  #dispatch(): void {
    if (this.#dispatching) return;
    this.#dispatching = true;
    while (this.#queue.length > 0) {
      const { session, input } = this.#queue.shift()!;
      const response = this.#execute(input);
      if (response instanceof Promise) {
        void response.then((settled) => {
          this.#respond(session, settled);
          this.#dispatching = false;
          this.#dispatch();
        });
        return;
      }
      this.#respond(session, response);
    }
    this.#dispatching = false;
    this.#resumeInputIfRoom();
  }

  #respond(session: number, response: Response): void {
    if (session === this.#session && !this.#detached) this.#send(response);
  }

  /** One request to its response; never throws, and a Promise only for async commands. */
  #execute(input: QmpInput): Response | Promise<Response> {
    if ("error" in input) return errorResponse(generic(input.error));
    const request = input.value;
    if (!isObject(request)) return errorResponse(generic("QMP input must be a JSON object"));
    const id = Object.hasOwn(request, "id") ? request.id : undefined;
    try {
      const result = this.#run(request);
      if (result instanceof Promise) {
        return result.then(
          (value) => successResponse(value, id),
          (error: unknown) => errorResponse(error, id),
        );
      }
      return successResponse(result, id);
    } catch (error) {
      return errorResponse(error, id);
    }
  }

  /** QEMU's qmp_dispatch: check the request's members, find the command, run it. */
  #run(request: Arguments): unknown {
    let command: string | undefined;
    for (const [member, value] of Object.entries(request)) {
      if (member === "execute") {
        if (typeof value !== "string") throw generic("QMP input member 'execute' must be a string");
        command = value;
      } else if (member === "arguments") {
        if (!isObject(value)) throw generic("QMP input member 'arguments' must be an object");
      } else if (member !== "id") {
        // `exec-oob` too: out-of-band execution was not offered in the greeting.
        throw generic(`QMP input member '${member}' is unexpected`);
      }
    }
    if (command === undefined) throw generic("QMP input lacks member 'execute'");
    const handler = this.#commands.get(command);
    if (!handler || (!this.#negotiated && command !== "qmp_capabilities")) {
      // Before negotiation only qmp_capabilities exists; QEMU then says what it expects.
      const desc = this.#negotiated ? `The command ${command} has not been found` : "Expecting capabilities negotiation with 'qmp_capabilities'";
      throw new QmpError("CommandNotFound", desc);
    }
    return handler((request.arguments as Arguments | undefined) ?? {});
  }

  #versionInfo(): Record<string, unknown> {
    return { qemu: { ...QEMU_VERSION }, package: this.#package };
  }

  #commandTable(): Map<string, (args: Arguments) => unknown> {
    const reg = this.#reg;
    return new Map<string, (args: Arguments) => unknown>([
      [
        "qmp_capabilities",
        (args) => {
          checkArguments(args, { enable: { check: isListOf(isOneOf("oob")), optional: true } });
          if (this.#negotiated) {
            throw new QmpError("CommandNotFound", "Capabilities negotiation is already complete, command ignored");
          }
          // QMP's only capability, `oob`, was not offered in our greeting.
          const enable = (args.enable as string[] | undefined) ?? [];
          if (enable.length > 0) throw generic(`Capability ${enable.join(", ")} not available`);
          this.#negotiated = true;
        },
      ],
      [
        "query-commands",
        (args) => {
          checkArguments(args, {});
          return [...this.#commands.keys()].map((name) => ({ name }));
        },
      ],
      [
        "query-version",
        (args) => {
          checkArguments(args, {});
          return this.#versionInfo();
        },
      ],
      [
        "chardev-add",
        async (args) => {
          // The registry checks `id` and `backend` with QAPI's texts.
          try {
            return chardevReturn(await reg.add(args as unknown as ChardevAddArgs));
          } catch (error) {
            throw addFailure(args.id, error);
          }
        },
      ],
      [
        "chardev-remove",
        async (args) => {
          checkArguments(args, { id: { check: isString } });
          await reg.remove(args.id as string);
        },
      ],
      ["chardev-change", (args) => this.#chardevChange(args)],
      [
        "query-chardev",
        (args) => {
          checkArguments(args, {});
          return reg.query().map(({ label, filename, frontendOpen }) => ({ label, filename, "frontend-open": frontendOpen }));
        },
      ],
      [
        "query-chardev-backends",
        (args) => {
          checkArguments(args, {});
          return reg.registeredKinds().map((name) => ({ name }));
        },
      ],
      [
        "ringbuf-write",
        (args) => {
          checkArguments(args, { device: { check: isString }, data: { check: isString }, format: { check: isDataFormat, optional: true } });
          reg.ringbufWrite(args.device as string, args.data as string, args.format as RingbufFormat | undefined);
        },
      ],
      [
        "ringbuf-read",
        (args) => {
          checkArguments(args, { device: { check: isString }, size: { check: isInteger }, format: { check: isDataFormat, optional: true } });
          return reg.ringbufRead(args.device as string, args.size as number, args.format as RingbufFormat | undefined);
        },
      ],
      [
        "chardev-send-break",
        (args) => {
          checkArguments(args, { id: { check: isString } });
          reg.get(args.id as string).emitEvent(ChrEvent.BREAK);
        },
      ],
      [
        "object-add",
        async (args) => {
          // The registry checks `qom-type`, `id` and the type's properties with QAPI's texts.
          await reg.addObject(args as ObjectAddArgs);
        },
      ],
      [
        "object-del",
        (args) => {
          checkArguments(args, { id: { check: isString } });
          reg.removeObject(args.id as string);
        },
      ],
      // Our own commands (QEMU has no hot-plug for hubs): attach/detach a backend of a live
      // hub, and the hub's per-backend counters.
      [
        "hub-attach",
        (args) => {
          checkArguments(args, {
            hub: { check: isString },
            chardev: { check: isString },
            policy: { check: isOneOf("block", "drop", "evict"), optional: true },
            "lag-limit": { check: isInteger, optional: true },
            "stall-ms": { check: isInteger, optional: true },
            replay: { check: isInteger, optional: true },
            mode: { check: isOneOf("rw", "ro"), optional: true },
          });
          // stall-ms and replay within limits.ts, checked before anything is attached.
          reg.hubAttach(args.hub as string, args.chardev as string, checkHubBackendOptions(args.chardev as string, {
            policy: args.policy as HubBackendOptions["policy"],
            lagLimit: args["lag-limit"] as number | undefined,
            stallMs: args["stall-ms"] as number | undefined,
            replay: args.replay as number | undefined,
            mode: args.mode as HubBackendOptions["mode"],
          }));
        },
      ],
      [
        "hub-detach",
        (args) => {
          checkArguments(args, { hub: { check: isString }, chardev: { check: isString } });
          reg.hubDetach(args.hub as string, args.chardev as string);
        },
      ],
      [
        "query-hub",
        (args) => {
          checkArguments(args, { id: { check: isString } });
          const hub = reg.hub(args.id as string);
          return {
            ring: hub.options.ring,
            evictions: hub.evictions,
            backends: hub.stats().map((row) => ({
              id: row.id,
              open: row.open,
              policy: row.policy,
              mode: row.mode,
              "bytes-in": row.bytesIn,
              "bytes-out": row.bytesOut,
              "bytes-dropped": row.bytesDropped,
              "input-discarded": row.inputDiscarded,
              "events-discarded": row.eventsDiscarded,
              lag: row.lag,
              stalls: row.stalls,
            })),
          };
        },
      ],
    ]);
  }

  /** QEMU's qmp_chardev_change, for what our frontends allow (see the class notes). */
  async #chardevChange(args: Arguments): Promise<unknown> {
    checkArguments(args, { id: { check: isString }, backend: { check: isStruct } });
    const id = args.id as string;
    const backend = args.backend as Arguments;
    // QAPI checks the new backend's shape before the command runs, so a typo never costs the
    // old chardev. The members of its `data` are checked by `add` (in QEMU, by the open that
    // follows the removal).
    checkArguments(backend, {
      type: { check: isOneOf(...this.#reg.registeredKinds()) },
      data: { check: isStruct, optional: true },
    }, "backend.");
    const chardev = this.#reg.find(id);
    if (!chardev) throw generic(`Chardev '${id}' does not exist`);
    if (chardev.kind === "hub" || chardev.kind === "mux") throw generic("For mux or hub device hotswap is not supported yet");
    if (chardev.isBusy()) throw generic("Chardev user does not support chardev hotswap");
    await this.#reg.remove(id);
    try {
      return chardevReturn(await this.#reg.add({ id, backend } as unknown as ChardevAddArgs));
    } catch (error) {
      throw addFailure(id, error);
    }
  }

  // ---- output ----

  #send(message: Response): void {
    const bytes = new TextEncoder().encode(`${encodeQmpJson(message)}\r\n`);
    this.#output.push(bytes);
    this.#outputBytes += bytes.length;
    this.#flush();
  }

  /**
   * Writes queued output until the chardev refuses. Re-entry (a write that makes the chardev
   * report an event that queues more output) only asks the running flush to go round again.
   */
  #flush(): void {
    if (this.#flushing) {
      this.#flushAgain = true;
      return;
    }
    this.#flushing = true;
    try {
      do {
        this.#flushAgain = false;
        this.#writeQueued();
      } while (this.#flushAgain);
    } finally {
      this.#flushing = false;
    }
    this.#resumeInputIfRoom();
  }

  #writeQueued(): void {
    const frontend = this.#frontend;
    while (frontend && this.#output.length > 0 && this.#watchId === 0 && this.#retryTimer === undefined) {
      const queue = this.#output;
      const head = queue[0];
      const written = frontend.write(head);
      // The write made the chardev report OPENED or CLOSED, which replaced the queue.
      if (queue !== this.#output) continue;
      if (written > 0) {
        this.#outputBytes -= written;
        if (written >= head.length) queue.shift();
        else queue[0] = head.subarray(written);
        continue;
      }
      if (written === 0 || frontend.lastError === "EAGAIN") return this.#waitForRoom(frontend);
      // EIO, EPIPE, EBADF...: nobody will read this (QEMU's monitor drops its buffer too).
      return this.#dropOutput();
    }
  }

  #waitForRoom(frontend: Frontend): void {
    let firedAtOnce = false;
    const id = frontend.addWatch(() => {
      firedAtOnce = this.#watchId === 0;
      this.#watchId = 0;
      this.#flush();
    });
    // Fired inside addWatch: its flush asked the running one to go round again.
    if (firedAtOnce) return;
    if (id !== 0) {
      this.#watchId = id;
      return;
    }
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#flush();
    }, WRITE_RETRY_MS);
  }

  #dropOutput(): void {
    this.#output = [];
    this.#outputBytes = 0;
    if (this.#watchId !== 0) this.#frontend?.removeWatch(this.#watchId);
    this.#watchId = 0;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }
}

function successResponse(value: unknown, id: unknown): Response {
  return { return: value ?? {}, id };
}

function errorResponse(error: unknown, id?: unknown): Response {
  const errorClass: QmpErrorClass = error instanceof QmpError ? error.errorClass : "GenericError";
  const desc = error instanceof Error ? error.message : String(error);
  return { error: { class: errorClass, desc }, id };
}

// ---- -qmp ----------------------------------------------------------------------------------------

/** Splits QEMU option text at single commas (`,,` is a literal comma), keeping the escapes. */
function splitOptions(text: string): { first: string; rest: string[] } {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== ",") continue;
    if (text[i + 1] === ",") {
      i++;
      continue;
    }
    parts.push(text.slice(start, i));
    start = i + 1;
  }
  parts.push(text.slice(start));
  return { first: parts[0].replace(/,,/g, ","), rest: parts.slice(1) };
}

const escapeOption = (value: string) => value.replace(/,/g, ",,");

/**
 * The `-chardev` string QEMU makes of a `-qmp` address: `unix:PATH[,opts]` or
 * `tcp:[HOST]:PORT[,opts]` (IPv6 hosts in brackets). Options pass through to the socket
 * chardev (`server=on`, `wait=off`, ...); the old spellings `server` and `nowait` are accepted.
 *
 * @example The chardev behind `-qmp tcp:localhost:4444,server=on,wait=off`
 * ```ts
 * qmpChardevSpec("tcp:localhost:4444,server=on,wait=off", "compat_monitor0");
 * // "socket,id=compat_monitor0,host=localhost,port=4444,server=on,wait=off"
 * ```
 */
export function qmpChardevSpec(address: string, id: string): string {
  const { first, rest } = splitOptions(address);
  const options = rest.map((option) => (option === "nowait" ? "wait=off" : option === "noserver" ? "server=off" : option));
  let addressKeys: string;
  if (first.startsWith("unix:") && first.length > 5) {
    addressKeys = `path=${escapeOption(first.slice(5))}`;
  } else if (first.startsWith("tcp:")) {
    const hostPort = first.slice(4);
    const match = /^\[([^\]]*)\]:(.*)$/.exec(hostPort) ?? /^([^:]*):(.*)$/.exec(hostPort);
    if (!match || match[2] === "") throw new ChardevError("MISSING_PARAMETER", `qmp: '${quoteInput(address)}' has no port (tcp:HOST:PORT)`);
    addressKeys = `host=${escapeOption(match[1])},port=${escapeOption(match[2])}`;
  } else {
    throw new ChardevError("INVALID_VALUE", `qmp: '${quoteInput(address)}' is not a QMP address we serve (unix:PATH or tcp:HOST:PORT)`);
  }
  return [`socket,id=${id}`, addressKeys, ...options].join(",");
}

/**
 * QEMU's `-qmp ADDRESS`: adds a socket chardev (id `compat_monitorN`, as QEMU names it) and
 * attaches a QMP monitor to it. `monitor.close()` removes the chardev again. With `wait=on`
 * (QEMU's default for a server) this resolves only once the first client has connected.
 *
 * @example QEMU's `-qmp unix:/tmp/qmp.sock,server=on,wait=off`
 * ```ts
 * const reg = await ChardevRegistry.create();
 * const monitor = await startQmp(reg, "unix:/tmp/qmp.sock,server=on,wait=off");
 * // $ socat - UNIX-CONNECT:/tmp/qmp.sock
 * // {"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 10}, "package": "chardev-hub"}, "capabilities": []}}
 * await monitor.close();
 * ```
 */
export async function startQmp(reg: ChardevRegistry, address: string, options: QmpMonitorOptions = {}): Promise<QmpMonitor> {
  let n = 0;
  while (reg.find(`compat_monitor${n}`)) n++;
  const id = `compat_monitor${n}`;
  await reg.add(qmpChardevSpec(address, id));
  let monitor: QmpMonitor;
  try {
    monitor = QmpMonitor.attach(reg, id, options);
  } catch (error) {
    await reg.remove(id);
    throw error;
  }
  monitorsOwningChardev.add(monitor);
  return monitor;
}
