// The README's example is examples/quickstart.ts word for word (but its import path), and it runs against a real
// server.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";

import { quickstart } from "../examples/quickstart.js";
import { startServer, type Server } from "./server.js";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

let server: Server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

test("the README's example is examples/quickstart.ts", () => {
  const readme = read("README.md");
  const block = /```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, "README.md has a ```ts block");
  const example = read("examples/quickstart.ts").replace('"../src/index.js"', '"@orrery/sdk"');
  assert.equal(block[1], example);
});

test("the example plays against a real server", async () => {
  const lines: string[] = [];
  await quickstart(server.baseUrl, (l) => lines.push(l));
  assert.match(lines[0] ?? "", /^Ada in .+ with \d+ ship\(s\), \d+ credits$/);
  assert.ok(lines.some((l) => /^bought 1 [a-z_]+ for \d+, \d+ credits left$/.test(l)), lines.join("\n"));
  assert.ok(lines.some((l) => /^warped to .+/.test(l)), lines.join("\n"));
  assert.ok(lines.some((l) => l.startsWith("closed 1000 (normal), reconnecting: false")), lines.join("\n"));
});
