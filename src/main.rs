//! The `orrery` binary: the reference space-trade game on the library entry point ([`orrery::Program`]). `serve` and
//! the generic subcommands come from the library; the galaxy flags of `serve`, `galaxy generate|validate` and
//! `loadtest` are this game's own.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use orrery_api::GalaxySource;
use orrery_engine::galaxy::{generate, ContentFormat, GenerateParams};
use orrery_engine::spacetrade::{Rules, SpaceTrade};

/// The galaxy flags of `orrery serve`.
#[derive(Debug, Args)]
struct GalaxyArgs {
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
}

impl GalaxyArgs {
    /// The space-trade game over the galaxy these flags name.
    fn into_game(self) -> anyhow::Result<SpaceTrade> {
        let source = match self.galaxy {
            Some(dir) => GalaxySource::Dir(dir),
            None => GalaxySource::Generate(GenerateParams {
                seed: self.seed,
                regions: self.regions,
                sectors_per_region: self.sectors_per_region,
            }),
        };
        let started = std::time::Instant::now();
        let galaxy = orrery_api::load_galaxy(&source).map_err(|e| e.context("loading the galaxy"))?;
        tracing::info!(
            galaxy = %galaxy.name,
            sectors = galaxy.sector_count(),
            ms = started.elapsed().as_millis() as u64,
            "galaxy loaded"
        );
        Ok(SpaceTrade::new(Arc::new(galaxy), Rules::default()))
    }
}

/// The space-trade game's own subcommands.
#[derive(Debug, Subcommand)]
enum SpaceTradeCommand {
    /// Work with galaxy content directories.
    #[command(subcommand)]
    Galaxy(GalaxyCommand),
    /// Drive simulated clients against a running server and report what they measured (see docs/loadtest.md).
    Loadtest(Box<orrery_loadtest::LoadtestArgs>),
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

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Toml,
    Json,
}

fn space_trade_command(cmd: SpaceTradeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SpaceTradeCommand::Galaxy(cmd) => galaxy(cmd),
        SpaceTradeCommand::Loadtest(args) => orrery_loadtest::run(*args),
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

fn main() -> anyhow::Result<ExitCode> {
    orrery::Program::new("orrery", env!("CARGO_PKG_VERSION"))
        .about("Orrery: an actor-based realtime simulation server for persistent multiplayer worlds")
        .serve_about("Run the space-trade world (a generated demo galaxy unless --galaxy names one; embedded SQLite store by default; no setup needed)")
        .flags::<GalaxyArgs>()
        .commands(space_trade_command)
        .main(GalaxyArgs::into_game)
}
