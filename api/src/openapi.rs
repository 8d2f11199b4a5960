//! The OpenAPI 3.1 document of the HTTP API, served at `GET /v1/openapi.json` and generated with `utoipa` from the
//! `#[utoipa::path(...)]` attribute on every handler and the `ToSchema` derives of their request and response
//! types.
//!
//! It cannot drift from what is served: [`crate::routes`] is the one list of routes the router is built from, and
//! the test `every_served_route_is_documented_and_every_documented_one_served` fails when a route of that list is
//! missing from [`ApiDoc`] (or the other way round). A new endpoint: add it to [`crate::routes`], annotate its
//! handler with `#[utoipa::path]` (method, path, tag, params, request_body, responses), and list the handler in
//! `paths(...)` below.

use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The body of every refusal: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A refusal: a stable code and a message that names what was wrong (the field, the parameter, the limit).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_json`, `invalid_body`, `invalid_query`, `unauthorized`, ...
    pub code: String,
    /// For people: what was wrong and what to do.
    pub message: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A login's token (`POST /v1/auth/guest`), or the admin token (`--admin-token`) for /v1/admin",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document: every handler's `#[utoipa::path]`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Orrery",
        description = "Orrery's HTTP API. Every refusal is `{\"error\": {\"code\", \"message\"}}` (see docs/protocol.md); \
                       the WebSocket protocol is described in docs/protocol.md.",
    ),
    paths(
        crate::health::healthz,
        crate::health::readyz,
        crate::health::metrics,
        openapi_json,
        crate::auth::guest,
        crate::auth::world,
        crate::ws::upgrade,
        crate::admin::read::nodes,
        crate::admin::read::regions,
        crate::admin::read::sectors,
        crate::admin::read::sector,
        crate::admin::read::sessions,
        crate::admin::read::supervision,
        crate::admin::control::sector_pause,
        crate::admin::control::sector_resume,
        crate::admin::control::sector_restart,
        crate::admin::control::sector_snapshot,
        crate::admin::control::region_pause,
        crate::admin::control::region_resume,
        crate::admin::control::region_stop,
        crate::admin::control::region_start,
        crate::admin::control::region_tick_rate,
        crate::admin::control::kick,
        crate::admin::control::broadcast,
        crate::admin::control::teleport,
        crate::admin::snapshot,
        crate::admin::crash_sector,
        crate::admin::crash_nexus,
        crate::ledger::character,
        crate::ledger::station,
        crate::ledger::audit,
        crate::audit::list,
        crate::accounts::register,
        crate::accounts::login,
        crate::accounts::refresh,
        crate::accounts::logout,
        crate::accounts::upgrade,
        crate::accounts::me,
        crate::accounts::list_characters,
        crate::accounts::create_character,
        crate::accounts::search,
        crate::accounts::grant,
        crate::accounts::revoke,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "auth", description = "Logins and the public world"),
        (name = "accounts", description = "Accounts, password logins, refresh tokens and characters"),
        (name = "world", description = "The WebSocket session"),
        (name = "admin", description = "The admin control plane (`admin` or `operator`; every control audited)"),
        (name = "ledger", description = "The double-entry ledger, readable"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// The document as JSON text (built once).
pub fn document() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into()))
}

/// `GET /v1/openapi.json`: this API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;
    use orrery_engine::spacetrade::SpaceTrade;
    use utoipa::openapi::path::{HttpMethod, PathItem};

    fn operation(item: &PathItem, method: &Method) -> bool {
        let m = match *method {
            Method::GET => HttpMethod::Get,
            Method::POST => HttpMethod::Post,
            Method::PUT => HttpMethod::Put,
            Method::DELETE => HttpMethod::Delete,
            Method::PATCH => HttpMethod::Patch,
            _ => return false,
        };
        match m {
            HttpMethod::Get => item.get.is_some(),
            HttpMethod::Post => item.post.is_some(),
            HttpMethod::Put => item.put.is_some(),
            HttpMethod::Delete => item.delete.is_some(),
            HttpMethod::Patch => item.patch.is_some(),
            _ => false,
        }
    }

    #[test]
    fn every_served_route_is_documented_and_every_documented_one_served() {
        let doc = ApiDoc::openapi();
        let served: Vec<(Method, &str)> = crate::routes::<SpaceTrade>()
            .iter()
            .map(|r| (r.method.clone(), r.path))
            .collect();
        let missing: Vec<String> = served
            .iter()
            .filter(|(m, p)| !doc.paths.paths.get(*p).is_some_and(|item| operation(item, m)))
            .map(|(m, p)| format!("{m} {p}"))
            .collect();
        assert!(
            missing.is_empty(),
            "served but missing from the OpenAPI document (annotate the handler with #[utoipa::path] and list it \
             in openapi::ApiDoc): {missing:?}"
        );
        for (path, item) in &doc.paths.paths {
            for m in [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
                if operation(item, &m) {
                    assert!(
                        served.iter().any(|(sm, sp)| *sm == m && sp == path),
                        "documented but not served: {m} {path}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_document_is_json_with_schemas() {
        let v: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert!(v["openapi"].as_str().unwrap().starts_with("3."));
        assert!(v["components"]["schemas"]["ErrorBody"].is_object());
        assert!(v["components"]["securitySchemes"]["bearer"].is_object());
    }
}
