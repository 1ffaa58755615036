//! `app restore`: stop the writers, restore hooks, replace the volumes, start, converge.

use super::*;
use crate::op::{self, Envelope, Op};

/// What to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub domain: String,
    pub snapshot: Option<String>,
    /// Compose volume keys or swarm names; empty means every volume in the snapshot.
    pub volumes: Vec<String>,
    pub wait_lock: Option<Duration>,
    pub timeout: Option<Duration>,
    /// Restore another app's snapshot (its repository settings and stack) into this app's
    /// volumes: `<source stack>_<vol>` goes into `<this stack>_<vol>` (a rehearsal's staging
    /// copy of production).
    pub from: Option<String>,
    /// Restore from a cooper export (`app export`) instead of a snapshot: every volume it
    /// holds goes into this app's volume of the same key.
    pub archive: Option<PathBuf>,
}

/// The result of a restore.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    pub snapshot: String,
    pub volumes: Vec<String>,
    pub scaled_down: Vec<String>,
    pub hooks: Vec<HookRun>,
    pub elapsed_ms: u64,
    pub record_path: Option<PathBuf>,
}

/// `app restore`: stops the writers of the volumes, runs restore pre-hooks, replaces the
/// volumes' contents with the snapshot's (nothing of the live state is kept), brings the
/// services back, waits for convergence and runs restore post-hooks.
pub async fn restore(
    abra: &AbraDir,
    req: &RestoreRequest,
    reporter: &mut dyn Reporter,
) -> Result<RestoreReport> {
    let envelope = Envelope::locked("restore", &req.domain).waiting(req.wait_lock);
    let done = op::run(abra, envelope, reporter, async |op: &mut Op<'_>| {
        run_restore(abra, &op.app, req, &mut *op.reporter, &mut op.record).await
    })
    .await?;
    Ok(RestoreReport {
        elapsed_ms: done.elapsed.as_millis() as u64,
        record_path: done.record_path,
        ..done.value
    })
}

