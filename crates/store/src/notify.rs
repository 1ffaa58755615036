//! The notification outbox, webhooks and people's preferences. Sending is the web layer's
//! (`cooper_web::notify`); the store keeps what is owed to whom, so a message survives a
//! restart and is retried until it goes or its tries run out.

use sqlx::Row;

use crate::{new_id, Result, Store, StoreError};

/// How a person wants an event: at once (batched a minute), in the daily digest, or not.
pub const MODES: &[&str] = &["now", "digest", "off"];

/// The pause before try `n` (1-based) again: 30 s, 2 min, 10 min, 1 h, then 6 h.
pub fn backoff_ms(attempts: i64) -> i64 {
    match attempts {
        ..=1 => 30_000,
        2 => 120_000,
        3 => 600_000,
        4 => 3_600_000,
        _ => 6 * 3_600_000,
    }
}

/// After this many tries a message is given up (and the failure logged).
pub const MAX_ATTEMPTS: i64 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// The HMAC key (shown once when made; never on a page again).
    pub secret: String,
    /// Event names, or `*` for all.
    pub events: Vec<String>,
    pub created_by: String,
    pub created_at: i64,
}

impl Webhook {
    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == event)
    }
}

/// A message owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: String,
    /// `email` or `webhook`.
    pub channel: String,
    /// An email address, or a webhook's id.
    pub target: String,
    pub event: String,
    pub subject: String,
    /// Plain text for email; JSON for a webhook.
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub next_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const OUT_COLUMNS: &str =
    "id, channel, target, event, subject, body, state, attempts, next_at, last_error, created_at, sent_at";

