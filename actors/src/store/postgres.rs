//! The production store: PostgreSQL through sqlx, migrated on connect.
//!
//! Behaves exactly as the embedded store (the same tests run against both). Ids are native `uuid` columns, blobs
//! `bytea`; a batch of snapshots is one statement per table (arrays bound once and `UNNEST`ed), so a write costs two
//! round trips whatever the number of sectors and ships in it.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::migrate::DbPool;
use super::{
    is_unique_violation, last_per_character, last_per_sector, ledger_lines, like_escape, now_millis, token_hash,
    Account, AuditEntry, AuditOutcome, AuditQuery, AuditRecord, Batch, CharacterInfo, HolderKind, Identity,
    LedgerAudit, LedgerLine, LedgerPage, ParkedAvatar, Refresh, SectorSnapshot, Store, StoreError, Upgrade,
};

/// How long connecting (and every later wait for a pooled connection) may take before it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL-backed [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/database`) and applies migrations. Fails within a few seconds,
    /// naming the server, when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = Self::pool(url).await?;
        super::migrate::up(&DbPool::Postgres(pool.clone())).await?;
        Ok(Self { pool })
    }

    /// A pool on the database, without migrating it.
    pub async fn pool(url: &str) -> Result<PgPool, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Database(format!("invalid database URL: {e}")))?;
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Database(format!("cannot reach PostgreSQL at {target}: {e}")))?;
        Ok(pool)
    }
}

fn uuid_of(row: &sqlx::postgres::PgRow, column: &str) -> Result<Uuid, StoreError> {
    let text: String = row.try_get(column)?;
    parse(&text)
}

const LOAD_SECTORS: &str = "SELECT sector_id::text AS sector_id, seq, tick, state, epoch, format FROM sector_snapshots";

fn sector_snapshot(r: &sqlx::postgres::PgRow) -> Result<SectorSnapshot, StoreError> {
    Ok(SectorSnapshot {
        sector: uuid_of(r, "sector_id")?,
        seq: r.try_get::<i64, _>("seq")? as u64,
        tick: r.try_get::<i64, _>("tick")? as u64,
        state: r.try_get("state")?,
        epoch: r.try_get::<i64, _>("epoch")? as u64,
        format: r.try_get::<i32, _>("format")? as u32,
    })
}

fn parse(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("bad uuid {text:?}: {e}")))
}

const ACCOUNT_BY_ID: &str =
    "SELECT id::text AS id, kind, username, password_hash, created_at FROM accounts WHERE id = $1::uuid";
const ACCOUNT_BY_USERNAME: &str = "SELECT id::text AS id, kind, username, password_hash, created_at FROM accounts \
     WHERE lower(username) = lower($1) AND username IS NOT NULL";

impl PgStore {
    /// An account row with its capabilities.
    async fn account_of(&self, r: &sqlx::postgres::PgRow) -> Result<Account, StoreError> {
        let id = uuid_of(r, "id")?;
        let capabilities =
            sqlx::query_scalar("SELECT capability FROM account_capabilities WHERE account_id = $1::uuid")
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
        Ok(Account {
            id,
            kind: r.try_get("kind")?,
            username: r.try_get("username")?,
            password_hash: r.try_get("password_hash")?,
            created_at: r.try_get("created_at")?,
            capabilities,
        })
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgresql"
    }

