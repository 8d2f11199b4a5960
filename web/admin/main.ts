// Orrery's admin console: a live view of the node, its regions and sectors, sessions, a sector's map, charts of
// the key series and the audit log, with the admin API's controls (each audited by the server).
import { ApiError, call, login, logout, metrics, setSignedOutHandler, signedIn } from "./api";
import { draw, Series } from "./chart";
import { ago, byId, confirmButton, h, keyed, setText, shortId, time } from "./dom";

interface Sector {
  id: string;
  name: string;
  region: string;
  running: boolean;
  paused: boolean;
  ships: number;
  sessions: number;
  tick_p99_ms: number | null;
  overruns: number;
  last_snapshot_at: number | null;
  tick_hz: number;
}
interface Region {
  id: string;
  name: string;
  nexus: boolean;
  running: boolean;
  paused: boolean;
  tick_hz: number;
  ships: number;
  sessions: number;
  sectors: { id: string; name: string }[];
}
interface Session {
  session: string;
  character: string;
  name: string;
  account: string | null;
  sector: string;
  region: string | null;
  in_transit: boolean;
  connected_at: number;
  address: string | null;
}
interface AuditEntry {
  id: string;
  at: number;
  time: string;
  actor: string;
  action: string;
  target: string | null;
  params: unknown;
  result: string;
  error: { status: number; code: string; message: string } | null;
}

const POLL_MS = 2000;
/** The map of one sector is redrawn this often while it is shown. */
const MAP_MS = 500;
const WINDOW_MS = 5 * 60_000;

let regions: Region[] = [];
let sectors = new Map<string, Sector>();
const expanded = new Set<string>();
const series = {
  sessions: new Series(WINDOW_MS),
  frames: new Series(WINDOW_MS),
  p99: new Series(WINDOW_MS),
  bytes: new Series(WINDOW_MS),
};
let lastCounters: { t: number; frames: number; bytes: number } | null = null;
let pollTimer: number | undefined;
let view = "overview";

// ---- status line ----------------------------------------------------------------------------------------------

function status(text: string, kind: "ok" | "bad" | "" = ""): void {
  const el = byId("status");
  el.textContent = text;
  el.className = `status ${kind}`;
}

function failed(what: string, e: unknown): void {
  const msg = e instanceof ApiError ? `${e.code}: ${e.message}` : String(e);
  status(`${what} failed: ${msg}`, "bad");
}

/** Runs a control through the admin API and reports its outcome. */
async function control(what: string, method: string, path: string, body?: unknown): Promise<void> {
  status(`${what}...`);
  try {
    const answer = await call(method, path, body);
    status(`${what}: done ${JSON.stringify(answer)}`, "ok");
  } catch (e) {
    failed(what, e);
  }
  void poll();
}

// ---- sign in / out --------------------------------------------------------------------------------------------

function showLogin(message = ""): void {
  if (pollTimer !== undefined) clearTimeout(pollTimer);
  pollTimer = undefined;
  if (mapTimer !== undefined) clearInterval(mapTimer);
  mapTimer = undefined;
  byId("app").hidden = true;
  byId("login").hidden = false;
  setText(byId("login-error"), message);
  byId<HTMLInputElement>("login-username").focus();
}

async function showApp(): Promise<void> {
  try {
    const me = await call<{ account: { username: string; capabilities: string[] } }>("GET", "/v1/accounts/me");
    const caps = me.account.capabilities ?? [];
    if (!caps.includes("admin") && !caps.includes("operator")) {
      await logout();
      showLogin(`${me.account.username} holds neither admin nor operator.`);
      return;
    }
    setText(byId("who"), `${me.account.username} (${caps.filter((c) => c === "admin" || c === "operator").join(", ")})`);
  } catch (e) {
    if (!signedIn()) return;
    failed("Reading your account", e);
  }
  byId("login").hidden = true;
  byId("app").hidden = false;
  route();
  void poll();
}

