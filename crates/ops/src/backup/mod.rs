//! Backups with restic, proven by restores.
//!
//! **Where restic runs.** In a short-lived helper container on the server, over the same engine
//! connection as everything else (so SSH servers work). Each volume is mounted at
//! `/var/lib/docker/volumes/<volume>/_data` — the path it has on the host, which is also the
//! path backup-bot-two records — read-only for backups. Snapshots carry `--host <stack>` and the
//! tag `cooper`, so backup-bot-two and cooper list and restore each other's snapshots.
//!
//! **Settings.** `$ABRA_DIR/cooper/backup/<server>.env`, overridden per app by
//! `$ABRA_DIR/cooper/backup/<domain>.env`: `RESTIC_REPOSITORY` (any restic backend; default a
//! directory on the server, [`DEFAULT_REPOSITORY`]), `RESTIC_IMAGE` (default the upstream
//! image), `RESTIC_PASSWORD_FILE` (a file on the operator's machine; default
//! `$ABRA_DIR/cooper/backup/<server>.password`, made on the first backup), and any other
//! variable the backend needs (`AWS_ACCESS_KEY_ID`, …). The password and those variables reach
//! restic only on the helper's standard input — never in argv, the container's environment,
//! logs or records.
//!
//! **What counts as a backup.** Pre-hooks run in the service's *running* container; a hook's
//! non-zero exit, a path missing from the snapshot or an empty dump fails the backup, and the
//! snapshot of a failed backup is forgotten so a restore can never pick it. Post-hooks run
//! even after a failure. A backup is only called verified once `verify` restored it into
//! scratch volumes and compared it with the snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cooper_engine::exec::ExecRequest;
use cooper_engine::oneshot::{OneShot, VolumeMount};
use cooper_engine::Engine;
use cooper_recipe::abra_dir::{AbraDir, App};
use cooper_recipe::backup::BackupPlan;
use cooper_recipe::envfile::EnvFile;
use cooper_recipe::secrets::SecretValue;
use cooper_recipe::stack::{self, VersionChoice};
use serde::{Deserialize, Serialize};

use crate::record::Record;
pub use crate::stack_of;
use crate::{connect, tail, OpsError, Reporter, Result};

mod create;
mod place;
mod restic;
mod restore;
mod snapshots;
mod verify;

pub use create::{create, create_via_backupbot, create_with, saves_anything, BackupReport};
use place::{place_of, same_repository};
use restic::Restic;
pub use restore::{restore, RestoreReport, RestoreRequest};
pub use snapshots::{download, forget_all, list, prune, Keep, Listed};
use snapshots::{layout_of, pick};
pub use verify::{verify, VerifyReport};

/// The repository when none is configured: a directory on the server.
pub const DEFAULT_REPOSITORY: &str = "/var/lib/cooper/restic";
/// The restic image when none is configured.
pub const DEFAULT_IMAGE: &str = "restic/restic:0.17.3";
/// Where volumes are mounted in the helper (their path on the host).
pub const VOLUME_ROOT: &str = "/var/lib/docker/volumes";
/// The tag every cooper snapshot carries.
pub const TAG: &str = "cooper";
/// The volume restic keeps its cache in on the server.
const CACHE_VOLUME: &str = "cooper_restic_cache";
/// The helper containers' purpose label.
const PURPOSE: &str = "restic";
/// How long a hook waits for its service to have a running container.
const HOOK_WAIT: Duration = Duration::from_secs(30);

/// `/var/lib/docker/volumes/<volume>/_data`.
pub fn volume_dir(volume: &str) -> String {
    format!("{VOLUME_ROOT}/{volume}/_data")
}

/// Repository settings for an app.
pub struct Settings {
    pub repository: String,
    pub image: String,
    pub password_file: PathBuf,
    password: SecretValue,
    env: Vec<(String, SecretValue)>,
    /// The settings files that were read.
    pub files: Vec<PathBuf>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("repository", &self.repository)
            .field("image", &self.image)
            .field("password_file", &self.password_file)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

impl Settings {
    /// Every value that must never be shown (for scrubbing output).
    fn secret_values(&self) -> Vec<String> {
        let mut v = vec![self.password.expose().to_string()];
        v.extend(self.env.iter().map(|(_, s)| s.expose().to_string()));
        v
    }

