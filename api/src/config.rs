//! Server configuration: defaults that work with no file; the binary's flags and environment override them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use orrery_actors::EngineConfig;
use orrery_engine::galaxy::GenerateParams;

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
    /// Directory of the embedded SQLite store (`orrery.db`).
    pub data_dir: PathBuf,
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 7700)),
            data_dir: PathBuf::from("data"),
            galaxy: GalaxySource::Generate(GenerateParams::demo()),
            engine: EngineConfig::default(),
            admin_token: None,
            guest_login: true,
            allow_spawn_choice: false,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}
