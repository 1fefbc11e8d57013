// What the entry (entry.ts) and the run (main.ts) both say: the program's name, its version
// and its exit statuses. A file of its own so the entry, which answers `--help`, `--version`
// and usage mistakes alone, loads none of the run's code.

/** Replaced by scripts/build.mjs with package.json's version. */
declare const CHARDEV_HUB_VERSION: string | undefined;

/** package.json's version in a build (dist/cli.js), `0.0.0-dev` when run from source. */
export const VERSION = typeof CHARDEV_HUB_VERSION === "string" ? CHARDEV_HUB_VERSION : "0.0.0-dev";

/** The command's name, the prefix of every line it says on stderr. */
export const PROGRAM = "chardev-hub";
/** Setup failed (a chardev, an object, the service mode), or a bug: QEMU's failure status. */
export const EXIT_SETUP_FAILED = 1;
/** A command-line mistake. */
export const EXIT_USAGE = 2;

/** `--version`'s line, naming the runtime (`node`, `deno`, `bun`) it runs on. */
export function versionLine(runtimeName: string): string {
  return `${PROGRAM} ${VERSION} (QEMU 10.0 hub chardev, ${runtimeName})\n`;
}
