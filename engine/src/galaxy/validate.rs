//! The rules content must follow: unique ids, one nexus, sound warps, reachability, spawn, bounds, names.

use std::collections::{HashMap, HashSet, VecDeque};

use uuid::Uuid;

use super::error::{ContentError, ContentErrorKind as Kind};
use super::files::{ContentFormat, FileNames};
use super::limits::*;
use super::{Galaxy, Listing, Region, Sector, Station};

pub(crate) fn galaxy_entity(g: &Galaxy) -> String {
    format!("galaxy {:?}", g.name)
}

pub(crate) fn region_entity(r: &Region) -> String {
    format!("region {:?} ({})", r.name, r.id)
}

pub(crate) fn sector_entity(s: &Sector) -> String {
    format!("sector {:?} ({})", s.name, s.id)
}

pub(crate) fn station_entity(s: &Station) -> String {
    format!("station {:?} ({})", s.name, s.id)
}

impl Galaxy {
    /// Checks every rule of `docs/content.md`; the first problem found is returned. File names in errors are
    /// those [`Galaxy::to_files`] would write in TOML (use [`Galaxy::from_files`] to get the real ones).
    pub fn validate(&self) -> Result<(), ContentError> {
        match self.validate_all().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every problem found, in a stable order (galaxy, then region by region), empty if the content is valid.
    pub fn validate_all(&self) -> Vec<ContentError> {
        check(self, &FileNames::default_for(self, ContentFormat::Toml))
    }
}

/// Every problem of `g`, naming files after `names`.
pub(crate) fn check(g: &Galaxy, names: &FileNames) -> Vec<ContentError> {
    let mut v = Checker {
        g,
        names,
        errors: Vec::new(),
    };
    v.galaxy();
    v.ids();
    for (i, r) in g.regions.iter().enumerate() {
        v.region(i, r);
    }
    v.spawn();
    v.reachability();
    v.errors
}

struct Checker<'a> {
    g: &'a Galaxy,
    names: &'a FileNames,
    errors: Vec<ContentError>,
}

