//! Orrery's front: HTTP and WebSocket endpoints, auth, admin, health and metrics, and server startup/shutdown.
//!
//! Modules:
//! - [`body`]: JSON request bodies whose refusals name the field and the problem.
//! - [`config`]: server configuration with working defaults.
//! - [`server`]: the accept loop (hyper over the axum router, upgrades kept as raw TCP streams), with the
//!   connection cap and the header, idle and drain timeouts.
//! - [`limits`]: per-request limits: request timeout, body size, CORS, guest login rate, admission control.
//! - [`ws`]: the WebSocket handshake that hands a connection to a session actor.
//! - [`accounts`]: registration, password login, refresh tokens, characters, guest upgrade, capability grants.
//! - [`tokens`]: password hashes, access tokens (JWT), refresh tokens and the signing key.
//! - [`access`]: who calls an endpoint ([`access::Principal`]) and the one place capabilities are checked.
//! - [`audit`]: the audit trail of admin actions and `GET /v1/admin/audit`.
//! - [`paging`]: the cursor and `limit` of paged reads (ledger, audit log).
//! - [`openapi`]: the OpenAPI document (`GET /v1/openapi.json`), generated from the handlers' annotations.
//! - [`auth`]: guest login and tokens.
//! - [`assets`]: the browser pages embedded from `web/dist` (the admin console at `/admin/`, the page at `/`).
//! - [`admin`]: the admin control plane under `/v1/admin` (reads with live stats, controls sent to the actors,
//!   snapshots, crash hooks).
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`content`]: reading and writing galaxy content directories.
//! - [`error`]: the API error type and its JSON form.

pub mod access;
pub mod accounts;
pub mod admin;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod body;
pub mod config;
pub mod content;
pub mod error;
pub mod health;
pub mod ledger;
pub mod limits;
pub mod openapi;
pub mod paging;
pub mod server;
pub mod tokens;
pub mod ws;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use orrery_actors::store::postgres::PgStore;
use orrery_actors::store::sqlite::SqliteStore;
use orrery_actors::store::SharedStore;
use orrery_engine::galaxy::{generate, Galaxy};
use orrery_engine::spacetrade::{Rules, SpaceTrade};
use orrery_engine::Game;
use orrery_regions::Node;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::{GalaxySource, IdentityConfig, RateLimit, ServerConfig};

/// Shared state of the HTTP handlers.
pub struct App<G: Game> {
    pub node: Node<G>,
    pub metrics: PrometheusHandle,
    pub admin_token: Option<String>,
    pub guest_login: bool,
    pub allow_spawn_choice: bool,
    /// Admission control: the most sessions this node takes.
    pub max_sessions: usize,
    /// Origins allowed by CORS and for the WebSocket (empty: no check).
    pub cors_origins: Vec<String>,
    /// HTTP limits (connection cap, timeouts, body size).
    pub http: server::HttpLimits,
    /// Live connection counts.
    pub connections: Arc<server::ConnCounts>,
    /// Guest logins per client address.
    pub guest_limiter: limits::AddressLimiter,
    /// Ledger reads per client address.
    pub ledger_limiter: limits::AddressLimiter,
    /// Audit log reads per client address (the ledger reads' rate).
    pub audit_limiter: limits::AddressLimiter,
    /// Admin API requests per client address ([`access::admin_gate`]).
    pub admin_limiter: limits::AddressLimiter,
    /// Accounts, tokens and entitlements.
    pub accounts: accounts::Accounts,
    shutting_down: AtomicBool,
}

impl<G: Game> App<G> {
    /// Whether a graceful shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Admission control for a new session (guest login, WebSocket upgrade).
    pub fn admit_session(&self) -> Result<(), error::ApiError> {
        if self.is_shutting_down() {
            return Err(error::ApiError::Unavailable);
        }
        if self.node.directory.session_count() >= self.max_sessions {
            metrics::counter!("orrery_admission_refused_total").increment(1);
            return Err(error::ApiError::AtCapacity("sessions"));
        }
        Ok(())
    }
}

/// One route the server serves.
pub struct Route<G: Game> {
    pub method: Method,
    /// The path as axum matches it (`/v1/admin/regions/{id}/stop`), which is also its path in the OpenAPI
    /// document.
    pub path: &'static str,
    /// Also served on the reserve connections past the connection cap (health, metrics, admin).
    pub reserve: bool,
    handler: MethodRouter<Arc<App<G>>>,
}

