//! The admin control plane on a live server with connected players: broadcasts, kicks, pause and resume, tick
//! rate, sector restart, region stop and start, teleport, session search and sector statistics.

mod common;

use std::time::Duration;

use common::*;
use orrery_engine::spacetrade::Command;
use orrery_protocol::{ClientMessage, Encoding, ServerMessage};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// A region of the world's layout: (region id, nexus, sector ids).
type Region = (Uuid, bool, Vec<Uuid>);

/// The world's layout.
struct World {
    regions: Vec<Region>,
}

impl World {
    /// The first two non-nexus regions.
    fn two_regions(&self) -> (&Region, &Region) {
        let mut plain = self.regions.iter().filter(|r| !r.1);
        (plain.next().unwrap(), plain.next().unwrap())
    }
}

async fn start() -> (TestServer, World) {
    let mut c = config(temp_dir());
    c.allow_spawn_choice = true;
    let server = TestServer::start_with(c).await;
    let w = server.get_json("/v1/world").await;
    let regions = w["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().parse().unwrap(),
                r["nexus"].as_bool().unwrap_or(false),
                r["sectors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["id"].as_str().unwrap().parse().unwrap())
                    .collect(),
            )
        })
        .collect();
    (server, World { regions })
}

/// An admin request with the admin token: (status, JSON body).
async fn admin(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = match method {
        "GET" => server.http.get(server.url(path)),
        _ => server.http.post(server.url(path)),
    }
    .bearer_auth(ADMIN);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn ok(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, v) = admin(server, method, path, body).await;
    assert_eq!(status, StatusCode::OK, "{method} {path}: {v}");
    v
}

/// A guest in `sector`, joined: (client, character, token).
async fn player(server: &TestServer, name: &str, sector: Uuid) -> (Client, Uuid, String) {
    let (token, character) = server.guest_in(name, sector).await;
    let j = Client::join(server, &token, Encoding::Json).await;
    assert_eq!(j.sector, sector);
    (j.client, character, token)
}

/// The next `notice`: (scope, text).
async fn notice(c: &mut Client) -> (String, String) {
    c.recv_until(|f| match &f.msg {
        ServerMessage::Notice { scope, text } => Some((scope.clone(), text.clone())),
        _ => None,
    })
    .await
}

/// Reads frames for `within`; panics if one of them is a `notice`.
async fn no_notice(c: &mut Client, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, c.ws_next()).await {
        if let Some(f) = c.decode(&m) {
            assert!(
                !matches!(f.msg, ServerMessage::Notice { .. }),
                "a notice reached a player outside its scope"
            );
        }
    }
}

/// Reads frames until the close and returns its code (notices and others before it are skipped).
async fn closed_with(c: &mut Client) -> Option<u16> {
    c.close_code().await
}

/// The next `sector_paused`: (sector, paused).
async fn paused_msg(c: &mut Client) -> (Uuid, bool) {
    c.recv_until(|f| match &f.msg {
        ServerMessage::SectorPaused { sector, paused } => Some((*sector, *paused)),
        _ => None,
    })
    .await
}

fn sector_entry(list: &Value, id: Uuid) -> Value {
    entry(list, "sectors", id)
}

/// The entry of region `id` in a list of regions (`/v1/admin/regions`, `/v1/admin/supervision`).
fn region_entry(list: &Value, id: Uuid) -> Value {
    entry(list, "regions", id)
}

/// The element of `list[key]` whose `id` is `id`.
fn entry(list: &Value, key: &str, id: Uuid) -> Value {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == json!(id))
        .cloned()
        .unwrap_or_else(|| panic!("{key}: {id} listed"))
}

