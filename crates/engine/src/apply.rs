//! Putting a `StackPlan` onto a Swarm: checks first (external networks, secrets, configs,
//! images), then networks, configs, services; and the way back (`restore`).

use std::collections::{BTreeMap, HashMap};

use bollard::models::{Service, ServiceSpec};
use bollard::query_parameters::{
    CreateImageOptionsBuilder, InspectServiceOptions, ListConfigsOptionsBuilder,
    ListNetworksOptionsBuilder, ListSecretsOptionsBuilder, ListServicesOptionsBuilder,
    UpdateServiceOptionsBuilder,
};
use futures_util::StreamExt;

use crate::convert::StackPlan;
use crate::{api_message, Engine, EngineError, Result, STACK_LABEL};

/// Why a stack cannot be applied, found before anything changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    #[error("external network{} {} not found on the server; create {}: {}", if .0.len() == 1 { "" } else { "s" }, .0.join(", "), if .0.len() == 1 { "it" } else { "them" }, .0.iter().map(|n| format!("`docker network create -d overlay --attachable {n}`")).collect::<Vec<_>>().join(", "))]
    MissingNetworks(Vec<String>),
    #[error("secret{} not on the server: {}", if .0.len() == 1 { "" } else { "s" }, .0.join(", "))]
    MissingSecrets(Vec<String>),
    #[error("external config{} not on the server: {}", if .0.len() == 1 { "" } else { "s" }, .0.join(", "))]
    MissingConfigs(Vec<String>),
    #[error("config {name} already exists on the server with different content; configs cannot change in place, so the recipe must bump the config's version (export {key_upper}_VERSION=… in abra.sh)")]
    ConfigChanged { name: String, key_upper: String },
    #[error("image {image} is not available: {reason}")]
    Image { image: String, reason: String },
    #[error("service {service} has no node to run on: {}", .blocked.describe())]
    Placement {
        service: String,
        blocked: crate::nodes::Blocked,
    },
}

/// What ran before an apply, for putting it back.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Full service name → spec as it was.
    pub services: BTreeMap<String, ServiceSpec>,
}

/// What an apply did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub previous: Snapshot,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    pub created_networks: Vec<String>,
    pub created_configs: Vec<String>,
}

impl Applied {
    /// Every service of the stack after the apply (full names).
    pub fn services(&self) -> Vec<String> {
        let mut v: Vec<String> = self.created.iter().chain(&self.updated).cloned().collect();
        v.sort();
        v
    }
}

fn label_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{STACK_LABEL}={stack}")])])
}

impl Engine {
    /// The services of a stack, as they run now.
    pub async fn stack_services(&self, stack: &str) -> Result<Vec<Service>> {
        let opts = ListServicesOptionsBuilder::default()
            .filters(&label_filter(stack))
            .status(true)
            .build();
        let mut services = self
            .docker
            .list_services(Some(opts))
            .await
            .map_err(EngineError::api(format!("listing services of {stack}")))?;
        services.sort_by(|a, b| service_name(a).cmp(service_name(b)));
        Ok(services)
    }

    /// Secret name → ID, for the given names that exist.
    pub async fn secret_ids(&self, names: &[String]) -> Result<HashMap<String, String>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let filters = HashMap::from([("name".to_string(), names.to_vec())]);
        let list = self
            .docker
            .list_secrets(Some(
                ListSecretsOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(EngineError::api("listing secrets"))?;
        Ok(list
            .into_iter()
            .filter_map(|s| Some((s.spec?.name?, s.id?)))
            .filter(|(n, _)| names.contains(n))
            .collect())
    }

    async fn config_ids(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, (String, Option<String>)>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let filters = HashMap::from([("name".to_string(), names.to_vec())]);
        let list = self
            .docker
            .list_configs(Some(
                ListConfigsOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(EngineError::api("listing configs"))?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let spec = c.spec?;
                Some((spec.name?, (c.id?, spec.data)))
            })
            .filter(|(n, _)| names.contains(n))
            .collect())
    }

    async fn network_exists(&self, name: &str) -> Result<bool> {
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let list = self
            .docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(EngineError::api("listing networks"))?;
        Ok(list.iter().any(|n| n.name.as_deref() == Some(name)))
    }

