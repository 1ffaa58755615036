//! The operation envelope: what every operation on an app does around its own work, in one
//! place, for the CLI and the dashboard alike.
//!
//! ```text
//! app (from $ABRA_DIR) → lock (operations that change the app) → record opened
//!   → the body (connects through `Op::connect`, reports through `Op::reporter`,
//!     adds steps to `Op::record`, may look at `Op::cancel`)
//!   → record finished (the body's result, or its own verdict) and saved
//!   → `Reporter::finished` (the dashboard stores it: the audit trail) → lock released
//! ```
//!
//! A body is an async closure over `&mut Op`; the envelope owns everything around it, so no
//! operation can forget to save its record or release its lock, and a front end learns of every
//! finished operation the same way.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cooper_engine::Engine;
use cooper_recipe::abra_dir::{AbraDir, App};

use crate::lock::AppLock;
use crate::record::Record;
use crate::{connect, Reporter, Result};

/// Which operation, on which app, and whether it takes the app's lock.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// The operation's name, as records and locks show it (`app deploy`).
    pub name: &'a str,
    pub domain: &'a str,
    /// `None`: a read that takes no lock. `Some(wait)`: take the app's lock, waiting up to
    /// `wait` for another operation to finish (`None` inside: refuse at once).
    pub lock: Option<Option<Duration>>,
    /// Fired by the front end to ask the operation to stop where it safely can.
    pub cancel: Cancel,
}

impl<'a> Envelope<'a> {
    /// An operation that changes the app: it takes the app's lock, refusing while another
    /// operation holds it.
    pub fn locked(name: &'a str, domain: &'a str) -> Self {
        Envelope {
            name,
            domain,
            lock: Some(None),
            cancel: Cancel::new(),
        }
    }

    /// An operation that only reads: no lock.
    pub fn read(name: &'a str, domain: &'a str) -> Self {
        Envelope {
            name,
            domain,
            lock: None,
            cancel: Cancel::new(),
        }
    }

    /// Lets `cancel` stop the operation where it safely can.
    pub fn cancelled_by(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    /// Waits up to `wait` for the lock instead of refusing at once.
    pub fn waiting(mut self, wait: Option<Duration>) -> Self {
        if self.lock.is_some() {
            self.lock = Some(wait);
        }
        self
    }
}

/// Cancelling an operation: the front end cancels, the operation looks at safe points (before
/// it changes anything, between steps) and stops there, saying what it left.
pub type Cancel = tokio_util::sync::CancellationToken;

/// What a body works with.
pub struct Op<'r> {
    pub abra: &'r AbraDir,
    pub app: App,
    pub record: Record,
    pub reporter: &'r mut dyn Reporter,
    pub cancel: Cancel,
    pub started: Instant,
    /// The record's outcome when it is not the body's result (a verify that ran but found
    /// problems returns its report, yet failed).
    pub verdict: Option<std::result::Result<(), String>>,
}

impl Op<'_> {
    /// Connects to the app's server and records the step.
    pub async fn connect(&mut self) -> Result<Engine> {
        let t = Instant::now();
        let engine = connect(self.abra, &self.app.at.server).await?;
        self.record.step(
            "connect",
            format!("{} ({})", self.app.at.server, engine.endpoint),
            true,
            t,
        );
        Ok(engine)
    }
}

/// A finished operation's value, with where its record went and how long it took.
#[derive(Debug, Clone)]
pub struct Done<T> {
    pub value: T,
    pub record_path: Option<PathBuf>,
    pub elapsed: Duration,
}

