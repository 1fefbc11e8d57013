// Fuzzing QMP: the JSON streamer fed random bytes and JSON fragments in random chunks, and a
// monitor on a real UNIX socket (startQmp) fed the same and random commands with random
// arguments. Asserted: no exception, every answer a well-formed QMP message with a bounded
// error text, no more answers than input bytes, and the monitor still answering a real command
// after the garbage (a 0xFF byte ends whatever was half-read, as in QEMU: it is never valid JSON).
import fc from "fast-check";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry } from "../host-ts/mod.ts";
import { QmpJsonStreamer, type QmpInput } from "../host-ts/qmp.ts";
import { connectClient, type QmpTestClient } from "./qmp/_clients.ts";

/** An error text may quote 256 characters of input (issue 10) plus its own words. */
const MAX_ERROR = 1024;
const encoder = new TextEncoder();
const RESYNC = Uint8Array.of(0xff);

const fragments = fc.constantFrom(
  "{", "}", "[", "]", ":", ",", '"', "\\", "\\u", "\\ud800", "\\u0000", "'", "execute", '"execute"', '"arguments"', '"id"',
  "qmp_capabilities", "query-version", "true", "false", "null", "1e999", "-0", "0x1", "12345678901234567890", "\n", "\r\n",
  " ", "\t", "\u00e9", "\u{1F680}", "%", "@", "$", "/*", '{"execute":"query-version"}', '{"execute":', "[[[[[[[[", "]]]]]]]]",
);
const chunk = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.array(fragments, { maxLength: 24 }).map((parts) => encoder.encode(parts.join(""))),
  fc.string({ unit: "binary", maxLength: 32 }).map((text) => encoder.encode(text)),
);
const input = fc.array(chunk, { maxLength: 12 });

function checkInput(item: QmpInput): void {
  if ("error" in item) {
    expect(typeof item.error).toBe("string");
    expect(item.error.length, item.error.slice(0, 200)).toBeLessThanOrEqual(MAX_ERROR);
  } else expect("value" in item).toBe(true);
}

describe("QMP under fuzzing", () => {
  it("the JSON streamer takes any bytes in any chunks, answers boundedly, and frames a real message after a 0xFF", () => {
    fc.assert(
      fc.property(input, (chunks) => {
        const out: QmpInput[] = [];
        const streamer = new QmpJsonStreamer((item) => out.push(item));
        let bytes = 0;
        for (const piece of chunks) {
          streamer.feed(piece);
          bytes += piece.length;
        }
        for (const item of out) checkInput(item);
        expect(out.length).toBeLessThanOrEqual(bytes + 1);
        out.length = 0;
        streamer.feed(RESYNC);
        streamer.feed(encoder.encode('{"execute": "query-version", "id": "probe"}'));
        expect(out.at(-1)).toEqual({ value: { execute: "query-version", id: "probe" } });
      }),
      { numRuns: 1000 },
    );
  });

  describe("a monitor on a UNIX socket", () => {
    let reg: ChardevRegistry;
    let dir: string;
    let client: QmpTestClient;
    beforeEach(async () => {
      reg = await ChardevRegistry.create({ qemuCompat: false, onWarning: () => {} });
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "fuzz-qmp-"));
      client = await connectClient(reg, "unix", dir);
      await client.negotiate();
    });
    afterEach(async () => {
      await client.close();
      await reg.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    /** Reads answers until the probe's; each must be a well-formed QMP message. */
    async function answersUntilProbe(): Promise<number> {
      let answers = 0;
      for (;;) {
        const message = await client.next();
        answers++;
        if ("error" in message) {
          expect(Object.keys(message.error).sort()).toEqual(["class", "desc"]);
          expect(message.error.desc.length, message.error.desc.slice(0, 200)).toBeLessThanOrEqual(MAX_ERROR);
        } else expect("return" in message || "event" in message, JSON.stringify(message).slice(0, 200)).toBe(true);
        if (message.id === "probe") {
          expect(message.return?.qemu, JSON.stringify(message).slice(0, 200)).toBeDefined();
          return answers;
        }
      }
    }

    it("answers random bytes with QMP errors and still answers a real command after them", async () => {
      await fc.assert(
        fc.asyncProperty(input, async (chunks) => {
          let bytes = 0;
          for (const piece of chunks) {
            client.send(piece);
            bytes += piece.length;
          }
          client.send(RESYNC);
          client.send('{"execute": "query-version", "id": "probe"}\r\n');
          expect(await answersUntilProbe()).toBeLessThanOrEqual(bytes + 2);
        }),
        { numRuns: 150 },
      );
    });

    it("answers random commands with random arguments with a return or a QMP error, and keeps going", async () => {
      const commands = ["query-commands", "query-version", "chardev-add", "chardev-remove", "chardev-change", "query-chardev", "query-chardev-backends", "ringbuf-write", "ringbuf-read", "chardev-send-break", "hub-attach", "hub-detach", "query-hub", "object-add", "object-del", "no-such-command"];
      const argument = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.string({ maxLength: 400 }), fc.integer(), fc.constant("mon"));
      const command = fc.record({
        execute: fc.constantFrom(...commands),
        arguments: fc.option(fc.dictionary(fc.constantFrom("id", "backend", "data", "size", "format", "hub", "chardev", "policy", "qom-type", "type", "x"), argument, { maxKeys: 4 }), { nil: undefined }),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 5 }), async (list) => {
          for (const item of list) client.send(JSON.stringify(item) + "\r\n");
          client.send('{"execute": "query-version", "id": "probe"}\r\n');
          expect(await answersUntilProbe()).toBe(list.length + 1);
          // Whatever the commands made, only the monitor's own chardev may be left with ours removed.
          for (const info of reg.query()) if (info.label !== "compat_monitor0") await reg.remove(info.label).catch(() => {});
        }),
        { numRuns: 150 },
      );
    });
  });
});
