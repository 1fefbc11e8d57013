// The command's registry: every built-in kind, as mod.ts's registry has them, but composed
// for a fast start. A start reads and compiles every module it imports before anything
// listens, so: not mod.ts (its other exports, QMP and the library's Hub, would come along),
// and the kinds a plain hub of sockets does not use registered by name, their code imported
// when a chardev of the kind is first added (registry.ts's registerLazyDriver). The kinds
// kept eager are the host-neutral registry's own (hub, ringbuf, null, file, pipe, mux,
// webstream, http), plus socket and stdio.

import type { ChardevDriver } from "../chardev/_chardev.ts";
import type { PtyChardev } from "../chardev/pty.ts";
import type { SpawnChardev } from "../chardev/spawn.ts";
import type { WebChardev } from "../chardev/web.ts";
import { provideHubScreen } from "../chardev/_hub_screen_contract.ts";
import { socketDriver } from "../chardev/socket.ts";
import { stdioDriver } from "../chardev/stdio.ts";
import { registerOptionKeys } from "../options.ts";
import { ChardevRegistry, type LazyChardevDriver, type RegistryOptions } from "../registry.ts";

// Screen replay with xterm.js's headless terminal, imported when a hub first needs a screen
// (as mod.ts provides it to the library).
provideHubScreen(async () => {
  const { HubScreen } = await import("../chardev/_hub_screen.ts");
  return (ring, ringSize, cols, rows) => new HubScreen(ring, ringSize, cols, rows);
});

/** The modules of the lazy kinds the command asks about (is this chardev a pty?), once loaded. */
const loaded: { pty?: typeof import("../chardev/pty.ts"); web?: typeof import("../chardev/web.ts"); spawn?: typeof import("../chardev/spawn.ts") } = {};

/**
 * The kinds of chardev/drivers.ts that load on first use: names (type, then aliases) as their
 * drivers have them (tests/cli_registry.test.ts checks the two lists agree).
 */
export const LAZY_KINDS: readonly LazyChardevDriver[] = [
  { type: "pty", load: async () => (loaded.pty = await import("../chardev/pty.ts")).ptyDriver },
  { type: "web", load: async () => (loaded.web = await import("../chardev/web.ts")).webDriver },
  { type: "spawn", load: async () => (loaded.spawn = await import("../chardev/spawn.ts")).spawnDriver },
  { type: "serial", aliases: ["tty"], load: async () => (await import("../chardev/serial.ts")).serialDriver },
  { type: "udp", load: async () => (await import("../chardev/udp.ts")).udpDriver },
  { type: "nats", load: async () => (await import("../chardev/nats.ts")).natsDriver },
  { type: "asciicast", load: async () => (await import("../chardev/asciicast.ts")).asciicastDriver },
];

/**
 * Every `-chardev` key the lazy kinds' option schemas declare (`optionKeys` of each), known
 * from the start as when every kind loaded with the command: a spec is then read the same
 * whichever kinds have loaded (`socket,...,cmd=x` is no mistake only after a spawn chardev).
 * tests/cli_registry.test.ts checks the list against the schemas.
 */
export const LAZY_KIND_KEYS: readonly string[] = [
  "access", "args.N", "auth", "cmd", "cols", "console", "creds", "device", "from", "host", "input",
  "ipv4", "ipv6", "localaddr", "localport", "max-age", "max-bytes", "max-clients", "password",
  "path", "port", "queue-limit", "replay", "replicas", "ro-token", "ro-token-file", "role",
  "rows", "screen", "server", "speed", "stream", "title", "tls-creds", "token", "token-file", "user",
];
registerOptionKeys(...LAZY_KIND_KEYS);

/**
 * A registry that knows every built-in kind, loading LAZY_KINDS on first use. The command
 * always hands it the runtime.
 *
 * @example
 * ```ts
 * import { detectRuntime } from "../runtime/detect.ts";
 * const reg = await CliRegistry.create({ runtime: await detectRuntime() });
 * reg.registeredKinds().includes("web"); // true, though web.ts is not loaded yet
 * await reg.close();
 * ```
 */
export class CliRegistry extends ChardevRegistry {
  protected static override readonly builtinDrivers: readonly ChardevDriver[] = [...ChardevRegistry.builtinDrivers, socketDriver, stdioDriver];

  /** As ChardevRegistry.create, with LAZY_KINDS registered by name. */
  static override async create(options: RegistryOptions = {}): Promise<CliRegistry> {
    const reg = (await super.create(options)) as CliRegistry;
    for (const lazy of LAZY_KINDS) reg.registerLazyDriver(lazy);
    return reg;
  }
}

// `instanceof` for the lazy kinds: a chardev of one exists only once its module has loaded,
// so until then the answer is no, and nothing is imported to give it.

/** Whether `chardev` is a PtyChardev. */
export function isPtyChardev(chardev: unknown): chardev is PtyChardev {
  return loaded.pty !== undefined && chardev instanceof loaded.pty.PtyChardev;
}

/** Whether `chardev` is a WebChardev. */
export function isWebChardev(chardev: unknown): chardev is WebChardev {
  return loaded.web !== undefined && chardev instanceof loaded.web.WebChardev;
}

/** Whether `chardev` is a SpawnChardev. */
export function isSpawnChardev(chardev: unknown): chardev is SpawnChardev {
  return loaded.spawn !== undefined && chardev instanceof loaded.spawn.SpawnChardev;
}
