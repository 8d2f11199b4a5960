-- world (SQLite): the version of the game's encoding of each sector snapshot, so that a newer build can still read
-- the snapshots an older one wrote. Snapshots written before this column existed are format 1.
ALTER TABLE sector_snapshots ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
