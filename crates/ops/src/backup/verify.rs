//! `app backup verify`: restore into scratch volumes, compare with the snapshot, run the
//! recipe's data checks.

use super::*;
use crate::op::{self, Envelope, Op};

/// The result of a verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub snapshot: String,
    pub files: usize,
    pub bytes: u64,
    pub problems: Vec<String>,
    /// The recipe's data checks that ran (`cooper.backup.check`), with their outcome.
    pub checks: Vec<String>,
    pub elapsed_ms: u64,
    pub record_path: Option<PathBuf>,
}

/// `app backup verify`: checks the repository, restores the snapshot into scratch volumes with
/// restic's content verification, and compares the restored files (names and sizes) with the
/// snapshot's list. Scratch volumes are removed afterwards, whatever happened.
pub async fn verify(
    abra: &AbraDir,
    domain: &str,
    snapshot: Option<&str>,
    reporter: &mut dyn Reporter,
) -> Result<VerifyReport> {
    let envelope = Envelope::read("backup verify", domain);
    let done = op::run(abra, envelope, reporter, async |op: &mut Op<'_>| {
        let r = run_verify(abra, &op.app, snapshot, &mut *op.reporter, &mut op.record).await?;
        if !r.problems.is_empty() {
            op.verdict = Some(Err(r.problems.join("; ")));
        }
        Ok(r)
    })
    .await?;
    Ok(VerifyReport {
        elapsed_ms: done.elapsed.as_millis() as u64,
        record_path: done.record_path,
        ..done.value
    })
}

async fn run_verify(
    abra: &AbraDir,
    app: &App,
    snapshot: Option<&str>,
    reporter: &mut dyn Reporter,
    record: &mut Record,
) -> Result<VerifyReport> {
    let engine = connect(abra, &app.at.server).await?;
    let settings = settings(abra, &app.at.server, &app.at.domain, false)?;
    let restic = Restic {
        engine: &engine,
        settings: &settings,
    };
    let stack_name = stack_of(app);
    let snap = pick(&restic, &stack_name, snapshot).await?;
    record
        .details
        .insert("snapshot".into(), serde_json::json!(snap.id));
    let volumes: Vec<String> = layout_of(&restic, &snap).await?.into_keys().collect();
    let mut report = VerifyReport {
        snapshot: snap.id.clone(),
        ..Default::default()
    };
    let mut scratch_of: BTreeMap<String, String> = BTreeMap::new();
    let stamp = format!(
        "{}-{}",
        snap.short_id,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let labels =
        std::collections::HashMap::from([("cooper.scratch".to_string(), stack_name.clone())]);
    let mut mounts = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        let name = format!("cooper-verify-{stamp}-{i}");
        engine.create_volume(&name, labels.clone()).await?;
        scratch_of.insert(v.clone(), name.clone());
        mounts.push(VolumeMount {
            volume: name,
            target: volume_dir(v),
            read_only: false,
        });
    }
    reporter.info(&format!(
        "verifying snapshot {} ({}): restoring {} volume{} into scratch volumes",
        snap.short_id,
        snap.time,
        volumes.len(),
        if volumes.len() == 1 { "" } else { "s" }
    ));
    let t = Instant::now();
    let body = format!(
        "r check >&2\nr ls --json \"$1\"\nr restore \"$1\" --target / --verify >&2\necho @@sizes\nfind {VOLUME_ROOT} -type f -exec stat -c '%s %n' {{}} +"
    );
    let ran = restic
        .capture(&body, std::slice::from_ref(&snap.id), mounts)
        .await;
    let compared = match ran {
        Ok(out) => {
            compare_and_check(abra, app, &engine, out, &scratch_of, &mut report, record, t).await
        }
        Err(e) => Err(e),
    };
    for name in scratch_of.values() {
        let _ = engine.remove_volume(name).await;
    }
    compared?;
    Ok(report)
}

