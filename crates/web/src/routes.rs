//! The route table: every route with its method, path and authorization rule. The router is
//! built from this table only, and the guard in front of every route enforces its rule before
//! the handler runs — so a route cannot exist without a rule, and the authorization matrix test
//! walks this same table.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::auth::{self, StoreSessions};
use crate::authz::{Owners, Right, Viewer};
use crate::{books, federation, pages, AppState};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, logged in or not (login, setup, invitations, assets).
    Public,
    /// Anyone logged in (lists show only what they may see).
    Person,
    /// Federation admins only (others get 404).
    Admin,
    /// Federation admins and the operators of any co-op (others get 404).
    Operator,
    /// The app in `{domain}`, at this right.
    Instance(Right),
    /// The server in `{server}`, at this right.
    Server(Right),
    /// The job in `{job}`: the right on its app.
    Job(Right),
    /// The request in `{request}`: the right on its app.
    Request(Right),
    /// The books of the co-op in `{coop}` (its id): its operators and treasurers.
    Coop(Right),
    /// The books of the community in `{community}` (its id): its people read them, its
    /// co-op's operators and treasurers keep them.
    Community(Right),
    /// The federation's practice: the people of member organisations read and take part
    /// (Read); its admins keep the registers (Execute). Others get 404.
    Federation(Right),
}

/// One route of the table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub rule: Rule,
}

fn r(
    method: &'static str,
    path: &'static str,
    rule: Rule,
    handler: MethodRouter<AppState>,
) -> (Route, MethodRouter<AppState>) {
    (Route { method, path, rule }, handler)
}

