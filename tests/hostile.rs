//! Hostile and flaky clients against the real server: floods, slowloris, silent clients, descriptor exhaustion,
//! guest bursts, cross-origin browsers, unprintable text, and graceful shutdown with half-sent requests and replies
//! still owed. Each test names the case of the hardening issue it covers.

mod common;

use std::time::Duration;

use common::raw::{self, RawWs};
use common::*;
use orrery_engine::spacetrade::{Command, Event, Side};
use orrery_protocol::{ChatChannel, ClientMessage, Encoding, ServerMessage};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the peer closes `stream` within `limit` (EOF or reset).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn wait_for(mut cond: impl AsyncFnMut() -> bool, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn sessions(server: &TestServer) -> u64 {
    server.get_json("/readyz").await["sessions"].as_u64().unwrap()
}

/// Case 1: a ping flood gets at most one pong per tick and a 1008 close; a second client in the same sector keeps
/// receiving its deltas. Also floods of empty continuation frames and of unsolicited pongs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_is_closed_with_1008_while_the_sector_keeps_streaming() {
    let mut cfg = config(temp_dir());
    cfg.engine.max_msgs_per_sec = 30;
    cfg.engine.msg_burst = 60;
    let server = TestServer::start_with(cfg).await;
    let (watcher, _) = server.guest("Watcher").await;
    let mut w = Client::join(&server, &watcher, Encoding::Binary).await;
    w.client.command(Command::Thrust { vx: 20.0, vy: 0.0 }).await;

    let (flooder, _) = server.guest("Flooder").await;
    let mut f = RawWs::connect(server.addr(), &flooder).await;
    let pings: Vec<u8> = (0..20_000).flat_map(|_| raw::fin(0x9, b"")).collect();
    f.send_lossy(&pings).await;
    let (code, pongs) = f.until_close().await;
    assert_eq!(code, Some(1008), "a ping flood is closed like any other flood");
    assert!(pongs <= 5, "at most one pong per tick before the close, got {pongs}");

    // The watcher's sector kept its rate: 2 s at 20 Hz is 40 deltas.
    let started = tokio::time::Instant::now();
    let mut deltas = 0;
    while started.elapsed() < Duration::from_secs(2) {
        w.client.delta().await;
        deltas += 1;
    }
    assert!(
        deltas >= 20,
        "the watcher got {deltas} deltas in 2 s (20 Hz would be 40)"
    );

    let (t2, _) = server.guest("Continuations").await;
    let mut c = RawWs::connect(server.addr(), &t2).await;
    let mut flood = raw::frame(0x01, b"{");
    flood.extend((0..20_000).flat_map(|_| raw::frame(0x00, b"")));
    c.send_lossy(&flood).await;
    assert_eq!(
        c.until_close().await.0,
        Some(1008),
        "empty continuation frames count too"
    );

    let (t3, _) = server.guest("Pongs").await;
    let mut p = RawWs::connect(server.addr(), &t3).await;
    let pongs: Vec<u8> = (0..20_000).flat_map(|_| raw::fin(0xA, b"x")).collect();
    p.send_lossy(&pongs).await;
    assert_eq!(p.until_close().await.0, Some(1008), "unsolicited pongs count too");
    assert!(server.metric("orrery_rate_limited_total").await >= 3.0);
}

/// Case 3: slowloris (a header byte at a time) and idle keep-alive connections are closed by their timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_idle_keepalive_connections_are_closed() {
    let mut cfg = config(temp_dir());
    cfg.http.header_timeout = Duration::from_secs(1);
    cfg.http.idle_timeout = Duration::from_millis(1500);
    let server = TestServer::start_with(cfg).await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(server.addr()).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        slow.push(s);
    }
    // Keep dribbling a byte every 300 ms: the whole head must still arrive within the header timeout.
    let dribble = tokio::spawn(async move {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for s in &mut slow {
                let _ = s.write_all(b"s").await;
            }
        }
        slow
    });
    let mut keepalive = TcpStream::connect(server.addr()).await.unwrap();
    keepalive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = raw::read_head(&mut keepalive).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        closed_within(&mut keepalive, Duration::from_secs(4)).await,
        "an idle keep-alive connection is closed"
    );
    let mut slow = dribble.await.unwrap();
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(2)).await,
            "slowloris connection still open"
        );
    }
    let m = server.metrics().await;
    assert!(m.contains("orrery_http_timeouts_total{kind=\"idle\"}"), "{m}");
    // The server still serves everyone else.
    assert_eq!(
        server.http.get(server.url("/healthz")).send().await.unwrap().status(),
        200
    );
}

