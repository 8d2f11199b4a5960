//! World content (regions, sectors, warps, stations): the model here, then `files`, `validate`, `generate`.

mod error;
mod files;
mod generate;
mod names;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::game::{RegionLayout, SectorLayout};

pub use error::{ContentError, ContentErrorKind};
pub use files::{ContentFormat, GALAXY_STEM, REGIONS_DIR};
pub use generate::{generate, GenerateParams, GATE_TURNS, MAX_GENERATED_REGIONS, MAX_SECTORS_PER_REGION};

/// Bounds that content must respect (checked by [`Galaxy::validate`]).
pub mod limits {
    /// Longest name (galaxy, region, sector, station), in bytes.
    pub const MAX_NAME_BYTES: usize = 64;
    /// Smallest and largest sector edge, in world units.
    pub const MIN_SECTOR_SIZE: f32 = 10.0;
    pub const MAX_SECTOR_SIZE: f32 = 1_000_000.0;
    /// Largest station capacity for one commodity, in units.
    pub const MAX_CAPACITY: u32 = 1_000_000;
    /// Lowest and highest price of one unit, in credits.
    pub const MIN_PRICE: u32 = 1;
    pub const MAX_PRICE: u32 = 1_000_000;
    /// Highest turn cost of one warp.
    pub const MAX_WARP_TURNS: u32 = 1_000;
}

/// The default edge of a square sector, in world units.
pub const DEFAULT_SECTOR_SIZE: f32 = 1000.0;

fn default_sector_size() -> f32 {
    DEFAULT_SECTOR_SIZE
}

/// The whole world: regions of sectors linked by warps, with stations to trade at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Galaxy {
    pub name: String,
    /// The seed it was generated from, if it was generated (informational).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Edge of every (square) sector, in world units: positions run from 0 to `sector_size` on each axis.
    #[serde(default = "default_sector_size")]
    pub sector_size: f32,
    pub regions: Vec<Region>,
}

/// A group of sectors under one supervisor; exactly one region is the nexus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub id: Uuid,
    pub name: String,
    #[serde(default)]
    pub nexus: bool,
    #[serde(default)]
    pub sectors: Vec<Sector>,
}

/// The unit of simulation. New characters start in a spawn sector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sector {
    pub id: Uuid,
    pub name: String,
    #[serde(default)]
    pub spawn: bool,
    #[serde(default)]
    pub warps: Vec<Warp>,
    #[serde(default)]
    pub stations: Vec<Station>,
}

/// A directed link to another sector (a two-way link is two warps), costing `turns` to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warp {
    pub to: Uuid,
    pub turns: u32,
}

/// A place to trade commodities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Station {
    pub id: Uuid,
    pub name: String,
    #[serde(default)]
    pub commodities: Vec<Listing>,
}

/// One commodity in a station's book.
///
/// `buy_price` is what the station pays a player who sells to it, `sell_price` what a player pays the station to
/// buy; `sell_price >= buy_price`. In content these are base prices; in play the prices move with stock (see
/// `docs/content.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    pub commodity: Commodity,
    pub quantity: u32,
    pub capacity: u32,
    pub buy_price: u32,
    pub sell_price: u32,
}

/// What stations trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Commodity {
    Ore,
    Organics,
    Equipment,
    Fuel,
    LuxuryGoods,
}

impl Commodity {
    /// Every commodity, in a fixed order.
    pub const ALL: [Commodity; 5] = [
        Commodity::Ore,
        Commodity::Organics,
        Commodity::Equipment,
        Commodity::Fuel,
        Commodity::LuxuryGoods,
    ];

    /// The `snake_case` name used in content and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Commodity::Ore => "ore",
            Commodity::Organics => "organics",
            Commodity::Equipment => "equipment",
            Commodity::Fuel => "fuel",
            Commodity::LuxuryGoods => "luxury_goods",
        }
    }
}

impl fmt::Display for Commodity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Galaxy {
    /// The nexus region (the first one marked `nexus`), if any.
    pub fn nexus(&self) -> Option<&Region> {
        self.regions.iter().find(|r| r.nexus)
    }

    /// A sector and the region holding it (linear scan; build an index for hot paths).
    pub fn sector(&self, id: Uuid) -> Option<(&Region, &Sector)> {
        self.regions
            .iter()
            .find_map(|r| r.sectors.iter().find(|s| s.id == id).map(|s| (r, s)))
    }

    /// A region by id.
    pub fn region(&self, id: Uuid) -> Option<&Region> {
        self.regions.iter().find(|r| r.id == id)
    }

    /// Every sector with its region, in content order.
    pub fn sectors(&self) -> impl Iterator<Item = (&Region, &Sector)> {
        self.regions.iter().flat_map(|r| r.sectors.iter().map(move |s| (r, s)))
    }

    /// The first spawn sector in content order, if any.
    pub fn spawn_sector(&self) -> Option<&Sector> {
        self.sectors().map(|(_, s)| s).find(|s| s.spawn)
    }

    /// The regions and sectors as the actor tree sees them.
    pub fn layout(&self) -> Vec<RegionLayout> {
        self.regions
            .iter()
            .map(|r| RegionLayout {
                id: r.id,
                name: r.name.clone(),
                nexus: r.nexus,
                sectors: r
                    .sectors
                    .iter()
                    .map(|s| SectorLayout {
                        id: s.id,
                        name: s.name.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Total number of sectors.
    pub fn sector_count(&self) -> usize {
        self.regions.iter().map(|r| r.sectors.len()).sum()
    }
}
