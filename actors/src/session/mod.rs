//! The session actor: one per WebSocket connection. It verifies and routes client messages; it is not on the
//! per-frame path (sectors write deltas to the connection directly).

pub mod messages;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use orrery_engine::{CharacterSeed, Game, SectorId};
use orrery_protocol::{codec, codes, ChatChannel, ClientFrame, ClientMessage, Encoding, ServerFrame, ServerMessage};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::config::EngineConfig;
use crate::directory::{Directory, Fabric, SessionLink};
use crate::net::{self, Conn, FrameReader, Opcode, WsEvent};
use crate::sector::{encode_frame, SectorMsg};
use crate::store::{now_millis, Identity, ParkedAvatar, SharedStore};
pub use messages::SessionMsg;

/// How long a session waits for a sector to answer a login or logout.
pub const SECTOR_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a session retries a sector that is restarting (every 50 ms).
const SECTOR_RETRIES: u32 = 40;

/// Failures while setting up or tearing down a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("sector {0} did not admit the ship")]
    SectorUnavailable(SectorId),
    #[error("stored avatar is unreadable: {0}")]
    CorruptAvatar(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Everything a session actor is started with.
pub struct SessionArgs<G: Game> {
    pub game: Arc<G>,
    pub directory: Arc<Directory<G>>,
    pub fabric: Arc<dyn Fabric<G>>,
    pub store: SharedStore,
    pub config: Arc<EngineConfig>,
    pub identity: Identity,
    pub session: Uuid,
    pub conn: Arc<Conn>,
    pub encoding: Encoding,
    /// Bytes the HTTP layer read past the upgrade request.
    pub leftover: Bytes,
}

/// The session actor.
pub struct SessionActor<G: Game>(std::marker::PhantomData<fn() -> G>);

impl<G: Game> Default for SessionActor<G> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// A running session: what logging out needs.
pub struct SessionState<G: Game> {
    directory: Arc<Directory<G>>,
    store: SharedStore,
    link: Arc<SessionLink>,
}

/// The `verify` and routing step of client messages, run by the session's reader task: sector-bound messages go
/// straight to the sector actor (in the order the client sent them), the rest are answered or sent on.
struct Inbound<G: Game> {
    directory: Arc<Directory<G>>,
    fabric: Arc<dyn Fabric<G>>,
    link: Arc<SessionLink>,
}

impl<G: Game> Inbound<G> {
    fn reply(&self, frame: ServerFrame<G>) {
        self.link.conn.send(&encode_frame(&frame, self.link.encoding));
    }

    fn error(&self, id: Option<u64>, code: &str, message: impl Into<String>) {
        self.reply(ServerFrame::error(id, code, message));
    }

    fn dispatch(&self, decoded: Result<ClientFrame<G::Command>, orrery_protocol::DecodeError>) {
        let ClientFrame { id, msg } = match decoded {
            Ok(frame) => frame,
            Err(e) => return self.error(e.id, e.code, e.message),
        };
        let link = Arc::clone(&self.link);
        match msg {
            ClientMessage::Ping => self.reply(ServerFrame::new(id, ServerMessage::Pong)),
            ClientMessage::Game(command) => self.to_sector(
                id,
                SectorMsg::Command {
                    link,
                    req_id: id,
                    command,
                },
            ),
            ClientMessage::Resync => self.to_sector(id, SectorMsg::Resync { link, req_id: id }),
            ClientMessage::Chat { channel, text } => {
                let text = text.trim().to_owned();
                if text.is_empty() || text.len() > orrery_protocol::MAX_CHAT_TEXT {
                    return self.error(
                        id,
                        codes::INVALID_CHAT,
                        format!("chat text must be 1 to {} bytes", orrery_protocol::MAX_CHAT_TEXT),
                    );
                }
                match channel {
                    ChatChannel::Global => self.fabric.global_chat(link.character, link.name.clone(), text),
                    ChatChannel::Sector => self.to_sector(id, SectorMsg::SayInSector { link, req_id: id, text }),
                }
            }
        }
    }

    /// Sector-bound messages are refused while the ship is between sectors, or while its sector restarts.
    fn to_sector(&self, id: Option<u64>, msg: SectorMsg<G>) {
        if self.link.in_transit() {
            return self.error(
                id,
                codes::WARP_IN_PROGRESS,
                "your ship is between sectors; wait for `warped`",
            );
        }
        match self.directory.sector(self.link.sector()) {
            Some(sector) if sector.cast(msg).is_ok() => {}
            _ => self.error(
                id,
                codes::SECTOR_UNAVAILABLE,
                "the sector is restarting; try again shortly",
            ),
        }
    }
}

impl<G: Game> SessionState<G> {
    fn sector(&self) -> Option<ActorRef<SectorMsg<G>>> {
        self.directory.sector(self.link.sector())
    }

    /// Takes the ship out of its sector and parks it in the store.
    async fn park(&self) -> Result<(), SessionError> {
        for _ in 0..SECTOR_RETRIES {
            if !self.link.in_transit() {
                if let Some(sector) = self.sector() {
                    let at = self.link.sector();
                    let left = ractor::call_t!(
                        sector,
                        |reply| SectorMsg::Leave {
                            entity: self.link.entity,
                            session: self.link.session,
                            reply,
                        },
                        SECTOR_CALL_TIMEOUT.as_millis() as u64
                    );
                    if let Ok(Some(avatar)) = left {
                        let blob =
                            postcard::to_allocvec(&avatar).map_err(|e| SessionError::CorruptAvatar(e.to_string()))?;
                        self.store
                            .save(
                                &[],
                                &[ParkedAvatar {
                                    character_id: self.link.character,
                                    sector: at,
                                    avatar: blob,
                                }],
                            )
                            .await?;
                        return Ok(());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(SessionError::SectorUnavailable(self.link.sector()))
    }
}

/// Loads (or spawns) the character's avatar and the sector it is in.
async fn load_avatar<G: Game>(
    game: &G,
    directory: &Directory<G>,
    store: &SharedStore,
    identity: &Identity,
) -> Result<(SectorId, G::Avatar), SessionError> {
    if let Some(parked) = store.load_avatar(identity.character_id).await? {
        let avatar: G::Avatar =
            postcard::from_bytes(&parked.avatar).map_err(|e| SessionError::CorruptAvatar(e.to_string()))?;
        if directory.has_sector(parked.sector) {
            return Ok((parked.sector, avatar));
        }
        warn!(character = %identity.character_id, sector = %parked.sector, "parked in a sector that no longer exists; respawning");
    }
    let seed = CharacterSeed {
        character_id: identity.character_id,
        name: identity.name.clone(),
    };
    let (sector, avatar) = game.spawn(&seed, now_millis());
    match store.spawn_sector(identity.character_id).await? {
        Some(chosen) if directory.has_sector(chosen) => Ok((chosen, avatar)),
        _ => Ok((sector, avatar)),
    }
}

impl<G: Game> Actor for SessionActor<G> {
    type Msg = SessionMsg;
    type State = SessionState<G>;
    type Arguments = SessionArgs<G>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let a = args;
        let (sector, avatar) = match load_avatar(a.game.as_ref(), &a.directory, &a.store, &a.identity).await {
            Ok(found) => found,
            Err(e) => {
                a.directory.remove_session(a.session, a.identity.character_id);
                a.conn.close(1011, "could not load character");
                return Err(e.into());
            }
        };
        let entity = a.game.avatar_id(&avatar);
        let link = SessionLink::new(
            a.session,
            a.identity.character_id,
            a.identity.name.clone(),
            entity,
            Arc::clone(&a.conn),
            a.encoding,
            sector,
        );
        a.directory.attach_session(Arc::clone(&link));
        let welcome = ServerFrame::<G>::new(
            None,
            ServerMessage::Welcome {
                session: a.session,
                character: a.game.profile(&avatar, now_millis()),
                sector,
                tick_hz: a.config.tick_hz,
            },
        );
        a.conn.send(&encode_frame(&welcome, a.encoding));
        let mut entered = false;
        for _ in 0..SECTOR_RETRIES {
            if let Some(actor) = a.directory.sector(sector) {
                let avatar = avatar.clone();
                let link = Arc::clone(&link);
                if ractor::call_t!(
                    actor,
                    |reply| SectorMsg::Enter { avatar, link, reply },
                    SECTOR_CALL_TIMEOUT.as_millis() as u64
                )
                .is_ok()
                {
                    entered = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !entered {
            a.directory.remove_session(a.session, a.identity.character_id);
            a.conn.close(1011, "sector unavailable");
            return Err(SessionError::SectorUnavailable(sector).into());
        }
        let inbound = Inbound {
            directory: Arc::clone(&a.directory),
            fabric: a.fabric,
            link: Arc::clone(&link),
        };
        tokio::spawn(read_loop::<G>(myself, inbound, a.config, a.leftover));
        Ok(SessionState {
            directory: a.directory,
            store: a.store,
            link,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionMsg::Closed => {
                if let Err(e) = state.park().await {
                    warn!(session = %state.link.session, error = %e, "could not park the ship at logout");
                }
                myself.stop(None);
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.directory.remove_session(state.link.session, state.link.character);
        state.link.conn.close(codes::CLOSE_NORMAL, "bye");
        debug!(session = %state.link.session, "session ended");
        Ok(())
    }
}

/// A token bucket for the client's message rate.
struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    fn allow(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Reads, decodes, verifies and routes the client's messages (no actor hop for them), enforcing the size and rate
/// limits; tells the session actor when the connection ends.
async fn read_loop<G: Game>(
    session: ActorRef<SessionMsg>,
    inbound: Inbound<G>,
    config: Arc<EngineConfig>,
    leftover: Bytes,
) {
    let conn = Arc::clone(&inbound.link.conn);
    let mut reader = FrameReader::new(orrery_protocol::MAX_CLIENT_MESSAGE);
    reader.push(&leftover);
    let mut limit = RateLimit {
        rate: f64::from(config.max_msgs_per_sec),
        burst: f64::from(config.msg_burst.max(1)),
        tokens: f64::from(config.msg_burst.max(1)),
        at: Instant::now(),
    };
    'outer: loop {
        loop {
            let event = match reader.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    debug!(error = %e, "closing connection on protocol violation");
                    conn.close(e.close_code(), &e.to_string());
                    break 'outer;
                }
            };
            let decoded = match event {
                WsEvent::Text(text) => codec::client_from_json::<G::Command>(&text),
                WsEvent::Binary(bytes) => codec::client_from_bin::<G::Command>(&bytes),
                WsEvent::Ping(payload) => {
                    conn.send(&net::frame(Opcode::Pong, &payload));
                    continue;
                }
                WsEvent::Pong => continue,
                WsEvent::Close(_) => {
                    conn.close(codes::CLOSE_NORMAL, "bye");
                    break 'outer;
                }
            };
            if !limit.allow() {
                metrics::counter!("orrery_rate_limited_total").increment(1);
                conn.close(codes::CLOSE_RATE_LIMITED, "message rate limit exceeded");
                break 'outer;
            }
            inbound.dispatch(decoded);
        }
        if conn.is_closed() {
            break;
        }
        reader.release_idle();
        if conn.stream().readable().await.is_err() {
            break;
        }
        match conn.stream().try_read_buf(reader.read_buf()) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    let _ = session.cast(SessionMsg::Closed);
}
