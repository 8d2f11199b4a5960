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

/// An admin action as written to the audit log before it takes effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: Uuid,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// `account:<uuid>` or `token:<name>`.
    pub actor: String,
    /// e.g. `region.stop`.
    pub action: String,
    pub target: Option<String>,
    /// The action's parameters, as JSON text.
    pub params: String,
}

/// The result of an admin action, written once it has run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOutcome {
    /// The [`AuditRecord::id`] of the action.
    pub id: Uuid,
    pub at: i64,
    pub ok: bool,
    /// JSON text: the answer when `ok`, else `{"status", "code", "message"}`.
    pub result: String,
}

/// An admin action read back from the audit log, with its result if one was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub record: AuditRecord,
    pub outcome: Option<AuditOutcome>,
}

/// Which audit log entries to read: newest first, at most `limit`, older than `before` (an entry's `(at, id)`),
/// and matching every filter given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub before: Option<(i64, Uuid)>,
    pub limit: u32,
    /// Exact actor (`account:<uuid>`, `token:admin`).
    pub actor: Option<String>,
    /// Exact action name.
    pub action: Option<String>,
    /// Action names starting with this.
    pub action_prefix: Option<String>,
    /// Exact target.
    pub target: Option<String>,
    /// At or after (ms since the epoch).
    pub since: Option<i64>,
    /// At or before (ms since the epoch).
    pub until: Option<i64>,
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

/// An account as the identity endpoints see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    /// `guest` or `registered`.
    pub kind: String,
    /// The login name of a registered account (as typed at registration; unique whatever its case).
    pub username: Option<String>,
    /// The argon2id hash (PHC string) of a registered account's password.
    pub password_hash: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// The capabilities granted to the account.
    pub capabilities: std::collections::BTreeSet<String>,
}

/// One character of an account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CharacterInfo {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// It was live: it is now rotated, and the new token (same family) replaces it.
    Rotated { account_id: Uuid },
    /// It had already been rotated (a replay, or a stolen copy): its whole family is now revoked.
    Reused { account_id: Uuid },
    /// Unknown, expired or revoked.
    Invalid,
}

