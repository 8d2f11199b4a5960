//! Admin endpoints under `/v1/admin` (bearer admin token): regions, snapshots, and the sector and nexus crash hooks.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use orrery_engine::Game;
use orrery_regions::manager::ManagerMsg;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::bearer;
use crate::error::ApiError;
use crate::App;

const ADMIN_CALL_MS: u64 = 10_000;

pub(crate) fn require_admin<G: Game>(app: &App<G>, headers: &HeaderMap) -> Result<(), ApiError> {
    match (&app.admin_token, bearer(headers)) {
        (Some(expected), Some(given)) if constant_time_eq(expected.as_bytes(), given.as_bytes()) => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::BadRequest("invalid_id", format!("{raw:?} is not a UUID")))
}

/// `GET /v1/admin/regions`: every region with its sectors and whether its supervisor runs.
pub(crate) async fn regions<G: Game>(
    State(app): State<Arc<App<G>>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_admin(&app, &headers)?;
    let running = ractor::call_t!(app.node.manager, ManagerMsg::RunningRegions, ADMIN_CALL_MS)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let regions: Vec<Value> = app
        .node
        .game
        .layout()
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id, "name": r.name, "nexus": r.nexus, "running": running.contains(&r.id),
                "sectors": r.sectors.iter().map(|s| json!({"id": s.id, "name": s.name})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(
        json!({ "regions": regions, "sessions": app.node.directory.session_count() }),
    ))
}

/// `POST /v1/admin/regions/{id}/stop` and `/start`.
pub(crate) async fn region_action<G: Game>(
    State(app): State<Arc<App<G>>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&app, &headers)?;
    let id = parse_id(&id)?;
    if !app.node.game.layout().iter().any(|r| r.id == id) {
        return Err(ApiError::NotFound(format!("region {id}")));
    }
    let running = match action.as_str() {
        "start" => ractor::call_t!(app.node.manager, ManagerMsg::StartRegion, ADMIN_CALL_MS, id),
        "stop" => ractor::call_t!(app.node.manager, ManagerMsg::StopRegion, ADMIN_CALL_MS, id).map(|_| false),
        _ => return Err(ApiError::NotFound(format!("action {action}"))),
    }
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({ "region": id, "running": running })))
}

/// `POST /v1/admin/snapshot`: snapshot every sector now.
pub(crate) async fn snapshot<G: Game>(
    State(app): State<Arc<App<G>>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_admin(&app, &headers)?;
    // While the store is not taking writes, the snapshot would only join what the persister holds for its retry.
    if !app.node.persister().available() {
        return Err(ApiError::StorageUnavailable(
            "admin snapshot refused: the store is not taking writes".into(),
        ));
    }
    let n = app
        .node
        .snapshot_all()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({ "sectors": n })))
}

/// `POST /v1/admin/sectors/{id}/crash`: debug hook (needs `--debug-hooks`) that makes the sector's actor panic.
pub(crate) async fn crash_sector<G: Game>(
    State(app): State<Arc<App<G>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_debug_hooks(&app, &headers)?;
    let id = parse_id(&id)?;
    if !app.node.inject_crash(id) {
        return Err(ApiError::NotFound(format!("sector {id}")));
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "sector": id, "crash": "injected" }))))
}

/// `POST /v1/admin/nexus/crash`: debug hook (needs `--debug-hooks`) that makes the nexus actor fail; the node's root
/// restarts it.
pub(crate) async fn crash_nexus<G: Game>(
    State(app): State<Arc<App<G>>>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_debug_hooks(&app, &headers)?;
    if !app.node.inject_nexus_crash() {
        return Err(ApiError::NotFound("nexus".into()));
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "nexus": "crash injected" }))))
}

/// The debug hooks need the admin token and a server started with `--debug-hooks`.
fn require_debug_hooks<G: Game>(app: &App<G>, headers: &HeaderMap) -> Result<(), ApiError> {
    require_admin(app, headers)?;
    if !app.node.config.debug_hooks {
        return Err(ApiError::BadRequest(
            "debug_hooks_disabled",
            "start the server with --debug-hooks to use this".into(),
        ));
    }
    Ok(())
}
