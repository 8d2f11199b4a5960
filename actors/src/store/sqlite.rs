//! The embedded store: one SQLite file (WAL mode) through sqlx, migrated on open.

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::migrate::DbPool;
use super::{
    is_unique_violation, last_per_character, ledger_lines, like_escape, now_millis, token_hash, Account, AuditEntry,
    AuditOutcome, AuditQuery, AuditRecord, Batch, CharacterInfo, HolderKind, Identity, LedgerAudit, LedgerLine,
    LedgerPage, ParkedAvatar, Refresh, SectorSnapshot, Store, StoreError, Upgrade,
};

/// SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its missing parent directories, and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let pool = Self::pool(path).await?;
        super::migrate::up(&DbPool::Sqlite(pool.clone())).await?;
        Ok(Self { pool })
    }

    /// A pool on the database file (created if needed, with its missing parent directories), without migrating it.
    pub async fn pool(path: &Path) -> Result<SqlitePool, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Database(format!("creating the directory {} of the store: {e}", parent.display()))
            })?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(pool)
    }
}

/// Avatars per statement: a bounded statement keeps SQLite's working memory for it (the JSON text, the join's
/// temporary rows) small; a larger batch is a few statements in the same transaction.
const AVATARS_PER_STATEMENT: usize = 64;

/// `[["character id","sector id","avatar as hex"], ...]`: ids and hex digits need no escaping.
fn avatar_rows_json(rows: &[&ParkedAvatar]) -> String {
    use std::fmt::Write as _;
    let mut json = String::with_capacity(rows.iter().map(|a| 84 + 2 * a.avatar.len()).sum::<usize>() + 2);
    json.push('[');
    for (i, a) in rows.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(json, "[\"{}\",\"{}\",\"", a.character_id, a.sector);
        for b in &a.avatar {
            let _ = write!(json, "{b:02x}");
        }
        json.push_str("\"]");
    }
    json.push(']');
    json
}

const LOAD_SECTORS: &str = "SELECT sector_id, seq, tick, state, epoch, format FROM sector_snapshots";

fn sector_snapshot(r: &sqlx::sqlite::SqliteRow) -> Result<SectorSnapshot, StoreError> {
    Ok(SectorSnapshot {
        sector: parse_uuid(r.get::<&str, _>("sector_id"))?,
        seq: r.get::<i64, _>("seq") as u64,
        tick: r.get::<i64, _>("tick") as u64,
        state: r.get("state"),
        epoch: r.get::<i64, _>("epoch") as u64,
        format: r.get::<i64, _>("format") as u32,
    })
}

fn parse_uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("bad uuid {text:?}: {e}")))
}

const ACCOUNT_BY_ID: &str = "SELECT id, kind, username, password_hash, created_at FROM accounts WHERE id = ?";
const ACCOUNT_BY_USERNAME: &str = "SELECT id, kind, username, password_hash, created_at FROM accounts \
     WHERE lower(username) = lower(?) AND username IS NOT NULL";

impl SqliteStore {
    /// An account row with its capabilities.
    async fn account_of(&self, r: &sqlx::sqlite::SqliteRow) -> Result<Account, StoreError> {
        let id = parse_uuid(r.get::<&str, _>("id"))?;
        let capabilities = sqlx::query_scalar("SELECT capability FROM account_capabilities WHERE account_id = ?")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .collect();
        Ok(Account {
            id,
            kind: r.get("kind"),
            username: r.get("username"),
            password_hash: r.get("password_hash"),
            created_at: r.get("created_at"),
            capabilities,
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn create_guest(&self, name: &str, token: &str, spawn: Option<Uuid>) -> Result<Identity, StoreError> {
        let account_id = Uuid::new_v4();
        let character_id = Uuid::new_v4();
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO accounts (id, name, kind, created_at) VALUES (?, ?, 'guest', ?)")
            .bind(account_id.to_string())
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO characters (id, account_id, name, sector_id, updated_at) VALUES (?, ?, ?, ?, ?)")
            .bind(character_id.to_string())
            .bind(account_id.to_string())
            .bind(name)
            .bind(spawn.map(|s| s.to_string()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO tokens (token_hash, account_id, created_at) VALUES (?, ?, ?)")
            .bind(token_hash(token))
            .bind(account_id.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Identity {
            account_id,
            character_id,
            name: name.to_owned(),
        })
    }

    async fn authenticate(&self, token: &str) -> Result<Option<Identity>, StoreError> {
        let row = sqlx::query(
            "SELECT c.id AS character_id, c.account_id AS account_id, c.name AS name \
             FROM tokens t JOIN characters c ON c.account_id = t.account_id \
             WHERE t.token_hash = ? ORDER BY c.updated_at LIMIT 1",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Identity {
                account_id: parse_uuid(r.get::<&str, _>("account_id"))?,
                character_id: parse_uuid(r.get::<&str, _>("character_id"))?,
                name: r.get("name"),
            })
        })
        .transpose()
    }

    async fn create_account(&self, username: &str, password_hash: &str) -> Result<Option<Uuid>, StoreError> {
        let id = Uuid::new_v4();
        let done = sqlx::query(
            "INSERT INTO accounts (id, name, kind, created_at, username, password_hash) \
             VALUES (?, ?, 'registered', ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(username)
        .bind(now_millis())
        .bind(username)
        .bind(password_hash)
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(Some(id)),
            Err(e) if is_unique_violation(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn account(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(ACCOUNT_BY_ID)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.account_of(&r).await?)),
            None => Ok(None),
        }
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(ACCOUNT_BY_USERNAME)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.account_of(&r).await?)),
            None => Ok(None),
        }
    }

