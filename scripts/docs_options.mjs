// Writes the chardev option tables in docs/*.md from the kinds' option schemas
// (host-ts/option_schema.ts): every block between `<!-- options:KIND -->` (or
// `<!-- options:KIND:key1,key2 -->`) and `<!-- /options -->`. tests/option_schema.test.ts fails
// when a table and its schema disagree; run `node scripts/docs_options.mjs` after changing one.
// `--check` writes nothing and exits 1 naming the files that are out of date.

import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const esbuild = await import("esbuild");
// The schemas are TypeScript beside their drivers: bundle just them (and what they import).
const bundle = await esbuild.build({
  stdin: {
    contents: 'export { renderOptionTables } from "./host-ts/option_schema.ts"; export { BUILTIN_DRIVERS } from "./host-ts/chardev/drivers.ts";',
    resolveDir: root,
    loader: "ts",
  },
  bundle: true,
  write: false,
  format: "esm",
  platform: "node",
  // npm packages stay imports (some, like the NATS client, are CommonJS that a bundle cannot
  // require); the bundle is written inside node_modules so that node finds them from there.
  packages: "external",
  logLevel: "error",
});
const bundlePath = join(root, "node_modules", ".docs_options.bundle.mjs");
writeFileSync(bundlePath, bundle.outputFiles[0].text);
let loaded;
try {
  loaded = await import(pathToFileURL(bundlePath).href);
} finally {
  rmSync(bundlePath, { force: true });
}
const { renderOptionTables, BUILTIN_DRIVERS } = loaded;

const check = process.argv.includes("--check");
const stale = [];
for (const name of readdirSync(join(root, "docs")).filter((file) => file.endsWith(".md"))) {
  const path = join(root, "docs", name);
  const before = readFileSync(path, "utf8");
  const after = renderOptionTables(before, BUILTIN_DRIVERS);
  if (after === before) continue;
  stale.push(`docs/${name}`);
  if (!check) writeFileSync(path, after);
}
if (check && stale.length > 0) {
  console.error(`docs_options: out of date (run node scripts/docs_options.mjs): ${stale.join(", ")}`);
  process.exit(1);
}
console.log(stale.length === 0 ? "docs_options: every table is up to date" : `docs_options: rewrote ${stale.join(", ")}`);
