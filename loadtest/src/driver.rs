//! The run: setup (world, sectors), joins with bounded concurrency, the input scheduler, warm-up, the measured
//! window with its server scrapes and `/proc` samples, and the figures handed to `report`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use orrery_engine::spacetrade::{Command, Side};
use orrery_protocol::{ChatChannel, ClientFrame, ClientMessage};
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use crate::client::{self, bump, ClientSpec, Conn, Counts, JoinOutcome, Phase, Shared};
use crate::procfs::{self, CpuSample};
use crate::prom::Scrape;
use crate::rtt::Latency;
use crate::scenario::Scenario;

/// The scheduler wakes this often and sends every input that has come due (a timer per client would cost more).
const SLOT: Duration = Duration::from_millis(2);
/// How long inputs sent in the window may take to show before they count as unresolved.
pub const RESOLVE_GRACE: Duration = Duration::from_secs(1);
/// Progress refreshes per second.
const PROGRESS_HZ: u8 = 4;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: Scenario,
    pub server: String,
    pub server_pid: Option<u32>,
    pub progress: bool,
    pub floor: bool,
    /// With `floor`: send the scenario's thrusts anyway (nothing else).
    pub floor_inputs: bool,
    pub idle_wait: Duration,
}

/// Everything measured, for `report` to turn into figures.
#[derive(Debug)]
pub struct Measured {
    pub opts: Options,
    pub planned: u32,
    pub decoders: u32,
    pub joined: u32,
    pub join_secs: f64,
    pub machine_idle_before: Option<bool>,
    pub alive_at_window_start: u32,
    pub alive_at_window_end: u32,
    pub window_secs: f64,
    pub counts: Counts,
    /// Fewest patch frames one client (alive at the window's end) received during the window.
    pub min_client_frames: Option<u64>,
    /// Per room: its sector, and what its clients (alive at the window's end) received during the window.
    pub rooms: Vec<RoomMeasured>,
    pub tick_hz: u32,
    pub rtt: Latency,
    pub unresolved: u64,
    pub warp_latency: Latency,
    pub trade_latency: Latency,
    pub join_latency: Latency,
    pub shared: Rc<Shared>,
    pub cpu: procfs::CpuUse,
    pub server_memory_kib: (Option<u64>, Option<u64>),
    pub metrics: Option<(Scrape, Scrape)>,
}

/// One room's share of the window.
#[derive(Debug, Clone)]
pub struct RoomMeasured {
    pub sector: Option<Uuid>,
    /// Clients alive at the window's end.
    pub clients: u32,
    pub patch_frames: u64,
    pub min_client_frames: Option<u64>,
    pub dilation: client::RoomDilation,
}

/// A small fast generator (wyrand) for phases, velocities and masks: cheap enough for 50,000 inputs a second.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A velocity component uniform in [-100, 100], rounded to f32.
    pub fn velocity(&mut self) -> f32 {
        (self.unit() * 200.0 - 100.0) as f32
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    pub fn mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }

    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_ne_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_ne_bytes());
        b
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Thrust,
    Chat,
    Warp,
    Trade,
}

/// Sends every client's inputs when due: one heap of (due, client, action), drained every [`SLOT`].
struct Scheduler {
    heap: BinaryHeap<Reverse<(Instant, u32, Action)>>,
    periods: [Option<Duration>; 4],
    rng: Rng,
    scratch: Vec<u8>,
}

fn period(hz: f64) -> Option<Duration> {
    (hz > 0.0).then(|| Duration::from_secs_f64(1.0 / hz))
}

impl Scheduler {
    fn new(s: &Scenario, floor: bool, floor_inputs: bool, rng: Rng) -> Scheduler {
        let periods = if floor && floor_inputs {
            [period(s.thrust_hz), None, None, None]
        } else if floor {
            [None; 4]
        } else {
            [
                period(s.thrust_hz),
                period(s.chat_hz),
                period(s.warp_hz),
                period(s.trade_hz),
            ]
        };
        Scheduler {
            heap: BinaryHeap::new(),
            periods,
            rng,
            scratch: Vec::with_capacity(256),
        }
    }

    /// Starts a newly joined client's inputs, each at a random phase.
    fn add(&mut self, slot: u32, decoder: bool, now: Instant) {
        for (i, action) in [Action::Thrust, Action::Chat, Action::Warp, Action::Trade]
            .into_iter()
            .enumerate()
        {
            let Some(p) = self.periods[i] else { continue };
            if !decoder && matches!(action, Action::Warp | Action::Trade) {
                continue;
            }
            let phase = p.mul_f64(self.rng.unit());
            self.heap.push(Reverse((now + phase, slot, action)));
        }
    }

