//! Accounts and characters: registration, password login, refresh-token rotation, logout, guest upgrade, the
//! characters of an account, and the admin view of accounts and their capabilities.
//!
//! - `POST /v1/accounts`, `POST /v1/accounts/upgrade`, `GET /v1/accounts/me`
//! - `POST /v1/auth/login`, `POST /v1/auth/refresh`, `POST /v1/auth/logout`
//! - `GET /v1/characters`, `POST /v1/characters`
//! - `GET /v1/admin/accounts?q=`, `POST /v1/admin/accounts/{id}/capabilities`,
//!   `DELETE /v1/admin/accounts/{id}/capabilities/{capability}`
//!
//! Every refused credential is `401 unauthorized` with the same message ([`ApiError::Unauthorized`]). Login and
//! registration are rate-limited per client address and per username (`429 rate_limited`, counted in
//! `orrery_http_rate_limited_total{route="login"|"login_account"}`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use orrery_actors::store::{Account, CharacterInfo, Identity, Refresh, SharedStore, Upgrade};
use orrery_engine::Game;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::{self, Operator, Principal};
use crate::auth::bearer;
use crate::body::JsonBody;
use crate::config::{IdentityConfig, RateLimit};
use crate::error::ApiError;
use crate::limits::AddressLimiter;
use crate::server::Peer;
use crate::tokens::{self, Signer};
use crate::{audit, App};

/// Usernames: 3 to 32 characters.
pub const USERNAME_LEN: (usize, usize) = (3, 32);
/// Passwords: 8 to 128 characters.
pub const PASSWORD_LEN: (usize, usize) = (8, 128);
/// Accounts one admin search returns at most.
pub const SEARCH_LIMIT: u32 = 50;

/// The identity part of the server's state: the token signer, the settings and the login rate limits.
#[derive(Debug)]
pub struct Accounts {
    pub signer: Signer,
    pub refresh_ttl: std::time::Duration,
    pub max_characters: usize,
    pub require_citizenship: bool,
    per_address: AddressLimiter,
    per_account: AccountLimiter,
}

impl Accounts {
    /// The identity state of a server: its signing key is read (or generated under `data_dir`) here.
    pub fn new(config: &IdentityConfig, data_dir: &std::path::Path) -> Result<Self, tokens::TokenError> {
        let secret = tokens::load_secret(
            config.jwt_secret.as_deref(),
            config.jwt_secret_file.as_deref(),
            data_dir,
        )?;
        Ok(Self {
            signer: Signer::new(&secret, config.access_ttl)?,
            refresh_ttl: config.refresh_ttl,
            max_characters: config.max_characters,
            require_citizenship: config.require_citizenship,
            per_address: AddressLimiter::new(config.per_address.per_minute, config.per_address.burst),
            per_account: AccountLimiter::new(config.per_account),
        })
    }

    /// Forgets addresses and usernames whose limits have fully recovered (a minute chore).
    pub fn forget_idle(&self) {
        self.per_address.forget_idle();
        self.per_account.forget_idle();
    }

    /// Counts one attempt from `addr` (before anything else is done with the request).
    fn check_address(&self, addr: IpAddr) -> Result<(), ApiError> {
        self.per_address.check(addr, "login")
    }

    /// Counts one attempt for `username` (whatever its case).
    fn check_account(&self, username: &str) -> Result<(), ApiError> {
        self.per_account.check(&username.to_lowercase())
    }

    /// A fresh access and refresh token pair for an account (a new refresh family).
    async fn issue(&self, store: &SharedStore, account_id: Uuid) -> Result<TokenPair, ApiError> {
        let refresh_token = tokens::random_token();
        store
            .add_refresh_token(account_id, &refresh_token, Uuid::new_v4(), self.refresh_expiry())
            .await?;
        self.pair(account_id, refresh_token)
    }

    fn pair(&self, account_id: Uuid, refresh_token: String) -> Result<TokenPair, ApiError> {
        Ok(TokenPair {
            access_token: self
                .signer
                .issue(account_id)
                .map_err(|e| ApiError::Internal(e.to_string()))?,
            refresh_token,
            account_id,
            token_type: "Bearer",
            expires_in: self.signer.ttl.as_secs(),
        })
    }

    fn refresh_expiry(&self) -> i64 {
        orrery_actors::store::now_millis() + self.refresh_ttl.as_millis() as i64
    }
}

