// The chardev namespace (QEMU's /chardevs container plus the chardev QMP commands): add from a
// `-chardev` string or a QMP `chardev-add` object, find, attach a frontend, remove.

import { Chardev, type BackendData, type ChardevContext, type ChardevDriver, type FieldType } from "./chardev/_chardev.ts";
import { fileDriver } from "./chardev/file.ts";
import { hubDriver, HubChardev, type HubBackendOptions } from "./chardev/hub.ts";
import { httpDriver } from "./chardev/http.ts";
import { muxDriver, MuxChardev } from "./chardev/mux.ts";
import { nullDriver } from "./chardev/null.ts";
import { pipeDriver } from "./chardev/pipe.ts";
import { ringbufDriver, RingbufChardev } from "./chardev/ringbuf.ts";
import { webStreamDriver } from "./chardev/webstream.ts";
import { Core } from "./core.ts";
import { ChardevError, type ChardevErrorCode } from "./errors.ts";
import { activatedSocketLookup } from "./socket_activation.ts";
import { strerror } from "./errno.ts";
import { Frontend, type FrontendHandlers } from "./frontend.ts";
import { parseBool, parseChardevOptions, registerOptionKeys, splitParams, validateId } from "./options.ts";
import type { HostRuntime, LogSink } from "./runtime/types.ts";
import { createTlsCredsX509, parseObjectOptions, type ObjectAddArgs, type TlsCredsX509 } from "./tls_creds.ts";
import { webRuntime } from "./runtime/web.ts";
import { quoteInput } from "./limits.ts";
import { COMMON_OPTIONS, dataFromOptions, optionKeys, qapiMembers, type OptionType } from "./option_schema.ts";
import { openChardevLog } from "./chardev/_log_file.ts";
import { checkArguments, isOneOf, isString, isStruct, QapiArgumentError, type Member, type MemberCheck, type QapiMistake, type QmpArguments } from "./qmp/args.ts";

// Every kind's keys beyond QEMU's logfile/logappend (timestamp, logfilemax, rotate).
registerOptionKeys(...optionKeys(COMMON_OPTIONS));

/**
 * A backend kind whose code loads on first use (registerLazyDriver): its names are known at
 * once, its driver is imported when a chardev of the kind is first added.
 */
export interface LazyChardevDriver {
  /** The kind's type and aliases, as its driver has them. */
  readonly type: string;
  readonly aliases?: readonly string[];
  /** Imports the kind's module (which registers its `-chardev` keys) and returns its driver. */
  load(): Promise<ChardevDriver>;
}

/** QMP `chardev-add` arguments: `{ id, backend: { type, data } }`. */
export interface ChardevAddArgs {
  id: string;
  backend: { type: string; data?: BackendData };
}

/** One row of `query-chardev`. */
export interface ChardevInfo {
  label: string;
  filename: string;
  frontendOpen: boolean;
}

export interface RegistryOptions {
  /**
   * QEMU 10.0's behaviour exactly: at most 4 hub backends (`chardevs.0`..`chardevs.3`), no
   * stacking of hubs and muxes.
   * @default true
   */
  qemuCompat?: boolean;
  /**
   * Host primitives (files, sockets, terminals).
   * @default the running Node's, Deno's or Bun's from the main entry (`mod.ts`); the web
   * runtime's, which has none of them, from this class and the edge entry (`mod_web.ts`)
   */
  runtime?: HostRuntime;
  /**
   * The core already compiled, for hosts that refuse to compile WASM at run time (Cloudflare
   * Workers, workerd): give the host `coreWasmBytes()` as a WASM module and pass it here.
   * @default compiled from the bytes embedded in this module
   */
  wasmModule?: WebAssembly.Module;
  /**
   * Called when a user types a mux's exit command (`C-a x`). QEMU exits; a library only asks.
   * @default does nothing
   */
  onExitRequest?: () => void;
  /**
   * Where chardevs report what an operator should hear of but that is not an error of a call:
   * a refused connection, an unsafe setting. One line each, without a trailing newline.
   * @default a line on the process's stderr (`console.error` where there is no process)
   */
  onWarning?: (line: string) => void;
}

