//! `cooper app secret generate|insert|ls|rm`.

use std::io::Read;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use cooper_recipe::secrets::SecretValue;

use crate::report::CliReporter;
use crate::{output, Ctx};

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Generate missing secrets and show their values once (alias: g).
    #[command(alias = "g")]
    Generate(Generate),
    /// Store a value you have (alias: i).
    #[command(alias = "i")]
    Insert(Insert),
    /// List the app's secrets and whether each exists on the server.
    #[command(alias = "list")]
    Ls {
        /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
        domain: String,
        #[arg(short = 'm', long)]
        /// Print JSON (machine-readable) instead of a table.
        machine: bool,
    },
    /// Remove secrets from the server.
    #[command(alias = "remove")]
    Rm {
        /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
        domain: String,
        /// Secret names (default with --all: every secret of the app).
        names: Vec<String>,
        #[arg(short = 'a', long)]
        /// Remove every secret of the app.
        all: bool,
    },
}

#[derive(Debug, Args)]
pub struct Generate {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    /// Secret name (as in the compose file); omit with --all.
    name: Option<String>,
    /// Version (must match the app's .env; accepted for abra compatibility).
    #[arg(value_name = "VERSION")]
    secret_version: Option<String>,
    /// Generate every missing secret.
    #[arg(short = 'a', long, conflicts_with = "name")]
    all: bool,
    #[arg(short = 'm', long)]
    /// Print JSON (machine-readable) instead of a table.
    machine: bool,
}

#[derive(Debug, Args)]
pub struct Insert {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    /// The secret's name, as the recipe's compose file names it.
    name: String,
    #[arg(value_name = "VERSION")]
    /// The secret's version (e.g. `v1`), as in the app's `SECRET_<NAME>_VERSION`.
    secret_version: String,
    /// The value. Prefer --file or standard input: a value here is visible in the process list.
    value: Option<String>,
    /// Read the value from a file ("-" for standard input).
    #[arg(short = 'f', long, conflicts_with = "value")]
    file: Option<String>,
    /// Strip a trailing newline from the value.
    #[arg(short = 't', long)]
    trim: bool,
}

impl SecretCommand {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        match self {
            SecretCommand::Generate(g) => {
                if !g.all && g.name.is_none() {
                    bail!(
                        "name a secret or pass --all (e.g. `cooper app secret generate {} --all`)",
                        g.domain
                    );
                }
                let only: Vec<String> = g.name.iter().cloned().collect();
                let created = ctx.block_on(cooper_ops::secrets::generate(
                    &ctx.abra,
                    &g.domain,
                    &only,
                    g.secret_version.as_deref(),
                    &mut CliReporter::new(ctx.tty, ctx.no_input),
                ))?;
                if g.machine {
                    let rows: Vec<serde_json::Value> = created
                        .iter()
                        .map(|(k, n, v)| serde_json::json!({"name": k, "swarm_name": n, "value": v.expose()}))
                        .collect();
                    output::json(&rows)?;
                } else if created.is_empty() {
                    println!(
                        "nothing to generate: every secret of {} exists (or is generate=false)",
                        g.domain
                    );
                } else {
                    println!(
                        "generated {} secret(s); the values are shown only now:",
                        created.len()
                    );
                    for (k, n, v) in &created {
                        println!("{k} ({n}): {}", v.expose());
                    }
                }
                Ok(0)
            }
            SecretCommand::Insert(i) => {
                let mut value = match (&i.value, &i.file) {
                    (Some(v), _) => v.clone(),
                    (None, Some(f)) if f == "-" => {
                        let mut s = String::new();
                        std::io::stdin().read_to_string(&mut s).context("reading the value from standard input")?;
                        s
                    }
                    (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?,
                    (None, None) => bail!("give the value with --file <path>, --file - (standard input) or as an argument"),
                };
                if i.trim {
                    while value.ends_with('\n') || value.ends_with('\r') {
                        value.pop();
                    }
                }
                let name = ctx.block_on(cooper_ops::secrets::insert(
                    &ctx.abra,
                    &i.domain,
                    &i.name,
                    &i.secret_version,
                    &SecretValue::new(value),
                    &mut CliReporter::new(ctx.tty, ctx.no_input),
                ))?;
                println!("stored {name}");
                Ok(0)
            }
            SecretCommand::Ls { domain, machine } => {
                let list = ctx.block_on(cooper_ops::secrets::list(&ctx.abra, &domain))?;
                if machine {
                    output::json(&list)?;
                } else {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|s| {
                            vec![
                                s.name.clone(),
                                s.version.clone(),
                                s.swarm_name.clone(),
                                if s.created_on_server { "yes" } else { "no" }.into(),
                                if s.manual { "insert" } else { "generate" }.into(),
                            ]
                        })
                        .collect();
                    output::table(
                        ctx.tty,
                        &["NAME", "VERSION", "SWARM NAME", "ON SERVER", "HOW"],
                        &rows,
                    );
                }
                Ok(0)
            }
            SecretCommand::Rm { domain, names, all } => {
                if names.is_empty() && !all {
                    bail!("name secrets to remove or pass --all");
                }
                let removed =
                    ctx.block_on(cooper_ops::secrets::remove(&ctx.abra, &domain, &names))?;
                for r in &removed {
                    println!("removed {r}");
                }
                if removed.is_empty() {
                    println!("nothing removed");
                }
                Ok(0)
            }
        }
    }
}
