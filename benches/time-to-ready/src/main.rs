//! `time-to-ready`: how long `orrery serve` takes, on a PostgreSQL store holding a snapshot of every sector with N
//! ships each, from the moment the process is started until `GET /readyz` answers `200` with every sector's actor
//! running.
//!
//! 1. Creates a scratch database (`ScratchDatabase`, dropped at the end unless `--keep`), migrated by `PgStore`.
//! 2. Fills it the way the server writes it: for every sector of the generated galaxy (`--seed`, `--regions`,
//!    `--sectors-per-region`, the same parameters the server is started with) a real `SectorState` with `--ships`
//!    ships admitted as characters' ships (`Game::spawn` + `Game::admit`, random velocities), ticked once (as a
//!    running sector is when its periodic snapshot is taken), encoded with postcard and written with `Store::save`
//!    (format `SpaceTrade::SECTOR_FORMAT`, epoch `SINGLE_NODE_EPOCH`). Characters' rows are not written: startup
//!    does not read them (a character's parked ship is read when it logs in).
//! 3. `--runs` rounds: waits for an idle machine, starts `orrery serve --database-url ...` (same galaxy
//!    parameters, `RUST_LOG=info`), and sends one `GET /readyz` as soon as the port accepts connections. The
//!    listener is bound before the actor tree is built but serves nothing until `Node::start` returns, so the
//!    answer arrives the moment the server is ready. Time to ready = from just before the process is spawned to
//!    the `200`. The answer's `sectors` object must say that every sector has a running actor, and
//!    `/v1/admin/regions` that every region's supervisor runs; the server's own phase timings are read from its
//!    log (`galaxy loaded`, `store opened`, `actor tree running`). The server is then killed (SIGKILL: a graceful
//!    stop would write a final snapshot of every sector, and restored sectors park nobody, so the next run would
//!    start from empty sectors); the store is checked to be unchanged before and after each run.
//!
//! Prints one line per run and a summary; `--json FILE` writes every measurement. With several `--orrery` binaries,
//! each round starts each of them once, in turn, and the summary adds each one's time over the first one's in the
//! same round (the machine's noise hits both alike).

// A benchmark's report goes to stdout.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Parser;
use orrery_actors::store::postgres::{PgStore, ScratchDatabase};
use orrery_actors::store::{Batch, SectorSnapshot, Store, SINGLE_NODE_EPOCH};
use orrery_engine::galaxy::{generate, GenerateParams};
use orrery_engine::spacetrade::{Rules, SpaceTrade};
use orrery_engine::{CharacterSeed, Game};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

/// Sectors per `Store::save` while filling.
const FILL_BATCH: usize = 250;
/// How long a server may take to become ready before the run counts as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const ADMIN_TOKEN: &str = "time-to-ready-bench";

#[derive(Debug, Parser)]
#[command(about = "Time-to-ready of `orrery serve` on a PostgreSQL store with every sector's snapshot")]
struct Args {
    /// Admin URL of the PostgreSQL server the scratch database is created on.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    admin_url: String,
    /// The server binary. Repeat it to compare binaries (e.g. before and after a change): every round runs each
    /// of them once, in the order given, so that they share the machine's noise; the summary gives each one's
    /// figures and, per round, its time over the first binary's.
    #[arg(long, default_value = "target/release/orrery")]
    orrery: Vec<PathBuf>,
    /// Rounds: measured server starts of each binary.
    #[arg(long, default_value_t = 5)]
    runs: u32,
    /// Galaxy seed (passed to the server too).
    #[arg(long, default_value_t = 2102)]
    seed: u64,
    /// Regions besides the nexus. The default with `--sectors-per-region 97` gives exactly 10,000 sectors
    /// (103 x 97 + a nexus of 9).
    #[arg(long, default_value_t = 103)]
    regions: u32,
    #[arg(long, default_value_t = 97)]
    sectors_per_region: u32,
    /// Ships in every sector's snapshot.
    #[arg(long, default_value_t = 100)]
    ships: u32,
    /// Port the server listens on.
    #[arg(long, default_value_t = 7890)]
    port: u16,
    /// Wait up to this many seconds before each run for the machine to be < 15 % busy over 2 s (then go ahead,
    /// flagged).
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
    /// Write every measurement here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where the servers' logs go (one file per run).
    #[arg(long, default_value = "benches/results")]
    log_dir: PathBuf,
    /// Use this already filled database instead of a scratch one (no fill, nothing dropped).
    #[arg(long)]
    database_url: Option<String>,
    /// Keep the scratch database (its URL is printed) instead of dropping it.
    #[arg(long)]
    keep: bool,
}

