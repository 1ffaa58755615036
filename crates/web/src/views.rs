//! What pages show: the apps of `$ABRA_DIR` (indexed, refreshed every few seconds), rows of the
//! instance list with their live state and overdue flags, and the askama templates (compiled
//! into the binary; HTML-escaped by default).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use cooper_recipe::abra_dir::AbraDir;

/// One app of `$ABRA_DIR` as the dashboard indexes it.
#[derive(Debug, Clone)]
pub struct AppInfo {
    pub domain: String,
    pub server: String,
    pub recipe: String,
    /// The version on the `.env`'s TYPE line (what the CLI last deployed or chose).
    pub env_version: Option<String>,
    pub stack: String,
}

struct Index {
    at: Instant,
    apps: std::sync::Arc<Vec<AppInfo>>,
    by_domain: HashMap<String, usize>,
    servers: Vec<String>,
}

/// The apps and servers of `$ABRA_DIR`, read again when older than a few seconds (so an app
/// made with `cooper app new` shows up without a restart).
pub struct AppsCache {
    abra: AbraDir,
    index: std::sync::Arc<Mutex<Option<Index>>>,
    refreshing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

const APPS_TTL: Duration = Duration::from_secs(3);

impl AppsCache {
    pub fn new(abra: AbraDir) -> AppsCache {
        AppsCache {
            abra,
            index: Default::default(),
            refreshing: Default::default(),
        }
    }

    /// The index. The first read happens in the caller; after that a stale index is read again
    /// on a thread of its own while callers keep the current one (reading every `.env` must not
    /// hold up a request).
    fn with<T>(&self, f: impl FnOnce(&Index) -> T) -> T {
        use std::sync::atomic::Ordering;
        let mut guard = self.index.lock().expect("apps index lock");
        match guard.as_ref() {
            None => *guard = Some(read(&self.abra)),
            Some(i)
                if i.at.elapsed() > APPS_TTL && !self.refreshing.swap(true, Ordering::AcqRel) =>
            {
                let (abra, index, refreshing) = (
                    self.abra.clone(),
                    self.index.clone(),
                    self.refreshing.clone(),
                );
                std::thread::spawn(move || {
                    let fresh = read(&abra);
                    *index.lock().expect("apps index lock") = Some(fresh);
                    refreshing.store(false, Ordering::Release);
                });
            }
            Some(_) => {}
        }
        f(guard.as_ref().expect("filled above"))
    }

    pub fn all(&self) -> std::sync::Arc<Vec<AppInfo>> {
        self.with(|i| i.apps.clone())
    }

    pub fn get(&self, domain: &str) -> Option<AppInfo> {
        self.with(|i| i.by_domain.get(domain).map(|&n| i.apps[n].clone()))
    }

    pub fn server_of(&self, domain: &str) -> Option<String> {
        self.with(|i| i.by_domain.get(domain).map(|&n| i.apps[n].server.clone()))
    }

    pub fn servers(&self) -> Vec<String> {
        self.with(|i| i.servers.clone())
    }

    pub fn has_server(&self, server: &str) -> bool {
        self.with(|i| i.servers.iter().any(|s| s == server))
    }

