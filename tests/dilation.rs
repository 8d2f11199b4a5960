//! Time dilation end to end: a server whose tick budget no real tick can meet dilates every busy sector, tells its
//! clients (`time_dilation`, JSON and binary), keeps the game time per tick fixed, and counts the skipped ticks.

mod common;

use common::*;
use orrery_engine::spacetrade::Command;
use orrery_protocol::{Encoding, ServerMessage};

async fn a_sector_over_budget_tells_its_clients(encoding: Encoding) {
    let mut config = config(temp_dir());
    // 50 ns of work per tick: every tick of a sector with a ship in it is over budget.
    config.engine.tick_budget = 1e-6;
    config.engine.dilation_floor = 0.5;
    let server = TestServer::start_with(config).await;
    let (token, character) = server.guest("Slow").await;
    let mut j = Client::join(&server, &token, encoding).await;
    j.client.command(Command::Thrust { vx: 20.0, vy: 10.0 }).await;
    let factor = j
        .client
        .recv_until(|f| match f.msg {
            ServerMessage::TimeDilation { sector, factor } => Some((sector, factor)),
            _ => None,
        })
        .await;
    assert_eq!(factor, (j.sector, 0.5), "straight down to the floor");

    // Dilated, each tick is still one fixed step (20 * 0.05 = 1 unit in x), one tick number at a time.
    let (_, mut tick, _) = j.client.until_ship(character, |s| s.vx == 20.0).await;
    let mut x = j.client.view.ship_of(character).unwrap().x;
    for _ in 0..5 {
        let (_, t, _) = j.client.delta().await;
        assert_eq!(t, tick + 1);
        let now = j.client.view.ship_of(character).unwrap().x;
        assert!((now - x - 1.0).abs() < 0.02, "{x} then {now}");
        (tick, x) = (t, now);
    }
    assert!(server.metric("orrery_dilated_ticks_total").await > 0.0);

    // A second client entering the dilated sector hears the factor right after its keyframe.
    let (token, _) = server.guest("Late").await;
    let mut late = Client::join(&server, &token, encoding).await;
    assert_eq!(late.sector, j.sector, "guests start in the same sector");
    match late.client.recv().await.msg {
        ServerMessage::TimeDilation { sector, factor } => assert_eq!((sector, factor), (j.sector, 0.5)),
        other => panic!("expected time_dilation after the keyframe, got {}", kind(&other)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_clients_are_told_the_time_dilation() {
    a_sector_over_budget_tells_its_clients(Encoding::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_clients_are_told_the_time_dilation() {
    a_sector_over_budget_tells_its_clients(Encoding::Binary).await;
}
