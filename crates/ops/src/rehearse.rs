//! `cooper app upgrade --rehearse`: an upgrade tried on a copy of production first.
//!
//! safety backup of production, verified → a staging copy (a throwaway app on the same
//! server, production's `.env`, fresh secrets) restored from that snapshot → staging upgraded
//! to the target → the recipe's tests on staging → only if all green: production upgraded →
//! production-safe tests (`prod = true`) → on any failure in production, rolled back, and the
//! snapshot holding the data from before is named. Staging is torn down in every case.
//! Production is not touched before the staging tests pass.

use std::time::{Duration, Instant};

use cooper_checks::Outcome;
use cooper_recipe::abra_dir::{write_atomic, AbraDir};
use cooper_recipe::envfile::RecipeRef;
use cooper_recipe::version::RecipeVersion;
use serde::Serialize;

use crate::lifecycle::{Tier, THROWAWAY_PREFIX};
use crate::record::Record;
use crate::test::TestRequest;
use crate::{Collect, DeployKind, DeployRequest, OpsError, Reporter, Result};

/// What to rehearse.
#[derive(Debug, Clone)]
pub struct RehearseRequest {
    pub domain: String,
    /// Default: the newest release.
    pub version: Option<String>,
    pub probe_image: String,
    pub timeout: Option<Duration>,
}

/// How a rehearsal went.
#[derive(Debug, Clone, Serialize)]
pub struct RehearseReport {
    pub domain: String,
    pub from: String,
    pub to: String,
    pub staging: String,
    /// The verified snapshot of production taken first.
    pub snapshot: Option<String>,
    pub steps: Vec<Tier>,
    /// Production runs the target version at the end.
    pub upgraded: bool,
}

struct Steps<'a> {
    steps: Vec<Tier>,
    record: Record,
    reporter: &'a mut dyn Reporter,
}

impl Steps<'_> {
    fn push(&mut self, name: &str, outcome: Outcome, t: Instant) -> bool {
        let ok = !matches!(outcome, Outcome::Failed(_));
        self.reporter.info(&match &outcome {
            Outcome::Passed => format!("{name}: done ({:.1}s)", t.elapsed().as_secs_f64()),
            Outcome::Failed(w) => format!("{name}: FAILED: {w}"),
            Outcome::Skipped(w) => format!("{name}: skipped ({w})"),
        });
        self.record.step(
            name,
            match &outcome {
                Outcome::Passed => "ok".to_string(),
                Outcome::Failed(w) | Outcome::Skipped(w) => w.clone(),
            },
            ok,
            t,
        );
        self.steps.push(Tier {
            tier: name.into(),
            outcome,
            millis: t.elapsed().as_millis() as u64,
        });
        ok
    }
}

