// The SDK against a real `orrery serve` (see test/server.ts): guest and account logins, both subprotocols, the
// mirror following real deltas, request/reply and its typed errors, events the operators cause, and reconnecting
// with resume after the socket drops.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";

import {
  ApiError,
  ConnectionClosedError,
  OrreryApi,
  OrrerySession,
  ServerError,
  TimeoutError,
  type CloseInfo,
  type Encoding,
  type SectorMirror,
  type WebSocketConstructor,
} from "../src/index.js";
import { startServer, type Server } from "./server.js";

/** node 20 has no global WebSocket: the `ws` package's one is passed in (browsers use theirs). */
const WS = WebSocket as unknown as WebSocketConstructor;

let server: Server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

function session(api: OrreryApi, encoding: Encoding, extra: Partial<ConstructorParameters<typeof OrrerySession>[0]> = {}) {
  return new OrrerySession({ api, encoding, WebSocket: WS, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, ...extra });
}

function waitMirror(s: OrrerySession, check: (m: SectorMirror) => boolean, what: string): Promise<SectorMirror> {
  return s.mirrorWhere(check, 5000).catch((e: unknown) => {
    throw new Error(`waiting for ${what}: ${(e as Error).message}`);
  });
}

function within<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms))]);
}

for (const encoding of ["binary", "json"] as const) {
  test(`${encoding}: a guest logs in, mirrors its sector, thrusts and sees its ship move`, async () => {
    const api = new OrreryApi({ baseUrl: server.baseUrl });
    const guest = await api.guest(`sdk-${encoding}`);
    const s = session(api, encoding);
    const keyframe = s.next("keyframe");
    const welcome = await s.connect();
    try {
      assert.equal(welcome.character.id, guest.character_id);
      assert.equal(welcome.character.name, `sdk-${encoding}`);
      assert.equal(s.encoding, encoding);
      const k = await within(keyframe, "keyframe");
      assert.equal(k.sector, welcome.sector);
      const m = await waitMirror(s, (m) => m.shipById(welcome.character.ship) !== undefined, "own ship");
      const start = m.shipById(welcome.character.ship)!;
      s.thrust(50, -25);
      const moved = await waitMirror(
        s,
        (m) => {
          const me = m.shipById(welcome.character.ship);
          return me !== undefined && me.vx === 50 && me.vy === -25 && me.x > start.x;
        },
        "own ship moving",
      );
      assert.ok(moved.seq > k.seq, "deltas applied");
      assert.ok((await s.ping()) >= 0);
    } finally {
      s.close();
    }
  });
}

test("request/reply: warp and trade answers, typed server errors, timeouts and closed connections", async () => {
  const api = new OrreryApi({ baseUrl: server.baseUrl });
  await api.guest("trader");
  const s = session(api, "binary");
  const welcome = await s.connect();
  try {
    const m = await waitMirror(s, () => true, "keyframe");
    // A station with something to buy.
    const station = m.stations.find((st) => st.commodities.some((c) => c.quantity > 0))!;
    const listing = station.commodities.find((c) => c.quantity > 0)!;
    const result = await s.trade(station.id, listing.commodity, "buy", 1, `sdk-${Date.now()}`);
    assert.equal(result.qty, 1);
    assert.equal(result.credits, welcome.character.credits - result.total);
    assert.equal(s.profile!.credits, result.credits, "profile follows trade results");
    assert.equal(s.profile!.cargo[listing.commodity], (welcome.character.cargo[listing.commodity] ?? 0) + 1);

    await assert.rejects(
      s.warp("00000000-0000-4000-8000-000000000000"),
      (e: unknown) => e instanceof ServerError && e.code === "no_such_warp" && typeof e.id === "number",
    );
    await assert.rejects(
      s.trade(station.id, listing.commodity, "buy", 0),
      (e: unknown) => e instanceof ServerError && e.code === "invalid_quantity",
    );
    // A thrust has no reply: as a request it times out.
    await assert.rejects(s.request({ type: "thrust", vx: 1, vy: 1 }, 300), (e: unknown) => e instanceof TimeoutError);

    const affordable = m.warps.find((w) => w.turns <= s.profile!.turns)!;
    const newKeyframe = s.next("keyframe", (k) => k.sector === affordable.to);
    const warped = await s.warp(affordable.to);
    assert.equal(warped.from, welcome.sector);
    assert.equal(warped.to, affordable.to);
    await within(newKeyframe, "keyframe of the new sector");
    assert.equal(s.mirror!.sector, affordable.to);
    assert.equal(s.profile!.turns, welcome.character.turns - affordable.turns);
    assert.ok(s.mirror!.shipById(welcome.character.ship), "own ship in the new sector");

    const chat = s.next("chat");
    s.chat("sector", "hello from the SDK");
    const line = await within(chat, "own chat line");
    assert.deepEqual([line.channel, line.from, line.text], ["sector", welcome.character.id, "hello from the SDK"]);

    const pending = s.request({ type: "thrust", vx: 0, vy: 0 }, 5000);
    s.close();
    await assert.rejects(pending, (e: unknown) => e instanceof ConnectionClosedError);
    assert.throws(() => s.thrust(1, 1), ConnectionClosedError);
  } finally {
    s.close();
  }
});

