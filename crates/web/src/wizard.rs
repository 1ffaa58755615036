//! The setup wizard's pages (no account needed): a community says who it is and what it wants
//! (a recipe from the vetted catalogue: only releases tested to the federation's minimum
//! level), then chooses among the options its `.env.sample` offers ([`cooper_recipe::wizard`]).
//! The draft is kept in the visitor's session (a half-finished wizard waits for them).
//! Secrets the recipe cannot generate are *not* asked here — they would wait in the store —
//! but when the instance is set up.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use cooper_recipe::wizard::{self as form, FieldKind};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::routes::Ctx;
use crate::views::Chrome;
use crate::AppState;

const DRAFT: &str = "wizard_draft";

/// What the visitor answered so far (no secret values).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Draft {
    pub community: String,
    pub email: String,
    pub recipe: String,
    pub version: String,
    pub options: BTreeSet<String>,
    pub values: BTreeMap<String, String>,
    /// The expected size (a name from the co-op's rates).
    #[serde(default)]
    pub size: String,
    /// `start`, then `options`, then `review`.
    pub step: String,
}

/// A release a community may ask for.
#[derive(Debug, Clone)]
pub struct Offer {
    pub recipe: String,
    pub version: String,
    pub level: Option<u8>,
}

/// The newest release of each local recipe tested to at least `min_level` (0: any), from the
/// shared copy of the recipes' releases (no git on this public page's path).
pub fn offers(s: &AppState) -> Vec<Offer> {
    let rel = s.caches.releases(&s.abra);
    let mut out: Vec<Offer> = rel
        .versions
        .iter()
        .filter(|(recipe, _)| recipe.as_str() != "cooper")
        .filter_map(|(recipe, versions)| {
            versions.iter().rev().find_map(|v| {
                let level = rel.levels.get(&(recipe.clone(), v.clone())).copied();
                let tested =
                    s.config.min_level == 0 || level.is_some_and(|l| l >= s.config.min_level);
                tested.then(|| Offer {
                    recipe: recipe.clone(),
                    version: v.clone(),
                    level,
                })
            })
        })
        .collect();
    out.sort_by(|a, b| a.recipe.cmp(&b.recipe));
    out
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub struct FieldView {
    pub key: String,
    pub label: String,
    pub value: String,
    pub input: &'static str,
    pub required: bool,
    pub help: String,
    pub error: String,
}

pub struct OptView {
    pub id: String,
    pub title: String,
    pub help: Vec<String>,
    pub on: bool,
    pub fields: Vec<FieldView>,
    pub error: String,
}

#[derive(Template)]
#[template(path = "request_start.html")]
pub struct StartPage {
    pub c: Chrome,
    pub community: String,
    pub email: String,
    pub recipes: Vec<Choice>,
    pub errors: BTreeMap<String, String>,
}

#[derive(Template)]
#[template(path = "request_review.html")]
pub struct ReviewPage {
    pub c: Chrome,
    pub d: Draft,
    pub chosen: Vec<(String, Vec<(String, String)>)>,
    pub sizes: Vec<SizeView>,
    /// The co-op published rates (a contribution is suggested).
    pub priced: bool,
    pub domain: String,
    pub errors: BTreeMap<String, String>,
}

#[derive(Template)]
#[template(path = "request_sent.html")]
pub struct SentPage {
    pub c: Chrome,
    pub id: String,
    pub domain: String,
    pub email: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
pub struct QueuePage {
    pub c: Chrome,
    pub rows: Vec<QueueRow>,
}

pub struct QueueRow {
    pub id: String,
    pub community: String,
    pub email: String,
    pub app: String,
    pub domain: String,
    pub options: String,
    pub state: String,
    pub when: String,
    pub open: bool,
}

#[derive(Template)]
#[template(path = "request_options.html")]
pub struct OptionsPage {
    pub c: Chrome,
    pub recipe: String,
    pub version: String,
    pub options: Vec<OptView>,
    pub secrets_later: Vec<String>,
    pub errors: BTreeMap<String, String>,
}

fn chrome(ctx: &Ctx, title: &str) -> Chrome {
    crate::pages::chrome(ctx, title, "request")
}

async fn draft(session: &Session) -> Draft {
    session
        .get::<Draft>(DRAFT)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| Draft {
            step: "start".into(),
            ..Default::default()
        })
}

fn render(t: impl Template, status: StatusCode) -> Response {
    let mut r = crate::pages::render(t);
    if r.status().is_success() {
        *r.status_mut() = status;
    }
    r
}

fn label_of(key: &str) -> String {
    let words = key.to_lowercase().replace('_', " ");
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => words,
    }
}

fn input_of(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Email => "email",
        FieldKind::Number => "number",
        FieldKind::Flag | FieldKind::Text => "text",
    }
}

