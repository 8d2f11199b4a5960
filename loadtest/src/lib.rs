//! Orrery's load tester (being written).

/// Command-line arguments of `orrery loadtest`.
#[derive(Debug, clap::Args)]
pub struct LoadtestArgs {
    /// Scenario file (TOML).
    #[arg(long)]
    pub scenario: std::path::PathBuf,
}

/// Runs a load test.
pub fn run(args: LoadtestArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("load tester not implemented yet: {}", args.scenario.display())
}