    /// Replaces the index (the benchmark fills it without files).
    pub fn set(&self, apps: Vec<AppInfo>, servers: Vec<String>) {
        // Never stale: nothing on disk to read again.
        let at = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        *self.index.lock().expect("apps index lock") = Some(index(apps, servers, at));
    }
}

/// Reads every app's `.env` (one file each): the only slow part of the index.
fn read(abra: &AbraDir) -> Index {
    let mut apps = Vec::new();
    for at in abra.apps().unwrap_or_default() {
        let (recipe, env_version, stack) = match abra.app(&at.domain) {
            Ok(app) => (
                app.recipe.name.clone(),
                app.recipe.version.clone(),
                cooper_ops::stack_of(&app),
            ),
            Err(_) => (
                "?".into(),
                None,
                cooper_recipe::stack::stack_name(&at.domain),
            ),
        };
        apps.push(AppInfo {
            domain: at.domain,
            server: at.server,
            recipe,
            env_version,
            stack,
        });
    }
    apps.sort_by(|a, b| a.domain.cmp(&b.domain));
    index(apps, abra.servers().unwrap_or_default(), Instant::now())
}

fn index(apps: Vec<AppInfo>, servers: Vec<String>, at: Instant) -> Index {
    let by_domain = apps
        .iter()
        .enumerate()
        .map(|(i, a)| (a.domain.clone(), i))
        .collect();
    Index {
        at,
        apps: std::sync::Arc::new(apps),
        by_domain,
        servers,
    }
}

/// The frame of every page: who is looking, the CSRF token for its forms, which tab is on.
pub struct Chrome {
    pub title: String,
    pub who: Option<String>,
    pub role: String,
    pub csrf: String,
    pub admin: bool,
    pub operator: bool,
    /// Speaks for a member organisation (or keeps the federation's registers).
    pub federation: bool,
    pub tab: &'static str,
}

/// A cell that may be overdue.
pub struct Age {
    pub text: String,
    pub overdue: bool,
}

impl Age {
    /// How long ago an RFC 3339 time was, overdue past `limit_days` (or when never).
    pub fn since(rfc3339: Option<&str>, limit_days: i64) -> Age {
        let Some(t) = rfc3339.and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        }) else {
            return Age {
                text: "never".into(),
                overdue: true,
            };
        };
        let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
        Age {
            text: ago(secs),
            overdue: secs > limit_days * 86_400,
        }
    }

    /// As [`Age::since`], but an instance in service (first deployed at `in_service`) for
    /// less than the limit is not overdue for something that never ran yet: it is not due.
    pub fn since_or_new(rfc3339: Option<&str>, in_service: Option<&str>, limit_days: i64) -> Age {
        let age = Age::since(rfc3339, limit_days);
        if rfc3339.is_some() {
            return age;
        }
        match Age::since(in_service, limit_days) {
            Age {
                overdue: false,
                text,
            } => Age {
                text: format!("not yet (in service since {text})"),
                overdue: false,
            },
            _ => age,
        }
    }
}

/// `3 min ago`, `5 h ago`, `2 days ago`.
pub fn ago(secs: i64) -> String {
    match secs {
        s if s < 90 => format!("{s} s ago"),
        s if s < 90 * 60 => format!("{} min ago", s / 60),
        s if s < 48 * 3600 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

/// Milliseconds since the epoch as `2026-12-01 05:30 UTC`.
pub fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// A row of the instance list.
pub struct InstanceRow {
    pub domain: String,
    pub server: String,
    pub recipe: String,
    pub community: String,
    pub state: String,
    pub tone: &'static str,
    pub version: String,
    pub upgrade: Option<String>,
    pub level: Option<u8>,
    pub backup: Age,
    pub verified: Age,
    pub tested: Age,
}

/// Overdue limits, in days.
pub const BACKUP_DAYS: i64 = 2;
pub const VERIFY_DAYS: i64 = 35;
pub const TEST_DAYS: i64 = 35;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub c: Chrome,
    pub next: String,
    pub email: String,
    pub error: Option<String>,
    /// "Log in with …" when an OpenID provider is configured.
    pub oidc: Option<String>,
}

#[derive(Template)]
#[template(path = "setup.html")]
pub struct SetupPage {
    pub c: Chrome,
    pub error: Option<String>,
    pub email: String,
    pub name: String,
    pub done: bool,
}

#[derive(Template)]
#[template(path = "invite.html")]
pub struct InvitePage {
    pub c: Chrome,
    pub token: String,
    pub email: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "problem.html")]
pub struct ProblemPage {
    pub c: Chrome,
    pub status: u16,
    pub message: String,
}

pub struct Filters {
    pub server: String,
    pub community: String,
    pub recipe: String,
    pub state: String,
    pub sort: String,
}

#[derive(Template)]
#[template(path = "instances.html")]
pub struct InstancesPage {
    pub c: Chrome,
    pub rows: Vec<InstanceRow>,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub f: Filters,
    pub servers: Vec<String>,
    pub communities: Vec<String>,
    pub recipes: Vec<String>,
    pub prev_link: Option<String>,
    pub next_link: Option<String>,
}

pub struct TaskView {
    pub service: String,
    /// The node it runs on (and its state when that is not ready).
    pub node: String,
    pub state: String,
    pub tone: &'static str,
    pub error: String,
    pub image: String,
}

pub struct JobView {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub tone: &'static str,
    pub who: String,
    pub when: String,
    pub outcome: String,
}

pub struct RecordView {
    pub operation: String,
    pub started: String,
    pub ok: String,
    pub tone: &'static str,
    pub error: String,
}

/// A backup cooper made, and when a restore of it was last verified.
pub struct BackupView {
    pub snapshot: String,
    pub when: String,
    pub verified: Option<String>,
    /// "backup", or "safety backup before upgrade".
    pub why: String,
}

