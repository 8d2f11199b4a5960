//! A slow client never delays a tick: its deltas are dropped under backpressure and it gets a fresh keyframe once
//! its queue drains, while fast clients keep streaming every tick.

mod common;

use std::time::Duration;

use common::*;
use orrery_engine::spacetrade::Command;
use orrery_protocol::{Encoding, ServerMessage};

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
