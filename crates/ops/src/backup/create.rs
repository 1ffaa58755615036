//! `app backup create`: hooks, source checks, restic, and the backup-bot-two delegation.

use super::*;
use crate::op::{self, Envelope, Op};

/// The result of a backup.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupReport {
    pub snapshot: Option<String>,
    pub summary: Summary,
    pub hooks: Vec<HookRun>,
    pub warnings: Vec<String>,
    pub elapsed_ms: u64,
    pub record_path: Option<PathBuf>,
}

/// `app backup create`: backs up inside the operation envelope (the app's lock, a record).
pub async fn create(
    abra: &AbraDir,
    domain: &str,
    wait_lock: Option<Duration>,
    reporter: &mut dyn Reporter,
) -> Result<BackupReport> {
    let envelope = Envelope::locked("backup create", domain).waiting(wait_lock);
    let done = op::run(abra, envelope, reporter, async |op: &mut Op<'_>| {
        let engine = op.connect().await?;
        create_with(abra, &op.app, &engine, &mut *op.reporter, &mut op.record).await
    })
    .await?;
    Ok(BackupReport {
        elapsed_ms: done.elapsed.as_millis() as u64,
        record_path: done.record_path,
        ..done.value
    })
}

/// Whether a backup of the app would save anything (a service labelled `backupbot.backup=true`
/// with a volume that is not excluded).
pub async fn saves_anything(abra: &AbraDir, domain: &str) -> Result<bool> {
    let app = abra.app(domain)?;
    let engine = crate::connect(abra, &app.at.server).await?;
    let plan = app_plan(abra, &app, &engine).await?;
    Ok(!saved_volumes(&plan).is_empty())
}

/// `app backup create --via-backupbot`: runs the deployed backup-bot-two's own CLI
/// (`backup --host <stack> create`) in its running container instead of cooper's path; its
/// exit code decides. Returns the bot's output (secrets scrubbed).
pub async fn create_via_backupbot(
    abra: &AbraDir,
    domain: &str,
    wait_lock: Option<Duration>,
    reporter: &mut dyn Reporter,
) -> Result<String> {
    let envelope = Envelope::locked("backup create (backup-bot-two)", domain).waiting(wait_lock);
    let done = op::run(abra, envelope, reporter, async |op: &mut Op<'_>| {
        let engine = op.connect().await?;
        let (app, record, reporter) = (&op.app, &mut op.record, &mut *op.reporter);
        let Some((bot_stack, bot_service)) = engine.find_backupbot().await? else {
            return Err(OpsError::Refused(format!(
                "no backup-bot-two is deployed on {}; deploy it (`cooper app new backup-bot-two`) \
                 or back up without --via-backupbot",
                app.at.server
            )));
        };
        let stack_name = stack_of(app);
        let command = format!("backup --host {stack_name} create");
        reporter.info(&format!("running `{command}` in {bot_stack}_{bot_service}"));
        let t = Instant::now();
        let run = run_hook(
            &engine,
            &bot_stack,
            &bot_service,
            "backup-bot-two",
            &command,
            &app_secret_values(app),
        )
        .await?;
        let ok = run.exit_code == 0;
        record.step(
            "backup-bot-two",
            format!("{command}: exit {}: {}", run.exit_code, run.output),
            ok,
            t,
        );
        if ok {
            Ok(run.output)
        } else {
            Err(OpsError::Failed(format!(
                "backup-bot-two's `{command}` FAILED (exit {}): {}",
                run.exit_code,
                tail(&run.output, 8)
            )))
        }
    })
    .await?;
    Ok(done.value)
}

