-- The ledger of each co-op: entries (contributions, costs, labour, payouts), the versions of
-- its value equation, and its monthly settlements. Money is BIGINT minor units with an ISO
-- currency; days are TEXT YYYY-MM-DD and periods TEXT YYYY-MM (both sort as text). An entry
-- is never changed once its month is closed: corrections are new entries naming the old.
CREATE TABLE ledger_entries (
    id TEXT PRIMARY KEY,
    coop_id TEXT NOT NULL REFERENCES coops (id),
    source_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    day TEXT NOT NULL,
    period TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    party TEXT NOT NULL,
    target TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL,
    recurs TEXT NOT NULL,
    until_day TEXT,
    minutes BIGINT NOT NULL,
    note TEXT NOT NULL,
    corrects TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (coop_id, source_key)
);
CREATE INDEX ledger_entries_period ON ledger_entries (coop_id, period);
CREATE INDEX ledger_entries_party ON ledger_entries (coop_id, party);
-- Pledges that may fall due in a month are read apart from the month's entries.
CREATE INDEX ledger_entries_status ON ledger_entries (coop_id, status, period);

CREATE TABLE ledger_rules (
    coop_id TEXT NOT NULL REFERENCES coops (id),
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (coop_id, version)
);

-- A settlement is proposed by one person (with the role they act in) and closed by a second
-- in the other role; `body` is the settlement's JSON, `digest` its SHA-256.
CREATE TABLE ledger_settlements (
    coop_id TEXT NOT NULL REFERENCES coops (id),
    period TEXT NOT NULL,
    state TEXT NOT NULL,
    rule_version BIGINT NOT NULL,
    digest TEXT NOT NULL,
    body TEXT NOT NULL,
    proposed_by TEXT NOT NULL,
    proposed_as TEXT NOT NULL,
    proposed_at BIGINT NOT NULL,
    closed_by TEXT,
    closed_as TEXT,
    closed_at BIGINT,
    PRIMARY KEY (coop_id, period)
);

CREATE TABLE ledger_settings (
    coop_id TEXT PRIMARY KEY REFERENCES coops (id),
    public_summary BIGINT NOT NULL DEFAULT 0
);
