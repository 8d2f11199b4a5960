//! Orrery's wire protocol, version 1: the message enums every client and the server share, and their two encodings.
//!
//! Modules:
//! - [`messages`]: client and server message enums and their framing envelopes (`id` echo).
//! - [`codec`]: JSON text (`orrery.json.v1`) and postcard binary (`orrery.bin.v1`) encodings of those enums.
//! - [`codes`]: stable error codes and WebSocket close codes.
//! - [`text`]: the rule for text players show each other (names, chat): no controls, escapes or bidi overrides.
//!
//! This crate depends on the engine's `Game` trait only: a game plugs its commands, events, keyframes and deltas
//! into the generic envelope. It does no I/O.

pub mod codec;
pub mod codes;
pub mod messages;
pub mod text;

pub use codec::{DecodeError, Encoding};
pub use messages::{ChatChannel, ClientFrame, ClientMessage, ServerFrame, ServerMessage};

/// WebSocket subprotocol for JSON text frames (the default when the client asks for none).
pub const SUBPROTOCOL_JSON: &str = "orrery.json.v1";
/// WebSocket subprotocol for postcard binary frames.
pub const SUBPROTOCOL_BIN: &str = "orrery.bin.v1";
/// The largest client message the server accepts, in bytes (larger ones close the connection with 1009).
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// The longest chat text, in bytes.
pub const MAX_CHAT_TEXT: usize = 512;
/// Longest idempotency `key` of a command, in bytes.
pub const MAX_COMMAND_KEY: usize = 64;