    /// Makes sure an image is on the engine, pulling it when it is not.
    pub async fn ensure_image(
        &self,
        image: &str,
    ) -> Result<std::result::Result<(), PreflightError>> {
        match self.docker.inspect_image(image).await {
            Ok(_) => return Ok(Ok(())),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(EngineError::api(format!("inspecting image {image}"))(e)),
        }
        let opts = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut stream = self.docker.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(err) = info.error_detail.and_then(|d| d.message) {
                        return Ok(Err(PreflightError::Image {
                            image: image.to_string(),
                            reason: format!("not on the server and the pull failed: {err}"),
                        }));
                    }
                }
                Err(e) => {
                    return Ok(Err(PreflightError::Image {
                        image: image.to_string(),
                        reason: format!(
                            "not on the server and the pull failed: {}",
                            api_message(&e)
                        ),
                    }))
                }
            }
        }
        Ok(Ok(()))
    }

    /// Checks everything the plan needs that the deploy does not create. Nothing changes.
    pub async fn preflight(&self, plan: &StackPlan) -> Result<Vec<PreflightError>> {
        let mut problems = Vec::new();
        let mut missing = Vec::new();
        for n in &plan.external_networks {
            if !self.network_exists(n).await? {
                missing.push(n.clone());
            }
        }
        if !missing.is_empty() {
            problems.push(PreflightError::MissingNetworks(missing));
        }
        let found = self.secret_ids(&plan.secrets).await?;
        let missing: Vec<String> = plan
            .secrets
            .iter()
            .filter(|s| !found.contains_key(*s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            problems.push(PreflightError::MissingSecrets(missing));
        }
        let found = self.config_ids(&plan.external_configs).await?;
        let missing: Vec<String> = plan
            .external_configs
            .iter()
            .filter(|c| !found.contains_key(*c))
            .cloned()
            .collect();
        if !missing.is_empty() {
            problems.push(PreflightError::MissingConfigs(missing));
        }
        let names: Vec<String> = plan.configs.iter().map(|c| c.name.clone()).collect();
        let existing = self.config_ids(&names).await?;
        for c in &plan.configs {
            if let Some((_, Some(data))) = existing.get(&c.name) {
                if Some(data) != c.spec.data.as_ref() {
                    problems.push(PreflightError::ConfigChanged {
                        name: c.name.clone(),
                        key_upper: c.key.to_uppercase(),
                    });
                }
            }
        }
        let mut images: Vec<&str> = plan
            .services
            .values()
            .filter_map(|s| {
                s.task_template
                    .as_ref()?
                    .container_spec
                    .as_ref()?
                    .image
                    .as_deref()
            })
            .collect();
        images.sort();
        images.dedup();
        let mut here = Vec::new();
        for image in images {
            match self.ensure_image(image).await? {
                Err(p) => problems.push(p),
                Ok(()) => here.push(image),
            }
        }
        // The Swarm's nodes, once for both node checks (none when the engine will not say).
        let nodes = self.nodes().await.unwrap_or_default();
        problems.extend(self.images_for_other_nodes(plan, &here, &nodes).await?);
        problems.extend(placements(plan, &nodes));
        Ok(problems)
    }

    /// In a Swarm of several nodes, an image this manager has is not enough: every node that
    /// may run the service pulls it itself. An image no registry gives (built or loaded on the
    /// manager only) is reported for the services whose placement lets them run elsewhere.
    async fn images_for_other_nodes(
        &self,
        plan: &StackPlan,
        here: &[&str],
        nodes: &[crate::inspect::NodeRow],
    ) -> Result<Vec<PreflightError>> {
        if nodes.len() < 2 {
            return Ok(Vec::new());
        }
        let me = self
            .docker
            .info()
            .await
            .map_err(EngineError::api("reading the engine's info"))?
            .swarm
            .and_then(|s| s.node_id)
            .unwrap_or_default();
        let mut pullable: HashMap<&str, std::result::Result<(), String>> = HashMap::new();
        let mut problems = Vec::new();
        for (name, spec) in &plan.services {
            let Some(task) = spec.task_template.as_ref() else {
                continue;
            };
            let Some(image) = task
                .container_spec
                .as_ref()
                .and_then(|c| c.image.as_deref())
            else {
                continue;
            };
            if !here.contains(&image) {
                continue;
            }
            let constraints = task
                .placement
                .as_ref()
                .and_then(|p| p.constraints.clone())
                .unwrap_or_default();
            let others: Vec<&str> = crate::nodes::eligible(&constraints, nodes)
                .into_iter()
                .filter(|n| n.id != me)
                .map(|n| n.hostname.as_str())
                .collect();
            if others.is_empty() {
                continue;
            }
            if !pullable.contains_key(image) {
                let found = self
                    .docker
                    .inspect_registry_image(image, None)
                    .await
                    .map(|_| ())
                    .map_err(|e| api_message(&e));
                pullable.insert(image, found);
            }
            if let Some(Err(why)) = pullable.get(image) {
                problems.push(PreflightError::Image {
                    image: image.to_string(),
                    reason: format!(
                        "this manager has it, but no registry gives it to the other nodes ({why}); \
                         service {name} may run on {}: push the image to a registry every node \
                         reaches, or pin the service with a placement constraint (for example \
                         node.role==manager)",
                        others.join(", ")
                    ),
                });
            }
        }
        Ok(problems)
    }

    /// Applies a plan (after a clean preflight). Returns what it did and what ran before.
    pub async fn apply(&self, plan: &StackPlan) -> Result<Applied> {
        let mut applied = Applied::default();
        let current = self.stack_services(&plan.stack).await?;
        for svc in &current {
            if let Some(spec) = &svc.spec {
                applied
                    .previous
                    .services
                    .insert(service_name(svc).to_string(), as_submitted(spec.clone()));
            }
        }

        for n in &plan.networks {
            if !self.network_exists(&n.name).await? {
                self.docker
                    .create_network(n.spec.clone())
                    .await
                    .map_err(EngineError::api(format!("creating network {}", n.name)))?;
                applied.created_networks.push(n.name.clone());
            }
        }

        let names: Vec<String> = plan.configs.iter().map(|c| c.name.clone()).collect();
        let mut config_ids: HashMap<String, String> = self
            .config_ids(&names)
            .await?
            .into_iter()
            .map(|(k, (id, _))| (k, id))
            .collect();
        for c in &plan.configs {
            if !config_ids.contains_key(&c.name) {
                let id = self
                    .docker
                    .create_config(c.spec.clone())
                    .await
                    .map_err(EngineError::api(format!("creating config {}", c.name)))?
                    .id;
                config_ids.insert(c.name.clone(), id);
                applied.created_configs.push(c.name.clone());
            }
        }
        config_ids.extend(
            self.config_ids(&plan.external_configs)
                .await?
                .into_iter()
                .map(|(k, (id, _))| (k, id)),
        );
        let secret_ids = self.secret_ids(&plan.secrets).await?;
        // Secrets made by earlier cooper versions carry Docker's stack label, which
        // `docker stack rm` deletes by; they get cooper's own.
        self.relabel_secrets(&plan.secrets).await?;

        for spec in plan.services.values() {
            let mut spec = spec.clone();
            resolve_refs(&mut spec, &secret_ids, &config_ids)?;
            let name = spec.name.clone().unwrap_or_default();
            if applied.previous.services.contains_key(&name) {
                self.update_service(&name, spec).await?;
                applied.updated.push(name);
            } else {
                self.docker
                    .create_service(spec, None)
                    .await
                    .map_err(EngineError::api(format!("creating service {name}")))?;
                applied.created.push(name);
            }
        }
        let wanted: Vec<String> = plan
            .services
            .values()
            .filter_map(|s| s.name.clone())
            .collect();
        for name in applied.previous.services.keys() {
            if !wanted.contains(name) {
                self.docker
                    .delete_service(name)
                    .await
                    .map_err(EngineError::api(format!("removing service {name}")))?;
                applied.removed.push(name.clone());
            }
        }
        Ok(applied)
    }

    /// Updates a service to `spec` at its current version.
    pub async fn update_service(&self, name: &str, spec: ServiceSpec) -> Result<()> {
        let current = self
            .docker
            .inspect_service(name, None::<InspectServiceOptions>)
            .await
            .map_err(EngineError::api(format!("inspecting service {name}")))?;
        let version = current.version.and_then(|v| v.index).unwrap_or_default();
        self.update_service_at(name, spec, version).await
    }

    /// Updates a service to `spec`, if it is still at `version` (the engine refuses an update
    /// "out of sequence" otherwise).
    async fn update_service_at(&self, name: &str, spec: ServiceSpec, version: u64) -> Result<()> {
        let opts = UpdateServiceOptionsBuilder::default()
            .version(version as i32)
            .build();
        self.docker
            .update_service(name, spec, opts, None)
            .await
            .map_err(EngineError::api(format!("updating service {name}")))?;
        Ok(())
    }

    /// Puts back what `applied.previous` held: previous specs for updated and removed services,
    /// and removes services the apply created. Volumes are never touched. A service that Swarm
    /// is rolling back itself (its `failure_action: rollback`) is left to Swarm: a second update
    /// on top of Swarm's rollback would compete with it.
    pub async fn restore(&self, applied: &Applied) -> Result<Restored> {
        let mut out = Restored::default();
        for name in &applied.created {
            match self.docker.delete_service(name).await {
                Ok(()) => {}
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => return Err(EngineError::api(format!("removing service {name}"))(e)),
            }
        }
        for name in &applied.updated {
            let Some(spec) = applied.previous.services.get(name) else {
                continue;
            };
            // Swarm may start its own rollback between our look and our update; the update
            // then fails as out of sequence, and the next look sees the rollback.
            let mut attempts = 0;
            loop {
                let now = self
                    .docker
                    .inspect_service(name, None::<InspectServiceOptions>)
                    .await
                    .map_err(EngineError::api(format!("inspecting service {name}")))?;
                if crate::converge::swarm_rolling_back(&now) {
                    out.left_to_swarm.push(name.clone());
                    break;
                }
                // A service whose spec the apply did not change keeps running untouched:
                // sending the read-back spec again would look like a change to Swarm and
                // restart its tasks.
                if now.spec.clone().map(as_submitted).as_ref() == Some(spec) {
                    break;
                }
                let version = now.version.and_then(|v| v.index).unwrap_or_default();
                match self.update_service_at(name, spec.clone(), version).await {
                    Ok(()) => {
                        out.sent.push(name.clone());
                        break;
                    }
                    Err(e) if attempts < 5 && is_out_of_sequence(&e) => attempts += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        for name in &applied.removed {
            if let Some(spec) = applied.previous.services.get(name) {
                self.docker
                    .create_service(spec.clone(), None)
                    .await
                    .map_err(EngineError::api(format!("re-creating service {name}")))?;
                out.sent.push(name.clone());
            }
        }
        Ok(out)
    }
}

/// What a restore did.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// Services whose previous spec was sent again (or re-created).
    pub sent: Vec<String>,
    /// Services Swarm was already rolling back itself, left alone.
    pub left_to_swarm: Vec<String>,
}

fn is_out_of_sequence(e: &EngineError) -> bool {
    e.to_string().contains("out of sequence")
}

impl Engine {
    /// Removes a stack's services, then (once their tasks are gone) its networks and configs.
    /// Volumes and secrets stay. Returns what was removed.
    pub async fn remove_stack(&self, stack: &str) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        let services = self.stack_services(stack).await?;
        for s in &services {
            let name = service_name(s).to_string();
            self.docker
                .delete_service(&name)
                .await
                .map_err(EngineError::api(format!("removing service {name}")))?;
            removed.push(format!("service {name}"));
        }
        // Wait for the tasks' containers to be gone (stopped and removed): the stack's networks
        // and volumes are in use until then.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let container_filter =
            HashMap::from([("label".to_string(), vec![format!("{STACK_LABEL}={stack}")])]);
        loop {
            let containers = self
                .docker
                .list_containers(Some(
                    bollard::query_parameters::ListContainersOptionsBuilder::default()
                        .all(true)
                        .filters(&container_filter)
                        .build(),
                ))
                .await
                .map_err(EngineError::api("listing containers"))?;
            if containers.is_empty() || std::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let networks = self
            .docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&label_filter(stack))
                    .build(),
            ))
            .await
            .map_err(EngineError::api("listing networks"))?;
        for n in networks {
            let name = n.name.unwrap_or_default();
            loop {
                match self.docker.remove_network(&name).await {
                    Ok(()) => {
                        removed.push(format!("network {name}"));
                        break;
                    }
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => break,
                    Err(e) if std::time::Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    }
                    Err(e) => return Err(EngineError::api(format!("removing network {name}"))(e)),
                }
            }
        }
        let configs = self
            .docker
            .list_configs(Some(
                ListConfigsOptionsBuilder::default()
                    .filters(&label_filter(stack))
                    .build(),
            ))
            .await
            .map_err(EngineError::api("listing configs"))?;
        for c in configs {
            let name = c.spec.and_then(|s| s.name).unwrap_or_default();
            if let Some(id) = c.id {
                if self.docker.delete_config(&id).await.is_ok() {
                    removed.push(format!("config {name}"));
                }
            }
        }
        Ok(removed)
    }
}

