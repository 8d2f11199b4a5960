//! Orrery as a library: everything `orrery serve` does, for any [`Game`].
//!
//! A game's `main` is a few lines:
//!
//! ```no_run
//! # use orrery_engine::spacetrade::{Rules, SpaceTrade};
//! # use orrery_engine::galaxy::{generate, GenerateParams};
//! # use std::sync::Arc;
//! fn main() -> anyhow::Result<std::process::ExitCode> {
//!     orrery::Program::new("mygame", env!("CARGO_PKG_VERSION"))
//!         .about("My game on Orrery")
//!         .main(|_flags| Ok(SpaceTrade::new(Arc::new(generate(GenerateParams::demo())), Rules::default())))
//! }
//! ```
//!
//! The program gets the `serve` subcommand with every server flag and environment variable ([`ServerArgs`]),
//! logging, SIGINT/SIGTERM handling with a graceful shutdown, the embedded SQLite store or PostgreSQL, admin and
//! metrics, plus the generic subcommands `guests`, `accounts`, `migrate` and `admin`. A game adds flags of its own to
//! `serve` with [`Program::flags`] (any `clap::Args` type) and subcommands of its own with [`Program::commands`]
//! (any `clap::Subcommand` type). Tests start a server in-process with [`start`].

mod admin_cli;

use std::ffi::OsString;
use std::io::IsTerminal as _;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgMatches, Args, FromArgMatches, Subcommand};
use orrery_engine::Game;
use tracing_subscriber::EnvFilter;

pub use admin_cli::AdminArgs;
pub use orrery_api::{RunningServer, ServerConfig};

/// A game's `serve` flags when it has none of its own.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct NoFlags {}

/// A game's subcommands when it has none of its own.
#[derive(Debug, Clone, Copy)]
pub enum NoCommands {}

impl FromArgMatches for NoCommands {
    fn from_arg_matches(_: &ArgMatches) -> Result<Self, clap::Error> {
        Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand))
    }
    fn update_from_arg_matches(&mut self, _: &ArgMatches) -> Result<(), clap::Error> {
        match *self {}
    }
}

impl Subcommand for NoCommands {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd
    }
    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd
    }
    fn has_subcommand(_: &str) -> bool {
        false
    }
}

// The subcommands every Orrery program has, whatever its game.
#[derive(Debug, Subcommand)]
enum Builtin {
    /// Manage guest accounts in the store.
    #[command(subcommand)]
    Guests(GuestsCommand),
    /// Grant, revoke and list account capabilities in the store (no running server needed).
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Show or apply the store's migrations (`serve` applies pending ones when it starts).
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Call a running server's admin API (regions, sectors, sessions, snapshots, the audit log, ...): the JSON answer
    /// on stdout, errors on stderr with a non-zero exit code (see docs/operations.md).
    Admin(Box<AdminArgs>),
}

type Handler<C> = Box<dyn FnOnce(C) -> anyhow::Result<ExitCode>>;

/// A game's command-line program: `serve` and the generic subcommands, plus the game's own flags (`A`) and
/// subcommands (`C`).
pub struct Program<A = NoFlags, C = NoCommands> {
    name: &'static str,
    version: &'static str,
    about: Option<&'static str>,
    serve_about: Option<&'static str>,
    commands: Option<Handler<C>>,
    flags: PhantomData<fn() -> A>,
}

impl<A, C> std::fmt::Debug for Program<A, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Program {
    /// A program called `name` (in usage lines and `--help`), reporting `version` for `--version`.
    pub fn new(name: &'static str, version: &'static str) -> Self {
        Program {
            name,
            version,
            about: None,
            serve_about: None,
            commands: None,
            flags: PhantomData,
        }
    }
}

impl<A: Args, C: Subcommand> Program<A, C> {
    /// The one-line description `--help` shows.
    pub fn about(mut self, about: &'static str) -> Self {
        self.about = Some(about);
        self
    }

    /// The description of `serve` in `--help` (what the game serves); by default "Run the server (embedded SQLite
    /// store by default; no setup needed)".
    pub fn serve_about(mut self, about: &'static str) -> Self {
        self.serve_about = Some(about);
        self
    }

