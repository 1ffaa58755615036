//! `cooper recipe …`: recipes in the state directory.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;

use cooper_recipe::lint::{self, Level, Outcome};
use cooper_recipe::repo::RecipeRepo;

use crate::{exit, output, Ctx};

#[derive(Debug, Subcommand)]
pub enum RecipeCommand {
    /// List local recipes with their newest version.
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'm', long)]
        /// Print JSON (machine-readable) instead of a table.
        machine: bool,
    },
    /// List a recipe's versions and each service's image (alias: v).
    #[command(alias = "v")]
    Versions {
        /// The recipe (a git repository under `$ABRA_DIR/recipes`).
        recipe: String,
        #[arg(short = 'm', long)]
        /// Print JSON (machine-readable) instead of a table.
        machine: bool,
    },
    /// Create a new recipe from cooper's template (alias: n).
    #[command(alias = "n")]
    New {
        /// The new recipe's name (a directory under `$ABRA_DIR/recipes`).
        name: String,
    },
    /// Check a recipe against rules R001–R016 and C001–C008 (alias: l).
    #[command(alias = "l")]
    Lint(Lint),
    /// Run the lifecycle tiers of a release on a throwaway app: install, seed, upgrade, backup,
    /// wipe + restore, custom tests, teardown; gives the version a level (alias: t).
    #[command(alias = "t")]
    Test(super::apptest::RecipeTest),
    /// Newer image tags of the same shape for each service, from the registries; rewrites the
    /// image lines (tag and @sha256 pin) of the working tree (alias: u).
    #[command(alias = "u")]
    Upgrade(Upgrade),
    /// Work out the next version from what changed since the last release and write it into
    /// the version label; count up config versions whose files changed. No commit, no tag.
    Sync(Release),
    /// Release the working tree: next version, version label, config versions, release notes
    /// moved, a commit and an annotated tag; --publish pushes them (alias: rl).
    #[command(alias = "rl")]
    Release(Release),
    /// The upgrade bot: newer image tags → a release on a branch → every lifecycle tier on the
    /// candidate; green keeps the release, red deletes it and reports the failing tier with its
    /// logs (JUnit XML + Markdown summary). Unattended (alias: au).
    #[command(alias = "au")]
    Autoupgrade(super::apptest::AutoUpgrade),
}

#[derive(Debug, Args)]
pub struct Release {
    /// The recipe (a git repository under `$ABRA_DIR/recipes`).
    recipe: String,
    /// The version to give, as <semver>+<upstream> (default: computed from what changed).
    #[arg(value_name = "VERSION")]
    release_version: Option<String>,
    #[command(flatten)]
    step: Steps,
    /// Show what would be written, committed, tagged and pushed, and change nothing.
    #[arg(short = 'r', long)]
    dry_run: bool,
    /// Push the commit and the tag to origin (release only).
    #[arg(short = 'p', long)]
    publish: bool,
    /// Release even when the result fails critical lint rules.
    #[arg(long)]
    skip_lint: bool,
    /// Print the plan as JSON.
    #[arg(short = 'm', long)]
    machine: bool,
}

/// The step flags: `-x` major, `-y` minor, `-z` patch (for `upgrade` and `autoupgrade` the
/// biggest image step allowed, patch by default; for `sync`/`release` the version step, computed
/// from the changes by default).
#[derive(Debug, Args)]
pub struct Steps {
    /// Major step.
    #[arg(short = 'x', long, conflicts_with_all = ["minor", "patch"])]
    major: bool,
    /// Minor step.
    #[arg(short = 'y', long, conflicts_with = "patch")]
    minor: bool,
    /// Patch step.
    #[arg(short = 'z', long)]
    patch: bool,
}

impl Steps {
    /// The step asked for, if any.
    pub fn chosen(&self) -> Option<cooper_recipe::upgrade::Bump> {
        use cooper_recipe::upgrade::Bump;
        match (self.major, self.minor, self.patch) {
            (true, _, _) => Some(Bump::Major),
            (_, true, _) => Some(Bump::Minor),
            (_, _, true) => Some(Bump::Patch),
            _ => None,
        }
    }
}

