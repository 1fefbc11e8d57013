// NATS over Node's TCP and TLS. Deno and Bun take this one too: their `node:net` and `node:tls`
// carry it (tests/nats.test.ts runs in all three). The transport under the NATS protocol is our
// own (node_nats_transport.ts): the one of `@nats-io/transport-node` lets socket errors escape
// as uncaught errors under Deno.

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
  connect: async (options) => (await import("./node_nats_transport.ts")).connectGuarded(options),
};