    /// What goes on the helper's standard input: `KEY=value` lines, then an empty line.
    fn preamble(&self) -> Result<Vec<u8>> {
        let mut out = String::new();
        let mut push = |k: &str, v: &str| -> Result<()> {
            if v.contains('\n') || v.contains('\r') {
                return Err(OpsError::Refused(format!(
                    "{k} holds a line break; restic settings must be one line each"
                )));
            }
            out.push_str(&format!("{k}={v}\n"));
            Ok(())
        };
        push("RESTIC_REPOSITORY", &self.repository)?;
        push("RESTIC_PASSWORD", self.password.expose())?;
        push("RESTIC_CACHE_DIR", "/cache")?;
        for (k, v) in &self.env {
            push(k, v.expose())?;
        }
        out.push('\n');
        Ok(out.into_bytes())
    }
}

fn settings_dir(abra: &AbraDir) -> PathBuf {
    abra.root.join("cooper").join("backup")
}

/// Reads the backup settings of an app on a server. With `create_password`, a missing default
/// password file is made (the first backup); otherwise its absence is an error.
pub fn settings(
    abra: &AbraDir,
    server: &str,
    domain: &str,
    create_password: bool,
) -> Result<Settings> {
    let dir = settings_dir(abra);
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut files = Vec::new();
    let mut password_file = None;
    for name in [format!("{server}.env"), format!("{domain}.env")] {
        let path = dir.join(&name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let env = EnvFile::parse(&text).map_err(|e| {
            OpsError::Refused(format!(
                "{}: {e}; fix that line (KEY=value, one per line)",
                path.display()
            ))
        })?;
        for (k, v) in env.values() {
            if k == "RESTIC_PASSWORD" || k == "RESTIC_PASSWORD_COMMAND" {
                return Err(OpsError::Refused(format!(
                    "{}: {k} is not read from settings files; put the password alone in a file \
                     (mode 0600) and name it with RESTIC_PASSWORD_FILE",
                    path.display()
                )));
            }
            if k == "RESTIC_PASSWORD_FILE" {
                let p = PathBuf::from(&v);
                password_file = Some(if p.is_absolute() { p } else { dir.join(p) });
                continue;
            }
            values.insert(k, v);
        }
        files.push(path);
    }
    let repository = values
        .remove("RESTIC_REPOSITORY")
        .unwrap_or_else(|| DEFAULT_REPOSITORY.to_string());
    let image = values
        .remove("RESTIC_IMAGE")
        .unwrap_or_else(|| DEFAULT_IMAGE.to_string());
    let explicit_password = password_file.is_some();
    let password_file = password_file.unwrap_or_else(|| dir.join(format!("{server}.password")));
    let password = match std::fs::read_to_string(&password_file) {
        Ok(text) => {
            let p = text.trim_end_matches(['\n', '\r']).to_string();
            if p.is_empty() {
                return Err(OpsError::Refused(format!(
                    "the restic password file {} is empty; put the repository's password in it",
                    password_file.display()
                )));
            }
            SecretValue::new(p)
        }
        Err(_) if create_password && !explicit_password => {
            let value =
                cooper_recipe::secrets::generate(&cooper_recipe::secrets::Recipe::Password {
                    length: 48,
                    charset: cooper_recipe::secrets::Charset::Alnum,
                })
                .ok_or_else(|| OpsError::Failed("could not generate a restic password".into()))?;
            write_private(&password_file, value.expose())?;
            value
        }
        Err(e) => {
            return Err(OpsError::Refused(format!(
                "cannot read the restic password file {}: {e}; without the password the \
                 repository cannot be read — put it there (or set RESTIC_PASSWORD_FILE in {})",
                password_file.display(),
                dir.join(format!("{server}.env")).display()
            )))
        }
    };
    Ok(Settings {
        repository,
        image,
        password_file,
        password,
        env: values
            .into_iter()
            .map(|(k, v)| (k, SecretValue::new(v)))
            .collect(),
        files,
    })
}

fn write_private(path: &Path, value: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| OpsError::Failed(format!("creating {}: {e}", parent.display())))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| OpsError::Failed(format!("writing {}: {e}", path.display())))?;
    f.write_all(format!("{value}\n").as_bytes())
        .map_err(|e| OpsError::Failed(format!("writing {}: {e}", path.display())))?;
    Ok(())
}

/// Replaces every secret value (of 4 characters or more) in `text` with `********`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| s.len() >= 4).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in sorted {
        out = out.replace(s.as_str(), "********");
    }
    out
}

/// A snapshot as `restic snapshots --json` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    #[serde(default)]
    pub short_id: String,
    pub time: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One entry of a snapshot (`restic ls --json`).
