//! The federation's practice in the dashboard: the register of member organisations with
//! their dues and arrears, reviews that stay overdue until minutes hold them, the public
//! decisions register (propose from a template, vote for the organisation you speak for,
//! outcomes computed by the scheduler at the deadline), meetings with agendas and minutes, the
//! calendar feeds (public, and one private link per person), and availability polls that
//! anyone with the link can paint — by mouse, touch or keyboard, with or without JavaScript.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::{DateTime, Utc};
use cooper_federation::decision::{Outcome, Vote, DAY_MS};
use cooper_federation::meetings::{self, Rhythm};
use cooper_federation::poll::{self, Shape};
use cooper_federation::{Review, ReviewState};
use cooper_ledger::{format_amount, Currency};
use cooper_store::federation::NewProposal;
use cooper_store::practice::{day_of, ItemResult, Minutes};
use serde::Deserialize;
use tower_sessions::Session;

use crate::authz::Right;
use crate::pages::{chrome, internal, not_found, problem, record_audit, render};
use crate::routes::Ctx;
use crate::views::Chrome;
use crate::AppState;

fn bad(m: impl std::fmt::Display) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        &format!("{m}. Go back: the form keeps what you typed."),
    )
}

fn when(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%a %-d %b %Y, %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn money(v: i64, c: Option<Currency>) -> String {
    match c {
        Some(c) => format!("{} {c}", format_amount(v, c)),
        None => v.to_string(),
    }
}

fn today() -> time::Date {
    day_of(cooper_store::now_ms())
}

/// Minutes in Markdown as HTML: raw HTML in the text is shown as text, never run.
pub fn markdown(text: &str) -> String {
    use pulldown_cmark::{Event, Parser};
    let events = Parser::new(text).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        e => e,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

// ----- the federation page -----

pub struct MemberRow {
    pub name: String,
    pub status: String,
    pub joined: String,
    pub arrears: String,
    pub behind: usize,
    pub waiver: String,
    pub overdue: bool,
}

pub struct ReviewRow {
    pub id: String,
    pub title: String,
    pub source: String,
    pub due: String,
    pub state: String,
    pub overdue: bool,
}

pub struct MeetingRow {
    pub href: String,
    pub when: String,
    pub title: String,
    pub roles: String,
    pub items: usize,
}

pub struct ProposalRow {
    pub href: String,
    pub title: String,
    pub size: String,
    pub deadline: String,
    pub tally: String,
}

pub struct Choice {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "fed_index.html")]
pub struct IndexPage {
    pub c: Chrome,
    pub admin: bool,
    pub rules_name: String,
    pub dues: String,
    pub members: Vec<MemberRow>,
    pub member_choices: Vec<Choice>,
    pub reviews: Vec<ReviewRow>,
    pub meetings: Vec<MeetingRow>,
    pub open: Vec<ProposalRow>,
    pub series: Vec<String>,
    pub has_link: bool,
    pub new_link: Option<String>,
}

fn review_row(id: &str, r: &Review, today: time::Date) -> ReviewRow {
    let (state, overdue) = match r.state(today) {
        ReviewState::Overdue { days } => (format!("overdue by {days} days"), true),
        ReviewState::DueSoon { days_left } => (format!("due in {days_left} days"), false),
        ReviewState::Upcoming { days_left } => (format!("in {days_left} days"), false),
        ReviewState::Held { on, outcome } => (format!("held on {on}: {outcome}"), false),
    };
    ReviewRow {
        id: id.into(),
        title: r.title.clone(),
        source: r.source.clone(),
        due: r.due.to_string(),
        state,
        overdue,
    }
}

async fn person_names(s: &AppState) -> HashMap<String, String> {
    s.store
        .people()
        .await
        .map(|p| p.into_iter().map(|p| (p.id, p.name)).collect())
        .unwrap_or_default()
}

async fn index_page(s: &AppState, ctx: &Ctx, new_link: Option<String>) -> Response {
    let v = ctx.viewer();
    let today = today();
    let now = cooper_store::now_ms();
    let (rules, _) = match s.store.fed_rules().await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let accounts = match s.store.dues_accounts(today).await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let rates = s.store.dues_rates().await.unwrap_or_default();
    let dues = match rates.last() {
        Some(r) => format!(
            "{} {} (set by {}, from {})",
            money(r.amount, Some(r.currency)),
            match r.period {
                cooper_federation::rules::DuesPeriod::Monthly => "a month",
                cooper_federation::rules::DuesPeriod::Yearly => "a year",
            },
            r.by,
            if r.from == time::Date::MIN {
                "the start".to_string()
            } else {
                r.from.to_string()
            }
        ),
        None => "no dues set".into(),
    };
    let members = accounts
        .iter()
        .map(|(m, a, w)| MemberRow {
            name: m.name.clone(),
            status: m.status.clone(),
            joined: m.joined_on.to_string(),
            arrears: money(a.arrears, a.currency),
            behind: a.unpaid().count(),
            waiver: w
                .iter()
                .find(|w| w.covers(today))
                .map(|w| {
                    format!(
                        "waived {} to {}: {}",
                        w.from,
                        w.to.map(|t| t.to_string()).unwrap_or("open".into()),
                        w.reason
                    )
                })
                .unwrap_or_default(),
            overdue: a.arrears > 0,
        })
        .collect();
    let member_choices = accounts
        .iter()
        .filter(|(m, _, _)| m.votes())
        .map(|(m, _, _)| Choice {
            id: m.id.clone(),
            name: m.name.clone(),
        })
        .collect();
    let reviews = match s.store.reviews().await {
        Ok(r) => r
            .iter()
            .map(|r| review_row(&r.id, &r.review, today))
            .collect(),
        Err(e) => return internal(e),
    };
    let names = person_names(s).await;
    let name = |id: &str| names.get(id).cloned().unwrap_or_default();
    let mut meetings = Vec::new();
    match s.store.meetings(now - 7 * DAY_MS, now + 62 * DAY_MS).await {
        Ok(ms) => {
            for m in ms {
                let items = s.store.agenda(&m.id).await.map(|a| a.len()).unwrap_or(0);
                let roles = if m.facilitator.is_empty() {
                    String::new()
                } else {
                    format!(
                        "facilitates: {}; takes notes: {}",
                        name(&m.facilitator),
                        name(&m.note_taker)
                    )
                };
                meetings.push(MeetingRow {
                    href: format!("/federation/meetings/{}", m.id),
                    when: when(m.starts_at),
                    title: m.title,
                    roles,
                    items,
                });
            }
        }
        Err(e) => return internal(e),
    }
    let mut open = Vec::new();
    match s.store.proposals().await {
        Ok(ps) => {
            for p in ps.into_iter().filter(|p| p.state == "open") {
                let tally = match s.store.proposal_outcome(&p, now).await {
                    Ok(o) => tally_words(&o),
                    Err(e) => return internal(e),
                };
                open.push(ProposalRow {
                    href: format!("/decisions/{}", p.id),
                    title: p.title,
                    size: p.size,
                    deadline: when(p.deadline),
                    tally,
                });
            }
        }
        Err(e) => return internal(e),
    }
    let series = s
        .store
        .meeting_series()
        .await
        .unwrap_or_default()
        .iter()
        .map(|x| format!("{}: {}", x.title, x.rhythm.words()))
        .collect();
    let has_link = s
        .store
        .has_calendar_link(&v.person.id)
        .await
        .unwrap_or(false);
    render(IndexPage {
        c: chrome(ctx, "Federation", "federation"),
        admin: v.on_federation() == Right::Execute,
        rules_name: rules.name,
        dues,
        members,
        member_choices,
        reviews,
        meetings,
        open,
        series,
        has_link,
        new_link,
    })
}

pub async fn index(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    index_page(&s, &ctx, None).await
}

fn tally_words(o: &Outcome) -> String {
    let t = match o {
        Outcome::Open { tally }
        | Outcome::Passed { tally, .. }
        | Outcome::Failed { tally, .. }
        | Outcome::Blocked { tally, .. } => tally,
    };
    format!(
        "{} for, {} standing aside, {} blocking, of {} members",
        t.for_, t.stand_aside, t.block, t.members
    )
}

// ----- decisions -----

pub struct DecisionRow {
    pub href: String,
    pub number: String,
    pub title: String,
    pub size: String,
    pub state: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "fed_decisions.html")]
