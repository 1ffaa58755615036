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

/// The newest release of each local recipe tested to at least `min_level` (0: any).
pub fn offers(s: &AppState) -> Vec<Offer> {
    let rel = s.caches.releases(&s.abra);
    let mut out = Vec::new();
    for recipe in s.abra.recipes().unwrap_or_default() {
        if recipe == "cooper" {
            continue;
        }
        let Ok(repo) =
            cooper_recipe::repo::RecipeRepo::open(&recipe, &s.abra.recipes_dir().join(&recipe))
        else {
            continue;
        };
        let versions = repo.versions().unwrap_or_default();
        let pick = versions.iter().rev().find_map(|v| {
            let level = rel.levels.get(&(recipe.clone(), v.to_string())).copied();
            (s.config.min_level == 0 || level.is_some_and(|l| l >= s.config.min_level))
                .then(|| (v.to_string(), level))
        });
        if let Some((version, level)) = pick {
            out.push(Offer {
                recipe: recipe.clone(),
                version,
                level,
            });
        }
    }
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
    crate::pages::page_chrome(ctx, title, "request")
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
    match t.render() {
        Ok(html) => (status, axum::response::Html(html)).into_response(),
        Err(e) => crate::pages::internal(e),
    }
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
    domain: &str,
    errors: BTreeMap<String, String>,
) -> ReviewPage {
    ReviewPage {
        c: chrome(ctx, "Check and send"),
        chosen: f
            .options
            .iter()
            .filter(|o| d.options.contains(&o.id))
            .map(|o| {
                (
                    o.title.clone(),
                    o.fields
                        .iter()
                        .map(|x| {
                            (
                                label_of(&x.key),
                                d.values.get(&x.key).cloned().unwrap_or(x.default.clone()),
                            )
                        })
                        .collect(),
                )
            })
            .collect(),
        d: d.clone(),
        domain: domain.to_string(),
        errors,
    }
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
        match questions(&s, &d.recipe, &d.version) {
            Ok(f) => {
                return render(
                    review_page(&ctx, &d, &f, "", BTreeMap::new()),
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
            let answers = form::Answers {
                options: d.options.clone(),
                values: d.values.clone(),
                // Secrets are asked at setup, not here.
                secrets: f
                    .secrets
                    .iter()
                    .chain(f.options.iter().flat_map(|o| o.secrets.iter()))
                    .map(|x| (x.name.clone(), "x".repeat(x.length.unwrap_or(1))))
                    .collect(),
            };
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
                let answers =
                    serde_json::json!({ "options": d.options, "values": d.values }).to_string();
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
                        crate::pages::audit_line(
                            &s,
                            &d.email,
                            "instance request",
                            Some(&domain),
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
            render(
                review_page(&ctx, &d, &f, &domain, errors),
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
            crate::pages::audit_line(&s, &who, "decline instance request", None, "declined", &id)
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
