//! Helpers for end-to-end tests: a real server on 127.0.0.1:0 with its own data directory, and real WebSocket
//! clients (tokio-tungstenite) speaking JSON or binary.
#![allow(dead_code)]

pub mod economy;
pub mod raw;
pub mod throwaway_pg;

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use orrery_api::{GalaxySource, RunningServer, ServerConfig};
use orrery_engine::galaxy::Commodity;
use orrery_engine::galaxy::GenerateParams;
use orrery_engine::spacetrade::{ClientView, Command, Delta, Event, Keyframe, Profile, ShipView, Side, SpaceTrade};
use orrery_protocol::codec;
use orrery_protocol::{ClientFrame, ClientMessage, Encoding, ServerFrame, ServerMessage};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

pub const ADMIN: &str = "test-admin-token";
/// How long a test waits for any one expected frame.
pub const WAIT: Duration = Duration::from_secs(5);

pub type Frame = ServerFrame<SpaceTrade>;
pub type Msg = ServerMessage<SpaceTrade>;

/// A small galaxy (nexus + 2 regions x 6 sectors) so many test servers can run at once.
pub fn small_galaxy() -> GenerateParams {
    GenerateParams {
        seed: 7,
        regions: 2,
        sectors_per_region: 6,
    }
}

/// A fresh data directory under the system temp dir.
pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orrery-test-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The variable that runs the end-to-end tests on PostgreSQL: `ORRERY_TEST_BACKEND=postgres`.
pub const BACKEND_VAR: &str = "ORRERY_TEST_BACKEND";
/// The name prefix of those databases: `ORRERY_TEST_E2E_PREFIX`, or `orrery_e2e`. scripts/test.sh gives each run
/// a prefix of its own and drops that run's databases (and only those) after it, so two runs on one PostgreSQL do
/// not drop each other's databases.
pub fn e2e_prefix() -> String {
    std::env::var("ORRERY_TEST_E2E_PREFIX").unwrap_or_else(|_| "orrery_e2e".into())
}

/// The store of a test server's data directory: none (the embedded file in it), or, when the tests run on
/// PostgreSQL ([`BACKEND_VAR`]), a scratch database of its own on the server `ORRERY_TEST_POSTGRES` names, the same
/// for every server a test starts on that directory (a restart finds its state). scripts/test.sh drops these
/// databases after the run.
pub fn test_database_url(data_dir: &std::path::Path) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    static DATABASES: LazyLock<Mutex<HashMap<PathBuf, String>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
    match std::env::var(BACKEND_VAR).as_deref() {
        Ok("postgres") => {}
        Ok("sqlite") | Ok("") | Err(_) => return None,
        Ok(other) => panic!("{BACKEND_VAR}={other:?}: expected `postgres` or `sqlite`"),
    }
    let mut databases = DATABASES.lock().unwrap();
    if let Some(url) = databases.get(data_dir) {
        return Some(url.clone());
    }
    // Created on a thread of its own: this may be called inside or outside a runtime.
    let url = std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let admin = orrery_actors::store::postgres::test_admin_url();
        let db = runtime
            .block_on(orrery_actors::store::postgres::ScratchDatabase::create_with_prefix(
                &admin,
                &e2e_prefix(),
            ))
            .expect("PostgreSQL for the tests (scripts/test.sh starts it)");
        let url = db.url.clone();
        // Kept for the rest of the run (a later server on the same directory uses it); dropped by scripts/test.sh.
        std::mem::forget(db);
        url
    })
    .join()
    .unwrap();
    databases.insert(data_dir.to_owned(), url.clone());
    Some(url)
}

