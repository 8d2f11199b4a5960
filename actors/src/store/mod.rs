//! Persistence behind one small trait: accounts and tokens, characters (with their parked avatars), sector snapshots.
//!
//! Game state is stored as opaque postcard blobs; the store never interprets them. [`sqlite::SqliteStore`] is the
//! embedded default.

pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Failures of the store. Database error text is logged, never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// The account and character behind a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account_id: Uuid,
    pub character_id: Uuid,
    pub name: String,
}

/// A character's parked avatar: the sector it is in and the game's encoded avatar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedAvatar {
    pub character_id: Uuid,
    pub sector: Uuid,
    pub avatar: Vec<u8>,
}

/// A sector's persisted state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectorSnapshot {
    pub sector: Uuid,
    pub seq: u64,
    pub tick: u64,
    pub state: Vec<u8>,
}

/// The persistence contract of the machinery.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a guest account with one character and a login token (stored hashed). `spawn` is the sector the
    /// character starts in, when chosen at sign-up (otherwise the game decides at first login).
    async fn create_guest(&self, name: &str, token: &str, spawn: Option<Uuid>) -> Result<Identity, StoreError>;
    /// The identity behind a token, if any.
    async fn authenticate(&self, token: &str) -> Result<Option<Identity>, StoreError>;
    /// A character's parked avatar, if it has one yet.
    async fn load_avatar(&self, character_id: Uuid) -> Result<Option<ParkedAvatar>, StoreError>;
    /// The sector chosen at sign-up for a character that has never logged in.
    async fn spawn_sector(&self, character_id: Uuid) -> Result<Option<Uuid>, StoreError>;
    /// Writes sector snapshots and parked avatars in one transaction.
    async fn save(&self, sectors: &[SectorSnapshot], avatars: &[ParkedAvatar]) -> Result<(), StoreError>;
    /// Every sector snapshot.
    async fn load_sectors(&self) -> Result<Vec<SectorSnapshot>, StoreError>;
    /// Deletes guest accounts (with their tokens and characters) created before `idle_before` (ms since the
    /// epoch) whose characters have not been written since either; returns how many accounts went.
    async fn purge_guests(&self, idle_before: i64) -> Result<u64, StoreError>;
    /// Flushes and closes the store.
    async fn close(&self);
}

/// A shared store.
pub type SharedStore = Arc<dyn Store>;

/// The hex SHA-256 of a token: only hashes are stored.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random login token (32 random bytes, URL-safe base64).
pub fn new_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
