//! Looking at deployed apps: `app ps`, `app errors`, `app labels`.

use clap::Args;

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

#[derive(Debug, Args)]
pub struct Ps {
    domain: String,
    #[arg(short = 'm', long)]
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
                    r.image.clone(),
                    r.state.clone(),
                    r.desired.clone(),
                    r.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        output::table(
            ctx.tty,
            &["SERVICE", "IMAGE", "STATE", "DESIRED", "ERROR"],
            &table,
        );
        Ok(0)
    }
}

#[derive(Debug, Args)]
pub struct Errors {
    domain: String,
    #[arg(short = 'm', long)]
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
    domain: String,
    #[arg(short = 'm', long)]
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