#[tokio::test]
async fn broadcasts_reach_their_scope_only_and_reads_show_who_is_where() {
    let (server, world) = start().await;
    let (a, b) = world.two_regions();
    let (a1, a2, b1) = (a.2[0], a.2[1], b.2[0]);
    let (mut p1, c1, _) = player(&server, "Alpha One", a1).await;
    let (mut p2, _, _) = player(&server, "Alpha Two", a2).await;
    let (mut p3, c3, _) = player(&server, "Bravo", b1).await;

    // Without the token, or with a wrong one: refused.
    let r = server
        .http
        .post(server.url("/v1/admin/broadcast"))
        .json(&json!({"scope": "global", "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = server
        .http
        .get(server.url("/v1/admin/sessions"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Global: everyone.
    let v = ok(
        &server,
        "POST",
        "/v1/admin/broadcast",
        Some(json!({"scope": "global", "text": "hello all"})),
    )
    .await;
    assert_eq!(v["reached"], 3);
    for p in [&mut p1, &mut p2, &mut p3] {
        assert_eq!(notice(p).await, ("global".to_owned(), "hello all".to_owned()));
    }
    // Region A: the two players there, not the one in region B.
    let v = ok(
        &server,
        "POST",
        "/v1/admin/broadcast",
        Some(json!({"scope": "region", "target": a.0, "text": "region A only"})),
    )
    .await;
    assert_eq!(v["reached"], 2);
    assert_eq!(notice(&mut p1).await.1, "region A only");
    assert_eq!(notice(&mut p2).await, ("region".to_owned(), "region A only".to_owned()));
    no_notice(&mut p3, Duration::from_millis(300)).await;
    // Sector a1: only its player.
    let v = ok(
        &server,
        "POST",
        "/v1/admin/broadcast",
        Some(json!({"scope": "sector", "target": a1, "text": "sector a1"})),
    )
    .await;
    assert_eq!(v["reached"], 1);
    assert_eq!(notice(&mut p1).await, ("sector".to_owned(), "sector a1".to_owned()));
    no_notice(&mut p2, Duration::from_millis(300)).await;

    let counted = server.metrics().await;
    assert!(
        counted.contains("orrery_admin_actions_total{action=\"broadcast\",outcome=\"ok\"}"),
        "controls are counted"
    );
    // Refusals name the field and the rule.
    let (s, v) = admin(
        &server,
        "POST",
        "/v1/admin/broadcast",
        Some(json!({"scope": "global", "text": "  "})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"].as_str().unwrap().contains("`text`"), "{v}");
    let long = "x".repeat(600);
    let (s, _) = admin(
        &server,
        "POST",
        "/v1/admin/broadcast",
        Some(json!({"scope": "global", "text": long})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = admin(
        &server,
        "POST",
        "/v1/admin/broadcast",
        Some(json!({"scope": "region", "text": "t"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"].as_str().unwrap().contains("`target`"), "{v}");
    let (s, v) = admin(
        &server,
        "POST",
        "/v1/admin/broadcast",
        Some(json!({"scope": "global", "text": "t", "txet": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"].as_str().unwrap().contains("txet"), "{v}");
    let (s, _) = admin(
        &server,
        "POST",
        "/v1/admin/broadcast",
        Some(json!({"scope": "sector", "target": Uuid::new_v4(), "text": "t"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Sessions: by name prefix (any case), by character id prefix.
    let v = ok(&server, "GET", "/v1/admin/sessions?q=alpha", None).await;
    let names: Vec<&str> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{v}");
    assert!(names.contains(&"Alpha One") && names.contains(&"Alpha Two"));
    let prefix = &c3.to_string()[..8];
    let v = ok(&server, "GET", &format!("/v1/admin/sessions?q={prefix}"), None).await;
    let s = &v["sessions"][0];
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(s["character"], json!(c3));
    assert_eq!(s["name"], "Bravo");
    assert_eq!(s["sector"], json!(b1));
    assert_eq!(s["region"], json!(b.0));
    assert!(s["account"].is_string() && s["address"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(s["connected_at"].as_i64().unwrap() > 0);
    let v = ok(&server, "GET", "/v1/admin/sessions?limit=1", None).await;
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(v["total"], 3);
    let (s, _) = admin(&server, "GET", "/v1/admin/sessions?limit=0", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Sectors: live statistics.
    let v = ok(&server, "GET", &format!("/v1/admin/sectors?region={}", a.0), None).await;
    assert_eq!(v["sectors"].as_array().unwrap().len(), a.2.len());
    let e = sector_entry(&v, a1);
    assert_eq!(e["ships"], 1, "{e}");
    assert_eq!(e["sessions"], 1);
    assert_eq!(e["running"], true);
    assert_eq!(e["paused"], false);
    assert_eq!(e["tick_hz"], 20);
    assert!(e["tick_p99_ms"].is_number() && e["overruns"].is_number() && e.get("last_snapshot_at").is_some());
    let e = sector_entry(&ok(&server, "GET", "/v1/admin/sectors", None).await, b1);
    assert_eq!(e["ships"], 1);
    // One sector's full state: its keyframe (with the ship) and its statistics.
    let v = ok(&server, "GET", &format!("/v1/admin/sectors/{a1}"), None).await;
    assert!(
        v["state"].to_string().contains(&c1.to_string()),
        "the ship is in the state: {v}"
    );
    assert_eq!(v["sessions"], 1);
    // The node and the regions.
    let v = ok(&server, "GET", "/v1/admin/nodes", None).await;
    let node = &v["nodes"][0];
    assert_eq!(node["sessions"], 3);
    assert_eq!(node["regions_running"], node["regions"]);
    let backend = match std::env::var(BACKEND_VAR).as_deref() {
        Ok("postgres") => "postgresql",
        _ => "sqlite",
    };
    assert_eq!(node["store"]["backend"], backend);
    assert_eq!(node["store"]["writable"], true);
    let v = ok(&server, "GET", "/v1/admin/regions", None).await;
    let ra = region_entry(&v, a.0);
    assert_eq!(ra["sessions"], 2);
    assert_eq!(ra["ships"], 2);
    assert_eq!(ra["running"], true);
    assert_eq!(ra["paused"], false);
    assert_eq!(ra["tick_hz"], 20);
}

#[tokio::test]
async fn a_kick_tells_the_player_closes_with_4003_and_the_character_can_log_in_again() {
    let (server, world) = start().await;
    let (a, _) = world.two_regions();
    let (mut p, character, token) = player(&server, "Kicked", a.2[0]).await;
    let v = ok(
        &server,
        "POST",
        "/v1/admin/kick",
        Some(json!({"character": character, "reason": "cool down"})),
    )
    .await;
    assert_eq!(v["parked"], true, "{v}");
    assert_eq!(notice(&mut p).await, ("kick".to_owned(), "cool down".to_owned()));
    assert_eq!(closed_with(&mut p).await, Some(4003));
    // Not online any more.
    let (s, _) = admin(&server, "POST", "/v1/admin/kick", Some(json!({"character": character}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = admin(&server, "POST", "/v1/admin/kick", Some(json!({"character": "nope"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"].as_str().unwrap().contains("character"), "{v}");
    // Logs in again, in the same sector, with its ship.
    let j = Client::join(&server, &token, Encoding::Json).await;
    assert_eq!(j.sector, a.2[0]);
    assert!(j.client.view.ship_of(character).is_some());
}

/// Reads frames for `within`; the x positions of `owner`'s ship seen in them.
async fn positions(c: &mut Client, owner: Uuid, within: Duration) -> Vec<f32> {
    let deadline = tokio::time::Instant::now() + within;
    let mut xs = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, c.ws_next()).await {
        if matches!(m, Message::Close(_)) {
            break;
        }
        if let Some(x) = c.apply_and_find(&m, owner) {
            xs.push(x);
        }
    }
    xs
}

#[tokio::test]
async fn a_paused_sector_stops_advancing_refuses_commands_and_resumes() {
    let (server, world) = start().await;
    let (a, _) = world.two_regions();
    let a1 = a.2[0];
    let (mut p, character, _) = player(&server, "Pilot", a1).await;
    p.command(Command::Thrust { vx: 5.0, vy: 0.0 }).await;
    let x0 = p.view.ship_of(character).unwrap().x;
    p.until_ship(character, |s| s.x > x0).await;

    let v = ok(&server, "POST", &format!("/v1/admin/sectors/{a1}/pause"), None).await;
    assert_eq!(v["paused"], true);
    assert_eq!(paused_msg(&mut p).await, (a1, true));
    // Still thrusting, but nothing moves.
    let xs = positions(&mut p, character, Duration::from_millis(600)).await;
    let here = p.view.ship_of(character).unwrap().x;
    assert!(xs.iter().all(|&x| x == here), "positions changed while paused: {xs:?}");
    let later = positions(&mut p, character, Duration::from_millis(400)).await;
    assert!(
        later.iter().all(|&x| x == here),
        "positions changed while paused: {later:?}"
    );
    assert_eq!(p.view.ship_of(character).unwrap().x, here);
    // Keyframes asked for while paused show the ship where it stopped, and the sector's tick standing still.
    let mut ticks = Vec::new();
    for _ in 0..2 {
        let id = p.send(ClientMessage::Resync).await;
        ticks.push(
            p.recv_until(|f| match &f.msg {
                ServerMessage::Keyframe { tick, .. } if f.id == Some(id) => Some(*tick),
                _ => None,
            })
            .await,
        );
        assert_eq!(
            p.view.ship_of(character).unwrap().x,
            here,
            "the keyframe shows the ship where it stopped"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(ticks[0], ticks[1], "no tick while paused");
    // Commands are refused; pings are answered.
    let id = p.command(Command::Thrust { vx: 1.0, vy: 0.0 }).await;
    let (code, message) = p.error_for(id).await;
    assert_eq!(code, "sector_paused", "{message}");
    let id = p.send(ClientMessage::Ping).await;
    p.recv_until(|f| matches!(f.msg, ServerMessage::Pong if f.id == Some(id)).then_some(()))
        .await;
    // A player entering the paused sector is told after its keyframe.
    let (token, _) = server.guest_in("Late", a1).await;
    let mut late = Client::join(&server, &token, Encoding::Json).await.client;
    assert_eq!(paused_msg(&mut late).await, (a1, true));
    let e = sector_entry(&ok(&server, "GET", "/v1/admin/sectors", None).await, a1);
    assert_eq!(e["paused"], true);

    let v = ok(&server, "POST", &format!("/v1/admin/sectors/{a1}/resume"), None).await;
    assert_eq!(v["paused"], false);
    assert_eq!(paused_msg(&mut p).await, (a1, false));
    p.until_ship(character, |s| s.x > here).await;

    // A whole region.
    let v = ok(&server, "POST", &format!("/v1/admin/regions/{}/pause", a.0), None).await;
    assert_eq!(v["sectors"], a.2.len());
    assert_eq!(paused_msg(&mut p).await, (a1, true));
    let regions = ok(&server, "GET", "/v1/admin/regions", None).await;
    let ra = region_entry(&regions, a.0);
    assert_eq!(ra["paused"], true);
    let id = p.command(Command::Thrust { vx: 2.0, vy: 0.0 }).await;
    assert_eq!(p.error_for(id).await.0, "sector_paused");
    ok(&server, "POST", &format!("/v1/admin/regions/{}/resume", a.0), None).await;
    assert_eq!(paused_msg(&mut p).await, (a1, false));
    let now = p.view.ship_of(character).unwrap().x;
    p.until_ship(character, |s| s.x > now).await;
}

#[tokio::test]
async fn a_region_tick_rate_change_shows_in_welcome_and_in_the_ticks() {
    let (server, world) = start().await;
    let (a, b) = world.two_regions();
    let a1 = a.2[0];
    for hz in [0, 61] {
        let (s, v) = admin(
            &server,
            "POST",
            &format!("/v1/admin/regions/{}/tick-rate", a.0),
            Some(json!({ "hz": hz })),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(
            v["error"]["message"].as_str().unwrap().contains("`hz` must be 1 to 60"),
            "{v}"
        );
    }
    let v = ok(
        &server,
        "POST",
        &format!("/v1/admin/regions/{}/tick-rate", a.0),
        Some(json!({ "hz": 5 })),
    )
    .await;
    assert_eq!(v["sectors"], a.2.len());
    let list = ok(&server, "GET", "/v1/admin/sectors", None).await;
    assert_eq!(sector_entry(&list, a1)["tick_hz"], 5);
    assert_eq!(sector_entry(&list, b.2[0])["tick_hz"], 20, "other regions keep theirs");

    // A client entering the region is told the new rate.
    let (token, character) = server.guest_in("Slow", a1).await;
    let mut c = Client::connect(&server, &token, Encoding::Json).await;
    match c.recv().await.msg {
        ServerMessage::Welcome { tick_hz, .. } => assert_eq!(tick_hz, 5),
        other => panic!("expected welcome, got {}", kind(&other)),
    }
    // Moving, the sector sends a delta per tick: about 5 per second, not 20.
    c.command(Command::Thrust { vx: 5.0, vy: 0.0 }).await;
    c.until_ship(character, |s| s.vx > 0.0).await;
    let (_, first, _) = c.delta().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, mut last, _) = c.delta().await;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(10), c.ws_next()).await {
        if let Some(f) = c.decode(&m) {
            if let ServerMessage::Delta { tick, .. } = f.msg {
                last = tick;
            }
        }
    }
    let ticks = last - first;
    assert!((3..=9).contains(&ticks), "{ticks} ticks in about a second at 5 Hz");
}

#[tokio::test]
async fn a_restarted_sector_keeps_its_ships_and_runs_again() {
    let (server, world) = start().await;
    let (a, _) = world.two_regions();
    let a1 = a.2[0];
    let (mut p, character, _) = player(&server, "Stays", a1).await;
    p.command(Command::Thrust { vx: 4.0, vy: 0.0 }).await;
    let x0 = p.view.ship_of(character).unwrap().x;
    p.until_ship(character, |s| s.x > x0).await;
    let seq_before = ok(&server, "GET", &format!("/v1/admin/sectors/{a1}"), None).await["seq"]
        .as_u64()
        .unwrap();
    let v = ok(&server, "POST", &format!("/v1/admin/sectors/{a1}/restart"), None).await;
    assert_eq!(v["was_running"], true, "{v}");
    let restart_tick = v["snapshot_tick"].as_u64().unwrap();
    assert!(restart_tick > 0);
    // The restarted sector sends a keyframe with the ship, and the ship goes on moving.
    let (seq, ship) = p
        .recv_until(|f| match &f.msg {
            ServerMessage::Keyframe { seq, .. } => Some(*seq),
            _ => None,
        })
        .await
        .pipe(|seq| (seq, p.view.ship_of(character).cloned()));
    let ship = ship.expect("the ship is in the restarted sector");
    assert!(seq >= seq_before, "the state is not older than before the restart");
    p.until_ship(character, |s| s.x > ship.x).await;
    let e = sector_entry(&ok(&server, "GET", "/v1/admin/sectors", None).await, a1);
    assert_eq!(e["running"], true);
    assert_eq!(e["ships"], 1);
    assert!(e["last_snapshot_at"].as_i64().unwrap() > 0, "{e}");
    // A snapshot of one sector answers with its tick once written.
    let v = ok(&server, "POST", &format!("/v1/admin/sectors/{a1}/snapshot"), None).await;
    assert!(v["tick"].as_u64().unwrap() > restart_tick, "{v}");
    assert_eq!(v["written"], true);
    let (s, _) = admin(
        &server,
        "POST",
        &format!("/v1/admin/sectors/{}/restart", Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[tokio::test]
async fn a_stopped_region_tells_and_closes_its_sessions_and_they_log_in_again_once_started() {
    let (server, world) = start().await;
    let (a, b) = world.two_regions();
    let (a1, b1) = (a.2[0], b.2[0]);
    let (mut p, character, token) = player(&server, "Stopped", a1).await;
    let (mut other, _, _) = player(&server, "Elsewhere", b1).await;
    let v = ok(&server, "POST", &format!("/v1/admin/regions/{}/stop", a.0), None).await;
    assert_eq!(v["running"], false);
    assert_eq!(v["drained"]["sectors_snapshotted"], a.2.len(), "{v}");
    assert_eq!(v["drained"]["snapshot_written"], true);
    assert_eq!(v["drained"]["sessions_closed"], 1);
    assert_eq!(v["drained"]["sessions_left"], 0);
    let (scope, _) = notice(&mut p).await;
    assert_eq!(scope, "region_stopped");
    assert_eq!(closed_with(&mut p).await, Some(4004));
    // The other region goes on.
    let id = other.send(ClientMessage::Ping).await;
    other
        .recv_until(|f| matches!(f.msg, ServerMessage::Pong if f.id == Some(id)).then_some(()))
        .await;
    let list = ok(&server, "GET", "/v1/admin/sectors", None).await;
    let e = sector_entry(&list, a1);
    assert_eq!(e["running"], false);
    assert!(e["last_snapshot_at"].as_i64().unwrap() > 0);
    let (s, v) = admin(&server, "POST", &format!("/v1/admin/sectors/{a1}/pause"), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let v = ok(&server, "GET", "/v1/admin/nodes", None).await;
    assert_eq!(v["nodes"][0]["sessions"], 1);

    let v = ok(&server, "POST", &format!("/v1/admin/regions/{}/start", a.0), None).await;
    assert_eq!(v["running"], true);
    let j = Client::join(&server, &token, Encoding::Json).await;
    assert_eq!(j.sector, a1);
    assert!(j.client.view.ship_of(character).is_some(), "the parked ship is back");
}

#[tokio::test]
async fn a_teleport_moves_the_ship_to_another_sector_exactly_once() {
    let (server, world) = start().await;
    let (a, b) = world.two_regions();
    let (a1, a2, b1) = (a.2[0], a.2[1], b.2[0]);
    let (mut p, character, _) = player(&server, "Jumper", a1).await;
    let (mut watcher_a, _, _) = player(&server, "WatchA", a1).await;
    let (mut watcher_b, _, _) = player(&server, "WatchB", b1).await;
    assert!(watcher_a.view.ship_of(character).is_some());

    let (s, v) = admin(
        &server,
        "POST",
        "/v1/admin/teleport",
        Some(json!({"character": character, "sector": b1, "x": 12.5})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"].as_str().unwrap().contains("`x` and `y`"), "{v}");
    let v = ok(
        &server,
        "POST",
        "/v1/admin/teleport",
        Some(json!({"character": character, "sector": b1, "x": 12.5, "y": 30.0})),
    )
    .await;
    assert_eq!(v["online"], true);
    let (from, to) = p
        .recv_until(|f| match &f.msg {
            ServerMessage::Warped { from, to } => Some((*from, *to)),
            _ => None,
        })
        .await;
    assert_eq!((from, to), (a1, b1));
    match p.recv().await.msg {
        ServerMessage::Keyframe { sector, .. } => assert_eq!(sector, b1),
        other => panic!("expected the keyframe of the new sector, got {}", kind(&other)),
    }
    let ship = p
        .view
        .ship_of(character)
        .expect("the ship is in the new sector")
        .clone();
    assert_eq!(
        (ship.x, ship.y, ship.vx, ship.vy),
        (12.5, 30.0, 0.0, 0.0),
        "put where asked, at rest"
    );
    watcher_a.until_gone(character).await;
    watcher_b.until_ship(character, |_| true).await;
    // Exactly one copy: in b1, in no other sector.
    let list = ok(&server, "GET", "/v1/admin/sectors", None).await;
    let ships: u64 = list["sectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ships"].as_u64().unwrap())
        .sum();
    assert_eq!(ships, 3, "three players, three ships: {list}");
    assert_eq!(sector_entry(&list, b1)["ships"], 2);
    assert_eq!(sector_entry(&list, a1)["ships"], 1);
    let sessions = ok(&server, "GET", &format!("/v1/admin/sessions?q={character}"), None).await;
    assert_eq!(sessions["sessions"][0]["sector"], json!(b1));

    // Refusals: the sector it is in already, an unknown sector, a character that never played.
    let (s, _) = admin(
        &server,
        "POST",
        "/v1/admin/teleport",
        Some(json!({"character": character, "sector": b1})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = admin(
        &server,
        "POST",
        "/v1/admin/teleport",
        Some(json!({"character": character, "sector": Uuid::new_v4()})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = admin(
        &server,
        "POST",
        "/v1/admin/teleport",
        Some(json!({"character": Uuid::new_v4(), "sector": a2})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A parked ship: moved where it is parked; it logs in there.
    let (mut q, parked, token) = player(&server, "Parked", a1).await;
    q.ws.close(None).await.ok();
    drop(q);
    let deadline = tokio::time::Instant::now() + WAIT;
    while ok(&server, "GET", &format!("/v1/admin/sessions?q={parked}"), None).await["total"] != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the session never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v = ok(
        &server,
        "POST",
        "/v1/admin/teleport",
        Some(json!({"character": parked, "sector": a2, "x": 40.0, "y": 50.0})),
    )
    .await;
    assert_eq!(v["online"], false);
    let j = Client::join(&server, &token, Encoding::Json).await;
    assert_eq!(j.sector, a2);
    let ship = j
        .client
        .view
        .ship_of(parked)
        .expect("the parked ship logs in where it was put");
    assert_eq!((ship.x, ship.y), (40.0, 50.0));
}

/// A plausible body for an admin endpoint (so that the refusal tested is the credential's, not the body's).
fn plausible_body(path: &str, id: Uuid) -> Option<Value> {
    match path {
        "/v1/admin/kick" => Some(json!({"character": id})),
        "/v1/admin/broadcast" => Some(json!({"scope": "global", "text": "hello"})),
        "/v1/admin/teleport" => Some(json!({"character": id, "sector": id})),
        p if p.ends_with("/tick-rate") => Some(json!({"hz": 10})),
        p if p.ends_with("/capabilities") => Some(json!({"capability": "operator"})),
        _ => None,
    }
}

/// Every route under `/v1/admin` (taken from the server's one route table, so a new one is covered as it is added):
/// no token is `401`, a player's token `403`, and neither leaves an audit row or does anything.
#[tokio::test]
async fn every_admin_endpoint_answers_401_without_a_token_and_403_to_a_player() {
    let (server, world) = start().await;
    let (player_token, _) = server.guest("Curious").await;
    let sector = world.regions[0].2[0];
    let routes = orrery_api::routes::<orrery_engine::spacetrade::SpaceTrade>();
    let admin_routes: Vec<_> = routes.iter().filter(|r| r.path.starts_with("/v1/admin")).collect();
    assert!(admin_routes.len() >= 25, "{} admin routes", admin_routes.len());
    // Each route twice: with a plausible request, and malformed (an id that is not a UUID, a body that is not
    // JSON). The gate runs before the handler reads anything, so the malformed one is refused for its credential
    // too (not `400`): a player learns nothing of what a valid request looks like.
    for route in admin_routes {
        let plausible = route
            .path
            .replace("{id}", &sector.to_string())
            .replace("{capability}", "operator");
        let malformed = route
            .path
            .replace("{id}", "not-a-uuid")
            .replace("{capability}", "NOT A CAPABILITY");
        for (path, malformed) in [(plausible, false), (malformed, true)] {
            for token in [None, Some(player_token.as_str())] {
                let mut req = server.http.request(route.method.clone(), server.url(&path));
                req = match (malformed, plausible_body(route.path, sector)) {
                    (true, _) => req.header("content-type", "application/json").body("{not json"),
                    (false, Some(body)) => req.json(&body),
                    (false, None) => req,
                };
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let expected = if token.is_some() { 403 } else { 401 };
                assert_eq!(status, expected, "{} {path} with {token:?}: {body}", route.method);
            }
        }
    }
    let audit = ok(&server, "GET", "/v1/admin/audit?limit=200", None).await;
    assert_eq!(
        audit["entries"],
        json!([]),
        "refused callers leave no audit row: {audit}"
    );
    let v = ok(&server, "GET", "/v1/admin/sectors", None).await;
    assert_eq!(sector_entry(&v, sector)["paused"], false);
}

/// Each control, done on a live server, leaves its audit row: who (the admin token), what, target, parameters and
/// the result.
#[tokio::test]
async fn every_control_leaves_an_audit_row_with_its_result() {
    let (server, world) = start().await;
    let (a, b) = world.two_regions();
    let (a1, b1) = (a.2[0], b.2[0]);
    let (_p, character, _) = player(&server, "Audited", a1).await;
    let (_q, kicked, _) = player(&server, "Kicked", b1).await;
    let controls: Vec<(&str, String, Option<Value>)> = vec![
        ("sector.pause", format!("/v1/admin/sectors/{a1}/pause"), None),
        ("sector.resume", format!("/v1/admin/sectors/{a1}/resume"), None),
        ("sector.snapshot", format!("/v1/admin/sectors/{a1}/snapshot"), None),
        ("sector.restart", format!("/v1/admin/sectors/{a1}/restart"), None),
        ("region.pause", format!("/v1/admin/regions/{}/pause", b.0), None),
        ("region.resume", format!("/v1/admin/regions/{}/resume", b.0), None),
        (
            "region.tick_rate",
            format!("/v1/admin/regions/{}/tick-rate", b.0),
            Some(json!({"hz": 10})),
        ),
        (
            "broadcast",
            "/v1/admin/broadcast".into(),
            Some(json!({"scope": "sector", "target": a1, "text": "maintenance soon"})),
        ),
        (
            "teleport",
            "/v1/admin/teleport".into(),
            Some(json!({"character": character, "sector": b1})),
        ),
        (
            "session.kick",
            "/v1/admin/kick".into(),
            Some(json!({"character": kicked, "reason": "testing"})),
        ),
        ("snapshot", "/v1/admin/snapshot".into(), None),
        ("region.stop", format!("/v1/admin/regions/{}/stop", a.0), None),
        ("region.start", format!("/v1/admin/regions/{}/start", a.0), None),
    ];
    for (_, path, body) in &controls {
        ok(&server, "POST", path, body.clone()).await;
    }
    let audit = ok(&server, "GET", "/v1/admin/audit?limit=200", None).await;
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), controls.len(), "{audit}");
    // Newest first: the log lists the controls in the reverse order they were made.
    for (entry, (action, _, body)) in entries.iter().rev().zip(&controls) {
        assert_eq!(entry["action"], *action, "{entry}");
        assert_eq!(entry["actor"], "token:admin", "{entry}");
        assert_eq!(entry["result"], "ok", "{entry}");
        assert!(entry["answer"].is_object(), "{entry}");
        if let Some(body) = body {
            for (k, v) in body.as_object().unwrap() {
                assert_eq!(&entry["params"][k], v, "{action}: parameter {k} in {entry}");
            }
        }
    }
    let kick = entries.iter().find(|e| e["action"] == "session.kick").unwrap();
    assert_eq!(kick["target"], json!(kicked.to_string()));
}

/// The admin API has a per-address rate limit of its own, counted before the credential: past the burst, admins and
/// strangers alike get `429 rate_limited` (with `Retry-After`), counted in
/// `orrery_http_rate_limited_total{route="admin"}`; the rest of the API is not affected.
#[tokio::test]
async fn the_admin_api_is_rate_limited_per_address() {
    let mut c = config(temp_dir());
    c.admin_requests = orrery_api::RateLimit {
        per_minute: 1,
        burst: 3,
    };
    let server = TestServer::start_with(c).await;
    for _ in 0..3 {
        let (status, v) = admin(&server, "GET", "/v1/admin/regions", None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let (status, v) = admin(&server, "GET", "/v1/admin/regions", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("admin"), "the message names the limit: {v}");
    // Without a credential too: the limit comes before the token is looked at.
    let resp = server.http.get(server.url("/v1/admin/sessions")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    // Other routes are not limited by it.
    let resp = server.http.get(server.url("/v1/world")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("orrery_http_rate_limited_total{route=\"admin\"}"),
        "the refusals are counted"
    );
}

/// `GET /v1/admin/supervision`: the tree (regions and their sectors, whether each runs, restarts since the node
/// started) and the history, newest first: a crash restarted by the supervisor, an operator's restart, a region
/// stopped and started again.
#[tokio::test]
async fn the_supervision_tree_and_its_history_show_every_restart_stop_and_start() {
    let (server, world) = start().await;
    let (a, b) = world.two_regions();
    let (a1, a2) = (a.2[0], a.2[1]);
    let v = ok(&server, "GET", "/v1/admin/supervision", None).await;
    assert_eq!(v["history"], json!([]), "{v}");
    assert_eq!(v["policy"]["strategy"], "one_for_one");
    // A crash (the debug hook): the region supervisor restarts the sector from its last state.
    let (s, body) = admin(&server, "POST", &format!("/v1/admin/sectors/{a1}/crash"), None).await;
    assert!(s.is_success(), "{body}");
    let mut history = Value::Null;
    for _ in 0..200 {
        let v = ok(&server, "GET", "/v1/admin/supervision", None).await;
        if v["history"].as_array().is_some_and(|h| !h.is_empty()) {
            history = v["history"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(history[0]["kind"], "sector_restarted", "{history}");
    assert_eq!(history[0]["sector"], json!(a1));
    assert_eq!(history[0]["region"], json!(a.0));
    assert!(!history[0]["reason"].as_str().unwrap().is_empty());
    ok(&server, "POST", &format!("/v1/admin/sectors/{a2}/restart"), None).await;
    ok(&server, "POST", &format!("/v1/admin/regions/{}/stop", b.0), None).await;
    let v = ok(&server, "GET", "/v1/admin/supervision", None).await;
    let region_b = region_entry(&v, b.0);
    assert_eq!(region_b["running"], false, "{region_b}");
    ok(&server, "POST", &format!("/v1/admin/regions/{}/start", b.0), None).await;
    let v = ok(&server, "GET", "/v1/admin/supervision", None).await;
    let kinds: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "region_started",
            "region_stopped",
            "sector_restarted_by_operator",
            "sector_restarted"
        ],
        "{v}"
    );
    let at: Vec<i64> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].as_i64().unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] >= w[1]), "newest first: {at:?}");
    let region_a = region_entry(&v, a.0);
    let restarts = |id: Uuid| sector_entry(&region_a, id)["restarts"].clone();
    assert_eq!((restarts(a1), restarts(a2)), (json!(1), json!(1)), "{region_a}");
    assert!(
        region_a["sectors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["running"] == true),
        "{region_a}"
    );
    assert_eq!(region_entry(&v, b.0)["running"], true);
    let v = ok(&server, "GET", "/v1/admin/supervision?limit=1", None).await;
    assert_eq!(v["history"].as_array().unwrap().len(), 1);
    let (s, v) = admin(&server, "GET", "/v1/admin/supervision?limit=0", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("limit"), "{v}");
}
