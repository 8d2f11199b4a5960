//! The API layer's error type and its mapping to HTTP status + JSON body `{"error": {"code", "message"}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// The `Retry-After` of a `503 at_capacity`, in seconds.
pub const AT_CAPACITY_RETRY_AFTER: u64 = 5;

/// The `Retry-After` of a `503 storage_unavailable`, in seconds.
pub const STORAGE_RETRY_AFTER: u64 = 5;

/// Everything an HTTP endpoint can refuse. Store and internal details are logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or unknown token")]
    Unauthorized,
    #[error("admin endpoints need `Authorization: Bearer <admin token>`")]
    Forbidden,
    #[error("{1}")]
    BadRequest(&'static str, String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("character {0} is not yours: log in as its owner, or use the admin token")]
    NotYours(uuid::Uuid),
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("this character is already connected; close the other session first")]
    CharacterOnline,
    #[error("guest login is disabled on this server")]
    GuestDisabled,
    #[error("the server is shutting down")]
    Unavailable,
    #[error("{what}: too many requests from your address; retry in {retry_after} s")]
    RateLimited { what: &'static str, retry_after: u64 },
    #[error("the server is at capacity ({0}); retry in a few seconds")]
    AtCapacity(&'static str),
    #[error("the request took longer than {0} s")]
    Timeout(u64),
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("Sec-WebSocket-Version must be 13")]
    WsVersion,
    #[error("origin {0:?} is not allowed (see --cors-origin)")]
    OriginNotAllowed(String),
    #[error("the database is unavailable; retry shortly")]
    StorageUnavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::BadRequest(code, _) => (StatusCode::BAD_REQUEST, code),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::NotYours(_) => (StatusCode::FORBIDDEN, "not_yours"),
            ApiError::Conflict(code, _) => (StatusCode::CONFLICT, code),
            ApiError::CharacterOnline => (StatusCode::CONFLICT, "character_online"),
            ApiError::GuestDisabled => (StatusCode::FORBIDDEN, "guest_disabled"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::AtCapacity(_) => (StatusCode::SERVICE_UNAVAILABLE, "at_capacity"),
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            ApiError::WsVersion => (StatusCode::UPGRADE_REQUIRED, "unsupported_version"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::OriginNotAllowed(_) => (StatusCode::FORBIDDEN, "origin_not_allowed"),
            ApiError::StorageUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                orrery_protocol::codes::STORAGE_UNAVAILABLE,
            ),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<orrery_actors::store::StoreError> for ApiError {
    fn from(e: orrery_actors::store::StoreError) -> Self {
        match e {
            // Connection refused or lost, pool timeout, a read-only server: worth a retry.
            orrery_actors::store::StoreError::Database(detail) => ApiError::StorageUnavailable(detail),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error in HTTP handler"),
            ApiError::StorageUnavailable(detail) => tracing::warn!(%detail, "database unavailable in HTTP handler"),
            _ => {}
        }
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
            ApiError::AtCapacity(_) => Some(AT_CAPACITY_RETRY_AFTER),
            ApiError::StorageUnavailable(_) => Some(STORAGE_RETRY_AFTER),
            _ => None,
        };
        let mut response = (
            status,
            Json(json!({"error": {"code": code, "message": self.to_string()}})),
        )
            .into_response();
        if matches!(self, ApiError::WsVersion) {
            response
                .headers_mut()
                .insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
