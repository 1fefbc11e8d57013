// The consoles one `chardev-hub` process serves, as the control socket (control_server.ts)
// sees them: each is a device bridged to a hub named after the console. The command line
// (main.ts) keeps the directory; `-console`, `-readconfig` and its SIGHUP change it.

import type { HubBackendOptions, HubChardev } from "../chardev/hub.ts";

/** One named console. */
export interface ConsoleEntry {
  /** Its name (`-console NAME`; the default setup's is `shell`; a `-frontend` run's is its device's id). */
  readonly name: string;
  /** The chardev that plays the device. */
  readonly deviceId: string;
  /** The hub the device is bridged to; clients attach here. */
  readonly hub: HubChardev;
  /** True while the device is open (a socket device may be waiting for its peer). */
  readonly deviceOpen: boolean;
  /** When the console was made (ms since the epoch). */
  readonly since: number;
  /**
   * The device is gone for good (a program that exited, a file that ended): the console stays,
   * with its history, and takes no more input; `deviceOpen` is false.
   */
  readonly closed: boolean;
  /**
   * What a client that asks for no replay of its own gets replayed when it attaches: the
   * console's `replay=` (`screen` by default on a named console and the default setup, 0 where
   * the hub has no ring).
   */
  readonly replay: HubBackendOptions["replay"];
}

/** The consoles of a run, looked up by name. */
export interface ConsoleDirectory {
  /** Every console, in the order they were made. */
  list(): readonly ConsoleEntry[];
  /** The console `name`, or undefined. */
  find(name: string): ConsoleEntry | undefined;
}
