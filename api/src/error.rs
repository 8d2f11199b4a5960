//! The API layer's error type and its mapping to HTTP status + JSON body `{"error": {"code", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Everything an HTTP endpoint can refuse. Store and internal details are logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or unknown token")]
    Unauthorized,
    #[error("admin endpoints need `Authorization: Bearer <admin token>`")]
    Forbidden,
    #[error("{0}")]
    BadRequest(&'static str, String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("this character is already connected; close the other session first")]
    CharacterOnline,
    #[error("guest login is disabled on this server")]
    GuestDisabled,
    #[error("the server is shutting down")]
    Unavailable,
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
            ApiError::CharacterOnline => (StatusCode::CONFLICT, "character_online"),
            ApiError::GuestDisabled => (StatusCode::FORBIDDEN, "guest_disabled"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<orrery_actors::store::StoreError> for ApiError {
    fn from(e: orrery_actors::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error in HTTP handler");
        }
        let (status, code) = self.status_and_code();
        (
            status,
            Json(json!({"error": {"code": code, "message": self.to_string()}})),
        )
            .into_response()
    }
}
