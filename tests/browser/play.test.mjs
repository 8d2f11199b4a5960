// The player client (web/play, served at /) in headless Chromium against a real server: a guest logs in, sees its
// ship, thrusts and sees it move, trades at a station, chats with a second browser context, and warps; an account
// registers, creates a character and plays it over JSON; an operator's broadcast and kick reach the page; the page on
// a 390x844 phone viewport. Screenshots of each step are saved under artifacts/; any console error fails the test.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { api, createAccount, eventually, launchBrowser, openPage, PHONE, startServer } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer({ name: "play" });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The own ship's position as the page shows it ("x, y"). */
async function position(page) {
  const text = (await page.textContent("#pos")) ?? "-";
  const m = /^(-?\d+), (-?\d+)$/.exec(text.trim());
  return m ? { x: Number(m[1]), y: Number(m[2]) } : undefined;
}

/** Whether the canvas shows the own ship's highlight colour (#ffd45c) at its position. */
async function ownShipDrawn(page) {
  const pos = await position(page);
  if (!pos) return false;
  return page.evaluate(({ x, y }) => {
    const canvas = document.getElementById("sector");
    const scale = canvas.width / Number(canvas.dataset.size);
    const [r, g, b] = canvas.getContext("2d").getImageData(Math.round(x * scale), Math.round(y * scale), 1, 1).data;
    return Math.abs(r - 0xff) < 24 && Math.abs(g - 0xd4) < 24 && Math.abs(b - 0x5c) < 24;
  }, pos);
}

const numberIn = async (page, sel) => Number(((await page.textContent(sel)) ?? "").replace(/[^\d]/g, ""));

async function guestLogin(p, name) {
  await p.page.goto(`${server.url}/`);
  await p.page.locator("#guest-form").waitFor();
  await p.page.fill("#guest-name", name);
  await p.page.click("#guest-submit");
  await p.page.locator("#game:not([hidden])").waitFor();
  await p.page.locator("#conn", { hasText: "online" }).waitFor();
  await eventually(`${name}'s ship on the page`, () => position(p.page));
}

test("a guest flies, trades, chats with a second player and warps (1280x800)", async () => {
  const p = await openPage(browser, { name: "play-desktop" });
  await p.page.goto(`${server.url}/`);
  await p.page.locator("#guest-form").waitFor();
  await p.docShot("login", "play-login");
  await guestLogin(p, "Vega");
  await p.page.locator("#who", { hasText: "Vega (binary)" }).waitFor();
  await eventually("the own ship drawn highlighted where the page says it is", () => ownShipDrawn(p.page));
  await p.shot("in-sector");

  // Thrust with the keyboard: the ship moves right, then stops on space.
  const start = await position(p.page);
  await p.page.keyboard.down("ArrowRight");
  await eventually("the ship to move right", async () => (await position(p.page)).x >= start.x + 15);
  await p.page.keyboard.up("ArrowRight");
  await p.page.keyboard.press(" ");
  await new Promise((r) => setTimeout(r, 300));
  const stopped = await position(p.page);
  await new Promise((r) => setTimeout(r, 500));
  const later = await position(p.page);
  assert.deepEqual(later, stopped, "space stops the ship");
  assert.equal(later.y, start.y, "moved along x only");
  await p.docShot("flying", "play");

  // Trade: buy one unit of the first stocked commodity of the station.
  const credits = await numberIn(p.page, "#credits");
  assert.ok(credits > 0);
  const row = p.page.locator("#market tbody tr").first();
  await row.waitFor();
  await row.locator("button.buy").click();
  await p.page.locator("#trade-msg", { hasText: "Bought 1" }).waitFor();
  await eventually("credits to drop", async () => (await numberIn(p.page, "#credits")) < credits);
  assert.doesNotMatch((await p.page.textContent("#cargo")) ?? "", /^empty/);
  await p.shot("traded");

  // A second player in another browser context: global chat both ways, sector chat echoed.
  const q = await openPage(browser, { name: "play-second" });
  await guestLogin(q, "Rigel");
  await q.page.selectOption("#chat-channel", "global");
  await q.page.fill("#chat-text", "hello Vega");
  await q.page.click("#chat-send");
  await p.page.locator("#chat-log li", { hasText: "Rigel: hello Vega" }).waitFor();
  await p.page.selectOption("#chat-channel", "global");
  await p.page.fill("#chat-text", "o7 Rigel");
  await p.page.press("#chat-text", "Enter");
  await q.page.locator("#chat-log li", { hasText: "Vega: o7 Rigel" }).waitFor();
  await p.page.selectOption("#chat-channel", "sector");
  await p.page.fill("#chat-text", "anyone here?");
  await p.page.click("#chat-send");
  await p.page.locator("#chat-log li", { hasText: "[sector] Vega: anyone here?" }).waitFor();
  await p.shot("chat");
  await q.shot("chat");

  // Warp: the sector changes and the warp's turns are paid.
  const sector = await p.page.textContent("#sector-name");
  const turns = await numberIn(p.page, "#turns");
  const warp = p.page.locator("#warps button.warp:not([disabled])").first();
  await warp.click();
  await eventually("a new sector", async () => (await p.page.textContent("#sector-name")) !== sector);
  await eventually("the ship in the new sector", () => position(p.page));
  assert.ok((await numberIn(p.page, "#turns")) <= turns, "turns paid");
  await p.shot("warped");

  p.assertClean();
  q.assertClean();
  await q.close();
  await p.close();
});