    fn run_due(&mut self, shared: &Shared, now: Instant) {
        let conns = shared.conns.borrow();
        while let Some(&Reverse((due, slot, action))) = self.heap.peek() {
            if due > now {
                break;
            }
            self.heap.pop();
            let Some(conn) = conns.get(slot as usize) else { continue };
            if conn.dead.get() {
                continue;
            }
            if self.act(shared, conn, action, now).is_err() {
                continue;
            }
            if let Some(p) = self.periods[action as usize] {
                // No drift: the next one is due one period after this one was, even if this one ran late.
                self.heap.push(Reverse((due + p, slot, action)));
            }
        }
    }

    fn act(&mut self, shared: &Shared, conn: &Conn, action: Action, now: Instant) -> Result<(), client::ConnEnd> {
        let measuring = shared.measuring();
        let totals = &shared.totals;
        match action {
            Action::Thrust => {
                let (vx, vy) = (self.rng.velocity(), self.rng.velocity());
                let frame = ClientFrame::new(None, ClientMessage::Game(Command::Thrust { vx, vy }));
                let (op, payload) = client::encode(shared.encoding, &frame);
                let mask = self.rng.mask();
                if let Some(d) = &conn.decoder {
                    d.borrow_mut().pending.push(vx, vy, Instant::now(), measuring);
                }
                conn.send(op, &payload, mask, &mut self.scratch)?;
                bump(&totals.inputs, 1);
            }
            Action::Chat => {
                let text = format!("o7 from r{}c{}", conn.spec.room, conn.spec.index_in_room);
                let frame = ClientFrame::new(
                    None,
                    ClientMessage::Chat {
                        channel: ChatChannel::Sector,
                        text,
                    },
                );
                let (op, payload) = client::encode(shared.encoding, &frame);
                conn.send(op, &payload, self.rng.mask(), &mut self.scratch)?;
                bump(&totals.chats, 1);
            }
            Action::Warp => {
                let Some(d) = &conn.decoder else { return Ok(()) };
                let mut d = d.borrow_mut();
                if d.warp_in_flight(now, shared) || d.warps.is_empty() {
                    return Ok(());
                }
                let to = d.warps[self.rng.below(d.warps.len())];
                let id = conn.next_id();
                let frame = ClientFrame::new(Some(id), ClientMessage::Game(Command::Warp { to }));
                let (op, payload) = client::encode(shared.encoding, &frame);
                d.warp = Some((id, to, Instant::now(), measuring));
                conn.send(op, &payload, self.rng.mask(), &mut self.scratch)?;
                bump(&totals.warps, 1);
            }
            Action::Trade => {
                let Some(d) = &conn.decoder else { return Ok(()) };
                let mut d = d.borrow_mut();
                if d.trade
                    .is_some_and(|t| now.duration_since(t.1) > Duration::from_secs(10))
                {
                    d.trade = None;
                    shared.anomaly("trade_timeout");
                }
                if d.trade.is_some() || d.warp_in_flight(now, shared) {
                    return Ok(());
                }
                let (station, commodity, side) = match d.holding.take() {
                    Some((st, c)) => (st, c, Side::Sell),
                    None => {
                        let stations: Vec<_> = d.stations.iter().filter(|s| !s.1.is_empty()).collect();
                        if stations.is_empty() {
                            return Ok(());
                        }
                        let (st, cs) = stations[self.rng.below(stations.len())];
                        let (st, c) = (*st, cs[self.rng.below(cs.len())]);
                        d.holding = Some((st, c));
                        (st, c, Side::Buy)
                    }
                };
                let id = conn.next_id();
                let frame = ClientFrame::new(
                    Some(id),
                    ClientMessage::Game(Command::Trade {
                        station,
                        commodity,
                        side,
                        qty: 1,
                        key: None,
                    }),
                );
                let (op, payload) = client::encode(shared.encoding, &frame);
                d.trade = Some((id, Instant::now(), measuring));
                conn.send(op, &payload, self.rng.mask(), &mut self.scratch)?;
                bump(&totals.trades, 1);
            }
        }
        Ok(())
    }
}

