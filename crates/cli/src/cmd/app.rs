//! `cooper app …`: apps and their `.env` files.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;

use cooper_recipe::abra_dir::App;
use cooper_recipe::envfile::EnvFile;
use cooper_recipe::repo::RecipeFiles;
use cooper_recipe::stack::{self, VersionChoice};

use crate::{exit, output, Ctx};

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an app's .env from its recipe's .env.sample (alias: n).
    #[command(alias = "n")]
    New(New),
    /// List apps, grouped by server.
    #[command(alias = "list")]
    Ls(Ls),
    /// Edit an app's .env in $EDITOR (alias: cfg).
    #[command(alias = "cfg")]
    Config {
        /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
        domain: String,
    },
    /// Report keys of the recipe's .env.sample missing from the app's .env (alias: chk).
    #[command(alias = "chk")]
    Check(VersionArgs),
    /// Print the stack a deploy would send: compose files merged and interpolated.
    Render(Render),
    /// Deploy an app to its server and wait until it runs (alias: d).
    #[command(alias = "d")]
    Deploy(super::lifecycle::Deploy),
    /// Deploy a newer release, showing the release notes crossed (alias: up).
    #[command(alias = "up")]
    Upgrade(super::lifecycle::Deploy),
    /// Deploy an older release (alias: rl).
    #[command(alias = "rl")]
    Rollback(super::lifecycle::Deploy),
    /// Remove the app's services, networks and configs; keep volumes and secrets (alias: un).
    #[command(alias = "un")]
    Undeploy(super::lifecycle::Undeploy),
    /// Delete the app's .env, optionally its volumes and secrets (alias: rm).
    #[command(alias = "rm")]
    Remove(super::lifecycle::Remove),
    /// Manage the app's Docker secrets (alias: s).
    #[command(alias = "s", subcommand)]
    Secret(super::secret::SecretCommand),
    /// Tasks of the app's services: state, image, node, errors.
    Ps(super::operate::Ps),
    /// Recent task failures with their reasons.
    Errors(super::operate::Errors),
    /// Labels of the deployed services (version, recipe, chaos, timeout).
    Labels(super::operate::Labels),
    /// Service logs (alias: l).
    #[command(alias = "l")]
    Logs(super::operate::Logs),
    /// Run a command in a running container of a service.
    Run(super::operate::Run),
    /// Run a function of the recipe's abra.sh in a service's container, with the app env.
    Cmd(super::operate::Cmd),
    /// Restart a service (rolling, as its update config says) and wait for it (alias: re).
    #[command(alias = "re")]
    Restart(super::operate::Restart),
    /// The app's volumes (alias: vl).
    #[command(alias = "vl", subcommand)]
    Volume(super::operate::VolumeCommand),
    /// Backups (alias: b).
    #[command(alias = "b", subcommand)]
    Backup(super::backup::BackupCommand),
    /// Restore the app's volumes from a snapshot: stops writers, runs restore hooks, replaces
    /// the volumes' contents and waits for the app (alias: rs).
    #[command(alias = "rs")]
    Restore(super::backup::Restore),
    /// Write the app's data, recipe version and non-secret settings as one archive with a
    /// manifest: enough for another server or co-op to run it with `cooper app restore
    /// DOMAIN --archive FILE --server SERVER`.
    Export(super::backup::Export),
    /// Run the deployed version's tests (the recipe's tests/*.toml) against the app; writes
    /// JUnit XML and JSON (alias: t).
    #[command(alias = "t")]
    Test(super::apptest::AppTest),
}

/// Which recipe version to use for an app.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// The app (its domain).
    domain: String,
    /// A recipe version (tag) or commit; default: the version on the app's TYPE line, else the
    /// newest release.
    #[arg(value_name = "VERSION")]
    recipe_version: Option<String>,
    /// Use the recipe's working tree, uncommitted changes included.
    #[arg(short = 'C', long)]
    chaos: bool,
}

#[derive(Debug, Args)]
pub struct Render {
    #[command(flatten)]
    v: VersionArgs,
    /// Print JSON with compose-spec field names.
    #[arg(short = 'm', long)]
    machine: bool,
}

#[derive(Debug, Args)]
pub struct New {
    /// The recipe (a git repository under `$ABRA_DIR/recipes`).
    recipe: String,
    /// Recipe version (default: the newest release).
    #[arg(value_name = "VERSION")]
    recipe_version: Option<String>,
    /// The server (a directory under $ABRA_DIR/servers).
    #[arg(short = 's', long)]
    server: String,
    /// The app's domain (also its name).
    #[arg(short = 'D', long)]
    domain: String,
    /// Use the recipe's working tree.
    #[arg(short = 'C', long)]
    chaos: bool,
}