fn outgoing(r: &sqlx::any::AnyRow) -> Result<Outgoing> {
    Ok(Outgoing {
        id: r.try_get("id")?,
        channel: r.try_get("channel")?,
        target: r.try_get("target")?,
        event: r.try_get("event")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        next_at: r.try_get("next_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

/// A new message for the outbox.
#[derive(Debug, Clone)]
pub struct NewOutgoing<'a> {
    pub channel: &'a str,
    pub target: &'a str,
    pub event: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// The same key twice is one message (the second is dropped).
    pub dedupe: Option<String>,
    pub send_at: i64,
    /// The body carries a one-time link: it is replaced once the message was delivered.
    pub one_time: bool,
}

/// What a delivered one-time message's body becomes.
pub const DELIVERED_ONE_TIME: &str =
    "(delivered; this message held a one-time link, removed from the store once it was sent)";

impl Store {
    /// A person's mode for an event (`now` when never set).
    pub async fn notify_mode(&self, person_id: &str, event: &str) -> Result<String> {
        let row = sqlx::query("SELECT mode FROM notify_prefs WHERE person_id = $1 AND event = $2")
            .bind(person_id)
            .bind(event)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get("mode")?,
            None => "now".into(),
        })
    }

    pub async fn set_notify_mode(&self, person_id: &str, event: &str, mode: &str) -> Result<()> {
        if !MODES.contains(&mode) {
            return Err(StoreError::Invalid(format!(
                "unknown notification mode {mode:?}: use now, digest or off"
            )));
        }
        sqlx::query("DELETE FROM notify_prefs WHERE person_id = $1 AND event = $2")
            .bind(person_id)
            .bind(event)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO notify_prefs (person_id, event, mode) VALUES ($1, $2, $3)")
            .bind(person_id)
            .bind(event)
            .bind(mode)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Adds a webhook; its secret is made here and returned once in the row.
    pub async fn add_webhook(
        &self,
        url: &str,
        events: &[String],
        created_by: &str,
    ) -> Result<Webhook> {
        let parsed = url::Url::parse(url).map_err(|e| {
            StoreError::Invalid(format!("the webhook address {url:?} is not a URL: {e}"))
        })?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(StoreError::Invalid(format!(
                "the webhook address {url:?} must start with https:// (or http:// on a private network)"
            )));
        }
        let id = new_id();
        let secret = crate::new_secret().0;
        let events = if events.is_empty() {
            vec!["*".to_string()]
        } else {
            events.to_vec()
        };
        sqlx::query(
            "INSERT INTO webhooks (id, url, secret, events, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(url)
        .bind(&secret)
        .bind(events.join(","))
        .bind(created_by)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(self
            .webhooks()
            .await?
            .into_iter()
            .find(|w| w.id == id)
            .expect("just inserted"))
    }

    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        let rows = sqlx::query(
            "SELECT id, url, secret, events, created_by, created_at FROM webhooks ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Webhook {
                    id: r.try_get("id")?,
                    url: r.try_get("url")?,
                    secret: r.try_get("secret")?,
                    events: r
                        .try_get::<String, _>("events")?
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                    created_by: r.try_get("created_by")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Queues a message; `false` when its dedupe key was queued before.
    pub async fn enqueue(&self, m: &NewOutgoing<'_>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO outbox (id, channel, target, event, subject, body, dedupe, state, next_at, created_at, one_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10) ON CONFLICT (dedupe) DO NOTHING",
        )
        .bind(new_id())
        .bind(m.channel)
        .bind(m.target)
        .bind(m.event)
        .bind(m.subject)
        .bind(m.body)
        .bind(&m.dedupe)
        .bind(m.send_at)
        .bind(crate::now_ms())
        .bind(i64::from(m.one_time))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Messages whose time has come, oldest first.
    pub async fn due_messages(&self, now: i64, limit: i64) -> Result<Vec<Outgoing>> {
        let q = format!(
            "SELECT {OUT_COLUMNS} FROM outbox WHERE state = 'pending' AND next_at <= $1 \
             ORDER BY next_at, id LIMIT $2"
        );
        let rows = sqlx::query(&q)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outgoing).collect()
    }

    /// Every message still pending for an email target (a digest takes them all at once).
    pub async fn pending_for(&self, channel: &str, target: &str) -> Result<Vec<Outgoing>> {
        let q = format!(
            "SELECT {OUT_COLUMNS} FROM outbox WHERE state = 'pending' AND channel = $1 AND target = $2 \
             ORDER BY created_at, id"
        );
        let rows = sqlx::query(&q)
            .bind(channel)
            .bind(target)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outgoing).collect()
    }

    pub async fn mark_sent(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET state = 'sent', sent_at = $1, attempts = attempts + 1, \
             body = CASE WHEN one_time = 1 THEN $3 ELSE body END WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .bind(DELIVERED_ONE_TIME)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A try failed: again after the backoff, or given up after [`MAX_ATTEMPTS`]. Returns the
    /// state after.
    pub async fn mark_failed(&self, m: &Outgoing, error: &str, now: i64) -> Result<String> {
        let attempts = m.attempts + 1;
        let state = if attempts >= MAX_ATTEMPTS {
            "failed"
        } else {
            "pending"
        };
        sqlx::query(
            "UPDATE outbox SET state = $1, attempts = $2, next_at = $3, last_error = $4 WHERE id = $5",
        )
        .bind(state)
        .bind(attempts)
        .bind(now + backoff_ms(attempts))
        .bind(error)
        .bind(&m.id)
        .execute(&self.pool)
        .await?;
        Ok(state.to_string())
    }

    /// The newest messages (for the admin's delivery page and tests).
    pub async fn outbox(&self, limit: i64) -> Result<Vec<Outgoing>> {
        let q =
            format!("SELECT {OUT_COLUMNS} FROM outbox ORDER BY created_at DESC, id DESC LIMIT $1");
        let rows = sqlx::query(&q).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(outgoing).collect()
    }

    /// Who hears about an instance or server: `(person, why)` with why `admin` (federation
    /// admins), `operator` (members of the co-op that runs the server) or `community` (admins
    /// of the community the instance is for). Disabled people are left out.
    pub async fn audience(
        &self,
        server: Option<&str>,
        domain: Option<&str>,
    ) -> Result<Vec<(crate::Person, &'static str)>> {
        let mut out: Vec<(crate::Person, &'static str)> = Vec::new();
        let add =
            |p: crate::Person, why: &'static str, out: &mut Vec<(crate::Person, &'static str)>| {
                if !p.disabled && !out.iter().any(|(q, _)| q.id == p.id) {
                    out.push((p, why));
                }
            };
        let q = format!(
            "SELECT {} FROM people WHERE federation_admin = 1",
            crate::people::PERSON_COLUMNS
        );
        for r in sqlx::query(&q).fetch_all(&self.pool).await? {
            add(crate::people::person(&r)?, "admin", &mut out);
        }
        if let Some(server) = server {
            let q = format!(
                "SELECT {} FROM people WHERE id IN (SELECT m.person_id FROM memberships m \
                 JOIN server_owners o ON o.coop_id = m.target_id WHERE m.kind = 'coop' AND m.role = 'operator' AND o.server = $1)",
                crate::people::PERSON_COLUMNS
            );
            for r in sqlx::query(&q).bind(server).fetch_all(&self.pool).await? {
                add(crate::people::person(&r)?, "operator", &mut out);
            }
        }
        if let Some(domain) = domain {
            let q = format!(
                "SELECT {} FROM people WHERE id IN (SELECT m.person_id FROM memberships m \
                 JOIN instance_owners o ON o.community_id = m.target_id \
                 WHERE m.kind = 'community' AND m.role = 'admin' AND o.domain = $1)",
                crate::people::PERSON_COLUMNS
            );
            for r in sqlx::query(&q).bind(domain).fetch_all(&self.pool).await? {
                add(crate::people::person(&r)?, "community", &mut out);
            }
        }
        Ok(out)
    }
}