impl<G: Game> Route<G> {
    fn new<H, T>(method: Method, path: &'static str, reserve: bool, handler: H) -> Self
    where
        H: axum::handler::Handler<T, Arc<App<G>>>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
        Self {
            method,
            path,
            reserve,
            handler: on(filter, handler),
        }
    }
}

/// Every route the server serves: the one list that both routers are built from and that the OpenAPI test checks
/// against the document (`openapi::tests`). A new endpoint goes here, with `#[utoipa::path]` on its handler and the
/// handler listed in [`openapi::ApiDoc`].
pub fn routes<G: Game>() -> Vec<Route<G>> {
    const OPERATOR: bool = true;
    const PUBLIC: bool = false;
    vec![
        Route::new(Method::GET, "/healthz", OPERATOR, health::healthz),
        Route::new(Method::GET, "/readyz", OPERATOR, health::readyz::<G>),
        Route::new(Method::GET, "/metrics", OPERATOR, health::metrics::<G>),
        Route::new(Method::GET, "/v1/openapi.json", OPERATOR, openapi::openapi_json),
        Route::new(Method::GET, "/v1/admin/nodes", OPERATOR, admin::read::nodes::<G>),
        Route::new(Method::GET, "/v1/admin/regions", OPERATOR, admin::read::regions::<G>),
        Route::new(
            Method::POST,
            "/v1/admin/regions/{id}/pause",
            OPERATOR,
            admin::control::region_pause::<G>,
        ),
        Route::new(
            Method::POST,
            "/v1/admin/regions/{id}/resume",
            OPERATOR,
            admin::control::region_resume::<G>,
        ),
        Route::new(
            Method::POST,
            "/v1/admin/regions/{id}/stop",
            OPERATOR,
            admin::control::region_stop::<G>,
        ),
        Route::new(
            Method::POST,
            "/v1/admin/regions/{id}/start",
            OPERATOR,
            admin::control::region_start::<G>,
        ),
        Route::new(
            Method::POST,
            "/v1/admin/regions/{id}/tick-rate",
            OPERATOR,
            admin::control::region_tick_rate::<G>,
        ),
        Route::new(Method::GET, "/v1/admin/sectors", OPERATOR, admin::read::sectors::<G>),
        Route::new(
            Method::GET,
            "/v1/admin/sectors/{id}",
            OPERATOR,
            admin::read::sector::<G>,
        ),
        Route::new(
            Method::POST,
            "/v1/admin/sectors/{id}/pause",
            OPERATOR,
            admin::control::sector_pause::<G>,
        ),
        Route::new(
            Method::POST,
            "/v1/admin/sectors/{id}/resume",
            OPERATOR,
            admin::control::sector_resume::<G>,
        ),
        Route::new(
            Method::POST,
            "/v1/admin/sectors/{id}/restart",
            OPERATOR,
            admin::control::sector_restart::<G>,
        ),
        Route::new(
            Method::POST,
            "/v1/admin/sectors/{id}/snapshot",
            OPERATOR,
            admin::control::sector_snapshot::<G>,
        ),
        Route::new(Method::GET, "/v1/admin/sessions", OPERATOR, admin::read::sessions::<G>),
        Route::new(
            Method::GET,
            "/v1/admin/supervision",
            OPERATOR,
            admin::read::supervision::<G>,
        ),
        Route::new(Method::POST, "/v1/admin/kick", OPERATOR, admin::control::kick::<G>),
        Route::new(
            Method::POST,
            "/v1/admin/broadcast",
            OPERATOR,
            admin::control::broadcast::<G>,
        ),
        Route::new(
            Method::POST,
            "/v1/admin/teleport",
            OPERATOR,
            admin::control::teleport::<G>,
        ),
        Route::new(Method::POST, "/v1/admin/snapshot", OPERATOR, admin::snapshot::<G>),
        Route::new(
            Method::POST,
            "/v1/admin/sectors/{id}/crash",
            OPERATOR,
            admin::crash_sector::<G>,
        ),
        Route::new(Method::POST, "/v1/admin/nexus/crash", OPERATOR, admin::crash_nexus::<G>),
        Route::new(
            Method::GET,
            "/v1/admin/stations/{id}/ledger",
            OPERATOR,
            ledger::station::<G>,
        ),
        Route::new(Method::GET, "/v1/admin/ledger/audit", OPERATOR, ledger::audit::<G>),
        Route::new(Method::GET, "/v1/admin/audit", OPERATOR, audit::list::<G>),
        Route::new(Method::POST, "/v1/auth/guest", PUBLIC, auth::guest::<G>),
        Route::new(Method::GET, "/v1/world", PUBLIC, auth::world::<G>),
        Route::new(
            Method::GET,
            "/v1/characters/{id}/ledger",
            PUBLIC,
            ledger::character::<G>,
        ),
        Route::new(Method::GET, "/v1/ws", PUBLIC, ws::upgrade::<G>),
        Route::new(Method::POST, "/v1/auth/login", PUBLIC, accounts::login::<G>),
        Route::new(Method::POST, "/v1/auth/refresh", PUBLIC, accounts::refresh::<G>),
        Route::new(Method::POST, "/v1/auth/logout", PUBLIC, accounts::logout::<G>),
        Route::new(Method::POST, "/v1/accounts", PUBLIC, accounts::register::<G>),
        Route::new(Method::POST, "/v1/accounts/upgrade", PUBLIC, accounts::upgrade::<G>),
        Route::new(Method::GET, "/v1/accounts/me", PUBLIC, accounts::me::<G>),
        Route::new(Method::GET, "/v1/characters", PUBLIC, accounts::list_characters::<G>),
        Route::new(Method::POST, "/v1/characters", PUBLIC, accounts::create_character::<G>),
        Route::new(Method::GET, "/v1/admin/accounts", OPERATOR, accounts::search::<G>),
        Route::new(
            Method::POST,
            "/v1/admin/accounts/{id}/capabilities",
            OPERATOR,
            accounts::grant::<G>,
        ),
        Route::new(
            Method::DELETE,
            "/v1/admin/accounts/{id}/capabilities/{capability}",
            OPERATOR,
            accounts::revoke::<G>,
        ),
    ]
}