fn routes() -> Vec<(Route, MethodRouter<AppState>)> {
    use Right::{Execute, Read, Request as Ask};
    use Rule::{
        Admin, Community, Coop, Federation, Instance, Job, Operator, Person, Public, Server,
    };
    vec![
        r("GET", "/", Public, get(pages::home)),
        r("GET", "/healthz", Public, get(pages::healthz)),
        r("GET", "/assets/{file}", Public, get(pages::asset)),
        r("GET", "/login", Public, get(pages::login_form)),
        r("POST", "/login", Public, post(pages::login)),
        r("POST", "/logout", Person, post(pages::logout)),
        r("GET", "/oidc/login", Public, get(pages::oidc_login)),
        r("GET", "/request", Public, get(crate::wizard::show)),
        r("POST", "/request", Public, post(crate::wizard::answer)),
        r("GET", "/queue", Operator, get(crate::wizard::queue)),
        r(
            "GET",
            "/queue/{instance_request}",
            Operator,
            get(crate::wizard::show_request),
        ),
        r(
            "POST",
            "/queue/{instance_request}/decline",
            Operator,
            post(crate::wizard::decline),
        ),
        r(
            "POST",
            "/queue/{instance_request}/approve",
            Operator,
            post(crate::wizard::approve),
        ),
        r(
            "POST",
            "/queue/{instance_request}/write",
            Operator,
            post(crate::wizard::write),
        ),
        r(
            "POST",
            "/queue/{instance_request}/invite",
            Operator,
            post(crate::wizard::reinvite),
        ),
        r("GET", "/oidc/callback", Public, get(pages::oidc_callback)),
        r("GET", "/setup", Public, get(pages::setup_form)),
        r("POST", "/setup", Public, post(pages::setup)),
        r("GET", "/invite/{token}", Public, get(pages::invite_form)),
        r(
            "POST",
            "/invite/{token}",
            Public,
            post(pages::accept_invite),
        ),
        r("GET", "/instances", Person, get(pages::instances)),
        r(
            "GET",
            "/instances/{domain}",
            Instance(Read),
            get(pages::instance),
        ),
        r(
            "GET",
            "/instances/{domain}/confirm",
            Instance(Execute),
            get(pages::confirm),
        ),
        r(
            "POST",
            "/instances/{domain}/jobs",
            Instance(Execute),
            post(pages::start_job),
        ),
        r(
            "POST",
            "/instances/{domain}/schedules",
            Instance(Execute),
            post(pages::change_schedules),
        ),
        r("GET", "/overdue", Person, get(pages::overdue)),
        r(
            "POST",
            "/instances/{domain}/requests",
            Instance(Ask),
            post(pages::make_request),
        ),
        r(
            "POST",
            "/instances/{domain}/consent",
            Instance(Ask),
            post(pages::consent),
        ),
        r(
            "GET",
            "/instances/{domain}/export",
            Instance(Ask),
            get(pages::export),
        ),
        r(
            "GET",
            "/instances/{domain}/credentials",
            Instance(Ask),
            get(crate::wizard::credentials),
        ),
        r(
            "POST",
            "/instances/{domain}/credentials",
            Instance(Ask),
            post(crate::wizard::reveal_credentials),
        ),
        r(
            "GET",
            "/instances/{domain}/status.svg",
            Instance(Read),
            get(pages::status_svg),
        ),
        r("GET", "/jobs/{job}", Job(Read), get(pages::job)),
        r(
            "GET",
            "/jobs/{job}/events",
            Job(Read),
            get(pages::job_events),
        ),
        r(
            "POST",
            "/jobs/{job}/cancel",
            Job(Execute),
            post(pages::cancel_job),
        ),
        r(
            "POST",
            "/requests/{request}/approve",
            Rule::Request(Execute),
            post(pages::approve),
        ),
        r(
            "POST",
            "/requests/{request}/decline",
            Rule::Request(Execute),
            post(pages::decline),
        ),
        r("GET", "/servers", Person, get(pages::servers)),
        r(
            "GET",
            "/servers/{server}",
            Server(Execute),
            get(pages::server),
        ),
        r("GET", "/catalogue", Person, get(pages::catalogue)),
        r("GET", "/audit", Person, get(pages::audit)),
        r("GET", "/people", Admin, get(pages::people)),
        r("POST", "/people/invite", Admin, post(pages::invite)),
        r("POST", "/people/coops", Admin, post(pages::add_coop)),
        r(
            "POST",
            "/people/communities",
            Admin,
            post(pages::add_community),
        ),
        r("POST", "/people/owners", Admin, post(pages::set_owner)),
        r(
            "POST",
            "/people/{person}/revoke",
            Admin,
            post(pages::revoke_sessions),
        ),
        r(
            "GET",
            "/settings/notifications",
            Person,
            get(pages::notification_settings),
        ),
        r(
            "POST",
            "/settings/notifications",
            Person,
            post(pages::save_notification_settings),
        ),
        r("GET", "/books", Person, get(books::index)),
        r("GET", "/books/coops/{coop}", Coop(Read), get(books::coop)),
        r(
            "GET",
            "/books/coops/{coop}/entries",
            Coop(Read),
            get(books::entries),
        ),
        r(
            "POST",
            "/books/coops/{coop}/entries",
            Coop(Execute),
            post(books::add_entry),
        ),
        r(
            "POST",
            "/books/coops/{coop}/import",
            Coop(Execute),
            post(books::import),
        ),
        r("GET", "/books/template.csv", Person, get(books::template)),
        r(
            "POST",
            "/books/coops/{coop}/close",
            Coop(Execute),
            post(books::close),
        ),
        r(
            "GET",
            "/books/coops/{coop}/rule",
            Coop(Read),
            get(books::rule),
        ),
        r(
            "POST",
            "/books/coops/{coop}/rule",
            Coop(Execute),
            post(books::set_rule),
        ),
        r(
            "POST",
            "/books/coops/{coop}/public",
            Coop(Execute),
            post(books::set_public),
        ),
        r(
            "GET",
            "/books/coops/{coop}/settlement.json",
            Coop(Read),
            get(books::coop_json),
        ),
        r(
            "GET",
            "/books/coops/{coop}/entries.csv",
            Coop(Read),
            get(books::coop_csv),
        ),
        r(
            "GET",
            "/books/communities/{community}",
            Community(Read),
            get(books::community),
        ),
        r(
            "GET",
            "/books/communities/{community}/books.json",
            Community(Read),
            get(books::community_json),
        ),
        r(
            "GET",
            "/books/communities/{community}/books.csv",
            Community(Read),
            get(books::community_csv),
        ),
        r("GET", "/open/{coop}", Public, get(books::open)),
        r("GET", "/decisions", Public, get(federation::decisions)),
        r(
            "GET",
            "/decisions/{proposal}",
            Public,
            get(federation::decision),
        ),
        r(
            "POST",
            "/decisions/{proposal}/vote",
            Federation(Read),
            post(federation::vote),
        ),
        r(
            "GET",
            "/federation",
            Federation(Read),
            get(federation::index),
        ),
        r(
            "GET",
            "/federation/propose",
            Federation(Read),
            get(federation::propose_form),
        ),
        r(
            "POST",
            "/federation/proposals",
            Federation(Read),
            post(federation::propose),
        ),
        r(
            "GET",
            "/federation/meetings/{meeting}",
            Federation(Read),
            get(federation::meeting),
        ),
        r(
            "POST",
            "/federation/meetings/{meeting}/items",
            Federation(Read),
            post(federation::add_item),
        ),
        r(
            "POST",
            "/federation/meetings/{meeting}/minutes",
            Federation(Read),
            post(federation::minutes),
        ),
        r(
            "GET",
            "/federation/calendar.ics",
            Public,
            get(federation::public_feed),
        ),
        r(
            "GET",
            "/calendar/{calendar}",
            Public,
            get(federation::personal_feed),
        ),
        r(
            "POST",
            "/federation/calendar-link",
            Federation(Read),
            post(federation::calendar_link),
        ),
        r(
            "POST",
            "/federation/members",
            Federation(Execute),
            post(federation::add_member),
        ),
        r(
            "POST",
            "/federation/speakers",
            Federation(Execute),
            post(federation::link_person),
        ),
        r(
            "POST",
            "/federation/payments",
            Federation(Execute),
            post(federation::payment),
        ),
        r(
            "POST",
            "/federation/dues/match",
            Federation(Execute),
            post(federation::match_dues),
        ),
        r(
            "POST",
            "/federation/waivers",
            Federation(Execute),
            post(federation::waiver),
        ),
        r(
            "POST",
            "/federation/rates",
            Federation(Execute),
            post(federation::rate),
        ),
        r(
            "POST",
            "/federation/reviews",
            Federation(Execute),
            post(federation::add_review),
        ),
        r(
            "POST",
            "/federation/series",
            Federation(Execute),
            post(federation::add_series),
        ),
        r(
            "POST",
            "/polls",
            Federation(Read),
            post(federation::create_poll),
        ),
        r("GET", "/polls/{poll}", Public, get(federation::poll)),
        r(
            "POST",
            "/polls/{poll}/join",
            Public,
            post(federation::join_poll),
        ),
        r(
            "POST",
            "/polls/{poll}/paint",
            Public,
            post(federation::paint),
        ),
        r(
            "POST",
            "/polls/{poll}/choose",
            Federation(Read),
            post(federation::choose),
        ),
        r("GET", "/admin/notifications", Admin, get(pages::webhooks)),
        r("POST", "/admin/webhooks", Admin, post(pages::add_webhook)),
        r(
            "POST",
            "/admin/webhooks/{webhook}/delete",
            Admin,
            post(pages::delete_webhook),
        ),
    ]
}

