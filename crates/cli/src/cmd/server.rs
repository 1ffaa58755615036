//! `cooper server …`: the servers of the state directory.

use clap::Subcommand;
use serde::Serialize;

use crate::{output, Ctx};

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// List servers and how many apps each has.
    #[command(alias = "list")]
    Ls {
        /// Print JSON.
        #[arg(short = 'm', long)]
        machine: bool,
    },
}

#[derive(Serialize)]
struct Row {
    name: String,
    apps: usize,
}

impl ServerCommand {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        match self {
            ServerCommand::Ls { machine } => {
                let apps = ctx.abra.apps()?;
                let rows: Vec<Row> = ctx
                    .abra
                    .servers()?
                    .into_iter()
                    .map(|name| Row {
                        apps: apps.iter().filter(|a| a.server == name).count(),
                        name,
                    })
                    .collect();
                if machine {
                    output::json(&rows)?;
                } else {
                    let table: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| vec![r.name.clone(), r.apps.to_string()])
                        .collect();
                    output::table(ctx.tty, &["SERVER", "APPS"], &table);
                }
                Ok(0)
            }
        }
    }
}
