//! Request bodies: [`JsonBody`] reads a JSON body and names what was wrong with it (not JSON, which field is
//! unknown or missing or of the wrong type, too large), so no endpoint answers a bare `invalid_body`.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Request};
use std::sync::Arc;

use orrery_engine::Game;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::App;

/// A JSON request body of type `T`. Refusals:
/// - `400 invalid_json`: the body is not JSON (with the line and column where parsing stopped), or is empty;
/// - `400 invalid_body`: JSON, but not the expected shape (the message names the field and what is wrong);
/// - `413 body_too_large`: larger than the server's body limit.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// Parses `bytes` as a `T`, with the refusals of [`JsonBody`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "invalid_json",
            "the request body is empty; expected a JSON object".into(),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => {
                ApiError::BadRequest("invalid_json", format!("the request body is not valid JSON: {inner}"))
            }
            serde_json::error::Category::Data => {
                let at = if path == "." {
                    String::new()
                } else {
                    format!("field `{path}`: ")
                };
                ApiError::BadRequest("invalid_body", format!("{at}{inner}"))
            }
        }
    })
}

impl<G, T> FromRequest<Arc<App<G>>> for JsonBody<T>
where
    G: Game,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<App<G>>) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            axum::extract::rejection::BytesRejection::FailedToBufferBody(_) => {
                ApiError::TooLarge(state.http.body_limit)
            }
            other => ApiError::BadRequest(
                "invalid_body",
                format!("the request body could not be read: {}", other.body_text()),
            ),
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A query string that did not deserialize, as `400 invalid_query` naming the parameter (`query parameter
/// `limit`: invalid digit found in string`) or what is wrong with the whole (an unknown parameter, with the known
/// ones).
pub fn query_error(rejection: QueryRejection) -> ApiError {
    let text = rejection.body_text();
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    let message = match detail.split_once(": ") {
        Some((param, rest)) if !param.is_empty() && param.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            format!("query parameter `{param}`: {rest}")
        }
        _ => format!("query string: {detail}"),
    };
    ApiError::BadRequest("invalid_query", message)
}

/// A UUID taken from the path, as `400 invalid_id` naming the parameter when it is not one.
pub fn path_uuid(param: &str, raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| ApiError::BadRequest("invalid_id", format!("path parameter `{param}`: {raw:?} is not a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        username: String,
        password: String,
    }

    fn message(bytes: &[u8]) -> (&'static str, String) {
        match parse_json::<Login>(bytes) {
            Err(ApiError::BadRequest(code, message)) => (code, message),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn each_refusal_names_what_was_wrong() {
        let (code, m) = message(b"username=a");
        assert_eq!(code, "invalid_json");
        assert!(m.contains("not valid JSON") && m.contains("line 1"), "{m}");
        let (code, m) = message(br#"{"username":"a","password":"b","pasword":"c"}"#);
        assert_eq!(code, "invalid_body");
        assert!(m.contains("unknown field `pasword`"), "{m}");
        let (code, m) = message(br#"{"username":"a"}"#);
        assert_eq!(code, "invalid_body");
        assert!(m.contains("missing field `password`"), "{m}");
        let (code, m) = message(br#"{"username":1,"password":"b"}"#);
        assert_eq!(code, "invalid_body");
        assert!(m.contains("field `username`") && m.contains("invalid type"), "{m}");
        let (code, _) = message(b"  ");
        assert_eq!(code, "invalid_json");
        assert!(parse_json::<Login>(br#"{"username":"a","password":"b"}"#).is_ok());
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Page {
        limit: Option<u32>,
    }

    fn query(raw: &str) -> String {
        let uri: axum::http::Uri = format!("/x?{raw}").parse().unwrap();
        match axum::extract::Query::<Page>::try_from_uri(&uri) {
            Err(e) => query_error(e).to_string(),
            Ok(_) => panic!("{raw} was taken"),
        }
    }

    #[test]
    fn query_refusals_name_the_parameter() {
        let m = query("limit=abc");
        assert!(m.starts_with("query parameter `limit`:"), "{m}");
        let m = query("lmit=3");
        assert!(m.contains("unknown field `lmit`"), "{m}");
        let e = path_uuid("id", "nope").unwrap_err();
        assert!(e.to_string().contains("`id`") && e.to_string().contains("nope"), "{e}");
    }
}
