//! Waiting until a stack runs what was deployed, and saying truthfully when it does not.
//!
//! A service has converged when the tasks made from its *current* spec run N/N (replicated) or
//! on every node they were scheduled to (global) — Swarm only marks a task running once its
//! healthcheck passes — and its UpdateStatus is settled. It has failed when Swarm paused or
//! rolled back the update, when a task of the current spec was rejected (a missing image, a
//! missing secret), or when tasks of the current spec keep failing (a crash loop or a
//! healthcheck that never passes). A task that is still starting inside its `start_period` is
//! progress, not failure; only the timeout ends the wait then.
//!
//! When the service's own `update_config.failure_action` is `rollback`, Swarm rolls the update
//! back by itself: the failure says so (`swarm_rollback`), and the caller waits for that
//! rollback (a watch with `returning` set) instead of sending a competing update. While
//! returning, `rollback_started` is progress, `rollback_completed` with the previous spec
//! running N/N is success, and `rollback_paused` is a failure with Swarm's message.
//!
//! The loop wakes on the engine's event stream (service and container events) and re-inspects;
//! a short tick covers state changes that emit no event. A container of a watched service that
//! turns unhealthy has its healthcheck output read at once, while the container still exists,
//! so a failure can always name it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{EventMessage, Service, ServiceUpdateStatusStateEnum, Task, TaskState};
use bollard::query_parameters::{EventsOptionsBuilder, ListTasksOptionsBuilder};
use futures_util::{FutureExt, StreamExt};

use crate::apply::service_name;
use crate::{Engine, EngineError, Result};

/// How to wait.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Give up after this long (the recipe's `coop-cloud.<stack>.timeout`, default 300 s).
    pub timeout: Duration,
    /// Fail once this many tasks of the current spec have failed.
    pub max_task_failures: usize,
    /// Waiting for a way back (cooper's restore or Swarm's own rollback): a Swarm rollback in
    /// progress is progress, and a completed one is where the service should end up.
    pub returning: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            timeout: Duration::from_secs(300),
            max_task_failures: 3,
            returning: false,
        }
    }
}

/// A service's `UpdateStatus` in words for people (`app ps`, `app ls -S`); `None` when no
/// update is in flight or the last one completed. Swarm may call a rollback completed while
/// the previous spec's tasks are still starting; until they all run (the service listed with
/// its status), it is still "rolling back".
pub fn update_phase(service: &Service) -> Option<&'static str> {
    let tasks_short = service
        .service_status
        .as_ref()
        .is_some_and(|s| s.running_tasks.unwrap_or(0) < s.desired_tasks.unwrap_or(0));
    match service.update_status.as_ref()?.state.as_ref()? {
        ServiceUpdateStatusStateEnum::UPDATING => Some("updating"),
        ServiceUpdateStatusStateEnum::PAUSED => Some("update paused"),
        ServiceUpdateStatusStateEnum::ROLLBACK_STARTED => Some("rolling back"),
        ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED => Some("rollback paused"),
        ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED if tasks_short => Some("rolling back"),
        ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED => Some("rolled back"),
        ServiceUpdateStatusStateEnum::COMPLETED | ServiceUpdateStatusStateEnum::EMPTY => None,
    }
}

/// Whether Swarm has taken the service back itself (its `failure_action: rollback`, or a
/// rollback someone asked Swarm for): started, completed or paused.
pub fn swarm_rolling_back(service: &Service) -> bool {
    matches!(
        service
            .update_status
            .as_ref()
            .and_then(|u| u.state.as_ref()),
        Some(
            ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
                | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED
                | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED
        )
    )
}

/// One service's progress.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceProgress {
    pub service: String,
    pub running: usize,
    pub desired: usize,
    /// Tasks of the current spec still starting (e.g. inside their healthcheck start period).
    pub starting: usize,
    pub failed: usize,
    pub update_state: Option<String>,
    pub last_error: Option<String>,
    pub converged: bool,
}

/// Why a service failed to converge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub service: String,
    pub reason: String,
    /// The task error Swarm recorded, if any.
    pub task_error: Option<String>,
    /// A container of a failed task, for health output and logs.
    pub container_id: Option<String>,
    pub task_id: Option<String>,
    /// Swarm is rolling (or has rolled) this service back itself: the way back is Swarm's, and
    /// cooper must not send a competing update.
    pub swarm_rollback: bool,
    /// The last healthcheck output of a container of this service that turned unhealthy
    /// during the watch (read when it happened, before Swarm removed the container).
    pub health_output: Option<String>,
}

