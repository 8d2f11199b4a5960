// Orrery's player client: log in (guest or account), pick a character, and fly, trade, warp and chat in a canvas
// view of the sector. Everything goes through the TypeScript SDK (sdk/typescript); the binary subprotocol is the
// default.

import {
  ApiError,
  OrreryApi,
  OrreryError,
  OrrerySession,
  ServerError,
  type Character,
  type Credentials,
  type Encoding,
  type SectorMirror,
  type StationView,
  type Uuid,
} from "../../sdk/typescript/src/index.js";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el as T;
};

const GUEST_KEY = "orrery.guest";
const SPEED = 60;

const api = new OrreryApi({ baseUrl: location.origin });
let session: OrrerySession | undefined;
let mirrorAt = performance.now();
let shownSector: Uuid | undefined;
let selectedStation: Uuid | undefined;
let marketSignature = "";
let warpSignature = "";
let noticeTimer: ReturnType<typeof setTimeout> | undefined;

function describe(e: unknown): string {
  if (e instanceof ApiError) return e.status === 401 ? "Wrong username or password." : e.message;
  if (e instanceof OrreryError) return e.message;
  return String(e);
}

function show(section: "login" | "characters" | "game"): void {
  $("reconnect").hidden = true;
  $("login").hidden = section !== "login";
  $("characters").hidden = section !== "characters";
  $("game").hidden = section !== "game";
  $("logout").hidden = section === "login";
}

function setConn(state: string, text = state): void {
  const el = $("conn");
  el.className = `conn ${state}`;
  el.textContent = text;
}

function savedGuest(): Credentials | undefined {
  try {
    const raw = localStorage.getItem(GUEST_KEY);
    const c = raw ? (JSON.parse(raw) as Credentials) : undefined;
    return c?.kind === "guest" && typeof c.token === "string" ? c : undefined;
  } catch {
    return undefined;
  }
}

function offerResume(): void {
  const c = savedGuest();
  const button = $<HTMLButtonElement>("guest-resume");
  button.hidden = !c;
  if (c?.kind === "guest") button.textContent = `Continue as ${c.name}`;
}

// ---------- login and characters ----------

$("guest-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  void (async () => {
    $("login-error").textContent = "";
    try {
      const name = $<HTMLInputElement>("guest-name").value.trim();
      await api.guest(name || undefined);
      localStorage.setItem(GUEST_KEY, JSON.stringify(api.credentials));
      await play(undefined);
    } catch (e) {
      $("login-error").textContent = describe(e);
    }
  })();
});

$("guest-resume").addEventListener("click", () => {
  void (async () => {
    const c = savedGuest();
    if (!c) return;
    api.credentials = c;
    try {
      await play(undefined);
    } catch (e) {
      $("login-error").textContent = `${describe(e)} Start a new guest instead.`;
      localStorage.removeItem(GUEST_KEY);
      offerResume();
      show("login");
    }
  })();
});

async function accountLogin(register: boolean): Promise<void> {
  $("login-error").textContent = "";
  const username = $<HTMLInputElement>("account-username").value.trim();
  const password = $<HTMLInputElement>("account-password").value;
  try {
    if (register) await api.register(username, password);
    await api.login(username, password);
    $("who").textContent = username;
    await showCharacters();
  } catch (e) {
    $("login-error").textContent = describe(e);
  }
}

$("account-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  void accountLogin(false);
});
$("account-register").addEventListener("click", () => void accountLogin(true));

async function showCharacters(): Promise<void> {
  show("characters");
  const list = $("character-list");
  list.replaceChildren();
  const { characters } = await api.characters();
  for (const c of characters) list.append(characterItem(c));
  if (characters.length === 0) {
    const li = document.createElement("li");
    li.className = "small";
    li.textContent = "No character yet: create one.";
    list.append(li);
  }
}

function characterItem(c: Character): HTMLLIElement {
  const li = document.createElement("li");
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = `Play ${c.name}`;
  b.addEventListener("click", () => {
    play(c.id).catch((e: unknown) => {
      $("character-error").textContent = describe(e);
      show("characters");
    });
  });
  li.append(b);
  return li;
}

$("character-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  void (async () => {
    $("character-error").textContent = "";
    try {
      await api.createCharacter($<HTMLInputElement>("character-name").value.trim());
      $<HTMLInputElement>("character-name").value = "";
      await showCharacters();
    } catch (e) {
      $("character-error").textContent = describe(e);
    }
  })();
});

$("reconnect").addEventListener("click", () => {
  const s = session;
  if (!s) return;
  $("reconnect").hidden = true;
  setConn("reconnecting", "connecting...");
  s.connect().catch((e: unknown) => {
    setConn("closed", `offline: ${describe(e)}`);
    $("reconnect").hidden = false;
  });
});

