// One option schema per chardev kind (host-ts/option_schema.ts): the docs' tables, the
// `-chardev` parser and QMP `chardev-add`'s checks all come from it and must agree.

import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevError, ChardevRegistry, parseChardevOptions } from "../host-ts/mod.ts";
import { BUILTIN_DRIVERS } from "../host-ts/chardev/drivers.ts";
import type { ChardevDriver } from "../host-ts/chardev/_chardev.ts";
import { memberOf, optionKeys, qapiFields, qapiMembers, renderOptionTables, type OptionSchema, type OptionSpec } from "../host-ts/option_schema.ts";
import { checkArguments } from "../host-ts/qmp/args.ts";
import { helpText } from "../host-ts/cli/help.ts";
import { errorOf } from "./_fe_handler.ts";

const docsDir = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "docs");
const withSchema = BUILTIN_DRIVERS.filter((driver): driver is ChardevDriver & { options: OptionSchema } => driver.options !== undefined);

/** A value each type's parser takes. */
function sampleValue(spec: OptionSpec): string {
  switch (spec.type) {
    case "bool":
      return "on";
    case "size":
      return "4096";
    case "integer":
      return "80";
    default:
      return spec.values?.[0] ?? "x";
  }
}

/** The `-chardev` key as written for one entry: `chardevs.0`, `policy.0`. */
const writtenKey = (key: string) => key.replace(/\.N$/, ".0");

/**
 * Keys left out of a kind's all-keys option string because the kind's own rules forbid them
 * together with another (the socket: one address, `delay` or `nodelay`).
 */
const EXCLUSIVE: Record<string, readonly string[]> = { socket: ["host", "port", "delay"] };

describe("option schemas", () => {
  it("the option tables in docs/*.md are what the schemas say (node scripts/docs_options.mjs)", () => {
    const files = fs.readdirSync(docsDir).filter((name) => name.endsWith(".md"));
    let tables = 0;
    for (const name of files) {
      const text = fs.readFileSync(path.join(docsDir, name), "utf8");
      tables += (text.match(/<!-- options:/g) ?? []).length;
      expect(renderOptionTables(text, BUILTIN_DRIVERS), `docs/${name} is up to date`).toBe(text);
    }
    // Every kind with options has a table in docs/options.md.
    const reference = fs.readFileSync(path.join(docsDir, "options.md"), "utf8");
    for (const driver of withSchema) {
      if (driver.options.length > 0) expect(reference, `docs/options.md has ${driver.type}`).toContain(`<!-- options:${driver.type} -->`);
    }
    expect(tables).toBeGreaterThanOrEqual(withSchema.length);
  });

  it("a table marker naming no kind is refused, so a renamed kind cannot leave a stale table", () => {
    expect(() => renderOptionTables("<!-- options:teleport -->\n<!-- /options -->", BUILTIN_DRIVERS)).toThrow("no chardev kind 'teleport'");
  });

  it("--help names every key of every kind's schema as key=...", () => {
    const text = helpText();
    for (const driver of withSchema) {
      for (const key of optionKeys(driver.options)) {
        expect(new RegExp(`(^|[\\s,(|])${key.replace(/\./g, "\\.")}=`, "m").test(text), `--help names ${driver.type} ${key}=`).toBe(true);
      }
    }
  });

  it("every kind's fields are its schema's QMP members", () => {
    for (const driver of withSchema) expect(driver.fields, driver.type).toEqual(qapiFields(driver.options));
  });

  for (const qemuCompat of [true, false]) {
    it(`every key of every kind's schema is a key the -chardev parser knows (qemuCompat ${qemuCompat})`, () => {
      for (const driver of withSchema) {
        for (const key of optionKeys(driver.options)) {
          const parsed = parseChardevOptions(`${driver.type},id=c,${writtenKey(key)}=v`, qemuCompat);
          expect(parsed.options.get(writtenKey(key)), `${driver.type} ${key}`).toBe("v");
        }
      }
    });
  }

  it("every kind's -chardev keys become QAPI data that QMP's checks accept, members the schema declares", () => {
    for (const driver of withSchema) {
      const skip = EXCLUSIVE[driver.type] ?? [];
      const params = driver.options
        .filter((spec) => spec.key !== undefined && !skip.includes(spec.key))
        .map((spec) => `${writtenKey(spec.type === "list" ? `${spec.key}.N` : spec.key!)}=${sampleValue(spec)}`);
      const { options } = parseChardevOptions([driver.type, "id=c", ...params].join(","), false);
      const data = driver.fromOptions(options);
      // Would QMP take what the option string made? (QAPI's types, required members, no strays.)
      expect(() => checkArguments(data, qapiMembers(driver.options), "backend.data."), driver.type).not.toThrow();
      const declared = driver.options.map(memberOf).filter((member) => member !== null);
      for (const member of Object.keys(data)) expect(declared, `${driver.type} declares ${member}`).toContain(member);
      // Every key with a member of its own reached it.
      for (const spec of driver.options) {
        const member = memberOf(spec);
        if (spec.key !== undefined && member !== null && !skip.includes(spec.key)) expect(Object.keys(data), `${driver.type} ${spec.key}`).toContain(member);
      }
    }
  });
});

