//! The browser pages, embedded in the binary from `web/dist` (built by `npm run build` in `web/` and committed; see
//! `api/build.rs`): the admin console at `/admin/`, and at `/` the player client (`web/dist/play/index.html`, its
//! files under `/play/`).
//!
//! Every page answer carries a strict Content-Security-Policy (only this origin's scripts, styles, images and
//! connections; no inline script or style, no framing), an `ETag` (SHA-256 of the file) honoured by
//! `If-None-Match` with `304 Not Modified`, and `Cache-Control: no-cache` (file names carry no hash, so browsers
//! revalidate). Unknown files are `404 not_found` in the API's JSON form. These routes are pages, not API
//! endpoints: they are kept out of the route table and the OpenAPI document.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
                       form-action 'self'; frame-ancestors 'none'";

/// One embedded file with its content type and entity tag.
#[derive(Debug)]
pub struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
    pub etag: String,
}

static ASSETS: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    embedded::FILES
        .iter()
        .map(|(path, bytes)| {
            let digest = Sha256::digest(bytes);
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            let asset = Asset {
                bytes,
                content_type: content_type(path),
                etag: format!("\"{hex}\""),
            };
            (*path, asset)
        })
        .collect()
});

/// The embedded file at `path` under `web/dist` (`admin/index.html`).
pub fn get_asset(path: &str) -> Option<&'static Asset> {
    ASSETS.get(path)
}

/// Paths of every embedded file, sorted.
pub fn paths() -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = ASSETS.keys().copied().collect();
    paths.sort_unstable();
    paths
}

/// The content type of a file by its extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// Whether `If-None-Match` names `etag` (a list, weak tags and `*` included).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// The answer for the embedded file at `path`: the file, `304` when the client has it, `404` when there is none.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = get_asset(path) else {
        return ApiError::NotFound(format!("no page or file /{path}")).into_response();
    };
    let etag = HeaderValue::from_str(&asset.etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    let common = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    if matches(headers, &asset.etag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type))],
        asset.bytes,
    )
        .into_response()
}

/// A file name taken from the URL: refused (404) if it climbs out of its directory or is empty.
fn under(dir: &str, file: &str) -> Option<String> {
    let clean = !file.is_empty()
        && file
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\\'));
    clean.then(|| format!("{dir}/{file}"))
}

fn serve_under(dir: &str, file: &str, headers: &HeaderMap) -> Response {
    match under(dir, file) {
        Some(path) => serve(&path, headers),
        None => ApiError::NotFound(format!("no page or file /{dir}/{file}")).into_response(),
    }
}

/// `/`: the player client.
async fn home(headers: HeaderMap) -> Response {
    serve("play/index.html", &headers)
}

async fn admin_index(headers: HeaderMap) -> Response {
    serve("admin/index.html", &headers)
}

async fn admin_file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve_under("admin", &file, &headers)
}

async fn play_file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve_under("play", &file, &headers)
}

/// The admin console's routes (also served on the reserve connections past the connection cap, like the admin API).
pub fn admin_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/admin", get(admin_index))
        .route("/admin/", get(admin_index))
        .route("/admin/{*file}", get(admin_file))
}

/// Every page route: the admin console, `/` and the player client's files.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    admin_routes()
        .route("/", get(home))
        .route("/play/{*file}", get(play_file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("admin/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("admin/main.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("admin/admin.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x/noext"), "application/octet-stream");
    }

    #[test]
    fn the_admin_console_and_the_player_client_are_embedded() {
        let paths = paths();
        for needed in ["admin/index.html", "admin/main.js", "play/index.html", "play/main.js"] {
            assert!(paths.contains(&needed), "{needed} not embedded; embedded: {paths:?}");
        }
    }

    #[test]
    fn file_names_cannot_climb_out() {
        assert_eq!(under("admin", "main.js").as_deref(), Some("admin/main.js"));
        assert_eq!(under("admin", "../play/main.js"), None);
        assert_eq!(under("admin", "a//b"), None);
        assert_eq!(under("admin", ""), None);
        assert_eq!(under("admin", "a\\..\\b"), None);
    }

    #[test]
    fn if_none_match_forms() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"a\", W/\"b\""));
        assert!(matches(&h, "\"a\""));
        assert!(matches(&h, "\"b\""));
        assert!(!matches(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches(&h, "\"c\""));
        assert!(!matches(&HeaderMap::new(), "\"a\""));
    }
}
