-- Requests for a new instance, from the setup wizard (or typed in by an operator from an
-- e-mail): who asks, which release, the options chosen (no secret values), the domain, and
-- where the request stands (new, needs-information, approved, provisioning, live, declined,
-- failed). Comments go between operators and the requester.
CREATE TABLE instance_requests (
    id TEXT PRIMARY KEY,
    community TEXT NOT NULL,
    email TEXT NOT NULL,
    recipe TEXT NOT NULL,
    version TEXT NOT NULL,
    answers TEXT NOT NULL,
    domain TEXT NOT NULL,
    state TEXT NOT NULL,
    server TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    decided_by TEXT
);
CREATE INDEX instance_requests_state ON instance_requests (state, created_at);

CREATE TABLE request_comments (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES instance_requests (id),
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    at BIGINT NOT NULL
);