    /// Adds the flags of `B` (a `#[derive(clap::Args)]` type) to `serve`; [`Program::main`] hands their values to
    /// the game's constructor.
    pub fn flags<B: Args>(self) -> Program<B, C> {
        Program {
            name: self.name,
            version: self.version,
            about: self.about,
            serve_about: self.serve_about,
            commands: self.commands,
            flags: PhantomData,
        }
    }

    /// Adds the subcommands of `D` (a `#[derive(clap::Subcommand)]` enum); `run` runs the one given and says how the
    /// program exits. [`current_thread`] gives it a runtime if it needs one.
    pub fn commands<D: Subcommand>(self, run: impl FnOnce(D) -> anyhow::Result<ExitCode> + 'static) -> Program<A, D> {
        Program {
            name: self.name,
            version: self.version,
            about: self.about,
            serve_about: self.serve_about,
            commands: Some(Box::new(run)),
            flags: PhantomData,
        }
    }

    /// The whole command line, as clap sees it (for `--help` and tests).
    pub fn command(&self) -> clap::Command {
        // Augmenting a command with a derived type gives it that type's doc comment as its description: the
        // descriptions are set after.
        let serve = A::augment_args(ServerArgs::augment_args(clap::Command::new("serve")))
            .about(
                self.serve_about
                    .unwrap_or("Run the server (embedded SQLite store by default; no setup needed)"),
            )
            .long_about(None::<&str>);
        let cmd = clap::Command::new(self.name)
            .version(self.version)
            .subcommand_required(true)
            .arg_required_else_help(true)
            .subcommand(serve);
        Builtin::augment_subcommands(C::augment_subcommands(cmd))
            .about(self.about)
            .long_about(None::<&str>)
    }

    /// Parses the process's arguments, sets up logging and runs the subcommand given. `serve` builds the game with
    /// `make` from the game's own flags, then serves it until SIGINT or SIGTERM and shuts down gracefully.
    pub fn main<G: Game>(self, make: impl FnOnce(A) -> anyhow::Result<G>) -> anyhow::Result<ExitCode> {
        self.main_from(std::env::args_os(), make)
    }

    /// [`Program::main`] with the given arguments (the first is the program's name).
    pub fn main_from<G: Game>(
        self,
        args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
        make: impl FnOnce(A) -> anyhow::Result<G>,
    ) -> anyhow::Result<ExitCode> {
        let matches = self.command().get_matches_from(args);
        init_logging();
        match matches.subcommand() {
            Some(("serve", sub)) => {
                let server = ServerArgs::from_arg_matches(sub).unwrap_or_else(|e| e.exit());
                let flags = A::from_arg_matches(sub).unwrap_or_else(|e| e.exit());
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .context("starting the tokio runtime")?;
                runtime.block_on(async move {
                    let config = server.into_config()?;
                    let game = make(flags)?;
                    serve_config(Arc::new(game), config).await
                })
            }
            Some((name, _)) if C::has_subcommand(name) => {
                let cmd = C::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
                match self.commands {
                    Some(run) => run(cmd),
                    None => anyhow::bail!("no handler for the subcommand {name}"),
                }
            }
            _ => run_builtin(Builtin::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())),
        }
    }
}

