// Builds the browser pages into dist/, which is committed and embedded in the server binary by api/build.rs (the
// Rust build never needs node). Output is deterministic (no timestamps, hashes or absolute paths), so CI rebuilds
// and checks `git diff --exit-code web/dist`.
//
//   admin/main.ts + admin/index.html + admin/*.css  ->  dist/admin/   (served at /admin/)
//   play/main.ts  + play/index.html  + play/*.css   ->  dist/play/    (index.html served at /, the rest at /play/)
//
// Pages reference their files by absolute path (/admin/main.js, /play/main.js).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");

async function page(name) {
  const src = join(root, name);
  const out = join(dist, name);
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(src, "main.ts")],
    outfile: join(out, "main.js"),
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    minify: true,
    legalComments: "none",
    sourcemap: false,
    logLevel: "warning",
    absWorkingDir: root,
  });
  const statics = readdirSync(src).filter((f) => f === "index.html" || f.endsWith(".css") || f.endsWith(".svg"));
  if (!statics.includes("index.html")) throw new Error(`${name}/index.html is missing`);
  for (const f of statics.sort()) copyFileSync(join(src, f), join(out, f));
  console.log(`built dist/${name}/: ${readdirSync(out).sort().join(", ")}`);
}

rmSync(dist, { recursive: true, force: true });
await page("admin");
await page("play");