/// What a guest upgrade found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// The guest is now a registered account (same id, same characters).
    Done,
    /// Another account has that username.
    UsernameTaken,
    /// The account is not a guest (already registered, or gone).
    NotGuest,
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
    /// Creates a registered account with no character; `None` when the username is taken (whatever its case).
    async fn create_account(&self, username: &str, password_hash: &str) -> Result<Option<Uuid>, StoreError>;
    /// An account by id, with its capabilities.
    async fn account(&self, id: Uuid) -> Result<Option<Account>, StoreError>;
    /// A registered account by username (whatever its case), with its capabilities.
    async fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError>;
    /// Accounts whose username contains `query` (whatever its case) or whose id is `query`, at most `limit`, by
    /// creation time.
    async fn search_accounts(&self, query: &str, limit: u32) -> Result<Vec<Account>, StoreError>;
    /// Makes a guest a registered account with this username and password, keeping its id and characters; its guest
    /// tokens are revoked (it logs in with its password from now on).
    async fn upgrade_guest(&self, id: Uuid, username: &str, password_hash: &str) -> Result<Upgrade, StoreError>;
    /// An account's characters, by name.
    async fn characters(&self, account_id: Uuid) -> Result<Vec<CharacterInfo>, StoreError>;
    /// A character by id.
    async fn character(&self, id: Uuid) -> Result<Option<CharacterInfo>, StoreError>;
    /// Creates a character for an account unless it already has `limit` of them (`None` then).
    async fn create_character(
        &self,
        account_id: Uuid,
        name: &str,
        limit: usize,
    ) -> Result<Option<CharacterInfo>, StoreError>;
    /// Stores a new refresh token (hashed) of `family`, valid until `expires_at` (ms since the epoch).
    async fn add_refresh_token(
        &self,
        account_id: Uuid,
        token: &str,
        family: Uuid,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Presents a refresh token: a live one is rotated into `next` (same family, valid until `expires_at`); a
    /// rotated one revokes its whole family.
    async fn rotate_refresh_token(&self, token: &str, next: &str, expires_at: i64) -> Result<Refresh, StoreError>;
    /// Revokes a refresh token's whole family (logout); false if the token was unknown or no longer live.
    async fn revoke_refresh_token(&self, token: &str) -> Result<bool, StoreError>;
    /// Grants a capability; false if the account already had it.
    async fn grant_capability(&self, account_id: Uuid, capability: &str, granted_by: &str) -> Result<bool, StoreError>;
    /// Revokes a capability; false if the account did not have it.
    async fn revoke_capability(&self, account_id: Uuid, capability: &str) -> Result<bool, StoreError>;
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
    /// Appends an admin action to the audit log (before it takes effect: an error means it must not run).
    async fn audit_begin(&self, record: &AuditRecord) -> Result<(), StoreError>;
    /// Appends the result of an admin action written by [`Store::audit_begin`].
    async fn audit_end(&self, outcome: &AuditOutcome) -> Result<(), StoreError>;
    /// A page of the audit log, newest first.
    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
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

/// Whether a database error is a unique-constraint violation (a username taken).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

/// `text` with the `LIKE` wildcards (and the escape character `\`) escaped.
pub(crate) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
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
    async fn accounts_refresh_families_characters_and_capabilities() {
        for place in places().await {
            let store = place.open().await;
            let ada = store.create_account("Ada", "hash-a").await.unwrap().unwrap();
            assert_eq!(
                store.create_account("ADA", "hash-b").await.unwrap(),
                None,
                "taken whatever its case"
            );
            let found = store.account_by_username("aDa").await.unwrap().unwrap();
            assert_eq!((found.id, found.kind.as_str()), (ada, "registered"));
            assert_eq!(found.username.as_deref(), Some("Ada"));
            assert_eq!(found.password_hash.as_deref(), Some("hash-a"));
            // Search: a part of the username (LIKE wildcards are literal), or the id.
            store.create_account("a_b%c", "h").await.unwrap().unwrap();
            assert_eq!(store.search_accounts("_b%", 10).await.unwrap().len(), 1);
            assert_eq!(store.search_accounts("%", 10).await.unwrap().len(), 1);
            assert_eq!(store.search_accounts(&ada.to_string(), 10).await.unwrap()[0].id, ada);
            assert_eq!(store.search_accounts("", 10).await.unwrap().len(), 2);

            // Characters up to the limit.
            let one = store.create_character(ada, "One", 2).await.unwrap().unwrap();
            let two = store.create_character(ada, "Two", 2).await.unwrap().unwrap();
            assert_eq!(store.create_character(ada, "Three", 2).await.unwrap(), None);
            assert_eq!(store.characters(ada).await.unwrap(), vec![one.clone(), two]);
            assert_eq!(store.character(one.id).await.unwrap(), Some(one));
            assert_eq!(store.character(Uuid::new_v4()).await.unwrap(), None);

            // Refresh tokens rotate; a rotated one presented again revokes the family.
            let later = now_millis() + 60_000;
            let family = Uuid::new_v4();
            store.add_refresh_token(ada, "r1", family, later).await.unwrap();
            assert_eq!(
                store.rotate_refresh_token("r1", "r2", later).await.unwrap(),
                Refresh::Rotated { account_id: ada }
            );
            assert_eq!(
                store.rotate_refresh_token("r1", "r3", later).await.unwrap(),
                Refresh::Reused { account_id: ada }
            );
            assert_eq!(
                store.rotate_refresh_token("r2", "r4", later).await.unwrap(),
                Refresh::Invalid
            );
            assert_eq!(
                store.rotate_refresh_token("nope", "r5", later).await.unwrap(),
                Refresh::Invalid
            );
            // Logout revokes; an expired token is refused.
            store.add_refresh_token(ada, "s1", Uuid::new_v4(), later).await.unwrap();
            assert!(store.revoke_refresh_token("s1").await.unwrap());
            assert!(!store.revoke_refresh_token("s1").await.unwrap());
            assert_eq!(
                store.rotate_refresh_token("s1", "s2", later).await.unwrap(),
                Refresh::Invalid
            );
            store
                .add_refresh_token(ada, "old", Uuid::new_v4(), now_millis() - 1)
                .await
                .unwrap();
            assert_eq!(
                store.rotate_refresh_token("old", "new", later).await.unwrap(),
                Refresh::Invalid
            );

            // Capabilities.
            assert!(store.grant_capability(ada, "admin", "token:admin").await.unwrap());
            assert!(!store.grant_capability(ada, "admin", "token:admin").await.unwrap());
            assert!(store
                .account(ada)
                .await
                .unwrap()
                .unwrap()
                .capabilities
                .contains("admin"));
            assert!(store.revoke_capability(ada, "admin").await.unwrap());
            assert!(!store.revoke_capability(ada, "admin").await.unwrap());

            // A guest upgrade keeps the id and the character, and retires the guest token.
            let guest = store.create_guest("Wanderer", "tok-g", None).await.unwrap();
            assert_eq!(
                store.upgrade_guest(guest.account_id, "ada", "h").await.unwrap(),
                Upgrade::UsernameTaken
            );
            assert_eq!(
                store.upgrade_guest(guest.account_id, "wanderer", "h").await.unwrap(),
                Upgrade::Done
            );
            assert_eq!(
                store.upgrade_guest(guest.account_id, "w2", "h").await.unwrap(),
                Upgrade::NotGuest
            );
            assert_eq!(store.authenticate("tok-g").await.unwrap(), None);
            let upgraded = store.account_by_username("Wanderer").await.unwrap().unwrap();
            assert_eq!((upgraded.id, upgraded.kind.as_str()), (guest.account_id, "registered"));
            assert_eq!(
                store.characters(guest.account_id).await.unwrap()[0].id,
                guest.character_id
            );
            // Registered accounts are never purged as idle guests.
            assert_eq!(store.purge_guests(now_millis() + 1).await.unwrap(), 0);
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

    fn record(at: i64, actor: &str, action: &str, target: Option<&str>) -> AuditRecord {
        AuditRecord {
            id: Uuid::new_v4(),
            at,
            actor: actor.into(),
            action: action.into(),
            target: target.map(str::to_owned),
            params: r#"{"hz":10}"#.into(),
        }
    }

    #[tokio::test]
    async fn the_audit_log_is_append_only_paged_newest_first_and_filtered() {
        for place in places().await {
            let store = place.open().await;
            let a = record(10, "token:admin", "region.stop", Some("r1"));
            let b = record(20, "account:x", "region.start", Some("r1"));
            let c = record(30, "token:admin", "snapshot", None);
            for r in [&a, &b, &c] {
                store.audit_begin(r).await.unwrap();
            }
            let done = AuditOutcome {
                id: a.id,
                at: 11,
                ok: true,
                result: r#"{"running":false}"#.into(),
            };
            store.audit_end(&done).await.unwrap();
            // A second result for the same action is refused: one result per action.
            assert!(store.audit_end(&done).await.is_err());
            let all = |q: AuditQuery| {
                let store = Arc::clone(&store);
                async move { store.audit_log(&AuditQuery { limit: 10, ..q }).await.unwrap() }
            };
            let page = all(AuditQuery::default()).await;
            let ids: Vec<Uuid> = page.iter().map(|e| e.record.id).collect();
            assert_eq!(ids, [c.id, b.id, a.id]);
            // JSON is compared as JSON (PostgreSQL's jsonb normalizes the text).
            let json = |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap();
            let got = page[2].outcome.clone().unwrap();
            assert_eq!((got.id, got.at, got.ok), (done.id, done.at, done.ok));
            assert_eq!(json(&got.result), json(&done.result));
            let mut record = page[2].record.clone();
            assert_eq!(json(&record.params), json(&a.params));
            record.params = a.params.clone();
            assert_eq!(record, a);
            assert_eq!(page[0].outcome, None, "no result yet: unknown");
            let first = store
                .audit_log(&AuditQuery {
                    limit: 2,
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(first.len(), 2);
            let last = first.last().unwrap();
            let rest = all(AuditQuery {
                before: Some((last.record.at, last.record.id)),
                ..Default::default()
            })
            .await;
            assert_eq!(rest.iter().map(|e| e.record.id).collect::<Vec<_>>(), [a.id]);
            let by_actor = all(AuditQuery {
                actor: Some("token:admin".into()),
                ..Default::default()
            })
            .await;
            assert_eq!(by_actor.len(), 2);
            let by_prefix = all(AuditQuery {
                action_prefix: Some("region.".into()),
                ..Default::default()
            })
            .await;
            assert_eq!(by_prefix.len(), 2);
            let exact = all(AuditQuery {
                action: Some("region".into()),
                ..Default::default()
            })
            .await;
            assert!(exact.is_empty());
            let by_target = all(AuditQuery {
                target: Some("r1".into()),
                since: Some(15),
                ..Default::default()
            })
            .await;
            assert_eq!(by_target.iter().map(|e| e.record.id).collect::<Vec<_>>(), [b.id]);
            let until = all(AuditQuery {
                until: Some(20),
                ..Default::default()
            })
            .await;
            assert_eq!(until.len(), 2);
            store.close().await;
            // Rows cannot be changed or removed, whoever asks.
            let refused = |r: Result<(), sqlx::Error>| assert!(r.is_err(), "{r:?}");
            match &place {
                Place::Sqlite(path) => {
                    let pool = SqliteStore::pool(path).await.unwrap();
                    for sql in [
                        "UPDATE audit_log SET actor = 'x'",
                        "DELETE FROM audit_log",
                        "UPDATE audit_results SET ok = 0",
                        "DELETE FROM audit_results",
                    ] {
                        refused(sqlx::query(sql).execute(&pool).await.map(|_| ()));
                    }
                }
                Place::Postgres(db) => {
                    let pool = PgStore::pool(&db.url).await.unwrap();
                    for sql in [
                        "UPDATE audit_log SET actor = 'x'",
                        "DELETE FROM audit_log",
                        "TRUNCATE audit_log CASCADE",
                        "UPDATE audit_results SET ok = false",
                        "DELETE FROM audit_results",
                    ] {
                        refused(sqlx::query(sql).execute(&pool).await.map(|_| ()));
                    }
                }
            }
            let store = place.open().await;
            assert_eq!(
                store
                    .audit_log(&AuditQuery {
                        limit: 10,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .len(),
                3
            );
            store.close().await;
        }
    }
}
