//! Messages of the session actor.

/// Lifecycle events of a session. Client messages do not come through here: the session's reader verifies and
/// routes them itself, so inputs cost no actor hop.
#[derive(Debug)]
pub enum SessionMsg {
    /// The connection ended (client close, error, limit, or server shutdown): park the ship and stop.
    Closed,
}
