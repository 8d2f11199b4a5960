// Starts a real `orrery serve` for the end-to-end tests: a free port, a fresh data directory, a small galaxy.
// The binary is $ORRERY_BIN, else $CARGO_TARGET_DIR/debug/orrery, else the repository's target/debug/orrery.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const ADMIN_TOKEN = "sdk-test-admin-token";

/** The repository root (this file is compiled to sdk/typescript/dist/test/). */
const REPO = resolve(fileURLToPath(import.meta.url), "../../../../..");

export function orreryBinary(): string {
  const candidates = [
    process.env.ORRERY_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, "debug", "orrery"),
    join(REPO, "target", "debug", "orrery"),
  ].filter((c): c is string => !!c);
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw new Error(
      `no orrery binary (looked at ${candidates.join(", ")}): build it with \`cargo build -p orrery\` ` +
        "and/or set ORRERY_BIN to its path",
    );
  }
  return found;
}

export interface Server {
  baseUrl: string;
  dataDir: string;
  /** Stops the server gracefully (SIGTERM) and starts it again on the same address and data directory. */
  restart(): Promise<void>;
  /** An admin API call with the admin token. */
  admin(method: string, path: string, body?: unknown): Promise<unknown>;
  stop(): Promise<void>;
}

interface Running {
  child: ChildProcess;
  addr: string;
}

async function launch(dataDir: string, bind: string, extra: string[]): Promise<Running> {
  const child: ChildProcess = spawn(
    orreryBinary(),
    [
      "serve",
      "--bind",
      bind,
      "--data-dir",
      dataDir,
      "--regions",
      "2",
      "--sectors-per-region",
      "6",
      "--seed",
      "7",
      "--admin-token",
      ADMIN_TOKEN,
      ...extra,
    ],
    { env: { ...process.env, NO_COLOR: "1", RUST_LOG: "info" }, stdio: ["ignore", "ignore", "pipe"] },
  );
  const log: string[] = [];
  const addr = await new Promise<string>((resolveAddr, reject) => {
    const lines = createInterface({ input: child.stderr! });
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log.join("\n")}`)), 60_000);
    lines.on("line", (line) => {
      if (log.length < 200) log.push(line);
      const m = /listening addr=(\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolveAddr(m[1]!);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${log.join("\n")}`));
    });
  });
  return { child, addr };
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

export async function startServer(extra: string[] = []): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), "orrery-sdk-test-"));
  let running = await launch(dataDir, "127.0.0.1:0", extra);
  const baseUrl = `http://${running.addr}`;
  return {
    baseUrl,
    dataDir,
    async restart() {
      await terminate(running.child);
      running = await launch(dataDir, running.addr, extra);
    },
    async admin(method, path, body) {
      const res = await fetch(`${baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    },
    async stop() {
      await terminate(running.child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
