//! The session actor: one per WebSocket connection. It owns the session's lifecycle (load or spawn the character,
//! welcome, enter its sector; park the ship when the connection ends). It is on neither the per-frame nor the
//! per-input path: sectors write deltas to the connection and read the client's messages from it themselves
//! ([`crate::input`]).

pub mod messages;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use orrery_engine::{CharacterSeed, Game, SectorId};
use orrery_protocol::{codes, Encoding, ServerFrame, ServerMessage};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::config::EngineConfig;
use crate::directory::{Directory, SessionLink};
use crate::input::InputState;
use crate::ledger;
use crate::net::Conn;
use crate::persist::{PersistBatch, Persister};
use crate::sector::{encode_frame, SectorMsg};
use crate::store::{now_millis, Identity, ParkedAvatar, SharedStore};
pub use messages::SessionMsg;

/// How long a session waits for a sector to answer a login or logout.
pub const SECTOR_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a session retries a sector that is restarting (every 50 ms).
const SECTOR_RETRIES: u32 = 40;
/// How long logging out waits for a ship in transit to arrive somewhere.
const TRANSIT_WAIT: Duration = Duration::from_secs(15);
/// How long a login waits for a new character's ship to be written. The persister retries a write for as long as
/// the database is unreachable; past this the login gives up (the connection closes with 1011) and the write stays
/// queued until the database returns.
pub const LOGIN_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long logging out waits for the parked ship to be written. Past this the session ends anyway (so that a dead
/// database cannot hold logouts, or a shutdown, forever); the row stays queued until the database returns.
pub const PARK_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Failures while setting up or tearing down a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("sector {0} did not admit the ship")]
    SectorUnavailable(SectorId),
    #[error("stored avatar is unreadable: {0}")]
    CorruptAvatar(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the parked ship could not be written")]
    NotSaved,
    #[error("the database did not take the write within {0:?}; it stays queued until the database returns")]
    WriteTimedOut(Duration),
}

impl SessionError {
    /// Whether the failure is the database's (unreachable or not taking writes) rather than the character's.
    fn storage(&self) -> bool {
        matches!(
            self,
            SessionError::Store(crate::store::StoreError::Database(_))
                | SessionError::NotSaved
                | SessionError::WriteTimedOut(_)
        )
    }
}

/// Writes `batch` through the persister, waiting at most `limit`.
async fn write_within(persister: &Persister, batch: PersistBatch, limit: Duration) -> Result<(), SessionError> {
    match tokio::time::timeout(limit, persister.write(batch)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(SessionError::NotSaved),
        Err(_) => Err(SessionError::WriteTimedOut(limit)),
    }
}

/// Everything a session actor is started with.
pub struct SessionArgs<G: Game> {
    pub game: Arc<G>,
    pub directory: Arc<Directory<G>>,
    pub store: SharedStore,
    /// The node's one writer of snapshots and parked ships.
    pub persister: Persister,
    pub config: Arc<EngineConfig>,
    pub identity: Identity,
    pub session: Uuid,
    pub conn: Arc<Conn>,
    pub encoding: Encoding,
    /// Bytes the HTTP layer read past the upgrade request.
    pub leftover: Bytes,
    /// Whether the session may take its ship into the nexus region (see `SessionLink::nexus_allowed`).
    pub nexus_allowed: bool,
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
    persister: Persister,
    link: Arc<SessionLink>,
    /// The ship was parked (an operator ended the session): a later `Closed` only stops the actor.
    parked: bool,
}

impl<G: Game> SessionState<G> {
    fn sector(&self) -> Option<ActorRef<SectorMsg<G>>> {
        self.directory.sector(self.link.sector())
    }

    /// Takes the ship out of its sector and parks it in the store.
    async fn park(&self) -> Result<(), SessionError> {
        // A ship between two sectors is waited for: a lost delivery is driven again, and a ship whose target stays
        // unreachable goes back to its origin within 10 s (the region layer's parcel sweep).
        let transit_deadline = tokio::time::Instant::now() + TRANSIT_WAIT;
        while self.link.in_transit() && tokio::time::Instant::now() < transit_deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
                        // Through the persister, never straight to the store: a snapshot that still holds this ship
                        // (taken before it left) is queued before this row, so it can never overwrite it.
                        let parked = PersistBatch {
                            avatars: vec![ParkedAvatar {
                                character_id: self.link.character,
                                sector: at,
                                avatar: blob,
                            }],
                            ..PersistBatch::default()
                        };
                        return write_within(&self.persister, parked, PARK_WRITE_TIMEOUT).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(SessionError::SectorUnavailable(self.link.sector()))
    }
}

