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
use cooper_recipe::abra_dir::AbraDir;
use cooper_recipe::repo::{Origin, RecipeRepo};
use cooper_recipe::stack::{self, VersionChoice};
use cooper_recipe::version::RecipeVersion;
use serde::Serialize;

use crate::lock::AppLock;
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
    pub current_version: Option<String>,
    pub new_version: String,
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
        if let Some(c) = &f.container_id {
            if let Some(h) = engine.last_health_output(c).await.filter(|h| !h.is_empty()) {
                lines.push(format!("  last healthcheck output: {h}"));
            }
            let logs = engine.container_logs(c, 10).await;
            if !logs.is_empty() {
                lines.push("  last log lines:".into());
                lines.extend(logs.into_iter().map(|l| format!("    {l}")));
            }
        }
    }
    lines
}

/// Deploys, upgrades or rolls back an app.
pub async fn deploy(
    abra: &AbraDir,
    req: &DeployRequest,
    reporter: &mut dyn Reporter,
) -> Result<DeployReport> {
    let started = Instant::now();
    let mut app = abra.app(&req.domain)?;
    let server_dir = abra.servers_dir().join(&app.at.server);
    let lock = AppLock::acquire(&server_dir, &app.at.domain, req.kind.name(), req.wait_lock)?;
    if let Some(h) = &lock.recovered_from {
        reporter.info(&format!(
            "note: the previous operation on this app, {h}, ended without finishing; checking the \
             stack's real state now"
        ));
    }
    let mut record = Record::new(
        req.kind.name(),
        &app.at.domain,
        &app.at.server,
        &app.recipe.name,
    );
    let result = run_deploy(abra, req, reporter, &mut app, &mut record, started).await;
    record.finish_with(&result);
    let saved = record.save(&abra.root).ok();
    drop(lock);
    result.map(|mut r| {
        r.record_path = saved;
        r
    })
}