pub struct DecisionsPage {
    pub c: Chrome,
    pub rows: Vec<DecisionRow>,
    pub can_propose: bool,
}

pub async fn decisions(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let ps = match s.store.proposals().await {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    let rows = ps
        .into_iter()
        .map(|p| DecisionRow {
            href: format!("/decisions/{}", p.id),
            number: p.number.clone().unwrap_or_default(),
            title: p.title,
            size: p.size,
            state: p.state,
            when: when(p.decided_at.unwrap_or(p.deadline)),
        })
        .collect();
    render(DecisionsPage {
        c: chrome(&ctx, "Decisions", "decisions"),
        rows,
        can_propose: ctx
            .viewer
            .as_ref()
            .is_some_and(|v| v.on_federation() >= Right::Read),
    })
}

pub struct VoteRow {
    pub member: String,
    pub vote: String,
    pub comment: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "fed_decision.html")]
pub struct DecisionPage {
    pub c: Chrome,
    pub number: String,
    pub title: String,
    pub summary: String,
    pub details: String,
    pub size: String,
    pub size_rule: String,
    pub budget: String,
    /// For a passed decision with a budget: this month's spending from the books.
    pub spent: String,
    pub proposed: String,
    pub deadline: String,
    pub state: String,
    pub reason: String,
    pub tally: String,
    pub votes: Vec<VoteRow>,
    pub history: Vec<(String, String, String)>,
    pub voters: Vec<Choice>,
    pub open: bool,
    pub path: String,
}