test("an account registers, creates a character and plays it over JSON", async () => {
  const p = await openPage(browser, { name: "play-account" });
  await p.page.goto(`${server.url}/`);
  await p.page.locator("#account-form").waitFor();
  await p.page.selectOption("#encoding", "json");
  await p.page.fill("#account-username", "stella_pilot");
  await p.page.fill("#account-password", "correct horse battery");
  await p.page.click("#account-register");
  await p.page.locator("#characters:not([hidden])").waitFor();
  await p.page.fill("#character-name", "Stella");
  await p.page.click("#character-create");
  const play = p.page.locator("#character-list button", { hasText: "Play Stella" });
  await play.waitFor();
  await p.shot("characters");
  await play.click();
  await p.page.locator("#game:not([hidden])").waitFor();
  await p.page.locator("#who", { hasText: "Stella (json)" }).waitFor();
  const start = await eventually("Stella's ship", () => position(p.page));
  await p.page.keyboard.down("ArrowDown");
  await eventually("the ship to move down", async () => (await position(p.page)).y >= start.y + 15);
  await p.page.keyboard.up("ArrowDown");
  await p.shot("flying");
  p.assertClean();
  await p.close();
});

test("operators reach the player: a broadcast shows, a kick closes the session, Reconnect comes back", async () => {
  const admin = await createAccount(server, { username: "op_play", capability: "operator" });
  const p = await openPage(browser, { name: "play-kick" });
  await guestLogin(p, "Kicky");
  const guest = await p.page.evaluate(() => JSON.parse(localStorage.getItem("orrery.guest")));
  await api(server, "POST", "/v1/admin/broadcast", { token: admin.token, body: { scope: "global", text: "server news" } });
  await p.page.locator("#notice", { hasText: "server news" }).waitFor();
  await api(server, "POST", "/v1/admin/kick", { token: admin.token, body: { character: guest.characterId, reason: "be nice" } });
  await p.page.locator("#conn", { hasText: "closed (kicked)" }).waitFor();
  await p.page.locator("#notice", { hasText: "Kicked: be nice" }).waitFor();
  await p.shot("kicked");
  await p.page.click("#reconnect");
  await p.page.locator("#conn", { hasText: "online" }).waitFor();
  await eventually("the ship back on the page", () => position(p.page));
  await p.shot("back");
  // The page remembers the guest: after a reload, "Continue as Kicky" plays the same character.
  await p.page.reload();
  await p.page.locator("#guest-resume", { hasText: "Continue as Kicky" }).click();
  await p.page.locator("#who", { hasText: "Kicky (binary)" }).waitFor();
  await eventually("the ship after the reload", () => position(p.page));
  p.assertClean();
  await p.close();
});

test("the client on a 390x844 phone: log in, fly with the pad, nothing wider than the screen", async () => {
  const p = await openPage(browser, { name: "play-phone", viewport: PHONE, mobile: true });
  await p.page.goto(`${server.url}/`);
  await p.page.locator("#guest-form").waitFor();
  await p.docShot("login", "play-phone-login");
  await guestLogin(p, "Pocket");
  const start = await position(p.page);
  await p.page.tap("#pad [data-dir=left]");
  await eventually("the ship to move left", async () => (await position(p.page)).x <= start.x - 15);
  await p.page.tap("#pad [data-dir=stop]");
  const width = await p.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= PHONE.width, `page is ${width} px wide`);
  const canvas = await p.page.locator("#sector").boundingBox();
  assert.ok(canvas && canvas.width >= 300 && canvas.width <= PHONE.width, `canvas ${JSON.stringify(canvas)}`);
  await p.docShot("flying", "play-phone");
  await p.page.locator("#warps").scrollIntoViewIfNeeded();
  await p.shot("side-panel");
  p.assertClean();
  await p.close();
});
