-- world (SQLite; depends on identity): characters with their parked avatars, and sector snapshots (opaque postcard
-- blobs). `IF NOT EXISTS`: a data directory made before migrations were owned by modules already has these tables.
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
