import WebSocket from "ws"; // node 20; browsers and node >= 22 have a global WebSocket (leave the option out)
import { OrreryApi, OrrerySession, ServerError, type WebSocketConstructor } from "../src/index.js";

export async function quickstart(baseUrl: string, log: (line: string) => void): Promise<void> {
  const api = new OrreryApi({ baseUrl });
  await api.guest("Ada"); // or: await api.login(username, password), then pass `character` to the session
  const session = new OrrerySession({ api, WebSocket: WebSocket as unknown as WebSocketConstructor });
  session.on("chat", (c) => log(`${c.name}: ${c.text}`));
  session.on("notice", (n) => log(`[${n.scope}] ${n.text}`));
  session.on("close", (c) => log(`closed ${c.code} (${c.kind}), reconnecting: ${c.willReconnect}`));
  const { character } = await session.connect(); // binary subprotocol (postcard) unless encoding: "json"
  const sector = await session.mirrorWhere((m) => m.shipById(character.ship) !== undefined);
  log(`${character.name} in ${sector.name} with ${sector.allShips().length} ship(s), ${character.credits} credits`);
  session.thrust(40, 0); // units per second; shows in the next delta, which updates the mirror
  await session.mirrorWhere((m) => m.shipById(character.ship)?.vx === 40);
  const station = sector.stations.find((s) => s.commodities.some((c) => c.quantity > 0));
  const listing = station?.commodities.find((c) => c.quantity > 0);
  if (station && listing) {
    const bought = await session.trade(station.id, listing.commodity, "buy", 1, crypto.randomUUID());
    log(`bought 1 ${listing.commodity} for ${bought.total}, ${bought.credits} credits left`);
  }
  try {
    const warped = await session.warp(sector.warps[0]!.to); // a keyframe of the new sector follows
    log(`warped to ${(await session.mirrorWhere((m) => m.sector === warped.to)).name}`);
  } catch (e) {
    if (!(e instanceof ServerError)) throw e;
    log(`warp refused: ${e.code}`); // e.g. not_enough_turns, sector_paused
  }
  await session.close();
}