pub fn config(data_dir: PathBuf) -> ServerConfig {
    let mut c = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: test_database_url(&data_dir),
        data_dir,
        galaxy: GalaxySource::Generate(small_galaxy()),
        admin_token: Some(ADMIN.into()),
        shutdown_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    };
    c.engine.debug_hooks = true;
    c.engine.max_msgs_per_sec = 200;
    c.engine.msg_burst = 400;
    // Tests create many guests from 127.0.0.1; the guest rate limit has a test of its own.
    c.guests.per_minute = 0;
    // Likewise the ledger tests read many ledgers; the limit has a test of its own.
    c.ledger_reads.per_minute = 0;
    c
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    remote: Option<std::net::SocketAddr>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(config(temp_dir())).await
    }

    pub async fn start_with(config: ServerConfig) -> Self {
        let data_dir = config.data_dir.clone();
        let server = orrery_api::start(config).await.expect("server starts");
        Self {
            server: Some(server),
            data_dir,
            http: reqwest::Client::new(),
            remote: None,
        }
    }

    /// A handle on a server running elsewhere (another process), for its HTTP and WebSocket helpers.
    pub fn remote(addr: std::net::SocketAddr) -> Self {
        Self {
            server: None,
            data_dir: PathBuf::new(),
            http: reqwest::Client::new(),
            remote: Some(addr),
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.remote.unwrap_or_else(|| self.server.as_ref().unwrap().addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), path)
    }

    /// `POST /v1/auth/guest`; returns (token, character id).
    pub async fn guest(&self, name: &str) -> (String, Uuid) {
        self.guest_with(serde_json::json!({ "name": name })).await
    }

    /// A guest starting in `sector` (the server must allow spawn choice).
    pub async fn guest_in(&self, name: &str, sector: Uuid) -> (String, Uuid) {
        self.guest_with(serde_json::json!({ "name": name, "sector": sector }))
            .await
    }

    async fn guest_with(&self, body: Value) -> (String, Uuid) {
        let r: Value = self
            .http
            .post(self.url("/v1/auth/guest"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            r["token"].as_str().unwrap().to_owned(),
            r["character_id"].as_str().unwrap().parse().unwrap(),
        )
    }

    /// `GET path` as JSON (no token).
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn admin_post(&self, path: &str) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(ADMIN).send().await.unwrap()
    }

    /// The value of an unlabelled counter or gauge in `/metrics` (0 when absent).
    /// A metric's value, summed over its label sets (0 if absent).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                let rest = match rest.strip_prefix('{') {
                    Some(labelled) => &labelled[labelled.find('}')? + 1..],
                    None => rest,
                };
                rest.strip_prefix(' ')?.trim().parse::<f64>().ok()
            })
            .sum()
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }
}

/// A real WebSocket client.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub encoding: Encoding,
    /// The client's picture of its sector, kept current by every keyframe and delta received.
    pub view: ClientView,
    next_id: u64,
}

/// What a client learns on connecting: its profile, sector and first keyframe.
pub struct Joined {
    pub client: Client,
    pub profile: Profile,
    pub sector: Uuid,
    pub keyframe: Keyframe,
    pub seq: u64,
}

impl Joined {
    /// How much of `commodity` station `station` holds, as the first keyframe shows it.
    pub fn stock(&self, station: Uuid, commodity: Commodity) -> u32 {
        let book = self
            .keyframe
            .stations
            .iter()
            .find(|s| s.id == station)
            .expect("station in the keyframe");
        let listing = book.commodities.iter().find(|l| l.commodity == commodity);
        listing.expect("commodity listed at the station").quantity
    }
}

/// The upgrade request of a session, asking for `encoding`'s subprotocol.
fn ws_request(
    server: &TestServer,
    token: &str,
    encoding: Encoding,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = format!("ws://{}/v1/ws?token={token}", server.addr())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(encoding.subprotocol()),
    );
    req
}

impl Client {
    pub async fn connect(server: &TestServer, token: &str, encoding: Encoding) -> Client {
        let req = ws_request(server, token, encoding);
        let (ws, resp) = tokio_tungstenite::connect_async(req).await.expect("websocket connects");
        assert_eq!(
            resp.headers().get("Sec-WebSocket-Protocol").unwrap(),
            encoding.subprotocol()
        );
        Client {
            ws,
            encoding,
            view: ClientView::default(),
            next_id: 1,
        }
    }

