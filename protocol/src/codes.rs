//! Stable error codes carried by `error` frames, and the WebSocket close codes the server uses.

/// The frame is not valid JSON / postcard, or not an object.
pub const MALFORMED: &str = "malformed";
/// The `type` names no message of this protocol version.
pub const UNKNOWN_TYPE: &str = "unknown_type";
/// A field is missing, unknown, or has the wrong type or value.
pub const INVALID_MESSAGE: &str = "invalid_message";
/// The session's state does not allow this message now (e.g. a command while a warp is in flight).
pub const WARP_IN_PROGRESS: &str = "warp_in_progress";
/// Chat text empty, longer than [`crate::MAX_CHAT_TEXT`], or carrying a character [`crate::text`] refuses.
pub const INVALID_CHAT: &str = "invalid_chat";
/// The sector that should handle the request is restarting or unreachable; retry shortly.
pub const SECTOR_UNAVAILABLE: &str = "sector_unavailable";
/// The server failed in a way the client cannot fix; nothing acknowledged was lost.
pub const INTERNAL: &str = "internal";
/// A command's idempotency `key` is empty or longer than [`crate::MAX_COMMAND_KEY`] bytes.
pub const INVALID_KEY: &str = "invalid_key";
/// The database cannot be written right now: a command that must be on disk before it is acknowledged (a trade)
/// was refused and changed nothing; retry later (with the same `key`).
pub const STORAGE_UNAVAILABLE: &str = "storage_unavailable";
/// The destination is in the nexus region, which this server opens only to accounts holding the
/// `galactic_citizen` capability (`--require-citizenship`); the command changed nothing (the ship stays where it was).
pub const CITIZENSHIP_REQUIRED: &str = "citizenship_required";

/// The session's sector is paused by an operator: game commands are refused (pings and chat are answered); retry
/// after `sector_paused` with `paused: false`.
pub const SECTOR_PAUSED: &str = "sector_paused";

/// Normal closure (the client asked to close).
pub const CLOSE_NORMAL: u16 = 1000;
/// The server is shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// A WebSocket protocol violation (unmasked client frame, bad opcode, bad continuation).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// A text frame that is not UTF-8.
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// The client exceeded its message rate limit.
pub const CLOSE_RATE_LIMITED: u16 = 1008;
/// A message larger than [`crate::MAX_CLIENT_MESSAGE`].
pub const CLOSE_TOO_BIG: u16 = 1009;
/// The client could not drain its outbound queue (slow consumer beyond the hard limit).
pub const CLOSE_SLOW_CONSUMER: u16 = 4000;
/// The same character connected again from another session; this older one is closed (its ship is parked first,
/// and the new session takes the character over).
pub const CLOSE_REPLACED: u16 = 4001;
/// The server heard nothing from the client (not even a pong to its ping) for the configured timeout.
pub const CLOSE_TIMEOUT: u16 = 4002;
/// An operator kicked the session (a `notice` with scope `kick` and the reason comes first; the ship is parked, and
/// the character can log in again).
pub const CLOSE_KICKED: u16 = 4003;
/// An operator stopped the session's region (a `notice` with scope `region_stopped` comes first; the ship is parked,
/// and the character can log in again once the region is started).
pub const CLOSE_REGION_STOPPED: u16 = 4004;