/// The first `rooms` sectors of the non-nexus regions of `GET /v1/world`, in listed order.
pub fn pick_sectors(world: &serde_json::Value, rooms: usize) -> anyhow::Result<Vec<Uuid>> {
    let regions = world
        .get("regions")
        .and_then(|r| r.as_array())
        .context("GET /v1/world: no `regions` array")?;
    let sectors: Vec<Uuid> = regions
        .iter()
        .filter(|r| !r.get("nexus").and_then(|n| n.as_bool()).unwrap_or(false))
        .flat_map(|r| r.get("sectors").and_then(|s| s.as_array()).cloned().unwrap_or_default())
        .filter_map(|s| s.get("id").and_then(|i| i.as_str()).and_then(|i| i.parse().ok()))
        .take(rooms)
        .collect();
    if sectors.len() < rooms {
        bail!(
            "the world has only {} sectors outside the nexus; the scenario needs {rooms} rooms",
            sectors.len()
        );
    }
    Ok(sectors)
}

/// Waits (up to `max`) until the machine has been under 15 % busy for 3 s; returns whether it was.
async fn wait_idle(max: Duration) -> Option<bool> {
    if max.is_zero() {
        return None;
    }
    let started = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    let mut prev = procfs::machine_ticks()?;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now_ticks = procfs::machine_ticks()?;
        let busy = procfs::machine_busy_fraction(prev, now_ticks);
        prev = now_ticks;
        if busy < 0.15 {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(2500) {
                return Some(true);
            }
        } else {
            quiet_since = None;
        }
        if started.elapsed() >= max {
            tracing::warn!("the machine did not become idle (< 15 % busy for 3 s); starting anyway");
            return Some(false);
        }
    }
}

async fn scrape(shared: &Shared) -> Option<Scrape> {
    match crate::http::request(
        shared.server,
        &shared.host,
        "GET",
        "/metrics",
        None,
        Duration::from_secs(5),
    )
    .await
    {
        Ok(body) => Some(Scrape::parse(&String::from_utf8_lossy(&body))),
        Err(e) => {
            tracing::warn!(error = %e, "could not scrape /metrics");
            None
        }
    }
}

fn alive(shared: &Shared) -> u32 {
    shared.conns.borrow().iter().filter(|c| !c.dead.get()).count() as u32
}

/// Join bookkeeping: how many joins ended, and a wake-up for whoever waits for all of them.
struct JoinTracker {
    ended: std::cell::Cell<u32>,
    joined: std::cell::Cell<u32>,
    notify: Notify,
}

