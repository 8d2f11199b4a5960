//! The sector actor: owns one sector's state, ticks it at a fixed rate, and streams deltas to its subscribers.
//!
//! Crash recovery: the actor's [`SectorCell`] belongs to its region supervisor and outlives the actor. Every
//! `checkpoint_ticks` ticks the state is copied there; every state change since (ticks, commands, admits,
//! departures) is appended to a journal. A restarted actor replays the journal on the checkpoint, so it resumes
//! from its last state; the operation that panicked was never journaled and is skipped.
//!
//! Inputs: the sector reads its subscribers' sockets itself. Each subscribed connection is registered with the
//! sector's poller (in the cell, so registrations outlive a restart); at the start of every tick the sector asks
//! the poller which connections have bytes, reads them, and applies the decoded messages in arrival order before
//! the tick integrates. A thrust therefore shows in the same delta as if it had been handled on arrival, and an
//! input costs one `recv` rather than a task wake-up, a channel hop and an actor message. Requests that are not
//! inputs (trade, resync, chat, ping) are answered within one tick period.
//!
//! Overload: a sector whose tick work exceeds its budget dilates time (crate::dilation): it keeps the fixed step
//! `dt` per simulated tick but runs simulated ticks on only a fraction of its timer ticks, and tells its
//! subscribers the factor (`time_dilation`). Inputs are read and requests answered at every simulated tick, so
//! at the dilated rate.

pub mod messages;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::unix::SourceFd;
use orrery_engine::{EntityId, Game, GameError, Outcome, RegionId, SectorId};
use orrery_protocol::{
    codec, codes, ChatChannel, ClientFrame, ClientMessage, DecodeError, Encoding, ServerFrame, ServerMessage,
    MAX_COMMAND_KEY,
};
use parking_lot::Mutex;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::{debug, error, info, warn};

use crate::config::EngineConfig;
use crate::dilation::{Dilation, DilationBoard};
use crate::directory::{Directory, Fabric, Parcel, SessionLink, Transfer};
use crate::input::Input;
use crate::ledger::{self, Waiter};
use crate::net::{self, Offer, Opcode};
use crate::persist::{Ack, SnapshotSlot};
use crate::persist::{PersistBatch, Persister};
use crate::phase::{PhaseSlot, PhaseWheel};
use crate::store::{now_millis, LedgerTx, ParkedAvatar, SectorSnapshot, SINGLE_NODE_EPOCH};
pub use messages::{SectorMsg, SectorStats};

/// Encodes a server frame and wraps it in one WebSocket frame. A frame that cannot be encoded (a game type whose
/// serialization fails) is logged and counted, and an `internal` error frame with the same `id` goes in its place:
/// never an empty or `null` frame.
pub fn encode_frame<G: Game>(frame: &ServerFrame<G>, encoding: Encoding) -> Bytes {
    let payload = codec::server_encode(frame, encoding).unwrap_or_else(|e| {
        error!(error = %e, "could not encode a server frame; sending an internal error instead");
        metrics::counter!("orrery_frame_encode_errors_total").increment(1);
        let stand_in = ServerFrame::<G>::error(
            frame.id,
            orrery_protocol::codes::INTERNAL,
            "the server could not encode this message",
        );
        codec::server_encode(&stand_in, encoding).unwrap_or_default()
    });
    let opcode = match encoding {
        Encoding::Json => Opcode::Text,
        Encoding::Binary => Opcode::Binary,
    };
    net::frame(opcode, &payload)
}

/// A server frame encoded lazily, at most once per encoding, for sending to many connections.
pub struct Encoded<'a, G: Game> {
    frame: &'a ServerFrame<G>,
    bytes: [Option<Bytes>; 2],
}

impl<'a, G: Game> Encoded<'a, G> {
    pub fn new(frame: &'a ServerFrame<G>) -> Self {
        Self {
            frame,
            bytes: [None, None],
        }
    }

    /// The framed bytes in `encoding`.
    pub fn get(&mut self, encoding: Encoding) -> &Bytes {
        let frame = self.frame;
        self.bytes[slot(encoding)].get_or_insert_with(|| encode_frame(frame, encoding))
    }
}

fn slot(encoding: Encoding) -> usize {
    match encoding {
        Encoding::Json => 0,
        Encoding::Binary => 1,
    }
}

/// A state change recorded since the last checkpoint.
enum JournalOp<G: Game> {
    Tick,
    Command {
        who: EntityId,
        command: G::Command,
        now: i64,
    },
    Admit {
        avatar: G::Avatar,
        now: i64,
    },
    Depart(EntityId),
}

struct Recovery<G: Game> {
    checkpoint: G::Sector,
    seq: u64,
    tick: u64,
    journal: Vec<JournalOp<G>>,
}

/// The part of a sector that survives its actor: identity, recovery data and subscribers.
pub struct SectorCell<G: Game> {
    pub id: SectorId,
    pub region: RegionId,
    pub name: String,
    recovery: Mutex<Recovery<G>>,
    subscribers: Mutex<Vec<Arc<SessionLink>>>,
    io: Mutex<SectorIo>,
    starts: Mutex<u64>,
    /// The time dilation factor subscribers were last told (f64 bits), so that a restarted actor resumes at it.
    dilation: AtomicU64,
    /// Where the sector's periodic snapshot waits for the persister (the newest one wins).
    snapshot_slot: Arc<SnapshotSlot>,
    /// Snapshot lag: when the oldest change not yet in a snapshot was made, and the oldest change in a snapshot not
    /// yet known to be committed (ms since the epoch; 0: none), and how many snapshots were taken.
    dirty_since: AtomicI64,
    pending_since: AtomicI64,
    captures: AtomicU64,
    /// Ledger transactions the state includes that are not known to be written yet (the sector's opening, a trade
    /// whose write failed). Every batch the sector writes carries them until one is committed: a snapshot is never
    /// written without the ledger rows of what it holds (their ids make repeats harmless).
    unwritten: Mutex<Vec<LedgerTx>>,
    /// Operator controls, kept here so that a restarted actor keeps them: paused, and the tick rate (0: the
    /// configured one).
    paused: AtomicBool,
    tick_hz: AtomicU32,
    /// Statistics for the admin endpoints: tick overruns, and when a snapshot was last committed (ms; 0: never).
    overruns: AtomicU64,
    last_snapshot_at: AtomicI64,
}

/// The sector's inbound side: a poller over its subscribers' sockets (edge-triggered readiness).
struct SectorIo {
    /// Created by the first actor start (it can fail like any descriptor allocation).
    poll: Option<mio::Poll>,
    events: mio::Events,
    /// Subscribed connections by descriptor (the poller's token).
    links: HashMap<RawFd, Arc<SessionLink>>,
    /// Connections to read at the next tick without a readiness event: just subscribed (bytes may be waiting
    /// already), or stopped by the per-tick read budget.
    carry: Vec<Arc<SessionLink>>,
}

impl SectorIo {
    fn register(&mut self, link: &Arc<SessionLink>) {
        let fd = link.conn.raw_fd();
        if let Some(poll) = &self.poll {
            if self.links.contains_key(&fd) {
                let _ = poll.registry().deregister(&mut SourceFd(&fd));
            }
            if let Err(e) =
                poll.registry()
                    .register(&mut SourceFd(&fd), mio::Token(fd as usize), mio::Interest::READABLE)
            {
                warn!(error = %e, "could not watch a connection for input");
            }
        }
        self.links.insert(fd, Arc::clone(link));
        self.carry.push(Arc::clone(link));
    }

    fn deregister(&mut self, link: &SessionLink) {
        let fd = link.conn.raw_fd();
        if self.links.get(&fd).is_some_and(|l| l.session == link.session) {
            self.links.remove(&fd);
            if let Some(poll) = &self.poll {
                let _ = poll.registry().deregister(&mut SourceFd(&fd));
            }
        }
    }

