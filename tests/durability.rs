//! State survives restarts and crashes: graceful restart persistence, sector crash recovery with restart intensity,
//! and the one-sector-per-ship invariant under concurrent warps.

mod common;

use std::collections::HashMap;

use common::*;
use orrery_engine::spacetrade::{Command, Event, Side};
use orrery_protocol::{ClientMessage, Encoding, ServerMessage};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ships_credits_cargo_and_books_survive_a_server_restart() {
    let mut server = TestServer::start().await;
    let data_dir = server.data_dir.clone();
    let (token, character) = server.guest("Persistent").await;
    let j = Client::join(&server, &token, Encoding::Json).await;
    let left = j.trade_fly_and_leave(character).await;
    server.stop().await;

    let server = TestServer::start_with(config(data_dir)).await;
    let again = Client::join(&server, &token, Encoding::Binary).await;
    again.assert_as_left(character, &left);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sessions_with_1001_and_parks_their_ships() {
    let mut server = TestServer::start().await;
    let data_dir = server.data_dir.clone();
    let (token, character) = server.guest("Online").await;
    let mut j = Client::join(&server, &token, Encoding::Json).await;
    j.client.command(Command::Thrust { vx: -50.0, vy: 0.0 }).await;
    let (_, _, moving) = j.client.until_ship(character, |s| s.vx == -50.0).await;
    let x0 = moving.x;
    let stopping = tokio::spawn(async move {
        server.stop().await;
        server
    });
    assert_eq!(j.client.close_code().await, Some(1001));
    stopping.await.unwrap();
    let server = TestServer::start_with(config(data_dir)).await;
    let again = Client::join(&server, &token, Encoding::Json).await;
    let me = again.keyframe.ships.iter().find(|s| s.owner == character).unwrap();
    assert!(
        me.x < x0,
        "parked where it was when the server stopped, not where it was first seen"
    );
    assert_eq!(me.vx, -50.0, "velocity is kept too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_sector_restarts_from_its_last_state_and_resends_keyframes() {
    let server = TestServer::start().await;
    let (token, character) = server.guest("Survivor").await;
    let mut j = Client::join(&server, &token, Encoding::Binary).await;
    j.client.command(Command::Thrust { vx: 20.0, vy: 10.0 }).await;
    // The thrust is applied (visible) before the crash, so the restarted sector must still have it.
    let (seq_before, _, _) = j.client.until_ship(character, |s| s.vx == 20.0).await;
    let r = server
        .admin_post(&format!("/v1/admin/sectors/{}/crash", j.sector))
        .await;
    assert_eq!(r.status(), 202);
    // An unsolicited keyframe after the restart, with the ship still moving as before.
    let (seq, ship) = j
        .client
        .recv_until(|f| match &f.msg {
            ServerMessage::Keyframe { seq, body, .. } if f.id.is_none() => {
                Some((*seq, body.ships.iter().find(|s| s.owner == character).cloned()))
            }
            _ => None,
        })
        .await;
    assert!(seq >= seq_before, "sequence continues after a restart");
    let ship = ship.expect("ship survives the crash");
    assert_eq!((ship.vx, ship.vy), (20.0, 10.0));
    let (next, _, delta) = j.client.delta().await;
    assert!(next > seq);
    let h = j.client.view.ship_of(character).unwrap().h;
    assert!(
        delta.moves.items.iter().any(|m| m.h == h),
        "still moving after the restart"
    );
    assert!(server.metrics().await.contains("orrery_sector_restarts_total"));
    // Commands work again.
    let id = j.client.send(ClientMessage::Ping).await;
    assert_eq!(
        j.client
            .recv_until(|f| matches!(f.msg, ServerMessage::Pong).then_some(f.id))
            .await,
        Some(id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_restarts_escalate_to_a_region_restart_and_the_world_recovers() {
    let server = TestServer::start().await;
    let (token, character) = server.guest("Stubborn").await;
    let mut j = Client::join(&server, &token, Encoding::Json).await;
    let path = format!("/v1/admin/sectors/{}/crash", j.sector);
    for _ in 0..7 {
        assert_eq!(server.admin_post(&path).await.status(), 202);
        // Wait for the restart's keyframe before crashing again.
        j.client
            .recv_until(|f| matches!(&f.msg, ServerMessage::Keyframe { .. } if f.id.is_none()).then_some(()))
            .await;
    }
    let metrics = server.metrics().await;
    let region_restarts = metrics
        .lines()
        .find_map(|l| l.strip_prefix("orrery_region_restarts_total "))
        .map(|v| v.trim().parse::<f64>().unwrap())
        .unwrap_or(0.0);
    assert!(
        region_restarts >= 1.0,
        "the sixth restart within 10 s escalated:\n{metrics}"
    );
    j.client.command(Command::Thrust { vx: 1.0, vy: 1.0 }).await;
    j.client.until_ship(character, |s| s.vx == 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_warps_never_leave_a_ship_in_two_sectors_or_none() {
    let server = TestServer::start().await;
    let mut pilots = Vec::new();
    for i in 0..8 {
        let (t, c) = server.guest(&format!("Pilot{i}")).await;
        pilots.push((
            Client::join(&server, &t, if i % 2 == 0 { Encoding::Json } else { Encoding::Binary }).await,
            c,
        ));
    }
    let home = pilots[0].0.sector;
    let tasks: Vec<_> = pilots
        .into_iter()
        .enumerate()
        .map(|(i, (mut j, character))| {
            tokio::spawn(async move {
                let away = j.keyframe.warps[i % j.keyframe.warps.len()].to;
                let mut at = home;
                for hop in 0..12 {
                    let to = if at == home { away } else { home };
                    match j.client.warp(to).await {
                        Ok(to) => at = to,
                        Err(code) => assert_eq!(code, "not_enough_turns", "hop {hop}"),
                    }
                }
                (j, character, at)
            })
        })
        .collect();
    let mut finished = Vec::new();
    for t in tasks {
        finished.push(t.await.unwrap());
    }
    // Every ship is seen in exactly one sector: the one its pilot was told it is in.
    let mut seen: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (j, _, at) in finished.iter_mut() {
        let id = j.client.send(ClientMessage::Resync).await;
        let (sector, ships) = j
            .client
            .recv_until(|f| match &f.msg {
                ServerMessage::Keyframe { sector, body, .. } if f.id == Some(id) => Some((*sector, body.ships.clone())),
                _ => None,
            })
            .await;
        assert_eq!(sector, *at);
        for s in ships {
            let list = seen.entry(s.owner).or_default();
            if !list.contains(&sector) {
                list.push(sector);
            }
        }
    }
    for (_, character, at) in &finished {
        assert_eq!(seen.get(character), Some(&vec![*at]), "ship of {character}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_trade_survives_kill_9() {
    let data_dir = temp_dir();
    let mut process = Process::start(&data_dir);
    let server = TestServer::remote(process.addr);
    let (token, _) = server.guest("Durable").await;
    let mut j = Client::join(&server, &token, Encoding::Binary).await;
    let station = j.keyframe.stations[0].clone();
    let listing = *station.commodities.iter().find(|l| l.quantity >= 4).unwrap();
    let mut last = None;
    for _ in 0..2 {
        let result = j.client.trade(station.id, listing.commodity, Side::Buy, 2).await;
        last = Some(result.expect("trade accepted"));
    }
    // The acknowledgement has arrived: kill the server at once, no graceful anything.
    process.child.kill().unwrap();
    process.child.wait().unwrap();
    let Some(Event::TradeResult {
        credits,
        cargo,
        station_quantity,
        ..
    }) = last
    else {
        unreachable!()
    };

    let process = Process::start(&data_dir);
    let server = TestServer::remote(process.addr);
    let again = Client::join(&server, &token, Encoding::Json).await;
    assert_eq!(again.profile.credits, credits, "acknowledged credits survive");
    assert_eq!(again.profile.cargo, cargo, "acknowledged cargo survives");
    assert_eq!(
        again.stock(station.id, listing.commodity),
        station_quantity,
        "the station's stock survives too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_writes_are_measured_batch_by_batch() {
    let server = TestServer::start().await;
    let r = server.admin_post("/v1/admin/snapshot").await;
    assert_eq!(r.status(), 200);
    // The admin snapshot is one batch holding every sector (2 regions of 6 in the test galaxy, and the nexus).
    assert!(server.metric("orrery_snapshot_batch_sectors_count").await >= 1.0);
    assert!(server.metric("orrery_snapshot_batch_sectors_sum").await >= 12.0);
    assert!(server.metric("orrery_snapshot_write_seconds_count").await >= 1.0);
    assert!(server.metrics().await.contains("orrery_persist_queue_depth"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_lag_of_a_region_grows_while_a_change_is_unwritten_and_clears_once_it_is_written() {
    let mut cfg = config(temp_dir());
    // No periodic snapshot while the ship moves: only the rest that follows its stop writes the sector.
    cfg.engine.snapshot_interval = std::time::Duration::from_secs(3600);
    let server = TestServer::start_with(cfg).await;
    let (token, character) = server.guest("Laggard").await;
    let mut j = Client::join(&server, &token, Encoding::Json).await;
    j.client.command(Command::Thrust { vx: 5.0, vy: 5.0 }).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.metric("orrery_snapshot_lag_seconds").await < 1.5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lag never grew while the ship moved"
        );
        j.client.delta().await;
    }
    j.client.command(Command::Thrust { vx: 0.0, vy: 0.0 }).await;
    j.client.until_ship(character, |s| s.vx == 0.0 && s.vy == 0.0).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.metric("orrery_snapshot_lag_seconds").await > 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lag never cleared after the sector was written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `/readyz` is only served once every sector's actor runs, and counts them: a stopped region's sectors are not
/// running, a crashed sector is running again once restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_counts_running_sectors() {
    let server = TestServer::start().await;
    let galaxy = orrery_engine::galaxy::generate(small_galaxy());
    let total = galaxy.sector_count() as u64;
    let sectors = || async {
        let v = server.get_json("/readyz").await;
        (
            v["sectors"]["total"].as_u64().unwrap(),
            v["sectors"]["running"].as_u64().unwrap(),
        )
    };
    assert_eq!(sectors().await, (total, total), "ready means every sector runs");

    let region = galaxy.regions.iter().find(|r| !r.nexus).unwrap();
    let stop = format!("/v1/admin/regions/{}/stop", region.id);
    assert!(server.admin_post(&stop).await.status().is_success());
    assert_eq!(sectors().await, (total, total - region.sectors.len() as u64));
    let start = format!("/v1/admin/regions/{}/start", region.id);
    assert!(server.admin_post(&start).await.status().is_success());
    assert_eq!(sectors().await, (total, total));

    let crash = format!("/v1/admin/sectors/{}/crash", region.sectors[0].id);
    assert_eq!(server.admin_post(&crash).await.status(), 202);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while sectors().await != (total, total) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the crashed sector is running again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