pub async fn decision(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let p = match s.store.proposal(&id).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(),
        Err(e) => return internal(e),
    };
    let now = cooper_store::now_ms();
    let outcome = match s.store.proposal_outcome(&p, now).await {
        Ok(o) => o,
        Err(e) => return internal(e),
    };
    let members: HashMap<String, String> = s
        .store
        .fed_members()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.id, m.name))
        .collect();
    let votes = s
        .store
        .fed_votes(&p.id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|b| VoteRow {
            member: members.get(&b.member).cloned().unwrap_or(b.member),
            vote: match b.vote {
                Vote::For => "for",
                Vote::StandAside => "stand aside",
                Vote::Block => "block",
            }
            .into(),
            comment: b.comment,
            at: when(b.at),
        })
        .collect();
    let names = person_names(&s).await;
    let history = s
        .store
        .proposal_history(&p.id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(at, by, change)| (when(at), names.get(&by).cloned().unwrap_or(by), change))
        .collect();
    let (rules, _) = match s.store.fed_rules().await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let size_rule = rules
        .size(&p.size)
        .map(|z| match z.kind {
            cooper_federation::SizeKind::Record => "just done, and recorded".to_string(),
            cooper_federation::SizeKind::Consent => format!(
                "passes unless blocked; the deadline is at least {} days",
                z.min_deadline_days
            ),
            cooper_federation::SizeKind::Vote => format!(
                "a vote: passes when more than {}% of all members vote for{}",
                z.pass_percent_of_members,
                if z.block_stops {
                    ", and no member blocks"
                } else {
                    ""
                }
            ),
        })
        .unwrap_or_default();
    let open = p.state == "open" && now < p.deadline;
    let spent = match (&p.number, p.budget.is_empty()) {
        (Some(n), false) => {
            let month = cooper_ledger::Period::of(today());
            match s.store.budget_spending(n, month).await {
                Ok((minutes, money_spent, lines)) => {
                    let mut parts = Vec::new();
                    if minutes != 0 {
                        parts.push(cooper_ledger::entry::hours_text(minutes));
                    }
                    for (c, a) in money_spent {
                        parts.push(money(a, Some(c)));
                    }
                    if parts.is_empty() {
                        format!("nothing yet in {month} (books lines naming {n} count)")
                    } else {
                        format!(
                            "{} in {month}, from {lines} line(s) of the books naming {n}",
                            parts.join(" and ")
                        )
                    }
                }
                Err(e) => return internal(e),
            }
        }
        _ => String::new(),
    };
    let voters = ctx
        .viewer
        .as_ref()
        .map(|v| {
            v.speaks_for
                .iter()
                .map(|(id, name)| Choice {
                    id: id.clone(),
                    name: name.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    render(DecisionPage {
        c: chrome(&ctx, p.title.clone(), "decisions"),
        number: p.number.clone().unwrap_or_default(),
        title: p.title.clone(),
        summary: p.summary.clone(),
        details: p.details.clone(),
        size: p.size.clone(),
        size_rule,
        budget: p.budget.clone(),
        spent,
        proposed: when(p.proposed_at),
        deadline: when(p.deadline),
        state: p.state.clone(),
        reason: p.reason.clone(),
        tally: tally_words(&outcome),
        votes,
        history,
        voters,
        open,
        path: format!("/decisions/{}", p.id),
    })
}

#[derive(Template)]
#[template(path = "fed_propose.html")]
pub struct ProposePage {
    pub c: Chrome,
    pub sizes: Vec<(String, String)>,
    pub earliest: String,
    pub buffer: String,
}

pub async fn propose_form(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let (rules, _) = match s.store.fed_rules().await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let sizes = rules
        .sizes
        .iter()
        .map(|z| {
            (
                z.name.clone(),
                if z.min_deadline_days > 0 {
                    format!(
                        "{} (deadline at least {} days)",
                        z.name, z.min_deadline_days
                    )
                } else {
                    z.name.clone()
                },
            )
        })
        .collect();
    let earliest = DateTime::from_timestamp_millis(cooper_store::now_ms() + 15 * DAY_MS)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    render(ProposePage {
        c: chrome(&ctx, "Propose", "decisions"),
        sizes,
        earliest,
        buffer: rules
            .budget_buffer
            .map(|(a, c)| money(a, Some(c)))
            .unwrap_or_default(),
    })
}

#[derive(Deserialize)]
pub struct ProposeForm {
    title: String,
    summary: String,
    #[serde(default)]
    details: String,
    size: String,
    #[serde(default)]
    budget: String,
    #[serde(default)]
    budget_amount: String,
    deadline: String,
}

pub async fn propose(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<ProposeForm>,
) -> Response {
    let v = ctx.viewer();
    let deadline = match time::Date::parse(
        f.deadline.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        Ok(d) => d.midnight().assume_utc().unix_timestamp() * 1000 + 15 * 3_600_000,
        Err(_) => return bad("deadline: give the day as YYYY-MM-DD"),
    };
    let (rules, _) = match s.store.fed_rules().await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    // A budget asked for is checked against the rule on the common fund.
    if !f.budget_amount.trim().is_empty() {
        let Some((_, currency)) = rules.budget_buffer else {
            return bad("budget: the rules set no budget buffer; describe the budget in words");
        };
        if cooper_ledger::parse_amount(f.budget_amount.trim(), currency).is_err() {
            return bad(format!(
                "budget amount: {:?} is not an amount in {currency}",
                f.budget_amount
            ));
        }
        match s.store.budget_check().await {
            Ok(()) => {}
            Err(cooper_store::StoreError::Invalid(m)) => return bad(m),
            Err(e) => return internal(e),
        }
    }
    let budget = if f.budget_amount.trim().is_empty() {
        f.budget.trim().to_string()
    } else {
        format!("{} {}", f.budget_amount.trim(), f.budget.trim())
            .trim()
            .to_string()
    };
    let p = NewProposal {
        title: f.title,
        summary: f.summary,
        details: f.details,
        size: f.size,
        budget,
        deadline,
    };
    match s
        .store
        .propose(&p, &v.person.id, cooper_store::now_ms())
        .await
    {
        Ok(p) => {
            record_audit(
                &s.store,
                &v.person.email,
                "federation.propose",
                None,
                None,
                "ok",
                &p.title,
            )
            .await;
            Redirect::to(&format!("/decisions/{}", p.id)).into_response()
        }
        Err(cooper_store::StoreError::Invalid(m)) => bad(m),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct VoteForm {
    member: String,
    vote: String,
    #[serde(default)]
    comment: String,
}

pub async fn vote(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<VoteForm>,
) -> Response {
    let v = ctx.viewer();
    if !v.speaks_for.iter().any(|(m, _)| *m == f.member) {
        return problem(
            StatusCode::FORBIDDEN,
            "You do not speak for that member organisation. A federation admin can link you to yours.",
        );
    }
    let vote = match f.vote.as_str() {
        "for" => Vote::For,
        "stand-aside" => Vote::StandAside,
        "block" => Vote::Block,
        _ => return bad("vote: choose for, stand aside or block"),
    };
    match s
        .store
        .fed_vote(
            &id,
            &f.member,
            vote,
            &f.comment,
            &v.person.id,
            cooper_store::now_ms(),
        )
        .await
    {
        Ok(()) => {
            record_audit(
                &s.store,
                &v.person.email,
                "federation.vote",
                None,
                None,
                "ok",
                &format!("{id}: {}", f.vote),
            )
            .await;
            Redirect::to(&format!("/decisions/{id}#votes")).into_response()
        }
        Err(cooper_store::StoreError::Invalid(m)) => bad(m),
        Err(e) => internal(e),
    }
}

// ----- meetings -----

pub struct ItemRow {
    pub id: String,
    pub title: String,
    pub details: String,
    pub by: String,
    pub carried: bool,
    pub state: String,
    pub outcome: String,
}

#[derive(Template)]
#[template(path = "fed_meeting.html")]
pub struct MeetingPage {
    pub c: Chrome,
    pub path: String,
    pub title: String,
    pub when: String,
    pub facilitator: String,
    pub note_taker: String,
    pub items: Vec<ItemRow>,
    pub reviews: Vec<ReviewRow>,
    pub published: bool,
    pub minutes_html: String,
    pub attendance: Vec<String>,
    pub may_write: bool,
    pub members: Vec<Choice>,
    pub template: String,
    /// Decisions made since the meeting before (linked from the minutes).
    pub decided: Vec<DecisionRow>,
}

const MINUTES_TEMPLATE: &str = "## Check-in\n\n\n## Items\n\n\n## Check-out\n\n";

pub async fn meeting(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let v = ctx.viewer();
    let m = match s.store.meeting(&id).await {
        Ok(Some(m)) => m,
        Ok(None) => return not_found(),
        Err(e) => return internal(e),
    };
    let names = person_names(&s).await;
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| "—".into());
    let items = match s.store.agenda(&m.id).await {
        Ok(items) => items
            .into_iter()
            .map(|i| ItemRow {
                carried: i.carried_from.is_some(),
                id: i.id,
                title: i.title,
                details: i.details,
                by: name(&i.added_by),
                state: i.state,
                outcome: i.outcome,
            })
            .collect(),
        Err(e) => return internal(e),
    };
    let today = today();
    let reviews = match s.store.agenda_reviews(&m).await {
        Ok(r) => r
            .iter()
            .map(|r| review_row(&r.id, &r.review, today))
            .collect(),
        Err(e) => return internal(e),
    };
    let all_members = s.store.fed_members().await.unwrap_or_default();
    let attendance = all_members
        .iter()
        .filter(|x| m.attendance.contains(&x.id))
        .map(|x| x.name.clone())
        .collect();
    let members = all_members
        .into_iter()
        .filter(|x| x.votes())
        .map(|x| Choice {
            id: x.id,
            name: x.name,
        })
        .collect();
    // The decisions made since the previous meeting, up to this one's end.
    let since = match s.store.previous_meeting(&m).await {
        Ok(p) => p.map(|p| p.starts_at).unwrap_or(m.starts_at - 31 * DAY_MS),
        Err(e) => return internal(e),
    };
    let until = m.starts_at + m.minutes * 60_000;
    let decided = s
        .store
        .proposals()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.decided_at.is_some_and(|d| d > since && d <= until))
        .map(|p| DecisionRow {
            href: format!("/decisions/{}", p.id),
            number: p.number.clone().unwrap_or_default(),
            title: p.title,
            size: p.size,
            state: p.state,
            when: when(p.decided_at.unwrap_or_default()),
        })
        .collect();
    let may_write = m.published_at.is_none()
        && (v.is_admin() || v.person.id == m.facilitator || v.person.id == m.note_taker);
    render(MeetingPage {
        c: chrome(&ctx, m.title.clone(), "federation"),
        path: format!("/federation/meetings/{}", m.id),
        title: m.title.clone(),
        when: when(m.starts_at),
        facilitator: name(&m.facilitator),
        note_taker: name(&m.note_taker),
        items,
        reviews,
        published: m.published_at.is_some(),
        minutes_html: markdown(&m.notes),
        attendance,
        may_write,
        members,
        template: MINUTES_TEMPLATE.into(),
        decided,
    })
}

#[derive(Deserialize)]
pub struct ItemForm {
    title: String,
    #[serde(default)]
    details: String,
}

pub async fn add_item(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<ItemForm>,
) -> Response {
    let v = ctx.viewer();
    match s
        .store
        .add_agenda_item(&id, &f.title, &f.details, &v.person.id)
        .await
    {
        Ok(_) => Redirect::to(&format!("/federation/meetings/{id}#agenda")).into_response(),
        Err(cooper_store::StoreError::Invalid(m)) => bad(m),
        Err(e) => internal(e),
    }
}

pub async fn minutes(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let v = ctx.viewer();
    let m = match s.store.meeting(&id).await {
        Ok(Some(m)) => m,
        Ok(None) => return not_found(),
        Err(e) => return internal(e),
    };
    if !(v.is_admin() || v.person.id == m.facilitator || v.person.id == m.note_taker) {
        return problem(
            StatusCode::FORBIDDEN,
            "The meeting's note-taker or facilitator writes its minutes (or a federation admin).",
        );
    }
    let get = |k: &str| {
        f.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut minutes = Minutes {
        notes: get("notes"),
        attendance: f
            .iter()
            .filter(|(k, _)| k == "present")
            .map(|(_, v)| v.clone())
            .collect(),
        ..Default::default()
    };
    for (k, val) in &f {
        if let Some(item) = k.strip_prefix("item:") {
            let result = if val == "carried" {
                ItemResult::Carried
            } else {
                let outcome = get(&format!("outcome:{item}"));
                if outcome.trim().is_empty() {
                    return bad(format!(
                        "an item marked done needs its outcome (item {item})"
                    ));
                }
                ItemResult::Done(outcome)
            };
            minutes.items.push((item.to_string(), result));
        }
        if let Some(review) = k.strip_prefix("review:") {
            if !val.trim().is_empty() {
                minutes.reviews.push((review.to_string(), val.clone()));
            }
        }
    }
    match s
        .store
        .record_minutes(&id, &minutes, cooper_store::now_ms())
        .await
    {
        Ok(()) => {
            record_audit(
                &s.store,
                &v.person.email,
                "federation.minutes",
                None,
                None,
                "ok",
                &format!("{} ({} reviews held)", m.title, minutes.reviews.len()),
            )
            .await;
            s.notifier
                .emit_logged(crate::notify::Event {
                    event: "minutes.published",
                    domain: None,
                    server: None,
                    title: format!("Minutes: {}, {}", m.title, when(m.starts_at)),
                    detail: format!(
                        "{} items, {} reviews held.",
                        minutes.items.len(),
                        minutes.reviews.len()
                    ),
                    link: Some(format!("/federation/meetings/{id}")),
                    dedupe: Some(format!("minutes|{id}")),
                })
                .await;
            Redirect::to(&format!("/federation/meetings/{id}")).into_response()
        }
        Err(cooper_store::StoreError::Invalid(m)) => bad(m),
        Err(e) => internal(e),
    }
}

// ----- calendar feeds -----

/// The calendar feed (ICS) of every rhythm and every single meeting of the next five years:
/// what `/federation/calendar.ics`, the private links and `cooper federation feed` serve.
pub async fn feed_text(store: &cooper_store::Store, name: &str) -> cooper_store::Result<String> {
    let now = Utc::now();
    let series = store.meeting_series().await?;
    let singles = store
        .meetings(0, now.timestamp_millis() + 5 * 366 * DAY_MS)
        .await?
        .into_iter()
        .filter(|m| m.series_id.is_none())
        .map(|m| meetings::Single {
            uid: format!("{}@cooper", m.id),
            title: m.title,
            description: String::new(),
            url: None,
            start: DateTime::from_timestamp_millis(m.starts_at).unwrap_or_default(),
            minutes: m.minutes as u32,
        })
        .collect::<Vec<_>>();
    let list: Vec<meetings::Series<'_>> = series
        .iter()
        .map(|x| meetings::Series {
            uid: format!("{}@cooper", x.id),
            title: x.title.clone(),
            description: x.rhythm.words(),
            url: None,
            rhythm: &x.rhythm,
        })
        .collect();
    Ok(meetings::feed(
        name,
        &list,
        &singles,
        now,
        now + chrono::Duration::days(5 * 366),
    ))
}

async fn feed(s: &AppState, name: &str) -> Response {
    match feed_text(&s.store, name).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
                (header::CACHE_CONTROL, "private, max-age=300"),
            ],
            body,
        )
            .into_response(),
        Err(e) => internal(e),
    }
}

pub async fn public_feed(State(s): State<AppState>) -> Response {
    feed(&s, "Federation meetings").await
}

pub async fn personal_feed(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    let token = token.trim_end_matches(".ics");
    match s.store.calendar_person(token).await {
        Ok(Some(person)) => match s.store.fed_members_of(&person).await {
            Ok(m) if !m.is_empty() => feed(&s, "My federation meetings").await,
            Ok(_) => not_found(),
            Err(e) => internal(e),
        },
        Ok(None) => not_found(),
        Err(e) => internal(e),
    }
}

pub async fn calendar_link(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let v = ctx.viewer();
    match s.store.new_calendar_link(&v.person.id).await {
        Ok(token) => index_page(&s, &ctx, Some(format!("/calendar/{token}.ics"))).await,
        Err(e) => internal(e),
    }
}

// ----- the admins' registers -----

fn day(field: &str, text: &str) -> Result<time::Date, Box<Response>> {
    cooper_ledger::entry::parse_date(text.trim())
        .map_err(|e| Box::new(bad(format!("{field}: {e} (write it as YYYY-MM-DD)"))))
}

fn opt_day(field: &str, text: &str) -> Result<Option<time::Date>, Box<Response>> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        day(field, text).map(Some)
    }
}

