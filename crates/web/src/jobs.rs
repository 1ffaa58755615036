//! Actions as jobs: a job row in the store, taken by a worker of the pool, run through the same
//! `cooper-ops` functions (and so the same operation envelope and per-app lock) as the CLI, its
//! lines written to the store and pushed to whoever watches the job page. A job that was running
//! when `cooper serve` stopped is marked interrupted at the next start and its cleanup runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cooper_engine::converge::ServiceProgress;
use cooper_ops::op::Cancel;
use cooper_ops::record::Record;
use cooper_ops::{DeployKind, DeployRequest, Overview, Reporter};
use cooper_recipe::abra_dir::AbraDir;
use cooper_store::{Job, JobState, RecordRow, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, Notify};

/// What the dashboard can run, with what the button says and whether it can stop safely midway.
pub struct Kind {
    pub name: &'static str,
    pub label: &'static str,
    /// Stops at a safe point when cancelled (before it changes anything).
    pub cancellable: bool,
    /// Asks the person to confirm on a page of its own first (it changes what runs).
    pub confirm: bool,
}

pub const KINDS: &[Kind] = &[
    Kind {
        name: "deploy",
        label: "Deploy",
        cancellable: true,
        confirm: false,
    },
    Kind {
        name: "upgrade",
        label: "Upgrade",
        cancellable: true,
        confirm: true,
    },
    Kind {
        name: "rehearse",
        label: "Upgrade, rehearsed on a copy first",
        cancellable: false,
        confirm: true,
    },
    Kind {
        name: "rollback",
        label: "Roll back",
        cancellable: true,
        confirm: true,
    },
    Kind {
        name: "restart",
        label: "Restart",
        cancellable: false,
        confirm: false,
    },
    Kind {
        name: "backup",
        label: "Back up now",
        cancellable: false,
        confirm: false,
    },
    Kind {
        name: "verify",
        label: "Verify the last backup",
        cancellable: false,
        confirm: false,
    },
    Kind {
        name: "restore",
        label: "Restore the last backup",
        cancellable: false,
        confirm: true,
    },
    Kind {
        name: "test",
        label: "Run the app's production-safe tests",
        cancellable: false,
        confirm: false,
    },
    Kind {
        name: "upgrade-check",
        label: "Check for an upgrade",
        cancellable: false,
        confirm: false,
    },
    Kind {
        name: "undeploy",
        label: "Undeploy",
        cancellable: false,
        confirm: true,
    },
];

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// A job's arguments (stored as JSON; never secret values).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Args {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The request this job answers, if an operator approved one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Queued by a schedule, not by a person.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scheduled: bool,
    /// For an upgrade check: the federation's minimum `recipe test` level.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_level: u8,
    /// For a provisioning: what the approved request asked for (never secret values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provision: Option<ProvisionArgs>,
}

/// What a provisioning job makes: the request's answers and the operator's choices.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProvisionArgs {
    pub server: String,
    pub recipe: String,
    pub version: String,
    #[serde(default)]
    pub options: std::collections::BTreeSet<String>,
    #[serde(default)]
    pub values: std::collections::BTreeMap<String, String>,
    /// The requester, who becomes the community's admin and reads the initial credentials.
    pub email: String,
    pub community: String,
    /// The co-op that runs the server (the community is made under it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coop: Option<String>,
    /// On failure, keep what was made for inspection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep: bool,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// What watchers of a job hear.
#[derive(Debug, Clone)]
pub enum Event {
    Line { job: String, seq: i64, line: String },
    Done { job: String },
}

/// The worker pool and what it shares with the pages.
pub struct Jobs {
    pub(crate) notifier: Arc<crate::notify::Notifier>,
    pub(crate) store: Store,
    pub(crate) abra: AbraDir,
    wake: Notify,
    events: broadcast::Sender<Event>,
    cancels: std::sync::Mutex<HashMap<String, Cancel>>,
    /// Called with the server of every finished job (the live cache forgets it).
    on_finish: Box<dyn Fn(&str) + Send + Sync>,
    /// How the probe image of tests is named (for interrupted test cleanup).
    pub probe_image: String,
    /// Secret values passing through (given at approval, handed over once).
    pub vault: Arc<crate::vault::Vault>,
    /// This process as the owner of the jobs it runs (see [`cooper_store::this_process`]).
    pub owner: String,
    /// How long a job stays ours without a renewal; renewed every third of it.
    pub lease_ms: i64,
}

