//! The books' pages: a co-op's month (preview, propose, close), its entries and rule, each
//! community's transparency page with its charts and downloads, the federation-wide view and
//! the optional public summary. The arithmetic is `cooper-ledger`'s and the reading and
//! closing `cooper_ops::books`' — the same as `cooper ledger` in a terminal.
//!
//! A community page reads only recorded (proposed or closed) months: it never waits for an
//! engine. A co-op's open month is previewed live (that may ask its servers for figures).

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use cooper_ledger::entry::{date_text, hours_text};
use cooper_ledger::import;
use cooper_ledger::{format_amount, Currency, Period, Settlement};
use cooper_store::SettlementRow;
use serde::Deserialize;

use crate::authz::Right;
use crate::charts;
use crate::pages::{chrome, internal, not_found, problem, record_audit, render};
use crate::routes::Ctx;
use crate::views::Chrome;
use crate::AppState;

/// How many months the charts look back.
const MONTHS_SHOWN: usize = 12;

#[derive(Deserialize, Default)]
pub struct PeriodQuery {
    period: Option<String>,
}

/// The month asked for, or `default`; a bad one is answered with a page naming it.
fn period_of(q: &PeriodQuery, default: Period) -> Result<Period, Box<Response>> {
    match q.period.as_deref().filter(|p| !p.is_empty()) {
        None => Ok(default),
        Some(p) => p.parse().map_err(|e| {
            Box::new(problem(
                StatusCode::BAD_REQUEST,
                &format!("period: {e}. Give the month as YYYY-MM, e.g. 2026-11."),
            ))
        }),
    }
}

fn last_month() -> Period {
    Period::of(time::OffsetDateTime::now_utc().date()).previous()
}

fn money(v: i64, c: Currency) -> String {
    format!("{} {c}", format_amount(v, c))
}

/// A row of figures: label and amount, shown in tables.
pub struct Figure {
    pub label: String,
    pub amount: String,
}

fn figure(label: impl Into<String>, v: i64, c: Currency) -> Figure {
    Figure {
        label: label.into(),
        amount: money(v, c),
    }
}

/// A month's state in words.
fn state_words(row: Option<&SettlementRow>) -> String {
    match row {
        Some(r) if r.state == "closed" => format!(
            "closed by {} ({}) and {} ({})",
            r.proposed_by,
            r.proposed_as,
            r.closed_by.clone().unwrap_or_default(),
            r.closed_as.clone().unwrap_or_default()
        ),
        Some(r) => format!(
            "proposed by {} as {}: waiting for a {} to confirm",
            r.proposed_by,
            r.proposed_as,
            if r.proposed_as == "treasurer" {
                "operator"
            } else {
                "treasurer"
            }
        ),
        None => "open: a preview, nothing is recorded until two people close it".into(),
    }
}

/// Where a month's funds went: each rule line's payments, then what was carried over.
fn where_it_went(s: &Settlement) -> Vec<(String, i64)> {
    let mut parts: Vec<(String, i64)> = s.lines.iter().map(|l| (l.line.clone(), l.paid)).collect();
    parts.push(("carried over".into(), s.carry_out));
    parts
}

/// Recorded months (newest last), at most [`MONTHS_SHOWN`], up to and including `through`.
fn recent(rows: &[SettlementRow], through: Period) -> Vec<&SettlementRow> {
    let mut r: Vec<&SettlementRow> = rows.iter().filter(|r| r.period <= through).collect();
    r.sort_by_key(|r| r.period);
    let skip = r.len().saturating_sub(MONTHS_SHOWN);
    r.into_iter().skip(skip).collect()
}

// --- the index: every book the viewer may read, and the federation's totals ---

pub struct BookLink {
    pub href: String,
    pub name: String,
    pub detail: String,
}

pub struct CoopTotals {
    pub name: String,
    pub href: Option<String>,
    pub months: usize,
    pub last: String,
    pub received: String,
    pub paid: String,
    pub carried: String,
}

#[derive(Template)]
#[template(path = "books_index.html")]
pub struct IndexPage {
    pub c: Chrome,
    pub coops: Vec<BookLink>,
    pub communities: Vec<BookLink>,
    pub federation: Vec<CoopTotals>,
    pub charts: Vec<String>,
}

