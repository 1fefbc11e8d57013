// `-readconfig FILE`: chardevs and consoles from a file in QEMU's -readconfig syntax
// (qemu_config_parse in util/qemu-config.c): `[group "id"]` opens a section, `key = "value"`
// sets a key in it (the value is everything between the quotes; QEMU has no escapes, so a
// value cannot hold `"`), lines starting with `#` are comments, blank lines are skipped. We
// read two groups: `[chardev "ID"]` (`backend = "socket"` and the chardev's keys, as QEMU's
// own -readconfig has them) and `[console "NAME"]` (`device = "..."` and the -console keys).
// A mistake is reported as QEMU reports one, prefixed with FILE:LINE.

import { chardevsOfConsole, consoleSpecFromEntries, formatConsoleSpec, optionValue, type Consoles, type ConsoleSpec } from "./consoles.ts";
import { ChardevError } from "../errors.ts";
import { strerror } from "../errno.ts";
import { quoteInput } from "../limits.ts";
import type { ChardevRegistry } from "../registry.ts";
import type { HostRuntime } from "../runtime/types.ts";

/**
 * The largest config file read (a file of a few thousand consoles fits many times over).
 * @default 1 MiB
 */
export const MAX_CONFIG_BYTES = 1048576;
/** QEMU reads a line into a buffer of 1024 bytes and refuses a longer one. */
const MAX_LINE_CHARS = 1024;

/** A `[chardev "ID"]` section: the `-chardev` string it stands for. */
export interface ConfigChardev {
  readonly id: string;
  /** `BACKEND,id=ID,key=value,...` with QEMU's comma doubling. */
  readonly spec: string;
  /** Where the section starts, `FILE:LINE`, for errors from making it. */
  readonly where: string;
}

/** A `[console "NAME"]` section. */
export interface ConfigConsole {
  readonly spec: ConsoleSpec;
  readonly where: string;
}

/** What a config file asks for, in the file's order. */
export interface RunConfig {
  readonly file: string;
  readonly chardevs: readonly ConfigChardev[];
  readonly consoles: readonly ConfigConsole[];
}

interface Section {
  readonly group: "chardev" | "console";
  readonly id: string;
  readonly line: number;
  readonly entries: [string, string][];
}

/**
 * Reads config `text` (the contents of `file`, which only names it in errors). Throws
 * ChardevError `FILE:LINE: ...` at the first mistake; checks what it can without a registry
 * (a chardev section's backend, a console's device and name), not the chardevs' own keys.
 *
 * @example A socket chardev from a section
 * ```ts
 * const config = parseConfig('[chardev "s1"]\n  backend = "socket"\n  path = "/tmp/s1.sock"\n  server = "on"\n', "hub.ini");
 * config.chardevs[0].spec; // "socket,id=s1,path=/tmp/s1.sock,server=on,wait=off" (a config's servers never wait)
 * ```
 */