test("reconnects with backoff after the socket drops and resumes the same character", async () => {
  const api = new OrreryApi({ baseUrl: server.baseUrl });
  await api.guest("phoenix");
  const s = session(api, "binary");
  const welcome = await s.connect();
  try {
    await waitMirror(s, (m) => m.shipById(welcome.character.ship) !== undefined, "own ship");
    s.thrust(30, 0);
    await waitMirror(s, (m) => m.shipById(welcome.character.ship)?.vx === 30, "thrust applied");
    const closed = s.next("close");
    const reconnecting = s.next("reconnecting");
    const resumed = s.next("resumed");
    const keyframe = s.next("keyframe");
    s.dropConnection();
    const c = await within(closed, "close");
    assert.equal(c.willReconnect, true);
    assert.equal(s.state, "reconnecting");
    const r = await within(reconnecting, "reconnecting");
    assert.equal(r.attempt, 1);
    const again = await within(resumed, "resumed");
    assert.equal(s.state, "open");
    assert.equal(again.character.id, welcome.character.id);
    assert.equal(again.character.ship, welcome.character.ship);
    assert.notEqual(again.session, welcome.session);
    await within(keyframe, "keyframe after resume");
    // The parked ship kept its velocity and moves again.
    const x0 = s.mirror!.shipById(welcome.character.ship)!.x;
    await waitMirror(s, (m) => (m.shipById(welcome.character.ship)?.x ?? 0) > x0, "ship moving after resume");
    assert.ok((await s.ping()) >= 0);
  } finally {
    s.close();
  }
});

test("after a server restart the session reconnects on its own and finds its ship where it was", async () => {
  const api = new OrreryApi({ baseUrl: server.baseUrl });
  await api.guest("survivor");
  const s = session(api, "json");
  const welcome = await s.connect();
  try {
    const before = (await waitMirror(s, (m) => m.shipById(welcome.character.ship) !== undefined, "own ship"))
      .shipById(welcome.character.ship)!;
    const closed = s.next("close");
    const resumed = s.next("resumed");
    await server.restart();
    const c = await within(closed, "close on shutdown");
    assert.equal(c.code, 1001, "going away");
    assert.equal(c.willReconnect, true);
    const again = await within(resumed, "resumed after the restart", 30_000);
    assert.equal(again.character.id, welcome.character.id);
    const restored = (
      await waitMirror(s, (m) => m.shipById(welcome.character.ship) !== undefined, "own ship after the restart")
    ).shipById(welcome.character.ship)!;
    assert.deepEqual([restored.x, restored.y, restored.vx, restored.vy], [before.x, before.y, before.vx, before.vy]);
  } finally {
    await s.close();
  }
});

test("a gap in the deltas sends resync, and the keyframe that answers it rebuilds the mirror", async () => {
  const api = new OrreryApi({ baseUrl: server.baseUrl });
  await api.guest("gappy");
  const s = session(api, "binary");
  const welcome = await s.connect();
  try {
    await waitMirror(s, (m) => m.shipById(welcome.character.ship) !== undefined, "own ship");
    s.thrust(20, 20); // the sector now sends a delta every tick
    await waitMirror(s, (m) => m.shipById(welcome.character.ship)?.vx === 20, "moving");
    const gap = s.next("gap");
    const answer = s.next("keyframe", (k) => k.id !== undefined);
    // Pretend the last delta never arrived: the next one then skips a seq.
    s.mirror!.seq -= 1;
    const g = await within(gap, "gap");
    assert.equal(g.got, g.expected + 1);
    assert.ok(s.mirror!.stale);
    const k = await within(answer, "resync keyframe");
    assert.equal(k.sector, welcome.sector);
    await waitMirror(s, (m) => !m.stale && m.seq >= k.seq, "fresh mirror");
    assert.ok(s.mirror!.shipById(welcome.character.ship));
  } finally {
    await s.close();
  }
});