#[derive(Debug, Clone, Deserialize)]
struct Node {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    size: u64,
}

/// The final message of `restic backup --json`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Summary {
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub files_new: u64,
    #[serde(default)]
    pub files_changed: u64,
    #[serde(default)]
    pub total_files_processed: u64,
    #[serde(default)]
    pub total_bytes_processed: u64,
    #[serde(default)]
    pub data_added: u64,
}

/// The backup plan of the version the app runs (or, when it is not deployed, of the version
/// on its TYPE line).
pub async fn app_plan(abra: &AbraDir, app: &App, engine: &Engine) -> Result<BackupPlan> {
    let stack_name = stack_of(app);
    let choice = match crate::deploy::deployed_version(engine, &stack_name).await? {
        Some((_, true)) => VersionChoice {
            explicit: None,
            chaos: true,
        },
        Some((v, false)) if v != "unknown" => VersionChoice {
            explicit: Some(v),
            chaos: false,
        },
        _ => VersionChoice::default(),
    };
    let files = abra.app_files(app, &choice)?;
    let loaded = stack::load(&app.at.domain, &app.env, &files)?;
    Ok(cooper_recipe::backup::plan(&loaded.name, &loaded.compose))
}

/// What a backup saves: `(service, swarm volume, paths)`; empty paths mean the whole volume.
fn saved_volumes(plan: &BackupPlan) -> Vec<(String, String, Vec<String>)> {
    plan.services
        .iter()
        .flat_map(|s| {
            s.volumes
                .iter()
                .filter(|v| !v.excluded)
                .map(|v| (s.service.clone(), v.swarm_name.clone(), v.paths.clone()))
        })
        .collect()
}

/// One hook run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookRun {
    pub service: String,
    pub label: String,
    pub command: String,
    pub exit_code: i64,
    /// Standard output and error, secrets scrubbed, last lines only.
    pub output: String,
}

/// Runs a hook in the running container of `<stack>_<service>`, waiting up to
/// [`HOOK_WAIT`] for one.
async fn run_hook(
    engine: &Engine,
    stack: &str,
    service: &str,
    label: &str,
    command: &str,
    secrets: &[String],
) -> Result<HookRun> {
    let full = format!("{stack}_{service}");
    let services = engine.stack_services(stack).await?;
    let Some(svc) = services
        .iter()
        .find(|s| cooper_engine::apply::service_name(s) == full)
    else {
        return Err(OpsError::Failed(format!(
            "{label} of service {service} needs its running container, but {full} is not \
             deployed (`cooper app deploy`)"
        )));
    };
    let replicas = svc
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas);
    if replicas == Some(0) {
        return Err(OpsError::Failed(format!(
            "{label} of service {service} needs its running container, but {full} is scaled to \
             0; scale it up (or deploy the app) and back up again"
        )));
    }
    let container = engine
        .wait_running_container(stack, service, HOOK_WAIT)
        .await
        .map_err(|e| {
            OpsError::Failed(format!(
                "{label} of service {service} needs its running container: {e} (waited {}s)",
                HOOK_WAIT.as_secs()
            ))
        })?;
    let out = engine
        .exec_capture(
            &container,
            ExecRequest {
                cmd: vec!["sh".into(), "-c".into(), command.to_string()],
                ..Default::default()
            },
        )
        .await?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(HookRun {
        service: service.to_string(),
        label: label.to_string(),
        command: command.to_string(),
        exit_code: out.exit_code,
        output: tail(&scrub(&text, secrets), 20),
    })
}

