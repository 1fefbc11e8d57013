// Fuzzing the option parser: `reg.add` with random `-chardev` strings built from the real kinds
// and keys and random values (huge, negative, sizes past the core's, odd characters, `,,`).
// Whatever the string, the answer is a chardev (which then removes cleanly) or a ChardevError
// with a code and a bounded message, nothing else, and the registry is left empty. Kinds that
// would run programs (`spawn`), take over the terminal (`stdio`) or open host ttys (`serial`)
// are left out; paths point into a scratch directory; hosts are loopback or unresolvable.
import fc from "fast-check";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry } from "../host-ts/mod.ts";

/** A message may quote 256 characters of input (issue 10) plus its own words. */
const MAX_MESSAGE = 1024;
const KINDS = ["hub", "ringbuf", "memory", "null", "file", "pipe", "socket", "pty", "web", "webstream", "mux", "teleport", ""];
const KEYS = [
  "id", "path", "size", "append", "input-path", "mode", "host", "port", "server", "wait", "reconnect-ms", "nodelay",
  "high-water-mark", "tls-creds", "access", "queue-limit", "auth", "token", "ro-token", "max-clients", "chardev",
  "mux", "logfile", "logappend", "ring", "open", "primary", "input", "input-idle-ms", "chardevs.0", "chardevs.1",
  "chardevs.4", "policy.0", "lag-limit.0", "stall-ms.0", "replay.0", "mode.0", "policy.1", "signal", "cols", "rows", "bogus",
];

let reg: ChardevRegistry;
let scratch: string;
beforeEach(async () => {
  reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: () => {} });
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "fuzz-options-"));
});
afterEach(async () => {
  await reg.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

function values(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom("on", "off", "0", "1", "-1", "4096", "1M", "1G", "2G", "4G", "8G", "1T", "2147483647", "2147483648", "3000000000", "1e3", "0x10", "block", "drop", "evict", "ro", "rw", "any", "all", "127.0.0.1", "::1", "localhost", "no.such.host.invalid", "a", "ringbuf0"),
    fc.string({ maxLength: 20 }),
    fc.string({ unit: "grapheme", maxLength: 12 }),
    fc.integer({ min: -(2 ** 40), max: 2 ** 53 }).map(String),
    fc.constantFrom(300, 5000).map((n) => "x".repeat(n)),
    fc.string({ maxLength: 40 }).map((name) => path.join(scratch, name.replace(/[/\0]/g, "_") || "p")),
    fc.integer({ min: 90, max: 400 }).map((n) => path.join(scratch, "s".repeat(n))),
  );
}

const option = fc.tuple(fc.constantFrom(...KEYS), values(), fc.boolean()).map(([key, value, pathKey]) => {
  // Paths always lead into the scratch directory; commas are escaped as QEMU's `,,`.
  const safe = key === "path" || key === "input-path" || key === "logfile" ? (pathKey ? path.join(scratch, "p") : path.join(scratch, value.replace(/[/\0]/g, "_").slice(0, 300) || "q")) : value;
  const host = key === "host" && !["127.0.0.1", "::1", "localhost"].includes(safe) ? "no.such.host.invalid" : safe;
  return `${key}=${host.replace(/,/g, ",,")}`;
});

const spec = fc
  .tuple(fc.constantFrom(...KINDS), fc.array(option, { maxLength: 6 }), fc.boolean())
  .map(([kind, options, withId]) => [kind, ...(withId ? ["id=fz"] : []), ...options].join(","));

describe("the option parser under fuzzing", () => {
  it("answers any -chardev string with a chardev or a ChardevError with a code and a bounded message", async () => {
    await fc.assert(
      fc.asyncProperty(spec, async (text) => {
        try {
          const chardev = await reg.add(text);
          await reg.remove(chardev.id);
        } catch (error) {
          if (!(error instanceof ChardevError)) throw new Error(`not a ChardevError for ${JSON.stringify(text.slice(0, 200))}: ${error}`);
          expect(typeof error.code).toBe("string");
          expect(error.code.length).toBeGreaterThan(0);
          expect(error.message.length, error.message.slice(0, 300)).toBeLessThanOrEqual(MAX_MESSAGE);
        }
        // Nothing is left behind: no chardev, so the same id is free again.
        expect(reg.query()).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});
