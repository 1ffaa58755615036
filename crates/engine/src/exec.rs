//! Running commands in a service's container, service logs, restarts, and the status of every
//! stack on a server in one call.

use std::collections::{BTreeMap, HashMap};

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{Service, TaskState};
use bollard::query_parameters::{
    InspectServiceOptions, ListServicesOptionsBuilder, ListTasksOptionsBuilder, LogsOptionsBuilder,
};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::apply::service_name;
use crate::{api_message, Engine, EngineError, Result, STACK_LABEL};

/// Output of a command run without a terminal.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// What to run in a container.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    /// `KEY=value` entries (sent in the request body, never on a command line).
    pub env: Vec<String>,
    pub user: Option<String>,
    pub tty: bool,
}

/// Status of one stack on a server (`app ls -S`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct StackStatus {
    pub services: usize,
    pub running: u64,
    pub desired: u64,
    pub version: Option<String>,
    pub chaos: bool,
    /// An update in flight or stopped on some service, in words (`rolling back`, `updating`,
    /// `update paused`, `rollback paused`, `rolled back`), the most telling one first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
    /// Down nodes this stack waits for (a service pinned to one has nowhere else to run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
    /// Down nodes holding tasks of this stack that should run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_down_nodes: Vec<String>,
}

impl StackStatus {
    /// One phrase for the stack: `rolling back 0/1`, `deployed 3/3`, `degraded 1/3`, …
    pub fn describe(&self) -> String {
        let counts = format!("{}/{}", self.running, self.desired);
        if !self.waiting_for.is_empty() {
            return format!(
                "waiting for node {} (down) {counts}",
                self.waiting_for.join(", ")
            );
        }
        if !self.on_down_nodes.is_empty() {
            let word = if self.running >= self.desired {
                "deployed"
            } else {
                "degraded"
            };
            return format!(
                "{word} {counts}, node {} down",
                self.on_down_nodes.join(", ")
            );
        }
        match &self.update {
            Some(u) if u != "rolled back" => format!("{u} {counts}"),
            _ if self.running >= self.desired => format!("deployed {counts}"),
            _ => format!("degraded {counts}"),
        }
    }
}

/// How much an update phase says about a stack: a rollback in flight outranks an update in
/// flight, which outranks one stopped.
fn phase_rank(phase: &str) -> u8 {
    match phase {
        "rolling back" => 5,
        "rollback paused" => 4,
        "update paused" => 3,
        "updating" => 2,
        _ => 1,
    }
}

/// A stack's state from its services: task counts, the deployed version (the `app` service's
/// `coop-cloud.<stack>.version` label, else any service's) and whether it is a chaos deploy.
pub fn stack_status(stack: &str, services: &[Service]) -> StackStatus {
    let version_label = format!("coop-cloud.{stack}.version");
    let chaos_label = format!("coop-cloud.{stack}.chaos");
    let mut st = StackStatus::default();
    for s in services {
        st.services += 1;
        if let Some(status) = &s.service_status {
            st.running += status.running_tasks.unwrap_or(0);
            st.desired += status.desired_tasks.unwrap_or(0);
        }
        let labels = s
            .spec
            .as_ref()
            .and_then(|sp| sp.labels.clone())
            .unwrap_or_default();
        if let Some(v) = labels.get(&version_label) {
            if st.version.is_none() || service_name(s) == format!("{stack}_app") {
                st.version = Some(v.clone());
            }
        }
        st.chaos |= labels.get(&chaos_label).is_some_and(|c| c == "true");
        if let Some(phase) = crate::converge::update_phase(s) {
            if st
                .update
                .as_deref()
                .is_none_or(|u| phase_rank(u) < phase_rank(phase))
            {
                st.update = Some(phase.to_string());
            }
        }
    }
    st
}