    /// Connects over a socket with a tiny receive buffer (4 KiB), to play a slow client.
    pub async fn connect_small_buffer(server: &TestServer, token: &str, encoding: Encoding) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(server.addr()).await.unwrap();
        let req = ws_request(server, token, encoding);
        let (ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream))
            .await
            .expect("websocket connects");
        Client {
            ws,
            encoding,
            view: ClientView::default(),
            next_id: 1,
        }
    }

    /// Connects and reads `welcome` and the first keyframe.
    pub async fn join(server: &TestServer, token: &str, encoding: Encoding) -> Joined {
        Self::joined(Client::connect(server, token, encoding).await).await
    }

    /// Reads `welcome` and the first keyframe on a fresh connection.
    pub async fn joined(mut client: Client) -> Joined {
        let (profile, sector) = match client.recv().await.msg {
            ServerMessage::Welcome {
                character,
                sector,
                tick_hz,
                ..
            } => {
                assert_eq!(tick_hz, 20);
                (character, sector)
            }
            other => panic!("expected welcome, got {:?}", kind(&other)),
        };
        let (keyframe, seq) = match client.recv().await.msg {
            ServerMessage::Keyframe {
                sector: s, body, seq, ..
            } => {
                assert_eq!(s, sector);
                (body, seq)
            }
            other => panic!("expected keyframe, got {:?}", kind(&other)),
        };
        Joined {
            client,
            profile,
            sector,
            keyframe,
            seq,
        }
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.unwrap();
    }

    /// Sends a message with a fresh request id, which it returns.
    pub async fn send(&mut self, msg: ClientMessage<Command>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let frame = ClientFrame::new(Some(id), msg);
        let out = match self.encoding {
            Encoding::Json => Message::Text(codec::client_to_json(&frame).into()),
            Encoding::Binary => Message::Binary(codec::client_to_bin(&frame).into()),
        };
        self.ws.send(out).await.unwrap();
        id
    }

    pub async fn command(&mut self, c: Command) -> u64 {
        self.send(ClientMessage::Game(c)).await
    }

    /// The next server frame (panics after [`WAIT`]); keyframes and deltas update [`Client::view`].
    pub async fn recv(&mut self) -> Frame {
        let frame = self.recv_raw().await;
        match &frame.msg {
            ServerMessage::Keyframe { body, .. } => self.view = ClientView::from_keyframe(body),
            ServerMessage::Delta { body, .. } => self.view.apply(body),
            _ => {}
        }
        frame
    }

    /// Reads until the view shows `owner`'s ship satisfying `pred`; returns the seq and tick of the frame that
    /// made it so, and the ship.
    pub async fn until_ship(&mut self, owner: Uuid, pred: impl Fn(&ShipView) -> bool) -> (u64, u64, ShipView) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(tokio::time::Instant::now() < deadline, "the ship never matched");
            let f = self.recv().await;
            let (seq, tick) = match f.msg {
                ServerMessage::Delta { seq, tick, .. } | ServerMessage::Keyframe { seq, tick, .. } => (seq, tick),
                _ => continue,
            };
            if let Some(ship) = self.view.ship_of(owner).filter(|s| pred(s)) {
                return (seq, tick, ship.clone());
            }
        }
    }

    /// Reads until `owner`'s ship is no longer in the view.
    pub async fn until_gone(&mut self, owner: Uuid) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.view.ship_of(owner).is_some() {
            assert!(tokio::time::Instant::now() < deadline, "the ship never left");
            self.recv().await;
        }
    }

    async fn recv_raw(&mut self) -> Frame {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within the wait")
                .expect("stream open")
                .expect("frame ok");
            match next {
                Message::Text(t) => {
                    assert_eq!(self.encoding, Encoding::Json, "text frame on a binary session");
                    return codec::server_from_json::<SpaceTrade>(&t).expect("decodable JSON frame");
                }
                Message::Binary(b) => {
                    assert_eq!(self.encoding, Encoding::Binary, "binary frame on a JSON session");
                    return codec::server_from_bin::<SpaceTrade>(&b).expect("decodable binary frame");
                }
                Message::Close(c) => panic!("connection closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next WebSocket message as it came (for tests that watch for the close among other frames).
    pub async fn ws_next(&mut self) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        self.ws.next().await
    }

    /// Decodes a data message into a server frame, updating the view like [`Client::recv`].
    pub fn decode(&mut self, m: &Message) -> Option<Frame> {
        let frame = match m {
            Message::Text(t) => codec::server_from_json::<SpaceTrade>(t).ok()?,
            Message::Binary(b) => codec::server_from_bin::<SpaceTrade>(b).ok()?,
            _ => return None,
        };
        match &frame.msg {
            ServerMessage::Keyframe { body, .. } => self.view = ClientView::from_keyframe(body),
            ServerMessage::Delta { body, .. } => self.view.apply(body),
            _ => {}
        }
        Some(frame)
    }

    /// Applies a data message to the view and returns `owner`'s ship's x, if the view has it.
    pub fn apply_and_find(&mut self, m: &Message, owner: Uuid) -> Option<f32> {
        self.decode(m)?;
        self.view.ship_of(owner).map(|s| s.x)
    }

    /// Reads frames until one matches (panics after [`WAIT`] overall).
    pub async fn recv_until<T>(&mut self, mut pick: impl FnMut(&Frame) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(tokio::time::Instant::now() < deadline, "expected frame did not arrive");
            let f = self.recv().await;
            if let Some(t) = pick(&f) {
                return t;
            }
        }
    }

    /// Sends a trade; its `trade_result`, or the code of the error that refused it.
    pub async fn trade(&mut self, station: Uuid, commodity: Commodity, side: Side, qty: u32) -> Result<Event, String> {
        self.trade_keyed(station, commodity, side, qty, None).await
    }

    /// Sends a trade with an optional idempotency key; its `trade_result`, or the code of the refusal.
    pub async fn trade_keyed(
        &mut self,
        station: Uuid,
        commodity: Commodity,
        side: Side,
        qty: u32,
        key: Option<&str>,
    ) -> Result<Event, String> {
        let id = self
            .command(Command::Trade {
                station,
                commodity,
                side,
                qty,
                key: key.map(str::to_owned),
            })
            .await;
        self.answer(id).await
    }

    /// The `game` reply or the error code answering request `id`.
    pub async fn answer(&mut self, id: u64) -> Result<Event, String> {
        self.recv_until(|f| match &f.msg {
            ServerMessage::Game(e) if f.id == Some(id) => Some(Ok(e.clone())),
            ServerMessage::Error { code, .. } if f.id == Some(id) => Some(Err(code.clone())),
            _ => None,
        })
        .await
    }

    /// Warps to `to`: where the ship arrived, or the code of the error that refused the warp.
    pub async fn warp(&mut self, to: Uuid) -> Result<Uuid, String> {
        let id = self.command(Command::Warp { to }).await;
        self.recv_until(|f| match &f.msg {
            ServerMessage::Warped { to, .. } if f.id == Some(id) => Some(Ok(*to)),
            ServerMessage::Error { code, .. } if f.id == Some(id) => Some(Err(code.clone())),
            _ => None,
        })
        .await
    }

    /// The error frame answering request `id`.
    pub async fn error_for(&mut self, id: u64) -> (String, String) {
        self.recv_until(|f| match &f.msg {
            ServerMessage::Error { code, message } if f.id == Some(id) => Some((code.clone(), message.clone())),
            _ => None,
        })
        .await
    }

    /// The next delta.
    pub async fn delta(&mut self) -> (u64, u64, Delta) {
        self.recv_until(|f| match &f.msg {
            ServerMessage::Delta { seq, tick, body, .. } => Some((*seq, *tick, body.clone())),
            _ => None,
        })
        .await
    }

    /// Waits for the close frame and returns its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.ws.next())
                .await
                .expect("close within the wait")
            {
                Some(Ok(Message::Close(c))) => return c.map(|c| u16::from(c.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Drain until the server's close arrives so the session has parked the ship.
        let _ = tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = self.ws.next().await {} }).await;
    }
}