/// A backup of an app whose lock the caller holds (also the upgrade's safety backup).
pub async fn create_with(
    abra: &AbraDir,
    app: &App,
    engine: &Engine,
    reporter: &mut dyn Reporter,
    record: &mut Record,
) -> Result<BackupReport> {
    let stack_name = stack_of(app);
    let t = Instant::now();
    let plan = app_plan(abra, app, engine).await?;
    let saved = saved_volumes(&plan);
    let mut report = BackupReport::default();
    for (svc, vol) in &plan.uncovered {
        report.warnings.push(format!(
            "volume {vol} of service {svc} is not backed up: no backupbot.backup label on {svc}"
        ));
    }
    report.warnings.extend(plan.warnings.iter().cloned());
    for w in &report.warnings {
        reporter.info(&format!("warning: {w}"));
    }
    if saved.is_empty() {
        record.step("plan", "nothing to back up", false, t);
        return Err(OpsError::Refused(format!(
            "nothing to back up for {}: no service has backupbot.backup=true with a volume that \
             is not excluded (see `cooper app backup plan {}`)",
            app.at.domain, app.at.domain
        )));
    }
    record.step(
        "plan",
        saved
            .iter()
            .map(|(s, v, p)| {
                if p.is_empty() {
                    format!("{s}: {v}")
                } else {
                    format!("{s}: {v} ({})", p.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        true,
        t,
    );

    let settings = settings(abra, &app.at.server, &app.at.domain, true)?;
    // Volumes are local to a node: the helper and the hooks run on the node holding them.
    let mut vols: Vec<String> = saved.iter().map(|(_, v, _)| v.clone()).collect();
    vols.sort();
    vols.dedup();
    let place = place_of(abra, &app.at.server, engine, &stack_name, &vols).await?;
    if let Some(node) = &place.elsewhere {
        reporter.info(&format!("the volumes are on node {node}: backing up there"));
        record.step("node", format!("helper and hooks on {node}"), true, t);
    }
    let manager = engine;
    let engine = &place.engine;
    let restic = Restic {
        engine,
        settings: &settings,
    };
    // Before any hook runs: a backup that cannot start its helper must not dump anything.
    restic.require_image().await?;
    same_repository(&settings, manager, &place, true).await?;
    let mut secrets = settings.secret_values();
    secrets.extend(app_secret_values(app));
    let _ = engine.reap_helpers(PURPOSE).await;
    for (_, vol, _) in &saved {
        if !engine.volume_exists(vol).await? {
            return Err(OpsError::Refused(format!(
                "volume {vol} does not exist on {}{} (is {} deployed?)",
                app.at.server,
                place
                    .elsewhere
                    .as_ref()
                    .map(|n| format!(" node {n}"))
                    .unwrap_or_default(),
                app.at.domain
            )));
        }
    }

    // Pre-hooks; the first failure stops the backup (post-hooks still run).
    let mut failure: Option<String> = None;
    for s in &plan.services {
        let Some(hook) = &s.pre_hook else { continue };
        let t = Instant::now();
        reporter.info(&format!("pre-hook of {}: {hook}", s.service));
        match run_hook(engine, &stack_name, &s.service, "pre-hook", hook, &secrets).await {
            Ok(run) => {
                let ok = run.exit_code == 0;
                record.step(
                    &format!("pre-hook {}", s.service),
                    format!("exit {}: {}", run.exit_code, run.output),
                    ok,
                    t,
                );
                if !ok {
                    failure = Some(format!(
                        "the backup pre-hook of {} exited with {}: {}",
                        s.service,
                        run.exit_code,
                        tail(&run.output, 5)
                    ));
                }
                report.hooks.push(run);
            }
            Err(e) => {
                record.step(&format!("pre-hook {}", s.service), e.to_string(), false, t);
                failure = Some(e.to_string());
            }
        }
        if failure.is_some() {
            break;
        }
    }

    if failure.is_none() {
        let t = Instant::now();
        let mut args = vec![stack_name.clone()];
        let mut volumes = Vec::new();
        for (_, vol, paths) in &saved {
            let dir = volume_dir(vol);
            if paths.is_empty() {
                args.push(dir.clone());
            } else {
                args.extend(paths.iter().map(|p| format!("{dir}/{p}")));
            }
            if !volumes.iter().any(|m: &VolumeMount| m.volume == *vol) {
                volumes.push(VolumeMount {
                    volume: vol.clone(),
                    target: dir,
                    read_only: true,
                });
            }
        }
        reporter.info(&format!(
            "backing up {} volume{} to {}",
            volumes.len(),
            if volumes.len() == 1 { "" } else { "s" },
            settings.repository
        ));
        let mut all_args = vec![args[0].clone()];
        all_args.extend(precheck_args(&saved));
        all_args.push("--".into());
        all_args.extend(args[1..].iter().cloned());
        let (out, err, code) = restic.capture(&backup_script(), &all_args, volumes).await?;
        let (problems, nodata) = precheck_findings(&out, &saved);
        report.warnings.extend(nodata);
        if !problems.is_empty() {
            record.step("check sources", problems.join("; "), false, t);
            failure = Some(problems.join("; "));
        }
        let summary: Option<Summary> = out
            .lines()
            .filter(|l| l.contains("\"message_type\":\"summary\""))
            .filter_map(|l| serde_json::from_str(l).ok())
            .next_back();
        let snapshot = summary.as_ref().and_then(|s| s.snapshot_id.clone());
        report.summary = summary.unwrap_or_default();
        report.snapshot = snapshot.clone();
        if failure.is_some() {
            // The sources were refused before restic ran: no snapshot was made.
        } else if code != 0 {
            let why = if code == 3 {
                "some files could not be read (restic exit 3: incomplete snapshot)".to_string()
            } else {
                format!("restic exit {code}")
            };
            failure = Some(format!(
                "restic backup failed, {why}: {}",
                tail(err.trim(), 8)
            ));
            record.step(
                "restic backup",
                failure.clone().unwrap_or_default(),
                false,
                t,
            );
        } else {
            record.step(
                "restic backup",
                format!(
                    "snapshot {}: {} files, {} bytes processed, {} bytes added",
                    snapshot.as_deref().unwrap_or("?"),
                    report.summary.total_files_processed,
                    report.summary.total_bytes_processed,
                    report.summary.data_added
                ),
                true,
                t,
            );
        }
    }

    // Post-hooks run whatever happened.
    for s in &plan.services {
        let Some(hook) = &s.post_hook else { continue };
        let t = Instant::now();
        match run_hook(engine, &stack_name, &s.service, "post-hook", hook, &secrets).await {
            Ok(run) => {
                let ok = run.exit_code == 0;
                record.step(
                    &format!("post-hook {}", s.service),
                    format!("exit {}: {}", run.exit_code, run.output),
                    ok,
                    t,
                );
                if !ok && failure.is_none() {
                    failure = Some(format!(
                        "the backup post-hook of {} exited with {}: {}",
                        s.service,
                        run.exit_code,
                        tail(&run.output, 5)
                    ));
                }
                report.hooks.push(run);
            }
            Err(e) => {
                record.step(&format!("post-hook {}", s.service), e.to_string(), false, t);
                if failure.is_none() {
                    failure = Some(e.to_string());
                }
            }
        }
    }

    if let Some(why) = failure {
        if let Some(id) = report.snapshot.take() {
            let t = Instant::now();
            let forgot = restic.forget(&id).await;
            record.step(
                "forget failed snapshot",
                match &forgot {
                    Ok(()) => format!("{id} forgotten, so no restore can pick it"),
                    Err(e) => format!("{id}: {e}"),
                },
                forgot.is_ok(),
                t,
            );
        }
        return Err(OpsError::Failed(format!(
            "backup of {} FAILED: {why}",
            app.at.domain
        )));
    }
    record.details.insert(
        "snapshot".into(),
        serde_json::json!(report.snapshot.clone().unwrap_or_default()),
    );
    record.details.insert(
        "summary".into(),
        serde_json::to_value(&report.summary).unwrap_or_default(),
    );
    record.details.insert(
        "repository".into(),
        serde_json::json!(scrub(&settings.repository, &secrets)),
    );
    Ok(report)
}

/// The backup helper's script. Arguments: the host, the source checks (`P:<path>`: must exist
/// and hold data — a dump; `V:<dir>`: a whole volume, reported when it holds nothing), `--`,
/// the paths to back up. The checks run after the pre-hooks and before restic, so a missing or
/// empty dump stops the backup before any snapshot exists.
pub(super) fn backup_script() -> String {
    format!(
        r#"h=$1; shift
bad=0
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    P:*) p=${{1#P:}}
      if [ ! -e "$p" ]; then echo "@@missing $p"; bad=1
      elif [ -z "$(find "$p" -type f -size +0 | head -n 1)" ]; then echo "@@empty $p"; bad=1; fi ;;
    V:*) p=${{1#V:}}
      if [ -z "$(find "$p" -type f -size +0 | head -n 1)" ]; then echo "@@nodata $p"; fi ;;
  esac
  shift
done
shift
[ "$bad" = 0 ] || exit 10
case "$RESTIC_REPOSITORY" in
  /*) [ -f "$RESTIC_REPOSITORY/config" ] || r init >&2 ;;
  *) r cat config >/dev/null 2>&1 || r init >&2 ;;
esac
r backup --json --host "$h" --tag {TAG} -- "$@""#
    )
}

/// The source checks for [`backup_script`].
pub(super) fn precheck_args(saved: &[(String, String, Vec<String>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (_, vol, paths) in saved {
        let dir = volume_dir(vol);
        if paths.is_empty() {
            out.push(format!("V:{dir}"));
        }
        for p in paths {
            out.push(format!("P:{dir}/{p}"));
        }
    }
    out
}

/// What the source checks found: problems (a labelled path missing or empty: the backup
/// fails) and warnings (a whole volume holding no data).
pub(super) fn precheck_findings(
    out: &str,
    saved: &[(String, String, Vec<String>)],
) -> (Vec<String>, Vec<String>) {
    let name = |path: &str| -> String {
        for (svc, vol, paths) in saved {
            let dir = volume_dir(vol);
            if path == dir {
                return format!("volume {vol} of {svc}");
            }
            for p in paths {
                if path == format!("{dir}/{p}") {
                    return format!("{p} in volume {vol} of {svc}");
                }
            }
        }
        path.to_string()
    };
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for l in out.lines() {
        if let Some(p) = l.strip_prefix("@@missing ") {
            problems.push(format!(
                "{} does not exist (did the pre-hook write it?)",
                name(p)
            ));
        } else if let Some(p) = l.strip_prefix("@@empty ") {
            problems.push(format!(
                "{} is empty: an empty dump is not a backup",
                name(p)
            ));
        } else if let Some(p) = l.strip_prefix("@@nodata ") {
            warnings.push(format!("{} holds no data", name(p)));
        }
    }
    (problems, warnings)
}
