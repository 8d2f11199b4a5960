//! Server configuration: defaults that work with no file; the binary's flags and environment override them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use orrery_actors::EngineConfig;
use orrery_engine::galaxy::GenerateParams;

pub use crate::server::HttpLimits;

/// Limits on guest accounts.
#[derive(Debug, Clone, Copy)]
pub struct GuestLimits {
    /// Guest logins allowed per client address per minute (sustained).
    pub per_minute: u32,
    /// Guest logins one address may make in a burst.
    pub burst: u32,
    /// Guests whose token has not been used for this long are deleted (with their character); `None` keeps them.
    pub ttl: Option<Duration>,
}

impl Default for GuestLimits {
    fn default() -> Self {
        Self {
            per_minute: 10,
            burst: 20,
            ttl: Some(Duration::from_secs(30 * 24 * 3600)),
        }
    }
}
/// A request rate per client address.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Requests allowed per client address per minute (sustained; 0: unlimited).
    pub per_minute: u32,
    /// Requests one address may make in a burst.
    pub burst: u32,
}

impl RateLimit {
    /// The default limit of ledger reads: 120 a minute, bursts of 30.
    pub const LEDGER_READS: RateLimit = RateLimit {
        per_minute: 120,
        burst: 30,
    };
}

/// Where the world comes from.
#[derive(Debug, Clone)]
pub enum GalaxySource {
    /// Generated deterministically from these parameters.
    Generate(GenerateParams),
    /// Loaded from a content directory (see docs/content.md).
    Dir(PathBuf),
}

/// Everything `orrery serve` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free port).
    pub bind: SocketAddr,
    /// Directory of the embedded SQLite store (`orrery.db`), used when no `database_url` is given.
    pub data_dir: PathBuf,
    /// PostgreSQL URL of the store (`--database-url`, `DATABASE_URL`); `None`: the embedded SQLite file.
    pub database_url: Option<String>,
    /// The world.
    pub galaxy: GalaxySource,
    /// Actor machinery settings (tick rate, snapshots, limits, debug hooks).
    pub engine: EngineConfig,
    /// Bearer token of the admin endpoints; admin endpoints are disabled without one.
    pub admin_token: Option<String>,
    /// Whether `POST /v1/auth/guest` is open.
    pub guest_login: bool,
    /// Whether a guest may choose its starting sector (`"sector"` in the guest login body); for load tests.
    pub allow_spawn_choice: bool,
    /// Hard limit of a graceful shutdown.
    pub shutdown_timeout: Duration,
    /// HTTP connection cap, timeouts and body limit.
    pub http: HttpLimits,
    /// Guest login rate per address and guest expiry.
    pub guests: GuestLimits,
    /// Ledger reads (`GET .../ledger`, the audit) per client address.
    pub ledger_reads: RateLimit,
    /// Admission control: past this many sessions on the node, new logins get `503 at_capacity`.
    pub max_sessions: usize,
    /// Origins allowed to call the HTTP API from a browser (CORS) and to open the WebSocket; `*` allows any.
    /// Empty: no CORS headers, and the WebSocket accepts any `Origin`.
    pub cors_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 7700)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            galaxy: GalaxySource::Generate(GenerateParams::demo()),
            engine: EngineConfig::default(),
            admin_token: None,
            guest_login: true,
            allow_spawn_choice: false,
            shutdown_timeout: Duration::from_secs(10),
            http: HttpLimits::default(),
            guests: GuestLimits::default(),
            ledger_reads: RateLimit::LEDGER_READS,
            max_sessions: 10_000,
            cors_origins: Vec::new(),
        }
    }
}
