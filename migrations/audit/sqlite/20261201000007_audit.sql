-- audit (SQLite; depends on nothing): the audit log of admin actions. Append-only: an action is one row in
-- `audit_log` written BEFORE it takes effect (who, what, target, parameters) and, once it has run, one row in
-- `audit_results` (ok and the answer, or the error). An action whose process died in between has no result row
-- (read as `unknown`). Triggers refuse every UPDATE and DELETE of both tables.
CREATE TABLE audit_log (
    id      TEXT PRIMARY KEY NOT NULL,
    -- Milliseconds since the Unix epoch.
    at      INTEGER NOT NULL,
    -- `account:<uuid>` or `token:<name>`.
    actor   TEXT NOT NULL,
    -- e.g. `region.stop`.
    action  TEXT NOT NULL,
    target  TEXT,
    -- JSON text.
    params  TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at DESC, id DESC);
CREATE INDEX audit_log_actor ON audit_log(actor, at DESC);
CREATE INDEX audit_log_target ON audit_log(target, at DESC);

CREATE TABLE audit_results (
    audit_id  TEXT PRIMARY KEY NOT NULL REFERENCES audit_log(id),
    at        INTEGER NOT NULL,
    ok        INTEGER NOT NULL,
    -- JSON text: the answer when ok, else `{"status", "code", "message"}`.
    result    TEXT NOT NULL
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE on audit_log refused'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE on audit_log refused'); END;
CREATE TRIGGER audit_results_no_update BEFORE UPDATE ON audit_results
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE on audit_results refused'); END;
CREATE TRIGGER audit_results_no_delete BEFORE DELETE ON audit_results
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE on audit_results refused'); END;
