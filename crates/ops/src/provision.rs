//! Provisioning: from an approved request to a running, tested, backed-up instance, in five
//! steps — the `.env` (`app new` with the wizard's answers), the secrets (the ones given,
//! then every one the recipe can generate), the deploy, the recipe's production-safe tests,
//! the first backup. Each step is the same operation the CLI runs (its envelope, lock and
//! record). A step that fails stops the run and everything made so far is removed
//! (undeployed, volumes, secrets, snapshots and the `.env` gone, then checked gone), unless
//! the operator asked to keep it for inspection. Nothing that was there before is touched: a
//! domain whose `.env` or stack already exists is refused before anything is made.
//!
//! The initial credentials (generated secrets the recipe marks `handover=true`, or whose name
//! says `admin` unless marked `handover=false`) come back to the caller once; they are never
//! written anywhere by this module.

use std::fmt;
use std::time::{Duration, Instant};

use cooper_recipe::abra_dir::AbraDir;
use cooper_recipe::secrets::SecretValue;

use crate::app::NewApp;
use crate::{Collect, DeployKind, DeployRequest, OpsError, Reporter};

/// The steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Env,
    Secrets,
    Deploy,
    /// The data put back from an export (only when provisioning from one: a move).
    Restore,
    Test,
    Backup,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::Env,
        Step::Secrets,
        Step::Deploy,
        Step::Restore,
        Step::Test,
        Step::Backup,
    ];

    /// Its short name (`deploy`).
    pub fn id(self) -> &'static str {
        match self {
            Step::Env => "env",
            Step::Secrets => "secrets",
            Step::Deploy => "deploy",
            Step::Restore => "restore",
            Step::Test => "test",
            Step::Backup => "backup",
        }
    }

    /// What it does, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Step::Env => "write the app's settings (.env)",
            Step::Secrets => "store the secrets",
            Step::Deploy => "deploy",
            Step::Restore => "put the data back from the export",
            Step::Test => "run the production-safe tests",
            Step::Backup => "take the first backup",
        }
    }

    pub fn from_id(id: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.id() == id)
    }
}

/// What to provision.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    pub app: NewApp,
    /// Values of the secrets the recipe cannot generate (`generate=false`), by secret name.
    pub secrets: Vec<(String, SecretValue)>,
    /// On failure, leave what was made for an operator to look at.
    pub keep_on_failure: bool,
    /// Wait this long for another operation on the app (a scheduled one) to finish.
    pub wait_lock: Option<Duration>,
    pub probe_image: String,
    /// For tests of the cleanup: fail on purpose once this step has run.
    pub fail_after: Option<Step>,
    /// A cooper export (`app export`) whose data goes into the new instance after the deploy
    /// (moving an instance in from another server or co-op).
    pub restore_from: Option<std::path::PathBuf>,
}

impl ProvisionRequest {
    /// The steps this request runs, in order.
    pub fn steps(&self) -> Vec<Step> {
        Step::ALL
            .into_iter()
            .filter(|s| *s != Step::Restore || self.restore_from.is_some())
            .collect()
    }
}

/// A step that ran, with what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepDone {
    pub step: Step,
    pub summary: String,
    pub elapsed: Duration,
}

/// A credential for the community's admin, shown to them once.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The secret's name in the recipe (`admin_password`).
    pub name: String,
    pub value: SecretValue,
}

/// A provisioned instance.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub domain: String,
    pub server: String,
    pub version: String,
    pub steps: Vec<StepDone>,
    /// The first backup's snapshot (none when the recipe keeps nothing to back up).
    pub snapshot: Option<String>,
    pub credentials: Vec<Credential>,
}

/// A provisioning that stopped.
#[derive(Debug, Clone)]
pub struct Failed {
    pub step: Step,
    pub error: String,
    pub steps: Vec<StepDone>,
    /// What is still there (kept on purpose, or the cleanup could not remove it).
    pub left: Vec<String>,
    pub kept: bool,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "provisioning failed at step \"{}\" ({}): {}",
            self.step.id(),
            self.step.describe(),
            self.error
        )?;
        if self.kept {
            write!(
                f,
                "; kept for inspection as asked: {}",
                if self.left.is_empty() {
                    "nothing was made".to_string()
                } else {
                    self.left.join(", ")
                }
            )
        } else if self.left.is_empty() {
            write!(f, "; nothing is left behind")
        } else {
            write!(
                f,
                "; THE CLEANUP LEFT: {} (remove them by hand)",
                self.left.join(", ")
            )
        }
    }
}

