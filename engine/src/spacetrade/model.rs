//! The space-trade game's wire and snapshot types: ship, commands, events, views, profile, errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::compact::{Moves, Steers};
use crate::galaxy::{Commodity, Listing};
use crate::game::GameError;
use crate::turns::{TurnConfig, TurnPool};

/// The rules' tunables.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Highest speed per axis, in world units per second: `vx` and `vy` are each clamped to `[-max, max]`.
    pub max_speed: f32,
    /// Credits a new character starts with.
    pub start_credits: u64,
    /// Units of cargo (all commodities together) a new ship can hold.
    pub cargo_capacity: u32,
    pub turns: TurnConfig,
    /// Credits each station opens with: a station pays players who sell to it from its balance, and is paid by
    /// players who buy from it.
    #[serde(default = "default_station_credits")]
    pub station_credits: u64,
}

fn default_station_credits() -> u64 {
    Rules::default().station_credits
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_speed: 100.0,
            start_credits: 10_000,
            cargo_capacity: 100,
            turns: TurnConfig {
                max: 100,
                regen_per_minute: 60,
            },
            station_credits: 1_000_000,
        }
    }
}

/// The avatar: a ship, carrying its pilot's wallet, hold and turn pool, so that a trade touches one sector only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ship {
    /// The ship's id (the avatar's entity id).
    pub id: Uuid,
    /// The character flying it.
    pub owner: Uuid,
    pub name: String,
    pub x: f32,
    pub y: f32,
    pub vx: f32,
    pub vy: f32,
    pub credits: u64,
    pub cargo: BTreeMap<Commodity, u32>,
    pub cargo_capacity: u32,
    pub turns: TurnPool,
}

impl Ship {
    /// Units in the hold, all commodities together.
    pub fn cargo_used(&self) -> u32 {
        self.cargo.values().fold(0u32, |a, &b| a.saturating_add(b))
    }

    /// Units of free space in the hold.
    pub fn cargo_free(&self) -> u32 {
        self.cargo_capacity.saturating_sub(self.cargo_used())
    }

    /// The public view of this ship (what other players see), as ship `h` of its sector.
    pub fn view(&self, h: u32) -> ShipView {
        ShipView {
            h,
            id: self.id,
            owner: self.owner,
            name: Arc::from(self.name.as_str()),
            x: self.x,
            y: self.y,
            vx: self.vx,
            vy: self.vy,
        }
    }
}

/// Buy from or sell to a station (from the player's side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

/// What a client may ask of the sector its ship is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Sets the ship's velocity (world units per second), each axis clamped to the max speed.
    Thrust { vx: f32, vy: f32 },
    /// Takes one of this sector's warps, paying its turn cost.
    Warp { to: Uuid },
    /// Buys from or sells to a station in this sector.
    Trade {
        station: Uuid,
        commodity: Commodity,
        side: Side,
        qty: u32,
        /// An idempotency key (1 to 64 bytes, unique per character): a trade repeated with the same key is applied
        /// once and the repeat answered with the original `trade_result`.
        #[serde(default)]
        key: Option<String>,
    },
}

/// What the rules answer the commanding client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A completed trade: what it cost or paid, the ship's wallet and hold after it, and the station's book
    /// for that commodity after it.
    TradeResult {
        station: Uuid,
        commodity: Commodity,
        side: Side,
        qty: u32,
        /// Credits per unit actually charged or paid.
        unit_price: u32,
        /// `unit_price * qty`.
        total: u64,
        credits: u64,
        cargo: BTreeMap<Commodity, u32>,
        station_quantity: u32,
        buy_price: u32,
        sell_price: u32,
    },
}

/// A ship as every client sees it. `h` is the ship's handle in its current sector: a small number, stable while
/// the ship stays, that deltas use instead of the id (it may be reused after the ship leaves). The name is shared
/// (`Arc<str>`) so that building a view allocates no strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipView {
    pub h: u32,
    pub id: Uuid,
    pub owner: Uuid,
    pub name: Arc<str>,
    pub x: f32,
    pub y: f32,
    pub vx: f32,
    pub vy: f32,
}

/// A station and its current book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationView {
    pub id: Uuid,
    pub name: String,
    /// The station's balance: what it can pay players who sell to it.
    pub credits: u64,
    pub commodities: Vec<Listing>,
}

