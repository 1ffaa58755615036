//! Reaching a server's Docker engine.
//!
//! A server is a directory name under `$ABRA_DIR/servers`. `default` is the local engine
//! (`DOCKER_HOST` when it is a `unix://` address, else `/var/run/docker.sock`). Any other name
//! is reached over SSH, as abra and Docker's own `ssh://` transport do: the system `ssh` binary
//! (so `~/.ssh/config` decides user, port, key and ProxyJump) runs `docker system dial-stdio`
//! on the server. A server file `servers/<name>/.cooper-endpoint` may name another endpoint
//! (`ssh://user@host:port` or `unix:///path`), written by `cooper server add`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;

use crate::{EngineError, Result};

/// Where an engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A local Unix socket.
    Local(PathBuf),
    /// `ssh://[user@]host[:port]`.
    Ssh(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Local(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Ssh(d) => write!(f, "ssh://{d}"),
        }
    }
}

/// The file in a server directory that records a non-default endpoint.
pub const ENDPOINT_FILE: &str = ".cooper-endpoint";

impl Endpoint {
    /// Parses `unix:///path` or `ssh://destination`.
    pub fn parse(text: &str) -> Option<Endpoint> {
        let text = text.trim();
        if let Some(p) = text.strip_prefix("unix://") {
            return Some(Endpoint::Local(PathBuf::from(p)));
        }
        text.strip_prefix("ssh://")
            .filter(|d| !d.is_empty())
            .map(|d| Endpoint::Ssh(d.to_string()))
    }

    /// The local engine's socket.
    pub fn local() -> Endpoint {
        match std::env::var("DOCKER_HOST") {
            Ok(h) if h.starts_with("unix://") => Endpoint::parse(&h).expect("unix address"),
            _ => Endpoint::Local(PathBuf::from("/var/run/docker.sock")),
        }
    }

    /// The endpoint of a server: its endpoint file, `default` → local, else SSH to its name.
    pub fn for_server(name: &str, server_dir: &Path) -> Endpoint {
        if let Some(e) = std::fs::read_to_string(server_dir.join(ENDPOINT_FILE))
            .ok()
            .and_then(|t| Endpoint::parse(&t))
        {
            return e;
        }
        if name == "default" {
            Endpoint::local()
        } else {
            Endpoint::Ssh(name.to_string())
        }
    }
}

/// The file in a server directory that says how to reach the engines of its Swarm's other
/// nodes (for helpers that must run where a volume is): one `<hostname> <endpoint>` per line,
/// `#` starts a comment. A node not listed is reached over SSH at its Swarm address.
pub const NODES_FILE: &str = ".cooper-nodes";

impl Endpoint {
    /// The endpoint of node `hostname` (Swarm address `addr`) of the server in `server_dir`:
    /// its line in [`NODES_FILE`], else `ssh://<addr>`. A line that cannot be read is an error
    /// naming the file, the line and the fix.
    pub fn for_node(server_dir: &Path, hostname: &str, addr: &str) -> Result<Endpoint> {
        let path = server_dir.join(NODES_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            for (i, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or_default().trim();
                if line.is_empty() {
                    continue;
                }
                let mut words = line.split_whitespace();
                let (Some(name), Some(endpoint), None) = (words.next(), words.next(), words.next())
                else {
                    return Err(EngineError::Invalid(format!(
                        "{}:{}: expected `<node hostname> <endpoint>` (e.g. `worker-1 \
                         ssh://root@10.0.0.12` or `worker-1 unix:///run/docker.sock`)",
                        path.display(),
                        i + 1
                    )));
                };
                if name != hostname {
                    continue;
                }
                return Endpoint::parse(endpoint).ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "{}:{}: {endpoint:?} is not an endpoint: use ssh://[user@]host[:port] or \
                         unix:///path",
                        path.display(),
                        i + 1
                    ))
                });
            }
        }
        if addr.is_empty() {
            return Err(EngineError::Invalid(format!(
                "the Swarm gives no address for node {hostname}: name its engine in {} \
                 (`{hostname} ssh://user@host`)",
                path.display()
            )));
        }
        Ok(Endpoint::Ssh(addr.to_string()))
    }
}

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    pub docker: Docker,
    pub server: String,
    pub endpoint: Endpoint,
}

/// How long one API request may take before the connection counts as broken.
const REQUEST_TIMEOUT_SECS: u64 = 120;

