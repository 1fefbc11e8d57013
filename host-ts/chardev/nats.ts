// `nats`: a console on NATS JetStream (docs/nats.md). `role=console` is a hub backend that
// publishes the hub's output to `console.NAME.out` (a JetStream stream, every message with its
// byte offset) and takes typing from `console.NAME.in`; `role=viewer` is a device for another
// hub that follows that output from any offset still in the stream and sends its typing back.
// The two sides are _nats_console.ts and _nats_viewer.ts; what they share is _nats_link.ts.

import { ChardevError } from "../errors.ts";
import type { OptionSchema } from "../option_schema.ts";
import { tlsCredsFor } from "../tls_creds.ts";
import { defineDriver, startedOrDestroyed, type ChardevContext } from "./_chardev.ts";
import { NatsConsoleChardev } from "./_nats_console.ts";
import { connectNats, describeNatsError, ensureStream, natsOptionsFromData, type NatsOptions } from "./_nats_link.ts";
import { NatsViewerChardev } from "./_nats_viewer.ts";

export { NATS_UNACKED_LIMIT_BYTES, NATS_UNACKED_LIMIT_MESSAGES, NatsConsoleChardev } from "./_nats_console.ts";
export { missedNote, NatsViewerChardev, type NatsGap } from "./_nats_viewer.ts";
export { CONSOLE_BUCKET, HEARTBEAT_MS, type ConsoleCard } from "./_nats_metadata.ts";
export { SCREEN_ERROR_HEADER, SCREEN_SIZE_HEADER } from "./_nats_screen.ts";
export { natsOptionsFromData, OFFSET_HEADER, parseServers, type NatsFrom, type NatsOptions } from "./_nats_link.ts";

/**
 * `nats`'s options (ours).
 *
 * @example The keys a console takes
 * ```ts
 * natsOptions.map((option) => option.key); // ["server", "console", "role", "stream", ...]
 * ```
 */
export const natsOptions: OptionSchema = [
  { key: "server", type: "string", default: "nats://127.0.0.1:4222", help: "the NATS servers: `nats://HOST:PORT`, several separated by `,,` (QEMU's escaped comma), `;` or spaces; the client reconnects to any of them" },
  { key: "console", type: "string", required: true, missing: "nats: 'console' is required (console=NAME)", help: "the console's name: subjects `console.NAME.out` (output) and `console.NAME.in` (typing)" },
  { key: "role", type: "string", values: ["console", "viewer"], default: "console", help: "`console`: a hub backend publishing the hub's output; `viewer`: a device following a console's output for a local hub" },
  { key: "stream", type: "string", default: "CONSOLES", help: "the JetStream stream holding the output; a console creates it (subjects `console.*.out`) if missing" },
  { key: "max-bytes", type: "size", default: "no limit", help: "a created stream's size limit: the oldest output is discarded past it (viewers see an exact gap)" },
  { key: "max-age", type: "integer", unit: "s", default: "no limit", help: "a created stream's age limit" },
  { key: "replicas", type: "integer", min: 1, max: 5, default: "1", help: "a created stream's replicas (3 in a 3-node cluster survives a node loss)" },
  { key: "from", type: "string", default: "start", help: "viewer: where to start following: `start` (all still in the stream), `new`, a byte offset, or `screen` (the console's screen as it stands, then its output from exactly there)" },
  { key: "input", type: "bool", default: "on", help: "console: `off` ignores typing published on `console.NAME.in`" },
  { key: "screen", type: "bool", default: "on", help: "console: keep a terminal emulator of the output for `from=screen` viewers (answers on `console.NAME.screen`); `off` saves its CPU, and such viewers are refused" },
  { key: "device", type: "string", default: "the hub's id", help: "console: the device's name on the console's card (`list nats://...`)" },
  { key: "creds", type: "string", help: "a NATS credentials file (JWT and nkey seed)" },
  { key: "token", type: "string", help: "a NATS token" },
  { key: "user", type: "string", help: "a NATS user (with `password`)" },
  { key: "password", type: "string", help: "the user's password" },
  { key: "tls-creds", type: "string", help: "ID of a `tls-creds-x509` object with `endpoint=client`: TLS to the servers" },
];

/** Connects and sets up the role's side; on failure nothing is left connected. */
async function openNats(id: string, options: NatsOptions, context: ChardevContext): Promise<NatsConsoleChardev | NatsViewerChardev> {
  const tls = options.tlsCreds === undefined ? null : tlsCredsFor(context, options.tlsCreds, "client");
  const connection = await connectNats(id, options, context, tls);
  try {
    const { manager } = await ensureStream(connection, options, options.role === "console");
    if (options.role === "console") {
      return await startedOrDestroyed(new NatsConsoleChardev(id, context, options, connection), (chardev) => chardev.start(manager));
    }
    return await startedOrDestroyed(new NatsViewerChardev(id, context, options, connection), (chardev) => chardev.start());
  } catch (error) {
    await connection.close().catch(() => {});
    if (error instanceof ChardevError) throw error;
    throw new ChardevError("OPEN_FAILED", `nats: ${describeNatsError(error)}`);
  }
}

/**
 * The `nats` backend kind (built in; see docs/nats.md).
 *
 * @example Publish a hub's output, follow it from another registry
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const owner = await ChardevRegistry.create();
 * await owner.add("nats,id=n0,server=nats://127.0.0.1:4222,console=vm1");
 * await owner.add("hub,id=hub0,chardevs.0=n0");
 * const watcher = await ChardevRegistry.create();
 * await watcher.add("nats,id=vm1,role=viewer,server=nats://127.0.0.1:4222,console=vm1,from=start");
 * ```
 */
export const natsDriver = defineDriver({
  type: "nats",
  options: natsOptions,
  open(id, data, context) {
    return openNats(id, natsOptionsFromData(data), context);
  },
});
