//! The economy as a ledger, end to end on both backends: every acknowledged trade is a balanced double-entry
//! transaction written with the state it changed; what the ledger says each character and station holds is what
//! they hold; concurrent trading and `kill -9` conserve every asset; a keyed trade is applied once, also across a
//! reconnect and a restart; the ledger endpoints page, authorize and refuse bad input with typed errors.

mod common;

use std::collections::BTreeMap;

use common::economy::*;
use common::*;
use orrery_actors::store::postgres::{test_admin_url, ScratchDatabase};
use orrery_engine::galaxy::Commodity;
use orrery_engine::spacetrade::{Command, Event, Side, StationView};
use orrery_protocol::{ClientMessage, Encoding, ServerMessage};
use uuid::Uuid;

/// A tiny deterministic generator (no dependency): the same trades every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A random trade this trader can try: sell something held (half the time, if it holds anything), else buy.
fn pick_trade(
    rng: &mut Lcg,
    stations: &[StationView],
    held: &BTreeMap<Commodity, u32>,
) -> (Uuid, Commodity, Side, u32) {
    let station = &stations[rng.next(stations.len() as u64) as usize];
    let sellable: Vec<(Commodity, u32)> = held
        .iter()
        .filter(|(c, &q)| q > 0 && station.commodities.iter().any(|l| l.commodity == **c))
        .map(|(c, q)| (*c, *q))
        .collect();
    if !sellable.is_empty() && rng.next(2) == 0 {
        let (c, q) = sellable[rng.next(sellable.len() as u64) as usize];
        return (station.id, c, Side::Sell, 1 + rng.next(u64::from(q)) as u32);
    }
    let listing = &station.commodities[rng.next(station.commodities.len() as u64) as usize];
    (station.id, listing.commodity, Side::Buy, 1 + rng.next(5) as u32)
}

/// The stores to run against: the embedded file, and a scratch PostgreSQL database (dropped at the end).
async fn backends() -> Vec<Option<ScratchDatabase>> {
    let db = ScratchDatabase::create(&test_admin_url())
        .await
        .expect("PostgreSQL for the tests (scripts/test.sh starts it)");
    vec![None, Some(db)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_trading_conserves_every_asset_and_the_ledger_matches_what_everyone_holds() {
    for db in backends().await {
        let mut cfg = config(temp_dir());
        cfg.database_url = db.as_ref().map(|d| d.url.clone());
        let mut server = TestServer::start_with(cfg).await;
        let mut traders = Vec::new();
        for i in 0..8 {
            let (token, character) = server.guest(&format!("Trader{i}")).await;
            let encoding = if i % 2 == 0 { Encoding::Json } else { Encoding::Binary };
            traders.push((token.clone(), character, Client::join(&server, &token, encoding).await));
        }
        let stations = traders[0].2.keyframe.stations.clone();
        assert!(!stations.is_empty(), "the spawn sector has stations");
        let sector = traders[0].2.sector;
        // Everyone trades at once: 25 random trades each, refusals included.
        let mut tasks = Vec::new();
        for (i, (token, character, mut joined)) in traders.into_iter().enumerate() {
            assert_eq!(joined.sector, sector);
            let stations = stations.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = Lcg(i as u64 + 1);
                let mut now = profile_holdings(&joined.profile);
                let mut held = joined.profile.cargo.clone();
                let mut accepted = 0;
                for _ in 0..25 {
                    let (station, c, side, qty) = pick_trade(&mut rng, &stations, &held);
                    if let Ok(result) = joined.client.trade(station, c, side, qty).await {
                        let Event::TradeResult { cargo, .. } = &result;
                        held = cargo.clone();
                        now = result_holdings(&result);
                        accepted += 1;
                    }
                }
                (token, character, now, accepted, joined)
            }));
        }
        let mut total = Holdings::new();
        let mut accepted = 0;
        let mut clients = Vec::new();
        for t in tasks {
            let (token, character, holds, n, joined) = t.await.unwrap();
            assert_eq!(
                character_balances(&server, character, &token).await,
                holds,
                "the ledger of {character} says what its last trade_result said"
            );
            add(&mut total, &holds);
            accepted += n;
            clients.push(joined);
        }
        assert!(accepted >= 100, "most trades went through ({accepted} of 200)");
        // The stations now, from a fresh keyframe.
        let probe = &mut clients[0].client;
        probe.send(ClientMessage::Resync).await;
        let keyframe = probe
            .recv_until(|f| match &f.msg {
                ServerMessage::Keyframe { body, .. } => Some(body.clone()),
                _ => None,
            })
            .await;
        for st in &keyframe.stations {
            let holds = station_holdings(st);
            assert_eq!(station_balances(&server, st.id).await, holds, "station {}", st.name);
            add(&mut total, &holds);
        }
        total.retain(|_, v| *v != 0);
        // Only this sector and these characters ever held anything, so together they hold what was issued.
        assert_eq!(audit(&server).await, total, "every asset is conserved");
        server.stop().await;
    }
}

