//! Messages of the region supervisor.

use orrery_actors::Parcel;
use orrery_engine::SectorId;

/// Everything a region supervisor handles (besides supervision events from its sectors).
pub enum RegionMsg {
    /// A ship arriving in one of this region's sectors (from a sector of the region, or from the nexus).
    Transfer(Parcel),
    /// Debug hook: make one of this region's sectors panic.
    InjectCrash(SectorId),
}