fn release(ctx: &Ctx, r: Release, commit: bool) -> anyhow::Result<u8> {
    let step = r.step.chosen();
    let req = cooper_ops::release::ReleaseRequest {
        recipe: r.recipe.clone(),
        version: r.release_version.clone(),
        step,
        commit,
        publish: r.publish,
    };
    let plan = cooper_ops::release::plan(&ctx.abra, &req)?;
    if r.machine {
        output::json(&plan)?;
    } else {
        for line in plan.describe() {
            println!("{line}");
        }
    }
    if r.dry_run {
        if !r.machine {
            println!("dry run: nothing changed");
        }
        return Ok(0);
    }
    if let Some(why) = plan.refusal(r.skip_lint) {
        anyhow::bail!(why);
    }
    if !confirm(ctx, "go ahead?")? {
        println!("nothing changed");
        return Ok(0);
    }
    cooper_ops::release::execute(&plan, r.skip_lint)?;
    if !r.machine {
        match (&plan.tag, &plan.push) {
            (Some(t), Some(p)) => println!("released {t} and pushed it to {p}"),
            (Some(t), None) => {
                println!("released {t} (push it with `git push origin HEAD {t}`, or use --publish)")
            }
            _ => println!(
                "wrote version {} (release it with `cooper recipe release {}`)",
                plan.version, plan.recipe
            ),
        }
    }
    Ok(0)
}

/// Asks on the terminal unless -n; without a terminal and without -n, refuses.
fn confirm(ctx: &Ctx, question: &str) -> anyhow::Result<bool> {
    use cooper_ops::Reporter;
    if !ctx.no_input && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!("no terminal to ask on: pass -n to go ahead, or --dry-run / -m to only look");
    }
    Ok(crate::report::CliReporter::new(true, ctx.no_input).ask(question))
}

#[derive(Debug, Args)]
pub struct Upgrade {
    /// The recipe (a git repository under `$ABRA_DIR/recipes`).
    recipe: String,
    /// The biggest step allowed (default: patch).
    #[command(flatten)]
    step: Steps,
    /// List every tag of each image too, not only the upgrades.
    #[arg(short = 'a', long)]
    all_tags: bool,
    /// Print the proposal as JSON and change nothing.
    #[arg(short = 'm', long)]
    machine: bool,
}

fn upgrade(ctx: &Ctx, u: Upgrade) -> anyhow::Result<u8> {
    let level = u
        .step
        .chosen()
        .unwrap_or(cooper_recipe::upgrade::Bump::Patch);
    let client = cooper_registry::Client::with_config(cooper_registry::docker_config(None));
    let mut proposals = ctx.block_on(cooper_ops::maintain::propose(
        &ctx.abra, &u.recipe, level, &client,
    ))?;
    if !u.all_tags {
        proposals.iter_mut().for_each(|p| p.tags.clear());
    }
    if u.machine {
        output::json(&proposals)?;
        return Ok(0);
    }
    for p in proposals.iter().filter(|p| !p.tags.is_empty()) {
        println!("{} tags: {}", p.image, p.tags.join(", "));
    }
    let interactive = !ctx.no_input && std::io::IsTerminal::is_terminal(&std::io::stdin());
    if interactive {
        choose(ctx, &client, &mut proposals)?;
    }
    for p in &proposals {
        match (&p.chosen, &p.note) {
            (Some(e), _) => println!("{}: {} → {}", p.files.join(", "), e.from, e.to),
            (None, Some(n)) => println!("{}: {} ({n})", p.files.join(", "), p.image),
            (None, None) => println!(
                "{}: {} is the newest at this level",
                p.files.join(", "),
                p.image
            ),
        }
    }
    if proposals.iter().all(|p| p.chosen.is_none()) {
        return Ok(0);
    }
    if !confirm(ctx, "write these changes?")? {
        println!("nothing changed");
        return Ok(0);
    }
    for f in cooper_ops::maintain::apply(&ctx.abra, &u.recipe, &proposals)? {
        println!("wrote {f}");
    }
    Ok(0)
}