$("logout").addEventListener("click", () => {
  void (async () => {
    const s = session;
    session = undefined;
    await s?.close();
    if (api.credentials?.kind === "account") await api.logout().catch(() => undefined);
    else localStorage.removeItem(GUEST_KEY);
    api.credentials = undefined;
    $("who").textContent = "";
    setConn("offline");
    offerResume();
    show("login");
  })();
});

// ---------- the session ----------

async function play(character: Uuid | undefined): Promise<void> {
  await session?.close();
  const encoding = $<HTMLSelectElement>("encoding").value as Encoding;
  const s = new OrrerySession({ api, character, encoding });
  session = s;
  shownSector = undefined;
  warpSignature = "";
  marketSignature = "";
  $("chat-log").replaceChildren();
  s.on("welcome", (w) => {
    $("who").textContent = `${w.character.name} (${s.encoding})`;
    setConn("open", "online");
    updateStatus();
  });
  s.on("resumed", () => setConn("open", "online"));
  s.on("welcome", () => ($("reconnect").hidden = true));
  s.on("mirror", (m) => {
    mirrorAt = performance.now();
    onMirror(m);
  });
  s.on("trade_result", (t) => {
    $("trade-msg").textContent = `${t.side === "buy" ? "Bought" : "Sold"} ${t.qty} ${label(t.commodity)} at ${t.unit_price} (${t.total} total).`;
    updateStatus();
  });
  s.on("warped", () => updateStatus());
  s.on("chat", (c) => addChat(c.channel, c.name, c.text));
  s.on("notice", (n) => showNotice(n.scope === "kick" ? `Kicked: ${n.text}` : n.text, n.scope !== "kick"));
  s.on("error", (e) => showNotice(`${e.code}: ${e.message}`, true));
  s.on("sector_paused", () => updateFlags());
  s.on("time_dilation", () => updateFlags());
  s.on("close", (c) => {
    if (c.willReconnect) setConn("reconnecting", "reconnecting...");
    else if (session === s) {
      setConn("closed", c.kind === "normal" ? "offline" : `closed (${c.kind})`);
      if (c.notice) showNotice(c.notice.scope === "kick" ? `Kicked: ${c.notice.text}` : c.notice.text, false);
      $("reconnect").hidden = false;
    }
  });
  s.on("gave_up", (e) => {
    setConn("closed", `offline: ${e.message}`);
    $("reconnect").hidden = false;
  });
  await s.connect();
  show("game");
  resize();
}

function onMirror(m: SectorMirror): void {
  if (m.sector !== shownSector) {
    shownSector = m.sector;
    $("sector-name").textContent = m.name;
    canvas.dataset.size = String(m.size);
    selectedStation = m.stations[0]?.id;
    renderStations(m.stations);
    updateFlags();
  }
  const warps = JSON.stringify([m.warps, session?.profile?.turns]);
  if (warps !== warpSignature) {
    warpSignature = warps;
    renderWarps(m);
  }
  const station = selectedStation ? m.station(selectedStation) : undefined;
  const market = JSON.stringify(station ?? null);
  if (market !== marketSignature) {
    marketSignature = market;
    renderMarket(station);
  }
  const me = session?.profile && m.shipById(session.profile.ship);
  $("pos").textContent = me ? `${Math.round(me.x)}, ${Math.round(me.y)}` : "-";
}

function updateFlags(): void {
  const s = session;
  $("paused").hidden = !s?.paused;
  const d = $("dilation");
  d.hidden = !s || s.dilation >= 1;
  d.textContent = s ? `time x${s.dilation.toFixed(2)}` : "";
}

function updateStatus(): void {
  const p = session?.profile;
  if (!p) return;
  $("credits").textContent = p.credits.toLocaleString("en");
  $("turns").textContent = `${p.turns} / ${p.turns_max}`;
  const held = Object.entries(p.cargo).filter(([, n]) => (n ?? 0) > 0);
  const used = held.reduce((sum, [, n]) => sum + (n ?? 0), 0);
  $("cargo").textContent = held.length
    ? `${held.map(([c, n]) => `${n} ${label(c)}`).join(", ")} (${used}/${p.cargo_capacity})`
    : `empty (0/${p.cargo_capacity})`;
}

const label = (commodity: string) => commodity.replace(/_/g, " ");

function renderWarps(m: SectorMirror): void {
  const list = $("warps");
  list.replaceChildren();
  const turns = session?.profile?.turns ?? 0;
  for (const w of m.warps) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = `${w.name} (${w.turns} turn${w.turns === 1 ? "" : "s"})`;
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "Warp";
    b.className = "warp";
    b.dataset.to = w.to;
    b.disabled = w.turns > turns;
    b.addEventListener("click", () => {
      b.disabled = true;
      session?.warp(w.to).then(
        () => showNotice(`Warped to ${w.name}.`, true),
        (e: unknown) => {
          b.disabled = false;
          showNotice(`Warp refused: ${e instanceof ServerError ? e.serverMessage : describe(e)}`, true);
        },
      );
    });
    li.append(name, b);
    list.append(li);
  }
  if (m.warps.length === 0) list.textContent = "No warps lead out of here.";
}

