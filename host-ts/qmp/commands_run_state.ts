// The run-state commands, as QEMU's monitor answers them (qapi/run-state.json): `query-status`
// and `quit`. We have no guest to pause, so the state is always QEMU's "running"; `quit` ends
// the process that serves the monitor, through a hook its owner gives (a library only asks).

import { checkArguments, type QmpCommand } from "./args.ts";

/** What a running QEMU 7.2 without a guest answers to `query-status`, member for member. */
const RUNNING_STATUS = { status: "running", singlestep: false, running: true } as const;

/** QEMU's SHUTDOWN event data for a `quit` from QMP. */
export const QUIT_SHUTDOWN_DATA = { guest: false, reason: "host-qmp-quit" } as const;

/** What `quit` needs from the monitor that runs it. */
export interface QuitHooks {
  /** Sends QEMU's SHUTDOWN event to the client (QEMU sends it before the answer). */
  announceShutdown(): void;
  /** Called once the answer `{}` is on its way: the owner flushes logs and exits. */
  quit(): void;
}

/** query-status and quit. */
export function runStateCommands(hooks: QuitHooks): [string, QmpCommand][] {
  return [
    [
      "query-status",
      (args) => {
        checkArguments(args, {});
        return { ...RUNNING_STATUS };
      },
    ],
    [
      "quit",
      (args) => {
        checkArguments(args, {});
        hooks.announceShutdown();
        // The answer is queued after this returns; the owner's exit waits for it to be written.
        queueMicrotask(() => hooks.quit());
      },
    ],
  ];
}
