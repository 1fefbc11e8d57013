// The soak's stream and its checker. The device prints numbered lines of one fixed length:
// `#` + 12 digits + ` ` + a payload of 2- and 3-byte UTF-8 characters (so a cut in the wrong
// place splits a character) + `\n`, which the pty turns into `\r\n`. `#` appears nowhere else
// in a line, so a reader can tell exactly where a gap starts (the `#` of a line start where
// the middle of a line was due) and, from the number after it, exactly how long it is.

/** The byte that starts every line and appears nowhere else. */
export const MARK = 0x23;
const DIGITS = 12;
const encoder = new TextEncoder();
/** Payloads rotate through these; all have the same byte length. */
const PAYLOADS = [
  "αβγδεζηθικλμνξοπρστυφχψω ✓ żółć €",
  "абвгдежзийклмнопрстуфхцч ✓ ąęśń €",
  "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ ✓ ĄĘŚŃ €",
].map((text) => encoder.encode(text));
if (new Set(PAYLOADS.map((p) => p.length)).size !== 1) throw new Error("soak: payloads must have one byte length");
const TAIL = PAYLOADS.map((payload) => Uint8Array.from([0x20, ...payload, 0x0d, 0x0a]));
/** Bytes of one line on the wire (after the pty's `\n` -> `\r\n`). */
export const LINE_BYTES = 1 + DIGITS + TAIL[0].length;
/** The last line: `#END` and the number of lines before it. */
export const END_PREFIX = "#END ";

/** Line `n` as the generator writes it (with `\n`; the pty adds the `\r`). */
export function generatorLine(n) {
  const payload = new TextDecoder().decode(PAYLOADS[n % PAYLOADS.length]);
  return `#${String(n).padStart(DIGITS, "0")} ${payload}\n`;
}

/** Line `n` as it arrives (`\r\n` ending). */
export function wireLine(n) {
  return encoder.encode(generatorLine(n).replace("\n", "\r\n"));
}

let cachedLine = -1;
let cachedBytes = new Uint8Array(0);
/** The byte at stream offset `offset` (lines as they arrive). */
function streamByte(offset) {
  const n = Math.floor(offset / LINE_BYTES);
  if (n !== cachedLine) {
    cachedLine = n;
    cachedBytes = wireLine(n);
  }
  return cachedBytes[offset - n * LINE_BYTES];
}