/// The route table (method, path, rule), for the authorization matrix and the docs.
pub fn table() -> Vec<Route> {
    routes().into_iter().map(|(r, _)| r).collect()
}

/// What the guard found out, for the handler.
#[derive(Clone)]
pub struct Ctx {
    pub viewer: Option<Viewer>,
    pub owners: std::sync::Arc<Owners>,
    pub csrf: String,
    pub path: String,
    /// The client's address (when served with connection info).
    pub client: Option<std::net::IpAddr>,
}

impl Ctx {
    pub fn viewer(&self) -> &Viewer {
        self.viewer
            .as_ref()
            .expect("the guard lets only logged-in people reach this route")
    }
}

#[derive(Clone)]
struct Guard {
    state: AppState,
    rule: Rule,
    /// The largest body this route reads.
    max_body: usize,
}

/// The largest form accepted (forms are small; this stops a body from filling memory).
const MAX_FORM: usize = 64 * 1024;

/// Routes that take a file (a multipart form), and the largest file they take.
const UPLOADS: [&str; 1] = ["/books/coops/{coop}/import"];
const MAX_UPLOAD: usize = 16 * 1024 * 1024;

/// The CSRF field of a multipart form (a file upload).
async fn multipart_csrf(content_type: &str, bytes: &axum::body::Bytes) -> String {
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return String::new();
    };
    let body = bytes.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("csrf") {
            return field.text().await.unwrap_or_default();
        }
    }
    String::new()
}

