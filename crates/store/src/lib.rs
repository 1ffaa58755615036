//! cooper's store: everything that is about people rather than servers — people, co-ops,
//! communities and who belongs where, sessions, single-use tokens, jobs and their lines,
//! requests, the audit log and an index of the operation records. `$ABRA_DIR` stays the truth
//! for servers and apps; the store says who may see and do what with them.
//!
//! One query layer over SQLite (the default, `$ABRA_DIR/cooper/cooper.db`, WAL) and Postgres
//! (by URL, for a federation-wide deployment): sqlx's `Any` driver, one set of migrations
//! written in the SQL both understand (TEXT ids made here, BIGINT milliseconds, BIGINT flags,
//! `$n` parameters), embedded and run at open.

pub mod consents;
pub mod federation;
mod jobs;
pub mod ledger;
pub mod notify;
mod people;
pub mod practice;
pub mod schedules;
pub mod wizard;

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

pub use consents::Consent;
pub use jobs::{
    owner_gone, owner_in_words, this_process, AuditEntry, Job, JobLine, JobState, RecordRow,
    Request, BACKUP, DEFAULT_LEASE_MS,
};
pub use ledger::{Closing, ImportOutcome, SettlementRow};
pub use notify::{NewOutgoing, Outgoing, Webhook};
pub use people::{Community, Coop, Membership, Person, Token};
pub use schedules::{Cadence, Schedule, Tick};
pub use wizard::{InstanceRequest, NewInstanceRequest};

/// Errors of the store. Messages say what to check.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {url}: {source} (check the path or the Postgres URL, and that the database accepts connections)")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot bring the store's schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store: a connection pool with the schema brought up to date.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub backend: Backend,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens (creating when missing) the store at `url`: `sqlite://<path>` or
    /// `postgres://…`, and runs the migrations.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Invalid(format!(
                "--database {url:?}: give sqlite://<path> or postgres://user@host/db"
            )));
        };
        let connect_url = match backend {
            // WAL (sqlx's default for SQLite), created when missing, foreign keys on.
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .connect(&connect_url)
            .await
            .map_err(|source| StoreError::Open {
                url: redact_url(url),
                source,
            })?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// The default store of an `$ABRA_DIR`: `cooper/cooper.db`.
    pub async fn open_default(abra_root: &Path) -> Result<Store> {
        let dir = abra_root.join("cooper");
        std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
        Store::open(&format!("sqlite://{}", dir.join("cooper.db").display())).await
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await
    }
}

/// A URL with its password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A new id: time-ordered (13 hex digits of milliseconds) and unguessable (64 random bits).
pub fn new_id() -> String {
    format!("{:013x}{:016x}", now_ms(), rand::random::<u64>())
}

/// Whether an error is a unique constraint refusing a row (SQLite and Postgres say so in
/// their messages).
pub(crate) fn is_unique(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.message().to_lowercase().contains("unique"))
}

/// A new secret token (256 random bits, hex) and the SHA-256 under which it is kept.
pub fn new_secret() -> (String, String) {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let hash = hash_secret(&token);
    (token, hash)
}

/// The SHA-256 of a secret token, as the store keeps it.
pub fn hash_secret(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.trim().as_bytes()))
}

/// Test support: a fresh store on each backend the machine has.
pub mod testing {
    use super::*;

    /// A fresh SQLite store in a temporary directory (kept alive by the returned guard).
    pub async fn sqlite() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(&format!(
            "sqlite://{}",
            dir.path().join("cooper.db").display()
        ))
        .await
        .expect("open the SQLite store");
        (dir, store)
    }

    /// The Postgres server the tests use: `COOPER_TEST_POSTGRES` (a URL to a database whose
    /// user may create databases), set by `scripts/test` after starting Debian's postgresql.
    pub fn postgres_url() -> Option<String> {
        std::env::var("COOPER_TEST_POSTGRES")
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// A fresh Postgres database (created on the test server, named uniquely) with the schema.
    /// `None` when `COOPER_TEST_POSTGRES` is unset — callers decide whether that fails (it does
    /// in CI: see [`require_postgres`]).
    pub async fn postgres() -> Option<Store> {
        postgres_database().await.map(|(_, store)| store)
    }

    /// Like [`postgres`], with the database's URL (for a `cooper serve --database` under test).
    pub async fn postgres_database() -> Option<(String, Store)> {
        let base = postgres_url()?;
        sqlx::any::install_default_drivers();
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "connect to COOPER_TEST_POSTGRES ({:?}): {e}",
                    super::redact_url(&base)
                )
            });
        let name = format!("cooper_test_{}", new_id());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create a test database");
        admin.close().await;
        let url = match base.rfind('/') {
            Some(i) if i > base.find("://").map(|s| s + 2).unwrap_or(0) => {
                format!("{}/{name}", &base[..i])
            }
            _ => format!("{base}/{name}"),
        };
        let store = Store::open(&url).await.expect("open the Postgres store");
        Some((url, store))
    }

    /// In CI (`CI` set) a missing Postgres is a failure, not a skip.
    pub fn require_postgres() -> bool {
        std::env::var_os("CI").is_some() || std::env::var_os("COOPER_REQUIRE_POSTGRES").is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password_in_messages() {
        assert_eq!(
            redact_url("postgres://cooper:s3cret@db/cooper"),
            "postgres://cooper:***@db/cooper"
        );
        assert_eq!(redact_url("sqlite:///x/cooper.db"), "sqlite:///x/cooper.db");
    }

    #[test]
    fn ids_sort_by_time_and_do_not_repeat() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert!(a < b, "{a} < {b}");
        assert_eq!(a.len(), 29);
    }

    #[tokio::test]
    async fn a_bad_url_names_the_forms() {
        let e = Store::open("mysql://x").await.unwrap_err().to_string();
        assert!(e.contains("sqlite://") && e.contains("postgres://"), "{e}");
    }
}
