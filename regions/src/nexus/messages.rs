//! Messages of the nexus actor.

use orrery_actors::Transfer;
use orrery_engine::Game;
use uuid::Uuid;

/// Everything the nexus handles: cross-region traffic.
pub enum NexusMsg<G: Game> {
    /// A ship crossing from one region to another.
    Transfer(Transfer<G>),
    /// A line on the global chat channel.
    GlobalChat { from: Uuid, name: String, text: String },
}
