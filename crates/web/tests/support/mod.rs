//! Test support for the dashboard: a world of co-ops, communities, people and apps in a
//! temporary `$ABRA_DIR` and store, the router called in-process, and a client that keeps its
//! session cookie and reads the CSRF token from the pages like a browser would.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use cooper_engine::exec::StackStatus;
use cooper_store::Store;
use cooper_web::live::{ServerState, Source};
use cooper_web::{AppState, Config, Inner};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const PASSWORD: &str = "a long enough password";
pub const SECRET_VALUE: &str = "s3cr3t-value-that-must-never-show";

/// Live state without an engine: every server answers with the stacks given; `down` fails.
pub struct Fixed(pub BTreeMap<String, ServerState>);

#[async_trait::async_trait]
impl Source for Fixed {
    async fn stacks(&self, server: &str) -> ServerState {
        self.0
            .get(server)
            .cloned()
            .unwrap_or_else(|| Err("connection refused".into()))
    }
}

pub fn running(stack_version: &str) -> StackStatus {
    StackStatus {
        services: 1,
        running: 1,
        desired: 1,
        version: Some(stack_version.into()),
        chaos: false,
        update: None,
        ..Default::default()
    }
}

/// Which store the world lives in.
pub async fn store(postgres: bool) -> Option<(Option<tempfile::TempDir>, Store)> {
    if postgres {
        match cooper_store::testing::postgres().await {
            Some(s) => Some((None, s)),
            None => {
                assert!(
                    !cooper_store::testing::require_postgres(),
                    "COOPER_TEST_POSTGRES is unset: run scripts/setup-postgres and export the URL it prints"
                );
                None
            }
        }
    } else {
        let (dir, s) = cooper_store::testing::sqlite().await;
        Some((Some(dir), s))
    }
}

/// Two co-ops (A runs server `alpha`, B runs `beta`), a community on each side with one app,
/// and a person for every role.
pub struct World {
    pub abra_dir: tempfile::TempDir,
    _store_dir: Option<tempfile::TempDir>,
    pub state: AppState,
    pub store: Store,
    pub router: axum::Router,
    pub admin: String,
    pub operator_a: String,
    pub community_admin_a: String,
    pub member_a: String,
    pub treasurer_a: String,
    pub throwaway: String,
    pub coop_a: String,
    pub coop_b: String,
    pub community_a: String,
    pub community_b: String,
}

pub const OWN: &str = "a1.alpha.example.org";
pub const OTHER: &str = "b1.beta.example.org";

