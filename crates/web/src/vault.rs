//! Secret values that pass through the dashboard, held in this process's memory only — never
//! in the store, a record, a log line or a job's arguments:
//!
//! - **given**: the values an operator typed when approving a request for secrets the recipe
//!   cannot generate, until the provisioning job takes them (a restart in between loses them:
//!   the job then fails at its secrets step and says to approve again);
//! - **handover**: the initial credentials a provisioning generated for the community's admin,
//!   until that person reads them — once. After that, or after a restart, or after
//!   [`HANDOVER_KEEP`], only a reset of the secret gives new ones.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cooper_ops::provision::Credential;
use cooper_recipe::secrets::SecretValue;

/// How long unread credentials wait for their reader.
pub const HANDOVER_KEEP: Duration = Duration::from_secs(14 * 24 * 3600);

struct Handover {
    /// Who may read them (the requester's email, lower-case).
    email: String,
    credentials: Vec<Credential>,
    at: Instant,
}

/// Why credentials cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// There are none waiting (read already, expired, never made, or lost with a restart).
    Gone,
    /// They are waiting for someone else.
    NotYours,
}

#[derive(Default)]
pub struct Vault {
    given: Mutex<HashMap<String, Vec<(String, SecretValue)>>>,
    handover: Mutex<HashMap<String, Handover>>,
}

impl Vault {
    /// Keeps the values given for a request until its provisioning takes them.
    pub fn give(&self, request: &str, values: Vec<(String, SecretValue)>) {
        self.given
            .lock()
            .expect("vault lock")
            .insert(request.to_string(), values);
    }

    /// Takes the values given for a request (they are gone from here after).
    pub fn take_given(&self, request: &str) -> Vec<(String, SecretValue)> {
        self.given
            .lock()
            .expect("vault lock")
            .remove(request)
            .unwrap_or_default()
    }

    /// Keeps an instance's initial credentials for the person with `email`.
    pub fn hand_over(&self, domain: &str, email: &str, credentials: Vec<Credential>) {
        if credentials.is_empty() {
            return;
        }
        self.handover.lock().expect("vault lock").insert(
            domain.to_string(),
            Handover {
                email: email.trim().to_lowercase(),
                credentials,
                at: Instant::now(),
            },
        );
    }

    /// Whether credentials wait for `email` on `domain`.
    pub fn waiting_for(&self, domain: &str, email: &str) -> bool {
        let mut map = self.handover.lock().expect("vault lock");
        forget_old(&mut map);
        map.get(domain)
            .is_some_and(|h| h.email == email.trim().to_lowercase())
    }

    /// Hands the credentials to their reader, once.
    pub fn reveal(&self, domain: &str, email: &str) -> Result<Vec<Credential>, Refused> {
        let mut map = self.handover.lock().expect("vault lock");
        forget_old(&mut map);
        match map.get(domain) {
            None => Err(Refused::Gone),
            Some(h) if h.email != email.trim().to_lowercase() => Err(Refused::NotYours),
            Some(_) => Ok(map
                .remove(domain)
                .map(|h| h.credentials)
                .unwrap_or_default()),
        }
    }
}

fn forget_old(map: &mut HashMap<String, Handover>) {
    map.retain(|_, h| h.at.elapsed() < HANDOVER_KEEP);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(v: &str) -> Credential {
        Credential {
            name: "admin_password".into(),
            value: SecretValue::new(v),
        }
    }

    #[test]
    fn credentials_are_shown_once_and_only_to_their_reader() {
        let v = Vault::default();
        v.hand_over("a.example.org", "Ada@Example.org", vec![cred("s3cret")]);
        assert!(v.waiting_for("a.example.org", "ada@example.org"));
        assert_eq!(
            v.reveal("a.example.org", "bob@example.org").unwrap_err(),
            Refused::NotYours
        );
        let got = v.reveal("a.example.org", "ada@example.org").unwrap();
        assert_eq!(got[0].value.expose(), "s3cret");
        assert_eq!(
            v.reveal("a.example.org", "ada@example.org").unwrap_err(),
            Refused::Gone
        );
        assert!(!v.waiting_for("a.example.org", "ada@example.org"));
    }

    #[test]
    fn given_values_are_taken_once() {
        let v = Vault::default();
        v.give("r1", vec![("smtp_password".into(), SecretValue::new("x"))]);
        assert_eq!(v.take_given("r1").len(), 1);
        assert!(v.take_given("r1").is_empty());
    }
}
