//! `cooper app backup plan|create|ls|download|verify|prune` and `cooper app restore`.

use std::time::Duration;

use clap::{Args, Subcommand};

use cooper_ops::backup::{self, Keep, RestoreRequest};
use cooper_recipe::stack::{self, VersionChoice};

use crate::report::CliReporter;
use crate::{output, Ctx};

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Show what a backup would save (services, volumes, paths, hooks) and what nothing covers.
    Plan {
        /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
        domain: String,
        /// Use the recipe's working tree.
        #[arg(short = 'C', long)]
        chaos: bool,
        #[arg(short = 'm', long)]
        /// Print JSON (machine-readable) instead of a table.
        machine: bool,
    },
    /// Back the app up now: pre-hooks in the running containers, restic, post-hooks; fails
    /// when a hook fails, a path is missing or a dump is empty.
    Create {
        /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
        domain: String,
        /// Run the deployed backup-bot-two's `backup --host <stack> create` instead.
        #[arg(long)]
        via_backupbot: bool,
        /// Wait up to this many seconds for another operation on the app to finish.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
        #[arg(short = 'm', long)]
        /// Print JSON (machine-readable) instead of a table.
        machine: bool,
    },
    /// The app's snapshots, with sizes and when each was last verified (alias: ls).
    #[command(alias = "ls")]
    List {
        /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
        domain: String,
        #[arg(short = 'm', long)]
        /// Print JSON (machine-readable) instead of a table.
        machine: bool,
    },
    /// Write a snapshot (or one path of it) as a tar file.
    Download {
        /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
        domain: String,
        /// A snapshot id or its prefix (default: the newest).
        #[arg(short = 's', long)]
        snapshot: Option<String>,
        /// An absolute path in the snapshot, e.g. /var/lib/docker/volumes/<stack>_<vol>/_data.
        #[arg(short = 'p', long)]
        path: Option<String>,
        /// Where to write (default: <domain>-<snapshot>.tar here; `-` for standard output).
        #[arg(long)]
        output: Option<String>,
    },
    /// Prove a snapshot restores: repository check, restore into scratch volumes with content
    /// verification, file list and sizes compared with the snapshot.
    Verify {
        /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
        domain: String,
        #[arg(short = 's', long)]
        /// The snapshot to verify (default: the newest).
        snapshot: Option<String>,
        #[arg(short = 'm', long)]
        /// Print JSON (machine-readable) instead of a table.
        machine: bool,
    },
    /// Forget the app's snapshots outside the retention and prune the repository.
    Prune {
        /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
        domain: String,
        /// Keep the newest snapshot of each of the last N days.
        #[arg(long, default_value_t = 7)]
        keep_daily: u32,
        /// Keep the newest snapshot of each of the last N weeks.
        #[arg(long, default_value_t = 4)]
        keep_weekly: u32,
        /// Keep the newest snapshot of each of the last N months.
        #[arg(long, default_value_t = 6)]
        keep_monthly: u32,
        /// Wait up to this many seconds for another operation on the app to finish.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
}

#[derive(Debug, Args)]
pub struct Restore {
    /// The app's domain (its name: `$ABRA_DIR/servers/<server>/<domain>.env`).
    domain: String,
    /// A snapshot id or its prefix (default: the newest).
    #[arg(short = 's', long)]
    snapshot: Option<String>,
    /// Only this volume (compose name or full name); repeatable.
    #[arg(short = 'v', long = "volume")]
    volumes: Vec<String>,
    /// Convergence timeout in seconds.
    #[arg(short = 't', long, value_name = "SECONDS")]
    timeout: Option<u64>,
    #[arg(long, value_name = "SECONDS")]
    /// Wait up to this many seconds for another operation on the app to finish.
    wait: Option<u64>,
    /// Restore from a cooper export (`cooper app export`) instead of a snapshot.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["snapshot", "volumes"])]
    archive: Option<std::path::PathBuf>,
    /// With --archive, for an app that does not exist yet: make it on this server from the
    /// archive's settings at its recipe version (new secrets), deploy it, put the data back,
    /// run its production-safe tests and take a first backup — removing everything again if a
    /// step fails.
    #[arg(long, requires = "archive")]
    server: Option<String>,
    /// With --server: on failure, leave what was made for inspection.
    #[arg(long, requires = "server")]
    keep_on_failure: bool,
    /// With --server: the image HTTP probes of the production-safe tests run in.
    #[arg(long, env = "COOPER_PROBE_IMAGE", default_value = cooper_ops::test::DEFAULT_PROBE_IMAGE)]
    probe_image: String,
}

