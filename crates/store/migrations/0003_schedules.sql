-- Schedules: per instance and kind (backup, verify, test, upgrade-check), when the next run is
-- due and whether an earlier one is still owed. A run is owed from the time it fell due
-- (pending_since) until a job for it succeeds; a run that could not happen stays owed, is
-- shown overdue and is retried — never silently skipped.
CREATE TABLE schedules (
    domain TEXT NOT NULL,
    kind TEXT NOT NULL,
    every_ms BIGINT NOT NULL,
    window_start_ms BIGINT NOT NULL,
    window_ms BIGINT NOT NULL,
    offset_ms BIGINT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    next_due BIGINT NOT NULL,
    pending_since BIGINT,
    last_job TEXT,
    last_ok_at BIGINT,
    retry_at BIGINT,
    PRIMARY KEY (domain, kind)
);
CREATE INDEX schedules_due ON schedules (next_due);

-- A co-op's defaults for new instances ('' = the federation's).
CREATE TABLE schedule_defaults (
    coop_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    every_ms BIGINT NOT NULL,
    window_start_ms BIGINT NOT NULL,
    window_ms BIGINT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (coop_id, kind)
);

-- Leases: one holder at a time across every cooper serve on this store (the scheduler's).
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