/// The sample of a release, and the questions it asks.
fn questions(s: &AppState, recipe: &str, version: &str) -> Result<form::Form, String> {
    let repo = cooper_recipe::repo::RecipeRepo::open(recipe, &s.abra.recipes_dir().join(recipe))
        .map_err(|e| e.to_string())?;
    let files = repo.at_version(version).map_err(|e| e.to_string())?;
    let sample = files
        .text(".env.sample")
        .ok_or_else(|| format!("{recipe} {version} has no .env.sample"))?;
    form::derive(&sample).map_err(|e| format!("{recipe} {version}: .env.sample {e}"))
}

fn start_page(s: &AppState, ctx: &Ctx, d: &Draft, errors: BTreeMap<String, String>) -> StartPage {
    StartPage {
        c: chrome(ctx, "Ask for an instance"),
        community: d.community.clone(),
        email: d.email.clone(),
        recipes: offers(s)
            .into_iter()
            .map(|o| Choice {
                selected: o.recipe == d.recipe,
                label: match o.level {
                    Some(l) => format!("{} {} (tested to level {l})", o.recipe, o.version),
                    None => format!("{} {}", o.recipe, o.version),
                },
                value: o.recipe,
            })
            .collect(),
        errors,
    }
}

fn options_page(
    ctx: &Ctx,
    d: &Draft,
    f: &form::Form,
    errors: BTreeMap<String, String>,
) -> OptionsPage {
    OptionsPage {
        c: chrome(ctx, "Choose the options"),
        recipe: d.recipe.clone(),
        version: d.version.clone(),
        options: f
            .options
            .iter()
            .map(|o| OptView {
                error: errors.get(&o.id).cloned().unwrap_or_default(),
                id: o.id.clone(),
                title: o.title.clone(),
                help: o.help.clone(),
                on: d.options.contains(&o.id),
                fields: o
                    .fields
                    .iter()
                    .map(|x| FieldView {
                        label: label_of(&x.key),
                        value: d.values.get(&x.key).cloned().unwrap_or(x.default.clone()),
                        input: input_of(x.kind),
                        required: x.required(),
                        help: x.help.clone().unwrap_or_default(),
                        error: errors.get(&x.key).cloned().unwrap_or_default(),
                        key: x.key.clone(),
                    })
                    .collect(),
            })
            .collect(),
        secrets_later: f
            .secrets
            .iter()
            .chain(f.options.iter().flat_map(|o| o.secrets.iter()))
            .map(|x| x.name.replace('_', " "))
            .collect(),
        errors,
    }
}

fn review_page(
    ctx: &Ctx,
    d: &Draft,
    f: &form::Form,
    rates: &crate::rates::Rates,
    domain: &str,
    errors: BTreeMap<String, String>,
) -> ReviewPage {
    ReviewPage {
        c: chrome(ctx, "Check and send"),
        chosen: chosen_of(f, &d.options, &d.values),
        sizes: size_views(rates, &d.size),
        priced: rates.prices.is_some(),
        d: d.clone(),
        domain: domain.to_string(),
        errors,
    }
}

/// A size as the wizard offers it.
pub struct SizeView {
    pub name: String,
    pub people: String,
    pub needs: String,
    pub contribution: Option<String>,
    pub selected: bool,
}

fn size_views(rates: &crate::rates::Rates, selected: &str) -> Vec<SizeView> {
    rates
        .sizes
        .iter()
        .map(|x| {
            let sg = rates.suggest(x);
            SizeView {
                name: x.name.clone(),
                people: x.people.clone(),
                needs: sg.needs,
                contribution: sg.contribution,
                selected: x.name == selected,
            }
        })
        .collect()
}

fn rates(s: &AppState) -> Result<crate::rates::Rates, Box<Response>> {
    crate::rates::Rates::load(&s.abra.root).map_err(|e| {
        Box::new(crate::pages::problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("The co-op's rates cannot be read: {e}. An operator fixes that file."),
        ))
    })
}

/// A domain name people can type (labels of letters, digits and hyphens), lower-cased.
pub fn check_domain(d: &str) -> Result<String, String> {
    let d = d.trim().trim_end_matches('.').to_lowercase();
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if d.len() > 253 || d.split('.').count() < 2 || !d.split('.').all(ok_label) {
        return Err(
            "Give an address like radio.example.org (letters, digits, hyphens and dots).".into(),
        );
    }
    Ok(d)
}

/// The wizard's current step.
pub async fn show(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    session: Session,
) -> Response {
    let d = draft(&session).await;
    if d.step == "review" {
        let rates = match rates(&s) {
            Ok(r) => r,
            Err(resp) => return *resp,
        };
        match questions(&s, &d.recipe, &d.version) {
            Ok(f) => {
                return render(
                    review_page(&ctx, &d, &f, &rates, "", BTreeMap::new()),
                    StatusCode::OK,
                )
            }
            Err(e) => return crate::pages::internal(e),
        }
    }
    if d.step == "options" {
        match questions(&s, &d.recipe, &d.version) {
            Ok(f) => return render(options_page(&ctx, &d, &f, BTreeMap::new()), StatusCode::OK),
            Err(e) => return crate::pages::internal(e),
        }
    }
    render(start_page(&s, &ctx, &d, BTreeMap::new()), StatusCode::OK)
}