/// One step of the last test run (from its report, the same as its JUnit file).
pub struct TestStepView {
    pub suite: String,
    pub phase: String,
    pub name: String,
    pub outcome: String,
    pub tone: &'static str,
    pub reason: String,
    pub millis: u64,
}

pub struct ActionView {
    pub kind: &'static str,
    pub label: &'static str,
    pub confirm: bool,
}

pub struct RequestView {
    pub id: String,
    pub kind: String,
    pub who: String,
    pub note: String,
    pub when: String,
    pub state: String,
}

/// The community's newest agreement to an upgrade, as people read it.
pub struct ConsentView {
    pub version: String,
    pub who: String,
    pub when: String,
    /// `consented`, `applied`, `failed`, `withdrawn`.
    pub state: String,
    pub outcome: String,
    pub job: String,
}

#[derive(Template)]
#[template(path = "instance.html")]
pub struct InstancePage {
    pub c: Chrome,
    /// The instance's initial credentials wait for this viewer (shown once, on their page).
    pub credentials_waiting: bool,
    pub domain: String,
    pub server: String,
    pub recipe: String,
    pub community: String,
    pub state: String,
    pub tone: &'static str,
    pub version: String,
    pub upgrade: Option<String>,
    pub level: Option<u8>,
    pub release_notes: Vec<(String, String)>,
    pub tasks: Vec<TaskView>,
    pub tasks_error: Option<String>,
    pub jobs: Vec<JobView>,
    pub records: Vec<RecordView>,
    pub backup: Age,
    pub verified: Age,
    pub tested: Age,
    pub can_execute: bool,
    pub can_request: bool,
    pub actions: Vec<ActionView>,
    pub requests: Vec<RequestView>,
    pub backups: Vec<BackupView>,
    pub test_run: Option<String>,
    pub test_steps: Vec<TestStepView>,
    pub can_export: bool,
    /// A move to another co-op was approved: the page says how the other co-op runs it.
    pub leaving: bool,
    pub consent: Option<ConsentView>,
    /// The viewer may agree to the offered upgrade for the community.
    pub can_consent: bool,
    /// When the instance's next maintenance window opens.
    pub window_next: String,
    pub schedules: Vec<ScheduleView>,
    /// Kinds the co-op's defaults would add (offered to operators).
    pub missing_schedules: bool,
}

/// One schedule of an instance, as people read it.
pub struct ScheduleView {
    pub domain: String,
    pub kind: String,
    pub every: String,
    pub next: String,
    pub last_ok: String,
    pub enabled: bool,
    pub overdue: bool,
    /// When the run still owed fell due ("" when nothing is owed).
    pub owed_since: String,
}

impl ScheduleView {
    pub fn of(s: &cooper_store::Schedule, now: i64) -> ScheduleView {
        ScheduleView {
            domain: s.domain.clone(),
            kind: s.kind.clone(),
            every: crate::scheduler::every_words(s.cadence.every_ms),
            next: if s.enabled {
                when(s.next_due)
            } else {
                "paused".into()
            },
            last_ok: s.last_ok_at.map(when).unwrap_or_else(|| "never".into()),
            enabled: s.enabled,
            overdue: s.overdue(now),
            owed_since: s.owed_since(now).map(when).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "overdue.html")]
pub struct OverduePage {
    pub c: Chrome,
    pub rows: Vec<ScheduleView>,
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub c: Chrome,
    pub domain: String,
    pub kind: String,
    pub label: String,
    pub explain: Vec<String>,
    pub version: String,
    pub release_notes: Vec<(String, String)>,
}

pub struct LineView {
    pub seq: i64,
    pub at: String,
    pub line: String,
}

#[derive(Template)]
#[template(path = "job.html")]
pub struct JobPage {
    pub c: Chrome,
    pub job: JobView,
    pub domain: String,
    pub lines: Vec<LineView>,
    pub running: bool,
    pub cancellable: bool,
    pub record: Option<String>,
    pub last_seq: i64,
}

pub struct ServerRow {
    pub name: String,
    pub coop: String,
    pub apps: usize,
    pub state: String,
    pub tone: &'static str,
}

#[derive(Template)]
#[template(path = "servers.html")]
pub struct ServersPage {
    pub c: Chrome,
    pub rows: Vec<ServerRow>,
}

/// Bytes for people: `512 B`, `3.4 MiB`, `1.2 GiB`.
pub fn bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{} B", n as i64)
    } else {
        format!("{v:.1} {}", units[u])
    }
}

