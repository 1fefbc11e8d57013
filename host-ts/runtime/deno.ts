// Deno's host primitives. Deno runs Node's fs/net APIs, so only what differs is overridden here.

import { nodeRuntime } from "./node.ts";
import type { HostRuntime } from "./types.ts";

export const denoRuntime: HostRuntime = {
  ...nodeRuntime,
  name: "deno",
};
