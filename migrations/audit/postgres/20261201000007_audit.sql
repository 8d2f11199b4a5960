-- audit (PostgreSQL; depends on nothing): the audit log of admin actions. Append-only: an action is one row in
-- `audit_log` written BEFORE it takes effect (who, what, target, parameters) and, once it has run, one row in
-- `audit_results` (ok and the answer, or the error). An action whose process died in between has no result row
-- (read as `unknown`). Triggers refuse every UPDATE, DELETE and TRUNCATE of both tables.
CREATE TABLE audit_log (
    id      UUID PRIMARY KEY,
    -- Milliseconds since the Unix epoch.
    at      BIGINT NOT NULL,
    -- `account:<uuid>` or `token:<name>`.
    actor   TEXT NOT NULL,
    -- e.g. `region.stop`.
    action  TEXT NOT NULL,
    target  TEXT,
    params  JSONB NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at DESC, id DESC);
CREATE INDEX audit_log_actor ON audit_log(actor, at DESC);
CREATE INDEX audit_log_target ON audit_log(target, at DESC);

CREATE TABLE audit_results (
    audit_id  UUID PRIMARY KEY REFERENCES audit_log(id),
    at        BIGINT NOT NULL,
    ok        BOOLEAN NOT NULL,
    -- The JSON answer when ok, else `{"status", "code", "message"}`.
    result    JSONB NOT NULL
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_results_append_only BEFORE UPDATE OR DELETE ON audit_results
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_results_no_truncate BEFORE TRUNCATE ON audit_results
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
