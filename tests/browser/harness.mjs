// The browser tests' harness: a real `orrery serve` on a free port with a temporary data directory, accounts made
// through the HTTP API and the `orrery accounts` CLI, headless Chromium (Debian's, driven by playwright-core) whose
// console errors fail the test, screenshots of each step under tests/browser/artifacts/, and scripted WebSocket
// players (the `ws` package) logged in as guests.
//
// Environment:
//   ORRERY_BIN          the server binary (default: $CARGO_TARGET_DIR/debug/orrery, else target/debug/orrery)
//   CHROMIUM            the browser (default: /usr/bin/chromium)
//   UPDATE_SCREENSHOTS  when 1, docShot() also writes docs/screenshots/<name>.png (the README's pictures)
import { spawn, execFile } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import WebSocket from "ws";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "..", "..");
export const artifactsDir = join(here, "artifacts");
const run = promisify(execFile);

/** The `orrery` binary the tests drive. */
export function orreryBin() {
  if (process.env.ORRERY_BIN) return process.env.ORRERY_BIN;
  const target = process.env.CARGO_TARGET_DIR ? resolve(repoRoot, process.env.CARGO_TARGET_DIR) : join(repoRoot, "target");
  return join(target, "debug", "orrery");
}

/** Polls `check` until it returns a truthy value (returned) or `timeoutMs` passes (throws naming `what`). */
export async function eventually(what, check, { timeoutMs = 10_000, everyMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message ?? last}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Starts `orrery serve` on 127.0.0.1 with a free port (it binds port 0 and the harness reads the address from its
 * `listening` log line) and a fresh data directory; a small generated galaxy unless `args` say otherwise. Its log is
 * written to artifacts/<name>-server.log.
 */
export async function startServer({ name = "server", args = [], galaxy = ["--regions", "2", "--sectors-per-region", "4"] } = {}) {
  const bin = orreryBin();
  if (!existsSync(bin)) throw new Error(`no server binary at ${bin}: run \`cargo build -p orrery\` (or set ORRERY_BIN)`);
  mkdirSync(artifactsDir, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), "orrery-browser-"));
  const env = { ...process.env, NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG ?? "info" };
  for (const k of Object.keys(env)) if (k === "DATABASE_URL" || k.startsWith("ORRERY_")) delete env[k];
  const proc = spawn(
    bin,
    [
      "serve",
      "--bind", "127.0.0.1:0",
      "--data-dir", dataDir,
      ...galaxy,
      "--guest-logins-per-minute", "0",
      "--logins-per-minute", "0",
      "--account-logins-per-minute", "0",
      ...args,
    ],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  const logPath = join(artifactsDir, `${name}-server.log`);
  const log = createWriteStream(logPath);
  let text = "";
  const addr = new Promise((resolveAddr, reject) => {
    const onData = (chunk) => {
      log.write(chunk);
      text += chunk.toString().replace(ANSI, "");
      const m = text.match(/listening\S*\s.*?addr=(127\.0\.0\.1:\d+)/);
      if (m) resolveAddr(m[1]);
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.once("exit", (code, signal) => reject(new Error(`orrery serve exited (${code ?? signal}) before listening; log: ${logPath}\n${text.slice(-2000)}`)));
    setTimeout(() => reject(new Error(`orrery serve did not listen within 60 s; log: ${logPath}`)), 60_000).unref();
  });
  let address;
  try {
    address = await addr;
  } catch (e) {
    proc.kill("SIGKILL");
    throw e;
  }
  const url = `http://${address}`;
  await eventually("the server to be ready", async () => (await fetch(`${url}/readyz`)).ok, { timeoutMs: 30_000 });
  const server = {
    url,
    wsUrl: `ws://${address}`,
    dataDir,
    logPath,
    proc,
    /** Stops it with SIGTERM (a graceful shutdown), SIGKILL after 20 s; removes the data directory. */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
        await once(proc, "exit");
        clearTimeout(timer);
      }
      log.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  process.once("exit", () => proc.kill("SIGKILL"));
  return server;
}

/** A JSON request to the server; throws on a non-2xx answer, naming its error. */
export async function api(server, method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${server.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return json;
}

/**
 * Registers an account (`POST /v1/accounts`) and grants it `capability` with `orrery accounts grant` against the
 * server's data directory (safe while it runs). Returns the credentials and an access token.
 */
export async function createAccount(server, { username = "ada", password = "correct-horse-battery", capability = "admin" } = {}) {
  await api(server, "POST", "/v1/accounts", { body: { username, password } });
  if (capability) {
    const env = { ...process.env, NO_COLOR: "1" };
    for (const k of Object.keys(env)) if (k === "DATABASE_URL" || k.startsWith("ORRERY_")) delete env[k];
    await run(orreryBin(), ["accounts", "grant", username, capability, "--data-dir", server.dataDir], { env });
  }
  const login = await api(server, "POST", "/v1/auth/login", { body: { username, password } });
  return { username, password, token: login.access_token, accountId: login.account_id };
}

/** Headless Chromium (Debian's package; playwright-core does not download browsers). */
export async function launchBrowser() {
  const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(executablePath)) throw new Error(`no browser at ${executablePath}: apt-get install chromium`);
  return chromium.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * A page in a fresh browser context. Every console error, uncaught page error and failed request is recorded;
 * `assertClean()` throws if there was any. `shot(step)` saves artifacts/<name>/<nn>-<step>.png.
 */
export async function openPage(browser, { name, viewport = DESKTOP, mobile = false } = {}) {
  const context = await browser.newContext({ viewport, isMobile: mobile, hasTouch: mobile, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`page error: ${err.message}`));
  page.on("requestfailed", (req) => errors.push(`request failed: ${req.method()} ${req.url()} ${req.failure()?.errorText ?? ""}`));
  const dir = join(artifactsDir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let step = 0;
  return {
    page,
    context,
    errors,
    /** Saves a screenshot of this step. */
    async shot(label) {
      step += 1;
      const file = join(dir, `${String(step).padStart(2, "0")}-${label}.png`);
      await page.screenshot({ path: file });
      return file;
    },
    /** A screenshot for the README: saved as a step, and copied to docs/screenshots/ when UPDATE_SCREENSHOTS=1. */
    async docShot(label, docName) {
      const file = await this.shot(label);
      if (process.env.UPDATE_SCREENSHOTS === "1") {
        mkdirSync(join(repoRoot, "docs", "screenshots"), { recursive: true });
        copyFileSync(file, join(repoRoot, "docs", "screenshots", `${docName}.png`));
      }
      return file;
    },
    /**
     * Runs `fn`, a step that provokes an error on purpose (a refused sign-in logs its 401 to the console): errors
     * matching `pattern` logged meanwhile are expected and dropped; there must be at least one.
     */
    async expecting(pattern, fn) {
      const before = errors.length;
      const result = await fn();
      const during = errors.splice(before);
      const expected = during.filter((e) => pattern.test(e));
      if (!expected.length) throw new Error(`expected an error matching ${pattern}, got: ${during.join("; ") || "none"}`);
      errors.push(...during.filter((e) => !pattern.test(e)));
      return result;
    },
    /** Throws if the page logged a console error, threw, or had a request fail. */
    assertClean() {
      if (errors.length) throw new Error(`the page had errors:\n  ${errors.join("\n  ")}`);
    },
    async close() {
      await context.close();
    },
  };
}

/**
 * A scripted player: a guest login (`POST /v1/auth/guest`) and a WebSocket session speaking JSON
 * (`orrery.json.v1`). Every message received is kept in `messages`; `waitFor` finds the first one (from `from`,
 * default the start) that matches, waiting up to `timeoutMs`.
 */
export async function connectPlayer(server, { name = "pilot" } = {}) {
  const guest = await api(server, "POST", "/v1/auth/guest", { body: { name } });
  const ws = new WebSocket(`${server.wsUrl}/v1/ws?token=${encodeURIComponent(guest.token)}`, "orrery.json.v1");
  const messages = [];
  const waiters = new Set();
  let nextId = 1;
  const closed = new Promise((resolveClose) => {
    ws.on("close", (code, reason) => {
      resolveClose({ code, reason: reason.toString() });
      for (const w of waiters) w.check();
    });
  });
  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    const msg = JSON.parse(data.toString());
    messages.push(msg);
    for (const w of waiters) w.check();
  });
  await new Promise((resolveOpen, reject) => {
    ws.once("open", resolveOpen);
    ws.once("error", reject);
  });
  const player = {
    name,
    token: guest.token,
    character: guest.character_id,
    ws,
    messages,
    closed,
    /** The first message matching `pred` at or after index `from`. */
    waitFor(pred, { from = 0, timeoutMs = 10_000, what = "a message" } = {}) {
      return new Promise((resolveMsg, reject) => {
        const w = {
          check() {
            for (let i = from; i < messages.length; i++) {
              if (pred(messages[i])) {
                waiters.delete(w);
                clearTimeout(timer);
                resolveMsg(messages[i]);
                return;
              }
            }
            if (ws.readyState === WebSocket.CLOSED) {
              waiters.delete(w);
              clearTimeout(timer);
              reject(new Error(`${name}: the socket closed while waiting for ${what}`));
            }
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          const types = messages.slice(from).map((m) => m.type);
          reject(new Error(`${name}: no ${what} within ${timeoutMs} ms (got: ${types.join(", ") || "nothing"})`));
        }, timeoutMs);
        waiters.add(w);
        w.check();
      });
    },
    /** Sends a message (an `id` is added) and waits for the reply or error carrying it. */
    async request(msg, { timeoutMs = 10_000 } = {}) {
      const id = nextId++;
      const from = messages.length;
      ws.send(JSON.stringify({ ...msg, id }));
      return player.waitFor((m) => m.id === id, { from, timeoutMs, what: `the reply to ${msg.type} #${id}` });
    },
    send(msg) {
      ws.send(JSON.stringify(msg));
    },
    close() {
      ws.close(1000);
    },
  };
  player.welcome = await player.waitFor((m) => m.type === "welcome", { what: "welcome" });
  player.sector = player.welcome.sector;
  await player.waitFor((m) => m.type === "keyframe", { what: "the first keyframe" });
  return player;
}