pub async fn index(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let v = ctx.viewer();
    let mut coop_ids: Vec<(&String, &String)> = ctx.owners.coop_names.iter().collect();
    coop_ids.sort_by(|a, b| a.1.cmp(b.1));
    let mut coops = Vec::new();
    let mut federation = Vec::new();
    // Per currency: month → (received, paid), across the co-ops shown.
    let mut by_currency: BTreeMap<String, BTreeMap<Period, (i64, i64)>> = BTreeMap::new();
    for (id, name) in coop_ids {
        let keeps = v.on_coop(id) == Right::Execute;
        let public = match s.store.public_summary(id).await {
            Ok(p) => p,
            Err(e) => return internal(e),
        };
        if keeps {
            coops.push(BookLink {
                href: format!("/books/coops/{id}"),
                name: name.clone(),
                detail: if v.closes_as(id).is_some() {
                    format!("you close its months as {}", v.closes_as(id).unwrap_or(""))
                } else {
                    "federation admin: you read and add entries".into()
                },
            });
        }
        if !(keeps || public) {
            continue;
        }
        let rows = match s.store.settlements(id).await {
            Ok(r) => r,
            Err(e) => return internal(e),
        };
        let closed: Vec<SettlementRow> = rows.into_iter().filter(|r| r.state == "closed").collect();
        let shown = recent(&closed, Period::of(time::OffsetDateTime::now_utc().date()))
            .into_iter()
            .map(|r| {
                (
                    r.period,
                    r.settlement.currency,
                    r.settlement.received,
                    r.settlement.paid,
                    r.settlement.carry_out,
                )
            })
            .collect::<Vec<_>>();
        let currency = shown.last().map(|x| x.1).unwrap_or(Currency::EUR);
        for (p, c, rec, paid, _) in &shown {
            let e = by_currency
                .entry(c.to_string())
                .or_default()
                .entry(*p)
                .or_default();
            e.0 += rec;
            e.1 += paid;
        }
        federation.push(CoopTotals {
            name: name.clone(),
            href: if keeps {
                Some(format!("/books/coops/{id}"))
            } else {
                Some(format!("/open/{id}"))
            },
            months: shown.len(),
            last: shown
                .last()
                .map(|x| x.0.to_string())
                .unwrap_or_else(|| "—".into()),
            received: money(shown.iter().map(|x| x.2).sum(), currency),
            paid: money(shown.iter().map(|x| x.3).sum(), currency),
            carried: money(shown.last().map(|x| x.4).unwrap_or(0), currency),
        });
    }
    let charts = by_currency
        .iter()
        .enumerate()
        .map(|(i, (code, months))| {
            let c: Currency = code.parse().unwrap_or(Currency::EUR);
            let labels: Vec<String> = months.keys().map(|p| p.to_string()).collect();
            charts::grouped_bars(
                &format!("fed-{i}"),
                &format!("The federation's co-ops in {code}: received and paid out per month"),
                &labels,
                &[
                    ("received", months.values().map(|x| x.0).collect()),
                    ("paid out", months.values().map(|x| x.1).collect()),
                ],
                c,
            )
        })
        .collect();
    let mut communities: Vec<BookLink> = ctx
        .owners
        .community_names
        .iter()
        .filter(|(id, _)| v.on_community(id, &ctx.owners) >= Right::Read)
        .map(|(id, name)| BookLink {
            href: format!("/books/communities/{id}"),
            name: name.clone(),
            detail: ctx
                .owners
                .community_coop
                .get(id)
                .and_then(|c| ctx.owners.coop_names.get(c))
                .map(|c| format!("hosted by {c}"))
                .unwrap_or_default(),
        })
        .collect();
    communities.sort_by(|a, b| a.name.cmp(&b.name));
    render(IndexPage {
        c: chrome(&ctx, "Books", "books"),
        coops,
        communities,
        federation,
        charts,
    })
}

// --- a co-op's month ---

pub struct ShareRow {
    pub line: String,
    pub to: String,
    pub hours: String,
    pub claim: String,
    pub paid: String,
    pub short: bool,
    pub entries: usize,
    pub basis: String,
}

pub struct CommunityRow {
    pub href: String,
    pub name: String,
    pub contributed: String,
    pub pledged: String,
    pub instance_cost: String,
}

pub struct CostRow {
    pub name: String,
    pub detail: String,
    pub total: String,
}

#[derive(Template)]
#[template(path = "books_coop.html")]
pub struct CoopPage {
    pub c: Chrome,
    pub coop_id: String,
    pub coop: String,
    pub period: String,
    pub previous: String,
    pub next: String,
    pub state: String,
    pub closed: bool,
    pub closes_as: Option<&'static str>,
    pub public: bool,
    pub notes: Vec<String>,
    pub facts: Vec<Figure>,
    pub short: bool,
    pub rule: String,
    pub key: String,
    pub went: String,
    pub in_out: String,
    pub shares: Vec<ShareRow>,
    pub communities: Vec<CommunityRow>,
    pub servers: Vec<CostRow>,
    pub instances: Vec<CostRow>,
    pub today: String,
}

