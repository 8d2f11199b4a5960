//! Deterministic galaxies: the same seed and parameters always give a byte-identical galaxy (ChaCha8).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use uuid::{Builder, Uuid};

use super::names::Namer;
use super::{Commodity, Galaxy, Listing, Region, Sector, Station, Warp, DEFAULT_SECTOR_SIZE};

/// At most this many non-nexus regions are generated (larger requests are clamped).
pub const MAX_GENERATED_REGIONS: u32 = 1_000;
/// At most this many sectors per region are generated (larger requests are clamped; at least 1).
pub const MAX_SECTORS_PER_REGION: u32 = 10_000;
/// Turn cost of a gate warp between a region and the nexus (each way).
pub const GATE_TURNS: u32 = 5;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateParams {
    pub seed: u64,
    /// Regions besides the nexus (clamped to [`MAX_GENERATED_REGIONS`]).
    pub regions: u32,
    /// Sectors in each non-nexus region (clamped to 1..=[`MAX_SECTORS_PER_REGION`]).
    pub sectors_per_region: u32,
}

impl GenerateParams {
    /// The server's default world: seed 2102, 3 regions of 50 sectors (plus a nexus of 5).
    pub fn demo() -> GenerateParams {
        GenerateParams {
            seed: 2102,
            regions: 3,
            sectors_per_region: 50,
        }
    }
}

/// Generates a valid galaxy.
///
/// Shape: a nexus region ("Nexus") of `max(3, S/10)` sectors in a two-way ring (1 turn per hop), whose first sector
/// is the spawn sector and always has a station; then R regions of S sectors each, linked in a two-way ring
/// (1–3 turns per hop) plus about S/4 random chords (a third of them one-way). Each region's first sector is its
/// gate, linked both ways to a nexus sector at [`GATE_TURNS`] turns. About a third of the other sectors get a
/// station with 3–5 listings. Ids come from the same rng, so they too are reproducible.
pub fn generate(params: GenerateParams) -> Galaxy {
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut namer = Namer::default();
    let region_count = params.regions.min(MAX_GENERATED_REGIONS);
    let per_region = params.sectors_per_region.clamp(1, MAX_SECTORS_PER_REGION);
    let nexus_count = (per_region / 10).max(3);

    let name = namer.galaxy(&mut rng);
    let mut nexus = Region {
        id: uuid(&mut rng),
        name: "Nexus".to_owned(),
        nexus: true,
        sectors: Vec::new(),
    };
    for i in 0..nexus_count as usize {
        let mut s = sector(&mut rng, namer.nexus(i));
        s.spawn = i == 0;
        nexus.sectors.push(s);
    }
    ring(&mut rng, &mut nexus.sectors, 1..=1);

    let mut regions = Vec::new();
    for r in 0..region_count {
        let region_name = namer.region(&mut rng);
        let mut region = Region {
            id: uuid(&mut rng),
            name: region_name,
            nexus: false,
            sectors: Vec::new(),
        };
        for i in 0..per_region {
            let sector_name = if i == 0 {
                namer.gate(&region.name)
            } else {
                namer.sector(&mut rng)
            };
            region.sectors.push(sector(&mut rng, sector_name));
        }
        ring(&mut rng, &mut region.sectors, 1..=3);
        chords(&mut rng, &mut region.sectors);
        // The gate: the region's first sector <-> a nexus sector, spread round the nexus ring.
        let hub = (r % nexus_count) as usize;
        let (gate_id, hub_id) = (region.sectors[0].id, nexus.sectors[hub].id);
        region.sectors[0].warps.push(Warp {
            to: hub_id,
            turns: GATE_TURNS,
        });
        nexus.sectors[hub].warps.push(Warp {
            to: gate_id,
            turns: GATE_TURNS,
        });
        regions.push(region);
    }

    regions.insert(0, nexus);
    for (ri, region) in regions.iter_mut().enumerate() {
        for (si, s) in region.sectors.iter_mut().enumerate() {
            let spawn_hub = ri == 0 && si == 0;
            if spawn_hub || rng.random_ratio(1, 3) {
                let name = namer.station(&mut rng, &s.name);
                s.stations.push(station(&mut rng, name));
            }
        }
    }

    Galaxy {
        name,
        seed: Some(params.seed),
        sector_size: DEFAULT_SECTOR_SIZE,
        regions,
    }
}