describe("QMP chardev-add checks from the schemas", () => {
  let reg: ChardevRegistry;
  beforeEach(async () => {
    reg = await ChardevRegistry.create();
  });
  afterEach(async () => {
    await reg.close();
  });

  it("a missing required member is named by its path, as QEMU 7.2 does ('backend.data.out')", async () => {
    let required = 0;
    for (const driver of withSchema) {
      for (const spec of driver.options.filter((option) => option.required)) {
        required++;
        const error = await errorOf(() => reg.add({ id: "c", backend: { type: driver.type, data: {} } }));
        expect(error).toBeInstanceOf(ChardevError);
        expect((error as ChardevError).code).toBe("MISSING_PARAMETER");
        expect(error.message).toBe(`Parameter 'backend.data.${memberOf(spec)}' is missing`);
      }
    }
    expect(required).toBeGreaterThanOrEqual(5); // file, pipe, serial, mux, socket, spawn
    expect(reg.query()).toEqual([]);
  });

  it("as in QEMU, a missing member is reported before an unexpected one, and a wrong type before either", async () => {
    expect((await errorOf(() => reg.add({ id: "f", backend: { type: "file", data: { colour: 1 } } }))).message).toBe("Parameter 'backend.data.out' is missing");
    expect((await errorOf(() => reg.add({ id: "f", backend: { type: "file", data: { out: "/x", append: "yes", colour: 1 } } }))).message).toBe(
      "Invalid parameter type for 'backend.data.append', expected: boolean",
    );
    expect((await errorOf(() => reg.add({ id: "f", backend: { type: "file", data: { out: "/x", logappend: "yes" } } }))).message).toBe(
      "Invalid parameter type for 'backend.data.logappend', expected: boolean",
    );
  });

  it("an unknown backend type is QEMU's text naming the member alone, with the code UNKNOWN_BACKEND", async () => {
    const error = await errorOf(() => reg.add({ id: "n", backend: { type: "warp" } }));
    expect(error).toBeInstanceOf(ChardevError);
    expect((error as ChardevError).code).toBe("UNKNOWN_BACKEND");
    expect(error.message).toBe("Parameter 'type' does not accept value 'warp'");
  });

  it("a member of each kind's schema with a value of the wrong type is refused with QAPI's type name", async () => {
    const wrong: Record<string, [unknown, string]> = {
      string: [1, "string"],
      bool: ["on", "boolean"],
      size: ["8", "integer"],
      integer: [1.5, "integer"],
      list: ["a", "array"],
      object: ["a", "object"],
    };
    const valid: Record<string, unknown> = { string: "x", bool: true, size: 8, integer: 8, list: ["a"], object: {} };
    for (const driver of withSchema) {
      // Required members present, so that only the wrong type is left to report.
      const required = Object.fromEntries(driver.options.filter((option) => option.required).map((option) => [memberOf(option), valid[option.type]]));
      for (const spec of driver.options) {
        const member = memberOf(spec);
        if (member === null) continue;
        const [value, expected] = wrong[spec.type];
        const error = await errorOf(() => reg.add({ id: "c", backend: { type: driver.type, data: { ...required, [member]: value } } }));
        expect(error.message, `${driver.type} ${member}`).toBe(`Invalid parameter type for 'backend.data.${member}', expected: ${expected}`);
      }
    }
  });
});
