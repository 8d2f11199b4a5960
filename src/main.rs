//! The `orrery` binary: `serve` runs the server; `galaxy generate|validate` work with content directories;
//! `admin ...` calls a running server's admin API ([`admin_cli`]).

mod admin_cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use orrery_api::{GalaxySource, ServerConfig};
use orrery_engine::galaxy::{generate, ContentFormat, GenerateParams};
use tracing_subscriber::EnvFilter;

/// Orrery: an actor-based realtime simulation server for persistent multiplayer worlds.
#[derive(Debug, Parser)]
#[command(name = "orrery", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (embedded SQLite store and a generated demo galaxy by default; no setup needed).
    Serve(Box<ServeArgs>),
    /// Work with galaxy content directories.
    #[command(subcommand)]
    Galaxy(GalaxyCommand),
    /// Manage guest accounts in the store.
    #[command(subcommand)]
    Guests(GuestsCommand),
    /// Grant, revoke and list account capabilities in the store (no running server needed).
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Show or apply the store's migrations (`serve` applies pending ones when it starts).
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Drive simulated clients against a running server and report what they measured (see docs/loadtest.md).
    Loadtest(Box<orrery_loadtest::LoadtestArgs>),
    /// Call a running server's admin API (regions, sectors, sessions, snapshots, the audit log, ...): the JSON answer
    /// on stdout, errors on stderr with a non-zero exit code (see docs/operations.md).
    Admin(Box<admin_cli::AdminArgs>),
}

