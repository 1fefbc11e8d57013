// QMP's output encoding: a value as QEMU's monitor writes it (qobject/qjson.c): one line,
// `": "` and `", "` between members, every non-ASCII and control character as a `\uXXXX`
// escape. The monitor adds the "\r\n" after each message.

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
