// QMP's input framing: QEMU's JSON lexer, streamer and parser (qobject/json-lexer.c,
// json-streamer.c, json-parser.c) written anew from their observable behaviour. Bytes in, one
// complete JSON value (or QEMU's error text) out per message, with QEMU's per-message limits
// (64 MiB of token text, 2 Mi tokens, nesting 1024) and its error recovery: a lexical error
// answers once, then input is skipped up to the next structural character. Knows nothing of
// commands or sessions (./monitor.ts feeds it).

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
          return this.#requiredDigit(byte, IN_MANTISSA_DIGITS);
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
          return this.#requiredDigit(byte, IN_EXP_DIGITS);
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

  /** A byte that must be a digit (after a number's `.` or its exponent's sign), or the token is malformed. */
  #requiredDigit(byte: number, next: number): void {
    this.#push(byte);
    if (!isDigit(byte)) return this.#lexicalError(byte);
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
