//! A sector's state: ships (a Vec plus an id index), station books, warps, and the changes pending for the next delta.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use super::compact::{Move, Moves, Steer, Steers};
use super::model::{Delta, Error, Keyframe, Ship, ShipView, StationView, WarpView};
use super::trade::ListingState;
use crate::galaxy::{Station, DEFAULT_SECTOR_SIZE};
use crate::game::{RegionId, SectorId};

/// A station in play: its book, with base prices kept so that prices can follow stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationState {
    pub id: Uuid,
    pub name: String,
    /// The station's balance: it pays players who sell to it from this, and is paid by players who buy.
    pub credits: u64,
    pub listings: Vec<ListingState>,
    /// The book changed since the last tick (goes into the next delta).
    pub changed: bool,
}

impl StationState {
    /// A station as loaded from content with `credits` to open with, its prices set from its stock.
    pub fn from_content(station: &Station, credits: u64) -> StationState {
        StationState {
            id: station.id,
            name: station.name.clone(),
            credits,
            listings: station.commodities.iter().map(ListingState::from_content).collect(),
            changed: false,
        }
    }

    pub fn view(&self) -> StationView {
        StationView {
            id: self.id,
            name: self.name.clone(),
            credits: self.credits,
            commodities: self.listings.iter().map(ListingState::listing).collect(),
        }
    }
}

/// Format 1 of a sector snapshot (before stations held credits), still readable: its stations open with
/// `station_credits`.
pub(crate) mod v1 {
    use serde::Deserialize;
    use uuid::Uuid;

    use super::super::trade::ListingState;
    use super::{SectorSnapshot, SectorSnapshotOf, SectorState, StationState};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Station {
        id: Uuid,
        name: String,
        listings: Vec<ListingState>,
        changed: bool,
    }

    pub(crate) type Snapshot = SectorSnapshotOf<Station>;

    impl SectorSnapshotOf<Station> {
        pub(crate) fn upgrade(self, station_credits: u64) -> SectorState {
            SectorState::from(SectorSnapshot {
                id: self.id,
                name: self.name,
                region: self.region,
                size: self.size,
                ships: self.ships,
                handles: self.handles,
                flags: self.flags,
                stations: self
                    .stations
                    .into_iter()
                    .map(|s| StationState {
                        id: s.id,
                        name: s.name,
                        credits: station_credits,
                        listings: s.listings,
                        changed: s.changed,
                    })
                    .collect(),
                warps: self.warps,
                removed: self.removed,
            })
        }
    }
}

/// A ship entered the sector since the last tick.
const ADDED: u8 = 1;
/// A ship's position changed since the last tick.
const MOVED: u8 = 2;
/// A ship's velocity changed since the last tick.
const STEERED: u8 = 4;

/// Everything a sector owns. Ships live in a `Vec` (deterministic order: admission order, with a departed ship's
/// slot taken by the last ship) with an id index; `names`, `handles` and `flags` run parallel to `ships`. Each ship
/// has a handle, the small number deltas name it by: the lowest handle free when it entered.
///
/// **Invariant:** `ships`, `names`, `handles` and `flags` have the same length, `index[ships[i].id] == i`, handles
/// are unique, and `free` holds exactly the handles below `next_handle` that no ship has.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "SectorSnapshot")]
pub struct SectorState {
    id: SectorId,
    name: String,
    region: RegionId,
    size: f32,
    ships: Vec<Ship>,
    /// Shared copies of the ships' names, so that views clone a pointer, not a string.
    names: Vec<Arc<str>>,
    handles: Vec<u32>,
    /// What changed about the ship since the last tick (`ADDED`, `MOVED`, `STEERED`).
    flags: Vec<u8>,
    index: HashMap<Uuid, usize>,
    free: BTreeSet<u32>,
    next_handle: u32,
    stations: Vec<StationState>,
    warps: Vec<WarpView>,
    /// Handles of ships that left since the last tick.
    removed: Vec<u32>,
}

/// The serialized form of [`SectorState`] (the index and shared names are rebuilt on load), over its stations'
/// form (format 1 had stations without credits, see [`v1`]).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SectorSnapshotOf<S> {
    id: SectorId,
    name: String,
    region: RegionId,
    size: f32,
    ships: Vec<Ship>,
    handles: Vec<u32>,
    flags: Vec<u8>,
    stations: Vec<S>,
    warps: Vec<WarpView>,
    removed: Vec<u32>,
}

type SectorSnapshot = SectorSnapshotOf<StationState>;

/// [`SectorSnapshot`] by reference, so that serializing does not clone the sector. Same fields, same order.
#[derive(Serialize)]
struct SectorSnapshotRef<'a> {
    id: &'a SectorId,
    name: &'a str,
    region: &'a RegionId,
    size: f32,
    ships: &'a [Ship],
    handles: &'a [u32],
    flags: &'a [u8],
    stations: &'a [StationState],
    warps: &'a [WarpView],
    removed: &'a [u32],
}