/// A router of the routes `keep` selects; every `/v1/admin/...` route behind [`access::admin_gate`] (rate limit,
/// credential and capability, before the handler reads anything of the request).
fn build<G: Game>(app: &Arc<App<G>>, keep: impl Fn(&Route<G>) -> bool) -> Router<Arc<App<G>>> {
    routes::<G>()
        .into_iter()
        .filter(|r| keep(r))
        .fold(Router::new(), |router, r| {
            let handler = if r.path.starts_with(ADMIN_PREFIX) {
                r.handler.route_layer(axum::middleware::from_fn_with_state(
                    Arc::clone(app),
                    access::admin_gate::<G>,
                ))
            } else {
                r.handler
            };
            router.route(r.path, handler)
        })
}

/// Where the admin API lives: every route under it needs `admin` or `operator`.
pub const ADMIN_PREFIX: &str = "/v1/admin/";

/// `404 not_found` naming the method and path asked for.
async fn no_such_endpoint(method: Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::NotFound(format!(
        "no endpoint {method} {}; the endpoints are listed in /v1/openapi.json",
        uri.path()
    ))
}

/// The HTTP routes: the route table's endpoints and the browser pages ([`assets`], not in the table).
pub fn router<G: Game>(app: Arc<App<G>>) -> Router {
    let routes = build::<G>(&app, |_| true)
        .merge(assets::routes())
        .fallback(no_such_endpoint);
    limits::apply(routes, &app).with_state(app)
}

/// The routes served on connections past the connection cap: health, metrics, admin and the admin console's pages;
/// everything else gets `503 at_capacity`.
pub fn reserve_router<G: Game>(app: Arc<App<G>>) -> Router {
    let routes = build::<G>(&app, |r| r.reserve)
        .merge(assets::admin_routes())
        .fallback(|| async {
            metrics::counter!("orrery_admission_refused_total").increment(1);
            error::ApiError::AtCapacity("connections")
        });
    limits::apply(routes, &app).with_state(app)
}

/// The world a configuration names.
pub fn load_galaxy(source: &GalaxySource) -> anyhow::Result<Galaxy> {
    Ok(match source {
        GalaxySource::Generate(params) => generate(*params),
        GalaxySource::Dir(dir) => content::load_dir(dir)?,
    })
}

