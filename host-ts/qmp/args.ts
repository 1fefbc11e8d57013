// QMP command failures and QAPI's argument checks (qapi/qobject-input-visitor.c): the error
// classes a command answers with, and the checks with QEMU's texts (missing, unexpected, wrong
// type, bad enum value). A leaf: it imports nothing, so each backend kind's command file
// (chardev/*_qmp.ts) and the monitor can share it.

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

/** A command's `arguments` (or a nested struct of them). */
export type QmpArguments = Record<string, unknown>;

/** A JSON object (not null, not an array). */
export const isObject = (value: unknown): value is QmpArguments => typeof value === "object" && value !== null && !Array.isArray(value);

/** Checks the value of a QAPI member that is present; `name` is its full name (`enable[0]`). */
export type MemberCheck = (value: unknown, name: string) => void;

/** QAPI `str`. */
export const isString: MemberCheck = (value, name) => {
  if (typeof value !== "string") throw genericError(`Invalid parameter type for '${name}', expected: string`);
};

/** QAPI `int`. */
export const isInteger: MemberCheck = (value, name) => {
  if (!Number.isInteger(value)) throw genericError(`Invalid parameter type for '${name}', expected: integer`);
};

/** A nested struct (checked further by its own `checkArguments`). */
export const isStruct: MemberCheck = (value, name) => {
  if (!isObject(value)) throw genericError(`Invalid parameter type for '${name}', expected: object`);
};

/** An enum: a string, and one of `values`. */
export const isOneOf =
  (...values: string[]): MemberCheck =>
  (value, name) => {
    isString(value, name);
    if (!values.includes(value as string)) throw genericError(`Parameter '${name}' does not accept value '${value}'`);
  };

/** A list whose every element passes `item`. */
export const isListOf =
  (item: MemberCheck): MemberCheck =>
  (value, name) => {
    if (!Array.isArray(value)) throw genericError(`Invalid parameter type for '${name}', expected: array`);
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
    else if (!optional) throw genericError(`Parameter '${prefix}${name}' is missing`);
  }
  for (const name of Object.keys(args)) {
    if (!Object.hasOwn(members, name)) throw genericError(`Parameter '${prefix}${name}' is unexpected`);
  }
}

/** One QMP command: checks its arguments, does its work, returns its `return` value. */
export type QmpCommand = (args: QmpArguments) => unknown;