/// What a run measured.
#[derive(Debug, Default)]
struct Run {
    /// Index of the binary in `--orrery`.
    binary: usize,
    round: u32,
    ready_ms: f64,
    idle_before: bool,
    sectors_running: u64,
    sectors_total: u64,
    regions_running: usize,
    regions_total: usize,
    rss_mib: Option<f64>,
    /// The server's own phase timings, from its log.
    phases: Vec<(String, f64)>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    for binary in &args.orrery {
        ensure!(
            binary.exists(),
            "no server binary at {} (build it first)",
            binary.display()
        );
    }
    std::fs::create_dir_all(&args.log_dir).with_context(|| format!("creating {}", args.log_dir.display()))?;
    let params = GenerateParams {
        seed: args.seed,
        regions: args.regions,
        sectors_per_region: args.sectors_per_region,
    };
    let galaxy = generate(params);
    let sectors = galaxy.sector_count();
    let game = SpaceTrade::new(std::sync::Arc::new(galaxy), Rules::default());
    eprintln!("galaxy: {sectors} sectors in {} regions", game.layout().len());

    let scratch = match &args.database_url {
        Some(_) => None,
        None => Some(ScratchDatabase::create(&args.admin_url).await?),
    };
    let url = match (&args.database_url, &scratch) {
        (Some(url), _) => url.clone(),
        (None, Some(db)) => db.url.clone(),
        (None, None) => unreachable!("a scratch database is created when no URL is given"),
    };
    let store = PgStore::connect(&url).await?;
    let fill = if scratch.is_some() {
        let started = Instant::now();
        let stats = fill_store(&game, &store, args.ships).await?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "filled {} sectors, {} ships, {:.1} MB of snapshots in {secs:.1} s",
            stats.0,
            stats.1,
            stats.2 as f64 / 1e6
        );
        json!({"sectors": stats.0, "ships": stats.1, "snapshot_bytes": stats.2, "seconds": secs})
    } else {
        Value::Null
    };
    let pool = PgStore::pool(&url).await?;
    store.close().await;
    let fingerprint = fingerprint_of(&pool).await?;
    eprintln!(
        "store: {} snapshots, {:.1} MB (state), last written at {} ms",
        fingerprint.0,
        fingerprint.1 as f64 / 1e6,
        fingerprint.2
    );
    ensure!(
        fingerprint.0 as usize == sectors,
        "the store holds {} snapshots for {sectors} sectors",
        fingerprint.0
    );
    vacuum(&pool).await;

    let mut runs = Vec::new();
    for round in 1..=args.runs {
        for (binary, path) in args.orrery.iter().enumerate() {
            ensure!(
                fingerprint_of(&pool).await? == fingerprint,
                "the store changed since it was filled"
            );
            let idle = wait_idle(Duration::from_secs(args.idle_timeout));
            let log = args.log_dir.join(format!("time-to-ready-{round}-{binary}.log"));
            let mut r = measure(&args, path, &url, &log)
                .await
                .with_context(|| format!("round {round}, {}", path.display()))?;
            (r.binary, r.round, r.idle_before) = (binary, round, idle);
            ensure!(
                fingerprint_of(&pool).await? == fingerprint,
                "round {round} changed the store (a snapshot was written)"
            );
            let phases: Vec<String> = r.phases.iter().map(|(k, v)| format!("{k} {v:.0}")).collect();
            println!(
                "round {round} [{binary}]: ready after {:.0} ms; sectors running {}/{}, regions {}/{}; RSS {} MiB; \
                 server: {}{}",
                r.ready_ms,
                r.sectors_running,
                r.sectors_total,
                r.regions_running,
                r.regions_total,
                r.rss_mib.map_or("?".into(), |m| format!("{m:.0}")),
                phases.join(", "),
                if idle { "" } else { " (machine was busy before the run)" }
            );
            ensure!(
                r.sectors_total as usize == sectors && r.sectors_running == r.sectors_total,
                "/readyz said ready with {} of {} sectors running ({} expected)",
                r.sectors_running,
                r.sectors_total,
                sectors
            );
            ensure!(
                r.regions_running == r.regions_total,
                "/readyz said ready with {} of {} regions running",
                r.regions_running,
                r.regions_total
            );
            runs.push(r);
        }
    }
    pool.close().await;

    let mut summary = Vec::new();
    for (binary, path) in args.orrery.iter().enumerate() {
        let mine: Vec<&Run> = runs.iter().filter(|r| r.binary == binary).collect();
        let ready = Stats::of(mine.iter().map(|r| r.ready_ms));
        println!(
            "[{binary}] {}: time to ready over {} runs: {ready}",
            path.display(),
            mine.len()
        );
        let mut phases = serde_json::Map::new();
        for (name, _) in mine.first().map(|r| r.phases.clone()).unwrap_or_default() {
            let st = Stats::of(
                mine.iter()
                    .filter_map(|r| r.phases.iter().find(|(k, _)| *k == name).map(|p| p.1)),
            );
            println!("    {name}: {st}");
            phases.insert(name, st.json());
        }
        let mut entry =
            json!({"binary": path.display().to_string(), "ready_ms": ready.json(), "server_phases_ms": phases});
        if binary > 0 {
            // Per round: this binary's time over the first binary's in the same round.
            let ratios = Stats::of(mine.iter().filter_map(|r| {
                let base = runs.iter().find(|b| b.binary == 0 && b.round == r.round)?;
                Some(r.ready_ms / base.ready_ms)
            }));
            println!("    time to ready / [0]'s in the same round: {}", ratios.plain());
            entry["ratio_to_first"] = ratios.json();
        }
        summary.push(entry);
    }
    if let Some(path) = &args.json {
        let report = json!({
            "sectors": sectors,
            "ships_per_sector": args.ships,
            "galaxy": {"seed": args.seed, "regions": args.regions, "sectors_per_region": args.sectors_per_region},
            "fill": fill,
            "snapshot_bytes": fingerprint.1,
            "summary": summary,
            "runs": runs.iter().map(|r| json!({
                "binary": args.orrery[r.binary].display().to_string(),
                "round": r.round,
                "ready_ms": r.ready_ms,
                "idle_before": r.idle_before,
                "sectors_running": r.sectors_running,
                "sectors_total": r.sectors_total,
                "regions_running": r.regions_running,
                "rss_mib": r.rss_mib,
                "server_phases_ms": r.phases.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(db) = scratch {
        if args.keep {
            println!("kept the database: {}", db.url);
            std::mem::forget(db);
        }
    }
    Ok(())
}

/// Writes every sector's snapshot with `ships` ships; returns (sectors, ships, bytes of state).
async fn fill_store(game: &SpaceTrade, store: &PgStore, ships: u32) -> anyhow::Result<(usize, u64, u64)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let now = orrery_actors::store::now_millis();
    let max = game.rules().max_speed;
    let (mut n, mut ship_count, mut bytes) = (0usize, 0u64, 0u64);
    let mut batch = Batch::default();
    let mut character = 0u64;
    for region in game.layout() {
        for sector in &region.sectors {
            let mut state = game.new_sector(sector.id);
            for _ in 0..ships {
                character += 1;
                let seed = CharacterSeed {
                    character_id: Uuid::from_u128(rng.random()),
                    // Like the load tester's players: short names.
                    name: format!("p{character}"),
                };
                let (_, mut ship) = game.spawn(&seed, now);
                ship.vx = rng.random_range(-max..max);
                ship.vy = rng.random_range(-max..max);
                game.admit(&mut state, ship, now);
            }
            // A running sector's periodic snapshot is taken after a tick: nothing is pending in it.
            let _ = game.tick(&mut state, 0.05);
            ship_count += game.avatars(&state).len() as u64;
            let encoded = postcard::to_allocvec(&state).context("encoding a sector")?;
            bytes += encoded.len() as u64;
            batch.sectors.push(SectorSnapshot {
                sector: sector.id,
                seq: 1,
                tick: 1,
                epoch: SINGLE_NODE_EPOCH,
                format: SpaceTrade::SECTOR_FORMAT,
                state: encoded,
            });
            n += 1;
            if batch.sectors.len() >= FILL_BATCH {
                store.save(&batch).await?;
                batch = Batch::default();
            }
        }
    }
    store.save(&batch).await?;
    Ok((n, ship_count, bytes))
}

/// (snapshots, bytes of state, last write in ms): changes if anything writes a snapshot.
type Fingerprint = (i64, i64, i64);

async fn fingerprint_of(pool: &sqlx::PgPool) -> anyhow::Result<Fingerprint> {
    let row: Fingerprint = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(octet_length(state)), 0)::bigint, COALESCE(MAX(updated_at), 0)::bigint \
         FROM sector_snapshots",
    )
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// Settles the freshly written table (visibility map, statistics), as autovacuum would on a server that has run.
async fn vacuum(pool: &sqlx::PgPool) {
    if let Err(e) = sqlx::query("VACUUM ANALYZE sector_snapshots").execute(pool).await {
        eprintln!("warning: VACUUM ANALYZE failed: {e}");
    }
}

/// Minimum, median and maximum of some measurements.
#[derive(Debug, Clone, Copy)]
struct Stats {
    n: usize,
    min: f64,
    median: f64,
    max: f64,
}

impl Stats {
    fn of(values: impl Iterator<Item = f64>) -> Stats {
        let mut v: Vec<f64> = values.collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Stats {
            n,
            min: v.first().copied().unwrap_or(f64::NAN),
            median,
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }

    fn plain(&self) -> String {
        format!(
            "min {:.2}, median {:.2}, max {:.2} (n = {})",
            self.min, self.median, self.max, self.n
        )
    }

    fn json(&self) -> Value {
        json!({"n": self.n, "min": self.min, "median": self.median, "max": self.max})
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "min {:.0} ms, median {:.0} ms, max {:.0} ms",
            self.min, self.median, self.max
        )
    }
}

/// One server start, measured.
async fn measure(args: &Args, orrery: &std::path::Path, url: &str, log: &std::path::Path) -> anyhow::Result<Run> {
    let data_dir = std::env::temp_dir().join(format!("orrery-ttr-{}", std::process::id()));
    let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    ensure!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(),
        "something already listens on {addr}"
    );
    let mut cmd = Command::new(orrery);
    cmd.env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .arg("serve")
        .arg("--bind")
        .arg(addr.to_string())
        .arg("--database-url")
        .arg(url)
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--seed")
        .arg(args.seed.to_string())
        .arg("--regions")
        .arg(args.regions.to_string())
        .arg("--sectors-per-region")
        .arg(args.sectors_per_region.to_string())
        .arg("--admin-token")
        .arg(ADMIN_TOKEN)
        .stdout(Stdio::null())
        .stderr(log_file);
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {}", orrery.display()))?;
    let pid = child.id();
    let result = (|| -> anyhow::Result<Run> {
        let body = loop {
            if started.elapsed() > READY_TIMEOUT {
                bail!("not ready after {READY_TIMEOUT:?}");
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the server exited with {status} before it was ready (see {})",
                    log.display()
                );
            }
            match get(addr, "/readyz", None) {
                Ok((200, body)) => break body,
                Ok(_) | Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        };
        let ready_ms = started.elapsed().as_secs_f64() * 1e3;
        let rss_mib = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                    .map(|kib| kib / 1024.0)
            });
        let ready: Value = serde_json::from_str(&body).context("parsing /readyz")?;
        let count = |k: &str| ready["sectors"][k].as_u64().unwrap_or(0);
        let (_, regions) = get(addr, "/v1/admin/regions", Some(ADMIN_TOKEN))?;
        let regions: Value = serde_json::from_str(&regions).context("parsing /v1/admin/regions")?;
        let list = regions["regions"].as_array().cloned().unwrap_or_default();
        Ok(Run {
            ready_ms,
            sectors_running: count("running"),
            sectors_total: count("total"),
            regions_running: list.iter().filter(|r| r["running"] == Value::Bool(true)).count(),
            regions_total: list.len(),
            rss_mib,
            ..Run::default()
        })
    })();
    // SIGKILL: a graceful stop would snapshot every (now empty) sector over the fixture.
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut run = result?;
    run.phases = phases(log)?;
    Ok(run)
}