    /// Moves the connections with input (and the carried ones) into `out`.
    fn ready(&mut self, out: &mut Vec<Arc<SessionLink>>) {
        for link in self.carry.drain(..) {
            if self.links.contains_key(&link.conn.raw_fd()) {
                out.push(link);
            }
        }
        let Some(poll) = self.poll.as_mut() else { return };
        loop {
            if poll.poll(&mut self.events, Some(Duration::ZERO)).is_err() {
                return;
            }
            let mut n = 0;
            for event in self.events.iter() {
                n += 1;
                if let Some(link) = self.links.get(&(event.token().0 as RawFd)) {
                    out.push(Arc::clone(link));
                }
            }
            if n < self.events.capacity() {
                return;
            }
        }
    }
}

impl<G: Game> std::fmt::Debug for SectorCell<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectorCell")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl<G: Game> SectorCell<G> {
    /// A cell holding a sector's initial (or restored) state.
    pub fn new(id: SectorId, region: RegionId, name: String, state: G::Sector, seq: u64, tick: u64) -> Arc<Self> {
        Arc::new(Self {
            id,
            region,
            name,
            recovery: Mutex::new(Recovery {
                checkpoint: state,
                seq,
                tick,
                journal: Vec::new(),
            }),
            subscribers: Mutex::new(Vec::new()),
            io: Mutex::new(SectorIo {
                poll: None,
                events: mio::Events::with_capacity(256),
                links: HashMap::new(),
                carry: Vec::new(),
            }),
            starts: Mutex::new(0),
            dilation: AtomicU64::new(1.0f64.to_bits()),
            unwritten: Mutex::new(Vec::new()),
            snapshot_slot: Arc::new(SnapshotSlot::default()),
            dirty_since: AtomicI64::new(0),
            pending_since: AtomicI64::new(0),
            captures: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            tick_hz: AtomicU32::new(0),
            overruns: AtomicU64::new(0),
            last_snapshot_at: AtomicI64::new(0),
        })
    }

    /// Whether an operator paused the sector.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// The sector's tick rate: the operator's, or the configured `default`.
    pub fn tick_hz(&self, default: u32) -> u32 {
        match self.tick_hz.load(Ordering::Acquire) {
            0 => default.max(1),
            hz => hz,
        }
    }

    /// When a snapshot of the sector was last known committed (ms since the epoch).
    pub fn last_snapshot_at(&self) -> Option<i64> {
        Some(self.last_snapshot_at.load(Ordering::Acquire)).filter(|&t| t > 0)
    }

    /// Records that a snapshot of the sector was committed at `at` (ms since the epoch).
    pub fn snapshot_committed(&self, at: i64) {
        self.last_snapshot_at.fetch_max(at, Ordering::AcqRel);
    }

    /// Tick overruns of this sector since the node started.
    pub fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Acquire)
    }

    /// Notes a change of state (`now`: ms since the epoch, read only when no older change is pending, so that a
    /// sector changing every tick reads the clock once per snapshot, not once per tick).
    fn note_change(&self, now: impl FnOnce() -> i64) {
        if self.dirty_since.load(Ordering::Acquire) == 0 {
            let _ = self
                .dirty_since
                .compare_exchange(0, now(), Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Notes that a snapshot was taken (the changes so far are in it, pending its commit); the returned
    /// acknowledgement clears them once it is committed, unless a newer snapshot was taken meanwhile (whose own
    /// acknowledgement will).
    fn captured(self: &Arc<Self>) -> impl FnOnce(bool) + Send + 'static {
        let since = self.dirty_since.swap(0, Ordering::AcqRel);
        if since != 0 {
            let _ = self
                .pending_since
                .compare_exchange(0, since, Ordering::AcqRel, Ordering::Acquire);
        }
        let generation = self.captures.fetch_add(1, Ordering::AcqRel) + 1;
        let cell = Arc::clone(self);
        move |ok| {
            if ok {
                cell.snapshot_committed(now_millis());
            }
            if ok && cell.captures.load(Ordering::Acquire) == generation {
                cell.pending_since.store(0, Ordering::Release);
            }
        }
    }

    /// How long the sector's oldest change not known to be in the store has waited, in seconds (0: everything is).
    pub fn snapshot_lag(&self, now: i64) -> f64 {
        let oldest = [&self.pending_since, &self.dirty_since]
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .filter(|&t| t != 0)
            .min();
        oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1e3)
    }

    /// Once a batch carrying `ids` is committed, they are no longer owed.
    fn written(&self, ids: &[uuid::Uuid]) {
        if !ids.is_empty() {
            self.unwritten.lock().retain(|t| !ids.contains(&t.id));
        }
    }

    fn journal(&self, op: JournalOp<G>) {
        self.recovery.lock().journal.push(op);
    }

    /// The time dilation factor this sector's subscribers were last told (1: real time).
    pub fn dilation(&self) -> f64 {
        f64::from_bits(self.dilation.load(Ordering::Acquire))
    }

    /// A key for this cell that is unique while it lives (sector ids repeat across nodes in one process).
    fn key(&self) -> usize {
        self as *const Self as usize
    }
}

/// The sector's clock: a task that sends `Tick` every period while the sector is awake. A sector with no
/// subscribers whose last tick changed nothing falls asleep (no timer, no messages) until a ship enters. A sector
/// with subscribers rests when [`REST_AFTER_TICKS`] ticks in a row changed nothing and read nothing: it ticks again
/// as soon as one of its connections has input (its poller turns readable), a message reaches the actor, or
/// [`REST_CHECK`] has passed.
#[derive(Debug, Default)]
struct Ticker {
    awake: std::sync::atomic::AtomicBool,
    resting: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
    /// The tick period in nanoseconds (an operator may change the rate while the sector runs).
    period_nanos: AtomicU64,
}

/// Quiet ticks (no change, no input, nothing owed) after which a sector with subscribers rests.
const REST_AFTER_TICKS: u32 = 3;
/// The longest a resting sector goes without a tick (a safety net: input and messages wake it at once).
const REST_CHECK: Duration = Duration::from_secs(1);

impl Ticker {
    fn period(&self) -> Duration {
        Duration::from_nanos(self.period_nanos.load(Ordering::Acquire).max(1))
    }

    fn set_period(&self, period: Duration) {
        self.period_nanos.store(period.as_nanos() as u64, Ordering::Release);
    }

    fn is_awake(&self) -> bool {
        self.awake.load(std::sync::atomic::Ordering::Acquire)
    }

    fn set_awake(&self, awake: bool) {
        let was = self.awake.swap(awake, std::sync::atomic::Ordering::AcqRel);
        if awake && !was {
            self.wake.notify_one();
        }
    }

