//! The contract between Orrery's machinery (actors, tick loop, deltas, snapshots, protocol envelope) and a game's rules.
//!
//! The machinery knows nothing of ships, warps or commodities. A game supplies the per-sector state, the commands a
//! client may send, the tick step and what a delta carries; the machinery owns sequencing, fan-out, supervision,
//! persistence and transport. Every associated type must round-trip through both `serde_json` and `postcard`, so
//! it may not use `#[serde(tag)]`, `untagged`, `flatten` or `skip_serializing_if` (postcard is not self-describing).

use std::fmt::Debug;

use serde::{de::DeserializeOwned, Serialize};
use uuid::Uuid;

use crate::ledger::Posting;

/// A player-controlled thing that lives in exactly one sector at a time (a ship in the reference game).
pub type EntityId = Uuid;
/// A sector: the unit of simulation, one actor each.
pub type SectorId = Uuid;
/// A region: a group of sectors under one supervisor.
pub type RegionId = Uuid;
/// Milliseconds since the Unix epoch. Time is passed in so that rules stay pure and deterministic.
pub type Millis = i64;

/// One region of the world as the actor tree sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionLayout {
    pub id: RegionId,
    pub name: String,
    /// Exactly one region is the nexus: it coordinates cross-region traffic.
    pub nexus: bool,
    pub sectors: Vec<SectorLayout>,
}

/// One sector of a region as the actor tree sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SectorLayout {
    pub id: SectorId,
    pub name: String,
}

/// What the machinery knows about a freshly created character when the game spawns its avatar.
#[derive(Debug, Clone, PartialEq)]
pub struct CharacterSeed {
    pub character_id: Uuid,
    pub name: String,
}

/// The result of a command that the rules accepted.
#[derive(Debug)]
pub enum Outcome<G: Game> {
    /// Applied in place; answer the client with this event, if any.
    Reply(Option<G::Event>),
    /// Applied in place, and it moved assets: the machinery writes `postings` (balanced per asset, see
    /// [`crate::ledger`]) as one ledger transaction together with the changed state, then answers with `reply`.
    Posted { reply: G::Event, postings: Vec<Posting> },
    /// The avatar has already been removed from this sector (and paid for the move); the machinery
    /// carries it to sector `to` and admits it there.
    Transfer { avatar: G::Avatar, to: SectorId },
}

/// Errors of a game's rules carry a stable, machine-readable code (`snake_case`) that reaches clients.
pub trait GameError: std::error::Error + Send + Sync + 'static {
    fn code(&self) -> &'static str;
}

