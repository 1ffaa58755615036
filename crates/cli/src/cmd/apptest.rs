//! `cooper app test`: the deployed version's test suites against the running app;
//! `cooper recipe test`: the lifecycle tiers of a release on a throwaway app.

use std::path::PathBuf;

use clap::Args;

use cooper_ops::test::{Phase, TestRequest, DEFAULT_PROBE_IMAGE};

use crate::report::CliReporter;
use crate::{output, Ctx};

#[derive(Debug, Args)]
pub struct AppTest {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    /// Production: run only suites marked `prod = true` (the others are reported skipped).
    #[arg(long)]
    prod: bool,
    /// Only this suite (repeatable).
    #[arg(short = 's', long = "suite")]
    suites: Vec<String>,
    /// Also run the suites' `seed` steps (write recognisable data) before the tests.
    #[arg(long)]
    seed: bool,
    /// Also run the suites' `check` steps (assert seeded data is there) after the tests.
    #[arg(long)]
    check: bool,
    /// Where to write junit.xml, report.json and failure logs
    /// (default $ABRA_DIR/cooper/test-results/<domain>/<run>).
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// The image HTTP probes run in (needs busybox `wget`).
    #[arg(long, env = "COOPER_PROBE_IMAGE", default_value = DEFAULT_PROBE_IMAGE)]
    probe_image: String,
    /// The app's address for browser steps and external commands (default https://<domain>).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Run the cleanup steps of interrupted runs (cooper killed mid-test) with their own run
    /// marks, removing what they created.
    #[arg(long)]
    cleanup: bool,
    #[arg(short = 'm', long)]
    /// Print JSON (machine-readable) instead of a table.
    machine: bool,
}

impl AppTest {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        if self.cleanup {
            let mut reporter = CliReporter::new(ctx.tty, ctx.no_input);
            let done = ctx.block_on(cooper_ops::test::cleanup_interrupted(
                &ctx.abra,
                &self.domain,
                &self.probe_image,
                &mut reporter,
            ))?;
            if done.is_empty() {
                println!("{}: no interrupted test runs", self.domain);
                return Ok(0);
            }
            let mut code = 0;
            for d in done {
                let r = &d.report;
                println!(
                    "run {}: {} cleanup step(s) passed, {} failed",
                    r.run,
                    r.passed(),
                    r.failed()
                );
                if r.failed() > 0 {
                    code = 1;
                }
            }
            return Ok(code);
        }
        let mut req = TestRequest::new(&self.domain);
        req.prod = self.prod;
        req.suites = self.suites;
        req.results = self.results;
        req.probe_image = self.probe_image;
        req.base_url = self.url;
        req.phases = Vec::new();
        if self.seed {
            req.phases.push(Phase::Seed);
        }
        req.phases.push(Phase::Test);
        if self.check {
            req.phases.push(Phase::Check);
        }
        let mut reporter = CliReporter::new(ctx.tty && !self.machine, ctx.no_input);
        let run = ctx.block_on(cooper_ops::test::run(&ctx.abra, &req, &mut reporter))?;
        let r = &run.report;
        if self.machine {
            output::json(r)?;
        } else {
            println!(
                "{}: {} passed, {} failed, {} skipped in {:.1}s; reports in {} (junit.xml, report.json)",
                self.domain,
                r.passed(),
                r.failed(),
                r.skipped(),
                r.millis as f64 / 1000.0,
                run.results.display()
            );
        }
        Ok(if r.failed() == 0 { 0 } else { 1 })
    }
}

#[derive(Debug, Args)]
pub struct RecipeTest {
    /// The recipe (required unless --cleanup).
    #[arg(required_unless_present = "cleanup")]
    recipe: Option<String>,
    /// The release to test (default: the newest).
    #[arg(value_name = "VERSION")]
    recipe_version: Option<String>,
    /// The server the throwaway app runs on.
    #[arg(short = 's', long, default_value = "default")]
    server: String,
    /// Extra .env settings for the throwaway app (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    #[arg(long, value_name = "DIR")]
    /// Where reports go (JUnit XML, JSON, logs of failures).
    results: Option<PathBuf>,
    #[arg(long, env = "COOPER_PROBE_IMAGE", default_value = DEFAULT_PROBE_IMAGE)]
    /// The image of the helper that probes HTTP from inside the Swarm (needs `sh` and `wget`).
    probe_image: String,
    /// The throwaway app's address for browser steps and external commands.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Convergence timeout per deploy, in seconds.
    #[arg(short = 't', long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Remove what interrupted recipe tests left behind (throwaway apps cooper-test-*.test).
    #[arg(long)]
    cleanup: bool,
    #[arg(short = 'm', long)]
    /// Print JSON (machine-readable) instead of a table.
    machine: bool,
}