async fn done(
    s: &AppState,
    ctx: &Ctx,
    action: &str,
    detail: &str,
    r: cooper_store::Result<()>,
) -> Response {
    match r {
        Ok(()) => {
            record_audit(
                &s.store,
                &ctx.viewer().person.email,
                action,
                None,
                None,
                "ok",
                detail,
            )
            .await;
            Redirect::to("/federation").into_response()
        }
        Err(cooper_store::StoreError::Invalid(m)) => bad(m),
        Err(e) => internal(e),
    }
}

/// An amount in a currency from a form's two fields (minor units), or the page that says which
/// field is wrong.
fn money_field(amount: &str, currency: &str) -> Result<(i64, Currency), Box<Response>> {
    let currency: Currency = currency
        .trim()
        .parse()
        .map_err(|e| Box::new(bad(format!("currency: {e}"))))?;
    let amount = cooper_ledger::parse_amount(amount.trim(), currency)
        .map_err(|e| Box::new(bad(format!("amount: {e}"))))?;
    Ok((amount, currency))
}

#[derive(Deserialize)]
pub struct MemberForm {
    name: String,
    status: String,
    joined: String,
    #[serde(default)]
    contact: String,
    /// The number of the decision that admits it (not for founding members).
    #[serde(default)]
    decision: String,
}