fn run_builtin(cmd: Builtin) -> anyhow::Result<ExitCode> {
    match cmd {
        Builtin::Guests(GuestsCommand::Purge { older_than_days, store }) => {
            current_thread()?.block_on(purge_guests(older_than_days, store))
        }
        Builtin::Migrate(cmd) => current_thread()?.block_on(migrate(cmd)),
        Builtin::Admin(args) => Ok(current_thread()?.block_on(admin_cli::run(*args))),
        Builtin::Accounts(cmd) => current_thread()?.block_on(accounts(cmd)),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), in colour only when stderr is a terminal and `NO_COLOR`
/// is unset. Does nothing if a global subscriber is already set.
pub fn init_logging() {
    let colour = colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// Whether log lines carry ANSI colour: only on a terminal, and not when `NO_COLOR` is set to anything but the empty
/// string (no-color.org).
fn colour(terminal: bool, no_color: Option<OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Starts `game`'s server as `args` say (store, migrations, actor tree, listener) and returns once it listens;
/// stop it with [`RunningServer::stop`]. Port 0 in `--bind` picks a free port ([`RunningServer::addr`]).
pub async fn start<G: Game>(game: Arc<G>, args: ServerArgs) -> anyhow::Result<RunningServer> {
    start_config(game, args.into_config()?).await
}

async fn start_config<G: Game>(game: Arc<G>, config: ServerConfig) -> anyhow::Result<RunningServer> {
    let metrics = orrery_api::health::metrics_handle();
    let started = std::time::Instant::now();
    let store = orrery_api::open_store(config.database_url.as_deref(), &config.data_dir).await?;
    tracing::info!(ms = started.elapsed().as_millis() as u64, "store opened");
    orrery_api::start_with(game, store, config, metrics).await
}

/// Runs `game`'s server as `args` say until SIGINT or SIGTERM, then shuts down gracefully (closing sessions and
/// snapshotting every sector within `--shutdown-timeout`); the exit code says whether that finished in time.
pub async fn serve<G: Game>(game: Arc<G>, args: ServerArgs) -> anyhow::Result<ExitCode> {
    serve_config(game, args.into_config()?).await
}

async fn serve_config<G: Game>(game: Arc<G>, config: ServerConfig) -> anyhow::Result<ExitCode> {
    let hard_limit = config.shutdown_timeout + Duration::from_secs(5);
    let server = start_config(game, config).await?;
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

impl ServerArgs {
    /// The server flags from `flags` (without a program name, e.g. `["--bind", "127.0.0.1:0"]`) and, for those not
    /// given, the environment variables and defaults, exactly as `serve` reads them.
    pub fn from_flags(flags: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> Result<Self, clap::Error> {
        let cmd = ServerArgs::augment_args(clap::Command::new("serve").no_binary_name(true));
        ServerArgs::from_arg_matches(&cmd.try_get_matches_from(flags)?)
    }
}

/// Which store: PostgreSQL when a URL is given, otherwise the embedded SQLite file in the data directory.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// PostgreSQL URL of the store (postgres://user:password@host:port/database); without it, the embedded SQLite
    /// file in --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded SQLite store (used without --database-url).
    #[arg(long, env = "ORRERY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
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

/// The flags (and environment variables) of `serve` that every game has: listener, store, tick rate, limits,
/// identity, admin. [`ServerArgs::into_config`] checks them and makes the [`ServerConfig`].
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "ORRERY_BIND", default_value = "127.0.0.1:7700")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Simulation ticks per second of every sector.
    #[arg(long, env = "ORRERY_TICK_HZ", default_value_t = 20)]
    pub tick_hz: u32,
    /// Time dilation: the work one tick of a sector may take, as a fraction of the tick period (0 < x <= 1). A
    /// sector whose smoothed tick work is above it slows its game time instead of overrunning.
    #[arg(long, env = "ORRERY_TICK_BUDGET", default_value_t = 0.5)]
    pub tick_budget: f32,
    /// Time dilation: the lowest factor (game seconds per wall-clock second) an overloaded sector may slow to
    /// (0.01 to 1; 1 disables time dilation).
    #[arg(long, env = "ORRERY_DILATION_FLOOR", default_value_t = 0.1)]
    pub dilation_floor: f32,
    /// Seconds between periodic snapshots of every sector.
    #[arg(long, env = "ORRERY_SNAPSHOT_INTERVAL", default_value_t = 10.0)]
    pub snapshot_interval: f64,
    /// Sustained client messages per second before the connection is closed with 1008.
    #[arg(long, env = "ORRERY_MAX_MSGS_PER_SEC", default_value_t = 30)]
    pub max_msgs_per_sec: u32,
    /// Burst of client messages allowed above the sustained rate.
    #[arg(long, env = "ORRERY_MSG_BURST", default_value_t = 60)]
    pub msg_burst: u32,
    /// Bearer token for /v1/admin endpoints (admin is disabled without one).
    #[arg(long, env = "ORRERY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Enable debug hooks (admin crash injection). Never in production.
    #[arg(long, env = "ORRERY_DEBUG_HOOKS")]
    pub debug_hooks: bool,
    /// Let guests choose their starting sector (`"sector"` in the guest login body); meant for load tests.
    #[arg(long, env = "ORRERY_ALLOW_SPAWN_CHOICE")]
    pub allow_spawn_choice: bool,
    /// Disable guest login.
    #[arg(long, env = "ORRERY_NO_GUEST")]
    pub no_guest: bool,
    /// Hard limit of a graceful shutdown, in seconds.
    #[arg(long, env = "ORRERY_SHUTDOWN_TIMEOUT", default_value_t = 10.0)]
    pub shutdown_timeout: f64,
    /// The largest client WebSocket message in bytes (after reassembly); larger ones close with 1009.
    #[arg(long, env = "ORRERY_MAX_MESSAGE", default_value_t = 65536)]
    pub max_message: usize,
    /// Seconds of silence from a client before the server pings it.
    #[arg(long, env = "ORRERY_WS_PING_INTERVAL", default_value_t = 10.0)]
    pub ws_ping_interval: f64,
    /// Seconds of silence (no pong either) before a connection is closed with 4002 and its character released.
    #[arg(long, env = "ORRERY_WS_TIMEOUT", default_value_t = 30.0)]
    pub ws_timeout: f64,
    /// Connections served normally (HTTP + WebSocket); default: the descriptor limit less 512.
    #[arg(long, env = "ORRERY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Connections past the cap that may still reach /healthz, /readyz, /metrics and /v1/admin.
    #[arg(long, env = "ORRERY_RESERVE_CONNECTIONS", default_value_t = 32)]
    pub reserve_connections: usize,
    /// Seconds within which an HTTP request's head must arrive.
    #[arg(long, env = "ORRERY_HTTP_HEADER_TIMEOUT", default_value_t = 10.0)]
    pub http_header_timeout: f64,
    /// Seconds without traffic after which an HTTP connection is closed.
    #[arg(long, env = "ORRERY_HTTP_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub http_idle_timeout: f64,
    /// Seconds within which an HTTP request (body included) must be answered (408 otherwise).
    #[arg(long, env = "ORRERY_HTTP_REQUEST_TIMEOUT", default_value_t = 30.0)]
    pub http_request_timeout: f64,
    /// The largest HTTP request body in bytes (413 above it).
    #[arg(long, env = "ORRERY_HTTP_BODY_LIMIT", default_value_t = 65536)]
    pub http_body_limit: usize,
    /// Guest logins allowed per client address per minute (0: unlimited, e.g. for load tests).
    #[arg(long, env = "ORRERY_GUEST_LOGINS_PER_MINUTE", default_value_t = 10)]
    pub guest_logins_per_minute: u32,
    /// Guest logins one address may make in a burst.
    #[arg(long, env = "ORRERY_GUEST_LOGIN_BURST", default_value_t = 20)]
    pub guest_login_burst: u32,
    /// Ledger reads (`GET /v1/characters/{id}/ledger`, the admin ledger views) per client address per minute
    /// (0: unlimited).
    #[arg(long, env = "ORRERY_LEDGER_READS_PER_MINUTE", default_value_t = orrery_api::RateLimit::LEDGER_READS.per_minute)]
    pub ledger_reads_per_minute: u32,
    /// Ledger reads one address may make in a burst.
    #[arg(long, env = "ORRERY_LEDGER_READ_BURST", default_value_t = orrery_api::RateLimit::LEDGER_READS.burst)]
    pub ledger_read_burst: u32,
    /// Admin API requests (`/v1/admin/...`) per client address per minute, counted before the credential is checked
    /// (0: unlimited).
    #[arg(long, env = "ORRERY_ADMIN_REQUESTS_PER_MINUTE", default_value_t = orrery_api::RateLimit::ADMIN_REQUESTS.per_minute)]
    pub admin_requests_per_minute: u32,
    /// Admin API requests one address may make in a burst.
    #[arg(long, env = "ORRERY_ADMIN_REQUEST_BURST", default_value_t = orrery_api::RateLimit::ADMIN_REQUESTS.burst)]
    pub admin_request_burst: u32,
    /// Days after which a guest that never came back is deleted (0: keep guests forever).
    #[arg(long, env = "ORRERY_GUEST_TTL_DAYS", default_value_t = 30.0)]
    pub guest_ttl_days: f64,
    /// Admission control: sessions this node takes before new logins get 503 at_capacity.
    #[arg(long, env = "ORRERY_MAX_SESSIONS", default_value_t = 10_000)]
    pub max_sessions: usize,
    /// An origin allowed to use the HTTP API and the WebSocket from a browser (repeatable; `*` for any).
    #[arg(long = "cors-origin", env = "ORRERY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// The key that signs access tokens (HMAC-SHA256, at least 32 bytes). Without it or --jwt-secret-file, a
    /// development key is generated under --data-dir (with a warning).
    #[arg(long, env = "ORRERY_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// A file holding the signing key (used when --jwt-secret is not given).
    #[arg(long, env = "ORRERY_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// Seconds an access token is valid.
    #[arg(long, env = "ORRERY_ACCESS_TOKEN_TTL", default_value_t = 900.0)]
    pub access_token_ttl: f64,
    /// Days a refresh token is valid (each use replaces it).
    #[arg(long, env = "ORRERY_REFRESH_TOKEN_TTL_DAYS", default_value_t = 30.0)]
    pub refresh_token_ttl_days: f64,
    /// The most characters one account may have.
    #[arg(long, env = "ORRERY_MAX_CHARACTERS_PER_ACCOUNT", default_value_t = 5)]
    pub max_characters_per_account: usize,
    /// Only accounts with the `galactic_citizen` capability may warp into the nexus region.
    #[arg(long, env = "ORRERY_REQUIRE_CITIZENSHIP")]
    pub require_citizenship: bool,
    /// Login, registration, refresh and upgrade attempts per client address per minute (0: unlimited).
    #[arg(long, env = "ORRERY_LOGINS_PER_MINUTE", default_value_t = orrery_api::RateLimit::LOGINS_PER_ADDRESS.per_minute)]
    pub logins_per_minute: u32,
    /// Such attempts one address may make in a burst.
    #[arg(long, env = "ORRERY_LOGIN_BURST", default_value_t = orrery_api::RateLimit::LOGINS_PER_ADDRESS.burst)]
    pub login_burst: u32,
    /// Login and registration attempts per username per minute, from any address (0: unlimited).
    #[arg(long, env = "ORRERY_ACCOUNT_LOGINS_PER_MINUTE", default_value_t = orrery_api::RateLimit::LOGINS_PER_ACCOUNT.per_minute)]
    pub account_logins_per_minute: u32,
    /// Such attempts one username may take in a burst.
    #[arg(long, env = "ORRERY_ACCOUNT_LOGIN_BURST", default_value_t = orrery_api::RateLimit::LOGINS_PER_ACCOUNT.burst)]
    pub account_login_burst: u32,
}

/// A duration flag in seconds, which must be positive.
fn secs(flag: &str, value: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        value.is_finite() && value > 0.0,
        "--{flag} must be a positive number of seconds"
    );
    Ok(Duration::from_secs_f64(value))
}

impl ServerArgs {
    /// The server configuration these flags describe, or an error naming the flag that is out of range.
    pub fn into_config(self) -> anyhow::Result<ServerConfig> {
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

/// A single-threaded tokio runtime, for subcommands that make a few requests (a game's own subcommands may use it).
pub fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsString::new())));
        assert!(!colour(true, Some(OsString::from("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsString::from("1"))));
    }

    #[test]
    fn server_args_read_like_serve_and_refuse_bad_values_by_name() {
        let args = ServerArgs::from_flags(["--bind", "127.0.0.1:0", "--tick-hz", "30"]).unwrap();
        let config = args.into_config().unwrap();
        assert_eq!(config.bind.port(), 0);
        assert_eq!(config.engine.tick_hz, 30);
        let err = ServerArgs::from_flags(["--tick-hz", "0"])
            .unwrap()
            .into_config()
            .unwrap_err();
        assert!(err.to_string().contains("--tick-hz"), "{err}");
        assert!(ServerArgs::from_flags(["--no-such-flag"]).is_err());
    }

    #[test]
    fn a_program_has_serve_the_generic_subcommands_and_the_games() {
        #[derive(Debug, clap::Subcommand)]
        enum Extra {
            /// Something of the game's own.
            Hello,
        }
        let program = Program::new("game", "1.2.3")
            .about("A game")
            .commands(|_: Extra| Ok(ExitCode::SUCCESS));
        let cmd = program.command();
        let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
        assert_eq!(names, ["serve", "hello", "guests", "accounts", "migrate", "admin"]);
        assert_eq!(cmd.get_about().map(|a| a.to_string()), Some("A game".to_owned()));
        assert_eq!(cmd.get_version(), Some("1.2.3"));
    }
}
