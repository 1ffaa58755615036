//! The handlers. The guard (`routes`) has already checked the route's rule and put a
//! [`Ctx`] in the request; handlers read it, call the store, `cooper-ops` or the live cache, and
//! render a template. Forms post back and redirect (works without JavaScript).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use cooper_store::Token;
use futures_util::Stream;
use serde::Deserialize;
use tower_sessions::Session;

use crate::authz::{Right, Role, Viewer};
use crate::cache::{Latest, Releases};
use crate::jobs::{self, Args};
use crate::live::{instance_state, ServerState};
use crate::routes::Ctx;
use crate::views::*;
use crate::AppState;

const STYLE: &str = include_str!("../assets/style.css");
const LIVE_JS: &str = include_str!("../assets/live.js");

pub(crate) fn chrome(ctx: &Ctx, title: impl Into<String>, tab: &'static str) -> Chrome {
    let v = ctx.viewer.as_ref();
    Chrome {
        title: title.into(),
        who: v.map(|v| v.person.name.clone()),
        role: v.map(|v| v.role().label().to_string()).unwrap_or_default(),
        csrf: ctx.csrf.clone(),
        admin: v.is_some_and(Viewer::is_admin),
        operator: v.is_some_and(|v| v.role() >= Role::Operator),
        federation: v.is_some_and(|v| v.on_federation() != crate::authz::Right::None),
        tab,
    }
}

fn bare_chrome(title: &str) -> Chrome {
    Chrome {
        title: title.into(),
        who: None,
        role: String::new(),
        csrf: String::new(),
        admin: false,
        operator: false,
        federation: false,
        tab: "",
    }
}

pub(crate) fn render(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => internal(e),
    }
}

/// A page that says what went wrong and what to do.
pub fn problem(status: StatusCode, message: &str) -> Response {
    let page = ProblemPage {
        c: bare_chrome("Not possible"),
        status: status.as_u16(),
        message: message.into(),
    };
    let mut r = render(page);
    *r.status_mut() = status;
    r
}

pub fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "There is nothing here, or nothing you may see. Check the address, or ask an operator of your co-op.",
    )
}

/// An internal error: logged to standard error, a plain page to the person.
pub fn internal(e: impl std::fmt::Display) -> Response {
    eprintln!("cooper serve: internal error: {e}");
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side. The operators can find the details in cooper serve's log.",
    )
}

/// Adds a line to the audit log; a failure to write it is reported on standard error (the
/// action itself already happened).
pub(crate) async fn record_audit(
    store: &cooper_store::Store,
    who: &str,
    action: &str,
    domain: Option<&str>,
    server: Option<&str>,
    outcome: &str,
    detail: &str,
) {
    if let Err(e) = store
        .audit(who, action, domain, server, outcome, detail)
        .await
    {
        eprintln!("cooper serve: could not write the audit line {action:?} by {who}: {e}");
    }
}

/// After a change to co-ops, communities or owners: the copies are dropped, the change is
/// audited, and the people page shows again.
async fn people_changed(
    s: &AppState,
    ctx: &Ctx,
    action: &str,
    domain: Option<&str>,
    server: Option<&str>,
    detail: &str,
) -> Response {
    s.caches.forget_owners();
    s.list.forget();
    record_audit(
        &s.store,
        &ctx.viewer().person.email,
        action,
        domain,
        server,
        "ok",
        detail,
    )
    .await;
    Redirect::to("/people").into_response()
}

pub async fn home(Extension(ctx): Extension<Ctx>) -> Redirect {
    if ctx.viewer.is_some() {
        Redirect::to("/instances")
    } else {
        Redirect::to("/login")
    }
}

pub async fn healthz(State(s): State<AppState>) -> Response {
    match s.store.count_admins().await {
        Ok(_) => "ok\n".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")).into_response(),
    }
}

pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "live.js" => (LIVE_JS, "text/javascript; charset=utf-8"),
        "poll.js" => (crate::federation::POLL_JS, "text/javascript; charset=utf-8"),
        _ => return not_found(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

// --- login, setup, invitations ---

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only paths of this dashboard are followed after login (never another site).
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/instances".into()
    }
}

pub async fn login_form(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<NextQuery>,
) -> Response {
    if ctx.viewer.is_some() {
        return Redirect::to(&safe_next(&q.next)).into_response();
    }
    render(LoginPage {
        c: chrome(&ctx, "Log in", "login"),
        next: q.next,
        email: String::new(),
        error: None,
        oidc: oidc_label(&s),
    })
}