/// Case 4: a client that stops reading and sending is pinged, then closed, and its character released; a new login
/// for a character whose old connection is still open supersedes it (4001).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_timed_out_and_a_new_login_supersedes_an_old_one() {
    let mut cfg = config(temp_dir());
    cfg.engine.ws_ping_interval = Duration::from_millis(300);
    cfg.engine.ws_timeout = Duration::from_secs(1);
    let server = TestServer::start_with(cfg).await;
    let (token, character) = server.guest("Silent").await;
    let mut silent = RawWs::connect(server.addr(), &token).await;
    assert!(wait_for(async || sessions(&server).await == 1, Duration::from_secs(5)).await);
    // It never reads or writes again: the liveness sweep pings it, then gives up on it.
    assert!(
        wait_for(async || sessions(&server).await == 0, Duration::from_secs(5)).await,
        "the silent session was not ended"
    );
    assert!(server.metric("orrery_ws_pings_sent_total").await >= 1.0);
    assert!(server.metric("orrery_ws_timeouts_total").await >= 1.0);
    // What it was sent meanwhile is still there to read, ending with the close frame.
    assert_eq!(silent.until_close().await.0, Some(4002));
    drop(silent);
    let mut again = Client::join(&server, &token, Encoding::Json).await;
    assert!(again.keyframe.ships.iter().any(|s| s.owner == character));

    // A live client answers pings (tungstenite does while it reads), so it stays past the timeout.
    let quiet = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(quiet, again.client.ws_next()).await {
        assert!(!m.is_close(), "a live client was closed: {m:?}");
    }
    let id = again.client.send(ClientMessage::Ping).await;
    let got = again
        .client
        .recv_until(|f| matches!(f.msg, ServerMessage::Pong).then_some(f.id))
        .await;
    assert_eq!(got, Some(id));

    // The same character logs in again while this connection is open: the old one is closed with 4001.
    let newer = Client::join(&server, &token, Encoding::Binary).await;
    assert_eq!(again.client.close_code().await, Some(4001));
    assert!(newer.keyframe.ships.iter().any(|s| s.owner == character));
    assert!(server.metric("orrery_sessions_superseded_total").await >= 1.0);
}

/// Case 3, descriptors: past the connection cap, new sockets reach only the operator routes (the oldest reserve
/// connection makes room), so idle sockets never lock out `/healthz`; a login gets `503 at_capacity`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_health_still_answers_and_logins_get_503() {
    let mut cfg = config(temp_dir());
    cfg.http.max_connections = 10;
    cfg.http.reserve_connections = 3;
    let server = TestServer::start_with(cfg).await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(server.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = || reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let r = fresh().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = fresh().post(server.url("/v1/auth/guest")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "at_capacity");
    assert!(server.metric("orrery_connections_refused_total").await >= 1.0);
    drop(idle);
}