#[derive(Debug, Subcommand)]
enum GalaxyCommand {
    /// Generate a galaxy deterministically (the same seed always gives the same galaxy) into a directory.
    Generate {
        /// Random seed.
        #[arg(long, default_value_t = 2102)]
        seed: u64,
        /// Regions besides the nexus.
        #[arg(long, default_value_t = 3)]
        regions: u32,
        /// Sectors in each region.
        #[arg(long, default_value_t = 50)]
        sectors_per_region: u32,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// File format.
        #[arg(long, value_enum, default_value = "toml")]
        format: Format,
    },
    /// Check a content directory (ids, warps, reachability, prices); exits 1 and names every problem if invalid.
    Validate {
        /// The content directory.
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum GuestsCommand {
    /// Delete guests (account, token, character) not seen for a number of days. Safe while the server runs.
    Purge {
        /// Guests created and not written for more than this many days are deleted.
        #[arg(long, default_value_t = 30.0)]
        older_than_days: f64,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AccountsCommand {
    /// Grant a capability (admin, operator, galactic_citizen) to a registered account: how the first admin is made.
    Grant {
        /// The account's username (any case).
        username: String,
        /// The capability.
        capability: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a capability from a registered account.
    Revoke {
        username: String,
        capability: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List accounts (id, kind, username, capabilities), optionally those whose username contains QUERY.
    List {
        /// A part of a username, or an account id.
        #[arg(default_value = "")]
        query: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// List every migration (module, version, description) and whether the database has it; exits 1 if the
    /// database has migrations this build does not know (a newer Orrery migrated it).
    Status(StoreArgs),
    /// Apply the pending migrations, in order.
    Up(StoreArgs),
}

/// Which store: PostgreSQL when a URL is given, otherwise the embedded SQLite file in the data directory.
#[derive(Debug, Args)]
struct StoreArgs {
    /// PostgreSQL URL of the store (postgres://user:password@host:port/database); without it, the embedded SQLite
    /// file in --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Directory of the embedded SQLite store (used without --database-url).
    #[arg(long, env = "ORRERY_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
}

impl StoreArgs {
    /// The embedded store's file (created on demand by the store), or an error naming it when the command needs an
    /// existing store and there is none: a mistyped --data-dir must not quietly start an empty store.
    fn embedded_file(&self, must_exist: bool) -> anyhow::Result<PathBuf> {
        let file = self.data_dir.join("orrery.db");
        anyhow::ensure!(!must_exist || file.exists(), "no store at {}", file.display());
        Ok(file)
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Toml,
    Json,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ORRERY_BIND", default_value = "127.0.0.1:7700")]
    bind: SocketAddr,
    #[command(flatten)]
    store: StoreArgs,
    /// Load the galaxy from this content directory instead of generating one.
    #[arg(long, env = "ORRERY_GALAXY")]
    galaxy: Option<PathBuf>,
    /// Seed of the generated galaxy.
    #[arg(long, env = "ORRERY_SEED", default_value_t = 2102)]
    seed: u64,
    /// Regions (besides the nexus) of the generated galaxy.
    #[arg(long, env = "ORRERY_REGIONS", default_value_t = 3)]
    regions: u32,
    /// Sectors per region of the generated galaxy.
    #[arg(long, env = "ORRERY_SECTORS_PER_REGION", default_value_t = 50)]
    sectors_per_region: u32,
    /// Simulation ticks per second of every sector.
    #[arg(long, env = "ORRERY_TICK_HZ", default_value_t = 20)]
    tick_hz: u32,
    /// Time dilation: the work one tick of a sector may take, as a fraction of the tick period (0 < x <= 1). A
    /// sector whose smoothed tick work is above it slows its game time instead of overrunning.
    #[arg(long, env = "ORRERY_TICK_BUDGET", default_value_t = 0.5)]
    tick_budget: f32,
    /// Time dilation: the lowest factor (game seconds per wall-clock second) an overloaded sector may slow to
    /// (0.01 to 1; 1 disables time dilation).
    #[arg(long, env = "ORRERY_DILATION_FLOOR", default_value_t = 0.1)]
    dilation_floor: f32,
    /// Seconds between periodic snapshots of every sector.
    #[arg(long, env = "ORRERY_SNAPSHOT_INTERVAL", default_value_t = 10.0)]
    snapshot_interval: f64,
    /// Sustained client messages per second before the connection is closed with 1008.
    #[arg(long, env = "ORRERY_MAX_MSGS_PER_SEC", default_value_t = 30)]
    max_msgs_per_sec: u32,
    /// Burst of client messages allowed above the sustained rate.
    #[arg(long, env = "ORRERY_MSG_BURST", default_value_t = 60)]
    msg_burst: u32,
    /// Bearer token for /v1/admin endpoints (admin is disabled without one).
    #[arg(long, env = "ORRERY_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Enable debug hooks (admin crash injection). Never in production.
    #[arg(long, env = "ORRERY_DEBUG_HOOKS")]
    debug_hooks: bool,
    /// Let guests choose their starting sector (`"sector"` in the guest login body); meant for load tests.
    #[arg(long, env = "ORRERY_ALLOW_SPAWN_CHOICE")]
    allow_spawn_choice: bool,
    /// Disable guest login.
    #[arg(long, env = "ORRERY_NO_GUEST")]
    no_guest: bool,
    /// Hard limit of a graceful shutdown, in seconds.
    #[arg(long, env = "ORRERY_SHUTDOWN_TIMEOUT", default_value_t = 10.0)]
    shutdown_timeout: f64,
    /// The largest client WebSocket message in bytes (after reassembly); larger ones close with 1009.
    #[arg(long, env = "ORRERY_MAX_MESSAGE", default_value_t = 65536)]
    max_message: usize,
    /// Seconds of silence from a client before the server pings it.
    #[arg(long, env = "ORRERY_WS_PING_INTERVAL", default_value_t = 10.0)]
    ws_ping_interval: f64,
    /// Seconds of silence (no pong either) before a connection is closed with 4002 and its character released.
    #[arg(long, env = "ORRERY_WS_TIMEOUT", default_value_t = 30.0)]
    ws_timeout: f64,
    /// Connections served normally (HTTP + WebSocket); default: the descriptor limit less 512.
    #[arg(long, env = "ORRERY_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Connections past the cap that may still reach /healthz, /readyz, /metrics and /v1/admin.
    #[arg(long, env = "ORRERY_RESERVE_CONNECTIONS", default_value_t = 32)]
    reserve_connections: usize,
    /// Seconds within which an HTTP request's head must arrive.
    #[arg(long, env = "ORRERY_HTTP_HEADER_TIMEOUT", default_value_t = 10.0)]
    http_header_timeout: f64,
    /// Seconds without traffic after which an HTTP connection is closed.
    #[arg(long, env = "ORRERY_HTTP_IDLE_TIMEOUT", default_value_t = 60.0)]
    http_idle_timeout: f64,
    /// Seconds within which an HTTP request (body included) must be answered (408 otherwise).
    #[arg(long, env = "ORRERY_HTTP_REQUEST_TIMEOUT", default_value_t = 30.0)]
    http_request_timeout: f64,
    /// The largest HTTP request body in bytes (413 above it).
    #[arg(long, env = "ORRERY_HTTP_BODY_LIMIT", default_value_t = 65536)]
    http_body_limit: usize,
    /// Guest logins allowed per client address per minute (0: unlimited, e.g. for load tests).
    #[arg(long, env = "ORRERY_GUEST_LOGINS_PER_MINUTE", default_value_t = 10)]
    guest_logins_per_minute: u32,
    /// Guest logins one address may make in a burst.
    #[arg(long, env = "ORRERY_GUEST_LOGIN_BURST", default_value_t = 20)]
    guest_login_burst: u32,
    /// Ledger reads (`GET /v1/characters/{id}/ledger`, the admin ledger views) per client address per minute
    /// (0: unlimited).
    #[arg(long, env = "ORRERY_LEDGER_READS_PER_MINUTE", default_value_t = orrery_api::RateLimit::LEDGER_READS.per_minute)]
    ledger_reads_per_minute: u32,
    /// Ledger reads one address may make in a burst.
    #[arg(long, env = "ORRERY_LEDGER_READ_BURST", default_value_t = orrery_api::RateLimit::LEDGER_READS.burst)]
    ledger_read_burst: u32,
    /// Admin API requests (`/v1/admin/...`) per client address per minute, counted before the credential is checked
    /// (0: unlimited).
    #[arg(long, env = "ORRERY_ADMIN_REQUESTS_PER_MINUTE", default_value_t = orrery_api::RateLimit::ADMIN_REQUESTS.per_minute)]
    admin_requests_per_minute: u32,
    /// Admin API requests one address may make in a burst.
    #[arg(long, env = "ORRERY_ADMIN_REQUEST_BURST", default_value_t = orrery_api::RateLimit::ADMIN_REQUESTS.burst)]
    admin_request_burst: u32,
    /// Days after which a guest that never came back is deleted (0: keep guests forever).
    #[arg(long, env = "ORRERY_GUEST_TTL_DAYS", default_value_t = 30.0)]
    guest_ttl_days: f64,
    /// Admission control: sessions this node takes before new logins get 503 at_capacity.
    #[arg(long, env = "ORRERY_MAX_SESSIONS", default_value_t = 10_000)]
    max_sessions: usize,
    /// An origin allowed to use the HTTP API and the WebSocket from a browser (repeatable; `*` for any).
    #[arg(long = "cors-origin", env = "ORRERY_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// The key that signs access tokens (HMAC-SHA256, at least 32 bytes). Without it or --jwt-secret-file, a
    /// development key is generated under --data-dir (with a warning).
    #[arg(long, env = "ORRERY_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// A file holding the signing key (used when --jwt-secret is not given).
    #[arg(long, env = "ORRERY_JWT_SECRET_FILE")]
    jwt_secret_file: Option<PathBuf>,
    /// Seconds an access token is valid.
    #[arg(long, env = "ORRERY_ACCESS_TOKEN_TTL", default_value_t = 900.0)]
    access_token_ttl: f64,
    /// Days a refresh token is valid (each use replaces it).
    #[arg(long, env = "ORRERY_REFRESH_TOKEN_TTL_DAYS", default_value_t = 30.0)]
    refresh_token_ttl_days: f64,
    /// The most characters one account may have.
    #[arg(long, env = "ORRERY_MAX_CHARACTERS_PER_ACCOUNT", default_value_t = 5)]
    max_characters_per_account: usize,
    /// Only accounts with the `galactic_citizen` capability may warp into the nexus region.
    #[arg(long, env = "ORRERY_REQUIRE_CITIZENSHIP")]
    require_citizenship: bool,
    /// Login, registration, refresh and upgrade attempts per client address per minute (0: unlimited).
    #[arg(long, env = "ORRERY_LOGINS_PER_MINUTE", default_value_t = orrery_api::RateLimit::LOGINS_PER_ADDRESS.per_minute)]
    logins_per_minute: u32,
    /// Such attempts one address may make in a burst.
    #[arg(long, env = "ORRERY_LOGIN_BURST", default_value_t = orrery_api::RateLimit::LOGINS_PER_ADDRESS.burst)]
    login_burst: u32,
    /// Login and registration attempts per username per minute, from any address (0: unlimited).
    #[arg(long, env = "ORRERY_ACCOUNT_LOGINS_PER_MINUTE", default_value_t = orrery_api::RateLimit::LOGINS_PER_ACCOUNT.per_minute)]
    account_logins_per_minute: u32,
    /// Such attempts one username may take in a burst.
    #[arg(long, env = "ORRERY_ACCOUNT_LOGIN_BURST", default_value_t = orrery_api::RateLimit::LOGINS_PER_ACCOUNT.burst)]
    account_login_burst: u32,
}

/// A duration flag in seconds, which must be positive.
fn secs(flag: &str, value: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        value.is_finite() && value > 0.0,
        "--{flag} must be a positive number of seconds"
    );
    Ok(Duration::from_secs_f64(value))
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<ServerConfig> {
        anyhow::ensure!(
            (1..=1000).contains(&self.tick_hz),
            "--tick-hz must be between 1 and 1000"
        );
        anyhow::ensure!(
            self.snapshot_interval.is_finite() && self.snapshot_interval > 0.0,
            "--snapshot-interval must be positive"
        );
        anyhow::ensure!(
            self.tick_budget.is_finite() && self.tick_budget > 0.0 && self.tick_budget <= 1.0,
            "--tick-budget must be a fraction of the tick period, above 0 and at most 1"
        );
        anyhow::ensure!(
            (0.01..=1.0).contains(&self.dilation_floor),
            "--dilation-floor must be between 0.01 and 1"
        );
        let mut config = ServerConfig {
            bind: self.bind,
            data_dir: self.store.data_dir,
            database_url: self.store.database_url,
            galaxy: match self.galaxy {
                Some(dir) => GalaxySource::Dir(dir),
                None => GalaxySource::Generate(GenerateParams {
                    seed: self.seed,
                    regions: self.regions,
                    sectors_per_region: self.sectors_per_region,
                }),
            },
            admin_token: self.admin_token,
            guest_login: !self.no_guest,
            allow_spawn_choice: self.allow_spawn_choice,
            shutdown_timeout: Duration::from_secs_f64(self.shutdown_timeout.max(0.1)),
            ..ServerConfig::default()
        };
        config.engine.tick_hz = self.tick_hz;
        config.engine.checkpoint_ticks = u64::from(self.tick_hz);
        config.engine.snapshot_interval = Duration::from_secs_f64(self.snapshot_interval);
        config.engine.max_msgs_per_sec = self.max_msgs_per_sec;
        config.engine.msg_burst = self.msg_burst;
        config.engine.debug_hooks = self.debug_hooks;
        config.engine.tick_budget = self.tick_budget;
        config.engine.dilation_floor = self.dilation_floor;
        anyhow::ensure!(self.max_message >= 125, "--max-message must be at least 125 bytes");
        config.engine.max_message = self.max_message;
        config.engine.ws_ping_interval = secs("ws-ping-interval", self.ws_ping_interval)?;
        config.engine.ws_timeout = secs("ws-timeout", self.ws_timeout)?;
        anyhow::ensure!(
            config.engine.ws_timeout > config.engine.ws_ping_interval,
            "--ws-timeout must be longer than --ws-ping-interval"
        );
        if let Some(max) = self.max_connections {
            config.http.max_connections = max;
        }
        config.http.reserve_connections = self.reserve_connections;
        config.http.header_timeout = secs("http-header-timeout", self.http_header_timeout)?;
        config.http.idle_timeout = secs("http-idle-timeout", self.http_idle_timeout)?;
        config.http.request_timeout = secs("http-request-timeout", self.http_request_timeout)?;
        config.http.body_limit = self.http_body_limit;
        config.guests.per_minute = self.guest_logins_per_minute;
        config.guests.burst = self.guest_login_burst;
        config.ledger_reads = orrery_api::RateLimit {
            per_minute: self.ledger_reads_per_minute,
            burst: self.ledger_read_burst,
        };
        config.admin_requests = orrery_api::RateLimit {
            per_minute: self.admin_requests_per_minute,
            burst: self.admin_request_burst,
        };
        config.guests.ttl =
            (self.guest_ttl_days > 0.0).then(|| Duration::from_secs_f64(self.guest_ttl_days * 86_400.0));
        config.max_sessions = self.max_sessions;
        config.cors_origins = self.cors_origins;
        anyhow::ensure!(
            self.max_characters_per_account >= 1,
            "--max-characters-per-account must be at least 1"
        );
        anyhow::ensure!(
            self.refresh_token_ttl_days.is_finite() && self.refresh_token_ttl_days > 0.0,
            "--refresh-token-ttl-days must be positive"
        );
        config.identity = orrery_api::IdentityConfig {
            jwt_secret: self.jwt_secret,
            jwt_secret_file: self.jwt_secret_file,
            access_ttl: secs("access-token-ttl", self.access_token_ttl)?.max(Duration::from_secs(1)),
            refresh_ttl: Duration::from_secs_f64(self.refresh_token_ttl_days * 86_400.0),
            max_characters: self.max_characters_per_account,
            require_citizenship: self.require_citizenship,
            per_address: orrery_api::RateLimit {
                per_minute: self.logins_per_minute,
                burst: self.login_burst,
            },
            per_account: orrery_api::RateLimit {
                per_minute: self.account_logins_per_minute,
                burst: self.account_login_burst,
            },
        };
        Ok(config)
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = args.into_config()?;
    let hard_limit = config.shutdown_timeout + Duration::from_secs(5);
    let server = orrery_api::start(config).await?;
    let stop = server.stop_token();
    shutdown_signal().await;
    tracing::info!("shutdown requested");
    stop.cancel();
    match tokio::time::timeout(hard_limit, server.wait()).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(_) => {
            tracing::error!("graceful shutdown exceeded its hard limit");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn purge_guests(older_than_days: f64, store: StoreArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        older_than_days.is_finite() && older_than_days >= 0.0,
        "--older-than-days must be zero or more"
    );
    if store.database_url.is_none() {
        store.embedded_file(true)?;
    }
    let store = orrery_api::open_store(store.database_url.as_deref(), &store.data_dir).await?;
    let cutoff = orrery_actors::store::now_millis() - (older_than_days * 86_400_000.0) as i64;
    let n = store.purge_guests(cutoff).await?;
    store.close().await;
    eprintln!("purged {n} guests idle for more than {older_than_days} days");
    Ok(ExitCode::SUCCESS)
}

async fn accounts(cmd: AccountsCommand) -> anyhow::Result<ExitCode> {
    use orrery_api::accounts::cli;
    let store_args = match &cmd {
        AccountsCommand::Grant { store, .. }
        | AccountsCommand::Revoke { store, .. }
        | AccountsCommand::List { store, .. } => store,
    };
    if store_args.database_url.is_none() {
        store_args.embedded_file(true)?;
    }
    let store = orrery_api::open_store(store_args.database_url.as_deref(), &store_args.data_dir).await?;
    let result = match &cmd {
        AccountsCommand::Grant {
            username, capability, ..
        } => cli::grant(&store, username, capability).await.map(|added| {
            if added {
                eprintln!("granted {capability} to {username}");
            } else {
                eprintln!("{username} already had {capability}");
            }
        }),
        AccountsCommand::Revoke {
            username, capability, ..
        } => cli::revoke(&store, username, capability).await.map(|removed| {
            if removed {
                eprintln!("revoked {capability} from {username}");
            } else {
                eprintln!("{username} did not have {capability}");
            }
        }),
        AccountsCommand::List { query, .. } => cli::list(&store, query).await.map(|accounts| {
            for a in accounts {
                let caps: Vec<&str> = a.capabilities.iter().map(String::as_str).collect();
                eprintln!(
                    "{}  {:<10} {:<32} {}",
                    a.id,
                    a.kind,
                    a.username.as_deref().unwrap_or("-"),
                    caps.join(",")
                );
            }
        }),
    };
    store.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn migrate(cmd: MigrateCommand) -> anyhow::Result<ExitCode> {
    use orrery_actors::store::migrate;
    let (args, apply) = match cmd {
        MigrateCommand::Status(args) => (args, false),
        MigrateCommand::Up(args) => (args, true),
    };
    let file = args.embedded_file(args.database_url.is_none() && !apply)?;
    if args.database_url.is_none() {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    }
    let pool = migrate::connect(args.database_url.as_deref(), &file).await?;
    if apply {
        let n = migrate::up(&pool).await?;
        eprintln!("applied {n} migrations");
    }
    let report = migrate::status(&pool).await?;
    for m in &report.known {
        let state = if m.applied { "applied" } else { "pending" };
        eprintln!("{:<9} {:<15} {:<8} {}", m.module, m.version, state, m.description);
    }
    for (version, description) in &report.unknown {
        eprintln!("{:<9} {:<15} {:<8} {}", "?", version, "unknown", description);
    }
    if report.unknown.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "the database has {} migrations this build does not know: a newer Orrery migrated it",
            report.unknown.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

fn galaxy(cmd: GalaxyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        GalaxyCommand::Generate {
            seed,
            regions,
            sectors_per_region,
            out,
            format,
        } => {
            let galaxy = generate(GenerateParams {
                seed,
                regions,
                sectors_per_region,
            });
            let format = match format {
                Format::Toml => ContentFormat::Toml,
                Format::Json => ContentFormat::Json,
            };
            let files = orrery_api::content::write_dir(&galaxy, &out, format)?;
            eprintln!(
                "wrote galaxy {:?} ({} regions, {} sectors) as {files} files to {}",
                galaxy.name,
                galaxy.regions.len(),
                galaxy.sector_count(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        GalaxyCommand::Validate { dir } => match orrery_api::content::load_dir(&dir) {
            Ok(galaxy) => {
                eprintln!(
                    "{}: valid galaxy {:?} ({} regions, {} sectors)",
                    dir.display(),
                    galaxy.name,
                    galaxy.regions.len(),
                    galaxy.sector_count()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("invalid content: {e}");
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Galaxy(cmd) => galaxy(cmd),
        Command::Loadtest(args) => orrery_loadtest::run(*args),
        Command::Guests(GuestsCommand::Purge { older_than_days, store }) => {
            current_thread()?.block_on(purge_guests(older_than_days, store))
        }
        Command::Migrate(cmd) => current_thread()?.block_on(migrate(cmd)),
        Command::Admin(args) => Ok(current_thread()?.block_on(admin_cli::run(*args))),
        Command::Accounts(cmd) => current_thread()?.block_on(accounts(cmd)),
        Command::Serve(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            runtime.block_on(serve(*args))
        }
    }
}
