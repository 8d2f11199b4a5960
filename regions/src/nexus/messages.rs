//! Messages of the nexus actor.

use orrery_actors::Parcel;
use ractor::RpcReplyPort;
use uuid::Uuid;

/// Everything the nexus handles: cross-region traffic.
pub enum NexusMsg {
    /// A ship crossing from one region to another.
    Transfer(Parcel),
    /// A line on the global chat channel.
    GlobalChat { from: Uuid, name: String, text: String },
    /// Admin: a `notice` (scope `global`) to every session on the node. Replies how many it reached.
    Notice { text: String, reply: RpcReplyPort<usize> },
    /// Debug hook (the API allows it only with `--debug-hooks`): fail the handler, to exercise supervision.
    InjectCrash,
}
