//! Servers: `server add`, `server ls` (with reachability), `server rm`.

use std::time::Duration;

use cooper_engine::{Endpoint, Engine};
use cooper_recipe::abra_dir::AbraDir;
use serde::Serialize;

use crate::{OpsError, Result};

/// One server's state.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub name: String,
    pub endpoint: String,
    pub apps: usize,
    pub reachable: bool,
    pub engine: Option<String>,
    pub problem: Option<String>,
}

async fn check(name: &str, endpoint: &Endpoint) -> std::result::Result<String, String> {
    let engine = Engine::connect(name, endpoint)
        .await
        .map_err(|e| e.to_string())?;
    engine.require_manager().await.map_err(|e| e.to_string())?;
    engine.version().await.map_err(|e| e.to_string())
}

/// Registers a server: the local engine as `default`, or a host reached over SSH. The
/// connection is tested; nothing is left behind when it fails.
pub async fn add(
    abra: &AbraDir,
    host: Option<&str>,
    endpoint: Option<Endpoint>,
) -> Result<ServerStatus> {
    let name = host.unwrap_or("default").to_string();
    if name.contains('/') || name.starts_with('.') || name.is_empty() {
        return Err(OpsError::Refused(format!("{name:?} is not a server name")));
    }
    let dir = abra.servers_dir().join(&name);
    let endpoint = endpoint.unwrap_or_else(|| Endpoint::for_server(&name, &dir));
    let version = check(&name, &endpoint)
        .await
        .map_err(|e| OpsError::Refused(format!("server {name} was not added: {e}")))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| OpsError::Failed(format!("creating {}: {e}", dir.display())))?;
    let default_endpoint = if name == "default" {
        Endpoint::local()
    } else {
        Endpoint::Ssh(name.clone())
    };
    if endpoint != default_endpoint {
        std::fs::write(
            dir.join(cooper_engine::connect::ENDPOINT_FILE),
            format!("{endpoint}\n"),
        )
        .map_err(|e| OpsError::Failed(format!("writing the endpoint of {name}: {e}")))?;
    }
    Ok(ServerStatus {
        apps: abra.apps()?.iter().filter(|a| a.server == name).count(),
        name,
        endpoint: endpoint.to_string(),
        reachable: true,
        engine: Some(version),
        problem: None,
    })
}

/// How long one server may take to answer before it is shown as unreachable (the others are
/// not held up: every server is asked at once).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Every server and whether it answers, all checked at once, each within `timeout`.
pub async fn list(abra: &AbraDir, probe: bool, timeout: Duration) -> Result<Vec<ServerStatus>> {
    let apps = abra.apps()?;
    let servers = abra.servers()?;
    let checks = servers.iter().map(|name| {
        let endpoint = Endpoint::for_server(name, &abra.servers_dir().join(name));
        async move {
            let result = if probe {
                Some(
                    tokio::time::timeout(timeout, check(name, &endpoint))
                        .await
                        .unwrap_or_else(|_| Err(no_answer(timeout))),
                )
            } else {
                None
            };
            (name.clone(), endpoint, result)
        }
    });
    let results = futures_util::future::join_all(checks).await;
    Ok(results
        .into_iter()
        .map(|(name, endpoint, result)| ServerStatus {
            apps: apps.iter().filter(|a| a.server == name).count(),
            endpoint: endpoint.to_string(),
            reachable: matches!(result, Some(Ok(_))),
            engine: result.as_ref().and_then(|r| r.as_ref().ok().cloned()),
            problem: result.and_then(|r| r.err()),
            name,
        })
        .collect())
}

/// Forgets a server (its directory). Refuses while apps are defined on it.
pub fn remove(abra: &AbraDir, name: &str) -> Result<()> {
    let dir = abra.servers_dir().join(name);
    if !dir.is_dir() {
        return Err(OpsError::Refused(format!(
            "no server called {name}; servers: {}",
            abra.servers()?.join(", ")
        )));
    }
    let apps: Vec<String> = abra
        .apps()?
        .into_iter()
        .filter(|a| a.server == name)
        .map(|a| a.domain)
        .collect();
    if !apps.is_empty() {
        return Err(OpsError::Refused(format!(
            "server {name} still has apps: {}; remove them first (`cooper app remove <domain>`)",
            apps.join(", ")
        )));
    }
    std::fs::remove_dir_all(&dir)
        .map_err(|e| OpsError::Failed(format!("removing {}: {e}", dir.display())))
}

/// The stacks on every server that has apps, all servers queried at once, one call each.
/// A server that cannot be reached maps to its error.
pub async fn stacks_by_server(
    abra: &AbraDir,
    servers: &[String],
    timeout: Duration,
) -> Vec<(
    String,
    std::result::Result<
        std::collections::BTreeMap<String, cooper_engine::exec::StackStatus>,
        String,
    >,
)> {
    let queries = servers.iter().map(|name| async move {
        let result = async {
            let engine = crate::connect(abra, name)
                .await
                .map_err(|e| e.to_string())?;
            engine.all_stacks().await.map_err(|e| e.to_string())
        };
        let result = tokio::time::timeout(timeout, result)
            .await
            .unwrap_or_else(|_| Err(no_answer(timeout)));
        (name.clone(), result)
    });
    futures_util::future::join_all(queries).await
}

fn no_answer(timeout: Duration) -> String {
    format!("no answer within {} s", timeout.as_secs_f64())
}

/// The nodes of a server's Swarm.
pub async fn nodes(abra: &AbraDir, server: &str) -> Result<Vec<cooper_engine::inspect::NodeRow>> {
    let engine = crate::connect(abra, server).await?;
    Ok(engine.nodes().await?)
}

/// How a drain went.
#[derive(Debug, Clone, Serialize)]
pub struct DrainReport {
    pub node: String,
    /// Its availability before (to undo with `server activate`).
    pub before: String,
    pub seconds: f64,
}

/// Drains a node of a server's Swarm (the engine's availability `drain`: Swarm moves its tasks
/// to other nodes) and waits until nothing is meant to run there and every stack runs all its
/// replicas again. An error when that is not so within `limit`, naming what is left.
pub async fn drain(
    abra: &AbraDir,
    server: &str,
    node: &str,
    limit: Duration,
    reporter: &mut dyn crate::Reporter,
) -> Result<DrainReport> {
    let engine = crate::connect(abra, server).await?;
    let n = engine.node(node).await?;
    if n.role == "manager"
        && engine
            .nodes()
            .await?
            .iter()
            .filter(|m| m.role == "manager")
            .count()
            == 1
    {
        reporter.info(&format!(
            "{} is the only manager: it keeps managing the Swarm while drained, it only stops running tasks",
            n.hostname
        ));
    }
    reporter.info(&format!(
        "draining {} ({}, was {})",
        n.hostname, n.role, n.availability
    ));
    let drained = engine
        .drain(&n, limit, &mut |line| reporter.info(line))
        .await?;
    if !drained.short.is_empty() {
        return Err(OpsError::Failed(format!(
            "{} is drained, but after {:.0} s {}; Swarm keeps trying (undo with `cooper server activate {server} {}`)",
            n.hostname,
            drained.seconds,
            drained.short.join("; "),
            n.hostname
        )));
    }
    Ok(DrainReport {
        node: n.hostname,
        before: drained.before,
        seconds: drained.seconds,
    })
}

/// Makes a node take tasks again (availability `active`); returns what it was.
pub async fn activate(abra: &AbraDir, server: &str, node: &str) -> Result<String> {
    let engine = crate::connect(abra, server).await?;
    let n = engine.node(node).await?;
    Ok(engine.set_availability(&n, "active").await?)
}
