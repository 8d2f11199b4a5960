//! A sector's state: ships (a Vec plus an id index), station books, warps, and the changes pending for the next delta.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

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
    pub listings: Vec<ListingState>,
    /// The book changed since the last tick (goes into the next delta).
    pub changed: bool,
}

impl StationState {
    /// A station as loaded from content, its prices set from its stock.
    pub fn from_content(station: &Station) -> StationState {
        StationState {
            id: station.id,
            name: station.name.clone(),
            listings: station.commodities.iter().map(ListingState::from_content).collect(),
            changed: false,
        }
    }

    pub fn view(&self) -> StationView {
        StationView {
            id: self.id,
            name: self.name.clone(),
            commodities: self.listings.iter().map(ListingState::listing).collect(),
        }
    }
}

/// Everything a sector owns. Ships live in a `Vec` (deterministic order: admission order, with a departed ship's
/// slot taken by the last ship) with an id index; `changed` runs parallel to `ships`.
///
/// **Invariant:** `ships`, `names` and `changed` have the same length and `index[ships[i].id] == i`.
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
    /// The ship was admitted, moved or changed velocity since the last tick.
    changed: Vec<bool>,
    index: HashMap<Uuid, usize>,
    stations: Vec<StationState>,
    warps: Vec<WarpView>,
    /// Ships that left since the last tick.
    removed: Vec<Uuid>,
}

/// The serialized form of [`SectorState`] (the index and shared names are rebuilt on load).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectorSnapshot {
    id: SectorId,
    name: String,
    region: RegionId,
    size: f32,
    ships: Vec<Ship>,
    changed: Vec<bool>,
    stations: Vec<StationState>,
    warps: Vec<WarpView>,
    removed: Vec<Uuid>,
}

/// [`SectorSnapshot`] by reference, so that serializing does not clone the sector. Same fields, same order.
#[derive(Serialize)]
struct SectorSnapshotRef<'a> {
    id: &'a SectorId,
    name: &'a str,
    region: &'a RegionId,
    size: f32,
    ships: &'a [Ship],
    changed: &'a [bool],
    stations: &'a [StationState],
    warps: &'a [WarpView],
    removed: &'a [Uuid],
}

impl Serialize for SectorState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SectorSnapshotRef {
            id: &self.id,
            name: &self.name,
            region: &self.region,
            size: self.size,
            ships: &self.ships,
            changed: &self.changed,
            stations: &self.stations,
            warps: &self.warps,
            removed: &self.removed,
        }
        .serialize(s)
    }
}

impl From<SectorSnapshot> for SectorState {
    /// Rebuilds the index; a snapshot with a repeated ship id keeps the later ship, and a bad size is replaced.
    fn from(snap: SectorSnapshot) -> SectorState {
        let mut state = SectorState::new(snap.id, snap.name, snap.region, snap.size, snap.stations, snap.warps);
        for (i, ship) in snap.ships.into_iter().enumerate() {
            let changed = snap.changed.get(i).copied().unwrap_or(true);
            state.insert(ship, changed);
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
            && self.changed == other.changed
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
            changed: Vec::new(),
            index: HashMap::new(),
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

    pub(crate) fn mark_changed(&mut self, slot: usize) {
        self.changed[slot] = true;
    }

    pub(crate) fn ship_and_station_mut(&mut self, slot: usize, station: usize) -> (&mut Ship, &mut StationState) {
        (&mut self.ships[slot], &mut self.stations[station])
    }

    /// Puts a ship in (replacing one with the same id); it shows in the next delta. Positions outside the sector
    /// are clamped into it and non-finite numbers reset (position to the centre, velocity to 0).
    pub fn admit(&mut self, mut ship: Ship, max_speed: f32) {
        self.sanitize(&mut ship, max_speed);
        self.removed.retain(|id| *id != ship.id);
        self.insert(ship, true);
    }

    fn insert(&mut self, ship: Ship, changed: bool) {
        let name: Arc<str> = Arc::from(ship.name.as_str());
        match self.index.get(&ship.id) {
            Some(&i) => {
                self.ships[i] = ship;
                self.names[i] = name;
                self.changed[i] |= changed;
            }
            None => {
                self.index.insert(ship.id, self.ships.len());
                self.ships.push(ship);
                self.names.push(name);
                self.changed.push(changed);
            }
        }
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
        self.changed.swap_remove(i);
        if let Some(moved) = self.ships.get(i) {
            self.index.insert(moved.id, i);
        }
        self.removed.push(id);
        Some(ship)
    }

    /// Moves every moving ship by one step of `dt` seconds (clamped into the sector, velocity kept) and drains the
    /// pending changes into a delta, or `None` if nothing changed. A non-finite or negative `dt` moves nothing.
    pub fn tick(&mut self, dt: f32) -> Option<Delta> {
        let dt = if dt.is_finite() && dt > 0.0 { dt } else { 0.0 };
        let size = self.size;
        let mut upserts = Vec::new();
        for ((ship, changed), name) in self.ships.iter_mut().zip(self.changed.iter_mut()).zip(&self.names) {
            if ship.vx != 0.0 || ship.vy != 0.0 {
                let x = (ship.x + ship.vx * dt).clamp(0.0, size);
                let y = (ship.y + ship.vy * dt).clamp(0.0, size);
                if x != ship.x || y != ship.y {
                    ship.x = x;
                    ship.y = y;
                    *changed = true;
                }
            }
            if *changed {
                *changed = false;
                upserts.push(ShipView {
                    id: ship.id,
                    owner: ship.owner,
                    name: Arc::clone(name),
                    x: ship.x,
                    y: ship.y,
                    vx: ship.vx,
                    vy: ship.vy,
                });
            }
        }
        let mut stations = Vec::new();
        for st in self.stations.iter_mut().filter(|st| st.changed) {
            st.changed = false;
            stations.push(st.view());
        }
        if upserts.is_empty() && stations.is_empty() && self.removed.is_empty() {
            return None;
        }
        Some(Delta {
            upserts,
            removes: std::mem::take(&mut self.removed),
            stations,
        })
    }

    /// A full view of the sector (pending changes are left for the next tick).
    pub fn keyframe(&self) -> Keyframe {
        Keyframe {
            name: self.name.clone(),
            size: self.size,
            ships: self
                .ships
                .iter()
                .zip(&self.names)
                .map(|(s, name)| ShipView {
                    id: s.id,
                    owner: s.owner,
                    name: Arc::clone(name),
                    x: s.x,
                    y: s.y,
                    vx: s.vx,
                    vy: s.vy,
                })
                .collect(),
            stations: self.stations.iter().map(StationState::view).collect(),
            warps: self.warps.clone(),
        }
    }

    /// Index of a station in this sector.
    pub(crate) fn station_slot(&self, id: Uuid) -> Option<usize> {
        self.stations.iter().position(|s| s.id == id)
    }
}