fn month_facts(s: &Settlement) -> Vec<Figure> {
    let c = s.currency;
    let mut f = vec![
        figure("carried in", s.carry_in, c),
        figure("received", s.received, c),
    ];
    if s.recovered != 0 {
        f.push(figure("recovered by corrections", s.recovered, c));
    }
    f.extend([
        figure("funds", s.funds, c),
        figure("claimed", s.claimed, c),
        figure("paid", s.paid, c),
        figure("carried over", s.carry_out, c),
    ]);
    if !s.payouts.is_empty() {
        // What was actually paid out this month (entries of kind payout), beside what the
        // shares say is owed.
        f.push(figure(
            "payouts recorded",
            s.payouts.iter().map(|(_, v)| v).sum(),
            c,
        ));
    }
    f
}

fn in_out_chart(id: &str, title: &str, rows: &[&SettlementRow], current: &Settlement) -> String {
    let mut months: BTreeMap<Period, (i64, i64)> = rows
        .iter()
        .filter(|r| r.settlement.currency == current.currency)
        .map(|r| (r.period, (r.settlement.received, r.settlement.paid)))
        .collect();
    months.insert(current.period, (current.received, current.paid));
    let skip = months.len().saturating_sub(MONTHS_SHOWN);
    let months: Vec<(Period, (i64, i64))> = months.into_iter().skip(skip).collect();
    charts::grouped_bars(
        id,
        title,
        &months
            .iter()
            .map(|(p, _)| p.to_string())
            .collect::<Vec<_>>(),
        &[
            ("received", months.iter().map(|(_, v)| v.0).collect()),
            ("paid out", months.iter().map(|(_, v)| v.1).collect()),
        ],
        current.currency,
    )
}

/// The co-op's community ids by name (settlements name communities).
fn community_ids(ctx: &Ctx, coop: &str) -> HashMap<String, String> {
    ctx.owners
        .community_names
        .iter()
        .filter(|(id, _)| ctx.owners.community_coop.get(*id).map(String::as_str) == Some(coop))
        .map(|(id, n)| (n.clone(), id.clone()))
        .collect()
}

pub async fn coop(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(coop): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let period = match period_of(&q, last_month()) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let name = ctx
        .owners
        .coop_names
        .get(&coop)
        .cloned()
        .unwrap_or_default();
    let rows = match s.store.settlements(&coop).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let row = rows.iter().find(|r| r.period == period);
    let (settlement, mut notes, rule_text) = match row {
        Some(r) => {
            let rule = match s.store.rule_version(&coop, r.rule_version).await {
                Ok(Some(rule)) => format!("version {}", rule.version),
                Ok(None) => "the default rule".into(),
                Err(e) => return internal(e),
            };
            (r.settlement.clone(), vec![], rule)
        }
        None => match cooper_ops::books::preview(&s.abra, &s.store, &coop, period, &[]).await {
            Ok(p) => {
                let rule = if p.default_rule {
                    "the default rule (the co-op has not set its own)".to_string()
                } else {
                    format!("version {}", p.rule.version)
                };
                (p.settlement, p.notes, rule)
            }
            Err(e) => {
                return problem(
                    StatusCode::CONFLICT,
                    &format!("{period} cannot be settled yet: {e}"),
                )
            }
        },
    };
    let c = settlement.currency;
    for sv in &settlement.servers {
        if let Some(n) = &sv.note {
            notes.push(format!("server {}: {n}", sv.server));
        }
    }
    let ids = community_ids(&ctx, &coop);
    let shown = recent(&rows, period.previous());
    let public = s.store.public_summary(&coop).await.unwrap_or(false);
    render(CoopPage {
        c: chrome(&ctx, format!("Books of {name}, {period}"), "books"),
        coop_id: coop.clone(),
        coop: name,
        period: period.to_string(),
        previous: period.previous().to_string(),
        next: period.next().to_string(),
        state: state_words(row),
        closed: row.is_some_and(|r| r.state == "closed"),
        closes_as: ctx.viewer().closes_as(&coop),
        public,
        notes,
        facts: month_facts(&settlement),
        short: settlement.short,
        rule: rule_text,
        key: settlement.cost_key.as_str().to_string(),
        went: charts::split_bar(
            "went",
            &format!("Where the funds of {period} went"),
            &where_it_went(&settlement),
            c,
        ),
        in_out: in_out_chart(
            "inout",
            "Received and paid out per month",
            &shown,
            &settlement,
        ),
        shares: settlement
            .shares
            .iter()
            .map(|x| ShareRow {
                line: x.line.clone(),
                to: x.recipient.to_string(),
                hours: if x.minutes != 0 {
                    hours_text(x.minutes)
                } else {
                    String::new()
                },
                claim: money(x.claim, c),
                paid: money(x.paid, c),
                short: x.paid < x.claim,
                entries: x.entries.len(),
                basis: x.basis.clone(),
            })
            .collect(),
        communities: settlement
            .communities
            .iter()
            .map(|b| CommunityRow {
                href: ids
                    .get(&b.community)
                    .map(|id| format!("/books/communities/{id}?period={period}"))
                    .unwrap_or_default(),
                name: b.community.clone(),
                contributed: money(b.contributed, c),
                pledged: money(b.pledged, c),
                instance_cost: money(b.instance_cost, c),
            })
            .collect(),
        servers: settlement
            .servers
            .iter()
            .map(|x| CostRow {
                name: x.server.clone(),
                detail: format!(
                    "{} entries, shared by {} instance(s){}",
                    x.entries.len(),
                    x.instances,
                    x.note
                        .as_ref()
                        .map(|n| format!(" — {n}"))
                        .unwrap_or_default()
                ),
                total: money(x.total, c),
            })
            .collect(),
        instances: settlement
            .instances
            .iter()
            .map(|i| CostRow {
                name: i.domain.clone(),
                detail: instance_detail(i, &settlement),
                total: money(i.total, c),
            })
            .collect(),
        today: date_text(time::OffsetDateTime::now_utc().date()),
    })
}