impl Engine {
    /// The container of a running task of `<stack>_<service>` on this engine's node.
    pub async fn running_container(&self, stack: &str, service: &str) -> Result<String> {
        let full = format!("{stack}_{service}");
        let filters = HashMap::from([
            ("service".to_string(), vec![full.clone()]),
            ("desired-state".to_string(), vec!["running".to_string()]),
        ]);
        let tasks = self
            .docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::default().filters(&filters).build(),
            ))
            .await
            .map_err(EngineError::api(format!("listing tasks of {full}")))?;
        let info = self
            .docker
            .info()
            .await
            .map_err(EngineError::api("reading engine info"))?;
        let here = info.swarm.and_then(|s| s.node_id).unwrap_or_default();
        let mut elsewhere = None;
        for t in &tasks {
            let status = t.status.clone().unwrap_or_default();
            if status.state != Some(TaskState::RUNNING) {
                continue;
            }
            let Some(cid) = status.container_status.and_then(|c| c.container_id) else {
                continue;
            };
            if t.node_id.as_deref() == Some(here.as_str()) {
                return Ok(cid);
            }
            elsewhere = t.node_id.clone();
        }
        Err(EngineError::Invalid(match elsewhere {
            Some(node) => format!(
                "{full} runs on node {node}, not on {}; commands run on the node cooper connects to",
                self.server
            ),
            None => format!(
                "{full} has no running task (is the app deployed and converged? see `cooper app ps`)"
            ),
        }))
    }

    /// Like [`Engine::running_container`], but waits up to `wait` for one (a task restarting or
    /// being replaced); the error is the last one seen.
    pub async fn wait_running_container(
        &self,
        stack: &str,
        service: &str,
        wait: std::time::Duration,
    ) -> Result<String> {
        let start = std::time::Instant::now();
        loop {
            match self.running_container(stack, service).await {
                Ok(c) => return Ok(c),
                Err(_) if start.elapsed() < wait => {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs a command in a container and collects its output and exit code.
    pub async fn exec_capture(&self, container: &str, req: ExecRequest) -> Result<ExecOutput> {
        let exec = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(req.cmd),
                    env: Some(req.env),
                    user: req.user,
                    ..Default::default()
                },
            )
            .await
            .map_err(EngineError::api("creating exec"))?;
        let mut out = ExecOutput::default();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None::<StartExecOptions>)
            .await
            .map_err(EngineError::api("starting exec"))?
        {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(EngineError::api("reading exec output"))? {
                    bollard::container::LogOutput::StdErr { message } => {
                        out.stderr.extend_from_slice(&message)
                    }
                    other => out.stdout.extend_from_slice(&other.into_bytes()),
                }
            }
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(EngineError::api("inspecting exec"))?;
        out.exit_code = inspect.exit_code.unwrap_or(-1);
        Ok(out)
    }

    /// Runs a command attached to the caller's streams (with a terminal when `tty`); returns
    /// the exit code.
    pub async fn exec_attached(
        &self,
        container: &str,
        req: ExecRequest,
        mut stdin: impl AsyncRead + Unpin + Send + 'static,
        mut stdout: impl AsyncWrite + Unpin,
        mut stderr: impl AsyncWrite + Unpin,
    ) -> Result<i64> {
        let tty = req.tty;
        let exec = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(tty),
                    cmd: Some(req.cmd),
                    env: Some(req.env),
                    user: req.user,
                    ..Default::default()
                },
            )
            .await
            .map_err(EngineError::api("creating exec"))?;
        let started = self
            .docker
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    detach: false,
                    tty,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(EngineError::api("starting exec"))?;
        if let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        {
            let pump = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut stdin, &mut input).await;
                let _ = input.shutdown().await;
            });
            while let Some(chunk) = output.next().await {
                match chunk {
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        let _ = stderr.write_all(&message).await;
                        let _ = stderr.flush().await;
                    }
                    Ok(other) => {
                        let _ = stdout.write_all(&other.into_bytes()).await;
                        let _ = stdout.flush().await;
                    }
                    Err(e) => {
                        return Err(EngineError::Invalid(format!(
                            "exec stream: {}",
                            api_message(&e)
                        )))
                    }
                }
            }
            pump.abort();
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(EngineError::api("inspecting exec"))?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }

    /// A service's logs (all its tasks), as a stream of lines.
    pub fn service_logs(
        &self,
        full_name: &str,
        follow: bool,
        tail: Option<usize>,
        since: Option<i32>,
        timestamps: bool,
    ) -> impl Stream<Item = Result<String>> + '_ {
        let mut b = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .timestamps(timestamps);
        if let Some(t) = tail {
            b = b.tail(&t.to_string());
        }
        if let Some(s) = since {
            b = b.since(s);
        }
        let name = full_name.to_string();
        self.docker
            .service_logs(full_name, Some(b.build()))
            .map(move |r| {
                r.map(|o| o.to_string())
                    .map_err(EngineError::api(format!("reading logs of {name}")))
            })
    }

    /// Restarts a service's tasks by forcing an update (rolling, as its update config says).
    pub async fn force_update(&self, full_name: &str) -> Result<()> {
        let svc = self
            .docker
            .inspect_service(full_name, None::<InspectServiceOptions>)
            .await
            .map_err(EngineError::api(format!("inspecting service {full_name}")))?;
        let mut spec = crate::apply::as_submitted(svc.spec.unwrap_or_default());
        if let Some(t) = spec.task_template.as_mut() {
            t.force_update = Some(t.force_update.unwrap_or(0) + 1);
        }
        self.update_service(full_name, spec).await
    }

    /// Every service that belongs to a stack (one call).
    pub async fn stacked_services(&self) -> Result<Vec<Service>> {
        let filters = HashMap::from([("label".to_string(), vec![STACK_LABEL.to_string()])]);
        self.docker
            .list_services(Some(
                ListServicesOptionsBuilder::default()
                    .filters(&filters)
                    .status(true)
                    .build(),
            ))
            .await
            .map_err(EngineError::api("listing services"))
    }

    /// Every stack on the server with its services' state and version: two calls (services,
    /// nodes) while every node is ready. When one is not, the tasks are read too: tasks on a
    /// down node are not counted as running (their state is only the last one known) and
    /// stacks waiting for that node say so.
    pub async fn all_stacks(&self) -> Result<BTreeMap<String, StackStatus>> {
        let (services, nodes) = tokio::join!(self.stacked_services(), self.nodes());
        let services = services?;
        // A server that is not a Swarm manager cannot list nodes; its stacks are as they are.
        let trouble = match nodes {
            Ok(nodes) => self.node_trouble(&nodes, &services).await?,
            Err(_) => None,
        };
        let mut by_stack: BTreeMap<String, Vec<Service>> = BTreeMap::new();
        for s in services {
            let stack = s
                .spec
                .as_ref()
                .and_then(|sp| sp.labels.as_ref())
                .and_then(|l| l.get(STACK_LABEL))
                .cloned();
            if let Some(stack) = stack {
                by_stack.entry(stack).or_default().push(s);
            }
        }
        let mut out: BTreeMap<String, StackStatus> = by_stack
            .into_iter()
            .map(|(stack, services)| {
                let status = stack_status(&stack, &services);
                (stack, status)
            })
            .collect();
        if let Some(trouble) = trouble {
            for (stack, st) in out.iter_mut() {
                let t = trouble.affected.get(stack).cloned().unwrap_or_default();
                st.running = t.running;
                st.waiting_for = t.waiting_for.into_iter().collect();
                st.on_down_nodes = t.on.into_iter().collect();
            }
        }
        Ok(out)
    }
}

