//! `cooper recipe test`: the lifecycle tiers of a recipe version on a throwaway app.
//!
//! install (the previous release when there is one, converged, its tests pass) → seed (the
//! suites' `seed` steps) → upgrade to the version under test (converged, `check` passes) →
//! backup → wipe (undeploy, volumes removed, deployed again empty) → restore (converged,
//! `check` passes: the seeded data is back) → custom (the suites' tests) → teardown (always:
//! services, volumes, secrets, networks, configs, snapshots and the `.env` go, and a check
//! that nothing is left).
//!
//! **Level** (stored per recipe version in `$ABRA_DIR/cooper/levels/<recipe>.json`): the
//! number of tiers passed, in order, before the first failure; a skipped tier (e.g. "no backup
//! labels", "first release") neither counts nor stops the count. 8 = every tier passed.
//!
//! The throwaway app's domain is `cooper-test-<run>.test` and its `.env` says so in its first
//! line, so leftovers of a killed run can be found by that mark.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cooper_checks::report::{Outcome, RunReport, StepResult};
use cooper_recipe::abra_dir::{write_atomic, AbraDir};
use cooper_recipe::envfile::{EnvFile, RecipeRef};
use cooper_recipe::version::RecipeVersion;
use serde::Serialize;

use crate::test::{Phase, TestRequest};
use crate::{Collect, DeployKind, DeployRequest, OpsError, Reporter, Result};

/// The prefix of every throwaway app's domain.
pub const THROWAWAY_PREFIX: &str = "cooper-test-";

/// What to test.
#[derive(Debug, Clone)]
pub struct RecipeTestRequest {
    pub recipe: String,
    /// Default: the newest release.
    pub version: Option<String>,
    pub server: String,
    /// Extra `.env` settings for the throwaway app.
    pub env: Vec<(String, String)>,
    pub results: Option<PathBuf>,
    pub probe_image: String,
    pub base_url: Option<String>,
    pub timeout: Option<Duration>,
}

/// One tier's result.
#[derive(Debug, Clone, Serialize)]
pub struct Tier {
    pub tier: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub millis: u64,
}

/// The result of a recipe test.
#[derive(Debug, Clone, Serialize)]
pub struct RecipeTestReport {
    pub recipe: String,
    pub version: String,
    pub installed_from: String,
    pub domain: String,
    pub run: String,
    pub tiers: Vec<Tier>,
    pub level: u8,
    /// What teardown found left behind (must be empty).
    pub leftovers: Vec<String>,
    pub results: PathBuf,
}

/// The level of a list of tiers: passed tiers before the first failure; skips do not count.
pub fn level(tiers: &[Tier]) -> u8 {
    let mut n = 0;
    for t in tiers {
        match t.outcome {
            Outcome::Passed => n += 1,
            Outcome::Skipped(_) => {}
            Outcome::Failed(_) => break,
        }
    }
    n
}

struct Run<'a> {
    abra: &'a AbraDir,
    req: &'a RecipeTestRequest,
    domain: String,
    run: String,
    results: PathBuf,
    tiers: Vec<Tier>,
}

impl Run<'_> {
    fn push(&mut self, tier: &str, outcome: Outcome, t: Instant, reporter: &mut dyn Reporter) {
        reporter.info(&match &outcome {
            Outcome::Passed => format!("tier {tier}: passed ({:.1}s)", t.elapsed().as_secs_f64()),
            Outcome::Failed(w) => format!("tier {tier}: FAILED: {w}"),
            Outcome::Skipped(w) => format!("tier {tier}: skipped ({w})"),
        });
        self.tiers.push(Tier {
            tier: tier.into(),
            outcome,
            millis: t.elapsed().as_millis() as u64,
        });
    }

    fn failed(&self) -> bool {
        self.tiers
            .iter()
            .any(|t| matches!(t.outcome, Outcome::Failed(_)))
    }

    /// Runs test phases; `None` when the suites have no steps in them.
    async fn phases(&self, phases: &[Phase], wrap: bool, name: &str) -> Result<Option<Outcome>> {
        let mut req = TestRequest::new(&self.domain);
        req.phases = phases.to_vec();
        req.setup_and_cleanup = wrap;
        req.run_id = Some(self.run.clone());
        req.results = Some(self.results.join(name));
        req.probe_image = self.req.probe_image.clone();
        req.base_url = self.req.base_url.clone();
        let out = match crate::test::run(self.abra, &req, &mut Collect::default()).await {
            Ok(o) => o,
            Err(OpsError::Refused(why)) if why.contains("ships no tests") => return Ok(None),
            Err(e) => return Err(e),
        };
        if out.report.results.is_empty() {
            return Ok(None);
        }
        Ok(Some(if out.report.failed() == 0 {
            Outcome::Passed
        } else {
            Outcome::Failed(format!(
                "{} of {} steps failed: {} (reports in {})",
                out.report.failed(),
                out.report.results.len(),
                out.report.failures(),
                out.results.display()
            ))
        }))
    }

    async fn deploy(&self, kind: DeployKind, version: Option<&str>) -> Result<()> {
        let mut d = DeployRequest::new(&self.domain, kind);
        d.version = version.map(str::to_string);
        d.safety_backup = false;
        d.timeout = self.req.timeout;
        crate::deploy(self.abra, &d, &mut Collect::default())
            .await
            .map(|_| ())
    }
}