/// A game built on Orrery. One value of it (holding the loaded content) is shared by every actor.
pub trait Game: Send + Sync + Sized + 'static {
    /// Everything a sector owns: present avatars, fixtures (stations), pending changes for the next delta.
    type Sector: Clone + Debug + Send + Serialize + DeserializeOwned + 'static;
    /// The thing a player controls and that moves between sectors, with everything that travels with it.
    type Avatar: Clone + Debug + Send + Sync + Serialize + DeserializeOwned + 'static;
    /// A command a client sends to the sector its avatar is in.
    type Command: Clone + Debug + Send + Serialize + DeserializeOwned + 'static;
    /// A reply or notification the rules send back to the commanding client.
    type Event: Clone + Debug + Send + Serialize + DeserializeOwned + 'static;
    /// A full view of a sector, sent on join, on `resync`, after a restart or after dropped deltas.
    type Keyframe: Clone + Debug + Send + Serialize + DeserializeOwned + 'static;
    /// The changes of one tick.
    type Delta: Clone + Debug + Send + Serialize + DeserializeOwned + 'static;
    /// What `welcome` tells a client about its character.
    type Profile: Clone + Debug + Send + Serialize + DeserializeOwned + 'static;
    /// Refusals of the rules.
    type Error: GameError;

    /// The regions and sectors of the world.
    fn layout(&self) -> Vec<RegionLayout>;
    /// The initial state of a sector (before any snapshot is applied).
    fn new_sector(&self, id: SectorId) -> Self::Sector;
    /// A new character's avatar and the sector it starts in.
    fn spawn(&self, seed: &CharacterSeed, now: Millis) -> (SectorId, Self::Avatar);
    /// The avatar's id (stable for its lifetime).
    fn avatar_id(&self, avatar: &Self::Avatar) -> EntityId;
    /// What `welcome` says about the avatar's character.
    fn profile(&self, avatar: &Self::Avatar, now: Millis) -> Self::Profile;
    /// Places an avatar into a sector (on login or at the end of a transfer); it appears in the next delta.
    fn admit(&self, sector: &mut Self::Sector, avatar: Self::Avatar, now: Millis);
    /// Removes an avatar from a sector (on logout); its removal appears in the next delta.
    fn depart(&self, sector: &mut Self::Sector, id: EntityId) -> Option<Self::Avatar>;
    /// Puts an avatar that is between sectors at `(x, y)` of the sector it enters next (an operator's teleport);
    /// the sector's `admit` may clamp it. Returns false if the game has no positions (the default).
    fn place(&self, avatar: &mut Self::Avatar, x: f32, y: f32) -> bool {
        let _ = (avatar, x, y);
        false
    }
    /// Copies of every avatar present, for snapshots.
    fn avatars(&self, sector: &Self::Sector) -> Vec<Self::Avatar>;
    /// Removes every avatar from a sector, leaving exactly the state that [`Game::depart`] of each of
    /// [`Game::avatars`], in that order, leaves (a sector restored from a snapshot parks nobody: the characters'
    /// rows hold their avatars). The default does just that; a game may do it without copying the avatars.
    fn depart_all(&self, sector: &mut Self::Sector) {
        for avatar in self.avatars(sector) {
            let _ = self.depart(sector, self.avatar_id(&avatar));
        }
    }
    /// Applies a client command for avatar `who` in this sector.
    fn handle(
        &self,
        sector: &mut Self::Sector,
        who: EntityId,
        command: Self::Command,
        now: Millis,
    ) -> Result<Outcome<Self>, Self::Error>;
    /// The client's idempotency key of a command, if it carries one: a command repeated with the same key (by the
    /// same character, also after a reconnect or a restart) is applied once and the repeat answered with the
    /// original reply. Only commands answered with [`Outcome::Posted`] are remembered.
    fn command_key<'a>(&self, command: &'a Self::Command) -> Option<&'a str> {
        let _ = command;
        None
    }
    /// The sector a command would take the avatar to (a warp's target), if it is such a command: the machinery
    /// checks it against the session's permissions (entering the nexus region) before the command is applied.
    fn command_destination(&self, command: &Self::Command) -> Option<SectorId> {
        let _ = command;
        None
    }
    /// What a new avatar holds that the world issued to it (starting credits...), as postings from
    /// [`crate::Holder::World`]: written once per character, as the ledger's opening entry for it.
    fn avatar_opening(&self, avatar: &Self::Avatar) -> Vec<Posting> {
        let _ = avatar;
        Vec::new()
    }
    /// What a sector's fixtures hold that the world issued to them (a station's opening stock and credits):
    /// written once per sector, as the ledger's opening entry for them, with the sector's first write.
    fn sector_opening(&self, sector: &Self::Sector) -> Vec<Posting> {
        let _ = sector;
        Vec::new()
    }
    /// The version of the encoding of [`Game::Sector`] in snapshots. Raise it when the sector's serialized form
    /// changes, and teach [`Game::decode_sector`] to read the older versions still stored.
    const SECTOR_FORMAT: u32 = 1;
    /// Decodes a stored sector snapshot written with format `format` (postcard).
    fn decode_sector(&self, format: u32, bytes: &[u8]) -> Result<Self::Sector, String> {
        if format != Self::SECTOR_FORMAT {
            return Err(format!(
                "unknown sector format {format} (this build writes {})",
                Self::SECTOR_FORMAT
            ));
        }
        postcard::from_bytes(bytes).map_err(|e| e.to_string())
    }
    /// Whether an accepted command must be on disk before its reply is sent (a trade: what a player was told
    /// happened must survive a crash). Such commands cost a snapshot write each; the default is none.
    fn durable(&self, command: &Self::Command) -> bool {
        let _ = command;
        false
    }
    /// Advances the sector by one fixed step of `dt` seconds and returns everything that changed since the
    /// previous tick (including changes made by commands, admits and departures), or `None` if nothing did.
    ///
    /// A sector *rests* after a few ticks in a row that returned `None` while no client sent anything: it is not
    /// ticked again until input, a command, an admit or a departure arrives, or a second has passed. So a rule
    /// that changes the sector on its own, with nothing moving and nobody acting, runs late by up to a second.
    fn tick(&self, sector: &mut Self::Sector, dt: f32) -> Option<Self::Delta>;
    /// A full view of the sector.
    fn keyframe(&self, sector: &Self::Sector) -> Self::Keyframe;
}
