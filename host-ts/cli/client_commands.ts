// The names of the control socket's client subcommands (`chardev-hub list | who | attach |
// tail`), apart from their code (control_client.ts) so the entry (entry.ts) can tell a client
// run from a hub run without loading either.

/** The subcommands, as the first argument names them. */
export const CLIENT_COMMANDS = ["list", "attach", "who", "tail"] as const;
/** One of CLIENT_COMMANDS. */
export type ClientCommand = (typeof CLIENT_COMMANDS)[number];

/** Whether `chardev-hub ARG ...` is one of the client's subcommands. */
export function isClientCommand(arg: string | undefined): arg is ClientCommand {
  return (CLIENT_COMMANDS as readonly string[]).includes(arg ?? "");
}
