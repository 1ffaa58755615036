//! Operating deployed apps: `app ps`, `errors`, `labels`, `logs`, `run`, `cmd`, `restart`,
//! `volume ls|rm`.

use std::io::IsTerminal;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use futures_util::StreamExt;

use cooper_recipe::stack;

use crate::{output, Ctx};

fn stack_of(ctx: &Ctx, domain: &str) -> anyhow::Result<(String, String)> {
    let app = ctx.abra.app(domain)?;
    let name = app
        .env
        .get("STACK_NAME")
        .map(str::to_string)
        .unwrap_or_else(|| stack::stack_name(domain));
    Ok((app.at.server, name))
}

/// Full names of one service (`Some`) or all of a stack's services.
async fn service_names(
    engine: &cooper_engine::Engine,
    stack_name: &str,
    service: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    Ok(match service {
        Some(s) => vec![format!("{stack_name}_{s}")],
        None => engine
            .stack_services(stack_name)
            .await?
            .iter()
            .map(|s| cooper_engine::apply::service_name(s).to_string())
            .collect(),
    })
}

#[derive(Debug, Args)]
pub struct Ps {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    #[arg(short = 'm', long)]
    /// Print JSON (machine-readable) instead of a table.
    machine: bool,
}

impl Ps {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let (server, stack_name) = stack_of(ctx, &self.domain)?;
        let rows = ctx.block_on(async {
            let engine = cooper_ops::connect(&ctx.abra, &server).await?;
            Ok::<_, anyhow::Error>(engine.stack_tasks(&stack_name).await?)
        })?;
        if self.machine {
            return output::json(&rows).map(|_| 0);
        }
        let table: Vec<Vec<String>> = rows
            .iter()
            .filter(|r| r.desired == "running" || r.state == "running")
            .map(|r| {
                vec![
                    r.service.clone(),
                    match (&r.node_state, r.node.as_str()) {
                        (_, "") => "-".into(),
                        (Some(s), n) => format!("{n} ({s})"),
                        (None, n) => n.to_string(),
                    },
                    r.image.clone(),
                    r.state.clone(),
                    r.desired.clone(),
                    r.update.clone().unwrap_or_else(|| "-".into()),
                    r.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        output::table(
            ctx.tty,
            &[
                "SERVICE", "NODE", "IMAGE", "STATE", "DESIRED", "UPDATE", "ERROR",
            ],
            &table,
        );
        Ok(0)
    }
}

#[derive(Debug, Args)]
pub struct Errors {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    #[arg(short = 'm', long)]
    /// Print JSON (machine-readable) instead of a table.
    machine: bool,
}

impl Errors {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let (server, stack_name) = stack_of(ctx, &self.domain)?;
        let rows = ctx.block_on(async {
            let engine = cooper_ops::connect(&ctx.abra, &server).await?;
            Ok::<_, anyhow::Error>(engine.stack_errors(&stack_name).await?)
        })?;
        if self.machine {
            return output::json(&rows).map(|_| 0);
        }
        if rows.is_empty() {
            println!("no failed tasks");
        }
        for r in rows {
            println!(
                "{} {}: {}{}",
                r.service,
                r.state,
                r.error.unwrap_or_else(|| "no error message".into()),
                r.exit_code
                    .map(|c| format!(" (exit code {c})"))
                    .unwrap_or_default()
            );
        }
        Ok(0)
    }
}

#[derive(Debug, Args)]
pub struct Labels {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    #[arg(short = 'm', long)]
    /// Print JSON (machine-readable) instead of a table.
    machine: bool,
}

impl Labels {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let (server, stack_name) = stack_of(ctx, &self.domain)?;
        let services = ctx.block_on(async {
            let engine = cooper_ops::connect(&ctx.abra, &server).await?;
            Ok::<_, anyhow::Error>(engine.stack_services(&stack_name).await?)
        })?;
        let mut out = std::collections::BTreeMap::new();
        for s in &services {
            let labels: std::collections::BTreeMap<String, String> = s
                .spec
                .as_ref()
                .and_then(|sp| sp.labels.clone())
                .unwrap_or_default()
                .into_iter()
                .collect();
            out.insert(cooper_engine::apply::service_name(s).to_string(), labels);
        }
        if self.machine {
            return output::json(&out).map(|_| 0);
        }
        for (svc, labels) in out {
            println!("{svc}:");
            for (k, v) in labels {
                println!("  {k}={v}");
            }
        }
        Ok(0)
    }
}

