#![doc = include_str!("../../../docs/extending.md")]

use std::collections::{BTreeMap, BTreeSet};

use orrery_engine::{CharacterSeed, EntityId, Game, GameError, Millis, Outcome, RegionLayout, SectorId, SectorLayout};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

// --- wire types ---
/// A player: where it stands in its room and how many tags it made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Player {
    pub id: EntityId,
    pub name: String,
    pub x: i32,
    pub y: i32,
    pub tags: u32,
}

/// One room: its players, who is "it", and what changed since the last tick (for the next delta).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Room {
    pub id: SectorId,
    pub players: BTreeMap<EntityId, Player>,
    pub it: Option<EntityId>,
    pub changed: BTreeSet<EntityId>,
    pub left: Vec<EntityId>,
    pub it_changed: bool,
}

/// What a client sends: `{"type": "step", "dx": 1, "dy": 0}`, `{"type": "tag", "target": "..."}`,
/// `{"type": "door", "to": "..."}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    Step { dx: i32, dy: i32 },
    Tag { target: EntityId },
    Door { to: SectorId },
}

/// The answer to a tag: `{"type": "tagged", "id": 3, "target": "..."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Tagged { target: EntityId },
}

/// A full view of a room.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Keyframe {
    pub name: String,
    pub players: Vec<Player>,
    pub it: Option<EntityId>,
    pub doors: Vec<SectorId>,
}

/// The changes of one tick.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delta {
    pub upserts: Vec<Player>,
    pub removes: Vec<EntityId>,
    pub it: Option<EntityId>,
}

/// What `welcome` says about the character.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub tags: u32,
}

/// Refusals, each with a stable code that reaches the client.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error("steps are at most one square in each direction")]
    TooFar,
    #[error("only the player who is it may tag")]
    NotIt,
    #[error("that player is not in this room")]
    NoSuchPlayer,
    #[error("that player is out of reach")]
    OutOfReach,
    #[error("no door leads there")]
    NoDoor,
}

impl GameError for TagError {
    fn code(&self) -> &'static str {
        match self {
            TagError::TooFar => "too_far",
            TagError::NotIt => "not_it",
            TagError::NoSuchPlayer => "no_such_player",
            TagError::OutOfReach => "out_of_reach",
            TagError::NoDoor => "no_door",
        }
    }
}
// --- end wire types ---

// --- the game ---
/// Rooms are squares of `SIZE` x `SIZE` cells.
pub const SIZE: i32 = 10;

/// Tag across a ring of rooms: each room has one player who is "it"; it tags a player next to it to pass it on.
#[derive(Debug, Clone)]
pub struct Tag {
    rooms: Vec<SectorId>,
}

impl Tag {
    /// A ring of `rooms` rooms (at least 1), with stable ids.
    pub fn new(rooms: u32) -> Tag {
        let rooms = (1..=u128::from(rooms.max(1))).map(Uuid::from_u128).collect();
        Tag { rooms }
    }

    /// The rooms' ids, in ring order.
    pub fn rooms(&self) -> &[SectorId] {
        &self.rooms
    }

    /// The rooms next to `room` in the ring.
    pub fn doors(&self, room: SectorId) -> Vec<SectorId> {
        let n = self.rooms.len();
        let Some(i) = self.rooms.iter().position(|r| *r == room) else {
            return Vec::new();
        };
        let mut doors = vec![self.rooms[(i + 1) % n], self.rooms[(i + n - 1) % n]];
        doors.retain(|d| *d != room);
        doors.dedup();
        doors
    }

    /// A room's name: "Room 1", "Room 2", ...
    pub fn room_name(&self, room: SectorId) -> String {
        let i = self.rooms.iter().position(|r| *r == room).map_or(0, |i| i + 1);
        format!("Room {i}")
    }
}

/// Makes sure someone present is it, if anyone is there: when it leaves, the player with the lowest id is it next
/// (any choice will do, as long as it depends on the state alone: rule 1).
pub fn pass_it_on(room: &mut Room) {
    if room.it.is_none_or(|it| !room.players.contains_key(&it)) {
        room.it = room.players.keys().next().copied();
        room.it_changed = true;
    }
}
// --- end the game ---

// --- rules ---
impl Game for Tag {
    type Sector = Room;
    type Avatar = Player;
    type Command = Command;
    type Event = Event;
    type Keyframe = Keyframe;
    type Delta = Delta;
    type Profile = Profile;
    type Error = TagError;

    fn layout(&self) -> Vec<RegionLayout> {
        let sectors = self
            .rooms
            .iter()
            .map(|&id| SectorLayout {
                id,
                name: self.room_name(id),
            })
            .collect();
        vec![RegionLayout {
            id: Uuid::from_u128(0),
            name: "Arena".into(),
            nexus: true,
            sectors,
        }]
    }

    fn new_sector(&self, id: SectorId) -> Room {
        Room {
            id,
            players: BTreeMap::new(),
            it: None,
            changed: BTreeSet::new(),
            left: Vec::new(),
            it_changed: false,
        }
    }

