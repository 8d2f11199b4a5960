//! Messages of the sector actor.

use std::sync::Arc;

use orrery_engine::{EntityId, Game};
use ractor::RpcReplyPort;
use uuid::Uuid;

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
}