struct Run<'a> {
    abra: &'a AbraDir,
    req: &'a ProvisionRequest,
    steps: Vec<StepDone>,
}

impl Run<'_> {
    fn fail(&self, step: Step, e: impl fmt::Display) -> Failed {
        Failed {
            step,
            error: e.to_string(),
            steps: self.steps.clone(),
            left: Vec::new(),
            kept: false,
        }
    }

    fn done(&mut self, step: Step, summary: String, t: Instant, reporter: &mut dyn Reporter) {
        reporter.info(&format!("step {} done: {summary}", step.id()));
        self.steps.push(StepDone {
            step,
            summary,
            elapsed: t.elapsed(),
        });
    }

    fn injected(&self, step: Step) -> Result<(), Failed> {
        if self.req.fail_after == Some(step) {
            return Err(self.fail(step, "failure injected after this step (a test)"));
        }
        Ok(())
    }
}

/// Provisions an instance. On failure, cleans up (unless kept) and says which step failed.
pub async fn provision(
    abra: &AbraDir,
    req: &ProvisionRequest,
    reporter: &mut dyn Reporter,
) -> Result<Provisioned, Failed> {
    let mut run = Run {
        abra,
        req,
        steps: Vec::new(),
    };
    let domain = req.app.domain.clone();
    // Refusals before anything is made: nothing to clean, nothing of anyone else's touched.
    let t = Instant::now();
    reporter.info(&format!(
        "provisioning {domain} ({} {}) on {}",
        req.app.recipe,
        req.app.version.as_deref().unwrap_or("newest release"),
        req.app.server
    ));
    if let Err(e) = free(abra, &req.app).await {
        return Err(run.fail(Step::Env, e));
    }
    let created = match crate::app::create(abra, &req.app) {
        Ok(c) => c,
        Err(e) => return Err(run.fail(Step::Env, e)),
    };
    run.done(
        Step::Env,
        format!("{} from {}", created.path.display(), created.origin),
        t,
        reporter,
    );
    let result = async {
        run.injected(Step::Env)?;
        let credentials = secrets_step(&mut run, reporter).await?;
        deploy_step(&mut run, created.version.as_deref(), reporter).await?;
        if let Some(archive) = &req.restore_from {
            restore_step(&mut run, archive, reporter).await?;
        }
        test_step(&mut run, reporter).await?;
        let snapshot = backup_step(&mut run, reporter).await?;
        Ok::<_, Failed>((credentials, snapshot))
    }
    .await;
    match result {
        Ok((credentials, snapshot)) => Ok(Provisioned {
            domain,
            server: req.app.server.clone(),
            version: created.version.unwrap_or_else(|| created.origin.clone()),
            steps: run.steps,
            snapshot,
            credentials,
        }),
        Err(mut failed) => {
            reporter.info(&format!(
                "step {} failed: {}",
                failed.step.id(),
                failed.error
            ));
            if req.keep_on_failure {
                failed.kept = true;
                failed.left = what_is_there(abra, &domain).await;
                return Err(failed);
            }
            reporter.info("removing what was made");
            match crate::lifecycle::teardown(abra, &domain).await {
                Ok(left) => failed.left = left,
                Err(e) => failed.left = vec![format!("the cleanup stopped: {e}")],
            }
            Err(failed)
        }
    }
}

/// Refuses a domain that has a `.env` or anything on the server under its stack name.
async fn free(abra: &AbraDir, app: &NewApp) -> crate::Result<()> {
    abra.new_app_path(&app.server, &app.domain)?;
    let engine = crate::connect(abra, &app.server).await?;
    let stack = cooper_recipe::stack::stack_name(&app.domain);
    let there = crate::lifecycle::stack_contents(&engine, &stack).await?;
    if !there.is_empty() {
        return Err(OpsError::Refused(format!(
            "server {} already holds {} for {}: {}; remove them first (they are not this request's)",
            app.server,
            if there.len() == 1 { "something" } else { "things" },
            app.domain,
            there.join(", ")
        )));
    }
    Ok(())
}

