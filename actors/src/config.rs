//! Runtime settings of the actor machinery (tick rate, checkpoints, snapshots, limits).

use std::time::Duration;

use crate::input::InputLimits;
use crate::net::OutboxLimits;

/// Settings shared by every sector and session actor.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Sector simulation rate; each tick advances by a fixed step of `1 / tick_hz` seconds.
    pub tick_hz: u32,
    /// Ticks between in-memory checkpoints a crashed sector restarts from (commands since are replayed).
    pub checkpoint_ticks: u64,
    /// How often every sector's state is persisted to the store.
    pub snapshot_interval: Duration,
    /// Restart intensity: more than `max_restarts` restarts of one region's sectors within `restart_window`
    /// escalates to the region supervisor, which restarts itself through the region manager.
    pub max_restarts: usize,
    pub restart_window: Duration,
    /// Outbound queue limits per connection.
    pub outbox: OutboxLimits,
    /// Sustained client message rate (messages per second) and burst before the connection is closed (1008).
    pub max_msgs_per_sec: u32,
    pub msg_burst: u32,
    /// The largest client message (after reassembly of fragments); larger ones close the connection with 1009.
    pub max_message: usize,
    /// A connection the server has heard nothing from for this long is sent a WebSocket ping.
    pub ws_ping_interval: Duration,
    /// A connection the server has heard nothing from (not even a pong) for this long is closed with 4002 and
    /// its session ends: the ship is parked and the character can log in again.
    pub ws_timeout: Duration,
    /// Whether admin/debug hooks (sector crash injection) are enabled.
    pub debug_hooks: bool,
    /// Time dilation: the work one simulated tick of a sector may take, as a fraction of the tick period. A
    /// sector whose smoothed tick work is above it slows its game time (see `crate::dilation`).
    pub tick_budget: f32,
    /// The lowest time dilation factor (game seconds per wall-clock second); 1 disables time dilation.
    pub dilation_floor: f32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            tick_hz: 20,
            checkpoint_ticks: 20,
            snapshot_interval: Duration::from_secs(10),
            max_restarts: 5,
            restart_window: Duration::from_secs(10),
            outbox: OutboxLimits::default(),
            max_msgs_per_sec: 30,
            msg_burst: 60,
            max_message: orrery_protocol::MAX_CLIENT_MESSAGE,
            ws_ping_interval: Duration::from_secs(10),
            ws_timeout: Duration::from_secs(30),
            debug_hooks: false,
            tick_budget: 0.5,
            dilation_floor: 0.1,
        }
    }
}

impl EngineConfig {
    /// The fixed tick period.
    pub fn tick_period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.tick_hz.max(1)))
    }

    /// The work budget of one simulated tick (`tick_budget` of the period).
    pub fn tick_budget(&self) -> Duration {
        self.tick_period().mul_f64(f64::from(self.tick_budget.max(0.0)))
    }

    /// The limits of every connection's inbound side.
    pub fn input_limits(&self) -> InputLimits {
        InputLimits {
            max_msgs_per_sec: self.max_msgs_per_sec,
            burst: self.msg_burst,
            max_message: self.max_message,
        }
    }

    /// The fixed simulation step in seconds.
    pub fn dt(&self) -> f32 {
        1.0 / self.tick_hz.max(1) as f32
    }
}