    async fn search_accounts(&self, query: &str, limit: u32) -> Result<Vec<Account>, StoreError> {
        let pattern = format!("%{}%", like_escape(&query.to_lowercase()));
        let rows = sqlx::query(
            "SELECT id, kind, username, password_hash, created_at FROM accounts \
             WHERE id = ? OR lower(username) LIKE ? ESCAPE '\\' ORDER BY created_at, id LIMIT ?",
        )
        .bind(query.trim().to_lowercase())
        .bind(pattern)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.account_of(r).await?);
        }
        Ok(out)
    }

    async fn upgrade_guest(&self, id: Uuid, username: &str, password_hash: &str) -> Result<Upgrade, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE accounts SET kind = 'registered', username = ?, password_hash = ? WHERE id = ? AND kind = 'guest'",
        )
        .bind(username)
        .bind(password_hash)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await;
        let changed = match done {
            Ok(r) => r.rows_affected(),
            Err(e) if is_unique_violation(&e) => return Ok(Upgrade::UsernameTaken),
            Err(e) => return Err(e.into()),
        };
        if changed == 0 {
            return Ok(Upgrade::NotGuest);
        }
        sqlx::query("DELETE FROM tokens WHERE account_id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Upgrade::Done)
    }

    async fn characters(&self, account_id: Uuid) -> Result<Vec<CharacterInfo>, StoreError> {
        let rows = sqlx::query("SELECT id, name FROM characters WHERE account_id = ? ORDER BY name, id")
            .bind(account_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CharacterInfo {
                    id: parse_uuid(r.get::<&str, _>("id"))?,
                    account_id,
                    name: r.get("name"),
                })
            })
            .collect()
    }

    async fn character(&self, id: Uuid) -> Result<Option<CharacterInfo>, StoreError> {
        let row = sqlx::query("SELECT account_id, name FROM characters WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(CharacterInfo {
                id,
                account_id: parse_uuid(r.get::<&str, _>("account_id"))?,
                name: r.get("name"),
            })
        })
        .transpose()
    }

    async fn create_character(
        &self,
        account_id: Uuid,
        name: &str,
        limit: usize,
    ) -> Result<Option<CharacterInfo>, StoreError> {
        let id = Uuid::new_v4();
        // One statement: the count and the insert cannot interleave with another creation.
        let done = sqlx::query(
            "INSERT INTO characters (id, account_id, name, updated_at) \
             SELECT ?, ?, ?, ? WHERE (SELECT count(*) FROM characters WHERE account_id = ?) < ?",
        )
        .bind(id.to_string())
        .bind(account_id.to_string())
        .bind(name)
        .bind(now_millis())
        .bind(account_id.to_string())
        .bind(limit as i64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok((done == 1).then(|| CharacterInfo {
            id,
            account_id,
            name: name.to_owned(),
        }))
    }

    async fn add_refresh_token(
        &self,
        account_id: Uuid,
        token: &str,
        family: Uuid,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, account_id, family, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_hash(token))
        .bind(account_id.to_string())
        .bind(family.to_string())
        .bind(now_millis())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn rotate_refresh_token(&self, token: &str, next: &str, expires_at: i64) -> Result<Refresh, StoreError> {
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        // Claims the token (a write first, so that two concurrent rotations of one token cannot both succeed).
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ? AND rotated_at IS NULL \
             AND revoked_at IS NULL AND expires_at > ? RETURNING account_id, family",
        )
        .bind(now)
        .bind(token_hash(token))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = claimed {
            let account_id = parse_uuid(r.get::<&str, _>("account_id"))?;
            let family: String = r.get("family");
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, account_id, family, created_at, expires_at) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(token_hash(next))
            .bind(account_id.to_string())
            .bind(family)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Refresh::Rotated { account_id });
        }
        let reused = sqlx::query(
            "SELECT account_id, family FROM refresh_tokens WHERE token_hash = ? AND rotated_at IS NOT NULL",
        )
        .bind(token_hash(token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = reused else {
            return Ok(Refresh::Invalid);
        };
        let account_id = parse_uuid(r.get::<&str, _>("account_id"))?;
        sqlx::query("UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(r.get::<String, _>("family"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Refresh::Reused { account_id })
    }

    async fn revoke_refresh_token(&self, token: &str) -> Result<bool, StoreError> {
        let now = now_millis();
        let revoked = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND family = \
             (SELECT family FROM refresh_tokens WHERE token_hash = ? AND rotated_at IS NULL AND revoked_at IS NULL \
             AND expires_at > ?)",
        )
        .bind(now)
        .bind(token_hash(token))
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(revoked > 0)
    }

    async fn grant_capability(&self, account_id: Uuid, capability: &str, granted_by: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO account_capabilities (account_id, capability, granted_by, granted_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (account_id, capability) DO NOTHING",
        )
        .bind(account_id.to_string())
        .bind(capability)
        .bind(granted_by)
        .bind(now_millis())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    async fn revoke_capability(&self, account_id: Uuid, capability: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM account_capabilities WHERE account_id = ? AND capability = ?")
            .bind(account_id.to_string())
            .bind(capability)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(done == 1)
    }

    async fn load_avatar(&self, character_id: Uuid) -> Result<Option<ParkedAvatar>, StoreError> {
        let row = sqlx::query("SELECT sector_id, avatar FROM characters WHERE id = ? AND avatar IS NOT NULL")
            .bind(character_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(ParkedAvatar {
                character_id,
                sector: parse_uuid(r.get::<&str, _>("sector_id"))?,
                avatar: r.get("avatar"),
            })
        })
        .transpose()
    }

    async fn spawn_sector(&self, character_id: Uuid) -> Result<Option<Uuid>, StoreError> {
        let row = sqlx::query("SELECT sector_id FROM characters WHERE id = ? AND sector_id IS NOT NULL")
            .bind(character_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| parse_uuid(r.get::<&str, _>("sector_id"))).transpose()
    }

    async fn save(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (sectors, avatars) = (&batch.sectors, &batch.avatars);
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        for s in sectors {
            // A conditional write, decided by the database: an older version (same epoch, older tick) or an older
            // epoch leaves the stored snapshot alone.
            let written = sqlx::query(
                "INSERT INTO sector_snapshots (sector_id, seq, tick, state, updated_at, epoch, format) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT(sector_id) DO UPDATE SET seq = excluded.seq, tick = excluded.tick, \
                 state = excluded.state, updated_at = excluded.updated_at, epoch = excluded.epoch, \
                 format = excluded.format \
                 WHERE excluded.epoch > sector_snapshots.epoch \
                 OR (excluded.epoch = sector_snapshots.epoch AND excluded.tick >= sector_snapshots.tick)",
            )
            .bind(s.sector.to_string())
            .bind(s.seq as i64)
            .bind(s.tick as i64)
            .bind(&s.state)
            .bind(now)
            .bind(s.epoch as i64)
            .bind(i64::from(s.format))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if written == 0 {
                let newer = sqlx::query("SELECT 1 FROM sector_snapshots WHERE sector_id = ? AND epoch > ?")
                    .bind(s.sector.to_string())
                    .bind(s.epoch as i64)
                    .fetch_optional(&mut *tx)
                    .await?;
                if newer.is_some() {
                    return Err(StoreError::Fenced(s.sector));
                }
            }
        }
        // Avatars in chunks of AVATARS_PER_STATEMENT, each one statement with one bound value (a JSON array of
        // [character, sector, hex avatar]), not one statement per avatar: a 100-ship sector's snapshot is two round
        // trips to SQLite's worker thread instead of a hundred (each a context switch on the server's core), and the
        // statement's text is the same for any chunk, so it is prepared once.
        for rows in last_per_character(avatars).chunks(AVATARS_PER_STATEMENT) {
            sqlx::query(
                "UPDATE characters SET sector_id = v.value ->> 1, avatar = unhex(v.value ->> 2), updated_at = ?2 \
                 FROM json_each(?1) AS v WHERE characters.id = v.value ->> 0",
            )
            .bind(avatar_rows_json(rows))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        // Ledger transactions: written once; a repeat (same id) leaves the stored one, entries and all, as it is.
        let mut fresh = Vec::with_capacity(batch.ledger.len());
        for t in &batch.ledger {
            let inserted = sqlx::query(
                "INSERT INTO ledger_tx (id, at, kind, sector_id, character_id, command_key, reply) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
            )
            .bind(t.id.to_string())
            .bind(t.at)
            .bind(&t.kind)
            .bind(t.sector.map(|s| s.to_string()))
            .bind(t.character.map(|c| c.to_string()))
            .bind(t.key.as_deref())
            .bind(t.reply.as_deref())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                fresh.push(t.clone());
            }
        }
        for rows in ledger_lines(&fresh).chunks(AVATARS_PER_STATEMENT * 4) {
            let json: Vec<(String, i32, &str, String, &str, i64)> = rows
                .iter()
                .map(|(id, line, e)| {
                    (
                        id.to_string(),
                        *line,
                        e.kind.as_str(),
                        e.holder.to_string(),
                        e.asset.as_str(),
                        e.amount,
                    )
                })
                .collect();
            let json = serde_json::to_string(&json).map_err(|e| StoreError::Database(e.to_string()))?;
            sqlx::query(
                "INSERT INTO ledger_entries (tx_id, line, holder_kind, holder_id, asset, amount) \
                 SELECT v.value ->> 0, v.value ->> 1, v.value ->> 2, v.value ->> 3, v.value ->> 4, v.value ->> 5 \
                 FROM json_each(?1) AS v",
            )
            .bind(json)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn keyed_reply(&self, character: Uuid, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT reply FROM ledger_tx WHERE character_id = ? AND command_key = ?")
            .bind(character.to_string())
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<Option<Vec<u8>>, _>("reply").unwrap_or_default()))
    }

    async fn ledger(&self, holder: Uuid, page: LedgerPage) -> Result<Vec<LedgerLine>, StoreError> {
        let (before_at, before_id) = page
            .before
            .map_or((i64::MAX, String::new()), |(at, id)| (at, id.to_string()));
        let rows = sqlx::query(
            "WITH page AS (SELECT DISTINCT t.id AS id, t.at AS at FROM ledger_entries e \
             JOIN ledger_tx t ON t.id = e.tx_id \
             WHERE e.holder_id = ?1 AND (t.at < ?2 OR (t.at = ?2 AND t.id < ?3)) \
             ORDER BY t.at DESC, t.id DESC LIMIT ?4) \
             SELECT t.id AS id, t.at AS at, t.kind AS kind, t.sector_id AS sector_id, t.command_key AS command_key, \
             e.asset AS asset, e.amount AS amount \
             FROM page p JOIN ledger_tx t ON t.id = p.id JOIN ledger_entries e ON e.tx_id = t.id AND e.holder_id = ?1 \
             ORDER BY t.at DESC, t.id DESC, e.line",
        )
        .bind(holder.to_string())
        .bind(before_at)
        .bind(before_id)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LedgerLine {
                    tx: parse_uuid(r.get::<&str, _>("id"))?,
                    at: r.get("at"),
                    kind: r.get("kind"),
                    sector: r.get::<Option<&str>, _>("sector_id").map(parse_uuid).transpose()?,
                    key: r.get("command_key"),
                    asset: r.get("asset"),
                    amount: r.get("amount"),
                })
            })
            .collect()
    }

    async fn balances(&self, holder: Uuid) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        let rows =
            sqlx::query("SELECT asset, SUM(amount) AS total FROM ledger_entries WHERE holder_id = ? GROUP BY asset")
                .bind(holder.to_string())
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| (r.get("asset"), r.get("total"))).collect())
    }

    async fn audit_ledger(&self) -> Result<LedgerAudit, StoreError> {
        let transactions: i64 = sqlx::query("SELECT COUNT(*) AS n FROM ledger_tx")
            .fetch_one(&self.pool)
            .await?
            .get("n");
        let unbalanced: i64 = sqlx::query(
            "SELECT COUNT(DISTINCT tx_id) AS n FROM \
             (SELECT tx_id FROM ledger_entries GROUP BY tx_id, asset HAVING SUM(amount) <> 0)",
        )
        .fetch_one(&self.pool)
        .await?
        .get("n");
        let issued =
            sqlx::query("SELECT asset, -SUM(amount) AS total FROM ledger_entries WHERE holder_kind = ? GROUP BY asset")
                .bind(HolderKind::World.as_str())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| (r.get("asset"), r.get("total")))
                .collect();
        Ok(LedgerAudit {
            transactions: transactions as u64,
            unbalanced: unbalanced as u64,
            issued,
        })
    }

    async fn each_sector(&self, each: &mut (dyn FnMut(SectorSnapshot) + Send)) -> Result<(), StoreError> {
        let mut rows = sqlx::query(LOAD_SECTORS).fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            each(sector_snapshot(&row)?);
        }
        Ok(())
    }

    async fn purge_guests(&self, idle_before: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A guest is idle when its account and every character of it are older than the cutoff (a character's
        // row is rewritten at every logout and every snapshot while it is online).
        sqlx::query("CREATE TEMP TABLE IF NOT EXISTS purge_ids (id TEXT PRIMARY KEY NOT NULL)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM purge_ids").execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO purge_ids SELECT a.id FROM accounts a WHERE a.kind = 'guest' AND a.created_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM characters c WHERE c.account_id = a.id AND c.updated_at >= ?1)",
        )
        .bind(idle_before)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM tokens WHERE account_id IN (SELECT id FROM purge_ids)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM characters WHERE account_id IN (SELECT id FROM purge_ids)")
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM accounts WHERE id IN (SELECT id FROM purge_ids)")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM purge_ids").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(gone)
    }

    async fn audit_begin(&self, record: &AuditRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (id, at, actor, action, target, params) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(record.id.to_string())
            .bind(record.at)
            .bind(&record.actor)
            .bind(&record.action)
            .bind(&record.target)
            .bind(&record.params)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn audit_end(&self, outcome: &AuditOutcome) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_results (audit_id, at, ok, result) VALUES (?, ?, ?, ?)")
            .bind(outcome.id.to_string())
            .bind(outcome.at)
            .bind(outcome.ok)
            .bind(&outcome.result)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let (before_at, before_id) = query
            .before
            .map_or((i64::MAX, String::new()), |(at, id)| (at, id.to_string()));
        let rows = sqlx::query(
            "SELECT l.id AS id, l.at AS at, l.actor AS actor, l.action AS action, l.target AS target, \
             l.params AS params, r.at AS r_at, r.ok AS r_ok, r.result AS r_result \
             FROM audit_log l LEFT JOIN audit_results r ON r.audit_id = l.id \
             WHERE (l.at < ?1 OR (l.at = ?1 AND l.id < ?2)) \
             AND (?3 IS NULL OR l.actor = ?3) AND (?4 IS NULL OR l.action = ?4) \
             AND (?5 IS NULL OR substr(l.action, 1, length(?5)) = ?5) \
             AND (?6 IS NULL OR l.target = ?6) AND (?7 IS NULL OR l.at >= ?7) AND (?8 IS NULL OR l.at <= ?8) \
             ORDER BY l.at DESC, l.id DESC LIMIT ?9",
        )
        .bind(before_at)
        .bind(before_id)
        .bind(&query.actor)
        .bind(&query.action)
        .bind(&query.action_prefix)
        .bind(&query.target)
        .bind(query.since)
        .bind(query.until)
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id = parse_uuid(r.get::<&str, _>("id"))?;
                let outcome = r.get::<Option<i64>, _>("r_at").map(|at| AuditOutcome {
                    id,
                    at,
                    ok: r.get("r_ok"),
                    result: r.get("r_result"),
                });
                Ok(AuditEntry {
                    record: AuditRecord {
                        id,
                        at: r.get("at"),
                        actor: r.get("actor"),
                        action: r.get("action"),
                        target: r.get("target"),
                        params: r.get("params"),
                    },
                    outcome,
                })
            })
            .collect()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
