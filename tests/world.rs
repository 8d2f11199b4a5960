//! Warps (neighbour, refused, cross-region through the nexus), trade and chat, end to end.

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use common::*;
use orrery_engine::galaxy::{generate, Galaxy};
use orrery_engine::spacetrade::{Command, Event, Side};
use orrery_protocol::{ChatChannel, ClientMessage, Encoding, ServerMessage};
use uuid::Uuid;

/// Shortest warp path from `from` to the first sector matching `goal` (excluding `from`).
fn path(g: &Galaxy, from: Uuid, goal: impl Fn(Uuid) -> bool) -> Vec<Uuid> {
    let mut prev: HashMap<Uuid, Uuid> = HashMap::new();
    let mut seen = HashSet::from([from]);
    let mut queue = VecDeque::from([from]);
    while let Some(at) = queue.pop_front() {
        if at != from && goal(at) {
            let mut p = vec![at];
            while let Some(&b) = prev.get(p.last().unwrap()) {
                if b == from {
                    break;
                }
                p.push(b);
            }
            p.reverse();
            return p;
        }
        let (_, sector) = g.sector(at).unwrap();
        for w in &sector.warps {
            if seen.insert(w.to) {
                prev.insert(w.to, at);
                queue.push_back(w.to);
            }
        }
    }
    panic!("no path");
}

