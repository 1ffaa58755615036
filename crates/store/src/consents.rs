//! A community's consent to an upgrade, applied in the instance's maintenance window.

use sqlx::Row;

use crate::{Result, Store, StoreError};

/// What a consent can become.
pub const STATES: &[&str] = &["consented", "applied", "failed", "withdrawn"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub domain: String,
    pub version: String,
    pub given_by: String,
    pub given_at: i64,
    /// `consented` (waiting for the window), `applied`, `failed`, `withdrawn`.
    pub state: String,
    /// What the window's run said (empty while waiting).
    pub outcome: String,
    pub job: Option<String>,
    pub settled_at: Option<i64>,
}

const COLUMNS: &str = "domain, version, given_by, given_at, state, outcome, job, settled_at";

fn row(r: &sqlx::any::AnyRow) -> Result<Consent> {
    Ok(Consent {
        domain: r.try_get("domain")?,
        version: r.try_get("version")?,
        given_by: r.try_get("given_by")?,
        given_at: r.try_get("given_at")?,
        state: r.try_get("state")?,
        outcome: r.try_get("outcome")?,
        job: r.try_get("job")?,
        settled_at: r.try_get("settled_at")?,
    })
}

impl Store {
    /// Records that `by` agrees to upgrading `domain` to `version` in its maintenance window
    /// (again, after a failure or a withdrawal). Any other consent of the instance still
    /// waiting is withdrawn: one release waits at a time.
    pub async fn give_consent(
        &self,
        domain: &str,
        version: &str,
        by: &str,
        now: i64,
    ) -> Result<()> {
        if version.trim().is_empty() {
            return Err(StoreError::Invalid("which release is agreed to?".into()));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE upgrade_consents SET state = 'withdrawn', settled_at = $1, \
             outcome = 'a newer release was agreed to' \
             WHERE domain = $2 AND state = 'consented' AND version <> $3",
        )
        .bind(now)
        .bind(domain)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO upgrade_consents (domain, version, given_by, given_at, state, outcome) \
             VALUES ($1, $2, $3, $4, 'consented', '') \
             ON CONFLICT (domain, version) DO UPDATE SET given_by = $3, given_at = $4, \
             state = 'consented', outcome = '', job = NULL, settled_at = NULL",
        )
        .bind(domain)
        .bind(version)
        .bind(by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Withdraws a consent still waiting; `false` when there was none (applied already, say).
    pub async fn withdraw_consent(&self, domain: &str, version: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE upgrade_consents SET state = 'withdrawn', settled_at = $1, \
             outcome = 'withdrawn before the window' \
             WHERE domain = $2 AND version = $3 AND state = 'consented'",
        )
        .bind(now)
        .bind(domain)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The consent waiting for the instance's window, if any.
    pub async fn waiting_consent(&self, domain: &str) -> Result<Option<Consent>> {
        let q = format!(
            "SELECT {COLUMNS} FROM upgrade_consents WHERE domain = $1 AND state = 'consented' \
             ORDER BY given_at DESC LIMIT 1"
        );
        sqlx::query(&q)
            .bind(domain)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| row(&r))
            .transpose()
    }

    /// The instance's consents, newest first.
    pub async fn consents(&self, domain: &str) -> Result<Vec<Consent>> {
        let q = format!(
            "SELECT {COLUMNS} FROM upgrade_consents WHERE domain = $1 ORDER BY given_at DESC"
        );
        sqlx::query(&q)
            .bind(domain)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(row)
            .collect()
    }

    /// Settles a waiting consent with what the window's run did; `false` when it was not
    /// waiting any more (withdrawn meanwhile).
    pub async fn settle_consent(
        &self,
        domain: &str,
        version: &str,
        state: &str,
        outcome: &str,
        job: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        if !matches!(state, "applied" | "failed") {
            return Err(StoreError::Invalid(format!(
                "a consent settles as applied or failed, not {state:?}"
            )));
        }
        let r = sqlx::query(
            "UPDATE upgrade_consents SET state = $1, outcome = $2, job = $3, settled_at = $4 \
             WHERE domain = $5 AND version = $6 AND state = 'consented'",
        )
        .bind(state)
        .bind(outcome)
        .bind(job)
        .bind(now)
        .bind(domain)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
