//! PostgreSQL unreachable while the server runs, against a throwaway PostgreSQL server the test starts, kills
//! (`pg_ctl stop -m immediate`) and starts again itself ([`common::throwaway_pg`]); never the shared one.
//!
//! What must hold: the simulation keeps ticking and streaming; a trade applied just before the store noticed is
//! acknowledged only once its write commits after the database returns; a trade sent once the store is known down is
//! refused with `storage_unavailable` and changes nothing; HTTP calls that need the database answer 503
//! `storage_unavailable`; nothing panics; when the database returns, writes resume and what was held is written; a
//! login that must write while the database does not take writes gives up within its bound (1011); a server
//! restarted on the database finds every acknowledged trade; a shutdown with the database dead ends within its
//! bound.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::throwaway_pg::ThrowawayPg;
use common::*;
use futures_util::StreamExt;
use orrery_actors::session::LOGIN_WRITE_TIMEOUT;
use orrery_actors::store::postgres::PgStore;
use orrery_actors::store::{LedgerPage, Store};
use orrery_engine::galaxy::Commodity;
use orrery_engine::spacetrade::{Command, Event, Side};
use orrery_protocol::{Encoding, ServerMessage};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// How long the test waits for the server to notice the database went away or came back.
const NOTICE: Duration = Duration::from_secs(30);

/// A connected client that keeps its ship moving and records what it is sent.
struct Pilot {
    client: Client,
    me: Uuid,
    /// Replies to requests, by request id: the event, or the error code.
    replies: HashMap<u64, Result<Event, String>>,
    deltas: u64,
    /// The smallest and largest x the ship was seen at since the last [`Pilot::reset_track`].
    track: Option<(f32, f32)>,
    /// Flying back and forth (so that it never rests against the sector's edge), or still.
    flying: bool,
    rightward: bool,
    last_turn: Instant,
}

impl Pilot {
    fn new(client: Client, me: Uuid) -> Self {
        Self {
            client,
            me,
            replies: HashMap::new(),
            deltas: 0,
            track: None,
            flying: false,
            rightward: true,
            last_turn: Instant::now(),
        }
    }

    async fn thrust(&mut self, vx: f32) {
        self.client.command(Command::Thrust { vx, vy: 0.0 }).await;
    }

    async fn start_flying(&mut self) {
        self.flying = true;
        self.last_turn = Instant::now();
        self.thrust(20.0).await;
    }

    async fn stop_flying(&mut self) {
        self.flying = false;
        self.thrust(0.0).await;
        let me = self.me;
        self.client.until_ship(me, |s| s.vx == 0.0 && s.vy == 0.0).await;
    }

    fn reset_track(&mut self) {
        self.track = None;
    }

    /// Sends a trade (no key); its request id.
    async fn trade(&mut self, station: Uuid, commodity: Commodity, qty: u32) -> u64 {
        self.trade_keyed(station, commodity, qty, None).await
    }

    async fn trade_keyed(&mut self, station: Uuid, commodity: Commodity, qty: u32, key: Option<&str>) -> u64 {
        self.client
            .command(Command::Trade {
                station,
                commodity,
                side: Side::Buy,
                qty,
                key: key.map(str::to_owned),
            })
            .await
    }

    /// Reads whatever arrives for `dur`, recording replies, deltas and where the ship is; turns the ship around
    /// every second while flying. Panics if the connection ends.
    async fn fly(&mut self, dur: Duration) {
        if self.flying && self.last_turn.elapsed() >= Duration::from_secs(1) {
            self.rightward = !self.rightward;
            self.last_turn = Instant::now();
            self.thrust(if self.rightward { 20.0 } else { -20.0 }).await;
        }
        let until = Instant::now() + dur;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let message = match tokio::time::timeout(left, self.client.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(m))) => m,
                Ok(other) => panic!("the connection ended: {other:?}"),
            };
            if let Message::Close(c) = &message {
                panic!("the server closed the connection: {c:?}");
            }
            let Some(frame) = self.client.decode(&message) else {
                continue;
            };
            match frame.msg {
                ServerMessage::Delta { .. } => self.deltas += 1,
                ServerMessage::Game(e) => {
                    if let Some(id) = frame.id {
                        self.replies.insert(id, Ok(e));
                    }
                }
                ServerMessage::Error { code, .. } => {
                    if let Some(id) = frame.id {
                        self.replies.insert(id, Err(code));
                    }
                }
                _ => {}
            }
            if let Some(ship) = self.client.view.ship_of(self.me) {
                let (lo, hi) = self.track.unwrap_or((ship.x, ship.x));
                self.track = Some((lo.min(ship.x), hi.max(ship.x)));
            }
        }
    }

    /// Flies until request `id` is answered (panics after `limit`).
    async fn reply(&mut self, id: u64, limit: Duration) -> Result<Event, String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(r) = self.replies.remove(&id) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "request {id} was not answered within {limit:?}"
            );
            self.fly(Duration::from_millis(100)).await;
        }
    }
}