/// How an instance's costs were worked out, in words.
fn instance_detail(i: &cooper_ledger::settle::InstanceCost, s: &Settlement) -> String {
    let c = s.currency;
    let server_total = s
        .servers
        .iter()
        .find(|x| x.server == i.server)
        .map(|x| x.total)
        .unwrap_or(0);
    format!(
        "{}: its own costs {}; {} of server {}'s {} (by {}: {} of {}); {} of the shared costs",
        i.community.clone().unwrap_or_else(|| "no community".into()),
        money(i.direct, c),
        money(i.server_share, c),
        i.server,
        money(server_total, c),
        s.cost_key.as_str(),
        i.weight,
        i.server_weight,
        money(i.shared_share, c)
    )
}

#[derive(Deserialize)]
pub struct CloseForm {
    period: String,
    /// Rates, one per line or comma-separated: `GBP=1.1650`.
    #[serde(default)]
    rates: String,
}

pub async fn close(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(coop): Path<String>,
    Form(f): Form<CloseForm>,
) -> Response {
    let v = ctx.viewer();
    let Some(role) = v.closes_as(&coop) else {
        return problem(
            StatusCode::FORBIDDEN,
            "Months are closed by a treasurer and an operator of the co-op; you are neither here.",
        );
    };
    let period: Period = match f.period.parse() {
        Ok(p) => p,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("period: {e}")),
    };
    let (rule, _) = match cooper_ops::books::rule_in_force(&s.store, &coop).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let rates = match cooper_ops::books::parse_rates(&[&f.rates], rule.currency) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("rates: {e}")),
    };
    match cooper_ops::books::close(
        &s.abra,
        &s.store,
        &coop,
        period,
        &rates,
        &v.person.email,
        role,
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/books/coops/{coop}?period={period}")).into_response(),
        Err(e) => problem(
            StatusCode::CONFLICT,
            &format!("{period} was not closed: {e}"),
        ),
    }
}

#[derive(Deserialize)]
pub struct EntryForm {
    kind: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    party: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    recurs: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    hours: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    corrects: String,
}

pub async fn add_entry(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(coop): Path<String>,
    Form(f): Form<EntryForm>,
) -> Response {
    // No currency given: the rule's.
    let currency = if f.currency.trim().is_empty() {
        match cooper_ops::books::rule_in_force(&s.store, &coop).await {
            Ok((rule, _)) => rule.currency.to_string(),
            Err(e) => return internal(e),
        }
    } else {
        f.currency.clone()
    };
    let fields: HashMap<&str, &str> = [
        ("kind", f.kind.as_str()),
        ("date", f.date.as_str()),
        ("amount", f.amount.as_str()),
        ("currency", currency.as_str()),
        ("party", f.party.as_str()),
        ("target", f.target.as_str()),
        ("category", f.category.as_str()),
        ("status", f.status.as_str()),
        ("recurs", f.recurs.as_str()),
        ("until", f.until.as_str()),
        ("hours", f.hours.as_str()),
        ("note", f.note.as_str()),
        ("corrects", f.corrects.as_str()),
    ]
    .into_iter()
    .collect();
    let entry = match import::template_entry(&|k| {
        fields
            .get(k)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    }) {
        Ok(e) => e,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("The entry was not added: {e}. Go back: the form keeps what you typed."),
            )
        }
    };
    let who = ctx.viewer().person.email.clone();
    match s.store.add_entry(&coop, &entry, &who).await {
        Ok(id) => {
            record_audit(
                &s.store,
                &who,
                "ledger add",
                None,
                None,
                "ok",
                &format!(
                    "{} {} {} ({id})",
                    entry.kind.as_str(),
                    entry.amount_text(),
                    entry.party
                ),
            )
            .await;
            Redirect::to(&format!(
                "/books/coops/{coop}?period={}",
                Period::of(entry.date)
            ))
            .into_response()
        }
        Err(e) => problem(
            StatusCode::CONFLICT,
            &format!("The entry was not added: {e}"),
        ),
    }
}