fn uuid(rng: &mut ChaCha8Rng) -> Uuid {
    Builder::from_random_bytes(rng.random()).into_uuid()
}

fn sector(rng: &mut ChaCha8Rng, name: String) -> Sector {
    Sector {
        id: uuid(rng),
        name,
        spawn: false,
        warps: Vec::new(),
        stations: Vec::new(),
    }
}

fn index(rng: &mut ChaCha8Rng, len: usize) -> usize {
    // Sector counts are clamped far below u32::MAX; u32 sampling keeps the stream portable.
    rng.random_range(0..u32::try_from(len).unwrap_or(u32::MAX)) as usize
}

fn has_warp(sectors: &[Sector], from: usize, to: usize) -> bool {
    let to = sectors[to].id;
    sectors[from].warps.iter().any(|w| w.to == to)
}

/// Adds the warp `from -> to` unless it exists or is a loop.
fn link(sectors: &mut [Sector], from: usize, to: usize, turns: u32) {
    if from != to && !has_warp(sectors, from, to) {
        let to = sectors[to].id;
        sectors[from].warps.push(Warp { to, turns });
    }
}

/// Two-way links between neighbours round a ring (a single pair for two sectors), same cost both ways.
fn ring(rng: &mut ChaCha8Rng, sectors: &mut [Sector], turns: std::ops::RangeInclusive<u32>) {
    let n = sectors.len();
    let hops = match n {
        0 | 1 => 0,
        2 => 1,
        _ => n,
    };
    for i in 0..hops {
        let j = (i + 1) % n;
        let cost = rng.random_range(turns.clone());
        link(sectors, i, j, cost);
        link(sectors, j, i, cost);
    }
}

/// About n/4 random shortcuts inside a region; a third of them one-way.
fn chords(rng: &mut ChaCha8Rng, sectors: &mut [Sector]) {
    let n = sectors.len();
    if n < 4 {
        return;
    }
    for _ in 0..n / 4 {
        let a = index(rng, n);
        let b = index(rng, n);
        if a == b || has_warp(sectors, a, b) {
            continue;
        }
        let cost = rng.random_range(1..=3);
        link(sectors, a, b, cost);
        if !rng.random_ratio(1, 3) {
            link(sectors, b, a, cost);
        }
    }
}

/// Typical base price of one unit, in credits.
fn base_price(c: Commodity) -> u32 {
    match c {
        Commodity::Ore => 20,
        Commodity::Organics => 30,
        Commodity::Equipment => 80,
        Commodity::Fuel => 15,
        Commodity::LuxuryGoods => 200,
    }
}

fn station(rng: &mut ChaCha8Rng, name: String) -> Station {
    let mut all = Commodity::ALL;
    // Fisher-Yates with u32 draws (portable), then keep 3-5 in the canonical order.
    for i in (1..all.len()).rev() {
        let j = index(rng, i + 1);
        all.swap(i, j);
    }
    let count = rng.random_range(3..=5u32) as usize;
    let mut chosen: Vec<Commodity> = all[..count].to_vec();
    chosen.sort();
    let commodities = chosen
        .into_iter()
        .map(|commodity| {
            let base = base_price(commodity) * rng.random_range(80..=120) / 100;
            let capacity = rng.random_range(10..=50) * 100;
            let quantity = rng.random_range(0..=capacity);
            let buy_price = (base * 9 / 10).max(1);
            let sell_price = (base * 11).div_ceil(10).max(buy_price);
            Listing {
                commodity,
                quantity,
                capacity,
                buy_price,
                sell_price,
            }
        })
        .collect();
    Station {
        id: uuid(rng),
        name,
        commodities,
    }
}
