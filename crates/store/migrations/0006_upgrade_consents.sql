-- A community's consent to an offered upgrade: the release, who agreed and when, and what
-- became of it. The instance's maintenance window (its `upgrade-window` schedule) applies a
-- consented upgrade, rehearsed on a restored copy first; `applied`, `failed` (production
-- kept its version) or `withdrawn` settle it.
CREATE TABLE upgrade_consents (
    domain TEXT NOT NULL,
    version TEXT NOT NULL,
    given_by TEXT NOT NULL,
    given_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    outcome TEXT NOT NULL,
    job TEXT,
    settled_at BIGINT,
    PRIMARY KEY (domain, version)
);
