// NATS over Node's TCP and TLS (`@nats-io/transport-node`). Deno and Bun take this one too:
// their `node:net` and `node:tls` carry it (tests/nats.test.ts runs in all three).

import { connect } from "@nats-io/transport-node";
import type { HostNats } from "./types.ts";

/** The NATS transport of Node, Deno and Bun. */
export const nodeNats: HostNats = {
  connect: (options) => connect(options),
};
