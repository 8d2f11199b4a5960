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
    /// The version of the game's encoding of `state` (`Game::SECTOR_FORMAT` when it was written).
    pub format: u32,
    pub state: Vec<u8>,
}

/// Who holds an asset, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    Character,
    Station,
    /// The issuer (its id is the nil UUID).
    World,
}

impl HolderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HolderKind::Character => "character",
            HolderKind::Station => "station",
            HolderKind::World => "world",
        }
    }
}

/// One line of a ledger transaction: `amount` of `asset` credited (negative: debited) to a holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub kind: HolderKind,
    pub holder: Uuid,
    pub asset: String,
    pub amount: i64,
}

/// A double-entry transaction: its entries sum to zero per asset. Its id is idempotent (writing it again changes
/// nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTx {
    pub id: Uuid,
    /// Milliseconds since the epoch.
    pub at: i64,
    /// `trade`, `opening`, ...
    pub kind: String,
    pub sector: Option<Uuid>,
    /// The character whose command it was.
    pub character: Option<Uuid>,
    /// The command's idempotency key.
    pub key: Option<String>,
    /// The reply the client was sent (the game's encoded event), for repeats of a keyed command.
    pub reply: Option<Vec<u8>>,
    pub entries: Vec<LedgerEntry>,
}

/// One holder's line in the ledger: an entry with its transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LedgerLine {
    pub tx: Uuid,
    pub at: i64,
    pub kind: String,
    pub sector: Option<Uuid>,
    pub key: Option<String>,
    pub asset: String,
    pub amount: i64,
}

/// A page of a holder's ledger: the lines of at most `limit` transactions older than `before` (a transaction's
/// `(at, id)`), newest first; a transaction's lines are never split across pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerPage {
    pub before: Option<(i64, Uuid)>,
    pub limit: u32,
}

/// A check of the whole ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LedgerAudit {
    pub transactions: u64,
    /// Transactions whose entries do not sum to zero for some asset (always 0 unless the data was tampered with).
    pub unbalanced: u64,
    /// Per asset: what the world issued, which is what characters and stations hold together.
    pub issued: std::collections::BTreeMap<String, i64>,
}

/// Everything one write puts in the database, in one transaction.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub sectors: Vec<SectorSnapshot>,
    pub avatars: Vec<ParkedAvatar>,
    pub ledger: Vec<LedgerTx>,
}

impl Batch {
    pub fn extend(&mut self, other: Batch) {
        self.sectors.extend(other.sectors);
        self.avatars.extend(other.avatars);
        self.ledger.extend(other.ledger);
    }

    pub fn is_empty(&self) -> bool {
        self.sectors.is_empty() && self.avatars.is_empty() && self.ledger.is_empty()
    }
}