pub async fn add_member(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<MemberForm>,
) -> Response {
    let joined = match day("joined", &f.joined) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    // A member of the same name as a co-op here is that co-op.
    let coop = ctx
        .owners
        .coop_names
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(f.name.trim()))
        .map(|(id, _)| id.clone());
    let r = s
        .store
        .admit_fed_member(
            &f.name,
            &f.status,
            joined,
            &f.contact,
            coop.as_deref(),
            Some(f.decision.as_str()),
        )
        .await
        .map(|_| ());
    done(&s, &ctx, "federation.member", &f.name, r).await
}

#[derive(Deserialize)]
pub struct SpeakerForm {
    member: String,
    email: String,
}

pub async fn link_person(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<SpeakerForm>,
) -> Response {
    let person = match s.store.person_by_email(f.email.trim()).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return bad(format!(
                "{:?} has no account here: invite them first (People)",
                f.email
            ))
        }
        Err(e) => return internal(e),
    };
    let r = s.store.link_fed_person(&f.member, &person.id).await;
    done(&s, &ctx, "federation.speaker", &f.email, r).await
}

#[derive(Deserialize)]
pub struct PaymentForm {
    member: String,
    date: String,
    amount: String,
    currency: String,
    #[serde(default)]
    reference: String,
}

pub async fn payment(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<PaymentForm>,
) -> Response {
    let on = match day("date", &f.date) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let (amount, currency) = match money_field(&f.amount, &f.currency) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let r = s
        .store
        .record_dues_payment(
            &f.member,
            on,
            amount,
            currency,
            &f.reference,
            None,
            &ctx.viewer().person.id,
        )
        .await;
    done(&s, &ctx, "federation.payment", &f.amount, r).await
}

