//! `cooper app test`: runs the deployed version's test suites (the recipe's `tests/*.toml`,
//! read at the deployed tag) against a running app, phase by phase — setup, tests, cleanup
//! (always) — and writes JUnit XML, JSON and the logs of failures to a results folder.
//!
//! Marks: every step sees `COOPER_TEST_RUN` (a fresh id per run) — in exec steps' environment,
//! in external commands' environment — so what tests create can be named after it and cleanup
//! deletes only that.
//!
//! How steps reach the app:
//! - `exec`: in a running container of the service (waits for one like backup hooks do);
//! - `http`: from a short-lived probe container joined to the `proxy` network (every Co-op Cloud
//!   web app is on it), `http://tasks.<stack>_<service>:<port><path>`, or an absolute `url`;
//! - `health`: the service runs all its replicas (Swarm counts a task only once healthy);
//! - `browser`: headless Chromium over WebDriver on this machine, at the app's URL
//!   (`https://<domain>`, or `base_url`); a failed step leaves a screenshot;
//! - `command`: on this machine, in a copy of the recipe's `tests/` folder at the version, with
//!   `COOPER_APP_URL`, `COOPER_APP_DOMAIN`, `COOPER_STACK`, `COOPER_TEST_RUN` and the app's env.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::op::{self, Envelope, Op};
use cooper_checks::report::{Outcome, RunReport, StepResult};
use cooper_checks::suite::{self, Action, Step, Suite};
use cooper_engine::exec::ExecRequest;
use cooper_engine::oneshot::OneShot;
use cooper_engine::Engine;
use cooper_recipe::abra_dir::{AbraDir, App};
use cooper_recipe::repo::RecipeFiles;
use cooper_recipe::stack::VersionChoice;

use crate::record::Record;
use crate::{connect, tail, OpsError, Reporter, Result};

/// The probe image's default (anything with busybox `wget` and `sh`).
pub const DEFAULT_PROBE_IMAGE: &str = "busybox:1.36";

