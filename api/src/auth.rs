//! `POST /v1/auth/guest`: a guest account with one character, and the token that opens a WebSocket session (a guest
//! can later become a registered account keeping its character: `POST /v1/accounts/upgrade`, in [`crate::accounts`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::Json;
use orrery_actors::store::{new_token, Identity};
use orrery_engine::Game;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::server::Peer;
use crate::App;

/// The longest character name, in characters.
pub const MAX_NAME: usize = 32;

/// The body of `POST /v1/auth/guest`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestRequest {
    pub name: Option<String>,
    /// The sector to start in (only when the server allows spawn choice, e.g. for load tests).
    pub sector: Option<Uuid>,
}

/// Parses and checks a guest login body: empty (or whitespace) means all defaults; the name, when given, must
/// pass [`valid_name`]. Never panics, whatever the bytes (a fuzz target drives it).
pub fn parse_guest_body(body: &[u8]) -> Result<GuestRequest, ApiError> {
    let mut req: GuestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        GuestRequest::default()
    } else {
        crate::body::parse_json(body)?
    };
    if let Some(name) = req.name.take() {
        req.name = Some(valid_name(&name)?);
    }
    Ok(req)
}

/// The answer to a guest login.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuestResponse {
    pub token: String,
    pub account_id: Uuid,
    pub character_id: Uuid,
    pub name: String,
}

/// Checks a character name: trimmed, 1 to [`MAX_NAME`] characters, and allowed by [`orrery_protocol::text`].
pub fn valid_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::BadRequest(
            "invalid_name",
            format!("name must be 1 to {MAX_NAME} printable characters"),
        ));
    }
    if let Err(e) = orrery_protocol::text::check(name) {
        metrics::counter!("orrery_text_refused_total", "what" => "name").increment(1);
        return Err(ApiError::BadRequest("invalid_name", format!("name: {e}")));
    }
    Ok(name.to_owned())
}

#[utoipa::path(post, path = "/v1/auth/guest", tag = "auth",
    request_body(content = Option<GuestRequest>, description = "Optional: an empty body means all defaults"),
    responses(
        (status = 200, description = "A guest account with one character, and its token", body = GuestResponse),
        (status = 400, description = "Not JSON, an unknown field, a bad name (the message names it)", body = crate::openapi::ErrorBody),
        (status = 403, description = "Guest login is disabled", body = crate::openapi::ErrorBody),
        (status = 413, description = "The body is over --http-body-limit", body = crate::openapi::ErrorBody),
        (status = 429, description = "Too many guest logins from this address", body = crate::openapi::ErrorBody),
        (status = 503, description = "At capacity or shutting down", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn guest<G: Game>(
    State(app): State<Arc<App<G>>>,
    ConnectInfo(peer): Peer,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<GuestResponse>, ApiError> {
    if !app.guest_login {
        return Err(ApiError::GuestDisabled);
    }
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => ApiError::TooLarge(app.http.body_limit),
        other => ApiError::BadRequest(
            "invalid_body",
            format!("the request body could not be read: {}", other.body_text()),
        ),
    })?;
    app.guest_limiter.check(peer.ip(), "guest_login")?;
    app.admit_session()?;
    let req = parse_guest_body(&body)?;
    let name = match req.name {
        Some(n) => n,
        None => format!("guest-{}", &Uuid::new_v4().simple().to_string()[..6]),
    };
    if let Some(sector) = req.sector {
        if !app.allow_spawn_choice {
            return Err(ApiError::BadRequest(
                "spawn_choice_disabled",
                "this server does not let guests choose their sector (--allow-spawn-choice)".into(),
            ));
        }
        if !app.node.directory.has_sector(sector) {
            return Err(ApiError::NotFound(format!("sector {sector}")));
        }
    }
    let token = new_token();
    let Identity {
        account_id,
        character_id,
        name,
    } = app.node.store.create_guest(&name, &token, req.sector).await?;
    Ok(Json(GuestResponse {
        token,
        account_id,
        character_id,
        name,
    }))
}

/// `GET /v1/world`: the regions and sectors of the world (public).
#[utoipa::path(get, path = "/v1/world", tag = "auth",
    responses((status = 200, description = "`{\"regions\": [{\"id\", \"name\", \"nexus\", \"sectors\": [{\"id\", \"name\"}]}]}`", body = Object)))]
pub(crate) async fn world<G: Game>(State(app): State<Arc<App<G>>>) -> Json<serde_json::Value> {
    let regions: Vec<serde_json::Value> = app
        .node
        .game
        .layout()
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "name": r.name, "nexus": r.nexus,
                "sectors": r.sectors.iter().map(|s| serde_json::json!({"id": s.id, "name": s.name})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(serde_json::json!({ "regions": regions }))
}

/// The token of a request: `?token=` or `Authorization: Bearer`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_owned())
}