/// Values from the app's env file that look secret (scrubbed from hook output).
pub(crate) fn app_secret_values(app: &App) -> Vec<String> {
    app.env
        .values()
        .into_iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_uppercase();
            ["PASSWORD", "SECRET", "TOKEN", "KEY"]
                .iter()
                .any(|w| k.contains(w))
        })
        .map(|(_, v)| v)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::create::{precheck_args, precheck_findings};
    use super::snapshots::{snapshot_layout, snapshot_volumes};
    use super::*;

    fn node(path: &str, kind: &str, size: u64) -> Node {
        Node {
            path: path.into(),
            kind: kind.into(),
            size,
        }
    }

    #[test]
    fn scrub_hides_every_secret_longest_first() {
        let s = scrub(
            "pw=hunter2hunter2 short=abc key=hunter2",
            &["hunter2".into(), "hunter2hunter2".into(), "abc".into()],
        );
        assert_eq!(s, "pw=******** short=abc key=********");
    }

    #[test]
    fn source_checks_name_missing_and_empty_dumps() {
        let saved = vec![
            (
                "db".to_string(),
                "s_db".to_string(),
                vec!["dump.sql".to_string()],
            ),
            ("app".to_string(), "s_data".to_string(), vec![]),
        ];
        assert_eq!(
            precheck_args(&saved),
            vec![
                "P:/var/lib/docker/volumes/s_db/_data/dump.sql",
                "V:/var/lib/docker/volumes/s_data/_data"
            ]
        );
        let (p, w) = precheck_findings(
            "@@empty /var/lib/docker/volumes/s_db/_data/dump.sql\n@@nodata /var/lib/docker/volumes/s_data/_data\n",
            &saved,
        );
        assert_eq!(
            p,
            vec!["dump.sql in volume s_db of db is empty: an empty dump is not a backup"]
        );
        assert_eq!(w, vec!["volume s_data of app holds no data"]);
        let (p, _) = precheck_findings(
            "@@missing /var/lib/docker/volumes/s_db/_data/dump.sql\n",
            &saved,
        );
        assert!(p[0].contains("does not exist"), "{p:?}");
        assert!(
            precheck_findings("{\"message_type\":\"summary\"}\n", &saved)
                .0
                .is_empty()
        );
    }

    #[test]
    fn snapshot_layout_from_backup_paths() {
        let l = snapshot_layout(&[
            "/var/lib/docker/volumes/s_db/_data/dump.sql".to_string(),
            "/var/lib/docker/volumes/s_data/_data".to_string(),
            "/var/lib/docker/volumes/s_data/_data/sub".to_string(),
        ])
        .unwrap();
        assert_eq!(l["s_db"], vec!["dump.sql"]);
        assert!(l["s_data"].is_empty(), "saved whole");
        assert!(snapshot_layout(&["/var/lib/docker/volumes".to_string()]).is_none());
        assert!(snapshot_layout(&["/var/lib/docker/volumes/x/_database".to_string()]).is_none());
        assert!(snapshot_layout(&["/srv/data".to_string()]).is_none());
    }

    #[test]
    fn snapshot_volumes_come_from_paths() {
        let nodes = vec![
            node("/var", "dir", 0),
            node("/var/lib/docker/volumes/s_db", "dir", 0),
            node("/var/lib/docker/volumes/s_db/_data", "dir", 0),
            node("/var/lib/docker/volumes/s_db/_data/x", "file", 1),
            node("/var/lib/docker/volumes/s_data/_data/y/z", "file", 1),
        ];
        let v: Vec<String> = snapshot_volumes(&nodes).into_iter().collect();
        assert_eq!(v, vec!["s_data", "s_db"]);
    }

    #[test]
    fn settings_refuse_inline_passwords_and_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let abra = AbraDir::new(dir.path());
        let sd = settings_dir(&abra);
        std::fs::create_dir_all(&sd).unwrap();
        std::fs::write(sd.join("srv.env"), "RESTIC_PASSWORD=oops\n").unwrap();
        let e = settings(&abra, "srv", "a.example", true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("srv.env") && e.contains("RESTIC_PASSWORD_FILE"),
            "{e}"
        );

        std::fs::write(
            sd.join("srv.env"),
            "RESTIC_REPOSITORY=/srv/r\nAWS_SECRET_ACCESS_KEY=sekrit1\n",
        )
        .unwrap();
        let s = settings(&abra, "srv", "a.example", true).unwrap();
        assert_eq!(s.repository, "/srv/r");
        let pw = std::fs::read_to_string(sd.join("srv.password")).unwrap();
        assert!(pw.trim().len() >= 32);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(sd.join("srv.password"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("sekrit1") && !dbg.contains(pw.trim()),
            "{dbg}"
        );
        let pre = String::from_utf8(s.preamble().unwrap()).unwrap();
        assert!(pre.contains("AWS_SECRET_ACCESS_KEY=sekrit1\n") && pre.ends_with("\n\n"));

        // An app file overrides the server's.
        std::fs::write(sd.join("a.example.env"), "RESTIC_REPOSITORY=/srv/app\n").unwrap();
        assert_eq!(
            settings(&abra, "srv", "a.example", false)
                .unwrap()
                .repository,
            "/srv/app"
        );

        // No password and not allowed to make one: the error says where it is looked for.
        let e = settings(&abra, "other", "b.example", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("other.password"), "{e}");
    }
}
