//! `cooper recipe autoupgrade`: the upgrade bot. For each recipe: newer image tags of the same
//! shape (`recipe upgrade`), written on a branch `cooper/upgrade-<version>` and released there
//! (`recipe release`: version, label, config versions, commit, annotated tag), then the
//! candidate release goes through every lifecycle tier (`recipe test`: install the previous
//! release, seed, upgrade to the candidate, backup, wipe + restore, custom tests, teardown).
//!
//! - green: the branch and the tag stay (pushed with `publish`); the operator's checkout is
//!   back on the branch it was on;
//! - red: the tag and the branch are deleted — no release is made — and the report names the
//!   tier that failed, with its reason and the logs the test run kept.
//!
//! The candidate is tagged locally while it is tested because the lifecycle test deploys
//! releases by tag; nothing is pushed before the tiers pass. Reports: JSON, JUnit XML (one
//! suite per recipe, one case per tier) and a Markdown summary a CI job can post.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cooper_checks::report::{Outcome, RunReport, StepResult};
use cooper_recipe::abra_dir::AbraDir;
use cooper_recipe::upgrade::{Bump, ImageEdit};
use cooper_registry::Client;
use serde::Serialize;

use crate::lifecycle::{RecipeTestRequest, Tier};
use crate::release::{self, ReleaseRequest};
use crate::{git, maintain, Collect, OpsError, Reporter, Result};

/// What to upgrade and how to test it.
#[derive(Debug, Clone)]
pub struct AutoUpgradeRequest {
    pub recipes: Vec<String>,
    /// The biggest image step to take.
    pub level: Bump,
    /// Settings of the lifecycle test (recipe and version are filled in per candidate).
    pub test: RecipeTestRequest,
    /// Push the release branch and tag to `origin` when the tiers pass.
    pub publish: bool,
    /// Where the reports go.
    pub results: PathBuf,
}

/// How one recipe's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// No newer image tags at this level.
    UpToDate,
    /// Every tier passed; the release is on its branch.
    Released,
    /// The candidate was released by an earlier run and waits on its branch to be merged.
    Pending,
    /// A tier failed; no release was made.
    Failed,
    /// The run could not get to testing (dirty tree, registry, release plan).
    #[default]
    Error,
}

/// One recipe's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecipeRun {
    pub recipe: String,
    pub status: Status,
    pub previous: Option<String>,
    pub candidate: Option<String>,
    pub branch: Option<String>,
    pub edits: Vec<ImageEdit>,
    pub notes: Vec<String>,
    pub tiers: Vec<Tier>,
    pub level: Option<u8>,
    pub failed_tier: Option<String>,
    pub detail: Option<String>,
    /// Tails of the logs the failing run kept.
    pub logs: Vec<String>,
    pub results: Option<PathBuf>,
    pub millis: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct AutoUpgradeReport {
    pub runs: Vec<RecipeRun>,
    pub junit: PathBuf,
    pub summary: PathBuf,
    pub json: PathBuf,
}

impl AutoUpgradeReport {
    /// True when no recipe failed or errored.
    pub fn ok(&self) -> bool {
        self.runs.iter().all(|r| {
            matches!(
                r.status,
                Status::UpToDate | Status::Released | Status::Pending
            )
        })
    }
}

/// Runs the bot over the recipes, one after the other.
pub async fn run(
    abra: &AbraDir,
    req: &AutoUpgradeRequest,
    client: &Client,
    reporter: &mut dyn Reporter,
) -> Result<AutoUpgradeReport> {
    std::fs::create_dir_all(&req.results)
        .map_err(|e| OpsError::Failed(format!("creating {}: {e}", req.results.display())))?;
    let mut runs = Vec::new();
    for recipe in &req.recipes {
        let t = Instant::now();
        let mut r = RecipeRun {
            recipe: recipe.clone(),
            ..Default::default()
        };
        if let Err(e) = one(abra, req, client, &mut r, reporter).await {
            r.status = Status::Error;
            r.detail = Some(e.to_string());
        }
        r.millis = t.elapsed().as_millis() as u64;
        reporter.info(&format!(
            "{recipe}: {}",
            match r.status {
                Status::UpToDate => "up to date".to_string(),
                Status::Pending => format!(
                    "{} was released earlier on {}; merge it",
                    r.candidate.as_deref().unwrap_or_default(),
                    r.branch.as_deref().unwrap_or_default()
                ),
                Status::Released => format!(
                    "released {} on {}",
                    r.candidate.as_deref().unwrap_or_default(),
                    r.branch.as_deref().unwrap_or_default()
                ),
                Status::Failed => format!(
                    "candidate {} failed tier {}; no release made",
                    r.candidate.as_deref().unwrap_or_default(),
                    r.failed_tier.as_deref().unwrap_or("?")
                ),
                Status::Error => format!("error: {}", r.detail.as_deref().unwrap_or_default()),
            }
        ));
        runs.push(r);
    }
    write_reports(&req.results, runs)
}

