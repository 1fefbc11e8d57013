// The entry of `chardev-hub` (scripts/build.mjs bundles it into dist/cli.js). It reads the
// command line and loads only what the answer needs, because everything a start loads is
// read and compiled before the first byte goes out: `--help` imports the help text's chunk,
// a usage mistake nothing more, `--version` the runtime's primitives (for its name), the
// client subcommands (`list`, `attach`, ...) the control client, and a run the run (main.ts)
// with the runtime, both at once.

import { parseArgs, UsageError, type CliOptions } from "./args.ts";
import { isClientCommand } from "./client_commands.ts";
import { EXIT_SETUP_FAILED, EXIT_USAGE, PROGRAM, versionLine } from "./program.ts";

/** The runtime's primitives, imported only by the answers that use them. */
async function detectRuntime() {
  return (await import("../runtime/detect.ts")).detectRuntime();
}

/**
 * The `process` global, which Node, Deno and Bun all have: before the runtime's primitives are
 * loaded (runtime/, which `--help` and a usage mistake never need), the arguments come from it
 * and the answer goes to it. Only what the runtime's primitives do the same way is used:
 * node_process.ts's `args` is this `argv` less two, its `print` this `write`.
 */
interface ProcessGlobal {
  readonly argv: readonly string[];
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  exitCode?: number;
  exit(code: number): never;
}

/**
 * Answers from the command line alone where it can. The status is the process's exit code, and
 * the process ends by itself once its output is written (nothing else is left to run).
 */
async function start(host: ProcessGlobal): Promise<void> {
  const args = host.argv.slice(2);
  // `chardev-hub list | attach | who | tail`: the control socket's client, not a run.
  if (isClientCommand(args[0])) {
    const [runtime, client] = await Promise.all([detectRuntime(), import("./control_client.ts")]);
    const primitives = runtime.process!;
    return void (await primitives.exit(await client.runClientCommand(PROGRAM, runtime, primitives.args)));
  }
  let options: CliOptions;
  try {
    options = parseArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    host.stderr.write(`${PROGRAM}: ${error.message}\n`);
    host.exitCode = EXIT_USAGE;
    return;
  }
  if (options.action === "help") {
    host.stdout.write((await import("./help.ts")).helpText(PROGRAM));
    host.exitCode = 0;
    return;
  }
  if (options.action === "version") {
    host.stdout.write(versionLine((await detectRuntime()).name));
    host.exitCode = 0;
    return;
  }
  const [runtime, run] = await Promise.all([detectRuntime(), import("./main.ts")]);
  await run.main(options, runtime);
}

const host = (globalThis as { process?: ProcessGlobal }).process;
if (!host) throw new Error(`${PROGRAM} needs a runtime that can run programs (Node, Deno or Bun)`);
start(host).catch((error: unknown) => {
  // A bug, not a user's mistake: say so with the stack, and leave with QEMU's failure status.
  console.error(`${PROGRAM}: internal error:`, error);
  host.exit(EXIT_SETUP_FAILED);
});
