//! Listing snapshots (with what records say of them), picking one, reading its layout,
//! downloading it, and retention.

use super::*;
use crate::op::{self, Envelope, Op};

/// What the app's records say of a snapshot.
#[derive(Debug, Clone, Default)]
struct Marks {
    verified: Option<String>,
    last_verify_ok: Option<bool>,
    summary: Option<Summary>,
}

/// What the app's records say of each snapshot id (records are read oldest first).
fn record_marks(abra: &AbraDir, domain: &str) -> BTreeMap<String, Marks> {
    let mut out: BTreeMap<String, Marks> = BTreeMap::new();
    for r in crate::record::list(&abra.root, domain) {
        let Some(id) = r.details.get("snapshot").and_then(|v| v.as_str()) else {
            continue;
        };
        if id.is_empty() {
            continue;
        }
        let entry = out.entry(id.to_string()).or_default();
        match r.operation.as_str() {
            "backup verify" => {
                entry.last_verify_ok = r.ok;
                if r.ok == Some(true) {
                    entry.verified = r.finished.clone();
                }
            }
            "backup create" => {
                entry.summary = r
                    .details
                    .get("summary")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
            }
            _ => {}
        }
    }
    out
}

/// A row of `app backup ls`.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub snapshot: Snapshot,
    /// When a verify of this snapshot last passed.
    pub verified: Option<String>,
    /// Whether the newest verify of this snapshot passed (`None`: never verified).
    pub last_verify_ok: Option<bool>,
    /// Sizes from cooper's backup record (absent for snapshots made by other tools).
    pub summary: Option<Summary>,
    /// Made by cooper (tag) or by another tool (backup-bot-two).
    pub by_cooper: bool,
}

/// The app's snapshots (oldest first) with what cooper's records know of each.
pub async fn list(abra: &AbraDir, domain: &str) -> Result<Vec<Listed>> {
    let app = abra.app(domain)?;
    let engine = connect(abra, &app.at.server).await?;
    let settings = settings(abra, &app.at.server, &app.at.domain, false)?;
    let restic = Restic {
        engine: &engine,
        settings: &settings,
    };
    let marks = record_marks(abra, domain);
    Ok(restic
        .snapshots(&stack_of(&app))
        .await?
        .into_iter()
        .map(|s| {
            // restic before 0.17 reports the short id of a new snapshot; records may hold either.
            let m = marks
                .iter()
                .filter(|(k, _)| s.id.starts_with(k.as_str()))
                .fold(Marks::default(), |acc, (_, m)| Marks {
                    verified: m.verified.clone().or(acc.verified),
                    last_verify_ok: m.last_verify_ok.or(acc.last_verify_ok),
                    summary: m.summary.clone().or(acc.summary),
                });
            Listed {
                by_cooper: s.tags.iter().any(|t| t == TAG),
                verified: m.verified,
                last_verify_ok: m.last_verify_ok,
                summary: m.summary,
                snapshot: s,
            }
        })
        .collect())
}

/// Picks a snapshot of the stack: `wanted` (an id or its prefix) or the newest.
pub(super) async fn pick(
    restic: &Restic<'_>,
    stack: &str,
    wanted: Option<&str>,
) -> Result<Snapshot> {
    let list = restic.snapshots(stack).await?;
    match wanted {
        None => list.last().cloned().ok_or_else(|| {
            OpsError::Refused(format!(
                "no snapshot of {stack} in {} (make one with `cooper app backup create`)",
                restic.settings.repository
            ))
        }),
        Some(w) => {
            let found: Vec<&Snapshot> = list.iter().filter(|s| s.id.starts_with(w)).collect();
            match found.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(OpsError::Refused(format!(
                    "no snapshot {w} of {stack} in {} (see `cooper app backup ls`)",
                    restic.settings.repository
                ))),
                _ => Err(OpsError::Refused(format!(
                    "{w} matches {} snapshots; give more of the id",
                    found.len()
                ))),
            }
        }
    }
}

/// The volume names a snapshot holds (from paths under [`VOLUME_ROOT`]).
pub(super) fn snapshot_volumes(nodes: &[Node]) -> BTreeSet<String> {
    nodes
        .iter()
        .filter_map(|n| {
            let rest = n.path.strip_prefix(VOLUME_ROOT)?.strip_prefix('/')?;
            let (name, tail) = rest.split_once('/')?;
            (tail == "_data" || tail.starts_with("_data/")).then(|| name.to_string())
        })
        .collect()
}