/// The end of a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Converged {
        elapsed: Duration,
    },
    Failed {
        failures: Vec<Failure>,
        elapsed: Duration,
    },
    TimedOut {
        pending: Vec<ServiceProgress>,
        elapsed: Duration,
    },
}

/// Whether a task was made from the service's current spec. Swarm copies the task template
/// into each task, but the engine adds fields to the stored template (e.g. `Runtime`), so the
/// parts that define a task are compared.
fn is_current(task: &Task, service: &Service) -> bool {
    let template = service.spec.as_ref().and_then(|s| s.task_template.as_ref());
    let (Some(t), Some(s)) = (task.spec.as_ref(), template) else {
        return false;
    };
    let key = |x: &bollard::models::TaskSpec| {
        serde_json::to_value((
            &x.container_spec,
            &x.networks,
            &x.resources,
            &x.restart_policy,
            &x.placement,
            &x.log_driver,
            &x.force_update,
        ))
        .ok()
    };
    key(t) == key(s)
}

fn state_name(s: &ServiceUpdateStatusStateEnum) -> String {
    s.to_string()
}

/// Evaluates one service from its inspection and tasks.
pub fn evaluate(
    service: &Service,
    tasks: &[Task],
    opts: &WatchOptions,
) -> (ServiceProgress, Option<Failure>) {
    let name = service_name(service).to_string();
    let current: Vec<&Task> = tasks.iter().filter(|t| is_current(t, service)).collect();
    let desired_running = |t: &&&Task| t.desired_state == Some(TaskState::RUNNING);
    let state = |t: &Task| t.status.as_ref().and_then(|s| s.state);
    let running = current
        .iter()
        .filter(desired_running)
        .filter(|t| state(t) == Some(TaskState::RUNNING))
        .count();
    let starting = current
        .iter()
        .filter(desired_running)
        .filter(|t| {
            matches!(
                state(t),
                Some(
                    TaskState::NEW
                        | TaskState::ALLOCATED
                        | TaskState::PENDING
                        | TaskState::ASSIGNED
                        | TaskState::ACCEPTED
                        | TaskState::PREPARING
                        | TaskState::READY
                        | TaskState::STARTING
                )
            )
        })
        .count();
    let mut failed_tasks: Vec<&&Task> = current
        .iter()
        .filter(|t| {
            matches!(
                state(t),
                Some(TaskState::FAILED | TaskState::REJECTED | TaskState::ORPHANED)
            ) || (state(t) == Some(TaskState::COMPLETE)
                && t.desired_state != Some(TaskState::SHUTDOWN))
        })
        .collect();
    failed_tasks.sort_by_key(|t| t.updated_at.clone());
    let last = failed_tasks.last();
    let last_error = last.and_then(|t| {
        let s = t.status.as_ref()?;
        s.err.clone().or_else(|| s.message.clone())
    });
    let mode = service.spec.as_ref().and_then(|s| s.mode.as_ref());
    let desired = match mode.and_then(|m| m.replicated.as_ref()) {
        Some(r) => r.replicas.unwrap_or(1).max(0) as usize,
        None => current
            .iter()
            .filter(|t| t.desired_state == Some(TaskState::RUNNING))
            .count()
            .max(running),
    };
    let update_state = service
        .update_status
        .as_ref()
        .and_then(|u| u.state.as_ref())
        .filter(|s| **s != ServiceUpdateStatusStateEnum::EMPTY);
    let settled = !matches!(
        update_state,
        Some(
            ServiceUpdateStatusStateEnum::UPDATING | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
        )
    );
    let old_running = tasks
        .iter()
        .filter(|t| !is_current(t, service))
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .count();
    let finished = match update_state {
        None | Some(ServiceUpdateStatusStateEnum::COMPLETED) => true,
        Some(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED) => opts.returning,
        _ => false,
    };
    let converged = running >= desired && settled && old_running == 0 && finished;
    let progress = ServiceProgress {
        service: name.clone(),
        running,
        desired,
        starting,
        failed: failed_tasks.len(),
        update_state: update_state.map(state_name),
        last_error: last_error.clone(),
        converged,
    };
    let failure = |reason: String| Failure {
        service: name.clone(),
        reason,
        task_error: last_error.clone(),
        container_id: last.and_then(|t| {
            t.status
                .as_ref()?
                .container_status
                .as_ref()?
                .container_id
                .clone()
        }),
        task_id: last.and_then(|t| t.id.clone()),
        swarm_rollback: false,
        health_output: None,
    };
    if converged {
        return (progress, None);
    }
    let message = service
        .update_status
        .as_ref()
        .and_then(|u| u.message.clone())
        .unwrap_or_default();
    match update_state {
        Some(ServiceUpdateStatusStateEnum::PAUSED) => {
            return (
                progress,
                Some(failure(format!("Swarm paused the update: {message}"))),
            )
        }
        Some(ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED) => {
            return (
                progress,
                Some(Failure {
                    swarm_rollback: true,
                    ..failure(format!("Swarm paused its rollback: {message}"))
                }),
            )
        }
        // Returning: Swarm's own rollback is the way back; wait for it to finish.
        Some(
            ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
            | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED,
        ) if opts.returning => return (progress, None),
        Some(
            ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
            | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED,
        ) => {
            // Swarm has already put the previous spec back, so the failed task is one of the
            // spec that is no longer current: the one its message names, else the newest
            // failed one.
            let named = message.rsplit(' ').next().unwrap_or_default();
            let mut gone: Vec<&Task> = tasks
                .iter()
                .filter(|t| !is_current(t, service))
                .filter(|t| {
                    t.id.as_deref() == Some(named)
                        || matches!(
                            state(t),
                            Some(TaskState::FAILED | TaskState::REJECTED | TaskState::COMPLETE)
                        )
                })
                .collect();
            gone.sort_by_key(|t| (t.id.as_deref() == Some(named), t.updated_at.clone()));
            let failed = gone.last();
            let status = failed.and_then(|t| t.status.as_ref());
            return (
                progress,
                Some(Failure {
                    swarm_rollback: true,
                    task_error: status.and_then(|s| s.err.clone().or_else(|| s.message.clone())),
                    container_id: status
                        .and_then(|s| s.container_status.as_ref())
                        .and_then(|c| c.container_id.clone()),
                    task_id: failed.and_then(|t| t.id.clone()),
                    ..failure(format!(
                        "the update failed and Swarm rolled it back: {message}"
                    ))
                }),
            );
        }
        _ => {}
    }
    if let Some(t) = failed_tasks
        .iter()
        .find(|t| state(t) == Some(TaskState::REJECTED))
    {
        let err = t
            .status
            .as_ref()
            .and_then(|s| s.err.clone())
            .unwrap_or_default();
        return (
            progress,
            Some(failure(format!("a task was rejected: {err}"))),
        );
    }
    if failed_tasks.len() >= opts.max_task_failures.max(1) {
        return (
            progress,
            Some(failure(format!(
                "{} tasks of the new spec failed",
                failed_tasks.len()
            ))),
        );
    }
    (progress, None)
}