/// The persistence contract of the machinery.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name, for operators (`sqlite`, `postgresql`).
    fn backend(&self) -> &'static str {
        "custom"
    }
    /// Creates a guest account with one character and a login token (stored hashed). `spawn` is the sector the
    /// character starts in, when chosen at sign-up (otherwise the game decides at first login).
    async fn create_guest(&self, name: &str, token: &str, spawn: Option<Uuid>) -> Result<Identity, StoreError>;
    /// The identity behind a token, if any.
    async fn authenticate(&self, token: &str) -> Result<Option<Identity>, StoreError>;
    /// A character's parked avatar, if it has one yet.
    async fn load_avatar(&self, character_id: Uuid) -> Result<Option<ParkedAvatar>, StoreError>;
    /// The sector chosen at sign-up for a character that has never logged in.
    async fn spawn_sector(&self, character_id: Uuid) -> Result<Option<Uuid>, StoreError>;
    /// Writes sector snapshots, parked avatars and ledger transactions in one transaction. A ledger transaction
    /// already stored (same id) is left as it is.
    async fn save(&self, batch: &Batch) -> Result<(), StoreError>;
    /// The reply stored with a character's keyed command, if that key was used.
    async fn keyed_reply(&self, character: Uuid, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// A page of one holder's ledger lines, newest first.
    async fn ledger(&self, holder: Uuid, page: LedgerPage) -> Result<Vec<LedgerLine>, StoreError>;
    /// What one holder holds according to the ledger: the sum of its entries per asset.
    async fn balances(&self, holder: Uuid) -> Result<std::collections::BTreeMap<String, i64>, StoreError>;
    /// Checks every transaction and totals what was issued.
    async fn audit_ledger(&self) -> Result<LedgerAudit, StoreError>;
    /// Every sector snapshot, handed to `each` as it is read (in no particular order), so that the caller can work
    /// on the first ones while the rest are still being read, and none has to wait in memory for all the others.
    async fn each_sector(&self, each: &mut (dyn FnMut(SectorSnapshot) + Send)) -> Result<(), StoreError>;
    /// Every sector snapshot, in one list ([`Store::each_sector`], collected).
    async fn load_sectors(&self) -> Result<Vec<SectorSnapshot>, StoreError> {
        let mut all = Vec::new();
        self.each_sector(&mut |s| all.push(s)).await?;
        Ok(all)
    }
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

/// Entries of `txs` in one flat list with their transaction id and line number, for binding.
pub(crate) fn ledger_lines(txs: &[LedgerTx]) -> Vec<(Uuid, i32, &LedgerEntry)> {
    txs.iter()
        .flat_map(|t| t.entries.iter().enumerate().map(move |(i, e)| (t.id, i as i32, e)))
        .collect()
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

    fn batch(sectors: &[SectorSnapshot], avatars: &[ParkedAvatar]) -> Batch {
        Batch {
            sectors: sectors.to_vec(),
            avatars: avatars.to_vec(),
            ledger: Vec::new(),
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
            store.save(&batch(&[], &[parked])).await.unwrap();
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
                format: 3,
            };
            // A merged batch may carry a sector twice: the later snapshot wins.
            let older = SectorSnapshot { seq: 6, ..snap.clone() };
            store
                .save(&batch(&[older, snap.clone()], std::slice::from_ref(&parked)))
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
    async fn each_sector_hands_on_every_snapshot_once() {
        for place in places().await {
            let store = place.open().await;
            let mut seen = Vec::new();
            store.each_sector(&mut |s| seen.push(s)).await.unwrap();
            assert!(seen.is_empty());
            let snaps: Vec<SectorSnapshot> = (0..300u64)
                .map(|i| SectorSnapshot {
                    sector: Uuid::from_u128(u128::from(i) + 1),
                    seq: i,
                    tick: i + 1,
                    state: vec![i as u8; (i as usize % 7) * 1000],
                    epoch: SINGLE_NODE_EPOCH,
                    format: 2,
                })
                .collect();
            store.save(&batch(&snaps, &[])).await.unwrap();
            store.each_sector(&mut |s| seen.push(s)).await.unwrap();
            seen.sort_by_key(|s| s.sector);
            assert_eq!(seen, snaps);
            let mut all = store.load_sectors().await.unwrap();
            all.sort_by_key(|s| s.sector);
            assert_eq!(all, snaps);
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
            store.save(&self::batch(&[], &batch)).await.unwrap();
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
                format: 1,
            };
            store.save(&batch(&[snap(9, 1)], &[])).await.unwrap();
            // A late write of an older state changes nothing (and is no error: the newer state is there).
            store.save(&batch(&[snap(7, 1)], &[])).await.unwrap();
            assert_eq!(store.load_sectors().await.unwrap(), vec![snap(9, 1)]);
            // A newer owner's write wins even with an older tick; the old owner is then refused.
            store.save(&batch(&[snap(3, 2)], &[])).await.unwrap();
            assert_eq!(store.load_sectors().await.unwrap(), vec![snap(3, 2)]);
            match store.save(&batch(&[snap(50, 1)], &[])).await {
                Err(StoreError::Fenced(s)) => assert_eq!(s, sector),
                other => panic!("expected Fenced, got {other:?}"),
            }
            assert_eq!(store.load_sectors().await.unwrap(), vec![snap(3, 2)]);
            store.close().await;
        }
    }

    fn trade_tx(id: Uuid, at: i64, who: Uuid, station: Uuid, key: Option<&str>, credits: i64, ore: i64) -> LedgerTx {
        let line = |kind, holder, asset: &str, amount| LedgerEntry {
            kind,
            holder,
            asset: asset.to_owned(),
            amount,
        };
        LedgerTx {
            id,
            at,
            kind: "trade".into(),
            sector: Some(Uuid::nil()),
            character: Some(who),
            key: key.map(str::to_owned),
            reply: key.map(|k| k.as_bytes().to_vec()),
            entries: vec![
                line(HolderKind::Character, who, "credits", -credits),
                line(HolderKind::Station, station, "credits", credits),
                line(HolderKind::Station, station, "ore", -ore),
                line(HolderKind::Character, who, "ore", ore),
            ],
        }
    }

    #[tokio::test]
    async fn ledger_transactions_are_written_once_and_read_back_per_holder_newest_first() {
        for place in places().await {
            let store = place.open().await;
            let who = store.create_guest("Trader", "tok-t", None).await.unwrap().character_id;
            let station = Uuid::new_v4();
            let opening = LedgerTx {
                id: Uuid::new_v4(),
                at: 1,
                kind: "opening".into(),
                sector: None,
                character: Some(who),
                key: None,
                reply: None,
                entries: vec![
                    LedgerEntry {
                        kind: HolderKind::World,
                        holder: Uuid::nil(),
                        asset: "credits".into(),
                        amount: -1000,
                    },
                    LedgerEntry {
                        kind: HolderKind::Character,
                        holder: who,
                        asset: "credits".into(),
                        amount: 1000,
                    },
                ],
            };
            let first = trade_tx(Uuid::new_v4(), 10, who, station, Some("k1"), 30, 3);
            let second = trade_tx(Uuid::new_v4(), 20, who, station, None, 50, 5);
            let with = |ledger: Vec<LedgerTx>| Batch {
                ledger,
                ..Batch::default()
            };
            store.save(&with(vec![opening.clone(), first.clone()])).await.unwrap();
            // The same transactions again (a retried or merged batch, a transaction twice in one batch): nothing is
            // written twice. Nor does a transaction with a stored id get lines it did not have.
            let mut regrown = opening.clone();
            regrown
                .entries
                .extend(trade_tx(Uuid::nil(), 0, who, station, None, 7, 7).entries);
            store
                .save(&with(vec![first.clone(), second.clone(), second.clone(), regrown]))
                .await
                .unwrap();
            let balances = store.balances(who).await.unwrap();
            assert_eq!(balances["credits"], 1000 - 30 - 50);
            assert_eq!(balances["ore"], 8);
            assert_eq!(store.balances(station).await.unwrap()["credits"], 80);
            let audit = store.audit_ledger().await.unwrap();
            assert_eq!((audit.transactions, audit.unbalanced), (3, 0));
            assert_eq!(audit.issued.get("credits"), Some(&1000));
            // The keyed transaction's reply is found by character and key, nothing else is.
            assert_eq!(store.keyed_reply(who, "k1").await.unwrap(), Some(b"k1".to_vec()));
            assert_eq!(store.keyed_reply(who, "k2").await.unwrap(), None);
            assert_eq!(store.keyed_reply(station, "k1").await.unwrap(), None);
            // Pages: newest first, each transaction's lines together, then older ones after the cursor.
            let page = store.ledger(who, LedgerPage { before: None, limit: 2 }).await.unwrap();
            assert_eq!(page.len(), 4, "two transactions of two lines each: {page:?}");
            assert_eq!(
                (page[0].tx, page[0].asset.as_str(), page[0].amount),
                (second.id, "credits", -50)
            );
            assert_eq!(
                (page[1].tx, page[1].asset.as_str(), page[1].amount),
                (second.id, "ore", 5)
            );
            assert_eq!(page[2].tx, first.id);
            assert_eq!(page[2].key.as_deref(), Some("k1"));
            assert_eq!(page[3].tx, first.id);
            let older = store
                .ledger(
                    who,
                    LedgerPage {
                        before: Some((second.at, second.id)),
                        limit: 10,
                    },
                )
                .await
                .unwrap();
            assert_eq!(
                older.iter().map(|l| l.tx).collect::<Vec<_>>(),
                [first.id, first.id, opening.id]
            );
            // An unbalanced transaction (tampered data) is found by the audit.
            let mut bad = trade_tx(Uuid::new_v4(), 30, who, station, None, 5, 1);
            bad.entries[0].amount = -4;
            store.save(&with(vec![bad])).await.unwrap();
            assert_eq!(store.audit_ledger().await.unwrap().unbalanced, 1);
            store.close().await;
        }
    }

    #[tokio::test]
    async fn a_batch_with_a_failing_part_writes_no_ledger_row() {
        for place in places().await {
            let store = place.open().await;
            let who = Uuid::new_v4();
            let station = Uuid::new_v4();
            let sector = Uuid::new_v4();
            let snap = |epoch: u64| SectorSnapshot {
                sector,
                seq: 1,
                tick: 1,
                state: vec![1],
                epoch,
                format: 1,
            };
            store.save(&batch(&[snap(2)], &[])).await.unwrap();
            // Fenced: the snapshot is refused, and the ledger rows of the same batch with it.
            let fenced = Batch {
                sectors: vec![snap(1)],
                avatars: Vec::new(),
                ledger: vec![trade_tx(Uuid::new_v4(), 1, who, station, Some("k"), 10, 1)],
            };
            assert!(matches!(store.save(&fenced).await, Err(StoreError::Fenced(_))));
            assert_eq!(store.audit_ledger().await.unwrap().transactions, 0);
            assert_eq!(store.keyed_reply(who, "k").await.unwrap(), None);
            store.close().await;
        }
    }
}