#[derive(Deserialize)]
pub struct PublicForm {
    #[serde(default)]
    public: String,
}

pub async fn set_public(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(coop): Path<String>,
    Form(f): Form<PublicForm>,
) -> Response {
    let on = f.public == "on";
    if let Err(e) = s.store.set_public_summary(&coop, on).await {
        return internal(e);
    }
    record_audit(
        &s.store,
        &ctx.viewer().person.email,
        "ledger public summary",
        None,
        None,
        "ok",
        if on { "on" } else { "off" },
    )
    .await;
    Redirect::to(&format!("/books/coops/{coop}")).into_response()
}

// --- imports ---

#[derive(Template)]
#[template(path = "books_import.html")]
pub struct ImportPage {
    pub c: Chrome,
    pub coop_id: String,
    pub coop: String,
    pub origin: String,
    pub outcome: String,
    pub problems: Vec<String>,
    pub notices: Vec<String>,
}

/// cooper's CSV template, with an example line of each kind.
pub async fn template() -> Response {
    download(
        import::template_example(),
        "text/csv; charset=utf-8",
        "cooper-ledger-template.csv",
    )
}

/// Imports an uploaded file (Open Collective's export or cooper's template) into the co-op's
/// books, all or nothing, through the same `cooper_ops::books` functions as `cooper ledger
/// import`; or only checks it.
pub async fn import(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(coop): Path<String>,
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let Ok(mut form) = form else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Send the file with the import form (a multipart form with a file).",
        );
    };
    let (mut text, mut origin, mut format, mut maps, mut dry_run) = (
        None,
        String::from("upload"),
        String::new(),
        String::new(),
        false,
    );
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    &format!("The upload was cut off or malformed ({e}): try again."),
                )
            }
        };
        match field.name().unwrap_or_default() {
            "file" => {
                if let Some(name) = field.file_name().filter(|n| !n.is_empty()) {
                    origin = name.to_string();
                }
                let bytes = match field.bytes().await {
                    Ok(b) => b,
                    Err(e) => {
                        return problem(
                            StatusCode::BAD_REQUEST,
                            &format!("The file did not arrive whole ({e}): try again."),
                        )
                    }
                };
                text = Some(bytes);
            }
            "format" => format = field.text().await.unwrap_or_default(),
            "maps" => maps = field.text().await.unwrap_or_default(),
            "dry_run" => dry_run = true,
            _ => {}
        }
    }
    let name = ctx
        .owners
        .coop_names
        .get(&coop)
        .cloned()
        .unwrap_or_default();
    let page =
        |status: StatusCode, outcome: String, problems: Vec<String>, notices: Vec<String>| {
            let mut r = render(ImportPage {
                c: chrome(&ctx, format!("Import into the books of {name}"), "books"),
                coop_id: coop.clone(),
                coop: name.clone(),
                origin: origin.clone(),
                outcome,
                problems,
                notices,
            });
            *r.status_mut() = status;
            r
        };
    let Some(bytes) = text.filter(|b| !b.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "No file was chosen, or it is empty: choose the CSV file to import.".into(),
            vec![],
            vec![],
        );
    };
    let Ok(text) = String::from_utf8(bytes.to_vec()) else {
        return page(StatusCode::BAD_REQUEST, format!("{origin} is not UTF-8 text: export it (or save it) as CSV in UTF-8 and import that."), vec![], vec![]);
    };
    let maps: Vec<String> = maps.lines().map(str::to_string).collect();
    let file =
        match cooper_ops::books::read_import(&s.store, &coop, &text, Some(&format), &maps, &origin)
            .await
        {
            Ok(f) => f,
            Err(cooper_ops::books::BooksError::Import(e)) => {
                return page(
                    StatusCode::BAD_REQUEST,
                    format!(
                "Nothing was imported from {origin}: fix these lines and import the file again."
            ),
                    e.problems,
                    vec![],
                )
            }
            Err(e) => {
                return page(
                    StatusCode::BAD_REQUEST,
                    format!("Nothing was imported from {origin}: {e}"),
                    vec![],
                    vec![],
                )
            }
        };
    if dry_run {
        return page(
            StatusCode::OK,
            format!(
                "{origin} ({}) reads cleanly: {} entries; nothing was changed.",
                file.format,
                file.entries.len()
            ),
            vec![],
            file.notices,
        );
    }
    let who = ctx.viewer().person.email.clone();
    match cooper_ops::books::import_file(&s.store, &coop, &file, &origin, &who).await {
        Ok(o) => page(
            StatusCode::OK,
            format!(
                "{origin} ({}): {} added, {} already in the books.",
                file.format, o.added, o.already
            ),
            vec![],
            file.notices,
        ),
        Err(e) => page(
            StatusCode::CONFLICT,
            format!("Nothing was imported from {origin}: {e}"),
            vec![],
            file.notices,
        ),
    }
}