/// A rate limit per username (governor's keyed GCRA limiter).
struct AccountLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for AccountLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountLimiter")
            .field("accounts", &self.limiter.len())
            .finish()
    }
}

impl AccountLimiter {
    fn new(limit: RateLimit) -> Self {
        let quota = match (NonZeroU32::new(limit.per_minute), NonZeroU32::new(limit.burst)) {
            (Some(rate), Some(burst)) => Quota::per_minute(rate).allow_burst(burst),
            _ => Quota::per_second(NonZeroU32::MAX),
        };
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    fn check(&self, key: &str) -> Result<(), ApiError> {
        self.limiter.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            metrics::counter!("orrery_http_rate_limited_total", "route" => "login_account").increment(1);
            ApiError::AccountRateLimited {
                retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// A username and a password (registration, login, guest upgrade).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// `{"refresh_token"}` (refresh, logout).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `{"name"}` (a new character).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCharacter {
    pub name: String,
}

/// `{"capability"}` (a grant).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub capability: String,
}

/// The answer to a registration.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registered {
    pub account_id: Uuid,
    pub username: String,
}

/// An access token and a refresh token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub account_id: Uuid,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token is valid for.
    pub expires_in: u64,
}

/// An account as its owner and admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    /// `guest` or `registered`.
    pub kind: String,
    pub username: Option<String>,
    pub created_at: i64,
    pub capabilities: BTreeSet<String>,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        Self {
            id: a.id,
            kind: a.kind,
            username: a.username,
            created_at: a.created_at,
            capabilities: a.capabilities,
        }
    }
}

/// One character of an account.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CharacterView {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
}

impl From<CharacterInfo> for CharacterView {
    fn from(c: CharacterInfo) -> Self {
        Self {
            id: c.id,
            account_id: c.account_id,
            name: c.name,
        }
    }
}

/// An account's characters.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CharacterList {
    pub characters: Vec<CharacterView>,
    /// The most characters an account may have (`--max-characters-per-account`).
    pub limit: usize,
}

/// The caller's account and characters.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub account: AccountView,
    pub characters: Vec<CharacterView>,
}

/// The answer to an account search.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountList {
    pub accounts: Vec<AccountView>,
}

