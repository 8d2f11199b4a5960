//! Messages of the nexus actor.

use orrery_actors::Parcel;
use uuid::Uuid;

/// Everything the nexus handles: cross-region traffic.
pub enum NexusMsg {
    /// A ship crossing from one region to another.
    Transfer(Parcel),
    /// A line on the global chat channel.
    GlobalChat { from: Uuid, name: String, text: String },
    /// Debug hook (the API allows it only with `--debug-hooks`): fail the handler, to exercise supervision.
    InjectCrash,
}
