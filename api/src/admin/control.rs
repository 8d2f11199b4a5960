//! Admin controls (need `admin` or `operator`; each goes through [`crate::audit::run`]). Each is a typed message to the
//! actor that owns the thing (sector, region supervisor, region manager, nexus, session), answered with what the
//! actor did (a ractor call with a timeout).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use orrery_actors::sector::SectorMsg;
use orrery_actors::session::SessionMsg;
use orrery_engine::{Game, RegionId, SectorId};
use orrery_protocol::codes;
use orrery_regions::manager::ManagerMsg;
use orrery_regions::nexus::NexusMsg;
use orrery_regions::region::RegionMsg;
use orrery_regions::NodeError;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{parse_id, ADMIN_CALL_MS};
use crate::access::{Operator, Principal};
use crate::audit::run;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::App;

/// The longest text of a broadcast or a kick reason, in bytes (the chat rule's limit).
pub const MAX_NOTICE_TEXT: usize = orrery_protocol::MAX_CHAT_TEXT;
/// The tick rates an operator may set.
pub const TICK_HZ_RANGE: std::ops::RangeInclusive<u32> = 1..=60;
/// How long a sector restart may take (snapshot written, actor stopped and started).
const RESTART_CALL_MS: u64 = 20_000;
/// How long a region stop may take (its drain waits up to 20 s for sessions to park, then the actors stop).
const STOP_CALL_MS: u64 = 45_000;
/// How long a kick waits for the session to park its ship.
const KICK_CALL_MS: u64 = 30_000;

fn call_failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn node_error(e: NodeError) -> ApiError {
    match e {
        NodeError::NoSector(id) => ApiError::NotFound(format!("sector {id}")),
        NodeError::NoShip(id) => ApiError::NotFound(format!("character {id} has no ship (never logged in)")),
        NodeError::SectorNotRunning(_) => ApiError::Conflict("sector_not_running", e.to_string()),
        NodeError::Conflict(m) => ApiError::Conflict("conflict", m),
        NodeError::NotSaved => ApiError::StorageUnavailable(e.to_string()),
        NodeError::Store(s) => s.into(),
        other => ApiError::Internal(other.to_string()),
    }
}

/// Checks text shown to players (a broadcast, a kick reason): 1 to [`MAX_NOTICE_TEXT`] bytes after trimming, and
/// what `orrery_protocol::text` allows. The message names `field`.
fn notice_text(field: &str, text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_NOTICE_TEXT {
        return Err(ApiError::BadRequest(
            "invalid_body",
            format!(
                "`{field}` must be 1 to {MAX_NOTICE_TEXT} bytes after trimming, got {}",
                text.len()
            ),
        ));
    }
    orrery_protocol::text::check(text).map_err(|e| {
        metrics::counter!("orrery_text_refused_total", "what" => "notice").increment(1);
        ApiError::BadRequest("invalid_body", format!("`{field}`: {e}"))
    })?;
    Ok(text.to_owned())
}

/// A sector's running actor (404 for an unknown sector, 409 `sector_not_running` when it does not run).
fn sector_actor<G: Game>(app: &App<G>, id: SectorId) -> Result<ractor::ActorRef<SectorMsg<G>>, ApiError> {
    if app.node.cell(id).is_none() {
        return Err(ApiError::NotFound(format!("sector {id}")));
    }
    app.node.directory.sector(id).ok_or_else(|| {
        ApiError::Conflict(
            "sector_not_running",
            format!("sector {id} is not running (its region is stopped, or it is restarting)"),
        )
    })
}

/// A known region's id (404 otherwise).
fn region_id<G: Game>(app: &App<G>, raw: &str) -> Result<RegionId, ApiError> {
    let id = parse_id(raw)?;
    if !app.node.game.layout().iter().any(|r| r.id == id) {
        return Err(ApiError::NotFound(format!("region {id}")));
    }
    Ok(id)
}

/// A region's running supervisor (409 `region_stopped` when it is stopped).
fn region_actor<G: Game>(app: &App<G>, id: RegionId) -> Result<ractor::ActorRef<RegionMsg>, ApiError> {
    app.node
        .fabric
        .region(id)
        .ok_or_else(|| ApiError::Conflict("region_stopped", format!("region {id} is stopped; start it first")))
}

async fn pause_sector<G: Game>(
    app: Arc<App<G>>,
    who: Principal,
    id: String,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let action = if paused { "sector.pause" } else { "sector.resume" };
    let done = run(&app, &who, action, Some(id.to_string()), json!({}), || async {
        let actor = sector_actor(&app, id)?;
        let now =
            ractor::call_t!(actor, |reply| SectorMsg::Pause { paused, reply }, ADMIN_CALL_MS).map_err(call_failed)?;
        Ok(json!({ "sector": id, "paused": now }))
    })
    .await?;
    Ok(Json(done))
}

