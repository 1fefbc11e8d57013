// `chardev-hub`, the command-line tool: QEMU's -chardev syntax, a device bridged to a hub, an
// optional QMP socket, and an embedded default setup. Runs on Node, Deno (`deno run -A`) and
// Bun; everything it needs from the host comes through the runtime's `process` primitives.
// The entry (entry.ts, built into dist/cli.js by scripts/build.mjs) reads the command line and
// imports this file only for a run: `--help`, `--version` and usage mistakes never load it.

import type { CliOptions } from "./args.ts";
import { Consoles, parseConsoleOption, type Console } from "./consoles.ts";
import type { LoadedConfig } from "./readconfig.ts";
import type { HubReplay } from "../chardev/_hub_screen_contract.ts";
// What only some runs use (-readconfig, the default setup, -control, -qmp) is imported when a
// run asks for it: every module a start loads is read and compiled before anything listens.
import type { ControlServer } from "./control_server.ts";
import { tlsCredsFor } from "../tls_creds.ts";
import { ServiceError, ServiceMode, startBackgroundCopy, STDIO_WITH_DAEMONIZE } from "./service.ts";
import type { Chardev } from "../chardev/_chardev.ts";
import { HubChardev } from "../chardev/hub.ts";
import { SocketChardev } from "../chardev/socket.ts";
import type { SpawnChardev } from "../chardev/spawn.ts";
import { StdioChardev } from "../chardev/stdio.ts";
import { ChardevError } from "../errors.ts";
import { formatChardevOptions, parseLegacySpec, serialSpecFailure } from "../legacy_spec.ts";
import { parseChardevOptions } from "../options.ts";
import { quoteInput } from "../limits.ts";
import { ChrEvent } from "../events.ts";
import type { QmpMonitor } from "../qmp.ts";
import { CliRegistry as ChardevRegistry, isPtyChardev, isSpawnChardev, isWebChardev } from "./cli_registry.ts";
import { kindOfSpec } from "../registry.ts";
import type { HostRuntime, ProcessExit, ProcessPrimitives, TlsOptions } from "../runtime/types.ts";
import { RerunLatch } from "../_rerun_latch.ts";
import { EXIT_SETUP_FAILED, PROGRAM } from "./program.ts";

/** The hub `-serial` makes (QEMU names the `-serial` chardevs serial0, serial1, ... as we do). */
const SERIAL_HUB_ID = "serial-hub";
/** The device (not a spawned program) closed and nothing will bring it back. */
const EXIT_DEVICE_CLOSED = 3;
/** The lines the command puts in the console stream when the device goes and comes back (conserver's `[-- ... --]`). */
const DEVICE_CLOSED_LINE = "\r\n[-- device closed --]\r\n";
const DEVICE_BACK_LINE = "\r\n[-- device back --]\r\n";
/** After the device has ended, its last output gets this long to reach slow backends before we close. */
const FINAL_OUTPUT_GRACE_MS = 2000;
/** Signal numbers for a shell-style exit status (128 + N) when the spawned program was killed. */
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

function exitStatusOf(exit: ProcessExit): number {
  if (exit.signal) return 128 + (SIGNAL_NUMBERS[exit.signal] ?? 0);
  return exit.code ?? 0;
}

/** One run of the tool: what it opened, and the one way out that cleans it all up. */
class CliRun {
  reg: ChardevRegistry | null = null;
  readonly monitors: QmpMonitor[] = [];
  /** The consoles this run serves (one for -frontend, -serial and the default setup; -console and -readconfig make more). */
  consoles: Consoles | null = null;
  /** `-console` or `-readconfig`: a device gone for good closes its console, not the run. */
  #namedConsoles = false;
  /** `-readconfig FILE`, read again on SIGHUP. */
  #configFile: string | null = null;
  #config: LoadedConfig | null = null;
  /** A reload in progress, and whether another SIGHUP came meanwhile (it reads the file once more after). */
  /** A SIGHUP during a reload makes one more reload after it. */
  readonly #reloads = new RerunLatch();
  /** `-control PATH` (the default setup's run/chardev-hub.sock): list, who, attach, tail. */
  control: ControlServer | null = null;
  readonly #stopListening: (() => void)[] = [];
  #ending: Promise<never> | null = null;
  /** A stdio chardev shares our terminal with the console. */
  #sharedTerminal = false;
  /** The pid file, systemd's notices, -daemonize's report (service.ts); told first and last on the way out. */
  service: ServiceMode | null = null;

