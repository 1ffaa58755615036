//! Short-lived helper containers on the server (restic runs in them): created, attached, fed a
//! preamble on standard input, streamed, waited for and removed. Values that must stay secret
//! travel only on standard input, never in the container's command, environment or labels,
//! which `docker inspect` would show.
//!
//! Standard input is kept open until the container ends and is closed when cooper goes away
//! (`StdinOnce`), so a helper can watch it and stop its work cleanly when cooper is killed.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::{api_message, Engine, EngineError, Result};

/// The label every helper container carries (its value says what it is for).
pub const HELPER_LABEL: &str = "cooper.helper";
/// The label naming the cooper process that runs a helper (`<host>:<pid>`).
pub const OWNER_LABEL: &str = "cooper.owner";

/// This process as a helper's owner.
pub fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

/// Whether `owner` (`<host>:<pid>`, see [`owner`]) names a process of this machine:
/// `Some(alive)`, or `None` for another machine (or garbage), where liveness is unknown.
pub fn owner_alive_here(owner: &str) -> Option<bool> {
    let (host, pid) = owner.rsplit_once(':')?;
    let me = self::owner();
    let my_host = me.rsplit_once(':').map(|(h, _)| h).unwrap_or_default();
    (host == my_host && pid.parse::<u32>().is_ok())
        .then(|| std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Whether the owner of a helper is a process of this machine that is gone.
fn owner_gone(owner: &str) -> bool {
    owner_alive_here(owner) == Some(false)
}

/// A named volume mounted into a helper.
#[derive(Debug, Clone)]
pub struct VolumeMount {
    pub volume: String,
    pub target: String,
    pub read_only: bool,
}

/// A helper's labels: what it is for and which cooper process runs it (the reaper's keys).
fn helper_labels(purpose: &str, mut labels: HashMap<String, String>) -> HashMap<String, String> {
    labels.insert(HELPER_LABEL.to_string(), purpose.to_string());
    labels.insert(OWNER_LABEL.to_string(), owner());
    labels
}

fn mounts_of(volumes: &[VolumeMount]) -> Vec<Mount> {
    volumes
        .iter()
        .map(|v| Mount {
            target: Some(v.target.clone()),
            source: Some(v.volume.clone()),
            typ: Some(MountType::VOLUME),
            read_only: Some(v.read_only),
            ..Default::default()
        })
        .collect()
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct OneShot {
    pub image: String,
    pub cmd: Vec<String>,
    pub volumes: Vec<VolumeMount>,
    /// Host directories, `host:container[:ro]` (created on the host when missing).
    pub binds: Vec<String>,
    /// What the helper is for (the value of [`HELPER_LABEL`]).
    pub purpose: String,
    pub labels: HashMap<String, String>,
    /// A network to join (e.g. the attachable `proxy` overlay), instead of the default bridge.
    pub network: Option<String>,
    /// Keep standard input open after the preamble, until the helper ends (a lifeline the
    /// helper can watch); otherwise it is closed once the preamble is written.
    pub keep_stdin_open: bool,
}

/// How a helper ended.
#[derive(Debug, Clone, Default)]
pub struct OneShotEnd {
    pub exit_code: i64,
    /// Standard error (whole; helpers print little there).
    pub stderr: Vec<u8>,
}

impl Engine {
    /// Whether a volume exists on the node cooper is connected to.
    pub async fn volume_exists(&self, name: &str) -> Result<bool> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(source) => {
                let e = EngineError::Api {
                    context: format!("inspecting volume {name}"),
                    source,
                };
                if e.status() == Some(404) {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Creates an empty volume labelled as cooper's (scratch space for verification).
    pub async fn create_volume(&self, name: &str, labels: HashMap<String, String>) -> Result<()> {
        self.docker
            .create_volume(bollard::models::VolumeCreateRequest {
                name: Some(name.to_string()),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map_err(EngineError::api(format!("creating volume {name}")))?;
        Ok(())
    }

    /// Runs a helper container to its end: writes `stdin_preamble` to its standard input
    /// (which then stays open until the container exits), copies its standard output to
    /// `stdout` as it comes, and removes the container afterwards.
    pub async fn run_oneshot(
        &self,
        job: &OneShot,
        stdin_preamble: &[u8],
        stdout: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<OneShotEnd> {
        let labels = helper_labels(&job.purpose, job.labels.clone());
        let mounts = mounts_of(&job.volumes);
        let body = ContainerCreateBody {
            image: Some(job.image.clone()),
            cmd: Some(job.cmd.clone()),
            entrypoint: Some(Vec::new()),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            tty: Some(false),
            labels: Some(labels),
            host_config: Some(HostConfig {
                mounts: Some(mounts),
                binds: Some(job.binds.clone()),
                network_mode: job.network.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .map_err(EngineError::api(format!(
                "creating a helper container from {}",
                job.image
            )))?;
        let id = created.id;
        let result = self
            .drive(&id, stdin_preamble, job.keep_stdin_open, stdout)
            .await;
        let _ = self
            .docker
            .remove_container(
                &id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await;
        result
    }

    /// Unpacks a tar stream into volumes without running anything: a helper container is
    /// created (never started) with the volumes mounted, the engine extracts `data` at `/`
    /// through its archive upload API (so the volumes receive what lies under their mount
    /// points, owners and modes as the tar says), and the container is removed.
    pub async fn unpack_into_volumes<R>(
        &self,
        image: &str,
        purpose: &str,
        volumes: Vec<VolumeMount>,
        data: R,
    ) -> Result<()>
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
    {
        let labels = helper_labels(purpose, HashMap::new());
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["true".into()]),
            entrypoint: Some(Vec::new()),
            labels: Some(labels),
            host_config: Some(HostConfig {
                mounts: Some(mounts_of(&volumes)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .map_err(EngineError::api(format!(
                "creating a helper container from {image}"
            )))?;
        let id = created.id;
        let chunks = futures_util::stream::unfold(data, |mut r| async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 256 * 1024];
            match r.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(bytes::Bytes::from(buf)), r))
                }
                Err(e) => Some((Err(e), r)),
            }
        });
        let result = self
            .docker
            .upload_to_container(
                &id,
                Some(
                    bollard::query_parameters::UploadToContainerOptionsBuilder::default()
                        .path("/")
                        .build(),
                ),
                bollard::body_try_stream(chunks),
            )
            .await
            .map_err(EngineError::api(
                "unpacking into the helper container's volumes",
            ));
        let _ = self
            .docker
            .remove_container(
                &id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await;
        result
    }

    async fn drive(
        &self,
        id: &str,
        stdin_preamble: &[u8],
        keep_stdin_open: bool,
        stdout: &mut (dyn AsyncWrite + Unpin + Send),
    ) -> Result<OneShotEnd> {
        let attached = self
            .docker
            .attach_container(
                id,
                Some(
                    AttachContainerOptionsBuilder::default()
                        .stream(true)
                        .stdin(true)
                        .stdout(true)
                        .stderr(true)
                        .build(),
                ),
            )
            .await
            .map_err(EngineError::api("attaching to the helper container"))?;
        let mut output = attached.output;
        let mut input = attached.input;
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(EngineError::api("starting the helper container"))?;
        input
            .write_all(stdin_preamble)
            .await
            .map_err(|e| EngineError::Invalid(format!("writing to the helper container: {e}")))?;
        input
            .flush()
            .await
            .map_err(|e| EngineError::Invalid(format!("writing to the helper container: {e}")))?;
        if !keep_stdin_open {
            let _ = input.shutdown().await;
        }
        let mut end = OneShotEnd::default();
        while let Some(chunk) = output.next().await {
            match chunk {
                Ok(bollard::container::LogOutput::StdErr { message }) => {
                    end.stderr.extend_from_slice(&message)
                }
                Ok(other) => stdout.write_all(&other.into_bytes()).await.map_err(|e| {
                    EngineError::Invalid(format!("writing the helper's output: {e}"))
                })?,
                Err(e) => {
                    return Err(EngineError::Invalid(format!(
                        "reading the helper's output: {}",
                        api_message(&e)
                    )))
                }
            }
        }
        let _ = stdout.flush().await;
        let mut wait = self.docker.wait_container(
            id,
            Some(
                WaitContainerOptionsBuilder::default()
                    .condition("not-running")
                    .build(),
            ),
        );
        end.exit_code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => {
                return Err(EngineError::Invalid(format!(
                    "waiting for the helper container: {}",
                    api_message(&e)
                )))
            }
            None => -1,
        };
        drop(input);
        Ok(end)
    }

    /// Removes helper containers of `purpose` that ended and whose cooper process is gone
    /// (left by a cooper that was killed); returns how many of them are still running.
    pub async fn reap_helpers(&self, purpose: &str) -> Result<usize> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{HELPER_LABEL}={purpose}")],
        )]);
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(EngineError::api("listing helper containers"))?;
        let mut running = 0;
        for c in list {
            let gone = c
                .labels
                .as_ref()
                .and_then(|l| l.get(OWNER_LABEL))
                .is_some_and(|o| owner_gone(o));
            if !gone {
                continue;
            }
            use bollard::models::ContainerSummaryStateEnum as S;
            match c.state {
                Some(S::EXITED) | Some(S::DEAD) | Some(S::CREATED) => {
                    if let Some(id) = c.id {
                        let _ = self
                            .docker
                            .remove_container(
                                &id,
                                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                            )
                            .await;
                    }
                }
                _ => running += 1,
            }
        }
        Ok(running)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dead_local_owner_is_gone_a_live_or_remote_one_is_not() {
        let me = super::owner();
        assert!(!super::owner_gone(&me));
        let host = me.rsplit_once(':').unwrap().0;
        assert!(super::owner_gone(&format!("{host}:999999999")));
        assert!(!super::owner_gone("some-other-host:999999999"));
        assert!(!super::owner_gone("garbage"));
    }
}