/// What of an app is on its server and on disk (for a kept failure).
async fn what_is_there(abra: &AbraDir, domain: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(app) = abra.app(domain) else {
        return out;
    };
    out.push(app.at.path.display().to_string());
    if let Ok(engine) = crate::connect(abra, &app.at.server).await {
        if let Ok(there) = crate::lifecycle::stack_contents(&engine, &crate::stack_of(&app)).await {
            out.extend(there);
        }
    }
    out
}

async fn secrets_step(
    run: &mut Run<'_>,
    reporter: &mut dyn Reporter,
) -> Result<Vec<Credential>, Failed> {
    let t = Instant::now();
    let (abra, domain) = (run.abra, run.req.app.domain.as_str());
    let fail = |run: &Run<'_>, e: &dyn fmt::Display| run.fail(Step::Secrets, e);
    let (_, specs) = crate::secrets::specs(abra, domain, false).map_err(|e| fail(run, &e))?;
    let app = abra.app(domain).map_err(|e| fail(run, &e))?;
    // The given ones first: each must be a secret of this app that is not generated.
    for (name, value) in &run.req.secrets {
        let Some(spec) = specs.iter().find(|s| &s.key == name) else {
            return Err(fail(
                run,
                &format!(
                    "a value was given for secret {name}, which {domain} does not use (its secrets: {})",
                    specs.iter().map(|s| s.key.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        crate::secrets::insert(
            abra,
            domain,
            name,
            &spec.version,
            value,
            &mut Collect::default(),
        )
        .await
        .map_err(|e| fail(run, &e))?;
    }
    let missing: Vec<&str> = specs
        .iter()
        .filter(|s| cooper_recipe::secrets::generate(&s.recipe).is_none())
        .filter(|s| !run.req.secrets.iter().any(|(n, _)| n == &s.key))
        .map(|s| s.key.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(fail(
            run,
            &format!(
                "no value was given for {} (the recipe cannot generate {}): enter {} when approving",
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
                if missing.len() == 1 { "it" } else { "them" },
            ),
        ));
    }
    let made = crate::secrets::generate(abra, domain, &[], None, reporter)
        .await
        .map_err(|e| fail(run, &e))?;
    let credentials: Vec<Credential> = made
        .iter()
        .filter(|(key, _, _)| {
            let spec = specs.iter().find(|s| &s.key == key);
            let marked = spec
                .and_then(|s| s.version_var.as_deref())
                .and_then(|var| app.env.entries().find(|e| e.key == var))
                .and_then(|e| e.modifiers.words.get("handover").cloned());
            handed_over(key, marked.as_deref())
        })
        .map(|(key, _, value)| Credential {
            name: key.clone(),
            value: value.clone(),
        })
        .collect();
    run.done(
        Step::Secrets,
        format!(
            "{} given, {} generated{}",
            run.req.secrets.len(),
            made.len(),
            if credentials.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} kept aside for the community's admin, shown once)",
                    credentials
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
        t,
        reporter,
    );
    run.injected(Step::Secrets)?;
    Ok(credentials)
}

/// Whether a generated secret is an initial credential for the community's admin: marked
/// `handover=true`, or named like one (`admin`) unless marked `handover=false`.
pub fn handed_over(name: &str, marked: Option<&str>) -> bool {
    match marked {
        Some("true") => true,
        Some("false") => false,
        _ => name.to_lowercase().contains("admin"),
    }
}

async fn deploy_step(
    run: &mut Run<'_>,
    version: Option<&str>,
    reporter: &mut dyn Reporter,
) -> Result<(), Failed> {
    let t = Instant::now();
    let mut d = DeployRequest::new(&run.req.app.domain, DeployKind::Deploy);
    d.version = version.map(str::to_string);
    d.wait_lock = run.req.wait_lock;
    d.safety_backup = false;
    let report = crate::deploy(run.abra, &d, reporter)
        .await
        .map_err(|e| run.fail(Step::Deploy, e))?;
    run.done(
        Step::Deploy,
        format!("{} runs", report.version),
        t,
        reporter,
    );
    run.injected(Step::Deploy)
}

async fn restore_step(
    run: &mut Run<'_>,
    archive: &std::path::Path,
    reporter: &mut dyn Reporter,
) -> Result<(), Failed> {
    let t = Instant::now();
    let r = crate::backup::RestoreRequest {
        domain: run.req.app.domain.clone(),
        archive: Some(archive.to_path_buf()),
        wait_lock: run.req.wait_lock,
        ..Default::default()
    };
    // The restore asks before it replaces volumes; these are the new instance's own.
    let mut yes = Collect::default();
    let report = crate::backup::restore(run.abra, &r, &mut yes)
        .await
        .map_err(|e| run.fail(Step::Restore, e))?;
    for line in &yes.lines {
        reporter.info(line);
    }
    run.done(
        Step::Restore,
        format!(
            "{} volume(s) from {} ({})",
            report.volumes.len(),
            archive.display(),
            report.snapshot
        ),
        t,
        reporter,
    );
    run.injected(Step::Restore)
}

async fn test_step(run: &mut Run<'_>, reporter: &mut dyn Reporter) -> Result<(), Failed> {
    let t = Instant::now();
    let domain = run.req.app.domain.as_str();
    let suites = crate::test::prod_suites(run.abra, domain).map_err(|e| run.fail(Step::Test, e))?;
    let summary = if suites.is_empty() {
        "the recipe ships no production-safe tests: nothing to run".to_string()
    } else {
        let mut tr = crate::test::TestRequest::new(domain);
        tr.prod = true;
        tr.probe_image = run.req.probe_image.clone();
        let done = crate::test::run(run.abra, &tr, reporter)
            .await
            .map_err(|e| run.fail(Step::Test, e))?;
        let r = &done.report;
        if r.failed() > 0 {
            return Err(run.fail(
                Step::Test,
                format!(
                    "{} of {} failed: {}",
                    r.failed(),
                    r.passed() + r.failed(),
                    r.failures()
                ),
            ));
        }
        format!("{} passed ({})", r.passed(), suites.join(", "))
    };
    run.done(Step::Test, summary, t, reporter);
    run.injected(Step::Test)
}

async fn backup_step(
    run: &mut Run<'_>,
    reporter: &mut dyn Reporter,
) -> Result<Option<String>, Failed> {
    let t = Instant::now();
    let domain = run.req.app.domain.as_str();
    let anything = crate::backup::saves_anything(run.abra, domain)
        .await
        .map_err(|e| run.fail(Step::Backup, e))?;
    let (summary, snapshot) = if anything {
        let r = crate::backup::create(run.abra, domain, run.req.wait_lock, reporter)
            .await
            .map_err(|e| run.fail(Step::Backup, e))?;
        (
            format!(
                "snapshot {} ({} files)",
                r.snapshot.as_deref().unwrap_or("?"),
                r.summary.files_new
            ),
            r.snapshot,
        )
    } else {
        (
            "the recipe keeps no data to back up (no volume is labelled for backups)".to_string(),
            None,
        )
    };
    run.done(Step::Backup, summary, t, reporter);
    run.injected(Step::Backup)?;
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_secrets_are_handed_over_unless_marked_otherwise() {
        assert!(handed_over("admin_password", None));
        assert!(handed_over("ADMIN_TOKEN", None));
        assert!(!handed_over("admin_password", Some("false")));
        assert!(handed_over("root_pass", Some("true")));
        assert!(!handed_over("db_password", None));
    }

    #[test]
    fn steps_round_trip_by_id() {
        for s in Step::ALL {
            assert_eq!(Step::from_id(s.id()), Some(s));
        }
        assert_eq!(Step::from_id("nope"), None);
    }

    #[test]
    fn a_failure_says_the_step_and_what_is_left() {
        let mut f = Failed {
            step: Step::Deploy,
            error: "image missing".into(),
            steps: Vec::new(),
            left: Vec::new(),
            kept: false,
        };
        assert_eq!(
            f.to_string(),
            "provisioning failed at step \"deploy\" (deploy): image missing; nothing is left behind"
        );
        f.left = vec!["volume x_data".into()];
        assert!(f.to_string().contains("THE CLEANUP LEFT: volume x_data"));
        f.kept = true;
        assert!(f
            .to_string()
            .contains("kept for inspection as asked: volume x_data"));
    }
}
