// QMP command failures and QAPI's argument checks (qapi/qobject-input-visitor.c): the error
// classes a command answers with, and the checks with QEMU's texts (missing, unexpected, wrong
// type, bad enum value). Near a leaf (it imports only limits.ts's quoting), so each backend kind's command
// file (chardev/*_qmp.ts), the monitor and the registry's `chardev-add` checks share it.

import { quoteInput } from "../limits.ts";

/** QMP error classes we answer with (QEMU's QapiErrorClass). */
export type QmpErrorClass = "GenericError" | "CommandNotFound";

/** A command failed; becomes `{"error": {"class", "desc"}}`. */
export class QmpError extends Error {
  constructor(
    readonly errorClass: QmpErrorClass,
    desc: string,
  ) {
    super(desc);
  }
}

/** A GenericError with QEMU's text `desc`. */
export const genericError = (desc: string) => new QmpError("GenericError", desc);

/** What a QAPI argument check found wrong. */
export type QapiMistake = "missing" | "unexpected" | "type" | "value";

/**
 * A failed QAPI argument check: a GenericError with QEMU's text, plus what was wrong, so that a
 * library caller (the registry's `add`) can turn it into its own error code.
 */
export class QapiArgumentError extends QmpError {
  constructor(
    readonly mistake: QapiMistake,
    desc: string,
  ) {
    super("GenericError", desc);
  }
}

const wrongType = (name: string, expected: string) => new QapiArgumentError("type", `Invalid parameter type for '${name}', expected: ${expected}`);

/** A command's `arguments` (or a nested struct of them). */
export type QmpArguments = Record<string, unknown>;

/** A JSON object (not null, not an array). */
export const isObject = (value: unknown): value is QmpArguments => typeof value === "object" && value !== null && !Array.isArray(value);

/** Checks the value of a QAPI member that is present; `name` is its full name (`enable[0]`). */
export type MemberCheck = (value: unknown, name: string) => void;

/** QAPI `str`. */
export const isString: MemberCheck = (value, name) => {
  if (typeof value !== "string") throw wrongType(name, "string");
};

/** QAPI `bool`. */
export const isBoolean: MemberCheck = (value, name) => {
  if (typeof value !== "boolean") throw wrongType(name, "boolean");
};

/** QAPI `int`. */
export const isInteger: MemberCheck = (value, name) => {
  if (!Number.isInteger(value)) throw wrongType(name, "integer");
};

/** A nested struct (checked further by its own `checkArguments`). */
export const isStruct: MemberCheck = (value, name) => {
  if (!isObject(value)) throw wrongType(name, "object");
};

/**
 * An enum: a string, and one of `values`. QEMU's text names the member alone, not its path
 * (`Parameter 'type' does not accept value 'warp'` for `backend.type`).
 */
export const isOneOf =
  (...values: string[]): MemberCheck =>
  (value, name) => {
    isString(value, name);
    const member = name.slice(name.lastIndexOf(".") + 1);
    if (!values.includes(value as string)) throw new QapiArgumentError("value", `Parameter '${member}' does not accept value '${quoteInput(value as string)}'`);
  };

/** A list whose every element passes `item`. */
export const isListOf =
  (item: MemberCheck): MemberCheck =>
  (value, name) => {
    if (!Array.isArray(value)) throw wrongType(name, "array");
    value.forEach((element, i) => item(element, `${name}[${i}]`));
  };

/** QAPI's DataFormat, the `format` of the ringbuf commands. */
export const isDataFormat = isOneOf("utf8", "base64");

/** One member of a command's schema: its check, and whether it may be absent. */
export interface Member {
  readonly check: MemberCheck;
  readonly optional?: boolean;
}

/**
 * QAPI's input checks with its texts: members in schema order (missing, wrong type, bad enum
 * value), then any member the schema lacks. `prefix` names a nested struct (`backend.`).
 */
export function checkArguments(args: QmpArguments, members: Record<string, Member>, prefix = ""): void {
  for (const [name, { check, optional }] of Object.entries(members)) {
    const value = Object.hasOwn(args, name) ? args[name] : undefined;
    if (value !== undefined) check(value, prefix + name);
    else if (!optional) throw new QapiArgumentError("missing", `Parameter '${prefix}${name}' is missing`);
  }
  for (const name of Object.keys(args)) {
    if (!Object.hasOwn(members, name)) throw new QapiArgumentError("unexpected", `Parameter '${prefix}${quoteInput(name)}' is unexpected`);
  }
}

/** One QMP command: checks its arguments, does its work, returns its `return` value. */
export type QmpCommand = (args: QmpArguments) => unknown;