impl RecipeTest {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        if self.cleanup {
            let done = ctx.block_on(cooper_ops::lifecycle::cleanup_leftovers(&ctx.abra))?;
            if done.is_empty() {
                println!("no leftovers of recipe tests");
            }
            let mut code = 0;
            for (domain, r) in done {
                match r {
                    Ok(left) if left.is_empty() => println!("{domain}: removed"),
                    Ok(left) => {
                        code = 1;
                        println!("{domain}: still there: {}", left.join(", "))
                    }
                    Err(e) => {
                        code = 1;
                        println!("{domain}: {e}")
                    }
                }
            }
            return Ok(code);
        }
        let mut env = Vec::new();
        for kv in &self.env {
            let Some((k, v)) = kv.split_once('=') else {
                anyhow::bail!("--env {kv:?}: write it as KEY=VALUE");
            };
            env.push((k.to_string(), v.to_string()));
        }
        let req = cooper_ops::lifecycle::RecipeTestRequest {
            recipe: self.recipe.unwrap_or_default(),
            version: self.recipe_version,
            server: self.server,
            env,
            results: self.results,
            probe_image: self.probe_image,
            base_url: self.url,
            timeout: self.timeout.map(std::time::Duration::from_secs),
        };
        let mut reporter = CliReporter::new(ctx.tty && !self.machine, ctx.no_input);
        let r = ctx.block_on(cooper_ops::lifecycle::recipe_test(
            &ctx.abra,
            &req,
            &mut reporter,
        ))?;
        if self.machine {
            output::json(&r)?;
        } else {
            println!(
                "{} {}: level {} ({} of {} tiers passed); reports in {}",
                r.recipe,
                r.version,
                r.level,
                r.tiers
                    .iter()
                    .filter(|t| t.outcome == cooper_checks::Outcome::Passed)
                    .count(),
                r.tiers.len(),
                r.results.display()
            );
        }
        let failed = r
            .tiers
            .iter()
            .any(|t| matches!(t.outcome, cooper_checks::Outcome::Failed(_)));
        Ok(if failed { 1 } else { 0 })
    }
}

/// `cooper recipe autoupgrade`: the upgrade bot.
#[derive(Debug, Args)]
pub struct AutoUpgrade {
    /// The recipes to upgrade.
    #[arg(required = true)]
    recipes: Vec<String>,
    /// The biggest image step allowed (default: patch).
    #[command(flatten)]
    step: super::recipe::Steps,
    /// The server the candidates are tested on.
    #[arg(short = 's', long, default_value = "default")]
    server: String,
    /// Where the reports go (JSON, JUnit XML, Markdown summary).
    #[arg(long, value_name = "DIR", default_value = "cooper-autoupgrade")]
    results: PathBuf,
    /// Push each release branch and tag to origin when its tiers pass.
    #[arg(short = 'p', long)]
    publish: bool,
    #[arg(long, env = "COOPER_PROBE_IMAGE", default_value = DEFAULT_PROBE_IMAGE)]
    /// The image of the helper that probes HTTP from inside the Swarm (needs `sh` and `wget`).
    probe_image: String,
    /// Convergence timeout per deploy, in seconds.
    #[arg(short = 't', long, value_name = "SECONDS")]
    timeout: Option<u64>,
    #[arg(short = 'm', long)]
    /// Print JSON (machine-readable) instead of a table.
    machine: bool,
}

impl AutoUpgrade {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let level = self
            .step
            .chosen()
            .unwrap_or(cooper_recipe::upgrade::Bump::Patch);
        let req = cooper_ops::autoupgrade::AutoUpgradeRequest {
            recipes: self.recipes,
            level,
            test: cooper_ops::lifecycle::RecipeTestRequest {
                recipe: String::new(),
                version: None,
                server: self.server,
                env: Vec::new(),
                results: None,
                probe_image: self.probe_image,
                base_url: None,
                timeout: self.timeout.map(std::time::Duration::from_secs),
            },
            publish: self.publish,
            results: self.results,
        };
        let client = cooper_registry::Client::with_config(cooper_registry::docker_config(None));
        let mut reporter = CliReporter::new(ctx.tty && !self.machine, true);
        let report = ctx.block_on(cooper_ops::autoupgrade::run(
            &ctx.abra,
            &req,
            &client,
            &mut reporter,
        ))?;
        if self.machine {
            output::json(&report)?;
        } else {
            println!(
                "summary: {}\njunit: {}\njson: {}",
                report.summary.display(),
                report.junit.display(),
                report.json.display()
            );
        }
        Ok(if report.ok() {
            0
        } else {
            crate::exit::CHECK_FAILED
        })
    }
}
