//! `cooper`: the command-line front end. Thin: parses arguments, calls the library, prints.

mod cmd;
mod output;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, defined once.
pub mod exit {
    /// Something failed (the message says what and how to fix it).
    pub const FAILURE: u8 = 1;
    /// A check ran and found problems (lint errors, missing env keys).
    pub const CHECK_FAILED: u8 = 3;
    /// A deploy failed and the app does not run as before: the way back did not converge,
    /// there was none (a first deploy), or `--no-rollback` left it. Someone must look now.
    pub const APP_DOWN: u8 = 4;
}

/// Co-operative hosting for Co-op Cloud recipes: an abra-compatible CLI.
#[derive(Debug, Parser)]
#[command(name = "cooper", version, about, propagate_version = true)]
pub struct Cli {
    /// Never prompt; take defaults (required in CI and scripts).
    #[arg(short = 'n', long, global = true)]
    pub no_input: bool,
    /// Do not contact the network (catalogue, remotes); use local clones.
    #[arg(short = 'o', long, global = true)]
    pub offline: bool,
    /// Print debug information.
    #[arg(short = 'd', long, global = true)]
    pub debug: bool,
    /// The abra state directory.
    #[arg(long, env = "ABRA_DIR", global = true, value_name = "DIR")]
    pub abra_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage apps (alias: a).
    #[command(alias = "a", subcommand)]
    App(cmd::app::AppCommand),
    /// Manage recipes (alias: r).
    #[command(alias = "r", subcommand)]
    Recipe(cmd::recipe::RecipeCommand),
    /// The recipe catalogue: generate recipes.json, sync it from its repository (alias: c).
    #[command(alias = "c", subcommand)]
    Catalogue(cmd::catalogue::CatalogueCommand),
    /// Manage servers (alias: s).
    #[command(alias = "s", subcommand)]
    Server(cmd::server::ServerCommand),
    /// The co-op's books: entries, imports, settlements by the agreed rule, reports (alias: l).
    #[command(alias = "l")]
    Ledger(Box<cmd::ledger::Ledger>),
    /// The federation's practice: members and dues, reviews, decisions, meetings (alias: f).
    #[command(alias = "f")]
    Federation(Box<cmd::federation::Federation>),
    /// The dashboard: a web page where communities see their instances and operators act on them.
    Serve(Box<cmd::serve::Serve>),
    /// Print a shell completion script (alias: ac), e.g. `source <(cooper autocomplete bash)`.
    #[command(alias = "ac")]
    Autocomplete(cmd::completion::Completion),
}

/// What every command gets: settings resolved once, here.
pub struct Ctx {
    pub abra: cooper_recipe::abra_dir::AbraDir,
    pub no_input: bool,
    pub offline: bool,
    pub debug: bool,
    /// Standard output is a terminal (tables and colour) rather than a pipe.
    pub tty: bool,
    runtime: std::cell::OnceCell<tokio::runtime::Runtime>,
}

impl Ctx {
    /// Runs a future on the async runtime (created on first use, so commands that need none,
    /// like `--version`, stay fast).
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a Tokio runtime can be built")
            })
            .block_on(fut)
    }
}

/// A `--timeout`-style number of seconds as a duration; zero, negative or not a number is an
/// error that names the flag.
pub(crate) fn seconds(value: f64, flag: &str) -> anyhow::Result<std::time::Duration> {
    if !value.is_finite() || value <= 0.0 || value > 86_400.0 {
        anyhow::bail!(
            "{flag} {value}: give a number of seconds between 0 and 86400 (e.g. {flag} 5)"
        );
    }
    Ok(std::time::Duration::from_secs_f64(value))
}

fn default_abra_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".abra")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx {
        abra: cooper_recipe::abra_dir::AbraDir::new(cli.abra_dir.unwrap_or_else(default_abra_dir)),
        no_input: cli.no_input,
        offline: cli.offline,
        debug: cli.debug,
        tty: std::io::IsTerminal::is_terminal(&std::io::stdout()),
        runtime: std::cell::OnceCell::new(),
    };
    let result = match cli.command {
        Command::App(c) => c.run(&ctx),
        Command::Recipe(c) => c.run(&ctx),
        Command::Server(c) => c.run(&ctx),
        Command::Catalogue(c) => c.run(&ctx),
        Command::Serve(c) => c.run(&ctx),
        Command::Ledger(c) => c.run(&ctx),
        Command::Federation(c) => c.run(&ctx),
        Command::Autocomplete(c) => c.run(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", report::render_error(&e));
            match e.downcast_ref::<cooper_ops::OpsError>() {
                Some(cooper_ops::OpsError::Broken(_)) => ExitCode::from(exit::APP_DOWN),
                _ => ExitCode::from(exit::FAILURE),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks the whole command tree (unique names, aliases, flags) here, not only when a
    /// subcommand happens to be run.
    #[test]
    fn command_tree_is_consistent() {
        super::Cli::command().debug_assert();
        // Global flags meet each subcommand's own only when that subcommand is built, so build
        // every one (clap panics on a clash, e.g. two `-n`).
        fn paths(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
            for sub in cmd.get_subcommands() {
                let mut p = prefix.clone();
                p.push(sub.get_name().to_string());
                out.push(p.clone());
                paths(sub, p, out);
            }
        }
        let mut all = Vec::new();
        paths(&super::Cli::command(), Vec::new(), &mut all);
        assert!(all.len() > 30, "{} commands", all.len());
        for p in all {
            let mut args = vec!["cooper".to_string()];
            args.extend(p.clone());
            args.push("--help".into());
            let err = super::Cli::command()
                .try_get_matches_from(args)
                .unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "{p:?}");
        }
    }

    /// Every command, flag and argument says what it is for in `--help`.
    #[test]
    fn every_flag_and_command_has_a_help_line() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(format!("{p} (the command)"));
                }
                walk(sub, &p, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "cooper", &mut missing);
        assert!(
            missing.is_empty(),
            "without a help line:\n  {}",
            missing.join("\n  ")
        );
    }
}