export function parseConfig(text: string, file: string): RunConfig {
  const sections: Section[] = [];
  let current: Section | null = null;
  const seen = { chardev: new Set<string>(), console: new Set<string>() };
  const fail = (line: number, message: string): never => {
    throw new ChardevError("INVALID_VALUE", `${quoteInput(file)}:${line}: ${message}`);
  };
  const lines = text.split("\n");
  // A file ending in a newline has no line after it.
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((raw, index) => {
    const lineNumber = index + 1;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.length >= MAX_LINE_CHARS) fail(lineNumber, "line too long");
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const header = /^\[(\S+)\s+"([^"]*)"\]\s*$/.exec(trimmed) ?? /^\[([^\]\s"]+)\]\s*$/.exec(trimmed);
    if (header) {
      const [, group, id] = header;
      if (group !== "chardev" && group !== "console") fail(lineNumber, `There is no option group '${quoteInput(group)}' (chardev-hub reads [chardev "ID"] and [console "NAME"])`);
      if (id === undefined || id === "") fail(lineNumber, `[${group}] needs ${group === "chardev" ? "an id" : "a name"}: [${group} "${group === "chardev" ? "ID" : "NAME"}"]`);
      if (seen[group as "chardev" | "console"].has(id)) fail(lineNumber, `Duplicate ID '${quoteInput(id)}' for ${group}`);
      seen[group as "chardev" | "console"].add(id);
      current = { group: group as "chardev" | "console", id, line: lineNumber, entries: [] };
      sections.push(current);
      return;
    }
    const setting = /^([^\s="]+)\s*=\s*"([^"]*)"\s*$/.exec(trimmed);
    if (!setting) fail(lineNumber, "parse error");
    if (!current) fail(lineNumber, "no group defined");
    const [, key, value] = setting!;
    if (key === "id") fail(lineNumber, `Invalid parameter 'id': the section names it ([${current!.group} "${quoteInput(current!.id)}"])`);
    current!.entries.push([key, value]);
  });

  const chardevs: ConfigChardev[] = [];
  const consoles: ConfigConsole[] = [];
  for (const section of sections) {
    const where = `${quoteInput(file)}:${section.line}`;
    if (section.group === "chardev") {
      const backend = section.entries.find(([key]) => key === "backend")?.[1];
      if (!backend) throw new ChardevError("MISSING_PARAMETER", `${where}: chardev: "${quoteInput(section.id)}" missing backend`);
      const rest = section.entries.filter(([key]) => key !== "backend").map(([key, value]) => `${key}=${optionValue(value)}`);
      // A server socket of a config does not wait for its first client (QEMU's -chardev default
      // is wait=on): a console server must not hang its start, or a SIGHUP, until someone connects.
      const server = section.entries.find(([key]) => key === "server")?.[1];
      if (backend === "socket" && server !== undefined && ["on", "yes", "true", "y"].includes(server) && !section.entries.some(([key]) => key === "wait")) rest.push("wait=off");
      chardevs.push({ id: section.id, spec: [optionValue(backend), `id=${optionValue(section.id)}`, ...rest].join(","), where });
    } else {
      try {
        consoles.push({ spec: consoleSpecFromEntries(section.id, section.entries), where });
      } catch (error) {
        if (error instanceof ChardevError) throw new ChardevError(error.code, `${where}: ${error.message}`);
        throw error;
      }
    }
  }
  return { file, chardevs, consoles };
}

/**
 * Reads and parses config `file` with the runtime's files. Throws ChardevError: QEMU's
 * `Could not open 'FILE': ...`, or `FILE:LINE: ...` for a mistake in it.
 */
export function readConfigFile(runtime: HostRuntime, file: string): RunConfig {
  if (!runtime.readSmallFile) throw new ChardevError("UNSUPPORTED", `-readconfig: ${runtime.name} has no files to read '${quoteInput(file)}' from`);
  let bytes: Uint8Array;
  try {
    bytes = runtime.readSmallFile(file, MAX_CONFIG_BYTES);
  } catch (error) {
    throw new ChardevError("OPEN_FAILED", `Could not open '${quoteInput(file)}': ${strerror(error)}`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ChardevError("INVALID_VALUE", `${quoteInput(file)}: not UTF-8 text`);
  }
  return parseConfig(text, file);
}

/** What one reading of the config changed. */
export interface ConfigChanges {
  /** Consoles added. */
  readonly added: readonly string[];
  /** Consoles removed. */
  readonly removed: readonly string[];
  /** Consoles made again: their section, or a chardev they use, changed. */
  readonly changed: readonly string[];
  /** Consoles left alone. */
  readonly kept: readonly string[];
  /** Items that could not be made or removed (a reload goes on without them). */
  readonly problems: readonly string[];
}

/**
 * The chardevs and consoles a `-readconfig` file made, and what makes a new reading of it
 * (SIGHUP) true: consoles gone from the file are removed with the chardevs only the file
 * defined, new ones are added, and a console whose section and chardevs are as they were is
 * left alone (its hub, clients and device go on streaming). A console whose section or any of
 * its chardevs changed is made again.
 *
 * @example Reading a file again changes only what changed
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * import { Consoles } from "./consoles.ts";
 * const reg = await ChardevRegistry.create({ qemuCompat: false });
 * const consoles = new Consoles(reg, { onDeviceEvent: () => {} });
 * const loaded = new LoadedConfig(reg, consoles);
 * const text = '[chardev "sh"]\n  backend = "spawn"\n  cmd = "sh"\n[console "shell"]\n  device = "sh"\n';
 * await loaded.apply(parseConfig(text, "consoles.ini"), { atStart: true }); // console 'shell' made
 * await loaded.apply(parseConfig(text, "consoles.ini"), { atStart: false }); // { kept: ["shell"], ... }
 * ```
 */
export class LoadedConfig {
  /** Chardevs the file made: id -> `-chardev` string. */
  readonly #chardevs = new Map<string, string>();
  /** Consoles the file made: name -> their `-console` string. */
  readonly #consoles = new Map<string, string>();

  constructor(
    readonly reg: ChardevRegistry,
    readonly consoles: Consoles,
  ) {}

  /**
   * Makes what `config` says. At start (`atStart`) the first failure throws (the run does not
   * start). On a reload everything is checked first, and a mistake throws with nothing changed;
   * a chardev or console that then fails to be made (a socket path taken) is left out and
   * listed in `problems`, and the rest goes on.
   */
  async apply(config: RunConfig, options: { atStart: boolean }): Promise<ConfigChanges> {
    const wanted = new Map(config.chardevs.map((chardev) => [chardev.id, chardev.spec]));
    this.#check(config, wanted);
    const changedChardevs = new Set([...this.#chardevs].filter(([id, spec]) => wanted.get(id) !== spec).map(([id]) => id));
    const wantedConsoles = new Map(config.consoles.map((console) => [console.spec.name, formatConsoleSpec(console.spec)]));
    const added: string[] = [];
    const removed: string[] = [];
    const kept: string[] = [];
    const changed: string[] = [];
    const problems: string[] = [];
    const problem = (text: string) => {
      if (options.atStart) throw new ChardevError("INVALID_VALUE", text);
      problems.push(text);
    };

    for (const [name, text] of [...this.#consoles]) {
      const current = this.consoles.find(name);
      const usesChanged = current?.spec ? chardevsOfConsole(current.spec).some((id) => changedChardevs.has(id)) : false;
      if (wantedConsoles.get(name) === text && !usesChanged && current) continue;
      this.#consoles.delete(name);
      await this.consoles.remove(name);
      removed.push(name);
    }
    for (const id of changedChardevs) {
      this.#chardevs.delete(id);
      if (!this.reg.find(id)) continue;
      try {
        await this.reg.remove(id);
      } catch (error) {
        if (!(error instanceof ChardevError)) throw error;
        problem(`chardev '${quoteInput(id)}' stays: ${error.message}`);
      }
    }
    for (const chardev of config.chardevs) {
      if (this.#chardevs.has(chardev.id)) continue;
      try {
        await this.reg.add(chardev.spec);
        this.#chardevs.set(chardev.id, chardev.spec);
      } catch (error) {
        if (!(error instanceof ChardevError)) throw error;
        problem(`${chardev.where}: ${error.message}`);
      }
    }
    for (const console of config.consoles) {
      const name = console.spec.name;
      if (this.#consoles.has(name)) {
        kept.push(name);
        continue;
      }
      try {
        await this.consoles.add(console.spec);
        this.#consoles.set(name, wantedConsoles.get(name)!);
        // A console removed above and made again is a change, not an addition and a removal.
        if (removed.includes(name)) {
          removed.splice(removed.indexOf(name), 1);
          changed.push(name);
        } else {
          added.push(name);
        }
      } catch (error) {
        if (!(error instanceof ChardevError)) throw error;
        problem(`${console.where}: ${error.message}`);
      }
    }
    return { added, removed, changed, kept, problems };
  }

  /**
   * What can be known wrong before anything changes: a console whose device or clients are
   * defined nowhere, a name that another chardev of the run (not of this file) already has.
   */
  #check(config: RunConfig, wanted: Map<string, string>): void {
    const ours = new Set<string>([...this.#chardevs.keys()]);
    for (const name of this.#consoles.keys()) {
      const console = this.consoles.find(name);
      ours.add(name);
      if (console?.owned.log) ours.add(console.owned.log);
    }
    const others = new Set(this.reg.query().map((info) => info.label).filter((id) => !ours.has(id)));
    for (const chardev of config.chardevs) {
      if (others.has(chardev.id)) throw new ChardevError("DUPLICATE_ID", `${chardev.where}: Chardev with id '${quoteInput(chardev.id)}' already exists (defined outside ${quoteInput(config.file)})`);
    }
    for (const { spec, where } of config.consoles) {
      if (others.has(spec.name) || wanted.has(spec.name)) throw new ChardevError("DUPLICATE_ID", `${where}: console '${quoteInput(spec.name)}': Chardev with id '${quoteInput(spec.name)}' already exists (a console's name is its hub's id)`);
      if (!wanted.has(spec.device) && !others.has(spec.device)) {
        throw new ChardevError("NOT_FOUND", `${where}: console '${quoteInput(spec.name)}': device chardev '${quoteInput(spec.device)}' not found (define it in a [chardev "${quoteInput(spec.device)}"] section)`);
      }
      for (const id of chardevsOfConsole(spec).slice(1)) {
        if (!wanted.has(id) && !others.has(id)) throw new ChardevError("NOT_FOUND", `${where}: console '${quoteInput(spec.name)}': hub: chardev can't be found by id '${quoteInput(id)}'`);
      }
    }
  }
}
