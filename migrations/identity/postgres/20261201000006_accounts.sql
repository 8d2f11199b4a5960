-- identity (PostgreSQL): registered accounts (a username, unique whatever its case, and an argon2id password hash),
-- refresh tokens (stored hashed; each belongs to a family, the chain of rotations from one login, so that the reuse
-- of a rotated token revokes the whole family), and capabilities granted to accounts (who granted them and when).
-- Guests keep `kind = 'guest'` and no username until they are upgraded (`kind = 'registered'`).
ALTER TABLE accounts ADD COLUMN username TEXT;
ALTER TABLE accounts ADD COLUMN password_hash TEXT;
CREATE UNIQUE INDEX accounts_username ON accounts(lower(username)) WHERE username IS NOT NULL;

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    account_id  UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    family      UUID NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    -- Set when the token was exchanged for a new pair (it may not be used again).
    rotated_at  BIGINT,
    -- Set on logout, or when a rotated token of its family was presented again.
    revoked_at  BIGINT
);
CREATE INDEX refresh_tokens_account ON refresh_tokens(account_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family);

CREATE TABLE account_capabilities (
    account_id  UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    capability  TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, capability)
);
