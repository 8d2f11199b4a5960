//! The reference game, a space-trade world: `model` (wire types), `sector` (state, motion, deltas), `trade` (prices),
//! `view` (a client's mirror of a sector).

mod compact;
mod model;
mod sector;
mod trade;
mod view;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_trade;

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use uuid::{Builder, Uuid};

use crate::galaxy::{Galaxy, DEFAULT_SECTOR_SIZE};
use crate::game::{CharacterSeed, EntityId, Game, Millis, Outcome, RegionLayout, SectorId};
use crate::ledger::{self, Holder, Posting};
use crate::turns::TurnPool;

pub use compact::{Move, Moves, Steer, Steers};
pub use model::{Command, Delta, Error, Event, Keyframe, Profile, Rules, Ship, ShipView, Side, StationView, WarpView};
pub use sector::{SectorState, StationState};
pub use trade::{ListingState, CREDITS};
pub use view::ClientView;

/// The space-trade game over one galaxy. Cheap to share (`Arc` it); all state lives in [`SectorState`]s.
#[derive(Debug)]
pub struct SpaceTrade {
    galaxy: Arc<Galaxy>,
    rules: Rules,
    /// Sector id -> (region index, sector index) in `galaxy`.
    sectors: HashMap<SectorId, (usize, usize)>,
    /// Where new characters start: the first spawn sector (or, in content that failed validation, the first sector).
    spawn: SectorId,
}

/// A speed limit that is safe to clamp with: NaN becomes 0, a negative limit its absolute value.
pub(crate) fn speed_limit(max: f32) -> f32 {
    if max.is_nan() {
        0.0
    } else {
        max.abs()
    }
}

impl SpaceTrade {
    /// The game over `galaxy` (which should have passed [`Galaxy::validate`]; nothing here panics if it did not).
    pub fn new(galaxy: Arc<Galaxy>, rules: Rules) -> SpaceTrade {
        let mut sectors = HashMap::new();
        for (ri, r) in galaxy.regions.iter().enumerate() {
            for (si, s) in r.sectors.iter().enumerate() {
                sectors.entry(s.id).or_insert((ri, si));
            }
        }
        let spawn = galaxy
            .spawn_sector()
            .or_else(|| galaxy.sectors().map(|(_, s)| s).next())
            .map_or(Uuid::nil(), |s| s.id);
        SpaceTrade {
            galaxy,
            rules,
            sectors,
            spawn,
        }
    }

    pub fn galaxy(&self) -> &Arc<Galaxy> {
        &self.galaxy
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The sector new characters start in.
    pub fn spawn_sector(&self) -> SectorId {
        self.spawn
    }

    /// Edge length of every sector (the content's `sector_size`, or the default if it is unusable).
    pub fn sector_size(&self) -> f32 {
        let size = self.galaxy.sector_size;
        if size.is_finite() && size >= 1.0 {
            size
        } else {
            DEFAULT_SECTOR_SIZE
        }
    }

    /// A character's ship id: the first 16 bytes of `SHA-256("orrery/ship/" ++ character id bytes)`, stamped as a
    /// version-4 UUID. Deterministic, so a re-spawn after a lost write gives the same ship.
    pub fn ship_id_for(character: Uuid) -> Uuid {
        let digest = ship_digest(character);
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Builder::from_random_bytes(bytes).into_uuid()
    }
}

fn ship_digest(character: Uuid) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"orrery/ship/");
    h.update(character.as_bytes());
    h.finalize().into()
}

/// A fraction in [0, 1] from four bytes.
fn fraction(b: &[u8]) -> f64 {
    let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    f64::from(v) / f64::from(u32::MAX)
}

impl Game for SpaceTrade {
    type Sector = SectorState;
    type Avatar = Ship;
    type Command = Command;
    type Event = Event;
    type Keyframe = Keyframe;
    type Delta = Delta;
    type Profile = Profile;
    type Error = Error;

    fn layout(&self) -> Vec<RegionLayout> {
        self.galaxy.layout()
    }

    fn new_sector(&self, id: SectorId) -> SectorState {
        let size = self.sector_size();
        let Some(&(ri, si)) = self.sectors.get(&id) else {
            return SectorState::new(id, String::new(), Uuid::nil(), size, Vec::new(), Vec::new());
        };
        let region = &self.galaxy.regions[ri];
        let sector = &region.sectors[si];
        let stations = sector
            .stations
            .iter()
            .map(|s| StationState::from_content(s, self.rules.station_credits))
            .collect();
        let warps = sector
            .warps
            .iter()
            .filter_map(|w| {
                let &(tr, ts) = self.sectors.get(&w.to)?;
                let target_region = &self.galaxy.regions[tr];
                Some(WarpView {
                    to: w.to,
                    name: target_region.sectors[ts].name.clone(),
                    turns: w.turns,
                    region: target_region.id,
                })
            })
            .collect();
        SectorState::new(id, sector.name.clone(), region.id, size, stations, warps)
    }

    /// A new ship in the first spawn sector: id from [`SpaceTrade::ship_id_for`], position from the same digest
    /// (within the middle 80% of the sector on each axis), at rest, start credits, empty hold, full turn pool.
    fn spawn(&self, seed: &CharacterSeed, now: Millis) -> (SectorId, Ship) {
        let digest = ship_digest(seed.character_id);
        let size = f64::from(self.sector_size());
        let place = |b: &[u8]| (size * (0.1 + 0.8 * fraction(b))) as f32;
        let ship = Ship {
            id: SpaceTrade::ship_id_for(seed.character_id),
            owner: seed.character_id,
            name: seed.name.clone(),
            x: place(&digest[16..20]),
            y: place(&digest[20..24]),
            vx: 0.0,
            vy: 0.0,
            credits: self.rules.start_credits,
            cargo: Default::default(),
            cargo_capacity: self.rules.cargo_capacity,
            turns: TurnPool::full(now, &self.rules.turns),
        };
        (self.spawn, ship)
    }

