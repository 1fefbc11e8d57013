// NATS over Node's TCP and TLS (`@nats-io/transport-node`). Deno and Bun take this one too:
// their `node:net` and `node:tls` carry it (tests/nats.test.ts runs in all three).

import type { HostNats } from "./types.ts";

/**
 * The NATS transport of Node, Deno and Bun.
 *
 * @example Connect and close
 * ```ts
 * const connection = await nodeNats.connect({ servers: "nats://127.0.0.1:4222" });
 * await connection.close();
 * ```
 */
export const nodeNats: HostNats = {
  // Loaded on first use, as chardev/_nats_api.ts explains.
  connect: async (options) => (await import("@nats-io/transport-node")).connect(options),
};