/// Asks, image by image, which newer tag to take (any step; the default is the one chosen at
/// the -x/-y/-z level), or to leave the image alone.
fn choose(
    ctx: &Ctx,
    client: &cooper_registry::Client,
    proposals: &mut [cooper_ops::maintain::ImageProposal],
) -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    for p in proposals.iter_mut().filter(|p| !p.candidates.is_empty()) {
        let default = p
            .chosen
            .as_ref()
            .and_then(|e| cooper_registry::ImageRef::parse(&e.to).ok())
            .and_then(|r| r.tag)
            .and_then(|chosen| p.candidates.iter().position(|(_, t)| *t == chosen));
        eprintln!("{} ({}):", p.image, p.files.join(", "));
        for (i, (bump, tag)) in p.candidates.iter().enumerate() {
            let mark = if Some(i) == default { " (default)" } else { "" };
            eprintln!("  [{}] {tag} ({bump}){mark}", i + 1);
        }
        let keep = if default.is_none() { " (default)" } else { "" };
        eprintln!("  [s] keep {}{keep}", p.image);
        loop {
            eprint!("choice: ");
            std::io::stderr().flush()?;
            let mut a = String::new();
            if std::io::stdin().lock().read_line(&mut a)? == 0 {
                anyhow::bail!("no answer (end of input); nothing changed");
            }
            let a = a.trim();
            if a.is_empty() {
                break;
            }
            if a == "s" || a == "skip" {
                p.chosen = None;
                break;
            }
            match a
                .parse::<usize>()
                .ok()
                .and_then(|n| p.candidates.get(n.wrapping_sub(1)))
            {
                Some((_, tag)) => {
                    let tag = tag.clone();
                    p.chosen =
                        Some(ctx.block_on(cooper_ops::maintain::edit_for(client, &p.image, &tag))?);
                    break;
                }
                None => eprintln!(
                    "answer 1–{}, s, or nothing for the default",
                    p.candidates.len()
                ),
            }
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct Lint {
    /// Recipes to lint.
    #[arg(required_unless_present = "all")]
    recipes: Vec<String>,
    /// Lint every recipe in $ABRA_DIR/recipes.
    #[arg(short = 'a', long, conflicts_with = "recipes")]
    all: bool,
    /// Lint a release tag (or commit) instead of the working tree.
    #[arg(short = 't', long, value_name = "VERSION")]
    tag: Option<String>,
    #[arg(short = 'm', long)]
    /// Print JSON (machine-readable) instead of a table.
    machine: bool,
}

impl RecipeCommand {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        match self {
            RecipeCommand::Ls { machine } => ls(ctx, machine),
            RecipeCommand::Versions { recipe, machine } => versions(ctx, &recipe, machine),
            RecipeCommand::New { name } => new(ctx, &name),
            RecipeCommand::Lint(l) => run_lint(ctx, l),
            RecipeCommand::Test(t) => t.run(ctx),
            RecipeCommand::Upgrade(u) => upgrade(ctx, u),
            RecipeCommand::Sync(r) => release(ctx, r, false),
            RecipeCommand::Release(r) => release(ctx, r, true),
            RecipeCommand::Autoupgrade(a) => a.run(ctx),
        }
    }
}

#[derive(Serialize)]
struct RecipeRow {
    name: String,
    category: String,
    status: Option<i64>,
    latest: Option<String>,
    versions: usize,
    level: Option<u8>,
    local: bool,
}

/// The catalogue, when there is one; a broken file is reported, not fatal for listings.
fn catalogue(ctx: &Ctx) -> cooper_recipe::catalogue::Catalogue {
    match cooper_ops::catalogue::read(&ctx.abra) {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            eprintln!("warning: {e}");
            Default::default()
        }
    }
}

