//! Orrery's engine: pure, synchronous, deterministic rules. No tokio, ractor, sqlx or redis here.
//!
//! Modules:
//! - [`game`]: the [`Game`](game::Game) trait, the contract between the machinery and a game's rules.
//! - [`galaxy`]: world content (regions, sectors, warps, stations): parsing, deterministic generation, validation.
//! - [`spacetrade`]: the reference game, a space-trade world (motion, warps, turn pools, trade, deltas).
//! - [`ledger`]: holders and postings, what the rules say moved when a command changes who holds what.
//! - [`turns`]: the lazily regenerating turn pool.

pub mod galaxy;
pub mod game;
pub mod ledger;
pub mod spacetrade;
pub mod turns;

pub use game::{
    CharacterSeed, EntityId, Game, GameError, Millis, Outcome, RegionId, RegionLayout, SectorId, SectorLayout,
};
pub use ledger::{Holder, Posting};
