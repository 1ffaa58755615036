//! Deploy, upgrade, rollback and undeploy.
//!
//! A deploy: lock the app → recipe files at the chosen version (from git objects) → stack →
//! Swarm specs → preflight (external networks, secrets, configs, images; nothing changes if
//! anything is missing) → overview and confirmation → apply → watch convergence → on failure,
//! put the previous service specs back and wait for *that* to converge → write the deployed
//! version on the app's TYPE line → record.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cooper_engine::apply::{Applied, PreflightError};
use cooper_engine::converge::{Failure, Outcome, WatchOptions};
use cooper_engine::convert;
use cooper_engine::Engine;
use cooper_recipe::abra_dir::{AbraDir, App};
use cooper_recipe::repo::{Origin, RecipeRepo};
use cooper_recipe::stack::{self, VersionChoice};
use cooper_recipe::version::RecipeVersion;
use serde::Serialize;

use crate::lock::AppLock;
use crate::op::{self, Cancel, Envelope, Op};
use crate::record::Record;
use crate::{connect, label, OpsError, Reporter, Result, DEFAULT_TIMEOUT};

/// Which lifecycle step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployKind {
    Deploy,
    Upgrade,
    Rollback,
}

impl DeployKind {
    fn name(self) -> &'static str {
        match self {
            DeployKind::Deploy => "app deploy",
            DeployKind::Upgrade => "app upgrade",
            DeployKind::Rollback => "app rollback",
        }
    }
}

/// What to deploy and how.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub domain: String,
    pub kind: DeployKind,
    /// A tag or commit; for upgrade/rollback, default: the newest/previous release.
    pub version: Option<String>,
    pub chaos: bool,
    /// Redeploy an app that is already deployed.
    pub force: bool,
    pub no_rollback: bool,
    /// Overrides the recipe's `coop-cloud.<stack>.timeout`.
    pub timeout: Option<Duration>,
    /// How many failed tasks of the new spec count as a failed deploy.
    pub max_task_failures: usize,
    /// Wait this long for another operation on the app to finish (default: refuse at once).
    pub wait_lock: Option<Duration>,
    /// Upgrades take a backup first and refuse to go on when it fails (`--no-backup` clears it).
    pub safety_backup: bool,
}

impl DeployRequest {
    pub fn new(domain: &str, kind: DeployKind) -> Self {
        DeployRequest {
            domain: domain.to_string(),
            kind,
            version: None,
            chaos: false,
            force: false,
            no_rollback: false,
            timeout: None,
            max_task_failures: 3,
            wait_lock: None,
            safety_backup: true,
        }
    }
}

/// What a deploy is about to do, shown before it does it.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub app: String,
    pub server: String,
    pub recipe: String,
    /// The version running now; `None` for a first deploy.
    pub current_version: Option<String>,
    pub new_version: String,
    /// Nothing of the app runs yet.
    pub first_deploy: bool,
    pub source: String,
    pub chaos: bool,
    pub compose_files: Vec<String>,
    pub services: Vec<String>,
    /// `release/<version>` notes of every version crossed, oldest first.
    pub release_notes: Vec<(String, String)>,
    pub timeout_secs: u64,
    /// Per service, the environment variables whose values change (names only: values may be
    /// sensitive): `+NEW`, `-GONE`, `~CHANGED`.
    pub env_changes: Vec<(String, Vec<String>)>,
    /// Services the deploy creates or removes.
    pub new_services: Vec<String>,
    pub removed_services: Vec<String>,
}

/// `KEY=value` lists → `+KEY`, `-KEY`, `~KEY` for what differs.
pub fn env_diff(old: &[String], new: &[String]) -> Vec<String> {
    let split = |list: &[String]| -> BTreeMap<String, Option<String>> {
        list.iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (e.clone(), None),
            })
            .collect()
    };
    let (a, b) = (split(old), split(new));
    let mut out = Vec::new();
    for (k, v) in &b {
        match a.get(k) {
            None => out.push(format!("+{k}")),
            Some(old) if old != v => out.push(format!("~{k}")),
            _ => {}
        }
    }
    for k in a.keys() {
        if !b.contains_key(k) {
            out.push(format!("-{k}"));
        }
    }
    out
}

/// The releases an upgrade (newer) or rollback (older) could go to from `current`.
pub fn candidates(repo: &RecipeRepo, kind: DeployKind, current: Option<&str>) -> Vec<String> {
    let current = current.and_then(|c| RecipeVersion::parse(c).ok());
    repo.versions()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| match (&current, kind) {
            (Some(c), DeployKind::Upgrade) => v > c,
            (Some(c), DeployKind::Rollback) => v < c,
            _ => true,
        })
        .map(|v| v.to_string())
        .collect()
}

/// What happened.
#[derive(Debug, Clone)]
pub struct DeployReport {
    pub version: String,
    pub elapsed: Duration,
    pub record_path: Option<std::path::PathBuf>,
    /// Lines explaining what converged.
    pub summary: Vec<String>,
}

/// The version the app runs now (from its services' labels) and whether it is a chaos deploy;
/// `None` when nothing of the stack is deployed.
pub async fn deployed_version(engine: &Engine, stack: &str) -> Result<Option<(String, bool)>> {
    let services = engine.stack_services(stack).await?;
    if services.is_empty() {
        return Ok(None);
    }
    let st = cooper_engine::exec::stack_status(stack, &services);
    Ok(Some((
        st.version.unwrap_or_else(|| "unknown".into()),
        st.chaos,
    )))
}