#[derive(Deserialize)]
pub struct WaiverForm {
    member: String,
    from: String,
    #[serde(default)]
    to: String,
    reason: String,
}

pub async fn waiver(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<WaiverForm>,
) -> Response {
    let (from, to) = match (day("from", &f.from), opt_day("to", &f.to)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return *r,
    };
    let r = s
        .store
        .add_waiver(&f.member, from, to, &f.reason, &ctx.viewer().person.id)
        .await;
    done(&s, &ctx, "federation.waiver", &f.reason, r).await
}

#[derive(Deserialize)]
pub struct RateForm {
    from: String,
    amount: String,
    currency: String,
    period: String,
    resolution: String,
}

pub async fn rate(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<RateForm>,
) -> Response {
    let from = match day("from", &f.from) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let (amount, currency) = match money_field(&f.amount, &f.currency) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let period = match f.period.as_str() {
        "monthly" => cooper_federation::rules::DuesPeriod::Monthly,
        "yearly" => cooper_federation::rules::DuesPeriod::Yearly,
        _ => return bad("period: monthly or yearly"),
    };
    if f.resolution.trim().is_empty() {
        return bad("resolution: name the decision that set these dues (e.g. R002)");
    }
    let r = s
        .store
        .set_dues_rate(from, amount, currency, period, &f.resolution)
        .await;
    done(&s, &ctx, "federation.dues", &f.resolution, r).await
}

#[derive(Deserialize)]
pub struct ReviewForm {
    title: String,
    source: String,
    /// A day, or empty with `months` after `from`.
    #[serde(default)]
    due: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    months: String,
}

pub async fn add_review(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<ReviewForm>,
) -> Response {
    if f.title.trim().is_empty() || f.source.trim().is_empty() {
        return bad("a review needs a title and the resolution that asks for it");
    }
    let review = if !f.due.trim().is_empty() {
        match day("due", &f.due) {
            Ok(d) => Review::after(f.title.trim(), f.source.trim(), d, 0),
            Err(r) => return *r,
        }
    } else {
        let from = match day("from", &f.from) {
            Ok(d) => d,
            Err(r) => return *r,
        };
        let Ok(months) = f.months.trim().parse::<u32>() else {
            return bad("months: give the number of months after the resolution (e.g. 6)");
        };
        Review::after(f.title.trim(), f.source.trim(), from, months)
    };
    let r = s.store.add_review(&review).await.map(|_| ());
    done(&s, &ctx, "federation.review", &f.title, r).await
}

#[derive(Deserialize)]
pub struct SeriesForm {
    title: String,
    rule: String,
    first: String,
    tz: String,
    minutes: String,
    #[serde(default)]
    skipped: String,
    #[serde(default)]
    rota: String,
}

