//! Orrery's actor tree above sectors.
//!
//! Modules:
//! - [`node`]: builds the tree (root -> nexus, region manager -> region supervisors -> sectors) and shuts it down.
//! - [`manager`]: the region manager, which spawns, stops and restarts region supervisors.
//! - [`region`]: the region supervisor, which restarts crashed sectors (one_for_one, with restart intensity).
//! - [`nexus`]: the nexus, which carries cross-region traffic (ships between regions, global chat).
//! - [`fabric`]: the routing tables sectors use to reach the tree.

pub mod fabric;
pub mod manager;
pub mod nexus;
pub mod node;
pub mod region;

pub use node::{Node, NodeError};