/// Release notes of the versions in `(from, to]` (or `[to, from)` going back), oldest first.
pub fn release_notes(repo: &RecipeRepo, from: Option<&str>, to: &str) -> Vec<(String, String)> {
    let Ok(versions) = repo.versions() else {
        return Vec::new();
    };
    let (Ok(to_v), from_v) = (
        RecipeVersion::parse(to),
        from.and_then(|f| RecipeVersion::parse(f).ok()),
    ) else {
        return Vec::new();
    };
    versions
        .iter()
        .filter(|v| match &from_v {
            Some(f) if *f < to_v => *v > f && *v <= &to_v,
            Some(f) => *v > &to_v && *v <= f,
            None => *v == &to_v,
        })
        .filter_map(|v| {
            repo.release_notes(v.as_str())
                .map(|n| (v.to_string(), n.trim().to_string()))
        })
        .collect()
}

fn choose_version(
    repo: &RecipeRepo,
    kind: DeployKind,
    current: Option<&str>,
    explicit: Option<&str>,
) -> Result<Option<String>> {
    if kind == DeployKind::Deploy {
        return Ok(explicit.map(str::to_string));
    }
    let versions = repo.versions()?;
    let current_v = current.and_then(|c| RecipeVersion::parse(c).ok());
    let candidates: Vec<&RecipeVersion> = versions
        .iter()
        .filter(|v| match (&current_v, kind) {
            (Some(c), DeployKind::Upgrade) => *v > c,
            (Some(c), DeployKind::Rollback) => *v < c,
            (None, _) => true,
            _ => false,
        })
        .collect();
    if let Some(e) = explicit {
        if RecipeVersion::parse(e).is_ok() && !candidates.iter().any(|v| v.as_str() == e) {
            let direction = if kind == DeployKind::Upgrade {
                "newer"
            } else {
                "older"
            };
            return Err(OpsError::Refused(format!(
                "{e} is not {direction} than the deployed {}; {} candidates: {}",
                current.unwrap_or("version"),
                direction,
                if candidates.is_empty() {
                    "none".to_string()
                } else {
                    candidates
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        }
        return Ok(Some(e.to_string()));
    }
    // Upgrade: the newest release; rollback: the release just before the deployed one.
    match candidates.last() {
        Some(v) => Ok(Some(v.to_string())),
        None => Err(OpsError::Refused(match kind {
            DeployKind::Upgrade => format!(
                "{} is the newest release of {}; nothing to upgrade to",
                current.unwrap_or("the deployed version"),
                repo.name
            ),
            _ => format!(
                "{} is the oldest release of {}; nothing to roll back to",
                current.unwrap_or("the deployed version"),
                repo.name
            ),
        })),
    }
}

fn describe_failure(f: &Failure) -> String {
    let mut s = format!("service {}: {}", f.service, f.reason);
    if let Some(e) = &f.task_error {
        if !f.reason.contains(e.as_str()) {
            s.push_str(&format!(" (task error: {e})"));
        }
    }
    s
}

async fn failure_details(engine: &Engine, failures: &[Failure]) -> Vec<String> {
    let mut lines = Vec::new();
    for f in failures {
        lines.push(describe_failure(f));
        // The output read while the watch saw the container turn unhealthy; failing that, the
        // failed task's container, if Swarm has not removed it yet.
        let health = match (&f.health_output, &f.container_id) {
            (Some(h), _) => Some(h.clone()),
            (None, Some(c)) => engine.last_health_output(c).await,
            (None, None) => None,
        };
        if let Some(h) = health.filter(|h| !h.is_empty()) {
            lines.push(format!("  last healthcheck output: {h}"));
        }
        if let Some(c) = &f.container_id {
            let logs = engine.container_logs(c, 10).await;
            if !logs.is_empty() {
                lines.push("  last log lines:".into());
                lines.extend(logs.into_iter().map(|l| format!("    {l}")));
            }
        }
    }
    lines
}

/// `app restart`: forces a new task for one service (`Some`) or every service of the app and
/// waits until they run again, inside the operation envelope. Returns the services restarted.
/// With `wait_lock`, waits that long for another operation on the app to end (the dashboard's
/// jobs do); without, refuses at once (the CLI).
pub async fn restart(
    abra: &AbraDir,
    domain: &str,
    service: Option<&str>,
    wait_lock: Option<Duration>,
    reporter: &mut dyn Reporter,
) -> Result<Vec<String>> {
    let envelope = Envelope::locked("app restart", domain).waiting(wait_lock);
    let done = op::run(abra, envelope, reporter, async |op: &mut Op<'_>| {
        let engine = op.connect().await?;
        let stack = crate::stack_of(&op.app);
        let names: Vec<String> = match service {
            Some(s) => vec![format!("{stack}_{s}")],
            None => engine
                .stack_services(&stack)
                .await?
                .iter()
                .map(|s| cooper_engine::apply::service_name(s).to_string())
                .collect(),
        };
        if names.is_empty() {
            return Err(OpsError::Refused(format!(
                "{domain} is not deployed: nothing to restart (deploy it with `cooper app deploy {domain}`)"
            )));
        }
        let t = Instant::now();
        for n in &names {
            engine.force_update(n).await?;
        }
        op.record.step("restart", names.join(", "), true, t);
        let t = Instant::now();
        let reporter = &mut *op.reporter;
        let outcome = engine
            .watch(&stack, &names, &WatchOptions::default(), |p| {
                reporter.progress(p)
            })
            .await?;
        match outcome {
            Outcome::Converged { .. } => {
                op.record.step("watch", "running again", true, t);
                Ok(names)
            }
            other => {
                op.record.step("watch", format!("{other:?}"), false, t);
                Err(OpsError::Failed(format!(
                    "restart of {domain} did not converge: {other:?}"
                )))
            }
        }
    })
    .await?;
    Ok(done.value)
}

/// Deploys, upgrades or rolls back an app, inside the operation envelope.
pub async fn deploy(
    abra: &AbraDir,
    req: &DeployRequest,
    reporter: &mut dyn Reporter,
) -> Result<DeployReport> {
    deploy_cancellable(abra, req, reporter, Cancel::new()).await
}

/// [`deploy`] that stops when `cancel` fires before it changes anything (after the apply,
/// the deploy runs to its end: converged, or rolled back).
pub async fn deploy_cancellable(
    abra: &AbraDir,
    req: &DeployRequest,
    reporter: &mut dyn Reporter,
    cancel: Cancel,
) -> Result<DeployReport> {
    let envelope = Envelope::locked(req.kind.name(), &req.domain).waiting(req.wait_lock);
    let done = op::run(
        abra,
        envelope.cancelled_by(cancel),
        reporter,
        async |op: &mut Op<'_>| run_deploy(op, req).await,
    )
    .await?;
    Ok(DeployReport {
        record_path: done.record_path,
        elapsed: done.elapsed,
        ..done.value
    })
}

/// The phases of a deploy, in order: connect, [`choose`] the version, [`plan`] the stack,
/// [`preflight`] and confirm, the safety backup, apply, watch, then [`settle`] (converged) or
/// [`roll_back`] (failed). The caller records the outcome.
async fn run_deploy(op: &mut Op<'_>, req: &DeployRequest) -> Result<DeployReport> {
    let engine = op.connect().await?;
    engine.require_manager().await?;
    let Op {
        abra,
        app,
        record,
        reporter,
        cancel,
        ..
    } = op;
    let (abra, reporter) = (*abra, &mut **reporter);
    let stack_name = crate::stack_of(app);

    let target = choose(abra, req, app, &engine, &stack_name, reporter).await?;
    record.from_version = target.current_version.clone();
    record.to_version = Some(target.new_version.clone());
    let planned = plan(req, app, &stack_name, &target, record)?;
    preflight(&engine, &planned, app, record).await?;
    let overview = overview(&engine, &stack_name, app, &target, &planned).await?;
    if !reporter.confirm(&overview) {
        record.step("confirm", "declined", false, Instant::now());
        return Err(OpsError::Refused(
            "not confirmed; nothing was changed".into(),
        ));
    }
    let safety_snapshot = if req.kind == DeployKind::Upgrade && req.safety_backup {
        safety_backup(abra, app, &engine, reporter, record).await?
    } else {
        None
    };
    if cancel.is_cancelled() {
        record.step(
            "cancel",
            "cancelled before the apply",
            false,
            Instant::now(),
        );
        return Err(OpsError::Refused("cancelled; nothing was changed".into()));
    }

    let t = Instant::now();
    let applied = engine.apply(&planned.stack).await?;
    record.step(
        "apply",
        format!(
            "created {:?}, updated {:?}, removed {:?}",
            applied.created, applied.updated, applied.removed
        ),
        true,
        t,
    );
    let names = applied.services();
    reporter.info(&format!(
        "waiting for {} service{} to converge (timeout {}s)",
        names.len(),
        plural(names.len()),
        planned.timeout.as_secs()
    ));
    let opts = WatchOptions {
        timeout: planned.timeout,
        max_task_failures: req.max_task_failures,
        returning: false,
    };
    let t = Instant::now();
    let outcome = engine
        .watch(&stack_name, &names, &opts, |p| reporter.progress(p))
        .await?;
    let deployed = Deployed {
        engine: &engine,
        stack: &stack_name,
        applied: &applied,
        target: &target,
        safety_snapshot: safety_snapshot.as_deref(),
    };
    if let Outcome::TimedOut { pending, .. } = &outcome {
        if let Some(waits) = waiting_for_down_nodes(&engine, &planned, &applied, pending).await {
            return hold_for_nodes(app, &deployed, req, &waits, record, t);
        }
    }
    match outcome {
        Outcome::Converged { elapsed } => {
            record.step(
                "converge",
                format!("converged in {:.1}s", elapsed.as_secs_f64()),
                true,
                t,
            );
            settle(app, &deployed, elapsed)
        }
        failed => {
            let (what, mut lines) = describe_outcome(&engine, &failed, planned.timeout).await;
            record.step(
                "converge",
                format!("{what}: {}", lines.join("; ")),
                false,
                t,
            );
            let by_swarm: Vec<String> = match &failed {
                Outcome::Failed { failures, .. } => failures
                    .iter()
                    .filter(|f| f.swarm_rollback)
                    .map(|f| f.service.clone())
                    .collect(),
                _ => Vec::new(),
            };
            let way_back = roll_back(&deployed, req, &opts, by_swarm, reporter, record).await?;
            lines.push(way_back.line());
            if let Some(id) = &safety_snapshot {
                lines.push(format!(
                    "the data from before the upgrade is in snapshot {id}; if the failed version \
                     changed it, put it back with `cooper app restore {} --snapshot {id}`",
                    app.at.domain
                ));
            }
            let message = format!(
                "{} of {} to {} {what}:\n  {}",
                req.kind.name().trim_start_matches("app "),
                app.at.domain,
                target.new_version,
                lines.join("\n  ")
            );
            Err(if way_back.runs_as_before() {
                OpsError::Failed(message)
            } else {
                OpsError::Broken(message)
            })
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The version a deploy goes to, and where its files come from.
struct Target {
    repo: RecipeRepo,
    files: cooper_recipe::repo::RecipeFiles,
    /// The version running now (or, for a first deploy, the one the `.env` names).
    current_version: Option<String>,
    /// Nothing of the stack runs yet.
    first_deploy: bool,
    new_version: String,
}

/// Phase 1: what runs now, which release to go to (refusing what makes no sense: a plain
/// deploy of a deployed app, an upgrade of an undeployed one, a release over a chaos deploy).
async fn choose(
    abra: &AbraDir,
    req: &DeployRequest,
    app: &App,
    engine: &Engine,
    stack_name: &str,
    reporter: &mut dyn Reporter,
) -> Result<Target> {
    let deployed = deployed_version(engine, stack_name).await?;
    if let (Some((v, _)), DeployKind::Deploy, false) = (&deployed, req.kind, req.force) {
        return Err(OpsError::Refused(format!(
            "{} is already deployed (version {v}); use `cooper app upgrade {}` for a newer release, \
             or `cooper app deploy -f {}` to deploy again",
            app.at.domain, app.at.domain, app.at.domain
        )));
    }
    if req.kind != DeployKind::Deploy && deployed.is_none() {
        return Err(OpsError::Refused(format!(
            "{} is not deployed; deploy it first with `cooper app deploy {}`",
            app.at.domain, app.at.domain
        )));
    }
    if let (Some((_, true)), DeployKind::Upgrade | DeployKind::Rollback, false) =
        (&deployed, req.kind, req.chaos || req.force)
    {
        return Err(OpsError::Refused(format!(
            "{} runs a chaos deploy (the recipe's working tree); pass -f to replace it with a release",
            app.at.domain
        )));
    }
    let current_version = deployed
        .as_ref()
        .map(|(v, _)| v.clone())
        .or_else(|| app.recipe.version.clone());
    let repo = abra.recipe(&app.recipe.name)?;
    let explicit = choose_version(
        &repo,
        req.kind,
        current_version.as_deref(),
        req.version.as_deref(),
    )?;
    let recorded = if req.kind == DeployKind::Deploy {
        app.recipe.version.clone()
    } else {
        None
    };
    let files = stack::select_files(
        &repo,
        recorded.as_deref(),
        &VersionChoice {
            explicit,
            chaos: req.chaos,
        },
    )?;
    let new_version = files.origin.version_label();
    if files.origin.is_chaos() {
        reporter.info(&format!(
            "chaos: deploying recipe {} from its {}",
            app.recipe.name, files.origin
        ));
    }
    Ok(Target {
        repo,
        files,
        current_version,
        first_deploy: deployed.is_none(),
        new_version,
    })
}

/// What a deploy will send.
struct Planned {
    stack: convert::StackPlan,
    compose_files: Vec<String>,
    timeout: Duration,
}

/// Phase 2: the recipe's files at the version → the stack → Swarm specs, with cooper's labels
/// (recipe, chaos, version when the recipe has no label of its own) and the timeout (the
/// request's, else the recipe's `coop-cloud.<stack>.timeout` label, else the default).
fn plan(
    req: &DeployRequest,
    app: &App,
    stack_name: &str,
    target: &Target,
    record: &mut Record,
) -> Result<Planned> {
    let t = Instant::now();
    let files = &target.files;
    let loaded = stack::load(&app.at.domain, &app.env, files)?;
    let mut extra = BTreeMap::new();
    extra.insert(label(stack_name, "recipe"), app.recipe.name.clone());
    extra.insert(
        label(stack_name, "chaos"),
        files.origin.is_chaos().to_string(),
    );
    if let Origin::WorkTree { .. } = files.origin {
        extra.insert(
            label(stack_name, "chaos-version"),
            target.new_version.clone(),
        );
    }
    let version_key = label(stack_name, "version");
    let has_version_label = loaded
        .compose
        .services
        .values()
        .any(|s| s.deploy.labels.contains_key(&version_key));
    if !has_version_label {
        extra.insert(version_key, target.new_version.clone());
    }
    let stack = convert::convert(stack_name, &loaded.compose, files, &extra)?;
    let timeout = req.timeout.unwrap_or_else(|| {
        loaded
            .compose
            .services
            .values()
            .find_map(|s| s.deploy.labels.get(&label(stack_name, "timeout")))
            .and_then(|t| t.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT)
    });
    record.step(
        "render",
        format!(
            "{} at {}: {}",
            app.recipe.name,
            files.origin,
            loaded.compose_files.join(":")
        ),
        true,
        t,
    );
    Ok(Planned {
        stack,
        compose_files: loaded.compose_files,
        timeout,
    })
}

/// Phase 3: everything the stack needs that the deploy does not create is there (networks,
/// secrets, configs, images); otherwise refuse with the fixes, having changed nothing.
async fn preflight(
    engine: &Engine,
    planned: &Planned,
    app: &App,
    record: &mut Record,
) -> Result<()> {
    let t = Instant::now();
    let problems = engine.preflight(&planned.stack).await?;
    if problems.is_empty() {
        record.step(
            "preflight",
            "networks, secrets, configs and images present",
            true,
            t,
        );
        return Ok(());
    }
    let mut lines: Vec<String> = Vec::new();
    for p in &problems {
        lines.push(p.to_string());
        if let PreflightError::Placement { blocked, .. } = p {
            lines.extend(placement_fixes(blocked, &app.at.server));
        }
        if let PreflightError::MissingSecrets(_) = p {
            lines.push(format!(
                "  fix: `cooper app secret generate {} --all` (or `cooper app secret insert` for \
                 secrets marked generate=false)",
                app.at.domain
            ));
        }
    }
    record.step("preflight", lines.join("; "), false, t);
    Err(OpsError::Refused(format!(
        "cannot deploy {}; nothing was changed:\n  {}",
        app.at.domain,
        lines.join("\n  ")
    )))
}

/// How to give a service with nowhere to run a node again.
fn placement_fixes(blocked: &cooper_engine::nodes::Blocked, server: &str) -> Vec<String> {
    let host = |n: &String| n.split(' ').next().unwrap_or_default().to_string();
    let mut lines: Vec<String> = blocked
        .inactive
        .iter()
        .map(|n| {
            format!(
                "  fix: `cooper server activate {server} {}` lets it take tasks again",
                host(n)
            )
        })
        .collect();
    if !blocked.down.is_empty() {
        lines.push(format!(
            "  fix: start {} again (`cooper server nodes {server}` shows the nodes), or change \
             the service's placement",
            blocked.down.iter().map(host).collect::<Vec<_>>().join(", ")
        ));
    }
    if lines.is_empty() {
        lines.push(
            "  fix: give a node what the placement asks (a label: `docker node update \
             --label-add KEY=VALUE NODE`), or change the service's placement"
                .to_string(),
        );
    }
    lines
}

/// After a timeout, the services that wait for down nodes (see
/// [`cooper_engine::nodes::held_by_down_nodes`]); `None` when a way back could help.
async fn waiting_for_down_nodes(
    engine: &Engine,
    planned: &Planned,
    applied: &Applied,
    pending: &[cooper_engine::converge::ServiceProgress],
) -> Option<Vec<(String, Vec<String>)>> {
    let nodes = engine.nodes().await.ok()?;
    let specs: Vec<_> = planned.stack.services.values().collect();
    cooper_engine::nodes::held_by_down_nodes(pending, &specs, &applied.previous.services, &nodes)
}

/// Phase 4: what the operator is asked to confirm: versions, files, services created or
/// removed, environment variables that change (names only), release notes crossed.
async fn overview(
    engine: &Engine,
    stack_name: &str,
    app: &App,
    target: &Target,
    planned: &Planned,
) -> Result<Overview> {
    use cooper_engine::apply::container_env;
    let current_specs: BTreeMap<String, Vec<String>> = engine
        .stack_services(stack_name)
        .await?
        .iter()
        .map(|s| {
            (
                cooper_engine::apply::service_name(s).to_string(),
                container_env(s.spec.as_ref()),
            )
        })
        .collect();
    let mut env_changes = Vec::new();
    let mut new_services = Vec::new();
    for spec in planned.stack.services.values() {
        let name = spec.name.clone().unwrap_or_default();
        match current_specs.get(&name) {
            Some(old) => {
                let d = env_diff(old, &container_env(Some(spec)));
                if !d.is_empty() {
                    env_changes.push((name, d));
                }
            }
            None => new_services.push(name),
        }
    }
    let removed_services: Vec<String> = current_specs
        .keys()
        .filter(|n| {
            !planned
                .stack
                .services
                .values()
                .any(|s| s.name.as_ref() == Some(n))
        })
        .cloned()
        .collect();
    let origin = &target.files.origin;
    Ok(Overview {
        env_changes,
        new_services,
        removed_services,
        app: app.at.domain.clone(),
        server: app.at.server.clone(),
        recipe: app.recipe.name.clone(),
        current_version: if target.first_deploy {
            None
        } else {
            target.current_version.clone()
        },
        first_deploy: target.first_deploy,
        new_version: target.new_version.clone(),
        source: origin.to_string(),
        chaos: origin.is_chaos(),
        compose_files: planned.compose_files.clone(),
        services: planned.stack.services.keys().cloned().collect(),
        release_notes: if origin.is_chaos() {
            Vec::new()
        } else {
            release_notes(
                &target.repo,
                target.current_version.as_deref(),
                &target.new_version,
            )
        },
        timeout_secs: planned.timeout.as_secs(),
    })
}

/// Phase 5 (upgrades): a backup before anything changes; its failure refuses the upgrade. An
/// app with nothing to back up goes on with a warning.
async fn safety_backup(
    abra: &AbraDir,
    app: &App,
    engine: &Engine,
    reporter: &mut dyn Reporter,
    record: &mut Record,
) -> Result<Option<String>> {
    reporter.info("safety backup before the upgrade");
    match crate::backup::create_with(abra, app, engine, reporter, record).await {
        Ok(r) => {
            if let Some(id) = &r.snapshot {
                record
                    .details
                    .insert("safety_snapshot".into(), serde_json::json!(id));
                reporter.info(&format!("safety backup: snapshot {id}"));
            }
            Ok(r.snapshot)
        }
        Err(OpsError::Refused(why)) if why.starts_with("nothing to back up") => {
            reporter.info(&format!("warning: no safety backup: {why}"));
            Ok(None)
        }
        Err(e) => Err(OpsError::Refused(format!(
            "the safety backup before upgrading {} failed, so nothing was changed:\n  {e}\n  \
             fix the backup, or pass --no-backup to upgrade without one",
            app.at.domain
        ))),
    }
}

/// What was sent, for settling or going back.
struct Deployed<'a> {
    engine: &'a Engine,
    stack: &'a str,
    applied: &'a Applied,
    target: &'a Target,
    safety_snapshot: Option<&'a str>,
}

/// Phase 6c: the new spec is in place but some services wait for a node that is down, and the
/// spec before would wait for it too: no rollback (it cannot help), the version is the new
/// one, and the error says what waits for what. Swarm starts the tasks when the node is back.
fn hold_for_nodes(
    app: &mut App,
    d: &Deployed<'_>,
    req: &DeployRequest,
    waits: &[(String, Vec<String>)],
    record: &mut Record,
    t: Instant,
) -> Result<DeployReport> {
    let version = &d.target.new_version;
    if !d.target.files.origin.is_chaos() {
        app.set_version(Some(version));
        app.save()?;
    }
    let lines: Vec<String> = waits
        .iter()
        .map(|(service, down)| format!("service {service} waits for {}", down.join(", ")))
        .collect();
    record.step(
        "converge",
        format!("waiting: {}", lines.join("; ")),
        false,
        t,
    );
    Err(OpsError::Broken(format!(
        "{} of {} to {version} is in place, but not running:\n  {}\n  not rolled back: the \
         version before would wait for the same node. Swarm starts the tasks when the node is \
         back; `cooper app ps {}` shows where they are, `cooper server nodes {}` the nodes",
        req.kind.name().trim_start_matches("app "),
        app.at.domain,
        lines.join("\n  "),
        app.at.domain,
        app.at.server
    )))
}

/// Phase 6a: converged. The deployed version goes on the app's TYPE line (not for chaos).
fn settle(app: &mut App, d: &Deployed<'_>, elapsed: Duration) -> Result<DeployReport> {
    let version = &d.target.new_version;
    if !d.target.files.origin.is_chaos() {
        app.set_version(Some(version));
        app.save()?;
    }
    let n = d.applied.services().len();
    let mut summary = vec![format!(
        "{} runs {} {} ({} service{} converged in {:.1}s)",
        app.at.domain,
        app.recipe.name,
        version,
        n,
        plural(n),
        elapsed.as_secs_f64()
    )];
    if let Some(id) = d.safety_snapshot {
        summary.push(format!(
            "the data from before the upgrade is in snapshot {id} (`cooper app restore {} \
             --snapshot {id}` puts it back)",
            app.at.domain
        ));
    }
    Ok(DeployReport {
        version: version.clone(),
        // Filled in by the envelope.
        elapsed: Duration::ZERO,
        record_path: None,
        summary,
    })
}

/// Why a watch did not converge, and the lines that say so (task errors, healthcheck output,
/// log lines, or what was still pending at the timeout).
async fn describe_outcome(
    engine: &Engine,
    outcome: &Outcome,
    timeout: Duration,
) -> (&'static str, Vec<String>) {
    match outcome {
        Outcome::Failed { failures, .. } => ("failed", failure_details(engine, failures).await),
        Outcome::TimedOut { pending, .. } => (
            "did not converge in time",
            pending
                .iter()
                .map(|p| {
                    format!(
                        "service {}: {}/{} running after {}s{}",
                        p.service,
                        p.running,
                        p.desired,
                        timeout.as_secs(),
                        p.last_error
                            .as_ref()
                            .map(|e| format!(" (last task error: {e})"))
                            .unwrap_or_default()
                    )
                })
                .collect(),
        ),
        Outcome::Converged { .. } => ("converged", Vec::new()),
    }
}

/// The task count to report once the way back converged: a start-first rollback can still be
/// stopping the surplus task it started (4/3 running); wait for it (bounded, 30 s) so the line
/// says what runs, not a moment of the handover.
async fn settled_count(
    engine: &Engine,
    stack: &str,
    running: usize,
    desired: usize,
) -> (usize, usize) {
    let (mut running, mut desired) = (running, desired);
    let start = Instant::now();
    while running > desired && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(Some(st)) = engine.all_stacks().await.map(|m| m.get(stack).cloned()) {
            running = st.running as usize;
            desired = st.desired as usize;
        }
    }
    (running, desired)
}

/// How a failed deploy ended.
enum WayBack {
    /// `--no-rollback`: left as it is by cooper (Swarm may still roll back the services whose
    /// `failure_action` says so; they are named).
    NotTried { by_swarm: Vec<String> },
    /// A first deploy has nothing to go back to.
    Nothing { domain: String },
    /// The previous specs run N/N again: put back by cooper, by Swarm's own rollback, or both.
    Back {
        by_swarm: Vec<String>,
        by_cooper: Vec<String>,
        version: Option<String>,
        running: usize,
        desired: usize,
    },
    /// The way back did not converge: the app does not run as before.
    Stuck { why: String },
}

impl WayBack {
    fn runs_as_before(&self) -> bool {
        matches!(self, WayBack::Back { .. })
    }

    fn line(&self) -> String {
        match self {
            WayBack::NotTried { by_swarm } if by_swarm.is_empty() => {
                "--no-rollback: the failed services were left as they are".into()
            }
            WayBack::NotTried { by_swarm } => format!(
                "--no-rollback: cooper did not roll back, but Swarm rolls back {} by itself (its \
                 failure_action: rollback); cooper did not wait for it",
                by_swarm.join(", ")
            ),
            WayBack::Nothing { domain } => format!(
                "this was a first deploy, so there is nothing to roll back to; the services are \
                 left for inspection (`cooper app errors {domain}`), remove them with `cooper app \
                 undeploy {domain}`"
            ),
            WayBack::Back {
                by_swarm,
                by_cooper,
                version,
                running,
                desired,
            } => {
                let runs = format!(
                    "{} runs again ({running}/{desired} tasks running; volumes were not touched)",
                    version.as_deref().unwrap_or("the previous version")
                );
                if by_swarm.is_empty() {
                    format!("rolled back: the previous version runs again — {runs}")
                } else if by_cooper.is_empty() {
                    format!(
                        "Swarm rolled back on its own (failure_action: rollback on {}): {runs}",
                        by_swarm.join(", ")
                    )
                } else {
                    format!(
                        "Swarm rolled back {} (its failure_action) and cooper put back {}: {runs}",
                        by_swarm.join(", "),
                        by_cooper.join(", ")
                    )
                }
            }
            WayBack::Stuck { why } => format!(
                "ROLLBACK DID NOT CONVERGE: {why}; check `cooper app ps` and `cooper app errors` \
                 now (volumes were not touched)"
            ),
        }
    }
}

/// Phase 6b: the way back. Services Swarm is rolling back itself are left to it (no competing
/// update); the others get the specs read before the apply (created ones removed, removed ones
/// re-created). Then both are awaited until the previous specs run N/N and healthy, with at
/// least the default patience: old tasks may take their whole stop grace period to go.
async fn roll_back(
    d: &Deployed<'_>,
    req: &DeployRequest,
    opts: &WatchOptions,
    by_swarm: Vec<String>,
    reporter: &mut dyn Reporter,
    record: &mut Record,
) -> Result<WayBack> {
    if req.no_rollback {
        return Ok(WayBack::NotTried { by_swarm });
    }
    if d.applied.previous.services.is_empty() {
        return Ok(WayBack::Nothing {
            domain: req.domain.clone(),
        });
    }
    let t = Instant::now();
    let restored = d.engine.restore(d.applied).await?;
    if !restored.left_to_swarm.is_empty() {
        reporter.info(&format!(
            "Swarm is rolling back {} itself; waiting for it",
            restored.left_to_swarm.join(", ")
        ));
    }
    if !restored.sent.is_empty() {
        reporter.info("rolling back to the previous service specs");
    }
    let names: Vec<String> = d.applied.previous.services.keys().cloned().collect();
    let back = WatchOptions {
        timeout: opts.timeout.max(DEFAULT_TIMEOUT),
        returning: true,
        ..opts.clone()
    };
    let mut last: Vec<cooper_engine::converge::ServiceProgress> = Vec::new();
    let outcome = d
        .engine
        .watch(d.stack, &names, &back, |p| {
            last = p.to_vec();
            reporter.progress(p)
        })
        .await?;
    let way_back = match outcome {
        Outcome::Converged { .. } => {
            let (running, desired) = settled_count(
                d.engine,
                d.stack,
                last.iter().map(|p| p.running).sum(),
                last.iter().map(|p| p.desired).sum(),
            )
            .await;
            WayBack::Back {
                by_swarm: restored.left_to_swarm,
                by_cooper: restored.sent,
                version: deployed_version(d.engine, d.stack)
                    .await?
                    .map(|(v, _)| v)
                    .or_else(|| d.target.current_version.clone()),
                running,
                desired,
            }
        }
        Outcome::Failed { failures, .. } => WayBack::Stuck {
            why: failures
                .iter()
                .map(describe_failure)
                .collect::<Vec<_>>()
                .join("; "),
        },
        Outcome::TimedOut { pending, .. } => WayBack::Stuck {
            why: pending
                .iter()
                .map(|p| format!("{} {}/{} running", p.service, p.running, p.desired))
                .collect::<Vec<_>>()
                .join(", "),
        },
    };
    record.step("rollback", way_back.line(), way_back.runs_as_before(), t);
    Ok(way_back)
}

/// Removes an app's services, networks and configs; keeps volumes and secrets. Waits until
/// the services' tasks are gone.
pub async fn undeploy(abra: &AbraDir, domain: &str, reporter: &mut dyn Reporter) -> Result<()> {
    let envelope = Envelope::locked("app undeploy", domain);
    op::run(abra, envelope, reporter, async |op: &mut Op<'_>| {
        let engine = op.connect().await?;
        engine.require_manager().await?;
        let t = Instant::now();
        let removed = engine.remove_stack(&crate::stack_of(&op.app)).await?;
        op.record.step("remove", removed.join(", "), true, t);
        op.reporter.info(&format!(
            "removed {}",
            if removed.is_empty() {
                "nothing (not deployed)".to_string()
            } else {
                removed.join(", ")
            }
        ));
        Ok(())
    })
    .await
    .map(|_| ())
}

/// Deletes an app's `.env` (and optionally its volumes and secrets). The app must be undeployed.
/// Removes the volumes of an app that is not deployed (its containers must be gone; retried
/// while the engine still says a volume is in use, for up to 30 s).
pub async fn remove_volumes(abra: &AbraDir, domain: &str) -> Result<Vec<String>> {
    let app = abra.app(domain)?;
    let engine = connect(abra, &app.at.server).await?;
    let stack_name = crate::stack_of(&app);
    if deployed_version(&engine, &stack_name).await?.is_some() {
        return Err(OpsError::Refused(format!(
            "{domain} is deployed; undeploy it first with `cooper app undeploy {domain}`"
        )));
    }
    let mut removed = Vec::new();
    for v in engine.stack_volumes(&stack_name).await? {
        let start = Instant::now();
        loop {
            match engine.remove_volume(&v).await {
                Ok(()) => break,
                Err(e) if start.elapsed() < Duration::from_secs(30) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        removed.push(format!("volume {v}"));
    }
    Ok(removed)
}

pub async fn remove_app(
    abra: &AbraDir,
    domain: &str,
    volumes: bool,
    secrets: bool,
) -> Result<Vec<String>> {
    let app = abra.app(domain)?;
    let server_dir = abra.servers_dir().join(&app.at.server);
    let _lock = AppLock::acquire(&server_dir, domain, "app remove", None)?;
    let stack_name = crate::stack_of(&app);
    let mut removed = Vec::new();
    if volumes || secrets {
        let engine = connect(abra, &app.at.server).await?;
        if deployed_version(&engine, &stack_name).await?.is_some() {
            return Err(OpsError::Refused(format!(
                "{domain} is deployed; undeploy it first with `cooper app undeploy {domain}`"
            )));
        }
        if volumes {
            for v in engine.stack_volumes(&stack_name).await? {
                engine.remove_volume(&v).await?;
                removed.push(format!("volume {v}"));
            }
        }
        if secrets {
            for (name, _) in engine.stack_secrets(&stack_name).await? {
                engine.remove_secret(&name).await?;
                removed.push(format!("secret {name}"));
            }
        }
    } else if let Ok(engine) = connect(abra, &app.at.server).await {
        if deployed_version(&engine, &stack_name).await?.is_some() {
            return Err(OpsError::Refused(format!(
                "{domain} is deployed; undeploy it first with `cooper app undeploy {domain}`"
            )));
        }
    }
    std::fs::remove_file(&app.at.path)
        .map_err(|e| OpsError::Failed(format!("removing {}: {e}", app.at.path.display())))?;
    removed.push(app.at.path.display().to_string());
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_way_back_says_who_went_back() {
        let line = |w: WayBack| (w.line(), w.runs_as_before());
        let back = |by_swarm: &[&str], by_cooper: &[&str]| WayBack::Back {
            by_swarm: by_swarm.iter().map(|s| s.to_string()).collect(),
            by_cooper: by_cooper.iter().map(|s| s.to_string()).collect(),
            version: Some("1.0.0+1".into()),
            running: 3,
            desired: 3,
        };
        let (l, ok) = line(back(&["s_app"], &[]));
        assert!(ok);
        assert!(
            l.starts_with("Swarm rolled back on its own (failure_action: rollback on s_app)")
                && l.contains("1.0.0+1 runs again (3/3 tasks running"),
            "{l}"
        );
        let (l, _) = line(back(&[], &["s_app"]));
        assert!(
            l.starts_with("rolled back: the previous version runs again"),
            "{l}"
        );
        let (l, _) = line(back(&["s_app"], &["s_db"]));
        assert!(
            l.contains("Swarm rolled back s_app") && l.contains("cooper put back s_db"),
            "{l}"
        );
        let (l, ok) = line(WayBack::NotTried {
            by_swarm: vec!["s_app".into()],
        });
        assert!(!ok);
        assert!(l.contains("Swarm rolls back s_app by itself"), "{l}");
        let (l, ok) = line(WayBack::Stuck {
            why: "s_app 0/1 running".into(),
        });
        assert!(
            !ok && l.starts_with("ROLLBACK DID NOT CONVERGE: s_app 0/1 running"),
            "{l}"
        );
    }

    #[test]
    fn env_changes_show_names_only() {
        let old = vec![
            "A=1".to_string(),
            "B=2".into(),
            "GONE=x".into(),
            "PASS".into(),
        ];
        let new = vec![
            "A=1".to_string(),
            "B=3".into(),
            "NEW=secret".into(),
            "PASS".into(),
        ];
        let d = env_diff(&old, &new);
        assert_eq!(d, vec!["~B", "+NEW", "-GONE"]);
        assert!(!d.iter().any(|c| c.contains("secret") || c.contains('3')));
    }
}
