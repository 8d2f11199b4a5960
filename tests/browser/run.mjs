// Runs the browser test files one after the other (each starts a server and a browser; two at once would compete
// for a small machine's cores), each under node's test runner; exits non-zero if any failed.
// Usage: node run.mjs [files...]   (default: every *.test.mjs here)
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const files = process.argv.length > 2
  ? process.argv.slice(2)
  : readdirSync(here).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => join(here, f));
if (!files.length) {
  console.error("no *.test.mjs files");
  process.exit(1);
}
const failed = [];
for (const file of files) {
  const r = spawnSync(process.execPath, ["--test", file], { stdio: "inherit" });
  if (r.status !== 0) failed.push(file);
}
if (failed.length) {
  console.error(`browser tests failed: ${failed.join(", ")} (screenshots and server logs in tests/browser/artifacts/)`);
  process.exit(1);
}