/// Rehearses an upgrade on staging, then does it in production when staging is green.
pub async fn rehearse(
    abra: &AbraDir,
    req: &RehearseRequest,
    reporter: &mut dyn Reporter,
) -> Result<RehearseReport> {
    let prod = abra.app(&req.domain)?;
    let engine = crate::connect(abra, &prod.at.server).await?;
    let stack = crate::stack_of(&prod);
    let (current, chaos) = crate::deploy::deployed_version(&engine, &stack)
        .await?
        .ok_or_else(|| {
            OpsError::Refused(format!(
                "{} is not deployed; nothing to upgrade",
                req.domain
            ))
        })?;
    if chaos {
        return Err(OpsError::Refused(format!(
            "{} runs a chaos deploy; rehearse upgrades from a release",
            req.domain
        )));
    }
    let repo = abra.recipe(&prod.recipe.name)?;
    let current_v = RecipeVersion::parse(&current).map_err(|_| {
        OpsError::Refused(format!("the deployed version {current} is not a release"))
    })?;
    let target = match &req.version {
        Some(v) => v.clone(),
        None => repo
            .versions()?
            .into_iter()
            .rfind(|v| *v > current_v)
            .map(|v| v.to_string())
            .ok_or_else(|| {
                OpsError::Refused(format!(
                    "{current} is the newest release of {}; nothing to upgrade to",
                    prod.recipe.name
                ))
            })?,
    };
    let run = crate::test::run_id();
    let staging = format!("{THROWAWAY_PREFIX}{run}.test");
    let mut s = Steps {
        steps: Vec::new(),
        record: Record::new(
            "app upgrade --rehearse",
            &prod.at.domain,
            &prod.at.server,
            &prod.recipe.name,
        ),
        reporter,
    };
    s.record.from_version = Some(current.clone());
    s.record.to_version = Some(target.clone());
    s.reporter.info(&format!(
        "rehearsing the upgrade of {} from {current} to {target} on staging {staging}",
        req.domain
    ));
    let mut report = RehearseReport {
        domain: req.domain.clone(),
        from: current.clone(),
        to: target.clone(),
        staging: staging.clone(),
        snapshot: None,
        steps: Vec::new(),
        upgraded: false,
    };

    // 1. A verified backup of production.
    let t = Instant::now();
    match crate::backup::create(abra, &req.domain, None, &mut Collect::default()).await {
        Ok(b) => {
            report.snapshot = b.snapshot.clone();
            let id = b.snapshot.clone().unwrap_or_default();
            match crate::backup::verify(abra, &req.domain, Some(&id), &mut Collect::default()).await
            {
                Ok(v) if v.problems.is_empty() => {
                    s.push("backup production (verified)", Outcome::Passed, t);
                }
                Ok(v) => {
                    s.push(
                        "backup production (verified)",
                        Outcome::Failed(format!("verification: {}", v.problems.join("; "))),
                        t,
                    );
                }
                Err(e) => {
                    s.push(
                        "backup production (verified)",
                        Outcome::Failed(e.to_string()),
                        t,
                    );
                }
            }
        }
        Err(OpsError::Refused(why)) if why.starts_with("nothing to back up") => {
            s.push(
                "backup production (verified)",
                Outcome::Skipped(
                    "no backupbot labels: staging starts without production's data".into(),
                ),
                t,
            );
        }
        Err(e) => {
            s.push(
                "backup production (verified)",
                Outcome::Failed(e.to_string()),
                t,
            );
        }
    }

    let mut green = s
        .steps
        .iter()
        .all(|x| !matches!(x.outcome, Outcome::Failed(_)));
    if green {
        green = staging_rehearsal(
            abra, req, &prod, &current, &target, &staging, &report, &mut s,
        )
        .await;
    }
    // Staging goes in every case.
    let t = Instant::now();
    if abra.app(&staging).is_ok() {
        let outcome = match crate::lifecycle::teardown(abra, &staging).await {
            Ok(l) if l.is_empty() => Outcome::Passed,
            Ok(l) => Outcome::Failed(format!("left behind: {}", l.join(", "))),
            Err(e) => Outcome::Failed(e.to_string()),
        };
        s.push("tear staging down", outcome, t);
    }

    if green {
        // Production.
        let t = Instant::now();
        let mut d = DeployRequest::new(&req.domain, DeployKind::Upgrade);
        d.version = Some(target.clone());
        d.safety_backup = false;
        d.timeout = req.timeout;
        match crate::deploy(abra, &d, &mut Collect::default()).await {
            Err(e) => {
                s.push("upgrade production", Outcome::Failed(e.to_string()), t);
            }
            Ok(_) => {
                s.push("upgrade production", Outcome::Passed, t);
                let t = Instant::now();
                let mut tr = TestRequest::new(&req.domain);
                tr.prod = true;
                tr.probe_image = req.probe_image.clone();
                let outcome = match crate::test::run(abra, &tr, &mut Collect::default()).await {
                    Ok(o) if o.report.failed() == 0 => Outcome::Passed,
                    Ok(o) => Outcome::Failed(format!(
                        "{} production test step(s) failed (reports in {})",
                        o.report.failed(),
                        o.results.display()
                    )),
                    Err(OpsError::Refused(why)) if why.contains("ships no tests") => {
                        Outcome::Skipped("the recipe ships no tests".into())
                    }
                    Err(e) => Outcome::Failed(e.to_string()),
                };
                if s.push("production tests", outcome, t) {
                    report.upgraded = true;
                } else {
                    let t = Instant::now();
                    let mut back = DeployRequest::new(&req.domain, DeployKind::Rollback);
                    back.version = Some(current.clone());
                    back.timeout = req.timeout;
                    let outcome = match crate::deploy(abra, &back, &mut Collect::default()).await {
                        Ok(_) => Outcome::Passed,
                        Err(e) => Outcome::Failed(e.to_string()),
                    };
                    s.push("roll production back", outcome, t);
                }
            }
        }
    }
    report.steps = s.steps.clone();
    let failed = report
        .steps
        .iter()
        .any(|x| matches!(x.outcome, Outcome::Failed(_)));
    let mut why = String::new();
    if failed {
        why = format!(
            "the rehearsed upgrade of {} to {target} failed at: {}",
            req.domain,
            report
                .steps
                .iter()
                .filter_map(|x| match &x.outcome {
                    Outcome::Failed(w) => Some(format!(
                        "{} ({})",
                        x.tier,
                        w.lines().next().unwrap_or_default()
                    )),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("; ")
        );
        if let (Some(id), false) = (&report.snapshot, report.upgraded) {
            why.push_str(&format!(
                "; the data from before is in snapshot {id} (`cooper app restore {} --snapshot {id}`)",
                req.domain
            ));
        }
    }
    if let Some(id) = &report.snapshot {
        s.record
            .details
            .insert("snapshot".into(), serde_json::json!(id));
    }
    s.record.finish(if failed { Err(why) } else { Ok(()) });
    let _ = s.record.save(&abra.root);
    Ok(report)
}

/// Staging: created from production's `.env` at the deployed version, restored from the
/// snapshot, upgraded, tested. Returns whether everything passed.
#[allow(clippy::too_many_arguments)]
async fn staging_rehearsal(
    abra: &AbraDir,
    req: &RehearseRequest,
    prod: &cooper_recipe::abra_dir::App,
    current: &str,
    target: &str,
    staging: &str,
    report: &RehearseReport,
    s: &mut Steps<'_>,
) -> bool {
    let t = Instant::now();
    let made = async {
        let mut env = prod.env.clone();
        let mut recipe = RecipeRef::from_env(&env).unwrap_or(RecipeRef {
            key: "TYPE",
            name: prod.recipe.name.clone(),
            version: None,
        });
        recipe.version = Some(current.to_string());
        env.set(recipe.key, &recipe.value());
        env.set("DOMAIN", staging);
        if env.get("STACK_NAME").is_some() {
            env.set("STACK_NAME", &cooper_recipe::stack::stack_name(staging));
        }
        let path = abra.new_app_path(&prod.at.server, staging)?;
        write_atomic(
            &path,
            format!(
                "# cooper rehearsal of {}: a throwaway staging copy; removed at the end\n{}",
                prod.at.domain,
                env.render()
            )
            .as_bytes(),
        )?;
        crate::secrets::generate(abra, staging, &[], None, &mut Collect::default()).await?;
        let mut d = DeployRequest::new(staging, DeployKind::Deploy);
        d.timeout = req.timeout;
        crate::deploy(abra, &d, &mut Collect::default()).await?;
        if let Some(id) = &report.snapshot {
            let rq = crate::backup::RestoreRequest {
                domain: staging.to_string(),
                snapshot: Some(id.clone()),
                from: Some(prod.at.domain.clone()),
                timeout: req.timeout,
                ..Default::default()
            };
            crate::backup::restore(abra, &rq, &mut Collect::default()).await?;
        }
        Ok::<(), OpsError>(())
    }
    .await;
    if !s.push(
        "staging copy of production",
        match made {
            Ok(()) => Outcome::Passed,
            Err(e) => Outcome::Failed(e.to_string()),
        },
        t,
    ) {
        return false;
    }

    let t = Instant::now();
    let mut d = DeployRequest::new(staging, DeployKind::Upgrade);
    d.version = Some(target.to_string());
    d.safety_backup = false;
    d.timeout = req.timeout;
    let up = crate::deploy(abra, &d, &mut Collect::default()).await;
    if !s.push(
        "upgrade staging",
        match up {
            Ok(_) => Outcome::Passed,
            Err(e) => Outcome::Failed(e.to_string()),
        },
        t,
    ) {
        return false;
    }

    let t = Instant::now();
    let mut tr = TestRequest::new(staging);
    tr.probe_image = req.probe_image.clone();
    let outcome = match crate::test::run(abra, &tr, &mut Collect::default()).await {
        Ok(o) if o.report.failed() == 0 => Outcome::Passed,
        Ok(o) => Outcome::Failed(format!(
            "{} staging test step(s) failed: {} (reports in {})",
            o.report.failed(),
            o.report.failures(),
            o.results.display()
        )),
        Err(OpsError::Refused(why)) if why.contains("ships no tests") => {
            Outcome::Skipped("the recipe ships no tests: only convergence was rehearsed".into())
        }
        Err(e) => Outcome::Failed(e.to_string()),
    };
    s.push("staging tests", outcome, t)
}
