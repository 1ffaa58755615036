-- The federation's practice, part two (issue 15): who speaks for each member organisation,
-- dues (rates set by resolutions, solidarity waivers, payments), meetings on a rhythm with
-- agendas and minutes, personal calendar links, and availability polls.

-- The decision that admitted a member (founding members have none).
ALTER TABLE fed_members ADD COLUMN admitted_by TEXT;

CREATE TABLE fed_member_people (
    member_id TEXT NOT NULL REFERENCES fed_members (id),
    person_id TEXT NOT NULL REFERENCES people (id),
    PRIMARY KEY (member_id, person_id)
);
CREATE INDEX fed_member_people_person ON fed_member_people (person_id);

CREATE TABLE fed_dues_rates (
    id TEXT PRIMARY KEY,
    valid_from TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    -- monthly | yearly
    period TEXT NOT NULL,
    set_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE fed_waivers (
    id TEXT PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES fed_members (id),
    from_day TEXT NOT NULL,
    to_day TEXT,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE fed_dues_payments (
    id TEXT PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES fed_members (id),
    paid_on TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    reference TEXT NOT NULL,
    -- the ledger entry it was matched from, once at most
    ledger_entry TEXT UNIQUE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX fed_dues_payments_member ON fed_dues_payments (member_id);

CREATE TABLE fed_meeting_series (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    rule TEXT NOT NULL,
    first_local TEXT NOT NULL,
    tz TEXT NOT NULL,
    minutes BIGINT NOT NULL,
    -- days without a meeting, comma-separated
    skipped TEXT NOT NULL,
    -- people who take turns facilitating and taking notes, comma-separated person ids
    rota TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE fed_meetings (
    id TEXT PRIMARY KEY,
    series_id TEXT REFERENCES fed_meeting_series (id),
    starts_at BIGINT NOT NULL,
    minutes BIGINT NOT NULL,
    title TEXT NOT NULL,
    facilitator TEXT NOT NULL,
    note_taker TEXT NOT NULL,
    notes TEXT NOT NULL,
    -- member organisation ids present, comma-separated
    attendance TEXT NOT NULL,
    published_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (series_id, starts_at)
);
CREATE INDEX fed_meetings_start ON fed_meetings (starts_at);

CREATE TABLE fed_agenda_items (
    id TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL REFERENCES fed_meetings (id),
    title TEXT NOT NULL,
    details TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    carried_from TEXT,
    review_id TEXT REFERENCES fed_reviews (id),
    -- open | done | carried
    state TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX fed_agenda_items_meeting ON fed_agenda_items (meeting_id, added_at);

CREATE TABLE fed_calendar_links (
    token_hash TEXT PRIMARY KEY,
    person_id TEXT NOT NULL REFERENCES people (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX fed_calendar_links_person ON fed_calendar_links (person_id);

CREATE TABLE fed_polls (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    tz TEXT NOT NULL,
    days TEXT NOT NULL,
    weekly BIGINT NOT NULL,
    from_time TEXT NOT NULL,
    to_time TEXT NOT NULL,
    slot_minutes BIGINT NOT NULL,
    meeting_minutes BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    chosen_slot BIGINT,
    meeting_id TEXT REFERENCES fed_meetings (id)
);

CREATE TABLE fed_poll_people (
    id TEXT PRIMARY KEY,
    poll_id TEXT NOT NULL REFERENCES fed_polls (id),
    name TEXT NOT NULL,
    password_hash TEXT,
    tz TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (poll_id, name)
);

-- One row per slot a person is free in: painting inserts and deletes rows, so two people
-- painting at once never overwrite each other.
CREATE TABLE fed_poll_marks (
    poll_id TEXT NOT NULL REFERENCES fed_polls (id),
    person_id TEXT NOT NULL REFERENCES fed_poll_people (id),
    slot BIGINT NOT NULL,
    PRIMARY KEY (person_id, slot)
);
CREATE INDEX fed_poll_marks_poll ON fed_poll_marks (poll_id);
