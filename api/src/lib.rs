//! Orrery's front: HTTP and WebSocket endpoints, auth, admin, health and metrics, and server startup/shutdown.
//!
//! Modules:
//! - [`body`]: JSON request bodies whose refusals name the field and the problem.
//! - [`config`]: server configuration with working defaults.
//! - [`server`]: the accept loop (hyper over the axum router, upgrades kept as raw TCP streams), with the
//!   connection cap and the header, idle and drain timeouts.
//! - [`limits`]: per-request limits: request timeout, body size, CORS, guest login rate, admission control.
//! - [`ws`]: the WebSocket handshake that hands a connection to a session actor.
//! - [`access`]: who calls an endpoint ([`access::Principal`]) and the one place capabilities are checked.
//! - [`audit`]: the audit trail of admin actions.
//! - [`auth`]: guest login and tokens.
//! - [`admin`]: the admin control plane under `/v1/admin` (reads with live stats, controls sent to the actors,
//!   snapshots, crash hooks).
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`content`]: reading and writing galaxy content directories.
//! - [`error`]: the API error type and its JSON form.

pub mod access;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod body;
pub mod config;
pub mod content;
pub mod error;
pub mod health;
pub mod ledger;
pub mod limits;
pub mod server;
pub mod ws;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::routing::{get, post};
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

pub use config::{GalaxySource, RateLimit, ServerConfig};

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

/// Health, metrics and admin routes: what the reserve connections past the cap may reach.
fn operator_routes<G: Game>() -> Router<Arc<App<G>>> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<G>))
        .route("/metrics", get(health::metrics::<G>))
        .route("/v1/admin/nodes", get(admin::read::nodes::<G>))
        .route("/v1/admin/regions", get(admin::read::regions::<G>))
        .route("/v1/admin/regions/{id}/pause", post(admin::control::region_pause::<G>))
        .route(
            "/v1/admin/regions/{id}/resume",
            post(admin::control::region_resume::<G>),
        )
        .route("/v1/admin/regions/{id}/stop", post(admin::control::region_stop::<G>))
        .route("/v1/admin/regions/{id}/start", post(admin::control::region_start::<G>))
        .route(
            "/v1/admin/regions/{id}/tick-rate",
            post(admin::control::region_tick_rate::<G>),
        )
        .route("/v1/admin/sectors", get(admin::read::sectors::<G>))
        .route("/v1/admin/sectors/{id}", get(admin::read::sector::<G>))
        .route("/v1/admin/sectors/{id}/pause", post(admin::control::sector_pause::<G>))
        .route(
            "/v1/admin/sectors/{id}/resume",
            post(admin::control::sector_resume::<G>),
        )
        .route(
            "/v1/admin/sectors/{id}/restart",
            post(admin::control::sector_restart::<G>),
        )
        .route(
            "/v1/admin/sectors/{id}/snapshot",
            post(admin::control::sector_snapshot::<G>),
        )
        .route("/v1/admin/sessions", get(admin::read::sessions::<G>))
        .route("/v1/admin/kick", post(admin::control::kick::<G>))
        .route("/v1/admin/broadcast", post(admin::control::broadcast::<G>))
        .route("/v1/admin/teleport", post(admin::control::teleport::<G>))
        .route("/v1/admin/snapshot", post(admin::snapshot::<G>))
        .route("/v1/admin/sectors/{id}/crash", post(admin::crash_sector::<G>))
        .route("/v1/admin/nexus/crash", post(admin::crash_nexus::<G>))
        .route("/v1/admin/stations/{id}/ledger", get(ledger::station::<G>))
        .route("/v1/admin/ledger/audit", get(ledger::audit::<G>))
}

/// The HTTP routes.
pub fn router<G: Game>(app: Arc<App<G>>) -> Router {
    let routes = operator_routes::<G>()
        .route("/v1/auth/guest", post(auth::guest::<G>))
        .route("/v1/world", get(auth::world::<G>))
        .route("/v1/characters/{id}/ledger", get(ledger::character::<G>))
        .route("/v1/ws", get(ws::upgrade::<G>))
        .fallback(|| async { error::ApiError::NotFound("no such endpoint".into()) });
    limits::apply(routes, &app).with_state(app)
}

/// The routes served on connections past the connection cap: health, metrics and admin; everything else gets
/// `503 at_capacity`.
pub fn reserve_router<G: Game>(app: Arc<App<G>>) -> Router {
    let routes = operator_routes::<G>().fallback(|| async {
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
