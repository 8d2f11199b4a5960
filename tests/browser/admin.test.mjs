// The admin console in headless Chromium against a real server and a scripted WebSocket player: an admin signs in,
// sees the player's session, broadcasts (the player gets the notice), pauses its sector (the player gets
// sector_paused and its ship stops), resumes it, reads the audit log, and kicks the player (its socket closes with
// 4003); the region and sector controls (tick rate, snapshot, restart, stop, start) and their audit rows; then the
// token refresh and sign-out; the same console on a 390x844 phone viewport.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  api,
  connectPlayer,
  createAccount,
  DESKTOP,
  eventually,
  launchBrowser,
  openPage,
  PHONE,
  startServer,
} from "./harness.mjs";

let server;
let browser;
let admin;

before(async () => {
  server = await startServer({ name: "admin" });
  admin = await createAccount(server, { username: "ada", password: "correct-horse-battery", capability: "admin" });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The player's ship in its sector's state, as the admin API shows it. */
async function shipOf(player) {
  const s = await api(server, "GET", `/v1/admin/sectors/${player.sector}`, { token: admin.token });
  const ship = s.state?.ships.find((x) => x.owner === player.character);
  assert.ok(ship, `${player.name}'s ship is in its sector's state`);
  return { ...ship, paused: s.paused };
}

async function signIn(p) {
  await p.page.goto(`${server.url}/admin/`);
  await p.page.locator("#login-form").waitFor();
  await p.docShot("sign-in", p.page.viewportSize().width < 600 ? "admin-phone-sign-in" : "admin-sign-in");
  await p.page.fill("#login-username", admin.username);
  await p.page.fill("#login-password", "wrong password");
  await p.expecting(/status of 401/, async () => {
    await p.page.click("#login-submit");
    await p.page.locator("#login-error", { hasText: "Wrong username or password." }).waitFor();
  });
  await p.page.fill("#login-password", admin.password);
  await p.page.click("#login-submit");
  await p.page.locator("#app:not([hidden])").waitFor();
  await p.page.locator("#who", { hasText: "ada (admin)" }).waitFor();
}

test("an admin sees a player's session, broadcasts, pauses and resumes its sector, and kicks it (1280x800)", async () => {
  const player = await connectPlayer(server, { name: "Zed" });
  const sectors = await api(server, "GET", "/v1/admin/sectors", { token: admin.token });
  const sector = sectors.sectors.find((s) => s.id === player.sector);
  assert.ok(sector, "the player's sector is listed");

  const p = await openPage(browser, { name: "admin-desktop", viewport: DESKTOP });
  const { page } = p;
  try {
    // Sign in: a wrong password is refused in words, the right one opens the console.
    await signIn(p);

    // The player flies toward the middle of its sector: the ship moves.
    const start = await shipOf(player);
    player.send({ type: "thrust", vx: start.x < 500 ? 10 : -10, vy: start.y < 500 ? 10 : -10 });
    await eventually("the ship to move", async () => {
      const now = await shipOf(player);
      return now.x !== start.x && now.y !== start.y;
    });

    // Overview: the node card counts the session; the player's region opens onto its sectors.
    await page.locator("#nodes dd", { hasText: /^1$/ }).first().waitFor();
    await page.click(`#tree details[data-key="${sector.region}"] summary .name`);
    const row = page.locator(`#tree tr[data-sector="${sector.id}"]`);
    await row.locator(".sessions", { hasText: /^1$/ }).waitFor();
    await row.locator(".state", { hasText: "running" }).waitFor();
    // Some samples for the charts before the picture.
    await page.waitForTimeout(8_000);
    await p.docShot("overview", "admin-overview");

    // Sessions: the player is listed; the search narrows the list.
    await page.click('#nav a[data-view="sessions"]');
    const session = page.locator(`#sessions tr[data-character="${player.character}"]`);
    await session.locator(".name", { hasText: "Zed" }).waitFor();
    await page.fill("#session-search", "nobody-by-this-name");
    await session.waitFor({ state: "detached" });
    await page.locator("#session-count", { hasText: "0 sessions" }).waitFor();
    await page.fill("#session-search", "ze");
    await session.waitFor();
    await p.docShot("sessions", "admin-sessions");

    // Broadcast to everyone: the player gets the notice.
    const text = "Server restart at 12:00 UTC";
    let from = player.messages.length;
    await page.selectOption("#broadcast-scope", "global");
    await page.fill("#broadcast-text", text);
    await page.click("#broadcast-send");
    const notice = await player.waitFor((m) => m.type === "notice" && m.text === text, { from, what: "the broadcast notice" });
    assert.equal(notice.scope, "global");
    await page.locator("#status.ok", { hasText: "Broadcast (global): done" }).waitFor();
    await p.shot("broadcast-sent");

    // Pause the sector from its row: the player is told, and the ship stops.
    await page.click('#nav a[data-view="overview"]');
    from = player.messages.length;
    await row.getByRole("button", { name: "Pause" }).click();
    const paused = await player.waitFor((m) => m.type === "sector_paused", { from, what: "sector_paused" });
    assert.deepEqual({ sector: paused.sector, paused: paused.paused }, { sector: sector.id, paused: true });
    await row.locator(".state", { hasText: "paused" }).waitFor();
    const still = await shipOf(player);
    assert.equal(still.paused, true);
    await new Promise((r) => setTimeout(r, 1_000));
    const later = await shipOf(player);
    assert.deepEqual([later.x, later.y], [still.x, still.y], "a paused sector's ship does not move");
    const refused = await player.request({ type: "thrust", vx: 1, vy: 1 });
    assert.equal(refused.type, "error");
    assert.equal(refused.code, "sector_paused");
    await p.shot("sector-paused");

    // The sector's map shows the ship and the paused state.
    await row.getByRole("button", { name: "Map" }).click();
    await page.locator("#view-map:not([hidden])").waitFor();
    await page.locator("#map-info", { hasText: `${sector.name}: 1 ship,` }).waitFor();
    await page.locator("#map-info", { hasText: "paused" }).waitFor();
    await p.docShot("map", "admin-map");

    // Resume: the player is told, and the ship moves again.
    await page.click('#nav a[data-view="overview"]');
    from = player.messages.length;
    await row.getByRole("button", { name: "Resume" }).click();
    const resumed = await player.waitFor((m) => m.type === "sector_paused" && m.paused === false, { from, what: "sector_paused (resumed)" });
    assert.equal(resumed.sector, sector.id);
    await row.locator(".state", { hasText: "running" }).waitFor();
    await eventually("the ship to move again", async () => {
      const now = await shipOf(player);
      return now.x !== later.x || now.y !== later.y;
    });

    // Kick from the sessions list (a second click confirms): a notice, then the close 4003.
    await page.click('#nav a[data-view="sessions"]');
    await page.fill("#session-search", "");
    await session.waitFor();
    from = player.messages.length;
    await session.getByRole("button", { name: "Kick" }).click();
    await session.getByRole("button", { name: "Confirm kick" }).click();
    const kicked = await player.closed;
    assert.equal(kicked.code, 4003, `closed with ${kicked.code} ${kicked.reason}`);
    assert.ok(player.messages.slice(from).some((m) => m.type === "notice" && m.scope === "kick"), "a kick notice came first");
    await session.waitFor({ state: "detached" });
    await p.shot("kicked");

    // The audit log lists each control, newest first; a filter narrows it.
    await page.click('#nav a[data-view="audit"]');
    const audit = page.locator("#audit tbody");
    await audit.locator("tr").first().locator("td", { hasText: "session.kick" }).waitFor();
    for (const action of ["broadcast", "sector.pause", "sector.resume"]) {
      await audit.locator("td", { hasText: new RegExp(`^${action.replace(".", "\\.")}$`) }).first().waitFor();
    }
    await p.docShot("audit", "admin-audit");
    await page.fill("#audit-action", "sector.*");
    await page.click('#audit-form button[type="submit"]');
    await eventually("the filtered audit log", async () => {
      const actions = await audit.locator("tr td:nth-child(3)").allTextContents();
      return actions.length === 2 && actions.every((a) => a.startsWith("sector."));
    });
    await p.shot("audit-filtered");

    p.assertClean();
  } catch (e) {
    await p.shot("failure").catch(() => undefined);
    throw e;
  } finally {
    await p.close();
    player.close();
  }
});

test("the console's region and sector controls (tick rate, snapshot, restart, stop, start, pause, resume) and the audit log's pages", async () => {
  const { regions } = await api(server, "GET", "/v1/admin/regions", { token: admin.token });
  const region = regions.find((r) => !r.nexus);
  const sector = region.sectors[0];
  const p = await openPage(browser, { name: "admin-controls", viewport: DESKTOP });
  const { page } = p;
  const done = (what) => page.locator("#status.ok", { hasText: `${what}: done` }).waitFor();
  try {
    await signIn(p);
    const summary = page.locator(`#tree details[data-key="${region.id}"] summary`);
    await summary.locator(".name").click();
    const row = page.locator(`#tree tr[data-sector="${sector.id}"]`);
    await row.locator(".state", { hasText: "running" }).waitFor();

    // Tick rate: out of range is refused in the page; 10 Hz reaches every sector of the region.
    await summary.locator('input[type="number"]').fill("0");
    await summary.getByRole("button", { name: "Set Hz" }).click();
    await page.locator("#status.bad", { hasText: "1 to 60" }).waitFor();
    await summary.locator('input[type="number"]').fill("10");
    await summary.getByRole("button", { name: "Set Hz" }).click();
    await done(`Tick rate of ${region.name} to 10 Hz`);
    const after = await api(server, "GET", `/v1/admin/sectors?region=${region.id}`, { token: admin.token });
    assert.ok(after.sectors.every((s) => s.tick_hz === 10), "every sector of the region ticks at 10 Hz");
    await row.locator(".hz", { hasText: /^10$/ }).waitFor();

    // Snapshot a sector: its last snapshot becomes recent.
    await row.getByRole("button", { name: "Snapshot" }).click();
    await done(`Snapshot ${sector.name}`);
    await row.locator(".snap", { hasText: /^\d s ago$/ }).waitFor();

    // Restart a sector (a second click confirms).
    await row.getByRole("button", { name: "Restart" }).click();
    await row.getByRole("button", { name: "Confirm restart" }).click();
    await done(`Restart ${sector.name}`);
    await row.locator(".state", { hasText: "running" }).waitFor();
    await row.locator(".restarts", { hasText: /^1$/ }).waitFor({ timeout: 20_000 });

    // Stop the region (confirmed), then start it again.
    await summary.getByRole("button", { name: "Stop" }).click();
    await summary.getByRole("button", { name: "Confirm stop" }).click();
    await done(`Stop region ${region.name}`);
    await summary.locator(".state", { hasText: "stopped" }).waitFor();
    await row.locator(".state", { hasText: "stopped" }).waitFor();
    await p.shot("region-stopped");
    await summary.getByRole("button", { name: "Start" }).click();
    await done(`Start region ${region.name}`);
    await summary.locator(".state", { hasText: "running" }).waitFor();
    await row.locator(".state", { hasText: "running" }).waitFor();

    // Pause and resume the whole region from its row.
    await summary.getByRole("button", { name: "Pause" }).click();
    await done(`Pause region ${region.name}`);
    await summary.locator(".state", { hasText: "paused" }).waitFor();
    await row.locator(".state", { hasText: "paused" }).waitFor();
    await summary.getByRole("button", { name: "Resume" }).click();
    await done(`Resume region ${region.name}`);
    await summary.locator(".state", { hasText: "running" }).waitFor();

    // A snapshot of each of the region's sectors.
    for (const s of region.sectors) {
      await page.locator(`#tree tr[data-sector="${s.id}"]`).getByRole("button", { name: "Snapshot" }).click();
      await done(`Snapshot ${s.name}`);
    }

    // The audit log pages: 10 a page, then the older ones, then back to the newest.
    await page.click('#nav a[data-view="audit"]');
    await page.fill("#audit-actor", `account:${admin.accountId}`);
    await page.selectOption("#audit-limit", "10");
    await page.click('#audit-form button[type="submit"]');
    const rows = page.locator("#audit tbody tr");
    await eventually("a full first page", async () => (await rows.count()) === 10);
    await page.locator("#audit-page", { hasText: /^page 1$/ }).waitFor();
    const newest = await rows.allTextContents();
    await page.click("#audit-older");
    await page.locator("#audit-page", { hasText: /^page 2/ }).waitFor();
    const older = await rows.allTextContents();
    assert.ok(older.length >= 1, "the second page has entries");
    assert.ok(older.every((r) => !newest.includes(r)), "the second page holds other entries than the first");
    await page.click("#audit-newest");
    await page.locator("#audit-page", { hasText: /^page 1$/ }).waitFor();
    assert.deepEqual(await rows.allTextContents(), newest);
    await page.click('#nav a[data-view="overview"]');

    // Each control left its audit row, with the page's account as the actor.
    const audit = await api(server, "GET", `/v1/admin/audit?limit=20&actor=account:${admin.accountId}`, { token: admin.token });
    const actions = audit.entries.map((e) => e.action);
    for (const action of ["region.tick_rate", "sector.snapshot", "sector.restart", "region.stop", "region.start", "region.pause", "region.resume"]) {
      assert.ok(actions.includes(action), `${action} is in the audit log (${actions.join(", ")})`);
    }
    // The overview's restart history (GET /v1/admin/supervision) lists the operator's restart, stop and start,
    // and the restarted sectors count one restart each in the tree.
    for (const kind of ["sector_restarted_by_operator", "region_stopped", "region_started"]) {
      await page.locator(`#history tbody tr[data-kind="${kind}"]`).first().waitFor({ timeout: 20_000 });
    }
    p.assertClean();
  } catch (e) {
    await p.shot("failure").catch(() => undefined);
    throw e;
  } finally {
    await p.close();
  }
});

test("the console refreshes its short-lived token before it expires, and signing out revokes the refresh token", async () => {
  const short = await startServer({ name: "admin-refresh", args: ["--access-token-ttl", "3"] });
  const p = await openPage(browser, { name: "admin-refresh", viewport: DESKTOP });
  const { page } = p;
  const stored = () => page.evaluate(() => JSON.parse(sessionStorage.getItem("orrery-admin-tokens") ?? "null"));
  try {
    const account = await createAccount(short, { username: "otto", password: "operator-password", capability: "operator" });
    await page.goto(`${short.url}/admin/`);
    await page.fill("#login-username", account.username);
    await page.fill("#login-password", account.password);
    await page.click("#login-submit");
    await page.locator("#who", { hasText: "otto (operator)" }).waitFor();
    const first = await stored();
    assert.ok(first?.refresh, "the token pair is kept");
    // Three access tokens' lives of polling: each call carries a live token (a refused one would log a 401).
    await page.waitForTimeout(9_000);
    const later = await stored();
    assert.notEqual(later.refresh, first.refresh, "the refresh token was rotated");
    await page.locator("#app:not([hidden])").waitFor();
    await page.locator("#nodes dd", { hasText: /running/ }).first().waitFor();
    p.assertClean();
    // Sign out: the refresh token the page held stops working.
    const last = await stored();
    await page.click("#logout");
    await page.locator("#login:not([hidden])").waitFor();
    const res = await fetch(`${short.url}/v1/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: last.refresh }),
    });
    assert.equal(res.status, 401, "a signed-out refresh token is refused");
    assert.equal(await stored(), null, "nothing is kept after signing out");
  } catch (e) {
    await p.shot("failure").catch(() => undefined);
    throw e;
  } finally {
    await p.close();
    await short.stop();
  }
});

test("the console works on a 390x844 phone: every view fits, and a broadcast reaches a player", async () => {
  const player = await connectPlayer(server, { name: "Mira" });
  const p = await openPage(browser, { name: "admin-phone", viewport: PHONE, mobile: true });
  const { page } = p;
  const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  try {
    await signIn(p);
    assert.ok(await fits(), "the sign-in form fits the phone's width");
    await page.locator("#nodes dd", { hasText: /^1$/ }).first().waitFor();
    await page.waitForTimeout(2_500);
    assert.ok(await fits(), "the overview fits the phone's width");
    await p.docShot("overview", "admin-phone-overview");

    await page.click('#nav a[data-view="sessions"]');
    await page.locator(`#sessions tr[data-character="${player.character}"]`).waitFor();
    assert.ok(await fits(), "the sessions view fits the phone's width");
    const from = player.messages.length;
    await page.fill("#broadcast-text", "Hello from a phone");
    await page.click("#broadcast-send");
    await player.waitFor((m) => m.type === "notice" && m.text === "Hello from a phone", { from, what: "the notice" });
    await p.docShot("sessions", "admin-phone-sessions");

    await page.click('#nav a[data-view="map"]');
    await page.locator("#map-info", { hasText: /\d+ ships?, / }).waitFor();
    assert.ok(await fits(), "the map fits the phone's width");
    const box = await page.locator("#map").boundingBox();
    assert.ok(box && box.width <= PHONE.width && box.width > 300, `the map is as wide as the phone allows (${box?.width})`);
    await p.shot("map");

    await page.click('#nav a[data-view="audit"]');
    await page.locator("#audit tbody tr").first().waitFor();
    assert.ok(await fits(), "the audit log fits the phone's width");
    await p.shot("audit");

    // Signing out returns to the form; a reload stays signed out.
    await page.click("#logout");
    await page.locator("#login:not([hidden])").waitFor();
    await page.reload();
    await page.locator("#login:not([hidden])").waitFor();
    p.assertClean();
  } catch (e) {
    await p.shot("failure").catch(() => undefined);
    throw e;
  } finally {
    await p.close();
    player.close();
  }
});
