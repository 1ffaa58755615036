-- Several `cooper serve` on one store (issue 16): a running job is held by one process (its
-- owner, `<host>:<pid>`) for as long as that process renews its lease. A job whose lease ran
-- out, or whose owner is a process of this machine that is gone, is marked interrupted by any
-- other process; `attempts` counts how often the job was taken (once, unless something is wrong).
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
ALTER TABLE jobs ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_owner ON jobs (owner, state);
