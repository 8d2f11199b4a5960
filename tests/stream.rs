//! Welcome, keyframe and delta streaming over real WebSocket connections, in both encodings.

mod common;

use common::*;
use orrery_engine::spacetrade::Command;
use orrery_protocol::{ClientMessage, Encoding, ServerMessage};

async fn thrust_shows_in_consecutive_deltas(encoding: Encoding) {
    let server = TestServer::start().await;
    let (token, character) = server.guest("Ada").await;
    let Joined {
        mut client,
        profile,
        keyframe,
        seq,
        ..
    } = Client::join(&server, &token, encoding).await;
    assert_eq!(profile.id, character);
    assert_eq!(profile.name, "Ada");
    assert_eq!(profile.credits, 10_000);
    let me = keyframe
        .ships
        .iter()
        .find(|s| s.owner == character)
        .expect("own ship in keyframe");
    assert_eq!((me.vx, me.vy), (0.0, 0.0));
    let (x0, y0) = (me.x, me.y);

    client.command(Command::Thrust { vx: 40.0, vy: -20.0 }).await;
    // The first delta showing the new velocity; every later delta moves the ship by v * dt.
    // (Binary quantizes positions to 1/65535 of the sector, hence the tolerance.)
    let tol = 0.02;
    let (mut last_seq, mut last_tick, mut last) = client.until_ship(character, |s| s.vx == 40.0).await;
    assert!(last_seq > seq, "deltas continue the keyframe's sequence");
    assert_eq!(last.vy, -20.0);
    assert!((last.x - (x0 + 2.0)).abs() < tol, "moved one step of 40 * 0.05");
    assert!((last.y - (y0 - 1.0)).abs() < tol);
    for _ in 0..10 {
        let (seq, tick, _) = client.delta().await;
        assert_eq!(seq, last_seq + 1, "seq increases by one per delta");
        assert_eq!(tick, last_tick + 1, "a moving ship changes the sector every tick");
        let s = client.view.ship_of(character).expect("own ship in view").clone();
        assert!((s.x - (last.x + 2.0)).abs() < tol, "{} then {}", last.x, s.x);
        assert!((s.y - (last.y - 1.0)).abs() < tol);
        (last_seq, last_tick, last) = (seq, tick, s);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_client_sees_keyframe_then_deltas_of_its_thrust() {
    thrust_shows_in_consecutive_deltas(Encoding::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_client_sees_keyframe_then_deltas_of_its_thrust() {
    thrust_shows_in_consecutive_deltas(Encoding::Binary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltas_arrive_at_the_tick_rate() {
    let server = TestServer::start().await;
    let (token, _) = server.guest("Rate").await;
    let mut j = Client::join(&server, &token, Encoding::Binary).await;
    j.client.command(Command::Thrust { vx: 5.0, vy: 5.0 }).await;
    let (_, first_tick, _) = j.client.delta().await;
    let started = std::time::Instant::now();
    let mut n = 0u32;
    let mut tick = first_tick;
    while started.elapsed() < std::time::Duration::from_secs(2) {
        (_, tick, _) = j.client.delta().await;
        n += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = f64::from(n) / secs;
    assert!((10.0..=30.0).contains(&rate), "{rate:.1} deltas/s, expected about 20");
    assert_eq!(u64::from(n), tick - first_tick, "one delta per tick while moving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_ships_appear_and_leave_in_deltas() {
    let server = TestServer::start().await;
    let (t1, _) = server.guest("One").await;
    let (t2, c2) = server.guest("Two").await;
    let mut one = Client::join(&server, &t1, Encoding::Json).await;
    let two = Client::join(&server, &t2, Encoding::Binary).await;
    assert_eq!(one.sector, two.sector, "new characters start in the spawn sector");
    assert!(two.keyframe.ships.iter().any(|s| s.owner == c2));
    let (_, _, appeared) = one.client.until_ship(c2, |_| true).await;
    assert_eq!(appeared.name.as_ref(), "Two");
    two.client.close().await;
    one.client.until_gone(c2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_and_ping_are_answered_with_the_request_id() {
    let server = TestServer::start().await;
    let (token, character) = server.guest("Sync").await;
    let mut j = Client::join(&server, &token, Encoding::Json).await;
    let id = j.client.send(ClientMessage::Ping).await;
    let pong = j
        .client
        .recv_until(|f| matches!(f.msg, ServerMessage::Pong).then_some(f.id))
        .await;
    assert_eq!(pong, Some(id));
    let id = j.client.send(ClientMessage::Resync).await;
    let (rid, sector, ships) = j
        .client
        .recv_until(|f| match &f.msg {
            ServerMessage::Keyframe { sector, body, .. } => Some((f.id, *sector, body.ships.clone())),
            _ => None,
        })
        .await;
    assert_eq!(rid, Some(id));
    assert_eq!(sector, j.sector);
    assert!(ships.iter().any(|s| s.owner == character));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_frames_are_flat_objects_with_a_type() {
    use futures_util::StreamExt;
    let server = TestServer::start().await;
    let (token, _) = server.guest("Flat").await;
    let mut c = Client::connect(&server, &token, Encoding::Json).await;
    let text = |m: tokio_tungstenite::tungstenite::Message| m.into_text().unwrap().to_string();
    let welcome: serde_json::Value = serde_json::from_str(&text(c.ws.next().await.unwrap().unwrap())).unwrap();
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["tick_hz"], 20);
    assert!(welcome["character"]["credits"].is_u64());
    let keyframe: serde_json::Value = serde_json::from_str(&text(c.ws.next().await.unwrap().unwrap())).unwrap();
    assert_eq!(keyframe["type"], "keyframe");
    for field in ["sector", "seq", "tick", "ships", "stations", "warps"] {
        assert!(keyframe.get(field).is_some(), "keyframe has `{field}`: {keyframe}");
    }
    let ship = &keyframe["ships"][0];
    for field in ["id", "owner", "x", "y", "vx", "vy"] {
        assert!(ship.get(field).is_some(), "ship has `{field}`");
    }
}
