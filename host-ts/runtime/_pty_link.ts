// What lies where a pty chardev's `path=` link is to go, read with node:fs (which Node, Deno and
// Bun all run), so every runtime's pty primitives answer the same way.

import * as fs from "node:fs";
import type { PtyLinkState } from "./types.ts";

/**
 * lstat(2) `path`, and for a symbolic link readlink(2) and stat(2) of what it leads to.
 * Status times are compared in nanoseconds where the runtime gives them (Node, Bun); Deno's
 * node:fs rounds them to the second, so there a target made in the link's second is not
 * "newer".
 *
 * @example A link left by a chardev-hub that was killed
 * ```ts
 * inspectPtyLink("run/pty"); // { kind: "link", target: "/dev/pts/7", leadsTo: "nothing", targetNewerThanLink: false }
 * ```
 */
export function inspectPtyLink(path: string): PtyLinkState {
  let link: fs.BigIntStats;
  try {
    link = fs.lstatSync(path, { bigint: true });
  } catch {
    return { kind: "none" };
  }
  if (!link.isSymbolicLink()) return { kind: "other" };
  let target = "";
  try {
    target = fs.readlinkSync(path);
  } catch {
    // Removed between the two calls: the stat below finds nothing either.
  }
  let leadsTo: fs.BigIntStats;
  try {
    leadsTo = fs.statSync(path, { bigint: true });
  } catch {
    return { kind: "link", target, leadsTo: "nothing", targetNewerThanLink: false };
  }
  return {
    kind: "link",
    target,
    leadsTo: leadsTo.isCharacterDevice() ? "terminal" : "other",
    targetNewerThanLink: leadsTo.ctimeNs > link.ctimeNs,
  };
}
