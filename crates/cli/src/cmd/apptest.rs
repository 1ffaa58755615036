//! `cooper app test`: the deployed version's test suites against the running app.

use std::path::PathBuf;

use clap::Args;

use cooper_ops::test::{Phase, TestRequest, DEFAULT_PROBE_IMAGE};

use crate::report::CliReporter;
use crate::{output, Ctx};

#[derive(Debug, Args)]
pub struct AppTest {
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
    #[arg(short = 'm', long)]
    machine: bool,
}

impl AppTest {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
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