/// Compares what verify restored with the snapshot, then runs the recipe's data checks
/// against the scratch volumes.
#[allow(clippy::too_many_arguments)]
async fn compare_and_check(
    abra: &AbraDir,
    app: &App,
    engine: &Engine,
    (out, err, code): (String, String, i64),
    scratch_of: &BTreeMap<String, String>,
    report: &mut VerifyReport,
    record: &mut Record,
    t: Instant,
) -> Result<()> {
    if code != 0 {
        let why = format!(
            "restic check or restore failed (exit {code}): {}",
            tail(err.trim(), 8)
        );
        record.step("restore into scratch", why.clone(), false, t);
        report.problems.push(why);
        return Ok(());
    }
    record.step(
        "restore into scratch",
        "restored and verified by restic",
        true,
        t,
    );
    let (listing, sizes_part) = out.split_once("@@sizes\n").unwrap_or((out.as_str(), ""));
    let nodes: Vec<Node> = listing
        .lines()
        .filter(|l| l.contains("\"struct_type\":\"node\""))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let restored: BTreeMap<String, u64> = sizes_part
        .lines()
        .filter_map(|l| {
            let (size, path) = l.split_once(' ')?;
            Some((path.to_string(), size.parse().ok()?))
        })
        .collect();
    let expected: BTreeMap<String, u64> = nodes
        .iter()
        .filter(|n| n.kind == "file" && n.path.starts_with(VOLUME_ROOT))
        .map(|n| (n.path.clone(), n.size))
        .collect();
    for (path, size) in &expected {
        match restored.get(path) {
            None => report
                .problems
                .push(format!("{path} is in the snapshot but was not restored")),
            Some(s) if s != size => report.problems.push(format!(
                "{path}: restored {s} bytes, the snapshot says {size}"
            )),
            Some(_) => {}
        }
    }
    for path in restored.keys() {
        if !expected.contains_key(path) {
            report
                .problems
                .push(format!("{path} was restored but is not in the snapshot"));
        }
    }
    report.files = restored.len();
    report.bytes = restored.values().sum();
    record.step(
        "compare",
        if report.problems.is_empty() {
            format!(
                "{} files, {} bytes match the snapshot",
                report.files, report.bytes
            )
        } else {
            report.problems.join("; ")
        },
        report.problems.is_empty(),
        t,
    );
    record
        .details
        .insert("files".into(), serde_json::json!(report.files));
    record
        .details
        .insert("bytes".into(), serde_json::json!(report.bytes));

    // The recipe's own data checks, in its images, against the restored data.
    let plan = app_plan(abra, app, engine).await?;
    let secrets = app_secret_values(app);
    for s in &plan.services {
        let Some(check) = &s.check else { continue };
        let volumes: Vec<VolumeMount> = s
            .volumes
            .iter()
            .filter_map(|v| {
                scratch_of.get(&v.swarm_name).map(|scratch| VolumeMount {
                    volume: scratch.clone(),
                    target: v.mounted_at.clone(),
                    read_only: true,
                })
            })
            .collect();
        if volumes.is_empty() {
            continue;
        }
        let t = Instant::now();
        let job = OneShot {
            image: s.image.clone(),
            cmd: vec!["sh".into(), "-c".into(), check.clone()],
            volumes,
            purpose: "verify-check".into(),
            ..Default::default()
        };
        let mut out: Vec<u8> = Vec::new();
        let end = engine.run_oneshot(&job, b"", &mut out).await?;
        let text = scrub(
            &format!(
                "{}{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&end.stderr)
            ),
            &secrets,
        );
        let ok = end.exit_code == 0;
        record.step(
            &format!("data check {}", s.service),
            format!("exit {}: {}", end.exit_code, tail(&text, 10)),
            ok,
            t,
        );
        report.checks.push(format!(
            "{}: {} ({check})",
            s.service,
            if ok { "passed" } else { "FAILED" }
        ));
        if !ok {
            report.problems.push(format!(
                "the data check of {} failed (exit {}): {}",
                s.service,
                end.exit_code,
                tail(text.trim(), 5)
            ));
        }
    }
    Ok(())
}