/// Checks a username: 3 to 32 characters, ASCII letters, digits, `_`, `-` and `.`, starting with a letter or digit.
pub fn valid_username(raw: &str) -> Result<String, ApiError> {
    let (min, max) = USERNAME_LEN;
    let name = raw.trim();
    let len = name.chars().count();
    if len < min || len > max {
        return Err(ApiError::BadRequest(
            "invalid_username",
            format!("username must be {min} to {max} characters long (got {len})"),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(ApiError::BadRequest(
            "invalid_username",
            format!("username may contain only ASCII letters, digits, `_`, `-` and `.` (found {bad:?})"),
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(ApiError::BadRequest(
            "invalid_username",
            "username must start with a letter or a digit".into(),
        ));
    }
    Ok(name.to_owned())
}

/// Checks a password: 8 to 128 characters, no control characters.
pub fn valid_password(password: &str) -> Result<(), ApiError> {
    let (min, max) = PASSWORD_LEN;
    let len = password.chars().count();
    if len < min || len > max {
        return Err(ApiError::BadRequest(
            "invalid_password",
            format!("password must be {min} to {max} characters long (got {len})"),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "invalid_password",
            "password may not contain control characters".into(),
        ));
    }
    Ok(())
}

/// Hashes off the async threads (argon2id takes tens of milliseconds by design).
async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || tokens::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Verifies off the async threads; an account without a password (a guest) is checked against a dummy hash, so
/// that it takes as long and fails.
async fn verify(hash: Option<String>, password: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let ok = tokens::verify_password(hash.as_deref().unwrap_or(tokens::dummy_hash()), &password);
        ok && hash.is_some()
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Who a bearer token belongs to: an access token's account, or a guest token's account and character.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: Account,
    /// The guest token's identity (its character), when the token was a guest's.
    pub guest: Option<Identity>,
}

/// Resolves a bearer token: an access JWT (signature, issuer, expiry) or a guest token; `401` otherwise.
pub async fn caller<G: Game>(app: &App<G>, token: &str) -> Result<Caller, ApiError> {
    let store = &app.node.store;
    let refused = |why: &'static str| {
        metrics::counter!("orrery_auth_failures_total", "reason" => why).increment(1);
        ApiError::Unauthorized
    };
    if tokens::looks_like_jwt(token) {
        let id = app
            .accounts
            .signer
            .verify(token)
            .ok_or_else(|| refused("access_token"))?;
        let account = store.account(id).await?.ok_or_else(|| refused("access_token"))?;
        return Ok(Caller { account, guest: None });
    }
    let identity = store.authenticate(token).await?.ok_or_else(|| refused("guest_token"))?;
    let account = store
        .account(identity.account_id)
        .await?
        .ok_or_else(|| refused("guest_token"))?;
    Ok(Caller {
        account,
        guest: Some(identity),
    })
}

/// The caller behind a request's `Authorization: Bearer` header.
pub async fn caller_of<G: Game>(app: &App<G>, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer(headers).ok_or(ApiError::Unauthorized)?;
    caller(app, &token).await
}

/// The principal of an account.
pub fn principal_of(account: Account) -> Principal {
    Principal::Account {
        id: account.id,
        username: account.username.unwrap_or_default(),
        capabilities: account.capabilities,
    }
}

/// The character a session plays: `requested` (which must be the caller's: `403 not_yours`), else a guest token's
/// character, else the account's only character (`400 character_required` when it has none or several).
pub async fn session_character<G: Game>(
    app: &App<G>,
    caller: &Caller,
    requested: Option<&str>,
) -> Result<Identity, ApiError> {
    let store = &app.node.store;
    if let Some(raw) = requested {
        let id = Uuid::parse_str(raw.trim()).map_err(|_| {
            ApiError::BadRequest("invalid_character", format!("`character` must be a UUID (got {raw:?})"))
        })?;
        let found = store.character(id).await?;
        return match found {
            Some(c) if c.account_id == caller.account.id => Ok(Identity {
                account_id: c.account_id,
                character_id: c.id,
                name: c.name,
            }),
            _ => Err(ApiError::NotYours(id)),
        };
    }
    if let Some(identity) = &caller.guest {
        return Ok(identity.clone());
    }
    let mut all = store.characters(caller.account.id).await?;
    match all.len() {
        1 => {
            let c = all.remove(0);
            Ok(Identity {
                account_id: c.account_id,
                character_id: c.id,
                name: c.name,
            })
        }
        0 => Err(ApiError::BadRequest(
            "character_required",
            "this account has no character yet: create one with POST /v1/characters, then pass `character=<id>`".into(),
        )),
        n => Err(ApiError::BadRequest(
            "character_required",
            format!("this account has {n} characters: pass `character=<id>` to choose one"),
        )),
    }
}

/// Whether a session of this account may enter the nexus region.
pub fn nexus_allowed<G: Game>(app: &App<G>, account: &Account) -> bool {
    !app.accounts.require_citizenship || account.capabilities.contains(access::GALACTIC_CITIZEN)
}

/// `POST /v1/accounts`: registers an account (no character yet). `201 {"account_id","username"}`;
/// `409 username_taken`.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts",
    request_body = Credentials,
    responses(
        (status = 201, description = "The account (no character yet)", body = Registered),
        (status = 400, description = "`invalid_username`, `invalid_password` (the message names the rule), `invalid_json`, `invalid_body`"),
        (status = 409, description = "`username_taken` (usernames are unique whatever their case)"),
        (status = 429, description = "`rate_limited`: too many attempts from this address or for this username"),
    ))]
pub(crate) async fn register<G: Game>(
    State(app): State<Arc<App<G>>>,
    ConnectInfo(peer): Peer,
    JsonBody(req): JsonBody<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    app.accounts.check_address(peer.ip())?;
    let username = valid_username(&req.username)?;
    app.accounts.check_account(&username)?;
    valid_password(&req.password)?;
    let hash = hash(req.password).await?;
    match app.node.store.create_account(&username, &hash).await? {
        Some(account_id) => {
            metrics::counter!("orrery_accounts_registered_total").increment(1);
            Ok((StatusCode::CREATED, Json(Registered { account_id, username })))
        }
        None => Err(taken(&username)),
    }
}

fn taken(username: &str) -> ApiError {
    ApiError::Conflict("username_taken", format!("the username {username:?} is taken"))
}

/// `POST /v1/auth/login`: a password login. `{"access_token","refresh_token","account_id","token_type","expires_in"}`.
#[utoipa::path(post, path = "/v1/auth/login", tag = "accounts",
    request_body = Credentials,
    responses(
        (status = 200, description = "An access token (JWT) and a refresh token", body = TokenPair),
        (status = 401, description = "`unauthorized`: wrong username or password (the same answer for both)"),
        (status = 429, description = "`rate_limited`: too many attempts from this address or for this username"),
    ))]