/// A spec as read from the engine, in the form it was submitted: the engine reports the
/// default runtime (`container`) in a service's task template although it stores none, and
/// sending it back would count as a change and restart every task of the service.
pub fn as_submitted(mut spec: ServiceSpec) -> ServiceSpec {
    if let Some(t) = spec.task_template.as_mut() {
        if t.runtime.as_deref() == Some("container") {
            t.runtime = None;
        }
    }
    spec
}

/// The container environment (`KEY=value` entries) of a service spec.
pub fn container_env(spec: Option<&ServiceSpec>) -> Vec<String> {
    spec.and_then(|sp| sp.task_template.as_ref())
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.env.clone())
        .unwrap_or_default()
}

/// The full name of a service.
pub fn service_name(s: &Service) -> &str {
    s.spec
        .as_ref()
        .and_then(|sp| sp.name.as_deref())
        .unwrap_or_default()
}

fn resolve_refs(
    spec: &mut ServiceSpec,
    secret_ids: &HashMap<String, String>,
    config_ids: &HashMap<String, String>,
) -> Result<()> {
    let Some(c) = spec
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
    else {
        return Ok(());
    };
    for s in c.secrets.iter_mut().flatten() {
        let name = s.secret_name.clone().unwrap_or_default();
        s.secret_id =
            Some(secret_ids.get(&name).cloned().ok_or_else(|| {
                EngineError::Invalid(format!("secret {name} is not on the server"))
            })?);
    }
    for cfg in c.configs.iter_mut().flatten() {
        let name = cfg.config_name.clone().unwrap_or_default();
        cfg.config_id =
            Some(config_ids.get(&name).cloned().ok_or_else(|| {
                EngineError::Invalid(format!("config {name} is not on the server"))
            })?);
    }
    Ok(())
}

/// Services no node can run now (the nodes their placement allows are down, drained or
/// paused, or there are none): deploying them would leave their tasks pending until a
/// timeout and a rollback that waits for the same node. Global services and services
/// scaled to 0 want no node.
fn placements(plan: &StackPlan, nodes: &[crate::inspect::NodeRow]) -> Vec<PreflightError> {
    plan.services
        .iter()
        .filter_map(|(name, spec)| {
            let replicas = spec.mode.as_ref()?.replicated.as_ref()?.replicas;
            if replicas == Some(0) {
                return None;
            }
            let blocked = crate::nodes::placement_blocked(&placement_of(spec), nodes)?;
            Some(PreflightError::Placement {
                service: name.clone(),
                blocked,
            })
        })
        .collect()
}

/// A service's placement constraints as submitted.
pub fn placement_of(spec: &ServiceSpec) -> Vec<String> {
    spec.task_template
        .as_ref()
        .and_then(|t| t.placement.as_ref())
        .and_then(|p| p.constraints.clone())
        .unwrap_or_default()
}