    fn is_resting(&self) -> bool {
        self.resting.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Rests from the next timer tick on.
    fn rest(&self) {
        self.resting.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Ends a rest at once (a message reached the actor).
    fn stir(&self) {
        if self.resting.swap(false, std::sync::atomic::Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }
}

/// The sector poller's descriptor, watched by the ticker of a resting sector. It holds the cell, which owns the
/// poller (set once, never replaced), so the descriptor stays open and the same for as long as this value lives.
struct PollFd<G: Game> {
    fd: RawFd,
    _owner: Arc<SectorCell<G>>,
}

impl<G: Game> AsRawFd for PollFd<G> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

/// Everything a sector actor is started with.
pub struct SectorArgs<G: Game> {
    pub game: Arc<G>,
    pub cell: Arc<SectorCell<G>>,
    pub directory: Arc<Directory<G>>,
    pub fabric: Arc<dyn Fabric<G>>,
    pub config: Arc<EngineConfig>,
    pub persister: Persister,
}

/// The sector actor.
pub struct SectorActor<G: Game>(std::marker::PhantomData<fn() -> G>);

impl<G: Game> Default for SectorActor<G> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

struct Meters {
    ticks: metrics::Counter,
    overruns: metrics::Counter,
    tick_seconds: metrics::Histogram,
    interval_seconds: metrics::Histogram,
    deltas: metrics::Counter,
    frames_sent: metrics::Counter,
    bytes_sent: metrics::Counter,
    dropped: metrics::Counter,
    keyframes: metrics::Counter,
    commands: metrics::Counter,
    inputs: metrics::Counter,
    dilated_ticks: metrics::Counter,
}

impl Meters {
    fn new() -> Self {
        Self {
            ticks: metrics::counter!("orrery_ticks_total"),
            overruns: metrics::counter!("orrery_tick_overruns_total"),
            tick_seconds: metrics::histogram!("orrery_tick_duration_seconds"),
            interval_seconds: metrics::histogram!("orrery_tick_interval_seconds"),
            deltas: metrics::counter!("orrery_deltas_total"),
            frames_sent: metrics::counter!("orrery_delta_frames_sent_total"),
            bytes_sent: metrics::counter!("orrery_bytes_sent_total"),
            dropped: metrics::counter!("orrery_deltas_dropped_total"),
            keyframes: metrics::counter!("orrery_keyframes_sent_total"),
            commands: metrics::counter!("orrery_commands_total"),
            inputs: metrics::counter!("orrery_client_messages_total"),
            dilated_ticks: metrics::counter!("orrery_dilated_ticks_total"),
        }
    }
}

/// A running sector's state.
pub struct SectorState<G: Game> {
    game: Arc<G>,
    cell: Arc<SectorCell<G>>,
    fabric: Arc<dyn Fabric<G>>,
    directory: Arc<Directory<G>>,
    config: Arc<EngineConfig>,
    persister: Persister,
    state: G::Sector,
    seq: u64,
    tick: u64,
    subscribers: Vec<Arc<SessionLink>>,
    owes_keyframes: bool,
    last_tick: Option<Instant>,
    /// An interval between two simulated ticks longer than this is an overrun (1.5 periods at real time; the
    /// longest scheduled gap plus half a period when dilated).
    overrun_after: Duration,
    /// Time dilation: the factor, and which timer ticks simulate.
    dilation: Dilation,
    ticks_since_checkpoint: u64,
    last_snapshot: Instant,
    /// State changed since the last snapshot was handed to the persister.
    dirty: bool,
    ticker: Arc<Ticker>,
    meters: Meters,
    /// Scratch list of connections with input, reused every tick.
    ready: Vec<Arc<SessionLink>>,
    /// Whether this tick read a client message (WebSocket pings and pongs do not count: they change nothing).
    heard: bool,
    /// Ticks in a row that changed nothing, read nothing and owed nothing (see [`Ticker`]).
    quiet_ticks: u32,
    /// The work of the last [`TICK_TIMES`] ticks, in milliseconds (for the p99 the admin endpoints show).
    tick_times: VecDeque<f32>,
}

/// How many recent ticks the admin statistics' p99 is taken over.
const TICK_TIMES: usize = 256;

impl<G: Game> SectorState<G> {
    fn id(&self) -> SectorId {
        self.cell.id
    }

    /// The tick rate in force (an operator's, or the configured one).
    fn tick_hz(&self) -> u32 {
        self.cell.tick_hz(self.config.tick_hz)
    }

    fn tick_period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.tick_hz()))
    }

    /// The fixed step of one tick, in seconds.
    fn dt(&self) -> f32 {
        1.0 / self.tick_hz() as f32
    }

    fn paused_frame(&self) -> ServerFrame<G> {
        ServerFrame::new(
            None,
            ServerMessage::SectorPaused {
                sector: self.id(),
                paused: self.cell.is_paused(),
            },
        )
    }

    /// After the keyframe of a client entering the sector: `sector_paused`, if an operator paused it.
    fn tell_paused(&self, link: &SessionLink) {
        if self.cell.is_paused() {
            self.send_to(link, self.paused_frame());
        }
    }

    /// Sends `frame` to every subscriber (encoded once per encoding); returns how many it was written to.
    fn send_all(&self, frame: &ServerFrame<G>) -> usize {
        let mut frames = Encoded::new(frame);
        self.subscribers
            .iter()
            .filter(|l| l.conn.send(frames.get(l.encoding)))
            .count()
    }

    /// Pauses or resumes the sector and tells its subscribers (when it changed).
    fn set_paused(&mut self, paused: bool) {
        if self.cell.paused.swap(paused, Ordering::AcqRel) == paused {
            return;
        }
        info!(sector = %self.id(), name = %self.cell.name, paused, "sector paused by an operator");
        // The journal is replayed with one step size and one notion of time: start a fresh one.
        self.checkpoint();
        self.last_tick = None;
        self.quiet_ticks = 0;
        self.ticker.stir();
        self.ticker.set_awake(true);
        self.send_all(&self.paused_frame());
    }

    /// Changes the tick rate (and so the fixed step) from the next tick on.
    fn set_tick_hz(&mut self, hz: u32) {
        // The journal is replayed with the step of the rate it was recorded at: checkpoint first.
        self.checkpoint();
        self.cell.tick_hz.store(hz, Ordering::Release);
        self.directory.set_tick_hz(self.id(), hz);
        self.ticker.set_period(self.tick_period());
        // Dilation's budget is a share of the period: the new one's (at the factor the clients were last told).
        self.dilation = Dilation::new(
            tick_budget(&self.config, self.tick_period()),
            self.config.dilation_floor,
            self.cell.dilation() as f32,
        );
        self.last_tick = None;
        self.overrun_after = self.dilation.overrun_threshold(self.tick_period());
        self.ticker.stir();
        info!(sector = %self.id(), hz, "sector tick rate changed by an operator");
    }

    fn stats(&self) -> SectorStats {
        let mut times: Vec<f32> = self.tick_times.iter().copied().collect();
        times.sort_by(f32::total_cmp);
        let p99 = if times.is_empty() {
            0.0
        } else {
            f64::from(times[((times.len() as f64 * 0.99).ceil() as usize).clamp(1, times.len()) - 1])
        };
        SectorStats {
            paused: self.cell.is_paused(),
            ships: self.game.avatars(&self.state).len(),
            sessions: self.subscribers.len(),
            tick_p99_ms: (p99 * 1000.0).round() / 1000.0,
            overruns: self.cell.overruns(),
            last_snapshot_at: self.cell.last_snapshot_at(),
            tick_hz: self.tick_hz(),
            seq: self.seq,
            tick: self.tick,
        }
    }

    /// A paused sector's timer tick: reads its clients (pings and chat are answered, game commands refused) and
    /// sends owed keyframes, but does not advance. It rests (or, with no subscribers, sleeps) when nothing comes.
    fn paused_tick(&mut self) {
        self.heard = false;
        self.read_inputs();
        if self.owes_keyframes {
            self.send_owed_keyframes();
        }
        self.last_tick = None;
        self.quiet_ticks = if self.heard {
            0
        } else {
            self.quiet_ticks.saturating_add(1)
        };
        if self.quiet_ticks >= REST_AFTER_TICKS {
            if self.subscribers.is_empty() {
                self.ticker.set_awake(false);
            } else {
                self.ticker.rest();
            }
        }
    }

    /// Moves a subscribed session's ship to `to` through the transfer path of a warp.
    fn teleport(&mut self, session: uuid::Uuid, to: SectorId, at: Option<(f32, f32)>) -> Result<(), String> {
        let Some(link) = self.subscribers.iter().find(|l| l.session == session).cloned() else {
            return Err(format!("the session's ship is not in sector {}", self.id()));
        };
        if to == self.id() {
            return Err(format!("the ship is already in sector {to}"));
        }
        if !self.directory.has_sector(to) {
            return Err(format!("no sector {to}"));
        }
        let Some(mut avatar) = self.game.depart(&mut self.state, link.entity) else {
            return Err("the ship is not in its sector's state".into());
        };
        if let Some((x, y)) = at {
            if !self.game.place(&mut avatar, x, y) {
                // Put back as it was: this game has no positions to teleport to.
                self.game.admit(&mut self.state, avatar, now_millis());
                return Err("this game has no positions: teleport without `x` and `y`".into());
            }
        }
        self.cell.journal(JournalOp::Depart(link.entity));
        self.dirty = true;
        self.cell.note_change(now_millis);
        info!(from = %self.id(), %to, character = %link.character, "ship teleported by an operator");
        self.send_away(link, avatar, to, None);
        Ok(())
    }

