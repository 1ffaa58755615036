-- cooper's store, first schema. The same text runs on SQLite and Postgres: ids are TEXT made by
-- cooper, times are BIGINT milliseconds since the epoch, flags are BIGINT 0/1.

CREATE TABLE people (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT,
    oidc_subject TEXT UNIQUE,
    federation_admin BIGINT NOT NULL DEFAULT 0,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE coops (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE communities (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    coop_id TEXT NOT NULL REFERENCES coops (id),
    created_at BIGINT NOT NULL
);

-- Who belongs where: kind 'coop' (role 'operator') or 'community' (role 'admin' | 'member').
CREATE TABLE memberships (
    person_id TEXT NOT NULL REFERENCES people (id),
    kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (person_id, kind, target_id)
);

-- Which co-op operates a server of $ABRA_DIR (servers/<name>).
CREATE TABLE server_owners (
    server TEXT PRIMARY KEY,
    coop_id TEXT NOT NULL REFERENCES coops (id)
);

-- Which community an app of $ABRA_DIR (by domain) is for.
CREATE TABLE instance_owners (
    domain TEXT PRIMARY KEY,
    community_id TEXT NOT NULL REFERENCES communities (id)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    person_id TEXT,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_person ON sessions (person_id);

-- Single-use secrets (setup token, invitations): only their SHA-256 is kept.
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    email TEXT,
    kind TEXT,
    target_id TEXT,
    role TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    domain TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    outcome TEXT,
    record_path TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_domain ON jobs (domain, created_at);
CREATE INDEX jobs_state ON jobs (state);

CREATE TABLE job_lines (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- Requests by community admins that an operator approves (upgrade, restore, export).
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    domain TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    job_id TEXT
);
CREATE INDEX requests_domain ON requests (domain);

CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    domain TEXT,
    server TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);

-- An index of $ABRA_DIR/cooper/records (rebuilt from the files when missing).
CREATE TABLE records (
    path TEXT PRIMARY KEY,
    domain TEXT NOT NULL,
    operation TEXT NOT NULL,
    started TEXT NOT NULL,
    ok BIGINT,
    error TEXT
);
CREATE INDEX records_domain ON records (domain, started);
