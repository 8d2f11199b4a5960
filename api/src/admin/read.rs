//! Admin reads (need `admin` or `operator`; not audited): the node, regions and sectors with live statistics, one
//! sector's full state, and the sessions online.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use orrery_actors::sector::{SectorCell, SectorMsg, SectorStats};
use orrery_engine::{Game, RegionId, SectorId};
use orrery_regions::manager::ManagerMsg;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{parse_id, ADMIN_CALL_MS};
use crate::access::Operator;
use crate::error::ApiError;
use crate::App;

/// How long a statistics read waits for one sector (a sector that does not answer shows as not running).
const STATS_CALL_MS: u64 = 2_000;
/// Sessions listed when `limit` is not given, and the most a request may ask for.
pub const SESSIONS_DEFAULT_LIMIT: usize = 50;
pub const SESSIONS_MAX_LIMIT: usize = 1_000;
/// The longest search string `q` of the session list.
pub const SESSIONS_MAX_QUERY: usize = 64;

/// A sector's live statistics: from its actor, or `None` if it does not run (or did not answer).
async fn stats<G: Game>(app: &App<G>, sector: SectorId) -> Option<SectorStats> {
    let actor = app.node.directory.sector(sector)?;
    ractor::call_t!(actor, SectorMsg::Stats, STATS_CALL_MS).ok()
}

/// The statistics of many sectors, asked concurrently.
async fn all_stats<G: Game>(app: &App<G>, cells: &[&Arc<SectorCell<G>>]) -> Vec<Option<SectorStats>> {
    futures_util::future::join_all(cells.iter().map(|c| stats(app, c.id))).await
}

/// One sector's entry: identity, whether it runs, and its statistics (from the cell when it does not run).
fn sector_json<G: Game>(app: &App<G>, cell: &SectorCell<G>, stats: Option<&SectorStats>) -> Value {
    let default_hz = app.node.config.tick_hz;
    match stats {
        Some(s) => json!({
            "id": cell.id, "name": cell.name, "region": cell.region, "running": true, "paused": s.paused,
            "ships": s.ships, "sessions": s.sessions, "tick_p99_ms": s.tick_p99_ms, "overruns": s.overruns,
            "last_snapshot_at": s.last_snapshot_at, "tick_hz": s.tick_hz, "seq": s.seq, "tick": s.tick,
        }),
        None => json!({
            "id": cell.id, "name": cell.name, "region": cell.region, "running": false, "paused": cell.is_paused(),
            "ships": 0, "sessions": 0, "tick_p99_ms": null, "overruns": cell.overruns(),
            "last_snapshot_at": cell.last_snapshot_at(), "tick_hz": cell.tick_hz(default_hz),
        }),
    }
}

async fn running_regions<G: Game>(app: &App<G>) -> Result<Vec<RegionId>, ApiError> {
    ractor::call_t!(app.node.manager, ManagerMsg::RunningRegions, ADMIN_CALL_MS)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// `GET /v1/admin/nodes`: this node (a single-node server lists one).
#[utoipa::path(get, path = "/v1/admin/nodes", tag = "admin", responses((status = 200, description = "This node: id, uptime, regions, sessions, store"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn nodes<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(_): Operator,
) -> Result<Json<Value>, ApiError> {
    let running = running_regions(&app).await?;
    let node = &app.node;
    Ok(Json(json!({ "nodes": [{
        "id": node.id,
        "uptime_s": node.started.elapsed().as_secs(),
        "regions": node.game.layout().len(),
        "regions_running": running.len(),
        "sectors": node.directory.sector_count(),
        "sectors_running": node.directory.running_sector_count(),
        "sessions": node.directory.session_count(),
        "store": { "backend": node.store.backend(), "writable": node.persister().available() },
    }]})))
}

