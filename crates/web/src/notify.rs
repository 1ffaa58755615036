//! Notifications: e-mail (SMTP through `lettre`: STARTTLS or implicit TLS, with a login when
//! configured) and webhooks (a JSON POST signed with HMAC-SHA256). Everything goes through
//! the store's outbox ([`cooper_store::notify`]): [`Notifier::emit`] decides who hears of an
//! event and queues the messages; [`Notifier::deliver`] sends what is due, several emails to
//! one person as one digest, and retries failures with backoff.
//!
//! Who hears what: federation admins and the operators of the server's co-op hear of
//! everything about it; the admins of the instance's community hear of what concerns them
//! (their requests, the instance going live, upgrades applied or rolled back). Each person may
//! take an event now (batched for a minute), in a daily digest, or not at all.
//!
//! A webhook's request carries `X-Cooper-Event`, `X-Cooper-Delivery` (unique per message,
//! the same on each retry), `X-Cooper-Timestamp` (Unix seconds) and `X-Cooper-Signature:
//! sha256=<hex>`, the HMAC-SHA256 under the webhook's secret of `<timestamp>.<body>`.

use std::time::Duration;

use anyhow::{anyhow, Context};
use cooper_store::notify::NewOutgoing;
use cooper_store::{Outgoing, Store};
use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Serialize;

/// Every event the dashboard announces, and who hears it by default.
pub const EVENTS: &[(&str, &str, Audience)] = &[
    (
        "request.received",
        "A community asked for something",
        Audience::Operators,
    ),
    (
        "request.approved",
        "A request was approved",
        Audience::Everyone,
    ),
    ("instance.live", "An instance is live", Audience::Everyone),
    ("job.failed", "A job failed", Audience::Operators),
    ("backup.failed", "A backup failed", Audience::Operators),
    (
        "verify.failed",
        "A restore check failed",
        Audience::Operators,
    ),
    (
        "schedule.overdue",
        "A scheduled run is overdue",
        Audience::Operators,
    ),
    (
        "upgrade.available",
        "An upgrade is available",
        Audience::Operators,
    ),
    (
        "upgrade.applied",
        "An upgrade was applied",
        Audience::Everyone,
    ),
    (
        "upgrade.rolled_back",
        "An upgrade was rolled back",
        Audience::Everyone,
    ),
    (
        "decision.made",
        "A federation decision was made",
        Audience::Federation,
    ),
    (
        "review.reminder",
        "A federation review is due",
        Audience::Federation,
    ),
    (
        "minutes.published",
        "A meeting's minutes were published",
        Audience::Federation,
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Federation admins and the server's operators.
    Operators,
    /// Those, and the admins of the instance's community.
    Everyone,
    /// Federation admins and the people who speak for member organisations.
    Federation,
}

/// Something that happened.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub event: &'static str,
    pub domain: Option<String>,
    pub server: Option<String>,
    /// One line: "Backup of radio.example.org failed".
    pub title: String,
    /// What happened, what to do.
    pub detail: String,
    /// A path of the dashboard (`/jobs/…`).
    pub link: Option<String>,
    /// The same key twice is one piece of news (an overdue run, an offered release).
    #[serde(skip)]
    pub dedupe: Option<String>,
}

/// How e-mail leaves (from `cooper serve --smtp-*`).
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `starttls` (required), `tls` (implicit) or `none` (loopback relays only).
    pub tls: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub from: String,
    /// A private CA to trust for the server's certificate (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .field("from", &self.from)
            .finish()
    }
}

impl SmtpConfig {
    fn transport(&self) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let mut tls = TlsParameters::builder(self.host.clone());
        if let Some(pem) = &self.ca_pem {
            tls = tls.add_root_certificate(
                Certificate::from_pem(pem).context("reading --smtp-ca-file (PEM)")?,
            );
        }
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
            .port(self.port)
            .timeout(Some(Duration::from_secs(20)));
        b = match self.tls.as_str() {
            "starttls" => b.tls(Tls::Required(tls.build_rustls()?)),
            "tls" => b.tls(Tls::Wrapper(tls.build_rustls()?)),
            "none" => b.tls(Tls::None),
            other => return Err(anyhow!("unknown SMTP TLS mode {other:?}")),
        };
        if let (Some(u), Some(p)) = (&self.user, &self.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(b.build())
    }
}

/// Whether `s` is a mailbox (`name <a@b.c>` or `a@b.c`); the reason when not.
pub fn check_address(s: &str) -> Result<(), String> {
    s.parse::<Mailbox>().map(|_| ()).map_err(|e| e.to_string())
}

/// Queues and sends notifications; `base_url` (the dashboard's public address) makes links.
pub struct Notifier {
    store: Store,
    smtp: Option<SmtpConfig>,
    base_url: Option<String>,
    http: reqwest::Client,
}