async fn one(
    abra: &AbraDir,
    req: &AutoUpgradeRequest,
    client: &Client,
    r: &mut RecipeRun,
    reporter: &mut dyn Reporter,
) -> Result<()> {
    let repo = abra.recipe(&r.recipe)?;
    let dir = repo.path.clone();
    let dirty = repo.dirty_paths()?;
    if !dirty.is_empty() {
        return Err(OpsError::Refused(format!(
            "{} has uncommitted changes ({}); commit or stash them first",
            dir.display(),
            dirty.join(", ")
        )));
    }
    let latest = repo.latest()?;
    r.previous = latest.as_ref().map(|v| v.to_string());
    let proposals = maintain::propose(abra, &r.recipe, req.level, client).await?;
    r.notes = proposals
        .iter()
        .filter_map(|p| p.note.as_ref().map(|n| format!("{}: {n}", p.image)))
        .collect();
    r.edits = proposals.iter().filter_map(|p| p.chosen.clone()).collect();
    if r.edits.is_empty() {
        r.status = Status::UpToDate;
        return Ok(());
    }
    let back_to = match repo.head_branch() {
        Some(b) => b,
        None => git::run(&dir, &["rev-parse", "HEAD"])?,
    };
    maintain::apply(abra, &r.recipe, &proposals)?;
    // The newest release (tags are global) may already hold exactly these images: released by
    // an earlier run on its branch, not merged yet.
    if let Some(latest) = latest {
        let released = repo.at_version(latest.as_str())?;
        let work = repo.worktree()?;
        if cooper_recipe::release::step(&cooper_recipe::release::changes(&released, &work))
            .is_none()
        {
            git::run(&dir, &["checkout", "-q", "--", "."])?;
            r.status = Status::Pending;
            r.candidate = Some(latest.to_string());
            r.branch = Some(format!("cooper/upgrade-{latest}"));
            r.detail = Some(format!(
                "{latest} already holds these images (an earlier run released it on its branch); merge it"
            ));
            return Ok(());
        }
    }
    let plan = match release::plan(
        abra,
        &ReleaseRequest {
            recipe: r.recipe.clone(),
            commit: true,
            ..Default::default()
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            git::run(&dir, &["checkout", "-q", "--", "."])?;
            return Err(e);
        }
    };
    let version = plan.version.clone();
    let branch = format!("cooper/upgrade-{version}");
    r.candidate = Some(version.clone());
    if plan.tag_exists {
        // A tag of that version with other content: not ours to replace.
        git::run(&dir, &["checkout", "-q", "--", "."])?;
        return Err(OpsError::Refused(format!(
            "the candidate's version {version} is a tag already, with other files; delete it or release by hand"
        )));
    }
    reporter.info(&format!(
        "{}: candidate {version} on {branch}: {}",
        r.recipe,
        r.edits
            .iter()
            .map(|e| format!("{} → {}", e.from, e.to))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    git::run(&dir, &["checkout", "-q", "-b", &branch])?;
    if let Err(e) = release::execute(&plan, false) {
        undo(&dir, &back_to, &branch, &version);
        return Err(e);
    }

    let mut test = req.test.clone();
    test.recipe = r.recipe.clone();
    test.version = Some(version.clone());
    test.results = Some(req.results.join(&r.recipe).join(&version));
    let tested = crate::lifecycle::recipe_test(abra, &test, &mut Collect::default()).await;
    // The operator's checkout goes back where it was in every case.
    git::run(&dir, &["checkout", "-q", &back_to])?;
    match tested {
        Err(e) => {
            undo(&dir, &back_to, &branch, &version);
            r.status = Status::Failed;
            r.failed_tier = Some("setup".into());
            r.detail = Some(e.to_string());
        }
        Ok(report) => {
            r.level = Some(report.level);
            r.results = Some(report.results.clone());
            r.tiers = report.tiers.clone();
            let failed = report
                .tiers
                .iter()
                .find(|t| matches!(t.outcome, Outcome::Failed(_)));
            match failed {
                Some(t) => {
                    undo(&dir, &back_to, &branch, &version);
                    r.status = Status::Failed;
                    r.failed_tier = Some(t.tier.clone());
                    if let Outcome::Failed(why) = &t.outcome {
                        r.detail = Some(why.clone());
                    }
                    r.logs = log_tails(&report.results);
                }
                None => {
                    r.status = Status::Released;
                    r.branch = Some(branch.clone());
                    if req.publish {
                        git::run(
                            &dir,
                            &[
                                "push",
                                "-q",
                                "--atomic",
                                "origin",
                                &format!("refs/heads/{branch}"),
                                &format!("refs/tags/{version}"),
                            ],
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Removes a candidate: back to the original checkout, tag and branch deleted.
fn undo(dir: &Path, back_to: &str, branch: &str, tag: &str) {
    let _ = git::run(dir, &["checkout", "-q", "-f", back_to]);
    let _ = git::run(dir, &["tag", "-d", tag]);
    let _ = git::run(dir, &["branch", "-q", "-D", branch]);
}

/// The last lines of each log file a test run kept (`*.log`, `*.txt` under its results).
fn log_tails(results: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![results.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "log" || x == "txt") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            Some(format!("{}:\n{tail}", p.display()))
        })
        .collect()
}

fn write_reports(dir: &Path, runs: Vec<RecipeRun>) -> Result<AutoUpgradeReport> {
    let io =
        |e: std::io::Error| OpsError::Failed(format!("writing reports in {}: {e}", dir.display()));
    let mut results = Vec::new();
    for r in &runs {
        let suite = r.recipe.clone();
        match r.status {
            Status::UpToDate | Status::Pending | Status::Error => results.push(StepResult {
                suite,
                phase: "upgrade".into(),
                name: "candidate".into(),
                outcome: match r.status {
                    Status::UpToDate => Outcome::Skipped("no newer image tags".into()),
                    Status::Pending => Outcome::Skipped(r.detail.clone().unwrap_or_default()),
                    _ => Outcome::Failed(r.detail.clone().unwrap_or_default()),
                },
                millis: r.millis,
                output: r.notes.join("\n"),
            }),
            Status::Released | Status::Failed => {
                if r.tiers.is_empty() {
                    results.push(StepResult {
                        suite: suite.clone(),
                        phase: "tier".into(),
                        name: r.failed_tier.clone().unwrap_or_else(|| "setup".into()),
                        outcome: Outcome::Failed(r.detail.clone().unwrap_or_default()),
                        millis: r.millis,
                        output: String::new(),
                    });
                }
                for t in &r.tiers {
                    let failed = matches!(t.outcome, Outcome::Failed(_));
                    results.push(StepResult {
                        suite: suite.clone(),
                        phase: "tier".into(),
                        name: t.tier.clone(),
                        outcome: t.outcome.clone(),
                        millis: t.millis,
                        output: if failed {
                            r.logs.join("\n\n")
                        } else {
                            String::new()
                        },
                    });
                }
            }
        }
    }
    let report = RunReport {
        app: "cooper recipe autoupgrade".into(),
        recipe: "autoupgrade".into(),
        version: String::new(),
        run: crate::test::run_id(),
        started: crate::record::now(),
        millis: runs.iter().map(|r| r.millis).sum(),
        results,
    };
    let junit = dir.join("junit.xml");
    std::fs::write(&junit, report.junit()).map_err(io)?;
    let summary = dir.join("summary.md");
    std::fs::write(&summary, markdown(&runs)).map_err(io)?;
    let json = dir.join("autoupgrade.json");
    std::fs::write(
        &json,
        serde_json::to_string_pretty(&runs).unwrap_or_default(),
    )
    .map_err(io)?;
    Ok(AutoUpgradeReport {
        runs,
        junit,
        summary,
        json,
    })
}

/// The Markdown summary: a table of recipes, then a section per failure.
pub fn markdown(runs: &[RecipeRun]) -> String {
    let mut s = String::from("# cooper recipe autoupgrade\n\n| recipe | result | from | candidate | level |\n|---|---|---|---|---|\n");
    for r in runs {
        let result = match r.status {
            Status::UpToDate => "✅ up to date".to_string(),
            Status::Pending => format!(
                "⏳ released earlier on `{}`, waiting to be merged",
                r.branch.as_deref().unwrap_or("")
            ),
            Status::Released => format!("✅ released on `{}`", r.branch.as_deref().unwrap_or("")),
            Status::Failed => format!(
                "❌ tier **{}** failed; no release",
                r.failed_tier.as_deref().unwrap_or("?")
            ),
            Status::Error => "⚠️ error".to_string(),
        };
        s.push_str(&format!(
            "| {} | {result} | {} | {} | {} |\n",
            r.recipe,
            r.previous.as_deref().unwrap_or("-"),
            r.candidate.as_deref().unwrap_or("-"),
            r.level.map(|l| l.to_string()).unwrap_or_else(|| "-".into())
        ));
    }
    for r in runs {
        if !r.edits.is_empty() || r.detail.is_some() {
            s.push_str(&format!("\n## {}\n\n", r.recipe));
        }
        for e in &r.edits {
            s.push_str(&format!("- `{}` → `{}`\n", e.from, e.to));
        }
        if let Some(d) = &r.detail {
            s.push_str(&format!("\n{}\n", d.trim()));
        }
        for t in &r.tiers {
            let mark = match t.outcome {
                Outcome::Passed => "passed",
                Outcome::Failed(_) => "FAILED",
                Outcome::Skipped(_) => "skipped",
            };
            s.push_str(&format!(
                "\n- tier {}: {mark} ({:.1} s)",
                t.tier,
                t.millis as f64 / 1000.0
            ));
        }
        if !r.tiers.is_empty() {
            s.push('\n');
        }
        for l in &r.logs {
            s.push_str(&format!(
                "\n<details><summary>logs</summary>\n\n```\n{l}\n```\n</details>\n"
            ));
        }
    }
    s
}
