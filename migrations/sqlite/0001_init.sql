-- Orrery embedded store (SQLite). Public ids are UUIDs stored as text; no incremental id leaves the database.
CREATE TABLE IF NOT EXISTS accounts (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'guest',
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS characters (
    id          TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    sector_id   TEXT,
    avatar      BLOB,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS characters_account ON characters(account_id);

CREATE TABLE IF NOT EXISTS sector_snapshots (
    sector_id   TEXT PRIMARY KEY NOT NULL,
    seq         INTEGER NOT NULL,
    tick        INTEGER NOT NULL,
    state       BLOB NOT NULL,
    updated_at  INTEGER NOT NULL
);
