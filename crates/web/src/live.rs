//! Live state: what runs on each server, from one engine call per server (every stack with its
//! running/desired counts and version), shared by every viewer and kept for a few seconds. A
//! server that cannot be reached is remembered as unreachable with the reason — never read as
//! "all apps down".

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cooper_engine::exec::StackStatus;
use cooper_engine::Engine;
use cooper_recipe::abra_dir::AbraDir;
use tokio::sync::Mutex;

/// The stacks of one server, or why they could not be read.
pub type ServerState = Result<BTreeMap<String, StackStatus>, String>;

/// Where live state comes from: the engines of the servers (or, in the benchmark only, a
/// stand-in that answers without an engine).
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    async fn stacks(&self, server: &str) -> ServerState;
    /// The server's engine, for the calls a single page makes (tasks, nodes).
    async fn engine(&self, _server: &str) -> Result<Engine, String> {
        Err("no engine behind this dashboard's live state".into())
    }
}

/// The real source: the server's engine (connected once and kept).
pub struct Engines {
    abra: AbraDir,
    engines: Mutex<HashMap<String, Engine>>,
}

impl Engines {
    pub fn new(abra: AbraDir) -> Engines {
        Engines {
            abra,
            engines: Mutex::new(HashMap::new()),
        }
    }

    /// The engine of a server (connected on first use).
    async fn connected(&self, server: &str) -> Result<Engine, String> {
        if let Some(e) = self.engines.lock().await.get(server) {
            return Ok(e.clone());
        }
        let e = tokio::time::timeout(
            Duration::from_secs(10),
            cooper_ops::connect(&self.abra, server),
        )
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
        self.engines
            .lock()
            .await
            .insert(server.to_string(), e.clone());
        Ok(e)
    }
}

#[async_trait::async_trait]
impl Source for Engines {
    async fn engine(&self, server: &str) -> Result<Engine, String> {
        self.connected(server).await
    }

    async fn stacks(&self, server: &str) -> ServerState {
        let engine = self.connected(server).await?;
        match tokio::time::timeout(Duration::from_secs(10), engine.all_stacks()).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => {
                // Forget the connection: the next look connects again.
                self.engines.lock().await.remove(server);
                Err(e.to_string())
            }
            Err(_) => {
                self.engines.lock().await.remove(server);
                Err("no answer within 10 s".into())
            }
        }
    }
}

struct Entry {
    at: Instant,
    state: Arc<ServerState>,
}

/// The cache: one look per server per `ttl`, however many viewers ask at once (they wait for
/// the same look).
pub struct Live {
    source: Arc<dyn Source>,
    ttl: Duration,
    entries: std::sync::Mutex<HashMap<String, Entry>>,
    /// One lock per server, so concurrent viewers share one engine call.
    inflight: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Live {
    pub fn new(source: Arc<dyn Source>, ttl: Duration) -> Live {
        Live {
            source,
            ttl,
            entries: Default::default(),
            inflight: Default::default(),
        }
    }

    fn fresh(&self, server: &str) -> Option<Arc<ServerState>> {
        let entries = self.entries.lock().expect("live cache lock");
        entries
            .get(server)
            .filter(|e| e.at.elapsed() < self.ttl)
            .map(|e| e.state.clone())
    }

    /// The state of one server (from the cache when fresh).
    pub async fn server(&self, server: &str) -> Arc<ServerState> {
        if let Some(s) = self.fresh(server) {
            return s;
        }
        let gate = self
            .inflight
            .lock()
            .expect("live inflight lock")
            .entry(server.to_string())
            .or_default()
            .clone();
        let _turn = gate.lock().await;
        if let Some(s) = self.fresh(server) {
            return s;
        }
        let state = Arc::new(self.source.stacks(server).await);
        self.entries.lock().expect("live cache lock").insert(
            server.to_string(),
            Entry {
                at: Instant::now(),
                state: state.clone(),
            },
        );
        state
    }

    /// Several servers at once.
    pub async fn servers(&self, servers: &[String]) -> HashMap<String, Arc<ServerState>> {
        let looks = servers
            .iter()
            .map(|s| async move { (s.clone(), self.server(s).await) });
        futures_util::future::join_all(looks)
            .await
            .into_iter()
            .collect()
    }

    /// The engine of a server (kept connected by the source).
    pub async fn engine(&self, server: &str) -> Result<Engine, String> {
        self.source.engine(server).await
    }

    /// Forgets a server's state (after a job on it changed something).
    pub fn forget(&self, server: &str) {
        self.entries.lock().expect("live cache lock").remove(server);
    }
}

/// How an instance is doing, in words and a tone for the page (text always says it; colour
/// only repeats it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub text: String,
    /// `ok`, `warn`, `bad`, `unknown`.
    pub tone: &'static str,
    pub version: Option<String>,
}