    fn spawn(&self, seed: &CharacterSeed, _now: Millis) -> (SectorId, Player) {
        let player = Player {
            id: seed.character_id,
            name: seed.name.clone(),
            x: 0,
            y: 0,
            tags: 0,
        };
        (self.rooms[0], player)
    }

    fn avatar_id(&self, avatar: &Player) -> EntityId {
        avatar.id
    }

    fn profile(&self, avatar: &Player, _now: Millis) -> Profile {
        Profile {
            name: avatar.name.clone(),
            tags: avatar.tags,
        }
    }

    fn admit(&self, room: &mut Room, avatar: Player, _now: Millis) {
        room.changed.insert(avatar.id);
        room.left.retain(|id| *id != avatar.id);
        room.players.insert(avatar.id, avatar);
        pass_it_on(room);
    }

    fn depart(&self, room: &mut Room, id: EntityId) -> Option<Player> {
        let player = room.players.remove(&id)?;
        room.changed.remove(&id);
        room.left.push(id);
        pass_it_on(room);
        Some(player)
    }

    fn place(&self, avatar: &mut Player, x: f32, y: f32) -> bool {
        avatar.x = (x as i32).clamp(0, SIZE - 1);
        avatar.y = (y as i32).clamp(0, SIZE - 1);
        true
    }

    fn avatars(&self, room: &Room) -> Vec<Player> {
        room.players.values().cloned().collect()
    }

    fn depart_all(&self, room: &mut Room) {
        let ids: Vec<EntityId> = room.players.keys().copied().collect();
        for id in ids {
            let _ = self.depart(room, id);
        }
    }

    fn handle(
        &self,
        room: &mut Room,
        who: EntityId,
        command: Command,
        _now: Millis,
    ) -> Result<Outcome<Self>, TagError> {
        match command {
            Command::Step { dx, dy } => {
                if dx.abs() > 1 || dy.abs() > 1 {
                    return Err(TagError::TooFar);
                }
                let me = room.players.get_mut(&who).ok_or(TagError::NoSuchPlayer)?;
                me.x = (me.x + dx).clamp(0, SIZE - 1);
                me.y = (me.y + dy).clamp(0, SIZE - 1);
                room.changed.insert(who);
                Ok(Outcome::Reply(None))
            }
            Command::Tag { target } => {
                if room.it != Some(who) {
                    return Err(TagError::NotIt);
                }
                let (me, them) = match (room.players.get(&who), room.players.get(&target)) {
                    (Some(me), Some(them)) if who != target => (me, them),
                    _ => return Err(TagError::NoSuchPlayer),
                };
                if (me.x - them.x).abs() > 1 || (me.y - them.y).abs() > 1 {
                    return Err(TagError::OutOfReach);
                }
                if let Some(me) = room.players.get_mut(&who) {
                    me.tags += 1;
                }
                room.changed.insert(who);
                room.it = Some(target);
                room.it_changed = true;
                Ok(Outcome::Reply(Some(Event::Tagged { target })))
            }
            Command::Door { to } => {
                if !room.players.contains_key(&who) {
                    return Err(TagError::NoSuchPlayer);
                }
                if !self.doors(room.id).contains(&to) {
                    return Err(TagError::NoDoor);
                }
                let avatar = self.depart(room, who).ok_or(TagError::NoSuchPlayer)?;
                Ok(Outcome::Transfer { avatar, to })
            }
        }
    }

    fn command_key<'a>(&self, _command: &'a Command) -> Option<&'a str> {
        None
    }

    fn command_destination(&self, command: &Command) -> Option<SectorId> {
        match command {
            Command::Door { to } => Some(*to),
            _ => None,
        }
    }

    fn avatar_opening(&self, _avatar: &Player) -> Vec<orrery_engine::ledger::Posting> {
        Vec::new()
    }

    fn sector_opening(&self, _room: &Room) -> Vec<orrery_engine::ledger::Posting> {
        Vec::new()
    }

    const SECTOR_FORMAT: u32 = 1;

    fn decode_sector(&self, format: u32, bytes: &[u8]) -> Result<Room, String> {
        match format {
            1 => postcard::from_bytes(bytes).map_err(|e| e.to_string()),
            other => Err(format!("unknown room format {other}")),
        }
    }

    fn durable(&self, command: &Command) -> bool {
        matches!(command, Command::Tag { .. })
    }

    fn tick(&self, room: &mut Room, _dt: f32) -> Option<Delta> {
        if room.changed.is_empty() && room.left.is_empty() && !room.it_changed {
            return None;
        }
        let upserts = room
            .changed
            .iter()
            .filter_map(|id| room.players.get(id).cloned())
            .collect();
        room.changed.clear();
        room.it_changed = false;
        Some(Delta {
            upserts,
            removes: std::mem::take(&mut room.left),
            it: room.it,
        })
    }

    fn keyframe(&self, room: &Room) -> Keyframe {
        Keyframe {
            name: self.room_name(room.id),
            players: room.players.values().cloned().collect(),
            it: room.it,
            doors: self.doors(room.id),
        }
    }
}
// --- end rules ---
