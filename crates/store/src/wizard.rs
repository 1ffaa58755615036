//! Requests for new instances (the setup wizard's output) and the comments on them.

use sqlx::Row;

use crate::{new_id, now_ms, Result, Store, StoreError};

/// The states a request for an instance goes through.
pub const STATES: &[&str] = &[
    "new",
    "needs-information",
    "approved",
    "provisioning",
    "live",
    "declined",
    "failed",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRequest {
    pub id: String,
    pub community: String,
    pub email: String,
    pub recipe: String,
    pub version: String,
    /// The wizard's answers as JSON (options and values; never secrets).
    pub answers: String,
    pub domain: String,
    pub state: String,
    pub server: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub decided_by: Option<String>,
}

/// A new request, as the wizard gives it.
#[derive(Debug, Clone)]
pub struct NewInstanceRequest<'a> {
    pub community: &'a str,
    pub email: &'a str,
    pub recipe: &'a str,
    pub version: &'a str,
    pub answers: &'a str,
    pub domain: &'a str,
}

const COLUMNS: &str = "id, community, email, recipe, version, answers, domain, state, server, \
                       created_at, updated_at, decided_by";

fn row(r: &sqlx::any::AnyRow) -> Result<InstanceRequest> {
    Ok(InstanceRequest {
        id: r.try_get("id")?,
        community: r.try_get("community")?,
        email: r.try_get("email")?,
        recipe: r.try_get("recipe")?,
        version: r.try_get("version")?,
        answers: r.try_get("answers")?,
        domain: r.try_get("domain")?,
        state: r.try_get("state")?,
        server: r.try_get("server")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        decided_by: r.try_get("decided_by")?,
    })
}

impl Store {
    pub async fn create_instance_request(
        &self,
        r: &NewInstanceRequest<'_>,
    ) -> Result<InstanceRequest> {
        let taken = sqlx::query(
            "SELECT id FROM instance_requests WHERE domain = $1 AND state NOT IN ('declined', 'failed')",
        )
        .bind(r.domain)
        .fetch_optional(&self.pool)
        .await?;
        if taken.is_some() {
            return Err(StoreError::Invalid(format!(
                "{} is already asked for: choose another address",
                r.domain
            )));
        }
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO instance_requests (id, community, email, recipe, version, answers, domain, \
             state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'new', $8, $8)",
        )
        .bind(&id)
        .bind(r.community)
        .bind(r.email.trim().to_lowercase())
        .bind(r.recipe)
        .bind(r.version)
        .bind(r.answers)
        .bind(r.domain)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(self.instance_request(&id).await?.expect("just inserted"))
    }

    pub async fn instance_request(&self, id: &str) -> Result<Option<InstanceRequest>> {
        let q = format!("SELECT {COLUMNS} FROM instance_requests WHERE id = $1");
        let r = sqlx::query(&q).bind(id).fetch_optional(&self.pool).await?;
        r.as_ref().map(row).transpose()
    }

    /// Requests, newest first; only open ones (not live, declined or failed) with `open`.
    pub async fn instance_requests(&self, open: bool) -> Result<Vec<InstanceRequest>> {
        let q = if open {
            format!(
                "SELECT {COLUMNS} FROM instance_requests WHERE state NOT IN ('live', 'declined', 'failed') \
                 ORDER BY created_at DESC, id DESC"
            )
        } else {
            format!("SELECT {COLUMNS} FROM instance_requests ORDER BY created_at DESC, id DESC")
        };
        let rows = sqlx::query(&q).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// Moves a request from one of `from` to `to` (one conditional UPDATE: two operators
    /// deciding at once, one wins). `false` when it was not in one of `from`.
    pub async fn move_instance_request(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
        by: &str,
    ) -> Result<bool> {
        if let Some(bad) = std::iter::once(&to)
            .chain(from)
            .find(|s| !STATES.contains(s))
        {
            return Err(StoreError::Invalid(format!(
                "unknown request state {bad:?}"
            )));
        }
        // Only names from STATES reach the statement.
        let list = from
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let q = format!(
            "UPDATE instance_requests SET state = $1, decided_by = $2, updated_at = $3 \
             WHERE id = $4 AND state IN ({list})"
        );
        let done = sqlx::query(&q)
            .bind(to)
            .bind(by)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Approves a request onto a server: new, needs-information or failed (tried again) →
    /// provisioning, in one conditional UPDATE (two operators at once: one wins). `false`
    /// when it was not in one of those states.
    pub async fn approve_instance_request(&self, id: &str, server: &str, by: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE instance_requests SET state = 'provisioning', server = $1, decided_by = $2, \
             updated_at = $3 WHERE id = $4 AND state IN ('new', 'needs-information', 'failed')",
        )
        .bind(server)
        .bind(by)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn add_request_comment(&self, request: &str, author: &str, body: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO request_comments (id, request_id, author, body, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(new_id())
        .bind(request)
        .bind(author)
        .bind(body)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A request's comments, oldest first: (author, body, at).
    pub async fn request_comments(&self, request: &str) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT author, body, at FROM request_comments WHERE request_id = $1 ORDER BY at, id",
        )
        .bind(request)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("author")?, r.try_get("body")?, r.try_get("at")?)))
            .collect()
    }
}