/// `GET /v1/admin/regions`: every region with its sectors, whether its supervisor runs, and its live totals.
#[utoipa::path(get, path = "/v1/admin/regions", tag = "admin", responses((status = 200, description = "Every region with live totals"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn regions<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(_): Operator,
) -> Result<Json<Value>, ApiError> {
    let running = running_regions(&app).await?;
    let cells: Vec<&Arc<SectorCell<G>>> = app.node.cells().iter().collect();
    let stats = all_stats(&app, &cells).await;
    let default_hz = app.node.config.tick_hz;
    let regions: Vec<Value> = app
        .node
        .game
        .layout()
        .into_iter()
        .map(|r| {
            let mine: Vec<(&Arc<SectorCell<G>>, Option<&SectorStats>)> = cells
                .iter()
                .zip(&stats)
                .filter(|(c, _)| c.region == r.id)
                .map(|(c, s)| (*c, s.as_ref()))
                .collect();
            let ships: usize = mine.iter().filter_map(|(_, s)| s.map(|s| s.ships)).sum();
            let sessions: usize = mine.iter().filter_map(|(_, s)| s.map(|s| s.sessions)).sum();
            let paused = !mine.is_empty() && mine.iter().all(|(c, _)| c.is_paused());
            let tick_hz = mine.first().map_or(default_hz, |(c, _)| c.tick_hz(default_hz));
            json!({
                "id": r.id, "name": r.name, "nexus": r.nexus, "running": running.contains(&r.id),
                "paused": paused, "tick_hz": tick_hz, "ships": ships, "sessions": sessions,
                "sectors": r.sectors.iter().map(|s| json!({"id": s.id, "name": s.name})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(
        json!({ "regions": regions, "sessions": app.node.directory.session_count() }),
    ))
}

/// Query of `GET /v1/admin/sectors`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SectorsQuery {
    /// Only the sectors of this region.
    pub region: Option<String>,
}

/// `GET /v1/admin/sectors?region=<uuid>`: every sector (of one region) with its live statistics.
#[utoipa::path(get, path = "/v1/admin/sectors", tag = "admin", params(("region" = Option<String>, Query, description = "Only this region (UUID)")), responses((status = 200, description = "Every sector with live statistics"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn sectors<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(_): Operator,
    query: Result<Query<SectorsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest("invalid_query", e.body_text()))?;
    let region = match q.region.as_deref() {
        Some(raw) => {
            let id = Uuid::parse_str(raw)
                .map_err(|_| ApiError::BadRequest("invalid_query", format!("`region`: {raw:?} is not a UUID")))?;
            if !app.node.game.layout().iter().any(|r| r.id == id) {
                return Err(ApiError::NotFound(format!("region {id}")));
            }
            Some(id)
        }
        None => None,
    };
    let cells: Vec<&Arc<SectorCell<G>>> = app
        .node
        .cells()
        .iter()
        .filter(|c| region.is_none_or(|r| c.region == r))
        .collect();
    let stats = all_stats(&app, &cells).await;
    let sectors: Vec<Value> = cells
        .iter()
        .zip(&stats)
        .map(|(c, s)| sector_json(&app, c, s.as_ref()))
        .collect();
    Ok(Json(json!({ "sectors": sectors })))
}

/// `GET /v1/admin/sectors/{id}`: the sector's full state (its keyframe as JSON) and its statistics.
#[utoipa::path(get, path = "/v1/admin/sectors/{id}", tag = "admin", params(("id" = String, Path, description = "Sector id (UUID)")), responses((status = 200, description = "The sector's state (keyframe JSON) and statistics"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn sector<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(_): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let cell = app
        .node
        .cell(id)
        .ok_or_else(|| ApiError::NotFound(format!("sector {id}")))?;
    let inspected = match app.node.directory.sector(id) {
        Some(actor) => ractor::call_t!(actor, SectorMsg::Inspect, ADMIN_CALL_MS).ok(),
        None => None,
    };
    let mut out = sector_json(&app, cell, inspected.as_ref().map(|(_, s)| s));
    out["state"] = inspected.map_or(Value::Null, |(state, _)| state);
    Ok(Json(out))
}

/// Query of `GET /v1/admin/sessions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionsQuery {
    /// A name prefix (case-insensitive), or a prefix of a session or character id.
    pub q: Option<String>,
    /// At most this many (1 to [`SESSIONS_MAX_LIMIT`]; default [`SESSIONS_DEFAULT_LIMIT`]).
    pub limit: Option<usize>,
}

