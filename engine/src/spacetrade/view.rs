//! A client's mirror of one sector, rebuilt from a keyframe and kept current by applying deltas.

use uuid::Uuid;

use super::model::{Delta, Keyframe, ShipView, StationView};

/// What a client knows of its current sector: ships by handle, and station books. Load testers, bots and Rust
/// clients use it to follow the stream; clients in other languages do the same (see docs/protocol.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientView {
    pub name: String,
    pub size: f32,
    ships: Vec<Option<ShipView>>,
    pub stations: Vec<StationView>,
}

impl ClientView {
    /// The sector as a keyframe shows it.
    pub fn from_keyframe(k: &Keyframe) -> ClientView {
        let mut view = ClientView {
            name: k.name.clone(),
            size: k.size,
            ships: Vec::new(),
            stations: k.stations.clone(),
        };
        for ship in &k.ships {
            view.put(ship.clone());
        }
        view
    }

    fn put(&mut self, ship: ShipView) {
        let h = ship.h as usize;
        if h >= self.ships.len() {
            self.ships.resize(h + 1, None);
        }
        self.ships[h] = Some(ship);
    }

    fn slot(&mut self, h: u32) -> Option<&mut ShipView> {
        self.ships.get_mut(h as usize).and_then(Option::as_mut)
    }

    /// Applies one delta: removes, upserts, moves, steers, station books. Unknown handles are ignored.
    pub fn apply(&mut self, d: &Delta) {
        for &h in &d.removes {
            if let Some(s) = self.ships.get_mut(h as usize) {
                *s = None;
            }
        }
        for ship in &d.upserts {
            self.put(ship.clone());
        }
        for m in &d.moves.items {
            if let Some(s) = self.slot(m.h) {
                s.x = m.x;
                s.y = m.y;
            }
        }
        for v in &d.steers.items {
            if let Some(s) = self.slot(v.h) {
                s.vx = v.vx;
                s.vy = v.vy;
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
        self.ships().find(|s| s.owner == owner)
    }

    /// The ship with this handle.
    pub fn ship(&self, h: u32) -> Option<&ShipView> {
        self.ships.get(h as usize).and_then(Option::as_ref)
    }

    /// Every ship present.
    pub fn ships(&self) -> impl Iterator<Item = &ShipView> {
        self.ships.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::super::tests::{game, ship_at, thrust, A, T0};
    use super::super::Ship;
    use super::*;
    use crate::game::Game;

    /// (id, x, y, vx, vy) of every ship, sorted, as a comparable picture.
    fn picture<'a>(ships: impl Iterator<Item = &'a ShipView>) -> Vec<(Uuid, u32, u32, f32, f32)> {
        // Positions compared on the binary quantization grid.
        let q = |v: f32| (v / 1000.0 * 65535.0).round() as u32;
        let mut v: Vec<_> = ships.map(|s| (s.id, q(s.x), q(s.y), s.vx, s.vy)).collect();
        v.sort_by_key(|t| t.0);
        v
    }

    #[test]
    fn a_client_following_deltas_sees_what_the_server_has_through_joins_leaves_and_thrusts() {
        let game = game();
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut s = game.new_sector(A);
        let mut present = Vec::new();
        for n in 0..20u128 {
            let ship = ship_at(&game, n, rng.random_range(0.0..1000.0), rng.random_range(0.0..1000.0));
            present.push(ship.id);
            game.admit(&mut s, ship, T0);
        }
        let mut json_view = ClientView::from_keyframe(&game.keyframe(&s));
        let mut bin_view = json_view.clone();
        let mut parked: Vec<Ship> = Vec::new();
        for step in 0..300 {
            for _ in 0..rng.random_range(0..6) {
                match rng.random_range(0..10) {
                    0 if !present.is_empty() => {
                        let id = present.swap_remove(rng.random_range(0..present.len()));
                        parked.push(game.depart(&mut s, id).unwrap());
                    }
                    1 if !parked.is_empty() => {
                        let ship = parked.swap_remove(rng.random_range(0..parked.len()));
                        present.push(ship.id);
                        game.admit(&mut s, ship, T0);
                    }
                    _ if !present.is_empty() => {
                        let id = present[rng.random_range(0..present.len())];
                        let v = thrust(rng.random_range(-100.0..100.0), rng.random_range(-100.0..100.0));
                        game.handle(&mut s, id, v, T0).unwrap();
                    }
                    _ => {}
                }
            }
            if let Some(d) = game.tick(&mut s, 0.05) {
                let d_json: Delta = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
                let d_bin: Delta = postcard::from_bytes(&postcard::to_allocvec(&d).unwrap()).unwrap();
                json_view.apply(&d_json);
                bin_view.apply(&d_bin);
            }
            let truth = game.keyframe(&s);
            assert_eq!(
                picture(json_view.ships()),
                picture(truth.ships.iter()),
                "json, step {step}"
            );
            assert_eq!(
                picture(bin_view.ships()),
                picture(truth.ships.iter()),
                "binary, step {step}"
            );
        }
    }
}
