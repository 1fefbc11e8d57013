// What both roles of the `nats` chardev are as chardevs: one kind, its checked options and the
// NATS connection it owns (made by natsDriver before the chardev, closed by the chardev last).

import type { NatsConnection } from "@nats-io/nats-core";
import { Chardev, type ChardevContext } from "./_chardev.ts";
import type { NatsOptions } from "./_nats_link.ts";

/**
 * The common part of NatsConsoleChardev and NatsViewerChardev.
 *
 * @example What either role holds
 * ```ts
 * declare const chardev: NatsChardev;
 * chardev.options.console; // "vm1"
 * chardev.connection.isClosed(); // false while it runs
 * ```
 */
export abstract class NatsChardev extends Chardev {
  readonly kind = "nats";

  constructor(
    id: string,
    context: ChardevContext,
    readonly options: NatsOptions,
    readonly connection: NatsConnection,
  ) {
    super(id, context);
  }

  /** Closes the connection, last thing before `super.destroy()`; one already closed (its server gone for good) is no error. */
  protected async closeConnection(): Promise<void> {
    try {
      await this.connection.close();
    } catch {
      // Nothing left to release.
    }
  }
}