/// Runs the whole scenario on the current (single-threaded) runtime; must be called inside a `LocalSet`.
pub async fn execute(opts: Options) -> anyhow::Result<Measured> {
    let s = opts.scenario.clone();
    let server: SocketAddr = tokio::net::lookup_host(&opts.server)
        .await
        .with_context(|| format!("resolving {}", opts.server))?
        .next()
        .with_context(|| format!("{} resolves to no address", opts.server))?;
    let seed = s.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id()) << 32
    });
    let mut rng = Rng::new(seed);
    let progress = if opts.progress {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(PROGRESS_HZ))
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );

    progress.set_message("waiting for the machine to be idle");
    progress.tick();
    let machine_idle_before = wait_idle(opts.idle_wait).await;

    let (bulk_reader, bulk) = client::BulkReader::new().context("creating the count-only clients' poller")?;
    let shared = Rc::new(Shared {
        server,
        host: opts.server.clone(),
        encoding: s.encoding,
        floor: opts.floor,
        join_timeout: Duration::from_secs_f64(s.join_timeout_secs),
        phase: std::cell::Cell::new(Phase::Joining),
        totals: Default::default(),
        read_buf: std::cell::RefCell::new(vec![0u8; client::READ_BUF].into_boxed_slice()),
        conns: Default::default(),
        join_failures: Default::default(),
        disconnects: Default::default(),
        lost_before_window_end: Default::default(),
        errors_window: Default::default(),
        errors_total: Default::default(),
        anomalies: Default::default(),
        join_latency: Default::default(),
        tick_hz: std::cell::Cell::new(20),
        bulk,
        dilation: std::cell::RefCell::new(vec![Default::default(); s.rooms as usize]),
    });
    tokio::task::spawn_local(bulk_reader.run(shared.clone()));

    // Rooms.
    let sectors: Vec<Option<Uuid>> = if opts.floor {
        vec![None; s.rooms as usize]
    } else {
        let body = crate::http::request(server, &opts.server, "GET", "/v1/world", None, Duration::from_secs(10))
            .await
            .with_context(|| format!("GET http://{}/v1/world", opts.server))?;
        let world: serde_json::Value = serde_json::from_slice(&body).context("GET /v1/world: not JSON")?;
        pick_sectors(&world, s.rooms as usize)?.into_iter().map(Some).collect()
    };
    let decoders_in_room = |room: u32| if opts.floor { 0 } else { s.decoders_in_room(room) };

    // The scheduler runs from the first join on.
    let scheduler = Rc::new(std::cell::RefCell::new(Scheduler::new(
        &s,
        opts.floor,
        opts.floor_inputs,
        Rng::new(rng.next_u64()),
    )));
    {
        let (shared, scheduler) = (shared.clone(), scheduler.clone());
        tokio::task::spawn_local(async move {
            let mut iv = tokio::time::interval(SLOT);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while shared.phase.get() != Phase::Done {
                iv.tick().await;
                scheduler.borrow_mut().run_due(&shared, Instant::now());
            }
        });
    }
    let planned = s.clients();
    spawn_progress(progress.clone(), shared.clone(), planned, s.window_secs);

    // Joins: clients of all rooms interleaved, at most `join_concurrency` in flight.
    let join_started = Instant::now();
    let tracker = Rc::new(JoinTracker {
        ended: Default::default(),
        joined: Default::default(),
        notify: Notify::new(),
    });
    let permits = Arc::new(Semaphore::new(s.join_concurrency as usize));
    for (i, (room, index_in_room)) in (0..planned).zip(s.placements()) {
        let spec = ClientSpec {
            index: i,
            room,
            index_in_room,
            sector: sectors[room as usize],
            decoder: index_in_room < decoders_in_room(room),
        };
        let permit = permits.clone().acquire_owned().await.context("join semaphore closed")?;
        let (shared2, scheduler2, tracker2) = (shared.clone(), scheduler.clone(), tracker.clone());
        let report = move |outcome: JoinOutcome| {
            drop(permit);
            match outcome {
                JoinOutcome::Joined(conn) => {
                    let mut conns = shared2.conns.borrow_mut();
                    let slot = conns.len() as u32;
                    scheduler2
                        .borrow_mut()
                        .add(slot, conn.decoder.is_some(), Instant::now());
                    conns.push(conn);
                    tracker2.joined.set(tracker2.joined.get() + 1);
                }
                JoinOutcome::Failed(kind) => {
                    tracing::debug!(client = i, kind, "join failed");
                    shared2.join_failed(&kind);
                }
            }
            tracker2.ended.set(tracker2.ended.get() + 1);
            tracker2.notify.notify_one();
        };
        tokio::task::spawn_local(client::run_client(shared.clone(), spec, rng.bytes16(), report));
    }
    while tracker.ended.get() < planned {
        tracker.notify.notified().await;
    }
    let join_secs = join_started.elapsed().as_secs_f64();
    let joined = tracker.joined.get();
    if joined == 0 {
        progress.finish_and_clear();
        let failures = shared.join_failures.borrow();
        if failures.contains_key(client::SPAWN_CHOICE_DISABLED) {
            bail!(
                "no client could join {}: the server does not let guests choose their sector; start it with \
                 `orrery serve --allow-spawn-choice` (and `--guest-logins-per-minute 0` for many clients)",
                opts.server
            );
        }
        bail!("no client could join {}: {failures:?}", opts.server);
    }

    // Warm-up, then the window.
    shared.phase.set(Phase::Warmup);
    tokio::time::sleep(Duration::from_secs_f64(s.warmup_secs)).await;

    let c0 = shared.totals.snapshot();
    let client_frames0: Vec<u64> = shared.conns.borrow().iter().map(|c| c.frames.get()).collect();
    let cpu0 = CpuSample::take(opts.server_pid);
    let t0 = Instant::now();
    shared.phase.set(Phase::Window);
    for room in shared.dilation.borrow_mut().iter_mut() {
        room.window_min = room.last;
    }
    let alive_at_window_start = alive(&shared);
    let m0 = if opts.floor { None } else { scrape(&shared).await };

    tokio::time::sleep_until((t0 + Duration::from_secs_f64(s.window_secs)).into()).await;

    shared.phase.set(Phase::Grace);
    let c1 = shared.totals.snapshot();
    let cpu1 = CpuSample::take(opts.server_pid);
    let window_secs = t0.elapsed().as_secs_f64();
    let server_memory_kib = opts.server_pid.map_or((None, None), procfs::process_memory);
    let alive_at_window_end = alive(&shared);
    let min_client_frames = shared
        .conns
        .borrow()
        .iter()
        .zip(client_frames0.iter().chain(std::iter::repeat(&0)))
        .filter(|(c, _)| !c.dead.get())
        .map(|(c, f0)| c.frames.get() - f0)
        .min();
    let mut rooms: Vec<RoomMeasured> = (0..s.rooms as usize)
        .map(|r| RoomMeasured {
            sector: sectors[r],
            clients: 0,
            patch_frames: 0,
            min_client_frames: None,
            dilation: shared.dilation.borrow()[r],
        })
        .collect();
    for (c, f0) in shared
        .conns
        .borrow()
        .iter()
        .zip(client_frames0.iter().chain(std::iter::repeat(&0)))
    {
        if c.dead.get() {
            continue;
        }
        let frames = c.frames.get() - f0;
        let room = &mut rooms[c.spec.room as usize];
        room.clients += 1;
        room.patch_frames += frames;
        room.min_client_frames = Some(room.min_client_frames.map_or(frames, |m| m.min(frames)));
    }
    let m1 = if opts.floor { None } else { scrape(&shared).await };

    // Let inputs of the window's last moments show.
    tokio::time::sleep(RESOLVE_GRACE).await;
    shared.phase.set(Phase::Done);
    // The count-only clients' handlers hold `shared`; dropping them closes nothing yet (the sockets are in `conns`).
    shared.bulk.clear();
    progress.finish_and_clear();

    let mut rtt = Latency::default();
    let mut warp_latency = Latency::default();
    let mut trade_latency = Latency::default();
    let mut unresolved = 0;
    for c in shared.conns.borrow().iter() {
        if let Some(d) = &c.decoder {
            let d = d.borrow();
            rtt.add(&d.rtt);
            warp_latency.add(&d.warp_latency);
            trade_latency.add(&d.trade_latency);
            unresolved += d.pending.unresolved_measured();
        }
    }
    let join_latency = shared.join_latency.borrow().clone();
    let tick_hz = if opts.floor { 20 } else { shared.tick_hz.get() };
    Ok(Measured {
        planned,
        decoders: (0..s.rooms).map(decoders_in_room).sum(),
        joined,
        join_secs,
        machine_idle_before,
        alive_at_window_start,
        alive_at_window_end,
        window_secs,
        counts: c1.since(&c0),
        min_client_frames,
        rooms,
        tick_hz,
        rtt,
        unresolved,
        warp_latency,
        trade_latency,
        join_latency,
        cpu: procfs::cpu_use(&cpu0, &cpu1, window_secs),
        server_memory_kib,
        metrics: m0.zip(m1),
        shared,
        opts,
    })
}