/// `POST /v1/admin/sectors/{id}/pause`: the sector stops advancing (keeps its sessions, answers pings and chat,
/// refuses game commands with `sector_paused`); its clients get `sector_paused`.
#[utoipa::path(post, path = "/v1/admin/sectors/{id}/pause", tag = "admin", params(("id" = String, Path, description = "Sector id (UUID)")), responses((status = 200, description = "The sector is paused"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn sector_pause<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    pause_sector(app, who, id, true).await
}

/// `POST /v1/admin/sectors/{id}/resume`.
#[utoipa::path(post, path = "/v1/admin/sectors/{id}/resume", tag = "admin", params(("id" = String, Path, description = "Sector id (UUID)")), responses((status = 200, description = "The sector runs again"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn sector_resume<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    pause_sector(app, who, id, false).await
}

/// `POST /v1/admin/sectors/{id}/restart`: through the region supervisor: snapshot (written), stop the actor, start
/// it again from that state; a sector that is not running is started.
#[utoipa::path(post, path = "/v1/admin/sectors/{id}/restart", tag = "admin", params(("id" = String, Path, description = "Sector id (UUID)")), responses((status = 200, description = "The sector was snapshotted, stopped and started again"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn sector_restart<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let done = run(
        &app,
        &who,
        "sector.restart",
        Some(id.to_string()),
        json!({}),
        || async {
            let region = app
                .node
                .region_of(id)
                .ok_or_else(|| ApiError::NotFound(format!("sector {id}")))?;
            let supervisor = region_actor(&app, region)?;
            let restarted = ractor::call_t!(
                supervisor,
                |reply| RegionMsg::RestartSector { sector: id, reply },
                RESTART_CALL_MS
            )
            .map_err(call_failed)?
            .map_err(|m| ApiError::Conflict("restart_failed", m))?;
            Ok(json!({
                "sector": id, "running": true, "was_running": restarted.was_running,
                "snapshot_tick": restarted.snapshot_tick,
            }))
        },
    )
    .await?;
    Ok(Json(done))
}

/// `POST /v1/admin/sectors/{id}/snapshot`: answers once the store has the sector's snapshot, with its tick.
#[utoipa::path(post, path = "/v1/admin/sectors/{id}/snapshot", tag = "admin", params(("id" = String, Path, description = "Sector id (UUID)")), responses((status = 200, description = "The store has the sector's snapshot (its tick)"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn sector_snapshot<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    if !app.node.persister().available() {
        return Err(ApiError::StorageUnavailable(
            "sector snapshot refused: the store is not taking writes".into(),
        ));
    }
    let done = run(
        &app,
        &who,
        "sector.snapshot",
        Some(id.to_string()),
        json!({}),
        || async {
            let tick = app.node.snapshot_sector(id).await.map_err(node_error)?;
            Ok(json!({ "sector": id, "tick": tick, "written": true }))
        },
    )
    .await?;
    Ok(Json(done))
}

async fn pause_region<G: Game>(
    app: Arc<App<G>>,
    who: Principal,
    id: String,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    let id = region_id(&app, &id)?;
    let action = if paused { "region.pause" } else { "region.resume" };
    let done = run(&app, &who, action, Some(id.to_string()), json!({}), || async {
        let supervisor = region_actor(&app, id)?;
        let n = ractor::call_t!(supervisor, |reply| RegionMsg::Pause { paused, reply }, ADMIN_CALL_MS)
            .map_err(call_failed)?;
        Ok(json!({ "region": id, "paused": paused, "sectors": n }))
    })
    .await?;
    Ok(Json(done))
}

/// `POST /v1/admin/regions/{id}/pause`: every sector of the region pauses.
#[utoipa::path(post, path = "/v1/admin/regions/{id}/pause", tag = "admin", params(("id" = String, Path, description = "Region id (UUID)")), responses((status = 200, description = "Every sector of the region is paused"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn region_pause<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    pause_region(app, who, id, true).await
}

/// `POST /v1/admin/regions/{id}/resume`.
#[utoipa::path(post, path = "/v1/admin/regions/{id}/resume", tag = "admin", params(("id" = String, Path, description = "Region id (UUID)")), responses((status = 200, description = "Every sector of the region runs again"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn region_resume<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    pause_region(app, who, id, false).await
}

