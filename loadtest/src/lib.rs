//! Orrery's load tester: `orrery loadtest` drives N simulated clients over real WebSocket connections against a
//! running server (or the `fanout-floor` baseline), following a scenario file, and reports what they measured
//! (see docs/loadtest.md; the reference benchmark is docs/scenarios/sector-sync.md).
//!
//! Modules:
//! - [`scenario`]: the scenario file (TOML) and its SLOs.
//! - [`driver`]: the run: world and sectors, joins, the input scheduler, warm-up, window, scrapes.
//! - [`client`]: one simulated client: login, upgrade, and the read loop (count-only or decoding).
//! - [`ws`]: minimal client-side WebSocket: handshake, masked frames, incremental frame parser.
//! - [`http`]: minimal HTTP/1.1 client for world, login and metrics requests.
//! - [`rtt`]: the input-to-visible round-trip rule and latency histograms.
//! - [`prom`]: Prometheus text parsing, counter deltas, histogram quantiles.
//! - [`procfs`]: CPU and memory from `/proc`.
//! - [`report`]: figures, SLO evaluation, human table and JSON.
//!
//! Everything runs on one current-thread tokio runtime: the load generator is meant to be pinned to one core.

pub mod client;
pub mod driver;
pub mod http;
pub mod procfs;
pub mod prom;
pub mod report;
pub mod rtt;
pub mod scenario;
pub mod ws;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

/// Command-line arguments of `orrery loadtest`.
#[derive(Debug, clap::Args)]
pub struct LoadtestArgs {
    /// Scenario file (TOML; see docs/loadtest.md and benches/scenarios/).
    #[arg(long)]
    pub scenario: PathBuf,
    /// Server address, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub server: String,
    /// The server's process id, to report its CPU use and memory from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No live progress line on stderr.
    #[arg(long)]
    pub no_progress: bool,
    /// Target the `fanout-floor` baseline server: count-only clients on ws://HOST:PORT/, no login, no inputs.
    #[arg(long)]
    pub floor: bool,
    /// With --floor: send the scenario's thrust inputs too (the floor started with --read-inputs reads and
    /// discards them), to measure the kernel's cost of the same traffic as the server's.
    #[arg(long, requires = "floor")]
    pub floor_inputs: bool,
    /// Wait up to this many seconds for the machine to be idle (< 15 % busy for 3 s) before starting; 0: don't.
    #[arg(long, default_value_t = 30.0)]
    pub idle_wait_secs: f64,
}

/// Runs a load test. Exit code 0 when every SLO holds, 2 when one is violated; setup failures are errors (1).
pub fn run(args: LoadtestArgs) -> anyhow::Result<ExitCode> {
    let scenario = scenario::Scenario::load(&args.scenario)?;
    let opts = driver::Options {
        scenario,
        server: args.server,
        server_pid: args.server_pid,
        progress: !args.no_progress,
        floor: args.floor,
        floor_inputs: args.floor_inputs,
        idle_wait: Duration::from_secs_f64(args.idle_wait_secs.max(0.0)),
    };
    if let Some(pid) = opts.server_pid {
        anyhow::ensure!(
            procfs::process_ticks(Some(pid)).is_some(),
            "--server-pid {pid}: no such process (cannot read /proc/{pid}/stat)"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let local = tokio::task::LocalSet::new();
    let measured = local.block_on(&runtime, driver::execute(opts))?;
    let report = report::build(&measured);
    // Close every connection before printing.
    drop(measured);
    drop(local);
    drop(runtime);

    // The human summary is this command's product, written to stdout.
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    report::write_human(&report, &mut out)?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if report.slo.passed {
        Ok(ExitCode::SUCCESS)
    } else {
        use std::io::Write;
        let failed: Vec<&str> = report
            .slo
            .checks
            .iter()
            .filter(|c| c.status == "fail")
            .map(|c| c.name)
            .collect();
        writeln!(out, "SLO violated: {}", failed.join(", "))?;
        Ok(ExitCode::from(2))
    }
}