    /// Hands a departed ship (already out of this sector's state) and its session to the fabric for sector `to`:
    /// the session stops reading this sector, and the transfer is posted in the directory until `to` takes it.
    fn send_away(&mut self, link: Arc<SessionLink>, avatar: G::Avatar, to: SectorId, req_id: Option<u64>) {
        self.unsubscribe(link.session);
        link.depart();
        let parcel = self.directory.post(Transfer {
            avatar,
            from: self.id(),
            to,
            link: Some(link),
            req_id,
        });
        self.fabric.transfer(parcel);
    }

    fn keyframe_frame(&self, req_id: Option<u64>, encoding: Encoding) -> Bytes {
        let frame = ServerFrame::<G>::new(
            req_id,
            ServerMessage::Keyframe {
                sector: self.id(),
                seq: self.seq,
                tick: self.tick,
                body: self.game.keyframe(&self.state),
            },
        );
        self.meters.keyframes.increment(1);
        encode_frame(&frame, encoding)
    }

    fn send_to(&self, link: &SessionLink, frame: ServerFrame<G>) {
        link.conn.send(&encode_frame(&frame, link.encoding));
    }

    fn dilation_frame(&self, factor: f64) -> ServerFrame<G> {
        ServerFrame::new(
            None,
            ServerMessage::TimeDilation {
                sector: self.id(),
                factor,
            },
        )
    }

    /// After the keyframe of a client entering the sector: the dilation factor, if the sector runs slow.
    fn tell_dilation(&self, link: &SessionLink) {
        let factor = self.cell.dilation();
        if factor < 1.0 {
            self.send_to(link, self.dilation_frame(factor));
        }
    }

    /// A timer tick: runs a simulated tick, or skips it when the sector is dilated; then tells subscribers the
    /// factor if it changed noticeably.
    fn on_timer(&mut self) {
        if self.cell.is_paused() {
            return self.paused_tick();
        }
        if self.dilation.on_timer() {
            self.run_tick();
        } else {
            self.meters.dilated_ticks.increment(1);
        }
        if let Some(factor) = self.dilation.announce() {
            self.announce_dilation(factor);
        }
    }

    fn announce_dilation(&mut self, factor: f64) {
        let was = self.cell.dilation();
        self.cell.dilation.store(factor.to_bits(), Ordering::Release);
        DilationBoard::global().set(self.cell.key(), factor);
        let work_ms = self.dilation.work().map_or(0.0, |w| w.as_secs_f64() * 1e3);
        if factor < 1.0 && was >= 1.0 {
            info!(sector = %self.id(), name = %self.cell.name, factor, work_ms, "sector dilates time");
        } else if factor >= 1.0 {
            info!(sector = %self.id(), name = %self.cell.name, "sector back to real time");
        } else {
            debug!(sector = %self.id(), factor, work_ms, "time dilation changed");
        }
        if self.subscribers.is_empty() {
            return;
        }
        let msg = self.dilation_frame(factor);
        let mut frames = Encoded::new(&msg);
        for l in &self.subscribers {
            l.conn.send(frames.get(l.encoding));
        }
    }

    fn subscribe(&mut self, link: Arc<SessionLink>) {
        self.subscribers.retain(|l| l.session != link.session);
        self.cell.io.lock().register(&link);
        self.subscribers.push(link);
        *self.cell.subscribers.lock() = self.subscribers.clone();
    }

    fn unsubscribe(&mut self, session: uuid::Uuid) {
        if let Some(link) = self.subscribers.iter().find(|l| l.session == session) {
            self.cell.io.lock().deregister(link);
        }
        self.subscribers.retain(|l| l.session != session);
        *self.cell.subscribers.lock() = self.subscribers.clone();
    }

    /// Reads every subscriber that has input and applies its messages, in the order each client sent them.
    fn read_inputs(&mut self) {
        if self.directory.is_draining() {
            // Shutting down: no new commands; what the clients sent waits unread until their sessions close.
            return;
        }
        let mut ready = std::mem::take(&mut self.ready);
        self.cell.io.lock().ready(&mut ready);
        for link in ready.drain(..) {
            self.read_link(&link);
        }
        self.ready = ready;
    }

    /// Constant time: a session's link names its ship's sector, and says when the ship is between sectors.
    fn is_here(&self, link: &SessionLink) -> bool {
        !link.in_transit() && link.sector() == self.id()
    }

    fn read_link(&mut self, link: &Arc<SessionLink>) {
        if !self.is_here(link) {
            return;
        }
        let more = link.input.lock().fill(&link.conn);
        loop {
            let input = link.input.lock().next::<G::Command>(&link.conn);
            match input {
                None => break,
                Some(Input::Ended) => {
                    // The session parks the ship (a `Leave`) and stops.
                    self.cell.io.lock().deregister(link);
                    link.input_ended();
                    return;
                }
                Some(Input::Message(decoded)) => {
                    self.heard = true;
                    self.meters.inputs.increment(1);
                    self.dispatch(link, decoded);
                }
            }
            if !self.is_here(link) {
                // It left on a warp: what it sent after the warp is read by the sector it arrives in.
                return;
            }
        }
        if more {
            self.cell.io.lock().carry.push(Arc::clone(link));
        }
    }

    /// Answers or applies one client message.
    fn dispatch(&mut self, link: &Arc<SessionLink>, decoded: Result<ClientFrame<G::Command>, DecodeError>) {
        let ClientFrame { id, msg } = match decoded {
            Ok(frame) => frame,
            Err(e) => return self.send_to(link, ServerFrame::error(e.id, e.code, e.message)),
        };
        match msg {
            ClientMessage::Ping => self.send_to(link, ServerFrame::new(id, ServerMessage::Pong)),
            ClientMessage::Game(command) => self.handle_command(Arc::clone(link), id, command),
            ClientMessage::Resync => {
                link.conn.send_keyframe(&self.keyframe_frame(id, link.encoding));
            }
            ClientMessage::Chat { channel, text } => {
                let text = text.trim();
                if text.is_empty() || text.len() > orrery_protocol::MAX_CHAT_TEXT {
                    return self.send_to(
                        link,
                        ServerFrame::error(
                            id,
                            codes::INVALID_CHAT,
                            format!("chat text must be 1 to {} bytes", orrery_protocol::MAX_CHAT_TEXT),
                        ),
                    );
                }
                if let Err(e) = orrery_protocol::text::check(text) {
                    metrics::counter!("orrery_text_refused_total", "what" => "chat").increment(1);
                    return self.send_to(
                        link,
                        ServerFrame::error(id, codes::INVALID_CHAT, format!("chat text: {e}")),
                    );
                }
                match channel {
                    ChatChannel::Global => self
                        .fabric
                        .global_chat(link.character, link.name.clone(), text.to_owned()),
                    ChatChannel::Sector => self.say_in_sector(link, text.to_owned()),
                }
            }
        }
    }

    fn say_in_sector(&self, link: &SessionLink, text: String) {
        let msg = ServerFrame::<G>::new(
            None,
            ServerMessage::Chat {
                channel: ChatChannel::Sector,
                from: link.character,
                name: link.name.clone(),
                text,
            },
        );
        let mut frames = Encoded::new(&msg);
        for l in &self.subscribers {
            l.conn.send(frames.get(l.encoding));
        }
    }