/// One step's answers: checked field by field; kept in the draft either way.
pub async fn answer(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    session: Session,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let mut d = draft(&session).await;
    let mut errors = BTreeMap::new();
    match get("step").as_str() {
        "start" => {
            d.community = get("community").chars().take(120).collect();
            d.email = get("email");
            let recipe = get("recipe");
            if d.community.is_empty() {
                errors.insert("community".into(), "Give your community's name.".into());
            }
            if crate::notify::check_address(&d.email).is_err() || !d.email.contains('@') {
                errors.insert(
                    "email".into(),
                    "Give an e-mail address we can write to (name@example.org).".into(),
                );
            }
            match offers(&s).into_iter().find(|o| o.recipe == recipe) {
                Some(o) => {
                    if o.recipe != d.recipe || o.version != d.version {
                        d.options.clear();
                        d.values.clear();
                    }
                    d.recipe = o.recipe;
                    d.version = o.version;
                }
                None => {
                    errors.insert("recipe".into(), "Choose one of the apps offered.".into());
                }
            }
            if errors.is_empty() {
                d.step = "options".into();
            }
            if let Err(e) = session.insert(DRAFT, &d).await {
                return crate::pages::internal(e);
            }
            if errors.is_empty() {
                return Redirect::to("/request").into_response();
            }
            render(start_page(&s, &ctx, &d, errors), StatusCode::BAD_REQUEST)
        }
        "options" if d.step == "options" || d.step == "review" => {
            let f = match questions(&s, &d.recipe, &d.version) {
                Ok(f) => f,
                Err(e) => return crate::pages::internal(e),
            };
            d.options = pairs
                .iter()
                .filter(|(k, _)| k == "option")
                .map(|(_, v)| v.clone())
                .collect();
            d.values = pairs
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("value:")
                        .map(|k| (k.to_string(), v.trim().to_string()))
                })
                .filter(|(k, _)| {
                    f.options
                        .iter()
                        .any(|o| o.fields.iter().any(|x| &x.key == k))
                })
                .collect();
            // Secrets are given at approval, not here.
            let answers = form::Answers {
                options: d.options.clone(),
                values: d.values.clone(),
                secrets: Default::default(),
            }
            .secrets_given_elsewhere(&f);
            for e in form::validate(&f, &answers) {
                errors.insert(e.field, e.message);
            }
            if errors.is_empty() {
                d.step = "review".into();
            }
            if let Err(e) = session.insert(DRAFT, &d).await {
                return crate::pages::internal(e);
            }
            if errors.is_empty() {
                return Redirect::to("/request").into_response();
            }
            render(options_page(&ctx, &d, &f, errors), StatusCode::BAD_REQUEST)
        }
        "back" => {
            d.step = "options".into();
            if let Err(e) = session.insert(DRAFT, &d).await {
                return crate::pages::internal(e);
            }
            Redirect::to("/request").into_response()
        }
        "send" if d.step == "review" => {
            let f = match questions(&s, &d.recipe, &d.version) {
                Ok(f) => f,
                Err(e) => return crate::pages::internal(e),
            };
            let rates = match rates(&s) {
                Ok(r) => r,
                Err(resp) => return *resp,
            };
            d.size = get("size");
            if rates.size(&d.size).is_none() {
                errors.insert("size".into(), "Choose how many people will use it.".into());
            }
            let wanted = get("domain");
            let domain = match check_domain(&wanted) {
                Ok(dn) if s.apps.get(&dn).is_some() => {
                    errors.insert(
                        "domain".into(),
                        format!("{dn} is already in use: choose another address."),
                    );
                    dn
                }
                Ok(dn) => dn,
                Err(e) => {
                    errors.insert("domain".into(), e);
                    wanted.clone()
                }
            };
            if errors.is_empty() {
                let answers = serde_json::json!({
                    "options": d.options,
                    "values": d.values,
                    "size": d.size,
                })
                .to_string();
                match s
                    .store
                    .create_instance_request(&cooper_store::NewInstanceRequest {
                        community: &d.community,
                        email: &d.email,
                        recipe: &d.recipe,
                        version: &d.version,
                        answers: &answers,
                        domain: &domain,
                    })
                    .await
                {
                    Ok(r) => {
                        // An operator typing in a request received by e-mail is named.
                        let entered_by = ctx
                            .viewer
                            .as_ref()
                            .filter(|v| v.is_admin() || !v.coops.is_empty())
                            .map(|v| v.person.email.clone());
                        if let Some(op) = &entered_by {
                            let _ = s
                                .store
                                .add_request_comment(
                                    &r.id,
                                    op,
                                    &format!("Entered by {op} from a request received by e-mail."),
                                )
                                .await;
                        }
                        crate::pages::record_audit(
                            &s.store,
                            entered_by.as_deref().unwrap_or(&d.email),
                            "instance request",
                            Some(&domain),
                            None,
                            "new",
                            &r.id,
                        )
                        .await;
                        s.notifier
                            .emit_logged(crate::notify::Event {
                                event: "request.received",
                                domain: None,
                                server: None,
                                title: format!("{} asks for {} at {domain}", d.community, d.recipe),
                                detail: format!(
                                    "{} {} for {}, contact {}.",
                                    d.recipe, d.version, d.community, d.email
                                ),
                                link: Some("/queue".into()),
                                dedupe: None,
                            })
                            .await;
                        s.notifier
                            .tell(
                                &d.email,
                                "request.received",
                                &format!("We received your request for {domain}"),
                                &format!(
                                    "Thank you. An operator of the co-op will look at your \
                                     request for {} {} at {domain} and write to you at this \
                                     address.",
                                    d.recipe, d.version
                                ),
                                None,
                            )
                            .await;
                        let _ = session.remove::<Draft>(DRAFT).await;
                        return render(
                            SentPage {
                                c: chrome(&ctx, "Request sent"),
                                id: r.id,
                                domain,
                                email: d.email,
                            },
                            StatusCode::OK,
                        );
                    }
                    Err(cooper_store::StoreError::Invalid(why)) => {
                        errors.insert("domain".into(), why);
                    }
                    Err(e) => return crate::pages::internal(e),
                }
            }
            let _ = session.insert(DRAFT, &d).await;
            render(
                review_page(&ctx, &d, &f, &rates, &domain, errors),
                StatusCode::BAD_REQUEST,
            )
        }
        "restart" => {
            let _ = session.remove::<Draft>(DRAFT).await;
            Redirect::to("/request").into_response()
        }
        _ => crate::pages::problem(
            StatusCode::BAD_REQUEST,
            "This step is not where your request stands: start again from /request.",
        ),
    }
}

