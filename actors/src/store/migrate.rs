//! Migrations, owned by module (`migrations/<module>/<backend>/`), applied by one migrator with one version table.
//!
//! Modules, in dependency order: `identity` (accounts, tokens), `world` (characters and their parked ships, sector
//! snapshots; needs identity), `economy` (the double-entry ledger and the replies of keyed commands; needs world), `audit` (the append-only
//! log of admin actions). Each module has the same migrations for both backends. Versions are
//! `YYYYMMDDHHMMSS` stamps, unique across modules, so version order is the order they were written in, which
//! respects dependencies (a migration can only rely on ones written before it). They are merged into one
//! [`sqlx::migrate::Migrator`] (sqlx's `_sqlx_migrations` table records what was applied).
//!
//! A database holding a migration this build does not know was migrated by a newer Orrery: [`up`] refuses it
//! ([`StoreError::TooNew`]) instead of running against a schema it does not understand. An embedded database made
//! before migrations were owned by modules carries the single migration `0001_init` (version 1): its tables are
//! the first migrations of `identity` and `world`, which create them only if missing, so version 1 is retired and
//! those two are recorded in its place.

use sqlx::migrate::{Migration, Migrator};
use sqlx::{PgPool, Row, SqlitePool};

use super::StoreError;

/// The storage backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file (the default).
    Sqlite,
    /// PostgreSQL (`--database-url`).
    Postgres,
}