    fn run_tick(&mut self) {
        let started = Instant::now();
        if let Some(last) = self.last_tick {
            let interval = started.duration_since(last);
            self.meters.interval_seconds.record(interval.as_secs_f64());
            if interval > self.overrun_after {
                self.meters.overruns.increment(1);
                self.cell.overruns.fetch_add(1, Ordering::AcqRel);
                if self.persister.writing() {
                    // For telling storage's share of the overruns: compare with the share of the time writes are in
                    // flight (`orrery_snapshot_write_seconds_sum`).
                    metrics::counter!("orrery_tick_overruns_during_write_total").increment(1);
                }
                debug!(sector = %self.id(), interval_ms = interval.as_secs_f64() * 1e3, "tick overrun");
            }
        }
        self.last_tick = Some(started);
        self.heard = false;
        self.read_inputs();
        let dt = self.dt();
        let delta = self.game.tick(&mut self.state, dt);
        self.tick += 1;
        self.cell.journal(JournalOp::Tick);
        let changed = delta.is_some();
        if changed {
            self.dirty = true;
            self.cell.note_change(now_millis);
        }
        match delta {
            Some(delta) => self.fan_out(delta),
            None if self.owes_keyframes => self.send_owed_keyframes(),
            None => {}
        }
        self.ticks_since_checkpoint += 1;
        if self.ticks_since_checkpoint >= self.config.checkpoint_ticks {
            self.checkpoint();
        }
        let idle = !changed && self.subscribers.is_empty();
        // At rest: nothing moved and nobody sent anything, so the next tick cannot change anything either.
        let quiet = !changed
            && !self.heard
            && !self.owes_keyframes
            && !self.dilation.is_dilated()
            && self.cell.io.lock().carry.is_empty();
        self.quiet_ticks = if quiet { self.quiet_ticks.saturating_add(1) } else { 0 };
        let resting = !idle && self.quiet_ticks >= REST_AFTER_TICKS;
        // A state that did not change is not written again.
        if self.dirty && (idle || resting || self.last_snapshot.elapsed() >= self.config.snapshot_interval) {
            self.last_snapshot = Instant::now();
            // A state that cannot be encoded stays dirty: the next interval tries again.
            if let Ok(batch) = self.snapshot() {
                self.dirty = false;
                // Through the sector's slot: a slow store holds only its newest snapshot. While the store is not
                // taking writes, a snapshot goes without an acknowledgement: the persister holds every
                // acknowledgement until the store returns, and one per interval would pile up. The ledger rows it
                // carries stay owed, and its changes count in the lag, until a later write's acknowledgement.
                let captured = self.cell.captured();
                let ack: Option<Ack> = self.persister.available().then(|| {
                    let written = self.ledger_written(&batch);
                    Box::new(move |ok| {
                        written(ok);
                        captured(ok);
                    }) as Ack
                });
                self.persister.submit_latest(&self.cell.snapshot_slot, batch, ack);
            }
        }
        if idle {
            // Nothing to simulate and nobody watching: sleep until a ship enters.
            self.checkpoint();
            self.ticker.set_awake(false);
            self.last_tick = None;
            self.dilation.reset();
        } else if resting {
            // Subscribers, but nothing moving and no input: tick again when input or a message arrives. (The
            // journal of a resting sector grows by one entry per tick it still runs; `checkpoint_ticks` bounds it.)
            self.ticker.rest();
            self.last_tick = None;
        }
        self.meters.ticks.increment(1);
        // The whole tick's work (inputs, rules, fan-out): the one measurement dilation needs.
        let work = started.elapsed();
        self.meters.tick_seconds.record(work.as_secs_f64());
        if self.tick_times.len() == TICK_TIMES {
            self.tick_times.pop_front();
        }
        self.tick_times.push_back((work.as_secs_f64() * 1e3) as f32);
        #[cfg(test)]
        let work = work + tests::take_simulated_work();
        if !idle {
            self.dilation.observe(work);
        }
        self.overrun_after = self.dilation.overrun_threshold(self.tick_period());
    }

    fn fan_out(&mut self, delta: G::Delta) {
        self.seq += 1;
        self.meters.deltas.increment(1);
        if self.subscribers.is_empty() {
            return;
        }
        let msg = ServerFrame::<G>::new(
            None,
            ServerMessage::Delta {
                sector: self.id(),
                seq: self.seq,
                tick: self.tick,
                body: delta,
            },
        );
        let mut frames = Encoded::new(&msg);
        let mut keyframes: [Option<Bytes>; 2] = [None, None];
        let (mut sent, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
        for link in &self.subscribers {
            let s = slot(link.encoding);
            let frame = frames.get(link.encoding);
            match link.conn.offer_delta(frame) {
                Offer::Accepted => {
                    sent += 1;
                    bytes += frame.len() as u64;
                }
                Offer::Dropped => {
                    dropped += 1;
                    self.owes_keyframes = true;
                }
                Offer::WantsKeyframe => {
                    let k = keyframes[s].get_or_insert_with(|| self.keyframe_frame(None, link.encoding));
                    link.conn.send_keyframe(k);
                    bytes += k.len() as u64;
                }
                Offer::Closed => {}
            }
        }
        self.meters.frames_sent.increment(sent);
        self.meters.bytes_sent.increment(bytes);
        if dropped > 0 {
            self.meters.dropped.increment(dropped);
        }
    }

    fn send_owed_keyframes(&mut self) {
        let mut still_owed = false;
        let mut keyframes: [Option<Bytes>; 2] = [None, None];
        for link in &self.subscribers {
            if link.conn.wants_keyframe() {
                let k = keyframes[slot(link.encoding)].get_or_insert_with(|| self.keyframe_frame(None, link.encoding));
                link.conn.send_keyframe(k);
            } else if link.conn.pending_bytes() > 0 {
                still_owed = true;
            }
        }
        self.owes_keyframes = still_owed;
    }

    fn checkpoint(&mut self) {
        let mut rec = self.cell.recovery.lock();
        rec.checkpoint = self.state.clone();
        rec.seq = self.seq;
        rec.tick = self.tick;
        rec.journal.clear();
        self.ticks_since_checkpoint = 0;
    }

    /// The sector and its online ships, encoded for the store. A state that cannot be encoded is never written (an
    /// empty or partial blob would replace the last good snapshot): the failure is logged and counted, and the caller
    /// keeps the previous snapshot (and refuses a durable command).
    fn snapshot(&self) -> Result<PersistBatch, postcard::Error> {
        let failed = |what: &'static str, e: postcard::Error| {
            error!(sector = %self.id(), what, error = %e, "could not encode a snapshot; the last good one is kept");
            metrics::counter!("orrery_snapshot_encode_errors_total").increment(1);
            e
        };
        let state = postcard::to_allocvec(&self.state).map_err(|e| failed("sector", e))?;
        let mut avatars = Vec::new();
        for a in self.game.avatars(&self.state) {
            let id = self.game.avatar_id(&a);
            if let Some(link) = self.subscribers.iter().find(|l| l.entity == id) {
                avatars.push(ParkedAvatar {
                    character_id: link.character,
                    sector: self.id(),
                    avatar: postcard::to_allocvec(&a).map_err(|e| failed("avatar", e))?,
                });
            }
        }
        Ok(PersistBatch {
            sectors: vec![SectorSnapshot {
                sector: self.id(),
                seq: self.seq,
                tick: self.tick,
                state,
                epoch: SINGLE_NODE_EPOCH,
                format: G::SECTOR_FORMAT,
            }],
            avatars,
            ledger: self.cell.unwritten.lock().clone(),
        })
    }

