// Picks the primitives of the runtime we are running on. Loaded lazily so shared code never
// imports a runtime module statically. The registry and hub that use it are composed in the
// main entry (mod.ts): runtime/ knows nothing of the layers above it.

import type { HostRuntime } from "./types.ts";

/** The current runtime's primitives. */
export async function detectRuntime(): Promise<HostRuntime> {
  if ("Deno" in globalThis) return (await import("./deno.ts")).denoRuntime;
  if ("Bun" in globalThis) return (await import("./bun.ts")).bunRuntime;
  return (await import("./node.ts")).nodeRuntime;
}
