//! A client's mirror of one sector, rebuilt from a keyframe and kept current by applying deltas.

use uuid::Uuid;

use super::model::{Delta, Keyframe, ShipView, StationView};

/// What a client knows of its current sector. Load testers, bots and Rust clients use it to decode the stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientView {
    pub name: String,
    pub size: f32,
    ships: Vec<ShipView>,
    pub stations: Vec<StationView>,
}

impl ClientView {
    /// The sector as a keyframe shows it.
    pub fn from_keyframe(k: &Keyframe) -> ClientView {
        ClientView {
            name: k.name.clone(),
            size: k.size,
            ships: k.ships.clone(),
            stations: k.stations.clone(),
        }
    }

    /// Applies one delta (removes, then upserts, then station books).
    pub fn apply(&mut self, d: &Delta) {
        self.ships.retain(|s| !d.removes.contains(&s.id));
        for up in &d.upserts {
            match self.ships.iter_mut().find(|s| s.id == up.id) {
                Some(s) => *s = up.clone(),
                None => self.ships.push(up.clone()),
            }
        }
        for st in &d.stations {
            match self.stations.iter_mut().find(|s| s.id == st.id) {
                Some(s) => *s = st.clone(),
                None => self.stations.push(st.clone()),
            }
        }
    }

    /// The ship flown by a character.
    pub fn ship_of(&self, owner: Uuid) -> Option<&ShipView> {
        self.ships.iter().find(|s| s.owner == owner)
    }

    /// Every ship present.
    pub fn ships(&self) -> impl Iterator<Item = &ShipView> {
        self.ships.iter()
    }
}