    /// An acknowledgement that marks the batch's ledger transactions written once it is committed.
    fn ledger_written(&self, batch: &PersistBatch) -> impl FnOnce(bool) + Send + 'static {
        let ids: Vec<uuid::Uuid> = batch.ledger.iter().map(|t| t.id).collect();
        let cell = Arc::clone(&self.cell);
        move |ok| {
            if ok {
                cell.written(&ids);
            }
        }
    }

    /// Answers a command: its sender, or, for a keyed command, everyone waiting on its key.
    fn answer(
        &self,
        link: &SessionLink,
        req_id: Option<u64>,
        key: Option<&str>,
        frame: impl Fn(Option<u64>) -> ServerFrame<G>,
    ) {
        match key {
            Some(key) => self
                .directory
                .keys
                .finish(link.character, key, |id, encoding| encode_frame(&frame(id), encoding)),
            None => self.send_to(link, frame(req_id)),
        }
    }

    /// Whether the session's ship is here; if not (it left on a warp a moment ago), tells the client so.
    fn check_here(&self, link: &SessionLink, req_id: Option<u64>) -> bool {
        let here = self.is_here(link);
        if !here {
            self.send_to(
                link,
                ServerFrame::error(
                    req_id,
                    orrery_protocol::codes::WARP_IN_PROGRESS,
                    "your ship is between sectors; wait for `warped`",
                ),
            );
        }
        here
    }

    fn handle_command(&mut self, link: Arc<SessionLink>, req_id: Option<u64>, command: G::Command) {
        if !self.check_here(&link, req_id) {
            return;
        }
        if let Some(key) = self.game.command_key(&command) {
            if key.is_empty() || key.len() > MAX_COMMAND_KEY {
                let message = format!("a command key must be 1 to {MAX_COMMAND_KEY} bytes, got {}", key.len());
                return self.send_to(&link, ServerFrame::error(req_id, codes::INVALID_KEY, message));
            }
            // Refused at once while the store is down, rather than after a lookup that would time out.
            if self.game.durable(&command) && !self.persister.available() {
                return self.refuse_unavailable(&link, req_id, None);
            }
            let key = key.to_owned();
            let waiter = Waiter {
                link: Arc::clone(&link),
                req_id,
            };
            // A repeat of a keyed command still in flight waits for its answer.
            if self.directory.keys.begin(link.character, &key, waiter) {
                self.look_up_key(link, req_id, command, key);
            }
            return;
        }
        self.apply_command(link, req_id, command, None);
    }

    /// Asks the store, off the sector, whether a keyed command was applied before; the answer comes back as
    /// [`SectorMsg::Keyed`] to the sector the ship is in by then.
    fn look_up_key(&self, link: Arc<SessionLink>, req_id: Option<u64>, command: G::Command, key: String) {
        let store = self.persister.store();
        let directory = Arc::clone(&self.directory);
        tokio::spawn(async move {
            let found = match &store {
                Some(store) => store.keyed_reply(link.character, &key).await.map_err(|e| e.to_string()),
                None => Ok(None),
            };
            let character = link.character;
            let sector = (!link.in_transit()).then(|| directory.sector(link.sector())).flatten();
            let delivered = sector.is_some_and(|sector| {
                sector
                    .cast(SectorMsg::Keyed {
                        link,
                        req_id,
                        command,
                        key: key.clone(),
                        found,
                    })
                    .is_ok()
            });
            if !delivered {
                directory.keys.finish(character, &key, |id, encoding| {
                    let frame = ServerFrame::<G>::error(
                        id,
                        codes::SECTOR_UNAVAILABLE,
                        "your ship's sector could not take the command; retry with the same key",
                    );
                    encode_frame(&frame, encoding)
                });
            }
        });
    }

    /// A keyed command after the store was asked about its key.
    fn keyed(
        &mut self,
        link: Arc<SessionLink>,
        req_id: Option<u64>,
        command: G::Command,
        key: String,
        found: Result<Option<Vec<u8>>, String>,
    ) {
        match found {
            Err(e) => {
                warn!(error = %e, "could not look up a command key");
                self.answer(&link, req_id, Some(&key), |id| {
                    ServerFrame::error(
                        id,
                        codes::STORAGE_UNAVAILABLE,
                        "the database cannot be read right now; nothing was applied, retry with the same key",
                    )
                });
            }
            Ok(Some(reply)) => {
                metrics::counter!("orrery_command_key_repeats_total").increment(1);
                match postcard::from_bytes::<G::Event>(&reply) {
                    Ok(event) => self.answer(&link, req_id, Some(&key), |id| {
                        ServerFrame::new(id, ServerMessage::Game(event.clone()))
                    }),
                    Err(e) => {
                        error!(error = %e, "a stored reply could not be decoded");
                        self.answer(&link, req_id, Some(&key), |id| {
                            ServerFrame::error(
                                id,
                                codes::INTERNAL,
                                "this key's command was applied, but its reply cannot be read",
                            )
                        });
                    }
                }
            }
            Ok(None) if !self.is_here(&link) => self.answer(&link, req_id, Some(&key), |id| {
                ServerFrame::error(
                    id,
                    codes::WARP_IN_PROGRESS,
                    "your ship is between sectors; wait for `warped`",
                )
            }),
            Ok(None) => self.apply_command(link, req_id, command, Some(key)),
        }
    }

    /// Refuses a durable command while the store does not take writes (it changed nothing).
    fn refuse_unavailable(&self, link: &SessionLink, req_id: Option<u64>, key: Option<&str>) {
        metrics::counter!("orrery_commands_refused_total", "reason" => "storage_unavailable").increment(1);
        self.answer(link, req_id, key, |id| {
            ServerFrame::error(
                id,
                codes::STORAGE_UNAVAILABLE,
                "the database cannot be written right now; nothing was applied, retry later",
            )
        });
    }

    fn apply_command(&mut self, link: Arc<SessionLink>, req_id: Option<u64>, command: G::Command, key: Option<String>) {
        if self.cell.is_paused() {
            metrics::counter!("orrery_commands_refused_total", "reason" => "sector_paused").increment(1);
            return self.answer(&link, req_id, key.as_deref(), |id| {
                ServerFrame::error(
                    id,
                    codes::SECTOR_PAUSED,
                    "this sector is paused by an operator; nothing was applied, retry after `sector_paused` says \
                     `paused: false`",
                )
            });
        }
        if !link.nexus_allowed() {
            if let Some(to) = self.game.command_destination(&command) {
                if self.directory.in_nexus(to, || self.game.layout()) {
                    metrics::counter!("orrery_commands_refused_total", "reason" => "citizenship_required").increment(1);
                    return self.answer(&link, req_id, key.as_deref(), |id| {
                        ServerFrame::error(
                            id,
                            codes::CITIZENSHIP_REQUIRED,
                            "the nexus region is open to galactic citizens only (capability `galactic_citizen`)",
                        )
                    });
                }
            }
        }
        let now = now_millis();
        self.meters.commands.increment(1);
        let durable = self.game.durable(&command);
        if durable && !self.persister.available() {
            return self.refuse_unavailable(&link, req_id, key.as_deref());
        }
        // A command may change what deltas do not show (credits, cargo): the next snapshot interval writes it.
        self.dirty = true;
        self.cell.note_change(|| now);
        match self.game.handle(&mut self.state, link.entity, command.clone(), now) {
            Ok(outcome) => {
                // Named only for posted commands (a thrust is on the per-input path).
                let kind = matches!(outcome, Outcome::Posted { .. }).then(|| command_kind(&command));
                self.cell.journal(JournalOp::Command {
                    who: link.entity,
                    command,
                    now,
                });
                match outcome {
                    Outcome::Posted { reply, postings } => {
                        let kind = kind.unwrap_or_default();
                        let tx = self.transaction(&link, kind, key.as_deref(), &reply, &postings, now);
                        self.reply_when_durable(link, req_id, Some(reply), Some(tx), key);
                    }
                    Outcome::Reply(reply) if durable => self.reply_when_durable(link, req_id, reply, None, key),
                    Outcome::Reply(reply) => match (reply, key) {
                        (Some(event), key) => self.answer(&link, req_id, key.as_deref(), |id| {
                            ServerFrame::new(id, ServerMessage::Game(event.clone()))
                        }),
                        (None, Some(key)) => self.directory.keys.finish(link.character, &key, |_, _| Bytes::new()),
                        (None, None) => {}
                    },
                    Outcome::Transfer { avatar, to } => {
                        if let Some(key) = key {
                            self.directory.keys.finish(link.character, &key, |_, _| Bytes::new());
                        }
                        debug!(from = %self.id(), %to, "ship leaves sector");
                        self.send_away(link, avatar, to, req_id);
                    }
                }
            }
            Err(e) => self.answer(&link, req_id, key.as_deref(), |id| {
                ServerFrame::error(id, e.code(), e.to_string())
            }),
        }
    }

    /// The ledger transaction of a command's postings. A keyed command's id comes from its character and key (so
    /// it is stored once), and its reply is stored with it for repeats.
    fn transaction(
        &self,
        link: &SessionLink,
        kind: String,
        key: Option<&str>,
        reply: &G::Event,
        postings: &[orrery_engine::Posting],
        now: i64,
    ) -> LedgerTx {
        if !orrery_engine::ledger::balanced(postings) {
            error!(sector = %self.id(), ?postings, "the rules posted an unbalanced transaction");
            metrics::counter!("orrery_ledger_unbalanced_total").increment(1);
        }
        let character_of = |entity: EntityId| {
            if entity == link.entity {
                link.character
            } else {
                self.subscribers
                    .iter()
                    .find(|l| l.entity == entity)
                    .map_or(entity, |l| l.character)
            }
        };
        LedgerTx {
            id: key.map_or_else(uuid::Uuid::new_v4, |k| ledger::keyed_tx_id(link.character, k)),
            at: now,
            kind,
            sector: Some(self.id()),
            character: Some(link.character),
            key: key.map(str::to_owned),
            reply: key.and_then(|_| postcard::to_allocvec(reply).ok()),
            entries: ledger::entries(postings, character_of),
        }
    }

    /// Writes the sector (with every ship in it, and `tx`) through the persister and sends the reply once it is on
    /// disk. The sector does not wait: it goes on ticking while the write is in flight. A transaction whose write
    /// fails stays owed: the sector's next writes carry it.
    fn reply_when_durable(
        &mut self,
        link: Arc<SessionLink>,
        req_id: Option<u64>,
        reply: Option<G::Event>,
        tx: Option<LedgerTx>,
        key: Option<String>,
    ) {
        if let Some(tx) = tx {
            self.cell.unwritten.lock().push(tx);
        }
        let failed = |id| {
            ServerFrame::<G>::error(
                id,
                codes::INTERNAL,
                "the change could not be saved; it may not survive a restart",
            )
        };
        let Ok(batch) = self.snapshot() else {
            return self.answer(&link, req_id, key.as_deref(), failed);
        };
        let written = self.ledger_written(&batch);
        let captured = self.cell.captured();
        let directory = Arc::clone(&self.directory);
        let ack: Ack = Box::new(move |ok| {
            written(ok);
            captured(ok);
            let frame = |id| match (ok, &reply) {
                (true, Some(event)) => Some(ServerFrame::<G>::new(id, ServerMessage::Game(event.clone()))),
                (true, None) => None,
                (false, _) => Some(failed(id)),
            };
            match key {
                Some(key) => directory.keys.finish(link.character, &key, |id, encoding| {
                    frame(id).map_or_else(Bytes::new, |f| encode_frame(&f, encoding))
                }),
                None => {
                    if let Some(f) = frame(req_id) {
                        link.conn.send(&encode_frame(&f, link.encoding));
                    }
                }
            }
        });
        self.persister.submit_durable(batch, ack);
    }

    fn admit(&mut self, parcel: Parcel) {
        // A duplicate or stale handle finds nothing: the ship was taken already, or sent back to its origin.
        let Some(t) = self.directory.take_parcel(parcel, self.id()) else {
            return;
        };
        self.ticker.set_awake(true);
        let now = now_millis();
        self.game.admit(&mut self.state, t.avatar.clone(), now);
        self.cell.journal(JournalOp::Admit { avatar: t.avatar, now });
        if let Some(link) = t.link {
            link.arrive(self.id());
            self.send_to(
                &link,
                ServerFrame::new(t.req_id, ServerMessage::Warped { from: t.from, to: t.to }),
            );
            link.conn.send_keyframe(&self.keyframe_frame(None, link.encoding));
            self.tell_dilation(&link);
            self.tell_paused(&link);
            self.subscribe(link);
        }
    }
}