/// A container event saying that a container of one of `names` (full service names) turned
/// unhealthy: the service and the container.
fn unhealthy_container(ev: &EventMessage, names: &[String]) -> Option<(String, String)> {
    if !ev
        .action
        .as_deref()?
        .starts_with("health_status: unhealthy")
    {
        return None;
    }
    let actor = ev.actor.as_ref()?;
    let service = actor
        .attributes
        .as_ref()?
        .get("com.docker.swarm.service.name")?;
    names
        .contains(service)
        .then(|| (service.clone(), actor.id.clone().unwrap_or_default()))
}

impl Engine {
    /// When `ev` says a container of one of `names` turned unhealthy: keeps the output of the
    /// check that did it (the last one that ended by the event's time), by service.
    async fn note_health(
        &self,
        ev: &EventMessage,
        names: &[String],
        health: &mut HashMap<String, String>,
    ) {
        let Some((service, container)) = unhealthy_container(ev, names) else {
            return;
        };
        let at = ev.time_nano.or(ev.time.map(|s| s * 1_000_000_000));
        if let Some(out) = self.health_output_at(&container, at).await {
            if !out.is_empty() {
                health.insert(service, out);
            }
        }
    }

    /// Tasks of the given services (full names), grouped by service ID.
    async fn tasks_by_service(&self, services: &[Service]) -> Result<HashMap<String, Vec<Task>>> {
        let names: Vec<String> = services
            .iter()
            .map(|s| service_name(s).to_string())
            .collect();
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let filters = HashMap::from([("service".to_string(), names)]);
        let tasks = self
            .docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::default().filters(&filters).build(),
            ))
            .await
            .map_err(EngineError::api("listing tasks"))?;
        let mut out: HashMap<String, Vec<Task>> = HashMap::new();
        for t in tasks {
            out.entry(t.service_id.clone().unwrap_or_default())
                .or_default()
                .push(t);
        }
        Ok(out)
    }

    /// One look at the given services of a stack.
    pub async fn progress(
        &self,
        stack: &str,
        names: &[String],
        opts: &WatchOptions,
    ) -> Result<Vec<(ServiceProgress, Option<Failure>)>> {
        let services: Vec<Service> = self
            .stack_services(stack)
            .await?
            .into_iter()
            .filter(|s| names.iter().any(|n| n == service_name(s)))
            .collect();
        let tasks = self.tasks_by_service(&services).await?;
        let mut out: Vec<(ServiceProgress, Option<Failure>)> = services
            .iter()
            .map(|s| {
                let id = s.id.clone().unwrap_or_default();
                evaluate(s, tasks.get(&id).map(Vec::as_slice).unwrap_or(&[]), opts)
            })
            .collect();
        for n in names {
            if !out.iter().any(|(p, _)| &p.service == n) {
                out.push((
                    ServiceProgress {
                        service: n.clone(),
                        running: 0,
                        desired: 0,
                        starting: 0,
                        failed: 0,
                        update_state: None,
                        last_error: Some("the service does not exist".into()),
                        converged: false,
                    },
                    Some(Failure {
                        service: n.clone(),
                        reason: "the service disappeared".into(),
                        task_error: None,
                        container_id: None,
                        task_id: None,
                        swarm_rollback: false,
                        health_output: None,
                    }),
                ));
            }
        }
        Ok(out)
    }

    /// Waits until the services (full names) converge, fail, or time out. `on_progress` is called
    /// whenever the picture changes.
    pub async fn watch(
        &self,
        stack: &str,
        names: &[String],
        opts: &WatchOptions,
        mut on_progress: impl FnMut(&[ServiceProgress]),
    ) -> Result<Outcome> {
        let start = Instant::now();
        let deadline = start + opts.timeout;
        let filters = HashMap::from([(
            "type".to_string(),
            vec!["service".to_string(), "container".to_string()],
        )]);
        let mut events = Box::pin(self.docker.events(Some(
            EventsOptionsBuilder::default().filters(&filters).build(),
        )));
        let mut last: Vec<ServiceProgress> = Vec::new();
        let mut events_alive = true;
        // Service name → the healthcheck output of its last container that turned unhealthy.
        let mut health: HashMap<String, String> = HashMap::new();
        loop {
            let results = self.progress(stack, names, opts).await?;
            let progress: Vec<ServiceProgress> = results.iter().map(|(p, _)| p.clone()).collect();
            if progress != last {
                on_progress(&progress);
                last = progress.clone();
            }
            let failures: Vec<Failure> = results.into_iter().filter_map(|(_, f)| f).collect();
            if !failures.is_empty() {
                // The container's health event was written to the stream before Swarm failed
                // its task and stopped the update, but this loop may not have read it yet:
                // read everything already there before saying why.
                // A task that failed its healthcheck without its output in hand yet gets up to
                // a second more for the event (bounded: only the evidence waits, not the
                // verdict).
                let unhealthy_unread = |health: &HashMap<String, String>| {
                    failures.iter().any(|f| {
                        !health.contains_key(&f.service)
                            && f.task_error
                                .as_deref()
                                .is_some_and(|e| e.contains("unhealthy"))
                    })
                };
                let drain_until = Instant::now() + Duration::from_secs(1);
                while events_alive {
                    let next = match events.next().now_or_never() {
                        Some(ev) => Some(ev),
                        None if unhealthy_unread(&health) && Instant::now() < drain_until => {
                            tokio::time::timeout(
                                drain_until.saturating_duration_since(Instant::now()),
                                events.next(),
                            )
                            .await
                            .ok()
                        }
                        None => None,
                    };
                    match next {
                        Some(Some(Ok(ev))) => self.note_health(&ev, names, &mut health).await,
                        Some(_) => events_alive = false,
                        None => break,
                    }
                }
                let failures = failures
                    .into_iter()
                    .map(|mut f| {
                        f.health_output = health.get(&f.service).cloned();
                        f
                    })
                    .collect();
                return Ok(Outcome::Failed {
                    failures,
                    elapsed: start.elapsed(),
                });
            }
            if progress.iter().all(|p| p.converged) {
                return Ok(Outcome::Converged {
                    elapsed: start.elapsed(),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Outcome::TimedOut {
                    pending: progress.into_iter().filter(|p| !p.converged).collect(),
                    elapsed: start.elapsed(),
                });
            }
            let tick = Duration::from_millis(200).min(deadline - now);
            if events_alive {
                tokio::select! {
                    ev = events.next() => match ev {
                        Some(Ok(ev)) => self.note_health(&ev, names, &mut health).await,
                        _ => events_alive = false,
                    },
                    _ = tokio::time::sleep(tick) => {}
                }
            } else {
                tokio::time::sleep(tick).await;
            }
        }
    }
}