pub async fn world(postgres: bool) -> Option<World> {
    let (store_dir, store) = store(postgres).await?;
    let abra_dir = tempfile::tempdir().unwrap();
    for (server, domain) in [
        ("alpha", OWN),
        ("beta", OTHER),
        ("alpha", "free.alpha.example.org"),
    ] {
        let dir = abra_dir.path().join("servers").join(server);
        std::fs::create_dir_all(&dir).unwrap();
        // No engine behind these servers: a socket that is not there fails at once (an SSH
        // name would wait for DNS).
        std::fs::write(
            dir.join(".cooper-endpoint"),
            "unix:///nonexistent/cooper-test.sock\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{domain}.env")),
            format!("TYPE=demo:1.0.0+1\nDOMAIN={domain}\nSECRET_API_KEY={SECRET_VALUE}\n"),
        )
        .unwrap();
    }
    let abra = cooper_recipe::abra_dir::AbraDir::new(abra_dir.path());
    let stack = |d: &str| cooper_recipe::stack::stack_name(d);
    let source = Fixed(BTreeMap::from([
        (
            "alpha".to_string(),
            Ok(BTreeMap::from([(stack(OWN), running("1.0.0+1"))])),
        ),
        (
            "beta".to_string(),
            Ok(BTreeMap::from([(stack(OTHER), running("1.0.0+1"))])),
        ),
    ]));
    let config = Config {
        login_per_minute: 1000,
        ..Config::default()
    };
    let state = Inner::with_source(store.clone(), abra, config, Arc::new(source));
    let hash = cooper_web::auth::hash_password(PASSWORD).unwrap();
    let add = |email: &str, admin: bool| {
        let (store, hash) = (store.clone(), hash.clone());
        let email = email.to_string();
        async move {
            store
                .add_person(&email, &email, Some(&hash), admin)
                .await
                .unwrap()
                .id
        }
    };
    let admin = add("admin@example.org", true).await;
    let operator_a = add("operator@a.example.org", false).await;
    let community_admin_a = add("admin@community-a.example.org", false).await;
    let member_a = add("member@community-a.example.org", false).await;
    let treasurer_a = add("treasurer@a.example.org", false).await;
    let throwaway = add("someone@example.org", false).await;
    let coop_a = store.add_coop("Co-op A").await.unwrap().id;
    let coop_b = store.add_coop("Co-op B").await.unwrap().id;
    let community_a = store
        .add_community("Community A", &coop_a)
        .await
        .unwrap()
        .id;
    let community_b = store
        .add_community("Community B", &coop_b)
        .await
        .unwrap()
        .id;
    store.set_server_owner("alpha", &coop_a).await.unwrap();
    store.set_server_owner("beta", &coop_b).await.unwrap();
    store.set_instance_owner(OWN, &community_a).await.unwrap();
    store.set_instance_owner(OTHER, &community_b).await.unwrap();
    store
        .add_membership(&operator_a, "coop", &coop_a, "operator")
        .await
        .unwrap();
    store
        .add_membership(&treasurer_a, "coop", &coop_a, "treasurer")
        .await
        .unwrap();
    store
        .add_membership(&community_admin_a, "community", &community_a, "admin")
        .await
        .unwrap();
    store
        .add_membership(&member_a, "community", &community_a, "member")
        .await
        .unwrap();
    let router = cooper_web::app(state.clone());
    Some(World {
        abra_dir,
        _store_dir: store_dir,
        state,
        store,
        router,
        admin,
        operator_a,
        community_admin_a,
        member_a,
        treasurer_a,
        throwaway,
        coop_a,
        coop_b,
        community_a,
        community_b,
    })
}

/// A response, read whole.
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub denied: Option<String>,
    pub body: String,
    pub set_cookie: Option<String>,
}

impl Page {
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        Some(self.body[at..].split('"').next()?.to_string())
    }
}

/// A browser-like client of the in-process router.
#[derive(Clone)]
pub struct Client {
    pub router: axum::Router,
    pub cookie: Option<String>,
}

impl Client {
    pub fn new(router: &axum::Router) -> Client {
        Client {
            router: router.clone(),
            cookie: None,
        }
    }

    pub async fn send(&mut self, req: Request<Body>) -> Page {
        let mut req = req;
        if let Some(c) = &self.cookie {
            req.headers_mut().insert(header::COOKIE, c.parse().unwrap());
        }
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let location = header("location");
        let denied = header("x-cooper-denied");
        let set_cookie = header("set-cookie");
        if let Some(sc) = &set_cookie {
            let pair = sc.split(';').next().unwrap().to_string();
            if pair.ends_with('=') || sc.contains("Max-Age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(pair);
            }
        }
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            location,
            denied,
            body: String::from_utf8_lossy(&body).into_owned(),
            set_cookie,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// The session's CSRF token, read from a page as a browser's form would carry it.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/login").await;
        if let Some(t) = page.csrf() {
            return t;
        }
        self.get("/instances")
            .await
            .csrf()
            .expect("a page with a form")
    }

    /// Posts a form with the session's CSRF token.
    pub async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.csrf().await;
        let mut f = vec![("csrf", csrf.as_str())];
        f.extend_from_slice(form);
        self.post(path, &f).await
    }

    pub async fn login(&mut self, email: &str) -> Page {
        let page = self
            .submit("/login", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "login of {email}: {}",
            page.body
        );
        page
    }
}