// --- entries and rule ---

pub struct EntryRow {
    pub date: String,
    pub kind: String,
    pub amount: String,
    pub party: String,
    pub target: String,
    pub detail: String,
    pub id: String,
}

#[derive(Template)]
#[template(path = "books_entries.html")]
pub struct EntriesPage {
    pub c: Chrome,
    pub coop_id: String,
    pub coop: String,
    pub period: String,
    pub entries: Vec<EntryRow>,
}

pub async fn entries(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(coop): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let period = match period_of(&q, last_month()) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let list = match s.store.entries(&coop, Some(period)).await {
        Ok(l) => l,
        Err(e) => return internal(e),
    };
    let name = ctx
        .owners
        .coop_names
        .get(&coop)
        .cloned()
        .unwrap_or_default();
    render(EntriesPage {
        c: chrome(&ctx, format!("Entries of {name}, {period}"), "books"),
        coop_id: coop,
        coop: name,
        period: period.to_string(),
        entries: list
            .into_iter()
            .map(|(_, e)| EntryRow {
                date: date_text(e.date),
                kind: e.kind.as_str().into(),
                amount: if e.minutes != 0 {
                    hours_text(e.minutes)
                } else {
                    e.amount_text()
                },
                party: e.party.to_string(),
                target: e.target.to_string(),
                detail: [
                    e.category.clone(),
                    e.status.as_str().to_string(),
                    e.note.clone(),
                    e.corrects
                        .as_ref()
                        .map(|c| format!("corrects {c}"))
                        .unwrap_or_default(),
                ]
                .into_iter()
                .filter(|x| !x.is_empty() && x != "received")
                .collect::<Vec<_>>()
                .join(" · "),
                id: e.id,
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "books_rule.html")]
pub struct RulePage {
    pub c: Chrome,
    pub coop_id: String,
    pub coop: String,
    pub version: String,
    pub text: String,
}

pub async fn rule(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(coop): Path<String>,
) -> Response {
    let (rule, default) = match cooper_ops::books::rule_in_force(&s.store, &coop).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let name = ctx
        .owners
        .coop_names
        .get(&coop)
        .cloned()
        .unwrap_or_default();
    render(RulePage {
        c: chrome(&ctx, format!("The rule of {name}"), "books"),
        coop_id: coop,
        coop: name,
        version: if default {
            "the default rule: the co-op has not set its own".into()
        } else {
            format!("version {}", rule.version)
        },
        text: rule.to_toml(),
    })
}

#[derive(Deserialize)]
pub struct RuleForm {
    rule: String,
}

pub async fn set_rule(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(coop): Path<String>,
    Form(f): Form<RuleForm>,
) -> Response {
    let who = ctx.viewer().person.email.clone();
    match s
        .store
        .set_rule(&coop, &f.rule, "the rule form", &who)
        .await
    {
        Ok(v) => {
            record_audit(
                &s.store,
                &who,
                "ledger rule",
                None,
                None,
                "ok",
                &format!("version {v}"),
            )
            .await;
            Redirect::to(&format!("/books/coops/{coop}/rule")).into_response()
        }
        Err(e) => problem(
            StatusCode::BAD_REQUEST,
            &format!("The rule was not changed: {e}. Go back: the form keeps what you typed."),
        ),
    }
}

// --- downloads ---

fn download(body: String, kind: &'static str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

pub async fn coop_json(
    State(s): State<AppState>,
    Path(coop): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let period = match period_of(&q, last_month()) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let settlement = match s.store.settlement(&coop, period).await {
        Ok(Some(r)) => {
            serde_json::json!({ "state": r.state, "digest": r.digest, "settlement": r.settlement })
        }
        Ok(None) => match cooper_ops::books::preview(&s.abra, &s.store, &coop, period, &[]).await {
            Ok(p) => {
                serde_json::json!({ "state": "preview", "settlement": p.settlement, "notes": p.notes })
            }
            Err(e) => return problem(StatusCode::CONFLICT, &e.to_string()),
        },
        Err(e) => return internal(e),
    };
    download(
        serde_json::to_string_pretty(&settlement).unwrap_or_default(),
        "application/json",
        &format!("settlement-{period}.json"),
    )
}

pub async fn coop_csv(
    State(s): State<AppState>,
    Path(coop): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let period = match period_of(&q, last_month()) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match s.store.entries(&coop, Some(period)).await {
        Ok(list) => download(
            import::write_csv(&list),
            "text/csv; charset=utf-8",
            &format!("entries-{period}.csv"),
        ),
        Err(e) => internal(e),
    }
}

// --- a community's transparency page ---

pub struct MonthRow {
    pub period: String,
    pub state: String,
    pub contributed: String,
    pub instance_cost: String,
    pub paid_for: String,
    pub carried: String,
}

#[derive(Template)]
#[template(path = "books_community.html")]
pub struct CommunityPage {
    pub c: Chrome,
    pub id: String,
    pub community: String,
    pub coop: String,
    pub period: String,
    pub state: String,
    pub recorded: bool,
    pub facts: Vec<Figure>,
    pub paid_for: Vec<Figure>,
    pub went: String,
    pub in_out: String,
    pub key: String,
    pub instances: Vec<CostRow>,
    pub months: Vec<MonthRow>,
    pub months_shown: Vec<String>,
}

/// A community's part of each recorded month of its co-op (oldest first).
async fn community_months(
    s: &AppState,
    ctx: &Ctx,
    community: &str,
) -> Result<(String, String, Vec<SettlementRow>), Box<Response>> {
    let name = ctx
        .owners
        .community_names
        .get(community)
        .cloned()
        .unwrap_or_default();
    let coop = ctx
        .owners
        .community_coop
        .get(community)
        .cloned()
        .unwrap_or_default();
    let mut rows = s
        .store
        .settlements(&coop)
        .await
        .map_err(|e| Box::new(internal(e)))?;
    rows.sort_by_key(|r| r.period);
    Ok((name, coop, rows))
}

pub async fn community(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(community): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    let (name, coop, rows) = match community_months(&s, &ctx, &community).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let latest = rows.last().map(|r| r.period).unwrap_or_else(last_month);
    let period = match period_of(&q, latest) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let row = rows.iter().find(|r| r.period == period);
    let part = row.and_then(|r| {
        r.settlement
            .communities
            .iter()
            .find(|b| b.community == name)
    });
    let currency = row
        .map(|r| r.settlement.currency)
        .or_else(|| rows.last().map(|r| r.settlement.currency))
        .unwrap_or(Currency::EUR);
    let shown = recent(&rows, period);
    let part_of = |r: &SettlementRow| {
        r.settlement
            .communities
            .iter()
            .find(|b| b.community == name)
            .cloned()
    };
    let in_out = charts::grouped_bars(
        "c-inout",
        &format!("{name}: contributed and what its instances cost, per month"),
        &shown
            .iter()
            .map(|r| r.period.to_string())
            .collect::<Vec<_>>(),
        &[
            (
                "contributed",
                shown
                    .iter()
                    .map(|r| part_of(r).map(|b| b.contributed).unwrap_or(0))
                    .collect(),
            ),
            (
                "its instances cost",
                shown
                    .iter()
                    .map(|r| part_of(r).map(|b| b.instance_cost).unwrap_or(0))
                    .collect(),
            ),
        ],
        currency,
    );
    let (facts, paid_for, went) = match part {
        Some(b) => {
            let mut parts = b.paid_for.clone();
            parts.push(("carried over".into(), b.carried));
            (
                vec![
                    figure("contributed", b.contributed, currency),
                    figure("pledged, not yet received", b.pledged, currency),
                    figure("its instances cost", b.instance_cost, currency),
                ],
                parts
                    .iter()
                    .map(|(l, v)| figure(l.clone(), *v, currency))
                    .collect(),
                charts::split_bar(
                    "c-went",
                    &format!("Where {name}'s contribution of {period} went"),
                    &parts,
                    currency,
                ),
            )
        }
        None => (vec![], vec![], String::new()),
    };
    let instances = row
        .map(|r| {
            r.settlement
                .instances
                .iter()
                .filter(|i| i.community.as_deref() == Some(name.as_str()))
                .map(|i| CostRow {
                    name: i.domain.clone(),
                    detail: instance_detail(i, &r.settlement),
                    total: money(i.total, r.settlement.currency),
                })
                .collect()
        })
        .unwrap_or_default();
    let months = shown
        .iter()
        .rev()
        .map(|r| {
            let b = part_of(r);
            let c = r.settlement.currency;
            MonthRow {
                period: r.period.to_string(),
                state: r.state.clone(),
                contributed: money(b.as_ref().map(|b| b.contributed).unwrap_or(0), c),
                instance_cost: money(b.as_ref().map(|b| b.instance_cost).unwrap_or(0), c),
                paid_for: money(
                    b.as_ref()
                        .map(|b| b.paid_for.iter().map(|x| x.1).sum())
                        .unwrap_or(0),
                    c,
                ),
                carried: money(b.as_ref().map(|b| b.carried).unwrap_or(0), c),
            }
        })
        .collect();
    render(CommunityPage {
        c: chrome(&ctx, format!("Books of {name}"), "books"),
        id: community,
        community: name,
        coop: ctx
            .owners
            .coop_names
            .get(&coop)
            .cloned()
            .unwrap_or_default(),
        period: period.to_string(),
        state: match row {
            Some(r) if r.state == "closed" => "closed: these figures are the record".into(),
            Some(_) => "proposed: waiting for a second person to confirm".into(),
            None => "not settled yet: figures appear once the month is proposed".into(),
        },
        recorded: row.is_some(),
        facts,
        paid_for,
        went,
        in_out,
        key: row
            .map(|r| r.settlement.cost_key.as_str().to_string())
            .unwrap_or_default(),
        instances,
        months,
        months_shown: rows.iter().rev().map(|r| r.period.to_string()).collect(),
    })
}

pub async fn community_json(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(community): Path<String>,
) -> Response {
    let (name, _, rows) = match community_months(&s, &ctx, &community).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let months: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "period": r.period.to_string(),
                "state": r.state,
                "currency": r.settlement.currency,
                "rule_version": r.rule_version,
                "cost_key": r.settlement.cost_key,
                "books": r.settlement.communities.iter().find(|b| b.community == name),
                "instances": r.settlement.instances.iter().filter(|i| i.community.as_deref() == Some(name.as_str())).collect::<Vec<_>>(),
            })
        })
        .collect();
    download(
        serde_json::to_string_pretty(&serde_json::json!({ "community": name, "months": months }))
            .unwrap_or_default(),
        "application/json",
        "books.json",
    )
}