/// `POST /v1/admin/regions/{id}/stop`: snapshot every sector, tell and close the region's sessions (4004, ships
/// parked), then stop the supervisor and its sectors.
#[utoipa::path(post, path = "/v1/admin/regions/{id}/stop", tag = "admin", params(("id" = String, Path, description = "Region id (UUID)")), responses((status = 200, description = "Snapshotted, sessions closed (4004), stopped"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn region_stop<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = region_id(&app, &id)?;
    let done = run(&app, &who, "region.stop", Some(id.to_string()), json!({}), || async {
        let drained =
            ractor::call_t!(app.node.manager, ManagerMsg::StopRegion, STOP_CALL_MS, id).map_err(call_failed)?;
        Ok(json!({ "region": id, "running": false, "was_running": drained.is_some(), "drained": drained }))
    })
    .await?;
    Ok(Json(done))
}

/// `POST /v1/admin/regions/{id}/start`: its sectors start from their last state.
#[utoipa::path(post, path = "/v1/admin/regions/{id}/start", tag = "admin", params(("id" = String, Path, description = "Region id (UUID)")), responses((status = 200, description = "The region runs"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn region_start<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = region_id(&app, &id)?;
    let done = run(&app, &who, "region.start", Some(id.to_string()), json!({}), || async {
        let running =
            ractor::call_t!(app.node.manager, ManagerMsg::StartRegion, ADMIN_CALL_MS, id).map_err(call_failed)?;
        Ok(json!({ "region": id, "running": running }))
    })
    .await?;
    Ok(Json(done))
}

/// Body of `POST /v1/admin/regions/{id}/tick-rate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TickRate {
    /// Ticks per second, 1 to 60.
    pub hz: u32,
}

/// `POST /v1/admin/regions/{id}/tick-rate` `{"hz": 1..=60}`: every sector of the region ticks at `hz` (fixed step
/// `1 / hz`), and `welcome` tells clients entering it.
#[utoipa::path(post, path = "/v1/admin/regions/{id}/tick-rate", tag = "admin", params(("id" = String, Path, description = "Region id (UUID)")), request_body = TickRate, responses((status = 200, description = "The region's sectors tick at the new rate"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn region_tick_rate<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TickRate>,
) -> Result<Json<Value>, ApiError> {
    let id = region_id(&app, &id)?;
    if !TICK_HZ_RANGE.contains(&body.hz) {
        return Err(ApiError::BadRequest(
            "invalid_body",
            format!(
                "`hz` must be {} to {}, got {}",
                TICK_HZ_RANGE.start(),
                TICK_HZ_RANGE.end(),
                body.hz
            ),
        ));
    }
    let hz = body.hz;
    let done = run(
        &app,
        &who,
        "region.tick_rate",
        Some(id.to_string()),
        json!({ "hz": hz }),
        || async {
            let supervisor = region_actor(&app, id)?;
            let n = ractor::call_t!(supervisor, |reply| RegionMsg::SetTickRate { hz, reply }, ADMIN_CALL_MS)
                .map_err(call_failed)?;
            Ok(json!({ "region": id, "tick_hz": hz, "sectors": n }))
        },
    )
    .await?;
    Ok(Json(done))
}

/// Body of `POST /v1/admin/kick`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Kick {
    pub character: Uuid,
    /// Shown to the player (chat text rules; default "kicked by an operator").
    pub reason: Option<String>,
}

/// `POST /v1/admin/kick`: the player gets a `notice` (scope `kick`) with the reason, then a close with 4003; its
/// ship is parked. 404 if the character is not online.
#[utoipa::path(post, path = "/v1/admin/kick", tag = "admin", request_body = Kick, responses((status = 200, description = "The session was told, closed (4003) and its ship parked"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn kick<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    JsonBody(body): JsonBody<Kick>,
) -> Result<Json<Value>, ApiError> {
    let reason = match &body.reason {
        Some(r) => notice_text("reason", r)?,
        None => "kicked by an operator".to_owned(),
    };
    let character = body.character;
    let params = json!({ "character": character, "reason": reason });
    let done = run(
        &app,
        &who,
        "session.kick",
        Some(character.to_string()),
        params,
        || async {
            let link = app
                .node
                .directory
                .session_of(character)
                .ok_or_else(|| ApiError::NotFound(format!("character {character} is not online")))?;
            let actor = link
                .session_actor()
                .ok_or_else(|| ApiError::Conflict("conflict", "the session is still being set up; try again".into()))?;
            let parked = ractor::call_t!(
                actor,
                |reply| SessionMsg::End {
                    scope: "kick",
                    code: codes::CLOSE_KICKED,
                    reason: reason.clone(),
                    reply: Some(reply),
                },
                KICK_CALL_MS
            )
            .map_err(call_failed)?;
            Ok(json!({
                "character": character, "session": link.session, "closed": codes::CLOSE_KICKED,
                "parked": parked.is_ok(), "park_error": parked.err(),
            }))
        },
    )
    .await?;
    Ok(Json(done))
}

/// Scope of a broadcast.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Global,
    Region,
    Sector,
}

