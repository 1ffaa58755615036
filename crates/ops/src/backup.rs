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

use crate::lock::AppLock;
use crate::record::Record;
use crate::{connect, OpsError, Reporter, Result};

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

/// The last `n` lines of a text.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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

/// What every helper script starts with: read the settings from standard input; then, as a
/// lifeline, wait for standard input to close (cooper went away) and interrupt restic with
/// SIGINT — restic 0.14+ removes its lock and writes no snapshot on SIGINT, while SIGTERM would
/// leave a stale lock — and let no restic start afterwards; fail on the first error.
const PRELUDE: &str = r#"while IFS= read -r l; do [ -z "$l" ] && break; export "$l"; done
exec 3<&0
( cat <&3 >/dev/null; touch /tmp/.cooper-gone; p=$(cat /tmp/.cooper-restic 2>/dev/null); [ -z "$p" ] || kill -INT "$p" ) 2>/dev/null &
exec 0</dev/null 3<&-
set -e
r() {
  [ ! -e /tmp/.cooper-gone ] || exit 130
  restic "$@" &
  rp=$!
  echo "$rp" > /tmp/.cooper-restic
  [ ! -e /tmp/.cooper-gone ] || kill -INT "$rp"
  wait "$rp"
}
"#;

/// restic on a server, for one app.
struct Restic<'a> {
    engine: &'a Engine,
    settings: &'a Settings,
}

impl Restic<'_> {
    fn job(&self, body: &str, args: &[String], volumes: Vec<VolumeMount>) -> OneShot {
        let mut cmd = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("{PRELUDE}{body}"),
            "cooper-restic".to_string(),
        ];
        cmd.extend(args.iter().cloned());
        let mut vols = volumes;
        vols.push(VolumeMount {
            volume: CACHE_VOLUME.to_string(),
            target: "/cache".to_string(),
            read_only: false,
        });
        let binds = if self.settings.repository.starts_with('/') {
            vec![format!(
                "{0}:{0}",
                self.settings.repository.trim_end_matches('/')
            )]
        } else {
            Vec::new()
        };
        OneShot {
            image: self.settings.image.clone(),
            cmd,
            volumes: vols,
            binds,
            purpose: PURPOSE.to_string(),
            labels: Default::default(),
            keep_stdin_open: true,
        }
    }

    /// Runs a script; returns its standard output, standard error (scrubbed) and exit code.
    async fn capture(
        &self,
        body: &str,
        args: &[String],
        volumes: Vec<VolumeMount>,
    ) -> Result<(String, String, i64)> {
        let mut out: Vec<u8> = Vec::new();
        let (err, code) = self.stream(body, args, volumes, &mut out).await?;
        let secrets = self.settings.secret_values();
        Ok((scrub(&String::from_utf8_lossy(&out), &secrets), err, code))
    }

    /// Runs a script, copying its standard output to `out`; returns standard error (scrubbed)
    /// and the exit code.
    async fn stream(
        &self,
        body: &str,
        args: &[String],
        volumes: Vec<VolumeMount>,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<(String, i64)> {
        let job = self.job(body, args, volumes);
        let preamble = self.settings.preamble()?;
        let end = self.engine.run_oneshot(&job, &preamble, out).await?;
        let secrets = self.settings.secret_values();
        Ok((
            scrub(&String::from_utf8_lossy(&end.stderr), &secrets),
            end.exit_code,
        ))
    }

    /// Runs a script that must succeed.
    async fn ok(&self, what: &str, body: &str, args: &[String]) -> Result<String> {
        let (out, err, code) = self.capture(body, args, Vec::new()).await?;
        if code != 0 {
            return Err(OpsError::Failed(format!(
                "{what} failed (restic exit {code}): {}",
                tail(err.trim(), 8)
            )));
        }
        Ok(out)
    }

    async fn snapshots(&self, host: &str) -> Result<Vec<Snapshot>> {
        let (out, err, code) = self
            .capture(
                "r snapshots --json --host \"$1\"",
                &[host.to_string()],
                Vec::new(),
            )
            .await?;
        if code != 0 {
            if err.contains("Is there a repository at the following location?")
                || err.contains("does not exist")
            {
                return Ok(Vec::new());
            }
            return Err(OpsError::Failed(format!(
                "listing snapshots in {} failed (restic exit {code}): {}",
                self.settings.repository,
                tail(err.trim(), 8)
            )));
        }
        let mut list: Vec<Snapshot> = serde_json::from_str(out.trim()).unwrap_or_default();
        for s in &mut list {
            if s.short_id.is_empty() {
                s.short_id = s.id.chars().take(8).collect();
            }
        }
        list.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(list)
    }

    /// The snapshot's full id and its entries.
    async fn nodes(&self, snapshot: &str) -> Result<(String, Vec<Node>)> {
        let out = self
            .ok(
                "listing the snapshot",
                "r ls --json \"$1\"",
                &[snapshot.to_string()],
            )
            .await?;
        let mut id = snapshot.to_string();
        let mut nodes = Vec::new();
        for l in out.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
                continue;
            };
            if v.get("struct_type").and_then(|t| t.as_str()) == Some("snapshot") {
                if let Some(full) = v.get("id").and_then(|i| i.as_str()) {
                    id = full.to_string();
                }
                continue;
            }
            if let Ok(n) = serde_json::from_value::<Node>(v) {
                nodes.push(n);
            }
        }
        Ok((id, nodes))
    }

    async fn forget(&self, snapshot: &str) -> Result<()> {
        self.ok(
            "forgetting the snapshot",
            "r forget \"$1\" >&2",
            &[snapshot.to_string()],
        )
        .await
        .map(|_| ())
    }
}

