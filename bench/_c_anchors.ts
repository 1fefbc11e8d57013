// The C anchors (issue 17): bench/c/*.c, compiled with `cc -O2` into build/bench/ once per
// run when a C compiler is on PATH. Without one the run says so and the C columns are skipped.

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** The compiled anchors, by source name (`fanout_server`, `fanout_memory`). */
export interface CAnchors {
  fanoutServer: string;
  fanoutMemory: string;
}

let built: { anchors: CAnchors | null; reason: string } | undefined;

/** Compiles the anchors (once per process); `anchors` is null and `reason` says why when they cannot be. */
export function buildCAnchors(root: string, log: (line: string) => void): { anchors: CAnchors | null; reason: string } {
  if (built) return built;
  const out = path.join(root, "build", "bench");
  const probe = spawnSync("cc", ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    built = { anchors: null, reason: "no cc" };
    log("C anchors: skipped (no cc)");
    return built;
  }
  fs.mkdirSync(out, { recursive: true });
  const anchors: CAnchors = { fanoutServer: path.join(out, "fanout_server"), fanoutMemory: path.join(out, "fanout_memory") };
  for (const [name, binary] of [["fanout_server", anchors.fanoutServer], ["fanout_memory", anchors.fanoutMemory]]) {
    const source = path.join(root, "bench", "c", `${name}.c`);
    const compiled = spawnSync("cc", ["-O2", "-Wall", "-o", binary, source], { encoding: "utf8" });
    if (compiled.status !== 0) {
      built = { anchors: null, reason: `cc failed on bench/c/${name}.c: ${(compiled.stderr || String(compiled.error)).slice(0, 500)}` };
      log(`C anchors: skipped (${built.reason})`);
      return built;
    }
  }
  built = { anchors, reason: "" };
  log("C anchors: built with cc");
  return built;
}

/** Whether `program` runs here (`socat -V`, `conserver -V`): null if it does, else why not. */
export function missingProgram(program: string, versionFlag: string, debianPackage: string): string | null {
  const probe = spawnSync(program, [versionFlag], { encoding: "utf8" });
  return probe.error ? `${program} is not installed (Debian ${debianPackage})` : null;
}
