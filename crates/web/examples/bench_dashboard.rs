//! Benchmark server for the dashboard's instance list: N instances on M servers in the store
//! (co-ops, communities, owners), the engine's status stood in for (only here), an admin logged
//! in. Prints `URL <base>` and `COOKIE <cookie>` for the load generator, then serves until
//! killed. Run by `scripts/bench-dashboard`.
//!
//! `bench_dashboard [--database URL] [--instances N] [--servers M]`
//!
//! With `--abra DIR`, no stand-in: the apps are read from that `$ABRA_DIR` and their live state
//! from its servers' real engines, exactly as `cooper serve` does (`scripts/bench-scale`).

use std::collections::BTreeMap;
use std::sync::Arc;

mod common;

use cooper_engine::exec::StackStatus;
use cooper_web::live::{ServerState, Source};

struct Stub(BTreeMap<String, BTreeMap<String, StackStatus>>);

#[async_trait::async_trait]
impl Source for Stub {
    async fn stacks(&self, server: &str) -> ServerState {
        Ok(self.0.get(server).cloned().unwrap_or_default())
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let instances: usize = arg("--instances")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let servers: usize = arg("--servers")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50);
    let dir = tempfile::tempdir()?;
    let store = match arg("--database") {
        Some(url) => cooper_store::Store::open(&url).await?,
        None => {
            cooper_store::Store::open(&format!(
                "sqlite://{}",
                dir.path().join("bench.db").display()
            ))
            .await?
        }
    };
    if let Some(real) = arg("--abra") {
        let abra = cooper_recipe::abra_dir::AbraDir::new(std::path::Path::new(&real));
        let state = cooper_web::Inner::new(
            store.clone(),
            abra,
            cooper_web::Config {
                insecure_http: true,
                login_per_minute: 1000,
                ..Default::default()
            },
        );
        return serve_logged_in(store, state).await;
    }
    let abra = cooper_recipe::abra_dir::AbraDir::new(dir.path());
    let server_names: Vec<String> = (0..servers).map(|i| format!("server-{i:02}")).collect();
    let coops: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..10 {
            v.push(store.add_coop(&format!("co-op {i}")).await?.id);
        }
        v
    };
    let mut communities = Vec::new();
    for i in 0..100 {
        communities.push(
            store
                .add_community(&format!("community {i:03}"), &coops[i % coops.len()])
                .await?
                .id,
        );
    }
    for (i, s) in server_names.iter().enumerate() {
        store.set_server_owner(s, &coops[i % coops.len()]).await?;
    }
    let recipes = [
        "nextcloud",
        "wordpress",
        "gitea",
        "matrix-synapse",
        "discourse",
    ];
    let mut apps = Vec::new();
    let mut live: BTreeMap<String, BTreeMap<String, StackStatus>> = BTreeMap::new();
    for i in 0..instances {
        let domain = format!("app{i:05}.example.org");
        let server = server_names[i % servers].clone();
        let stack = domain.replace('.', "_");
        store
            .set_instance_owner(&domain, &communities[i % communities.len()])
            .await?;
        live.entry(server.clone()).or_default().insert(
            stack.clone(),
            StackStatus {
                services: 2,
                running: if i % 97 == 0 { 1 } else { 2 },
                desired: 2,
                version: Some("1.2.0+3.4".into()),
                chaos: false,
                update: None,
                ..Default::default()
            },
        );
        apps.push(cooper_web::views::AppInfo {
            domain,
            server,
            recipe: recipes[i % recipes.len()].into(),
            env_version: Some("1.2.0+3.4".into()),
            stack,
        });
    }
    let state = cooper_web::Inner::with_source(
        store.clone(),
        abra,
        cooper_web::Config {
            insecure_http: true,
            login_per_minute: 1000,
            ..Default::default()
        },
        Arc::new(Stub(live)),
    );
    state.apps.set(apps, server_names);
    serve_logged_in(store, state).await
}

/// Logs an admin in, prints where and how to reach the dashboard, and serves until killed.
async fn serve_logged_in(
    store: cooper_store::Store,
    state: cooper_web::AppState,
) -> anyhow::Result<()> {
    let hash = cooper_web::auth::hash_password("benchmark password")?;
    store
        .add_person("bench@example.org", "Bench", Some(&hash), true)
        .await?;
    let router = cooper_web::app(state.clone());

    let cookie = common::login(&router, "bench@example.org", "benchmark password").await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("URL http://{}", listener.local_addr()?);
    println!("COOKIE {cookie}");
    println!("PID {}", std::process::id());
    use std::io::Write;
    std::io::stdout().flush()?;
    cooper_web::serve(listener, state, std::future::pending()).await?;
    Ok(())
}