impl Serialize for SectorState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SectorSnapshotRef {
            id: &self.id,
            name: &self.name,
            region: &self.region,
            size: self.size,
            ships: &self.ships,
            handles: &self.handles,
            flags: &self.flags,
            stations: &self.stations,
            warps: &self.warps,
            removed: &self.removed,
        }
        .serialize(s)
    }
}

impl From<SectorSnapshot> for SectorState {
    /// Rebuilds the index and the free handles; a snapshot with a repeated ship id or handle keeps the later ship
    /// (with a fresh handle), and a bad size is replaced.
    fn from(snap: SectorSnapshot) -> SectorState {
        let mut state = SectorState::new(snap.id, snap.name, snap.region, snap.size, snap.stations, snap.warps);
        let n = snap.ships.len();
        state.ships.reserve_exact(n);
        state.names.reserve_exact(n);
        state.handles.reserve_exact(n);
        state.flags.reserve_exact(n);
        state.index.reserve(n);
        let top = snap.handles.iter().copied().max().map_or(0, |h| h.saturating_add(1));
        state.next_handle = top;
        state.free = (0..top).collect();
        for (i, ship) in snap.ships.into_iter().enumerate() {
            let flags = snap.flags.get(i).copied().unwrap_or(ADDED);
            let handle = snap.handles.get(i).copied().filter(|h| state.free.contains(h));
            state.insert(ship, handle, flags);
        }
        state.removed = snap.removed;
        state
    }
}

impl PartialEq for SectorState {
    /// Equal content (the index is derived).
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.region == other.region
            && self.size.to_bits() == other.size.to_bits()
            && self.ships == other.ships
            && self.handles == other.handles
            && self.flags == other.flags
            && self.stations == other.stations
            && self.warps == other.warps
            && self.removed == other.removed
    }
}

impl SectorState {
    /// An empty sector. A size that is not a finite number of at least 1 becomes the default size.
    pub fn new(
        id: SectorId,
        name: String,
        region: RegionId,
        size: f32,
        stations: Vec<StationState>,
        warps: Vec<WarpView>,
    ) -> SectorState {
        let size = if size.is_finite() && size >= 1.0 {
            size
        } else {
            DEFAULT_SECTOR_SIZE
        };
        SectorState {
            id,
            name,
            region,
            size,
            ships: Vec::new(),
            names: Vec::new(),
            handles: Vec::new(),
            flags: Vec::new(),
            index: HashMap::new(),
            free: BTreeSet::new(),
            next_handle: 0,
            stations,
            warps,
            removed: Vec::new(),
        }
    }

    pub fn id(&self) -> SectorId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn region(&self) -> RegionId {
        self.region
    }

    /// Edge length: positions run from 0 to `size` on each axis.
    pub fn size(&self) -> f32 {
        self.size
    }

    /// Ships present, in iteration (and delta) order.
    pub fn ships(&self) -> &[Ship] {
        &self.ships
    }

    pub fn ship(&self, id: Uuid) -> Option<&Ship> {
        self.index.get(&id).map(|&i| &self.ships[i])
    }

    pub fn stations(&self) -> &[StationState] {
        &self.stations
    }

    #[cfg(test)]
    pub(crate) fn stations_mut(&mut self) -> &mut [StationState] {
        &mut self.stations
    }

    pub fn warps(&self) -> &[WarpView] {
        &self.warps
    }

    /// Index of a present ship, or `not_in_sector`.
    pub(crate) fn slot(&self, id: Uuid) -> Result<usize, Error> {
        self.index.get(&id).copied().ok_or(Error::NotInSector { ship: id })
    }

    pub(crate) fn ship_mut(&mut self, slot: usize) -> &mut Ship {
        &mut self.ships[slot]
    }

    /// Records that a ship's velocity changed (it shows in the next delta's `steers`).
    pub(crate) fn mark_steered(&mut self, slot: usize) {
        self.flags[slot] |= STEERED;
    }

    /// The handle of a present ship.
    pub fn handle(&self, id: Uuid) -> Option<u32> {
        self.index.get(&id).map(|&i| self.handles[i])
    }

    pub(crate) fn ship_and_station_mut(&mut self, slot: usize, station: usize) -> (&mut Ship, &mut StationState) {
        (&mut self.ships[slot], &mut self.stations[station])
    }

    /// Puts a ship in (replacing one with the same id); it shows in the next delta. Positions outside the sector
    /// are clamped into it and non-finite numbers reset (position to the centre, velocity to 0).
    pub fn admit(&mut self, mut ship: Ship, max_speed: f32) {
        self.sanitize(&mut ship, max_speed);
        self.insert(ship, None, ADDED);
    }

    /// Inserts or replaces a ship, giving a new one `handle` if it is free, else the lowest free handle.
    fn insert(&mut self, ship: Ship, handle: Option<u32>, flags: u8) {
        let name: Arc<str> = Arc::from(ship.name.as_str());
        match self.index.get(&ship.id) {
            Some(&i) => {
                self.ships[i] = ship;
                self.names[i] = name;
                self.flags[i] |= flags | ADDED;
            }
            None => {
                let h = match handle {
                    Some(h) if self.free.remove(&h) => h,
                    _ => self.allocate_handle(),
                };
                self.index.insert(ship.id, self.ships.len());
                self.ships.push(ship);
                self.names.push(name);
                self.handles.push(h);
                self.flags.push(flags);
            }
        }
    }

