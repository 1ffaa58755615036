//! A Swarm of several nodes: which node may run a service (its placement constraints, as the
//! engine reads them), where tasks are, which nodes are down, and draining a node.
//!
//! Swarm stays the scheduler: cooper only reads what it decided and sets a node's availability.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bollard::models::{NodeSpecAvailabilityEnum, Task, TaskState};
use bollard::query_parameters::UpdateNodeOptionsBuilder;

use crate::inspect::NodeRow;
use crate::{Engine, EngineError, Result};

/// Whether a placement constraint (`node.role==manager`, `node.hostname!=b`,
/// `node.labels.disk==ssd`, `engine.labels.x==y`, `node.platform.os==linux`) lets a node run a
/// task. `None` when the constraint names something cooper cannot see here (the engine decides).
pub fn constraint_allows(constraint: &str, node: &NodeRow) -> Option<bool> {
    let (key, want, equal) = if let Some((k, v)) = constraint.split_once("!=") {
        (k, v, false)
    } else if let Some((k, v)) = constraint.split_once("==") {
        (k, v, true)
    } else {
        return None;
    };
    let key = key.trim();
    let want = want.trim();
    let have: Option<String> = match key {
        "node.role" => Some(node.role.clone()),
        "node.hostname" => Some(node.hostname.clone()),
        "node.id" => Some(node.id.clone()),
        "node.platform.os" => Some(node.os.clone()),
        "node.platform.arch" => Some(node.arch.clone()),
        k => match (
            k.strip_prefix("node.labels."),
            k.strip_prefix("engine.labels."),
        ) {
            (Some(label), _) => Some(node.labels.get(label).cloned().unwrap_or_default()),
            (_, Some(label)) => Some(node.engine_labels.get(label).cloned().unwrap_or_default()),
            _ => None,
        },
    };
    // The engine compares hostnames and roles without regard to case.
    let same = have.map(|h| h.eq_ignore_ascii_case(want))?;
    Some(same == equal)
}

/// The nodes that may run a service's tasks now: ready, active, and allowed by every
/// constraint cooper can read.
pub fn eligible<'a>(constraints: &[String], nodes: &'a [NodeRow]) -> Vec<&'a NodeRow> {
    nodes
        .iter()
        .filter(|n| n.state == "ready" && n.availability == "active")
        .filter(|n| {
            constraints
                .iter()
                .all(|c| constraint_allows(c, n).unwrap_or(true))
        })
        .collect()
}

/// Why no node can run a service's tasks now: the nodes its placement allows are all down,
/// drained or paused, or there are none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The allowed nodes that are not ready, with their state: `w2 (down)`.
    pub down: Vec<String>,
    /// The allowed nodes that are ready but take no new tasks: `w1 (drain)`.
    pub inactive: Vec<String>,
    /// The service's constraints (for the message when no node meets them).
    pub constraints: Vec<String>,
    /// Every node of the Swarm with its role (for the same message).
    pub nodes: Vec<String>,
}

impl Blocked {
    /// One phrase: `it can only run on w2 (down)`, or that no node meets its placement.
    pub fn describe(&self) -> String {
        let allowed: Vec<&str> = self
            .down
            .iter()
            .chain(&self.inactive)
            .map(String::as_str)
            .collect();
        if allowed.is_empty() {
            format!(
                "no node of this Swarm meets its placement ({}); the nodes: {}",
                self.constraints.join(", "),
                self.nodes.join(", ")
            )
        } else {
            format!("it can only run on {}", allowed.join(", "))
        }
    }
}

/// Whether no node can take a service's tasks now (see [`Blocked`]). `None` when one can, or
/// when a constraint is one cooper does not read for certain (platform names, engine labels
/// it cannot see, anything unknown): then the engine decides.
pub fn placement_blocked(constraints: &[String], nodes: &[NodeRow]) -> Option<Blocked> {
    if nodes.is_empty() || !eligible(constraints, nodes).is_empty() {
        return None;
    }
    let certain = |c: &String| {
        let key = c.split(['=', '!']).next().unwrap_or_default().trim();
        matches!(key, "node.role" | "node.hostname" | "node.id") || key.starts_with("node.labels.")
    };
    if !constraints.iter().all(certain)
        || nodes.iter().any(|n| {
            constraints
                .iter()
                .any(|c| constraint_allows(c, n).is_none())
        })
    {
        return None;
    }
    let allowed = nodes.iter().filter(|n| {
        constraints
            .iter()
            .all(|c| constraint_allows(c, n) == Some(true))
    });
    let (mut down, mut inactive) = (Vec::new(), Vec::new());
    for n in allowed {
        if n.state != "ready" {
            down.push(format!("{} ({})", n.hostname, n.state));
        } else {
            inactive.push(format!("{} ({})", n.hostname, n.availability));
        }
    }
    Some(Blocked {
        down,
        inactive,
        constraints: constraints.to_vec(),
        nodes: nodes
            .iter()
            .map(|n| format!("{} ({})", n.hostname, n.role))
            .collect(),
    })
}

