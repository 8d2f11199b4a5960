//! `kill -9` while 500 clients move, warp and trade, then a restart on the same store (the embedded file, and a
//! scratch PostgreSQL database): every character finds exactly one ship, in exactly one sector (a ship in flight
//! between sectors lands in one of the two); every acknowledged trade is there, once (its key answers the original
//! result and changes nothing); what the ledger says every character and station holds is what it holds; no
//! ledger transaction is unbalanced.

mod common;

use std::collections::{HashMap, HashSet};

use common::economy::*;
use common::*;
use orrery_actors::store::postgres::{test_admin_url, ScratchDatabase};
use orrery_engine::spacetrade::{Command, Event, Side};
use orrery_protocol::{ClientMessage, Encoding, ServerMessage};
use uuid::Uuid;

const CLIENTS: usize = 500;

/// What one client did before the crash.
struct Played {
    token: String,
    character: Uuid,
    /// Sectors its ship may be in: where it was last acknowledged, and where an unanswered warp was going.
    may_be_in: HashSet<Uuid>,
    /// Acknowledged keyed trades: key, the trade, its result.
    acked: Vec<(String, Trade, Event)>,
    /// Kept open until the server dies.
    connection: Option<Joined>,
}

/// Plays one client: moves, then (by its number) trades twice with keys, or warps, or only moves; then sends one
/// more trade or warp and returns without waiting for the answer (it is in flight when the server dies).
async fn play(i: usize, mut j: Joined, token: String, character: Uuid) -> Played {
    let mut may_be_in = HashSet::from([j.sector]);
    let mut acked = Vec::new();
    j.client
        .command(Command::Thrust {
            vx: (i % 7) as f32 * 10.0 - 30.0,
            vy: (i % 5) as f32 * 10.0 - 20.0,
        })
        .await;
    let station = j.keyframe.stations.first().cloned();
    let warp = j.keyframe.warps.iter().min_by_key(|w| w.turns).cloned();
    match (i % 5, &station, &warp) {
        (0 | 1, Some(st), _) => {
            let listing = st.commodities[i % st.commodities.len()];
            for n in 0..2 {
                let key = format!("c{i}-t{n}");
                let trade = (st.id, listing.commodity, Side::Buy, 1 + (i % 3) as u32);
                if let Ok(result) = j
                    .client
                    .trade_keyed(trade.0, trade.1, trade.2, trade.3, Some(&key))
                    .await
                {
                    acked.push((key, trade, result));
                }
            }
        }
        (2, _, Some(w)) => {
            if let Ok(to) = j.client.warp(w.to).await {
                may_be_in.insert(to);
            }
        }
        _ => {}
    }
    // In flight at the crash.
    match (&station, &warp) {
        (Some(st), _) if i % 2 == 0 => {
            let listing = st.commodities[0];
            j.client
                .command(Command::Trade {
                    station: st.id,
                    commodity: listing.commodity,
                    side: Side::Buy,
                    qty: 1,
                    key: Some(format!("c{i}-inflight")),
                })
                .await;
        }
        (_, Some(w)) if i % 2 == 1 => {
            may_be_in.insert(w.to);
            j.client.command(Command::Warp { to: w.to }).await;
        }
        _ => {}
    }
    Played {
        token,
        character,
        may_be_in,
        acked,
        connection: Some(j),
    }
}

