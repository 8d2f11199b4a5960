-- world (SQLite): the ownership epoch of the writer of each sector snapshot (a fencing token, one per region). A
-- snapshot replaces the stored one only if its epoch is newer, or the same with a tick at least as new; a write from
-- an older epoch is refused (the store reports the writer as fenced). One node holds epoch 1.
ALTER TABLE sector_snapshots ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;