async fn run_deploy(
    abra: &AbraDir,
    req: &DeployRequest,
    reporter: &mut dyn Reporter,
    app: &mut cooper_recipe::abra_dir::App,
    record: &mut Record,
    started: Instant,
) -> Result<DeployReport> {
    let stack_name = crate::stack_of(app);
    let t = Instant::now();
    let engine = connect(abra, &app.at.server).await?;
    engine.require_manager().await?;
    record.step(
        "connect",
        format!("{} ({})", app.at.server, engine.endpoint),
        true,
        t,
    );

    let deployed = deployed_version(&engine, &stack_name).await?;
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
    record.from_version = current_version.clone();
    record.to_version = Some(new_version.clone());
    if files.origin.is_chaos() {
        reporter.info(&format!(
            "chaos: deploying recipe {} from its {}",
            app.recipe.name, files.origin
        ));
    }

    let t = Instant::now();
    let loaded = stack::load(&app.at.domain, &app.env, &files)?;
    let mut extra = BTreeMap::new();
    extra.insert(label(&stack_name, "recipe"), app.recipe.name.clone());
    extra.insert(
        label(&stack_name, "chaos"),
        files.origin.is_chaos().to_string(),
    );
    if let Origin::WorkTree { .. } = files.origin {
        extra.insert(label(&stack_name, "chaos-version"), new_version.clone());
    }
    let version_key = label(&stack_name, "version");
    let has_version_label = loaded
        .compose
        .services
        .values()
        .any(|s| s.deploy.labels.contains_key(&version_key));
    if !has_version_label {
        extra.insert(version_key, new_version.clone());
    }
    let plan = convert::convert(&stack_name, &loaded.compose, &files, &extra)?;
    let timeout = req.timeout.unwrap_or_else(|| {
        loaded
            .compose
            .services
            .values()
            .find_map(|s| s.deploy.labels.get(&label(&stack_name, "timeout")))
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

    let t = Instant::now();
    let problems = engine.preflight(&plan).await?;
    if !problems.is_empty() {
        let mut lines: Vec<String> = Vec::new();
        for p in &problems {
            lines.push(p.to_string());
            if let PreflightError::MissingSecrets(_) = p {
                lines.push(format!(
                    "  fix: `cooper app secret generate {} --all` (or `cooper app secret insert` for \
                     secrets marked generate=false)",
                    app.at.domain
                ));
            }
        }
        record.step("preflight", lines.join("; "), false, t);
        return Err(OpsError::Refused(format!(
            "cannot deploy {}; nothing was changed:\n  {}",
            app.at.domain,
            lines.join("\n  ")
        )));
    }
    record.step(
        "preflight",
        "networks, secrets, configs and images present",
        true,
        t,
    );

    let current_specs: BTreeMap<String, Vec<String>> = engine
        .stack_services(&stack_name)
        .await?
        .iter()
        .map(|s| {
            let env = s
                .spec
                .as_ref()
                .and_then(|sp| sp.task_template.as_ref())
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.env.clone())
                .unwrap_or_default();
            (cooper_engine::apply::service_name(s).to_string(), env)
        })
        .collect();
    let mut env_changes = Vec::new();
    let mut new_services = Vec::new();
    for spec in plan.services.values() {
        let name = spec.name.clone().unwrap_or_default();
        let env = spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.env.clone())
            .unwrap_or_default();
        match current_specs.get(&name) {
            Some(old) => {
                let d = env_diff(old, &env);
                if !d.is_empty() {
                    env_changes.push((name, d));
                }
            }
            None => new_services.push(name),
        }
    }
    let planned: Vec<String> = plan
        .services
        .values()
        .filter_map(|s| s.name.clone())
        .collect();
    let removed_services: Vec<String> = current_specs
        .keys()
        .filter(|n| !planned.contains(n))
        .cloned()
        .collect();
    let overview = Overview {
        env_changes,
        new_services,
        removed_services,
        app: app.at.domain.clone(),
        server: app.at.server.clone(),
        recipe: app.recipe.name.clone(),
        current_version: current_version.clone(),
        new_version: new_version.clone(),
        source: files.origin.to_string(),
        chaos: files.origin.is_chaos(),
        compose_files: loaded.compose_files.clone(),
        services: plan.services.keys().cloned().collect(),
        release_notes: if files.origin.is_chaos() {
            Vec::new()
        } else {
            release_notes(&repo, current_version.as_deref(), &new_version)
        },
        timeout_secs: timeout.as_secs(),
    };
    if !reporter.confirm(&overview) {
        record.step("confirm", "declined", false, Instant::now());
        return Err(OpsError::Refused(
            "not confirmed; nothing was changed".into(),
        ));
    }

    let mut safety_snapshot: Option<String> = None;
    if req.kind == DeployKind::Upgrade && req.safety_backup {
        reporter.info("safety backup before the upgrade");
        match crate::backup::create_with(abra, app, &engine, reporter, record).await {
            Ok(r) => {
                safety_snapshot = r.snapshot.clone();
                if let Some(id) = &r.snapshot {
                    record
                        .details
                        .insert("safety_snapshot".into(), serde_json::json!(id));
                    reporter.info(&format!("safety backup: snapshot {id}"));
                }
            }
            Err(OpsError::Refused(why)) if why.starts_with("nothing to back up") => {
                reporter.info(&format!("warning: no safety backup: {why}"));
            }
            Err(e) => {
                return Err(OpsError::Refused(format!(
                "the safety backup before upgrading {} failed, so nothing was changed:\n  {e}\n  \
                     fix the backup, or pass --no-backup to upgrade without one",
                app.at.domain
            )))
            }
        }
    }

    let t = Instant::now();
    let applied = engine.apply(&plan).await?;
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
        if names.len() == 1 { "" } else { "s" },
        timeout.as_secs()
    ));
    let opts = WatchOptions {
        timeout,
        max_task_failures: req.max_task_failures,
    };
    let t = Instant::now();
    let outcome = engine
        .watch(&stack_name, &names, &opts, |p| reporter.progress(p))
        .await?;
    match outcome {
        Outcome::Converged { elapsed } => {
            record.step(
                "converge",
                format!("converged in {:.1}s", elapsed.as_secs_f64()),
                true,
                t,
            );
            if !files.origin.is_chaos() {
                app.set_version(Some(&new_version));
                app.save()?;
            }
            let mut summary = Vec::new();
            if let Some(id) = &safety_snapshot {
                summary.push(format!(
                    "the data from before the upgrade is in snapshot {id} (`cooper app restore {} \
                     --snapshot {id}` puts it back)",
                    app.at.domain
                ));
            }
            summary.insert(
                0,
                format!(
                    "{} runs {} {} ({} service{} converged in {:.1}s)",
                    app.at.domain,
                    app.recipe.name,
                    new_version,
                    names.len(),
                    if names.len() == 1 { "" } else { "s" },
                    elapsed.as_secs_f64()
                ),
            );
            Ok(DeployReport {
                version: new_version.clone(),
                elapsed: started.elapsed(),
                record_path: None,
                summary,
            })
        }
        failed => {
            let mut lines = match &failed {
                Outcome::Failed { failures, .. } => failure_details(&engine, failures).await,
                Outcome::TimedOut { pending, .. } => pending
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
                Outcome::Converged { .. } => Vec::new(),
            };
            let what = if matches!(failed, Outcome::TimedOut { .. }) {
                "did not converge in time"
            } else {
                "failed"
            };
            record.step(
                "converge",
                format!("{what}: {}", lines.join("; ")),
                false,
                t,
            );
            let rolled_back =
                rollback(&engine, &stack_name, &applied, req, &opts, reporter, record).await?;
            lines.push(rolled_back);
            if let Some(id) = &safety_snapshot {
                lines.push(format!(
                    "the data from before the upgrade is in snapshot {id}; if the failed version \
                     changed it, put it back with `cooper app restore {} --snapshot {id}`",
                    app.at.domain
                ));
            }
            Err(OpsError::Failed(format!(
                "{} of {} {} {what}:\n  {}",
                req.kind.name().trim_start_matches("app "),
                app.at.domain,
                new_version,
                lines.join("\n  ")
            )))
        }
    }
}