/// A trade result's credits, cargo of `commodity` and total.
fn result(reply: Result<Event, String>, what: &str) -> (u64, u32, u64, std::collections::BTreeMap<Commodity, u32>) {
    match reply {
        Ok(Event::TradeResult {
            credits,
            cargo,
            total,
            commodity,
            ..
        }) => (credits, cargo.get(&commodity).copied().unwrap_or(0), total, cargo),
        other => panic!("{what}: expected a trade_result, got {other:?}"),
    }
}

/// Flies until `metric` reads `want` (panics after `limit`, naming `what`).
async fn until_metric(server: &TestServer, pilot: &mut Pilot, metric: &str, want: f64, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        let now = server.metric(metric).await;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {metric} is {now}, not {want}, after {limit:?}"
        );
        pilot.fly(Duration::from_millis(200)).await;
    }
}

/// Counts every panic in the process (the server runs in it), whoever catches it.
fn count_panics() -> Arc<AtomicUsize> {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&panics);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    panics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulation_outlives_its_database_and_writes_resume_when_it_comes_back() {
    // The server's log, shown when the test fails (or with --nocapture).
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,orrery_actors::persist=info")
        .with_test_writer()
        .try_init();
    let panics = count_panics();
    let pg = ThrowawayPg::start().await;
    let mut cfg = config(temp_dir());
    cfg.database_url = Some(pg.url());
    cfg.engine.snapshot_interval = Duration::from_millis(300);
    let mut server = TestServer::start_with(cfg.clone()).await;
    assert_eq!(server.metric("orrery_storage_available").await, 1.0);

    let (token, me) = server.guest("Weather").await;
    let (late_token, latecomer) = server.guest("Latecomer").await;
    let j = Client::join(&server, &token, Encoding::Json).await;
    let station = j.keyframe.stations[0].clone();
    let commodity = station.commodities.iter().find(|l| l.quantity >= 20).unwrap().commodity;
    let mut pilot = Pilot::new(j.client, me);

    // 1. The database is up: a trade is acknowledged.
    let first = pilot.trade(station.id, commodity, 2).await;
    let (credits_1, cargo_1, _, _) = result(pilot.reply(first, WAIT).await, "first trade");

    // Let the writes that trade caused finish, so that nothing is being written when the database dies: the
    // count of written snapshots stays the same for a second.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut written = server.metric("orrery_snapshots_written_total").await;
    let mut still_since = Instant::now();
    while still_since.elapsed() < Duration::from_secs(1) {
        assert!(
            Instant::now() < deadline,
            "the server kept writing with nothing happening"
        );
        pilot.fly(Duration::from_millis(200)).await;
        let now = server.metric("orrery_snapshots_written_total").await;
        if now != written {
            (written, still_since) = (now, Instant::now());
        }
    }

    // 2. The database dies. A trade sent at once is applied (the store has not noticed: nothing was written since),
    // and its reply waits for its write.
    pg.stop_immediate().await;
    let in_flight = pilot.trade(station.id, commodity, 1).await;
    pilot.start_flying().await;

    // 3. The store notices within its connect timeout; meanwhile and after, the simulation goes on.
    until_metric(
        &server,
        &mut pilot,
        "orrery_storage_available",
        0.0,
        NOTICE,
        "the store never noticed the database was gone",
    )
    .await;
    pilot.reset_track();
    let deltas = pilot.deltas;
    pilot.fly(Duration::from_secs(2)).await;
    assert!(
        pilot.deltas >= deltas + 20,
        "deltas kept coming: {} in 2 s",
        pilot.deltas - deltas
    );
    let (lo, hi) = pilot.track.expect("the ship is in view");
    assert!(hi - lo > 5.0, "the ship kept moving: x between {lo} and {hi}");
    // What is held stays bounded: the busy sector's snapshots replace each other, and once the store is known down
    // no acknowledgement is added per snapshot interval. Two more failed attempts (each merges what queued during
    // the one before) show it.
    let acks = server.metric("orrery_persist_backlog_acks").await;
    let retries = server.metric("orrery_persist_retries_total").await;
    let deadline = Instant::now() + NOTICE;
    while server.metric("orrery_persist_retries_total").await < retries + 2.0 {
        assert!(Instant::now() < deadline, "the write was not retried");
        pilot.fly(Duration::from_millis(200)).await;
    }
    assert!(acks >= 1.0, "the in-flight trade's acknowledgement is held");
    assert_eq!(
        server.metric("orrery_persist_backlog_acks").await,
        acks,
        "held acknowledgements grew"
    );
    assert_eq!(
        server.metric("orrery_persist_backlog_sectors").await,
        1.0,
        "one snapshot of the one busy sector"
    );
    match pilot.replies.get(&in_flight) {
        None => {}
        Some(Err(code)) if code == "storage_unavailable" => panic!(
            "the trade sent right after the database died was refused: the store noticed before it (something was \
             written in between)"
        ),
        Some(other) => panic!("the in-flight trade was answered while the database is down: {other:?}"),
    }

    // 4. A trade now is refused, clearly, and changes nothing (checked in the database below); a keyed one at once,
    // without waiting for a lookup of its key.
    let refused = pilot.trade(station.id, commodity, 1).await;
    assert_eq!(
        pilot.reply(refused, WAIT).await.err().as_deref(),
        Some("storage_unavailable")
    );
    let keyed = pilot
        .trade_keyed(station.id, commodity, 1, Some("during-the-outage"))
        .await;
    assert_eq!(
        pilot.reply(keyed, Duration::from_secs(1)).await.err().as_deref(),
        Some("storage_unavailable")
    );
    assert!(server.metric("orrery_persist_retries_total").await >= 1.0);
    // HTTP calls that need the database say so.
    let guest = {
        let (http, url) = (server.http.clone(), server.url("/v1/auth/guest"));
        tokio::spawn(async move { http.post(url).json(&serde_json::json!({"name": "Nobody"})).send().await })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !guest.is_finished() {
        assert!(
            Instant::now() < deadline,
            "a guest sign-up hung while the database is down"
        );
        pilot.fly(Duration::from_millis(200)).await;
    }
    let response = guest.await.unwrap().unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "storage_unavailable");
    assert!(
        !pilot.replies.contains_key(&in_flight),
        "no answer to the in-flight trade while the database is down"
    );

    // 5. The database comes back: the held batch is written, the in-flight trade is acknowledged, snapshots resume.
    let written_down = server.metric("orrery_snapshots_written_total").await;
    pg.start_again().await;
    until_metric(
        &server,
        &mut pilot,
        "orrery_storage_available",
        1.0,
        NOTICE,
        "writes did not resume",
    )
    .await;
    let (credits_a, cargo_a, total_a, _) = result(pilot.reply(in_flight, WAIT).await, "the in-flight trade");
    assert_eq!((credits_a, cargo_a), (credits_1 - total_a, cargo_1 + 1));
    until_metric(
        &server,
        &mut pilot,
        "orrery_persist_backlog_sectors",
        0.0,
        WAIT,
        "the backlog drained",
    )
    .await;
    let deadline = Instant::now() + WAIT;
    while server.metric("orrery_snapshots_written_total").await <= written_down {
        assert!(
            Instant::now() < deadline,
            "no snapshot was written after the database came back"
        );
        pilot.fly(Duration::from_millis(100)).await;
    }
    // A trade is taken again; the refused one changed nothing.
    let again = pilot.trade(station.id, commodity, 1).await;
    let (credits_c, cargo_c, total_c, cargo_map) = result(pilot.reply(again, WAIT).await, "a trade after recovery");
    assert_eq!((credits_c, cargo_c), (credits_a - total_c, cargo_a + 1));

    // The database has exactly the acknowledged trades.
    let store = PgStore::connect(&pg.url()).await.expect("the throwaway database");
    let balances = store.balances(me).await.unwrap();
    assert_eq!(balances.get("credits").copied(), Some(credits_c as i64));
    let lines = store
        .ledger(
            me,
            LedgerPage {
                before: None,
                limit: 100,
            },
        )
        .await
        .unwrap();
    let mut trades: Vec<Uuid> = lines.iter().filter(|l| l.kind == "trade").map(|l| l.tx).collect();
    trades.dedup();
    assert_eq!(
        trades.len(),
        3,
        "the first trade, the in-flight one and the last one; not the refused one"
    );
    store.close().await;

    // 6. A database that takes no writes (read-only, as after a failover) but answers reads: a new character's
    // login, which must write its ship, gives up within its bound and closes with 1011.
    pg.psql("ALTER SYSTEM SET default_transaction_read_only = on").await;
    pg.psql("SELECT pg_reload_conf()").await;
    until_metric(
        &server,
        &mut pilot,
        "orrery_storage_available",
        0.0,
        NOTICE,
        "the store never noticed the database refused writes",
    )
    .await;
    let login = {
        let late = TestServer::remote(server.addr());
        let token = late_token.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut c = Client::connect(&late, &token, Encoding::Json).await;
            let limit = LOGIN_WRITE_TIMEOUT + Duration::from_secs(10);
            loop {
                match tokio::time::timeout(limit.saturating_sub(started.elapsed()), c.ws_next()).await {
                    Err(_) => panic!("the login neither welcomed nor closed within {limit:?}"),
                    Ok(Some(Ok(Message::Close(frame)))) => {
                        return (
                            frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                            started.elapsed(),
                        )
                    }
                    Ok(Some(Ok(m))) => {
                        let frame = c.decode(&m);
                        assert!(
                            frame.is_none(),
                            "no welcome without the ship written: {:?}",
                            frame.map(|f| f.msg.kind())
                        );
                    }
                    Ok(other) => panic!("the connection ended without a close frame: {other:?}"),
                }
            }
        })
    };
    while !login.is_finished() {
        pilot.fly(Duration::from_millis(200)).await;
    }
    let (close, took) = login.await.unwrap();
    let (code, reason) = close.expect("a close frame with a code");
    assert_eq!(code, 1011, "{reason}");
    assert!(reason.contains("storage unavailable"), "{reason}");
    assert!(took >= LOGIN_WRITE_TIMEOUT, "gave up after {took:?}");
    pg.psql("ALTER SYSTEM RESET default_transaction_read_only").await;
    pg.psql("SELECT pg_reload_conf()").await;
    until_metric(
        &server,
        &mut pilot,
        "orrery_storage_available",
        1.0,
        NOTICE,
        "writes did not resume after read-only",
    )
    .await;
    until_metric(
        &server,
        &mut pilot,
        "orrery_persist_backlog_acks",
        0.0,
        WAIT,
        "the backlog drained",
    )
    .await;
    // The ship that login wanted written was held, and written once the database took writes again.
    let store = PgStore::connect(&pg.url()).await.expect("the throwaway database");
    assert!(
        store.load_avatar(latecomer).await.unwrap().is_some(),
        "the held login write was written"
    );
    store.close().await;
    let late = Client::join(&server, &late_token, Encoding::Json).await;
    late.client.close().await;

    // 7. A restart on the same database (a fresh data directory) finds the acknowledged trades.
    pilot.stop_flying().await;
    pilot.client.close().await;
    server.stop().await;
    cfg.data_dir = temp_dir();
    let mut server = TestServer::start_with(cfg.clone()).await;
    let back = Client::join(&server, &token, Encoding::Json).await;
    assert_eq!(back.profile.credits, credits_c, "credits as the last trade_result said");
    assert_eq!(back.profile.cargo, cargo_map, "cargo as the last trade_result said");
    let mut pilot = Pilot::new(back.client, me);
    pilot.start_flying().await;
    pilot.fly(Duration::from_millis(500)).await;

    // 8. A graceful shutdown with the database dead ends within its bound (5 s here), losing what it could not
    // write (logged), instead of waiting for the database forever.
    pg.stop_immediate().await;
    let stopping = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), server.stop())
        .await
        .expect("the shutdown hung on the dead database");
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(15), "the shutdown took {took:?}");

    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "something panicked (see the output above)"
    );
}
