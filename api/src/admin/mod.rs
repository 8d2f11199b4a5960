//! Admin endpoints under `/v1/admin` (`admin` or `operator`; every control audited through [`crate::audit::run`]).
//!
//! - [`read`]: what runs (node, regions, sectors with live stats, one sector's state, sessions online).
//! - [`control`]: controls, each a typed message to the actor that owns the thing, answered with what it did:
//!   pause, resume, restart and snapshot a sector; pause, resume, stop, start a region and change its tick rate;
//!   kick a session; broadcast a notice; teleport a ship.
//! - here: the whole-node snapshot and the debug crash hooks.

pub mod control;
pub mod read;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use orrery_engine::Game;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::access::{require_operator, Principal};
use crate::error::ApiError;
use crate::{audit, App};

/// How long an admin endpoint waits for an actor's answer (a region stop waits for its drain: see `control`).
pub(crate) const ADMIN_CALL_MS: u64 = 10_000;

pub(crate) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::BadRequest("invalid_id", format!("{raw:?} is not a UUID")))
}

/// `POST /v1/admin/snapshot`: snapshot every sector now.
pub(crate) async fn snapshot<G: Game>(
    State(app): State<Arc<App<G>>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = require_operator(&app, &headers).await?;
    // While the store is not taking writes, the snapshot would only join what the persister holds for its retry.
    if !app.node.persister().available() {
        return Err(ApiError::StorageUnavailable(
            "admin snapshot refused: the store is not taking writes".into(),
        ));
    }
    let done = audit::run(&app, &who, "snapshot", None, json!({}), || async {
        let n = app
            .node
            .snapshot_all()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(json!({ "sectors": n }))
    })
    .await?;
    Ok(Json(done))
}

/// `POST /v1/admin/sectors/{id}/crash`: debug hook (needs `--debug-hooks`) that makes the sector's actor panic.
pub(crate) async fn crash_sector<G: Game>(
    State(app): State<Arc<App<G>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let who = require_debug_hooks(&app, &headers).await?;
    let id = parse_id(&id)?;
    let done = audit::run(&app, &who, "sector.crash", Some(id.to_string()), json!({}), || async {
        if !app.node.inject_crash(id) {
            return Err(ApiError::NotFound(format!("sector {id}")));
        }
        Ok(json!({ "sector": id, "crash": "injected" }))
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(done)))
}

/// `POST /v1/admin/nexus/crash`: debug hook (needs `--debug-hooks`) that makes the nexus actor fail; the node's root
/// restarts it.
pub(crate) async fn crash_nexus<G: Game>(
    State(app): State<Arc<App<G>>>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let who = require_debug_hooks(&app, &headers).await?;
    let done = audit::run(&app, &who, "nexus.crash", None, json!({}), || async {
        if !app.node.inject_nexus_crash() {
            return Err(ApiError::NotFound("nexus".into()));
        }
        Ok(json!({ "nexus": "crash injected" }))
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(done)))
}

/// The debug hooks need the admin token and a server started with `--debug-hooks`.
async fn require_debug_hooks<G: Game>(app: &App<G>, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let who = require_operator(app, headers).await?;
    if !app.node.config.debug_hooks {
        return Err(ApiError::BadRequest(
            "debug_hooks_disabled",
            "start the server with --debug-hooks to use this".into(),
        ));
    }
    Ok(who)
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    /// The control plane's handlers as OpenAPI paths (the server's document is assembled in one place elsewhere).
    #[derive(OpenApi)]
    #[openapi(paths(
        super::read::nodes,
        super::read::regions,
        super::read::sectors,
        super::read::sector,
        super::read::sessions,
        super::control::sector_pause,
        super::control::sector_resume,
        super::control::sector_restart,
        super::control::sector_snapshot,
        super::control::region_pause,
        super::control::region_resume,
        super::control::region_stop,
        super::control::region_start,
        super::control::region_tick_rate,
        super::control::kick,
        super::control::broadcast,
        super::control::teleport,
    ))]
    struct ControlPlane;

    #[test]
    fn every_control_plane_handler_is_described() {
        let doc = ControlPlane::openapi();
        let paths: Vec<&String> = doc.paths.paths.keys().collect();
        for path in [
            "/v1/admin/nodes",
            "/v1/admin/sectors/{id}/restart",
            "/v1/admin/regions/{id}/tick-rate",
            "/v1/admin/kick",
            "/v1/admin/broadcast",
            "/v1/admin/teleport",
            "/v1/admin/sessions",
        ] {
            assert!(doc.paths.paths.contains_key(path), "{path} missing from {paths:?}");
        }
        let schemas = doc.components.expect("components").schemas;
        for schema in ["TickRate", "Kick", "Broadcast", "Scope", "Teleport"] {
            assert!(schemas.contains_key(schema), "{schema} missing");
        }
    }
}
