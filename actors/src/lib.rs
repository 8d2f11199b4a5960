//! Orrery's actors: the sector and session actors, the fan-out path to sockets, and persistence.
//!
//! Modules:
//! - [`config`]: runtime settings shared by the actors.
//! - [`dilation`]: time dilation, how an overloaded sector slows its game time instead of overrunning.
//! - [`directory`]: node-wide lookup tables and the [`Fabric`](directory::Fabric) routing contract.
//! - [`input`]: a connection's inbound side (parsing, decoding, size and rate limits), read by sectors.
//! - [`liveness`]: pings silent connections and ends the sessions of those that stay silent.
//! - [`net`]: WebSocket framing and the per-connection outbox (non-blocking writes of shared bytes).
//! - [`persist`]: the persister task that writes snapshots off the tick path.
//! - [`sector`]: the sector actor (tick, deltas, fan-out, crash recovery).
//! - [`session`]: the session actor (one per connection: login, welcome, logout).
//! - [`store`]: the persistence trait and the embedded SQLite store.

pub mod config;
pub mod dilation;
pub mod directory;
pub mod input;
pub mod ledger;
pub mod liveness;
pub mod net;
pub mod persist;
pub mod phase;
pub mod sector;
pub mod session;
pub mod store;
pub mod supervision;

pub use config::EngineConfig;
pub use directory::{Directory, Fabric, Parcel, SessionLink, Transfer};