async fn rollback(
    engine: &Engine,
    stack_name: &str,
    applied: &Applied,
    req: &DeployRequest,
    opts: &WatchOptions,
    reporter: &mut dyn Reporter,
    record: &mut Record,
) -> Result<String> {
    if req.no_rollback {
        return Ok("--no-rollback: the failed services were left as they are".into());
    }
    if applied.previous.services.is_empty() {
        return Ok(format!(
            "this was a first deploy, so there is nothing to roll back to; the services are left for \
             inspection (`cooper app errors {}`), remove them with `cooper app undeploy {}`",
            req.domain, req.domain
        ));
    }
    let t = Instant::now();
    reporter.info("rolling back to the previous service specs");
    engine.restore(applied).await?;
    let names: Vec<String> = applied.previous.services.keys().cloned().collect();
    // The way back gets at least the default patience, whatever the failed deploy had: old
    // tasks may take their whole stop grace period to go.
    let back = WatchOptions {
        timeout: opts.timeout.max(DEFAULT_TIMEOUT),
        ..opts.clone()
    };
    let outcome = engine
        .watch(stack_name, &names, &back, |p| reporter.progress(p))
        .await?;
    let ok = matches!(outcome, Outcome::Converged { .. });
    let line = if ok {
        "rolled back: the previous version runs again (volumes were not touched)".to_string()
    } else {
        "ROLLBACK DID NOT CONVERGE: check `cooper app ps` and `cooper app errors` now (volumes were not touched)".to_string()
    };
    record.step("rollback", line.clone(), ok, t);
    Ok(line)
}

/// Removes an app's services, networks and configs; keeps volumes and secrets. Waits until
/// the services' tasks are gone.
pub async fn undeploy(abra: &AbraDir, domain: &str, reporter: &mut dyn Reporter) -> Result<()> {
    let app = abra.app(domain)?;
    let server_dir = abra.servers_dir().join(&app.at.server);
    let _lock = AppLock::acquire(&server_dir, domain, "app undeploy", None)?;
    let mut record = Record::new("app undeploy", domain, &app.at.server, &app.recipe.name);
    let stack_name = crate::stack_of(&app);
    let result = async {
        let engine = connect(abra, &app.at.server).await?;
        engine.require_manager().await?;
        let t = Instant::now();
        let removed = engine.remove_stack(&stack_name).await?;
        record.step("remove", removed.join(", "), true, t);
        reporter.info(&format!(
            "removed {}",
            if removed.is_empty() {
                "nothing (not deployed)".to_string()
            } else {
                removed.join(", ")
            }
        ));
        Ok::<(), OpsError>(())
    }
    .await;
    record.finish_with(&result);
    let _ = record.save(&abra.root);
    result
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
