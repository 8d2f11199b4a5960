//! Messages of the session actor.

use orrery_engine::Game;
use orrery_protocol::{ClientFrame, DecodeError};

/// Everything a session actor handles: what its connection's reader decoded, and lifecycle events.
pub enum SessionMsg<G: Game> {
    /// A decoded client message.
    Inbound(ClientFrame<G::Command>),
    /// A client message that could not be decoded; answered with an `error` frame.
    Invalid(DecodeError),
    /// The connection ended (client close, error, limit, or server shutdown).
    Closed,
}