/// The operators' queue of requests for new instances.
pub async fn queue(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let rows = match s.store.instance_requests(false).await {
        Ok(r) => r,
        Err(e) => return crate::pages::internal(e),
    };
    render(
        QueuePage {
            c: chrome(&ctx, "Requests for instances"),
            rows: rows
                .into_iter()
                .map(|r| {
                    let options = serde_json::from_str::<serde_json::Value>(&r.answers)
                        .ok()
                        .and_then(|v| {
                            v["options"].as_array().map(|a| {
                                a.iter()
                                    .filter_map(|x| x.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                        })
                        .unwrap_or_default();
                    QueueRow {
                        open: matches!(r.state.as_str(), "new" | "needs-information"),
                        when: crate::views::when(r.created_at),
                        app: format!("{} {}", r.recipe, r.version),
                        options,
                        id: r.id,
                        community: r.community,
                        email: r.email,
                        domain: r.domain,
                        state: r.state,
                    }
                })
                .collect(),
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct DeclineForm {
    #[serde(default)]
    reason: String,
}

/// An operator declines a request, saying why (the reason is kept as a comment).
pub async fn decline(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Form(f): Form<DeclineForm>,
) -> Response {
    let who = ctx.viewer().person.email.clone();
    let reason: String = f.reason.trim().chars().take(2000).collect();
    if reason.is_empty() {
        return crate::pages::problem(
            StatusCode::BAD_REQUEST,
            "Say why, so the community knows what to do next.",
        );
    }
    match s
        .store
        .move_instance_request(&id, &["new", "needs-information"], "declined", &who)
        .await
    {
        Ok(true) => {
            let _ = s.store.add_request_comment(&id, &who, &reason).await;
            crate::pages::record_audit(
                &s.store,
                &who,
                "decline instance request",
                None,
                None,
                "declined",
                &id,
            )
            .await;
            Redirect::to("/queue").into_response()
        }
        Ok(false) => match s.store.instance_request(&id).await {
            Ok(Some(_)) => {
                crate::pages::problem(StatusCode::CONFLICT, "This request was decided already.")
            }
            Ok(None) => crate::pages::not_found(),
            Err(e) => crate::pages::internal(e),
        },
        Err(e) => crate::pages::internal(e),
    }
}

// --- one request, for operators: approve onto a server, hand over ---

#[derive(Template)]
#[template(path = "request.html")]
pub struct RequestPage {
    pub c: Chrome,
    pub r: cooper_store::InstanceRequest,
    pub app: String,
    pub chosen: Vec<(String, Vec<(String, String)>)>,
    /// The size asked for: what it needs, and the suggested contribution.
    pub size: Option<SizeView>,
    pub comments: Vec<(String, String, String)>,
    pub servers: Vec<Choice>,
    /// Secrets the recipe cannot generate (for the options chosen): name, hint.
    pub secrets: Vec<(String, String)>,
    pub approvable: bool,
    pub open: bool,
    pub errors: BTreeMap<String, String>,
    pub job: Option<String>,
    pub invite_link: Option<String>,
    /// The address check, when asked for: what it found, the records, whether it points.
    pub dns: Option<(String, Vec<String>, bool)>,
}

/// The options a request chose, with their values (as the review page shows them).
fn chosen_of(
    f: &form::Form,
    options: &BTreeSet<String>,
    values: &BTreeMap<String, String>,
) -> Vec<(String, Vec<(String, String)>)> {
    f.options
        .iter()
        .filter(|o| options.contains(&o.id))
        .map(|o| {
            (
                o.title.clone(),
                o.fields
                    .iter()
                    .map(|x| {
                        (
                            label_of(&x.key),
                            values
                                .get(&x.key)
                                .cloned()
                                .unwrap_or_else(|| x.default.clone()),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

/// A request's stored answers.
fn answers_of(r: &cooper_store::InstanceRequest) -> (BTreeSet<String>, BTreeMap<String, String>) {
    #[derive(Deserialize, Default)]
    struct Stored {
        #[serde(default)]
        options: BTreeSet<String>,
        #[serde(default)]
        values: BTreeMap<String, String>,
    }
    let a: Stored = serde_json::from_str(&r.answers).unwrap_or_default();
    (a.options, a.values)
}

/// The secrets an operator gives when approving: those the recipe cannot generate, outside
/// any option or in an option the request chose.
fn secrets_to_give(f: &form::Form, options: &BTreeSet<String>) -> Vec<form::SecretField> {
    f.secrets
        .iter()
        .chain(
            f.options
                .iter()
                .filter(|o| options.contains(&o.id))
                .flat_map(|o| o.secrets.iter()),
        )
        .cloned()
        .collect()
}

/// The servers this operator may place an instance on, each with what it holds and has.
async fn server_choices(
    s: &AppState,
    ctx: &Ctx,
    selected: &str,
    need: Option<&crate::rates::Size>,
) -> Vec<Choice> {
    let v = ctx.viewer();
    let apps = s.apps.all();
    let names: Vec<String> = s
        .apps
        .servers()
        .into_iter()
        .filter(|n| v.on_server(n, &ctx.owners) >= crate::authz::Right::Execute)
        .collect();
    // Every server is asked at once (an unreachable one costs its 5 s once, not per server).
    let capacities = futures_util::future::join_all(names.iter().map(|name| async move {
        match tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let engine = s.live.engine(name).await?;
            let nodes = engine.nodes().await.map_err(|e| e.to_string())?;
            let ready = nodes.iter().filter(|n| n.state == "ready").count();
            let reserved = engine.reserved(ready).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((nodes, reserved))
        })
        .await
        {
            Ok(Ok((nodes, (held_cpus, held_memory)))) => {
                let ready: Vec<_> = nodes.iter().filter(|n| n.state == "ready").collect();
                let cpus: f64 = ready.iter().map(|n| n.nano_cpus as f64 / 1e9).sum();
                let memory: i64 = ready.iter().map(|n| n.memory_bytes).sum();
                let free_cpus = (cpus - held_cpus as f64 / 1e9).max(0.0);
                let free_memory = (memory - held_memory).max(0);
                let text = format!(
                    "{} node{} ready; free: {free_cpus:.1} of {cpus:.1} CPUs, {} of {} memory",
                    ready.len(),
                    if ready.len() == 1 { "" } else { "s" },
                    crate::views::bytes(free_memory),
                    crate::views::bytes(memory)
                );
                // The verdict first: a select shows only the start of a long option.
                let verdict = need
                    .map(|n| fit(n, free_cpus, free_memory))
                    .unwrap_or_default();
                (verdict, text)
            }
            Ok(Err(e)) => (String::new(), format!("unreachable: {e}")),
            Err(_) => (String::new(), "did not answer within 5 s".to_string()),
        }
    }))
    .await;
    names
        .into_iter()
        .zip(capacities)
        .map(|(name, (verdict, capacity))| {
            let here = apps.iter().filter(|a| a.server == name).count();
            Choice {
                selected: name == selected,
                label: format!(
                    "{name}{verdict} — {here} app{} already; {capacity}",
                    if here == 1 { "" } else { "s" }
                ),
                value: name,
            }
        })
        .collect()
}

/// Whether a size fits what a server has free (not reserved by its services).
fn fit(n: &crate::rates::Size, free_cpus: f64, free_memory: i64) -> String {
    let need_memory = (n.memory_gib * (1u64 << 30) as f64) as i64;
    let mut short = Vec::new();
    if n.cpus > free_cpus {
        short.push(format!("{:.1} CPUs", n.cpus));
    }
    if need_memory > free_memory {
        short.push(format!("{} memory", crate::views::bytes(need_memory)));
    }
    if short.is_empty() {
        format!(" — the size asked for ({}) fits", n.name)
    } else {
        format!(
            " — TOO SMALL for the size asked for ({}): it needs {}",
            n.name,
            short.join(" and ")
        )
    }
}

async fn request_page(
    s: &AppState,
    ctx: &Ctx,
    r: cooper_store::InstanceRequest,
    errors: BTreeMap<String, String>,
    invite_link: Option<String>,
) -> Result<RequestPage, Response> {
    let (options, values) = answers_of(&r);
    let f = questions(s, &r.recipe, &r.version).map_err(crate::pages::internal)?;
    let comments = s
        .store
        .request_comments(&r.id)
        .await
        .map_err(crate::pages::internal)?
        .into_iter()
        .map(|(who, body, at)| (who, body, crate::views::when(at)))
        .collect();
    let job = s
        .store
        .jobs(Some(&r.domain), 20)
        .await
        .map_err(crate::pages::internal)?
        .into_iter()
        .find(|j| j.kind == "provision")
        .map(|j| j.id);
    let approvable = matches!(r.state.as_str(), "new" | "needs-information" | "failed");
    let asked = serde_json::from_str::<serde_json::Value>(&r.answers)
        .ok()
        .and_then(|v| v["size"].as_str().map(str::to_string))
        .unwrap_or_default();
    let rates = crate::rates::Rates::load(&s.abra.root);
    let need = rates.as_ref().ok().and_then(|r| r.size(&asked)).cloned();
    let size = match &rates {
        Ok(rates) => size_views(rates, &asked).into_iter().find(|x| x.selected),
        Err(e) => Some(SizeView {
            name: asked.clone(),
            people: String::new(),
            needs: format!("unknown: {e}"),
            contribution: None,
            selected: true,
        }),
    };
    Ok(RequestPage {
        size,
        c: chrome(ctx, &format!("Request for {}", r.domain)),
        app: format!("{} {}", r.recipe, r.version),
        chosen: chosen_of(&f, &options, &values),
        comments,
        servers: if approvable {
            server_choices(
                s,
                ctx,
                r.server.as_deref().unwrap_or_default(),
                need.as_ref(),
            )
            .await
        } else {
            Vec::new()
        },
        secrets: secrets_to_give(&f, &options)
            .into_iter()
            .map(|x| {
                let hint = match x.length {
                    Some(n) => format!("{n} characters"),
                    None => "as the community gave it to you".into(),
                };
                (x.name, hint)
            })
            .collect(),
        approvable,
        open: matches!(r.state.as_str(), "new" | "needs-information"),
        errors,
        job,
        invite_link,
        dns: None,
        r,
    })
}

#[derive(Deserialize, Default)]
pub struct RequestQuery {
    #[serde(default)]
    check: String,
    #[serde(default)]
    server: String,
}

/// One request, for operators; with `?check=dns`, the address's records and a live check
/// against the server chosen (or the one the request is on).
pub async fn show_request(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<RequestQuery>,
) -> Response {
    match s.store.instance_request(&id).await {
        Ok(Some(r)) => match request_page(&s, &ctx, r, BTreeMap::new(), None).await {
            Ok(mut p) => {
                if q.check == "dns" {
                    let server =
                        p.r.server
                            .clone()
                            .or_else(|| {
                                p.servers
                                    .iter()
                                    .find(|c| c.value == q.server)
                                    .or(p.servers.first())
                                    .map(|c| c.value.clone())
                            })
                            .unwrap_or_default();
                    p.dns = Some(
                        match crate::dns::Dns::new(s.config.dns_server, &s.config.server_addresses)
                        {
                            Ok(dns) => {
                                let c = dns.check(&p.r.domain, &server).await;
                                (c.describe(), c.records.clone(), c.ok())
                            }
                            Err(e) => (format!("No DNS check possible: {e}"), Vec::new(), false),
                        },
                    );
                    for c in p.servers.iter_mut() {
                        c.selected = c.value == server;
                    }
                }
                render(p, StatusCode::OK)
            }
            Err(resp) => resp,
        },
        Ok(None) => crate::pages::not_found(),
        Err(e) => crate::pages::internal(e),
    }
}

/// An operator approves a request onto a server: the secrets the recipe cannot generate are
/// given here (kept in memory only until the job takes them), then the provisioning job runs.
pub async fn approve(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let r = match s.store.instance_request(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return crate::pages::not_found(),
        Err(e) => return crate::pages::internal(e),
    };
    let who = ctx.viewer().person.email.clone();
    let mut errors = BTreeMap::new();
    let server = get("server");
    if !s.apps.servers().contains(&server)
        || ctx.viewer().on_server(&server, &ctx.owners) < crate::authz::Right::Execute
    {
        errors.insert("server".into(), "Choose one of the servers listed.".into());
    }
    if s.apps.get(&r.domain).is_some() {
        errors.insert(
            "server".into(),
            format!(
                "{} is an app already: decline this request or remove that app first.",
                r.domain
            ),
        );
    }
    let (options, values) = answers_of(&r);
    let f = match questions(&s, &r.recipe, &r.version) {
        Ok(f) => f,
        Err(e) => return crate::pages::internal(e),
    };
    let mut given = Vec::new();
    for x in secrets_to_give(&f, &options) {
        let v = pairs
            .iter()
            .find(|(k, _)| k == &format!("secret:{}", x.name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if v.is_empty() {
            errors.insert(
                format!("secret:{}", x.name),
                "The recipe cannot make this one: enter the value the community gave you.".into(),
            );
        } else if v.contains('\n') {
            errors.insert(format!("secret:{}", x.name), "One line only.".into());
        } else {
            given.push((x.name.clone(), cooper_recipe::secrets::SecretValue::new(v)));
        }
    }
    if !errors.is_empty() {
        return match request_page(&s, &ctx, r, errors, None).await {
            Ok(p) => render(p, StatusCode::BAD_REQUEST),
            Err(resp) => resp,
        };
    }
    match s.store.approve_instance_request(&id, &server, &who).await {
        Ok(true) => {}
        Ok(false) => {
            return crate::pages::problem(StatusCode::CONFLICT, "This request was decided already.")
        }
        Err(e) => return crate::pages::internal(e),
    }
    s.jobs.vault.give(&id, given);
    let coop = ctx
        .owners
        .server_coop
        .get(&server)
        .cloned()
        .or_else(|| ctx.viewer().coops.iter().next().cloned());
    let args = crate::jobs::Args {
        request: Some(id.clone()),
        provision: Some(crate::jobs::ProvisionArgs {
            server: server.clone(),
            recipe: r.recipe.clone(),
            version: r.version.clone(),
            options,
            values,
            email: r.email.clone(),
            community: r.community.clone(),
            coop,
            keep: get("keep") == "on",
        }),
        ..Default::default()
    };
    match s.jobs.submit("provision", &r.domain, &args, &who).await {
        Ok(job) => {
            crate::pages::record_audit(
                &s.store,
                &who,
                "approve instance request",
                Some(&r.domain),
                Some(&server),
                "provisioning",
                &format!("{id}: job {}", job.id),
            )
            .await;
            s.notifier
                .tell(
                    &r.email,
                    "request.approved",
                    &format!("Your request for {} was approved", r.domain),
                    "An operator approved your request; the instance is being set up now. You \
                     will hear from us again when it is live.",
                    None,
                )
                .await;
            Redirect::to(&format!("/jobs/{}", job.id)).into_response()
        }
        Err(e) => {
            s.jobs.vault.take_given(&id);
            crate::pages::internal(e)
        }
    }
}

/// A new invitation for a live request's requester, shown once to the operator (for when the
/// e-mail did not arrive).
pub async fn reinvite(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: axum::http::HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let r = match s.store.instance_request(&id).await {
        Ok(Some(r)) if r.state == "live" => r,
        Ok(Some(_)) => {
            return crate::pages::problem(
                StatusCode::CONFLICT,
                "Only a live instance's requester is invited.",
            )
        }
        Ok(None) => return crate::pages::not_found(),
        Err(e) => return crate::pages::internal(e),
    };
    let Some(community) = ctx.owners.instance_community.get(&r.domain).cloned() else {
        return crate::pages::problem(
            StatusCode::CONFLICT,
            "This instance has no community yet: set its owner on the People page first.",
        );
    };
    let who = ctx.viewer().person.email.clone();
    let token = cooper_store::Token {
        purpose: "invite".into(),
        email: Some(r.email.clone()),
        kind: Some("community".into()),
        target_id: Some(community),
        role: Some("admin".into()),
        created_by: Some(who.clone()),
    };
    let secret = match s
        .store
        .issue_token(&token, crate::provisioning::INVITE_VALID_MS)
        .await
    {
        Ok(t) => t,
        Err(e) => return crate::pages::internal(e),
    };
    crate::pages::record_audit(
        &s.store,
        &who,
        "invite",
        Some(&r.domain),
        None,
        "ok",
        &format!("{} as admin of the community of {}", r.email, r.domain),
    )
    .await;
    let link = format!(
        "{}/invite/{secret}",
        crate::pages::public_base(&s, &headers)
    );
    match request_page(&s, &ctx, r, BTreeMap::new(), Some(link)).await {
        Ok(p) => render(p, StatusCode::OK),
        Err(resp) => resp,
    }
}

// --- the initial credentials, for the community's admin, once ---

#[derive(Template)]
#[template(path = "credentials.html")]
pub struct CredentialsPage {
    pub c: Chrome,
    pub domain: String,
    /// Shown now (the only time): label, the recipe's name for it, value.
    pub shown: Vec<(String, String, String)>,
    pub waiting: bool,
    pub message: String,
}

pub async fn credentials(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    axum::extract::Path(domain): axum::extract::Path<String>,
) -> Response {
    let email = ctx.viewer().person.email.clone();
    let waiting = s.jobs.vault.waiting_for(&domain, &email);
    render(
        CredentialsPage {
            c: crate::pages::chrome(&ctx, "Initial credentials", "instances"),
            message: if waiting {
                "They are shown once: write them down or put them in your password manager before you leave the page.".into()
            } else {
                "No initial credentials wait for you here: they were shown already (or were never made for you). Only a reset gives new ones: ask an operator of your co-op.".into()
            },
            domain,
            shown: Vec::new(),
            waiting,
        },
        StatusCode::OK,
    )
}

pub async fn reveal_credentials(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    axum::extract::Path(domain): axum::extract::Path<String>,
) -> Response {
    let email = ctx.viewer().person.email.clone();
    let (shown, message, outcome) = match s.jobs.vault.reveal(&domain, &email) {
        Ok(list) => (
            list.into_iter()
                .map(|c| (label_of(&c.name), c.name, c.value.expose().to_string()))
                .collect::<Vec<_>>(),
            "This is the only time they are shown. Keep them safe, and change the password after the first login.".to_string(),
            "shown",
        ),
        Err(crate::vault::Refused::NotYours) => (
            Vec::new(),
            "These credentials are for the person who asked for the instance; they are not shown to anyone else.".into(),
            "refused",
        ),
        Err(crate::vault::Refused::Gone) => (
            Vec::new(),
            "They were shown already (or were never made for you). Only a reset gives new ones: ask an operator of your co-op.".into(),
            "gone",
        ),
    };
    crate::pages::record_audit(
        &s.store,
        &email,
        "read initial credentials",
        Some(&domain),
        None,
        outcome,
        &format!("{} value(s)", shown.len()),
    )
    .await;
    let mut r = render(
        CredentialsPage {
            c: crate::pages::chrome(&ctx, "Initial credentials", "instances"),
            domain,
            waiting: false,
            shown,
            message,
        },
        StatusCode::OK,
    );
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

#[derive(Deserialize)]
pub struct MessageForm {
    #[serde(default)]
    message: String,
    /// `ask`: sent to the requester, the request waits for their answer; `note`: kept for
    /// operators only (a reply received by e-mail, say).
    #[serde(default)]
    then: String,
}

/// An operator writes on a request: a question to the requester (mailed; the request then
/// needs information) or a note for the operators (the requester's reply typed in).
pub async fn write(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Form(f): Form<MessageForm>,
) -> Response {
    let who = ctx.viewer().person.email.clone();
    let message: String = f.message.trim().chars().take(4000).collect();
    let r = match s.store.instance_request(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return crate::pages::not_found(),
        Err(e) => return crate::pages::internal(e),
    };
    if message.is_empty() {
        let mut errors = BTreeMap::new();
        errors.insert("message".into(), "Write something first.".into());
        return match request_page(&s, &ctx, r, errors, None).await {
            Ok(p) => render(p, StatusCode::BAD_REQUEST),
            Err(resp) => resp,
        };
    }
    let ask = f.then == "ask";
    if ask {
        match s
            .store
            .move_instance_request(
                &id,
                &["new", "needs-information"],
                "needs-information",
                &who,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return crate::pages::problem(
                    StatusCode::CONFLICT,
                    "This request was decided already: a question cannot hold it now.",
                )
            }
            Err(e) => return crate::pages::internal(e),
        }
    }
    let body = if ask {
        format!("Question to the requester: {message}")
    } else {
        format!("Note: {message}")
    };
    if let Err(e) = s.store.add_request_comment(&id, &who, &body).await {
        return crate::pages::internal(e);
    }
    if ask {
        s.notifier
            .tell(
                &r.email,
                "request.question",
                &format!("A question about your request for {}", r.domain),
                &format!(
                    "Before we can set up {} for {}, we need to know:\n\n{message}\n\nPlease \
                     answer by replying to this e-mail.",
                    r.domain, r.community
                ),
                None,
            )
            .await;
    }
    crate::pages::record_audit(
        &s.store,
        &who,
        if ask {
            "ask requester"
        } else {
            "note on request"
        },
        Some(&r.domain),
        None,
        if ask { "needs-information" } else { "ok" },
        &id,
    )
    .await;
    Redirect::to(&format!("/queue/{id}")).into_response()
}

#[cfg(test)]
mod fit_tests {
    use super::fit;

    #[test]
    fn a_size_fits_or_says_what_is_short() {
        let size = crate::rates::Size {
            name: "up to 50 people".into(),
            people: String::new(),
            cpus: 1.0,
            memory_gib: 2.0,
            disk_gib: 10.0,
        };
        assert!(fit(&size, 1.5, 3 << 30).contains("fits"));
        let short = fit(&size, 0.5, 1 << 30);
        assert!(
            short.contains("TOO SMALL") && short.contains("1.0 CPUs") && short.contains("2.0 GiB"),
            "{short}"
        );
    }
}
