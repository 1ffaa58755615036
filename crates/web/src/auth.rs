//! Who is asking: passwords (argon2id), sessions kept in the store (through `tower-sessions`),
//! the CSRF token of each session, and the login rate limit.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use cooper_store::{hash_secret, Store};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::Session;

/// Session keys.
pub const PERSON: &str = "person";
pub const CSRF: &str = "csrf";

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// Hashes a password with argon2id (the crate's defaults: 19 MiB, 2 passes, 1 lane).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    // A fresh random salt from the OS for each hash.
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Checks a password against its argon2 PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A password someone chose: long enough, and not the email.
pub fn check_new_password(password: &str, email: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!(
            "the password needs at least {MIN_PASSWORD} characters (a few words make a good one)"
        ));
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err("the password cannot be the email address".into());
    }
    Ok(())
}

/// The CSRF token of a session, made on first use.
pub async fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(CSRF).await {
        return t;
    }
    let t = cooper_store::new_secret().0;
    let _ = session.insert(CSRF, &t).await;
    t
}

/// Whether `given` is the session's CSRF token (compared in constant time).
pub async fn csrf_ok(session: &Session, given: &str) -> bool {
    match session.get::<String>(CSRF).await {
        Ok(Some(expected)) => same_secret(&expected, given),
        _ => false,
    }
}

/// Compares two secrets in constant time (for equal lengths).
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Sessions in cooper's store. The cookie's id is kept only as its SHA-256, with the person it
/// belongs to beside it so all of a person's sessions can be revoked at once.
#[derive(Debug, Clone)]
pub struct StoreSessions(pub Store);

fn key(id: &Id) -> String {
    hash_secret(&id.to_string())
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<(Option<String>, String, i64)> {
    let person = record
        .data
        .get(PERSON)
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let data = serde_json::to_string(&record.data)
        .map_err(|e| session_store::Error::Encode(e.to_string()))?;
    let expires = (record.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64;
    Ok((person, data, expires))
}

#[async_trait::async_trait]
impl SessionStore for StoreSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let (person, data, expires) = encode(record)?;
        // An id already taken gets a new one (never reuse another's session).
        loop {
            if self
                .0
                .session_create(&key(&record.id), person.as_deref(), &data, expires)
                .await
                .map_err(backend)?
            {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (person, data, expires) = encode(record)?;
        self.0
            .session_save(&key(&record.id), person.as_deref(), &data, expires)
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(data) = self.0.session_load(&key(id)).await.map_err(backend)? else {
            return Ok(None);
        };
        let data =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            // The store only returns unexpired rows; the manager sets the next expiry on save.
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(12),
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.0.session_delete(&key(id)).await.map_err(backend)
    }
}

/// Login attempts: per email address and per client address.
pub struct LoginLimit {
    by_email: DefaultKeyedRateLimiter<String>,
    by_client: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginLimit {
    /// `per_minute` tries per email (and four times as many per client address), refilled
    /// steadily.
    pub fn new(per_minute: u32) -> Arc<LoginLimit> {
        let email = NonZeroU32::new(per_minute.max(1)).expect("non-zero");
        let client = NonZeroU32::new(per_minute.max(1) * 4).expect("non-zero");
        Arc::new(LoginLimit {
            by_email: RateLimiter::keyed(Quota::per_minute(email)),
            by_client: RateLimiter::keyed(Quota::per_minute(client)),
        })
    }

    /// Whether another try is allowed now (each call counts as a try).
    pub fn allow(&self, email: &str, client: Option<IpAddr>) -> bool {
        let email_ok = self
            .by_email
            .check_key(&email.trim().to_lowercase())
            .is_ok();
        let client_ok = client.is_none_or(|ip| self.by_client.check_key(&ip).is_ok());
        email_ok && client_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse battery!", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn new_passwords_are_checked() {
        assert!(check_new_password("short", "a@b.c")
            .unwrap_err()
            .contains("12 characters"));
        assert!(check_new_password("someone@example.org", "someone@example.org").is_err());
        assert!(check_new_password("four words make one", "a@b.c").is_ok());
    }

    #[test]
    fn the_login_limit_stops_a_guesser() {
        let l = LoginLimit::new(3);
        let ip = Some("10.0.0.1".parse().unwrap());
        assert!((0..3).all(|_| l.allow("a@example.org", ip)));
        assert!(!l.allow("A@example.org", ip), "same email, any case");
        assert!(
            l.allow("b@example.org", ip),
            "another account is not locked"
        );
    }
}