    fn allocate_handle(&mut self) -> u32 {
        self.free.pop_first().unwrap_or_else(|| {
            let h = self.next_handle;
            self.next_handle = self.next_handle.saturating_add(1);
            h
        })
    }

    fn sanitize(&self, ship: &mut Ship, max_speed: f32) {
        let centre = self.size / 2.0;
        for p in [&mut ship.x, &mut ship.y] {
            *p = if p.is_finite() { p.clamp(0.0, self.size) } else { centre };
        }
        let max = super::speed_limit(max_speed);
        for v in [&mut ship.vx, &mut ship.vy] {
            *v = if v.is_finite() { v.clamp(-max, max) } else { 0.0 };
        }
    }

    /// Takes a ship out; its removal shows in the next delta. The last ship moves into its slot.
    pub fn depart(&mut self, id: Uuid) -> Option<Ship> {
        let i = self.index.remove(&id)?;
        let ship = self.ships.swap_remove(i);
        self.names.swap_remove(i);
        let h = self.handles.swap_remove(i);
        self.flags.swap_remove(i);
        if let Some(moved) = self.ships.get(i) {
            self.index.insert(moved.id, i);
        }
        self.free.insert(h);
        if !self.removed.contains(&h) {
            self.removed.push(h);
        }
        Some(ship)
    }

    /// Takes every ship out, leaving the state that [`SectorState::depart`] of each ship in slot order leaves:
    /// no ships, every handle free, and the handles appended to the pending removals in slot order (those not
    /// already in them).
    /// Their room is given back too: a sector restored from a snapshot holds no ship until one enters.
    pub fn depart_all(&mut self) {
        self.ships = Vec::new();
        self.names = Vec::new();
        self.flags = Vec::new();
        self.index = HashMap::new();
        let pending = self.removed.len();
        // Handles are unique (the type's invariant): only the removals pending before can repeat one.
        for h in std::mem::take(&mut self.handles) {
            self.free.insert(h);
            if !self.removed[..pending].contains(&h) {
                self.removed.push(h);
            }
        }
    }

    fn view(&self, i: usize) -> ShipView {
        let s = &self.ships[i];
        ShipView {
            h: self.handles[i],
            id: s.id,
            owner: s.owner,
            name: Arc::clone(&self.names[i]),
            x: s.x,
            y: s.y,
            vx: s.vx,
            vy: s.vy,
        }
    }

    /// Moves every moving ship by one step of `dt` seconds (clamped into the sector, velocity kept) and drains the
    /// pending changes into a delta, or `None` if nothing changed. A non-finite or negative `dt` moves nothing.
    pub fn tick(&mut self, dt: f32) -> Option<Delta> {
        let dt = if dt.is_finite() && dt > 0.0 { dt } else { 0.0 };
        let size = self.size;
        let mut upserts = Vec::new();
        let mut moves = Vec::new();
        let mut steers = Vec::new();
        for i in 0..self.ships.len() {
            let ship = &mut self.ships[i];
            if ship.vx != 0.0 || ship.vy != 0.0 {
                let x = (ship.x + ship.vx * dt).clamp(0.0, size);
                let y = (ship.y + ship.vy * dt).clamp(0.0, size);
                if x != ship.x || y != ship.y {
                    ship.x = x;
                    ship.y = y;
                    self.flags[i] |= MOVED;
                }
            }
            let flags = std::mem::take(&mut self.flags[i]);
            if flags == 0 {
                continue;
            }
            let (h, x, y, vx, vy) = (self.handles[i], ship.x, ship.y, ship.vx, ship.vy);
            if flags & ADDED != 0 {
                upserts.push(self.view(i));
                continue;
            }
            if flags & MOVED != 0 {
                moves.push(Move { h, x, y });
            }
            if flags & STEERED != 0 {
                steers.push(Steer { h, vx, vy });
            }
        }
        let mut stations = Vec::new();
        for st in self.stations.iter_mut().filter(|st| st.changed) {
            st.changed = false;
            stations.push(st.view());
        }
        if upserts.is_empty() && moves.is_empty() && steers.is_empty() && stations.is_empty() && self.removed.is_empty()
        {
            return None;
        }
        Some(Delta {
            upserts,
            removes: std::mem::take(&mut self.removed),
            moves: Moves { size, items: moves },
            steers: Steers { items: steers },
            stations,
        })
    }

    /// A full view of the sector (pending changes are left for the next tick).
    pub fn keyframe(&self) -> Keyframe {
        Keyframe {
            name: self.name.clone(),
            size: self.size,
            ships: (0..self.ships.len()).map(|i| self.view(i)).collect(),
            stations: self.stations.iter().map(StationState::view).collect(),
            warps: self.warps.clone(),
        }
    }

    /// Index of a station in this sector.
    pub(crate) fn station_slot(&self, id: Uuid) -> Option<usize> {
        self.stations.iter().position(|s| s.id == id)
    }
}