impl Checker<'_> {
    fn push(&mut self, kind: Kind, file: &str, entity: String, message: String) {
        self.errors.push(ContentError::new(kind, file, entity, message));
    }

    fn region_file(&self, i: usize) -> String {
        self.names.region(i)
    }

    fn name(&mut self, file: &str, entity: &str, name: &str) {
        if name.trim().is_empty() {
            self.push(Kind::BadName, file, entity.to_owned(), "name is empty".into());
        } else if name.len() > MAX_NAME_BYTES {
            let msg = format!("name is {} bytes long (at most {MAX_NAME_BYTES})", name.len());
            self.push(Kind::BadName, file, entity.to_owned(), msg);
        }
    }

    fn galaxy(&mut self) {
        let g = self.g;
        let file = self.names.galaxy.clone();
        let entity = galaxy_entity(g);
        self.name(&file, &entity, &g.name);
        let size = g.sector_size;
        if !(size.is_finite() && (MIN_SECTOR_SIZE..=MAX_SECTOR_SIZE).contains(&size)) {
            let msg = format!(
                "sector_size {size} is out of bounds (a finite number from {MIN_SECTOR_SIZE} to {MAX_SECTOR_SIZE})"
            );
            self.push(Kind::OutOfBounds, &file, entity.clone(), msg);
        }
        let nexus: Vec<usize> = (0..g.regions.len()).filter(|&i| g.regions[i].nexus).collect();
        match nexus.as_slice() {
            [] => self.push(
                Kind::Nexus,
                &file,
                entity,
                "no region is marked `nexus = true` (exactly one must be)".into(),
            ),
            [first, rest @ ..] => {
                let first_region = &g.regions[*first];
                if first_region.sectors.is_empty() {
                    let msg = "the nexus region has no sectors".to_owned();
                    self.push(Kind::Nexus, &self.region_file(*first), region_entity(first_region), msg);
                }
                for &i in rest {
                    let msg = format!(
                        "a second nexus region (exactly one must be; the nexus is {} in {})",
                        region_entity(first_region),
                        self.region_file(*first)
                    );
                    self.push(Kind::Nexus, &self.region_file(i), region_entity(&g.regions[i]), msg);
                }
            }
        }
    }

    fn ids(&mut self) {
        let mut seen: HashMap<Uuid, (usize, String)> = HashMap::new();
        for (i, r) in self.g.regions.iter().enumerate() {
            let mut entities = vec![(r.id, region_entity(r))];
            for s in &r.sectors {
                entities.push((s.id, sector_entity(s)));
                entities.extend(s.stations.iter().map(|st| (st.id, station_entity(st))));
            }
            for (id, entity) in entities {
                if let Some((j, other)) = seen.get(&id) {
                    let msg = format!("id {id} is also used by {other} in {}", self.region_file(*j));
                    self.push(Kind::DuplicateId, &self.region_file(i), entity, msg);
                } else {
                    seen.insert(id, (i, entity));
                }
            }
        }
    }

    fn region(&mut self, i: usize, r: &Region) {
        let file = self.region_file(i);
        self.name(&file, &region_entity(r), &r.name);
        let sector_ids: HashSet<Uuid> = self.g.sectors().map(|(_, s)| s.id).collect();
        for s in &r.sectors {
            let entity = sector_entity(s);
            self.name(&file, &entity, &s.name);
            let mut targets = HashSet::new();
            for w in &s.warps {
                if w.to == s.id {
                    let msg = format!("warp to {} points at its own sector", w.to);
                    self.push(Kind::BadWarp, &file, entity.clone(), msg);
                } else if !sector_ids.contains(&w.to) {
                    let msg = format!("warp to {} points at no sector", w.to);
                    self.push(Kind::BadWarp, &file, entity.clone(), msg);
                } else if !targets.insert(w.to) {
                    let msg = format!("two warps to {} (keep one)", w.to);
                    self.push(Kind::BadWarp, &file, entity.clone(), msg);
                }
                if w.turns > MAX_WARP_TURNS {
                    let msg = format!("warp to {} costs {} turns (at most {MAX_WARP_TURNS})", w.to, w.turns);
                    self.push(Kind::OutOfBounds, &file, entity.clone(), msg);
                }
            }
            for st in &s.stations {
                self.station(&file, st);
            }
        }
    }

    fn station(&mut self, file: &str, st: &Station) {
        let entity = station_entity(st);
        self.name(file, &entity, &st.name);
        let mut seen = HashSet::new();
        for l in &st.commodities {
            let le = format!("{entity} listing {}", l.commodity);
            if !seen.insert(l.commodity) {
                let msg = format!("{} is listed twice", l.commodity);
                self.push(Kind::DuplicateCommodity, file, entity.clone(), msg);
            }
            for msg in listing_problems(l) {
                self.push(Kind::OutOfBounds, file, le.clone(), msg);
            }
        }
    }

    fn spawn(&mut self) {
        if self.g.spawn_sector().is_none() {
            let msg = "no sector has `spawn = true` (new characters need at least one)".to_owned();
            self.push(Kind::NoSpawn, &self.names.galaxy.clone(), galaxy_entity(self.g), msg);
        }
    }

    /// Every sector reachable from the nexus region; every other region has a path to and from it.
    fn reachability(&mut self) {
        let Some(nexus) = self.g.regions.iter().position(|r| r.nexus) else {
            return; // reported by `galaxy`
        };
        // Global sector indexes (first occurrence of an id wins; duplicates are reported by `ids`).
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        let mut owner = Vec::new();
        for (ri, r) in self.g.regions.iter().enumerate() {
            for s in &r.sectors {
                index.entry(s.id).or_insert(owner.len());
                owner.push(ri);
            }
        }
        let n = owner.len();
        let mut forward = vec![Vec::new(); n];
        let mut backward = vec![Vec::new(); n];
        for (from, (_, s)) in self.g.sectors().enumerate() {
            for w in &s.warps {
                if let Some(&to) = index.get(&w.to) {
                    forward[from].push(to);
                    backward[to].push(from);
                }
            }
        }
        let starts: Vec<usize> = (0..n).filter(|&i| owner[i] == nexus).collect();
        let from_nexus = bfs(&forward, &starts);
        let to_nexus = bfs(&backward, &starts);
        let nexus_name = region_entity(&self.g.regions[nexus]);
        let mut global = 0;
        for (ri, r) in self.g.regions.iter().enumerate() {
            let range = global..global + r.sectors.len();
            global = range.end;
            if ri == nexus {
                continue;
            }
            let file = self.region_file(ri);
            if !range.clone().any(|i| from_nexus[i]) {
                let msg = format!("no warp path leads from the nexus ({nexus_name}) into this region");
                self.push(Kind::Unreachable, &file, region_entity(r), msg);
            } else {
                for (s, i) in r.sectors.iter().zip(range.clone()) {
                    if !from_nexus[i] {
                        let msg = format!("cannot be reached from the nexus ({nexus_name}) by following warps");
                        self.push(Kind::Unreachable, &file, sector_entity(s), msg);
                    }
                }
            }
            if !range.clone().any(|i| to_nexus[i]) {
                let msg = format!("no warp path leads from this region back to the nexus ({nexus_name})");
                self.push(Kind::Unreachable, &file, region_entity(r), msg);
            }
        }
    }
}

/// Breadth-first reachability from `starts` over adjacency lists.
fn bfs(adj: &[Vec<usize>], starts: &[usize]) -> Vec<bool> {
    let mut seen = vec![false; adj.len()];
    let mut queue: VecDeque<usize> = starts.iter().copied().collect();
    for &s in starts {
        seen[s] = true;
    }
    while let Some(i) = queue.pop_front() {
        for &j in &adj[i] {
            if !seen[j] {
                seen[j] = true;
                queue.push_back(j);
            }
        }
    }
    seen
}

/// The bounds problems of one listing, as messages.
pub(crate) fn listing_problems(l: &Listing) -> Vec<String> {
    let mut out = Vec::new();
    if l.capacity == 0 || l.capacity > MAX_CAPACITY {
        out.push(format!(
            "capacity {} is out of bounds (1 to {MAX_CAPACITY})",
            l.capacity
        ));
    }
    if l.quantity > l.capacity {
        out.push(format!("quantity {} exceeds capacity {}", l.quantity, l.capacity));
    }
    for (field, price) in [("buy_price", l.buy_price), ("sell_price", l.sell_price)] {
        if !(MIN_PRICE..=MAX_PRICE).contains(&price) {
            out.push(format!("{field} {price} is out of bounds ({MIN_PRICE} to {MAX_PRICE})"));
        }
    }
    if l.sell_price < l.buy_price {
        out.push(format!(
            "sell_price {} is below buy_price {} (a station never sells for less than it buys)",
            l.sell_price, l.buy_price
        ));
    }
    out
}
