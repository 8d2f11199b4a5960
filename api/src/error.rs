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
    /// Every refused credential (missing, unknown, expired, tampered or revoked token; wrong username or password)
    /// gets this same answer, which does not say which part was wrong.
    #[error(
        "invalid credentials: this needs `Authorization: Bearer <token>` (an access token from /v1/auth/login, a \
         guest token, or the admin token) or, to log in, a valid username and password"
    )]
    Unauthorized,
    #[error(
        "these credentials do not open this endpoint: it needs the admin token or an account with the `admin` or \
         `operator` capability (granting capabilities needs `admin`)"
    )]
    Forbidden,
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// `409` with a code naming the conflict (`username_taken`, `character_limit`, ...).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// Too many login or registration attempts for one account.
    #[error("too many attempts for this account; retry in {retry_after} s")]
    AccountRateLimited { retry_after: u64 },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("character {0} is not yours: log in as its owner, or use the admin token")]
    NotYours(uuid::Uuid),
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
    #[error("the request body is larger than the limit of {0} bytes (--http-body-limit)")]
    TooLarge(usize),
    #[error("{method} is not allowed on {path}; allowed: {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: String,
    },
    #[error("the audit log cannot be written, so `{0}` was not run; retry shortly")]
    AuditUnavailable(&'static str),
    /// Any other refusal (status, code, message), e.g. one made by a layer below the handlers.
    #[error("{2}")]
    Http(StatusCode, &'static str, String),
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
            ApiError::Conflict(code, _) => (StatusCode::CONFLICT, code),
            ApiError::AccountRateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::NotYours(_) => (StatusCode::FORBIDDEN, "not_yours"),
            ApiError::CharacterOnline => (StatusCode::CONFLICT, "character_online"),
            ApiError::GuestDisabled => (StatusCode::FORBIDDEN, "guest_disabled"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::AtCapacity(_) => (StatusCode::SERVICE_UNAVAILABLE, "at_capacity"),
            ApiError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            ApiError::WsVersion => (StatusCode::UPGRADE_REQUIRED, "unsupported_version"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::AuditUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                orrery_protocol::codes::STORAGE_UNAVAILABLE,
            ),
            ApiError::Http(status, code, _) => (*status, code),
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
            ApiError::RateLimited { retry_after, .. } | ApiError::AccountRateLimited { retry_after } => {
                Some(*retry_after)
            }
            ApiError::AtCapacity(_) => Some(AT_CAPACITY_RETRY_AFTER),
            ApiError::StorageUnavailable(_) | ApiError::AuditUnavailable(_) => Some(STORAGE_RETRY_AFTER),
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
        if let ApiError::MethodNotAllowed { allowed, .. } = &self {
            if let Ok(v) = HeaderValue::from_str(allowed) {
                response.headers_mut().insert(header::ALLOW, v);
            }
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// How much of a lower layer's error body is read to rewrite it as JSON.
const PLAIN_ERROR_READ: usize = 16 * 1024;

/// A layer over every route: an error response that is not already `{"error": {"code", "message"}}` (axum's own
/// refusals: 405 with an empty body, a path or query that does not deserialize, a body over the limit) is rewritten
/// as one, naming what was wrong: the method and the allowed ones, the path, the limit.
pub(crate) async fn json_errors(
    body_limit: usize,
    table: std::sync::Arc<Vec<(axum::http::Method, &'static str)>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, PLAIN_ERROR_READ).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let mut allowed: Vec<&str> = table
                .iter()
                .filter(|(_, template)| path_matches(template, &path))
                .map(|(m, _)| m.as_str())
                .collect();
            allowed.dedup();
            let allowed = if allowed.is_empty() {
                parts
                    .headers
                    .get(header::ALLOW)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned()
            } else {
                allowed.join(", ")
            };
            ApiError::MethodNotAllowed {
                method: method.to_string(),
                path,
                allowed,
            }
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(body_limit),
        StatusCode::BAD_REQUEST if text.starts_with("Invalid URL") || text.contains("path param") => {
            ApiError::BadRequest("invalid_path", format!("{path}: {text}"))
        }
        StatusCode::BAD_REQUEST if text.contains("query string") => ApiError::BadRequest("invalid_query", text),
        _ => {
            let reason = status.canonical_reason().unwrap_or("error");
            let code = match status {
                StatusCode::BAD_REQUEST => "bad_request",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
                StatusCode::NOT_FOUND => "not_found",
                _ => "http_error",
            };
            let message = if text.is_empty() {
                format!("{method} {path}: {reason}")
            } else {
                format!("{method} {path}: {text}")
            };
            ApiError::Http(status, code, message)
        }
    };
    let mut rewritten = error.into_response();
    for name in [header::RETRY_AFTER, header::SEC_WEBSOCKET_VERSION] {
        if let Some(v) = parts.headers.get(&name) {
            rewritten.headers_mut().insert(name, v.clone());
        }
    }
    rewritten
}

/// Whether a request path matches a route's path (`{name}` matches any one segment).
fn path_matches(template: &str, path: &str) -> bool {
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if ts == ps || (ts.starts_with('{') && ts.ends_with('}') && !ps.is_empty()) => {}
            _ => return false,
        }
    }
}
