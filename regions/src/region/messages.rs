//! Messages of the region supervisor.

use orrery_actors::Transfer;
use orrery_engine::{Game, SectorId};

/// Everything a region supervisor handles (besides supervision events from its sectors).
pub enum RegionMsg<G: Game> {
    /// A ship leaving one of this region's sectors, or arriving from the nexus.
    Transfer(Transfer<G>),
    /// Debug hook: make one of this region's sectors panic.
    InjectCrash(SectorId),
}