impl Engine {
    /// Sets a replicated service's replica count; returns the count it had. Global services
    /// cannot be scaled (an error says so).
    pub async fn scale_service(&self, full_name: &str, replicas: u64) -> Result<u64> {
        let current = self
            .docker
            .inspect_service(full_name, None::<InspectServiceOptions>)
            .await
            .map_err(EngineError::api(format!("inspecting service {full_name}")))?;
        let mut spec = current.spec.unwrap_or_default();
        let Some(mode) = spec.mode.as_mut() else {
            return Err(EngineError::Invalid(format!(
                "{full_name} has no mode in its spec"
            )));
        };
        let Some(rep) = mode.replicated.as_mut() else {
            return Err(EngineError::Invalid(format!(
                "{full_name} is a global service and cannot be scaled down; stop it another way \
                 (e.g. `cooper app undeploy`) before restoring"
            )));
        };
        let before = rep.replicas.unwrap_or(1).max(0) as u64;
        rep.replicas = Some(replicas as i64);
        self.update_service(full_name, crate::apply::as_submitted(spec))
            .await?;
        Ok(before)
    }

    /// Waits until no task of these services (full names) is running or about to run.
    pub async fn wait_stopped(
        &self,
        stack: &str,
        services: &[String],
        timeout: std::time::Duration,
    ) -> Result<()> {
        let start = std::time::Instant::now();
        loop {
            let tasks = self.stack_tasks(stack).await?;
            let busy: Vec<&str> = tasks
                .iter()
                .filter(|t| services.contains(&t.service))
                .filter(|t| {
                    !matches!(
                        t.state.as_str(),
                        "shutdown" | "complete" | "failed" | "rejected" | "orphaned" | "remove"
                    )
                })
                .map(|t| t.service.as_str())
                .collect();
            if busy.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(EngineError::Invalid(format!(
                    "{} still had running tasks after {}s",
                    busy.join(", "),
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}

impl Engine {
    /// The deployed backup-bot-two on this server, as `(stack, service)` (its `app` service,
    /// found by its recipe label or its image).
    pub async fn find_backupbot(&self) -> Result<Option<(String, String)>> {
        let filters = HashMap::from([("label".to_string(), vec![STACK_LABEL.to_string()])]);
        let services: Vec<Service> = self
            .docker
            .list_services(Some(
                ListServicesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(EngineError::api("listing services"))?;
        for s in &services {
            let spec = s.spec.clone().unwrap_or_default();
            let labels = spec.labels.clone().unwrap_or_default();
            let Some(stack) = labels.get(STACK_LABEL) else {
                continue;
            };
            let name = service_name(s);
            let Some(short) = name.strip_prefix(&format!("{stack}_")) else {
                continue;
            };
            let image = spec
                .task_template
                .and_then(|t| t.container_spec)
                .and_then(|c| c.image)
                .unwrap_or_default();
            let by_label = labels
                .get(&format!("coop-cloud.{stack}.recipe"))
                .is_some_and(|r| r == "backup-bot-two");
            let by_image = image
                .rsplit('/')
                .next()
                .is_some_and(|i| i.starts_with("backup-bot-two"));
            if short == "app" && (by_label || by_image) {
                return Ok(Some((stack.clone(), short.to_string())));
            }
        }
        Ok(None)
    }
}
