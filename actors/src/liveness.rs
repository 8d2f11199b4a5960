//! WebSocket liveness: pings connections the server has not heard from, and ends the sessions of those that stay
//! silent, so that a vanished client (a phone that changed networks, a process that stopped reading) never keeps
//! its character locked.
//!
//! One task per node sweeps every session once per second (or more often when the configured intervals are
//! shorter). A connection silent for `ws_ping_interval` is sent a ping; one silent for `ws_timeout` (nothing read,
//! not even the pong, and nothing waiting unread in its socket) is closed with 4002 and aborted (at the last sweep
//! before that: between one sweep period and zero early, never late), and its session
//! is told the connection ended: it parks the ship and frees the character.

use std::sync::Arc;
use std::time::Duration;

use orrery_engine::Game;
use orrery_protocol::codes;
use tracing::debug;

use crate::config::EngineConfig;
use crate::directory::Directory;

/// How often the sweep runs: once a second, or more often for short intervals (tests).
fn sweep_period(config: &EngineConfig) -> Duration {
    (config.ws_ping_interval.min(config.ws_timeout) / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Starts the liveness task; it runs until aborted.
pub fn spawn<G: Game>(directory: Arc<Directory<G>>, config: Arc<EngineConfig>) -> tokio::task::JoinHandle<()> {
    let pings = metrics::counter!("orrery_ws_pings_sent_total");
    let timeouts = metrics::counter!("orrery_ws_timeouts_total");
    tokio::spawn(async move {
        let period = sweep_period(&config);
        // A connection is closed at the last sweep before it has been silent for `ws_timeout`, never after.
        let give_up = config.ws_timeout.saturating_sub(period);
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            // Only the connections that look silent are taken out of the map (most are not, and cloning every
            // session's handle each second is most of an idle node's sweep cost).
            let mut due = Vec::new();
            directory.for_each_session(|link| {
                let silent = link.conn.silent_for();
                if !link.conn.is_closed() && silent >= config.ws_ping_interval {
                    due.push((Arc::clone(link), silent));
                }
            });
            for (link, silent) in due {
                if link.conn.heard_unread() {
                    continue;
                }
                if silent >= give_up {
                    debug!(session = %link.session, silent_ms = silent.as_millis() as u64, "closing a silent connection");
                    timeouts.increment(1);
                    // Best effort: a client that stopped reading will not see it, so the socket is aborted too.
                    link.conn.close(codes::CLOSE_TIMEOUT, "no answer to ping");
                    link.conn.abort();
                    link.input_ended();
                } else if link.conn.ping_if_due() {
                    pings.increment(1);
                }
            }
        }
    })
}
