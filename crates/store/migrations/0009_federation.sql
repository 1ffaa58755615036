-- The federation's practice (issue 15): its rules (versioned TOML), member organisations,
-- proposals with every change kept, one vote per member organisation, and reviews that stay
-- overdue until a meeting holds them.

CREATE TABLE fed_rules (
    version BIGINT PRIMARY KEY,
    body TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE fed_members (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- founding | member | solidarity | left
    status TEXT NOT NULL,
    joined_on TEXT NOT NULL,
    left_on TEXT,
    contact TEXT NOT NULL,
    coop_id TEXT REFERENCES coops (id),
    created_at BIGINT NOT NULL
);

CREATE TABLE fed_proposals (
    id TEXT PRIMARY KEY,
    -- R001, R002, … once passed
    number TEXT UNIQUE,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    details TEXT NOT NULL,
    size TEXT NOT NULL,
    budget TEXT NOT NULL,
    proposed_by TEXT NOT NULL,
    proposed_at BIGINT NOT NULL,
    deadline BIGINT NOT NULL,
    -- open | passed | failed | blocked | withdrawn
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    decided_at BIGINT
);

CREATE TABLE fed_proposal_history (
    proposal_id TEXT NOT NULL REFERENCES fed_proposals (id),
    at BIGINT NOT NULL,
    by_whom TEXT NOT NULL,
    change TEXT NOT NULL
);
CREATE INDEX fed_proposal_history_proposal ON fed_proposal_history (proposal_id, at);

CREATE TABLE fed_votes (
    proposal_id TEXT NOT NULL REFERENCES fed_proposals (id),
    member_id TEXT NOT NULL REFERENCES fed_members (id),
    vote TEXT NOT NULL,
    comment TEXT NOT NULL,
    at BIGINT NOT NULL,
    by_whom TEXT NOT NULL,
    PRIMARY KEY (proposal_id, member_id)
);

CREATE TABLE fed_reviews (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    due TEXT NOT NULL,
    notice_days BIGINT NOT NULL,
    remind_every_days BIGINT NOT NULL,
    held_on TEXT,
    outcome TEXT,
    last_reminded TEXT,
    created_at BIGINT NOT NULL
);