/// The tone of an app's state alone (cheap: for filtering and sorting long lists).
pub fn tone(server: &ServerState, stack: &str) -> &'static str {
    match server {
        Err(_) => "unknown",
        Ok(stacks) => match stacks.get(stack) {
            None => "idle",
            Some(s) => stack_tone(s),
        },
    }
}

fn stack_tone(s: &StackStatus) -> &'static str {
    // Waiting for a node that is down is not a failure: Swarm places the tasks when it is back.
    // An update under way is not one either.
    let waiting = !s.waiting_for.is_empty() || !s.on_down_nodes.is_empty();
    if waiting || s.update.as_deref().is_some_and(|u| u != "rolled back") {
        "warn"
    } else if s.running >= s.desired {
        "ok"
    } else {
        "bad"
    }
}

/// The live state of one app's stack on its server's state.
pub fn instance_state(server: &ServerState, stack: &str) -> Shown {
    match server {
        Err(e) => Shown {
            text: format!("server unreachable: {e}"),
            tone: "unknown",
            version: None,
        },
        Ok(stacks) => match stacks.get(stack) {
            None => Shown {
                text: "not deployed".into(),
                tone: "idle",
                version: None,
            },
            Some(s) => Shown {
                text: s.describe(),
                tone: stack_tone(s),
                version: s.version.clone(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);

    #[async_trait::async_trait]
    impl Source for Counting {
        async fn stacks(&self, server: &str) -> ServerState {
            self.0.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            if server == "down" {
                Err("connection refused".into())
            } else {
                Ok(BTreeMap::new())
            }
        }
    }

    #[tokio::test]
    async fn viewers_share_one_engine_call_per_server() {
        let source = Arc::new(Counting(AtomicUsize::new(0)));
        let live = Live::new(source.clone(), Duration::from_secs(60));
        let servers: Vec<String> = vec!["a".into(), "b".into(), "down".into()];
        let (x, y) = tokio::join!(live.servers(&servers), live.servers(&servers));
        assert_eq!(x.len(), 3);
        assert_eq!(y.len(), 3);
        assert_eq!(source.0.load(Ordering::SeqCst), 3, "one call per server");
        let down = instance_state(&x["down"], "any_stack");
        assert_eq!(down.tone, "unknown");
        assert!(down.text.contains("unreachable"), "{down:?}");
        live.forget("a");
        live.server("a").await;
        assert_eq!(source.0.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_lost_node_is_named_and_not_called_a_failure() {
        let mut waiting = StackStatus {
            services: 2,
            running: 3,
            desired: 4,
            ..Default::default()
        };
        waiting.waiting_for.push("worker-2".into());
        let moved = StackStatus {
            services: 1,
            running: 2,
            desired: 2,
            on_down_nodes: vec!["worker-2".to_string()],
            ..Default::default()
        };
        let server: ServerState = Ok(BTreeMap::from([
            ("a".to_string(), waiting),
            ("b".to_string(), moved),
        ]));
        let a = instance_state(&server, "a");
        assert_eq!(a.text, "waiting for node worker-2 (down) 3/4");
        assert_eq!(a.tone, "warn");
        let b = instance_state(&server, "b");
        assert_eq!(b.text, "deployed 2/2, node worker-2 down");
        assert_eq!(b.tone, "warn");
        let gone: ServerState = Err("no answer within 10 s".into());
        assert_eq!(
            instance_state(&gone, "a").text,
            "server unreachable: no answer within 10 s"
        );
    }
}
