//! Messages of the session actor.

use ractor::RpcReplyPort;

/// Lifecycle events of a session. Client messages do not come through here: the session's reader verifies and
/// routes them itself, so inputs cost no actor hop.
pub enum SessionMsg {
    /// The connection ended (client close, error, limit, or server shutdown): park the ship and stop.
    Closed,
    /// An operator ends the session: the client gets a `notice` (`scope` names why: `kick`, `region_stopped`) with
    /// `reason`, then a close frame with `code`; the ship is parked and the session stops. Replies once the ship is
    /// parked (or could not be: the error says why).
    End {
        scope: &'static str,
        code: u16,
        reason: String,
        reply: Option<RpcReplyPort<Result<(), String>>>,
    },
}

impl std::fmt::Debug for SessionMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionMsg::Closed => f.write_str("Closed"),
            SessionMsg::End { scope, code, .. } => {
                f.debug_struct("End").field("scope", scope).field("code", code).finish()
            }
        }
    }
}