/// Runs the lifecycle tiers; teardown always runs.
pub async fn recipe_test(
    abra: &AbraDir,
    req: &RecipeTestRequest,
    reporter: &mut dyn Reporter,
) -> Result<RecipeTestReport> {
    let repo = abra.recipe(&req.recipe)?;
    let versions = repo.versions()?;
    let target = match &req.version {
        Some(v) => versions
            .iter()
            .find(|x| x.as_str() == v)
            .cloned()
            .ok_or_else(|| {
                OpsError::Refused(format!(
                    "{} has no release {v}; releases: {}",
                    req.recipe,
                    versions
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
        None => versions.last().cloned().ok_or_else(|| {
            OpsError::Refused(format!(
                "{} has no release to test; tag one first",
                req.recipe
            ))
        })?,
    };
    let previous: Option<RecipeVersion> = versions.iter().rfind(|v| **v < target).cloned();
    let install = previous.clone().unwrap_or_else(|| target.clone());
    let run = crate::test::run_id();
    let domain = format!("{THROWAWAY_PREFIX}{run}.test");
    let results = req.results.clone().unwrap_or_else(|| {
        abra.root
            .join("cooper")
            .join("test-results")
            .join(&req.recipe)
            .join(format!("{}-{run}", target))
    });
    std::fs::create_dir_all(&results)
        .map_err(|e| OpsError::Failed(format!("creating {}: {e}", results.display())))?;

    // The throwaway app's .env, from the installed version's sample.
    let files = repo.at_version(install.as_str())?;
    let sample = files.text(".env.sample").ok_or_else(|| {
        OpsError::Refused(format!(
            "{} at {install} has no .env.sample (lint rule R008)",
            req.recipe
        ))
    })?;
    let mut env = EnvFile::parse(&sample)
        .map_err(|e| OpsError::Refused(format!("{} .env.sample: {e}", req.recipe)))?;
    let mut recipe = RecipeRef::from_env(&env).unwrap_or(RecipeRef {
        key: "TYPE",
        name: req.recipe.clone(),
        version: None,
    });
    recipe.name = req.recipe.clone();
    recipe.version = Some(install.to_string());
    env.set(recipe.key, &recipe.value());
    env.set("DOMAIN", &domain);
    for (k, v) in &req.env {
        env.set(k, v);
    }
    let path = abra.new_app_path(&req.server, &domain)?;
    write_atomic(
        &path,
        format!(
            "# cooper recipe test {run}: a throwaway app for {} {target}; removed at the end\n{}",
            req.recipe,
            env.render()
        )
        .as_bytes(),
    )?;
    reporter.info(&format!(
        "recipe test of {} {target} on {} as {domain} (run {run}; installing {install})",
        req.recipe, req.server
    ));

    let mut r = Run {
        abra,
        req,
        domain: domain.clone(),
        run: run.clone(),
        results: results.clone(),
        tiers: Vec::new(),
    };
    let body = tiers(&mut r, &target, previous.as_ref(), reporter).await;
    if let Err(e) = &body {
        let t = Instant::now();
        r.push("error", Outcome::Failed(e.to_string()), t, reporter);
    }
    // Teardown, always.
    let t = Instant::now();
    let leftovers = teardown(abra, &domain).await;
    let outcome = match &leftovers {
        Ok(l) if l.is_empty() => Outcome::Passed,
        Ok(l) => Outcome::Failed(format!("left behind: {}", l.join(", "))),
        Err(e) => Outcome::Failed(format!("teardown: {e}")),
    };
    r.push("teardown", outcome, t, reporter);
    let lvl = level(&r.tiers);
    let report = RecipeTestReport {
        recipe: req.recipe.clone(),
        version: target.to_string(),
        installed_from: install.to_string(),
        domain,
        run,
        level: lvl,
        leftovers: leftovers.unwrap_or_default(),
        tiers: r.tiers.clone(),
        results: results.clone(),
    };
    write_reports(abra, &report)?;
    Ok(report)
}

async fn tiers(
    r: &mut Run<'_>,
    target: &RecipeVersion,
    previous: Option<&RecipeVersion>,
    reporter: &mut dyn Reporter,
) -> Result<()> {
    let t = Instant::now();
    crate::secrets::generate(r.abra, &r.domain, &[], None, reporter).await?;
    let installed = r.deploy(DeployKind::Deploy, None).await;
    let outcome = match installed {
        Err(e) => Outcome::Failed(format!("deploy: {e}")),
        Ok(()) => r
            .phases(&[Phase::Test], true, "install")
            .await?
            .unwrap_or(Outcome::Passed),
    };
    r.push("install", outcome, t, reporter);
    if r.failed() {
        return Ok(());
    }

    let t = Instant::now();
    let seeded = r.phases(&[Phase::Seed], false, "seed").await?;
    let has_seed = seeded.is_some();
    r.push(
        "seed",
        seeded.unwrap_or(Outcome::Skipped("the suites have no seed steps".into())),
        t,
        reporter,
    );
    if r.failed() {
        return Ok(());
    }

    let t = Instant::now();
    match previous {
        None => r.push(
            "upgrade",
            Outcome::Skipped(format!(
                "{target} is the first release: nothing to upgrade from"
            )),
            t,
            reporter,
        ),
        Some(_) => {
            let outcome = match r.deploy(DeployKind::Upgrade, Some(target.as_str())).await {
                Err(e) => Outcome::Failed(format!("upgrade: {e}")),
                Ok(()) if has_seed => r
                    .phases(&[Phase::Check], false, "upgrade")
                    .await?
                    .unwrap_or(Outcome::Passed),
                Ok(()) => Outcome::Passed,
            };
            r.push("upgrade", outcome, t, reporter);
        }
    }
    if r.failed() {
        return Ok(());
    }

    let t = Instant::now();
    let snapshot =
        match crate::backup::create(r.abra, &r.domain, None, &mut Collect::default()).await {
            Ok(b) => {
                r.push("backup", Outcome::Passed, t, reporter);
                b.snapshot
            }
            Err(OpsError::Refused(why)) if why.starts_with("nothing to back up") => {
                r.push(
                    "backup",
                    Outcome::Skipped("no backupbot labels: nothing to back up".into()),
                    t,
                    reporter,
                );
                None
            }
            Err(e) => {
                r.push("backup", Outcome::Failed(e.to_string()), t, reporter);
                return Ok(());
            }
        };

    let t = Instant::now();
    match snapshot {
        None => r.push(
            "restore",
            Outcome::Skipped("no backup to restore".into()),
            t,
            reporter,
        ),
        Some(id) => {
            // Wipe: the app goes, its volumes go, it comes back empty; then the restore.
            crate::undeploy(r.abra, &r.domain, &mut Collect::default()).await?;
            crate::deploy::remove_volumes(r.abra, &r.domain).await?;
            let outcome = match r.deploy(DeployKind::Deploy, None).await {
                Err(e) => Outcome::Failed(format!("deploy after the wipe: {e}")),
                Ok(()) => {
                    let rq = crate::backup::RestoreRequest {
                        domain: r.domain.clone(),
                        snapshot: Some(id),
                        timeout: r.req.timeout,
                        ..Default::default()
                    };
                    match crate::backup::restore(r.abra, &rq, &mut Collect::default()).await {
                        Err(e) => Outcome::Failed(format!("restore: {e}")),
                        Ok(_) if has_seed => r
                            .phases(&[Phase::Check], false, "restore")
                            .await?
                            .unwrap_or(Outcome::Passed),
                        Ok(_) => Outcome::Passed,
                    }
                }
            };
            r.push("restore", outcome, t, reporter);
        }
    }
    if r.failed() {
        return Ok(());
    }

    let t = Instant::now();
    let custom = r.phases(&[Phase::Test], true, "custom").await?;
    r.push(
        "custom",
        custom.unwrap_or(Outcome::Skipped("the recipe ships no tests".into())),
        t,
        reporter,
    );
    Ok(())
}

/// Removes everything of a throwaway app and reports what is still there afterwards.
pub async fn teardown(abra: &AbraDir, domain: &str) -> Result<Vec<String>> {
    let app = abra.app(domain)?;
    let engine = crate::connect(abra, &app.at.server).await?;
    let stack = crate::stack_of(&app);
    // Always: an interrupted run may have left networks and configs without services.
    crate::undeploy(abra, domain, &mut Collect::default()).await?;
    // Helpers of a killed cooper still hold the volumes (even exited containers do): they stop
    // by themselves (their lifeline closed); remove them, then the volumes.
    let start = Instant::now();
    loop {
        let mut running = 0;
        for purpose in ["restic", "probe", "verify-check"] {
            running += engine.reap_helpers(purpose).await.unwrap_or(0);
        }
        if running == 0 || start.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = crate::backup::forget_all(abra, domain).await;
    crate::deploy::remove_volumes(abra, domain).await?;
    crate::deploy::remove_app(abra, domain, true, true).await?;
    // The app's lock file goes too (nobody else may hold a throwaway app's lock).
    let _ = std::fs::remove_file(
        abra.servers_dir()
            .join(&app.at.server)
            .join(format!(".{domain}.lock")),
    );
    let mut left = stack_contents(&engine, &stack).await?;
    left.extend(engine.stack_leftovers(&stack).await?);
    if app.at.path.exists() {
        left.push(app.at.path.display().to_string());
    }
    Ok(left)
}

/// A stack's services, volumes and secrets on its server (`service x_app`, `volume x_data`,
/// `secret x_db_password_v1`).
pub(crate) async fn stack_contents(
    engine: &cooper_engine::Engine,
    stack: &str,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = engine
        .stack_services(stack)
        .await?
        .iter()
        .map(|s| format!("service {}", cooper_engine::apply::service_name(s)))
        .collect();
    out.extend(
        engine
            .stack_volumes(stack)
            .await?
            .into_iter()
            .map(|v| format!("volume {v}")),
    );
    out.extend(
        engine
            .stack_secrets(stack)
            .await?
            .into_iter()
            .map(|(s, _)| format!("secret {s}")),
    );
    Ok(out)
}

/// Finds throwaway apps of earlier, interrupted recipe tests (by their domain mark) and tears
/// each down; returns what was removed per app.
pub async fn cleanup_leftovers(abra: &AbraDir) -> Result<Vec<(String, Result<Vec<String>>)>> {
    let mut out = Vec::new();
    for a in abra.apps()? {
        if a.domain.starts_with(THROWAWAY_PREFIX) && a.domain.ends_with(".test") {
            let r = teardown(abra, &a.domain).await;
            out.push((a.domain.clone(), r));
        }
    }
    Ok(out)
}

fn write_reports(abra: &AbraDir, report: &RecipeTestReport) -> Result<()> {
    let io = |e: std::io::Error| OpsError::Failed(format!("writing reports: {e}"));
    // JUnit: the tiers as test cases of one suite.
    let junit = RunReport {
        app: report.domain.clone(),
        recipe: report.recipe.clone(),
        version: report.version.clone(),
        run: report.run.clone(),
        started: crate::record::now(),
        millis: report.tiers.iter().map(|t| t.millis).sum(),
        results: report
            .tiers
            .iter()
            .map(|t| StepResult {
                suite: "lifecycle".into(),
                phase: "tier".into(),
                name: t.tier.clone(),
                outcome: t.outcome.clone(),
                millis: t.millis,
                output: String::new(),
            })
            .collect(),
    };
    std::fs::write(report.results.join("junit.xml"), junit.junit()).map_err(io)?;
    std::fs::write(
        report.results.join("report.json"),
        serde_json::to_string_pretty(report).unwrap_or_default(),
    )
    .map_err(io)?;
    // The level, stored with the recipe version.
    let dir = abra.root.join("cooper").join("levels");
    std::fs::create_dir_all(&dir).map_err(io)?;
    let path = dir.join(format!("{}.json", report.recipe));
    let mut levels: BTreeMap<String, serde_json::Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    levels.insert(
        report.version.clone(),
        serde_json::json!({
            "level": report.level,
            "tested": crate::record::now(),
            "tiers": report.tiers,
        }),
    );
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&levels).unwrap_or_default(),
    )
    .map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(o: Outcome) -> Tier {
        Tier {
            tier: "t".into(),
            outcome: o,
            millis: 0,
        }
    }

    #[test]
    fn level_counts_passes_until_the_first_failure() {
        use Outcome::*;
        assert_eq!(
            level(&[
                tier(Passed),
                tier(Passed),
                tier(Failed("x".into())),
                tier(Passed)
            ]),
            2
        );
        assert_eq!(
            level(&[tier(Passed), tier(Skipped("y".into())), tier(Passed)]),
            2
        );
        assert_eq!(level(&[tier(Failed("x".into()))]), 0);
    }
}