/// Which phases to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Setup,
    Test,
    Seed,
    Check,
    Cleanup,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Test => "test",
            Phase::Seed => "seed",
            Phase::Check => "check",
            Phase::Cleanup => "cleanup",
        }
    }

    fn steps(self, s: &Suite) -> &[Step] {
        match self {
            Phase::Setup => &s.setup,
            Phase::Test => &s.tests,
            Phase::Seed => &s.seed,
            Phase::Check => &s.check,
            Phase::Cleanup => &s.cleanup,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct TestRequest {
    pub domain: String,
    /// Production: only suites marked `prod = true`; the others are reported skipped.
    pub prod: bool,
    /// Only these suites (by name); empty: all.
    pub suites: Vec<String>,
    /// The phases between setup and cleanup (default: the tests).
    pub phases: Vec<Phase>,
    /// Where reports go (default `$ABRA_DIR/cooper/test-results/<domain>/<run>`).
    pub results: Option<PathBuf>,
    pub probe_image: String,
    /// The app's address for browser steps and external commands (default `https://<domain>`).
    pub base_url: Option<String>,
    /// The run's mark (default: a fresh one); lifecycle tiers share one across runs so `check`
    /// finds what `seed` wrote.
    pub run_id: Option<String>,
    /// Run each suite's setup before and cleanup after the phases (default); lifecycle tiers
    /// run `seed` and `check` bare.
    pub setup_and_cleanup: bool,
    /// Only the cleanup steps (of an interrupted run, given by `run_id`).
    pub cleanup_only: bool,
}

impl TestRequest {
    pub fn new(domain: &str) -> Self {
        TestRequest {
            domain: domain.to_string(),
            prod: false,
            suites: Vec::new(),
            phases: vec![Phase::Test],
            results: None,
            probe_image: DEFAULT_PROBE_IMAGE.to_string(),
            base_url: None,
            run_id: None,
            setup_and_cleanup: true,
            cleanup_only: false,
        }
    }
}

/// A finished run and where its reports are.
#[derive(Debug, Clone)]
pub struct TestRun {
    pub report: RunReport,
    pub results: PathBuf,
}

/// A fresh run mark: 8 hex digits (from the secret generator's OS CSPRNG).
pub fn run_id() -> String {
    cooper_recipe::secrets::generate(&cooper_recipe::secrets::Recipe::Password {
        length: 8,
        charset: cooper_recipe::secrets::Charset::Hex,
    })
    .map(|v| v.expose().to_string())
    .unwrap_or_default()
}

/// The production-safe suites an app's recipe ships at the app's recorded version (none is
/// not an error: some recipes ship no tests).
pub fn prod_suites(abra: &AbraDir, domain: &str) -> Result<Vec<String>> {
    let app = abra.app(domain)?;
    let files = abra.app_files(
        &app,
        &VersionChoice {
            explicit: None,
            chaos: false,
        },
    )?;
    let suites = suite::load(&files).map_err(|e| OpsError::Refused(e.to_string()))?;
    Ok(suites
        .into_iter()
        .filter(|s| s.prod)
        .map(|s| s.name)
        .collect())
}

/// Runs the app's tests, inside the operation envelope (a read: tests take no lock, as they
/// change nothing but what they mark and clean up).
pub async fn run(
    abra: &AbraDir,
    req: &TestRequest,
    reporter: &mut dyn Reporter,
) -> Result<TestRun> {
    let envelope = Envelope::read("app test", &req.domain);
    let done = op::run(abra, envelope, reporter, async |op: &mut Op<'_>| {
        let engine = op.connect().await?;
        let (app, record, reporter) = (&op.app, &mut op.record, &mut *op.reporter);
        let run = run_in(abra, req, app, &engine, record, reporter).await?;
        if run.report.failed() > 0 {
            op.verdict = Some(Err(format!("{} step(s) failed", run.report.failed())));
        }
        Ok(run)
    })
    .await?;
    Ok(done.value)
}

async fn run_in(
    abra: &AbraDir,
    req: &TestRequest,
    app: &App,
    engine: &Engine,
    record: &mut Record,
    reporter: &mut dyn Reporter,
) -> Result<TestRun> {
    let stack_name = crate::stack_of(app);
    let (version, chaos) = crate::deploy::deployed_version(engine, &stack_name)
        .await?
        .ok_or_else(|| {
            OpsError::Refused(format!(
                "{} is not deployed; deploy it first (`cooper app deploy {}`)",
                app.at.domain, app.at.domain
            ))
        })?;
    let files = abra.app_files(
        app,
        &VersionChoice {
            explicit: (!chaos && version != "unknown").then(|| version.clone()),
            chaos,
        },
    )?;
    let mut suites = suite::load(&files).map_err(|e| OpsError::Refused(e.to_string()))?;
    if !req.suites.is_empty() {
        for want in &req.suites {
            if !suites.iter().any(|s| &s.name == want) {
                return Err(OpsError::Refused(format!(
                    "no suite {want} in {} at {version}; it has: {}",
                    app.recipe.name,
                    suites
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        suites.retain(|s| req.suites.contains(&s.name));
    }
    if suites.is_empty() {
        return Err(OpsError::Refused(format!(
            "{} at {version} ships no tests (no {}/*.toml); see docs/recipe-tests.md",
            app.recipe.name,
            suite::TESTS_DIR
        )));
    }
    let run = req.run_id.clone().unwrap_or_else(run_id);
    let results_dir = req.results.clone().unwrap_or_else(|| {
        abra.root
            .join("cooper")
            .join("test-results")
            .join(&app.at.domain)
            .join(&run)
    });
    std::fs::create_dir_all(&results_dir)
        .map_err(|e| OpsError::Failed(format!("creating {}: {e}", results_dir.display())))?;
    record.to_version = Some(version.clone());
    record
        .details
        .insert("run".into(), serde_json::json!(run.clone()));
    let started = Instant::now();
    let mut report = RunReport {
        app: app.at.domain.clone(),
        recipe: app.recipe.name.clone(),
        version: version.clone(),
        run: run.clone(),
        started: crate::record::now(),
        millis: 0,
        results: Vec::new(),
    };
    let ctx = Ctx {
        engine,
        app,
        stack: stack_name,
        run: run.clone(),
        probe_image: req.probe_image.clone(),
        files: &files,
        work: results_dir.join(".work"),
        secrets: crate::backup::app_secret_values(app),
        base_url: req
            .base_url
            .clone()
            .unwrap_or_else(|| format!("https://{}", app.at.domain)),
        driver: tokio::sync::OnceCell::new(),
        results: results_dir.clone(),
    };
    // A mark of the run in progress: if cooper dies before cleanup, `app test --cleanup`
    // finds it and runs the cleanup steps with the same run id.
    let marker = runs_dir(abra, &app.at.domain).join(&run);
    if req.setup_and_cleanup && !req.cleanup_only {
        let _ = std::fs::create_dir_all(runs_dir(abra, &app.at.domain));
        let _ = std::fs::write(
            &marker,
            serde_json::json!({
                "run": run,
                "pid": std::process::id(),
                "host": cooper_engine::oneshot::owner(),
                "version": version,
                "suites": suites.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
                "started": crate::record::now(),
            })
            .to_string(),
        );
    }
    reporter.info(&format!(
        "testing {} ({} {version}), run {run}",
        app.at.domain, app.recipe.name
    ));
    for s in &suites {
        if req.prod && !s.prod {
            for phase in wrap(req, &[Phase::Setup])
                .iter()
                .chain(req.phases.iter())
                .chain(wrap(req, &[Phase::Cleanup]).iter())
            {
                for step in phase.steps(s) {
                    report.results.push(StepResult {
                        suite: s.name.clone(),
                        phase: phase.name().into(),
                        name: step.name.clone(),
                        outcome: Outcome::Skipped(
                            "not marked safe for production (prod = true)".into(),
                        ),
                        millis: 0,
                        output: String::new(),
                    });
                }
            }
            reporter.info(&format!(
                "suite {}: skipped (--prod and the suite is not marked prod = true)",
                s.name
            ));
            continue;
        }
        reporter.info(&format!("suite {} ({})", s.name, s.file));
        let mut blocked: Option<String> = None;
        // Other apps' suites this one requires: their setup first.
        let mut deps = Vec::new();
        for need in &s.requires {
            match resolve(abra, app, need).await {
                Ok(d) => deps.push(d),
                Err(e) => {
                    let r = StepResult {
                        suite: s.name.clone(),
                        phase: "setup".into(),
                        name: format!("requires {}/{}", need.recipe, need.suite),
                        outcome: Outcome::Failed(e.to_string()),
                        millis: 0,
                        output: String::new(),
                    };
                    show(reporter, &r);
                    report.results.push(r);
                    blocked = Some(format!("requirement {}/{} unmet", need.recipe, need.suite));
                }
            }
        }
        let dep_ctxs: Vec<Ctx> = deps
            .iter()
            .map(|d| Ctx {
                engine: &d.engine,
                app: &d.app,
                stack: crate::stack_of(&d.app),
                run: run.clone(),
                probe_image: req.probe_image.clone(),
                files: &d.files,
                work: results_dir.join(".work-deps"),
                secrets: crate::backup::app_secret_values(&d.app),
                base_url: format!("https://{}", d.app.at.domain),
                driver: tokio::sync::OnceCell::new(),
                results: results_dir.clone(),
            })
            .collect();
        if !req.cleanup_only && req.setup_and_cleanup {
            for (d, dctx) in deps.iter().zip(&dep_ctxs) {
                for step in &d.suite.setup {
                    let r = match &blocked {
                        Some(why) => skipped(&d.suite, Phase::Setup, step, why),
                        None => dctx.step(&d.suite, Phase::Setup, step, &results_dir).await,
                    };
                    show(reporter, &r);
                    if matches!(r.outcome, Outcome::Failed(_)) {
                        blocked = Some(format!(
                            "setup step \"{}\" of {} failed",
                            step.name, d.suite.name
                        ));
                    }
                    report.results.push(r);
                }
            }
        }
        let main: &[Phase] = if req.cleanup_only { &[] } else { &req.phases };
        let before: &[Phase] = if req.cleanup_only {
            &[]
        } else {
            wrap(req, &[Phase::Setup])
        };
        for phase in before.iter().chain(main.iter()) {
            for step in phase.steps(s) {
                let r = match &blocked {
                    Some(why) => StepResult {
                        suite: s.name.clone(),
                        phase: phase.name().into(),
                        name: step.name.clone(),
                        outcome: Outcome::Skipped(why.clone()),
                        millis: 0,
                        output: String::new(),
                    },
                    None => ctx.step(s, *phase, step, &results_dir).await,
                };
                show(reporter, &r);
                if *phase == Phase::Setup && matches!(r.outcome, Outcome::Failed(_)) {
                    blocked = Some(format!("setup step \"{}\" failed", step.name));
                }
                report.results.push(r);
            }
        }
        // Cleanup always runs, whatever happened before.
        for step in wrap(req, &s.cleanup) {
            let r = ctx.step(s, Phase::Cleanup, step, &results_dir).await;
            show(reporter, &r);
            report.results.push(r);
        }
        // Then the required suites' cleanup, in reverse order.
        for (d, dctx) in deps.iter().zip(&dep_ctxs).rev() {
            for step in wrap(req, &d.suite.cleanup) {
                let r = dctx
                    .step(&d.suite, Phase::Cleanup, step, &results_dir)
                    .await;
                show(reporter, &r);
                report.results.push(r);
            }
        }
    }
    report.millis = started.elapsed().as_millis() as u64;
    if req.setup_and_cleanup && !req.cleanup_only {
        let _ = std::fs::remove_file(&marker);
    }
    let _ = std::fs::remove_dir_all(&ctx.work);
    std::fs::write(results_dir.join("junit.xml"), report.junit())
        .map_err(|e| OpsError::Failed(format!("writing junit.xml: {e}")))?;
    std::fs::write(
        results_dir.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| OpsError::Failed(format!("writing report.json: {e}")))?;
    for r in &report.results {
        record.steps.push(crate::record::Step {
            stage: format!("{} {}", r.suite, r.phase),
            detail: match &r.outcome {
                Outcome::Passed => format!("{}: passed", r.name),
                Outcome::Failed(w) => format!("{}: FAILED: {w}", r.name),
                Outcome::Skipped(w) => format!("{}: skipped: {w}", r.name),
            },
            ok: !matches!(r.outcome, Outcome::Failed(_)),
            started: String::new(),
            millis: r.millis,
        });
    }
    record.details.insert(
        "results".into(),
        serde_json::json!(results_dir.display().to_string()),
    );
    Ok(TestRun {
        report,
        results: results_dir,
    })
}

/// Another app's suite, resolved: the app (by domain, or the one deployed from the recipe on
/// the same server), its engine, its files at its deployed version, and the suite.
struct Dep {
    app: App,
    engine: Engine,
    files: RecipeFiles,
    suite: Suite,
}

async fn resolve(abra: &AbraDir, me: &App, need: &suite::Requirement) -> Result<Dep> {
    let app = match &need.domain {
        Some(d) => abra.app(d)?,
        None => {
            let found = abra
                .apps()?
                .into_iter()
                .filter(|a| a.server == me.at.server && a.domain != me.at.domain)
                .filter_map(|a| abra.load_app(a).ok())
                .find(|a| a.recipe.name == need.recipe);
            found.ok_or_else(|| {
                OpsError::Refused(format!(
                    "suite requires an app of recipe {} on server {}; there is none (deploy one, \
                     or name it with domain = \"…\" in requires)",
                    need.recipe, me.at.server
                ))
            })?
        }
    };
    let engine = connect(abra, &app.at.server).await?;
    let (version, chaos) = crate::deploy::deployed_version(&engine, &crate::stack_of(&app))
        .await?
        .ok_or_else(|| {
            OpsError::Refused(format!("{} (required) is not deployed", app.at.domain))
        })?;
    let files = abra.app_files(
        &app,
        &VersionChoice {
            explicit: (!chaos && version != "unknown").then_some(version),
            chaos,
        },
    )?;
    let mut found = suite::load(&files)
        .map_err(|e| OpsError::Refused(e.to_string()))?
        .into_iter()
        .find(|s| s.name == need.suite)
        .ok_or_else(|| {
            OpsError::Refused(format!(
                "{} ({}) has no suite {}",
                app.at.domain, need.recipe, need.suite
            ))
        })?;
    found.name = format!("{}/{}", need.recipe, found.name);
    Ok(Dep {
        app,
        engine,
        files,
        suite: found,
    })
}

fn skipped(suite: &Suite, phase: Phase, step: &Step, why: &str) -> StepResult {
    StepResult {
        suite: suite.name.clone(),
        phase: phase.name().into(),
        name: step.name.clone(),
        outcome: Outcome::Skipped(why.to_string()),
        millis: 0,
        output: String::new(),
    }
}

fn runs_dir(abra: &AbraDir, domain: &str) -> PathBuf {
    abra.root.join("cooper").join("test-runs").join(domain)
}

/// `app test --cleanup`: runs the cleanup steps of every interrupted run of the app's tests
/// (runs whose cooper died: their mark is still there and their process is gone), with the
/// run's own id, so exactly what that run created goes. Returns the reports.
pub async fn cleanup_interrupted(
    abra: &AbraDir,
    domain: &str,
    probe_image: &str,
    reporter: &mut dyn Reporter,
) -> Result<Vec<TestRun>> {
    let dir = runs_dir(abra, domain);
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let run_mark = v["run"].as_str().unwrap_or_default().to_string();
        let owner = v["host"].as_str().unwrap_or_default();
        if cooper_engine::oneshot::owner_alive_here(owner) == Some(true) {
            reporter.info(&format!(
                "run {run_mark} is still going ({owner}); left alone"
            ));
            continue;
        }
        reporter.info(&format!("cleaning up after interrupted run {run_mark}"));
        let mut req = TestRequest::new(domain);
        req.run_id = Some(run_mark);
        req.cleanup_only = true;
        req.probe_image = probe_image.to_string();
        req.suites = v["suites"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let done = run(abra, &req, reporter).await?;
        if done.report.failed() == 0 {
            let _ = std::fs::remove_file(&path);
        }
        out.push(done);
    }
    Ok(out)
}

/// `items` when the request runs setup and cleanup, else nothing.
fn wrap<'a, T>(req: &TestRequest, items: &'a [T]) -> &'a [T] {
    if req.setup_and_cleanup {
        items
    } else {
        &[]
    }
}

fn show(reporter: &mut dyn Reporter, r: &StepResult) {
    let secs = r.millis as f64 / 1000.0;
    reporter.info(&match &r.outcome {
        Outcome::Passed => format!("  ✓ {} {} ({secs:.1}s)", r.phase, r.name),
        Outcome::Failed(w) => format!("  ✗ {} {} ({secs:.1}s): {}", r.phase, r.name, tail(w, 3)),
        Outcome::Skipped(w) => format!("  - {} {}: skipped ({w})", r.phase, r.name),
    });
}

struct Ctx<'a> {
    engine: &'a Engine,
    app: &'a App,
    stack: String,
    run: String,
    probe_image: String,
    files: &'a RecipeFiles,
    work: PathBuf,
    secrets: Vec<String>,
    base_url: String,
    /// chromedriver, started at the first browser step.
    driver: tokio::sync::OnceCell<crate::browser::Driver>,
    results: PathBuf,
}

impl Ctx<'_> {
    async fn step(&self, suite: &Suite, phase: Phase, step: &Step, results: &Path) -> StepResult {
        let t = Instant::now();
        let limit = Duration::from_secs(step.timeout_secs.unwrap_or(suite.timeout_secs));
        let safe: String = format!("{}-{}-{}", suite.name, phase.name(), step.name)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let outcome = match tokio::time::timeout(limit, self.act(&step.action, &safe)).await {
            Ok(Ok((outcome, output))) => (outcome, output),
            Ok(Err(e)) => (Outcome::Failed(e.to_string()), String::new()),
            Err(_) => (
                Outcome::Failed(format!("did not finish within {}s", limit.as_secs())),
                String::new(),
            ),
        };
        let (outcome, output) = outcome;
        let output = tail(&crate::backup::scrub(&output, &self.secrets), 40);
        let mut r = StepResult {
            suite: suite.name.clone(),
            phase: phase.name().into(),
            name: step.name.clone(),
            outcome,
            millis: t.elapsed().as_millis() as u64,
            output,
        };
        if let Outcome::Failed(why) = &r.outcome {
            // The failure's evidence: what the step saw and the service's last log lines.
            let mut log = format!("{}\n\n{}\n", why, r.output);
            if let Some(service) = target_service(&step.action) {
                if let Ok(c) = self.engine.running_container(&self.stack, service).await {
                    log.push_str(&format!("\nlast log lines of {service}:\n"));
                    for l in self.engine.container_logs(&c, 50).await {
                        log.push_str(&l);
                        log.push('\n');
                    }
                }
            }
            let path = results.join(format!("{safe}.log"));
            let _ = std::fs::write(&path, crate::backup::scrub(&log, &self.secrets));
            if let Outcome::Failed(w) = &mut r.outcome {
                w.push_str(&format!("\n(log: {})", path.display()));
            }
        }
        r
    }

    async fn act(&self, action: &Action, name: &str) -> Result<(Outcome, String)> {
        match action {
            Action::Exec(x) => {
                let c = self.container(&x.service).await?;
                let out = self
                    .engine
                    .exec_capture(
                        &c,
                        ExecRequest {
                            cmd: x.cmd.clone(),
                            env: vec![format!("COOPER_TEST_RUN={}", self.run)],
                            ..Default::default()
                        },
                    )
                    .await?;
                let stdout = String::from_utf8_lossy(&out.stdout).to_string();
                let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
                if out.exit_code != x.exit {
                    return Ok((
                        Outcome::Failed(format!(
                            "exit {}, expected {}: {}",
                            out.exit_code,
                            x.exit,
                            tail(text.trim(), 3)
                        )),
                        text,
                    ));
                }
                if let Some(pat) = &x.stdout {
                    let re = regex::Regex::new(pat)
                        .map_err(|e| OpsError::Refused(format!("stdout pattern: {e}")))?;
                    if !re.is_match(&stdout) {
                        return Ok((
                            Outcome::Failed(format!(
                                "stdout does not match /{pat}/: {}",
                                tail(stdout.trim(), 3)
                            )),
                            text,
                        ));
                    }
                }
                Ok((Outcome::Passed, text))
            }
            Action::Health(h) => {
                let full = format!("{}_{}", self.stack, h.service);
                let services = self.engine.stack_services(&self.stack).await?;
                let Some(s) = services
                    .iter()
                    .find(|s| cooper_engine::apply::service_name(s) == full)
                else {
                    return Ok((
                        Outcome::Failed(format!("{full} is not deployed")),
                        String::new(),
                    ));
                };
                let st = s.service_status.clone().unwrap_or_default();
                let (running, desired) =
                    (st.running_tasks.unwrap_or(0), st.desired_tasks.unwrap_or(0));
                let line = format!("{full}: {running}/{desired} running");
                if desired > 0 && running >= desired {
                    Ok((Outcome::Passed, line))
                } else {
                    Ok((Outcome::Failed(line.clone()), line))
                }
            }
            Action::Http(h) => self.http(h).await,
            Action::Command(c) => self.command(c).await,
            Action::Browser(b) => {
                let driver = self
                    .driver
                    .get_or_try_init(crate::browser::Driver::start)
                    .await?;
                let shot = self.results.join(format!("{name}.png"));
                crate::browser::run(driver, &self.base_url, b, &self.run, &shot).await
            }
        }
    }

    async fn container(&self, service: &str) -> Result<String> {
        Ok(self
            .engine
            .wait_running_container(&self.stack, service, Duration::from_secs(30))
            .await?)
    }

    async fn http(&self, h: &suite::Http) -> Result<(Outcome, String)> {
        let url = match &h.url {
            Some(u) => u.clone(),
            // `tasks.<service>` resolves to the tasks themselves: no dependence on the
            // service's virtual IP (IPVS), which not every host provides.
            None => format!(
                "http://tasks.{}_{}:{}{}",
                self.stack,
                h.service.as_deref().unwrap_or_default(),
                h.port.unwrap_or(80),
                h.path
            ),
        };
        let mut cmd = vec!["wget".to_string(), "-S".into(), "-O".into(), "-".into()];
        for (k, v) in &h.headers {
            cmd.push("--header".into());
            cmd.push(format!("{k}: {v}"));
        }
        cmd.push(url.clone());
        let job = OneShot {
            image: self.probe_image.clone(),
            cmd,
            network: Some("proxy".into()),
            purpose: "probe".into(),
            ..Default::default()
        };
        let mut body: Vec<u8> = Vec::new();
        let end = self.engine.run_oneshot(&job, b"", &mut body).await?;
        let err = String::from_utf8_lossy(&end.stderr).to_string();
        let body = String::from_utf8_lossy(&body).to_string();
        let status = err
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let rest = l.strip_prefix("HTTP/")?;
                rest.split_whitespace().nth(1)?.parse::<u16>().ok()
            })
            .next_back();
        let output = format!("{err}\n{}", tail(&body, 20));
        let Some(status) = status else {
            return Ok((
                Outcome::Failed(format!(
                    "no HTTP answer from {url}: {}",
                    tail(err.trim(), 3)
                )),
                output,
            ));
        };
        if status != h.status {
            return Ok((
                Outcome::Failed(format!("{url} answered {status}, expected {}", h.status)),
                output,
            ));
        }
        if let Some(pat) = &h.body {
            let re = regex::Regex::new(pat)
                .map_err(|e| OpsError::Refused(format!("body pattern: {e}")))?;
            if !re.is_match(&body) {
                return Ok((
                    Outcome::Failed(format!("the body of {url} does not match /{pat}/")),
                    output,
                ));
            }
        }
        Ok((Outcome::Passed, output))
    }

    async fn command(&self, c: &suite::Command) -> Result<(Outcome, String)> {
        // The recipe's tests folder at this version, for the command to run in.
        let dir = self.work.join("tests");
        for path in self.files.paths() {
            if let Some(rest) = path.strip_prefix(&format!("{}/", suite::TESTS_DIR)) {
                let target = dir.join(rest);
                if let Some(p) = target.parent() {
                    let _ = std::fs::create_dir_all(p);
                }
                if let Some(bytes) = self.files.get(path) {
                    let _ = std::fs::write(&target, bytes);
                }
            }
        }
        let mut cmd = tokio::process::Command::new(&c.run[0]);
        cmd.args(&c.run[1..])
            .current_dir(&dir)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        for (k, v) in self.app.env.values() {
            cmd.env(k, v);
        }
        cmd.env("COOPER_APP_DOMAIN", &self.app.at.domain)
            .env("COOPER_APP_URL", &self.base_url)
            .env("COOPER_STACK", &self.stack)
            .env("COOPER_TEST_RUN", &self.run);
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        let out = cmd.output().await.map_err(|e| {
            OpsError::Failed(format!("cannot run {}: {e} (is it installed?)", c.run[0]))
        })?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok((Outcome::Passed, text))
        } else {
            Ok((
                Outcome::Failed(format!(
                    "{} exited with {}: {}",
                    c.run.join(" "),
                    out.status.code().unwrap_or(-1),
                    tail(text.trim(), 3)
                )),
                text,
            ))
        }
    }
}

fn target_service(a: &Action) -> Option<&str> {
    match a {
        Action::Exec(x) => Some(&x.service),
        Action::Health(h) => Some(&h.service),
        Action::Http(h) => h.service.as_deref(),
        Action::Command(_) | Action::Browser(_) => None,
    }
}
