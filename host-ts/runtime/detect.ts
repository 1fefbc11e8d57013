// Picks the primitives of the runtime we are running on. Loaded lazily so shared code never
// imports a runtime module statically.

import type { HostRuntime } from "./types.ts";

/** The current runtime's primitives (Node's fs/net serve Deno and Bun too until their own land). */
export async function detectRuntime(): Promise<HostRuntime> {
  const { nodeRuntime } = await import("./node.ts");
  return nodeRuntime;
}
