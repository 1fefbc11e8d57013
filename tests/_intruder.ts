// A second local account for the tests that show another user is refused: CI runs as root,
// adds it with useradd, and runs clients as it with setpriv.

import { execFileSync } from "node:child_process";

/** The intruder's account name. */
export const INTRUDER = "chub-intruder";

/** Adds the intruder's account unless it exists (useradd exits 9 then; a parallel run may race us to it). */
export function ensureIntruderAccount(): { uid: number; gid: number } {
  if (process.getuid?.() !== 0) {
    throw new Error(`these tests add a second user (${INTRUDER}) and run a client as it, which needs root; CI runs them as root`);
  }
  try {
    execFileSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", INTRUDER], { stdio: "pipe" });
  } catch {
    // Already there (exit 9), or another run is adding it right now: `id` below tells.
  }
  const id = (flag: string) => Number(execFileSync("id", [flag, INTRUDER], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

/** `command` as the intruder would run it: through setpriv, with the intruder's uid and gid only. */
export function asIntruder(intruder: { uid: number; gid: number }, command: readonly string[]): string[] {
  return ["setpriv", `--reuid=${intruder.uid}`, `--regid=${intruder.gid}`, "--clear-groups", ...command];
}
