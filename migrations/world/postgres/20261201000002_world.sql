-- world (PostgreSQL; depends on identity): characters with their parked avatars, and sector snapshots (opaque
-- postcard blobs).
CREATE TABLE characters (
    id          UUID PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    sector_id   UUID,
    avatar      BYTEA,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX characters_account ON characters(account_id);

CREATE TABLE sector_snapshots (
    sector_id   UUID PRIMARY KEY,
    seq         BIGINT NOT NULL,
    tick        BIGINT NOT NULL,
    state       BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL
);