    async fn create_guest(&self, name: &str, token: &str, spawn: Option<Uuid>) -> Result<Identity, StoreError> {
        let account_id = Uuid::new_v4();
        let character_id = Uuid::new_v4();
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO accounts (id, name, kind, created_at) VALUES ($1::uuid, $2, 'guest', $3)")
            .bind(account_id.to_string())
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO characters (id, account_id, name, sector_id, updated_at) \
             VALUES ($1::uuid, $2::uuid, $3, $4::uuid, $5)",
        )
        .bind(character_id.to_string())
        .bind(account_id.to_string())
        .bind(name)
        .bind(spawn.map(|s| s.to_string()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO tokens (token_hash, account_id, created_at) VALUES ($1, $2::uuid, $3)")
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
            "SELECT c.id::text AS character_id, c.account_id::text AS account_id, c.name AS name \
             FROM tokens t JOIN characters c ON c.account_id = t.account_id \
             WHERE t.token_hash = $1 ORDER BY c.updated_at LIMIT 1",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Identity {
                account_id: uuid_of(&r, "account_id")?,
                character_id: uuid_of(&r, "character_id")?,
                name: r.try_get("name")?,
            })
        })
        .transpose()
    }

    async fn create_account(&self, username: &str, password_hash: &str) -> Result<Option<Uuid>, StoreError> {
        let id = Uuid::new_v4();
        let done = sqlx::query(
            "INSERT INTO accounts (id, name, kind, created_at, username, password_hash) \
             VALUES ($1::uuid, $2, 'registered', $3, $2, $4)",
        )
        .bind(id.to_string())
        .bind(username)
        .bind(now_millis())
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
            "SELECT id::text AS id, kind, username, password_hash, created_at FROM accounts \
             WHERE id::text = $1 OR lower(username) LIKE $2 ESCAPE '\\' ORDER BY created_at, id LIMIT $3",
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
            "UPDATE accounts SET kind = 'registered', username = $1, password_hash = $2 \
             WHERE id = $3::uuid AND kind = 'guest'",
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
        sqlx::query("DELETE FROM tokens WHERE account_id = $1::uuid")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Upgrade::Done)
    }

    async fn characters(&self, account_id: Uuid) -> Result<Vec<CharacterInfo>, StoreError> {
        let rows =
            sqlx::query("SELECT id::text AS id, name FROM characters WHERE account_id = $1::uuid ORDER BY name, id")
                .bind(account_id.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(CharacterInfo {
                    id: uuid_of(r, "id")?,
                    account_id,
                    name: r.try_get("name")?,
                })
            })
            .collect()
    }

    async fn character(&self, id: Uuid) -> Result<Option<CharacterInfo>, StoreError> {
        let row = sqlx::query("SELECT account_id::text AS account_id, name FROM characters WHERE id = $1::uuid")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(CharacterInfo {
                id,
                account_id: uuid_of(&r, "account_id")?,
                name: r.try_get("name")?,
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
        let mut tx = self.pool.begin().await?;
        // The account's row is locked: two creations for one account cannot both pass the count.
        sqlx::query("SELECT 1 FROM accounts WHERE id = $1::uuid FOR UPDATE")
            .bind(account_id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let done = sqlx::query(
            "INSERT INTO characters (id, account_id, name, updated_at) \
             SELECT $1::uuid, $2::uuid, $3, $4 WHERE (SELECT count(*) FROM characters WHERE account_id = $2::uuid) < $5",
        )
        .bind(id.to_string())
        .bind(account_id.to_string())
        .bind(name)
        .bind(now_millis())
        .bind(limit as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
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
            "INSERT INTO refresh_tokens (token_hash, account_id, family, created_at, expires_at) \
             VALUES ($1, $2::uuid, $3::uuid, $4, $5)",
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
        // Claims the token (one conditional write: two concurrent rotations of one token cannot both succeed).
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $1 RETURNING account_id::text AS account_id, family::text AS family",
        )
        .bind(now)
        .bind(token_hash(token))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = claimed {
            let account_id = uuid_of(&r, "account_id")?;
            let family: String = r.try_get("family")?;
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, account_id, family, created_at, expires_at) \
                 VALUES ($1, $2::uuid, $3::uuid, $4, $5)",
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
            "SELECT account_id::text AS account_id, family FROM refresh_tokens \
             WHERE token_hash = $1 AND rotated_at IS NOT NULL",
        )
        .bind(token_hash(token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = reused else {
            return Ok(Refresh::Invalid);
        };
        let account_id = uuid_of(&r, "account_id")?;
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family = \
             (SELECT family FROM refresh_tokens WHERE token_hash = $2) AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token_hash(token))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Refresh::Reused { account_id })
    }

    async fn revoke_refresh_token(&self, token: &str) -> Result<bool, StoreError> {
        let now = now_millis();
        let revoked = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family = \
             (SELECT family FROM refresh_tokens WHERE token_hash = $2 AND rotated_at IS NULL AND revoked_at IS NULL \
             AND expires_at > $1)",
        )
        .bind(now)
        .bind(token_hash(token))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(revoked > 0)
    }

    async fn grant_capability(&self, account_id: Uuid, capability: &str, granted_by: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO account_capabilities (account_id, capability, granted_by, granted_at) \
             VALUES ($1::uuid, $2, $3, $4) ON CONFLICT (account_id, capability) DO NOTHING",
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
        let done = sqlx::query("DELETE FROM account_capabilities WHERE account_id = $1::uuid AND capability = $2")
            .bind(account_id.to_string())
            .bind(capability)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(done == 1)
    }

    async fn load_avatar(&self, character_id: Uuid) -> Result<Option<ParkedAvatar>, StoreError> {
        let row = sqlx::query(
            "SELECT sector_id::text AS sector_id, avatar FROM characters \
             WHERE id = $1::uuid AND avatar IS NOT NULL AND sector_id IS NOT NULL",
        )
        .bind(character_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ParkedAvatar {
                character_id,
                sector: uuid_of(&r, "sector_id")?,
                avatar: r.try_get("avatar")?,
            })
        })
        .transpose()
    }

    async fn spawn_sector(&self, character_id: Uuid) -> Result<Option<Uuid>, StoreError> {
        let row = sqlx::query(
            "SELECT sector_id::text AS sector_id FROM characters WHERE id = $1::uuid AND sector_id IS NOT NULL",
        )
        .bind(character_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| uuid_of(&r, "sector_id")).transpose()
    }

    async fn save(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (sectors, avatars) = (&batch.sectors, &batch.avatars);
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        // One statement per table, whatever the batch size. A merged batch may hold a sector or a character twice:
        // only its last entry is bound (one `INSERT ... ON CONFLICT` cannot touch a row twice).
        let sectors = last_per_sector(sectors);
        if !sectors.is_empty() {
            let ids: Vec<String> = sectors.iter().map(|s| s.sector.to_string()).collect();
            let epochs: Vec<i64> = sectors.iter().map(|s| s.epoch as i64).collect();
            // A conditional write, decided by the database: an older version (same epoch, older tick) or an older
            // epoch leaves the stored snapshot alone.
            let written = sqlx::query(
                "INSERT INTO sector_snapshots (sector_id, seq, tick, state, updated_at, epoch, format) \
                 SELECT s.id::uuid, s.seq, s.tick, s.state, $5, s.epoch, s.format \
                 FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bytea[], $6::bigint[], $7::int[]) \
                 AS s(id, seq, tick, state, epoch, format) \
                 ON CONFLICT (sector_id) DO UPDATE SET seq = excluded.seq, tick = excluded.tick, \
                 state = excluded.state, updated_at = excluded.updated_at, epoch = excluded.epoch, \
                 format = excluded.format \
                 WHERE excluded.epoch > sector_snapshots.epoch \
                 OR (excluded.epoch = sector_snapshots.epoch AND excluded.tick >= sector_snapshots.tick)",
            )
            .bind(&ids)
            .bind(sectors.iter().map(|s| s.seq as i64).collect::<Vec<_>>())
            .bind(sectors.iter().map(|s| s.tick as i64).collect::<Vec<_>>())
            .bind(sectors.iter().map(|s| s.state.clone()).collect::<Vec<_>>())
            .bind(now)
            .bind(&epochs)
            .bind(sectors.iter().map(|s| s.format as i32).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if written < sectors.len() as u64 {
                let fenced = sqlx::query(
                    "SELECT s.sector_id::text AS sector_id FROM sector_snapshots s \
                     JOIN UNNEST($1::text[], $2::bigint[]) AS b(id, epoch) ON s.sector_id = b.id::uuid \
                     WHERE s.epoch > b.epoch LIMIT 1",
                )
                .bind(&ids)
                .bind(&epochs)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = fenced {
                    return Err(StoreError::Fenced(uuid_of(&row, "sector_id")?));
                }
            }
        }
        let avatars = last_per_character(avatars);
        if !avatars.is_empty() {
            sqlx::query(
                "UPDATE characters SET sector_id = v.sector::uuid, avatar = v.avatar, updated_at = $4 \
                 FROM UNNEST($1::text[], $2::text[], $3::bytea[]) AS v(id, sector, avatar) \
                 WHERE characters.id = v.id::uuid",
            )
            .bind(avatars.iter().map(|a| a.character_id.to_string()).collect::<Vec<_>>())
            .bind(avatars.iter().map(|a| a.sector.to_string()).collect::<Vec<_>>())
            .bind(avatars.iter().map(|a| a.avatar.clone()).collect::<Vec<_>>())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        // Ledger transactions: written once; a repeat (same id) leaves the stored one, entries and all, as it is.
        // A merged batch may carry a transaction twice: only its first copy is bound.
        let mut seen = std::collections::HashSet::new();
        let ledger: Vec<&super::LedgerTx> = batch.ledger.iter().filter(|t| seen.insert(t.id)).collect();
        if !ledger.is_empty() {
            let opt = |o: Option<Uuid>| o.map(|u| u.to_string());
            let owned: Vec<super::LedgerTx> = ledger.iter().map(|t| (*t).clone()).collect();
            let lines = ledger_lines(&owned);
            // Entries only for the transactions this statement inserted.
            sqlx::query(
                "WITH fresh AS (INSERT INTO ledger_tx (id, at, kind, sector_id, character_id, command_key, reply) \
                 SELECT t.id::uuid, t.at, t.kind, t.sector::uuid, t.who::uuid, t.key, t.reply \
                 FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[]) \
                 AS t(id, at, kind, sector, who, key, reply) ON CONFLICT (id) DO NOTHING RETURNING id) \
                 INSERT INTO ledger_entries (tx_id, line, holder_kind, holder_id, asset, amount) \
                 SELECT e.tx::uuid, e.line, e.kind, e.holder::uuid, e.asset, e.amount \
                 FROM UNNEST($8::text[], $9::int[], $10::text[], $11::text[], $12::text[], $13::bigint[]) \
                 AS e(tx, line, kind, holder, asset, amount) WHERE e.tx::uuid IN (SELECT id FROM fresh)",
            )
            .bind(ledger.iter().map(|t| t.id.to_string()).collect::<Vec<_>>())
            .bind(ledger.iter().map(|t| t.at).collect::<Vec<_>>())
            .bind(ledger.iter().map(|t| t.kind.clone()).collect::<Vec<_>>())
            .bind(ledger.iter().map(|t| opt(t.sector)).collect::<Vec<_>>())
            .bind(ledger.iter().map(|t| opt(t.character)).collect::<Vec<_>>())
            .bind(ledger.iter().map(|t| t.key.clone()).collect::<Vec<_>>())
            .bind(ledger.iter().map(|t| t.reply.clone()).collect::<Vec<_>>())
            .bind(lines.iter().map(|(id, _, _)| id.to_string()).collect::<Vec<_>>())
            .bind(lines.iter().map(|(_, line, _)| *line).collect::<Vec<_>>())
            .bind(lines.iter().map(|(_, _, e)| e.kind.as_str()).collect::<Vec<_>>())
            .bind(lines.iter().map(|(_, _, e)| e.holder.to_string()).collect::<Vec<_>>())
            .bind(lines.iter().map(|(_, _, e)| e.asset.clone()).collect::<Vec<_>>())
            .bind(lines.iter().map(|(_, _, e)| e.amount).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn keyed_reply(&self, character: Uuid, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT reply FROM ledger_tx WHERE character_id = $1::uuid AND command_key = $2")
            .bind(character.to_string())
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(r.try_get::<Option<Vec<u8>>, _>("reply")?.unwrap_or_default()))
            .transpose()
    }

    async fn ledger(&self, holder: Uuid, page: LedgerPage) -> Result<Vec<LedgerLine>, StoreError> {
        let (before_at, before_id) = page.before.unwrap_or((i64::MAX, Uuid::nil()));
        let rows = sqlx::query(
            "WITH page AS (SELECT DISTINCT t.id, t.at FROM ledger_entries e JOIN ledger_tx t ON t.id = e.tx_id \
             WHERE e.holder_id = $1::uuid AND (t.at < $2 OR (t.at = $2 AND t.id < $3::uuid)) \
             ORDER BY t.at DESC, t.id DESC LIMIT $4) \
             SELECT t.id::text AS id, t.at, t.kind, t.sector_id::text AS sector_id, t.command_key, e.asset, e.amount \
             FROM page p JOIN ledger_tx t ON t.id = p.id JOIN ledger_entries e ON e.tx_id = t.id AND e.holder_id = $1::uuid \
             ORDER BY t.at DESC, t.id DESC, e.line",
        )
        .bind(holder.to_string())
        .bind(before_at)
        .bind(before_id.to_string())
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let sector: Option<String> = r.try_get("sector_id")?;
                Ok(LedgerLine {
                    tx: uuid_of(r, "id")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    sector: sector.map(|s| parse(&s)).transpose()?,
                    key: r.try_get("command_key")?,
                    asset: r.try_get("asset")?,
                    amount: r.try_get("amount")?,
                })
            })
            .collect()
    }

    async fn balances(&self, holder: Uuid) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT asset, SUM(amount)::bigint AS total FROM ledger_entries WHERE holder_id = $1::uuid GROUP BY asset",
        )
        .bind(holder.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("asset")?, r.try_get("total")?)))
            .collect()
    }

    async fn audit_ledger(&self) -> Result<LedgerAudit, StoreError> {
        let transactions: i64 = sqlx::query("SELECT COUNT(*) AS n FROM ledger_tx")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let unbalanced: i64 = sqlx::query(
            "SELECT COUNT(DISTINCT tx_id) AS n FROM \
             (SELECT tx_id FROM ledger_entries GROUP BY tx_id, asset HAVING SUM(amount) <> 0) AS u",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let issued = sqlx::query(
            "SELECT asset, (-SUM(amount))::bigint AS total FROM ledger_entries WHERE holder_kind = $1 GROUP BY asset",
        )
        .bind(HolderKind::World.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("asset")?, r.try_get("total")?)))
        .collect::<Result<_, StoreError>>()?;
        Ok(LedgerAudit {
            transactions: transactions as u64,
            unbalanced: unbalanced as u64,
            issued,
        })
    }

    async fn each_sector(&self, each: &mut (dyn FnMut(SectorSnapshot) + Send)) -> Result<(), StoreError> {
        // Rows are handed on as they arrive, while the server is still sending the rest.
        let mut rows = sqlx::query(LOAD_SECTORS).fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            each(sector_snapshot(&row)?);
        }
        Ok(())
    }

    async fn purge_guests(&self, idle_before: i64) -> Result<u64, StoreError> {
        // A guest is idle when its account and every character of it are older than the cutoff (a character's row
        // is rewritten at every logout and every snapshot while it is online). Tokens and characters go with the
        // account (ON DELETE CASCADE).
        let gone = sqlx::query(
            "DELETE FROM accounts a WHERE a.kind = 'guest' AND a.created_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM characters c WHERE c.account_id = a.id AND c.updated_at >= $1)",
        )
        .bind(idle_before)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(gone)
    }

    async fn audit_begin(&self, record: &AuditRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target, params) \
             VALUES ($1::uuid, $2, $3, $4, $5, $6::jsonb)",
        )
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
        sqlx::query("INSERT INTO audit_results (audit_id, at, ok, result) VALUES ($1::uuid, $2, $3, $4::jsonb)")
            .bind(outcome.id.to_string())
            .bind(outcome.at)
            .bind(outcome.ok)
            .bind(&outcome.result)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let (before_at, before_id) = query.before.unwrap_or((i64::MAX, Uuid::nil()));
        let rows = sqlx::query(
            "SELECT l.id::text AS id, l.at, l.actor, l.action, l.target, l.params::text AS params, \
             r.at AS r_at, r.ok AS r_ok, r.result::text AS r_result \
             FROM audit_log l LEFT JOIN audit_results r ON r.audit_id = l.id \
             WHERE (l.at < $1 OR (l.at = $1 AND l.id < $2::uuid)) \
             AND ($3::text IS NULL OR l.actor = $3) AND ($4::text IS NULL OR l.action = $4) \
             AND ($5::text IS NULL OR substr(l.action, 1, length($5)) = $5) \
             AND ($6::text IS NULL OR l.target = $6) AND ($7::bigint IS NULL OR l.at >= $7) \
             AND ($8::bigint IS NULL OR l.at <= $8) \
             ORDER BY l.at DESC, l.id DESC LIMIT $9",
        )
        .bind(before_at)
        .bind(before_id.to_string())
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
                let id = uuid_of(r, "id")?;
                let outcome = match r.try_get::<Option<i64>, _>("r_at")? {
                    Some(at) => Some(AuditOutcome {
                        id,
                        at,
                        ok: r.try_get("r_ok")?,
                        result: r.try_get("r_result")?,
                    }),
                    None => None,
                };
                Ok(AuditEntry {
                    record: AuditRecord {
                        id,
                        at: r.try_get("at")?,
                        actor: r.try_get("actor")?,
                        action: r.try_get("action")?,
                        target: r.try_get("target")?,
                        params: r.try_get("params")?,
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

/// Where tests find a PostgreSQL server they may create databases on: `ORRERY_TEST_POSTGRES`, or the local server.
pub const TEST_ADMIN_URL_VAR: &str = "ORRERY_TEST_POSTGRES";
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The admin URL tests use (see [`TEST_ADMIN_URL_VAR`]).
pub fn test_admin_url() -> String {
    std::env::var(TEST_ADMIN_URL_VAR).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// A throwaway database on a PostgreSQL server, dropped (with its connections) when this value is dropped: each
/// test or benchmark gets its own, so they run in parallel.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// The database's URL.
    pub url: String,
}

impl ScratchDatabase {
    /// Creates `orrery_scratch_<random>` through `admin_url` (any database URL on the server, for a role that may
    /// create databases). Fails loudly, naming the server, when it cannot be reached.
    pub async fn create(admin_url: &str) -> Result<Self, StoreError> {
        Self::create_with_prefix(admin_url, "orrery_scratch").await
    }

    /// [`ScratchDatabase::create`], naming it `<prefix>_<random>` (`prefix`: lowercase letters, digits and `_`).
    pub async fn create_with_prefix(admin_url: &str, prefix: &str) -> Result<Self, StoreError> {
        use sqlx::Connection;
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Database(format!("invalid database name prefix {prefix:?}")));
        }
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .map_err(|e| StoreError::Database(format!("cannot reach PostgreSQL at {admin_url}: {e}")))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        let _ = admin.close().await;
        let base = admin_url.split('?').next().unwrap_or(admin_url);
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: format!("{server}/{name}"),
            name,
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside or outside a runtime: a thread of its own with its own small runtime works in both.
        let dropped = std::thread::spawn(move || {
            use sqlx::Connection;
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}