async fn run_restore(
    abra: &AbraDir,
    app: &App,
    req: &RestoreRequest,
    reporter: &mut dyn Reporter,
    record: &mut Record,
) -> Result<RestoreReport> {
    let stack_name = stack_of(app);
    let engine = connect(abra, &app.at.server).await?;
    engine.require_manager().await?;
    let source_app;
    let source: &App = match &req.from {
        Some(d) => {
            source_app = abra.app(d)?;
            &source_app
        }
        None => app,
    };
    let archive = match &req.archive {
        Some(p) => {
            if req.from.is_some() || req.snapshot.is_some() {
                return Err(OpsError::Refused(
                    "an archive is restored whole: leave out --from and the snapshot".into(),
                ));
            }
            Some(crate::export::open(p)?)
        }
        None => None,
    };
    if let Some(a) = &archive {
        if a.manifest.recipe != app.recipe.name {
            return Err(OpsError::Refused(format!(
                "{} holds a {} instance; {} runs {}: nothing was restored",
                a.path.display(),
                a.manifest.recipe,
                app.at.domain,
                app.recipe.name
            )));
        }
    }
    let source_stack = match &archive {
        Some(a) => a.manifest.stack.clone(),
        None => stack_of(source),
    };
    // A volume named in the snapshot → the volume of this app it goes into.
    let local = |v: &str| -> String {
        match v.strip_prefix(&format!("{source_stack}_")) {
            Some(key) if source_stack != stack_name => format!("{stack_name}_{key}"),
            _ => v.to_string(),
        }
    };
    // Archives need only the helper image of this app's settings (made as a first backup
    // would make them); snapshots need the source's repository.
    let settings = match &archive {
        Some(_) => settings(abra, &app.at.server, &app.at.domain, true)?,
        None => settings(abra, &source.at.server, &source.at.domain, false)?,
    };
    let restic = Restic {
        engine: &engine,
        settings: &settings,
    };
    let mut secrets = settings.secret_values();
    secrets.extend(app_secret_values(app));
    let plan = app_plan(abra, app, &engine).await?;
    let t = Instant::now();
    let snap = match &archive {
        Some(a) => Snapshot {
            id: a.manifest.snapshot.id.clone(),
            short_id: format!(
                "{} (export)",
                a.manifest.snapshot.id.chars().take(8).collect::<String>()
            ),
            time: a.manifest.snapshot.time.clone(),
            hostname: a.manifest.stack.clone(),
            paths: Vec::new(),
            tags: Vec::new(),
        },
        None => pick(&restic, &source_stack, req.snapshot.as_deref()).await?,
    };
    let layout: BTreeMap<String, Vec<String>> = match &archive {
        Some(a) => a
            .manifest
            .volumes
            .iter()
            .map(|v| (v.name.clone(), Vec::new()))
            .collect(),
        None => layout_of(&restic, &snap).await?,
    };
    let in_snapshot: BTreeSet<String> = layout.keys().cloned().collect();
    record
        .details
        .insert("snapshot".into(), serde_json::json!(snap.id));
    // Volumes to restore, with the paths to clear: everything in the snapshot (or the chosen
    // ones), whole or by the paths the snapshot holds.
    let key_of = |swarm: &str| -> String {
        let swarm = local(swarm);
        let swarm = swarm.as_str();
        plan.services
            .iter()
            .flat_map(|s| s.volumes.iter())
            .find(|v| v.swarm_name == swarm)
            .map(|v| v.volume.clone())
            .unwrap_or_else(|| {
                swarm
                    .strip_prefix(&format!("{stack_name}_"))
                    .unwrap_or(swarm)
                    .to_string()
            })
    };
    for want in &req.volumes {
        if !in_snapshot.iter().any(|v| v == want || key_of(v) == *want) {
            return Err(OpsError::Refused(format!(
                "snapshot {} holds no volume {want}; it holds: {}",
                snap.short_id,
                in_snapshot
                    .iter()
                    .map(|v| key_of(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let chosen: Vec<String> = in_snapshot
        .iter()
        .filter(|v| {
            req.volumes.is_empty() || req.volumes.iter().any(|w| *w == **v || *w == key_of(v))
        })
        .cloned()
        .collect();
    if chosen.is_empty() {
        return Err(OpsError::Refused(format!(
            "snapshot {} holds no volume of {}",
            snap.short_id, app.at.domain
        )));
    }
    // Volumes are local to a node: the helper and the hooks run on the node holding them.
    let targets: Vec<String> = chosen.iter().map(|v| local(v)).collect();
    let place = place_of(abra, &app.at.server, &engine, &stack_name, &targets).await?;
    if archive.is_none() {
        same_repository(&settings, &engine, &place, false).await?;
    }
    if let Some(node) = &place.elsewhere {
        reporter.info(&format!("the volumes are on node {node}: restoring there"));
    }
    let node_restic = Restic {
        engine: &place.engine,
        settings: &settings,
    };
    // Whole volumes (the snapshot holds the volume root's own files) or named paths.
    let mut whole: Vec<String> = Vec::new();
    let mut partial: Vec<(String, Vec<String>)> = Vec::new();
    for v in &chosen {
        match layout.get(v) {
            Some(paths) if !paths.is_empty() => partial.push((v.clone(), paths.clone())),
            _ => whole.push(v.clone()),
        }
    }
    record.step(
        "plan",
        format!(
            "snapshot {} ({}): whole {:?}, paths {:?}",
            snap.short_id, snap.time, whole, partial
        ),
        true,
        t,
    );

    // Writers: every service that mounts a volume restored whole.
    let services = engine.stack_services(&stack_name).await?;
    let mut writers: Vec<String> = Vec::new();
    for s in &services {
        let mounts = s
            .spec
            .as_ref()
            .and_then(|sp| sp.task_template.as_ref())
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.mounts.clone())
            .unwrap_or_default();
        if mounts.iter().any(|m| {
            m.source
                .as_ref()
                .is_some_and(|src| whole.iter().any(|w| local(w) == *src))
        }) {
            writers.push(cooper_engine::apply::service_name(s).to_string());
        }
    }
    let question = format!(
        "restore {} from snapshot {} ({})?\n  volumes replaced: {}\n  services stopped meanwhile: {}\n  the current contents of these volumes are deleted",
        app.at.domain,
        snap.short_id,
        snap.time,
        chosen
            .iter()
            .map(|v| key_of(v))
            .collect::<Vec<_>>()
            .join(", "),
        if writers.is_empty() {
            "none".to_string()
        } else {
            writers.join(", ")
        }
    );
    if !reporter.ask(&question) {
        return Err(OpsError::Refused(
            "not confirmed; nothing was changed".into(),
        ));
    }

    let mut report = RestoreReport {
        snapshot: snap.id.clone(),
        volumes: chosen.clone(),
        scaled_down: writers.clone(),
        ..Default::default()
    };
    let restored_services: BTreeSet<String> = plan
        .services
        .iter()
        .filter(|s| {
            s.volumes
                .iter()
                .any(|v| chosen.iter().any(|c| local(c) == v.swarm_name))
        })
        .map(|s| s.service.clone())
        .collect();
    let deployed = !services.is_empty();
    // Restore pre-hooks run while the services still run; a failure changes nothing.
    if deployed {
        for s in plan
            .services
            .iter()
            .filter(|s| restored_services.contains(&s.service))
        {
            let Some(hook) = &s.restore_pre_hook else {
                continue;
            };
            let t = Instant::now();
            let run = run_hook(
                &place.engine,
                &stack_name,
                &s.service,
                "restore pre-hook",
                hook,
                &secrets,
            )
            .await?;
            let ok = run.exit_code == 0;
            record.step(
                &format!("restore pre-hook {}", s.service),
                format!("exit {}: {}", run.exit_code, run.output),
                ok,
                t,
            );
            if !ok {
                return Err(OpsError::Failed(format!(
                    "the restore pre-hook of {} exited with {}; nothing was restored: {}",
                    s.service,
                    run.exit_code,
                    tail(&run.output, 5)
                )));
            }
            report.hooks.push(run);
        }
    }

    // Stop the writers.
    let t = Instant::now();
    let mut replicas: Vec<(String, u64)> = Vec::new();
    for w in &writers {
        reporter.info(&format!("stopping {w}"));
        let before = engine.scale_service(w, 0).await?;
        replicas.push((w.clone(), before));
    }
    let stop_wait = req.timeout.unwrap_or(crate::DEFAULT_TIMEOUT);
    let stopped = engine.wait_stopped(&stack_name, &writers, stop_wait).await;
    record.step("stop writers", format!("{writers:?}"), stopped.is_ok(), t);
    let restored = match stopped {
        Err(e) => Err(OpsError::Failed(format!(
            "the services writing to the volumes did not stop: {e}; nothing was restored"
        ))),
        Ok(()) if archive.is_some() => {
            let a = archive.as_ref().expect("an archive");
            let t = Instant::now();
            reporter.info(&format!(
                "restoring {} volume{} from {}",
                chosen.len(),
                if chosen.len() == 1 { "" } else { "s" },
                a.path.display()
            ));
            let mounts: Vec<VolumeMount> = chosen
                .iter()
                .map(|v| VolumeMount {
                    volume: local(v),
                    target: volume_dir(v),
                    read_only: false,
                })
                .collect();
            let r = unpack_archive(&place.engine, &settings.image, a, mounts).await;
            record.step(
                "unpack export",
                match &r {
                    Ok(()) => format!(
                        "{} volumes replaced from {} ({} bytes, SHA-256 {})",
                        chosen.len(),
                        a.path.display(),
                        a.manifest.data.bytes,
                        a.manifest.data.sha256
                    ),
                    Err(e) => e.to_string(),
                },
                r.is_ok(),
                t,
            );
            r
        }
        Ok(()) => {
            let t = Instant::now();
            let mut args = vec![snap.id.clone()];
            let mut includes = Vec::new();
            let mut volumes = Vec::new();
            for v in &whole {
                args.push(format!("C:{}", volume_dir(v)));
                includes.push(volume_dir(v));
            }
            for (v, paths) in &partial {
                for p in paths {
                    args.push(format!("R:{}/{p}", volume_dir(v)));
                    includes.push(format!("{}/{p}", volume_dir(v)));
                }
            }
            for v in &chosen {
                volumes.push(VolumeMount {
                    volume: local(v),
                    target: volume_dir(v),
                    read_only: false,
                });
            }
            args.push("--".into());
            for i in includes {
                args.push("--include".into());
                args.push(i);
            }
            reporter.info(&format!(
                "restoring {} volume{} from {}",
                chosen.len(),
                if chosen.len() == 1 { "" } else { "s" },
                snap.short_id
            ));
            let body = r#"snap=$1; shift
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    C:*) find "${1#C:}" -mindepth 1 -maxdepth 1 -exec rm -rf {} + ;;
    R:*) rm -rf "${1#R:}" ;;
  esac
  shift
done
shift
r restore "$snap" --target / --verify "$@" >&2"#;
            let (_, err, code) = node_restic.capture(body, &args, volumes).await?;
            let ok = code == 0;
            record.step(
                "restic restore",
                if ok {
                    format!("{} volumes replaced and verified", chosen.len())
                } else {
                    format!("restic exit {code}: {}", tail(err.trim(), 8))
                },
                ok,
                t,
            );
            if ok {
                Ok(())
            } else {
                Err(OpsError::Failed(format!(
                    "restic restore failed (exit {code}): {}",
                    tail(err.trim(), 8)
                )))
            }
        }
    };

    // Bring the writers back whatever happened, and wait for the app.
    let t = Instant::now();
    for (w, n) in &replicas {
        engine.scale_service(w, *n).await?;
    }
    let mut converged = Ok(());
    if deployed {
        let names: Vec<String> = services
            .iter()
            .map(|s| cooper_engine::apply::service_name(s).to_string())
            .collect();
        let opts = cooper_engine::converge::WatchOptions {
            timeout: req.timeout.unwrap_or(crate::DEFAULT_TIMEOUT),
            ..Default::default()
        };
        let outcome = engine
            .watch(&stack_name, &names, &opts, |p| reporter.progress(p))
            .await?;
        if !matches!(outcome, cooper_engine::converge::Outcome::Converged { .. }) {
            converged = Err(OpsError::Failed(format!(
                "{} did not converge after the restore; see `cooper app ps {}` and `cooper app \
                 errors {}`",
                app.at.domain, app.at.domain, app.at.domain
            )));
        }
        record.step(
            "start writers",
            format!("{replicas:?}"),
            converged.is_ok(),
            t,
        );
    }
    restored?;
    converged?;

    if deployed {
        for s in plan
            .services
            .iter()
            .filter(|s| restored_services.contains(&s.service))
        {
            let Some(hook) = &s.restore_post_hook else {
                continue;
            };
            let t = Instant::now();
            reporter.info(&format!("restore post-hook of {}: {hook}", s.service));
            let run = run_hook(
                &place.engine,
                &stack_name,
                &s.service,
                "restore post-hook",
                hook,
                &secrets,
            )
            .await?;
            let ok = run.exit_code == 0;
            record.step(
                &format!("restore post-hook {}", s.service),
                format!("exit {}: {}", run.exit_code, run.output),
                ok,
                t,
            );
            if !ok {
                return Err(OpsError::Failed(format!(
                    "the files were restored but the restore post-hook of {} exited with {}: {}",
                    s.service,
                    run.exit_code,
                    tail(&run.output, 5)
                )));
            }
            report.hooks.push(run);
        }
    } else {
        reporter.info(&format!(
            "{} is not deployed: the volumes were restored; restore hooks did not run",
            app.at.domain
        ));
    }
    Ok(report)
}

/// Replaces the contents of the mounted volumes with an export's data: a helper (the backup
/// image's `sh`) empties them, then the engine unpacks the data straight into them — each
/// volume mounted where the data's paths put it — through the archive upload API, streamed
/// from the file (no copy of it on the server first), owners and modes as the tar says.
async fn unpack_archive(
    engine: &cooper_engine::Engine,
    image: &str,
    archive: &crate::export::Archive,
    mounts: Vec<VolumeMount>,
) -> Result<()> {
    let clear = OneShot {
        image: image.to_string(),
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "set -e; for d; do find \"$d\" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; done".into(),
            "cooper-clear".into(),
        ]
        .into_iter()
        .chain(mounts.iter().map(|m| m.target.clone()))
        .collect(),
        volumes: mounts.clone(),
        purpose: PURPOSE.to_string(),
        ..Default::default()
    };
    let mut out = Vec::new();
    let end = engine.run_oneshot(&clear, &[], &mut out).await?;
    if end.exit_code != 0 {
        return Err(OpsError::Failed(format!(
            "emptying the volumes failed (exit {}): {}; nothing was unpacked",
            end.exit_code,
            tail(String::from_utf8_lossy(&end.stderr).trim(), 5)
        )));
    }
    let (offset, len) = archive.data_at;
    let mut file = tokio::fs::File::open(&archive.path)
        .await
        .map_err(|e| OpsError::Failed(format!("reading {}: {e}", archive.path.display())))?;
    tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| OpsError::Failed(format!("reading {}: {e}", archive.path.display())))?;
    let data = tokio::io::AsyncReadExt::take(file, len);
    engine
        .unpack_into_volumes(image, PURPOSE, mounts, data)
        .await
        .map_err(|e| OpsError::Failed(format!("unpacking the export's data: {e}")))?;
    Ok(())
}
