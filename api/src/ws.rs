//! `GET /v1/ws`: authenticates, negotiates the subprotocol, completes the WebSocket handshake, and hands the raw
//! TCP stream to a new session actor (the fan-out path writes to that socket directly).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use orrery_actors::net::Conn;
use orrery_actors::session::{SessionActor, SessionArgs};
use orrery_engine::Game;
use orrery_protocol::{codes, Encoding};
use ractor::Actor;
use serde::Deserialize;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::auth::bearer;
use crate::error::ApiError;
use crate::limits::check_origin;
use crate::server::{take_stream, UpgradedIo};
use crate::App;

/// How long a new login waits for the session it supersedes to park its ship and let go of the character.
pub const TAKE_OVER_WAIT: Duration = Duration::from_secs(5);

/// Reserves the character for a new session. If another session holds it, that one is superseded: closed with
/// 4001 (`replaced`), its ship parked, and the character handed over; 409 if it is not released in time.
async fn take_over<G: Game>(app: &App<G>, character: Uuid, session: Uuid) -> Result<(), ApiError> {
    let directory = &app.node.directory;
    if directory.reserve_character(character, session) {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + TAKE_OVER_WAIT;
    let mut told = None;
    loop {
        if let Some(old) = directory.session_of(character) {
            if told != Some(old.session) {
                told = Some(old.session);
                debug!(old = %old.session, %character, "a new login supersedes the character's session");
                metrics::counter!("orrery_sessions_superseded_total").increment(1);
                old.conn.close(codes::CLOSE_REPLACED, "replaced by a new session");
                old.input_ended();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        if directory.reserve_character(character, session) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::CharacterOnline);
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WsQuery {
    /// An access token (JWT) or a guest's token (else the `Authorization: Bearer` header).
    token: Option<String>,
    /// The character to play (a UUID of the caller's account); optional for a guest's token and for an account with
    /// exactly one character.
    character: Option<String>,
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(token))
}

/// Whether a `Sec-WebSocket-Key` is the base64 encoding of 16 bytes.
fn valid_key(key: &HeaderValue) -> bool {
    use base64::Engine;
    let key = key.as_bytes();
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|k| k.len() == 16)
}

/// Picks the encoding: the first of the client's offered subprotocols we speak; JSON when none is offered.
fn negotiate(headers: &HeaderMap) -> Result<(Encoding, bool), ApiError> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if offered.is_empty() {
        return Ok((Encoding::Json, false));
    }
    offered
        .iter()
        .find_map(|p| Encoding::from_subprotocol(p))
        .map(|e| (e, true))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "unsupported_subprotocol",
                format!(
                    "offer {} or {}",
                    orrery_protocol::SUBPROTOCOL_JSON,
                    orrery_protocol::SUBPROTOCOL_BIN
                ),
            )
        })
}

#[utoipa::path(get, path = "/v1/ws", tag = "world",
    params(("token" = Option<String>, Query, description = "The login token (or `Authorization: Bearer`)")),
    responses(
        (status = 101, description = "WebSocket (subprotocol `orrery.json.v1` or `orrery.bin.v1`; see docs/protocol.md)"),
        (status = 400, description = "Not a valid WebSocket upgrade, or no subprotocol we speak", body = crate::openapi::ErrorBody),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
        (status = 403, description = "Origin not allowed", body = crate::openapi::ErrorBody),
        (status = 409, description = "The character's other session did not let go in time", body = crate::openapi::ErrorBody),
        (status = 426, description = "Sec-WebSocket-Version is not 13", body = crate::openapi::ErrorBody),
        (status = 503, description = "At capacity or shutting down", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn upgrade<G: Game>(
    State(app): State<Arc<App<G>>>,
    Query(q): Query<WsQuery>,
    mut req: Request,
) -> Result<Response, ApiError> {
    app.admit_session()?;
    let headers = req.headers();
    check_origin(&app.cors_origins, headers)?;
    let is_ws = header_has(headers, header::UPGRADE, "websocket") && header_has(headers, header::CONNECTION, "upgrade");
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let (Some(key), true) = (key, is_ws) else {
        return Err(ApiError::BadRequest(
            "not_websocket",
            "this endpoint needs a WebSocket upgrade request".into(),
        ));
    };
    if !valid_key(&key) {
        return Err(ApiError::BadRequest(
            "invalid_key",
            "Sec-WebSocket-Key must be 16 random bytes in base64 (RFC 6455, 4.1)".into(),
        ));
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()) != Some("13") {
        return Err(ApiError::WsVersion);
    }
    let (encoding, echo_protocol) = negotiate(headers)?;
    let token = q.token.or_else(|| bearer(headers)).ok_or(ApiError::Unauthorized)?;
    let caller = crate::accounts::caller(&app, &token).await?;
    let identity = crate::accounts::session_character(&app, &caller, q.character.as_deref()).await?;
    let nexus_allowed = crate::accounts::nexus_allowed(&app, &caller.account);
    let session = Uuid::new_v4();
    take_over(&app, identity.character_id, session).await?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let app2 = Arc::clone(&app);
    tokio::spawn(async move {
        let character = identity.character_id;
        let parts = match on_upgrade.await.map(|u| u.downcast::<UpgradedIo>()) {
            Ok(Ok(parts)) => parts,
            Ok(Err(_)) => {
                warn!("upgraded connection is not a plain TCP stream");
                return app2.node.directory.remove_session(session, character);
            }
            Err(e) => {
                debug!(error = %e, "WebSocket upgrade failed");
                return app2.node.directory.remove_session(session, character);
            }
        };
        let conn = match take_stream(parts.io)
            .into_std()
            .and_then(|stream| Conn::new(stream, app2.node.config.outbox))
        {
            Ok(conn) => conn,
            Err(e) => {
                warn!(error = %e, "could not set up the upgraded connection");
                return app2.node.directory.remove_session(session, character);
            }
        };
        let args = SessionArgs {
            game: Arc::clone(&app2.node.game),
            directory: Arc::clone(&app2.node.directory),
            store: Arc::clone(&app2.node.store),
            persister: app2.node.persister().clone(),
            config: Arc::clone(&app2.node.config),
            identity,
            session,
            conn,
            encoding,
            leftover: parts.read_buf,
            nexus_allowed,
        };
        if let Err(e) = Actor::spawn(None, SessionActor::<G>::default(), args).await {
            warn!(error = %e, "session failed to start");
            app2.node.directory.remove_session(session, character);
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    if echo_protocol {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(encoding.subprotocol()),
        );
    }
    Ok(response)
}