/// The name of a command's variant (`trade`), from its serialized form; `command` if it has none.
fn command_kind<C: serde::Serialize>(command: &C) -> String {
    match serde_json::to_value(command) {
        Ok(serde_json::Value::Object(map)) if map.len() == 1 => map.keys().next().cloned().unwrap_or_default(),
        Ok(serde_json::Value::String(name)) => name,
        _ => "command".to_owned(),
    }
}

/// The work budget of one simulated tick at tick period `period` (`tick_budget` of it; the configured rate's
/// budget is `EngineConfig::tick_budget`).
fn tick_budget(config: &EngineConfig, period: Duration) -> Duration {
    period.mul_f64(f64::from(config.tick_budget.max(0.0)))
}

/// Rebuilds a sector's state from its cell: the checkpoint with the journal replayed on it. The last value says
/// whether there was a journal to replay (otherwise the state is the checkpoint).
fn recover<G: Game>(game: &G, cell: &SectorCell<G>, dt: f32) -> (G::Sector, u64, u64, bool) {
    let rec = cell.recovery.lock();
    let replayed = !rec.journal.is_empty();
    let mut state = rec.checkpoint.clone();
    let (mut seq, mut tick) = (rec.seq, rec.tick);
    for op in &rec.journal {
        match op {
            JournalOp::Tick => {
                if game.tick(&mut state, dt).is_some() {
                    seq += 1;
                }
                tick += 1;
            }
            JournalOp::Command { who, command, now } => {
                let _ = game.handle(&mut state, *who, command.clone(), *now);
            }
            JournalOp::Admit { avatar, now } => game.admit(&mut state, avatar.clone(), *now),
            JournalOp::Depart(id) => {
                let _ = game.depart(&mut state, *id);
            }
        }
    }
    (state, seq, tick, replayed)
}