/// A server running in the background (the binary waits on it; tests drive it).
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer").field("addr", &self.addr).finish()
    }
}

impl RunningServer {
    /// Graceful shutdown: stop accepting, close sessions, snapshot every sector, close the store.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// A token that triggers the same shutdown as [`RunningServer::stop`].
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Waits until the server has stopped (after its stop token fired).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Starts the reference game's server: store, migrations, galaxy, actor tree, listener.
pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
    let metrics = health::metrics_handle();
    let started = std::time::Instant::now();
    let galaxy = load_galaxy(&config.galaxy).context("loading the galaxy")?;
    let game = Arc::new(SpaceTrade::new(Arc::new(galaxy), Rules::default()));
    info!(galaxy = %game.galaxy().name, sectors = game.galaxy().sector_count(), ms = millis(started), "galaxy loaded");
    let started = std::time::Instant::now();
    let store = open_store(config.database_url.as_deref(), &config.data_dir).await?;
    info!(ms = millis(started), "store opened");
    start_with(game, store, config, metrics).await
}

/// Milliseconds since `since`, for the startup log.
fn millis(since: std::time::Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e4).round() / 10.0
}

/// Opens and migrates the configured store: PostgreSQL when a URL is given, else the embedded SQLite file in
/// `data_dir` (created if needed).
pub async fn open_store(database_url: Option<&str>, data_dir: &std::path::Path) -> anyhow::Result<SharedStore> {
    Ok(match database_url {
        Some(url) => {
            let store = PgStore::connect(url).await.context("opening the PostgreSQL store")?;
            info!("store: PostgreSQL");
            Arc::new(store)
        }
        None => {
            std::fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
            let db = data_dir.join("orrery.db");
            let store = SqliteStore::open(&db)
                .await
                .with_context(|| format!("opening {}", db.display()))?;
            info!(file = %db.display(), "store: embedded SQLite");
            Arc::new(store)
        }
    })
}

/// Starts a server for any game over any store.
pub async fn start_with<G: Game>(
    game: Arc<G>,
    store: SharedStore,
    config: ServerConfig,
    metrics: PrometheusHandle,
) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr()?;
    let accounts = accounts::Accounts::new(&config.identity, &config.data_dir).context("the JWT signing key")?;
    let node = Node::start(game, store, config.engine.clone()).await?;
    let app = Arc::new(App {
        node,
        metrics,
        admin_token: config.admin_token.clone(),
        guest_login: config.guest_login,
        allow_spawn_choice: config.allow_spawn_choice,
        max_sessions: config.max_sessions,
        cors_origins: config.cors_origins.clone(),
        http: config.http,
        connections: Arc::new(server::ConnCounts::default()),
        guest_limiter: limits::AddressLimiter::new(config.guests.per_minute, config.guests.burst),
        ledger_limiter: limits::AddressLimiter::new(config.ledger_reads.per_minute, config.ledger_reads.burst),
        audit_limiter: limits::AddressLimiter::new(config.ledger_reads.per_minute, config.ledger_reads.burst),
        admin_limiter: limits::AddressLimiter::new(config.admin_requests.per_minute, config.admin_requests.burst),
        accounts,
        shutting_down: AtomicBool::new(false),
    });
    let chores = limits::spawn_chores(Arc::clone(&app), config.guests.ttl);
    let stop = CancellationToken::new();
    let routes = router(Arc::clone(&app));
    let reserve = reserve_router(Arc::clone(&app));
    let token = stop.clone();
    let timeout = config.shutdown_timeout;
    let task = tokio::spawn(async move {
        let app2 = Arc::clone(&app);
        let directory = Arc::clone(&app.node.directory);
        server::run(
            listener,
            routes,
            reserve,
            app.http,
            Arc::clone(&app.connections),
            move || directory.session_count(),
            async move {
                token.cancelled().await;
                app2.shutting_down.store(true, Ordering::Release);
            },
        )
        .await;
        chores.abort();
        info!("stopped accepting; delivering owed replies, closing sessions and snapshotting");
        app.node.shutdown(timeout).await;
        info!("shutdown complete");
    });
    info!(
        max_connections = config.http.max_connections,
        max_sessions = config.max_sessions,
        "connection limits"
    );
    info!(%addr, "listening");
    Ok(RunningServer { addr, stop, task })
}
