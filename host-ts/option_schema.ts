// One declaration per option of a chardev kind: its `-chardev` key, its QMP member, its type,
// default, bounds and help. The option-string parser (which keys exist, and turning them into
// QAPI `data`), QMP `chardev-add`'s checks of `backend.data`, and the docs' option tables
// (scripts/docs_options.mjs, checked by tests/option_schema.test.ts) are derived from it, so a
// new key is written once. A kind keeps a hook of its own only for rules across fields (the
// socket's address, the hub's per-backend keys).

import { ChardevError } from "./errors.ts";
import { listOption, parseBool, parseSize } from "./options.ts";
import { isBoolean, isListOf, isString, isStruct, QapiArgumentError, type Member, type MemberCheck } from "./qmp/args.ts";

/**
 * How an option is written. On the command line `size` takes k/M/G/T suffixes, `integer` and
 * `size` are parsed by QemuOpts' number rules (unless a `parse` of the option's own says
 * otherwise), `list` is `key.0=...,key.1=...`; in QMP `size` and `integer` are JSON integers,
 * `list` an array of strings, `object` a nested struct the kind checks itself.
 */
export type OptionType = "string" | "bool" | "size" | "integer" | "list" | "object";

/** One option of a chardev kind. */
export interface OptionSpec {
  /**
   * The `-chardev` key (`path`); for a list its name without `.N` (`chardevs`); for a
   * per-entry key of a list `name.N` (`policy.N`). Absent: QMP only (the socket's `addr`).
   */
  readonly key?: string;
  /**
   * The QAPI member of `backend.data` (file's `path` is `out`).
   * @default the key; `null` for a key with no member of its own (`delay`, `policy.N`)
   */
  readonly member?: string | null;
  readonly type: OptionType;
  /** The values an enumeration accepts (documented; the kind checks them with its texts). */
  readonly values?: readonly string[];
  /** The default, as the docs say it (`64K`, `the loopback address`); absent: none. */
  readonly default?: string;
  /** Bounds of a number (documented; checked by the kind with limits.ts's texts). */
  readonly min?: number;
  readonly max?: number;
  /** What a number counts, for the docs (`size` is bytes already). */
  readonly unit?: "ms" | "s" | "bit/s";
  /** Where QMP takes a key with no member of its own (`addr`, `options.ID.policy`), for the docs. */
  readonly via?: string;
  /** QMP refuses `backend.data` without it (`Parameter 'backend.data.out' is missing`). */
  readonly required?: boolean;
  /** The `-chardev` error when the key is absent (a required key; QEMU's text where it has one). */
  readonly missing?: string;
  /** The `-chardev` value's parser, where the kind's texts differ from QemuOpts'. */
  readonly parse?: (value: string) => unknown;
  /** One line for --help and the docs. */
  readonly help: string;
}

/** A kind's options, in QAPI member order (that decides which of two mistakes is reported). */
export type OptionSchema = readonly OptionSpec[];

/** Members every kind has (QEMU's ChardevCommon, then our log options), first in QAPI's order. */
export const COMMON_OPTIONS: OptionSchema = [
  { key: "logfile", type: "string", help: "also write the output to this file" },
  { key: "logappend", type: "bool", default: "off", help: "append to `logfile` instead of truncating it" },
  // Ours (docs/logs.md); `file` applies them to its own output as well.
  { key: "timestamp", type: "bool", default: "off", help: "start every line of `logfile` (and of `file`'s output) with the UTC time of its first byte: `2026-12-03T13:45:07.123Z `" },
  { key: "logfilemax", type: "size", help: "rotate the log once it holds this many bytes: FILE becomes FILE.1, FILE.1 FILE.2, ... (absent or 0: never)" },
  { key: "rotate", type: "integer", default: "5", min: 0, max: 1000, help: "how many rotated files `logfilemax` keeps (FILE.1 to FILE.N; 0: the log is emptied instead)" },
];

/** The option's QAPI member name, or null when it has none. */
export function memberOf(spec: OptionSpec): string | null {
  if (spec.member !== undefined) return spec.member;
  return spec.key !== undefined && !spec.key.endsWith(".N") ? spec.key : null;
}

/** The `-chardev` keys of a schema as parseChardevOptions knows them (`chardevs.N`, `policy.N`). */
export function optionKeys(schema: OptionSchema): string[] {
  return schema.flatMap((spec) => (spec.key === undefined ? [] : [spec.type === "list" ? `${spec.key}.N` : spec.key]));
}

/** QAPI `int`/`size` as the registry has always taken them: integers JavaScript holds exactly. */
const isSafeInteger: MemberCheck = (value, name) => {
  if (!Number.isSafeInteger(value)) throw new QapiArgumentError("type", `Invalid parameter type for '${name}', expected: integer`);
};

const QAPI_CHECKS: Record<OptionType, MemberCheck> = {
  string: isString,
  bool: isBoolean,
  size: isSafeInteger,
  integer: isSafeInteger,
  list: isListOf(isString),
  object: isStruct,
};

