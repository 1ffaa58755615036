//! Looking at a running stack: tasks, failures, health output, logs, volumes.

use std::collections::HashMap;

use bollard::models::{Task, TaskState};
use bollard::query_parameters::{
    InspectContainerOptions, ListTasksOptionsBuilder, LogsOptionsBuilder,
};
use futures_util::StreamExt;
use serde::Serialize;

use crate::apply::service_name;
use crate::{Engine, EngineError, Result, STACK_LABEL};

/// One task, for `app ps` and `app errors`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    pub service: String,
    pub task: String,
    pub slot: Option<i64>,
    /// The host name of the node the task is on (empty while it waits for one).
    pub node: String,
    /// That node's state when it is not `ready` (`down`, `disconnected`, `unknown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_state: Option<String>,
    pub image: String,
    pub desired: String,
    pub state: String,
    pub error: Option<String>,
    pub exit_code: Option<i64>,
    pub container: Option<String>,
    pub updated: Option<String>,
    /// The service's update in flight or stopped, in words (`rolling back`, `updating`, …).
    pub update: Option<String>,
}

fn row(t: &Task, service: &str, update: Option<&str>) -> TaskRow {
    let status = t.status.clone().unwrap_or_default();
    let cs = status.container_status.clone().unwrap_or_default();
    TaskRow {
        service: service.to_string(),
        task: t.id.clone().unwrap_or_default(),
        slot: t.slot,
        node: t.node_id.clone().unwrap_or_default(),
        node_state: None,
        image: t
            .spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        desired: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
        state: status.state.map(|s| s.to_string()).unwrap_or_default(),
        error: status.err.clone().filter(|e| !e.is_empty()),
        exit_code: cs.exit_code.filter(|c| *c != 0),
        container: cs.container_id.clone(),
        updated: t.updated_at.as_ref().map(|d| format!("{d:?}")),
        update: update.map(str::to_string),
    }
}

/// A node of the Swarm, for the dashboard's server page.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub id: String,
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `ready`, `down`, `disconnected`, `unknown`.
    pub state: String,
    pub availability: String,
    pub engine_version: String,
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    pub os: String,
    pub arch: String,
    /// The address the node is reached at.
    pub addr: String,
    /// The node's labels (`docker node update --label-add`), for placement constraints.
    pub labels: std::collections::BTreeMap<String, String>,
    pub engine_labels: std::collections::BTreeMap<String, String>,
}

/// What the engine keeps on disk: its images and volumes (Docker's own accounting).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Storage {
    pub images: usize,
    /// The images' sizes added up: layers two images share count twice, so this is at most
    /// what they take (Docker 29 and later report the exact total, used then).
    pub images_bytes: i64,
    /// Whether `images_bytes` is Docker's exact total.
    pub images_exact: bool,
    pub volumes: usize,
    /// The volumes' total size, when the engine reports it (Docker 29 and later).
    pub volumes_bytes: Option<i64>,
}

impl Engine {
    /// Images and volumes on this engine's host: two list calls, and — when `engine_version`
    /// is 29 or later, whose answer this client reads — Docker's disk-usage call for the exact
    /// totals (it walks every volume, so older engines are not asked for an answer that would
    /// be thrown away).
    pub async fn storage(&self, engine_version: &str) -> Result<Storage> {
        let images = self
            .docker
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .map_err(EngineError::api("listing images"))?;
        let volumes = self
            .docker
            .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
            .await
            .map_err(EngineError::api("listing volumes"))?;
        let mut out = Storage {
            images: images.len(),
            images_bytes: images.iter().map(|i| i.size.max(0)).sum(),
            images_exact: false,
            volumes: volumes.volumes.map(|v| v.len()).unwrap_or(0),
            volumes_bytes: None,
        };
        let major = engine_version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(0);
        if major < 29 {
            return Ok(out);
        }
        if let Ok(df) = self
            .docker
            .df(None::<bollard::query_parameters::DataUsageOptions>)
            .await
        {
            if let Some(total) = df.image_usage.and_then(|u| u.total_size) {
                out.images_bytes = total;
                out.images_exact = true;
            }
            out.volumes_bytes = df.volume_usage.and_then(|u| u.total_size);
        }
        Ok(out)
    }

    /// What the Swarm's services reserve (`deploy.resources.reservations`, times their
    /// replicas; a global service once per ready node): `(nano CPUs, memory bytes)`. Services
    /// that reserve nothing count nothing — reservations are what Swarm itself schedules by.
    pub async fn reserved(&self, ready_nodes: usize) -> Result<(i64, i64)> {
        let by_stack = self.reserved_by_stack(ready_nodes).await?;
        Ok(by_stack
            .values()
            .fold((0, 0), |(c, m), (sc, sm)| (c + sc, m + sm)))
    }