/// Refreshes the progress line a few times a second (cheap: a handful of counters).
fn spawn_progress(bar: ProgressBar, shared: Rc<Shared>, planned: u32, window_secs: f64) {
    if bar.is_hidden() {
        return;
    }
    tokio::task::spawn_local(async move {
        let every = Duration::from_millis(1000 / u64::from(PROGRESS_HZ));
        let mut last = (Instant::now(), shared.totals.snapshot());
        let started = Instant::now();
        let mut phase_started = (Phase::Joining, Instant::now());
        while shared.phase.get() < Phase::Done {
            tokio::time::sleep(every).await;
            let now = Instant::now();
            let counts = shared.totals.snapshot();
            let d = counts.since(&last.1);
            let secs = now.duration_since(last.0).as_secs_f64().max(1e-3);
            last = (now, counts);
            let phase = shared.phase.get();
            if phase != phase_started.0 {
                phase_started = (phase, now);
            }
            let in_phase = now.duration_since(phase_started.1).as_secs_f64();
            let failed: u64 = shared.join_failures.borrow().values().sum();
            let conns = shared.conns.borrow().len();
            let what = match phase {
                Phase::Joining => format!("joining {conns}/{planned} (failed {failed})"),
                Phase::Warmup => format!("warm-up {in_phase:.0}s"),
                Phase::Window => format!("window {in_phase:.0}/{window_secs:.0}s"),
                Phase::Grace | Phase::Done => "finishing".to_owned(),
            };
            bar.set_message(format!(
                "[{:>4.0}s] {what} | alive {} | inputs {:.0}/s | frames in {:.0}/s | {:.1} MB/s",
                started.elapsed().as_secs_f64(),
                alive(&shared),
                d.inputs as f64 / secs,
                d.patch_frames as f64 / secs,
                d.wire_bytes as f64 / secs / 1e6,
            ));
            bar.tick();
        }
    });
}
