//! Who is calling an endpoint, and what they may do: the one place where capabilities are checked.
//!
//! A caller is a [`Principal`]: an account (with the capabilities granted to it) or a service credential (the
//! static `--admin-token`, named `token:<name>` in the audit log). Admin endpoints need [`ADMIN`] or [`OPERATOR`]
//! ([`admin_gate`], in front of every `/v1/admin/...` route, through [`require_operator`]); granting capabilities
//! needs [`ADMIN`] ([`Operator::admin`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use orrery_engine::Game;
use uuid::Uuid;

use crate::auth::bearer;
use crate::error::ApiError;
use crate::server::Peer;
use crate::App;

/// Full control, including granting capabilities.
pub const ADMIN: &str = "admin";
/// The admin control plane, except granting capabilities.
pub const OPERATOR: &str = "operator";
/// May enter the nexus region when the server requires it.
pub const GALACTIC_CITIZEN: &str = "galactic_citizen";
/// Every capability the server knows (a grant of another name is refused).
pub const CAPABILITIES: &[&str] = &[ADMIN, OPERATOR, GALACTIC_CITIZEN];

/// The caller of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in account.
    Account {
        id: Uuid,
        username: String,
        capabilities: BTreeSet<String>,
    },
    /// A service credential (the static admin token): it holds [`ADMIN`].
    Service { name: String },
}

impl Principal {
    /// How the audit log names the caller: `account:<uuid>` or `token:<name>`.
    pub fn audit_name(&self) -> String {
        match self {
            Principal::Account { id, .. } => format!("account:{id}"),
            Principal::Service { name } => format!("token:{name}"),
        }
    }

    /// Whether the caller holds a capability (a service credential holds [`ADMIN`] and [`OPERATOR`]).
    pub fn has(&self, capability: &str) -> bool {
        match self {
            Principal::Account { capabilities, .. } => capabilities.contains(capability),
            Principal::Service { .. } => capability == ADMIN || capability == OPERATOR,
        }
    }

    /// The account behind the caller, if any.
    pub fn account_id(&self) -> Option<Uuid> {
        match self {
            Principal::Account { id, .. } => Some(*id),
            Principal::Service { .. } => None,
        }
    }
}

/// The name the audit log gives the static admin token (`token:admin`).
pub const ADMIN_TOKEN_NAME: &str = "admin";

/// The caller behind a request's bearer token (`401 unauthorized` when there is none or it is not valid): the
/// static admin token is [`Principal::Service`]; an access token (JWT) or a guest's token is
/// [`Principal::Account`] with the capabilities the store holds for that account now.
pub async fn principal<G: Game>(app: &App<G>, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let given = bearer(headers).ok_or(ApiError::Unauthorized)?;
    if let Some(expected) = &app.admin_token {
        if constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            return Ok(Principal::Service {
                name: ADMIN_TOKEN_NAME.to_owned(),
            });
        }
    }
    let caller = crate::accounts::caller(app, &given).await?;
    Ok(crate::accounts::principal_of(caller.account))
}

/// The caller, who must hold one of `capabilities` (`403 forbidden` otherwise).
pub async fn require_any<G: Game>(
    app: &App<G>,
    headers: &HeaderMap,
    capabilities: &[&str],
) -> Result<Principal, ApiError> {
    let who = principal(app, headers).await?;
    if capabilities.iter().any(|c| who.has(c)) {
        Ok(who)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// The caller of an admin control: [`ADMIN`] or [`OPERATOR`].
pub async fn require_operator<G: Game>(app: &App<G>, headers: &HeaderMap) -> Result<Principal, ApiError> {
    require_any(app, headers, &[ADMIN, OPERATOR]).await
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The gate in front of every `/v1/admin/...` route, run before the handler reads its path, query or body: the
/// per-address admin rate limit (`429 rate_limited`), then the credential (`401`), then the capability (`403`:
/// neither [`ADMIN`] nor [`OPERATOR`]). A player's malformed admin request is therefore refused as forbidden, not
/// as a bad request. The caller it lets through reaches the handler as [`Operator`].
pub(crate) async fn admin_gate<G: Game>(
    State(app): State<Arc<App<G>>>,
    ConnectInfo(peer): Peer,
    mut request: Request,
    next: Next,
) -> Response {
    if let Err(refused) = app.admin_limiter.check(peer.ip(), "admin") {
        return refused.into_response();
    }
    match require_operator(&app, request.headers()).await {
        Ok(who) => {
            request.extensions_mut().insert(who);
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
    }
}

/// The caller [`admin_gate`] let through ([`ADMIN`] or [`OPERATOR`]): the extractor of every admin handler. On a
/// route without the gate it refuses with `401`, so a route left out of the gate cannot be used at all.
#[derive(Debug, Clone)]
pub struct Operator(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Operator)
            .ok_or(ApiError::Unauthorized)
    }
}

impl Operator {
    /// The caller, who must also hold [`ADMIN`] (granting and revoking capabilities): `403 forbidden` otherwise.
    pub fn admin(self) -> Result<Principal, ApiError> {
        if self.0.has(ADMIN) {
            Ok(self.0)
        } else {
            Err(ApiError::Forbidden)
        }
    }
}