/// The stack name of an app.
pub fn stack_of(app: &App) -> String {
    app.env
        .get("STACK_NAME")
        .map(str::to_string)
        .unwrap_or_else(|| stack::stack_name(&app.at.domain))
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
    let start = Instant::now();
    let container = loop {
        match engine.running_container(stack, service).await {
            Ok(c) => break c,
            Err(e) if start.elapsed() < HOOK_WAIT => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(OpsError::Failed(format!(
                    "{label} of service {service} needs its running container: {e} (waited {}s)",
                    HOOK_WAIT.as_secs()
                )))
            }
        }
    };
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
fn app_secret_values(app: &App) -> Vec<String> {
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

/// `app backup create`: takes the app's lock, backs up, records.
pub async fn create(
    abra: &AbraDir,
    domain: &str,
    wait_lock: Option<Duration>,
    reporter: &mut dyn Reporter,
) -> Result<BackupReport> {
    let app = abra.app(domain)?;
    let server_dir = abra.servers_dir().join(&app.at.server);
    let lock = AppLock::acquire(&server_dir, &app.at.domain, "app backup create", wait_lock)?;
    let mut record = Record::new(
        "backup create",
        &app.at.domain,
        &app.at.server,
        &app.recipe.name,
    );
    let started = Instant::now();
    let result = async {
        let engine = connect(abra, &app.at.server).await?;
        create_with(abra, &app, &engine, reporter, &mut record).await
    }
    .await;
    record.finish(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
    let saved = record.save(&abra.root).ok();
    drop(lock);
    result.map(|mut r| {
        r.elapsed_ms = started.elapsed().as_millis() as u64;
        r.record_path = saved;
        r
    })
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
    let app = abra.app(domain)?;
    let server_dir = abra.servers_dir().join(&app.at.server);
    let lock = AppLock::acquire(&server_dir, &app.at.domain, "app backup create", wait_lock)?;
    let mut record = Record::new(
        "backup create (backup-bot-two)",
        &app.at.domain,
        &app.at.server,
        &app.recipe.name,
    );
    let result = async {
        let engine = connect(abra, &app.at.server).await?;
        let Some((bot_stack, bot_service)) = engine.find_backupbot().await? else {
            return Err(OpsError::Refused(format!(
                "no backup-bot-two is deployed on {}; deploy it (`cooper app new backup-bot-two`) \
                 or back up without --via-backupbot",
                app.at.server
            )));
        };
        let stack_name = stack_of(&app);
        let command = format!("backup --host {stack_name} create");
        reporter.info(&format!("running `{command}` in {bot_stack}_{bot_service}"));
        let t = Instant::now();
        let run = run_hook(
            &engine,
            &bot_stack,
            &bot_service,
            "backup-bot-two",
            &command,
            &app_secret_values(&app),
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
    }
    .await;
    record.finish(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
    let _ = record.save(&abra.root);
    drop(lock);
    result
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
    let restic = Restic {
        engine,
        settings: &settings,
    };
    let mut secrets = settings.secret_values();
    secrets.extend(app_secret_values(app));
    let _ = engine.reap_helpers(PURPOSE).await;
    for (_, vol, _) in &saved {
        if !engine.volume_exists(vol).await? {
            return Err(OpsError::Refused(format!(
                "volume {vol} does not exist on {} (is {} deployed? on a multi-node Swarm, \
                 cooper backs up volumes on the node it connects to)",
                app.at.server, app.at.domain
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
fn backup_script() -> String {
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
fn precheck_args(saved: &[(String, String, Vec<String>)]) -> Vec<String> {
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
fn precheck_findings(
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
async fn pick(restic: &Restic<'_>, stack: &str, wanted: Option<&str>) -> Result<Snapshot> {
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
fn snapshot_volumes(nodes: &[Node]) -> BTreeSet<String> {
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
fn snapshot_layout(paths: &[String]) -> Option<BTreeMap<String, Vec<String>>> {
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
async fn layout_of(restic: &Restic<'_>, snap: &Snapshot) -> Result<BTreeMap<String, Vec<String>>> {
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

/// What to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub domain: String,
    pub snapshot: Option<String>,
    /// Compose volume keys or swarm names; empty means every volume in the snapshot.
    pub volumes: Vec<String>,
    pub wait_lock: Option<Duration>,
    pub timeout: Option<Duration>,
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
    let app = abra.app(&req.domain)?;
    let server_dir = abra.servers_dir().join(&app.at.server);
    let lock = AppLock::acquire(&server_dir, &app.at.domain, "app restore", req.wait_lock)?;
    let mut record = Record::new("restore", &app.at.domain, &app.at.server, &app.recipe.name);
    let started = Instant::now();
    let result = run_restore(abra, &app, req, reporter, &mut record).await;
    record.finish(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
    let saved = record.save(&abra.root).ok();
    drop(lock);
    result.map(|mut r| {
        r.elapsed_ms = started.elapsed().as_millis() as u64;
        r.record_path = saved;
        r
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
    let settings = settings(abra, &app.at.server, &app.at.domain, false)?;
    let restic = Restic {
        engine: &engine,
        settings: &settings,
    };
    let mut secrets = settings.secret_values();
    secrets.extend(app_secret_values(app));
    let plan = app_plan(abra, app, &engine).await?;
    let t = Instant::now();
    let snap = pick(&restic, &stack_name, req.snapshot.as_deref()).await?;
    let layout = layout_of(&restic, &snap).await?;
    let in_snapshot: BTreeSet<String> = layout.keys().cloned().collect();
    record
        .details
        .insert("snapshot".into(), serde_json::json!(snap.id));
    // Volumes to restore, with the paths to clear: everything in the snapshot (or the chosen
    // ones), whole or by the paths the snapshot holds.
    let key_of = |swarm: &str| -> String {
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
        if mounts
            .iter()
            .any(|m| m.source.as_ref().is_some_and(|src| whole.contains(src)))
        {
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
        .filter(|s| s.volumes.iter().any(|v| chosen.contains(&v.swarm_name)))
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
                &engine,
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
                    volume: v.clone(),
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
            let (_, err, code) = restic.capture(body, &args, volumes).await?;
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
                &engine,
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
    let app = abra.app(domain)?;
    let mut record = Record::new(
        "backup verify",
        &app.at.domain,
        &app.at.server,
        &app.recipe.name,
    );
    let started = Instant::now();
    let result = run_verify(abra, &app, snapshot, reporter, &mut record).await;
    let outcome = match &result {
        Ok(r) if r.problems.is_empty() => Ok(()),
        Ok(r) => Err(r.problems.join("; ")),
        Err(e) => Err(e.to_string()),
    };
    record.finish(outcome);
    let saved = record.save(&abra.root).ok();
    result.map(|mut r| {
        r.elapsed_ms = started.elapsed().as_millis() as u64;
        r.record_path = saved;
        r
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
) -> Result<String> {
    if keep.daily + keep.weekly + keep.monthly == 0 {
        return Err(OpsError::Refused(
            "keeping 0 daily, 0 weekly and 0 monthly snapshots would forget them all; keep at \
             least one"
                .into(),
        ));
    }
    let app = abra.app(domain)?;
    let server_dir = abra.servers_dir().join(&app.at.server);
    let lock = AppLock::acquire(&server_dir, &app.at.domain, "app backup prune", wait_lock)?;
    let mut record = Record::new(
        "backup prune",
        &app.at.domain,
        &app.at.server,
        &app.recipe.name,
    );
    let result = async {
        let engine = connect(abra, &app.at.server).await?;
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
                    stack_of(&app),
                    keep.daily.to_string(),
                    keep.weekly.to_string(),
                    keep.monthly.to_string(),
                ],
            )
            .await?;
        record.step("forget --prune", tail(&out, 20), true, t);
        Ok(out)
    }
    .await;
    record.finish(
        result
            .as_ref()
            .map(|_| ())
            .map_err(|e: &OpsError| e.to_string()),
    );
    let _ = record.save(&abra.root);
    drop(lock);
    result
}

#[cfg(test)]
mod tests {
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