/// Body of `POST /v1/admin/broadcast`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Broadcast {
    pub scope: Scope,
    /// The region or sector (required for those scopes; absent for `global`).
    pub target: Option<Uuid>,
    pub text: String,
}

/// `POST /v1/admin/broadcast`: players in scope get `{"type":"notice","scope":...,"text":...}`; answers how many
/// sessions it reached.
#[utoipa::path(post, path = "/v1/admin/broadcast", tag = "admin", request_body = Broadcast, responses((status = 200, description = "How many sessions the notice reached"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn broadcast<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    JsonBody(body): JsonBody<Broadcast>,
) -> Result<Json<Value>, ApiError> {
    let text = notice_text("text", &body.text)?;
    let target = match (body.scope, body.target) {
        (Scope::Global, None) => None,
        (Scope::Global, Some(_)) => {
            return Err(ApiError::BadRequest(
                "invalid_body",
                "`target` must be absent when `scope` is `global`".into(),
            ))
        }
        (_, None) => {
            return Err(ApiError::BadRequest(
                "invalid_body",
                "`target` (a region or sector id) is required when `scope` is `region` or `sector`".into(),
            ))
        }
        (Scope::Region, Some(t)) => Some(region_id(&app, &t.to_string())?),
        (Scope::Sector, Some(t)) => {
            if app.node.cell(t).is_none() {
                return Err(ApiError::NotFound(format!("sector {t}")));
            }
            Some(t)
        }
    };
    let scope = match body.scope {
        Scope::Global => "global",
        Scope::Region => "region",
        Scope::Sector => "sector",
    };
    let params = json!({ "scope": scope, "target": target, "text": text });
    let done = run(
        &app,
        &who,
        "broadcast",
        target.map(|t| t.to_string()),
        params,
        || async {
            let reached = match (body.scope, target) {
                (Scope::Region, Some(id)) => {
                    let supervisor = region_actor(&app, id)?;
                    ractor::call_t!(
                        supervisor,
                        |reply| RegionMsg::Notice {
                            text: text.clone(),
                            reply
                        },
                        ADMIN_CALL_MS
                    )
                    .map_err(call_failed)?
                }
                (Scope::Sector, Some(id)) => {
                    let actor = sector_actor(&app, id)?;
                    ractor::call_t!(
                        actor,
                        |reply| SectorMsg::Notice {
                            scope: "sector".into(),
                            text: text.clone(),
                            reply
                        },
                        ADMIN_CALL_MS
                    )
                    .map_err(call_failed)?
                }
                _ => {
                    let nexus = app
                        .node
                        .fabric
                        .nexus()
                        .ok_or_else(|| ApiError::Internal("no nexus".into()))?;
                    ractor::call_t!(
                        nexus,
                        |reply| NexusMsg::Notice {
                            text: text.clone(),
                            reply
                        },
                        ADMIN_CALL_MS
                    )
                    .map_err(call_failed)?
                }
            };
            Ok(json!({ "scope": scope, "target": target, "reached": reached }))
        },
    )
    .await?;
    Ok(Json(done))
}

/// Body of `POST /v1/admin/teleport`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Teleport {
    pub character: Uuid,
    pub sector: Uuid,
    /// Where in the sector (both or neither; finite; clamped into the sector). Without them the ship keeps its
    /// position.
    pub x: Option<f32>,
    pub y: Option<f32>,
}

/// `POST /v1/admin/teleport`: moves a character's ship to a sector: an online one through the transfer path of a
/// warp (`warped` and a keyframe follow), a parked one by rewriting where it is parked.
#[utoipa::path(post, path = "/v1/admin/teleport", tag = "admin", request_body = Teleport, responses((status = 200, description = "The ship was moved"), (status = 400, description = "Invalid id or body"), (status = 401, description = "No or unknown token"), (status = 403, description = "Not admin or operator")))]
pub(crate) async fn teleport<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    JsonBody(body): JsonBody<Teleport>,
) -> Result<Json<Value>, ApiError> {
    let (character, sector) = (body.character, body.sector);
    let at = match (body.x, body.y) {
        (None, None) => None,
        (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Some((x, y)),
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "invalid_body",
                "`x` and `y` must be finite numbers".into(),
            ))
        }
        _ => {
            return Err(ApiError::BadRequest(
                "invalid_body",
                "`x` and `y` go together: give both or neither".into(),
            ))
        }
    };
    let params = json!({ "character": character, "sector": sector, "x": body.x, "y": body.y });
    let done = run(&app, &who, "teleport", Some(character.to_string()), params, || async {
        let online = app.node.teleport(character, sector, at).await.map_err(node_error)?;
        Ok(json!({ "character": character, "sector": sector, "online": online }))
    })
    .await?;
    Ok(Json(done))
}