impl<G: Game> Actor for SectorActor<G> {
    type Msg = SectorMsg<G>;
    type State = SectorState<G>;
    type Arguments = SectorArgs<G>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let dt = 1.0 / args.cell.tick_hz(args.config.tick_hz) as f32;
        let (state, seq, tick, replayed) = recover(args.game.as_ref(), &args.cell, dt);
        let restarted = {
            let mut starts = args.cell.starts.lock();
            *starts += 1;
            *starts > 1
        };
        let subscribers = args.cell.subscribers.lock().clone();
        if !restarted {
            // What the sector's stations opened with, owed to the ledger until the sector's first write.
            let entries = ledger::entries(&args.game.sector_opening(&state), |entity| entity);
            let id = ledger::sector_opening_id(args.cell.id);
            if let Some(tx) = ledger::opening(id, now_millis(), Some(args.cell.id), None, entries) {
                args.cell.unwritten.lock().push(tx);
            }
        }
        // Periodic snapshots at staggered phases (from the id), like the ticks: sectors started together would
        // otherwise all queue theirs in the same tick, every interval, and the store's burst of work (on the same
        // core) would delay their ticks.
        let every = args.config.snapshot_interval.as_nanos().max(1);
        let phase = Duration::from_nanos((args.cell.id.as_u128() % every) as u64);
        let last_snapshot = Instant::now().checked_sub(phase).unwrap_or_else(Instant::now);
        // A restarted sector resumes at the factor its subscribers were last told.
        let period = Duration::from_secs_f64(1.0 / f64::from(args.cell.tick_hz(args.config.tick_hz)));
        let dilation = Dilation::new(
            tick_budget(&args.config, period),
            args.config.dilation_floor,
            args.cell.dilation() as f32,
        );
        let mut s = SectorState {
            game: args.game,
            cell: args.cell,
            fabric: args.fabric,
            directory: Arc::clone(&args.directory),
            config: args.config,
            persister: args.persister,
            state,
            seq,
            tick,
            subscribers,
            owes_keyframes: false,
            last_tick: None,
            overrun_after: Duration::ZERO, // set below, from `dilation`
            dilation,
            ticks_since_checkpoint: 0,
            last_snapshot,
            dirty: false,
            ticker: Arc::new(Ticker::default()),
            meters: Meters::new(),
            ready: Vec::new(),
            heard: false,
            quiet_ticks: 0,
            tick_times: VecDeque::with_capacity(TICK_TIMES),
        };
        s.ticker.set_period(s.tick_period());
        {
            let mut io = s.cell.io.lock();
            if io.poll.is_none() {
                io.poll = Some(mio::Poll::new()?);
                let links: Vec<_> = io.links.values().cloned().collect();
                for link in &links {
                    io.register(link);
                }
            }
            if restarted {
                // Readiness reported to the actor that crashed may not have been acted on.
                let links: Vec<_> = io.links.values().cloned().collect();
                io.carry.extend(links);
            }
        }
        s.overrun_after = s.dilation.overrun_threshold(s.tick_period());
        if s.dilation.is_dilated() {
            DilationBoard::global().set(s.cell.key(), s.cell.dilation());
        }
        // A fresh checkpoint makes the replayed journal permanent (with no journal, the checkpoint is the state).
        if replayed {
            s.checkpoint();
        }
        if restarted {
            info!(sector = %s.id(), name = %s.cell.name, seq, "sector restarted from its last state");
            let mut keyframes: [Option<Bytes>; 2] = [None, None];
            for link in &s.subscribers {
                let k = keyframes[slot(link.encoding)].get_or_insert_with(|| s.keyframe_frame(None, link.encoding));
                link.conn.send_keyframe(k);
            }
        }
        args.directory.set_sector_actor(s.id(), Some(myself));
        Ok(s)
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // Awake sectors tick at phases spread evenly over the period (crate::phase), so that their fan-outs do not
        // land at once; a sleeping sector gives its phase back.
        let ticker = Arc::clone(&state.ticker);
        ticker.set_awake(true);
        // The poller's descriptor turns readable when a subscriber's connection has input: what ends a rest.
        let poll_fd = {
            let io = state.cell.io.lock();
            io.poll.as_ref().map(|p| PollFd {
                fd: p.as_raw_fd(),
                _owner: Arc::clone(&state.cell),
            })
        };
        // `AsyncFd::with_interest` is deprecated for I/O safety (the descriptor must stay open while registered):
        // `PollFd` guarantees that by owning the cell that owns the poller, and `unsafe` is forbidden here.
        #[allow(deprecated)]
        let input_ready = poll_fd.and_then(|fd| {
            tokio::io::unix::AsyncFd::with_interest(fd, tokio::io::Interest::READABLE)
                .map_err(|e| warn!(error = %e, "resting sectors will wake only on messages and every second"))
                .ok()
        });
        tokio::spawn(async move {
            let wheel = PhaseWheel::global();
            let phased = |slot: &PhaseSlot<'_>, period: Duration| {
                let start = tokio::time::Instant::now() + slot.delay_from(Instant::now(), period);
                let mut interval = tokio::time::interval_at(start, period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                interval
            };
            let mut slot = wheel.acquire();
            let mut period = ticker.period();
            let mut interval = phased(&slot, period);
            loop {
                interval.tick().await;
                if ticker.period() != period {
                    // An operator changed the tick rate.
                    period = ticker.period();
                    interval = phased(&slot, period);
                }
                if !ticker.is_awake() {
                    drop(slot);
                    ticker.wake.notified().await;
                    slot = wheel.acquire();
                    period = ticker.period();
                    interval = phased(&slot, period);
                    continue;
                }
                if ticker.is_resting() {
                    let input = async {
                        match &input_ready {
                            Some(fd) => match fd.readable().await {
                                // The sector reads the poller itself, at the tick this wakes.
                                Ok(mut guard) => guard.clear_ready(),
                                Err(_) => std::future::pending().await,
                            },
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        () = ticker.wake.notified() => {}
                        () = input => {}
                        () = tokio::time::sleep(REST_CHECK) => {}
                    }
                    ticker.resting.store(false, std::sync::atomic::Ordering::Release);
                    // Tick now, then at the slot's phase again (not a burst of the ticks missed while resting).
                    period = ticker.period();
                    interval = phased(&slot, period);
                }
                if myself.cast(SectorMsg::Tick).is_err() {
                    break;
                }
            }
        });
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // A stopped sector is not dilated; a restarted one puts itself back on the board.
        DilationBoard::global().set(state.cell.key(), 1.0);
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, SectorMsg::Tick) {
            state.ticker.stir();
        }
        match msg {
            SectorMsg::Tick => state.on_timer(),
            SectorMsg::Enter { avatar, link, reply } => {
                state.ticker.set_awake(true);
                let now = now_millis();
                state.game.admit(&mut state.state, avatar.clone(), now);
                state.cell.journal(JournalOp::Admit { avatar, now });
                link.arrive(state.id());
                link.conn.send_keyframe(&state.keyframe_frame(None, link.encoding));
                state.tell_dilation(&link);
                state.tell_paused(&link);
                state.subscribe(link);
                let _ = reply.send(());
            }
            SectorMsg::Leave { entity, session, reply } => {
                state.unsubscribe(session);
                let avatar = state.game.depart(&mut state.state, entity);
                if avatar.is_some() {
                    state.cell.journal(JournalOp::Depart(entity));
                }
                let _ = reply.send(avatar);
            }
            SectorMsg::Command { link, req_id, command } => state.handle_command(link, req_id, command),
            SectorMsg::Keyed {
                link,
                req_id,
                command,
                key,
                found,
            } => state.keyed(link, req_id, command, key, found),
            SectorMsg::Admit(parcel) => state.admit(parcel),
            SectorMsg::Snapshot(reply) => {
                state.checkpoint();
                // An empty batch leaves the sector's last good snapshot in place.
                let _ = reply.send(state.snapshot().unwrap_or_default());
            }
            SectorMsg::InjectCrash => {
                if state.config.debug_hooks {
                    warn!(sector = %state.id(), "injected crash");
                    panic!("injected crash in sector {}", state.id());
                }
            }
            SectorMsg::Pause { paused, reply } => {
                state.set_paused(paused);
                let _ = reply.send(state.cell.is_paused());
            }
            SectorMsg::SetTickRate { hz, reply } => {
                if hz > 0 {
                    state.set_tick_hz(hz);
                }
                let _ = reply.send(state.tick_hz());
            }
            SectorMsg::Stats(reply) => {
                let _ = reply.send(state.stats());
            }
            SectorMsg::Inspect(reply) => {
                let keyframe = serde_json::to_value(state.game.keyframe(&state.state)).unwrap_or_else(
                    |e| serde_json::json!({ "error": format!("the keyframe could not be encoded as JSON: {e}") }),
                );
                let _ = reply.send((keyframe, state.stats()));
            }
            SectorMsg::Notice { scope, text, reply } => {
                let n = state.send_all(&ServerFrame::new(None, ServerMessage::Notice { scope, text }));
                let _ = reply.send(n);
            }
            SectorMsg::Teleport { session, to, at, reply } => {
                let _ = reply.send(state.teleport(session, to, at));
            }
        }
        Ok(())
    }
}
