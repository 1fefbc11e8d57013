// The NATS client's functions, loaded on first use. Imported statically, the @nats-io
// packages load with every run of the command, NATS or not, and cost it startup time and a
// well-behaved fd table: with them loaded, a node listener whose fd table is full spins on
// accept(2) (tests/emfile.test.ts). A run that opens a `nats` chardev loads them once here,
// before anything else of NATS is used; everything after that reads them with `natsApi()`.

import type { credsAuthenticator, headers } from "@nats-io/nats-core";
import type { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Kvm } from "@nats-io/kv";

/** What this package uses of the NATS client. */
export interface NatsApi {
  readonly credsAuthenticator: typeof credsAuthenticator;
  readonly headers: typeof headers;
  readonly jetstream: typeof jetstream;
  readonly jetstreamManager: typeof jetstreamManager;
  readonly DeliverPolicy: typeof DeliverPolicy;
  readonly Kvm: typeof Kvm;
}

let loading: Promise<NatsApi> | null = null;
let loaded: NatsApi | null = null;

/** Loads the NATS client (once; later calls get the same). */
export function loadNatsApi(): Promise<NatsApi> {
  loading ??= Promise.all([import("@nats-io/nats-core"), import("@nats-io/jetstream"), import("@nats-io/kv")]).then(([core, js, kv]) => {
    loaded = {
      credsAuthenticator: core.credsAuthenticator,
      headers: core.headers,
      jetstream: js.jetstream,
      jetstreamManager: js.jetstreamManager,
      DeliverPolicy: js.DeliverPolicy,
      Kvm: kv.Kvm,
    };
    return loaded;
  });
  return loading;
}

/**
 * The NATS client once `loadNatsApi()` has finished (every NATS connection here is made after
 * it). Throws if it has not: a bug, not a user's mistake.
 */
export function natsApi(): NatsApi {
  if (!loaded) throw new Error("nats: the NATS client is used before loadNatsApi() finished");
  return loaded;
}