    fn avatar_id(&self, avatar: &Ship) -> EntityId {
        avatar.id
    }

    fn profile(&self, ship: &Ship, now: Millis) -> Profile {
        Profile {
            id: ship.owner,
            name: ship.name.clone(),
            ship: ship.id,
            credits: ship.credits,
            cargo: ship.cargo.clone(),
            cargo_capacity: ship.cargo_capacity,
            turns: ship.turns.available(now, &self.rules.turns),
            turns_max: self.rules.turns.max,
        }
    }

    fn admit(&self, sector: &mut SectorState, avatar: Ship, _now: Millis) {
        sector.admit(avatar, self.rules.max_speed);
    }

    fn depart(&self, sector: &mut SectorState, id: EntityId) -> Option<Ship> {
        sector.depart(id)
    }

    fn place(&self, ship: &mut Ship, x: f32, y: f32) -> bool {
        // At rest where it is put; `admit` clamps the position into the sector.
        (ship.x, ship.y, ship.vx, ship.vy) = (x, y, 0.0, 0.0);
        true
    }

    fn avatars(&self, sector: &SectorState) -> Vec<Ship> {
        sector.ships().to_vec()
    }

    fn depart_all(&self, sector: &mut SectorState) {
        sector.depart_all();
    }

    fn handle(
        &self,
        sector: &mut SectorState,
        who: EntityId,
        command: Command,
        now: Millis,
    ) -> Result<Outcome<Self>, Error> {
        let slot = sector.slot(who)?;
        match command {
            Command::Thrust { vx, vy } => {
                if !(vx.is_finite() && vy.is_finite()) {
                    return Err(Error::InvalidValue(format!(
                        "thrust needs finite numbers, got vx={vx}, vy={vy}"
                    )));
                }
                let max = speed_limit(self.rules.max_speed);
                let (vx, vy) = (vx.clamp(-max, max), vy.clamp(-max, max));
                let ship = sector.ship_mut(slot);
                if ship.vx != vx || ship.vy != vy {
                    ship.vx = vx;
                    ship.vy = vy;
                    sector.mark_steered(slot);
                }
                Ok(Outcome::Reply(None))
            }
            Command::Warp { to } => {
                let cost = sector
                    .warps()
                    .iter()
                    .find(|w| w.to == to)
                    .map(|w| w.turns)
                    .ok_or(Error::NoSuchWarp { to })?;
                sector
                    .ship_mut(slot)
                    .turns
                    .spend(cost, now, &self.rules.turns)
                    .map_err(|e| Error::NotEnoughTurns {
                        needed: e.needed,
                        available: e.available,
                    })?;
                let mut ship = sector.depart(who).ok_or(Error::NotInSector { ship: who })?;
                let centre = self.sector_size() / 2.0;
                (ship.x, ship.y, ship.vx, ship.vy) = (centre, centre, 0.0, 0.0);
                Ok(Outcome::Transfer { avatar: ship, to })
            }
            Command::Trade {
                station,
                commodity,
                side,
                qty,
                key: _,
            } => trade::trade(sector, slot, station, commodity, side, qty)
                .map(|(reply, postings)| Outcome::Posted { reply, postings }),
        }
    }

    fn command_destination(&self, command: &Command) -> Option<SectorId> {
        match command {
            Command::Warp { to } => Some(*to),
            _ => None,
        }
    }

    fn command_key<'a>(&self, command: &'a Command) -> Option<&'a str> {
        match command {
            Command::Trade { key, .. } => key.as_deref(),
            _ => None,
        }
    }

    /// A new ship's starting credits and hold.
    fn avatar_opening(&self, ship: &Ship) -> Vec<Posting> {
        let holdings = std::iter::once((trade::CREDITS, ship.credits as i64))
            .chain(ship.cargo.iter().map(|(c, &q)| (c.as_str(), i64::from(q))));
        ledger::issue(Holder::Avatar(ship.id), holdings)
    }

    /// Each station's opening credits and stock.
    fn sector_opening(&self, sector: &SectorState) -> Vec<Posting> {
        sector
            .stations()
            .iter()
            .flat_map(|st| {
                let holdings = std::iter::once((trade::CREDITS, st.credits as i64)).chain(
                    st.listings
                        .iter()
                        .map(|l| (l.commodity.as_str(), i64::from(l.quantity))),
                );
                ledger::issue(Holder::Fixture(st.id), holdings)
            })
            .collect()
    }

    /// 2: stations hold credits. Format 1 (before) is read with every station opening with `station_credits`.
    const SECTOR_FORMAT: u32 = 2;

    fn decode_sector(&self, format: u32, bytes: &[u8]) -> Result<SectorState, String> {
        match format {
            2 => postcard::from_bytes(bytes).map_err(|e| e.to_string()),
            1 => postcard::from_bytes::<sector::v1::Snapshot>(bytes)
                .map(|old| old.upgrade(self.rules.station_credits))
                .map_err(|e| e.to_string()),
            other => Err(format!("unknown sector format {other} (this build reads 1 and 2)")),
        }
    }

    /// Trades are acknowledged only once on disk; moves and warps are cheap to lose to a crash.
    fn durable(&self, command: &Command) -> bool {
        matches!(command, Command::Trade { .. })
    }

    fn tick(&self, sector: &mut SectorState, dt: f32) -> Option<Delta> {
        sector.tick(dt)
    }

    fn keyframe(&self, sector: &SectorState) -> Keyframe {
        sector.keyframe()
    }
}