  readonly host: ProcessPrimitives;

  constructor(readonly runtime: HostRuntime) {
    this.host = runtime.process!;
  }

  say(text: string): void {
    this.host.print("stderr", `${PROGRAM}: ${text}\n`);
  }

  /**
   * Ctrl-C (from the stdio chardev too), SIGINT, SIGTERM: clean up and leave. Cleaning
   * up is bounded (a spawned program gets SIGKILL if SIGHUP does not end it), so repeated
   * signals, which some senders deliver twice (`timeout` signals the child and its group), are
   * ignored. SIGHUP does not end the run: it reopens every log (logrotate), and with
   * `-readconfig` reads the file again too.
   */
  catchSignals(): void {
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      this.#stopListening.push(
        this.host.onSignal(signal, () => {
          if (signal === "SIGHUP" && !this.#ending) {
            // logrotate's `postrotate kill -HUP`: every log is reopened by path, always.
            this.reopenLogs();
            if (this.#config) void this.reloadConfig();
          } else if (signal !== "SIGHUP") void this.end(0, `terminating on signal ${signal}`);
        }),
      );
    }
  }

  /** SIGHUP: every log opened again by path (`logfile=`, `file`, `asciicast`); a failure is said on stderr. */
  reopenLogs(): void {
    for (const failure of this.reg?.reopenLogs() ?? []) this.#sayLine(failure);
  }

  /**
   * SIGHUP with `-readconfig`: the file is read again and the consoles made to match (see
   * LoadedConfig). A file that cannot be read or has a mistake changes nothing; either way
   * what happened is said on stderr. Signals during a reload make one more reload after it.
   */
  async reloadConfig(): Promise<void> {
    if (!this.#reloads.begin()) return;
    try {
      do {
        const file = this.#configFile!;
        try {
          const { readConfigFile } = await import("./readconfig.ts");
          const changes = await this.#config!.apply(readConfigFile(this.runtime, file), { atStart: false });
          for (const problem of changes.problems) this.#sayLine(`-readconfig ${quoteInput(file)}: ${problem}`);
          const parts = [
            ...changes.added.map((name) => `console '${name}' added`),
            ...changes.changed.map((name) => `console '${name}' made again`),
            ...changes.removed.map((name) => `console '${name}' removed`),
            `${changes.kept.length} unchanged`,
          ];
          this.#sayLine(`re-read ${quoteInput(file)}: ${parts.join(", ")}`);
          for (const name of [...changes.added, ...changes.changed]) {
            this.#consoleMade(this.consoles!.find(name)!);
            this.#announceConsole(this.consoles!.find(name)!);
          }
        } catch (error) {
          if (!(error instanceof ChardevError)) throw error;
          this.#sayLine(`-readconfig ${quoteInput(file)}: not re-read, nothing changed: ${error.message}`);
        }
      } while (this.#reloads.another() && !this.#ending);
    } finally {
      this.#reloads.end();
    }
  }

  /**
   * Stops the bridge, closes monitors and chardevs (sockets, links, the terminal's mode), then
   * exits with `status`. Only the first call counts: closing a spawn device ends its program,
   * whose exit must not replace the reason we are leaving.
   */
  end(status: number, message?: string): Promise<never> {
    this.#ending ??= this.#close(status, message);
    return this.#ending;
  }

  async #close(status: number, message: string | undefined): Promise<never> {
    await this.service?.stopping();
    this.consoles?.stopAll();
    this.control?.close();
    try {
      for (const monitor of this.monitors) await monitor.close();
      await this.reg?.close();
    } catch (error) {
      this.say(`while closing: ${(error as Error).message}`);
    }
    // After close, so the message lands on a terminal that is out of raw mode, on a line of its
    // own when the console shared that terminal (its cursor is wherever the program left it).
    if (message && this.#sharedTerminal) this.host.print("stderr", "\r\n");
    if (message) this.say(message);
    for (const stop of this.#stopListening) stop();
    this.service?.cleanUp();
    return this.host.exit(status);
  }

  #everyChardev(): Chardev[] {
    return this.reg!.query().map((info) => this.reg!.find(info.label)!).filter(Boolean);
  }

  /**
   * A spawned device takes its window size from browser tabs and from this terminal, when they
   * share the run: through `sizeHub`'s size policy (`size=latest|smallest|largest|manual`,
   * read-only backends never count) when they are its backends, else straight.
   */
  followTerminalSizes(device: SpawnChardev, hub?: HubChardev, sizeHub: HubChardev | undefined = hub): void {
    const toDevice = (cols: number, rows: number) => void device.resize(cols, rows).catch(() => {});
    if (sizeHub) this.#stopListening.push(sizeHub.onSize((size) => toDevice(size.cols, size.rows)));
    if (sizeHub?.options.size === "manual") toDevice(sizeHub.options.cols, sizeHub.options.rows);
    const sizeOf = (id: string | undefined) => (cols: number, rows: number) => {
      try {
        if (sizeHub && id !== undefined) return sizeHub.resize(id, cols, rows);
      } catch {
        // Not one of its backends (a chardev of another hub): straight, as before size policies.
      }
      toDevice(cols, rows);
    };
    // With many consoles, only the tabs and the terminal of this device's own hub size it.
    const backends = hub ? new Set(hub.stats().map((backend) => backend.id)) : null;
    const chardevs = this.#everyChardev().filter((chardev) => !backends || backends.has(chardev.id));
    for (const chardev of chardevs) {
      if (isWebChardev(chardev) && !this.#readOnlyInAnyHub(chardev.id)) this.#stopListening.push(chardev.onResize((cols, rows, backendId) => sizeOf(backendId)(cols, rows)));
    }
    if (this.#sharedTerminal && (!backends || chardevs.some((chardev) => chardev instanceof StdioChardev))) {
      const terminal = sizeOf(chardevs.find((chardev) => chardev instanceof StdioChardev)?.id);
      this.#stopListening.push(this.host.onTerminalResize((size) => terminal(size.cols, size.rows)));
    }
  }

  /** A backend a hub holds with `mode.N=ro` only watches: its size must not change the device's either. */
  #readOnlyInAnyHub(id: string): boolean {
    return this.#everyChardev().some((chardev) => chardev instanceof HubChardev && chardev.stats().some((backend) => backend.id === id && backend.mode === "ro"));
  }

  /**
   * A device that closes (a VM's socket, a serial cable) is reported on stderr, to QMP clients
   * (CHARDEV_DEVICE_CLOSED) and in the console stream (`[-- device closed --]`, to every backend,
   * logs included, as conserver logs it). A device that can come back (a socket server, which
   * waits for its next client, or a client with reconnect-ms) is waited for and reported back.
   * Any other is gone for good: in a classic run that ends the run with EXIT_DEVICE_CLOSED once
   * its last output reached the hub; with named consoles it closes its console and the run
   * serves the others. A spawned program is not reported here: #deviceExited takes its exit.
   */
  #deviceEvent(console: Console, event: ChrEvent): void {
    const id = console.deviceId;
    const device = this.reg?.find(id);
    if (!device || isSpawnChardev(device) || this.#ending || console.closed) return;
    // Named consoles say whose device it is; a classic run's events keep their shape.
    const named = this.#namedConsoles ? { console: console.name } : {};
    const who = this.#namedConsoles ? `console '${console.name}': device '${id}'` : `device '${id}'`;
    if (event === ChrEvent.OPENED) {
      const wasDown = console.deviceDown;
      console.deviceOpened = true;
      console.deviceDown = false;
      if (!wasDown) return;
      this.#sayLine(`${who} is back`);
      this.#qmpEvent("CHARDEV_DEVICE_BACK", { id, ...named });
      console.bridge.sendToHub(new TextEncoder().encode(DEVICE_BACK_LINE));
      return;
    }
    if (event !== ChrEvent.CLOSED || !console.deviceOpened || console.deviceDown) return;
    console.deviceDown = true;
    const reconnecting = device instanceof SocketChardev && device.options.reconnectMs > 0;
    const waitsForPeer = (device instanceof SocketChardev && device.options.server) || isPtyChardev(device);
    const comesBack = reconnecting || waitsForPeer;
    this.#qmpEvent("CHARDEV_DEVICE_CLOSED", { id, "comes-back": comesBack, ...named });
    console.bridge.sendToHub(new TextEncoder().encode(DEVICE_CLOSED_LINE));
    if (comesBack) {
      const how = reconnecting ? `reconnecting every ${(device as SocketChardev).options.reconnectMs} ms` : "waiting for it to connect again";
      this.#sayLine(`${who} closed (${how})`);
      return;
    }
    void this.#deviceGone(console, `${who} closed`, EXIT_DEVICE_CLOSED);
  }

  /** A spawned device's program ended: the run ends with its status, or (named consoles) its console closes. */
  async #deviceExited(console: Console, device: SpawnChardev, exit: ProcessExit): Promise<void> {
    const why = device.startupErrors.trim();
    const { describeExit } = await import("../chardev/spawn.ts");
    const what = `'${device.options.command}' ${describeExit(exit)}${why ? `: ${why}` : ""}`;
    if (this.#namedConsoles) {
      this.#qmpEvent("CHARDEV_DEVICE_CLOSED", { id: console.deviceId, "comes-back": false, console: console.name });
      console.bridge.sendToHub(new TextEncoder().encode(DEVICE_CLOSED_LINE));
    }
    await this.#deviceGone(console, this.#namedConsoles ? `console '${console.name}': ${what}` : what, exitStatusOf(exit));
  }

  /**
   * A device gone for good. Its last output (and the marker) reach the backends, logs first of
   * all, before anything closes (bounded: a stuck client must not keep us). A classic run then
   * ends with `status`; a named console stays, closed, with its history and clients, and the
   * run goes on while any console is open or a -readconfig may bring new ones.
   */
  async #deviceGone(console: Console, message: string, status: number): Promise<void> {
    if (this.#namedConsoles) {
      console.closed = true;
      this.#sayLine(`${message}; its console stays, closed (${this.consoles!.list().filter((each) => !each.closed).length} open)`);
    }
    await Promise.race([console.bridge.toHubDrained(), new Promise((resolve) => setTimeout(resolve, FINAL_OUTPUT_GRACE_MS))]);
    if (!this.#namedConsoles) return void (await this.end(status, message));
    if (!this.#config && this.consoles!.list().every((each) => each.closed)) await this.end(EXIT_DEVICE_CLOSED, "every console's device is gone");
  }

  /** Each console as it is made: a spawned device follows its clients' window sizes, and its exit is heard. */
  #consoleMade(console: Console): void {
    const device = this.reg!.find(console.deviceId);
    if (!isSpawnChardev(device)) return;
    this.followTerminalSizes(device, this.#namedConsoles ? console.hub : undefined, console.hub);
    void device.exited.then((exit) => {
      // A console removed (or made again) by a reload is no loss: its device was ended on purpose.
      // Nor is one that ends because we are leaving.
      if (this.consoles!.find(console.name) === console && !this.#ending) return this.#deviceExited(console, device, exit);
    });
  }


  /** Whether a stdio chardev shares our terminal (none may under -daemonize). */
  get sharesTerminal(): boolean {
    return this.#sharedTerminal;
  }

  /** A line on stderr; with a terminal in raw mode it needs its \r. */
  #sayLine(text: string): void {
    this.host.print("stderr", `${PROGRAM}: ${text}${this.#sharedTerminal ? "\r\n" : "\n"}`);
  }

  #qmpEvent(name: string, data: Record<string, unknown>): void {
    for (const monitor of this.monitors) monitor.sendOwnEvent(name, data);
  }

  /** QEMU prints where each pty went; we add where each browser terminal is. */
  announceEndpoints(): void {
    for (const chardev of this.#everyChardev()) {
      if (isPtyChardev(chardev)) this.say(`char device redirected to ${chardev.slavePath} (label ${chardev.id})`);
      if (isWebChardev(chardev)) {
        this.say(`web terminal at ${chardev.url} (label ${chardev.id})`);
        if (chardev.viewUrl !== chardev.url) this.say(`view-only web terminal at ${chardev.viewUrl} (label ${chardev.id})`);
      }
    }
  }

  /**
   * Adds a `-chardev`. QEMU's deprecated shorthand in it (`server`, `nowait`) gets QEMU's
   * warning in QEMU's shape: `PROGRAM: -chardev SPEC: warning: ...`, then the advice on a line
   * of its own. The registry is then handed the spec written in full: nothing left to warn about.
   */
  async #addChardev(spec: string): Promise<Chardev> {
    const lines: string[] = [];
    // A kind that loads on first use registers its keys as it loads: before the spec is read.
    await this.reg!.loadKind(kindOfSpec(spec));
    const parsed = parseChardevOptions(spec, this.reg!.qemuCompat, (line) => lines.push(line));
    if (lines.length === 0) return this.reg!.add(spec);
    // A stdio chardev added before this one has put the terminal in raw mode: a line needs its \r.
    const eol = this.#everyChardev().some((chardev) => chardev instanceof StdioChardev) ? "\r\n" : "\n";
    for (const line of lines) {
      this.host.print("stderr", line.startsWith("warning: ") ? `${PROGRAM}: -chardev ${quoteInput(spec)}: ${line}${eol}` : `${line}${eol}`);
    }
    return this.reg!.add(formatChardevOptions(parsed));
  }

  /**
   * `-serial SPEC...`: each spec becomes a chardev (`serialN`, or the `-chardev` it names with
   * `chardev:ID`), all of them one hub; the one `-chardev` no `-serial` names is the device.
   * A spec that fails is reported as QEMU reports it: the reason, then QEMU's line.
   */
  async #addSerialHub(specs: readonly string[], defined: readonly string[]): Promise<{ device: string; hub: string }> {
    const members: string[] = [];
    for (const spec of specs) {
      // QEMU's `-serial none`: no serial port here, and no number taken.
      if (spec === "none") continue;
      const label = `serial${members.length}`;
      try {
        const chardev = parseLegacySpec(label, spec, { qemuCompat: this.reg!.qemuCompat });
        if (chardev.kind === "existing") {
          if (!this.reg!.find(chardev.id)) throw new ChardevError("NOT_FOUND", serialSpecFailure(spec));
          members.push(chardev.id);
        } else {
          members.push((await this.reg!.add(chardev.spec)).id);
        }
      } catch (error) {
        if (!(error instanceof ChardevError)) throw error;
        if (error.message !== serialSpecFailure(spec)) this.say(`-serial ${quoteInput(spec)}: ${error.message}`);
        throw new ChardevError(error.code, `-serial ${quoteInput(spec)}: ${serialSpecFailure(spec)}`);
      }
    }
    if (members.length === 0) throw new ChardevError("INVALID_VALUE", "-serial: every -serial is 'none': nothing to share the device with");
    const devices = defined.filter((id) => !members.includes(id));
    if (devices.length === 0) {
      throw new ChardevError("INVALID_VALUE", "-serial: no device: every -chardev is named by a -serial chardev:ID; define the device with one more -chardev (e.g. spawn,id=sh,cmd=bash)");
    }
    if (devices.length > 1) {
      const named = devices.slice(0, 4).map((id) => `'${id}'`).join(", ") + (devices.length > 4 ? ", ..." : "");
      throw new ChardevError("INVALID_VALUE", `-serial: which chardev is the device? ${named} are not named by any -serial chardev:ID; give one device -chardev, name the others with -serial chardev:ID, or use -frontend`);
    }
    const list = members.map((id, index) => `chardevs.${index}=${id}`).join(",");
    await this.reg!.add(`hub,id=${SERIAL_HUB_ID},${list}`);
    return { device: devices[0], hub: SERIAL_HUB_ID };
  }

  async start(options: CliOptions): Promise<void> {
    this.catchSignals();
    this.reg = await ChardevRegistry.create({
      runtime: this.runtime,
      qemuCompat: options.qemuCompat,
      onExitRequest: () => void this.end(0, "exit requested (C-a x)"),
      // A refused peer or an unsafe setting; on a terminal in raw mode a line needs its \r.
      onWarning: (line) => this.host.print("stderr", `${PROGRAM}: ${line}${this.#sharedTerminal ? "\r\n" : "\n"}`),
    });
    let device = "";
    let hub = "";
    let defaultLines: readonly string[] = [];
    let defaultReplay: HubReplay = 0;
    this.consoles = new Consoles(this.reg, { onDeviceEvent: (console, event) => this.#deviceEvent(console, event) });
    this.#namedConsoles = options.consoles.length > 0 || options.readconfig !== null;
    // Objects first, as QEMU creates them: chardevs name them (tls-creds=ID).
    for (const spec of options.objects) await this.reg.addObject(spec);
    if (this.#namedConsoles) {
      for (const spec of options.chardevs) await this.#addChardev(spec);
      // The file's chardevs may be the devices of -console, so the file comes first.
      if (options.readconfig !== null) {
        this.#configFile = options.readconfig;
        const { LoadedConfig, readConfigFile } = await import("./readconfig.ts");
        this.#config = new LoadedConfig(this.reg, this.consoles);
        await this.#config.apply(readConfigFile(this.runtime, options.readconfig), { atStart: true });
      }
      for (const spec of options.consoles) await this.consoles.add(parseConsoleOption(spec));
    } else if (options.useDefault) {
      const { addDefaultSetup } = await import("./default_setup.ts");
      const setup = await addDefaultSetup(this.reg, this.runtime);
      ({ device, hub, lines: defaultLines } = setup);
      defaultReplay = setup.replay;
    } else if (options.serials.length > 0) {
      const defined: string[] = [];
      for (const spec of options.chardevs) defined.push((await this.#addChardev(spec)).id);
      ({ device, hub } = await this.#addSerialHub(options.serials, defined));
    } else {
      for (const spec of options.chardevs) await this.#addChardev(spec);
      ({ device, hub } = options.frontend!);
    }
    // QMP `quit`: its answer goes out first, then we leave as on SIGTERM (logs flushed), status 0.
    const onQuit = (monitor: QmpMonitor) => void monitor.drained().then(() => this.end(0, "terminating on QMP quit"));
    const { startQmp } = options.qmp.length > 0 ? await import("../qmp.ts") : { startQmp: null };
    for (const address of options.qmp) this.monitors.push(await startQmp!(this.reg, address, { onQuit }));
    // A classic run is one console: the default setup's `shell`, else named after its device.
    if (!this.#namedConsoles) this.consoles.adopt(options.useDefault ? "shell" : device, device, hub, defaultReplay);
    this.#sharedTerminal = this.#everyChardev().some((chardev) => chardev instanceof StdioChardev);
    for (const console of this.consoles.list()) this.#consoleMade(console);
    const control = options.control !== null || options.useDefault ? await import("./control_server.ts") : null;
    const controlPath = options.control ?? (options.useDefault ? control!.DEFAULT_CONTROL_PATH : null);
    if (control && controlPath) {
      const { parseControlListenAddress } = await import("./control_address.ts");
      const address = parseControlListenAddress(controlPath);
      let tcp: { host: string; port: number; tls: TlsOptions | null } | undefined;
      if (address.transport === "tcp") {
        const reg = this.reg!;
        // QEMU's texts for an unknown id and a client endpoint; held for the run, so object-del refuses.
        const creds = address.tlsCreds === null ? null : tlsCredsFor({ tlsCreds: (id) => reg.findObject(id) }, address.tlsCreds, "server");
        creds?.hold();
        tcp = { host: address.host, port: address.port, tls: creds?.tls ?? null };
      }
      this.control = await control.ControlServer.start({ runtime: this.runtime, path: controlPath, tcp, directory: this.consoles, findChardev: (id) => this.reg?.find(id) });
      const bound = this.control.address;
      // A script (or a person) needs the port when it asked for port 0.
      if (bound?.transport === "tcp") this.#sayLine(`control socket on tcp:${bound.host.includes(":") ? `[${bound.host}]` : bound.host}:${bound.port}${tcp?.tls ? " (TLS)" : ""}`);
    }
    // Last, so that a script waiting for these lines finds everything up.
    if (options.useDefault) this.host.print("stderr", `${PROGRAM}: ${defaultLines.join("\n")}\n`);
    else this.announceEndpoints();
    if (this.#namedConsoles) for (const console of this.consoles.list()) this.#announceConsole(console);
  }

  /** One line per named console: its device and its backends, so a script knows it is up. */
  #announceConsole(console: Console): void {
    const backends = console.hub.stats().map((backend) => backend.id);
    this.#sayLine(`console '${console.name}': device '${console.deviceId}', hub '${console.hub.id}'${backends.length > 0 ? ` with ${backends.join(", ")}` : ""}`);
  }
}

/**
 * A run of the tool with the command line `options` (entry.ts read them, and answered `--help`,
 * `--version` and mistakes itself) on `runtime`; never returns.
 */
export async function main(options: CliOptions, runtime: HostRuntime): Promise<never> {
  const host = runtime.process;
  if (!host) throw new Error(`${PROGRAM} needs a runtime that can run programs (Node, Deno or Bun), not ${runtime.name}`);
  let service: ServiceMode;
  try {
    service = new ServiceMode(runtime, options.service);
    // -daemonize: this process starts the background copy, waits until it is up, and leaves.
    if (service.startsBackgroundCopy) {
      service.beforeSetup();
      return host.exit(await startBackgroundCopy(host, runtime.name, host.args, options.service.logFile));
    }
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error;
    host.print("stderr", `${PROGRAM}: ${error.message}\n`);
    return host.exit(EXIT_SETUP_FAILED);
  }
  const run = new CliRun({ ...runtime, process: service.host });
  run.service = service;
  try {
    service.beforeSetup();
    await run.start(options);
    if (service.isBackgroundCopy && run.sharesTerminal) throw new ServiceError(STDIO_WITH_DAEMONIZE);
    await service.ready();
  } catch (error) {
    if (!(error instanceof ChardevError) && !(error instanceof ServiceError)) throw error;
    return run.end(EXIT_SETUP_FAILED, error.message);
  }
  // Runs until a signal, C-a x or the spawned device's exit calls `end` (or, with nothing
  // left that can happen, such as chardevs that are all in memory, ends with the event loop).
  return new Promise<never>(() => {});
}