/// Case 3 against the real binary under a low descriptor limit: the default cap stays below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descriptor_limit_of_600_never_locks_out_health_checks() {
    let data_dir = temp_dir();
    let process = Process::start_with(&data_dir, &[], Some(600));
    let server = TestServer::remote(process.addr);
    let mut idle = Vec::new();
    for _ in 0..700 {
        match TcpStream::connect(process.addr).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect failed: {e}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let r = http.get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let r = http.post(server.url("/v1/auth/guest")).send().await.unwrap();
    assert_eq!(r.status(), 503, "a login past the cap is refused cleanly");
    drop(idle);
    // Once the sockets are gone, logins work again.
    assert!(
        wait_for(
            async || {
                let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
                http.post(server.url("/v1/auth/guest"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            },
            Duration::from_secs(5)
        )
        .await
    );
}

/// Case 5: guest creation is limited per address with 429 and `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_login_bursts_from_one_address_get_429_with_retry_after() {
    let mut cfg = config(temp_dir());
    cfg.guests.per_minute = 6;
    cfg.guests.burst = 3;
    let server = TestServer::start_with(cfg).await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..6 {
        let r = server.http.post(server.url("/v1/auth/guest")).send().await.unwrap();
        statuses.push(r.status().as_u16());
        last = Some(r);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    let r = last.unwrap();
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limited");
    assert!(server.metric("orrery_http_rate_limited_total").await >= 3.0);
}

/// Admission control: past the session cap, logins get `503 at_capacity` with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_session_cap_logins_get_503_at_capacity() {
    let mut cfg = config(temp_dir());
    cfg.max_sessions = 1;
    let server = TestServer::start_with(cfg).await;
    let (a, _) = server.guest("First").await;
    let (b, _) = server.guest("Second").await;
    let _first = Client::join(&server, &a, Encoding::Json).await;
    let r = server
        .http
        .get(server.url(&format!("/v1/ws?token={b}")))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let r = server.http.post(server.url("/v1/auth/guest")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(server.metric("orrery_admission_refused_total").await >= 2.0);
}

/// Case 6: CORS for configured origins (preflight answered), and the WebSocket checks `Origin` against them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_preflight_and_websocket_origin_check() {
    let mut cfg = config(temp_dir());
    cfg.cors_origins = vec!["https://play.example".into()];
    let server = TestServer::start_with(cfg).await;
    let r = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/v1/auth/guest"))
        .header("Origin", "https://play.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "preflight answered: {}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], "https://play.example");
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let r = server
        .http
        .post(server.url("/v1/auth/guest"))
        .header("Origin", "https://play.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://play.example");
    let r = server
        .http
        .post(server.url("/v1/auth/guest"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    let (token, _) = server.guest("Browser").await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(raw::upgrade_request(&token, "Origin: https://evil.example\r\n").as_bytes())
        .await
        .unwrap();
    let (head, _) = raw::read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let _ok = RawWs::connect_with(server.addr(), &token, "Origin: https://play.example\r\n").await;
}

/// Case 9: names and chat refuse control characters, escapes and bidirectional overrides, naming the character.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_chat_refuse_controls_escapes_and_bidi_overrides() {
    let server = TestServer::start().await;
    for bad in ["\u{1b}[31mRed", "Admin\u{202e}nimdA", "two\nlines", "zero\u{200f}mark"] {
        let r = server
            .http
            .post(server.url("/v1/auth/guest"))
            .json(&serde_json::json!({ "name": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_name");
        assert!(v["error"]["message"].as_str().unwrap().contains("U+"), "{v}");
    }
    let (token, _) = server.guest("Talker").await;
    let mut j = Client::join(&server, &token, Encoding::Json).await;
    for bad in ["hi \u{202e}olleh", "\u{1b}[2Jcleared", "bell\u{7}"] {
        let id = j
            .client
            .send(ClientMessage::Chat {
                channel: ChatChannel::Sector,
                text: bad.into(),
            })
            .await;
        let (code, message) = j.client.error_for(id).await;
        assert_eq!(code, "invalid_chat", "{bad:?}");
        assert!(message.contains("U+"), "{message}");
    }
    // Printable text, emoji included, still goes through.
    j.client
        .send(ClientMessage::Chat {
            channel: ChatChannel::Sector,
            text: "o7 👩\u{200d}🚀".into(),
        })
        .await;
    let text = j
        .client
        .recv_until(|f| match &f.msg {
            ServerMessage::Chat { text, .. } => Some(text.clone()),
            _ => None,
        })
        .await;
    assert_eq!(text, "o7 👩\u{200d}🚀");
}

/// Case 2: a half-sent HTTP request does not hold up SIGTERM: sessions get 1001, ships are parked, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_half_sent_request_still_closes_parks_and_exits_0() {
    let data_dir = temp_dir();
    let mut process = Process::start(&data_dir);
    let server = TestServer::remote(process.addr);
    let (token, character) = server.guest("Mover").await;
    let mut j = Client::join(&server, &token, Encoding::Json).await;
    j.client.command(Command::Thrust { vx: 40.0, vy: 0.0 }).await;
    j.client.until_ship(character, |s| s.vx == 40.0).await;
    let mut half = TcpStream::connect(process.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    process.terminate();
    // The last position the client saw before the close.
    let mut last_x = None;
    let code = loop {
        match tokio::time::timeout(WAIT, j.client.ws_next())
            .await
            .expect("close in time")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(c))) => break c.map(|c| u16::from(c.code)),
            Some(Ok(m)) => {
                if let Some(x) = j.client.apply_and_find(&m, character) {
                    last_x = Some(x);
                }
            }
            _ => break None,
        }
    };
    assert_eq!(code, Some(1001));
    assert_eq!(process.wait_exit(Duration::from_secs(12)), Some(0), "graceful exit");
    drop(half);
    let process = Process::start(&data_dir);
    let server = TestServer::remote(process.addr);
    let again = Client::join(&server, &token, Encoding::Json).await;
    let me = again
        .keyframe
        .ships
        .iter()
        .find(|s| s.owner == character)
        .expect("ship parked");
    let last_x = last_x.expect("saw the ship move");
    // The sector is a torus: measure the distance the short way round.
    let d = (me.x - last_x).abs();
    let d = d.min(again.keyframe.size - d);
    assert!(d < 15.0, "parked at {} but last seen at {last_x}", me.x);
}

/// Case 8: in a graceful shutdown, every trade that was applied has its reply delivered before the 1001 close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owed_trade_replies_are_delivered_before_the_shutdown_close() {
    let mut server = TestServer::start().await;
    let data_dir = server.data_dir.clone();
    let mut traders = Vec::new();
    for i in 0..20 {
        let (token, _) = server.guest(&format!("Trader{i}")).await;
        let j = Client::join(&server, &token, Encoding::Binary).await;
        traders.push((token, j));
    }
    let mut sent = Vec::new();
    for (_, j) in &mut traders {
        let station = j.keyframe.stations[0].clone();
        let listing = *station.commodities.iter().find(|l| l.quantity >= 1).unwrap();
        let id = j
            .client
            .command(Command::Trade {
                station: station.id,
                commodity: listing.commodity,
                side: Side::Buy,
                qty: 1,
                key: None,
            })
            .await;
        sent.push((id, j.profile.credits));
    }
    let stopping = tokio::spawn(async move {
        server.stop().await;
    });
    let mut acknowledged = Vec::new();
    for ((_, j), (id, _)) in traders.iter_mut().zip(&sent) {
        let mut got = false;
        let code = loop {
            match tokio::time::timeout(WAIT, j.client.ws_next())
                .await
                .expect("close in time")
            {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(c))) => break c.map(|c| u16::from(c.code)),
                Some(Ok(m)) => {
                    if let Some(frame) = j.client.decode(&m) {
                        if frame.id == Some(*id) && matches!(frame.msg, ServerMessage::Game(Event::TradeResult { .. }))
                        {
                            got = true;
                        }
                    }
                }
                _ => break None,
            }
        };
        assert_eq!(code, Some(1001));
        acknowledged.push(got);
    }
    stopping.await.unwrap();
    let server = TestServer::start_with(config(data_dir)).await;
    for (((token, _), (_, credits_before)), acked) in traders.iter().zip(&sent).zip(&acknowledged) {
        let again = Client::join(&server, token, Encoding::Json).await;
        let applied = again.profile.credits != *credits_before;
        assert_eq!(
            applied, *acked,
            "a trade was applied ({applied}) but its reply arrived ({acked})"
        );
    }
}

