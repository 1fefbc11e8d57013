// The chaos soak of `npm run soak` (scripts/soak/soak.mjs), 20 seconds of it, as part of
// `npm test`: the real command with a spawn device streaming numbered lines at full speed,
// blocking, drop and evict socket clients that stall, get `kill -9`ed and reconnect, QMP
// hot-plugs and a log. The soak checks every client's bytes exactly; this test runs it and
// asserts that every check passed, showing the soak's own report when one did not.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./_procs.ts";

interface SoakResult {
  failures: string[];
  counters: { connects: number; kills: number; stalls: number; hotAdds: number; hotRemoves: number; evictions: number };
  log: { startOffset: number; ended: boolean; error: string };
}

describe("the chaos soak", () => {
  it("passes every check in a 20 second run: exact streams, exact drop gaps, the whole log, bounded RSS, no collapse", async () => {
    const dir = mkdtempSync(join(tmpdir(), "soak-e2e-"));
    const json = join(dir, "soak.json");
    try {
      const child = spawn(process.execPath, [join(repoRoot, "scripts/soak/soak.mjs"), "--seconds", "20", "--json", json], {
        cwd: repoRoot,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect(existsSync(json), `the soak wrote no result (exit ${code}):\n${output}`).toBe(true);
      const result = JSON.parse(readFileSync(json, "utf8")) as SoakResult;
      // The scenario really ran: clients came and went, stalled, were killed, hot-plugged.
      expect(result.counters.connects, output).toBeGreaterThan(5);
      expect(result.counters.stalls, output).toBeGreaterThan(0);
      expect(result.counters.hotAdds, output).toBeGreaterThan(0);
      expect(result.counters.evictions, output).toBeGreaterThan(0);
      expect(result.log.startOffset, output).toBe(0);
      expect(result.failures, output).toEqual([]);
      expect(code, output).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
