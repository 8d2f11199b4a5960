//! A slow client never delays a tick: its deltas are dropped under backpressure and it gets a fresh keyframe once
//! its queue drains, while fast clients keep streaming every tick; past the hard limit a client is reset.

mod common;

use std::time::Duration;

use common::raw;
use common::*;
use orrery_engine::spacetrade::Command;
use orrery_protocol::{Encoding, ServerMessage};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_drops_deltas_then_gets_a_keyframe_while_others_keep_pace() {
    let mut cfg = config(temp_dir());
    cfg.engine.outbox.soft_limit = 2 * 1024;
    cfg.engine.outbox.hard_limit = 16 * 1024 * 1024;
    cfg.engine.outbox.socket_send_buffer = Some(4096);
    let server = TestServer::start_with(cfg).await;

    // Movers keep the sector changing every tick (flipping direction so nobody parks against a wall).
    let mut movers = Vec::new();
    for i in 0..6 {
        let (t, _) = server.guest(&format!("Mover{i}")).await;
        let mut j = Client::join(&server, &t, Encoding::Binary).await;
        movers.push(tokio::spawn(async move {
            let mut sign = 1.0;
            let mut next_flip = tokio::time::Instant::now();
            loop {
                if tokio::time::Instant::now() >= next_flip {
                    j.client
                        .command(Command::Thrust {
                            vx: 90.0 * sign,
                            vy: -70.0 * sign,
                        })
                        .await;
                    sign = -sign;
                    next_flip += Duration::from_millis(1500);
                }
                j.client.recv().await;
            }
        }));
    }
    let (tf, _) = server.guest("Fast").await;
    let mut fast = Client::join(&server, &tf, Encoding::Json).await;
    let (ts, _) = server.guest("Slow").await;
    let slow = Client::connect_small_buffer(&server, &ts, Encoding::Binary).await;
    let mut slow = Client::joined(slow).await;

    // The slow client stops reading. Wait until the server starts dropping its deltas.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while server.metric("orrery_deltas_dropped_total").await == 0.0 {
        assert!(tokio::time::Instant::now() < deadline, "no delta was ever dropped");
        // Meanwhile the fast client sees every tick.
        fast.client.delta().await;
    }
    let (_, mut tick, _) = fast.client.delta().await;
    for _ in 0..20 {
        let (_, t, _) = fast.client.delta().await;
        assert_eq!(t, tick + 1, "a slow subscriber does not delay the sector's ticks");
        tick = t;
    }

    // The slow client reads again: queued deltas, a gap, then a keyframe (no id), then consecutive deltas.
    let mut last_seq = slow.seq;
    let mut saw_gap = false;
    let keyframe_seq = loop {
        let f = slow.client.recv().await;
        match f.msg {
            ServerMessage::Delta { seq, .. } => {
                saw_gap |= seq != last_seq + 1;
                last_seq = seq;
            }
            ServerMessage::Keyframe { seq, .. } => {
                assert_eq!(f.id, None);
                break seq;
            }
            _ => {}
        }
    };
    assert!(
        saw_gap || keyframe_seq > last_seq + 1,
        "deltas were dropped for the slow client"
    );
    let (seq, _, _) = slow.client.delta().await;
    assert_eq!(seq, keyframe_seq + 1, "deltas resume right after the keyframe");
    for m in movers {
        m.abort();
    }
}

/// Replies are never dropped, so a client that sends requests but never reads the answers fills its queue: past
/// the hard limit its connection is reset (a close frame would wait behind everything queued), its session ends and
/// its character is free again; nothing of it stays open in the kernel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_hard_limit_a_client_that_does_not_read_its_replies_is_reset() {
    let mut cfg = config(temp_dir());
    cfg.engine.outbox.soft_limit = 4 * 1024;
    cfg.engine.outbox.hard_limit = 32 * 1024;
    cfg.engine.outbox.socket_send_buffer = Some(4096);
    cfg.engine.max_msgs_per_sec = 100_000;
    cfg.engine.msg_burst = 100_000;
    let server = TestServer::start_with(cfg).await;
    let (token, character) = server.guest("Deaf").await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut deaf = socket.connect(server.addr()).await.unwrap();
    let local = deaf.local_addr().unwrap();
    deaf.write_all(raw::upgrade_request(&token, "").as_bytes())
        .await
        .unwrap();
    // Pings in batches, each sent once the server has read the one before: the server reads everything the client
    // sends (so nothing unread on the server's side makes the kernel reset the connection by itself).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut id = 0u64;
    while server.metric("orrery_slow_consumers_closed_total").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hard limit was never enforced"
        );
        let read = server.metric("orrery_client_messages_total").await as u64;
        if read < id {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let mut batch = Vec::new();
        for _ in 0..50 {
            id += 1;
            batch.extend(raw::fin(0x1, format!(r#"{{"type":"ping","id":{id}}}"#).as_bytes()));
        }
        deaf.write_all(&batch).await.unwrap();
    }
    while still_established(local) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connection is still established"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = Client::join(&server, &token, Encoding::Binary).await;
    assert!(again.keyframe.ships.iter().any(|s| s.owner == character));
    drop(deaf);
}