#[derive(Debug, Args)]
pub struct Ls {
    /// Only apps on this server.
    #[arg(short = 's', long)]
    server: Option<String>,
    /// Only apps of this recipe.
    #[arg(short = 'r', long)]
    recipe: Option<String>,
    /// Ask every server (all at once) what is deployed: status and deployed version.
    #[arg(short = 'S', long)]
    status: bool,
    /// With -S: seconds each server may take before it is shown as unreachable (the others
    /// are not held up).
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    timeout: f64,
    /// Print JSON.
    #[arg(short = 'm', long)]
    machine: bool,
}

impl AppCommand {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        match self {
            AppCommand::New(a) => new(ctx, a),
            AppCommand::Ls(a) => ls(ctx, a),
            AppCommand::Config { domain } => config(ctx, &domain),
            AppCommand::Check(v) => check(ctx, v),
            AppCommand::Render(r) => render(ctx, r),
            AppCommand::Deploy(d) => d.run(ctx, cooper_ops::DeployKind::Deploy),
            AppCommand::Upgrade(d) => d.run(ctx, cooper_ops::DeployKind::Upgrade),
            AppCommand::Rollback(d) => d.run(ctx, cooper_ops::DeployKind::Rollback),
            AppCommand::Undeploy(u) => u.run(ctx),
            AppCommand::Remove(r) => r.run(ctx),
            AppCommand::Secret(s) => s.run(ctx),
            AppCommand::Ps(p) => p.run(ctx),
            AppCommand::Errors(e) => e.run(ctx),
            AppCommand::Labels(l) => l.run(ctx),
            AppCommand::Logs(l) => l.run(ctx),
            AppCommand::Run(r) => r.run(ctx),
            AppCommand::Cmd(c) => c.run(ctx),
            AppCommand::Restart(r) => r.run(ctx),
            AppCommand::Volume(v) => v.run(ctx),
            AppCommand::Backup(b) => b.run(ctx),
            AppCommand::Restore(r) => r.run(ctx),
            AppCommand::Export(e) => e.run(ctx),
            AppCommand::Test(t) => t.run(ctx),
        }
    }
}

/// The app and its recipe files at the chosen version; says on stderr when it uses a working
/// tree.
fn app_files(ctx: &Ctx, v: &VersionArgs) -> anyhow::Result<(App, RecipeFiles)> {
    let app = ctx.abra.app(&v.domain)?;
    let files = ctx.abra.app_files(
        &app,
        &VersionChoice {
            explicit: v.recipe_version.clone(),
            chaos: v.chaos,
        },
    )?;
    if ctx.debug {
        eprintln!(
            "debug: app {} on server {} ({}), recipe {} at {}, compose files {}",
            app.at.domain,
            app.at.server,
            app.at.path.display(),
            app.recipe.name,
            files.origin,
            stack::compose_files(&app.env).join(":")
        );
    }
    if files.origin.is_chaos() {
        eprintln!(
            "note: chaos mode: using recipe {} from its {}",
            app.recipe.name, files.origin
        );
    }
    Ok((app, files))
}

fn render(ctx: &Ctx, r: Render) -> anyhow::Result<u8> {
    let (app, files) = app_files(ctx, &r.v)?;
    let stack = stack::load(&app.at.domain, &app.env, &files).with_context(|| {
        format!(
            "rendering {} ({} at {})",
            app.at.domain, app.recipe.name, files.origin
        )
    })?;
    if r.machine {
        output::json(&stack.compose)?;
    } else {
        print!("{}", serde_norway::to_string(&stack.compose)?);
    }
    Ok(0)
}

fn new(ctx: &Ctx, a: New) -> anyhow::Result<u8> {
    let made = cooper_ops::app::create(
        &ctx.abra,
        &cooper_ops::app::NewApp {
            server: a.server.clone(),
            domain: a.domain.clone(),
            recipe: a.recipe.clone(),
            version: a.recipe_version.clone(),
            chaos: a.chaos,
            answers: None,
            settings: None,
        },
    )?;
    println!(
        "created {} ({} {}) on server {}",
        made.path.display(),
        a.recipe,
        made.origin,
        a.server
    );
    println!(
        "next: review it with `cooper app config {}`, then generate secrets and deploy",
        a.domain
    );
    Ok(0)
}

#[derive(Serialize)]
struct AppRow {
    server: String,
    domain: String,
    recipe: String,
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployed_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chaos: Option<bool>,
}

