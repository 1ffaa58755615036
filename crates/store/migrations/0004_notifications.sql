-- Notifications: what each person wants (per event: now, digest or off), webhooks, and an
-- outbox every message goes through (retried with backoff; a dedupe key makes "the same
-- news" one row however often it is emitted).
CREATE TABLE notify_prefs (
    person_id TEXT NOT NULL REFERENCES people (id),
    event TEXT NOT NULL,
    mode TEXT NOT NULL,
    PRIMARY KEY (person_id, event)
);

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    event TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    dedupe TEXT UNIQUE,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_at);
