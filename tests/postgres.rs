//! The server on PostgreSQL (`--database-url`), end to end: migrations applied at start, guests, parked ships,
//! trades and sector snapshots kept across a restart; an unreachable database fails the start at once, naming it.
//! Each test has a scratch database of its own, dropped at its end. The store's behaviour and the migrator are
//! tested on both backends in `actors/src/store`.

mod common;

use common::*;
use orrery_actors::store::postgres::{test_admin_url, ScratchDatabase};
use orrery_protocol::Encoding;

async fn scratch() -> ScratchDatabase {
    ScratchDatabase::create(&test_admin_url())
        .await
        .expect("PostgreSQL for the tests (scripts/test.sh starts it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_postgres_keeps_ships_trades_and_sectors_across_a_restart() {
    let db = scratch().await;
    let mut cfg = config(temp_dir());
    cfg.database_url = Some(db.url.clone());
    let mut server = TestServer::start_with(cfg.clone()).await;
    let (token, character) = server.guest("Durable").await;
    let j = Client::join(&server, &token, Encoding::Json).await;
    let left = j.trade_fly_and_leave(character).await;
    server.stop().await;

    // Nothing of it was in the data directory: a new one, same database.
    cfg.data_dir = temp_dir();
    let server = TestServer::start_with(cfg).await;
    let again = Client::join(&server, &token, Encoding::Binary).await;
    again.assert_as_left(character, &left);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_against_an_unreachable_database_fails_fast_and_names_it() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = config(temp_dir());
    cfg.database_url = Some(format!("postgres://postgres@127.0.0.1:{port}/orrery"));
    let started = std::time::Instant::now();
    let err = orrery_api::start(cfg)
        .await
        .expect_err("no server without its database");
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{port}/orrery")),
        "{text}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
