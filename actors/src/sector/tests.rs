//! Sector actor tests on tokio's paused clock: time dilation under artificial load, its recovery, what subscribers
//! receive, crash recovery of a dilated sector, and the operator controls pause (across a crash) and tick rate.
//!
//! Tick work is made expensive without burning CPU or reading the wall clock: the test game's `tick` adds
//! *simulated* work to a thread-local counter that `run_tick` adds to what it measured (test builds only).

use std::cell::Cell;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orrery_engine::{CharacterSeed, EntityId, Game, GameError, Millis, Outcome, RegionLayout, SectorId};
use orrery_protocol::{codec, Encoding, ServerFrame, ServerMessage};
use ractor::{Actor, ActorRef};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{SectorActor, SectorArgs, SectorCell, SectorMsg};
use crate::config::EngineConfig;
use crate::directory::{Directory, Fabric, Parcel, SessionLink};
use crate::net::{Conn, OutboxLimits};
use crate::persist::Persister;

thread_local! {
    static SIMULATED_WORK: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// Simulated work added by the test game during the current tick (and cleared).
pub(super) fn take_simulated_work() -> Duration {
    SIMULATED_WORK.with(|w| w.replace(Duration::ZERO))
}

/// A test game: a dial that turns by `dt` every tick and reports it in every delta. Each tick "costs" `cost_us`
/// microseconds of simulated work.
#[derive(Debug, Default)]
struct Clockwork {
    cost_us: AtomicU64,
    /// The dial stands still: ticks change nothing (a sector at rest).
    still: std::sync::atomic::AtomicBool,
    /// Simulated ticks so far.
    ticks: AtomicU64,
}

impl Clockwork {
    fn set_cost(&self, cost: Duration) {
        self.cost_us.store(cost.as_micros() as u64, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Dial {
    #[serde(serialize_with = "jammable")]
    angle: f64,
    hands: Vec<Uuid>,
}

thread_local! {
    /// While set (on the test's thread, where its paused runtime runs the actor), a dial cannot be encoded.
    static JAMMED: Cell<bool> = const { Cell::new(false) };
}

fn jammable<S: serde::Serializer>(angle: &f64, s: S) -> Result<S::Ok, S::Error> {
    if JAMMED.with(Cell::get) {
        return Err(serde::ser::Error::custom("the dial is jammed"));
    }
    s.serialize_f64(*angle)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Turned {
    angle: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hand {
    id: Uuid,
}

#[derive(Debug, thiserror::Error)]
#[error("refused")]
struct Refused;

impl GameError for Refused {
    fn code(&self) -> &'static str {
        "refused"
    }
}

impl Game for Clockwork {
    type Sector = Dial;
    type Avatar = Hand;
    type Command = u32;
    type Event = Turned;
    type Keyframe = Dial;
    type Delta = Turned;
    type Profile = Turned;
    type Error = Refused;

    fn layout(&self) -> Vec<RegionLayout> {
        Vec::new()
    }
    fn new_sector(&self, _id: SectorId) -> Dial {
        Dial {
            angle: 0.0,
            hands: Vec::new(),
        }
    }
    fn spawn(&self, seed: &CharacterSeed, _now: Millis) -> (SectorId, Hand) {
        (Uuid::nil(), Hand { id: seed.character_id })
    }
    fn avatar_id(&self, avatar: &Hand) -> EntityId {
        avatar.id
    }
    fn profile(&self, _avatar: &Hand, _now: Millis) -> Turned {
        Turned { angle: 0.0 }
    }
    fn admit(&self, sector: &mut Dial, avatar: Hand, _now: Millis) {
        sector.hands.push(avatar.id);
    }
    fn depart(&self, sector: &mut Dial, id: EntityId) -> Option<Hand> {
        let at = sector.hands.iter().position(|h| *h == id)?;
        Some(Hand {
            id: sector.hands.remove(at),
        })
    }
    fn avatars(&self, sector: &Dial) -> Vec<Hand> {
        sector.hands.iter().map(|&id| Hand { id }).collect()
    }
    fn handle(
        &self,
        _sector: &mut Dial,
        _who: EntityId,
        _command: u32,
        _now: Millis,
    ) -> Result<Outcome<Self>, Refused> {
        Err(Refused)
    }
    fn tick(&self, sector: &mut Dial, dt: f32) -> Option<Turned> {
        let cost = Duration::from_micros(self.cost_us.load(Ordering::Relaxed));
        SIMULATED_WORK.with(|w| w.set(w.get() + cost));
        self.ticks.fetch_add(1, Ordering::Relaxed);
        if self.still.load(Ordering::Relaxed) {
            return None;
        }
        sector.angle += f64::from(dt);
        Some(Turned { angle: sector.angle })
    }
    fn keyframe(&self, sector: &Dial) -> Dial {
        sector.clone()
    }
}

struct NoFabric;

impl Fabric<Clockwork> for NoFabric {
    fn transfer(&self, _parcel: Parcel) {}
    fn global_chat(&self, _from: Uuid, _name: String, _text: String) {}
}

type Frame = ServerFrame<Clockwork>;

/// A sector with one JSON subscriber, whose frames the test reads from the client end of a loopback socket.
struct Rig {
    game: Arc<Clockwork>,
    cell: Arc<SectorCell<Clockwork>>,
    directory: Arc<Directory<Clockwork>>,
    config: Arc<EngineConfig>,
    actor: ActorRef<SectorMsg<Clockwork>>,
    stopped: tokio::task::JoinHandle<()>,
    client: std::net::TcpStream,
    buf: Vec<u8>,
}

fn config() -> EngineConfig {
    EngineConfig {
        tick_hz: 20,
        // Only the explicit snapshot checkpoints: the crash test replays a long journal.
        checkpoint_ticks: 1_000_000,
        snapshot_interval: Duration::from_secs(3600),
        debug_hooks: true,
        tick_budget: 0.5,
        dilation_floor: 0.1,
        ..EngineConfig::default()
    }
}

impl Rig {
    async fn start() -> Rig {
        let game = Arc::new(Clockwork::default());
        let (id, region) = (Uuid::new_v4(), Uuid::new_v4());
        let cell = SectorCell::new(id, region, "Dial".into(), game.new_sector(id), 0, 0);
        let directory = Directory::new();
        directory.add_sector(id, region);
        let config = Arc::new(config());
        let (actor, stopped) = spawn(&game, &cell, &directory, &config).await;
        let client = enter(&actor, id, "Ada", Encoding::Json).await;
        client.set_nonblocking(true).unwrap();
        Rig {
            game,
            cell,
            directory,
            config,
            actor,
            stopped,
            client,
            buf: Vec::new(),
        }
    }

    /// Every complete frame the subscriber has received so far.
    fn frames(&mut self) -> Vec<Frame> {
        let mut chunk = [0u8; 65536];
        loop {
            match self.client.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("reading the subscriber's socket: {e}"),
            }
        }
        let mut out = Vec::new();
        loop {
            let b = &self.buf;
            if b.len() < 2 {
                break;
            }
            let (len, head) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
                127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize, 10),
                126 | 127 => break,
                n => (usize::from(n), 2),
            };
            if b.len() < head + len {
                break;
            }
            assert_eq!(b[0], 0x81, "a final text frame");
            let text = std::str::from_utf8(&b[head..head + len]).unwrap().to_owned();
            self.buf.drain(..head + len);
            out.push(codec::server_from_json::<Clockwork>(&text).expect("decodable frame"));
        }
        out
    }

    /// Lets `secs` of (paused, auto-advancing) time pass, reading the subscriber's frames every tick period.
    async fn run_for(&mut self, secs: f64) -> Vec<Frame> {
        let mut out = Vec::new();
        let steps = (secs * 20.0).round() as u32;
        for _ in 0..steps {
            tokio::time::sleep(Duration::from_millis(50)).await;
            out.extend(self.frames());
        }
        out
    }
}

/// A new character entering the sector over a loopback connection; returns the client end of the socket.
async fn enter(
    actor: &ActorRef<SectorMsg<Clockwork>>,
    sector: SectorId,
    name: &str,
    encoding: Encoding,
) -> std::net::TcpStream {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server_side, _) = listener.accept().unwrap();
    let conn = Conn::new(server_side, OutboxLimits::default()).unwrap();
    let character = Uuid::new_v4();
    let link = SessionLink::new(
        Uuid::new_v4(),
        character,
        name.into(),
        character,
        conn,
        encoding,
        sector,
    );
    actor
        .call(
            |reply| SectorMsg::Enter {
                avatar: Hand { id: character },
                link,
                reply,
            },
            None,
        )
        .await
        .unwrap();
    client
}

async fn spawn(
    game: &Arc<Clockwork>,
    cell: &Arc<SectorCell<Clockwork>>,
    directory: &Arc<Directory<Clockwork>>,
    config: &Arc<EngineConfig>,
) -> (ActorRef<SectorMsg<Clockwork>>, tokio::task::JoinHandle<()>) {
    let args = SectorArgs {
        game: Arc::clone(game),
        cell: Arc::clone(cell),
        directory: Arc::clone(directory),
        fabric: Arc::new(NoFabric),
        config: Arc::clone(config),
        persister: Persister::detached(),
    };
    Actor::spawn(None, SectorActor::<Clockwork>::default(), args)
        .await
        .expect("sector starts")
}

fn factors(frames: &[Frame]) -> Vec<f64> {
    frames
        .iter()
        .filter_map(|f| match f.msg {
            ServerMessage::TimeDilation { factor, .. } => Some(factor),
            _ => None,
        })
        .collect()
}

fn deltas(frames: &[Frame]) -> Vec<(u64, f64)> {
    frames
        .iter()
        .filter_map(|f| match &f.msg {
            ServerMessage::Delta { tick, body, .. } => Some((*tick, body.angle)),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_expensive_sector_dilates_to_the_floor_then_recovers_smoothly() {
    let mut rig = Rig::start().await;
    let join = rig.frames();
    assert!(matches!(join[0].msg, ServerMessage::Keyframe { .. }));
    assert!(factors(&join).is_empty(), "no time_dilation for a sector at real time");

    // Real time at first: every timer tick simulates.
    let frames = rig.run_for(2.0).await;
    assert!(factors(&frames).is_empty());
    let n = deltas(&frames).len();
    assert!((39..=41).contains(&n), "{n} deltas in 2 s at 20 Hz");

    // Each tick now costs 20 times its 25 ms budget: the factor falls to the floor (0.1) and no lower.
    rig.game.set_cost(Duration::from_millis(500));
    let frames = rig.run_for(5.0).await;
    let fell = factors(&frames);
    assert!(!fell.is_empty(), "subscribers are told");
    assert!(fell.windows(2).all(|w| w[1] < w[0]), "falling: {fell:?}");
    assert!(fell.iter().all(|&f| f >= 0.1), "never below the floor: {fell:?}");
    assert_eq!(*fell.last().unwrap(), 0.1, "{fell:?}");
    assert_eq!(rig.cell.dilation(), 0.1);
    // At the floor, two simulated ticks a second, each still one fixed step of game time.
    let frames = rig.run_for(10.0).await;
    assert!(factors(&frames).is_empty(), "no news while the factor holds");
    let d = deltas(&frames);
    assert!((19..=21).contains(&d.len()), "{} deltas in 10 s at factor 0.1", d.len());
    assert!(
        d.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "ticks advance one step each"
    );

    // The load goes away: a smooth climb back to exactly 1.
    rig.game.set_cost(Duration::ZERO);
    let frames = rig.run_for(15.0).await;
    let rose = factors(&frames);
    assert!(rose.len() >= 10, "a ramp in small steps, not a jump: {rose:?}");
    assert!(rose.windows(2).all(|w| w[1] > w[0]), "rising: {rose:?}");
    let mut prev = 0.1;
    for &f in &rose {
        assert!(f - prev <= 0.07, "step from {prev} to {f}: {rose:?}");
        prev = f;
    }
    assert_eq!(*rose.last().unwrap(), 1.0, "{rose:?}");
    assert_eq!(rig.cell.dilation(), 1.0);
    let frames = rig.run_for(2.0).await;
    let n = deltas(&frames).len();
    assert!((39..=41).contains(&n), "{n} deltas in 2 s, back at 20 Hz");
}

#[tokio::test(start_paused = true)]
async fn a_client_entering_a_dilated_sector_is_told_after_its_keyframe() {
    let mut rig = Rig::start().await;
    rig.game.set_cost(Duration::from_millis(100));
    let frames = rig.run_for(3.0).await;
    let told = *factors(&frames).last().expect("dilated");
    assert!((0.2..=0.3).contains(&told), "100 ms of work for a 25 ms budget: {told}");

    let mut client = enter(&rig.actor, rig.cell.id, "Bo", Encoding::Binary).await;
    // The keyframe, then time_dilation (binary frames: 0x82, a short length, the postcard payload).
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let mut head = [0u8; 2];
        client.read_exact(&mut head).unwrap();
        assert_eq!(head[0], 0x82);
        let len = match head[1] {
            126 => {
                let mut l = [0u8; 2];
                client.read_exact(&mut l).unwrap();
                usize::from(u16::from_be_bytes(l))
            }
            n => usize::from(n),
        };
        let mut payload = vec![0u8; len];
        client.read_exact(&mut payload).unwrap();
        let frame = codec::server_from_bin::<Clockwork>(&payload).unwrap();
        if let ServerMessage::TimeDilation { sector, factor } = frame.msg {
            assert_eq!((sector, factor), (rig.cell.id, told));
        }
        kinds.push(frame.msg.kind());
    }
    assert_eq!(kinds, ["keyframe", "time_dilation"]);
}

#[tokio::test(start_paused = true)]
async fn a_dilated_sector_replays_its_journal_to_the_same_state() {
    let mut rig = Rig::start().await;
    rig.game.set_cost(Duration::from_millis(100));
    rig.run_for(3.0).await;
    let factor = rig.cell.dilation();
    assert!(factor < 0.5, "{factor}");

    // A checkpoint, then dilated ticks journaled after it.
    let snap = rig.actor.call(SectorMsg::Snapshot, None).await.unwrap().unwrap();
    let s0 = &snap.sectors[0];
    let dial0: Dial = postcard::from_bytes(&s0.state).unwrap();
    let frames = rig.run_for(4.0).await;
    assert!(deltas(&frames).len() >= 10, "dilated ticks since the checkpoint");

    // The sector crashes; its supervisor would start it again from the cell.
    rig.actor.cast(SectorMsg::InjectCrash).unwrap();
    (&mut rig.stopped).await.unwrap();
    let before = deltas(&rig.frames());
    let (actor, stopped) = spawn(&rig.game, &rig.cell, &rig.directory, &rig.config).await;
    (rig.actor, rig.stopped) = (actor, stopped);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let after = rig.frames();
    let (tick, angle) = match &after.first().expect("a keyframe after the restart").msg {
        ServerMessage::Keyframe { tick, body, .. } => (*tick, body.angle),
        other => panic!("expected a keyframe, got {}", other.kind()),
    };
    // The replayed state is the one the last delta before the crash showed...
    let all: Vec<(u64, f64)> = deltas(&frames).into_iter().chain(before).collect();
    assert_eq!(*all.last().unwrap(), (tick, angle));
    // ...which is the checkpoint advanced by one fixed step per simulated tick, dilated or not.
    let dt = rig.config.dt();
    let mut expected = dial0.angle;
    for _ in s0.tick..tick {
        expected += f64::from(dt);
    }
    assert_eq!(angle, expected);
    // And the restarted sector resumes at the factor its subscribers were told, without telling them again.
    assert_eq!(rig.cell.dilation(), factor);
    assert!(factors(&after).is_empty());
    let frames = rig.run_for(2.0).await;
    assert!(factors(&frames).iter().all(|&f| f < 0.5), "still dilated");
    let d = deltas(&frames);
    assert_eq!(d.first().unwrap().0, tick + 1, "ticks continue from the replayed state");
}

/// A masked client text frame (RFC 6455 5.3), as a browser sends it.
fn masked_text(text: &str) -> Vec<u8> {
    let mask = [0x5au8, 0x13, 0xc7, 0x08];
    let payload = text.as_bytes();
    assert!(payload.len() < 126);
    let mut out = vec![0x81, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[tokio::test(start_paused = true)]
async fn a_sector_at_rest_stops_ticking_and_input_wakes_it_at_once() {
    use std::io::Write;
    let mut rig = Rig::start().await;
    let ticks = |rig: &Rig| rig.game.ticks.load(Ordering::Relaxed);
    rig.run_for(1.0).await;
    let moving = ticks(&rig);
    assert!(moving >= 19, "{moving} ticks in 1 s while the dial turns");

    // Nothing changes any more and nobody sends anything: after three quiet ticks the sector rests, with only
    // the 1 s safety tick left (20 a second otherwise).
    rig.game.still.store(true, Ordering::Relaxed);
    rig.run_for(1.0).await;
    let before = ticks(&rig);
    assert!(
        deltas(&rig.run_for(5.0).await).is_empty(),
        "nothing changed, nothing sent"
    );
    let rested = ticks(&rig) - before;
    assert!(rested <= 6, "{rested} ticks in 5 s at rest (100 when ticking)");

    // Input ends the rest at once, wherever the sector is between its safety ticks: a tick within two periods
    // each time, where waiting for the safety tick would take up to a second.
    let conn = Arc::clone(&rig.cell.subscribers.lock()[0].conn);
    let ping = orrery_protocol::ClientFrame::<u32>::new(Some(7), orrery_protocol::ClientMessage::Ping);
    let ping = masked_text(&codec::client_to_json(&ping));
    for pause in [0.35, 0.45, 0.6] {
        rig.run_for(pause).await;
        let before = ticks(&rig);
        rig.client.write_all(&ping).unwrap();
        // Game time stands still until the bytes are in the server's socket (loopback can lag under load).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !conn.heard_unread() {
            assert!(
                std::time::Instant::now() < deadline,
                "the ping never reached the server's socket"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            ticks(&rig) > before,
            "no tick within 100 ms of input to a resting sector"
        );
    }

    // A game that changes on its own while nobody sends anything is noticed by the safety tick, within a second,
    // and ticks at 20 Hz again from there.
    rig.game.still.store(false, Ordering::Relaxed);
    let before = ticks(&rig);
    rig.run_for(2.0).await;
    let n = ticks(&rig) - before;
    assert!(n >= 20, "{n} ticks in the 2 s after the dial turns again");
}

#[tokio::test(start_paused = true)]
async fn a_state_that_cannot_be_encoded_is_never_stored_and_never_sent_as_null() {
    use std::io::Write;
    let mut rig = Rig::start().await;
    rig.run_for(0.5).await;
    JAMMED.with(|j| j.set(true));

    // The snapshot is refused (the last good one stays in the store), not written as an empty blob.
    let snap = rig.actor.call(SectorMsg::Snapshot, None).await.unwrap().unwrap();
    assert!(
        snap.sectors.is_empty(),
        "an unencodable state was handed to the store ({} bytes)",
        snap.sectors[0].state.len()
    );

    // A keyframe that cannot be encoded is answered with an `internal` error carrying the request's id.
    let conn = Arc::clone(&rig.cell.subscribers.lock()[0].conn);
    let resync = orrery_protocol::ClientFrame::<u32>::new(Some(9), orrery_protocol::ClientMessage::Resync);
    rig.client
        .write_all(&masked_text(&codec::client_to_json(&resync)))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !conn.heard_unread() {
        assert!(
            std::time::Instant::now() < deadline,
            "the resync never reached the server"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut frames = rig.run_for(0.5).await;
    // What the sector wrote is in the kernel; loopback can hold small segments back for a few real milliseconds
    // (Nagle and delayed acknowledgements), which paused time does not wait for.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !frames
        .iter()
        .skip_while(|f| f.id != Some(9))
        .any(|f| f.msg.kind() == "delta")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no delta after the answer: {frames:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
        frames.extend(rig.frames());
    }
    let answer = frames
        .iter()
        .find(|f| f.id == Some(9))
        .expect("an answer to the resync");
    match &answer.msg {
        ServerMessage::Error { code, .. } => assert_eq!(code, "internal"),
        other => panic!("expected an internal error, got {}", other.kind()),
    }
    // Deltas (which carry no dial) keep flowing, and the state is stored again once it encodes.
    JAMMED.with(|j| j.set(false));
    let snap = rig.actor.call(SectorMsg::Snapshot, None).await.unwrap().unwrap();
    assert_eq!(snap.sectors.len(), 1);
}

#[test]
fn the_snapshot_lag_counts_from_the_oldest_change_not_known_to_be_committed() {
    let game = Clockwork::default();
    let id = Uuid::new_v4();
    let cell = SectorCell::<Clockwork>::new(id, Uuid::new_v4(), "Dial".into(), game.new_sector(id), 0, 0);
    assert_eq!(cell.snapshot_lag(5_000), 0.0, "nothing changed");
    cell.note_change(|| 1_000);
    cell.note_change(|| 2_000);
    assert_eq!(cell.snapshot_lag(4_000), 3.0, "from the oldest change");
    // Taken, not committed yet: still lagging from the same change.
    let first = cell.captured();
    cell.note_change(|| 6_000);
    assert_eq!(cell.snapshot_lag(7_000), 6.0);
    // A second snapshot, then the first one's commit: the second's changes are not known to be written.
    let second = cell.captured();
    first(true);
    assert_eq!(cell.snapshot_lag(7_000), 6.0, "the newer snapshot is not committed yet");
    // A failed write clears nothing; the newest one's commit clears everything.
    let third = cell.captured();
    second(false);
    assert_eq!(cell.snapshot_lag(8_000), 7.0);
    third(true);
    assert_eq!(cell.snapshot_lag(9_000), 0.0);
}

fn paused_flags(frames: &[Frame]) -> Vec<bool> {
    frames
        .iter()
        .filter_map(|f| match f.msg {
            ServerMessage::SectorPaused { paused, .. } => Some(paused),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_paused_sector_does_not_tick_tells_its_clients_and_stays_paused_across_a_crash() {
    let mut rig = Rig::start().await;
    let frames = rig.run_for(1.0).await;
    assert!(deltas(&frames).len() >= 15, "a running sector ticks");

    let paused = ractor::call!(rig.actor, |reply| SectorMsg::Pause { paused: true, reply }).unwrap();
    assert!(paused);
    let ticks = rig.game.ticks.load(Ordering::Relaxed);
    let frames = rig.run_for(2.0).await;
    assert_eq!(paused_flags(&frames), vec![true]);
    assert!(deltas(&frames).is_empty(), "no delta while paused");
    assert_eq!(
        rig.game.ticks.load(Ordering::Relaxed),
        ticks,
        "the rules are not ticked while paused"
    );
    let stats = ractor::call!(rig.actor, SectorMsg::Stats).unwrap();
    assert!(stats.paused);
    assert_eq!((stats.ships, stats.sessions), (1, 1));

    // A restarted actor (its supervisor starts it from the cell) is still paused.
    rig.actor.cast(SectorMsg::InjectCrash).unwrap();
    (&mut rig.stopped).await.unwrap();
    let (actor, stopped) = spawn(&rig.game, &rig.cell, &rig.directory, &rig.config).await;
    (rig.actor, rig.stopped) = (actor, stopped);
    let frames = rig.run_for(1.0).await;
    assert!(deltas(&frames).is_empty(), "still paused after the restart");
    assert_eq!(rig.game.ticks.load(Ordering::Relaxed), ticks);

    let paused = ractor::call!(rig.actor, |reply| SectorMsg::Pause { paused: false, reply }).unwrap();
    assert!(!paused);
    let frames = rig.run_for(1.0).await;
    assert_eq!(paused_flags(&frames), vec![false]);
    assert!(deltas(&frames).len() >= 15, "ticking again once resumed");
}

#[tokio::test(start_paused = true)]
async fn a_new_tick_rate_changes_how_often_and_by_how_much_the_sector_ticks() {
    let mut rig = Rig::start().await;
    rig.run_for(0.5).await;
    let hz = ractor::call!(rig.actor, |reply| SectorMsg::SetTickRate { hz: 5, reply }).unwrap();
    assert_eq!(hz, 5);
    assert_eq!(rig.directory.tick_hz(rig.cell.id), Some(5), "what `welcome` tells");
    rig.run_for(0.5).await;
    let frames = rig.run_for(4.0).await;
    let d = deltas(&frames);
    assert!((18..=22).contains(&d.len()), "{} deltas in 4 s at 5 Hz", d.len());
    for pair in d.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "one tick per delta");
        assert!(
            (pair[1].1 - pair[0].1 - 0.2).abs() < 1e-6,
            "each tick is a step of 1/5 s"
        );
    }
    assert_eq!(ractor::call!(rig.actor, SectorMsg::Stats).unwrap().tick_hz, 5);
}
