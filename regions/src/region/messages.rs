//! Messages of the region supervisor.

use orrery_actors::Parcel;
use orrery_engine::SectorId;
use ractor::RpcReplyPort;
use serde::Serialize;

/// Everything a region supervisor handles (besides supervision events from its sectors).
pub enum RegionMsg {
    /// A ship arriving in one of this region's sectors (from a sector of the region, or from the nexus).
    Transfer(Parcel),
    /// Debug hook: make one of this region's sectors panic.
    InjectCrash(SectorId),
    /// Admin: pause (`true`) or resume every sector of the region. Replies how many sectors answered.
    Pause { paused: bool, reply: RpcReplyPort<usize> },
    /// Admin: tick every sector of the region at `hz`. Replies how many sectors answered.
    SetTickRate { hz: u32, reply: RpcReplyPort<usize> },
    /// Admin: a `notice` to every session in the region's sectors. Replies how many sessions it reached.
    Notice { text: String, reply: RpcReplyPort<usize> },
    /// Admin: restart one of the region's sectors: snapshot it (written to the store), stop its actor cleanly and
    /// start it again from that state; a sector that is not running is started. Its ships and sessions stay.
    RestartSector {
        sector: SectorId,
        reply: RpcReplyPort<Result<Restarted, String>>,
    },
    /// Admin, before the region stops: snapshot every sector (written to the store), then tell every session in the
    /// region (`notice`, scope `region_stopped`) and close it with 4004 (each parks its ship). Replies once the
    /// sessions are gone (or a bound of 20 s passed).
    Drain(RpcReplyPort<Drained>),
}

/// What a sector restart did.
#[derive(Debug, Clone, Serialize)]
pub struct Restarted {
    /// Whether the sector's actor was running (and so was snapshotted and stopped) before.
    pub was_running: bool,
    /// The tick of the snapshot written before the stop (none if the sector was not running).
    pub snapshot_tick: Option<u64>,
}

/// What draining a region before its stop did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Drained {
    /// Sectors snapshotted (and written to the store) first.
    pub sectors_snapshotted: usize,
    /// Whether that snapshot was written.
    pub snapshot_written: bool,
    /// Sessions told and closed (4004).
    pub sessions_closed: usize,
    /// Of those, sessions still open when the bound passed.
    pub sessions_left: usize,
}