function renderStations(stations: StationView[]): void {
  const select = $<HTMLSelectElement>("station-select");
  select.replaceChildren();
  for (const st of stations) {
    const o = document.createElement("option");
    o.value = st.id;
    o.textContent = st.name;
    select.append(o);
  }
  select.disabled = stations.length === 0;
  if (stations.length === 0) {
    const o = document.createElement("option");
    o.textContent = "no station in this sector";
    select.append(o);
  }
}

$("station-select").addEventListener("change", (ev) => {
  selectedStation = (ev.target as HTMLSelectElement).value;
  marketSignature = "";
  if (session?.mirror) onMirror(session.mirror);
});

function renderMarket(station: StationView | undefined): void {
  const body = $("market").querySelector("tbody")!;
  body.replaceChildren();
  if (!station) return;
  for (const l of station.commodities) {
    const tr = document.createElement("tr");
    tr.dataset.commodity = l.commodity;
    for (const text of [label(l.commodity), String(l.quantity), String(l.sell_price), String(l.buy_price)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement("td");
    for (const side of ["buy", "sell"] as const) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = side;
      b.textContent = side === "buy" ? "Buy" : "Sell";
      b.addEventListener("click", () => trade(station.id, l.commodity, side));
      td.append(b);
    }
    tr.append(td);
    body.append(tr);
  }
}

function tradeKey(): string {
  if (typeof crypto !== "undefined" && "randomUUID" in crypto) return crypto.randomUUID();
  return `k-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

function trade(station: Uuid, commodity: StationView["commodities"][number]["commodity"], side: "buy" | "sell"): void {
  const qty = Math.max(1, Math.floor(Number($<HTMLInputElement>("qty").value) || 1));
  $("trade-msg").textContent = "...";
  session?.trade(station, commodity, side, qty, tradeKey()).catch((e: unknown) => {
    $("trade-msg").textContent = e instanceof ServerError ? `Refused: ${e.serverMessage}` : describe(e);
  });
}

// ---------- chat and notices ----------

function addChat(channel: string, name: string, text: string): void {
  const log = $("chat-log");
  const li = document.createElement("li");
  const ch = document.createElement("span");
  ch.className = "ch";
  ch.textContent = `[${channel}] `;
  const who = document.createElement("span");
  who.className = "name";
  who.textContent = `${name}: `;
  li.append(ch, who, document.createTextNode(text));
  log.append(li);
  while (log.children.length > 200) log.firstElementChild?.remove();
  log.scrollTop = log.scrollHeight;
}

$("chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $<HTMLInputElement>("chat-text");
  const text = input.value.trim();
  if (!text || !session?.connected) return;
  session.chat($<HTMLSelectElement>("chat-channel").value as "sector" | "global", text);
  input.value = "";
});

function showNotice(text: string, fades: boolean): void {
  const el = $("notice");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(noticeTimer);
  if (fades) noticeTimer = setTimeout(() => (el.hidden = true), 6000);
}

// ---------- thrust ----------

const keys = new Set<string>();
let lastThrust = "0,0";

function thrust(vx: number, vy: number): void {
  const t = `${vx},${vy}`;
  if (t === lastThrust || !session?.connected) return;
  lastThrust = t;
  session.thrust(vx, vy);
}

function thrustFromKeys(): void {
  const on = (...names: string[]) => names.some((n) => keys.has(n));
  const vx = (on("ArrowRight", "d") ? SPEED : 0) - (on("ArrowLeft", "a") ? SPEED : 0);
  const vy = (on("ArrowDown", "s") ? SPEED : 0) - (on("ArrowUp", "w") ? SPEED : 0);
  thrust(vx, vy);
}

const THRUST_KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "w", "a", "s", "d"]);
const typing = (ev: KeyboardEvent) => ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement;

window.addEventListener("keydown", (ev) => {
  if ($("game").hidden || typing(ev)) return;
  const k = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  if (k === " ") {
    // Space stops the ship; it must not also press a focused button (the last trade or warp clicked).
    ev.preventDefault();
    if (document.activeElement instanceof HTMLButtonElement) document.activeElement.blur();
    keys.clear();
    thrust(0, 0);
    return;
  }
  if (!THRUST_KEYS.has(k)) return;
  ev.preventDefault();
  keys.add(k);
  thrustFromKeys();
});

window.addEventListener("keyup", (ev) => {
  const k = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  if (!keys.delete(k)) return;
  // Releasing a key keeps the ship coasting at its velocity (like the server: velocity persists until changed),
  // unless other keys are still held.
  if (keys.size > 0) thrustFromKeys();
});

for (const b of document.querySelectorAll<HTMLButtonElement>("#pad button")) {
  b.addEventListener("click", () => {
    const dir = b.dataset.dir;
    const p = session?.profile && session.mirror?.shipById(session.profile.ship);
    const [vx, vy] = [p?.vx ?? 0, p?.vy ?? 0];
    if (dir === "stop") thrust(0, 0);
    else if (dir === "up") thrust(vx, -SPEED);
    else if (dir === "down") thrust(vx, SPEED);
    else if (dir === "left") thrust(-SPEED, vy);
    else if (dir === "right") thrust(SPEED, vy);
  });
}

// ---------- the canvas ----------

const canvas = $<HTMLCanvasElement>("sector");
const ctx = canvas.getContext("2d")!;

function resize(): void {
  const rect = canvas.getBoundingClientRect();
  const px = Math.max(200, Math.round(Math.min(rect.width, rect.height || rect.width) * devicePixelRatio));
  if (canvas.width !== px) {
    canvas.width = px;
    canvas.height = px;
  }
}
window.addEventListener("resize", resize);

/** Writes a label centred on x, kept inside the canvas. */
function labelAt(text: string, x: number, y: number, w: number): void {
  const half = ctx.measureText(text).width / 2 + 4;
  ctx.fillText(text, Math.min(w - half, Math.max(half, x)), Math.min(w - 4, Math.max(14, y)));
}

function draw(now: number): void {
  requestAnimationFrame(draw);
  const s = session;
  const m = s?.mirror;
  if ($("game").hidden || !s || !m) return;
  const w = canvas.width;
  const scale = w / m.size;
  ctx.fillStyle = "#05070d";
  ctx.fillRect(0, 0, w, w);
  ctx.strokeStyle = "#141b2c";
  ctx.lineWidth = 1;
  for (let i = 1; i < 10; i++) {
    const p = (i * w) / 10;
    ctx.beginPath();
    ctx.moveTo(p, 0);
    ctx.lineTo(p, w);
    ctx.moveTo(0, p);
    ctx.lineTo(w, p);
    ctx.stroke();
  }
  const font = Math.max(11, Math.round(w / 60));
  ctx.font = `${font}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  // Stations and warps have no position in the protocol: stations sit on an inner ring, warps on the rim.
  m.stations.forEach((st, i) => {
    const a = (i / Math.max(1, m.stations.length)) * Math.PI * 2 + 0.4;
    const x = w / 2 + Math.cos(a) * w * 0.22;
    const y = w / 2 + Math.sin(a) * w * 0.22;
    ctx.fillStyle = st.id === selectedStation ? "#6fe3a3" : "#3f9c6d";
    ctx.fillRect(x - font * 0.6, y - font * 0.6, font * 1.2, font * 1.2);
    labelAt(st.name, x, y + font * 1.9, w);
  });
  m.warps.forEach((wp, i) => {
    const a = (i / Math.max(1, m.warps.length)) * Math.PI * 2 - Math.PI / 2;
    const x = w / 2 + Math.cos(a) * w * 0.45;
    const y = w / 2 + Math.sin(a) * w * 0.45;
    ctx.strokeStyle = "#b07cff";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y, font * 0.8, 0, Math.PI * 2);
    ctx.stroke();
    ctx.fillStyle = "#c9a8ff";
    labelAt(`${wp.name} (${wp.turns})`, x, y + (y > w / 2 ? -font * 1.3 : font * 2), w);
  });
  // Ships move on between deltas at their velocity (scaled by time dilation), for at most two tick periods.
  const ahead = s.paused ? 0 : Math.min((now - mirrorAt) / 1000, 2 / s.tickHz) * s.dilation;
  const mine = s.profile?.ship;
  for (const ship of m.allShips()) {
    const x = Math.min(m.size, Math.max(0, ship.x + ship.vx * ahead)) * scale;
    const y = Math.min(m.size, Math.max(0, ship.y + ship.vy * ahead)) * scale;
    const me = ship.id === mine;
    ctx.fillStyle = me ? "#ffd45c" : "#5cc8ff";
    ctx.beginPath();
    ctx.arc(x, y, me ? font * 0.55 : font * 0.4, 0, Math.PI * 2);
    ctx.fill();
    if (me) {
      ctx.strokeStyle = "#ffd45c";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(x, y, font * 1.1, 0, Math.PI * 2);
      ctx.stroke();
    }
    labelAt(ship.name, x, y - font, w);
  }
}
requestAnimationFrame(draw);

offerResume();
show("login");