byId<HTMLFormElement>("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const user = byId<HTMLInputElement>("login-username").value.trim();
  const pass = byId<HTMLInputElement>("login-password").value;
  setText(byId("login-error"), "");
  try {
    await login(user, pass);
    byId<HTMLInputElement>("login-password").value = "";
    await showApp();
  } catch (e) {
    setText(
      byId("login-error"),
      e instanceof ApiError && e.status === 401 ? "Wrong username or password." : `Sign-in failed: ${String(e instanceof Error ? e.message : e)}`,
    );
  }
});

byId("logout").addEventListener("click", async () => {
  await logout();
  showLogin();
});

setSignedOutHandler((why) => showLogin(why));

// ---- views ----------------------------------------------------------------------------------------------------

function route(): void {
  const want = location.hash.replace(/^#/, "") || "overview";
  view = ["overview", "sessions", "map", "audit"].includes(want) ? want : "overview";
  for (const v of ["overview", "sessions", "map", "audit"]) byId(`view-${v}`).hidden = v !== view;
  for (const a of Array.from(document.querySelectorAll<HTMLAnchorElement>("#nav a"))) {
    a.classList.toggle("active", a.dataset.view === view);
  }
  if (view === "audit") void loadAudit(null);
  if (view === "sessions") void loadSessions();
  if (mapTimer !== undefined) clearInterval(mapTimer);
  mapTimer = undefined;
  if (view === "map") {
    void loadMap();
    mapTimer = window.setInterval(() => {
      if (!signedIn() || mapLoading) return;
      void loadMap();
    }, MAP_MS);
  }
}
window.addEventListener("hashchange", route);

// ---- polling --------------------------------------------------------------------------------------------------

let polling = false;
let pollAgain = false;

/** One refresh of the live view; a call while one runs makes it run again right after (never two at once). */
async function poll(): Promise<void> {
  if (polling) {
    pollAgain = true;
    return;
  }
  if (pollTimer !== undefined) clearTimeout(pollTimer);
  pollTimer = undefined;
  if (!signedIn()) return;
  polling = true;
  try {
    const [nodes, regs, secs] = await Promise.all([
      call<{ nodes: any[] }>("GET", "/v1/admin/nodes"),
      call<{ regions: Region[] }>("GET", "/v1/admin/regions"),
      call<{ sectors: Sector[] }>("GET", "/v1/admin/sectors"),
    ]);
    regions = regs.regions;
    sectors = new Map(secs.sectors.map((s) => [s.id, s]));
    renderNodes(nodes.nodes);
    renderTree();
    fillSectorSelects();
    await sample(nodes.nodes);
    if (view === "sessions") await loadSessions();
  } catch (e) {
    if (!signedIn()) return;
    failed("Refreshing", e);
  } finally {
    polling = false;
  }
  if (!signedIn()) return;
  if (pollAgain) {
    pollAgain = false;
    void poll();
  } else {
    pollTimer = window.setTimeout(() => void poll(), POLL_MS);
  }
}

async function sample(nodes: any[]): Promise<void> {
  const t = Date.now();
  series.sessions.push(t, nodes.reduce((n, x) => n + (x.sessions ?? 0), 0));
  let worst = 0;
  for (const s of sectors.values()) if (s.tick_p99_ms !== null && s.tick_p99_ms > worst) worst = s.tick_p99_ms;
  series.p99.push(t, worst);
  try {
    const m = await metrics();
    const frames = m.get("orrery_delta_frames_sent_total") ?? 0;
    const bytes = m.get("orrery_bytes_sent_total") ?? 0;
    if (lastCounters && t > lastCounters.t) {
      const dt = (t - lastCounters.t) / 1000;
      series.frames.push(t, Math.max(0, frames - lastCounters.frames) / dt);
      series.bytes.push(t, Math.max(0, bytes - lastCounters.bytes) / dt);
    }
    lastCounters = { t, frames, bytes };
  } catch {
    /* the charts that need /metrics skip a sample */
  }
  if (view === "overview") {
    draw(byId<HTMLCanvasElement>("chart-sessions"), series.sessions, "#7fb3ff");
    draw(byId<HTMLCanvasElement>("chart-frames"), series.frames, "#5fd08a");
    draw(byId<HTMLCanvasElement>("chart-p99"), series.p99, "#f0b44c");
    draw(byId<HTMLCanvasElement>("chart-bytes"), series.bytes, "#c08cff");
    void loadHistory();
  }
}

// ---- overview -------------------------------------------------------------------------------------------------

function renderNodes(nodes: any[]): void {
  keyed(
    byId("nodes"),
    nodes,
    (n) => n.id,
    () => h("div", { class: "card node" }, h("strong", { class: "title" }), h("dl")),
    (el, n) => {
      setText(el.querySelector(".title")!, `Node ${shortId(n.id)}`);
      const dl = el.querySelector("dl")!;
      const rows: [string, string][] = [
        ["Uptime", `${Math.floor(n.uptime_s / 60)} min ${n.uptime_s % 60} s`],
        ["Sessions", String(n.sessions)],
        ["Regions", `${n.regions_running} of ${n.regions} running`],
        ["Sectors", `${n.sectors_running} of ${n.sectors} running`],
        ["Store", `${n.store?.backend}${n.store?.writable ? "" : " (not writable)"}`],
      ];
      dl.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
    },
  );
}

function plural(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? "" : "s"}`;
}

function badge(text: string, kind: "ok" | "warn" | "bad" | ""): HTMLElement {
  return h("span", { class: `badge ${kind}`, text });
}

function sectorState(s: Sector | undefined): HTMLElement {
  if (!s) return badge("unknown", "bad");
  if (!s.running) return badge("stopped", "bad");
  if (s.paused) return badge("paused", "warn");
  return badge("running", "ok");
}

function renderTree(): void {
  keyed(
    byId("tree"),
    regions,
    (r) => r.id,
    (r) => {
      const d = h("details", { class: "region" }) as HTMLDetailsElement;
      const hz = h("input", { type: "number", min: 1, max: 60, "aria-label": "Tick rate" }) as HTMLInputElement;
      const controls = h(
        "span",
        { class: "controls" },
        h("button", { class: "small", type: "button", "data-act": "pause", text: "Pause", onclick: (e: Event) => { e.preventDefault(); void control(`Pause region ${r.name}`, "POST", `/v1/admin/regions/${r.id}/pause`); } }),
        h("button", { class: "small", type: "button", "data-act": "resume", text: "Resume", onclick: (e: Event) => { e.preventDefault(); void control(`Resume region ${r.name}`, "POST", `/v1/admin/regions/${r.id}/resume`); } }),
        confirmButton("Stop", "Confirm stop", () => void control(`Stop region ${r.name}`, "POST", `/v1/admin/regions/${r.id}/stop`)),
        h("button", { class: "small", type: "button", "data-act": "start", text: "Start", onclick: (e: Event) => { e.preventDefault(); void control(`Start region ${r.name}`, "POST", `/v1/admin/regions/${r.id}/start`); } }),
        hz,
        h("button", {
          class: "small", type: "button", text: "Set Hz",
          onclick: (e: Event) => {
            e.preventDefault();
            const v = Number(hz.value);
            if (!Number.isInteger(v) || v < 1 || v > 60) return status("The tick rate is a whole number from 1 to 60.", "bad");
            void control(`Tick rate of ${r.name} to ${v} Hz`, "POST", `/v1/admin/regions/${r.id}/tick-rate`, { hz: v });
          },
        }),
      );
      controls.addEventListener("click", (e) => e.stopPropagation());
      const summary = h("summary", {}, h("span", { class: "name" }), h("span", { class: "state" }), h("span", { class: "muted stats" }), controls);
      // Opened and closed here (not by the browser) so a poll's render never undoes a click.
      summary.addEventListener("click", (e) => {
        e.preventDefault();
        if (expanded.has(r.id)) expanded.delete(r.id);
        else expanded.add(r.id);
        renderTree();
      });
      const table = h("table", {}, h("thead", {}, h("tr", {}, ...["Sector", "State", "Sessions", "Ships", "Tick p99", "Overruns", "Restarts", "Hz", "Last snapshot", ""].map((t) => h("th", { text: t })))), h("tbody"));
      d.append(summary, h("div", { class: "scroll" }, table));
      return d;
    },
    (el, r) => {
      const d = el as HTMLDetailsElement;
      d.open = expanded.has(r.id);
      setText(el.querySelector(".name")!, `${r.name}${r.nexus ? " (nexus)" : ""}`);
      el.querySelector(".state")!.replaceChildren(r.running ? (r.paused ? badge("paused", "warn") : badge("running", "ok")) : badge("stopped", "bad"));
      setText(el.querySelector(".stats")!, `${plural(r.sectors.length, "sector")} · ${plural(r.sessions, "session")} · ${plural(r.ships, "ship")} · ${r.tick_hz} Hz`);
      const hz = el.querySelector<HTMLInputElement>("input[type=number]")!;
      if (document.activeElement !== hz) hz.placeholder = String(r.tick_hz);
      if (!d.open) return;
      keyed(
        el.querySelector("tbody")!,
        r.sectors,
        (s) => s.id,
        (s) =>
          h(
            "tr",
            { "data-sector": s.id },
            h("td", { text: s.name }),
            h("td", { class: "state" }),
            h("td", { class: "sessions" }),
            h("td", { class: "ships" }),
            h("td", { class: "p99" }),
            h("td", { class: "overruns" }),
            h("td", { class: "restarts" }),
            h("td", { class: "hz" }),
            h("td", { class: "snap" }),
            h(
              "td",
              { class: "actions" },
              h("button", { class: "small", type: "button", text: "Pause", onclick: () => void control(`Pause ${s.name}`, "POST", `/v1/admin/sectors/${s.id}/pause`) }),
              h("button", { class: "small", type: "button", text: "Resume", onclick: () => void control(`Resume ${s.name}`, "POST", `/v1/admin/sectors/${s.id}/resume`) }),
              h("button", { class: "small", type: "button", text: "Snapshot", onclick: () => void control(`Snapshot ${s.name}`, "POST", `/v1/admin/sectors/${s.id}/snapshot`) }),
              confirmButton("Restart", "Confirm restart", () => void control(`Restart ${s.name}`, "POST", `/v1/admin/sectors/${s.id}/restart`)),
              h("button", { class: "small", type: "button", text: "Map", onclick: () => { mapSector = s.id; location.hash = "#map"; } }),
            ),
          ),
        (row, s) => {
          const st = sectors.get(s.id);
          row.querySelector(".state")!.replaceChildren(sectorState(st));
          setText(row.querySelector(".sessions")!, String(st?.sessions ?? "-"));
          setText(row.querySelector(".ships")!, String(st?.ships ?? "-"));
          setText(row.querySelector(".p99")!, st?.tick_p99_ms == null ? "-" : `${st.tick_p99_ms.toFixed(2)} ms`);
          setText(row.querySelector(".overruns")!, String(st?.overruns ?? "-"));
          setText(row.querySelector(".restarts")!, String(restartCounts.get(s.id) ?? "-"));
          setText(row.querySelector(".hz")!, String(st?.tick_hz ?? "-"));
          setText(row.querySelector(".snap")!, ago(st?.last_snapshot_at));
        },
      );
    },
  );
}

/** What `GET /v1/admin/supervision` says: the tree's restart counts, its policy and the history. */
interface SupervisionEvent {
  at: number;
  kind: string;
  region: string;
  sector: string | null;
  reason: string;
}
const restartCounts = new Map<string, number>();

const EVENT_LABELS: Record<string, [string, "ok" | "warn" | "bad" | ""]> = {
  sector_restarted: ["sector crashed, restarted", "warn"],
  sector_restarted_by_operator: ["sector restarted by an operator", ""],
  sector_escalated: ["sector escalated to the region", "bad"],
  region_restarted: ["region supervisor crashed, restarted", "warn"],
  region_gave_up: ["region left stopped (kept failing)", "bad"],
  region_stopped: ["region stopped", ""],
  region_started: ["region started", "ok"],
};

async function loadHistory(): Promise<void> {
  let v: { policy: { max_restarts: number; restart_window_s: number }; regions: any[]; history: SupervisionEvent[] };
  try {
    v = await call("GET", "/v1/admin/supervision?limit=20");
  } catch {
    return;
  }
  restartCounts.clear();
  let sectorRestarts = 0;
  let regionRestarts = 0;
  for (const r of v.regions) {
    restartCounts.set(r.id, r.restarts);
    regionRestarts += r.restarts;
    for (const s of r.sectors) {
      restartCounts.set(s.id, s.restarts);
      sectorRestarts += s.restarts;
    }
  }
  setText(
    byId("restarts"),
    `One for one: more than ${v.policy.max_restarts} restarts within ${v.policy.restart_window_s} s escalate. ` +
      `Restarts since the node started: ${sectorRestarts} sector, ${regionRestarts} region.`,
  );
  const regionName = (id: string) => regions.find((r) => r.id === id)?.name ?? shortId(id);
  byId("history")
    .querySelector("tbody")!
    .replaceChildren(
      ...v.history.map((e) => {
        const [label, kind] = EVENT_LABELS[e.kind] ?? [e.kind, ""];
        return h(
          "tr",
          { "data-kind": e.kind },
          h("td", { text: time(e.at) }),
          h("td", {}, badge(label, kind)),
          h("td", { text: regionName(e.region), title: e.region }),
          h("td", { text: e.sector ? sectorName(e.sector) : "-", title: e.sector ?? "" }),
          h("td", { text: e.reason }),
        );
      }),
    );
  renderTree();
}

// ---- sessions and broadcast -----------------------------------------------------------------------------------

let searchTimer: number | undefined;
byId<HTMLInputElement>("session-search").addEventListener("input", () => {
  if (searchTimer !== undefined) clearTimeout(searchTimer);
  searchTimer = window.setTimeout(() => void loadSessions(), 250);
});

function sectorName(id: string | null): string {
  if (!id) return "-";
  return sectors.get(id)?.name ?? shortId(id);
}

async function loadSessions(): Promise<void> {
  const q = byId<HTMLInputElement>("session-search").value.trim();
  let page: { sessions: Session[]; total: number };
  try {
    page = await call("GET", `/v1/admin/sessions?limit=200${q ? `&q=${encodeURIComponent(q)}` : ""}`);
  } catch (e) {
    if (signedIn()) failed("Listing sessions", e);
    return;
  }
  setText(byId("session-count"), `${page.total} session${page.total === 1 ? "" : "s"}${page.total > page.sessions.length ? `, first ${page.sessions.length} shown` : ""}`);
  keyed(
    byId("sessions").querySelector("tbody")!,
    page.sessions,
    (s) => s.session,
    (s) =>
      h(
        "tr",
        { "data-character": s.character },
        h("td", { class: "name", text: s.name }),
        h("td", { text: shortId(s.character), title: s.character }),
        h("td", { text: shortId(s.account), title: s.account ?? "" }),
        h("td", { class: "sector" }),
        h("td", { class: "since" }),
        h("td", { text: s.address ?? "-" }),
        h(
          "td",
          { class: "actions" },
          confirmButton("Kick", "Confirm kick", () => void control(`Kick ${s.name}`, "POST", "/v1/admin/kick", { character: s.character })),
        ),
      ),
    (row, s) => {
      setText(row.querySelector(".sector")!, s.in_transit ? "in transit" : sectorName(s.sector));
      setText(row.querySelector(".since")!, ago(s.connected_at));
    },
  );
}

function fillSectorSelects(): void {
  const scope = byId<HTMLSelectElement>("broadcast-scope").value;
  const target = byId<HTMLSelectElement>("broadcast-target");
  target.disabled = scope === "global";
  target.hidden = scope === "global";
  const want: [string, string][] =
    scope === "region" ? regions.map((r) => [r.id, r.name]) : scope === "sector" ? sortedSectors().map((s) => [s.id, s.name]) : [];
  syncOptions(target, want);
  syncOptions(byId<HTMLSelectElement>("map-sector"), sortedSectors().map((s) => [s.id, `${s.name} (${plural(s.sessions, "session")})`]));
  if (mapSector) byId<HTMLSelectElement>("map-sector").value = mapSector;
}

function sortedSectors(): Sector[] {
  return [...sectors.values()].sort((a, b) => b.sessions - a.sessions || a.name.localeCompare(b.name));
}

function syncOptions(select: HTMLSelectElement, want: [string, string][]): void {
  const keep = select.value;
  const same = select.options.length === want.length && want.every(([v, t], i) => select.options[i].value === v && select.options[i].text === t);
  if (same) return;
  select.replaceChildren(...want.map(([v, t]) => h("option", { value: v, text: t })));
  if (want.some(([v]) => v === keep)) select.value = keep;
}

byId<HTMLSelectElement>("broadcast-scope").addEventListener("change", fillSectorSelects);
byId<HTMLFormElement>("broadcast-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const scope = byId<HTMLSelectElement>("broadcast-scope").value;
  const text = byId<HTMLInputElement>("broadcast-text").value;
  const body: Record<string, string> = { scope, text };
  if (scope !== "global") body.target = byId<HTMLSelectElement>("broadcast-target").value;
  void control(`Broadcast (${scope})`, "POST", "/v1/admin/broadcast", body).then(() => {
    if (byId("status").classList.contains("ok")) byId<HTMLInputElement>("broadcast-text").value = "";
  });
});

// ---- map ------------------------------------------------------------------------------------------------------

let mapSector: string | null = null;
let mapTimer: number | undefined;
let mapLoading = false;
byId<HTMLSelectElement>("map-sector").addEventListener("change", (e) => {
  mapSector = (e.target as HTMLSelectElement).value;
  void loadMap();
});

async function loadMap(): Promise<void> {
  if (!mapSector) mapSector = sortedSectors()[0]?.id ?? null;
  if (!mapSector) return;
  const id = mapSector;
  let s: Sector & { state: any; seq?: number; tick?: number };
  mapLoading = true;
  try {
    s = await call("GET", `/v1/admin/sectors/${id}`);
  } catch (e) {
    if (signedIn()) failed("Reading the sector", e);
    return;
  } finally {
    mapLoading = false;
  }
  if (id !== mapSector) return;
  byId<HTMLSelectElement>("map-sector").value = id;
  const state = s.state;
  setText(
    byId("map-info"),
    state
      ? `${s.name}: ${plural(state.ships.length, "ship")}, ${plural(state.stations.length, "station")}, ${plural(state.warps.length, "warp")} · tick ${s.tick ?? "-"} · ${s.paused ? "paused" : "running"}`
      : `${s.name}: not running`,
  );
  drawMap(byId<HTMLCanvasElement>("map"), state);
}

function drawMap(canvas: HTMLCanvasElement, state: any): void {
  const dpr = window.devicePixelRatio || 1;
  const css = Math.max(1, canvas.clientWidth);
  const px = Math.round(css * dpr);
  if (canvas.width !== px || canvas.height !== px) {
    canvas.width = px;
    canvas.height = px;
  }
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, css, css);
  ctx.strokeStyle = "#1b2440";
  for (let i = 1; i < 10; i++) {
    const p = (css * i) / 10;
    ctx.beginPath();
    ctx.moveTo(p, 0);
    ctx.lineTo(p, css);
    ctx.moveTo(0, p);
    ctx.lineTo(css, p);
    ctx.stroke();
  }
  if (!state) {
    ctx.fillStyle = "#8c98b8";
    ctx.fillText("The sector is not running.", 12, 20);
    return;
  }
  const size = Number(state.size) || 1000;
  const k = css / size;
  ctx.font = "11px system-ui, sans-serif";
  // Stations and warps have no position in the game's state: listed along the edges.
  ctx.fillStyle = "#f0b44c";
  (state.stations as any[]).forEach((st, i) => {
    ctx.fillRect(8, 10 + i * 16, 8, 8);
    ctx.fillText(st.name, 20, 18 + i * 16);
  });
  ctx.fillStyle = "#c08cff";
  ctx.textAlign = "right";
  (state.warps as any[]).forEach((w, i) => ctx.fillText(`⇢ ${w.name} (${w.turns} turns)`, css - 8, 18 + i * 16));
  ctx.textAlign = "left";
  for (const ship of state.ships as any[]) {
    const x = ship.x * k;
    const y = ship.y * k;
    ctx.strokeStyle = "#2f6f8f";
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + ship.vx * 3 * k, y + ship.vy * 3 * k);
    ctx.stroke();
    ctx.fillStyle = "#5fe0ff";
    ctx.beginPath();
    ctx.arc(x, y, 4, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = "#dfe6f3";
    ctx.fillText(ship.name, x + 6, y - 6);
  }
}

// ---- audit log ------------------------------------------------------------------------------------------------

let auditNext: string | null = null;
let auditPage = 0;

function auditQuery(): string {
  const p = new URLSearchParams({ limit: byId<HTMLSelectElement>("audit-limit").value });
  const fields: [string, string][] = [
    ["actor", "audit-actor"],
    ["action", "audit-action"],
    ["target", "audit-target"],
    ["since", "audit-since"],
  ];
  for (const [name, id] of fields) {
    const v = byId<HTMLInputElement>(id).value.trim();
    if (v) p.set(name, v);
  }
  return p.toString();
}

function auditRows(tbody: HTMLElement, entries: AuditEntry[], withParams: boolean): void {
  tbody.replaceChildren(
    ...entries.map((e) =>
      h(
        "tr",
        {},
        h("td", { text: time(e.at) }),
        h("td", { text: e.actor }),
        h("td", { text: e.action }),
        h("td", { text: e.target ? sectorName(e.target) === shortId(e.target) ? (regions.find((r) => r.id === e.target)?.name ?? shortId(e.target)) : sectorName(e.target) : "-", title: e.target ?? "" }),
        withParams ? h("td", { text: JSON.stringify(e.params) }) : null,
        h("td", {}, badge(e.result === "error" && e.error ? `${e.error.code}` : e.result, e.result === "ok" ? "ok" : e.result === "error" ? "bad" : "warn")),
      ),
    ),
  );
}

async function loadAudit(before: string | null): Promise<void> {
  let page: { entries: AuditEntry[]; next: string | null };
  try {
    page = await call("GET", `/v1/admin/audit?${auditQuery()}${before ? `&before=${encodeURIComponent(before)}` : ""}`);
  } catch (e) {
    if (signedIn()) failed("Reading the audit log", e);
    return;
  }
  auditNext = page.next;
  auditPage = before === null ? 1 : auditPage + 1;
  auditRows(byId("audit").querySelector("tbody")!, page.entries, true);
  setText(byId("audit-page"), `page ${auditPage}${page.entries.length === 0 ? " (no entries)" : ""}${auditNext ? "" : " (oldest)"}`);
  byId<HTMLButtonElement>("audit-older").disabled = !auditNext;
}

byId<HTMLFormElement>("audit-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  void loadAudit(null);
});
byId("audit-newest").addEventListener("click", () => void loadAudit(null));
byId("audit-limit").addEventListener("change", () => void loadAudit(null));
byId("audit-older").addEventListener("click", () => {
  if (auditNext) void loadAudit(auditNext);
});

// ---- start ----------------------------------------------------------------------------------------------------

if (signedIn()) void showApp();
else showLogin();