/// After a deploy timed out: whether every service still short of tasks waits for nodes that
/// are down, and the spec before the deploy had the same placement, so that rolling back
/// would wait for the same nodes. The down nodes per service (`w2 (down)`), or `None` when a
/// way back could help. `specs` are the deployed specs, `before` the ones they replaced (by
/// full service name).
///
/// A replicated service waits when the only nodes its placement allows are down; a global one
/// when it runs on every ready node it may run on and some node it may run on is down.
pub fn held_by_down_nodes(
    pending: &[crate::converge::ServiceProgress],
    specs: &[&bollard::models::ServiceSpec],
    before: &BTreeMap<String, bollard::models::ServiceSpec>,
    nodes: &[NodeRow],
) -> Option<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    for p in pending {
        let spec = specs
            .iter()
            .find(|s| s.name.as_deref() == Some(p.service.as_str()))?;
        let constraints = crate::apply::placement_of(spec);
        if before
            .get(&p.service)
            .is_some_and(|b| crate::apply::placement_of(b) != constraints)
        {
            return None;
        }
        let global = spec.mode.as_ref().is_some_and(|m| m.global.is_some());
        let down = if global {
            let may = |n: &&NodeRow| {
                constraints
                    .iter()
                    .all(|c| constraint_allows(c, n) != Some(false))
            };
            let down: Vec<String> = nodes
                .iter()
                .filter(|n| n.state != "ready")
                .filter(may)
                .map(|n| format!("{} ({})", n.hostname, n.state))
                .collect();
            if p.running < eligible(&constraints, nodes).len() {
                return None;
            }
            down
        } else {
            placement_blocked(&constraints, nodes)?.down
        };
        if down.is_empty() {
            return None;
        }
        out.push((p.service.clone(), down));
    }
    (!out.is_empty()).then_some(out)
}

/// What a server's nodes mean for its stacks when some are not ready.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeTrouble {
    /// Host names of nodes that are not ready (`down`, `disconnected`, `unknown`).
    pub down: BTreeSet<String>,
    /// Per stack: tasks meant to run that are on a down node, or waiting for one (a service
    /// pinned to it has nowhere else to go).
    pub affected: BTreeMap<String, StackOnDown>,
}

/// A stack's tasks and the nodes that are down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackOnDown {
    /// Running tasks, not counting those on down nodes (their state is the last one known).
    pub running: u64,
    /// Down nodes this stack's tasks wait for (pending with "no suitable node", and their
    /// service's last task ran there).
    pub waiting_for: BTreeSet<String>,
    /// Down nodes holding tasks of this stack that should run.
    pub on: BTreeSet<String>,
}

/// Reads node trouble from the nodes and every task (pure; see [`Engine::node_trouble`]).
pub fn trouble_from(
    nodes: &[NodeRow],
    tasks: &[Task],
    stack_of: &HashMap<String, String>,
) -> NodeTrouble {
    let down: HashMap<&str, &str> = nodes
        .iter()
        .filter(|n| n.state != "ready")
        .map(|n| (n.id.as_str(), n.hostname.as_str()))
        .collect();
    let mut t = NodeTrouble {
        down: down.values().map(|h| h.to_string()).collect(),
        ..Default::default()
    };
    if down.is_empty() {
        return t;
    }
    let running = TaskState::RUNNING;
    // The node of each service's newest task that had a node (where a pinned service was).
    let mut last_node: HashMap<&str, (&str, Option<String>)> = HashMap::new();
    for task in tasks {
        let (Some(service), Some(node)) = (task.service_id.as_deref(), task.node_id.as_deref())
        else {
            continue;
        };
        let at = task.updated_at.clone();
        let newer = last_node
            .get(service)
            .is_none_or(|(_, seen)| at.as_deref() > seen.as_deref());
        if newer {
            last_node.insert(service, (node, at));
        }
    }
    for task in tasks {
        let Some(stack) = task.service_id.as_ref().and_then(|s| stack_of.get(s)) else {
            continue;
        };
        let entry = t.affected.entry(stack.clone()).or_default();
        let desired_running = task.desired_state == Some(running);
        let status = task.status.clone().unwrap_or_default();
        let node_down = task
            .node_id
            .as_deref()
            .and_then(|n| down.get(n))
            .map(|h| h.to_string());
        if !desired_running {
            continue;
        }
        match &node_down {
            Some(h) => {
                entry.on.insert(h.clone());
            }
            None if status.state == Some(running) => entry.running += 1,
            None => {}
        }
        let pending = matches!(status.state, Some(TaskState::PENDING));
        let no_node = status
            .err
            .as_deref()
            .is_some_and(|e| e.contains("no suitable node"));
        if pending && no_node {
            if let Some((node, _)) = task.service_id.as_deref().and_then(|s| last_node.get(s)) {
                if let Some(h) = down.get(node) {
                    entry.waiting_for.insert(h.to_string());
                }
            }
        }
    }
    t.affected
        .retain(|_, s| !s.on.is_empty() || !s.waiting_for.is_empty() || s.running > 0);
    t
}