/// A warp out of the sector, with what a client needs to show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarpView {
    /// Target sector.
    pub to: Uuid,
    /// Target sector's name.
    pub name: String,
    /// Turn cost.
    pub turns: u32,
    /// Target sector's region.
    pub region: Uuid,
}

/// A full view of a sector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyframe {
    /// The sector's name and edge length (positions run from 0 to `size` on each axis). The sector's id is in
    /// the machinery's keyframe envelope.
    pub name: String,
    pub size: f32,
    pub ships: Vec<ShipView>,
    pub stations: Vec<StationView>,
    pub warps: Vec<WarpView>,
}

/// The changes of one tick, keyed by ship handle. Apply `removes`, then `upserts`, then `moves` and `steers`,
/// then `stations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delta {
    /// Ships that entered the sector (or changed more than position and velocity), in full.
    pub upserts: Vec<ShipView>,
    /// Handles of ships that left.
    pub removes: Vec<u32>,
    /// New positions of ships that moved (quantized to 1/65535 of the sector in binary).
    pub moves: Moves,
    /// New velocities of ships that changed course (exact).
    pub steers: Steers,
    /// Stations whose book changed, in full.
    pub stations: Vec<StationView>,
}

/// What `welcome` tells a client about its character.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The character's id.
    pub id: Uuid,
    pub name: String,
    /// The ship's id.
    pub ship: Uuid,
    pub credits: u64,
    pub cargo: BTreeMap<Commodity, u32>,
    pub cargo_capacity: u32,
    /// Turns available now.
    pub turns: u32,
    pub turns_max: u32,
}

/// Refusals of the space-trade rules; [`GameError::code`] gives the stable code clients see.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("ship {ship} is not in this sector")]
    NotInSector { ship: Uuid },
    #[error("invalid value: {0}")]
    InvalidValue(String),
    #[error("no warp from this sector leads to {to}")]
    NoSuchWarp { to: Uuid },
    #[error("not enough turns: the warp costs {needed}, {available} available")]
    NotEnoughTurns { needed: u32, available: u32 },
    #[error("no station {station} in this sector")]
    NoSuchStation { station: Uuid },
    #[error("station {station} does not trade {commodity}")]
    NotTradedHere { station: Uuid, commodity: Commodity },
    #[error("invalid quantity {qty}: must be from 1 to {max}")]
    InvalidQuantity { qty: u32, max: u32 },
    #[error("not enough credits: {needed} needed, {available} available")]
    NotEnoughCredits { needed: u64, available: u64 },
    #[error("not enough stock: {requested} requested, the station has {available}")]
    NotEnoughStock { requested: u32, available: u32 },
    #[error("not enough cargo space: {requested} units requested, {free} free")]
    NotEnoughCargoSpace { requested: u32, free: u32 },
    #[error("not enough cargo: selling {requested}, holding {held}")]
    NotEnoughCargo { requested: u32, held: u32 },
    #[error("station full: selling {requested}, room for {room}")]
    StationFull { requested: u32, room: u32 },
    #[error("the station cannot pay: the sale is worth {needed} credits, the station has {available}")]
    StationCannotPay { needed: u64, available: u64 },
}

impl GameError for Error {
    fn code(&self) -> &'static str {
        match self {
            Error::NotInSector { .. } => "not_in_sector",
            Error::InvalidValue(_) => "invalid_value",
            Error::NoSuchWarp { .. } => "no_such_warp",
            Error::NotEnoughTurns { .. } => "not_enough_turns",
            Error::NoSuchStation { .. } => "no_such_station",
            Error::NotTradedHere { .. } => "not_traded_here",
            Error::InvalidQuantity { .. } => "invalid_quantity",
            Error::NotEnoughCredits { .. } => "not_enough_credits",
            Error::NotEnoughStock { .. } => "not_enough_stock",
            Error::NotEnoughCargoSpace { .. } => "not_enough_cargo_space",
            Error::NotEnoughCargo { .. } => "not_enough_cargo",
            Error::StationFull { .. } => "station_full",
            Error::StationCannotPay { .. } => "station_cannot_pay",
        }
    }
}