async fn guard(
    State(g): State<Guard>,
    session: Session,
    params: Option<Path<HashMap<String, String>>>,
    req: Request,
    next: Next,
) -> Response {
    let state = &g.state;
    let params = params.map(|p| p.0).unwrap_or_default();
    let path = req.uri().path().to_string();

    // State changes carry the session's CSRF token in their form.
    let req = if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, g.max_body).await else {
            return pages::problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                if g.max_body > MAX_FORM {
                    "That file is too large (16 MiB at most): split it by date and import the parts."
                } else {
                    "That form is too large."
                },
            );
        };
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let given = if content_type.starts_with("multipart/form-data") {
            multipart_csrf(content_type, &bytes).await
        } else {
            url::form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        if given.is_empty() || !auth::csrf_ok(&session, &given).await {
            return denied(
                "csrf",
                pages::problem(
                    StatusCode::FORBIDDEN,
                    "This form has expired or did not come from this dashboard. Go back, reload the page and try again.",
                ),
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };

    // The session itself was just read from the store (a revoked one is gone); the person and
    // their memberships come from a one-second copy.
    let viewer = match session.get::<String>(auth::PERSON).await {
        Ok(Some(id)) => match state.caches.viewer(&state.store, &id).await {
            Ok(v) => v.filter(|v| !v.person.disabled),
            Err(e) => return pages::internal(e),
        },
        _ => None,
    };
    let owners = match state.caches.owners(state).await {
        Ok(o) => o,
        Err(e) => return pages::internal(e),
    };

    if g.rule != Rule::Public {
        let Some(v) = &viewer else {
            return denied(
                "login",
                if req.method() == Method::GET {
                    let next =
                        url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>();
                    Redirect::to(&format!("/login?next={next}")).into_response()
                } else {
                    pages::problem(
                        StatusCode::UNAUTHORIZED,
                        "Your session has ended. Log in again, then repeat what you did.",
                    )
                },
            );
        };
        let needed_and_had = match g.rule {
            Rule::Public | Rule::Person => None,
            Rule::Operator => Some((
                Right::Execute,
                if v.is_admin() || !v.coops.is_empty() {
                    Right::Execute
                } else {
                    Right::None
                },
            )),
            Rule::Admin => Some((
                Right::Execute,
                if v.is_admin() {
                    Right::Execute
                } else {
                    Right::None
                },
            )),
            Rule::Instance(need) => {
                let domain = params.get("domain").cloned().unwrap_or_default();
                let right = match state.apps.server_of(&domain) {
                    Some(server) => v.on_instance(&domain, &server, &owners),
                    None => Right::None,
                };
                Some((need, right))
            }
            Rule::Server(need) => {
                let server = params.get("server").cloned().unwrap_or_default();
                let right = if state.apps.has_server(&server) {
                    v.on_server(&server, &owners)
                } else {
                    Right::None
                };
                Some((need, right))
            }
            Rule::Job(need) => {
                let id = params.get("job").cloned().unwrap_or_default();
                let job = match state.store.job(&id).await {
                    Ok(j) => j,
                    Err(e) => return pages::internal(e),
                };
                let mut had =
                    instance_right(state, v, job.as_ref().map(|j| j.domain.as_str()), &owners);
                // A provisioning's app may not exist yet (or any more, after a failure): its
                // server's operators see it.
                if let Some(server) = job.as_ref().and_then(provisioned_server) {
                    had = had.max(v.on_server(&server, &owners));
                }
                Some((need, had))
            }
            Rule::Request(need) => {
                let id = params.get("request").cloned().unwrap_or_default();
                let domain = match state.store.request(&id).await {
                    Ok(r) => r.map(|r| r.domain),
                    Err(e) => return pages::internal(e),
                };
                Some((need, instance_right(state, v, domain.as_deref(), &owners)))
            }
            Rule::Coop(need) => {
                let coop = params.get("coop").cloned().unwrap_or_default();
                let right = if owners.coop_names.contains_key(&coop) {
                    v.on_coop(&coop)
                } else {
                    Right::None
                };
                Some((need, right))
            }
            Rule::Federation(need) => Some((need, v.on_federation())),
            Rule::Community(need) => {
                let community = params.get("community").cloned().unwrap_or_default();
                let right = if owners.community_names.contains_key(&community) {
                    v.on_community(&community, &owners)
                } else {
                    Right::None
                };
                Some((need, right))
            }
        };
        if let Some((need, had)) = needed_and_had {
            if had == Right::None {
                // What someone may not see does not exist for them.
                return denied("not-found", pages::not_found());
            }
            if had < need {
                return denied(
                    "forbidden",
                    pages::problem(
                        StatusCode::FORBIDDEN,
                        "Your role does not allow this here. An operator of the co-op can do it, or approve a request for it.",
                    ),
                );
            }
        }
    }

    let csrf = auth::csrf_token(&session).await;
    let mut req = req;
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    req.extensions_mut().insert(Ctx {
        viewer,
        owners,
        csrf,
        path,
        client,
    });
    next.run(req).await
}

/// Marks a response as the guard's refusal (`login`, `not-found`, `forbidden`, `csrf`), so tests
/// and logs can tell it from a handler's own answer.
fn denied(why: &'static str, mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("x-cooper-denied", HeaderValue::from_static(why));
    response
}

/// The server a provisioning job places its app on.
fn provisioned_server(job: &cooper_store::Job) -> Option<String> {
    if job.kind != "provision" {
        return None;
    }
    serde_json::from_str::<crate::jobs::Args>(&job.args)
        .ok()
        .and_then(|a| a.provision)
        .map(|p| p.server)
}

fn instance_right(state: &AppState, v: &Viewer, domain: Option<&str>, owners: &Owners) -> Right {
    match domain.and_then(|d| state.apps.server_of(d).map(|s| (d, s))) {
        Some((d, server)) => v.on_instance(d, &server, owners),
        None => Right::None,
    }
}

/// Builds the router: each route behind its guard, then sessions and security headers.
pub fn router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for (route, handler) in routes() {
        let guarded = handler.route_layer(middleware::from_fn_with_state(
            Guard {
                state: state.clone(),
                rule: route.rule,
                max_body: if UPLOADS.contains(&route.path) {
                    MAX_UPLOAD
                } else {
                    MAX_FORM
                },
            },
            guard,
        ));
        router = router.route(route.path, guarded);
    }
    let sessions = SessionManagerLayer::new(StoreSessions(state.store.clone()))
        .with_name("cooper_session")
        .with_secure(!state.config.insecure_http)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(12)));
    router
        .fallback(|| async { pages::not_found() })
        .with_state(state)
        .layer(sessions)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}