/// Loads (or spawns) the character's avatar and the sector it is in, and makes sure the ledger has the character's
/// opening entry (what the world issued to it). A new character's ship and opening are written before it plays.
async fn load_avatar<G: Game>(
    game: &G,
    directory: &Directory<G>,
    store: &SharedStore,
    persister: &Persister,
    identity: &Identity,
) -> Result<(SectorId, G::Avatar), SessionError> {
    let found = find_avatar(game, directory, store, identity).await?;
    let (sector, avatar) = (found.sector, found.avatar);
    let character = identity.character_id;
    // An opening posts only to its avatar; any other avatar it named is recorded under its own id.
    let entries_of = |avatar: &G::Avatar| {
        let entity = game.avatar_id(avatar);
        ledger::entries(
            &game.avatar_opening(avatar),
            |e| if e == entity { character } else { e },
        )
    };
    // The character's opening (a no-op when it is stored already). A character from before the ledger opens with
    // what its ship holds now.
    let first = found.retired.as_ref().map_or(&avatar, |(_, old)| old);
    let mut ledger_txs: Vec<_> = ledger::opening(
        ledger::character_opening_id(character),
        now_millis(),
        None,
        Some(character),
        entries_of(first),
    )
    .into_iter()
    .collect();
    // The parked ship's sector is gone: what it held goes back to the world, the new ship is issued its own.
    if let Some((parked, old)) = &found.retired {
        ledger_txs.extend(ledger::respawn(
            ledger::respawn_id(character, parked.sector, &parked.avatar),
            now_millis(),
            character,
            entries_of(old),
            entries_of(&avatar),
        ));
    }
    if found.new {
        let blob = postcard::to_allocvec(&avatar).map_err(|e| SessionError::CorruptAvatar(e.to_string()))?;
        let batch = PersistBatch {
            avatars: vec![ParkedAvatar {
                character_id: character,
                sector,
                avatar: blob,
            }],
            ledger: ledger_txs,
            ..PersistBatch::default()
        };
        write_within(persister, batch, LOGIN_WRITE_TIMEOUT).await?;
    } else if !ledger_txs.is_empty() {
        persister.submit(PersistBatch {
            ledger: ledger_txs,
            ..PersistBatch::default()
        });
    }
    Ok((sector, avatar))
}

/// Where a login finds its character's ship.
struct Found<G: Game> {
    sector: SectorId,
    avatar: G::Avatar,
    /// Spawned now (its state and opening must be written before play).
    new: bool,
    /// The parked ship this spawn replaces (its sector no longer exists), as stored and decoded.
    retired: Option<(ParkedAvatar, G::Avatar)>,
}

/// The character's parked avatar and its sector, or a newly spawned one.
async fn find_avatar<G: Game>(
    game: &G,
    directory: &Directory<G>,
    store: &SharedStore,
    identity: &Identity,
) -> Result<Found<G>, SessionError> {
    let mut retired = None;
    if let Some(parked) = store.load_avatar(identity.character_id).await? {
        let avatar: G::Avatar =
            postcard::from_bytes(&parked.avatar).map_err(|e| SessionError::CorruptAvatar(e.to_string()))?;
        if directory.has_sector(parked.sector) {
            return Ok(Found {
                sector: parked.sector,
                avatar,
                new: false,
                retired: None,
            });
        }
        warn!(character = %identity.character_id, sector = %parked.sector, "parked in a sector that no longer exists; respawning");
        retired = Some((parked, avatar));
    }
    let seed = CharacterSeed {
        character_id: identity.character_id,
        name: identity.name.clone(),
    };
    let (sector, avatar) = game.spawn(&seed, now_millis());
    let sector = match store.spawn_sector(identity.character_id).await? {
        Some(chosen) if directory.has_sector(chosen) => chosen,
        _ => sector,
    };
    Ok(Found {
        sector,
        avatar,
        new: true,
        retired,
    })
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
        let loaded = load_avatar(a.game.as_ref(), &a.directory, &a.store, &a.persister, &a.identity).await;
        let (sector, avatar) = match loaded {
            Ok(found) => found,
            Err(e) => {
                warn!(
                    character = %a.identity.character_id,
                    error = %e,
                    "login failed: the character could not be loaded or saved"
                );
                a.directory.remove_session(a.session, a.identity.character_id);
                let reason = if e.storage() {
                    "storage unavailable, try again later"
                } else {
                    "could not load character"
                };
                a.conn.close(1011, reason);
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
        {
            let mut input = InputState::new(a.config.input_limits());
            input.push(&a.leftover);
            *link.input.lock() = input;
        }
        link.set_nexus_allowed(a.nexus_allowed);
        link.set_session_actor(myself.clone());
        link.set_account(a.identity.account_id);
        a.directory.attach_session(Arc::clone(&link));
        let welcome = ServerFrame::<G>::new(
            None,
            ServerMessage::Welcome {
                session: a.session,
                character: a.game.profile(&avatar, now_millis()),
                sector,
                tick_hz: a.directory.tick_hz(sector).unwrap_or(a.config.tick_hz),
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
        Ok(SessionState {
            directory: a.directory,
            persister: a.persister,
            link,
            parked: false,
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
                if !state.parked {
                    if let Err(e) = state.park().await {
                        warn!(session = %state.link.session, error = %e, "could not park the ship at logout");
                    }
                }
                myself.stop(None);
            }
            SessionMsg::End {
                scope,
                code,
                reason,
                reply,
            } => {
                if state.parked {
                    // Ended already (by another control): its ship is parked, and the actor is stopping.
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(()));
                    }
                    return Ok(());
                }
                let notice = ServerFrame::<G>::new(
                    None,
                    ServerMessage::Notice {
                        scope: scope.to_owned(),
                        text: reason.clone(),
                    },
                );
                state.link.conn.send(&encode_frame(&notice, state.link.encoding));
                // A close reason is at most 123 bytes (on a character boundary).
                let mut cut = reason.len().min(123);
                while !reason.is_char_boundary(cut) {
                    cut -= 1;
                }
                state.link.conn.close(code, &reason[..cut]);
                let parked = state.park().await.map_err(|e| e.to_string());
                if let Err(e) = &parked {
                    warn!(session = %state.link.session, error = %e, "could not park the ship of an ended session");
                }
                state.parked = true;
                debug!(session = %state.link.session, scope, code, "session ended by an operator");
                if let Some(reply) = reply {
                    let _ = reply.send(parked);
                }
                myself.stop(None);
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.directory.remove_session(state.link.session, state.link.character);
        // No-op when the connection is closing already (an operator's close code stands).
        state.link.conn.close(codes::CLOSE_NORMAL, "bye");
        debug!(session = %state.link.session, "session ended");
        Ok(())
    }
}