/// A plain HTTP/1.1 GET; returns the status and the body. The request waits in the listener's backlog while the
/// server builds its actor tree.
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    s.set_read_timeout(Some(READY_TIMEOUT))?;
    s.set_nodelay(true)?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .context("no status line")?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_owned()))
}

/// The server's phase timings from its log: `<field>=<ms>` of the startup lines.
fn phases(log: &std::path::Path) -> anyhow::Result<Vec<(String, f64)>> {
    let file = std::fs::File::open(log)?;
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        let prefix = if line.contains("galaxy loaded") {
            "galaxy"
        } else if line.contains("store opened") {
            "store"
        } else if line.contains("actor tree running") {
            "node"
        } else {
            continue;
        };
        for token in line.split_whitespace() {
            if let Some((k, v)) = token.split_once('=') {
                if k.ends_with("ms") {
                    if let Ok(v) = v.parse::<f64>() {
                        out.push((format!("{prefix}.{k}"), v));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Waits until the machine is < 15 % busy over 2 s; false if it still is not after `timeout`.
fn wait_idle(timeout: Duration) -> bool {
    let started = Instant::now();
    loop {
        let busy = busy_percent(Duration::from_secs(2));
        if busy < 15.0 {
            return true;
        }
        if started.elapsed() >= timeout {
            eprintln!("machine still {busy:.0} % busy; going ahead");
            return false;
        }
        eprintln!("machine {busy:.0} % busy; waiting");
    }
}

fn busy_percent(over: Duration) -> f64 {
    let read = || -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let v: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        Some((v.iter().take(8).sum(), idle))
    };
    let a = read();
    std::thread::sleep(over);
    match (a, read()) {
        (Some((t0, i0)), Some((t1, i1))) if t1 > t0 => 100.0 * ((t1 - t0) - (i1 - i0)) as f64 / (t1 - t0) as f64,
        _ => 0.0,
    }
}