/// Runs `body` inside the envelope (see the module documentation).
pub async fn run<T>(
    abra: &AbraDir,
    envelope: Envelope<'_>,
    reporter: &mut dyn Reporter,
    body: impl AsyncFnOnce(&mut Op<'_>) -> Result<T>,
) -> Result<Done<T>> {
    let app = abra.app(envelope.domain)?;
    let lock = match envelope.lock {
        Some(wait) => {
            let server_dir = abra.servers_dir().join(&app.at.server);
            let lock = AppLock::acquire(&server_dir, &app.at.domain, envelope.name, wait)?;
            if let Some(h) = &lock.recovered_from {
                reporter.info(&format!(
                    "note: the previous operation on this app, {h}, ended without finishing; \
                     checking the real state now"
                ));
            }
            Some(lock)
        }
        None => None,
    };
    let record = Record::new(
        envelope.name,
        &app.at.domain,
        &app.at.server,
        &app.recipe.name,
    );
    let mut op = Op {
        abra,
        app,
        record,
        reporter,
        cancel: envelope.cancel,
        started: Instant::now(),
        verdict: None,
    };
    let result = body(&mut op).await;
    let Op {
        mut record,
        reporter,
        started,
        verdict,
        ..
    } = op;
    match verdict {
        Some(v) if result.is_ok() => record.finish(v),
        _ => record.finish_with(&result),
    }
    let record_path = record.save(&abra.root).ok();
    reporter.finished(&record);
    drop(lock);
    result.map(|value| Done {
        value,
        record_path,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Collect, OpsError};

    /// A reporter that keeps the finished records (as the dashboard will).
    #[derive(Default)]
    struct Audit {
        inner: Collect,
        finished: Vec<Record>,
    }

    impl Reporter for Audit {
        fn info(&mut self, line: &str) {
            self.inner.info(line)
        }
        fn progress(&mut self, s: &[cooper_engine::converge::ServiceProgress]) {
            self.inner.progress(s)
        }
        fn confirm(&mut self, o: &crate::Overview) -> bool {
            self.inner.confirm(o)
        }
        fn ask(&mut self, q: &str) -> bool {
            self.inner.ask(q)
        }
        fn finished(&mut self, record: &Record) {
            self.finished.push(record.clone());
        }
    }

    fn abra_with_app() -> (tempfile::TempDir, AbraDir) {
        let dir = tempfile::tempdir().unwrap();
        let servers = dir.path().join("servers/default");
        std::fs::create_dir_all(&servers).unwrap();
        std::fs::write(
            servers.join("a.example.org.env"),
            "TYPE=demo:1.0.0+1\nDOMAIN=a.example.org\n",
        )
        .unwrap();
        let abra = AbraDir::new(dir.path());
        (dir, abra)
    }

    #[tokio::test]
    async fn every_outcome_is_recorded_handed_on_and_unlocked() {
        let (_dir, abra) = abra_with_app();
        let mut audit = Audit::default();
        let done = run(
            &abra,
            Envelope::locked("app try", "a.example.org"),
            &mut audit,
            async |op: &mut Op<'_>| {
                op.record.step("work", "did it", true, Instant::now());
                // The lock is held while the body runs.
                let held = AppLock::acquire(
                    &op.abra.servers_dir().join("default"),
                    "a.example.org",
                    "another",
                    None,
                );
                assert!(held.is_err(), "the app is locked during the body");
                Ok(42)
            },
        )
        .await
        .unwrap();
        assert_eq!(done.value, 42);
        let saved = std::fs::read_to_string(done.record_path.unwrap()).unwrap();
        assert!(
            saved.contains("\"ok\": true") && saved.contains("did it"),
            "{saved}"
        );

        // A failing body: recorded as failed, handed on, lock released.
        let err = run(
            &abra,
            Envelope::locked("app try", "a.example.org"),
            &mut audit,
            async |_op: &mut Op<'_>| -> Result<()> { Err(OpsError::Failed("it broke".into())) },
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "it broke");

        // A body that returns its report but failed (a verify with problems): its verdict.
        run(
            &abra,
            Envelope::read("app check", "a.example.org"),
            &mut audit,
            async |op: &mut Op<'_>| {
                op.verdict = Some(Err("2 problems".into()));
                Ok(())
            },
        )
        .await
        .unwrap();

        let outcomes: Vec<(String, Option<bool>, Option<String>)> = audit
            .finished
            .iter()
            .map(|r| (r.operation.clone(), r.ok, r.error.clone()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("app try".into(), Some(true), None),
                ("app try".into(), Some(false), Some("it broke".into())),
                ("app check".into(), Some(false), Some("2 problems".into())),
            ]
        );
        assert_eq!(crate::record::list(&abra.root, "a.example.org").len(), 3);
        AppLock::acquire(
            &abra.servers_dir().join("default"),
            "a.example.org",
            "after",
            None,
        )
        .expect("the lock was released");
    }
}
