//! `cooper server add|ls|rm`.

use anyhow::bail;
use clap::Subcommand;

use cooper_engine::Endpoint;

use crate::{output, Ctx};

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Register a server and test the connection (alias: a).
    #[command(alias = "a")]
    Add {
        /// The host (as in ~/.ssh/config); omit with --local.
        host: Option<String>,
        /// Register this machine's engine as server `default`.
        #[arg(short = 'l', long, conflicts_with = "host")]
        local: bool,
        /// SSH user, when ~/.ssh/config does not give it.
        #[arg(short = 'u', long)]
        user: Option<String>,
        /// SSH port, when ~/.ssh/config does not give it.
        #[arg(short = 'p', long)]
        port: Option<u16>,
    },
    /// List servers, their apps and whether each answers.
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'm', long)]
        /// Print JSON (machine-readable) instead of a table.
        machine: bool,
        /// Do not contact the servers.
        #[arg(long)]
        no_probe: bool,
    },
    /// Forget a server (refused while it has apps).
    #[command(alias = "remove")]
    Rm {
        /// The server's name (a directory under `$ABRA_DIR/servers`).
        name: String,
    },
}

impl ServerCommand {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        match self {
            ServerCommand::Add {
                host,
                local,
                user,
                port,
            } => {
                if !local && host.is_none() {
                    bail!("name a host (`cooper server add swarm.example.org`) or pass --local");
                }
                let endpoint = match (&host, user, port) {
                    (Some(h), u, p) if u.is_some() || p.is_some() => Some(Endpoint::Ssh(format!(
                        "{}{h}{}",
                        u.map(|u| format!("{u}@")).unwrap_or_default(),
                        p.map(|p| format!(":{p}")).unwrap_or_default()
                    ))),
                    _ => None,
                };
                let status = ctx.block_on(cooper_ops::server::add(
                    &ctx.abra,
                    host.as_deref(),
                    endpoint,
                ))?;
                println!(
                    "server {} added ({}, Docker {}, Swarm manager)",
                    status.name,
                    status.endpoint,
                    status.engine.unwrap_or_default()
                );
                Ok(0)
            }
            ServerCommand::Ls { machine, no_probe } => {
                let list = ctx.block_on(cooper_ops::server::list(
                    &ctx.abra,
                    !no_probe && !ctx.offline,
                ))?;
                if machine {
                    return output::json(&list).map(|_| 0);
                }
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            s.endpoint.clone(),
                            s.apps.to_string(),
                            match (&s.engine, &s.problem) {
                                (Some(v), _) => format!("yes (Docker {v})"),
                                (None, Some(p)) => {
                                    format!("NO: {}", p.lines().next().unwrap_or_default())
                                }
                                (None, None) => "not checked".into(),
                            },
                        ]
                    })
                    .collect();
                output::table(ctx.tty, &["SERVER", "ENDPOINT", "APPS", "REACHABLE"], &rows);
                Ok(0)
            }
            ServerCommand::Rm { name } => {
                cooper_ops::server::remove(&ctx.abra, &name)?;
                println!("server {name} removed");
                Ok(0)
            }
        }
    }
}
