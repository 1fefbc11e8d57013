// The consoles one run of `chardev-hub` serves: each a device bridged to a hub. `-console
// NAME,device=ID,...` (and `[console "NAME"]` in a -readconfig file) makes the hub, named NAME,
// with a 1 MiB ring, its log and the sharing defaults; a classic run (`-frontend`, `-serial`,
// the default setup) is one console over a hub it defined itself. This file keeps them: it
// makes, finds and removes consoles, and is the directory the control socket reads.

import { DeviceBridge } from "./bridge.ts";
import type { ConsoleDirectory, ConsoleEntry } from "./console_directory.ts";
import type { Chardev } from "../chardev/_chardev.ts";
import { HubChardev, type HubBackendOptions } from "../chardev/hub.ts";
import type { HubReplay } from "../chardev/_hub_screen_contract.ts";
import { optionValue, parseReplay, type ConsoleSpec } from "./console_spec.ts";
import { SocketChardev } from "../chardev/socket.ts";
import { StdioChardev } from "../chardev/stdio.ts";
import { isPtyChardev, isWebChardev } from "./cli_registry.ts";
import { ChardevError } from "../errors.ts";
import type { ChrEvent } from "../events.ts";
import { quoteInput } from "../limits.ts";
import { parseSize } from "../options.ts";
import type { ChardevRegistry } from "../registry.ts";

export { chardevsOfConsole, consoleSpecFromEntries, formatConsoleSpec, optionValue, parseConsoleOption, type ConsoleSpec } from "./console_spec.ts";

/**
 * The ring of a named console's hub (and of the default setup's): room for a screenful of
 * history many times over, and a slow client falls behind instead of holding the device back.
 * @default 1 MiB
 */
export const CONSOLE_RING_BYTES = 1048576;
/**
 * What an interactive client of a console (a socket, the pty link, a terminal, a browser tab)
 * is replayed when it opens, unless the console or the hub key says otherwise: the screen as it
 * stands (the hub's terminal emulator), so a late joiner of a full-screen program sees it.
 * @default "screen"
 */
export const CONSOLE_REPLAY: HubReplay = "screen";

/** A client that a person reads and types on: it gets `drop` and a replay, so it never holds the device back. */
function isInteractive(chardev: Chardev | undefined): boolean {
  return chardev instanceof SocketChardev || isPtyChardev(chardev) || chardev instanceof StdioChardev || isWebChardev(chardev);
}

/** One console of the run. */
export class Console implements ConsoleEntry {
  readonly since = Date.now();
  /** Set once the device is gone for good (a named console then stays, serving its history). */
  closed = false;
  /** The device opened once (a CLOSED before that is no loss). */
  deviceOpened = false;
  /** The device closed and may come back. */
  deviceDown = false;

  constructor(
    readonly name: string,
    readonly deviceId: string,
    readonly hub: HubChardev,
    readonly bridge: DeviceBridge,
    readonly owned: { readonly hub: boolean; readonly log: string | null },
    /** What a client that asks for no replay of its own gets (`replay=`; the control socket's attach uses it). */
    readonly replay: HubBackendOptions["replay"],
    /** What it was made from (null for a classic run's console). */
    readonly spec: ConsoleSpec | null,
    readonly reg: ChardevRegistry,
  ) {}

  /** True while the device is open (a socket device may be waiting for its peer). */
  get deviceOpen(): boolean {
    return !this.closed && (this.reg.find(this.deviceId)?.beOpen ?? false);
  }
}

/** What the run wants to hear from its consoles. */
export interface ConsolesOptions {
  /** An event of a console's device (OPENED, CLOSED). */
  onDeviceEvent(console: Console, event: ChrEvent): void;
}

/**
 * The run's consoles, by name, in the order they were made.
 *
 * @example Two consoles in one registry
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create({ qemuCompat: false });
 * await reg.add("spawn,id=sh1,cmd=sh");
 * await reg.add("spawn,id=sh2,cmd=sh");
 * const consoles = new Consoles(reg, { onDeviceEvent: () => {} });
 * await consoles.add(parseConsoleOption("one,device=sh1"));
 * await consoles.add(parseConsoleOption("two,device=sh2,log=/tmp/two.log"));
 * consoles.list().map((console) => console.name); // ["one", "two"]
 * ```
 */
export class Consoles implements ConsoleDirectory {
  readonly #byName = new Map<string, Console>();

  constructor(
    readonly reg: ChardevRegistry,
    readonly options: ConsolesOptions,
  ) {}