pub(crate) async fn login<G: Game>(
    State(app): State<Arc<App<G>>>,
    ConnectInfo(peer): Peer,
    JsonBody(req): JsonBody<Credentials>,
) -> Result<Json<TokenPair>, ApiError> {
    app.accounts.check_address(peer.ip())?;
    let username = req.username.trim().to_owned();
    if username.is_empty() || username.len() > 256 {
        return Err(ApiError::Unauthorized);
    }
    app.accounts.check_account(&username)?;
    let account = app.node.store.account_by_username(&username).await?;
    let ok = verify(account.as_ref().and_then(|a| a.password_hash.clone()), req.password).await?;
    match account {
        Some(account) if ok => Ok(Json(app.accounts.issue(&app.node.store, account.id).await?)),
        _ => {
            metrics::counter!("orrery_auth_failures_total", "reason" => "password").increment(1);
            Err(ApiError::Unauthorized)
        }
    }
}

/// `POST /v1/auth/refresh`: a new pair for a live refresh token, which stops working. A rotated token presented
/// again revokes its whole family (every token descended from the same login).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "accounts",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the refresh token sent stops working", body = TokenPair),
        (status = 401, description = "`unauthorized`: unknown, expired, revoked or already rotated (a reuse revokes its family)"),
        (status = 429, description = "`rate_limited`"),
    ))]
pub(crate) async fn refresh<G: Game>(
    State(app): State<Arc<App<G>>>,
    ConnectInfo(peer): Peer,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    app.accounts.check_address(peer.ip())?;
    let next = tokens::random_token();
    let store = &app.node.store;
    match store
        .rotate_refresh_token(req.refresh_token.trim(), &next, app.accounts.refresh_expiry())
        .await?
    {
        Refresh::Rotated { account_id } => Ok(Json(app.accounts.pair(account_id, next)?)),
        Refresh::Reused { account_id } => {
            tracing::warn!(account = %account_id, "a rotated refresh token was used again: its family is revoked");
            metrics::counter!("orrery_auth_failures_total", "reason" => "refresh_reused").increment(1);
            Err(ApiError::Unauthorized)
        }
        Refresh::Invalid => {
            metrics::counter!("orrery_auth_failures_total", "reason" => "refresh_token").increment(1);
            Err(ApiError::Unauthorized)
        }
    }
}

/// `POST /v1/auth/logout`: revokes a refresh token (and the rest of its family). `204`; `401` if it was not live.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "accounts",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "The refresh token (and its family) is revoked"),
        (status = 401, description = "`unauthorized`: the refresh token was not live"),
        (status = 429, description = "`rate_limited`"),
    ))]
pub(crate) async fn logout<G: Game>(
    State(app): State<Arc<App<G>>>,
    ConnectInfo(peer): Peer,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    app.accounts.check_address(peer.ip())?;
    if app.node.store.revoke_refresh_token(req.refresh_token.trim()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        metrics::counter!("orrery_auth_failures_total", "reason" => "refresh_token").increment(1);
        Err(ApiError::Unauthorized)
    }
}

/// The answer to a guest upgrade: the account (same id) and a token pair for it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Upgraded {
    pub account_id: Uuid,
    pub username: String,
    #[serde(flatten)]
    pub tokens: TokenPair,
}

/// `POST /v1/accounts/upgrade` with a guest's token: the guest becomes a registered account with this username and
/// password, keeping its id and its character. Its guest token stops working; the answer carries a token pair.
#[utoipa::path(post, path = "/v1/accounts/upgrade", tag = "accounts", security(("bearer" = [])),
    request_body = Credentials,
    responses(
        (status = 200, description = "The guest is a registered account (same id and character); its guest token stops working", body = Upgraded),
        (status = 400, description = "`invalid_username`, `invalid_password`, `invalid_json`, `invalid_body`"),
        (status = 401, description = "`unauthorized`: no valid guest token"),
        (status = 409, description = "`username_taken`, `not_a_guest`"),
        (status = 429, description = "`rate_limited`"),
    ))]
