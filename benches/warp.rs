//! A warp handoff through the real actor tree: from the moment a `warp` command is handed to the source sector's
//! actor to the moment the client's socket has received `warped` from the target sector (which by then has admitted
//! the ship and subscribed the session).
//!
//! The node is the real one (`orrery_regions::Node` over an SQLite store in a temp dir, a small generated galaxy,
//! 20 Hz ticks). The session's reader is left out (it decodes the command and `cast`s it to the sector): the bench
//! plays its part with a `SessionLink` over a loopback TCP pair, as the server's WebSocket layer would build it, and
//! reads the client end with blocking reads. The ship alternates between two neighbouring
//! sectors: `same_region` (source sector -> region supervisor -> target sector) and `cross_region_via_nexus`
//! (region gate -> its region supervisor -> nexus -> the nexus region's supervisor -> hub sector, and back).
//!
//! Run: `cargo bench --bench warp`.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use orrery_actors::net::{Conn, OutboxLimits};
use orrery_actors::sector::SectorMsg;
use orrery_actors::store::sqlite::SqliteStore;
use orrery_actors::store::{now_millis, SharedStore};
use orrery_actors::{EngineConfig, SessionLink, Transfer};
use orrery_engine::galaxy::{generate, Galaxy, GenerateParams};
use orrery_engine::spacetrade::{Command, Rules, SpaceTrade};
use orrery_engine::turns::TurnConfig;
use orrery_engine::{CharacterSeed, Game, SectorId};
use orrery_protocol::Encoding;
use orrery_regions::Node;
use uuid::Uuid;

/// How long one warp may take before the bench gives up.
const WARP_TIMEOUT: Duration = Duration::from_secs(5);

/// The client end of a connection: reads server frames (unmasked) until a `warped` arrives.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Reads until a binary `warped` frame without request id has been received; other frames are skipped.
    fn wait_warped(&mut self) {
        loop {
            while let Some((opcode, start, end)) = self.next_frame() {
                // postcard of ServerFrame: `id` None = 0x00, then the variant index of `ServerMessage::Warped` = 3.
                let warped = opcode == 2 && end - start >= 2 && self.buf[start] == 0 && self.buf[start + 1] == 3;
                self.buf.drain(..end);
                if warped {
                    return;
                }
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("read from the server (timed out?)");
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The first complete frame in the buffer: (opcode, payload start, frame end).
    fn next_frame(&self) -> Option<(u8, usize, usize)> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let (len, at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().ok()?) as usize, 10),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        (b.len() >= at + len).then_some((b[0] & 0x0f, at, at + len))
    }
}

/// A ship in the node with a connection that follows it.
struct Pilot {
    link: Arc<SessionLink>,
    client: Client,
    at: SectorId,
}

/// Puts a fresh ship into `sector` with a loopback connection (binary encoding) subscribed to it.
fn board(rt: &tokio::runtime::Runtime, node: &Node<SpaceTrade>, sector: SectorId, n: u128) -> Pilot {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    client.set_read_timeout(Some(WARP_TIMEOUT)).expect("timeout");
    let (server, _) = listener.accept().expect("accept");
    server.set_nodelay(true).expect("nodelay");
    server.set_nonblocking(true).expect("nonblocking");
    let conn = {
        let _guard = rt.enter();
        Conn::new(server, OutboxLimits::default()).expect("register")
    };
    let seed = CharacterSeed {
        character_id: Uuid::from_u128(n),
        name: format!("pilot{n}"),
    };
    let (_, ship) = node.game.spawn(&seed, now_millis());
    let link = SessionLink::new(
        Uuid::new_v4(),
        seed.character_id,
        seed.name.clone(),
        ship.id,
        conn,
        Encoding::Binary,
        sector,
    );
    // An arrival from nowhere: the sector admits the ship, subscribes the link and writes `warped` + a keyframe.
    let parcel = node.directory.post(Transfer {
        avatar: ship,
        from: sector,
        to: sector,
        link: Some(Arc::clone(&link)),
        req_id: None,
    });
    let admitted = node
        .directory
        .sector(sector)
        .is_some_and(|actor| actor.cast(SectorMsg::Admit(parcel)).is_ok());
    assert!(admitted, "sector {sector} is not running");
    let mut client = Client {
        stream: client,
        buf: Vec::new(),
    };
    client.wait_warped();
    Pilot {
        link,
        client,
        at: sector,
    }
}

impl Pilot {
    /// One timed warp to `to`: command handed to the source sector -> `warped` read by the client.
    fn warp(&mut self, node: &Node<SpaceTrade>, to: SectorId) -> Duration {
        let source = node.directory.sector(self.at).expect("source sector running");
        let t = Instant::now();
        let sent = source.cast(SectorMsg::Command {
            link: Arc::clone(&self.link),
            req_id: None,
            command: Command::Warp { to },
        });
        assert!(sent.is_ok(), "source sector gone");
        self.client.wait_warped();
        let took = t.elapsed();
        self.at = to;
        took
    }
}

/// Two sectors of the first ordinary region linked both ways.
fn same_region_pair(galaxy: &Galaxy) -> (SectorId, SectorId) {
    let region = galaxy.regions.iter().find(|r| !r.nexus).expect("a region");
    for a in &region.sectors {
        for w in &a.warps {
            let back = region
                .sectors
                .iter()
                .find(|b| b.id == w.to)
                .is_some_and(|b| b.warps.iter().any(|x| x.to == a.id));
            if back {
                return (a.id, w.to);
            }
        }
    }
    panic!("no two-way warp inside a region");
}

/// A region's gate sector and the nexus sector it is linked to.
fn gate_pair(galaxy: &Galaxy) -> (SectorId, SectorId) {
    let nexus = galaxy.regions.iter().find(|r| r.nexus).expect("a nexus");
    let region = galaxy.regions.iter().find(|r| !r.nexus).expect("a region");
    for gate in &region.sectors {
        for w in &gate.warps {
            if nexus
                .sectors
                .iter()
                .any(|h| h.id == w.to && h.warps.iter().any(|x| x.to == gate.id))
            {
                return (gate.id, w.to);
            }
        }
    }
    panic!("no gate between a region and the nexus");
}

fn warp(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let galaxy = Arc::new(generate(GenerateParams {
        seed: 7,
        regions: 2,
        sectors_per_region: 6,
    }));
    // Turns are not what is measured: a pool that never runs dry.
    let rules = Rules {
        turns: TurnConfig {
            max: 1_000_000_000,
            regen_per_minute: 0,
        },
        ..Rules::default()
    };
    let game = Arc::new(SpaceTrade::new(Arc::clone(&galaxy), rules));
    let node = rt.block_on(async {
        let store: SharedStore = Arc::new(
            SqliteStore::open(&dir.path().join("orrery.db"))
                .await
                .expect("open store"),
        );
        Node::start(game, store, EngineConfig::default())
            .await
            .expect("node starts")
    });

    let mut group = c.benchmark_group("warp");
    for (name, (a, b), n) in [
        ("same_region", same_region_pair(&galaxy), 1),
        ("cross_region_via_nexus", gate_pair(&galaxy), 2),
    ] {
        let mut pilot = board(&rt, &node, a, n);
        group.bench_function(name, |bench| {
            bench.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let to = if pilot.at == a { b } else { a };
                        pilot.warp(&node, to)
                    })
                    .sum()
            })
        });
    }
    group.finish();
    rt.block_on(node.shutdown(Duration::from_secs(5)));
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = warp
}
criterion_main!(benches);