export type RingbufFormat = "utf8" | "base64";

/** A driver without an option schema: its `fields`, all optional, after the common members. */
function membersOfFields(fields: Readonly<Record<string, FieldType>>): Record<string, Member> {
  const types: Record<FieldType, OptionType> = { string: "string", bool: "bool", integer: "integer", stringList: "list", object: "object" };
  return qapiMembers(Object.entries(fields).map(([member, type]) => ({ member, type: types[type], help: "" })));
}

/** The registry's error code for each kind of QAPI mistake (`backend.type`'s value: an unknown kind). */
const QAPI_MISTAKE_CODES: Record<QapiMistake, (text: string) => ChardevErrorCode> = {
  missing: () => "MISSING_PARAMETER",
  unexpected: () => "INVALID_PARAMETER",
  type: () => "INVALID_VALUE",
  value: (text) => (text.startsWith("Parameter 'type' ") ? "UNKNOWN_BACKEND" : "INVALID_VALUE"),
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/**
 * The kind a `-chardev` string names (its first item, or `backend=`), for loading it before
 * the string is read; undefined where there is none (the parse then says what is wrong).
 */
export function kindOfSpec(spec: string): string | undefined {
  if (typeof spec !== "string") return undefined;
  let kind: string | undefined;
  // As parseChardevOptions reads it: a bare first item is `backend`, and the last one wins.
  splitParams(spec).forEach((param, index) => {
    if (index === 0 && !param.includes("=")) kind = param;
    else if (param.startsWith("backend=")) kind = param.slice("backend=".length);
  });
  return kind;
}

/** Base64's alphabet, each character's value (glib's `mime_base64_rank`, `=` counting 0). */
const BASE64_RANK = new Map([..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"].map((ch, rank) => [ch, rank]));
BASE64_RANK.set("=", 0);

/**
 * Base64 as QEMU's `qbase64_decode` takes it: only the alphabet, `=` and whitespace, else
 * QEMU's error; then glib's g_base64_decode: whitespace skipped, each group of four characters
 * gives three bytes less one for each `=` among its last two, and an unfinished group is
 * dropped (so unpadded `AAECAw` is the 3 bytes of `AAEC`, as in QEMU).
 */
function decodeBase64(text: string): Uint8Array {
  if (!/^[A-Za-z0-9+/=\s]*$/.test(text)) {
    throw new ChardevError("INVALID_VALUE", "Base64 data contains invalid characters");
  }
  const out: number[] = [];
  let value = 0;
  let count = 0;
  let last = "";
  let beforeLast = "";
  for (const ch of text) {
    const rank = BASE64_RANK.get(ch);
    if (rank === undefined) continue; // whitespace
    value = (value << 6) | rank;
    beforeLast = last;
    last = ch;
    if (++count < 4) continue;
    out.push((value >> 16) & 0xff);
    if (beforeLast !== "=") out.push((value >> 8) & 0xff);
    if (last !== "=") out.push(value & 0xff);
    value = 0;
    count = 0;
  }
  return Uint8Array.from(out);
}

/**
 * The chardevs of one process, with QEMU's names and errors.
 *
 * @example A hub over two ringbufs
 * ```ts
 * const reg = await ChardevRegistry.create({ qemuCompat: true });
 * await reg.add("ringbuf,id=chr1,size=128");
 * await reg.add("ringbuf,id=chr2,size=128");
 * await reg.add("hub,id=hub0,chardevs.0=chr1,chardevs.1=chr2");
 * const fe = reg.attach("hub0", { canRead: () => 4096, read: () => {}, event: () => {} });
 * fe.write(new TextEncoder().encode("heyhey")); // 6
 * reg.ringbufRead("chr2", 128); // "heyhey"
 * await reg.close();
 * ```
 */
export class ChardevRegistry {
  readonly #chardevs = new Map<string, Chardev>();
  readonly #drivers = new Map<string, ChardevDriver>();
  /** Kinds registered by name whose driver has not been loaded yet. */
  readonly #lazyDrivers = new Map<string, LazyChardevDriver>();
  /** QEMU's /objects container: user-created objects (TLS credentials) by id. */
  readonly #objects = new Map<string, TlsCredsX509>();
  readonly #context: ChardevContext;

  protected constructor(core: Core, runtime: HostRuntime, readonly qemuCompat: boolean, onExitRequest: () => void, onWarning: (line: string) => void) {
    for (const driver of (new.target as typeof ChardevRegistry).builtinDrivers) this.registerDriver(driver);
    this.#context = { core, runtime, qemuCompat, find: (id) => this.#chardevs.get(id), requestExit: onExitRequest, warn: onWarning, tlsCreds: (id) => this.#objects.get(id), activatedSocket: activatedSocketLookup(runtime.process) };
  }

  /** Loads the WASM core and the runtime's primitives. */
  static async create(options: RegistryOptions = {}): Promise<ChardevRegistry> {
    const [core, runtime] = await Promise.all([Core.load(options.wasmModule), options.runtime ?? this.defaultRuntime()]);
    const warnOnStderr = (line: string) => (runtime.process ? runtime.process.print("stderr", `${line}\n`) : console.error(line));
    return new this(core, runtime, options.qemuCompat ?? true, options.onExitRequest ?? (() => {}), options.onWarning ?? warnOnStderr);
  }

  /**
   * The backend kinds every registry of this class knows. Here those that need no host or only
   * its files (which the web runtime refuses with UNSUPPORTED); the main entry's registry
   * (mod.ts) has every built-in kind (chardev/drivers.ts).
   */
  protected static readonly builtinDrivers: readonly ChardevDriver[] = [
    hubDriver,
    ringbufDriver,
    nullDriver,
    fileDriver,
    pipeDriver,
    muxDriver,
    webStreamDriver,
    httpDriver,
  ];

  /**
   * The host primitives of a registry created without `runtime`. This class never imports a
   * runtime module (so edge bundles hold no Node API): it has the web runtime, with no files,
   * sockets or terminals. The main entry's registry (mod.ts) detects Node, Deno or Bun.
   */
  protected static defaultRuntime(): Promise<HostRuntime> {
    return Promise.resolve(webRuntime);
  }

  /** Adds a backend kind (its `type` and aliases become valid in `add`). */
  registerDriver(driver: ChardevDriver): void {
    for (const name of [driver.type, ...(driver.aliases ?? [])]) this.#drivers.set(name, driver);
  }

  /**
   * Adds a backend kind by name, its code imported when a chardev of it is first added (`add`
   * loads it before reading the spec, whose keys its module registers). A program that knows
   * every kind but opens few loads only those at its start.
   */
  registerLazyDriver(lazy: LazyChardevDriver): void {
    for (const name of [lazy.type, ...(lazy.aliases ?? [])]) this.#lazyDrivers.set(name, lazy);
  }

  /**
   * Loads the kind named `type` if it was registered lazily and is not loaded yet; any other
   * name (loaded, eager, unknown) is left for `add` to take or refuse.
   */
  async loadKind(type: string | undefined): Promise<void> {
    const lazy = type === undefined ? undefined : this.#lazyDrivers.get(type);
    if (!lazy) return;
    const driver = await lazy.load();
    for (const name of [lazy.type, ...(lazy.aliases ?? [])]) this.#lazyDrivers.delete(name);
    this.registerDriver(driver);
  }

  /** Every backend kind `add` accepts, aliases included (QMP `query-chardev-backends`). */
  registeredKinds(): string[] {
    return [...this.#drivers.keys(), ...this.#lazyDrivers.keys()];
  }

  /** The chardev named `id`, if any. */
  find(id: string): Chardev | undefined {
    return this.#chardevs.get(id);
  }

  /** The chardev named `id`, or QEMU's "not found" error. */
  get(id: string): Chardev {
    const chardev = this.#chardevs.get(id);
    if (!chardev) throw new ChardevError("NOT_FOUND", `Chardev '${quoteInput(id)}' not found`);
    return chardev;
  }

  /**
   * `-chardev` string or QMP `chardev-add` arguments. Nothing is registered unless all of it
   * succeeds. Returns the new chardev.
   */
  async add(spec: string | ChardevAddArgs): Promise<Chardev> {
    await this.loadKind(typeof spec === "string" ? kindOfSpec(spec) : (spec as Partial<ChardevAddArgs> | null)?.backend?.type);
    if (typeof spec === "string") return this.#addFromOptions(spec);
    const { id, driver, data, type } = this.#checkQmpArgs(spec);
    return this.#open(id, driver, data, type);
  }

  async #addFromOptions(text: string): Promise<Chardev> {
    const { id, backend, options } = parseChardevOptions(text, this.qemuCompat, this.#context.warn);
    const driver = this.#driver(backend);
    const mux = options.has("mux") ? parseBool("mux", options.get("mux")!) : false;
    const data = driver.fromOptions(options);
    // logfile, logappend and our log options (timestamp, logfilemax, rotate), every kind's.
    Object.assign(data, dataFromOptions(COMMON_OPTIONS, options));
    if (!mux) return this.#open(id, driver, data, backend);
    // QEMU's `mux=on`: the backend becomes ID-base and a mux named ID sits in front of it.
    if (this.#chardevs.has(id)) throw this.#duplicate(id);
    const base = await this.#open(`${id}-base`, driver, data, backend);
    try {
      return await this.#open(id, this.#driver("mux"), { chardev: base.id });
    } catch (error) {
      await this.#forget(base);
      throw error;
    }
  }

  #driver(type: string): ChardevDriver {
    const driver = this.#drivers.get(type);
    if (!driver) throw new ChardevError("UNKNOWN_BACKEND", `'${quoteInput(type)}' is not a valid char driver name`);
    return driver;
  }

  #duplicate(id: string): ChardevError {
    return new ChardevError("DUPLICATE_ID", `Chardev with id '${quoteInput(id)}' already exists`);
  }

  /**
   * QAPI's checks of `chardev-add` arguments, with its error texts and in its order (members
   * in schema order, then any the schema lacks), by qmp/args.ts's checker; a kind's `data`
   * members come from its option schema. Failures become ChardevErrors with our codes.
   */
  #checkQmpArgs(args: unknown): { id: string; driver: ChardevDriver; data: BackendData; type: string } {
    if (!isPlainObject(args)) throw new ChardevError("INVALID_VALUE", "Invalid parameter type for 'arguments', expected: object");
    try {
      // QAPI's `str`: QEMU's chardev-add checks no more (`-chardev` checks id_wellformed).
      checkArguments(args, { id: { check: isString }, backend: { check: isStruct } });
      const backend = args.backend as QmpArguments;
      checkArguments(backend, { type: { check: isOneOf(...this.#drivers.keys()) }, data: { check: isStruct, optional: true } }, "backend.");
      const driver = this.#drivers.get(backend.type as string)!;
      const data = (backend.data ?? {}) as QmpArguments;
      checkArguments(data, driver.options ? qapiMembers(driver.options) : membersOfFields(driver.fields), "backend.data.");
      return { id: args.id as string, driver, data: { ...data }, type: backend.type as string };
    } catch (error) {
      if (!(error instanceof QapiArgumentError)) throw error;
      throw new ChardevError(QAPI_MISTAKE_CODES[error.mistake](error.message), error.message);
    }
  }

  /** `typeName`: the kind as the caller named it, an alias (`memory`) or the driver's type. */
  async #open(id: string, driver: ChardevDriver, data: BackendData, typeName = driver.type): Promise<Chardev> {
    if (this.#chardevs.has(id)) throw this.#duplicate(id);
    let log: LogSink | null = null;
    if (typeof data.logfile === "string") {
      try {
        // Stamped, rotated and reopened on SIGHUP as the options say (chardev/_log_file.ts).
        log = openChardevLog(this.#context.runtime, data, (line) => this.#context.warn(`chardev '${quoteInput(id)}': ${line}`));
      } catch (error) {
        if (error instanceof ChardevError) throw error; // "Could not open", or UNSUPPORTED: a runtime without files
        throw new ChardevError("OPEN_FAILED", `Could not open '${quoteInput(data.logfile)}': ${strerror(error)}`);
      }
    }
    let chardev: Chardev;
    try {
      chardev = await driver.open(id, data, this.#context, typeName);
    } catch (error) {
      log?.close();
      throw error;
    }
    // A concurrent add of the same id may have finished while we awaited the open.
    if (this.#chardevs.has(id)) {
      await chardev.destroy();
      log?.close();
      throw this.#duplicate(id);
    }
    chardev.setLog(log);
    this.#chardevs.set(id, chardev);
    return chardev;
  }

  /**
   * Attaches a frontend (QEMU's qemu_chr_fe_init + set_handlers). A frontend that attaches to
   * an open chardev gets OPENED at once.
   */
  attach(id: string, handlers: FrontendHandlers): Frontend {
    return new Frontend(this.get(id), handlers);
  }

  /** The hub named `id`, or an error naming what it is instead. */
  hub(id: string): HubChardev {
    const chardev = this.get(id);
    if (!(chardev instanceof HubChardev)) throw new ChardevError("INVALID_VALUE", `'${quoteInput(id)}' is not a hub`);
    return chardev;
  }

  /** Hot-plug (QMP `hub-attach`): makes chardev `backendId` a backend of hub `hubId`. */
  hubAttach(hubId: string, backendId: string, options: HubBackendOptions = {}): void {
    this.hub(hubId).attachBackend(this.get(backendId), options);
  }

  /** Hot-unplug (QMP `hub-detach`): backend `backendId` leaves hub `hubId`, which keeps running. */
  hubDetach(hubId: string, backendId: string): void {
    this.hub(hubId).detachBackend(backendId);
  }

  /** QEMU's qemu_chr_be_can_write on chardev `id`: what its holder can take now. */
  backendCanWrite(id: string): number {
    return this.get(id).canReceive();
  }

  /** QEMU's qemu_chr_be_write: `data` arrives on chardev `id` as input. */
  backendWrite(id: string, data: Uint8Array): void {
    this.get(id).receive(data);
  }

  /** `chardev-remove`: refused while the chardev is held by a frontend, hub or mux. */
  async remove(id: string): Promise<void> {
    const chardev = this.get(id);
    if (chardev.isBusy()) throw new ChardevError("BUSY", `Chardev '${quoteInput(id)}' is busy`);
    await this.#forget(chardev);
    // The base of a `mux=on` pair goes with its mux: nobody else can reach it.
    if (chardev instanceof MuxChardev && this.#chardevs.get(chardev.base.id) === chardev.base && !chardev.base.isBusy()) {
      await this.#forget(chardev.base);
    }
  }

  async #forget(chardev: Chardev): Promise<void> {
    this.#chardevs.delete(chardev.id);
    await chardev.destroy();
  }

  #ringbuf(id: string): RingbufChardev {
    const chardev = this.#chardevs.get(id);
    if (!chardev) throw new ChardevError("NOT_FOUND", `Device '${quoteInput(id)}' not found`);
    if (!(chardev instanceof RingbufChardev)) throw new ChardevError("NOT_RINGBUF", `${quoteInput(id)} is not a ringbuf device`);
    return chardev;
  }

  /**
   * `ringbuf-read`: removes up to `size` bytes. As in QEMU, UTF-8 output is a C string: it ends
   * at the first NUL byte, and invalid sequences become U+FFFD.
   */
  ringbufRead(id: string, size: number, format: RingbufFormat = "utf8"): string {
    const ring = this.#ringbuf(id);
    if (!Number.isSafeInteger(size) || size <= 0) throw new ChardevError("INVALID_VALUE", "size must be greater than zero");
    const bytes = ring.read(size);
    if (format === "base64") return encodeBase64(bytes);
    const nul = bytes.indexOf(0);
    return new TextDecoder().decode(nul < 0 ? bytes : bytes.subarray(0, nul));
  }

  /** `ringbuf-write`: appends `data` to the ring as if the frontend had written it. */
  ringbufWrite(id: string, data: string, format: RingbufFormat = "utf8"): void {
    const ring = this.#ringbuf(id);
    ring.writeRing(format === "base64" ? decodeBase64(data) : new TextEncoder().encode(data));
  }

  /**
   * `-object` string or QMP `object-add` arguments (only `tls-creds-x509` exists): creates
   * the object, reading its files, and registers it under its id. Returns it.
   */
  async addObject(spec: string | ObjectAddArgs): Promise<TlsCredsX509> {
    const args = typeof spec === "string" ? parseObjectOptions(spec) : spec;
    const duplicate = () =>
      typeof spec === "string"
        ? new ChardevError("DUPLICATE_ID", `Duplicate ID '${quoteInput(args.id)}' for object`)
        : new ChardevError("DUPLICATE_ID", `attempt to add duplicate property '${quoteInput(args.id)}' to object (type 'container')`);
    if (typeof args.id === "string" && this.#objects.has(args.id)) throw duplicate();
    const object = await createTlsCredsX509(args, this.#context.runtime);
    // A concurrent add of the same id may have finished while the files were read.
    if (this.#objects.has(object.id)) throw duplicate();
    this.#objects.set(object.id, object);
    return object;
  }

  /** The object named `id`, if any. */
  findObject(id: string): TlsCredsX509 | undefined {
    return this.#objects.get(id);
  }

  /**
   * `object-del`: refused while a chardev uses it (QEMU lets TLS credentials go while a chardev
   * holds a reference; we keep them listed so what a listener serves stays visible).
   */
  removeObject(id: string): void {
    const object = this.#objects.get(id);
    if (!object) throw new ChardevError("NOT_FOUND", `object '${quoteInput(id)}' not found`);
    if (object.inUse) throw new ChardevError("BUSY", `object '${quoteInput(id)}' is in use, can not be deleted`);
    this.#objects.delete(id);
  }

  /** `query-chardev`. */
  query(): ChardevInfo[] {
    return [...this.#chardevs.values()].map((chardev) => ({
      label: chardev.id,
      filename: chardev.filename,
      frontendOpen: chardev.frontendOpen,
    }));
  }

  /**
   * Opens every log again by path (`logfile=`, `file`, `asciicast`), or those of chardev `id`:
   * SIGHUP and QMP `chardev-reopen-logs`, so logrotate can move logs away. A log that cannot be
   * reopened goes on in the file it had; the failures are returned as lines for the operator.
   */
  reopenLogs(id?: string): string[] {
    const failures: string[] = [];
    for (const chardev of id === undefined ? this.#chardevs.values() : [this.get(id)]) {
      try {
        chardev.reopenLogs();
      } catch (error) {
        failures.push(`chardev '${quoteInput(chardev.id)}': cannot reopen its log: ${strerror(error)}`);
      }
    }
    return failures;
  }

  /** Destroys every chardev, newest first (stacked ones before what they stand on). */
  async close(): Promise<void> {
    for (const chardev of [...this.#chardevs.values()].reverse()) await this.#forget(chardev);
    this.#objects.clear();
  }
}