/** The QAPI members of `backend.data` (common ones first) for qmp/args.ts's checkArguments. */
export function qapiMembers(schema: OptionSchema): Record<string, Member> {
  const members: Record<string, Member> = {};
  for (const spec of [...COMMON_OPTIONS, ...schema]) {
    const member = memberOf(spec);
    if (member !== null) members[member] = { check: QAPI_CHECKS[spec.type], optional: !spec.required };
  }
  return members;
}

/** QAPI member types by name, the shape of ChardevDriver's `fields` (common members left out). */
export function qapiFields(schema: OptionSchema): Record<string, "string" | "bool" | "integer" | "stringList" | "object"> {
  const fields: Record<string, "string" | "bool" | "integer" | "stringList" | "object"> = {};
  for (const spec of schema) {
    const member = memberOf(spec);
    if (member === null) continue;
    fields[member] = spec.type === "size" ? "integer" : spec.type === "list" ? "stringList" : spec.type;
  }
  return fields;
}

/**
 * QEMU's `parse` hook, derived: the `-chardev` keys of `schema` that are present become their
 * QAPI members, each parsed by its type (or its own `parse`); an absent required key throws
 * its `missing` text. Keys without a member of their own are left to the kind's hook.
 */
export function dataFromOptions(schema: OptionSchema, options: Map<string, string>): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const spec of schema) {
    const member = memberOf(spec);
    if (spec.key === undefined || member === null) continue;
    if (spec.type === "list") {
      const items = listOption(options, spec.key);
      if (items.length > 0) data[member] = items;
      else if (spec.missing !== undefined) throw new ChardevError("MISSING_PARAMETER", spec.missing);
      continue;
    }
    const text = options.get(spec.key);
    if (text === undefined || (text === "" && spec.missing !== undefined)) {
      if (spec.missing !== undefined) throw new ChardevError("MISSING_PARAMETER", spec.missing);
      continue;
    }
    data[member] = spec.parse ? spec.parse(text) : parseValue(spec, text);
  }
  return data;
}

function parseValue(spec: OptionSpec, text: string): unknown {
  const key = spec.key!;
  switch (spec.type) {
    case "bool":
      return parseBool(key, text);
    case "size":
    case "integer":
      return parseSize(key, text);
    default:
      return text;
  }
}

/** A kind's options for the docs: the kind, its aliases, and its schema. */
export interface DocumentedKind {
  readonly type: string;
  readonly aliases?: readonly string[];
  readonly options?: OptionSchema;
}

const escapeCell = (text: string) => text.replace(/\|/g, "\\|");
const code = (text: string) => `\`${text}\``;

/** A size as the docs write it: `512M` rather than 536870912. */
function sizeText(bytes: number): string {
  for (const [suffix, scale] of [["G", 2 ** 30], ["M", 2 ** 20], ["K", 2 ** 10]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${suffix}`;
  }
  return String(bytes);
}

function typeCell(spec: OptionSpec): string {
  if (spec.values) return spec.values.map(code).join(", ");
  const name = { string: "string", bool: "`on`, `off`", size: "bytes", integer: spec.unit ?? "integer", list: "list of strings", object: "object (QMP only)" }[spec.type];
  const show = spec.type === "size" ? sizeText : String;
  if (spec.max === undefined) return spec.min === undefined ? name : `${name}, at least ${show(spec.min)}`;
  return `${name}, ${show(spec.min ?? 0)} to ${show(spec.max)}`;
}

/**
 * The Markdown table of a kind's options: key, QMP member, values, default, meaning. `only`
 * picks keys (or QMP members, for QMP-only options) and keeps the schema's order.
 */
export function optionTable(kind: DocumentedKind, only?: readonly string[]): string {
  const rows = (kind.options ?? []).filter((spec) => !only || only.includes(spec.key ?? memberOf(spec) ?? ""));
  const lines = ["| key | QMP member | values | default | meaning |", "|---|---|---|---|---|"];
  for (const spec of rows) {
    const key = spec.key === undefined ? "" : code(spec.type === "list" ? `${spec.key}.N` : spec.key);
    const member = memberOf(spec);
    const dflt = spec.required ? "required" : (spec.default ?? "");
    const qmp = member !== null ? code(member) : spec.via !== undefined ? `(in ${code(spec.via)})` : "";
    lines.push(`| ${key} | ${qmp} | ${escapeCell(typeCell(spec))} | ${escapeCell(dflt)} | ${escapeCell(spec.help)} |`);
  }
  return lines.join("\n");
}

/**
 * Rewrites every generated table in a Markdown text: the lines between
 * `<!-- options:KIND -->` (or `<!-- options:KIND:key1,key2 -->`) and `<!-- /options -->`.
 * Unknown kinds throw, so a renamed kind cannot leave a stale table.
 */
export function renderOptionTables(markdown: string, kinds: readonly DocumentedKind[]): string {
  return markdown.replace(/(<!-- options:([a-z-]+)(?::([^ ]+))? -->\n)[\s\S]*?(<!-- \/options -->)/g, (_all, open: string, type: string, keys: string | undefined, close: string) => {
    const kind = kinds.find((candidate) => candidate.type === type);
    if (!kind) throw new Error(`docs: no chardev kind '${type}' for an options table`);
    return `${open}${optionTable(kind, keys?.split(","))}\n${close}`;
  });
}