/// The server's flags for `db` (PostgreSQL when given), with the admin token.
fn flags(db: &Option<ScratchDatabase>) -> Vec<String> {
    let mut f = vec![
        "--admin-token".to_owned(),
        ADMIN.to_owned(),
        "--ledger-reads-per-minute".to_owned(),
        "0".to_owned(),
    ];
    if let Some(db) = db {
        f.extend(["--database-url".to_owned(), db.url.clone()]);
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_every_acknowledged_trade_is_there_once_and_the_ledger_still_balances() {
    for db in backends().await {
        let data_dir = temp_dir();
        let args = flags(&db);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut process = Process::start_with(&data_dir, &args, None);
        let server = TestServer::remote(process.addr);
        let mut traders = Vec::new();
        for i in 0..6 {
            let (token, character) = server.guest(&format!("Crash{i}")).await;
            traders.push((
                token.clone(),
                character,
                Client::join(&server, &token, Encoding::Binary).await,
            ));
        }
        let stations = traders[0].2.keyframe.stations.clone();
        let mut tasks = Vec::new();
        for (i, (token, character, mut joined)) in traders.into_iter().enumerate() {
            let stations = stations.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = Lcg(100 + i as u64);
                let mut held = joined.profile.cargo.clone();
                let mut acked = Vec::new();
                joined.client.command(Command::Thrust { vx: 20.0, vy: -10.0 }).await;
                for n in 0..12 {
                    let (station, c, side, qty) = pick_trade(&mut rng, &stations, &held);
                    let key = format!("crash-{i}-{n}");
                    if let Ok(result) = joined.client.trade_keyed(station, c, side, qty, Some(&key)).await {
                        let Event::TradeResult { cargo, .. } = &result;
                        held = cargo.clone();
                        acked.push((key, (station, c, side, qty), result));
                    }
                }
                let last = acked
                    .last()
                    .map_or_else(|| profile_holdings(&joined.profile), |(_, _, r)| result_holdings(r));
                // One more, in flight when the server dies: it may or may not have been committed.
                let inflight = pick_trade(&mut rng, &stations, &held);
                let (station, commodity, side, qty) = inflight;
                let key = format!("crash-{i}-inflight");
                joined
                    .client
                    .command(Command::Trade {
                        station,
                        commodity,
                        side,
                        qty,
                        key: Some(key.clone()),
                    })
                    .await;
                (token, character, acked, last, (key, inflight), joined)
            }));
        }
        let mut traders = Vec::new();
        for t in tasks {
            traders.push(t.await.unwrap());
        }
        // kill -9, with trades in flight.
        process.child.kill().unwrap();
        process.child.wait().unwrap();

        let process = Process::start_with(&data_dir, &args, None);
        let server = TestServer::remote(process.addr);
        let mut total = Holdings::new();
        for (token, character, acked, last, (key, inflight), _) in &traders {
            let mut again = Client::join(&server, token, Encoding::Json).await;
            let now = profile_holdings(&again.profile);
            // What the ledger says the character holds is what it holds.
            let ledger = character_balances(&server, *character, token).await;
            assert_eq!(ledger, now, "{character}: ledger and state agree after the crash");
            // Every acknowledged trade is there, once: repeating it with its key answers the original result and
            // changes nothing.
            for (key, (station, c, side, qty), result) in acked {
                let repeat = again.client.trade_keyed(*station, *c, *side, *qty, Some(key)).await;
                assert_eq!(repeat.as_ref(), Ok(result), "{key}");
            }
            assert_eq!(
                character_balances(&server, *character, token).await,
                now,
                "repeats changed nothing"
            );
            // The trade in flight at the crash: either it was committed (its key answers its stored result, which
            // is what the character holds), or the state is the last acknowledged one and it applies now.
            let (station, c, side, qty) = *inflight;
            let repeat = again.client.trade_keyed(station, c, side, qty, Some(key)).await;
            let after = character_balances(&server, *character, token).await;
            match repeat {
                Ok(result) if after == now => assert_eq!(result_holdings(&result), now, "{key} was committed"),
                Ok(result) => {
                    assert_eq!(&now, last, "{key} was lost, so the state is the last acknowledged one");
                    assert_eq!(result_holdings(&result), after);
                }
                Err(code) => {
                    assert_eq!(
                        &now, last,
                        "{key} was lost ({code} now), so the state is the last acknowledged one"
                    );
                    assert_eq!(after, now);
                }
            }
            add(&mut total, &after);
            again.client.close().await;
        }
        let probe = Client::join(&server, &traders[0].0, Encoding::Json).await;
        for st in &probe.keyframe.stations {
            let holds = station_holdings(st);
            assert_eq!(station_balances(&server, st.id).await, holds, "station {}", st.name);
            add(&mut total, &holds);
        }
        total.retain(|_, v| *v != 0);
        assert_eq!(audit(&server).await, total, "every asset is conserved across the crash");
        drop(process);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_trade_is_applied_once_and_its_repeats_get_the_original_answer() {
    let server = TestServer::start().await;
    let (token, character) = server.guest("Keyed").await;
    let mut j = Client::join(&server, &token, Encoding::Json).await;
    let station = j.keyframe.stations[0].clone();
    let listing = station.commodities[0];
    let start = profile_holdings(&j.profile);
    let buy = |key: &str| Command::Trade {
        station: station.id,
        commodity: listing.commodity,
        side: Side::Buy,
        qty: 2,
        key: Some(key.to_owned()),
    };
    // Bad keys are refused before anything happens.
    for bad in [String::new(), "k".repeat(orrery_protocol::MAX_COMMAND_KEY + 1)] {
        let id = j.client.command(buy(&bad)).await;
        let (code, message) = j.client.error_for(id).await;
        assert_eq!(code, "invalid_key");
        assert!(message.contains("1 to 64 bytes"), "{message}");
    }
    // The same keyed trade twice, back to back: both answered with the same result, applied once.
    let first = j.client.command(buy("order-1")).await;
    let second = j.client.command(buy("order-1")).await;
    let a = j.client.answer(first).await.expect("accepted");
    let b = j.client.answer(second).await.expect("answered like the first");
    assert_eq!(a, b);
    let Event::TradeResult { total, credits, .. } = &a;
    assert_eq!(*credits as i64, start["credits"] - *total as i64, "charged once");
    // A refused keyed command is not remembered: the key can be used again.
    let id = j
        .client
        .command(Command::Trade {
            station: station.id,
            commodity: listing.commodity,
            side: Side::Sell,
            qty: 1_000,
            key: Some("order-2".into()),
        })
        .await;
    assert_eq!(j.client.answer(id).await.unwrap_err(), "not_enough_cargo");
    let c = j
        .client
        .trade_keyed(station.id, listing.commodity, Side::Sell, 1, Some("order-2"))
        .await
        .unwrap();
    // After a reconnect, the repeat is answered from the database with the original result.
    j.client.close().await;
    let mut j = Client::join(&server, &token, Encoding::Binary).await;
    assert_eq!(profile_holdings(&j.profile), result_holdings(&c));
    let again = j
        .client
        .trade_keyed(station.id, listing.commodity, Side::Buy, 2, Some("order-1"))
        .await;
    assert_eq!(again, Ok(a.clone()));
    assert_eq!(
        character_balances(&server, character, &token).await,
        result_holdings(&c)
    );

    // The ledger, page by page (one transaction each): the opening, then the two trades, newest first.
    let mut seen = Vec::new();
    let mut path = format!("/v1/characters/{character}/ledger?limit=1");
    loop {
        let (status, body) = get(&server, &path, Some(&token)).await;
        assert_eq!(status, 200, "{body}");
        let txs = body["transactions"].as_array().unwrap().clone();
        assert!(txs.len() <= 1);
        seen.extend(txs);
        match body["next"].as_str() {
            Some(next) => path = format!("/v1/characters/{character}/ledger?limit=1&before={next}"),
            None => break,
        }
    }
    let kinds: Vec<&str> = seen.iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["trade", "trade", "opening"]);
    assert_eq!(seen[1]["key"], "order-1");
    let mut summed = Holdings::new();
    for t in &seen {
        for e in t["entries"].as_array().unwrap() {
            *summed.entry(e["asset"].as_str().unwrap().to_owned()).or_default() += e["amount"].as_i64().unwrap();
        }
    }
    summed.retain(|_, v| *v != 0);
    assert_eq!(summed, result_holdings(&c), "the pages add up to the balances");

    // Who may read it, and typed refusals.
    let (other_token, _) = server.guest("Nosy").await;
    let own = format!("/v1/characters/{character}/ledger");
    let cases = [
        (own.clone(), None, 401, "unauthorized"),
        (own.clone(), Some(other_token.as_str()), 403, "not_yours"),
        (format!("{own}?limit=0"), Some(token.as_str()), 400, "invalid_limit"),
        (format!("{own}?limit=201"), Some(token.as_str()), 400, "invalid_limit"),
        (
            format!("{own}?before=yesterday"),
            Some(token.as_str()),
            400,
            "invalid_cursor",
        ),
        (format!("{own}?page=2"), Some(token.as_str()), 400, "invalid_query"),
        (
            "/v1/characters/42/ledger".to_owned(),
            Some(token.as_str()),
            400,
            "invalid_id",
        ),
        (
            format!("/v1/admin/stations/{}/ledger", station.id),
            Some(token.as_str()),
            403,
            "forbidden",
        ),
        ("/v1/admin/ledger/audit".to_owned(), None, 401, "unauthorized"),
    ];
    for (path, token, status, code) in cases {
        let (got, body) = get(&server, &path, token).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, _) = get(&server, &own, Some(ADMIN)).await;
    assert_eq!(status, 200, "an admin reads any character's ledger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_reads_are_rate_limited_per_address() {
    let mut cfg = config(temp_dir());
    cfg.ledger_reads = orrery_api::RateLimit {
        per_minute: 1,
        burst: 2,
    };
    let server = TestServer::start_with(cfg).await;
    let (token, character) = server.guest("Reader").await;
    let path = format!("/v1/characters/{character}/ledger");
    for _ in 0..2 {
        assert_eq!(get(&server, &path, Some(&token)).await.0, 200);
    }
    let resp = server
        .http
        .get(server.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("ledger:"),
        "{body}"
    );
    // The admin views count against the same address.
    assert_eq!(get(&server, "/v1/admin/ledger/audit", Some(ADMIN)).await.0, 429);
    assert!(server.metric("orrery_http_rate_limited_total").await >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sector_that_crashes_replays_its_trades_without_writing_their_ledger_entries_twice() {
    let server = TestServer::start().await;
    let (token, character) = server.guest("Replayed").await;
    let mut j = Client::join(&server, &token, Encoding::Json).await;
    let station = j.keyframe.stations[0].clone();
    let listing = station.commodities[0];
    for n in 0..3 {
        let key = format!("before-crash-{n}");
        j.client
            .trade_keyed(station.id, listing.commodity, Side::Buy, 1, Some(&key))
            .await
            .expect("accepted");
    }
    let last = j
        .client
        .trade(station.id, listing.commodity, Side::Sell, 1)
        .await
        .expect("accepted");
    let (_, before) = get(&server, "/v1/admin/ledger/audit", Some(ADMIN)).await;
    // The sector's actor dies; its successor replays the journal (the four trades among it) on the checkpoint.
    let r = server
        .admin_post(&format!("/v1/admin/sectors/{}/crash", j.sector))
        .await;
    assert_eq!(r.status(), 202);
    j.client
        .recv_until(|f| matches!(&f.msg, ServerMessage::Keyframe { .. } if f.id.is_none()).then_some(()))
        .await;
    // The restarted sector writes again (a trade), with everything it still owes.
    let after_crash = j
        .client
        .trade(station.id, listing.commodity, Side::Buy, 1)
        .await
        .expect("accepted");
    let (_, after) = get(&server, "/v1/admin/ledger/audit", Some(ADMIN)).await;
    assert_eq!(
        after["transactions"].as_u64().unwrap(),
        before["transactions"].as_u64().unwrap() + 1,
        "only the new trade was added: {before} -> {after}"
    );
    assert_eq!(after["unbalanced"], 0);
    assert_eq!(
        character_balances(&server, character, &token).await,
        result_holdings(&after_crash)
    );
    assert_ne!(result_holdings(&last), result_holdings(&after_crash));
    // A repeat of a keyed trade from before the crash is still answered, not applied.
    let again = j
        .client
        .trade_keyed(station.id, listing.commodity, Side::Buy, 1, Some("before-crash-0"))
        .await
        .expect("answered");
    assert_ne!(
        result_holdings(&again),
        result_holdings(&after_crash),
        "the original answer, not a new trade"
    );
    assert_eq!(
        character_balances(&server, character, &token).await,
        result_holdings(&after_crash)
    );
}

/// A character parked in a sector that no longer exists (the world was regenerated) respawns with a new ship: what
/// the old ship held goes back to the world and the new one is issued its opening, in one `respawn` transaction,
/// so the ledger still says what the character holds. Both backends (the test's data directory picks the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_respawn_in_a_vanished_sector_retires_the_old_ship_in_the_ledger() {
    let dir = temp_dir();
    let mut server = TestServer::start_with(config(dir.clone())).await;
    let (token, character) = server.guest("Respawned").await;
    let mut j = Client::join(&server, &token, Encoding::Json).await;
    let parked_in = j.sector;
    let station = j.keyframe.stations[0].clone();
    let listing = station.commodities[0];
    let traded = j
        .client
        .trade(station.id, listing.commodity, Side::Buy, 2)
        .await
        .expect("accepted");
    assert_ne!(
        result_holdings(&traded),
        ship_holdings(j.profile.credits, &j.profile.cargo)
    );
    j.client.close().await;
    server.stop().await;

    // Another seed: every sector id changes, so the parked ship's sector is gone.
    let mut other = config(dir);
    other.galaxy = orrery_api::GalaxySource::Generate(orrery_engine::galaxy::GenerateParams {
        seed: 8,
        ..small_galaxy()
    });
    let server = TestServer::start_with(other).await;
    let j = Client::join(&server, &token, Encoding::Json).await;
    assert_ne!(j.sector, parked_in);
    let fresh = ship_holdings(j.profile.credits, &j.profile.cargo);
    assert_ne!(fresh, result_holdings(&traded), "a new ship, not the old one");
    assert_eq!(character_balances(&server, character, &token).await, fresh);
    let (status, body) = get(&server, &format!("/v1/characters/{character}/ledger"), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("\"respawn\""), "{body}");
    audit(&server).await;
    // A second login finds the new ship parked: no second respawn.
    j.client.close().await;
    let j = Client::join(&server, &token, Encoding::Json).await;
    assert_eq!(ship_holdings(j.profile.credits, &j.profile.cargo), fresh);
    assert_eq!(character_balances(&server, character, &token).await, fresh);
}