pub async fn community_csv(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(community): Path<String>,
) -> Response {
    let (name, _, rows) = match community_months(&s, &ctx, &community).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["period", "state", "currency", "what", "amount"]);
    for r in &rows {
        let Some(b) = r
            .settlement
            .communities
            .iter()
            .find(|b| b.community == name)
        else {
            continue;
        };
        let c = r.settlement.currency;
        let mut lines: Vec<(String, i64)> = vec![
            ("contributed".into(), b.contributed),
            ("pledged".into(), b.pledged),
            ("instance cost".into(), b.instance_cost),
        ];
        lines.extend(
            b.paid_for
                .iter()
                .map(|(l, v)| (format!("paid for: {l}"), *v)),
        );
        lines.push(("carried over".into(), b.carried));
        for (what, v) in lines {
            let _ = w.write_record([
                r.period.to_string(),
                r.state.clone(),
                c.to_string(),
                what,
                format_amount(v, c),
            ]);
        }
    }
    let body = w
        .into_inner()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    download(body, "text/csv; charset=utf-8", "books.csv")
}

// --- the public summary ---

pub struct PublicMonth {
    pub period: String,
    pub received: String,
    pub lines: Vec<Figure>,
    pub carried: String,
    pub contributors: usize,
}

#[derive(Template)]
#[template(path = "books_open.html")]
pub struct OpenPage {
    pub c: Chrome,
    pub coop: String,
    pub chart: String,
    pub months: Vec<PublicMonth>,
}

