//! `cooper app backup …` (so far: `plan`, what a backup of the app would save).

use clap::Subcommand;

use cooper_recipe::stack::{self, VersionChoice};

use crate::{output, Ctx};

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Show what a backup would save (services, volumes, paths, hooks) and what nothing covers.
    Plan {
        domain: String,
        /// Use the recipe's working tree.
        #[arg(short = 'C', long)]
        chaos: bool,
        #[arg(short = 'm', long)]
        machine: bool,
    },
}

impl BackupCommand {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        match self {
            BackupCommand::Plan {
                domain,
                chaos,
                machine,
            } => {
                let app = ctx.abra.app(&domain)?;
                let files = ctx.abra.app_files(
                    &app,
                    &VersionChoice {
                        explicit: None,
                        chaos,
                    },
                )?;
                let loaded = stack::load(&domain, &app.env, &files)?;
                let plan = cooper_recipe::backup::plan(&loaded.name, &loaded.compose);
                if machine {
                    return output::json(&plan).map(|_| 0);
                }
                println!("{domain} ({} at {}):", app.recipe.name, files.origin);
                if plan.services.is_empty() {
                    println!("  nothing is backed up: no service has backupbot.backup=true");
                }
                for s in &plan.services {
                    println!("  service {}", s.service);
                    for v in &s.volumes {
                        let what = if v.excluded {
                            "excluded".to_string()
                        } else if v.paths.is_empty() {
                            "whole volume".to_string()
                        } else {
                            format!("paths {}", v.paths.join(", "))
                        };
                        println!(
                            "    volume {} ({}, at {}): {what}",
                            v.volume, v.swarm_name, v.mounted_at
                        );
                    }
                    for (label, hook) in [
                        ("backup pre-hook", &s.pre_hook),
                        ("backup post-hook", &s.post_hook),
                        ("restore pre-hook", &s.restore_pre_hook),
                        ("restore post-hook", &s.restore_post_hook),
                    ] {
                        if let Some(h) = hook {
                            println!("    {label}: {h}");
                        }
                    }
                }
                for (svc, vol) in &plan.uncovered {
                    eprintln!(
                        "warning: volume {vol} of service {svc} is not covered: add backupbot.backup=true \
                         to the service (or backupbot.backup=false to say it needs no backup)"
                    );
                }
                for w in &plan.warnings {
                    eprintln!("warning: {w}");
                }
                Ok(0)
            }
        }
    }
}