#[derive(Debug, Args)]
pub struct Logs {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    /// A service (default: all of the app's services).
    service: Option<String>,
    /// Keep printing new lines.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only the last N lines per service.
    #[arg(long = "tail", value_name = "N")]
    tail: Option<usize>,
    /// Only lines newer than this many seconds.
    #[arg(short = 's', long, value_name = "SECONDS")]
    since: Option<u64>,
    /// Prefix lines with their timestamp.
    #[arg(short = 't', long)]
    timestamps: bool,
}

impl Logs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let (server, stack_name) = stack_of(ctx, &self.domain)?;
        ctx.block_on(async {
            let engine = cooper_ops::connect(&ctx.abra, &server).await?;
            let services = service_names(&engine, &stack_name, self.service.as_deref()).await?;
            if services.is_empty() {
                bail!("{} is not deployed", self.domain);
            }
            let since = self.since.map(|s| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                now.saturating_sub(s) as i32
            });
            let streams = services.iter().map(|name| {
                let prefix = name
                    .trim_start_matches(&format!("{stack_name}_"))
                    .to_string();
                engine
                    .service_logs(name, self.follow, self.tail, since, self.timestamps)
                    .map(move |l| (prefix.clone(), l))
            });
            let mut all = futures_util::stream::select_all(streams.map(Box::pin));
            let many = services.len() > 1;
            while let Some((svc, line)) = all.next().await {
                let text = line?;
                for l in text.lines() {
                    if many {
                        println!("{svc} | {l}");
                    } else {
                        println!("{l}");
                    }
                }
            }
            Ok(())
        })?;
        Ok(0)
    }
}

#[derive(Debug, Args)]
pub struct Run {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    /// The service, as the recipe's compose file names it (e.g. `app`).
    service: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true)]
    cmd: Vec<String>,
    /// No terminal, even when attached to one.
    #[arg(short = 't', long)]
    no_tty: bool,
}

fn raw_mode(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "raw" } else { "sane" })
        .arg("-echo")
        .stdin(std::process::Stdio::inherit())
        .status();
    if !on {
        let _ = std::process::Command::new("stty")
            .arg("echo")
            .stdin(std::process::Stdio::inherit())
            .status();
    }
}

impl Run {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let (server, stack_name) = stack_of(ctx, &self.domain)?;
        let tty = !self.no_tty && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        let code = ctx.block_on(async {
            let engine = cooper_ops::connect(&ctx.abra, &server).await?;
            let container = engine.running_container(&stack_name, &self.service).await?;
            if tty {
                raw_mode(true);
            }
            let r = engine
                .exec_attached(
                    &container,
                    cooper_engine::exec::ExecRequest {
                        cmd: self.cmd.clone(),
                        tty,
                        ..Default::default()
                    },
                    tokio::io::stdin(),
                    tokio::io::stdout(),
                    tokio::io::stderr(),
                )
                .await;
            if tty {
                raw_mode(false);
            }
            Ok::<_, anyhow::Error>(r?)
        })?;
        Ok(u8::try_from(code).unwrap_or(1))
    }
}

#[derive(Debug, Args)]
pub struct Cmd {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    /// `[service] function`: the service defaults to `app`.
    #[arg(required = true, num_args = 1..=2)]
    target: Vec<String>,
    /// Arguments for the function (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
}

