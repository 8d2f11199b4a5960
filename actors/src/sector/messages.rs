//! Messages of the sector actor.

use std::sync::Arc;

use orrery_engine::{EntityId, Game};
use ractor::RpcReplyPort;
use uuid::Uuid;

use orrery_engine::SectorId;

use crate::directory::{Parcel, SessionLink};
use crate::persist::PersistBatch;

/// Everything a sector actor handles. Per-frame traffic never comes through here: deltas are written to
/// connections by the sector itself, and client messages are read from them by the sector at each tick.
pub enum SectorMsg<G: Game> {
    /// Advance one fixed step, emit the delta, fan it out.
    Tick,
    /// A session logs in: admit its avatar, subscribe it and send it a keyframe.
    Enter {
        avatar: G::Avatar,
        link: Arc<SessionLink>,
        reply: RpcReplyPort<()>,
    },
    /// A session logs out: remove its avatar and unsubscribe it; the avatar is returned for parking.
    Leave {
        entity: EntityId,
        session: Uuid,
        reply: RpcReplyPort<Option<G::Avatar>>,
    },
    /// A game command on behalf of a subscribed session (clients' own commands are read from their connections
    /// at each tick instead); the sector answers the connection directly.
    Command {
        link: Arc<SessionLink>,
        req_id: Option<u64>,
        command: G::Command,
    },
    /// A keyed command, after the store was asked whether its key was used before: `found` is the stored reply
    /// (the command was applied already), none (apply it now), or why the store could not be read.
    Keyed {
        link: Arc<SessionLink>,
        req_id: Option<u64>,
        command: G::Command,
        key: String,
        found: Result<Option<Vec<u8>>, String>,
    },
    /// A ship arriving from another sector (held by the directory until this sector takes it).
    Admit(Parcel),
    /// Encode the current state for the store (periodic snapshots use the persister instead).
    Snapshot(RpcReplyPort<PersistBatch>),
    /// Debug hook: panic inside the handler, to exercise supervision.
    InjectCrash,
    /// Admin: pause (`true`) or resume the sector. A paused sector keeps its sessions and answers pings and chat,
    /// but does not advance and refuses game commands (`sector_paused`). Replies whether it is paused now.
    Pause { paused: bool, reply: RpcReplyPort<bool> },
    /// Admin: tick at `hz` from now on (the fixed step becomes `1 / hz`). Replies the rate in force.
    SetTickRate { hz: u32, reply: RpcReplyPort<u32> },
    /// Admin: the sector's live statistics.
    Stats(RpcReplyPort<SectorStats>),
    /// Admin: the sector's full state (its keyframe as JSON) and statistics.
    Inspect(RpcReplyPort<(serde_json::Value, SectorStats)>),
    /// Admin: send a `notice` to every session subscribed to this sector. Replies how many it reached.
    Notice {
        scope: String,
        text: String,
        reply: RpcReplyPort<usize>,
    },
    /// Admin: move a session's ship to sector `to`, through the same transfer path as a warp. Replies once the ship
    /// is posted (in transit), or why it could not be moved.
    Teleport {
        session: Uuid,
        to: SectorId,
        /// Where in `to` ([`Game::place`]), if given.
        at: Option<(f32, f32)>,
        reply: RpcReplyPort<Result<(), String>>,
    },
}

/// A sector's live statistics, as the admin endpoints show them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SectorStats {
    pub paused: bool,
    /// Ships in the sector (online players' ships; parked ships are not in any sector).
    pub ships: usize,
    /// Sessions subscribed to the sector.
    pub sessions: usize,
    /// The 99th percentile of the last (up to 256) ticks' work, in milliseconds.
    pub tick_p99_ms: f64,
    /// Ticks that started later than 1.5 periods after the previous one, since the node started.
    pub overruns: u64,
    /// When a snapshot of the sector was last known committed (ms since the epoch), if ever since the node started.
    pub last_snapshot_at: Option<i64>,
    pub tick_hz: u32,
    pub seq: u64,
    pub tick: u64,
}
