-- identity (PostgreSQL): accounts and their login tokens (stored hashed). Public ids are UUIDs; no incremental id
-- leaves the database. Times are milliseconds since the Unix epoch.
CREATE TABLE accounts (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'guest',
    created_at  BIGINT NOT NULL
);

CREATE TABLE tokens (
    token_hash  TEXT PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX tokens_account ON tokens(account_id);