pub struct NodeView {
    pub hostname: String,
    pub role: String,
    pub state: String,
    pub tone: &'static str,
    pub engine: String,
    pub cpus: String,
    pub memory: String,
}

#[derive(Template)]
#[template(path = "server.html")]
pub struct ServerPage {
    pub c: Chrome,
    pub name: String,
    pub coop: String,
    pub nodes: Vec<NodeView>,
    pub nodes_error: Option<String>,
    /// Docker's images and volumes on the manager this dashboard talks to.
    pub storage: Option<StorageView>,
    pub apps: Vec<InstanceRow>,
}

pub struct StorageView {
    pub images: String,
    pub volumes: String,
}

pub struct CatalogueRow {
    pub name: String,
    pub description: String,
    pub latest: String,
    pub level: Option<u8>,
    pub versions: usize,
}

#[derive(Template)]
#[template(path = "catalogue.html")]
pub struct CataloguePage {
    pub c: Chrome,
    pub rows: Vec<CatalogueRow>,
    pub note: Option<String>,
}

pub struct AuditView {
    pub when: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub tone: &'static str,
    pub detail: String,
}

pub struct PrefView {
    pub event: &'static str,
    pub label: &'static str,
    pub mode: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
pub struct NotificationsPage {
    pub c: Chrome,
    pub prefs: Vec<PrefView>,
    pub saved: bool,
}

pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: String,
    pub created: String,
}

pub struct DeliveryView {
    pub when: String,
    pub channel: String,
    pub target: String,
    pub subject: String,
    pub state: String,
    pub tone: &'static str,
    pub attempts: i64,
    pub error: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
pub struct WebhooksPage {
    pub c: Chrome,
    pub hooks: Vec<WebhookView>,
    pub events: Vec<(&'static str, &'static str)>,
    /// A new webhook's secret: shown this once.
    pub new_secret: Option<(String, String)>,
    pub error: Option<String>,
    pub deliveries: Vec<DeliveryView>,
    pub smtp: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub c: Chrome,
    pub rows: Vec<AuditView>,
}

pub struct PersonView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub places: String,
    pub admin: bool,
}

#[derive(Template)]
#[template(path = "people.html")]
pub struct PeoplePage {
    pub c: Chrome,
    pub people: Vec<PersonView>,
    pub coops: Vec<(String, String)>,
    pub communities: Vec<(String, String, String)>,
    pub servers: Vec<(String, String)>,
    pub instances: Vec<(String, String)>,
    pub invite_link: Option<String>,
    pub message: Option<String>,
}

/// The status picture of an instance (an SVG badge: words and colour, never colour alone).
#[derive(Template)]
#[template(path = "status.svg", escape = "xml")]
pub struct StatusSvg {
    pub label: String,
    pub text: String,
    pub colour: &'static str,
    pub label_width: usize,
    pub text_width: usize,
}

/// The colour of a tone (with the text beside it, always).
pub fn colour(tone: &str) -> &'static str {
    match tone {
        "ok" => "#1a7f37",
        "warn" => "#9a6700",
        "bad" => "#cf222e",
        "idle" => "#57606a",
        _ => "#6e40c9",
    }
}

#[cfg(test)]
mod tests {
    use super::{ago, bytes, Age};

    #[test]
    fn sizes_and_ages_read_like_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(bytes(-5), "0 B");
        assert_eq!(ago(30), "30 s ago");
        assert_eq!(ago(600), "10 min ago");
        assert_eq!(ago(3 * 86_400), "3 days ago");
    }

    #[test]
    fn a_new_instance_is_not_overdue_for_what_never_ran_yet() {
        let at = |days: i64| {
            (time::OffsetDateTime::now_utc() - time::Duration::days(days))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let fresh = Age::since_or_new(None, Some(&at(2)), 7);
        assert!(!fresh.overdue);
        assert_eq!(fresh.text, "not yet (in service since 2 days ago)");
        let old = Age::since_or_new(None, Some(&at(9)), 7);
        assert!(old.overdue);
        assert_eq!(old.text, "never");
        assert!(
            Age::since_or_new(None, None, 7).overdue,
            "never deployed by cooper"
        );
        let done = Age::since_or_new(Some(&at(8)), Some(&at(1)), 7);
        assert!(
            done.overdue,
            "a run that went stale is overdue whatever the start"
        );
    }
}
