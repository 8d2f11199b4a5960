//! Persistence behind one small trait: accounts and tokens, characters (with their parked avatars), sector snapshots.
//!
//! Game state is stored as opaque postcard blobs; the store never interprets them. [`sqlite::SqliteStore`] is the
//! embedded default, [`postgres::PgStore`] the production store (`--database-url`); both apply the module-owned
//! migrations of [`migrate`] when they open. This module is the only part of Orrery that depends on sqlx.

pub mod migrate;
pub mod postgres;
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
    #[error(
        "the database has migrations this server does not know ({0}): it was migrated by a newer Orrery; \
         run a server at least as new"
    )]
    TooNew(String),
    #[error("sector {0} is owned under a newer epoch: this writer is fenced off")]
    Fenced(Uuid),
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

/// The ownership epoch of a single node's regions. Multi-node ownership will hand out higher epochs; the store
/// already refuses a snapshot from an epoch older than the stored one ([`StoreError::Fenced`]).
pub const SINGLE_NODE_EPOCH: u64 = 1;

/// A sector's persisted state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectorSnapshot {
    pub sector: Uuid,
    pub seq: u64,
    /// The sector's version: a stored snapshot is only replaced by one with a tick at least as new (same epoch).
    pub tick: u64,
    /// The writer's ownership epoch (fencing token).
    pub epoch: u64,
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

/// The last entry for each key, in their original order: a batch merged from several jobs (group commit) may carry a
/// character or a sector twice, and the later state must win, as it would with one statement per entry.
fn last_per<T, K: std::hash::Hash + Eq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let mut kept: Vec<&T> = items.iter().rev().filter(|a| seen.insert(key(a))).collect();
    kept.reverse();
    kept
}

/// The last entry for each character (see [`last_per`]).
pub(crate) fn last_per_character(avatars: &[ParkedAvatar]) -> Vec<&ParkedAvatar> {
    last_per(avatars, |a| a.character_id)
}

/// The last snapshot of each sector (see [`last_per`]).
pub(crate) fn last_per_sector(sectors: &[SectorSnapshot]) -> Vec<&SectorSnapshot> {
    last_per(sectors, |s| s.sector)
}

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

/// The behaviour of every store, run against both backends (PostgreSQL: a scratch database per test).
#[cfg(test)]
mod tests {
    use super::postgres::{test_admin_url, PgStore, ScratchDatabase};
    use super::sqlite::SqliteStore;
    use super::*;

    /// Where a test's store lives; `open` can be called again to reopen it.
    enum Place {
        Sqlite(std::path::PathBuf),
        Postgres(ScratchDatabase),
    }

    impl Place {
        async fn open(&self) -> SharedStore {
            match self {
                Place::Sqlite(path) => Arc::new(SqliteStore::open(path).await.unwrap()),
                Place::Postgres(db) => Arc::new(PgStore::connect(&db.url).await.unwrap()),
            }
        }
    }