fn ls(ctx: &Ctx, a: Ls) -> anyhow::Result<u8> {
    let mut rows = Vec::new();
    for at in ctx.abra.apps()? {
        if a.server.as_ref().is_some_and(|s| *s != at.server) {
            continue;
        }
        let app = ctx.abra.load_app(at)?;
        if a.recipe.as_ref().is_some_and(|r| *r != app.recipe.name) {
            continue;
        }
        rows.push(AppRow {
            server: app.at.server,
            domain: app.at.domain,
            recipe: app.recipe.name,
            version: app.recipe.version,
            status: None,
            deployed_version: None,
            chaos: None,
        });
    }
    if a.status {
        let mut servers: Vec<String> = rows.iter().map(|r| r.server.clone()).collect();
        servers.dedup();
        let timeout = crate::seconds(a.timeout, "--timeout")?;
        let answers = ctx.block_on(cooper_ops::server::stacks_by_server(
            &ctx.abra, &servers, timeout,
        ));
        for r in rows.iter_mut() {
            let stack_name = stack::stack_name(&r.domain);
            let Some((_, answer)) = answers.iter().find(|(s, _)| *s == r.server) else {
                continue;
            };
            match answer {
                Err(e) => {
                    r.status = Some(format!(
                        "unreachable: {}",
                        e.lines().next().unwrap_or_default()
                    ))
                }
                Ok(stacks) => match stacks.get(&stack_name) {
                    None => r.status = Some("undeployed".into()),
                    Some(st) => {
                        r.status = Some(st.describe());
                        r.deployed_version = st.version.clone();
                        r.chaos = Some(st.chaos);
                    }
                },
            }
        }
    }
    if a.machine {
        let mut grouped: BTreeMap<&str, Vec<&AppRow>> = BTreeMap::new();
        for r in &rows {
            grouped.entry(&r.server).or_default().push(r);
        }
        output::json(&grouped)?;
        return Ok(0);
    }
    let mut servers: Vec<&str> = rows.iter().map(|r| r.server.as_str()).collect();
    servers.dedup();
    for (i, server) in servers.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("SERVER: {server}");
        let table: Vec<Vec<String>> = rows
            .iter()
            .filter(|r| r.server == *server)
            .map(|r| {
                let mut row = vec![
                    r.domain.clone(),
                    r.recipe.clone(),
                    r.version.clone().unwrap_or_else(|| "unknown".into()),
                ];
                if a.status {
                    row.push(r.status.clone().unwrap_or_default());
                    row.push(match (&r.deployed_version, r.chaos) {
                        (Some(v), Some(true)) => format!("{v} (chaos)"),
                        (Some(v), _) => v.clone(),
                        _ => "-".into(),
                    });
                }
                row
            })
            .collect();
        let header: &[&str] = if a.status {
            &["DOMAIN", "RECIPE", "VERSION", "STATUS", "DEPLOYED"]
        } else {
            &["DOMAIN", "RECIPE", "VERSION"]
        };
        output::table(ctx.tty, header, &table);
    }
    if rows.is_empty() {
        println!("no apps in {}", ctx.abra.servers_dir().display());
    }
    Ok(0)
}

fn config(ctx: &Ctx, domain: &str) -> anyhow::Result<u8> {
    let at = ctx.abra.find_app(domain)?;
    if ctx.no_input {
        bail!(
            "`app config` opens an editor and cannot run with --no-input; edit {} directly",
            at.path.display()
        );
    }
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let mut parts = shlex::split(&editor)
        .filter(|p| !p.is_empty())
        .with_context(|| format!("cannot parse EDITOR={editor:?}"))?;
    let program = parts.remove(0);
    let status = std::process::Command::new(&program)
        .args(parts)
        .arg(&at.path)
        .status()
        .with_context(|| format!("starting editor {program:?} (set EDITOR to one you have)"))?;
    if !status.success() {
        bail!("editor {program:?} exited with {status}");
    }
    // Say at once if the edit broke the file.
    ctx.abra.load_app(at)?;
    Ok(0)
}

fn check(ctx: &Ctx, v: VersionArgs) -> anyhow::Result<u8> {
    let (app, files) = app_files(ctx, &v)?;
    let sample = files.text(".env.sample").with_context(|| {
        format!(
            "recipe {} at {} has no .env.sample",
            app.recipe.name, files.origin
        )
    })?;
    let sample = EnvFile::parse(&sample)
        .map_err(|e| anyhow::anyhow!("recipe {} .env.sample: {e}", app.recipe.name))?;
    let have = app.env.values();
    let mut missing: Vec<String> = Vec::new();
    for e in sample.entries() {
        if !have.contains_key(&e.key) && !missing.contains(&e.key) {
            missing.push(e.key.clone());
        }
    }
    if missing.is_empty() {
        println!(
            "{}: every key of {}'s .env.sample ({}) is set",
            app.at.domain, app.recipe.name, files.origin
        );
        return Ok(0);
    }
    eprintln!(
        "{}: {} key{} of {}'s .env.sample ({}) missing from {}:",
        app.at.domain,
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        app.recipe.name,
        files.origin,
        app.at.path.display()
    );
    for k in &missing {
        println!("{k}");
    }
    eprintln!("add them with `cooper app config {}`", app.at.domain);
    Ok(exit::CHECK_FAILED)
}