/// What a snapshot holds by its backup paths: volume → paths inside it (empty: the whole
/// volume). `None` when a path is not inside one volume's `_data` (e.g. a snapshot of all of
/// `/var/lib/docker/volumes`); callers then list the snapshot.
pub(super) fn snapshot_layout(paths: &[String]) -> Option<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in paths {
        let rest = p.strip_prefix(VOLUME_ROOT)?.strip_prefix('/')?;
        let (name, tail) = rest.split_once('/')?;
        let inner = tail.strip_prefix("_data")?;
        let entry = out.entry(name.to_string()).or_default();
        match inner.trim_matches('/') {
            "" => entry.push(String::new()),
            sub if inner.starts_with('/') => entry.push(sub.to_string()),
            _ => return None,
        }
    }
    // A volume saved whole wins over any paths inside it.
    for v in out.values_mut() {
        if v.iter().any(String::is_empty) {
            v.clear();
        }
    }
    Some(out)
}

/// The snapshot's layout, listing it when its paths do not say.
pub(super) async fn layout_of(
    restic: &Restic<'_>,
    snap: &Snapshot,
) -> Result<BTreeMap<String, Vec<String>>> {
    if let Some(l) = snapshot_layout(&snap.paths) {
        return Ok(l);
    }
    let (_, nodes) = restic.nodes(&snap.id).await?;
    Ok(snapshot_volumes(&nodes)
        .into_iter()
        .map(|v| (v, Vec::new()))
        .collect())
}

/// `app backup download`: writes the snapshot (or one path of it) as a tar stream to `out`.
pub async fn download(
    abra: &AbraDir,
    domain: &str,
    snapshot: Option<&str>,
    path: Option<&str>,
    out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
) -> Result<Snapshot> {
    let app = abra.app(domain)?;
    let engine = connect(abra, &app.at.server).await?;
    let settings = settings(abra, &app.at.server, &app.at.domain, false)?;
    let restic = Restic {
        engine: &engine,
        settings: &settings,
    };
    let snap = pick(&restic, &stack_of(&app), snapshot).await?;
    let path = path.unwrap_or("/").to_string();
    let (err, code) = restic
        .stream(
            "r dump --archive tar \"$1\" \"$2\"",
            &[snap.id.clone(), path.clone()],
            Vec::new(),
            out,
        )
        .await?;
    if code != 0 {
        return Err(OpsError::Failed(format!(
            "restic dump of {path} from {} failed (exit {code}): {}",
            snap.short_id,
            tail(err.trim(), 8)
        )));
    }
    Ok(snap)
}

/// Retention for `app backup prune`.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

/// `app backup prune`: forgets the app's snapshots outside the retention and prunes the
/// repository. Returns restic's report.
pub async fn prune(
    abra: &AbraDir,
    domain: &str,
    keep: Keep,
    wait_lock: Option<Duration>,
    reporter: &mut dyn Reporter,
) -> Result<String> {
    if keep.daily + keep.weekly + keep.monthly == 0 {
        return Err(OpsError::Refused(
            "keeping 0 daily, 0 weekly and 0 monthly snapshots would forget them all; keep at \
             least one"
                .into(),
        ));
    }
    let envelope = Envelope::locked("backup prune", domain).waiting(wait_lock);
    let done = op::run(abra, envelope, reporter, async |op: &mut Op<'_>| {
        let engine = op.connect().await?;
        let (app, record) = (&op.app, &mut op.record);
        let settings = settings(abra, &app.at.server, &app.at.domain, false)?;
        let restic = Restic {
            engine: &engine,
            settings: &settings,
        };
        let t = Instant::now();
        let out = restic
            .ok(
                "restic forget --prune",
                "r forget --host \"$1\" --keep-daily \"$2\" --keep-weekly \"$3\" --keep-monthly \"$4\" --prune 2>&1",
                &[
                    stack_of(app),
                    keep.daily.to_string(),
                    keep.weekly.to_string(),
                    keep.monthly.to_string(),
                ],
            )
            .await?;
        record.step("forget --prune", tail(&out, 20), true, t);
        Ok(out)
    })
    .await?;
    Ok(done.value)
}

/// Forgets every snapshot of the app's stack and prunes (a throwaway test app's teardown);
/// returns how many there were. Nothing to do when the app never had backup settings.
pub async fn forget_all(abra: &AbraDir, domain: &str) -> Result<usize> {
    let app = abra.app(domain)?;
    let Ok(settings) = settings(abra, &app.at.server, &app.at.domain, false) else {
        return Ok(0);
    };
    let engine = connect(abra, &app.at.server).await?;
    let restic = Restic {
        engine: &engine,
        settings: &settings,
    };
    let ids: Vec<String> = restic
        .snapshots(&stack_of(&app))
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    if !ids.is_empty() {
        restic
            .ok(
                "forgetting the snapshots",
                "r forget --prune \"$@\" >&2",
                &ids,
            )
            .await?;
    }
    Ok(ids.len())
}