  list(): readonly Console[] {
    return [...this.#byName.values()];
  }

  find(name: string): Console | undefined {
    return this.#byName.get(name);
  }

  /**
   * Makes a named console: its hub (id NAME, a 1 MiB ring unless `ring=` says otherwise, the
   * interactive `chardevs.N` on `drop` with a replay unless their own keys say otherwise), its
   * log, and the bridge from the device. Under --qemu-compat (the registry's `qemuCompat`) the
   * hub is QEMU's unless `ring=` is given, and no defaults are added. Nothing stays when it fails.
   */
  async add(spec: ConsoleSpec): Promise<Console> {
    const { reg } = this;
    const where = `console '${quoteInput(spec.name)}'`;
    if (this.#byName.has(spec.name)) throw new ChardevError("DUPLICATE_ID", `${where}: there is a console of that name already`);
    if (!reg.find(spec.device)) throw new ChardevError("NOT_FOUND", `${where}: device chardev '${quoteInput(spec.device)}' not found (define it with -chardev, or a [chardev] section, before the console)`);
    if (reg.find(spec.name)) throw new ChardevError("DUPLICATE_ID", `${where}: Chardev with id '${quoteInput(spec.name)}' already exists (a console's name is its hub's id)`);
    const logId = spec.log === undefined ? null : `${spec.name}-log`;
    const made: string[] = [];
    try {
      const { text: hubSpec, replay } = this.#hubSpec(spec, logId);
      if (logId !== null) {
        await reg.add(`file,id=${logId},path=${optionValue(spec.log!)}`);
        made.push(logId);
      }
      const hub = (await reg.add(hubSpec)) as HubChardev;
      made.push(hub.id);
      return this.#bridge(spec.device, hub, (bridge) => new Console(spec.name, spec.device, hub, bridge, { hub: true, log: logId }, replay, spec, reg));
    } catch (error) {
      for (const id of made.reverse()) await reg.remove(id).catch(() => {});
      if (error instanceof ChardevError) throw new ChardevError(error.code, `${where}: ${error.message}`);
      throw error;
    }
  }

  /** The hub's `-chardev` string for `spec`, with the sharing defaults filled in where the user gave none. */
  #hubSpec(spec: ConsoleSpec, logId: string | null): { text: string; replay: HubReplay } {
    const given = new Map(spec.hubKeys);
    const compat = this.reg.qemuCompat;
    const ring = given.get("ring") ?? (compat ? "0" : String(CONSOLE_RING_BYTES));
    const ringBytes = parseSize("ring", ring);
    const replay = ringBytes > 0 ? (spec.replay !== undefined ? parseReplay(spec.replay) : compat ? 0 : CONSOLE_REPLAY) : 0;
    const keys: (readonly [string, string])[] = [["ring", ring], ...spec.hubKeys.filter(([key]) => key !== "ring")];
    if (ringBytes > 0 && !compat) {
      for (const [key, id] of spec.hubKeys) {
        const index = /^chardevs\.(\d+)$/.exec(key)?.[1];
        if (index === undefined || !isInteractive(this.reg.find(id))) continue;
        const policy = given.get(`policy.${index}`);
        if (policy === undefined) keys.push([`policy.${index}`, "drop"]);
        if ((policy ?? "drop") === "drop" && !given.has(`replay.${index}`) && replay !== 0) keys.push([`replay.${index}`, String(replay)]);
      }
    }
    if (logId !== null) {
      // The log is the next backend; it blocks: a log has every byte (the hub isolates it if it fails).
      const next = Math.max(-1, ...spec.hubKeys.map(([key]) => Number(/^chardevs\.(\d+)$/.exec(key)?.[1] ?? -1))) + 1;
      keys.push([`chardevs.${next}`, logId]);
      if (ringBytes > 0) keys.push([`policy.${next}`, "block"]);
    }
    return { text: `hub,id=${spec.name},${keys.map(([key, value]) => `${key}=${optionValue(value)}`).join(",")}`, replay };
  }

  /**
   * A classic run's one console (`-frontend`, `-serial`, the default setup): the bridge from
   * `deviceId` to a hub the run defined itself, which the console does not own.
   */
  adopt(name: string, deviceId: string, hubId: string, replay: HubReplay = 0): Console {
    const hub = this.reg.hub(hubId);
    return this.#bridge(deviceId, hub, (bridge) => new Console(name, deviceId, hub, bridge, { hub: false, log: null }, replay, null, this.reg));
  }

  /**
   * Bridges the device to the hub and keeps the console made around the bridge. A device that
   * is open already says OPENED while the bridge attaches, before the console exists: that
   * event is handed on once it does.
   */
  #bridge(deviceId: string, hub: HubChardev, make: (bridge: DeviceBridge) => Console): Console {
    let console: Console | null = null;
    const early: ChrEvent[] = [];
    const bridge = DeviceBridge.connect(this.reg, deviceId, hub.id, {
      onDeviceEvent: (event) => (console ? this.options.onDeviceEvent(console, event) : early.push(event)),
    });
    console = make(bridge);
    this.#byName.set(console.name, console);
    for (const event of early) this.options.onDeviceEvent(console, event);
    return console;
  }

  /** Takes console `name` away: its bridge, and the hub and log it made (the device stays). */
  async remove(name: string): Promise<void> {
    const console = this.#byName.get(name);
    if (!console) return;
    this.#byName.delete(name);
    console.closed = true;
    console.bridge.stop();
    if (console.owned.hub) await this.reg.remove(console.hub.id);
    if (console.owned.log !== null) await this.reg.remove(console.owned.log);
  }

  /** Stops every bridge (the run is ending; the registry closes the chardevs). */
  stopAll(): void {
    for (const console of this.#byName.values()) console.bridge.stop();
  }
}