/// Where a volume's data is, on a Swarm of several nodes (volumes are local to a node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeHome {
    /// No task of a service mounting it ever ran: it can only be where cooper is connected.
    Unknown,
    /// On this node (its ID and host name), found from `how` ("the running task of app").
    On {
        node_id: String,
        hostname: String,
        how: String,
    },
    /// Tasks of a service that writes it ran on several nodes and nothing pins the service
    /// to one: each node's volume holds part of the data.
    Split { service: String, nodes: Vec<String> },
}

/// Whether a service's placement pins it to one node (`node.hostname==…` or `node.id==…`).
pub fn pinned(constraints: &[String]) -> bool {
    constraints.iter().any(|c| {
        let c: String = c.chars().filter(|ch| !ch.is_whitespace()).collect();
        (c.starts_with("node.hostname==") || c.starts_with("node.id==")) && !c.contains("!=")
    })
}

fn task_time(t: &Task) -> String {
    t.status
        .as_ref()
        .and_then(|s| s.timestamp.clone())
        .or_else(|| t.updated_at.clone())
        .unwrap_or_default()
}

/// Where `volume` lives, from the stack's services and every task (pure; see
/// [`Engine::volume_home`]). A task counts as having held the data once it got a container.
pub fn volume_home_from(
    volume: &str,
    services: &[bollard::models::Service],
    tasks: &[Task],
    nodes: &[NodeRow],
) -> VolumeHome {
    let host = |id: &str| {
        nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.hostname.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let mut newest: Option<(String, &Task, String)> = None;
    for s in services {
        let Some(spec) = s.spec.as_ref() else {
            continue;
        };
        let template = spec.task_template.as_ref();
        let mounts_it = template
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.mounts.as_ref())
            .is_some_and(|ms| ms.iter().any(|m| m.source.as_deref() == Some(volume)));
        if !mounts_it {
            continue;
        }
        let name = spec.name.clone().unwrap_or_default();
        let constraints = template
            .and_then(|t| t.placement.as_ref())
            .and_then(|p| p.constraints.clone())
            .unwrap_or_default();
        let held: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.service_id == s.id && t.node_id.is_some())
            .filter(|t| {
                t.status
                    .as_ref()
                    .and_then(|st| st.container_status.as_ref())
                    .and_then(|c| c.container_id.as_ref())
                    .is_some()
            })
            .collect();
        let on: BTreeSet<String> = held
            .iter()
            .filter_map(|t| t.node_id.as_deref().map(&host))
            .collect();
        if on.len() > 1 && !pinned(&constraints) {
            return VolumeHome::Split {
                service: name,
                nodes: on.into_iter().collect(),
            };
        }
        for t in held {
            let running = t.status.as_ref().and_then(|st| st.state) == Some(TaskState::RUNNING);
            // A running task beats any older one; among equals, the newest.
            let key = format!("{}{}", u8::from(running), task_time(t));
            if newest.as_ref().is_none_or(|(k, _, _)| key > *k) {
                let how = if running {
                    format!("the running task of {name}")
                } else {
                    format!("the last task of {name}")
                };
                newest = Some((key, t, how));
            }
        }
    }
    match newest {
        None => VolumeHome::Unknown,
        Some((_, t, how)) => {
            let id = t.node_id.clone().unwrap_or_default();
            VolumeHome::On {
                hostname: host(&id),
                node_id: id,
                how,
            }
        }
    }
}