pub(crate) async fn upgrade<G: Game>(
    State(app): State<Arc<App<G>>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    JsonBody(req): JsonBody<Credentials>,
) -> Result<Json<Upgraded>, ApiError> {
    app.accounts.check_address(peer.ip())?;
    let who = caller_of(&app, &headers).await?;
    let username = valid_username(&req.username)?;
    app.accounts.check_account(&username)?;
    valid_password(&req.password)?;
    if who.account.kind != "guest" {
        return Err(ApiError::Conflict(
            "not_a_guest",
            "this account is already registered; only a guest can be upgraded".into(),
        ));
    }
    let hash = hash(req.password).await?;
    match app.node.store.upgrade_guest(who.account.id, &username, &hash).await? {
        Upgrade::Done => {
            metrics::counter!("orrery_guests_upgraded_total").increment(1);
            let tokens = app.accounts.issue(&app.node.store, who.account.id).await?;
            Ok(Json(Upgraded {
                account_id: who.account.id,
                username,
                tokens,
            }))
        }
        Upgrade::UsernameTaken => Err(taken(&username)),
        Upgrade::NotGuest => Err(ApiError::Conflict(
            "not_a_guest",
            "this account is already registered; only a guest can be upgraded".into(),
        )),
    }
}

/// `GET /v1/accounts/me`: the caller's account, capabilities and characters.
#[utoipa::path(get, path = "/v1/accounts/me", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account and characters", body = Me),
        (status = 401, description = "`unauthorized`"),
    ))]
pub(crate) async fn me<G: Game>(State(app): State<Arc<App<G>>>, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    let who = caller_of(&app, &headers).await?;
    let characters = app.node.store.characters(who.account.id).await?;
    Ok(Json(Me {
        account: AccountView::from(who.account),
        characters: characters.into_iter().map(CharacterView::from).collect(),
    }))
}

/// `GET /v1/characters`: the caller's characters.
#[utoipa::path(get, path = "/v1/characters", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's characters", body = CharacterList),
        (status = 401, description = "`unauthorized`"),
    ))]
pub(crate) async fn list_characters<G: Game>(
    State(app): State<Arc<App<G>>>,
    headers: HeaderMap,
) -> Result<Json<CharacterList>, ApiError> {
    let who = caller_of(&app, &headers).await?;
    let characters = app.node.store.characters(who.account.id).await?;
    Ok(Json(CharacterList {
        characters: characters.into_iter().map(CharacterView::from).collect(),
        limit: app.accounts.max_characters,
    }))
}

/// `POST /v1/characters`: a new character for the caller's account (`201` with it); `409 character_limit` past
/// `--max-characters-per-account`.
#[utoipa::path(post, path = "/v1/characters", tag = "accounts", security(("bearer" = [])),
    request_body = NewCharacter,
    responses(
        (status = 201, description = "The new character (its ship is made when it first connects)", body = CharacterView),
        (status = 400, description = "`invalid_name`, `invalid_json`, `invalid_body`"),
        (status = 401, description = "`unauthorized`"),
        (status = 409, description = "`character_limit`: the account has --max-characters-per-account characters"),
    ))]
pub(crate) async fn create_character<G: Game>(
    State(app): State<Arc<App<G>>>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<NewCharacter>,
) -> Result<(StatusCode, Json<CharacterView>), ApiError> {
    let who = caller_of(&app, &headers).await?;
    let name = crate::auth::valid_name(&req.name)?;
    let limit = app.accounts.max_characters;
    match app.node.store.create_character(who.account.id, &name, limit).await? {
        Some(c) => Ok((StatusCode::CREATED, Json(CharacterView::from(c)))),
        None => Err(ApiError::Conflict(
            "character_limit",
            format!("an account may have at most {limit} characters (--max-characters-per-account)"),
        )),
    }
}

/// The query of an account search.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// A part of a username (any case), or an account id; empty: every account (at most 50).
    #[serde(default)]
    pub q: String,
}

