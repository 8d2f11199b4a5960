//! Client and server message enums of protocol v1, generic over the game's own payloads.

use orrery_engine::{Game, SectorId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A chat channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatChannel {
    /// Everyone whose ship is in the sender's sector.
    Sector,
    /// Everyone connected to this server.
    Global,
}

/// A client message. `C` is the game's command type; its variants share the `type` namespace in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage<C> {
    /// Answered by `pong`.
    Ping,
    /// Answered by a `keyframe` of the session's current sector.
    Resync,
    /// Say something on a channel.
    Chat { channel: ChatChannel, text: String },
    /// A command for the game's rules (thrust, warp, trade in the reference game).
    Game(C),
}

/// A client message with its optional request id, echoed by the reply or error it causes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFrame<C> {
    pub id: Option<u64>,
    pub msg: ClientMessage<C>,
}

impl<C> ClientFrame<C> {
    pub fn new(id: Option<u64>, msg: ClientMessage<C>) -> Self {
        Self { id, msg }
    }
}

/// A server message.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", bound = "")]
pub enum ServerMessage<G: Game> {
    /// First message of every session.
    Welcome {
        session: Uuid,
        character: G::Profile,
        sector: SectorId,
        tick_hz: u32,
    },
    /// The full state of a sector as of delta `seq` (the next delta has `seq + 1`).
    Keyframe {
        sector: SectorId,
        seq: u64,
        tick: u64,
        body: G::Keyframe,
    },
    /// What changed in a sector during tick `tick`. `seq` increases by one per delta of that sector.
    Delta {
        sector: SectorId,
        seq: u64,
        tick: u64,
        body: G::Delta,
    },
    /// The session's ship moved to another sector; a keyframe of `to` follows.
    Warped { from: SectorId, to: SectorId },
    /// A chat line.
    Chat {
        channel: ChatChannel,
        from: Uuid,
        name: String,
        text: String,
    },
    /// Answer to `ping`.
    Pong,
    /// A refused or malformed request. `code` is stable; `message` is for humans.
    Error { code: String, message: String },
    /// An event of the game's rules (e.g. `trade_result`).
    Game(G::Event),
    /// The sector runs slower than real time: `factor` game seconds per wall-clock second (1: real time again).
    /// Sent when the factor changes noticeably, and after the keyframe of a client entering a dilated sector.
    /// Appended last so that the binary variant indices of the others stay as they were.
    TimeDilation { sector: SectorId, factor: f64 },
    /// An operator's announcement to everyone (`global`), a region or a sector, or the reason a session is being
    /// closed (`kick`, `region_stopped`). Appended after `TimeDilation` (binary variant index 9).
    Notice { scope: String, text: String },
    /// The sector was paused (`paused: true`: it does not advance, and refuses game commands with `sector_paused`)
    /// or resumed. Sent on pause and resume, and after the keyframe of a client entering a paused sector. Binary
    /// variant index 10.
    SectorPaused { sector: SectorId, paused: bool },
}

/// A server message with the request id it answers, if any.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ServerFrame<G: Game> {
    pub id: Option<u64>,
    pub msg: ServerMessage<G>,
}

impl<G: Game> ServerFrame<G> {
    pub fn new(id: Option<u64>, msg: ServerMessage<G>) -> Self {
        Self { id, msg }
    }

    /// An `error` frame.
    pub fn error(id: Option<u64>, code: &str, message: impl Into<String>) -> Self {
        Self::new(
            id,
            ServerMessage::Error {
                code: code.to_owned(),
                message: message.into(),
            },
        )
    }
}

impl<G: Game> ServerMessage<G> {
    /// The engine-level `type` of the message (`game` for the game's own events).
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Welcome { .. } => "welcome",
            ServerMessage::Keyframe { .. } => "keyframe",
            ServerMessage::Delta { .. } => "delta",
            ServerMessage::Warped { .. } => "warped",
            ServerMessage::Chat { .. } => "chat",
            ServerMessage::Pong => "pong",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Game(_) => "game",
            ServerMessage::TimeDilation { .. } => "time_dilation",
            ServerMessage::Notice { .. } => "notice",
            ServerMessage::SectorPaused { .. } => "sector_paused",
        }
    }
}

impl<G: Game> std::fmt::Debug for ServerFrame<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = self.msg.kind();
        f.debug_struct("ServerFrame")
            .field("id", &self.id)
            .field("type", &kind)
            .finish()
    }
}