const lineBuffer = new Uint8Array(LINE_BYTES);
/** Line `n` as it arrives, in a buffer reused by the next call. */
function lineInto(n) {
  lineBuffer[0] = MARK;
  let rest = n;
  for (let k = DIGITS; k >= 1; k--) {
    lineBuffer[k] = 0x30 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  lineBuffer.set(TAIL[n % TAIL.length], 1 + DIGITS);
  return lineBuffer;
}

const isDigit = (byte) => byte >= 0x30 && byte <= 0x39;

/**
 * Checks one connection's bytes as they arrive. `policy` is `block`, `evict` (both: exactly a
 * contiguous piece of the stream) or `drop` (the stream minus gaps, each ending at a line
 * start). Records where it started, the gaps it saw and the first violation.
 */
export class StreamChecker {
  /** @param {"block" | "drop" | "evict"} policy */
  constructor(policy) {
    this.policy = policy;
    /** Stream offset of the next byte due; -1 until the first line start fixes it. */
    this.offset = -1;
    /** Stream offset of the first byte received (known once the first line start is seen). */
    this.startOffset = -1;
    /**
     * Whether the connection started on a whole character (the hub's safe start for a reader
     * that joins at the head: never inside a UTF-8 sequence; a start inside a line is fine).
     */
    this.safeStart = true;
    this.received = 0;
    this.gaps = 0;
    this.gapBytes = 0;
    /** Gaps whose size the bytes cannot tell (a second gap inside a line number). */
    this.unplacedGaps = 0;
    /** The first violation, or "". */
    this.error = "";
    this.ended = false;
    this.totalLines = -1;
  }

  /** Bytes before the first line start (a start inside a line), checked once it is known. */
  #prefix = [];
  /** Digits of a line number read after a `#` that was not due (-1: not reading one). */
  #digits = -1;
  #number = 0;
  /** Where that line would have been due (-1: the first line; -2: unknown). */
  #gapFrom = -1;
  #endText = "";

  /** @param {Uint8Array} chunk */
  push(chunk) {
    if (this.error) return;
    this.received += chunk.length;
    const length = chunk.length;
    let i = 0;
    while (i < length) {
      if (this.ended) return this.#fail(`bytes after the end line`);
      // Fast path: a whole line, the one due.
      if (this.#digits < 0 && this.#endText === "" && this.offset >= 0 && this.offset % LINE_BYTES === 0 && i + LINE_BYTES <= length) {
        const line = lineInto(this.offset / LINE_BYTES);
        if (Buffer.compare(chunk.subarray(i, i + LINE_BYTES), line) === 0) {
          this.offset += LINE_BYTES;
          i += LINE_BYTES;
          continue;
        }
      }
      const byte = chunk[i++];
      if (this.#endText !== "") {
        this.#endText += String.fromCharCode(byte);
        if (byte === 0x0a) this.#finishEnd();
        else if (this.#endText.length > 40) return this.#fail(`malformed end line`);
        continue;
      }
      if (this.#digits >= 0) {
        if (this.#digits === 0 && byte === 0x45 /* E of #END */) {
          this.#endText = "#E";
          continue;
        }
        if (byte === MARK && this.policy === "drop") {
          // Another gap inside a line number whose line is not known yet: its size is unknown.
          this.unplacedGaps++;
          this.#startNumber(-2);
          continue;
        }
        if (!isDigit(byte)) return this.#fail(`a line number holds byte ${byte}`);
        this.#number = this.#number * 10 + (byte - 0x30);
        if (++this.#digits === DIGITS) this.#lineNumber(this.#number);
        if (this.error) return;
        continue;
      }
      if (this.offset < 0) {
        if (byte === MARK) this.#startNumber(-1);
        else {
          if (this.#prefix.length === 0 && byte >= 0x80 && byte <= 0xbf) this.safeStart = false;
          if (this.#prefix.length >= LINE_BYTES) return this.#fail(`no line start in the first ${LINE_BYTES} bytes`);
          this.#prefix.push(byte);
        }
        continue;
      }
      const at = this.offset % LINE_BYTES;
      const expected = streamByte(this.offset);
      if (byte === expected && !(byte === 0x45 && at === 1)) {
        this.offset++;
        continue;
      }
      if (at === 1 && byte === 0x45) {
        // `#E`: the end line where a line was due.
        this.#gapFrom = this.offset - 1;
        this.#endText = "#E";
        continue;
      }
      if (this.policy === "drop" && byte === MARK) {
        this.#startNumber(this.offset);
        continue;
      }
      if (this.policy === "drop" && at >= 1 && at <= DIGITS && isDigit(byte) && this.offset - at >= this.startOffset) {
        // The `#` just received began a later line: the gap started at that line start, and
        // the digits so far were that line's too.
        const lineStart = this.offset - at;
        this.#startNumber(lineStart);
        this.#number = Math.floor(lineStart / LINE_BYTES / 10 ** (DIGITS - at + 1));
        this.#digits = at - 1;
        this.#number = this.#number * 10 + (byte - 0x30);
        if (++this.#digits === DIGITS) this.#lineNumber(this.#number);
        continue;
      }
      return this.#fail(`byte ${byte} at stream offset ${this.offset} (line ${Math.floor(this.offset / LINE_BYTES)}), ${expected} due`);
    }
  }

  #startNumber(gapFrom) {
    this.#digits = 0;
    this.#number = 0;
    this.#gapFrom = gapFrom;
  }

  /** A line start read in full after a `#` that was not due: place it. */
  #lineNumber(n) {
    this.#digits = -1;
    const lineStart = n * LINE_BYTES;
    if (this.offset < 0) {
      this.startOffset = lineStart - this.#prefix.length;
      // A start inside a line: what came first must be the end of line n - 1.
      for (let k = 0; k < this.#prefix.length; k++) {
        if (this.#prefix[k] === streamByte(this.startOffset + k)) continue;
        if (this.policy === "drop") {
          // A gap came before the first line start: where it began is not known.
          this.unplacedGaps++;
          break;
        }
        return this.#fail(`the bytes before line ${n} are not the end of line ${n - 1}`);
      }
      this.#prefix = [];
    } else if (this.#gapFrom === -2) {
      this.gaps++;
    } else {
      const from = this.#gapFrom;
      if (this.policy !== "drop") return this.#fail(`line ${n} where offset ${from} was due: a gap`);
      if (lineStart <= from) return this.#fail(`line ${n} after stream offset ${from}: not ahead`);
      this.gaps++;
      this.gapBytes += lineStart - from;
    }
    this.offset = lineStart + 1 + DIGITS;
  }

  #finishEnd() {
    const text = this.#endText;
    this.#endText = "";
    this.#digits = -1;
    const match = /^#END (\d+)\r\n$/.exec(text);
    if (!match) return this.#fail(`malformed end line ${JSON.stringify(text)}`);
    const total = Number(match[1]);
    const endOffset = total * LINE_BYTES;
    if (this.offset < 0) this.startOffset = endOffset - this.#prefix.length;
    else {
      const from = this.#gapFrom >= 0 ? this.#gapFrom : this.offset;
      if (endOffset !== from) {
        if (this.policy !== "drop" || endOffset < from) return this.#fail(`the end line at offset ${endOffset}, ${from} due`);
        this.gaps++;
        this.gapBytes += endOffset - from;
      }
    }
    this.offset = endOffset;
    this.ended = true;
    this.totalLines = total;
  }

  #fail(message) {
    if (!this.error) this.error = message;
  }

  /** What the checker knows, for the soak's report. */
  summary() {
    return {
      policy: this.policy,
      received: this.received,
      startOffset: this.startOffset,
      endOffset: this.offset,
      safeStart: this.safeStart,
      gaps: this.gaps,
      gapBytes: this.gapBytes,
      unplacedGaps: this.unplacedGaps,
      ended: this.ended,
      error: this.error,
    };
  }
}
