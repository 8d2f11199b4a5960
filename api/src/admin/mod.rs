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
use axum::http::StatusCode;
use axum::Json;
use orrery_engine::Game;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::access::Operator;
use crate::error::ApiError;
use crate::{audit, App};

/// How long an admin endpoint waits for an actor's answer (a region stop waits for its drain: see `control`).
pub(crate) const ADMIN_CALL_MS: u64 = 10_000;

pub(crate) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    crate::body::path_uuid("id", raw)
}

/// `POST /v1/admin/snapshot`: snapshot every sector now.
#[utoipa::path(post, path = "/v1/admin/snapshot", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"sectors\": n}` (audited as `snapshot`)", body = Object),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
        (status = 403, description = "Neither `admin` nor `operator`", body = crate::openapi::ErrorBody),
        (status = 503, description = "The store or the audit log is not taking writes", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn snapshot<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
) -> Result<Json<Value>, ApiError> {
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
#[utoipa::path(post, path = "/v1/admin/sectors/{id}/crash", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The sector")),
    responses(
        (status = 202, description = "`{\"sector\", \"crash\": \"injected\"}` (audited as `sector.crash`)", body = Object),
        (status = 400, description = "Not a UUID, or the server runs without --debug-hooks", body = crate::openapi::ErrorBody),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
        (status = 403, description = "Neither `admin` nor `operator`", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such sector", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn crash_sector<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_debug_hooks(&app)?;
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
#[utoipa::path(post, path = "/v1/admin/nexus/crash", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 202, description = "`{\"nexus\": \"crash injected\"}` (audited as `nexus.crash`)", body = Object),
        (status = 400, description = "The server runs without --debug-hooks", body = crate::openapi::ErrorBody),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
        (status = 403, description = "Neither `admin` nor `operator`", body = crate::openapi::ErrorBody),
        (status = 404, description = "No nexus", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn crash_nexus<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(who): Operator,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_debug_hooks(&app)?;
    let done = audit::run(&app, &who, "nexus.crash", None, json!({}), || async {
        if !app.node.inject_nexus_crash() {
            return Err(ApiError::NotFound("nexus".into()));
        }
        Ok(json!({ "nexus": "crash injected" }))
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(done)))
}

/// The debug hooks need a server started with `--debug-hooks` (and, like every admin route, an operator).
fn require_debug_hooks<G: Game>(app: &App<G>) -> Result<(), ApiError> {
    if !app.node.config.debug_hooks {
        return Err(ApiError::BadRequest(
            "debug_hooks_disabled",
            "start the server with --debug-hooks to use this".into(),
        ));
    }
    Ok(())
}