impl Cmd {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let (service, function) = match self.target.as_slice() {
            [f] => ("app".to_string(), f.clone()),
            [s, f] => (s.clone(), f.clone()),
            _ => bail!("give [service] function"),
        };
        let app = ctx.abra.app(&self.domain)?;
        let files = ctx.abra.app_files(&app, &stack::VersionChoice::default())?;
        let script = files.text("abra.sh").with_context(|| {
            format!(
                "recipe {} at {} has no abra.sh",
                app.recipe.name, files.origin
            )
        })?;
        let parsed = cooper_recipe::abrash::AbraSh::parse(&script);
        if !parsed.functions.contains(&function) {
            bail!(
                "abra.sh of {} has no function {function}; it has: {}",
                app.recipe.name,
                if parsed.functions.is_empty() {
                    "none".to_string()
                } else {
                    parsed.functions.join(", ")
                }
            );
        }
        let env: Vec<String> = stack::deploy_env(&app.at.domain, &app.env, Some(&parsed))
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let stack_name = stack::stack_name(&app.at.domain);
        let mut cmd = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("{script}\n{function} \"$@\""),
            "abra.sh".to_string(),
        ];
        cmd.extend(self.args.clone());
        let code = ctx.block_on(async {
            let engine = cooper_ops::connect(&ctx.abra, &app.at.server).await?;
            let container = engine.running_container(&stack_name, &service).await?;
            let out = engine
                .exec_capture(
                    &container,
                    cooper_engine::exec::ExecRequest {
                        cmd,
                        env,
                        ..Default::default()
                    },
                )
                .await?;
            use std::io::Write;
            std::io::stdout().write_all(&out.stdout)?;
            std::io::stderr().write_all(&out.stderr)?;
            Ok::<_, anyhow::Error>(out.exit_code)
        })?;
        Ok(u8::try_from(code).unwrap_or(1))
    }
}

#[derive(Debug, Args)]
pub struct Restart {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    /// A service (default: all of the app's services).
    service: Option<String>,
}

impl Restart {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let mut reporter = crate::report::CliReporter::new(ctx.tty, ctx.no_input);
        ctx.block_on(cooper_ops::deploy::restart(
            &ctx.abra,
            &self.domain,
            self.service.as_deref(),
            None,
            &mut reporter,
        ))?;
        println!(
            "restarted {}",
            self.service.as_deref().unwrap_or("all services")
        );
        Ok(0)
    }
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// List the app's volumes.
    #[command(alias = "list")]
    Ls {
        /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
        domain: String,
        #[arg(short = 'm', long)]
        /// Print JSON (machine-readable) instead of a table.
        machine: bool,
    },
    /// Remove the app's volumes (its data!); the app must be undeployed.
    #[command(alias = "remove")]
    Rm {
        /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
        domain: String,
        /// Volume names (default: all of the app's volumes).
        names: Vec<String>,
    },
}

impl VolumeCommand {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        match self {
            VolumeCommand::Ls { domain, machine } => {
                let (server, stack_name) = stack_of(ctx, &domain)?;
                let vols = ctx.block_on(async {
                    let engine = cooper_ops::connect(&ctx.abra, &server).await?;
                    Ok::<_, anyhow::Error>(engine.stack_volumes(&stack_name).await?)
                })?;
                if machine {
                    return output::json(&vols).map(|_| 0);
                }
                for v in vols {
                    println!("{v}");
                }
                Ok(0)
            }
            VolumeCommand::Rm { domain, names } => {
                if !ctx.no_input {
                    bail!(
                        "removing volumes deletes {domain}'s data; pass -n to confirm you mean it"
                    );
                }
                let (server, stack_name) = stack_of(ctx, &domain)?;
                ctx.block_on(async {
                    let engine = cooper_ops::connect(&ctx.abra, &server).await?;
                    if cooper_ops::deploy::deployed_version(&engine, &stack_name).await?.is_some() {
                        bail!("{domain} is deployed; undeploy it first (`cooper app undeploy {domain}`)");
                    }
                    for v in engine.stack_volumes(&stack_name).await? {
                        let short = v.trim_start_matches(&format!("{stack_name}_")).to_string();
                        if names.is_empty() || names.contains(&v) || names.contains(&short) {
                            engine.remove_volume(&v).await?;
                            println!("removed {v}");
                        }
                    }
                    Ok(())
                })?;
                Ok(0)
            }
        }
    }
}