/// A connection pool of either backend.
#[derive(Debug, Clone)]
pub enum DbPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl DbPool {
    pub fn backend(&self) -> Backend {
        match self {
            DbPool::Sqlite(_) => Backend::Sqlite,
            DbPool::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Opens a pool on the configured database without migrating it (for `orrery migrate`): PostgreSQL when a URL is
/// given, the embedded file otherwise.
pub async fn connect(database_url: Option<&str>, sqlite_file: &std::path::Path) -> Result<DbPool, StoreError> {
    Ok(match database_url {
        Some(url) => DbPool::Postgres(super::postgres::PgStore::pool(url).await?),
        None => DbPool::Sqlite(super::sqlite::SqliteStore::pool(sqlite_file).await?),
    })
}

/// The embedded store's migration from before modules owned migrations.
const LEGACY_VERSION: i64 = 1;

/// Every module's migrations for `backend`, in dependency order.
fn modules(backend: Backend) -> [(&'static str, Migrator); 4] {
    match backend {
        Backend::Sqlite => [
            ("identity", sqlx::migrate!("../migrations/identity/sqlite")),
            ("world", sqlx::migrate!("../migrations/world/sqlite")),
            ("economy", sqlx::migrate!("../migrations/economy/sqlite")),
            ("audit", sqlx::migrate!("../migrations/audit/sqlite")),
        ],
        Backend::Postgres => [
            ("identity", sqlx::migrate!("../migrations/identity/postgres")),
            ("world", sqlx::migrate!("../migrations/world/postgres")),
            ("economy", sqlx::migrate!("../migrations/economy/postgres")),
            ("audit", sqlx::migrate!("../migrations/audit/postgres")),
        ],
    }
}

/// One migration this build knows, and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub module: &'static str,
    pub version: i64,
    pub description: String,
    pub applied: bool,
}

/// What [`status`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Every migration this build knows, in the order they apply.
    pub known: Vec<MigrationStatus>,
    /// Migrations the database has that this build does not know (version, description): a newer Orrery's.
    pub unknown: Vec<(i64, String)>,
}

impl Report {
    pub fn pending(&self) -> usize {
        self.known.iter().filter(|m| !m.applied).count()
    }
}

/// The migrations the database records as applied (none when the version table does not exist yet).
async fn applied(pool: &DbPool) -> Result<Vec<(i64, String)>, StoreError> {
    const LIST: &str = "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version";
    let exists = match pool {
        DbPool::Sqlite(p) => {
            sqlx::query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                .fetch_optional(p)
                .await?
                .is_some()
        }
        DbPool::Postgres(p) => sqlx::query("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(p)
            .await?
            .get::<bool, _>(0),
    };
    if !exists {
        return Ok(Vec::new());
    }
    Ok(match pool {
        DbPool::Sqlite(p) => sqlx::query_as(LIST).fetch_all(p).await?,
        DbPool::Postgres(p) => sqlx::query_as(LIST).fetch_all(p).await?,
    })
}

/// Every migration this build knows and which of them the database has.
pub async fn status(pool: &DbPool) -> Result<Report, StoreError> {
    let applied = applied(pool).await?;
    let mut known = Vec::new();
    for (module, migrator) in modules(pool.backend()) {
        for m in migrator.iter() {
            known.push(MigrationStatus {
                module,
                version: m.version,
                description: m.description.to_string(),
                applied: applied.iter().any(|(v, _)| *v == m.version),
            });
        }
    }
    known.sort_by_key(|m| m.version);
    let legacy = pool.backend() == Backend::Sqlite;
    let unknown = applied
        .into_iter()
        .filter(|(v, _)| {
            let retired = legacy && *v == LEGACY_VERSION;
            !retired && !known.iter().any(|k| k.version == *v)
        })
        .collect();
    Ok(Report { known, unknown })
}

/// Applies every pending migration, in order, in one run of one migrator; returns how many were applied. Refuses a
/// database that has migrations this build does not know.
pub async fn up(pool: &DbPool) -> Result<usize, StoreError> {
    let before = status(pool).await?;
    let legacy = applied(pool).await?.iter().any(|(v, _)| *v == LEGACY_VERSION);
    if !before.unknown.is_empty() {
        let names: Vec<String> = before.unknown.iter().map(|(v, d)| format!("{v} {d}")).collect();
        return Err(StoreError::TooNew(names.join(", ")));
    }
    let all: Vec<Migration> = modules(pool.backend())
        .iter()
        .flat_map(|(_, m)| m.iter().cloned())
        .collect();
    let migrator = Migrator::with_migrations(all);
    let run = match pool {
        DbPool::Sqlite(p) => {
            if legacy {
                // The embedded store's pre-module migration: its tables are identity's and world's first migrations,
                // which create them only if missing and are recorded in its place.
                sqlx::query("DELETE FROM _sqlx_migrations WHERE version = ?")
                    .bind(LEGACY_VERSION)
                    .execute(p)
                    .await?;
            }
            migrator.run(p).await
        }
        DbPool::Postgres(p) => migrator.run(p).await,
    };
    run.map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(before.pending())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::migrate::MigrationType;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::super::postgres::{test_admin_url, PgStore, ScratchDatabase};
    use super::*;

    /// The embedded store's only migration before modules owned them (formerly `migrations/sqlite/0001_init.sql`).
    const LEGACY_INIT: &str = "
        CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'guest', created_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS tokens (token_hash TEXT PRIMARY KEY NOT NULL,
            account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, created_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS characters (id TEXT PRIMARY KEY NOT NULL,
            account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, name TEXT NOT NULL, sector_id TEXT,
            avatar BLOB, updated_at INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS characters_account ON characters(account_id);
        CREATE TABLE IF NOT EXISTS sector_snapshots (sector_id TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL,
            tick INTEGER NOT NULL, state BLOB NOT NULL, updated_at INTEGER NOT NULL);";

    async fn sqlite() -> DbPool {
        let dir = std::env::temp_dir().join(format!("orrery-migrate-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.join("orrery.db"))
            .create_if_missing(true);
        DbPool::Sqlite(SqlitePoolOptions::new().connect_with(options).await.unwrap())
    }

    fn one(version: i64, description: &'static str, sql: &'static str) -> Migrator {
        Migrator::with_migrations(vec![Migration::new(
            version,
            Cow::Borrowed(description),
            MigrationType::Simple,
            sqlx::SqlSafeStr::into_sql_str(sql),
            false,
        )])
    }

    /// A fresh database on each backend (PostgreSQL: a scratch database, dropped with the returned guard).
    async fn fresh() -> Vec<(DbPool, Option<ScratchDatabase>)> {
        let db = ScratchDatabase::create(&test_admin_url())
            .await
            .expect("PostgreSQL for the store tests (scripts/test.sh starts it)");
        let pg = DbPool::Postgres(PgStore::pool(&db.url).await.unwrap());
        vec![(sqlite().await, None), (pg, Some(db))]
    }

    async fn run(m: &Migrator, pool: &DbPool) {
        match pool {
            DbPool::Sqlite(p) => m.run(p).await.unwrap(),
            DbPool::Postgres(p) => m.run(p).await.unwrap(),
        }
    }

    #[tokio::test]
    async fn a_fresh_database_gets_every_module_in_order_then_nothing_more() {
        for (pool, _db) in fresh().await {
            let before = status(&pool).await.unwrap();
            assert_eq!(before.pending(), 7);
            let modules: Vec<&str> = before.known.iter().map(|m| m.module).collect();
            assert_eq!(
                modules,
                ["identity", "world", "world", "world", "economy", "identity", "audit"]
            );
            assert_eq!(up(&pool).await.unwrap(), 7);
            assert_eq!(up(&pool).await.unwrap(), 0);
            assert!(status(&pool).await.unwrap().known.iter().all(|m| m.applied));
        }
    }

    #[tokio::test]
    async fn a_data_directory_from_before_modules_keeps_its_data() {
        let pool = sqlite().await;
        let DbPool::Sqlite(p) = &pool else { unreachable!() };
        one(LEGACY_VERSION, "init", LEGACY_INIT).run(p).await.unwrap();
        sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES ('a', 'Old', 1)")
            .execute(p)
            .await
            .unwrap();
        let before = status(&pool).await.unwrap();
        assert!(
            before.unknown.is_empty(),
            "the legacy migration is known: {:?}",
            before.unknown
        );
        assert_eq!(up(&pool).await.unwrap(), 7);
        let row = sqlx::query("SELECT name, kind, username FROM accounts WHERE id = 'a'")
            .fetch_one(p)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>(0), "Old");
        // The accounts migration carried it forward: still a guest, with no username yet.
        assert_eq!(row.get::<String, _>(1), "guest");
        assert_eq!(row.get::<Option<String>, _>(2), None);
        let after = status(&pool).await.unwrap();
        assert!(after.known.iter().all(|m| m.applied) && after.unknown.is_empty());
    }

    #[tokio::test]
    async fn a_database_migrated_by_a_newer_server_is_refused() {
        for (pool, _db) in fresh().await {
            up(&pool).await.unwrap();
            let mut newer = one(29991231235959, "from the future", "CREATE TABLE future (x INTEGER)");
            newer.set_ignore_missing(true);
            run(&newer, &pool).await;
            let report = status(&pool).await.unwrap();
            assert_eq!(report.unknown, vec![(29991231235959, "from the future".to_string())]);
            match up(&pool).await {
                Err(e @ StoreError::TooNew(_)) => {
                    assert!(e.to_string().contains("29991231235959"), "{e}");
                    assert!(e.to_string().contains("newer Orrery"), "{e}");
                }
                other => panic!("expected TooNew, got {other:?}"),
            }
        }
    }
}
