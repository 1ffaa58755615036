//! `cooper app deploy|upgrade|rollback|undeploy|remove`.

use std::time::Duration;

use anyhow::bail;
use clap::Args;

use cooper_ops::{DeployKind, DeployRequest};

use crate::report::CliReporter;
use crate::Ctx;

#[derive(Debug, Args)]
pub struct Deploy {
    /// The app (its domain).
    domain: String,
    /// A recipe version (tag) or commit. Deploy: default the version on the app's TYPE line,
    /// else the newest release. Upgrade: the newest release. Rollback: the previous release.
    #[arg(value_name = "VERSION")]
    recipe_version: Option<String>,
    /// Deploy again although the app is deployed (deploy), or replace a chaos deploy.
    #[arg(short = 'f', long)]
    force: bool,
    /// Deploy the recipe's working tree, uncommitted changes included.
    #[arg(short = 'C', long)]
    chaos: bool,
    /// Leave failed services as they are instead of putting the previous specs back.
    #[arg(long)]
    no_rollback: bool,
    /// Convergence timeout in seconds (default: the recipe's coop-cloud.<stack>.timeout, else 300).
    #[arg(short = 't', long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Failed tasks of the new version that count as a failed deploy.
    #[arg(long, default_value_t = 3, value_name = "N")]
    max_task_failures: usize,
    /// Wait up to this many seconds for another operation on the app to finish.
    #[arg(long, value_name = "SECONDS")]
    wait: Option<u64>,
    /// Upgrade: skip the safety backup taken before the upgrade.
    #[arg(long)]
    no_backup: bool,
    /// Upgrade: rehearse it first on a staging copy restored from a verified backup, and
    /// upgrade production only when the recipe's tests pass there.
    #[arg(long)]
    rehearse: bool,
    /// The image HTTP probes run in (rehearsal tests).
    #[arg(long, env = "COOPER_PROBE_IMAGE", default_value = cooper_ops::test::DEFAULT_PROBE_IMAGE)]
    probe_image: String,
}

/// On a terminal, lets the operator pick the release for an upgrade or rollback.
fn choose(ctx: &Ctx, domain: &str, kind: DeployKind) -> anyhow::Result<Option<String>> {
    use std::io::{BufRead, IsTerminal, Write};
    if ctx.no_input || !ctx.tty || !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let app = ctx.abra.app(domain)?;
    let repo = ctx.abra.recipe(&app.recipe.name)?;
    let list = cooper_ops::deploy::candidates(&repo, kind, app.recipe.version.as_deref());
    if list.len() < 2 {
        return Ok(None);
    }
    eprintln!(
        "{} {} from {}:",
        if kind == DeployKind::Upgrade {
            "upgrade"
        } else {
            "roll back"
        },
        domain,
        app.recipe
            .version
            .as_deref()
            .unwrap_or("its current version")
    );
    for (i, v) in list.iter().enumerate() {
        eprintln!("  {}) {v}", i + 1);
    }
    eprint!("which? [{}] ", list.len());
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let answer = answer.trim();
    if answer.is_empty() {
        return Ok(list.last().cloned());
    }
    match answer.parse::<usize>() {
        Ok(n) if (1..=list.len()).contains(&n) => Ok(Some(list[n - 1].clone())),
        _ => bail!("{answer:?} is not one of 1–{}", list.len()),
    }
}

impl Deploy {
    pub fn run(self, ctx: &Ctx, kind: DeployKind) -> anyhow::Result<u8> {
        if self.rehearse {
            if kind != DeployKind::Upgrade {
                bail!("--rehearse goes with `cooper app upgrade`");
            }
            return self.rehearse(ctx);
        }
        let mut req = DeployRequest::new(&self.domain, kind);
        req.version = match (&self.recipe_version, kind) {
            (None, DeployKind::Upgrade | DeployKind::Rollback) => choose(ctx, &self.domain, kind)?,
            (v, _) => v.clone(),
        };
        req.force = self.force;
        req.chaos = self.chaos;
        req.no_rollback = self.no_rollback;
        req.timeout = self.timeout.map(Duration::from_secs);
        req.max_task_failures = self.max_task_failures;
        req.wait_lock = self.wait.map(Duration::from_secs);
        req.safety_backup = !self.no_backup;
        let mut reporter = CliReporter::new(ctx.tty, ctx.no_input);
        let report = ctx.block_on(cooper_ops::deploy(&ctx.abra, &req, &mut reporter))?;
        for line in &report.summary {
            println!("{line}");
        }
        if ctx.debug {
            if let Some(p) = &report.record_path {
                eprintln!("debug: record {}", p.display());
            }
        }
        Ok(0)
    }
}

impl Deploy {
    fn rehearse(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let req = cooper_ops::rehearse::RehearseRequest {
            domain: self.domain.clone(),
            version: self.recipe_version.clone(),
            probe_image: self.probe_image.clone(),
            timeout: self.timeout.map(Duration::from_secs),
        };
        let mut reporter = CliReporter::new(ctx.tty, ctx.no_input);
        let r = ctx.block_on(cooper_ops::rehearse::rehearse(
            &ctx.abra,
            &req,
            &mut reporter,
        ))?;
        let failed: Vec<String> = r
            .steps
            .iter()
            .filter_map(|s| match &s.outcome {
                cooper_checks::Outcome::Failed(w) => Some(format!("{}: {w}", s.tier)),
                _ => None,
            })
            .collect();
        if r.upgraded && failed.is_empty() {
            println!(
                "{} upgraded from {} to {} after a green rehearsal on staging",
                r.domain, r.from, r.to
            );
            return Ok(0);
        }
        eprintln!(
            "the rehearsed upgrade of {} to {} did not go through{}:",
            r.domain,
            r.to,
            if r.upgraded {
                ""
            } else {
                "; production runs the version it ran before"
            }
        );
        for f in failed {
            eprintln!("  {f}");
        }
        if let (Some(id), false) = (&r.snapshot, r.upgraded) {
            eprintln!(
                "  the data from before is in snapshot {id} (`cooper app restore {} --snapshot {id}`)",
                r.domain
            );
        }
        Ok(1)
    }
}

#[derive(Debug, Args)]
pub struct Undeploy {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
}

impl Undeploy {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let mut reporter = CliReporter::new(ctx.tty, ctx.no_input);
        ctx.block_on(cooper_ops::undeploy(&ctx.abra, &self.domain, &mut reporter))?;
        println!("{} undeployed (volumes and secrets kept)", self.domain);
        Ok(0)
    }
}

#[derive(Debug, Args)]
pub struct Remove {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    /// Also remove the app's volumes (its data!).
    #[arg(long)]
    volumes: bool,
    /// Also remove the app's secrets.
    #[arg(long)]
    secrets: bool,
}

impl Remove {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        if self.volumes && !ctx.no_input {
            bail!(
                "removing {}'s volumes deletes its data; pass -n to confirm you mean it",
                self.domain
            );
        }
        let removed = ctx.block_on(cooper_ops::deploy::remove_app(
            &ctx.abra,
            &self.domain,
            self.volumes,
            self.secrets,
        ))?;
        for r in removed {
            println!("removed {r}");
        }
        Ok(0)
    }
}
