-- economy (PostgreSQL; depends on world): the double-entry ledger. Every change of an asset that a client was told
-- succeeded is one transaction (`ledger_tx`) whose entries sum to zero per asset, written in the same database
-- transaction as the state it changed. Transaction ids are idempotent: a keyed command's id is derived from its
-- character and key, an opening's from its holder, so writing one again (a retried batch, a replayed journal)
-- changes nothing. Append-only: nothing updates or deletes these rows.
CREATE TABLE ledger_tx (
    id            UUID PRIMARY KEY,
    at            BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    sector_id     UUID,
    character_id  UUID,
    command_key   TEXT,
    -- The reply the client was sent (the game's encoded event), answered again to a repeat of a keyed command.
    reply         BYTEA
);
CREATE UNIQUE INDEX ledger_tx_command_key ON ledger_tx(character_id, command_key) WHERE command_key IS NOT NULL;

CREATE TABLE ledger_entries (
    tx_id        UUID NOT NULL REFERENCES ledger_tx(id),
    line         INTEGER NOT NULL,
    -- `character`, `station` or `world` (the issuer).
    holder_kind  TEXT NOT NULL,
    holder_id    UUID NOT NULL,
    asset        TEXT NOT NULL,
    amount       BIGINT NOT NULL,
    PRIMARY KEY (tx_id, line),
    CHECK (amount <> 0)
);
CREATE INDEX ledger_entries_holder ON ledger_entries(holder_id);
