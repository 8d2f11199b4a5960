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
    /// The default limit of admin API requests per address (`/v1/admin/...`): 1200 a minute, bursts of 240, room
    /// for a console polling a handful of views every second.
    pub const ADMIN_REQUESTS: RateLimit = RateLimit {
        per_minute: 1200,
        burst: 240,
    };
    /// The default limit of login attempts per address: 30 a minute, bursts of 10.
    pub const LOGINS_PER_ADDRESS: RateLimit = RateLimit {
        per_minute: 30,
        burst: 10,
    };
    /// The default limit of login attempts per account: 10 a minute, bursts of 5.
    pub const LOGINS_PER_ACCOUNT: RateLimit = RateLimit {
        per_minute: 10,
        burst: 5,
    };
}

/// Accounts, tokens and entitlements.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The HMAC key that signs access tokens (`--jwt-secret`, `ORRERY_JWT_SECRET`; at least 32 bytes).
    pub jwt_secret: Option<String>,
    /// A file holding that key (`--jwt-secret-file`), when no secret is given. Without either, a development key
    /// is generated under the data directory (with a warning).
    pub jwt_secret_file: Option<PathBuf>,
    /// How long an access token is valid.
    pub access_ttl: Duration,
    /// How long a refresh token is valid (each use replaces it with a fresh one).
    pub refresh_ttl: Duration,
    /// The most characters one account may have.
    pub max_characters: usize,
    /// Whether entering the nexus region needs the `galactic_citizen` capability.
    pub require_citizenship: bool,
    /// Login, registration, refresh and guest upgrade attempts per client address.
    pub per_address: RateLimit,
    /// Login and registration attempts per username (whatever the address).
    pub per_account: RateLimit,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_secret_file: None,
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            max_characters: 5,
            require_citizenship: false,
            per_address: RateLimit::LOGINS_PER_ADDRESS,
            per_account: RateLimit::LOGINS_PER_ACCOUNT,
        }
    }
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
    /// Admin API requests (`/v1/admin/...`) per client address, counted before the credential is checked.
    pub admin_requests: RateLimit,
    /// Admission control: past this many sessions on the node, new logins get `503 at_capacity`.
    pub max_sessions: usize,
    /// Origins allowed to call the HTTP API from a browser (CORS) and to open the WebSocket; `*` allows any.
    /// Empty: no CORS headers, and the WebSocket accepts any `Origin`.
    pub cors_origins: Vec<String>,
    /// Accounts, tokens and entitlements.
    pub identity: IdentityConfig,
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
            admin_requests: RateLimit::ADMIN_REQUESTS,
            max_sessions: 10_000,
            cors_origins: Vec::new(),
            identity: IdentityConfig::default(),
        }
    }
}