pub fn kind(m: &Msg) -> &'static str {
    m.kind()
}

/// A server process of the real binary (small galaxy, seed 7), stopped with SIGKILL if the test fails.
pub struct Process {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
}

impl Process {
    pub fn start(data_dir: &std::path::Path) -> Process {
        Self::start_with(data_dir, &[], None)
    }

    /// With extra `serve` flags, and optionally under a descriptor limit (`ulimit -n`).
    pub fn start_with(data_dir: &std::path::Path, extra: &[&str], nofile: Option<u64>) -> Process {
        use std::io::{BufRead, BufReader};
        let mut command = match nofile {
            Some(n) => {
                let mut c = std::process::Command::new("sh");
                c.args([
                    "-c",
                    &format!("ulimit -n {n} && exec \"$0\" \"$@\""),
                    env!("CARGO_BIN_EXE_orrery"),
                ]);
                c
            }
            None => std::process::Command::new(env!("CARGO_BIN_EXE_orrery")),
        };
        let mut child = command
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--regions",
                "2",
                "--sectors-per-region",
                "6",
                "--seed",
                "7",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .args(match test_database_url(data_dir) {
                Some(url) if !extra.contains(&"--database-url") => vec!["--database-url".to_owned(), url],
                _ => Vec::new(),
            })
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("server log line").unwrap();
            if let Some(rest) = line.split("listening addr=").nth(1) {
                break rest.trim().parse().unwrap();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Process { child, addr }
    }

    /// Sends SIGTERM (a graceful shutdown).
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Process {
    /// A failed test must not leave a server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the kernel still holds this side of a loopback TCP connection as established (read from
/// `/proc/net/tcp`, so that the test can watch the socket without reading from it).
pub fn still_established(local: std::net::SocketAddr) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp is readable");
    let me = format!(":{:04X}", local.port());
    table.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.len() > 3 && cols[1].ends_with(&me) && cols[3] == "01"
    })
}

