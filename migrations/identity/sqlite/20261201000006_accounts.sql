-- identity (SQLite): registered accounts (a username, unique whatever its case, and an argon2id password hash),
-- refresh tokens (stored hashed; each belongs to a family, the chain of rotations from one login, so that the reuse
-- of a rotated token revokes the whole family), and capabilities granted to accounts (who granted them and when).
-- Guests keep `kind = 'guest'` and no username until they are upgraded (`kind = 'registered'`). Existing data
-- directories keep every account: the new columns are NULL for them.
ALTER TABLE accounts ADD COLUMN username TEXT;
ALTER TABLE accounts ADD COLUMN password_hash TEXT;
CREATE UNIQUE INDEX accounts_username ON accounts(lower(username)) WHERE username IS NOT NULL;

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    family      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    -- Set when the token was exchanged for a new pair (it may not be used again).
    rotated_at  INTEGER,
    -- Set on logout, or when a rotated token of its family was presented again.
    revoked_at  INTEGER
);
CREATE INDEX refresh_tokens_account ON refresh_tokens(account_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family);

CREATE TABLE account_capabilities (
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    capability  TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, capability)
);