impl Engine {
    /// Where each of a stack's `volumes` lives (see [`VolumeHome`]), from one look at the
    /// stack's services and their tasks (the engine keeps a few old ones per slot), and the
    /// Swarm's `nodes` (as [`Engine::nodes`] lists them).
    pub async fn volume_homes(
        &self,
        stack: &str,
        volumes: &[String],
        nodes: &[NodeRow],
    ) -> Result<Vec<(String, VolumeHome)>> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{}={stack}", crate::STACK_LABEL)],
        )]);
        let (services, tasks) = tokio::join!(
            self.docker.list_services(Some(
                bollard::query_parameters::ListServicesOptionsBuilder::default()
                    .filters(&filters)
                    .build()
            )),
            self.docker
                .list_tasks(None::<bollard::query_parameters::ListTasksOptions>)
        );
        let services = services.map_err(EngineError::api("listing services"))?;
        let tasks = tasks.map_err(EngineError::api("listing tasks"))?;
        Ok(volumes
            .iter()
            .map(|v| (v.clone(), volume_home_from(v, &services, &tasks, nodes)))
            .collect())
    }

    /// The Swarm node ID of the engine cooper is connected to.
    pub async fn own_node_id(&self) -> Result<String> {
        let info = self
            .docker
            .info()
            .await
            .map_err(EngineError::api("reading the engine's info"))?;
        Ok(info.swarm.and_then(|s| s.node_id).unwrap_or_default())
    }
}

impl Engine {
    /// The node trouble of this server, or `None` when every node is ready. `services` are the
    /// stacks' services (to name each task's stack); the tasks are read only when a node is
    /// not ready.
    pub async fn node_trouble(
        &self,
        nodes: &[NodeRow],
        services: &[bollard::models::Service],
    ) -> Result<Option<NodeTrouble>> {
        if nodes.iter().all(|n| n.state == "ready") {
            return Ok(None);
        }
        let stack_of: HashMap<String, String> = services
            .iter()
            .filter_map(|s| {
                let stack = s
                    .spec
                    .as_ref()?
                    .labels
                    .as_ref()?
                    .get(crate::STACK_LABEL)?
                    .clone();
                Some((s.id.clone()?, stack))
            })
            .collect();
        let tasks = self
            .docker
            .list_tasks(None::<bollard::query_parameters::ListTasksOptions>)
            .await
            .map_err(EngineError::api("listing tasks"))?;
        Ok(Some(trouble_from(nodes, &tasks, &stack_of)))
    }