pub async fn add_series(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<SeriesForm>,
) -> Response {
    let rhythm = (|| {
        let first = meetings::wall_clock(&f.first)?;
        let tz = meetings::timezone(&f.tz)?;
        let minutes: u32 = f.minutes.trim().parse().map_err(|_| {
            cooper_federation::FederationError::Invalid(
                "minutes: give the length in minutes".into(),
            )
        })?;
        let skipped = f
            .skipped
            .split([',', ' ', '\n'])
            .filter(|x| !x.trim().is_empty())
            .map(|x| {
                x.trim().parse::<chrono::NaiveDate>().map_err(|_| {
                    cooper_federation::FederationError::Invalid(format!(
                        "skipped: {x:?} is not a day (YYYY-MM-DD)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Rhythm::new(&f.rule, first, tz, minutes, skipped)
    })();
    let rhythm = match rhythm {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let mut rota = Vec::new();
    for email in f
        .rota
        .split([',', ' ', '\n'])
        .filter(|x| !x.trim().is_empty())
    {
        match s.store.person_by_email(email.trim()).await {
            Ok(Some(p)) => rota.push(p.id),
            Ok(None) => return bad(format!("rota: {email:?} has no account here")),
            Err(e) => return internal(e),
        }
    }
    let r = s
        .store
        .add_meeting_series(&f.title, &rhythm, &rota)
        .await
        .map(|_| ());
    if r.is_ok() {
        let now = cooper_store::now_ms();
        if let Err(e) = s
            .store
            .plan_meetings(now - DAY_MS, now + crate::scheduler::PLAN_AHEAD_MS)
            .await
        {
            return internal(e);
        }
    }
    done(&s, &ctx, "federation.series", &f.title, r).await
}

pub async fn match_dues(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    match s
        .store
        .match_dues_from_ledger(&ctx.viewer().person.id)
        .await
    {
        Ok((added, skipped)) => {
            let detail = format!("{added} matched; {} skipped", skipped.len());
            done(&s, &ctx, "federation.dues.match", &detail, Ok(())).await
        }
        Err(e) => internal(e),
    }
}

// ----- polls -----

#[derive(Deserialize)]
pub struct NewPollForm {
    title: String,
    tz: String,
    days: String,
    from: String,
    to: String,
    slot: String,
    length: String,
}

fn hm(field: &str, t: &str) -> Result<chrono::NaiveTime, Box<Response>> {
    chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M")
        .map_err(|_| Box::new(bad(format!("{field}: write the time as HH:MM, e.g. 09:00"))))
}

pub async fn create_poll(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<NewPollForm>,
) -> Response {
    let tz = match meetings::timezone(&f.tz) {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    // Days as dates, or weekday names for a poll about an ordinary week.
    let mut days = Vec::new();
    let mut weekdays = Vec::new();
    for d in f
        .days
        .split([',', ' ', '\n'])
        .filter(|x| !x.trim().is_empty())
    {
        if let Ok(date) = d.trim().parse::<chrono::NaiveDate>() {
            days.push(date);
        } else if let Ok(w) = d.trim().parse::<chrono::Weekday>() {
            weekdays.push(w);
        } else {
            return bad(format!(
                "days: {d:?} is neither a date (2027-05-03) nor a weekday (Mon)"
            ));
        }
    }
    let weekly = !weekdays.is_empty();
    if weekly && !days.is_empty() {
        return bad("days: give dates or weekdays, not both");
    }
    if weekly {
        days = Shape::week_of(
            Utc::now().date_naive() + chrono::Duration::days(7),
            &weekdays,
        );
    }
    let (from, to) = match (hm("from", &f.from), hm("to", &f.to)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return *r,
    };
    let (Ok(slot), Ok(length)) = (f.slot.trim().parse::<u32>(), f.length.trim().parse::<i64>())
    else {
        return bad("slot and length: give minutes as numbers");
    };
    let shape = match Shape::new(tz, days, weekly, from, to, slot) {
        Ok(x) => x,
        Err(e) => return bad(e),
    };
    match s
        .store
        .create_poll(&f.title, &shape, length, &ctx.viewer().person.id)
        .await
    {
        Ok(id) => Redirect::to(&format!("/polls/{id}")).into_response(),
        Err(cooper_store::StoreError::Invalid(m)) => bad(m),
        Err(e) => internal(e),
    }
}

pub struct Cell {
    pub slot: Option<usize>,
    pub count: u32,
    pub level: u32,
    pub mine: bool,
    pub label: String,
    pub names: String,
}

pub struct Row {
    pub time: String,
    pub cells: Vec<Cell>,
}

pub struct Best {
    pub slot: usize,
    pub when: String,
    pub free: String,
}

#[derive(Template)]
#[template(path = "poll.html")]
pub struct PollPage {
    pub c: Chrome,
    pub path: String,
    pub title: String,
    pub tz: String,
    pub poll_tz: String,
    pub days: Vec<String>,
    pub rows: Vec<Row>,
    pub me: Option<String>,
    pub people: usize,
    pub best: Vec<Best>,
    pub may_choose: bool,
    pub chosen: Option<String>,
    pub length: i64,
}

#[derive(Deserialize, Default)]
pub struct TzQuery {
    #[serde(default)]
    tz: String,
}

/// A poll by id, or the page to answer instead (404 for none).
async fn load_poll(s: &AppState, id: &str) -> Result<cooper_store::practice::Poll, Box<Response>> {
    match s.store.poll(id).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(Box::new(not_found())),
        Err(e) => Err(Box::new(internal(e))),
    }
}

fn poll_key(id: &str) -> String {
    format!("poll:{id}")
}

pub async fn poll(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<TzQuery>,
) -> Response {
    let p = match load_poll(&s, &id).await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let marks = match s.store.poll_marks(&id).await {
        Ok(m) => m,
        Err(e) => return internal(e),
    };
    let me: Option<String> = session.get(&poll_key(&id)).await.ok().flatten();
    let mine = marks.iter().find(|(pp, _)| Some(&pp.id) == me.as_ref());
    // The grid in the timezone asked for, else the person's own, else the poll's.
    let tz_name = if !q.tz.trim().is_empty() {
        q.tz.trim().to_string()
    } else {
        mine.map(|(pp, _)| pp.tz.clone())
            .unwrap_or_else(|| p.shape.tz.name().to_string())
    };
    let tz = meetings::timezone(&tz_name).unwrap_or(p.shape.tz);
    let slots = p.shape.slots();
    let people: Vec<Vec<usize>> = marks.iter().map(|(_, m)| m.clone()).collect();
    let heat = poll::heat(slots.len(), &people);
    let max = heat.iter().copied().max().unwrap_or(0).max(1);
    let g = poll::grid(&slots, tz);
    // Who is free in each slot, gathered in one pass; a cell's tooltip names the first few.
    let mut free_in: Vec<Vec<&str>> = vec![Vec::new(); slots.len()];
    for (pp, m) in &marks {
        for &i in m {
            if let Some(v) = free_in.get_mut(i) {
                v.push(pp.name.as_str());
            }
        }
    }
    let names_at = |slot: usize| -> String {
        let names = &free_in[slot];
        const SHOWN: usize = 8;
        if names.len() > SHOWN {
            format!(
                "{} and {} more",
                names[..SHOWN].join(", "),
                names.len() - SHOWN
            )
        } else {
            names.join(", ")
        }
    };
    let rows = g
        .times
        .iter()
        .zip(&g.cells)
        .map(|(t, cells)| Row {
            time: t.format("%H:%M").to_string(),
            cells: cells
                .iter()
                .enumerate()
                .map(|(col, c)| match c {
                    Some(i) => Cell {
                        slot: Some(*i),
                        count: heat[*i],
                        level: (heat[*i] * 5).div_ceil(max),
                        mine: mine.is_some_and(|(_, m)| m.contains(i)),
                        label: format!(
                            "{} {}",
                            if p.shape.weekly {
                                g.days[col].format("%A").to_string()
                            } else {
                                g.days[col].format("%a %-d %b").to_string()
                            },
                            t.format("%H:%M")
                        ),
                        names: names_at(*i),
                    },
                    None => Cell {
                        slot: None,
                        count: 0,
                        level: 0,
                        mine: false,
                        label: String::new(),
                        names: String::new(),
                    },
                })
                .collect(),
        })
        .collect();
    let length = ((p.meeting_minutes as usize).div_ceil(p.shape.slot_minutes as usize)).max(1);
    let best = poll::best(&slots, p.shape.slot_minutes, &people, length, 5)
        .into_iter()
        .map(|c| Best {
            slot: c.first,
            when: slots[c.first]
                .with_timezone(&tz)
                .format("%a %-d %b %H:%M")
                .to_string(),
            free: c
                .free
                .iter()
                .map(|i| marks[*i].0.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let days = g
        .days
        .iter()
        .map(|d| {
            if p.shape.weekly {
                d.format("%a").to_string()
            } else {
                d.format("%a %-d %b").to_string()
            }
        })
        .collect();
    render(PollPage {
        c: chrome(&ctx, p.title.clone(), "federation"),
        path: format!("/polls/{}", p.id),
        title: p.title.clone(),
        tz: tz.name().to_string(),
        poll_tz: p.shape.tz.name().to_string(),
        days,
        rows,
        me: mine.map(|(pp, _)| pp.name.clone()),
        people: marks.len(),
        best,
        may_choose: p.meeting_id.is_none()
            && ctx
                .viewer
                .as_ref()
                .is_some_and(|v| v.on_federation() >= Right::Read),
        chosen: p.chosen_slot.and_then(|i| slots.get(i)).map(|t| {
            t.with_timezone(&tz)
                .format("%a %-d %b %Y %H:%M")
                .to_string()
        }),
        length: p.meeting_minutes,
    })
}

#[derive(Deserialize)]
pub struct JoinForm {
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    tz: String,
}

pub async fn join_poll(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(f): Form<JoinForm>,
) -> Response {
    let p = match load_poll(&s, &id).await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let tz = meetings::timezone(&f.tz)
        .map(|t| t.name().to_string())
        .unwrap_or_else(|_| p.shape.tz.name().to_string());
    let person = match s.store.poll_person(&id, &f.name).await {
        Err(e) => return internal(e),
        // Signing in again under one's name: the password must match when one was set.
        Ok(Some(existing)) => {
            let ok = match &existing.password_hash {
                None => true,
                Some(h) => crate::auth::verify_password(&f.password, h),
            };
            if !ok {
                return problem(
                    StatusCode::FORBIDDEN,
                    "That name is on this poll with a password, and the password does not match. Try again, or choose another name.",
                );
            }
            existing
        }
        Ok(None) => {
            let hash = if f.password.is_empty() {
                None
            } else {
                match crate::auth::hash_password(&f.password) {
                    Ok(h) => Some(h),
                    Err(e) => return internal(e),
                }
            };
            match s.store.join_poll(&id, &f.name, hash.as_deref(), &tz).await {
                Ok(p) => p,
                Err(cooper_store::StoreError::Invalid(m)) => return bad(m),
                Err(e) => return internal(e),
            }
        }
    };
    if let Err(e) = session.insert(&poll_key(&id), &person.id).await {
        return internal(e);
    }
    Redirect::to(&format!("/polls/{id}")).into_response()
}

pub async fn paint(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let p = match load_poll(&s, &id).await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let Some(me) = session.get::<String>(&poll_key(&id)).await.ok().flatten() else {
        return problem(
            StatusCode::FORBIDDEN,
            "Add your name to the poll first (at the top of its page), then mark your times.",
        );
    };
    let count = p.shape.slots().len();
    let mut free = Vec::new();
    for (k, v) in &f {
        if k == "slot" {
            match v.parse::<usize>() {
                Ok(i) if i < count => free.push(i),
                _ => return bad(format!("slot {v:?} is not on this poll")),
            }
        }
    }
    // The form holds the whole grid: every slot not marked free is busy.
    let busy: Vec<usize> = (0..count).filter(|i| !free.contains(i)).collect();
    match s.store.paint(&p, &me, &free, &busy).await {
        Ok(()) => Redirect::to(&format!("/polls/{id}#grid")).into_response(),
        Err(cooper_store::StoreError::Invalid(m)) => bad(m),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct ChooseForm {
    slot: usize,
}

pub async fn choose(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<ChooseForm>,
) -> Response {
    let p = match load_poll(&s, &id).await {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match s.store.choose_poll_slot(&p, f.slot).await {
        Ok(m) => {
            record_audit(
                &s.store,
                &ctx.viewer().person.email,
                "federation.poll.choose",
                None,
                None,
                "ok",
                &p.title,
            )
            .await;
            Redirect::to(&format!("/federation/meetings/{m}")).into_response()
        }
        Err(cooper_store::StoreError::Invalid(m)) => bad(m),
        Err(e) => internal(e),
    }
}

/// The poll page's script: paint by dragging (mouse or touch) over the grid's checkboxes,
/// saved when the stroke ends. Without it the checkboxes and the save button do the same.
pub const POLL_JS: &str = include_str!("../assets/poll.js");