fn now_ms() -> i64 {
    cooper_store::now_ms()
}

/// The next 07:00 UTC after `now` (when digests go out).
fn next_digest(now: i64) -> i64 {
    const DAY: i64 = 86_400_000;
    let at = now - now.rem_euclid(DAY) + 7 * 3_600_000;
    if at > now {
        at
    } else {
        at + DAY
    }
}

/// Seconds a message waits so a burst reaches a person as one mail.
pub const BATCH_MS: i64 = 60_000;

type HmacSha256 = Hmac<sha2::Sha256>;

/// The signature header's value for a body at a timestamp.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Notifier {
    pub fn new(store: Store, smtp: Option<SmtpConfig>, base_url: Option<String>) -> Notifier {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Notifier {
            store,
            smtp,
            base_url,
            http,
        }
    }

    /// Queues the messages for an event: an email to each person who wants it, a POST to
    /// each webhook that asked for it. Returns how many messages were queued.
    pub async fn emit(&self, e: &Event) -> anyhow::Result<usize> {
        let audience = EVENTS
            .iter()
            .find(|(n, _, _)| *n == e.event)
            .map(|(_, _, a)| *a)
            .ok_or_else(|| anyhow!("unknown event {}", e.event))?;
        let now = now_ms();
        let mut queued = 0;
        let link = e.link.as_ref().map(|l| match &self.base_url {
            Some(b) => format!("{b}{l}"),
            None => l.clone(),
        });
        let text = format!(
            "{}\n\n{}{}\n",
            e.title,
            e.detail,
            link.as_ref()
                .map(|l| format!("\n\nSee {l}"))
                .unwrap_or_default()
        );
        let people = if audience == Audience::Federation {
            self.store
                .fed_audience()
                .await?
                .into_iter()
                .map(|p| (p, "federation"))
                .collect()
        } else {
            self.store
                .audience(e.server.as_deref(), e.domain.as_deref())
                .await?
        };
        for (person, why) in people {
            if why == "community" && audience == Audience::Operators {
                continue;
            }
            let send_at = match self.store.notify_mode(&person.id, e.event).await?.as_str() {
                "off" => continue,
                "digest" => next_digest(now),
                _ => now + BATCH_MS,
            };
            let dedupe = e
                .dedupe
                .as_ref()
                .map(|d| format!("{d}|email|{}", person.email));
            if self
                .store
                .enqueue(&NewOutgoing {
                    channel: "email",
                    target: &person.email,
                    event: e.event,
                    subject: &e.title,
                    body: &text,
                    dedupe,
                    send_at,
                    one_time: false,
                })
                .await?
            {
                queued += 1;
            }
        }
        for hook in self.store.webhooks().await? {
            if !hook.wants(e.event) {
                continue;
            }
            let body = serde_json::json!({
                "event": e.event,
                "domain": e.domain,
                "server": e.server,
                "title": e.title,
                "detail": e.detail,
                "link": link,
                "at": now,
            })
            .to_string();
            let dedupe = e
                .dedupe
                .as_ref()
                .map(|d| format!("{d}|webhook|{}", hook.id));
            if self
                .store
                .enqueue(&NewOutgoing {
                    channel: "webhook",
                    target: &hook.id,
                    event: e.event,
                    subject: &e.title,
                    body: &body,
                    dedupe,
                    send_at: now,
                    one_time: false,
                })
                .await?
            {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Queues an e-mail to one address that is not (yet) a person here: the community that
    /// asked for an instance. `path` (a page of the dashboard) is made a full link.
    pub async fn tell(
        &self,
        email: &str,
        event: &str,
        subject: &str,
        body: &str,
        path: Option<&str>,
    ) {
        self.queue_mail(email, event, subject, body, path, false)
            .await
    }

    /// As [`Notifier::tell`], for a mail whose link works once (an invitation): the store
    /// keeps its body only until it was delivered.
    pub async fn tell_once(&self, email: &str, event: &str, subject: &str, body: &str, path: &str) {
        self.queue_mail(email, event, subject, body, Some(path), true)
            .await
    }

    async fn queue_mail(
        &self,
        email: &str,
        event: &str,
        subject: &str,
        body: &str,
        path: Option<&str>,
        one_time: bool,
    ) {
        let link = path.map(|l| match &self.base_url {
            Some(b) => format!("{b}{l}"),
            None => l.to_string(),
        });
        let text = format!(
            "{subject}\n\n{body}{}\n",
            link.map(|l| format!("\n\n{l}")).unwrap_or_default()
        );
        let queued = self
            .store
            .enqueue(&NewOutgoing {
                channel: "email",
                target: email,
                event,
                subject,
                body: &text,
                dedupe: None,
                send_at: now_ms(),
                one_time,
            })
            .await;
        if let Err(err) = queued {
            eprintln!("cooper serve: could not queue the mail {subject:?} to {email}: {err:#}");
        }
    }

    /// Emits, and reports a failure to queue on standard error (the event already happened).
    pub async fn emit_logged(&self, e: Event) {
        if let Err(err) = self.emit(&e).await {
            eprintln!(
                "cooper serve: could not queue the notification {:?}: {err:#}",
                e.title
            );
        }
    }

    /// Sends what is due at `now`. Returns (sent, failed tries).
    pub async fn deliver(&self, now: i64) -> anyhow::Result<(usize, usize)> {
        let due = self.store.due_messages(now, 200).await?;
        if due.is_empty() {
            return Ok((0, 0));
        }
        let hooks = self.store.webhooks().await?;
        let (mut sent, mut failed) = (0, 0);
        let mut mailed = std::collections::HashSet::new();
        for m in due {
            match m.channel.as_str() {
                "email" => {
                    if !mailed.insert(m.target.clone()) {
                        continue;
                    }
                    // Everything pending for this person goes in one message (those not yet
                    // due ride along: the person hears of them now rather than twice).
                    let all = self.store.pending_for("email", &m.target).await?;
                    match self.send_mail(&m.target, &all).await {
                        Ok(()) => {
                            for x in &all {
                                self.store.mark_sent(&x.id, now).await?;
                            }
                            sent += all.len();
                        }
                        Err(e) => {
                            for x in &all {
                                self.fail(x, &format!("{e:#}"), now).await?;
                            }
                            failed += all.len();
                        }
                    }
                }
                "webhook" => match self.post(&m, &hooks, now).await {
                    Ok(()) => {
                        self.store.mark_sent(&m.id, now).await?;
                        sent += 1;
                    }
                    Err(e) => {
                        self.fail(&m, &format!("{e:#}"), now).await?;
                        failed += 1;
                    }
                },
                _ => {}
            }
        }
        Ok((sent, failed))
    }

    async fn fail(&self, m: &Outgoing, error: &str, now: i64) -> anyhow::Result<()> {
        if self.store.mark_failed(m, error, now).await? == "failed" {
            eprintln!(
                "cooper serve: gave up sending {:?} to {} after {} tries: {error}",
                m.subject,
                m.target,
                cooper_store::notify::MAX_ATTEMPTS
            );
        }
        Ok(())
    }

    async fn send_mail(&self, to: &str, msgs: &[Outgoing]) -> anyhow::Result<()> {
        let smtp = self
            .smtp
            .as_ref()
            .ok_or_else(|| anyhow!("no SMTP server configured (cooper serve --smtp-url)"))?;
        let (subject, body) = match msgs {
            [one] => (one.subject.clone(), one.body.clone()),
            many => (
                format!("cooper: {} things happened", many.len()),
                many.iter()
                    .map(|m| format!("— {}", m.body.trim_end()))
                    .collect::<Vec<_>>()
                    .join("\n\n")
                    + "\n",
            ),
        };
        let from: Mailbox = smtp
            .from
            .parse()
            .with_context(|| format!("--smtp-from {:?} is not an address", smtp.from))?;
        let to: Mailbox = to
            .parse()
            .with_context(|| format!("{to:?} is not an address"))?;
        let email = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)?;
        smtp.transport()?.send(email).await?;
        Ok(())
    }

    async fn post(
        &self,
        m: &Outgoing,
        hooks: &[cooper_store::Webhook],
        now: i64,
    ) -> anyhow::Result<()> {
        let hook = hooks
            .iter()
            .find(|h| h.id == m.target)
            .ok_or_else(|| anyhow!("the webhook was removed"))?;
        let ts = now / 1000;
        let r = self
            .http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-cooper-event", &m.event)
            .header("x-cooper-delivery", &m.id)
            .header("x-cooper-timestamp", ts.to_string())
            .header("x-cooper-signature", signature(&hook.secret, ts, &m.body))
            .body(m.body.clone())
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(anyhow!("{} answered {}", hook.url, r.status()));
        }
        Ok(())
    }

    /// Delivers every `every` until the process ends.
    pub async fn run(self: std::sync::Arc<Self>, every: Duration) {
        loop {
            if let Err(e) = self.deliver(now_ms()).await {
                eprintln!("cooper serve: delivering notifications: {e:#}");
            }
            tokio::time::sleep(every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let a = signature("k", 1, "{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64, "{a}");
        assert_ne!(a, signature("k", 2, "{}"));
        assert_ne!(a, signature("k", 1, "{ }"));
        assert_ne!(a, signature("j", 1, "{}"));
        // RFC 4231 test case 2's key and data, through the same construction.
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn digests_go_out_at_seven() {
        const H: i64 = 3_600_000;
        assert_eq!(next_digest(0), 7 * H);
        assert_eq!(next_digest(7 * H), 31 * H);
        assert_eq!(next_digest(8 * H), 31 * H);
    }
}