    /// [`reserved`](Self::reserved) per stack (services without a stack label under `""`).
    /// A service that reserves nothing counts its limits instead, so a recipe that only
    /// states limits still weighs what it may take.
    pub async fn reserved_by_stack(
        &self,
        ready_nodes: usize,
    ) -> Result<std::collections::HashMap<String, (i64, i64)>> {
        let services = self
            .docker
            .list_services(None::<bollard::query_parameters::ListServicesOptions>)
            .await
            .map_err(EngineError::api("listing the Swarm's services"))?;
        let mut out: std::collections::HashMap<String, (i64, i64)> = Default::default();
        for svc in services {
            let Some(spec) = svc.spec else { continue };
            let stack = spec
                .labels
                .as_ref()
                .and_then(|l| l.get("com.docker.stack.namespace"))
                .cloned()
                .unwrap_or_default();
            let copies = match spec.mode.as_ref() {
                Some(m) if m.global.is_some() => ready_nodes as i64,
                Some(m) => m.replicated.as_ref().and_then(|r| r.replicas).unwrap_or(1),
                None => 1,
            };
            let res = spec
                .task_template
                .and_then(|t| t.resources)
                .unwrap_or_default();
            let r = res.reservations.unwrap_or_default();
            let l = res.limits.unwrap_or_default();
            let cpu = r.nano_cpus.filter(|c| *c > 0).or(l.nano_cpus).unwrap_or(0);
            let mem = r
                .memory_bytes
                .filter(|m| *m > 0)
                .or(l.memory_bytes)
                .unwrap_or(0);
            let e = out.entry(stack).or_default();
            e.0 += cpu * copies;
            e.1 += mem * copies;
        }
        Ok(out)
    }

    /// Bytes used by each stack's volumes (Docker's disk-usage call, which walks every
    /// volume: slow on big hosts, so only asked for when a cost key needs it).
    pub async fn volume_bytes_by_stack(&self) -> Result<std::collections::HashMap<String, i64>> {
        let df = self
            .docker
            .df(None::<bollard::query_parameters::DataUsageOptions>)
            .await
            .map_err(EngineError::api("reading the engine's disk usage"))?;
        // Docker 29's answer lists each volume (`Labels`, `UsageData.Size`) under its usage.
        let mut out: std::collections::HashMap<String, i64> = Default::default();
        for v in df.volume_usage.and_then(|u| u.items).unwrap_or_default() {
            let stack = v
                .pointer("/Labels/com.docker.stack.namespace")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_string();
            let size = v
                .pointer("/UsageData/Size")
                .and_then(|s| s.as_i64())
                .unwrap_or(0)
                .max(0);
            *out.entry(stack).or_default() += size;
        }
        Ok(out)
    }

