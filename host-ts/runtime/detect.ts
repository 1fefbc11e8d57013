// Picks the primitives of the runtime we are running on. Loaded lazily so shared code never
// imports a runtime module statically.

import type { ChardevDriver } from "../chardev/_chardev.ts";
import { BUILTIN_DRIVERS } from "../chardev/drivers.ts";
import { Hub as HostNeutralHub } from "../hub.ts";
import { ChardevRegistry as HostNeutralRegistry, type RegistryOptions } from "../registry.ts";
import type { HostRuntime } from "./types.ts";

/** The current runtime's primitives. */
export async function detectRuntime(): Promise<HostRuntime> {
  if ("Deno" in globalThis) return (await import("./deno.ts")).denoRuntime;
  if ("Bun" in globalThis) return (await import("./bun.ts")).bunRuntime;
  return (await import("./node.ts")).nodeRuntime;
}

/**
 * The registry of the main entry (`mod.ts`): created without a `runtime` option, it uses the
 * running Node's, Deno's or Bun's primitives. It knows every built-in backend kind.
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
