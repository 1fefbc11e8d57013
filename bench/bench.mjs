#!/usr/bin/env node
// `npm run bench [-- --quick]`: Node cannot run TypeScript, so this bundles bench/run.ts (and
// the host it imports) with esbuild and runs the bundle with a GC on call. The WASM core is
// built first if it is missing or older than core-as/. Arguments are passed on.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const embedded = join(root, "host-ts/_core_wasm.ts");
const newestCore = Math.max(...readdirSync(join(root, "core-as")).map((name) => statSync(join(root, "core-as", name)).mtimeMs));
if (!existsSync(embedded) || statSync(embedded).mtimeMs < newestCore) {
  const built = spawnSync(process.execPath, [join(root, "scripts/build.mjs")], { cwd: root, stdio: "inherit" });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

// Inside node_modules, so the bundle's bare imports (pino, ws) resolve from the project.
// One bundle per checkout: a worktree sharing node_modules must not run another tree's bench.
const outfile = join(root, `node_modules/.cache/chardev-hub-bench/run-${createHash("sha256").update(root).digest("hex").slice(0, 12)}.mjs`);
const esbuild = await import("esbuild");
await esbuild.build({
  entryPoints: [join(root, "bench/run.ts")],
  outfile,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["pino", "ws", "@nats-io/*"],
  logLevel: "warning",
});
const run = spawnSync(process.execPath, ["--expose-gc", outfile, ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
  env: { ...process.env, CHARDEV_HUB_ROOT: root },
});
process.exit(run.status ?? 1);