/// `GET /v1/admin/accounts?q=`: accounts whose username contains `q` (any case) or whose id is `q` (operators).
#[utoipa::path(get, path = "/v1/admin/accounts", tag = "admin", security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "Matching accounts, oldest first", body = AccountList),
        (status = 400, description = "`invalid_query`"),
        (status = 401, description = "`unauthorized`"),
        (status = 403, description = "`forbidden`: neither `admin` nor `operator`"),
    ))]
pub(crate) async fn search<G: Game>(
    State(app): State<Arc<App<G>>>,
    Operator(_): Operator,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AccountList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest("invalid_query", e.body_text()))?;
    if query.q.len() > 256 {
        return Err(ApiError::BadRequest(
            "invalid_query",
            "`q` may be at most 256 bytes".into(),
        ));
    }
    let found = app.node.store.search_accounts(query.q.trim(), SEARCH_LIMIT).await?;
    Ok(Json(AccountList {
        accounts: found.into_iter().map(AccountView::from).collect(),
    }))
}

fn known_capability(raw: &str) -> Result<&'static str, ApiError> {
    access::CAPABILITIES
        .iter()
        .find(|c| **c == raw)
        .copied()
        .ok_or_else(|| {
            ApiError::BadRequest(
                "unknown_capability",
                format!("unknown capability {raw:?}; known: {}", access::CAPABILITIES.join(", ")),
            )
        })
}

async fn existing_account<G: Game>(app: &App<G>, raw: &str) -> Result<Account, ApiError> {
    let id = crate::admin::parse_id(raw)?;
    app.node
        .store
        .account(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account {id}")))
}

/// `POST /v1/admin/accounts/{id}/capabilities` `{"capability"}`: grants a capability (admins only; audited).
#[utoipa::path(post, path = "/v1/admin/accounts/{id}/capabilities", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The account")),
    request_body = GrantRequest,
    responses(
        (status = 200, description = "`{\"account_id\", \"capability\", \"granted\"}` (`granted`: false if it was already held)", body = Object),
        (status = 400, description = "`unknown_capability`, `invalid_id`"),
        (status = 401, description = "`unauthorized`"),
        (status = 403, description = "`forbidden`: only `admin` grants"),
        (status = 404, description = "`not_found`: no such account"),
    ))]
pub(crate) async fn grant<G: Game>(
    State(app): State<Arc<App<G>>>,
    operator: Operator,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<GrantRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = operator.admin()?;
    let capability = known_capability(&req.capability)?;
    let account = existing_account(&app, &id).await?;
    let store = Arc::clone(&app.node.store);
    let by = who.audit_name();
    let result = audit::run(
        &app,
        &who,
        "account.grant",
        Some(format!("account:{}", account.id)),
        serde_json::json!({ "capability": capability }),
        || async move {
            let added = store.grant_capability(account.id, capability, &by).await?;
            Ok(serde_json::json!({ "account_id": account.id, "capability": capability, "granted": added }))
        },
    )
    .await?;
    if capability == access::GALACTIC_CITIZEN {
        set_nexus_allowed(&app, account.id, true).await?;
    }
    Ok(Json(result))
}

/// Applies a change of citizenship to the account's sessions in play (new sessions read it from the store).
async fn set_nexus_allowed<G: Game>(app: &App<G>, account: Uuid, allowed: bool) -> Result<(), ApiError> {
    for c in app.node.store.characters(account).await? {
        if let Some(link) = app.node.directory.session_of(c.id) {
            link.set_nexus_allowed(allowed);
        }
    }
    Ok(())
}

/// `DELETE /v1/admin/accounts/{id}/capabilities/{capability}`: revokes a capability (admins only; audited).
#[utoipa::path(delete, path = "/v1/admin/accounts/{id}/capabilities/{capability}", tag = "admin", security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The account"),
        ("capability" = String, Path, description = "`admin`, `operator` or `galactic_citizen`"),
    ),
    responses(
        (status = 200, description = "`{\"account_id\", \"capability\", \"revoked\"}` (`revoked`: false if it was not held)", body = Object),
        (status = 400, description = "`unknown_capability`, `invalid_id`"),
        (status = 401, description = "`unauthorized`"),
        (status = 403, description = "`forbidden`: only `admin` revokes"),
        (status = 404, description = "`not_found`: no such account"),
    ))]
