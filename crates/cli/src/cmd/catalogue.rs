//! `cooper catalogue …`: the recipe catalogue (`$ABRA_DIR/catalogue/recipes.json`).

use clap::{Args, Subcommand};

use crate::{output, Ctx};

#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// Write recipes.json from the local recipes: README metadata, every release's service
    /// images with tag and digest (looked up once each, concurrently; none with -o), and
    /// cooper's lifecycle levels (alias: g).
    #[command(alias = "g")]
    Generate(Generate),
    /// Clone or fast-forward the catalogue repository into $ABRA_DIR/catalogue (alias: s).
    #[command(alias = "s")]
    Sync {
        /// The catalogue repository (default: abra's, on git.coopcloud.tech).
        #[arg(long, value_name = "URL")]
        remote: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct Generate {
    /// Recipes to regenerate (default: every local recipe); other entries are kept.
    recipes: Vec<String>,
    /// Commit recipes.json in the catalogue clone and push it.
    #[arg(short = 'p', long)]
    publish: bool,
    /// Registry look-ups in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Print the run's figures as JSON.
    #[arg(short = 'm', long)]
    machine: bool,
}

impl CatalogueCommand {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        match self {
            CatalogueCommand::Generate(g) => {
                let client =
                    cooper_registry::Client::with_config(cooper_registry::docker_config(None));
                let req = cooper_ops::catalogue::GenerateRequest {
                    recipes: g.recipes,
                    offline: ctx.offline,
                    concurrency: g.concurrency,
                };
                let (path, stats) = ctx.block_on(cooper_ops::catalogue::generate_into(
                    &ctx.abra, &req, &client,
                ))?;
                if g.machine {
                    output::json(&stats)?;
                } else {
                    println!(
                        "wrote {}: {} recipes, {} versions, {} images; {} digests looked up in {} registry round trips ({} ms){}",
                        path.display(),
                        stats.recipes,
                        stats.versions,
                        stats.images,
                        stats.lookups,
                        stats.round_trips,
                        stats.millis,
                        if ctx.offline { " (offline: no digests)" } else { "" }
                    );
                    for p in &stats.problems {
                        eprintln!("warning: {p}");
                    }
                }
                if g.publish {
                    println!("{}", cooper_ops::catalogue::publish(&ctx.abra)?);
                }
                Ok(0)
            }
            CatalogueCommand::Sync { remote } => {
                if ctx.offline {
                    anyhow::bail!("catalogue sync needs the network; drop -o/--offline");
                }
                println!(
                    "{}",
                    cooper_ops::catalogue::sync(&ctx.abra, remote.as_deref())?
                );
                Ok(0)
            }
        }
    }
}