impl Restore {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        if let (Some(archive), Some(server)) = (&self.archive, &self.server) {
            return self.move_in(ctx, archive, server);
        }
        if let Some(archive) = &self.archive {
            if ctx.abra.app(&self.domain).is_err() {
                anyhow::bail!(
                    "there is no app {}; to make it from {} add --server SERVER (one of \
                     $ABRA_DIR/servers)",
                    self.domain,
                    archive.display()
                );
            }
        }
        let req = RestoreRequest {
            domain: self.domain.clone(),
            snapshot: self.snapshot,
            volumes: self.volumes,
            wait_lock: self.wait.map(Duration::from_secs),
            timeout: self.timeout.map(Duration::from_secs),
            from: None,
            archive: self.archive.clone(),
        };
        let mut reporter = CliReporter::new(ctx.tty, ctx.no_input);
        let r = ctx.block_on(backup::restore(&ctx.abra, &req, &mut reporter))?;
        println!(
            "{} restored from {} {} ({} volume{}) in {:.1}s",
            self.domain,
            if self.archive.is_some() {
                "the export of snapshot"
            } else {
                "snapshot"
            },
            &r.snapshot[..r.snapshot.len().min(8)],
            r.volumes.len(),
            if r.volumes.len() == 1 { "" } else { "s" },
            r.elapsed_ms as f64 / 1000.0
        );
        Ok(0)
    }
}

impl Restore {
    /// An instance moved in: provisioned from the archive's settings, its data put back.
    fn move_in(&self, ctx: &Ctx, archive: &std::path::Path, server: &str) -> anyhow::Result<u8> {
        let opened = cooper_ops::export::open(archive)?;
        let m = &opened.manifest;
        let req = cooper_ops::provision::ProvisionRequest {
            app: cooper_ops::app::NewApp {
                server: server.to_string(),
                domain: self.domain.clone(),
                recipe: m.recipe.clone(),
                version: m.version.clone(),
                chaos: m.version.is_none(),
                answers: None,
                settings: Some(opened.settings_for(&self.domain)?),
            },
            secrets: Vec::new(),
            keep_on_failure: self.keep_on_failure,
            wait_lock: self.wait.map(Duration::from_secs),
            probe_image: self.probe_image.clone(),
            fail_after: None,
            restore_from: Some(archive.to_path_buf()),
        };
        println!(
            "moving in {} ({} {}, snapshot of {}) as {} on {server}",
            m.domain,
            m.recipe,
            m.version.as_deref().unwrap_or("unreleased"),
            m.snapshot.time,
            self.domain
        );
        if !m.settings.left_out.is_empty() {
            println!(
                "  settings left out of the export (set them again): {}",
                m.settings.left_out.join(", ")
            );
        }
        let mut reporter = CliReporter::new(ctx.tty, ctx.no_input);
        match ctx.block_on(cooper_ops::provision::provision(
            &ctx.abra,
            &req,
            &mut reporter,
        )) {
            Ok(p) => {
                for s in &p.steps {
                    println!("  {}: {}", s.step.id(), s.summary);
                }
                for c in &p.credentials {
                    println!("  new {} (shown once): {}", c.name, c.value.expose());
                }
                println!("{} runs on {server} ({})", self.domain, p.version);
                Ok(0)
            }
            Err(f) => anyhow::bail!("{f}"),
        }
    }
}

#[derive(Debug, Args)]
pub struct Export {
    /// The app's domain.
    domain: String,
    /// A snapshot id or its prefix (default: the newest).
    #[arg(short = 's', long)]
    snapshot: Option<String>,
    /// Where to write the archive (default: ./<domain>-export.tar).
    #[arg(long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// Print the manifest as JSON.
    #[arg(short = 'm', long)]
    machine: bool,
}