pub(crate) async fn revoke<G: Game>(
    State(app): State<Arc<App<G>>>,
    operator: Operator,
    Path((id, capability)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = operator.admin()?;
    let capability = known_capability(&capability)?;
    let account = existing_account(&app, &id).await?;
    let store = Arc::clone(&app.node.store);
    let result = audit::run(
        &app,
        &who,
        "account.revoke",
        Some(format!("account:{}", account.id)),
        serde_json::json!({ "capability": capability }),
        || async move {
            let removed = store.revoke_capability(account.id, capability).await?;
            Ok(serde_json::json!({ "account_id": account.id, "capability": capability, "revoked": removed }))
        },
    )
    .await?;
    if capability == access::GALACTIC_CITIZEN {
        set_nexus_allowed(&app, account.id, !app.accounts.require_citizenship).await?;
    }
    Ok(Json(result))
}

/// What `orrery accounts grant|revoke|list` do, against a store opened without a server.
pub mod cli {
    use super::*;

    /// Grants `capability` to the registered account `username`; `Ok(false)` if it already had it.
    pub async fn grant(store: &SharedStore, username: &str, capability: &str) -> anyhow::Result<bool> {
        let capability = known_capability(capability).map_err(|e| anyhow::anyhow!("{e}"))?;
        let account = find(store, username).await?;
        let added = store.grant_capability(account.id, capability, "cli").await?;
        tracing::info!(account = %account.id, username, capability, added, "capability granted from the command line");
        Ok(added)
    }

    /// Revokes `capability` from `username`; `Ok(false)` if it did not have it.
    pub async fn revoke(store: &SharedStore, username: &str, capability: &str) -> anyhow::Result<bool> {
        let capability = known_capability(capability).map_err(|e| anyhow::anyhow!("{e}"))?;
        let account = find(store, username).await?;
        let removed = store.revoke_capability(account.id, capability).await?;
        tracing::info!(account = %account.id, username, capability, removed, "capability revoked from the command line");
        Ok(removed)
    }

    /// Accounts matching `query` (username substring or id; empty: all, up to the search limit).
    pub async fn list(store: &SharedStore, query: &str) -> anyhow::Result<Vec<Account>> {
        Ok(store.search_accounts(query, SEARCH_LIMIT).await?)
    }

    async fn find(store: &SharedStore, username: &str) -> anyhow::Result<Account> {
        store
            .account_by_username(username.trim())
            .await?
            .ok_or_else(|| anyhow::anyhow!("no registered account named {username:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        register,
        login,
        refresh,
        logout,
        upgrade,
        me,
        list_characters,
        create_character,
        search,
        grant,
        revoke
    ))]
    struct Doc;

    #[test]
    fn every_endpoint_is_described_for_the_openapi_document() {
        use utoipa::OpenApi;
        let doc = Doc::openapi();
        let paths: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
        for path in [
            "/v1/accounts",
            "/v1/accounts/upgrade",
            "/v1/accounts/me",
            "/v1/auth/login",
            "/v1/auth/refresh",
            "/v1/auth/logout",
            "/v1/characters",
            "/v1/admin/accounts",
            "/v1/admin/accounts/{id}/capabilities",
            "/v1/admin/accounts/{id}/capabilities/{capability}",
        ] {
            assert!(paths.contains(&path), "{path} missing from {paths:?}");
        }
    }

    fn code(r: Result<impl std::fmt::Debug, ApiError>) -> (&'static str, String) {
        match r {
            Err(ApiError::BadRequest(code, m)) => (code, m),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn usernames_and_passwords_name_the_rule_they_break() {
        assert_eq!(valid_username("  Ada.L-1_ ").unwrap(), "Ada.L-1_");
        let (c, m) = code(valid_username("ab"));
        assert_eq!(c, "invalid_username");
        assert!(m.contains("3 to 32 characters"), "{m}");
        let (_, m) = code(valid_username("ada lovelace"));
        assert!(m.contains("only ASCII letters") && m.contains("' '"), "{m}");
        let (_, m) = code(valid_username("_ada"));
        assert!(m.contains("start with a letter"), "{m}");
        let (_, m) = code(valid_username(&"a".repeat(33)));
        assert!(m.contains("got 33"), "{m}");
        assert!(valid_password("correct horse").is_ok());
        let (c, m) = code(valid_password("short"));
        assert_eq!(c, "invalid_password");
        assert!(m.contains("8 to 128"), "{m}");
        let (_, m) = code(valid_password("tab\tinside it"));
        assert!(m.contains("control characters"), "{m}");
    }
}