    /// The Swarm's nodes (one call).
    pub async fn nodes(&self) -> Result<Vec<NodeRow>> {
        let nodes = self
            .docker
            .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
            .await
            .map_err(EngineError::api("listing the Swarm's nodes"))?;
        let mut out: Vec<NodeRow> = nodes
            .into_iter()
            .map(|n| {
                let d = n.description.unwrap_or_default();
                let spec = n.spec.unwrap_or_default();
                let res = d.resources.unwrap_or_default();
                let platform = d.platform.unwrap_or_default();
                let engine = d.engine.clone().unwrap_or_default();
                NodeRow {
                    id: n.id.unwrap_or_default(),
                    os: platform.os.unwrap_or_default(),
                    arch: platform.architecture.unwrap_or_default(),
                    addr: n
                        .status
                        .as_ref()
                        .and_then(|s| s.addr.clone())
                        .unwrap_or_default(),
                    labels: spec
                        .labels
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    engine_labels: engine.labels.unwrap_or_default().into_iter().collect(),
                    hostname: d.hostname.unwrap_or_default(),
                    role: spec.role.map(|r| r.to_string()).unwrap_or_default(),
                    state: n
                        .status
                        .and_then(|s| s.state)
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    availability: spec.availability.map(|a| a.to_string()).unwrap_or_default(),
                    engine_version: engine.engine_version.unwrap_or_default(),
                    nano_cpus: res.nano_cpus.unwrap_or(0),
                    memory_bytes: res.memory_bytes.unwrap_or(0),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.role, &a.hostname).cmp(&(&b.role, &b.hostname)));
        Ok(out)
    }

    /// Every task of a stack's services, newest first within each service.
    pub async fn stack_tasks(&self, stack: &str) -> Result<Vec<TaskRow>> {
        let services = self.stack_services(stack).await?;
        let names: HashMap<String, (String, Option<&str>)> = services
            .iter()
            .map(|s| {
                (
                    s.id.clone().unwrap_or_default(),
                    (
                        service_name(s).to_string(),
                        crate::converge::update_phase(s),
                    ),
                )
            })
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let filters = HashMap::from([(
            "service".to_string(),
            names.values().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        )]);
        let mut tasks = self
            .docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::default().filters(&filters).build(),
            ))
            .await
            .map_err(EngineError::api("listing tasks"))?;
        tasks.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
        let mut rows: Vec<TaskRow> = tasks
            .iter()
            .map(|t| {
                let (svc, update) = names
                    .get(t.service_id.as_deref().unwrap_or_default())
                    .cloned()
                    .unwrap_or_default();
                row(t, &svc, update)
            })
            .collect();
        let nodes = self.nodes().await?;
        for r in &mut rows {
            if let Some(n) = nodes.iter().find(|n| n.id == r.node) {
                r.node = n.hostname.clone();
                r.node_state = (n.state != "ready").then(|| n.state.clone());
            }
        }
        rows.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(rows)
    }

    /// Tasks that failed or were rejected, with their reasons. A task Swarm shut down on purpose
    /// (an update or restart replaced it) is not a failure, even if it had to be killed.
    pub async fn stack_errors(&self, stack: &str) -> Result<Vec<TaskRow>> {
        Ok(self
            .stack_tasks(stack)
            .await?
            .into_iter()
            .filter(|r| {
                r.state == TaskState::FAILED.to_string()
                    || r.state == TaskState::REJECTED.to_string()
                    || (r.state != TaskState::SHUTDOWN.to_string()
                        && (r.error.is_some() || r.exit_code.is_some()))
            })
            .collect())
    }

    /// The last healthcheck output of a container on this engine's node, if it has one.
    pub async fn last_health_output(&self, container: &str) -> Option<String> {
        self.health_output_at(container, None).await
    }

    /// The output of the last healthcheck of a container that ended by `at` (Unix time in
    /// nanoseconds; `None`: the last one): the check that turned it unhealthy, not one that ran
    /// while Swarm was already killing it.
    pub async fn health_output_at(&self, container: &str, at: Option<i64>) -> Option<String> {
        let c = self
            .docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
            .ok()?;
        let log = c.state?.health?.log?;
        let ended_by = |l: &&bollard::models::HealthcheckResult| match (at, l.end.as_deref()) {
            (Some(at), Some(end)) => {
                time::OffsetDateTime::parse(end, &time::format_description::well_known::Rfc3339)
                    .map(|t| t.unix_timestamp_nanos() <= i128::from(at))
                    .unwrap_or(true)
            }
            _ => true,
        };
        log.iter()
            .rfind(ended_by)
            .or(log.last())
            .and_then(|l| l.output.clone())
            .map(|o| o.trim().to_string())
    }

    /// The last `lines` log lines of a container on this engine's node.
    pub async fn container_logs(&self, container: &str, lines: usize) -> Vec<String> {
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(container, Some(opts));
        let mut out = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            out.extend(chunk.to_string().lines().map(str::to_string));
        }
        let skip = out.len().saturating_sub(lines);
        out.split_off(skip)
    }

    /// Volumes labelled with the stack, or named `<stack>_*`.
    pub async fn stack_volumes(&self, stack: &str) -> Result<Vec<String>> {
        let list = self
            .docker
            .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
            .await
            .map_err(EngineError::api("listing volumes"))?;
        let prefix = format!("{stack}_");
        let mut out: Vec<String> = list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| {
                v.labels.get(STACK_LABEL).is_some_and(|s| s == stack) || v.name.starts_with(&prefix)
            })
            .map(|v| v.name)
            .collect();
        out.sort();
        Ok(out)
    }
}

impl Engine {
    /// Removes a volume (fails while a container uses it).
    pub async fn remove_volume(&self, name: &str) -> Result<()> {
        self.docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
            .map_err(EngineError::api(format!("removing volume {name}")))
    }
}

impl Engine {
    /// Networks and configs that still carry the stack's label (`network X`, `config Y`).
    pub async fn stack_leftovers(&self, stack: &str) -> Result<Vec<String>> {
        let filters =
            HashMap::from([("label".to_string(), vec![format!("{STACK_LABEL}={stack}")])]);
        let mut out = Vec::new();
        let networks = self
            .docker
            .list_networks(Some(
                bollard::query_parameters::ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(EngineError::api("listing networks"))?;
        out.extend(
            networks
                .into_iter()
                .filter_map(|n| n.name)
                .map(|n| format!("network {n}")),
        );
        let configs = self
            .docker
            .list_configs(Some(
                bollard::query_parameters::ListConfigsOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(EngineError::api("listing configs"))?;
        out.extend(
            configs
                .into_iter()
                .filter_map(|c| c.spec.and_then(|s| s.name))
                .map(|n| format!("config {n}")),
        );
        Ok(out)
    }
}
