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
        /// Seconds each server may take before it is shown as unreachable (all are asked at
        /// once).
        #[arg(long, default_value_t = 20.0, value_name = "SECONDS")]
        timeout: f64,
    },
    /// List the nodes of a server's Swarm: role, state, availability, address.
    Nodes {
        /// The server's name.
        server: String,
        #[arg(short = 'm', long)]
        /// Print JSON (machine-readable) instead of a table.
        machine: bool,
    },
    /// Move every task off a node (the engine's `drain`) and wait until Swarm runs them
    /// elsewhere.
    Drain {
        /// The server's name.
        server: String,
        /// The node's host name (or ID), as `cooper server nodes` lists it.
        node: String,
        /// Seconds to wait for the tasks to run elsewhere.
        #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
        timeout: f64,
    },
    /// Let a drained or paused node take tasks again.
    Activate {
        /// The server's name.
        server: String,
        /// The node's host name (or ID).
        node: String,
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
            ServerCommand::Ls {
                machine,
                no_probe,
                timeout,
            } => {
                let list = ctx.block_on(cooper_ops::server::list(
                    &ctx.abra,
                    !no_probe && !ctx.offline,
                    crate::seconds(timeout, "--timeout")?,
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
            ServerCommand::Nodes { server, machine } => {
                let nodes = ctx.block_on(cooper_ops::server::nodes(&ctx.abra, &server))?;
                if machine {
                    return output::json(&nodes).map(|_| 0);
                }
                let rows: Vec<Vec<String>> = nodes
                    .iter()
                    .map(|n| {
                        vec![
                            n.hostname.clone(),
                            n.role.clone(),
                            n.state.clone(),
                            n.availability.clone(),
                            n.addr.clone(),
                            n.engine_version.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    ctx.tty,
                    &["NODE", "ROLE", "STATE", "AVAILABILITY", "ADDRESS", "ENGINE"],
                    &rows,
                );
                Ok(0)
            }
            ServerCommand::Drain {
                server,
                node,
                timeout,
            } => {
                let limit = crate::seconds(timeout, "--timeout")?;
                let mut reporter = crate::report::CliReporter::new(ctx.tty, ctx.no_input);
                let r = ctx.block_on(cooper_ops::server::drain(
                    &ctx.abra,
                    &server,
                    &node,
                    limit,
                    &mut reporter,
                ))?;
                println!(
                    "{} drained in {:.1} s: its tasks run on other nodes (undo with `cooper server activate {server} {}`)",
                    r.node, r.seconds, r.node
                );
                Ok(0)
            }
            ServerCommand::Activate { server, node } => {
                let before =
                    ctx.block_on(cooper_ops::server::activate(&ctx.abra, &server, &node))?;
                println!("{node} is active again (it was {before}); Swarm places new tasks on it");
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