/// What a character left behind for a restart to keep: credits and cargo after a trade, where its ship came to
/// rest, and the station's stock.
#[derive(Debug, Clone)]
pub struct LeftBehind {
    pub credits: u64,
    pub cargo: std::collections::BTreeMap<Commodity, u32>,
    pub at: (f32, f32),
    pub station: Uuid,
    pub commodity: Commodity,
    pub station_quantity: u32,
}

impl Joined {
    /// Buys 2 of something at the sector's first station, flies a little, stops, and closes the connection.
    pub async fn trade_fly_and_leave(mut self, character: Uuid) -> LeftBehind {
        let station = self.keyframe.stations[0].clone();
        let listing = *station.commodities.iter().find(|l| l.quantity >= 2).unwrap();
        let Event::TradeResult {
            credits,
            cargo,
            station_quantity,
            ..
        } = self
            .client
            .trade(station.id, listing.commodity, Side::Buy, 2)
            .await
            .expect("trade accepted");
        self.client.command(Command::Thrust { vx: 60.0, vy: 30.0 }).await;
        for _ in 0..5 {
            self.client.delta().await;
        }
        self.client.command(Command::Thrust { vx: 0.0, vy: 0.0 }).await;
        let (_, _, stopped) = self.client.until_ship(character, |s| s.vx == 0.0 && s.vy == 0.0).await;
        self.client.close().await;
        LeftBehind {
            credits,
            cargo,
            at: (stopped.x, stopped.y),
            station: station.id,
            commodity: listing.commodity,
            station_quantity,
        }
    }

    /// Asserts that the character, back after a restart, finds everything as it left it.
    pub fn assert_as_left(&self, character: Uuid, left: &LeftBehind) {
        assert_eq!(self.profile.credits, left.credits);
        assert_eq!(self.profile.cargo, left.cargo);
        let me = self
            .keyframe
            .ships
            .iter()
            .find(|s| s.owner == character)
            .expect("ship is back");
        assert_eq!((me.x, me.y), left.at);
        assert_eq!(self.stock(left.station, left.commodity), left.station_quantity);
    }
}