fn oidc_label(s: &AppState) -> Option<String> {
    s.config.oidc.as_ref().map(|o| o.config.label.clone())
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    session: Session,
    Form(f): Form<LoginForm>,
) -> Response {
    let again = |error: &str, status: StatusCode| {
        let mut r = render(LoginPage {
            c: chrome(&ctx, "Log in", "login"),
            next: f.next.clone(),
            email: f.email.clone(),
            error: Some(error.into()),
            oidc: oidc_label(&s),
        });
        *r.status_mut() = status;
        r
    };
    if !s.limit.allow(&f.email, ctx.client) {
        record_audit(
            &s.store,
            &f.email,
            "login",
            None,
            None,
            "refused",
            "too many tries",
        )
        .await;
        return again(
            "Too many tries. Wait a minute, then try again.",
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let person = match s.store.person_by_email(&f.email).await {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    // The same work (and the same answer) whether or not the email is known.
    let phc = person
        .as_ref()
        .and_then(|p| p.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let password = f.password.clone();
    let ok = tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &phc))
        .await
        .unwrap_or(false);
    let person = match person {
        Some(p) if ok && !p.disabled => p,
        _ => {
            record_audit(
                &s.store,
                &f.email,
                "login",
                None,
                None,
                "failed",
                "wrong email or password",
            )
            .await;
            return again(
                "The email or the password is wrong.",
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    if let Err(e) = begin_session(&session, &person.id).await {
        return internal(e);
    }
    record_audit(&s.store, &person.email, "login", None, None, "ok", "").await;
    Redirect::to(&safe_next(&f.next)).into_response()
}

static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    crate::auth::hash_password("not anyone's password at all").unwrap_or_default()
});

/// Logs a person in: a new session id (the one from before login is never reused), a new CSRF
/// token.
async fn begin_session(session: &Session, person: &str) -> anyhow::Result<()> {
    session.cycle_id().await?;
    session.insert(crate::auth::PERSON, person).await?;
    session.remove_value(crate::auth::CSRF).await?;
    crate::auth::csrf_token(session).await;
    Ok(())
}

pub async fn logout(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    session: Session,
) -> Response {
    record_audit(
        &s.store,
        &ctx.viewer().person.email,
        "logout",
        None,
        None,
        "ok",
        "",
    )
    .await;
    let _ = session.flush().await;
    Redirect::to("/login").into_response()
}

pub async fn setup_form(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let done = s.store.count_admins().await.unwrap_or(0) > 0;
    render(SetupPage {
        c: chrome(&ctx, "Set up cooper", ""),
        error: None,
        email: String::new(),
        name: String::new(),
        done,
    })
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    email: String,
    name: String,
    password: String,
}

pub async fn setup(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    session: Session,
    Form(f): Form<SetupForm>,
) -> Response {
    let again = |error: String, status: StatusCode| {
        let mut r = render(SetupPage {
            c: chrome(&ctx, "Set up cooper", ""),
            error: Some(error),
            email: f.email.clone(),
            name: f.name.clone(),
            done: false,
        });
        *r.status_mut() = status;
        r
    };
    if let Err(e) = crate::auth::check_new_password(&f.password, &f.email) {
        return again(e, StatusCode::UNPROCESSABLE_ENTITY);
    }
    if f.name.trim().is_empty() || !f.email.contains('@') {
        return again(
            "Give your name and an email address.".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    match s.store.use_token("setup", &f.token).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return again(
                "That setup token is not valid (used already, expired or mistyped). Restart cooper serve to get a new one while nobody administers it."
                    .into(),
                StatusCode::FORBIDDEN,
            )
        }
        Err(e) => return internal(e),
    }
    let hash = match crate::auth::hash_password(&f.password) {
        Ok(h) => h,
        Err(e) => return internal(e),
    };
    let person = match s
        .store
        .add_person(&f.email, &f.name, Some(&hash), true)
        .await
    {
        Ok(p) => p,
        Err(e) => return again(e.to_string(), StatusCode::UNPROCESSABLE_ENTITY),
    };
    record_audit(
        &s.store,
        &person.email,
        "setup: first admin",
        None,
        None,
        "ok",
        "",
    )
    .await;
    if let Err(e) = begin_session(&session, &person.id).await {
        return internal(e);
    }
    Redirect::to("/instances").into_response()
}

pub async fn invite_form(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(token): Path<String>,
) -> Response {
    if !s.store.token_valid("invite", &token).await.unwrap_or(false) {
        return problem(
            StatusCode::NOT_FOUND,
            "This invitation is not valid any more (used, expired or mistyped). Ask for a new one.",
        );
    }
    render(InvitePage {
        c: chrome(&ctx, "Join", ""),
        token,
        email: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct InviteAccept {
    name: String,
    email: String,
    password: String,
}

pub async fn accept_invite(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    session: Session,
    Path(token): Path<String>,
    Form(f): Form<InviteAccept>,
) -> Response {
    let again = |error: String| {
        let mut r = render(InvitePage {
            c: chrome(&ctx, "Join", ""),
            token: token.clone(),
            email: f.email.clone(),
            error: Some(error),
        });
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        r
    };
    if let Err(e) = crate::auth::check_new_password(&f.password, &f.email) {
        return again(e);
    }
    let hash = match crate::auth::hash_password(&f.password) {
        Ok(h) => h,
        Err(e) => return internal(e),
    };
    let Some(t) = s.store.use_token("invite", &token).await.ok().flatten() else {
        return problem(
            StatusCode::NOT_FOUND,
            "This invitation is not valid any more (used, expired or mistyped). Ask for a new one.",
        );
    };
    let email = t.email.clone().unwrap_or(f.email.clone());
    let person = match s
        .store
        .add_person(&email, &f.name, Some(&hash), false)
        .await
    {
        Ok(p) => p,
        Err(e) => return again(e.to_string()),
    };
    if let (Some(kind), Some(target), Some(role)) = (&t.kind, &t.target_id, &t.role) {
        if let Err(e) = s.store.add_membership(&person.id, kind, target, role).await {
            return internal(e);
        }
        s.caches.forget_viewers();
    }
    record_audit(
        &s.store,
        &person.email,
        "joined by invitation",
        None,
        None,
        "ok",
        &format!(
            "{} {} of {}",
            t.kind.unwrap_or_default(),
            t.role.unwrap_or_default(),
            t.target_id.unwrap_or_default()
        ),
    )
    .await;
    if let Err(e) = begin_session(&session, &person.id).await {
        return internal(e);
    }
    Redirect::to("/instances").into_response()
}

// --- instances ---

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    server: String,
    #[serde(default)]
    community: String,
    #[serde(default)]
    recipe: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: Option<usize>,
}

const PAGE: usize = 50;

async fn latest(s: &AppState) -> std::sync::Arc<Latest> {
    s.caches.latest(&s.store).await
}

fn upgrades(s: &AppState) -> std::sync::Arc<Releases> {
    s.caches.releases(&s.abra)
}

fn newer(current: Option<&str>, candidate: Option<&String>) -> Option<String> {
    let c = candidate?;
    match current.map(cooper_recipe::version::RecipeVersion::parse) {
        Some(Ok(cur)) => match cooper_recipe::version::RecipeVersion::parse(c) {
            Ok(n) if n > cur => Some(c.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn row(
    a: &AppInfo,
    state: &ServerState,
    community: String,
    latest: &Latest,
    up: &Releases,
) -> InstanceRow {
    let shown = instance_state(state, &a.stack);
    let version = shown.version.clone().or(a.env_version.clone());
    let upgrade = newer(version.as_deref(), up.newest(&a.recipe));
    let level = upgrade
        .as_ref()
        .and_then(|u| up.levels.get(&(a.recipe.clone(), u.clone())).copied());
    let get = |op: &str| {
        latest
            .get(&(a.domain.clone(), op.to_string()))
            .map(String::as_str)
    };
    InstanceRow {
        domain: a.domain.clone(),
        server: a.server.clone(),
        recipe: a.recipe.clone(),
        community,
        state: shown.text,
        tone: shown.tone,
        version: version.unwrap_or_else(|| "—".into()),
        upgrade,
        level,
        backup: Age::since_or_new(get(cooper_store::BACKUP), get("in service"), BACKUP_DAYS),
        verified: Age::since_or_new(get("backup verify"), get("in service"), VERIFY_DAYS),
        tested: Age::since_or_new(get("app test"), get("in service"), TEST_DAYS),
    }
}

fn community_of(ctx: &Ctx, domain: &str) -> String {
    ctx.owners
        .instance_community
        .get(domain)
        .and_then(|c| ctx.owners.community_names.get(c))
        .cloned()
        .unwrap_or_default()
}

pub async fn instances(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<ListQuery>,
) -> Response {
    let v = ctx.viewer();
    let index = s.list.get(&s, &ctx.owners, s.config.live_ttl).await;
    let first = q.page.unwrap_or(1).max(1);
    let answer = index.query(
        v,
        &crate::list::Query {
            server: &q.server,
            recipe: &q.recipe,
            community: &q.community,
            state: &q.state,
            sort: &q.sort,
            offset: (first - 1) * PAGE,
            limit: PAGE,
        },
    );
    let total = answer.total;
    let pages = total.div_ceil(PAGE).max(1);
    let page = first.min(pages);
    // A page past the end shows the last one.
    let answer = if page != first {
        index.query(
            v,
            &crate::list::Query {
                server: &q.server,
                recipe: &q.recipe,
                community: &q.community,
                state: &q.state,
                sort: &q.sort,
                offset: (page - 1) * PAGE,
                limit: PAGE,
            },
        )
    } else {
        answer
    };
    let apps: Vec<&AppInfo> = answer.page.iter().map(|&i| &index.apps[i]).collect();
    let wanted: Vec<String> = apps
        .iter()
        .map(|a| a.server.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let live = s.live.servers(&wanted).await;
    let unknown: ServerState = Err("not looked at".into());
    let latest = latest(&s).await;
    let up = upgrades(&s);
    let rows: Vec<InstanceRow> = apps
        .into_iter()
        .map(|a| {
            let st = live.get(&a.server).map(|x| x.as_ref()).unwrap_or(&unknown);
            row(a, st, community_of(&ctx, &a.domain), &latest, &up)
        })
        .collect();
    let (servers, recipes, communities) = (answer.servers, answer.recipes, answer.communities);
    let link = |p: usize| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("server", &q.server),
            ("community", &q.community),
            ("recipe", &q.recipe),
            ("state", &q.state),
            ("sort", &q.sort),
        ] {
            if !v.is_empty() {
                ser.append_pair(k, v);
            }
        }
        ser.append_pair("page", &p.to_string());
        format!("/instances?{}", ser.finish())
    };
    render(InstancesPage {
        c: chrome(&ctx, "Instances", "instances"),
        rows,
        total,
        page,
        pages,
        prev_link: (page > 1).then(|| link(page - 1)),
        next_link: (page < pages).then(|| link(page + 1)),
        f: Filters {
            server: q.server,
            community: q.community,
            recipe: q.recipe,
            state: q.state,
            sort: q.sort,
        },
        servers,
        communities,
        recipes,
    })
}

fn job_view(j: &cooper_store::Job) -> JobView {
    JobView {
        id: j.id.clone(),
        kind: j.kind.clone(),
        state: j.state.as_str().into(),
        tone: match j.state {
            cooper_store::JobState::Succeeded => "ok",
            cooper_store::JobState::Failed | cooper_store::JobState::Interrupted => "bad",
            cooper_store::JobState::Running | cooper_store::JobState::Queued => "warn",
            cooper_store::JobState::Cancelled => "idle",
        },
        who: j.requested_by.clone(),
        when: when(j.created_at),
        outcome: j.outcome.clone().unwrap_or_default(),
    }
}

pub async fn instance(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(domain): Path<String>,
) -> Response {
    let Some(a) = s.apps.get(&domain) else {
        return not_found();
    };
    let v = ctx.viewer();
    let right = v.on_instance(&a.domain, &a.server, &ctx.owners);
    let state = s.live.server(&a.server).await;
    let latest = latest(&s).await;
    let up = upgrades(&s);
    let r = row(&a, &state, community_of(&ctx, &a.domain), &latest, &up);
    let release_notes = match &r.upgrade {
        Some(to) => {
            cooper_recipe::repo::RecipeRepo::open(&a.recipe, &s.abra.recipes_dir().join(&a.recipe))
                .map(|repo| {
                    cooper_ops::deploy::release_notes(
                        &repo,
                        (r.version != "—").then_some(r.version.as_str()),
                        to,
                    )
                })
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    // Tasks: one more engine call, for this page only.
    let (tasks, tasks_error) = match state.as_ref() {
        Err(e) => (Vec::new(), Some(format!("server unreachable: {e}"))),
        Ok(_) => match s.live.engine(&a.server).await {
            Ok(engine) => match engine.stack_tasks(&a.stack).await {
                Ok(rows) => (
                    rows.into_iter()
                        .map(|t| TaskView {
                            tone: if t.state == "running" {
                                "ok"
                            } else if t.error.is_none() {
                                "idle"
                            } else {
                                "bad"
                            },
                            node: match (&t.node_state, t.node.as_str()) {
                                (_, "") => "—".into(),
                                (Some(s), n) => format!("{n} ({s})"),
                                (None, n) => n.to_string(),
                            },
                            service: t.service,
                            state: t.state,
                            error: t.error.unwrap_or_default(),
                            image: t.image,
                        })
                        .collect(),
                    None,
                ),
                Err(e) => (Vec::new(), Some(e.to_string())),
            },
            Err(e) => (Vec::new(), Some(e)),
        },
    };
    let jobs = s
        .store
        .jobs(Some(&domain), 10)
        .await
        .unwrap_or_default()
        .iter()
        .map(job_view)
        .collect();
    let all_records = cooper_ops::record::list(&s.abra.root, &domain);
    let (backups, test_run, test_steps) = care_details(&all_records);
    let records = all_records
        .into_iter()
        .rev()
        .take(15)
        .map(|rec| RecordView {
            tone: match rec.ok {
                Some(true) => "ok",
                Some(false) => "bad",
                None => "warn",
            },
            ok: match rec.ok {
                Some(true) => "succeeded".into(),
                Some(false) => "failed".into(),
                None => "did not finish".into(),
            },
            operation: rec.operation,
            started: rec.started,
            error: rec.error.unwrap_or_default(),
        })
        .collect();
    let asked = s
        .store
        .requests(Some(&domain), false)
        .await
        .unwrap_or_default();
    let leaving = asked
        .iter()
        .any(|q| q.kind == "offboard" && q.state == "approved");
    let requests = asked
        .into_iter()
        .map(|q| RequestView {
            id: q.id,
            kind: q.kind,
            who: q.requested_by,
            note: q.note,
            when: when(q.created_at),
            state: q.state,
        })
        .collect();
    let can_export = may_export(&s, &ctx, &a).await;
    let now = cooper_store::now_ms();
    let stored = s.store.schedules(Some(&domain)).await.unwrap_or_default();
    let missing_schedules = stored.len() < cooper_store::schedules::KINDS.len();
    let schedules = stored.iter().map(|x| ScheduleView::of(x, now)).collect();
    let actions = jobs::KINDS
        .iter()
        .map(|k| ActionView {
            kind: k.name,
            label: k.label,
            confirm: k.confirm,
        })
        .collect();
    let credentials_waiting = s
        .jobs
        .vault
        .waiting_for(&domain, &ctx.viewer().person.email);
    let consent = s
        .store
        .consents(&domain)
        .await
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(|k| ConsentView {
            version: k.version,
            who: k.given_by,
            when: when(k.given_at),
            state: k.state,
            outcome: k.outcome,
            job: k.job.unwrap_or_default(),
        });
    let window = stored
        .iter()
        .find(|x| x.kind == "upgrade-window")
        .map(|x| x.cadence)
        .or_else(|| cooper_store::schedules::default_cadence("upgrade-window"))
        .map(|c| when(cooper_store::schedules::window_opens(now, &c)))
        .unwrap_or_default();
    // The community agrees; operators only for an instance no community holds.
    let can_consent = r.upgrade.is_some()
        && (right == Right::Request || (right == Right::Execute && r.community.is_empty()));
    render(InstancePage {
        credentials_waiting,
        c: chrome(&ctx, domain.clone(), "instances"),
        domain,
        server: a.server,
        recipe: a.recipe,
        community: r.community,
        state: r.state,
        tone: r.tone,
        version: r.version,
        upgrade: r.upgrade,
        level: r.level,
        release_notes,
        tasks,
        tasks_error,
        jobs,
        records,
        backup: r.backup,
        verified: r.verified,
        tested: r.tested,
        can_execute: right >= Right::Execute,
        can_request: right == Right::Request,
        actions,
        requests,
        backups,
        test_run,
        test_steps,
        can_export,
        leaving,
        consent,
        can_consent,
        window_next: window,
        schedules,
        missing_schedules,
    })
}

#[derive(Deserialize)]
pub struct ScheduleForm {
    action: String,
    #[serde(default)]
    kind: String,
}

/// An operator attaches the co-op's default schedules, or pauses or resumes one.
pub async fn change_schedules(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(domain): Path<String>,
    Form(f): Form<ScheduleForm>,
) -> Response {
    let Some(a) = s.apps.get(&domain) else {
        return not_found();
    };
    let now = cooper_store::now_ms();
    let coop = ctx
        .owners
        .server_coop
        .get(&a.server)
        .cloned()
        .unwrap_or_default();
    let done = match f.action.as_str() {
        "attach" => s
            .store
            .attach_default_schedules(&domain, &coop, now)
            .await
            .map(|v| format!("{} schedules", v.len())),
        "pause" | "resume" => match s.store.schedule(&domain, &f.kind).await {
            Ok(Some(x)) => s
                .store
                .set_schedule(&domain, &f.kind, x.cadence, f.action == "resume", now)
                .await
                .map(|_| f.kind.clone()),
            Ok(None) => return not_found(),
            Err(e) => Err(e),
        },
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Unknown change: the form offers attach, pause and resume.",
            )
        }
    };
    match done {
        Ok(detail) => {
            record_audit(
                &s.store,
                &ctx.viewer().person.email,
                &format!("schedule {}", f.action),
                Some(&domain),
                None,
                "ok",
                &detail,
            )
            .await;
            Redirect::to(&format!("/instances/{domain}#schedules")).into_response()
        }
        Err(cooper_store::StoreError::Invalid(why)) => problem(StatusCode::BAD_REQUEST, &why),
        Err(e) => internal(e),
    }
}

/// Every overdue run the viewer may see, oldest owed first.
pub async fn overdue(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let v = ctx.viewer();
    let now = cooper_store::now_ms();
    let mut list = match s.store.overdue_schedules(now).await {
        Ok(l) => l,
        Err(e) => return internal(e),
    };
    list.retain(|x| {
        s.apps
            .server_of(&x.domain)
            .is_some_and(|srv| v.on_instance(&x.domain, &srv, &ctx.owners) > Right::None)
    });
    list.sort_by_key(|x| x.owed_since(now).unwrap_or(i64::MAX));
    render(OverduePage {
        c: chrome(&ctx, "Overdue", "overdue"),
        rows: list.iter().map(|x| ScheduleView::of(x, now)).collect(),
    })
}

/// From an app's records (oldest first): its last backups with the date a restore of each was
/// last verified, and the steps of its last test run (from the run's report).
fn care_details(
    records: &[cooper_ops::record::Record],
) -> (Vec<BackupView>, Option<String>, Vec<TestStepView>) {
    let snapshot = |r: &cooper_ops::record::Record| {
        r.details
            .get("snapshot")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut verified = std::collections::HashMap::new();
    for r in records
        .iter()
        .filter(|r| r.operation == "backup verify" && r.ok == Some(true))
    {
        if let Some(id) = snapshot(r) {
            verified.insert(id, r.finished.clone().unwrap_or_else(|| r.started.clone()));
        }
    }
    let backups = records
        .iter()
        .rev()
        .filter_map(|r| {
            let id = crate::jobs::made_snapshot(r)?;
            let verified = verified
                .iter()
                .find(|(v, _)| v.starts_with(&id) || id.starts_with(v.as_str()))
                .map(|(_, at)| at.clone());
            Some(BackupView {
                verified,
                snapshot: id.chars().take(8).collect(),
                when: r.started.clone(),
                why: if r.operation == "backup create" {
                    "backup".into()
                } else {
                    format!(
                        "safety backup before {}",
                        r.operation.trim_start_matches("app ")
                    )
                },
            })
        })
        .take(10)
        .collect();
    let last_test = records.iter().rev().find(|r| r.operation == "app test");
    let report = last_test
        .and_then(|r| r.details.get("results").and_then(|v| v.as_str()))
        .and_then(|dir| std::fs::read_to_string(std::path::Path::new(dir).join("report.json")).ok())
        .and_then(|t| serde_json::from_str::<cooper_checks::report::RunReport>(&t).ok());
    let steps = report
        .map(|rep| {
            rep.results
                .into_iter()
                .map(|st| {
                    let (outcome, tone, reason) = match st.outcome {
                        cooper_checks::report::Outcome::Passed => ("passed", "ok", String::new()),
                        cooper_checks::report::Outcome::Failed(why) => ("failed", "bad", why),
                        cooper_checks::report::Outcome::Skipped(why) => ("skipped", "idle", why),
                    };
                    TestStepView {
                        suite: st.suite,
                        phase: st.phase,
                        name: st.name,
                        outcome: outcome.into(),
                        tone,
                        reason,
                        millis: st.millis,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    (backups, last_test.map(|r| r.started.clone()), steps)
}

#[derive(Deserialize)]
pub struct ConfirmQuery {
    kind: String,
}

pub async fn confirm(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(domain): Path<String>,
    Query(q): Query<ConfirmQuery>,
) -> Response {
    let Some(kind) = jobs::kind(&q.kind) else {
        return problem(StatusCode::BAD_REQUEST, "No such action.");
    };
    let Some(a) = s.apps.get(&domain) else {
        return not_found();
    };
    let state = s.live.server(&a.server).await;
    let up = upgrades(&s);
    let current = instance_state(&state, &a.stack)
        .version
        .or(a.env_version.clone());
    let target = newer(current.as_deref(), up.newest(&a.recipe));
    let (explain, version, notes) = match kind.name {
        "upgrade" => match &target {
            Some(t) => {
                let notes = cooper_recipe::repo::RecipeRepo::open(&a.recipe, &s.abra.recipes_dir().join(&a.recipe))
                    .map(|repo| cooper_ops::deploy::release_notes(&repo, current.as_deref(), t))
                    .unwrap_or_default();
                (
                    vec![
                        format!("{domain} goes from {} to {t}.", current.as_deref().unwrap_or("—")),
                        "A backup is taken first; the upgrade stops if it fails.".into(),
                        "If the new version does not come up healthy, the previous one runs again (volumes are not touched).".into(),
                    ],
                    t.clone(),
                    notes,
                )
            }
            None => (vec![format!("{domain} runs the newest release already.")], String::new(), Vec::new()),
        },
        "rehearse" => (
            vec![
                format!(
                    "A verified backup of {domain} is restored into a staging copy, which is upgraded to {} and tested.",
                    target.as_deref().unwrap_or("the newest release")
                ),
                "Only when the copy passes is production upgraded (and tested again); the copy is removed either way.".into(),
            ],
            target.clone().unwrap_or_default(),
            Vec::new(),
        ),
        "rollback" => (
            vec![format!("{domain} goes back to the release before {}.", current.as_deref().unwrap_or("—")), "Data written by the newer version stays in the volumes; restore a backup if the older version cannot read it.".into()],
            String::new(),
            Vec::new(),
        ),
        "restore" => (
            vec![format!("The volumes of {domain} are replaced by the last backup."), "The app's services are stopped during the restore and started again after; what was written since that backup is lost.".into()],
            String::new(),
            Vec::new(),
        ),
        "undeploy" => (
            vec![format!("{domain} stops running. Its volumes and secrets stay; deploy it again to bring it back.")],
            String::new(),
            Vec::new(),
        ),
        _ => (vec![format!("{} {domain}.", kind.label)], String::new(), Vec::new()),
    };
    render(ConfirmPage {
        c: chrome(&ctx, format!("{} {domain}", kind.label), "instances"),
        domain,
        kind: kind.name.into(),
        label: kind.label.into(),
        explain,
        version,
        release_notes: notes,
    })
}

#[derive(Deserialize)]
pub struct JobForm {
    kind: String,
    #[serde(default)]
    version: String,
}

pub async fn start_job(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(domain): Path<String>,
    Form(f): Form<JobForm>,
) -> Response {
    let Some(kind) = jobs::kind(&f.kind) else {
        return problem(StatusCode::BAD_REQUEST, "No such action.");
    };
    let args = Args {
        version: Some(f.version.trim().to_string()).filter(|v| !v.is_empty()),
        ..Default::default()
    };
    let who = &ctx.viewer().person.email;
    match s.jobs.submit(kind.name, &domain, &args, who).await {
        Ok(job) => {
            record_audit(
                &s.store,
                who,
                &format!("{} requested", kind.name),
                Some(&domain),
                None,
                "queued",
                &job.id,
            )
            .await;
            Redirect::to(&format!("/jobs/{}", job.id)).into_response()
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct RequestForm {
    kind: String,
    #[serde(default)]
    note: String,
}

pub async fn make_request(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(domain): Path<String>,
    Form(f): Form<RequestForm>,
) -> Response {
    if !matches!(
        f.kind.as_str(),
        "upgrade" | "restore" | "export" | "offboard"
    ) {
        return problem(
            StatusCode::BAD_REQUEST,
            "Requests can ask for an upgrade, a restore, an export or a move to another co-op.",
        );
    }
    let who = &ctx.viewer().person.email;
    let note: String = f.note.chars().take(2000).collect();
    match s.store.create_request(&f.kind, &domain, who, &note).await {
        Ok(r) => {
            record_audit(
                &s.store,
                who,
                &format!("{} request", f.kind),
                Some(&domain),
                None,
                "pending",
                &r.id,
            )
            .await;
            s.notifier
                .emit_logged(crate::notify::Event {
                    event: "request.received",
                    domain: Some(domain.clone()),
                    server: s.apps.server_of(&domain),
                    title: format!("{who} asks for {} of {domain}", f.kind),
                    detail: if note.is_empty() {
                        "No note.".into()
                    } else {
                        format!("Their note: {note}")
                    },
                    link: Some(format!("/instances/{domain}#reqs")),
                    dedupe: None,
                })
                .await;
            Redirect::to(&format!("/instances/{domain}")).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn decide(s: &AppState, ctx: &Ctx, id: &str, approve: bool) -> Response {
    let Ok(Some(req)) = s.store.request(id).await else {
        return not_found();
    };
    let who = &ctx.viewer().person.email;
    let mut job_id = None;
    if approve && !matches!(req.kind.as_str(), "export" | "offboard") {
        let args = Args {
            request: Some(req.id.clone()),
            ..Default::default()
        };
        match s.jobs.submit(&req.kind, &req.domain, &args, who).await {
            Ok(j) => job_id = Some(j.id),
            Err(e) => return internal(e),
        }
    }
    let state = if approve { "approved" } else { "declined" };
    match s
        .store
        .decide_request(id, state, who, job_id.as_deref())
        .await
    {
        Ok(true) => {}
        Ok(false) => return problem(StatusCode::CONFLICT, "This request was decided already."),
        Err(e) => return internal(e),
    }
    record_audit(
        &s.store,
        who,
        &format!("{} request {state}", req.kind),
        Some(&req.domain),
        None,
        state,
        &req.requested_by,
    )
    .await;
    if approve {
        s.notifier
            .emit_logged(crate::notify::Event {
                event: "request.approved",
                domain: Some(req.domain.clone()),
                server: s.apps.server_of(&req.domain),
                title: format!("The {} of {} was approved", req.kind, req.domain),
                detail: format!("{who} approved {}'s request.", req.requested_by),
                link: Some(match &job_id {
                    Some(j) => format!("/jobs/{j}"),
                    None => format!("/instances/{}", req.domain),
                }),
                dedupe: None,
            })
            .await;
    }
    match job_id {
        Some(j) => Redirect::to(&format!("/jobs/{j}")).into_response(),
        None => Redirect::to(&format!("/instances/{}", req.domain)).into_response(),
    }
}

pub async fn approve(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    decide(&s, &ctx, &id, true).await
}

pub async fn decline(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    decide(&s, &ctx, &id, false).await
}

#[derive(Deserialize)]
pub struct ConsentForm {
    version: String,
    action: String,
}

/// The community agrees to the offered upgrade (applied, rehearsed first, in the instance's
/// next maintenance window), or withdraws its agreement before the window.
pub async fn consent(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(domain): Path<String>,
    Form(f): Form<ConsentForm>,
) -> Response {
    let Some(a) = s.apps.get(&domain) else {
        return not_found();
    };
    let who = ctx.viewer().person.email.clone();
    let now = cooper_store::now_ms();
    let done = match f.action.as_str() {
        "agree" => {
            let state = s.live.server(&a.server).await;
            let (latest, up) = (latest(&s).await, upgrades(&s));
            let r = row(&a, &state, community_of(&ctx, &a.domain), &latest, &up);
            match r.upgrade {
                Some(u) if u == f.version => {}
                Some(u) => {
                    return problem(
                        StatusCode::CONFLICT,
                        &format!("{} is not the release on offer: {u} is. Reload the page and agree to that one.", f.version),
                    )
                }
                None => {
                    return problem(
                        StatusCode::CONFLICT,
                        &format!("{domain} runs the newest release it may take: there is nothing to agree to."),
                    )
                }
            }
            s.store
                .give_consent(&domain, &f.version, &who, now)
                .await
                .map(|_| true)
        }
        "withdraw" => s.store.withdraw_consent(&domain, &f.version, now).await,
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "The form's action is agree or withdraw.",
            )
        }
    };
    match done {
        Ok(true) => {}
        Ok(false) => {
            return problem(
                StatusCode::CONFLICT,
                "That agreement is not waiting any more (its window ran, or it was withdrawn).",
            )
        }
        Err(e) => return internal(e),
    }
    record_audit(
        &s.store,
        &who,
        if f.action == "agree" {
            "upgrade agreed"
        } else {
            "upgrade agreement withdrawn"
        },
        Some(&domain),
        Some(&a.server),
        "ok",
        &f.version,
    )
    .await;
    Redirect::to(&format!("/instances/{domain}#care")).into_response()
}

/// How long an approved export request lets a community admin download the data.
const EXPORT_DAYS: i64 = 7;

/// Whether the viewer may download the app's data now: operators always; community admins
/// once an operator approved their export request (for a week).
async fn may_export(s: &AppState, ctx: &Ctx, a: &AppInfo) -> bool {
    if ctx.viewer().on_instance(&a.domain, &a.server, &ctx.owners) >= Right::Execute {
        return true;
    }
    let since = cooper_store::now_ms() - EXPORT_DAYS * 86_400_000;
    s.store
        .requests(Some(&a.domain), false)
        .await
        .unwrap_or_default()
        .iter()
        .any(|r| {
            matches!(r.kind.as_str(), "export" | "offboard")
                && r.state == "approved"
                && r.created_at > since
        })
}

/// The app's export (`cooper app export`): its newest backup with a manifest, its settings
/// without secrets and a README saying how to run it elsewhere — written to a private
/// temporary directory, then streamed; the directory goes when the download ends.
pub async fn export(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(domain): Path<String>,
) -> Response {
    let Some(a) = s.apps.get(&domain) else {
        return not_found();
    };
    if !may_export(&s, &ctx, &a).await {
        return problem(
            StatusCode::FORBIDDEN,
            "Ask for an export on this instance's page first; an operator approves it, then you can download it here for a week.",
        );
    }
    let who = ctx.viewer().person.email.clone();
    let (abra, d) = (s.abra.clone(), domain.clone());
    let made = crate::jobs::run_apart(move || async move {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dest = dir.path().join(format!("{d}-export.tar"));
        let mut quiet = cooper_ops::Collect::default();
        let e = cooper_ops::export::export(&abra, &d, None, &dest, &mut quiet)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((dir, e))
    })
    .await
    .and_then(|r| r);
    let made = match made {
        Ok((dir, e)) => match tokio::fs::File::open(&e.path).await {
            Ok(f) => Ok((dir, e, f)),
            Err(err) => Err(err.to_string()),
        },
        Err(e) => Err(e),
    };
    let (dir, exported, file) = match made {
        Ok(x) => x,
        Err(why) => {
            record_audit(
                &s.store,
                &who,
                "export",
                Some(&domain),
                Some(&a.server),
                "failed",
                &why,
            )
            .await;
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("The export could not be made: {why}"),
            );
        }
    };
    record_audit(
        &s.store,
        &who,
        "export",
        Some(&domain),
        Some(&a.server),
        "ok",
        &format!(
            "snapshot {} ({} bytes, data SHA-256 {})",
            exported.manifest.snapshot.id, exported.bytes, exported.manifest.data.sha256
        ),
    )
    .await;
    // The stream owns the directory: it is removed once the last byte went out (or the
    // download was abandoned).
    let stream = futures_util::StreamExt::map(tokio_util::io::ReaderStream::new(file), move |c| {
        let _keep = &dir;
        c
    });
    let body = axum::body::Body::from_stream(stream);
    (
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (header::CONTENT_LENGTH, exported.bytes.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{domain}-export.tar\""),
            ),
        ],
        body,
    )
        .into_response()
}

pub async fn status_svg(State(s): State<AppState>, Path(domain): Path<String>) -> Response {
    let Some(a) = s.apps.get(&domain) else {
        return not_found();
    };
    let state = s.live.server(&a.server).await;
    let shown = instance_state(&state, &a.stack);
    let label = "status".to_string();
    let svg = StatusSvg {
        label_width: 7 * label.len() + 12,
        text_width: 7 * shown.text.chars().count() + 12,
        label,
        colour: colour(shown.tone),
        text: shown.text,
    };
    match svg.render() {
        Ok(body) => ([(header::CONTENT_TYPE, "image/svg+xml")], body).into_response(),
        Err(e) => internal(e),
    }
}

// --- jobs ---

pub async fn job(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let Ok(Some(j)) = s.store.job(&id).await else {
        return not_found();
    };
    let lines: Vec<LineView> = s
        .store
        .job_lines(&id, 0)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|l| LineView {
            seq: l.seq,
            at: when(l.at),
            line: l.line,
        })
        .collect();
    let a = s.apps.get(&j.domain);
    let can_execute = a.as_ref().is_some_and(|a| {
        ctx.viewer().on_instance(&a.domain, &a.server, &ctx.owners) >= Right::Execute
    });
    let running = !j.state.finished();
    render(JobPage {
        c: chrome(&ctx, format!("{} {}", j.kind, j.domain), "instances"),
        last_seq: lines.last().map(|l| l.seq).unwrap_or(0),
        domain: j.domain.clone(),
        lines,
        running,
        // A queued job of any kind can go; a running one only when it stops safely.
        cancellable: can_execute
            && (j.state == cooper_store::JobState::Queued
                || (running && jobs::kind(&j.kind).is_some_and(|k| k.cancellable))),
        record: j.record_path.clone(),
        job: job_view(&j),
    })
}

#[derive(Deserialize, Default)]
pub struct EventsQuery {
    #[serde(default)]
    after: i64,
}

/// The job's lines as Server-Sent Events (`line` events with their sequence as id, then one
/// `done`). A reconnecting browser sends `Last-Event-ID` and gets only what it missed.
pub async fn job_events(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(q.after);
    let mut heard = s.jobs.subscribe();
    let stream = async_stream(move |tx| async move {
        let mut last = after;
        let mut shown: Option<String> = None;
        loop {
            let lines = s.store.job_lines(&id, last).await.unwrap_or_default();
            for l in lines {
                last = l.seq;
                let ev = SseEvent::default()
                    .event("line")
                    .id(l.seq.to_string())
                    .data(format!("{} {}", when(l.at), l.line));
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            let finished = s.store.job(&id).await.ok().flatten().map(|j| {
                (
                    j.state.finished(),
                    j.state.as_str(),
                    j.outcome.unwrap_or_default(),
                )
            });
            // A queued job's page turns to "running" when a worker takes it (a job waiting
            // for an app's lock says nothing else until it has it).
            if let Some((false, state, _)) = &finished {
                if shown.as_deref() != Some(*state) {
                    shown = Some(state.to_string());
                    if tx
                        .send(SseEvent::default().event("state").data(*state))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            match finished {
                Some((true, state, outcome)) => {
                    let _ = tx
                        .send(
                            SseEvent::default()
                                .event("done")
                                .data(format!("{state}: {outcome}")),
                        )
                        .await;
                    return;
                }
                None => return,
                _ => {}
            }
            // Wake on this job's news, or look again in a second (another process may run it).
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    match heard.recv().await {
                        Ok(jobs::Event::Line { job, .. }) | Ok(jobs::Event::Done { job })
                            if job == id =>
                        {
                            break
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        _ => {}
                    }
                }
            })
            .await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A stream fed by a task through a small channel.
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<SseEvent>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures_util::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), Ok)
}

pub async fn cancel_job(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let Ok(Some(j)) = s.store.job(&id).await else {
        return not_found();
    };
    let safe_midway = jobs::kind(&j.kind).is_some_and(|k| k.cancellable);
    if !safe_midway && j.state != cooper_store::JobState::Queued {
        return problem(
            StatusCode::CONFLICT,
            "This job cannot stop safely midway; it runs to its end.",
        );
    }
    match s.jobs.cancel(&id, safe_midway).await {
        Ok(Some(state)) if !safe_midway && state != cooper_store::JobState::Cancelled => problem(
            StatusCode::CONFLICT,
            "This job started a moment ago and cannot stop safely midway; it runs to its end.",
        ),
        Ok(_) => {
            record_audit(
                &s.store,
                &ctx.viewer().person.email,
                &format!("{} cancel", j.kind),
                Some(&j.domain),
                None,
                "asked",
                &id,
            )
            .await;
            Redirect::to(&format!("/jobs/{id}")).into_response()
        }
        Err(e) => internal(e),
    }
}

// --- servers, catalogue, audit ---

fn server_state_words(state: &ServerState) -> (String, &'static str) {
    match state {
        Ok(stacks) => {
            let down = stacks.values().filter(|s| s.running < s.desired).count();
            if down == 0 {
                (format!("reachable, {} stacks running", stacks.len()), "ok")
            } else {
                (
                    format!("reachable, {down} of {} stacks degraded", stacks.len()),
                    "bad",
                )
            }
        }
        Err(e) => (format!("unreachable: {e}"), "unknown"),
    }
}

pub async fn servers(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let v = ctx.viewer();
    let names: Vec<String> = s
        .apps
        .servers()
        .into_iter()
        .filter(|n| v.on_server(n, &ctx.owners) > Right::None)
        .collect();
    let live = s.live.servers(&names).await;
    let apps = s.apps.all();
    let rows = names
        .iter()
        .map(|n| {
            let (state, tone) = server_state_words(&live[n]);
            ServerRow {
                coop: ctx
                    .owners
                    .server_coop
                    .get(n)
                    .and_then(|c| ctx.owners.coop_names.get(c))
                    .cloned()
                    .unwrap_or_else(|| "no co-op yet".into()),
                apps: apps.iter().filter(|a| &a.server == n).count(),
                name: n.clone(),
                state,
                tone,
            }
        })
        .collect();
    render(ServersPage {
        c: chrome(&ctx, "Servers", "servers"),
        rows,
    })
}

pub async fn server(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(name): Path<String>,
) -> Response {
    let state = s.live.server(&name).await;
    let mut storage = None;
    let (nodes, nodes_error) = match s.live.engine(&name).await {
        Ok(engine) => match engine.nodes().await {
            Ok(nodes) => {
                let version = nodes
                    .iter()
                    .find(|n| n.role == "manager")
                    .map(|n| n.engine_version.clone())
                    .unwrap_or_default();
                storage = tokio::time::timeout(Duration::from_secs(5), engine.storage(&version))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|st| StorageView {
                        images: format!(
                            "{} image{}, {}{}",
                            st.images,
                            if st.images == 1 { "" } else { "s" },
                            if st.images_exact { "" } else { "at most " },
                            bytes(st.images_bytes)
                        ),
                        volumes: format!(
                            "{} volume{}{}",
                            st.volumes,
                            if st.volumes == 1 { "" } else { "s" },
                            match st.volumes_bytes {
                                Some(b) => format!(", {}", bytes(b)),
                                None => " (this engine does not report their size; Docker 29 does)"
                                    .into(),
                            }
                        ),
                    });
                (
                    nodes
                        .into_iter()
                        .map(|n| NodeView {
                            tone: if n.state == "ready" { "ok" } else { "bad" },
                            hostname: n.hostname,
                            role: n.role,
                            state: n.state,
                            engine: n.engine_version,
                            cpus: format!("{:.1}", n.nano_cpus as f64 / 1e9),
                            memory: bytes(n.memory_bytes),
                        })
                        .collect(),
                    None,
                )
            }
            Err(e) => (Vec::new(), Some(e.to_string())),
        },
        Err(e) => (Vec::new(), Some(format!("unreachable: {e}"))),
    };
    let latest = latest(&s).await;
    let apps: Vec<AppInfo> = s
        .apps
        .all()
        .iter()
        .filter(|a| a.server == name)
        .cloned()
        .collect();
    let up = upgrades(&s);
    let rows = apps
        .iter()
        .map(|a| row(a, &state, community_of(&ctx, &a.domain), &latest, &up))
        .collect();
    render(ServerPage {
        c: chrome(&ctx, name.clone(), "servers"),
        coop: ctx
            .owners
            .server_coop
            .get(&name)
            .and_then(|c| ctx.owners.coop_names.get(c))
            .cloned()
            .unwrap_or_else(|| "no co-op yet".into()),
        name,
        nodes,
        nodes_error,
        storage,
        apps: rows,
    })
}

pub async fn catalogue(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let (rows, note) = match cooper_ops::catalogue::read(&s.abra) {
        Ok(Some(cat)) => (
            cat.into_iter()
                .map(|(name, meta)| {
                    let versions = meta
                        .version_names()
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>();
                    let latest = versions.last().cloned().unwrap_or_default();
                    CatalogueRow {
                        level: meta.cooper_levels.get(&latest).copied(),
                        description: meta.description,
                        versions: versions.len(),
                        name,
                        latest,
                    }
                })
                .collect(),
            None,
        ),
        Ok(None) => (
            Vec::new(),
            Some(
                "No catalogue yet: an operator runs `cooper catalogue sync` (or `generate`)."
                    .to_string(),
            ),
        ),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    render(CataloguePage {
        c: chrome(&ctx, "Catalogue", "catalogue"),
        rows,
        note,
    })
}

pub async fn audit(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let v = ctx.viewer();
    let entries = s.store.audit_log(500).await.unwrap_or_default();
    let rows = entries
        .into_iter()
        .filter(|e| {
            if v.is_admin() {
                return true;
            }
            match (&e.domain, &e.server) {
                (Some(d), _) => s
                    .apps
                    .server_of(d)
                    .is_some_and(|srv| v.on_instance(d, &srv, &ctx.owners) > Right::None),
                (None, Some(srv)) => v.on_server(srv, &ctx.owners) > Right::None,
                // Logins and other lines about a person: only their own.
                (None, None) => e.actor == v.person.email,
            }
        })
        .take(200)
        .map(|e| AuditView {
            when: when(e.at),
            tone: match e.outcome.as_str() {
                "ok" | "succeeded" | "approved" => "ok",
                "failed" | "refused" | "interrupted" => "bad",
                _ => "idle",
            },
            actor: e.actor,
            action: e.action,
            target: e.domain.or(e.server).unwrap_or_default(),
            outcome: e.outcome,
            detail: e.detail,
        })
        .collect();
    render(AuditPage {
        c: chrome(&ctx, "Audit log", "audit"),
        rows,
    })
}

// --- people (federation admins) ---

async fn people_page(
    s: &AppState,
    ctx: &Ctx,
    invite_link: Option<String>,
    message: Option<String>,
) -> Response {
    let people = s.store.people().await.unwrap_or_default();
    let mut views = Vec::new();
    for p in people {
        let places = s
            .store
            .memberships(&p.id)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let name = if m.kind == "coop" {
                    ctx.owners.coop_names.get(&m.target_id)
                } else {
                    ctx.owners.community_names.get(&m.target_id)
                };
                format!("{} of {}", m.role, name.cloned().unwrap_or(m.target_id))
            })
            .collect::<Vec<_>>()
            .join(", ");
        views.push(PersonView {
            id: p.id,
            email: p.email,
            name: p.name,
            places,
            admin: p.federation_admin,
        });
    }
    let coops: Vec<(String, String)> = s
        .store
        .coops()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let communities = s
        .store
        .communities()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let coop = ctx
                .owners
                .coop_names
                .get(&c.coop_id)
                .cloned()
                .unwrap_or_default();
            (c.id, c.name, coop)
        })
        .collect();
    let servers = s
        .apps
        .servers()
        .into_iter()
        .map(|n| {
            let coop = ctx
                .owners
                .server_coop
                .get(&n)
                .and_then(|c| ctx.owners.coop_names.get(c))
                .cloned()
                .unwrap_or_default();
            (n, coop)
        })
        .collect();
    let instances = s
        .apps
        .all()
        .iter()
        .map(|a| (a.domain.clone(), community_of(ctx, &a.domain)))
        .collect();
    render(PeoplePage {
        c: chrome(ctx, "People", "people"),
        people: views,
        coops,
        communities,
        servers,
        instances,
        invite_link,
        message,
    })
}

pub async fn people(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    people_page(&s, &ctx, None, None).await
}

#[derive(Deserialize)]
pub struct InviteForm {
    email: String,
    /// `coop:<id>` or `community:<id>`
    place: String,
    role: String,
}

pub async fn invite(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Form(f): Form<InviteForm>,
) -> Response {
    let Some((kind, target)) = f.place.split_once(':') else {
        return problem(StatusCode::BAD_REQUEST, "Choose a co-op or a community.");
    };
    let valid = matches!(
        (kind, f.role.as_str()),
        ("coop", "operator")
            | ("coop", "treasurer")
            | ("community", "admin")
            | ("community", "member")
    );
    if !valid || !f.email.contains('@') {
        return problem(
            StatusCode::BAD_REQUEST,
            "An invitation needs an email and a role that fits the place: operator or treasurer of a co-op; admin or member of a community.",
        );
    }
    let who = ctx.viewer().person.email.clone();
    let token = Token {
        purpose: "invite".into(),
        email: Some(f.email.trim().to_lowercase()),
        kind: Some(kind.into()),
        target_id: Some(target.into()),
        role: Some(f.role.clone()),
        created_by: Some(who.clone()),
    };
    let secret = match s.store.issue_token(&token, 7 * 24 * 3600 * 1000).await {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    record_audit(
        &s.store,
        &who,
        "invite",
        None,
        None,
        "ok",
        &format!("{} as {} of {}", f.email, f.role, f.place),
    )
    .await;
    let link = format!("{}/invite/{secret}", public_base(&s, &headers));
    people_page(&s, &ctx, Some(link), None).await
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
    #[serde(default)]
    coop: String,
}

pub async fn add_coop(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<NameForm>,
) -> Response {
    if f.name.trim().is_empty() {
        return problem(StatusCode::BAD_REQUEST, "Give the co-op a name.");
    }
    match s.store.add_coop(&f.name).await {
        Ok(c) => people_changed(&s, &ctx, "add co-op", None, None, &c.name).await,
        Err(e) => problem(
            StatusCode::CONFLICT,
            &format!("Could not add the co-op: {e}"),
        ),
    }
}

pub async fn add_community(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<NameForm>,
) -> Response {
    if f.name.trim().is_empty() || !ctx.owners.coop_names.contains_key(&f.coop) {
        return problem(
            StatusCode::BAD_REQUEST,
            "Give the community a name and choose its co-op.",
        );
    }
    match s.store.add_community(&f.name, &f.coop).await {
        Ok(c) => people_changed(&s, &ctx, "add community", None, None, &c.name).await,
        Err(e) => problem(
            StatusCode::CONFLICT,
            &format!("Could not add the community: {e}"),
        ),
    }
}

#[derive(Deserialize)]
pub struct OwnerForm {
    /// `server:<name>` or `instance:<domain>`
    what: String,
    owner: String,
}

pub async fn set_owner(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<OwnerForm>,
) -> Response {
    let r = match f.what.split_once(':') {
        Some(("server", name))
            if s.apps.has_server(name) && ctx.owners.coop_names.contains_key(&f.owner) =>
        {
            s.store
                .set_server_owner(name, &f.owner)
                .await
                .map(|_| (None, Some(name.to_string())))
        }
        Some(("instance", domain))
            if s.apps.get(domain).is_some()
                && ctx.owners.community_names.contains_key(&f.owner) =>
        {
            s.store
                .set_instance_owner(domain, &f.owner)
                .await
                .map(|_| (Some(domain.to_string()), None))
        }
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Choose a server and a co-op, or an instance and a community.",
            )
        }
    };
    match r {
        Ok((domain, server)) => {
            people_changed(
                &s,
                &ctx,
                "assign owner",
                domain.as_deref(),
                server.as_deref(),
                &f.owner,
            )
            .await
        }
        Err(e) => internal(e),
    }
}

pub async fn revoke_sessions(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(person): Path<String>,
) -> Response {
    let Ok(Some(p)) = s.store.person(&person).await else {
        return not_found();
    };
    match s.store.revoke_sessions(&p.id).await {
        Ok(n) => {
            s.caches.forget_viewers();
            record_audit(
                &s.store,
                &ctx.viewer().person.email,
                "revoke sessions",
                None,
                None,
                "ok",
                &format!("{} ({n})", p.email),
            )
            .await;
            people_page(
                &s,
                &ctx,
                None,
                Some(format!(
                    "{} is logged out everywhere ({n} sessions ended).",
                    p.email
                )),
            )
            .await
        }
        Err(e) => internal(e),
    }
}

/// The dashboard's address as people reach it: `--public-url` when given, else read off the
/// request. Behind a TLS proxy the proxy says the scheme; served directly, plain HTTP is only
/// used on loopback (or with --insecure-http).
pub(crate) fn public_base(s: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &s.config.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let loopback =
        host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) if p == "http" || p == "https" => p,
        _ if s.config.insecure_http || loopback => "http",
        _ => "https",
    };
    format!("{scheme}://{host}")
}

// --- OpenID Connect login ---

const OIDC_PENDING: &str = "oidc_pending";

/// Sends the person to the provider (404 when no provider is configured).
pub async fn oidc_login(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    session: Session,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let Some(oidc) = s.config.oidc.clone() else {
        return not_found();
    };
    if ctx.viewer.is_some() {
        return Redirect::to(&safe_next(&q.next)).into_response();
    }
    let redirect = format!("{}/oidc/callback", public_base(&s, &headers));
    match oidc.begin(&redirect, &q.next).await {
        Ok((url, pending)) => match session.insert(OIDC_PENDING, pending).await {
            Ok(()) => Redirect::to(&url).into_response(),
            Err(e) => internal(e),
        },
        Err(e) => {
            eprintln!("cooper serve: OpenID login: {e:#}");
            problem(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "{} cannot be reached just now. Log in with your password, or try again in a minute.",
                    oidc.config.label
                ),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The way back from the provider: the state must be the one this session sent, the tokens
/// must verify, and the identity must belong to a person (linked before, or the one person
/// with the verified email). Never creates an account.
pub async fn oidc_callback(
    State(s): State<AppState>,
    session: Session,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(oidc) = s.config.oidc.clone() else {
        return not_found();
    };
    let refuse = |status: StatusCode, message: String| problem(status, &message);
    let pending: Option<crate::oidc::Pending> = session.remove(OIDC_PENDING).await.ok().flatten();
    let Some(pending) = pending.filter(crate::oidc::fresh) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "This login was not started here, or it took too long. Start again from the login page.".into(),
        );
    };
    if let Some(error) = &q.error {
        let why = q.error_description.as_deref().unwrap_or(error);
        record_audit(&s.store, "openid", "login", None, None, "refused", why).await;
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "{} did not log you in ({why}). Try again, or log in with your password.",
                oidc.config.label
            ),
        );
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The provider's answer has no code. Start again from the login page.".into(),
        );
    };
    if !crate::auth::same_secret(&state, &pending.state) {
        record_audit(
            &s.store,
            "openid",
            "login",
            None,
            None,
            "refused",
            "state does not match the session",
        )
        .await;
        return refuse(
            StatusCode::BAD_REQUEST,
            "This login answer belongs to another login. Start again from the login page.".into(),
        );
    }
    let next = pending.next.clone();
    let id = match oidc.finish(pending, code).await {
        Ok(id) => id,
        Err(e) => {
            eprintln!("cooper serve: OpenID login: {e:#}");
            record_audit(
                &s.store,
                "openid",
                "login",
                None,
                None,
                "failed",
                &format!("{e:#}"),
            )
            .await;
            return refuse(
                StatusCode::BAD_GATEWAY,
                format!("{}'s answer could not be checked, so you are not logged in. Try again; if it keeps happening, tell an operator.", oidc.config.label),
            );
        }
    };
    let who = id.email.clone().unwrap_or_else(|| id.subject.clone());
    let person = match person_for(&s, &id, &oidc.config.label).await {
        Ok(Ok(p)) => p,
        Ok(Err(why)) => {
            record_audit(
                &s.store,
                &who,
                "login",
                None,
                None,
                "refused",
                &format!("openid: {why}"),
            )
            .await;
            return refuse(StatusCode::FORBIDDEN, why);
        }
        Err(e) => return internal(e),
    };
    if let Err(e) = begin_session(&session, &person.id).await {
        return internal(e);
    }
    record_audit(&s.store, &person.email, "login", None, None, "ok", "openid").await;
    Redirect::to(&safe_next(&next)).into_response()
}

/// The person an OpenID identity logs in as, or why nobody.
async fn person_for(
    s: &AppState,
    id: &crate::oidc::Identity,
    provider: &str,
) -> anyhow::Result<Result<cooper_store::Person, String>> {
    if let Some(p) = s.store.person_by_subject(&id.subject).await? {
        if p.disabled {
            return Ok(Err(
                "This account is disabled. Ask an operator of your co-op.".into(),
            ));
        }
        return Ok(Ok(p));
    }
    let Some(email) = &id.email else {
        return Ok(Err(format!("{provider} did not tell cooper your email, so it cannot find your account. Log in with your password, or ask an operator.")));
    };
    if !id.email_verified {
        return Ok(Err(format!("{provider} has not verified {email}, so cooper cannot tell the address is yours. Verify it there, or log in with your password.")));
    }
    let Some(p) = s.store.person_by_email(email).await? else {
        return Ok(Err(format!("No account here has the email {email}. Ask an operator of your co-op for an invitation.")));
    };
    if p.disabled {
        return Ok(Err(
            "This account is disabled. Ask an operator of your co-op.".into(),
        ));
    }
    if !s.store.link_subject(&p.id, &id.subject).await? {
        return Ok(Err(format!("The account for {email} is already linked to another login at {provider}. Log in with that one, or with your password.")));
    }
    record_audit(
        &s.store,
        &p.email,
        "link openid",
        None,
        None,
        "ok",
        &id.subject,
    )
    .await;
    Ok(Ok(p))
}

// --- notifications: a person's preferences, the admin's webhooks and deliveries ---

pub async fn notification_settings(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<SavedQuery>,
) -> Response {
    let me = &ctx.viewer().person;
    let mut prefs = Vec::new();
    for (event, label, _) in crate::notify::EVENTS {
        let mode = match s.store.notify_mode(&me.id, event).await {
            Ok(m) => m,
            Err(e) => return internal(e),
        };
        prefs.push(PrefView { event, label, mode });
    }
    render(NotificationsPage {
        c: chrome(&ctx, "Notifications", "settings"),
        prefs,
        saved: q.saved.is_some(),
    })
}

#[derive(Deserialize, Default)]
pub struct SavedQuery {
    saved: Option<String>,
}

pub async fn save_notification_settings(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let me = ctx.viewer().person.id.clone();
    for (key, mode) in f {
        let Some(event) = key.strip_prefix("mode:") else {
            continue;
        };
        if !crate::notify::EVENTS.iter().any(|(e, _, _)| *e == event) {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("There is no event {event:?}."),
            );
        }
        match s.store.set_notify_mode(&me, event, &mode).await {
            Ok(()) => {}
            Err(cooper_store::StoreError::Invalid(why)) => {
                return problem(StatusCode::BAD_REQUEST, &why)
            }
            Err(e) => return internal(e),
        }
    }
    Redirect::to("/settings/notifications?saved=1").into_response()
}

async fn webhooks_page(
    s: &AppState,
    ctx: &Ctx,
    new_secret: Option<(String, String)>,
    error: Option<String>,
) -> Response {
    let hooks = match s.store.webhooks().await {
        Ok(h) => h,
        Err(e) => return internal(e),
    };
    let deliveries = s
        .store
        .outbox(50)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|m| DeliveryView {
            when: when(m.created_at),
            tone: match m.state.as_str() {
                "sent" => "ok",
                "failed" => "bad",
                _ if m.attempts > 0 => "warn",
                _ => "idle",
            },
            channel: m.channel,
            target: match hooks.iter().find(|h| h.id == m.target) {
                Some(h) => h.url.clone(),
                None => m.target,
            },
            subject: m.subject,
            state: m.state,
            attempts: m.attempts,
            error: m.last_error.unwrap_or_default(),
        })
        .collect();
    render(WebhooksPage {
        c: chrome(ctx, "Notifications", "webhooks"),
        hooks: hooks
            .into_iter()
            .map(|h| WebhookView {
                id: h.id,
                url: h.url,
                events: h.events.join(", "),
                created: when(h.created_at),
            })
            .collect(),
        events: crate::notify::EVENTS
            .iter()
            .map(|(e, l, _)| (*e, *l))
            .collect(),
        new_secret,
        error,
        deliveries,
        smtp: s.config.smtp.is_some(),
    })
}

pub async fn webhooks(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    webhooks_page(&s, &ctx, None, None).await
}

pub async fn add_webhook(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let url = f
        .iter()
        .find(|(k, _)| k == "url")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let events: Vec<String> = f
        .iter()
        .filter(|(k, _)| k == "event")
        .map(|(_, v)| v.clone())
        .filter(|v| crate::notify::EVENTS.iter().any(|(e, _, _)| e == v))
        .collect();
    let who = ctx.viewer().person.email.clone();
    match s.store.add_webhook(&url, &events, &who).await {
        Ok(h) => {
            record_audit(&s.store, &who, "add webhook", None, None, "ok", &h.url).await;
            webhooks_page(&s, &ctx, Some((h.url, h.secret)), None).await
        }
        Err(cooper_store::StoreError::Invalid(why)) => {
            let mut r = webhooks_page(&s, &ctx, None, Some(why)).await;
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
        Err(e) => internal(e),
    }
}

pub async fn delete_webhook(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    match s.store.delete_webhook(&id).await {
        Ok(true) => {
            let who = &ctx.viewer().person.email;
            record_audit(&s.store, who, "delete webhook", None, None, "ok", &id).await;
            Redirect::to("/admin/notifications").into_response()
        }
        Ok(false) => not_found(),
        Err(e) => internal(e),
    }
}