fn ls(ctx: &Ctx, machine: bool) -> anyhow::Result<u8> {
    let cat = catalogue(ctx);
    let local = ctx.abra.recipes().unwrap_or_default();
    let mut names: Vec<String> = cat.keys().cloned().chain(local.iter().cloned()).collect();
    names.sort();
    names.dedup();
    let mut rows = Vec::new();
    for name in names {
        let meta = cat.get(&name);
        let mut versions: Vec<cooper_recipe::version::RecipeVersion> = meta
            .map(|m| m.version_names())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| cooper_recipe::version::RecipeVersion::parse(v).ok())
            .collect();
        let is_local = local.contains(&name);
        if is_local {
            if let Ok(v) = ctx.abra.recipe(&name).and_then(|r| Ok(r.versions()?)) {
                versions.extend(v);
            }
        }
        versions.sort();
        versions.dedup();
        let latest = versions.last().map(|v| v.to_string());
        let level = latest
            .as_ref()
            .and_then(|l| meta.and_then(|m| m.cooper_levels.get(l)).copied());
        rows.push(RecipeRow {
            category: meta.map(|m| m.category.clone()).unwrap_or_default(),
            status: meta.map(|m| m.features.status).filter(|s| *s > 0),
            latest,
            versions: versions.len(),
            level,
            local: is_local,
            name,
        });
    }
    if machine {
        return output::json(&rows).map(|_| 0);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let or_dash =
                |s: Option<String>| s.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into());
            vec![
                r.name.clone(),
                or_dash(Some(r.category.clone())),
                or_dash(r.status.map(|s| s.to_string())),
                or_dash(r.latest.clone()),
                r.versions.to_string(),
                or_dash(r.level.map(|l| l.to_string())),
                if r.local { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    output::table(
        ctx.tty,
        &[
            "RECIPE", "CATEGORY", "STATUS", "LATEST", "VERSIONS", "LEVEL", "LOCAL",
        ],
        &table,
    );
    Ok(0)
}

fn versions(ctx: &Ctx, recipe: &str, machine: bool) -> anyhow::Result<u8> {
    use cooper_recipe::catalogue::{self, VersionEntry};
    let cat = catalogue(ctx);
    let meta = cat.get(recipe);
    let mut out: Vec<VersionEntry> = meta.map(|m| m.versions.clone()).unwrap_or_default();
    let known: Vec<String> = out.iter().flat_map(|v| v.keys().cloned()).collect();
    match ctx.abra.recipe(recipe) {
        Ok(repo) => {
            for v in repo.versions()? {
                if known.iter().any(|k| k == v.as_str()) {
                    continue;
                }
                let files = repo.at_version(v.as_str())?;
                let services = match catalogue::service_images(&files) {
                    Ok(images) => images
                        .iter()
                        .map(|i| (i.service.clone(), i.meta()))
                        .collect(),
                    Err(e) => {
                        eprintln!("warning: {recipe} {v}: {e}");
                        BTreeMap::new()
                    }
                };
                out.push(BTreeMap::from([(v.to_string(), services)]));
            }
        }
        Err(e) if meta.is_none() => return Err(e.into()),
        Err(_) => {}
    }
    out.sort_by(|a, b| {
        let key = |e: &VersionEntry| {
            e.keys()
                .next()
                .and_then(|k| cooper_recipe::version::RecipeVersion::parse(k).ok())
        };
        key(a).cmp(&key(b))
    });
    if machine {
        return output::json(&out).map(|_| 0);
    }
    if out.is_empty() {
        println!("{recipe} has no release tags");
    }
    for entry in &out {
        for (version, services) in entry {
            let level = meta
                .and_then(|m| m.cooper_levels.get(version))
                .map(|l| format!(" (level {l})"))
                .unwrap_or_default();
            println!("{version}:{level}");
            for (name, img) in services {
                let digest = if img.digest.is_empty() {
                    String::new()
                } else {
                    format!(", {}", img.digest)
                };
                println!(" - {name} ({}:{}{digest})", img.image, img.tag);
            }
        }
    }
    Ok(0)
}

const TEMPLATE_COMPOSE: &str = r#"---
version: "3.8"

services:
  app:
    image: nginx:1.27.2
    networks:
      - proxy
    deploy:
      restart_policy:
        condition: on-failure
      labels:
        - "traefik.enable=true"
        - "traefik.http.services.${STACK_NAME}.loadbalancer.server.port=80"
        - "traefik.http.routers.${STACK_NAME}.rule=Host(`${DOMAIN}`${EXTRA_DOMAINS})"
        - "traefik.http.routers.${STACK_NAME}.entrypoints=web-secure"
        - "traefik.http.routers.${STACK_NAME}.tls.certresolver=${LETS_ENCRYPT_ENV}"
        - "coop-cloud.${STACK_NAME}.version="
        - "coop-cloud.${STACK_NAME}.timeout=${TIMEOUT:-300}"
        - "backupbot.backup=${ENABLE_BACKUPS:-true}"
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost"]
      interval: 30s
      timeout: 10s
      retries: 10
      start_period: 1m

networks:
  proxy:
    external: true
"#;

const TEMPLATE_ENV: &str = "TYPE={name}\n\nDOMAIN={name}.example.com\n\n## Domain aliases\n#EXTRA_DOMAINS=', `www.{name}.example.com`'\n\nLETS_ENCRYPT_ENV=production\n\nENABLE_BACKUPS=true\n";

const TEMPLATE_README: &str = "# {name}\n\n> One line description of the recipe\n\n<!-- metadata -->\n\n* **Category**: Apps\n* **Status**: 0\n* **Image**: [`nginx`](https://hub.docker.com/_/nginx), 4, upstream\n* **Healthcheck**: Yes\n* **Backups**: No\n* **Email**: N/A\n* **Tests**: No\n* **SSO**: N/A\n\n<!-- endmetadata -->\n\n## Quick start\n\n* `cooper app new {name} --server <server> --domain <domain>`\n* `cooper app config <domain>`\n* `cooper app deploy <domain>`\n";

fn new(ctx: &Ctx, name: &str) -> anyhow::Result<u8> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!("recipe names use lowercase letters, digits, - and _ only: {name:?}");
    }
    let dir = ctx.abra.recipes_dir().join(name);
    if dir.exists() {
        bail!("{} already exists; choose another name", dir.display());
    }
    std::fs::create_dir_all(dir.join("release"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let write = |rel: &str, text: String| -> anyhow::Result<()> {
        let path = dir.join(rel);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write("compose.yml", TEMPLATE_COMPOSE.to_string())?;
    write(".env.sample", TEMPLATE_ENV.replace("{name}", name))?;
    write("README.md", TEMPLATE_README.replace("{name}", name))?;
    write(
        "abra.sh",
        "# export config versions here, e.g. export NGINX_CONF_VERSION=v1\n".to_string(),
    )?;
    write("release/next", String::new())?;
    init_git(&dir)?;
    println!("created recipe {name} in {}", dir.display());
    println!("next: edit compose.yml, then `cooper recipe lint {name}`");
    Ok(0)
}

fn init_git(dir: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["init", "-q", "-b", "main"])
        .status()
        .context("running git init (is git installed?)")?;
    if !status.success() {
        bail!("git init failed in {}", dir.display());
    }
    Ok(())
}

fn run_lint(ctx: &Ctx, l: Lint) -> anyhow::Result<u8> {
    let names = if l.all {
        ctx.abra.recipes()?
    } else {
        l.recipes.clone()
    };
    let mut reports = Vec::with_capacity(names.len());
    for name in &names {
        let repo: RecipeRepo = ctx.abra.recipe(name)?;
        let files = match &l.tag {
            Some(v) => repo.at_revision(v)?,
            None => repo.worktree()?,
        };
        let tags = repo.tags()?;
        reports.push(lint::lint(&lint::Input {
            files: &files,
            tags: &tags,
            repo: Some(&repo),
            origin_url: repo.origin_url(),
            offline: ctx.offline,
        }));
    }
    if l.machine {
        if l.all || reports.len() != 1 {
            output::json(&reports)?;
        } else {
            output::json(&reports[0])?;
        }
    } else {
        for report in &reports {
            print_report(ctx, report);
        }
    }
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| r.has_errors())
        .map(|r| r.recipe.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(0);
    }
    eprintln!("critical lint rules failed: {}", failed.join(", "));
    Ok(exit::CHECK_FAILED)
}

fn print_report(ctx: &Ctx, report: &lint::Report) {
    let rows: Vec<Vec<String>> = report
        .findings
        .iter()
        .map(|f| {
            let (status, detail) = match &f.outcome {
                Outcome::Ok => ("ok", String::new()),
                Outcome::Failed(d) => ("FAILED", d.join("; ")),
                Outcome::Skipped(why) => ("skipped", why.clone()),
            };
            let level = match f.level {
                Level::Warn => "warn",
                Level::Critical => "critical",
            };
            let fix = if f.failed() { f.how_to_fix } else { "" };
            vec![
                f.rule.to_string(),
                f.description.to_string(),
                level.to_string(),
                status.to_string(),
                detail,
                fix.to_string(),
            ]
        })
        .collect();
    println!("{} ({})", report.recipe, report.origin);
    output::table(
        ctx.tty,
        &[
            "RULE",
            "DESCRIPTION",
            "LEVEL",
            "STATUS",
            "DETAIL",
            "HOW TO FIX",
        ],
        &rows,
    );
}
