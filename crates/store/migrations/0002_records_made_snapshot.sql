-- The restic snapshot an operation made: a backup's, or the safety backup an upgrade takes
-- before it touches anything (that one counts as a backup too, even when the upgrade failed).
-- Filled when records are indexed (every start re-reads the record files).
ALTER TABLE records ADD COLUMN made_snapshot TEXT;
