//! `cooper serve`: the hosting co-op's dashboard. Server-rendered pages (askama templates,
//! compiled in), assets embedded, live parts by Server-Sent Events, every page usable without
//! JavaScript. The same `cooper-ops` library as the CLI does the work (as jobs, see [`jobs`]);
//! [`cooper_store`] keeps people, rights, jobs and the audit log.
//!
//! The server is a function: [`app`] builds the router from the route table ([`routes::table`]),
//! where every route carries its authorization rule; [`serve`] runs it on a listener.

pub mod auth;
pub mod authz;
pub mod books;
pub mod cache;
pub mod charts;
pub mod dns;
pub mod federation;
pub mod jobs;
pub mod list;
pub mod live;
pub mod notify;
pub mod oidc;
mod pages;
pub mod provisioning;
pub mod rates;
pub mod routes;
pub mod scheduler;
pub mod vault;
pub mod views;
pub mod window;
pub mod wizard;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cooper_recipe::abra_dir::AbraDir;
use cooper_store::{Store, Token};

pub use routes::{table, Rule};

/// How the dashboard runs (resolved once, in `main`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Cookies without `Secure` (plain HTTP): only allowed on a loopback address.
    pub insecure_http: bool,
    /// Workers running jobs at once.
    pub workers: usize,
    /// How long live state from an engine is shared before the next look.
    pub live_ttl: Duration,
    /// Login tries per email per minute.
    pub login_per_minute: u32,
    /// The dashboard's own address as people reach it (`https://dash.example.org`), for the
    /// links it hands out (invitations) and the OpenID redirect; when unset, it is read off
    /// the request (Host, X-Forwarded-Proto).
    pub public_url: Option<String>,
    /// OpenID Connect login, when a provider is configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// How often the scheduler looks for runs that are due (`None`: it does not run here).
    pub schedule_tick: Option<Duration>,
    /// The federation's minimum `recipe test` level for upgrades it offers (0: any release).
    pub min_level: u8,
    /// Where e-mail notifications leave (none: they wait in the outbox, and the delivery page
    /// says why).
    pub smtp: Option<notify::SmtpConfig>,
    /// How often due notifications are sent.
    pub notify_every: Duration,
    /// The image deployment tests' HTTP probes run in.
    pub probe_image: String,
    /// The DNS server address checks ask (none: the system's resolver).
    pub dns_server: Option<SocketAddr>,
    /// Servers' public addresses, where their names do not resolve to them.
    pub server_addresses: Vec<(String, std::net::IpAddr)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            insecure_http: false,
            workers: 2,
            live_ttl: Duration::from_secs(3),
            login_per_minute: 10,
            public_url: None,
            oidc: None,
            schedule_tick: Some(Duration::from_secs(30)),
            min_level: 0,
            smtp: None,
            notify_every: Duration::from_secs(5),
            probe_image: cooper_ops::test::DEFAULT_PROBE_IMAGE.to_string(),
            dns_server: None,
            server_addresses: Vec::new(),
        }
    }
}

/// Everything a request handler can reach.
pub struct Inner {
    pub store: Store,
    pub abra: AbraDir,
    pub config: Config,
    pub live: Arc<live::Live>,
    pub jobs: Arc<jobs::Jobs>,
    pub limit: Arc<auth::LoginLimit>,
    pub apps: views::AppsCache,
    pub caches: cache::Caches,
    pub list: list::ListCache,
    pub notifier: Arc<notify::Notifier>,
}

/// The shared state of the dashboard.
pub type AppState = Arc<Inner>;

impl Inner {
    /// The state with the real live source (the servers' engines).
    pub fn new(store: Store, abra: AbraDir, config: Config) -> AppState {
        let source: Arc<dyn live::Source> = Arc::new(live::Engines::new(abra.clone()));
        Inner::with_source(store, abra, config, source)
    }

    /// The state with another live source (the benchmark's stand-in).
    pub fn with_source(
        store: Store,
        abra: AbraDir,
        config: Config,
        source: Arc<dyn live::Source>,
    ) -> AppState {
        let live = Arc::new(live::Live::new(source, config.live_ttl));
        let notifier = Arc::new(notify::Notifier::new(
            store.clone(),
            config.smtp.clone(),
            config.public_url.clone(),
        ));
        Arc::new_cyclic(|me: &std::sync::Weak<Inner>| {
            let me = me.clone();
            let jobs = jobs::Jobs::new(
                store.clone(),
                abra.clone(),
                notifier.clone(),
                config.probe_image.clone(),
                Box::new(move |server| {
                    if let Some(me) = me.upgrade() {
                        me.live.forget(server);
                        me.caches.forget_latest();
                        // A provisioning adds an owner and a membership.
                        me.caches.forget_owners();
                        me.caches.forget_viewers();
                    }
                }),
            );
            Inner {
                limit: auth::LoginLimit::new(config.login_per_minute),
                apps: views::AppsCache::new(abra.clone()),
                caches: cache::Caches::default(),
                list: list::ListCache::default(),
                notifier,
                store,
                abra,
                config,
                live,
                jobs,
            }
        })
    }
}

/// What a start of `cooper serve` found and did.
#[derive(Debug)]
pub struct Started {
    /// A one-time setup token, when nobody can administer yet (printed once).
    pub setup_token: Option<String>,
    /// Jobs that were running at the last stop, now marked interrupted (cleanup ran).
    pub interrupted: usize,
    /// Records added to the index.
    pub indexed: usize,
}

/// The work of every start: interrupted jobs marked and cleaned, the record index filled, and
/// a setup token issued when there is no federation admin yet.
pub async fn start(state: &AppState) -> anyhow::Result<Started> {
    let interrupted = state.jobs.recover().await?.len();
    let mut known = std::collections::HashSet::new();
    let indexed = jobs::index_records(&state.store, &state.abra, &mut known).await;
    let setup_token = if state.store.count_admins().await? == 0 {
        state.store.expire_tokens("setup").await?;
        let token = Token {
            purpose: "setup".into(),
            email: None,
            kind: None,
            target_id: None,
            role: None,
            created_by: None,
        };
        Some(state.store.issue_token(&token, 24 * 3600 * 1000).await?)
    } else {
        None
    };
    if let Some(every) = state.config.schedule_tick {
        tokio::spawn(scheduler::run(state.clone(), every));
    }
    tokio::spawn(state.notifier.clone().run(state.config.notify_every));
    // Operations run by the CLI leave records too: index them as they appear.
    let (store, abra) = (state.store.clone(), state.abra.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            jobs::index_records(&store, &abra, &mut known).await;
        }
    });
    Ok(Started {
        setup_token,
        interrupted,
        indexed,
    })
}

/// Creates a federation admin (`cooper serve --create-admin`).
pub async fn create_admin(
    store: &Store,
    email: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<cooper_store::Person> {
    auth::check_new_password(password, email).map_err(anyhow::Error::msg)?;
    let hash = auth::hash_password(password)?;
    let p = store.add_person(email, name, Some(&hash), true).await?;
    store
        .audit(
            "cooper serve --create-admin",
            "create admin",
            None,
            None,
            "ok",
            &p.email,
        )
        .await?;
    Ok(p)
}

/// The dashboard's router (every route from [`routes::table`], with its rule enforced).
pub fn app(state: AppState) -> axum::Router {
    routes::router(state)
}

/// Serves the dashboard on `listener` until `shutdown` resolves; workers run jobs meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.jobs.start(state.config.workers);
    let router = app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Whether an address is loopback (plain HTTP is only allowed there).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}
