//! restic on the server: the helper script prelude (settings on stdin, the lifeline) and
//! the runner that starts helpers and reads their output.

use super::*;

/// What every helper script starts with: read the settings from standard input; then, as a
/// lifeline, wait for standard input to close (cooper went away) and interrupt restic with
/// SIGINT — restic 0.14+ removes its lock and writes no snapshot on SIGINT, while SIGTERM would
/// leave a stale lock — and let no restic start afterwards; fail on the first error.
///
/// A SIGINT that lands while restic is still taking its lock can leave that lock behind
/// (seen: a `restic check` right after the helper ended found a lock 1 s old). So once cooper
/// is gone, the helper waits for the interrupted restic to end and runs `restic unlock`, which
/// removes only locks of processes that no longer run on the helper's own host — the one just
/// interrupted — and then exits. The promise: when the helper container has stopped, the
/// repository holds no lock of it (measured: the helper stops within about a second of
/// cooper's death; `kill_9_mid_backup…` in `crates/cli/tests/backup.rs` waits for exactly that).
const PRELUDE: &str = r#"while IFS= read -r l; do [ -z "$l" ] && break; export "$l"; done
exec 3<&0
( cat <&3 >/dev/null; touch /tmp/.cooper-gone; p=$(cat /tmp/.cooper-restic 2>/dev/null); [ -z "$p" ] || kill -INT "$p" ) 2>/dev/null &
exec 0</dev/null 3<&-
set -e
gone() { restic unlock >/dev/null 2>&1 || true; exit 130; }
r() {
  [ ! -e /tmp/.cooper-gone ] || gone
  restic "$@" &
  rp=$!
  echo "$rp" > /tmp/.cooper-restic
  [ ! -e /tmp/.cooper-gone ] || kill -INT "$rp"
  rc=0
  wait "$rp" || rc=$?
  [ ! -e /tmp/.cooper-gone ] || gone
  return "$rc"
}
"#;

/// restic on a server, for one app.
pub(super) struct Restic<'a> {
    pub(super) engine: &'a Engine,
    pub(super) settings: &'a Settings,
}

impl Restic<'_> {
    pub(super) fn job(&self, body: &str, args: &[String], volumes: Vec<VolumeMount>) -> OneShot {
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
            network: None,
        }
    }

    /// Runs a script; returns its standard output, standard error (scrubbed) and exit code.
    pub(super) async fn capture(
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
    pub(super) async fn stream(
        &self,
        body: &str,
        args: &[String],
        volumes: Vec<VolumeMount>,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<(String, i64)> {
        let job = self.job(body, args, volumes);
        self.require_image().await?;
        let preamble = self.settings.preamble()?;
        let end = self.engine.run_oneshot(&job, &preamble, out).await?;
        let secrets = self.settings.secret_values();
        Ok((
            scrub(&String::from_utf8_lossy(&end.stderr), &secrets),
            end.exit_code,
        ))
    }

    /// The helper image is on the server (pulled when it is not), or an error that says
    /// the three ways out.
    pub(super) async fn require_image(&self) -> Result<()> {
        let image = &self.settings.image;
        if let Err(e) = self.engine.ensure_image(image).await? {
            let settings = match self.settings.files.first() {
                Some(f) => f.display().to_string(),
                None => "$ABRA_DIR/cooper/backup/<server>.env".to_string(),
            };
            return Err(OpsError::Refused(format!(
                "the backup helper cannot start: {e}. Pull it on the server (`docker pull \
                 {image}`), build an image with restic and a POSIX sh, or point RESTIC_IMAGE \
                 in {settings} at one the server has"
            )));
        }
        Ok(())
    }

    /// Runs a script that must succeed.
    pub(super) async fn ok(&self, what: &str, body: &str, args: &[String]) -> Result<String> {
        let (out, err, code) = self.capture(body, args, Vec::new()).await?;
        if code != 0 {
            return Err(OpsError::Failed(format!(
                "{what} failed (restic exit {code}): {}",
                tail(err.trim(), 8)
            )));
        }
        Ok(out)
    }

    pub(super) async fn snapshots(&self, host: &str) -> Result<Vec<Snapshot>> {
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
    pub(super) async fn nodes(&self, snapshot: &str) -> Result<(String, Vec<Node>)> {
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

    pub(super) async fn forget(&self, snapshot: &str) -> Result<()> {
        self.ok(
            "forgetting the snapshot",
            "r forget \"$1\" >&2",
            &[snapshot.to_string()],
        )
        .await
        .map(|_| ())
    }
}
