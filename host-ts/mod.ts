// chardev-hub: QEMU's hub chardev and friends for Node, Deno and Bun. The edge entry
// (mod_web.ts) plus what needs a host OS: the backends on sockets, terminals and processes,
// QMP, and the composition root of this entry: a registry and a hub that know every built-in
// backend kind and use the running Node's, Deno's or Bun's primitives.

import type { ChardevDriver } from "./chardev/_chardev.ts";
import { provideHubScreen } from "./chardev/_hub_screen_contract.ts";
import { BUILTIN_DRIVERS } from "./chardev/drivers.ts";
import { Hub as HostNeutralHub } from "./hub.ts";
import { ChardevRegistry as HostNeutralRegistry, type RegistryOptions } from "./registry.ts";
import { detectRuntime } from "./runtime/detect.ts";
import type { HostRuntime } from "./runtime/types.ts";

// Screen replay (`replay.N=screen`) with xterm.js's headless terminal, which the edge entry
// leaves out. Imported when a hub first needs a screen: xterm.js is a third of the command's
// code and some 20 ms of its start, which `--help` and hubs without screen replay never pay.
provideHubScreen(async () => {
  const { HubScreen } = await import("./chardev/_hub_screen.ts");
  return (ring, ringSize, cols, rows) => new HubScreen(ring, ringSize, cols, rows);
});

// Everything of the edge entry; the two classes below take the place of its ChardevRegistry and Hub.
export * from "./mod_web.ts";
export { SocketChardev } from "./chardev/socket.ts";
export { PtyChardev } from "./chardev/pty.ts";
export { SpawnChardev } from "./chardev/spawn.ts";
export { SerialChardev } from "./chardev/serial.ts";
export { WebChardev, type TerminalSize } from "./chardev/web.ts";
export { QmpMonitor, startQmp, qmpChardevSpec, encodeQmpJson, QmpJsonStreamer, type QmpMonitorOptions, type QmpInput, type QmpErrorClass } from "./qmp.ts";

/**
 * The registry of the main entry: created without a `runtime` option, it uses the running
 * Node's, Deno's or Bun's primitives. It knows every built-in backend kind.
 * (registry.ts's class, which the edge entry uses, defaults to the web runtime and the kinds
 * that need no host, so that an edge bundle never reaches a runtime module.)
 *
 * @example A registry with the files and FIFOs of the running runtime
 * ```ts
 * const reg = await ChardevRegistry.create();
 * await reg.add("file,id=log0,path=/tmp/console.log");
 * await reg.close();
 * ```
 */
export class ChardevRegistry extends HostNeutralRegistry {
  protected static override readonly builtinDrivers: readonly ChardevDriver[] = BUILTIN_DRIVERS;

  protected static override defaultRuntime(): Promise<HostRuntime> {
    return detectRuntime();
  }
}

/**
 * The hub of the main entry: `Hub.create()` without a registry makes one of the registry above.
 *
 * @example
 * ```ts
 * const hub = await Hub.create({ ring: 1 << 16 });
 * await hub.attach("file,id=log,path=/tmp/console.log");
 * ```
 */
export class Hub extends HostNeutralHub {
  protected static override createRegistry(options: RegistryOptions): Promise<HostNeutralRegistry> {
    return ChardevRegistry.create(options);
  }
}
