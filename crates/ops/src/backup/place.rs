//! Where a helper runs on a Swarm of several nodes: volumes are local to a node, so backups
//! and restores run their helper and hooks on the node that holds the app's volumes.

use super::*;

/// Where a helper that reads or writes an app's volumes runs: volumes are local to a node.
pub(crate) struct Place {
    /// The engine of the node holding the volumes (the connected one when it is that node, on
    /// a single-node Swarm, or when no task ever ran).
    pub engine: Engine,
    /// That node's host name, when it is not the node cooper is connected to.
    pub elsewhere: Option<String>,
}

/// Finds the node that holds `volumes` of `stack` — from the running task of a service that
/// mounts them, else its last task (a service scaled to 0) — and connects to its engine
/// ([`cooper_engine::connect::NODES_FILE`] says how; default SSH to its Swarm address).
/// Refuses, before anything changes, when a service's data is split across nodes (its tasks
/// ran on several and nothing pins it), when the volumes are on several nodes, or when their
/// node is down.
pub(crate) async fn place_of(
    abra: &AbraDir,
    server: &str,
    engine: &Engine,
    stack: &str,
    volumes: &[String],
) -> Result<Place> {
    use cooper_engine::nodes::VolumeHome;
    let here = Place {
        engine: engine.clone(),
        elsewhere: None,
    };
    let nodes = engine.nodes().await?;
    if nodes.len() <= 1 || volumes.is_empty() {
        return Ok(here);
    }
    let homes = engine.volume_homes(stack, volumes, &nodes).await?;
    let mut on: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for (volume, home) in &homes {
        match home {
            VolumeHome::Split { service, nodes } => {
                return Err(OpsError::Refused(format!(
                    "the data of {service} is split across nodes: its tasks ran on {} and no \
                     placement pins it to one, so volume {volume} on each of them holds part of \
                     it. cooper will not treat one node's copy as all of it. Pin the service \
                     (deploy.placement.constraints: [node.hostname == <node>]), redeploy, and \
                     bring the data together on that node before backing up or restoring",
                    nodes.join(" and ")
                )))
            }
            VolumeHome::On {
                node_id,
                hostname,
                how,
            } => {
                on.entry(node_id.clone())
                    .or_insert_with(|| (hostname.clone(), Vec::new()))
                    .1
                    .push(format!("{volume} (from {how})"));
            }
            VolumeHome::Unknown => {}
        }
    }
    if on.len() > 1 {
        return Err(OpsError::Refused(format!(
            "the volumes of {stack} are on several nodes ({}): one backup is one snapshot taken \
             on one node. Pin the services with data to one node \
             (deploy.placement.constraints: [node.hostname == <node>])",
            on.values()
                .map(|(h, v)| format!("{h}: {}", v.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let Some((node_id, (hostname, found))) = on.into_iter().next() else {
        return Ok(here);
    };
    if node_id == engine.own_node_id().await? {
        return Ok(here);
    }
    let node = nodes.iter().find(|n| n.id == node_id);
    if let Some(n) = node.filter(|n| n.state != "ready") {
        return Err(OpsError::Refused(format!(
            "{} {} on node {hostname}, which is {}: nothing was changed; wait for the node to \
             come back (`cooper server nodes {server}`)",
            found.join(", "),
            if found.len() == 1 { "is" } else { "are" },
            n.state
        )));
    }
    let server_dir = abra.servers_dir().join(server);
    let endpoint = cooper_engine::connect::Endpoint::for_node(
        &server_dir,
        &hostname,
        node.map(|n| n.addr.as_str()).unwrap_or_default(),
    )?;
    let node_engine = Engine::connect(&format!("{server}/{hostname}"), &endpoint)
        .await
        .map_err(|e| {
            OpsError::Refused(format!(
                "{} {} on node {hostname}, where the helper must run, and its engine did not \
                 answer: {e}. Say how to reach it in {} (`{hostname} ssh://user@host`)",
                found.join(", "),
                if found.len() == 1 { "is" } else { "are" },
                server_dir
                    .join(cooper_engine::connect::NODES_FILE)
                    .display()
            ))
        })?;
    Ok(Place {
        engine: node_engine,
        elsewhere: Some(hostname),
    })
}

/// With a repository that is a directory on the server, a helper on another node must see the
/// same repository there (shared storage mounted at the same path), or its snapshots would go
/// to a different repository on that node's disk. Compares the repository's id as seen from the
/// connected node (making the repository there first if `create`) and from `place`'s node.
pub(crate) async fn same_repository(
    settings: &Settings,
    engine: &Engine,
    place: &Place,
    create: bool,
) -> Result<()> {
    let Some(node) = &place.elsewhere else {
        return Ok(());
    };
    if !settings.repository.starts_with('/') {
        return Ok(());
    }
    let mut here = repository_id(engine, settings).await?;
    if here.is_none() && create {
        Restic { engine, settings }
            .ok(
                "creating the repository",
                "[ -f \"$RESTIC_REPOSITORY/config\" ] || r init >&2",
                &[],
            )
            .await?;
        here = repository_id(engine, settings).await?;
    }
    let there = repository_id(&place.engine, settings).await?;
    if here.is_none() || here != there {
        return Err(OpsError::Refused(format!(
            "the restic repository {repo} is a directory, and the volumes are on node {node}: \
             there {repo} {} the repository this node has. Use a repository every node reaches \
             (sftp:, s3:, rest:) in RESTIC_REPOSITORY, or mount one shared directory at {repo} \
             on every node; nothing was changed",
            if there.is_none() {
                "is not"
            } else {
                "is another repository than"
            },
            repo = settings.repository,
        )));
    }
    Ok(())
}

/// The id of the repository as a helper on `engine`'s node sees it (`None`: there is none).
async fn repository_id(engine: &Engine, settings: &Settings) -> Result<Option<String>> {
    let restic = Restic { engine, settings };
    let (out, _, code) = restic.capture("r cat config", &[], Vec::new()).await?;
    Ok(serde_json::from_str::<serde_json::Value>(out.trim())
        .ok()
        .filter(|_| code == 0)
        .and_then(|v| v["id"].as_str().map(str::to_string)))
}