/// Sends a warp and returns (from, to) of the `warped` that answers it, checking the keyframe that follows.
async fn warp(c: &mut Client, to: Uuid) -> (Uuid, Uuid) {
    let id = c.command(Command::Warp { to }).await;
    let warped = c
        .recv_until(|f| match &f.msg {
            ServerMessage::Warped { from, to } => Some((f.id, *from, *to)),
            ServerMessage::Error { code, message } => panic!("warp refused: {code}: {message}"),
            _ => None,
        })
        .await;
    assert_eq!(warped.0, Some(id), "warped echoes the warp's id");
    match c.recv().await.msg {
        ServerMessage::Keyframe { sector, .. } => {
            assert_eq!(sector, to, "keyframe of the new sector follows")
        }
        other => panic!("expected keyframe after warped, got {}", kind(&other)),
    }
    (warped.1, warped.2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warp_to_a_neighbour_moves_the_ship_and_its_subscription() {
    let server = TestServer::start().await;
    let (t1, c1) = server.guest("Walker").await;
    let (t2, _) = server.guest("Watcher").await;
    let mut w = Client::join(&server, &t1, Encoding::Json).await;
    let mut watcher = Client::join(&server, &t2, Encoding::Binary).await;
    let start = w.sector;
    let target = w.keyframe.warps[0].to;

    assert_eq!(warp(&mut w.client, target).await, (start, target));
    // The watcher, still in the start sector, sees the ship leave.
    watcher.client.until_gone(c1).await;
    // The walker now streams the new sector: its own ship is there and it moves in that sector's deltas.
    let id = w.client.send(ClientMessage::Resync).await;
    let ships = w
        .client
        .recv_until(|f| match &f.msg {
            ServerMessage::Keyframe { sector, body, .. } if f.id == Some(id) => {
                assert_eq!(*sector, target);
                Some(body.ships.clone())
            }
            _ => None,
        })
        .await;
    assert!(ships.iter().any(|s| s.owner == c1));
    w.client.command(Command::Thrust { vx: 10.0, vy: 0.0 }).await;
    w.client.until_ship(c1, |s| s.vx == 10.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warp_to_a_sector_that_is_not_a_neighbour_is_refused() {
    let server = TestServer::start().await;
    let (t, _) = server.guest("Lost").await;
    let mut j = Client::join(&server, &t, Encoding::Json).await;
    let neighbours: HashSet<Uuid> = j.keyframe.warps.iter().map(|w| w.to).collect();
    let g = generate(small_galaxy());
    let far = g
        .sectors()
        .map(|(_, s)| s.id)
        .find(|id| !neighbours.contains(id) && *id != j.sector)
        .unwrap();
    let id = j.client.command(Command::Warp { to: far }).await;
    assert_eq!(j.client.error_for(id).await.0, "no_such_warp");
    let id = j.client.command(Command::Warp { to: Uuid::new_v4() }).await;
    assert_eq!(j.client.error_for(id).await.0, "no_such_warp");
    // Still in the spawn sector and still served.
    let id = j.client.send(ClientMessage::Resync).await;
    let sector = j
        .client
        .recv_until(|f| match &f.msg {
            ServerMessage::Keyframe { sector, .. } if f.id == Some(id) => Some(*sector),
            _ => None,
        })
        .await;
    assert_eq!(sector, j.sector);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_region_warp_goes_through_the_nexus() {
    let server = TestServer::start().await;
    let (t, c) = server.guest("Voyager").await;
    let mut j = Client::join(&server, &t, Encoding::Binary).await;
    let g = generate(small_galaxy());
    let region_of = |id: Uuid| g.sector(id).unwrap().0.id;
    let home = region_of(j.sector);
    let route = path(&g, j.sector, |s| region_of(s) != home);
    let before = nexus_transfers(&server).await;
    let mut at = j.sector;
    for next in route {
        assert_eq!(warp(&mut j.client, next).await, (at, next));
        at = next;
    }
    assert_ne!(region_of(at), home);
    assert!(
        nexus_transfers(&server).await > before,
        "the nexus carried the crossing"
    );
    let id = j.client.send(ClientMessage::Resync).await;
    let ships = j
        .client
        .recv_until(|f| match &f.msg {
            ServerMessage::Keyframe { body, .. } if f.id == Some(id) => Some(body.ships.clone()),
            _ => None,
        })
        .await;
    assert_eq!(ships.iter().filter(|s| s.owner == c).count(), 1);
}

/// A failed nexus is restarted and registered again: after two failures in a row (the second one used to take the
/// node's root down, and after the first the fabric kept the dead nexus), cross-region warps still go through it and
/// global chat still reaches everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_nexus_is_restarted_and_carries_crossings_and_global_chat_again() {
    let server = TestServer::start().await;
    for n in 1..=2 {
        assert_eq!(server.admin_post("/v1/admin/nexus/crash").await.status(), 202);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while server.metric("orrery_nexus_restarts_total").await < f64::from(n) {
            assert!(tokio::time::Instant::now() < deadline, "the nexus was not restarted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let health = server.http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let (tl, _) = server.guest("Listener").await;
    let mut listener = Client::join(&server, &tl, Encoding::Json).await;
    let (t, c) = server.guest("Voyager").await;
    let mut j = Client::join(&server, &t, Encoding::Binary).await;
    let g = generate(small_galaxy());
    let region_of = |id: Uuid| g.sector(id).unwrap().0.id;
    let home = region_of(j.sector);
    let before = nexus_transfers(&server).await;
    let mut at = j.sector;
    for next in path(&g, j.sector, |s| region_of(s) != home) {
        assert_eq!(warp(&mut j.client, next).await, (at, next));
        at = next;
    }
    assert!(
        nexus_transfers(&server).await > before,
        "the new nexus carried the crossing"
    );
    j.client
        .send(ClientMessage::Chat {
            channel: ChatChannel::Global,
            text: "hello from the far side".into(),
        })
        .await;
    let heard = listener
        .client
        .recv_until(|f| match &f.msg {
            ServerMessage::Chat {
                channel, from, text, ..
            } => Some((*channel, *from, text.clone())),
            _ => None,
        })
        .await;
    assert_eq!(heard, (ChatChannel::Global, c, "hello from the far side".to_string()));
}

async fn nexus_transfers(server: &TestServer) -> f64 {
    server
        .metrics()
        .await
        .lines()
        .find_map(|l| {
            l.strip_prefix("orrery_nexus_transfers_total ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trade_changes_stock_credits_and_cargo_together() {
    let server = TestServer::start().await;
    let (t1, _) = server.guest("Trader").await;
    let (t2, _) = server.guest("Onlooker").await;
    let mut j = Client::join(&server, &t1, Encoding::Json).await;
    let mut onlooker = Client::join(&server, &t2, Encoding::Binary).await;
    let station = j
        .keyframe
        .stations
        .first()
        .expect("the spawn sector has a station")
        .clone();
    let listing = *station
        .commodities
        .iter()
        .find(|l| l.quantity >= 5)
        .expect("something in stock");

    let Event::TradeResult {
        qty,
        total,
        credits,
        cargo,
        station_quantity,
        ..
    } = j
        .client
        .trade(station.id, listing.commodity, Side::Buy, 3)
        .await
        .expect("trade accepted");
    assert_eq!(qty, 3);
    assert!(total > 0);
    assert_eq!(credits, 10_000 - total);
    assert_eq!(cargo.get(&listing.commodity), Some(&3));
    assert_eq!(station_quantity, listing.quantity - 3);
    // Others see the station's book change in a delta.
    let seen = onlooker
        .client
        .recv_until(|f| match &f.msg {
            ServerMessage::Delta { body, .. } => body
                .stations
                .iter()
                .find(|s| s.id == station.id)
                .and_then(|s| s.commodities.iter().find(|l| l.commodity == listing.commodity))
                .map(|l| l.quantity),
            _ => None,
        })
        .await;
    assert_eq!(seen, listing.quantity - 3);

    // Refusals are typed and change nothing.
    let refused = j.client.trade(station.id, listing.commodity, Side::Sell, 4).await;
    assert_eq!(refused.unwrap_err(), "not_enough_cargo");
    let refused = j.client.trade(Uuid::new_v4(), listing.commodity, Side::Buy, 1).await;
    assert_eq!(refused.unwrap_err(), "no_such_station");
    let code = j
        .client
        .trade(station.id, listing.commodity, Side::Buy, 1_000)
        .await
        .unwrap_err();
    assert!(
        ["not_enough_cargo_space", "not_enough_stock", "not_enough_credits"].contains(&code.as_str()),
        "{code}"
    );
    // Selling back what was bought works and returns the cargo to zero.
    let Event::TradeResult {
        cargo, credits: after, ..
    } = j
        .client
        .trade(station.id, listing.commodity, Side::Sell, 3)
        .await
        .expect("sale accepted");
    assert_eq!(cargo.get(&listing.commodity).copied().unwrap_or(0), 0);
    assert!(
        after > credits && after <= 10_000,
        "selling back pays, but never more than was paid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sector_chat_stays_in_the_sector_and_global_chat_reaches_everyone() {
    let server = TestServer::start().await;
    let (ta, _) = server.guest("Away").await;
    let (tb, cb) = server.guest("Speaker").await;
    let (tc, _) = server.guest("Near").await;
    let mut a = Client::join(&server, &ta, Encoding::Json).await;
    let mut b = Client::join(&server, &tb, Encoding::Binary).await;
    let mut c = Client::join(&server, &tc, Encoding::Json).await;
    let elsewhere = a.keyframe.warps[0].to;
    warp(&mut a.client, elsewhere).await;

    b.client
        .send(ClientMessage::Chat {
            channel: ChatChannel::Sector,
            text: "hello sector".into(),
        })
        .await;
    b.client
        .send(ClientMessage::Chat {
            channel: ChatChannel::Global,
            text: "hello galaxy".into(),
        })
        .await;
    let chat = |f: &Frame| match &f.msg {
        ServerMessage::Chat {
            channel,
            from,
            name,
            text,
        } => Some((*channel, *from, name.clone(), text.clone())),
        _ => None,
    };
    assert_eq!(
        c.client.recv_until(chat).await,
        (ChatChannel::Sector, cb, "Speaker".into(), "hello sector".into())
    );
    assert_eq!(c.client.recv_until(chat).await.3, "hello galaxy");
    // The first chat the distant client sees is the global one.
    assert_eq!(
        a.client.recv_until(chat).await,
        (ChatChannel::Global, cb, "Speaker".into(), "hello galaxy".into())
    );
    let id = b
        .client
        .send(ClientMessage::Chat {
            channel: ChatChannel::Global,
            text: "   ".into(),
        })
        .await;
    assert_eq!(b.client.error_for(id).await.0, "invalid_chat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sector_requests_sent_during_a_warp_are_handled_by_the_new_sector() {
    let server = TestServer::start().await;
    let (t, _) = server.guest("Hasty").await;
    let mut j = Client::join(&server, &t, Encoding::Json).await;
    let (home, to) = (j.sector, j.keyframe.warps[0].to);
    for round in 0..5 {
        let target = if round % 2 == 0 { to } else { home };
        let warp_id = j.client.command(Command::Warp { to: target }).await;
        let text = format!("mid-warp {round}");
        j.client
            .send(ClientMessage::Chat {
                channel: ChatChannel::Sector,
                text: text.clone(),
            })
            .await;
        let resync_id = j.client.send(ClientMessage::Resync).await;
        let (mut warped, mut chat_seen, mut resynced) = (false, false, false);
        while !(warped && chat_seen && resynced) {
            let f = j.client.recv().await;
            match &f.msg {
                ServerMessage::Warped { to, .. } if f.id == Some(warp_id) => {
                    assert_eq!(*to, target);
                    warped = true;
                }
                ServerMessage::Error { code, .. } => panic!("mid-warp request refused: {code} (frame {f:?})"),
                ServerMessage::Chat { text: t, .. } if *t == text => {
                    assert!(warped, "the chat line is said in the sector the ship arrives in");
                    chat_seen = true;
                }
                ServerMessage::Keyframe { sector, .. } if f.id == Some(resync_id) => {
                    assert_eq!(*sector, target, "resync answered by the new sector");
                    resynced = true;
                }
                _ => {}
            }
        }
    }
}