impl Export {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let dest = self
            .output
            .clone()
            .unwrap_or_else(|| format!("{}-export.tar", self.domain).into());
        let mut reporter = CliReporter::new(ctx.tty, ctx.no_input);
        let e = ctx.block_on(cooper_ops::export::export(
            &ctx.abra,
            &self.domain,
            self.snapshot.as_deref(),
            &dest,
            &mut reporter,
        ))?;
        if self.machine {
            return output::json(&e.manifest).map(|_| 0);
        }
        let m = &e.manifest;
        println!(
            "{} written ({}): {} {} from snapshot {} ({})",
            e.path.display(),
            human(e.bytes),
            m.recipe,
            m.version.as_deref().unwrap_or("(unreleased)"),
            &m.snapshot.id[..m.snapshot.id.len().min(8)],
            m.snapshot.time
        );
        for v in &m.volumes {
            println!("  volume {}: {} files, {}", v.key, v.files, human(v.bytes));
        }
        if !m.settings.left_out.is_empty() {
            println!(
                "  settings left out (they look secret): {}",
                m.settings.left_out.join(", ")
            );
        }
        println!("  data SHA-256 {}", m.data.sha256);
        println!(
            "  to run it elsewhere: cooper app restore NEW-DOMAIN --archive {} --server SERVER",
            e.path.display()
        );
        Ok(0)
    }
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
            BackupCommand::Create {
                domain,
                via_backupbot: true,
                wait,
                ..
            } => {
                let mut reporter = CliReporter::new(ctx.tty, ctx.no_input);
                let out = ctx.block_on(backup::create_via_backupbot(
                    &ctx.abra,
                    &domain,
                    wait.map(Duration::from_secs),
                    &mut reporter,
                ))?;
                println!("{}", out.trim_end());
                Ok(0)
            }
            BackupCommand::Create {
                domain,
                wait,
                machine,
                ..
            } => {
                let mut reporter = CliReporter::new(ctx.tty && !machine, ctx.no_input);
                let r = ctx.block_on(backup::create(
                    &ctx.abra,
                    &domain,
                    wait.map(Duration::from_secs),
                    &mut reporter,
                ))?;
                if machine {
                    return output::json(&r).map(|_| 0);
                }
                println!(
                    "backup of {domain}: snapshot {} ({} files, {} processed, {} added) in {:.1}s",
                    r.snapshot.as_deref().unwrap_or("?"),
                    r.summary.total_files_processed,
                    human(r.summary.total_bytes_processed),
                    human(r.summary.data_added),
                    r.elapsed_ms as f64 / 1000.0
                );
                println!(
                    "not verified yet: `cooper app backup verify {domain}` proves it restores"
                );
                Ok(0)
            }
            BackupCommand::List { domain, machine } => {
                let list = ctx.block_on(backup::list(&ctx.abra, &domain))?;
                if machine {
                    return output::json(&list).map(|_| 0);
                }
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|l| {
                        vec![
                            l.snapshot.short_id.clone(),
                            l.snapshot.time.chars().take(19).collect(),
                            l.summary
                                .as_ref()
                                .map(|s| human(s.total_bytes_processed))
                                .unwrap_or_else(|| "-".into()),
                            match (l.last_verify_ok, l.verified.as_deref()) {
                                (Some(false), _) => "FAILED (newest verify)".to_string(),
                                (_, Some(v)) => v.chars().take(19).collect(),
                                _ => "never".into(),
                            },
                            if l.by_cooper { "cooper" } else { "other" }.to_string(),
                        ]
                    })
                    .collect();
                output::table(
                    ctx.tty,
                    &["SNAPSHOT", "TIME", "SIZE", "VERIFIED", "BY"],
                    &rows,
                );
                Ok(0)
            }
            BackupCommand::Download {
                domain,
                snapshot,
                path,
                output,
            } => ctx.block_on(async {
                let to_stdout = output.as_deref() == Some("-");
                let tmp = std::path::PathBuf::from(format!(".{domain}.download.part"));
                let snap = if to_stdout {
                    let mut out = tokio::io::stdout();
                    backup::download(
                        &ctx.abra,
                        &domain,
                        snapshot.as_deref(),
                        path.as_deref(),
                        &mut out,
                    )
                    .await?
                } else {
                    let mut file = tokio::io::BufWriter::with_capacity(
                        4 << 20,
                        tokio::fs::File::create(&tmp).await?,
                    );
                    let r = backup::download(
                        &ctx.abra,
                        &domain,
                        snapshot.as_deref(),
                        path.as_deref(),
                        &mut file,
                    )
                    .await;
                    let flushed = tokio::io::AsyncWriteExt::flush(&mut file).await;
                    match r.and_then(|s| {
                        flushed
                            .map(|_| s)
                            .map_err(|e| cooper_ops::OpsError::Failed(format!("writing: {e}")))
                    }) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = std::fs::remove_file(&tmp);
                            return Err(e.into());
                        }
                    }
                };
                if !to_stdout {
                    let dest = output.unwrap_or_else(|| format!("{domain}-{}.tar", snap.short_id));
                    std::fs::rename(&tmp, &dest)?;
                    println!("wrote {dest} (snapshot {}, {})", snap.short_id, snap.time);
                }
                Ok(0)
            }),
            BackupCommand::Verify {
                domain,
                snapshot,
                machine,
            } => {
                let mut reporter = CliReporter::new(ctx.tty && !machine, ctx.no_input);
                let r = ctx.block_on(backup::verify(
                    &ctx.abra,
                    &domain,
                    snapshot.as_deref(),
                    &mut reporter,
                ))?;
                if !machine {
                    for c in &r.checks {
                        println!("data check {c}");
                    }
                }
                if machine {
                    output::json(&r)?;
                } else if r.problems.is_empty() {
                    println!(
                        "snapshot {} of {domain} verified: {} files, {} restored and identical to the snapshot in {:.1}s",
                        &r.snapshot[..r.snapshot.len().min(8)],
                        r.files,
                        human(r.bytes),
                        r.elapsed_ms as f64 / 1000.0
                    );
                } else {
                    eprintln!(
                        "snapshot {} of {domain} FAILED verification:",
                        &r.snapshot[..r.snapshot.len().min(8)]
                    );
                    for p in &r.problems {
                        eprintln!("  {p}");
                    }
                }
                Ok(if r.problems.is_empty() { 0 } else { 1 })
            }
            BackupCommand::Prune {
                domain,
                keep_daily,
                keep_weekly,
                keep_monthly,
                wait,
            } => {
                let out = ctx.block_on(backup::prune(
                    &ctx.abra,
                    &domain,
                    Keep {
                        daily: keep_daily,
                        weekly: keep_weekly,
                        monthly: keep_monthly,
                    },
                    wait.map(Duration::from_secs),
                    &mut CliReporter::new(ctx.tty, ctx.no_input),
                ))?;
                print!("{out}");
                Ok(0)
            }
        }
    }
}