impl Jobs {
    pub fn new(
        store: Store,
        abra: AbraDir,
        notifier: Arc<crate::notify::Notifier>,
        probe_image: String,
        on_finish: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Arc<Jobs> {
        Arc::new(Jobs {
            store,
            abra,
            notifier,
            wake: Notify::new(),
            events: broadcast::channel(1024).0,
            cancels: Default::default(),
            on_finish,
            probe_image,
            vault: Default::default(),
            owner: cooper_store::this_process(),
            lease_ms: cooper_store::DEFAULT_LEASE_MS,
        })
    }

    /// Hears every job's lines.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Queues a job and wakes a worker.
    pub async fn submit(
        &self,
        kind: &str,
        domain: &str,
        args: &Args,
        requested_by: &str,
    ) -> cooper_store::Result<Job> {
        let args = serde_json::to_string(args).expect("job arguments serialise");
        let job = self
            .store
            .create_job(kind, domain, &args, requested_by)
            .await?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Wakes a worker for a job queued by someone else (the scheduler).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks a job to stop: a queued one is cancelled at once; a running one only when its
    /// kind stops safely (`running_too`), at its next safe point.
    pub async fn cancel(
        &self,
        id: &str,
        running_too: bool,
    ) -> cooper_store::Result<Option<JobState>> {
        if !running_too {
            let state = self.store.cancel_queued_job(id).await?;
            if state == Some(JobState::Cancelled) {
                let _ = self.events.send(Event::Done { job: id.into() });
            }
            return Ok(state);
        }
        let state = self.store.cancel_job(id).await?;
        if let Some(c) = self.cancels.lock().expect("cancels lock").get(id) {
            c.cancel();
        }
        if state == Some(JobState::Cancelled) {
            let _ = self.events.send(Event::Done { job: id.into() });
        }
        Ok(state)
    }

    /// Jobs nobody runs any more — their process stopped (this one's last run, or another
    /// `cooper serve` on the same store whose lease ran out) — are marked interrupted and their
    /// cleanup runs (the interrupted test runs of their app, helper containers left behind).
    /// Called at start and on every heartbeat. Returns them.
    pub async fn recover(&self) -> cooper_store::Result<Vec<Job>> {
        let me = self.owner.clone();
        let gone = move |o: &str| cooper_store::owner_gone(&me, o);
        let cut = self
            .store
            .interrupt_abandoned_jobs(cooper_store::now_ms(), &gone)
            .await?;
        for job in &cut {
            let mut lines = vec![format!(
                "interrupted: cooper serve stopped while this {} ran{}",
                job.kind,
                job.owner
                    .as_deref()
                    .map(|o| format!(" ({})", cooper_store::owner_in_words(o)))
                    .unwrap_or_default()
            )];
            lines.extend(self.cleanup(job).await);
            for l in &lines {
                self.store.add_job_line(&job.id, l).await?;
            }
            let outcome = format!("interrupted; {}", lines[1..].join("; "));
            self.store.set_job_outcome(&job.id, &outcome).await?;
            if job.kind == "provision" {
                let args: Args = serde_json::from_str(&job.args).unwrap_or_default();
                for l in
                    crate::provisioning::settle(self, job, &args, JobState::Interrupted, &outcome)
                        .await
                {
                    self.store.add_job_line(&job.id, &l).await?;
                }
            }
            self.store
                .audit(
                    "cooper serve",
                    &format!("{} interrupted", job.kind),
                    Some(&job.domain),
                    None,
                    "interrupted",
                    &outcome,
                )
                .await?;
        }
        Ok(cut)
    }

    /// What an interrupted job leaves and how it is cleaned: the app's lock is recovered by the
    /// next operation (the lock file names the dead holder); test runs are cleaned by their
    /// own cleanup steps; helper containers of backups are reaped by label.
    async fn cleanup(&self, job: &Job) -> Vec<String> {
        let abra = self.abra.clone();
        let domain = job.domain.clone();
        let kind = job.kind.clone();
        let probe = self.probe_image.clone();
        let keep = serde_json::from_str::<Args>(&job.args)
            .ok()
            .and_then(|a| a.provision)
            .is_some_and(|p| p.keep);
        run_apart(move || async move {
            let mut out = Vec::new();
            let mut quiet = cooper_ops::Collect::default();
            if kind == "provision" {
                // A half-made instance goes, as a failed provisioning's does.
                if keep {
                    out.push("cleanup: the half-made instance is kept for inspection, as asked".into());
                } else if abra.app(&domain).is_ok() {
                    match cooper_ops::lifecycle::teardown(&abra, &domain).await {
                        Ok(left) if left.is_empty() => {
                            out.push("cleanup: the half-made instance was removed".into())
                        }
                        Ok(left) => out.push(format!("cleanup left: {}", left.join(", "))),
                        Err(e) => out.push(format!("cleanup of the half-made instance failed: {e}")),
                    }
                }
                return out;
            }
            if kind == "test" {
                match cooper_ops::test::cleanup_interrupted(&abra, &domain, &probe, &mut quiet)
                    .await
                {
                    Ok(runs) => out.push(format!(
                        "cleanup: {} interrupted test run(s) cleaned up",
                        runs.len()
                    )),
                    Err(e) => out.push(format!("cleanup of the test run failed: {e}")),
                }
            }
            if let Ok(app) = abra.app(&domain) {
                match cooper_ops::connect(&abra, &app.at.server).await {
                    Ok(engine) => {
                        // Helpers of the dead process: their lifeline closed, so they stop by
                        // themselves; ended ones are removed here.
                        let mut still_running = 0;
                        for purpose in ["restic", "probe", "verify-check"] {
                            still_running += engine.reap_helpers(purpose).await.unwrap_or(0);
                        }
                        out.push(format!(
                            "cleanup: helper containers of the stopped process removed ({still_running} still stopping)"
                        ));
                    }
                    Err(e) => out.push(format!("cleanup: server not reachable: {e}")),
                }
            }
            out
        })
        .await
        .unwrap_or_else(|e| vec![format!("cleanup could not run: {e}")])
    }

    /// Starts `n` workers on the current runtime, and the heartbeat that keeps their jobs'
    /// leases, hears cancels asked through another process and takes over the cleanup of jobs
    /// whose process stopped.
    pub fn start(self: &Arc<Self>, n: usize) {
        for _ in 0..n.max(1) {
            let me = self.clone();
            tokio::spawn(async move { me.work().await });
        }
        let me = self.clone();
        tokio::spawn(async move { me.heartbeat().await });
    }

    async fn heartbeat(self: Arc<Self>) {
        let every = Duration::from_millis((self.lease_ms / 3).max(100) as u64);
        loop {
            tokio::time::sleep(every).await;
            match self
                .store
                .renew_job_leases(&self.owner, self.lease_ms)
                .await
            {
                Ok(mine) => {
                    for job in mine.iter().filter(|j| j.cancel_requested) {
                        if let Some(c) = self.cancels.lock().expect("cancels lock").get(&job.id) {
                            c.cancel();
                        }
                    }
                }
                Err(e) => eprintln!("cooper serve: renewing job leases: {e}"),
            }
            match self.recover().await {
                Ok(cut) => {
                    for job in cut {
                        let _ = self.events.send(Event::Done { job: job.id });
                    }
                }
                Err(e) => eprintln!("cooper serve: looking for abandoned jobs: {e}"),
            }
        }
    }

    async fn work(self: Arc<Self>) {
        loop {
            match self.store.claim_job_for(&self.owner, self.lease_ms).await {
                Ok(Some(job)) => self.run(job).await,
                Ok(None) => {
                    // A new job wakes us; the timer catches jobs queued by another process.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), self.wake.notified()).await;
                }
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }

    async fn run(&self, job: Job) {
        let cancel = Cancel::new();
        if job.cancel_requested {
            cancel.cancel();
        }
        self.cancels
            .lock()
            .expect("cancels lock")
            .insert(job.id.clone(), cancel.clone());
        let (tx, mut rx) = mpsc::unbounded_channel::<Said>();
        let args: Args = serde_json::from_str(&job.args).unwrap_or_default();
        let (abra, kind, domain) = (self.abra.clone(), job.kind.clone(), job.domain.clone());
        let vault = self.vault.clone();
        let probe = self.probe_image.clone();
        let job_args = args.clone();
        // A maintenance window's run: what it does is decided now, from the store.
        let window = if job.kind == "upgrade-window" {
            Some(crate::window::decide(&self.store, &job.domain, cooper_store::now_ms()).await)
        } else {
            None
        };
        let job_window = window.clone();
        let done = run_apart(move || async move {
            let mut reporter = JobReporter {
                tx,
                abra: abra.clone(),
                last_picture: String::new(),
            };
            let with = With {
                cancel,
                vault: &vault,
                probe: &probe,
                window: job_window.as_ref(),
            };
            perform(&abra, &kind, &domain, &args, &mut reporter, with).await
        });
        tokio::pin!(done);
        let mut records: Vec<RecordRow> = Vec::new();
        let result = loop {
            tokio::select! {
                said = rx.recv() => match said {
                    Some(Said::Line(l)) => self.line(&job.id, &l).await,
                    Some(Said::Record(r)) => records.push(r),
                    None => {}
                },
                r = &mut done => break r,
            }
        };
        while let Ok(said) = rx.try_recv() {
            match said {
                Said::Line(l) => self.line(&job.id, &l).await,
                Said::Record(r) => records.push(r),
            }
        }
        self.cancels.lock().expect("cancels lock").remove(&job.id);
        for r in &records {
            let _ = self.store.index_record(r).await;
        }
        let record_path = records.last().map(|r| r.path.clone());
        let cancelled = self
            .store
            .job(&job.id)
            .await
            .ok()
            .flatten()
            .is_some_and(|j| j.cancel_requested);
        let (state, outcome) = match result {
            Ok(Ok(summary)) => (JobState::Succeeded, summary),
            Ok(Err(e)) if cancelled && e.contains("cancel") => (JobState::Cancelled, e),
            Ok(Err(e)) => (JobState::Failed, e),
            Err(e) => (JobState::Failed, format!("the job could not run: {e}")),
        };
        self.line(&job.id, &format!("{}: {outcome}", state.as_str()))
            .await;
        if job.kind == "provision" {
            for l in crate::provisioning::settle(self, &job, &job_args, state, &outcome).await {
                self.line(&job.id, &l).await;
            }
        }
        if let Some(w) = &window {
            crate::window::settle(
                &self.store,
                w,
                &job.id,
                state == JobState::Succeeded,
                &outcome,
            )
            .await;
        }
        let _ = self
            .store
            .finish_job(&job.id, state, &outcome, record_path.as_deref())
            .await;
        let server = self.abra.app(&job.domain).ok().map(|a| a.at.server);
        let _ = self
            .store
            .audit(
                &job.requested_by,
                &job.kind,
                Some(&job.domain),
                server.as_deref(),
                state.as_str(),
                &outcome,
            )
            .await;
        if let Some(e) = job_event(&job, state, &outcome, server.as_deref()) {
            self.notifier.emit_logged(e).await;
        }
        if let Some(s) = &server {
            (self.on_finish)(s);
        }
        let _ = self.events.send(Event::Done {
            job: job.id.clone(),
        });
    }

    async fn line(&self, job: &str, line: &str) {
        if let Ok(seq) = self.store.add_job_line(job, line).await {
            let _ = self.events.send(Event::Line {
                job: job.into(),
                seq,
                line: line.into(),
            });
        }
    }
}

/// Runs an operation on a thread of its own with its own small runtime: operations hold their
/// reporter across awaits (they are not `Send`), and a job must not hold up the pages.
pub(crate) async fn run_apart<T, F, Fut>(make: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("cooper-job".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => {
                    let _ = tx.send(Ok(rt.block_on(make())));
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        })
        .map_err(|e| e.to_string())?;
    rx.await
        .map_err(|_| "the job's thread ended without an answer".to_string())?
}

enum Said {
    Line(String),
    Record(RecordRow),
}

/// The reporter of a job: lines and records go to the pool, which stores and broadcasts them.
/// A job never asks: the person confirmed on the page before the job was queued.
pub(crate) struct JobReporter {
    tx: mpsc::UnboundedSender<Said>,
    abra: AbraDir,
    last_picture: String,
}

impl Reporter for JobReporter {
    fn info(&mut self, line: &str) {
        let _ = self.tx.send(Said::Line(line.to_string()));
    }
    fn progress(&mut self, services: &[ServiceProgress]) {
        let picture = services
            .iter()
            .map(|s| format!("{} {}/{}", s.service, s.running, s.desired))
            .collect::<Vec<_>>()
            .join(", ");
        if picture != self.last_picture {
            self.info(&picture);
            self.last_picture = picture;
        }
    }
    fn confirm(&mut self, overview: &Overview) -> bool {
        self.info(&format!(
            "{} on {}: {} → {} ({} services)",
            overview.app,
            overview.server,
            overview.current_version.as_deref().unwrap_or("nothing"),
            overview.new_version,
            overview.services.len()
        ));
        for (version, notes) in &overview.release_notes {
            self.info(&format!("release notes of {version}: {notes}"));
        }
        true
    }
    fn ask(&mut self, question: &str) -> bool {
        self.info(&format!("{question} yes (confirmed on the page)"));
        true
    }
    fn finished(&mut self, record: &Record) {
        let _ = self.tx.send(Said::Record(record_row(&self.abra, record)));
    }
}

/// The index row of a record.
pub fn record_row(abra: &AbraDir, record: &Record) -> RecordRow {
    RecordRow {
        path: record.path(&abra.root).display().to_string(),
        domain: record.app.clone(),
        operation: record.operation.clone(),
        started: record.started.clone(),
        ok: record.ok,
        error: record.error.clone(),
        made_snapshot: made_snapshot(record),
    }
}

/// The snapshot an operation made: a successful backup's, or the safety backup an upgrade
/// took first (`details.safety_snapshot`, kept even when the upgrade failed). A verify or a
/// restore names a snapshot too, but makes none.
pub fn made_snapshot(record: &Record) -> Option<String> {
    let field = if record.operation == "backup create" {
        if record.ok != Some(true) {
            return None;
        }
        "snapshot"
    } else {
        "safety_snapshot"
    };
    record
        .details
        .get(field)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Indexes every record file under `$ABRA_DIR/cooper/records` that the store does not have yet
/// (at start when the index is empty, and now and then for operations the CLI ran). Returns how
/// many rows were added.
pub async fn index_records(
    store: &Store,
    abra: &AbraDir,
    known: &mut std::collections::HashSet<String>,
) -> usize {
    let dir = abra.root.join("cooper").join("records");
    let Ok(apps) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut added = 0;
    for app in apps.flatten() {
        let Ok(files) = std::fs::read_dir(app.path()) else {
            continue;
        };
        for f in files.flatten() {
            let path = f.path().display().to_string();
            if !path.ends_with(".json") || known.contains(&path) {
                continue;
            }
            let Some(record) = std::fs::read_to_string(f.path())
                .ok()
                .and_then(|t| serde_json::from_str::<Record>(&t).ok())
            else {
                continue;
            };
            let mut row = record_row(abra, &record);
            row.path = path.clone();
            if store.index_record(&row).await.is_ok() {
                known.insert(path);
                added += 1;
            }
        }
    }
    added
}

/// The release an upgrade check's summary offers: the word before " is available".
fn offered_version(summary: &str) -> &str {
    summary
        .split(" is available")
        .next()
        .and_then(|head| head.rsplit([' ', ';']).next())
        .unwrap_or(summary)
}

/// What a finished job announces, if anything.
fn job_event(
    job: &Job,
    state: JobState,
    outcome: &str,
    server: Option<&str>,
) -> Option<crate::notify::Event> {
    let (event, title) = match (job.kind.as_str(), state) {
        ("backup", JobState::Failed | JobState::Interrupted) => (
            "backup.failed",
            format!("The backup of {} failed", job.domain),
        ),
        ("verify", JobState::Failed | JobState::Interrupted) => (
            "verify.failed",
            format!("The restore check of {} failed", job.domain),
        ),
        (kind, JobState::Failed | JobState::Interrupted) => {
            ("job.failed", format!("{kind} of {} failed", job.domain))
        }
        ("upgrade-window", JobState::Succeeded) if outcome.contains(" upgraded ") => {
            ("upgrade.applied", format!("{} was upgraded", job.domain))
        }
        ("upgrade" | "rehearse", JobState::Succeeded) => {
            ("upgrade.applied", format!("{} was upgraded", job.domain))
        }
        ("rollback", JobState::Succeeded) => (
            "upgrade.rolled_back",
            format!("{} was rolled back", job.domain),
        ),
        ("upgrade-check", JobState::Succeeded) if outcome.contains(" is available") => (
            "upgrade.available",
            format!("An upgrade is available for {}", job.domain),
        ),
        _ => return None,
    };
    // One announcement per offered release, whatever else the summary says.
    let dedupe = (event == "upgrade.available").then(|| {
        format!(
            "upgrade.available|{}|{}",
            job.domain,
            offered_version(outcome)
        )
    });
    Some(crate::notify::Event {
        event,
        domain: Some(job.domain.clone()),
        server: server.map(str::to_string),
        title,
        detail: outcome.to_string(),
        link: Some(format!("/jobs/{}", job.id)),
        dedupe,
    })
}

/// What a job runs with besides its arguments.
struct With<'a> {
    cancel: Cancel,
    vault: &'a crate::vault::Vault,
    /// The image of the tests' HTTP probes.
    probe: &'a str,
    /// For a maintenance window's run: what it does.
    window: Option<&'a crate::window::Decision>,
}

/// Runs one job's operation; `Ok` is a one-line summary, `Err` the operation's error.
async fn perform(
    abra: &AbraDir,
    kind: &str,
    domain: &str,
    args: &Args,
    reporter: &mut JobReporter,
    with: With<'_>,
) -> Result<String, String> {
    let With {
        cancel,
        vault,
        probe,
        window,
    } = with;
    let wait = Some(Duration::from_secs(120));
    let deploy = |k: DeployKind| {
        let mut req = DeployRequest::new(domain, k);
        req.version = args.version.clone();
        req.wait_lock = wait;
        req.force = k == DeployKind::Deploy;
        req
    };
    let r = match kind {
        "deploy" | "upgrade" | "rollback" => {
            let k = match kind {
                "deploy" => DeployKind::Deploy,
                "upgrade" => DeployKind::Upgrade,
                _ => DeployKind::Rollback,
            };
            cooper_ops::deploy::deploy_cancellable(abra, &deploy(k), reporter, cancel)
                .await
                .map(|r| format!("{kind}: {} runs", r.version))
        }
        "rehearse" => {
            let req = cooper_ops::rehearse::RehearseRequest {
                domain: domain.to_string(),
                version: args.version.clone(),
                probe_image: probe.to_string(),
                timeout: None,
            };
            cooper_ops::rehearse::rehearse(abra, &req, reporter)
                .await
                .and_then(|r| {
                    if r.upgraded {
                        Ok(format!(
                            "rehearsed on {}, then upgraded {} → {}",
                            r.staging, r.from, r.to
                        ))
                    } else {
                        Err(cooper_ops::OpsError::Failed(format!(
                            "the rehearsal on {} did not pass; production still runs {}",
                            r.staging, r.from
                        )))
                    }
                })
        }
        "restart" => cooper_ops::deploy::restart(abra, domain, None, wait, reporter)
            .await
            .map(|names| format!("restarted {}", names.join(", "))),
        "undeploy" => cooper_ops::undeploy(abra, domain, reporter)
            .await
            .map(|()| "undeployed (volumes and secrets kept)".to_string()),
        "backup" => cooper_ops::backup::create(abra, domain, wait, reporter)
            .await
            .map(|r| {
                format!(
                    "snapshot {} ({} new, {} changed files)",
                    r.snapshot.as_deref().unwrap_or("?"),
                    r.summary.files_new,
                    r.summary.files_changed
                )
            }),
        "verify" => cooper_ops::backup::verify(abra, domain, args.snapshot.as_deref(), reporter)
            .await
            .and_then(|r| {
                if r.problems.is_empty() {
                    Ok(format!(
                        "snapshot {} restored and checked: {} files, {} bytes",
                        r.snapshot, r.files, r.bytes
                    ))
                } else {
                    Err(cooper_ops::OpsError::Failed(r.problems.join("; ")))
                }
            }),
        "restore" => {
            let req = cooper_ops::backup::RestoreRequest {
                domain: domain.to_string(),
                snapshot: args.snapshot.clone(),
                volumes: Vec::new(),
                wait_lock: wait,
                timeout: None,
                from: None,
                archive: None,
            };
            cooper_ops::backup::restore(abra, &req, reporter)
                .await
                .map(|r| format!("restored {} into {}", r.snapshot, r.volumes.join(", ")))
        }
        "upgrade-check" => cooper_ops::catalogue::upgrade_check(abra, domain, args.min_level)
            .await
            .map(|c| {
                let mut line = match (&c.offer, c.level) {
                    (Some(v), Some(l)) => {
                        format!("runs {}; {v} is available (test level {l})", c.running)
                    }
                    (Some(v), None) => format!("runs {}; {v} is available", c.running),
                    (None, _) => format!("runs {}, the newest release it may take", c.running),
                };
                if !c.held_back.is_empty() {
                    line.push_str(&format!(
                        "; held back, not tested to level {}: {}",
                        args.min_level,
                        c.held_back.join(", ")
                    ));
                }
                if let Some(p) = c.fetch_problem {
                    line.push_str(&format!(" (the recipe's tags could not be refreshed: {p})"));
                }
                line
            }),
        "test" => {
            // The dashboard runs on production instances: only the suites marked safe there.
            let mut req = cooper_ops::test::TestRequest::new(domain);
            req.prod = true;
            req.probe_image = probe.to_string();
            cooper_ops::test::run(abra, &req, reporter)
                .await
                .and_then(|run| {
                    let r = &run.report;
                    let line = format!(
                        "{} passed, {} failed, {} skipped",
                        r.passed(),
                        r.failed(),
                        r.skipped()
                    );
                    if r.failed() == 0 {
                        Ok(line)
                    } else {
                        Err(cooper_ops::OpsError::Failed(format!(
                            "{line}: {}",
                            r.failures()
                        )))
                    }
                })
        }
        "upgrade-window" => {
            return match window {
                Some(d) => crate::window::perform(abra, domain, d, probe, reporter).await,
                None => Err("the maintenance window's run was not prepared".into()),
            }
        }
        "provision" => {
            return crate::provisioning::perform(abra, domain, args, reporter, vault, probe).await
        }
        other => return Err(format!("unknown job kind {other:?}")),
    };
    r.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::offered_version;

    #[test]
    fn the_offer_is_read_whatever_follows_it() {
        assert_eq!(
            offered_version("runs 1.0.0+1; 1.2.0+2 is available (test level 3)"),
            "1.2.0+2"
        );
        assert_eq!(
            offered_version(
                "runs 1.0.0+1; 1.2.0+2 is available; held back, not tested to level 3: 2.0.0+3 \
                 (the recipe's tags could not be refreshed: timeout)"
            ),
            "1.2.0+2"
        );
    }
}
