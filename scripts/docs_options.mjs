// Writes the chardev option tables in docs/*.md from the kinds' option schemas
// (host-ts/option_schema.ts): every block between `<!-- options:KIND -->` (or
// `<!-- options:KIND:key1,key2 -->`) and `<!-- /options -->`. tests/option_schema.test.ts fails
// when a table and its schema disagree; run `node scripts/docs_options.mjs` after changing one.
// `--check` writes nothing and exits 1 naming the files that are out of date.

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

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
  logLevel: "error",
});
const { renderOptionTables, BUILTIN_DRIVERS } = await import(`data:text/javascript;base64,${Buffer.from(bundle.outputFiles[0].text).toString("base64")}`);

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