    /// Finds a node by host name or ID (the error lists the nodes there are).
    pub async fn node(&self, name: &str) -> Result<NodeRow> {
        let nodes = self.nodes().await?;
        nodes
            .iter()
            .find(|n| {
                n.hostname == name || n.id == name || (name.len() >= 6 && n.id.starts_with(name))
            })
            .cloned()
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "no node called {name:?} in this Swarm; its nodes: {}",
                    nodes
                        .iter()
                        .map(|n| n.hostname.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// Sets a node's availability (`active`, `pause`, `drain`); returns what it was.
    pub async fn set_availability(&self, node: &NodeRow, to: &str) -> Result<String> {
        let inspected = self
            .docker
            .inspect_node(&node.id)
            .await
            .map_err(EngineError::api(format!(
                "inspecting node {}",
                node.hostname
            )))?;
        let mut spec = inspected.spec.unwrap_or_default();
        let before = spec.availability.map(|a| a.to_string()).unwrap_or_default();
        spec.availability = Some(match to {
            "active" => NodeSpecAvailabilityEnum::ACTIVE,
            "pause" => NodeSpecAvailabilityEnum::PAUSE,
            "drain" => NodeSpecAvailabilityEnum::DRAIN,
            other => {
                return Err(EngineError::Invalid(format!(
                    "{other:?} is not an availability (active, pause, drain)"
                )))
            }
        });
        let version = inspected.version.and_then(|v| v.index).unwrap_or_default() as i64;
        self.docker
            .update_node(
                &node.id,
                spec,
                UpdateNodeOptionsBuilder::default().version(version).build(),
            )
            .await
            .map_err(EngineError::api(format!("updating node {}", node.hostname)))?;
        Ok(before)
    }

    /// What a drain waits for, in one look: tasks still alive on the node (whatever Swarm wants
    /// of them: a task told to stop still runs until it has stopped), and stacks whose
    /// services run fewer tasks than they want (counting only tasks meant to run, so a task
    /// being replaced is not counted twice).
    pub async fn drain_left(&self, node: &NodeRow) -> Result<(Vec<String>, Vec<String>)> {
        let (tasks, services) = tokio::join!(
            self.docker
                .list_tasks(None::<bollard::query_parameters::ListTasksOptions>),
            self.stacked_services()
        );
        let tasks = tasks.map_err(EngineError::api("listing tasks"))?;
        let services = services?;
        let names: HashMap<String, String> = services
            .iter()
            .filter_map(|s| Some((s.id.clone()?, crate::apply::service_name(s).to_string())))
            .collect();
        let state = |t: &Task| t.status.as_ref().and_then(|s| s.state);
        let alive = |t: &Task| {
            !matches!(
                state(t),
                Some(
                    TaskState::COMPLETE
                        | TaskState::SHUTDOWN
                        | TaskState::FAILED
                        | TaskState::REJECTED
                        | TaskState::REMOVE
                        | TaskState::ORPHANED
                ) | None
            )
        };
        let on_node: Vec<String> = tasks
            .iter()
            .filter(|t| t.node_id.as_deref() == Some(node.id.as_str()) && alive(t))
            .map(|t| {
                let svc = t
                    .service_id
                    .as_ref()
                    .and_then(|s| names.get(s).cloned())
                    .unwrap_or_default();
                let st = state(t).map(|s| s.to_string()).unwrap_or_default();
                format!("{svc} ({st})")
            })
            .collect();
        let mut by_stack: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for s in &services {
            let Some(stack) = s
                .spec
                .as_ref()
                .and_then(|sp| sp.labels.as_ref())
                .and_then(|l| l.get(crate::STACK_LABEL))
            else {
                continue;
            };
            let desired = s
                .service_status
                .as_ref()
                .and_then(|st| st.desired_tasks)
                .unwrap_or(0);
            let running = tasks
                .iter()
                .filter(|t| t.service_id == s.id)
                .filter(|t| t.desired_state == Some(TaskState::RUNNING))
                .filter(|t| state(t) == Some(TaskState::RUNNING))
                .count() as u64;
            let e = by_stack.entry(stack.clone()).or_default();
            e.0 += running;
            e.1 += desired;
        }
        let short = by_stack
            .into_iter()
            .filter(|(_, (r, d))| r < d)
            .map(|(stack, (r, d))| format!("{stack} {r}/{d}"))
            .collect();
        Ok((on_node, short))
    }

    /// Drains a node and waits (at most `limit`) until no task is meant to run there and every
    /// replicated service of a stack that had one there runs its replicas elsewhere. `progress`
    /// hears a line whenever what is left changes.
    pub async fn drain(
        &self,
        node: &NodeRow,
        limit: Duration,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Drained> {
        let before = self.set_availability(node, "drain").await?;
        let start = Instant::now();
        let mut said = String::new();
        loop {
            let (left, short) = self.drain_left(node).await?;
            let now = if left.is_empty() && short.is_empty() {
                String::new()
            } else {
                let mut parts = Vec::new();
                if !left.is_empty() {
                    parts.push(format!(
                        "{} task(s) still on {}: {}",
                        left.len(),
                        node.hostname,
                        left.join(", ")
                    ));
                }
                if !short.is_empty() {
                    parts.push(format!("not yet running everywhere: {}", short.join(", ")));
                }
                parts.join("; ")
            };
            if now.is_empty() {
                return Ok(Drained {
                    before,
                    seconds: start.elapsed().as_secs_f64(),
                    short: Vec::new(),
                });
            }
            if now != said {
                progress(&now);
                said = now;
            }
            if start.elapsed() > limit {
                return Ok(Drained {
                    before,
                    seconds: start.elapsed().as_secs_f64(),
                    short: vec![said],
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// How a drain ended.
#[derive(Debug, Clone)]
pub struct Drained {
    /// The node's availability before the drain.
    pub before: String,
    pub seconds: f64,
    /// What was still not moved when time ran out (empty: all moved).
    pub short: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, host: &str, role: &str, state: &str) -> NodeRow {
        NodeRow {
            id: id.into(),
            hostname: host.into(),
            role: role.into(),
            state: state.into(),
            availability: "active".into(),
            engine_version: "20.10".into(),
            nano_cpus: 0,
            memory_bytes: 0,
            os: "linux".into(),
            arch: "x86_64".into(),
            addr: String::new(),
            labels: BTreeMap::from([("disk".into(), "ssd".into())]),
            engine_labels: BTreeMap::new(),
        }
    }

    #[test]
    fn constraints_are_read_as_the_engine_reads_them() {
        let w = node("n2", "Worker-1", "worker", "ready");
        assert_eq!(constraint_allows("node.role==worker", &w), Some(true));
        assert_eq!(constraint_allows("node.role == manager", &w), Some(false));
        assert_eq!(constraint_allows("node.hostname==worker-1", &w), Some(true));
        assert_eq!(
            constraint_allows("node.hostname!=worker-1", &w),
            Some(false)
        );
        assert_eq!(constraint_allows("node.labels.disk==ssd", &w), Some(true));
        assert_eq!(constraint_allows("node.labels.zone==eu", &w), Some(false));
        assert_eq!(constraint_allows("node.labels.zone!=eu", &w), Some(true));
        assert_eq!(constraint_allows("node.platform.os==linux", &w), Some(true));
        assert_eq!(constraint_allows("node.id==n2", &w), Some(true));
        assert_eq!(constraint_allows("something.else==x", &w), None);
        assert_eq!(constraint_allows("no operator", &w), None);
    }

    #[test]
    fn a_service_with_nowhere_to_run_is_named_with_its_nodes() {
        let mut drained = node("n3", "w2", "worker", "ready");
        drained.availability = "drain".into();
        let nodes = vec![
            node("n1", "m", "manager", "ready"),
            node("n2", "w1", "worker", "ready"),
            drained,
            node("n4", "w3", "worker", "down"),
        ];
        let c = |c: &[&str]| -> Vec<String> { c.iter().map(|s| s.to_string()).collect() };
        assert_eq!(placement_blocked(&c(&[]), &nodes), None);
        assert_eq!(placement_blocked(&c(&["node.role==worker"]), &nodes), None);
        let b = placement_blocked(&c(&["node.hostname==w3"]), &nodes).unwrap();
        assert_eq!(b.down, ["w3 (down)"]);
        assert_eq!(b.describe(), "it can only run on w3 (down)");
        let b = placement_blocked(&c(&["node.role==worker", "node.hostname!=w1"]), &nodes).unwrap();
        assert_eq!(b.describe(), "it can only run on w3 (down), w2 (drain)");
        let b = placement_blocked(&c(&["node.labels.zone==eu"]), &nodes).unwrap();
        assert!(b.down.is_empty() && b.inactive.is_empty());
        assert_eq!(
            b.describe(),
            "no node of this Swarm meets its placement (node.labels.zone==eu); the nodes: \
             m (manager), w1 (worker), w2 (worker), w3 (worker)"
        );
        // Names cooper cannot be sure of are left to the engine.
        assert_eq!(
            placement_blocked(&c(&["node.platform.arch==amd64"]), &nodes),
            None
        );
        assert_eq!(placement_blocked(&c(&["engine.labels.x==y"]), &nodes), None);
        assert_eq!(placement_blocked(&c(&["node.hostname==w3"]), &[]), None);
    }

    #[test]
    fn a_timed_out_deploy_is_held_only_when_its_way_back_waits_for_the_same_node() {
        use bollard::models::{
            ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecPlacement,
        };
        let nodes = vec![
            node("n1", "m", "manager", "ready"),
            node("n2", "w1", "worker", "ready"),
            node("n3", "w2", "worker", "down"),
        ];
        let spec = |name: &str, constraint: Option<&str>, global: bool| ServiceSpec {
            name: Some(name.into()),
            mode: Some(if global {
                ServiceSpecMode {
                    global: Some(HashMap::new()),
                    ..Default::default()
                }
            } else {
                ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                    ..Default::default()
                }
            }),
            task_template: Some(TaskSpec {
                placement: Some(TaskSpecPlacement {
                    constraints: constraint.map(|c| vec![c.to_string()]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pending =
            |name: &str, running: usize, desired: usize| crate::converge::ServiceProgress {
                service: name.into(),
                running,
                desired,
                starting: desired - running,
                failed: 0,
                update_state: Some("updating".into()),
                last_error: None,
                converged: false,
            };
        let db = spec("s_db", Some("node.hostname==w2"), false);
        let agent = spec("s_agent", None, true);
        let web = spec("s_web", Some("node.role==worker"), false);
        let specs = [&db, &agent, &web];
        let before: BTreeMap<String, ServiceSpec> = [
            ("s_db".to_string(), db.clone()),
            ("s_agent".to_string(), agent.clone()),
        ]
        .into();
        // The db pinned to the down node, the agent running on both ready nodes: held.
        assert_eq!(
            held_by_down_nodes(
                &[pending("s_db", 0, 1), pending("s_agent", 2, 3)],
                &specs,
                &before,
                &nodes
            ),
            Some(vec![
                ("s_db".to_string(), vec!["w2 (down)".to_string()]),
                ("s_agent".to_string(), vec!["w2 (down)".to_string()]),
            ])
        );
        // A global service short on a ready node is not waiting for anyone.
        assert_eq!(
            held_by_down_nodes(&[pending("s_agent", 1, 3)], &specs, &before, &nodes),
            None
        );
        // A service that could run elsewhere (Swarm would reschedule it) is rolled back.
        assert_eq!(
            held_by_down_nodes(&[pending("s_web", 0, 1)], &specs, &before, &nodes),
            None
        );
        // The deploy itself moved the db to the down node: the way back helps.
        let moved: BTreeMap<String, ServiceSpec> = [(
            "s_db".to_string(),
            spec("s_db", Some("node.hostname==w1"), false),
        )]
        .into();
        assert_eq!(
            held_by_down_nodes(&[pending("s_db", 0, 1)], &specs, &moved, &nodes),
            None
        );
        // A new service pinned to the down node has no way back to wait for: held.
        assert!(
            held_by_down_nodes(&[pending("s_db", 0, 1)], &specs, &BTreeMap::new(), &nodes)
                .is_some()
        );
        // Nothing pending, or every node up: nothing to hold.
        assert_eq!(held_by_down_nodes(&[], &specs, &before, &nodes), None);
        let up = vec![
            node("n1", "m", "manager", "ready"),
            node("n3", "w2", "worker", "ready"),
        ];
        assert_eq!(
            held_by_down_nodes(&[pending("s_db", 0, 1)], &specs, &before, &up),
            None
        );
    }

    #[test]
    fn eligible_nodes_are_ready_active_and_allowed() {
        let mut drained = node("n3", "w2", "worker", "ready");
        drained.availability = "drain".into();
        let nodes = vec![
            node("n1", "m", "manager", "ready"),
            node("n2", "w1", "worker", "ready"),
            drained,
            node("n4", "w3", "worker", "down"),
        ];
        let names = |c: &[&str]| -> Vec<String> {
            let c: Vec<String> = c.iter().map(|s| s.to_string()).collect();
            eligible(&c, &nodes)
                .iter()
                .map(|n| n.hostname.clone())
                .collect()
        };
        assert_eq!(names(&[]), ["m", "w1"]);
        assert_eq!(names(&["node.role==worker"]), ["w1"]);
        assert_eq!(names(&["node.role==manager"]), ["m"]);
        assert!(names(&["node.hostname==w3"]).is_empty());
    }

    fn task(
        id: &str,
        service: &str,
        node: &str,
        desired: TaskState,
        state: TaskState,
        err: Option<&str>,
        at: &str,
    ) -> Task {
        Task {
            id: Some(id.into()),
            service_id: Some(service.into()),
            node_id: (!node.is_empty()).then(|| node.to_string()),
            desired_state: Some(desired),
            updated_at: Some(at.into()),
            status: Some(bollard::models::TaskStatus {
                state: Some(state),
                err: err.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_pinned_service_waits_for_its_node_and_a_free_one_moved() {
        use TaskState::*;
        let nodes = vec![
            node("m", "manager", "manager", "ready"),
            node("w", "worker", "worker", "down"),
        ];
        let stack_of = HashMap::from([
            ("pinned".to_string(), "db_example_org".to_string()),
            ("free".to_string(), "web_example_org".to_string()),
        ]);
        let tasks = vec![
            // The pinned service's task on the lost node was told to stop; its replacement
            // has nowhere to go.
            task(
                "p1",
                "pinned",
                "w",
                SHUTDOWN,
                RUNNING,
                None,
                "2026-01-01T00:00:01Z",
            ),
            task(
                "p2",
                "pinned",
                "",
                RUNNING,
                PENDING,
                Some("no suitable node (1 node not available for new tasks)"),
                "2026-01-01T00:00:02Z",
            ),
            // The free service moved to the manager.
            task(
                "f1",
                "free",
                "w",
                SHUTDOWN,
                RUNNING,
                None,
                "2026-01-01T00:00:01Z",
            ),
            task(
                "f2",
                "free",
                "m",
                RUNNING,
                RUNNING,
                None,
                "2026-01-01T00:00:03Z",
            ),
        ];
        let t = trouble_from(&nodes, &tasks, &stack_of);
        assert_eq!(t.down, BTreeSet::from(["worker".to_string()]));
        let db = &t.affected["db_example_org"];
        assert_eq!(db.waiting_for, BTreeSet::from(["worker".to_string()]));
        assert_eq!(db.running, 0);
        let web = &t.affected["web_example_org"];
        assert!(web.waiting_for.is_empty() && web.on.is_empty());
        assert_eq!(web.running, 1);
    }

    #[test]
    fn no_trouble_when_every_node_is_ready() {
        let nodes = vec![node("m", "manager", "manager", "ready")];
        let t = trouble_from(&nodes, &[], &HashMap::new());
        assert!(t.down.is_empty() && t.affected.is_empty());
    }

    fn with_data(
        id: &str,
        name: &str,
        volume: &str,
        constraints: &[&str],
    ) -> bollard::models::Service {
        use bollard::models::{
            Mount, ServiceSpec, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
        };
        bollard::models::Service {
            id: Some(id.into()),
            spec: Some(ServiceSpec {
                name: Some(name.into()),
                task_template: Some(TaskSpec {
                    container_spec: Some(TaskSpecContainerSpec {
                        mounts: Some(vec![Mount {
                            source: Some(volume.into()),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }),
                    placement: Some(TaskSpecPlacement {
                        constraints: Some(constraints.iter().map(|c| c.to_string()).collect()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn started(mut t: Task) -> Task {
        if let Some(st) = t.status.as_mut() {
            st.container_status = Some(bollard::models::ContainerStatus {
                container_id: Some(format!("c-{}", t.id.clone().unwrap_or_default())),
                ..Default::default()
            });
        }
        t
    }

    #[test]
    fn a_volume_is_found_where_its_service_ran_and_split_data_is_named() {
        let nodes = vec![
            node("n1", "mgr", "manager", "ready"),
            node("n2", "w1", "worker", "ready"),
            node("n3", "w2", "worker", "ready"),
        ];
        use TaskState::*;
        let pinned = [with_data(
            "s1",
            "app_db",
            "app_data",
            &["node.hostname == w2"],
        )];
        // Running on w2 (an older task there too; one that never got a container on w1).
        let tasks = vec![
            started(task(
                "t1",
                "s1",
                "n3",
                SHUTDOWN,
                SHUTDOWN,
                None,
                "2026-01-01T00:00:00Z",
            )),
            started(task(
                "t2",
                "s1",
                "n3",
                RUNNING,
                RUNNING,
                None,
                "2026-01-02T00:00:00Z",
            )),
            task(
                "t3",
                "s1",
                "n2",
                SHUTDOWN,
                REJECTED,
                Some("no such image"),
                "2026-01-03T00:00:00Z",
            ),
        ];
        assert_eq!(
            volume_home_from("app_data", &pinned, &tasks, &nodes),
            VolumeHome::On {
                node_id: "n3".into(),
                hostname: "w2".into(),
                how: "the running task of app_db".into()
            }
        );
        // Scaled to 0: its last task tells.
        let stopped = vec![started(task(
            "t2",
            "s1",
            "n3",
            SHUTDOWN,
            SHUTDOWN,
            None,
            "2026-01-02T00:00:00Z",
        ))];
        assert!(matches!(
            volume_home_from("app_data", &pinned, &stopped, &nodes),
            VolumeHome::On { hostname, how, .. } if hostname == "w2" && how == "the last task of app_db"
        ));
        // Ran on w1 and on w2 and nothing pins it: split.
        let free = [with_data(
            "s1",
            "app_db",
            "app_data",
            &["node.role==worker"],
        )];
        let moved = vec![
            started(task(
                "t1",
                "s1",
                "n2",
                SHUTDOWN,
                SHUTDOWN,
                None,
                "2026-01-01T00:00:00Z",
            )),
            started(task(
                "t2",
                "s1",
                "n3",
                RUNNING,
                RUNNING,
                None,
                "2026-01-02T00:00:00Z",
            )),
        ];
        assert_eq!(
            volume_home_from("app_data", &free, &moved, &nodes),
            VolumeHome::Split {
                service: "app_db".into(),
                nodes: vec!["w1".into(), "w2".into()]
            }
        );
        // Never ran, or another volume: unknown.
        assert_eq!(
            volume_home_from("app_data", &free, &[], &nodes),
            VolumeHome::Unknown
        );
        assert_eq!(
            volume_home_from("other", &free, &moved, &nodes),
            VolumeHome::Unknown
        );
        assert!(pinned_check());
    }

    fn pinned_check() -> bool {
        pinned(&["node.hostname==w2".into()])
            && pinned(&[" node.id == abc ".into()])
            && !pinned(&["node.hostname!=w2".into()])
            && !pinned(&["node.role==worker".into()])
    }
}