/// Case 4, a client that stopped reading while its sector kept streaming to it: its receive window is full, so a
/// FIN could never reach it; the server must still end the connection at the timeout (it resets it) and release
/// the character, rather than leave the socket open in the kernel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stopped_reading_is_reset_at_the_timeout() {
    let mut cfg = config(temp_dir());
    cfg.engine.ws_ping_interval = Duration::from_millis(500);
    cfg.engine.ws_timeout = Duration::from_secs(2);
    let server = TestServer::start_with(cfg).await;
    let (mover_token, _) = server.guest("Mover").await;
    let mut mover = Client::join(&server, &mover_token, Encoding::Json).await;
    mover.client.command(Command::Thrust { vx: 3.0, vy: 2.0 }).await;
    // The mover reads everything (and so answers the liveness pings) until the test ends.
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = mover.client.ws_next().await {} });

    // A tiny receive buffer, never read: the keyframe and the mover's deltas close its window at once.
    let (token, character) = server.guest("Stalled").await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut stalled = socket.connect(server.addr()).await.unwrap();
    stalled
        .write_all(raw::upgrade_request(&token, "").as_bytes())
        .await
        .unwrap();
    let local = stalled.local_addr().unwrap();
    assert!(wait_for(async || sessions(&server).await == 2, Duration::from_secs(5)).await);
    assert!(
        still_established(local),
        "the table lookup does not see an open connection"
    );

    assert!(
        wait_for(async || sessions(&server).await == 1, Duration::from_secs(6)).await,
        "the stalled session was not ended"
    );
    assert!(
        wait_for(async || !still_established(local), Duration::from_secs(3)).await,
        "the server timed the session out but the client's socket is still established"
    );
    // Its character is free again.
    let again = Client::join(&server, &token, Encoding::Binary).await;
    assert!(again.keyframe.ships.iter().any(|s| s.owner == character));
    assert!(!reader.is_finished(), "the mover's connection ended");
    drop(stalled);
}