async fn crash_and_recover(db: Option<ScratchDatabase>) {
    let data_dir = temp_dir();
    let mut args = vec![
        "--admin-token".to_owned(),
        ADMIN.to_owned(),
        "--guest-logins-per-minute".to_owned(),
        "0".to_owned(),
        "--ledger-reads-per-minute".to_owned(),
        "0".to_owned(),
        "--allow-spawn-choice".to_owned(),
        // The checks after the restart visit the 500 clients one at a time while the others sit unread (not
        // answering pings): on a loaded machine that takes longer than the default 30 s liveness timeout, which
        // would close the idle ones (4002) mid-check.
        "--ws-timeout".to_owned(),
        "600".to_owned(),
        // The checks read every station's ledger through the admin API.
        "--admin-requests-per-minute".to_owned(),
        "0".to_owned(),
    ];
    if let Some(db) = &db {
        args.extend(["--database-url".to_owned(), db.url.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut process = Process::start_with(&data_dir, &args, None);
    let server = TestServer::remote(process.addr);
    let world = server.get_json("/v1/world").await;
    let sectors: Vec<Uuid> = world["regions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["sectors"].as_array().unwrap().iter())
        .map(|s| s["id"].as_str().unwrap().parse().unwrap())
        .collect();

    // 500 clients spread over every sector, joined 50 at a time.
    let mut plays = Vec::with_capacity(CLIENTS);
    for batch in 0..CLIENTS / 50 {
        let mut joins = Vec::new();
        for i in batch * 50..(batch + 1) * 50 {
            let server = TestServer::remote(process.addr);
            let sector = sectors[i % sectors.len()];
            joins.push(tokio::spawn(async move {
                let (token, character) = server.guest_in(&format!("P{i}"), sector).await;
                let j = Client::join(&server, &token, Encoding::Binary).await;
                (i, j, token, character)
            }));
        }
        for join in joins {
            let (i, j, token, character) = join.await.unwrap();
            plays.push(tokio::spawn(play(i, j, token, character)));
        }
    }
    let mut played: Vec<Played> = Vec::with_capacity(CLIENTS);
    for p in plays {
        played.push(p.await.unwrap());
    }
    let acked: usize = played.iter().map(|p| p.acked.len()).sum();
    assert!(acked >= 100, "most keyed trades were acknowledged ({acked})");

    // kill -9 with trades and warps in flight.
    process.child.kill().unwrap();
    process.child.wait().unwrap();
    for p in &mut played {
        p.connection = None;
    }
    let process = Process::start_with(&data_dir, &args, None);
    let server = TestServer::remote(process.addr);

    let mut rejoined = Vec::with_capacity(CLIENTS);
    for chunk in played.chunks(50) {
        let mut joins = Vec::new();
        for p in chunk {
            let server = TestServer::remote(process.addr);
            let token = p.token.clone();
            joins.push(tokio::spawn(async move {
                Client::join(&server, &token, Encoding::Binary).await
            }));
        }
        for join in joins {
            rejoined.push(join.await.unwrap());
        }
    }
    // Every acknowledged trade is there, once; the ledger agrees with what each character holds.
    for (p, j) in played.iter().zip(rejoined.iter_mut()) {
        assert!(
            p.may_be_in.contains(&j.sector),
            "{}: back in {}, which it was never in or warping to",
            p.character,
            j.sector
        );
        let now = profile_holdings(&j.profile);
        let ledger = get(
            &server,
            &format!("/v1/characters/{}/ledger", p.character),
            Some(&p.token),
        )
        .await
        .1;
        assert_eq!(balances(&ledger), now, "{}: ledger and state agree", p.character);
        for (key, (station, c, side, qty), result) in &p.acked {
            let repeat = j.client.trade_keyed(*station, *c, *side, *qty, Some(key)).await;
            assert_eq!(
                repeat.as_ref(),
                Ok(result),
                "{key}: acknowledged, so applied once and answered again"
            );
        }
        let after = get(
            &server,
            &format!("/v1/characters/{}/ledger", p.character),
            Some(&p.token),
        )
        .await
        .1;
        assert_eq!(balances(&after), now, "{}: repeats changed nothing", p.character);
    }
    // Exactly one ship per character, in exactly one sector: one fresh keyframe per occupied sector.
    let mut seen: HashMap<Uuid, Uuid> = HashMap::new();
    let mut stations_checked = 0;
    let mut probed = HashSet::new();
    for j in rejoined.iter_mut() {
        if !probed.insert(j.sector) {
            continue;
        }
        j.client.send(ClientMessage::Resync).await;
        let keyframe = j
            .client
            .recv_until(|f| match &f.msg {
                ServerMessage::Keyframe { body, .. } => Some(body.clone()),
                _ => None,
            })
            .await;
        for ship in &keyframe.ships {
            if let Some(other) = seen.insert(ship.owner, j.sector) {
                panic!("{}'s ship is in {other} and in {}", ship.owner, j.sector);
            }
        }
        for st in &keyframe.stations {
            let ledger = get(&server, &format!("/v1/admin/stations/{}/ledger", st.id), Some(ADMIN))
                .await
                .1;
            if !balances(&ledger).is_empty() {
                assert_eq!(balances(&ledger), station_holdings(st), "station {}", st.name);
                stations_checked += 1;
            }
        }
    }
    assert_eq!(seen.len(), CLIENTS, "every character has its ship, once");
    for p in &played {
        assert!(seen.contains_key(&p.character), "{}'s ship is back", p.character);
    }
    assert!(stations_checked > 0);
    audit(&server).await;
    drop(process);
}

/// One test, the two stores one after the other: 500 connections at a time is enough for one test process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_500_clients_loses_nothing_acknowledged_on_either_store() {
    crash_and_recover(None).await;
    let db = ScratchDatabase::create(&test_admin_url())
        .await
        .expect("PostgreSQL for the tests (scripts/test.sh starts it)");
    crash_and_recover(Some(db)).await;
}