/// A co-op's public summary: closed months only, totals per rule line, no names.
pub async fn open(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(coop): Path<String>,
) -> Response {
    let Some(name) = ctx.owners.coop_names.get(&coop).cloned() else {
        return not_found();
    };
    match s.store.public_summary(&coop).await {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(e) => return internal(e),
    }
    let rows = match s.store.settlements(&coop).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let closed: Vec<SettlementRow> = rows.into_iter().filter(|r| r.state == "closed").collect();
    let shown = recent(&closed, Period::of(time::OffsetDateTime::now_utc().date()));
    let chart = match shown.last() {
        Some(last) => in_out_chart(
            "open",
            &format!("{name}: received and paid out per month"),
            &shown,
            &last.settlement,
        ),
        None => String::new(),
    };
    let months = shown
        .iter()
        .rev()
        .map(|r| {
            let st = &r.settlement;
            PublicMonth {
                period: r.period.to_string(),
                received: money(st.received, st.currency),
                lines: st
                    .lines
                    .iter()
                    .map(|l| figure(l.line.clone(), l.paid, st.currency))
                    .collect(),
                carried: money(st.carry_out, st.currency),
                contributors: st.contributors.len(),
            }
        })
        .collect();
    let mut c = chrome(&ctx, format!("{name}: open books"), "books");
    c.who = None;
    render(OpenPage {
        c,
        coop: name,
        chart,
        months,
    })
}