/// `GET /v1/admin/sessions?q=&limit=`: sessions online, oldest first.
#[utoipa::path(get, path = "/v1/admin/sessions", tag = "admin", params(("q" = Option<String>, Query, description = "Name prefix, or session or character id prefix"), ("limit" = Option<usize>, Query, description = "1 to 1000, default 50")), responses((status = 200, description = "Sessions online"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn sessions<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(_): Operator,
    query: Result<Query<SessionsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(SESSIONS_DEFAULT_LIMIT);
    if !(1..=SESSIONS_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(
            "invalid_query",
            format!("`limit` must be 1 to {SESSIONS_MAX_LIMIT}, got {limit}"),
        ));
    }
    let needle = q.q.unwrap_or_default().trim().to_lowercase();
    if needle.len() > SESSIONS_MAX_QUERY {
        return Err(ApiError::BadRequest(
            "invalid_query",
            format!("`q` must be at most {SESSIONS_MAX_QUERY} bytes, got {}", needle.len()),
        ));
    }
    let directory = &app.node.directory;
    let mut found: Vec<_> = directory
        .sessions()
        .into_iter()
        .filter(|l| {
            needle.is_empty()
                || l.name.to_lowercase().starts_with(&needle)
                || l.session.to_string().starts_with(&needle)
                || l.character.to_string().starts_with(&needle)
        })
        .collect();
    let total = found.len();
    found.sort_by_key(|l| (l.connected_at, l.session));
    found.truncate(limit);
    let sessions: Vec<Value> = found
        .iter()
        .map(|l| {
            let sector = l.sector();
            json!({
                "session": l.session, "character": l.character, "name": l.name, "account": l.account(),
                "sector": sector, "region": directory.region_of(sector), "in_transit": l.in_transit(),
                "connected_at": l.connected_at, "address": l.conn.peer_addr().map(|a| a.to_string()),
            })
        })
        .collect();
    Ok(Json(json!({ "sessions": sessions, "total": total })))
}

/// Query of `GET /v1/admin/supervision`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SupervisionQuery {
    /// History entries to return, newest first: 1 to 512, default 100.
    pub limit: Option<usize>,
}

/// History entries listed when `limit` is not given.
pub const SUPERVISION_DEFAULT_LIMIT: usize = 100;

/// `GET /v1/admin/supervision`: the supervision tree (region manager -> region supervisors -> sectors, each with
/// whether it runs and its restarts since the node started) and the restart history, newest first.
#[utoipa::path(get, path = "/v1/admin/supervision", tag = "admin", params(SupervisionQuery), responses((status = 200, description = "The supervision tree and its restart history"), (status = 400, description = "Invalid query"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn supervision<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(_): Operator,
    query: Result<Query<SupervisionQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest("invalid_query", e.body_text()))?;
    let max = orrery_actors::supervision::SUPERVISION_HISTORY;
    let limit = q.limit.unwrap_or(SUPERVISION_DEFAULT_LIMIT);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::BadRequest(
            "invalid_query",
            format!("`limit` must be 1 to {max}, got {limit}"),
        ));
    }
    let running = running_regions(&app).await?;
    let directory = &app.node.directory;
    let log = &directory.supervision;
    let cells = app.node.cells();
    let regions: Vec<Value> = app
        .node
        .game
        .layout()
        .into_iter()
        .map(|r| {
            let sectors: Vec<Value> = cells
                .iter()
                .filter(|c| c.region == r.id)
                .map(|c| {
                    json!({
                        "id": c.id, "name": c.name, "running": directory.sector(c.id).is_some(),
                        "paused": c.is_paused(), "restarts": log.restarts(c.id),
                    })
                })
                .collect();
            json!({
                "id": r.id, "name": r.name, "nexus": r.nexus, "running": running.contains(&r.id),
                "restarts": log.restarts(r.id), "sectors": sectors,
            })
        })
        .collect();
    let config = &app.node.config;
    Ok(Json(json!({
        "policy": {
            "strategy": "one_for_one",
            "max_restarts": config.max_restarts,
            "restart_window_s": config.restart_window.as_secs_f64(),
        },
        "regions": regions,
        "history": log.recent(limit),
    })))
}