    /// A fresh place on each backend.
    async fn places() -> [Place; 2] {
        let dir = std::env::temp_dir().join(format!("orrery-store-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = ScratchDatabase::create(&test_admin_url())
            .await
            .expect("PostgreSQL for the store tests (scripts/test.sh starts it)");
        [Place::Sqlite(dir.join("orrery.db")), Place::Postgres(db)]
    }

    #[tokio::test]
    async fn purge_removes_idle_guests_only() {
        for place in places().await {
            let store = place.open().await;
            let idle = store.create_guest("Idle", "tok-idle", None).await.unwrap();
            let back = store.create_guest("Back", "tok-back", None).await.unwrap();
            let cutoff = now_millis() + 1;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            // `Back` came back after the cutoff: its character row was written then.
            let parked = ParkedAvatar {
                character_id: back.character_id,
                sector: Uuid::new_v4(),
                avatar: vec![1],
            };
            store.save(&[], &[parked]).await.unwrap();
            assert_eq!(store.purge_guests(cutoff).await.unwrap(), 1);
            assert_eq!(store.authenticate("tok-idle").await.unwrap(), None);
            assert_eq!(store.load_avatar(idle.character_id).await.unwrap(), None);
            assert_eq!(store.authenticate("tok-back").await.unwrap(), Some(back));
            assert_eq!(store.purge_guests(cutoff).await.unwrap(), 0, "nothing left to purge");
            store.close().await;
        }
    }

    #[tokio::test]
    async fn guest_tokens_avatars_and_snapshots_survive_reopen() {
        for place in places().await {
            let store = place.open().await;
            let id = store.create_guest("Ada", "tok-1", None).await.unwrap();
            assert_eq!(store.authenticate("tok-1").await.unwrap(), Some(id.clone()));
            assert_eq!(store.authenticate("tok-2").await.unwrap(), None);
            assert_eq!(store.load_avatar(id.character_id).await.unwrap(), None);
            assert_eq!(store.spawn_sector(id.character_id).await.unwrap(), None);
            let chosen = Uuid::new_v4();
            let other = store.create_guest("Bo", "tok-3", Some(chosen)).await.unwrap();
            assert_eq!(store.spawn_sector(other.character_id).await.unwrap(), Some(chosen));
            let sector = Uuid::new_v4();
            let parked = ParkedAvatar {
                character_id: id.character_id,
                sector,
                avatar: vec![1, 2, 3],
            };
            let snap = SectorSnapshot {
                sector,
                seq: 7,
                tick: 9,
                state: vec![4, 5],
                epoch: SINGLE_NODE_EPOCH,
            };
            // A merged batch may carry a sector twice: the later snapshot wins.
            let older = SectorSnapshot { seq: 6, ..snap.clone() };
            store
                .save(&[older, snap.clone()], std::slice::from_ref(&parked))
                .await
                .unwrap();
            store.close().await;
            let store = place.open().await;
            assert_eq!(store.load_avatar(id.character_id).await.unwrap(), Some(parked));
            assert_eq!(store.load_sectors().await.unwrap(), vec![snap]);
            assert_eq!(store.authenticate("tok-1").await.unwrap(), Some(id));
            store.close().await;
        }
    }

    #[tokio::test]
    async fn a_large_batch_updates_every_avatar_and_the_last_entry_of_a_character_wins() {
        for place in places().await {
            let store = place.open().await;
            let n = 3 * 64 + 17;
            let mut ids = Vec::with_capacity(n);
            for i in 0..n {
                ids.push(
                    store
                        .create_guest(&format!("p{i}"), &format!("tok-{i}"), None)
                        .await
                        .unwrap(),
                );
            }
            let sector = Uuid::new_v4();
            let park = |id: &Identity, byte: u8| ParkedAvatar {
                character_id: id.character_id,
                sector,
                avatar: vec![byte, 0, 0xff, 0x10],
            };
            let mut batch: Vec<ParkedAvatar> = ids.iter().map(|id| park(id, 1)).collect();
            // Merged jobs: the first character again, later, with a newer state; and an unknown character (no row).
            batch.push(park(&ids[0], 2));
            batch.push(ParkedAvatar {
                character_id: Uuid::new_v4(),
                sector,
                avatar: vec![9],
            });
            store.save(&[], &batch).await.unwrap();
            assert_eq!(
                store.load_avatar(ids[0].character_id).await.unwrap(),
                Some(park(&ids[0], 2))
            );
            for id in &ids[1..] {
                assert_eq!(store.load_avatar(id.character_id).await.unwrap(), Some(park(id, 1)));
            }
            store.close().await;
        }
    }

    #[tokio::test]
    async fn an_older_snapshot_is_ignored_and_an_older_epoch_is_fenced_off() {
        for place in places().await {
            let store = place.open().await;
            let sector = Uuid::new_v4();
            let snap = |tick: u64, epoch: u64| SectorSnapshot {
                sector,
                seq: tick,
                tick,
                state: vec![tick as u8],
                epoch,
            };
            store.save(&[snap(9, 1)], &[]).await.unwrap();
            // A late write of an older state changes nothing (and is no error: the newer state is there).
            store.save(&[snap(7, 1)], &[]).await.unwrap();
            assert_eq!(store.load_sectors().await.unwrap(), vec![snap(9, 1)]);
            // A newer owner's write wins even with an older tick; the old owner is then refused.
            store.save(&[snap(3, 2)], &[]).await.unwrap();
            assert_eq!(store.load_sectors().await.unwrap(), vec![snap(3, 2)]);
            match store.save(&[snap(50, 1)], &[]).await {
                Err(StoreError::Fenced(s)) => assert_eq!(s, sector),
                other => panic!("expected Fenced, got {other:?}"),
            }
            assert_eq!(store.load_sectors().await.unwrap(), vec![snap(3, 2)]);
            store.close().await;
        }
    }
}