test("operators: sector_paused, notice broadcasts, and a kick (4003) that does not reconnect", async () => {
  const api = new OrreryApi({ baseUrl: server.baseUrl });
  const guest = await api.guest("watched");
  const s = session(api, "json");
  const welcome = await s.connect();
  try {
    await waitMirror(s, () => true, "keyframe");
    const paused = s.next("sector_paused");
    await server.admin("POST", `/v1/admin/sectors/${welcome.sector}/pause`);
    assert.deepEqual(await within(paused, "sector_paused"), { type: "sector_paused", sector: welcome.sector, paused: true });
    assert.equal(s.paused, true);
    await assert.rejects(
      s.warp(s.mirror!.warps[0]!.to),
      (e: unknown) => e instanceof ServerError && e.code === "sector_paused",
    );
    const resumed = s.next("sector_paused");
    await server.admin("POST", `/v1/admin/sectors/${welcome.sector}/resume`);
    assert.equal((await within(resumed, "resumed")).paused, false);
    assert.equal(s.paused, false);

    const notice = s.next("notice");
    await server.admin("POST", "/v1/admin/broadcast", { scope: "global", text: "restart soon" });
    assert.deepEqual(await within(notice, "broadcast"), { type: "notice", scope: "global", text: "restart soon" });

    const closed = s.next("close");
    let reconnected = false;
    s.on("reconnecting", () => {
      reconnected = true;
    });
    await server.admin("POST", "/v1/admin/kick", { character: guest.character_id, reason: "testing kicks" });
    const c: CloseInfo = await within(closed, "kick close");
    assert.equal(c.code, 4003);
    assert.equal(c.kind, "kicked");
    assert.equal(c.willReconnect, false);
    assert.deepEqual(c.notice, { type: "notice", scope: "kick", text: "testing kicks" });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(reconnected, false);
    assert.equal(s.state, "closed");
    // The player may log in again on purpose (right after a close the server may still be parking the ship).
    let back;
    for (let attempt = 1; ; attempt++) {
      try {
        back = await s.connect();
        break;
      } catch (e) {
        if (attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.equal(back.character.id, guest.character_id);
  } finally {
    s.close();
  }
});

test("accounts: register, log in, characters, play one, refresh with rotation, log out", async () => {
  const api = new OrreryApi({ baseUrl: server.baseUrl });
  const username = `sdk_${Date.now().toString(36)}`;
  const reg = await api.register(username, "correct horse battery");
  assert.equal(reg.username, username);
  await assert.rejects(api.register(username, "correct horse battery"), (e: unknown) => e instanceof ApiError && e.status === 409 && e.code === "username_taken");
  await assert.rejects(
    new OrreryApi({ baseUrl: server.baseUrl }).login(username, "wrong password!"),
    (e: unknown) => e instanceof ApiError && e.status === 401 && e.code === "unauthorized",
  );
  const pair = await api.login(username, "correct horse battery");
  assert.equal(pair.account_id, reg.account_id);
  assert.deepEqual((await api.characters()).characters, []);
  const stella = await api.createCharacter("Stella");
  const nova = await api.createCharacter("Nova");
  assert.deepEqual(
    (await api.characters()).characters.map((c) => c.name).sort(),
    ["Nova", "Stella"],
  );
  assert.equal((await api.me()).account.username, username);

  // Two characters: the session names the one to play.
  const s = session(api, "binary", { character: nova.id });
  const welcome = await s.connect();
  assert.equal(welcome.character.id, nova.id);
  assert.notEqual(welcome.character.id, stella.id);

  const oldRefresh = pair.refresh_token;
  const next = await api.refresh();
  assert.notEqual(next.refresh_token, oldRefresh);
  assert.notEqual(next.access_token, "");
  // The new access token opens sessions (a drop resumes with it).
  const resumed = s.next("resumed");
  s.dropConnection();
  assert.equal((await within(resumed, "resume with the refreshed token")).character.id, nova.id);
  s.close();

  // Rotation: the old refresh token is refused (and, as a replay, revokes its login's tokens).
  const thief = new OrreryApi({
    baseUrl: server.baseUrl,
    credentials: { kind: "account", accessToken: "", refreshToken: oldRefresh, accountId: reg.account_id, expiresAt: 0 },
  });
  await assert.rejects(thief.refresh(), (e: unknown) => e instanceof ApiError && e.status === 401);

  const fresh = new OrreryApi({ baseUrl: server.baseUrl });
  await fresh.login(username, "correct horse battery");
  await fresh.logout();
  assert.equal(fresh.credentials, undefined);
  await assert.rejects(fresh.characters(), /not logged in/);
});

test("a guest upgrades to an account and keeps its character", async () => {
  const api = new OrreryApi({ baseUrl: server.baseUrl });
  const guest = await api.guest("wanderer");
  const username = `up_${Date.now().toString(36)}`;
  const up = await api.upgrade(username, "correct horse battery");
  assert.equal(up.account_id, guest.account_id);
  assert.equal(api.credentials?.kind, "account");
  assert.deepEqual((await api.characters()).characters.map((c) => c.id), [guest.character_id]);
  // The old guest token stops working.
  const stale = new OrreryApi({
    baseUrl: server.baseUrl,
    credentials: { kind: "guest", token: guest.token, characterId: guest.character_id, accountId: guest.account_id, name: guest.name },
  });
  await assert.rejects(stale.characters(), (e: unknown) => e instanceof ApiError && e.status === 401);
  const s = session(api, "binary");
  assert.equal((await s.connect()).character.id, guest.character_id);
  await s.close();
});

test("a refused token is a typed connect error, not a hang", async () => {
  const api = new OrreryApi({
    baseUrl: server.baseUrl,
    credentials: { kind: "guest", token: "not-a-token", characterId: "", accountId: "", name: "" },
  });
  const s = session(api, "binary", { reconnect: false });
  await assert.rejects(s.connect(), (e: unknown) => e instanceof Error && e.name === "ConnectError");
  assert.equal(s.state, "closed");
});
