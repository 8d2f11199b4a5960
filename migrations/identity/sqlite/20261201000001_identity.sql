-- identity (SQLite): accounts and their login tokens (stored hashed). Public ids are UUIDs stored as text; no
-- incremental id leaves the database. `IF NOT EXISTS`: a data directory made before migrations were owned by
-- modules (the single `0001_init`) already has these tables.
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