impl Engine {
    /// Connects, negotiates the API version and checks the engine answers.
    pub async fn connect(server: &str, endpoint: &Endpoint) -> Result<Engine> {
        let unreachable = |cause: String, hint: &str| EngineError::Unreachable {
            server: server.to_string(),
            endpoint: endpoint.to_string(),
            cause,
            hint: hint.to_string(),
        };
        let (docker, hint) = match endpoint {
            Endpoint::Local(path) => {
                let hint = "is dockerd running on this machine? (`scripts/setup-swarm` starts it; \
                            or `systemctl start docker`), and may your user use its socket?";
                if !path.exists() {
                    return Err(unreachable(
                        format!("{} does not exist", path.display()),
                        hint,
                    ));
                }
                let d = Docker::connect_with_unix(
                    &path.to_string_lossy(),
                    REQUEST_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(|e| unreachable(e.to_string(), hint))?;
                (d, hint)
            }
            Endpoint::Ssh(dest) => {
                let hint = "does `ssh <server>` log in without a prompt (Host, User, Port and \
                            IdentityFile in ~/.ssh/config, key loaded)? Is Docker installed there \
                            and may that user run `docker info`?";
                let d = Docker::connect_with_ssh(
                    &format!("ssh://{dest}"),
                    REQUEST_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                    None,
                )
                .map_err(|e| unreachable(e.to_string(), hint))?;
                (d, hint)
            }
        };
        let docker = tokio::time::timeout(Duration::from_secs(30), docker.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer within 30 s".into(), hint))?
            .map_err(|e| unreachable(crate::api_message(&e), hint))?;
        Ok(Engine {
            docker,
            server: server.to_string(),
            endpoint: endpoint.clone(),
        })
    }

    /// Checks the engine is an active Swarm manager.
    pub async fn require_manager(&self) -> Result<()> {
        let info = self
            .docker
            .info()
            .await
            .map_err(EngineError::api("reading engine info"))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm
            .local_node_state
            .map(|s| s.to_string())
            .unwrap_or_else(|| "inactive".into());
        if state != "active" || swarm.control_available != Some(true) {
            return Err(EngineError::NotSwarmManager {
                server: self.server.clone(),
                state: if state == "active" {
                    "a worker, not a manager".into()
                } else {
                    format!("swarm {state}")
                },
            });
        }
        Ok(())
    }

    /// The engine's version string, for `server ls`.
    pub async fn version(&self) -> Result<String> {
        let v = self
            .docker
            .version()
            .await
            .map_err(EngineError::api("reading engine version"))?;
        Ok(v.version.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("ssh://deploy@host.example:2222"),
            Some(Endpoint::Ssh("deploy@host.example:2222".into()))
        );
        assert_eq!(
            Endpoint::parse("unix:///run/docker.sock"),
            Some(Endpoint::Local("/run/docker.sock".into()))
        );
        assert_eq!(Endpoint::parse("tcp://x"), None);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Endpoint::for_server("swarm.example.org", dir.path()),
            Endpoint::Ssh("swarm.example.org".into())
        );
        std::fs::write(dir.path().join(ENDPOINT_FILE), "ssh://me@elsewhere\n").unwrap();
        assert_eq!(
            Endpoint::for_server("swarm.example.org", dir.path()),
            Endpoint::Ssh("me@elsewhere".into())
        );
    }

    #[test]
    fn a_node_is_reached_as_the_nodes_file_says_or_at_its_swarm_address() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Endpoint::for_node(dir.path(), "w1", "10.0.0.2").unwrap(),
            Endpoint::Ssh("10.0.0.2".into())
        );
        std::fs::write(
            dir.path().join(NODES_FILE),
            "# workers\nw1 ssh://root@w1.example.org:2222\n\nw2 unix:///run/w2.sock  # local\n",
        )
        .unwrap();
        assert_eq!(
            Endpoint::for_node(dir.path(), "w1", "10.0.0.2").unwrap(),
            Endpoint::Ssh("root@w1.example.org:2222".into())
        );
        assert_eq!(
            Endpoint::for_node(dir.path(), "w2", "").unwrap(),
            Endpoint::Local("/run/w2.sock".into())
        );
        std::fs::write(dir.path().join(NODES_FILE), "w1 ssh://a\nw2\n").unwrap();
        let e = Endpoint::for_node(dir.path(), "w3", "10.0.0.4")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(".cooper-nodes:2") && e.contains("<node hostname> <endpoint>"),
            "{e}"
        );
        std::fs::write(dir.path().join(NODES_FILE), "w1 http://a\n").unwrap();
        let e = Endpoint::for_node(dir.path(), "w1", "")
            .unwrap_err()
            .to_string();
        assert!(e.contains(".cooper-nodes:1") && e.contains("ssh://"), "{e}");
    }
}
