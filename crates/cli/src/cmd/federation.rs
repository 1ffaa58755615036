//! `cooper federation …`: the federation's practice from the terminal — members and who speaks
//! for them, dues (rates, payments, waivers, matching from the member co-ops' books, arrears),
//! the decisions register (propose, vote), reviews, meeting rhythms and the calendar feed, and
//! the scheduler's federation step. The same store calls as the dashboard's federation pages:
//! what one does, the other shows.

use anyhow::{bail, Context};
use chrono::Utc;
use clap::{Args, Subcommand};
use cooper_federation::decision::Vote;
use cooper_federation::meetings::{self, Rhythm};
use cooper_federation::rules::DuesPeriod;
use cooper_federation::{Review, ReviewState};
use cooper_ledger::{format_amount, parse_amount, Currency};
use cooper_store::federation::{Member, NewProposal, Proposal};
use cooper_store::practice::day_of;
use cooper_store::Store;

use crate::{output, Ctx};

#[derive(Debug, Args)]
pub struct Federation {
    /// The store: `sqlite://<path>` or `postgres://…` (default: `$ABRA_DIR/cooper/cooper.db`).
    #[arg(
        long,
        global = true,
        env = "COOPER_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    database: Option<String>,
    /// Print JSON instead of words and tables.
    #[arg(short = 'm', long, global = true)]
    machine: bool,
    #[command(subcommand)]
    command: FedCommand,
}

#[derive(Debug, Subcommand)]
enum FedCommand {
    /// List the member organisations with their status and arrears.
    Members,
    /// Add a member, let a person speak for one, or record that one left.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Dues: every member's account, or set a rate, record a payment, waive, match.
    Dues(Dues),
    /// The decisions register: every proposal, its state and number.
    Decisions,
    /// Make a proposal (its size and deadline are checked against the rules).
    Propose(Propose),
    /// Vote for a member organisation you speak for (changeable until the deadline).
    Vote(VoteArgs),
    /// Reviews asked for by resolutions, with their state; or add one.
    Reviews(Reviews),
    /// The meetings of the next two months, with their roles and agendas.
    Meetings,
    /// Add a meeting rhythm (an RFC 5545 rule in a timezone).
    Rhythm(RhythmArgs),
    /// Print the calendar feed (ICS) of every rhythm and single meeting.
    Feed,
    /// Run the scheduler's federation step now: plan meetings, decide proposals whose deadline
    /// has come (and queue the news), queue due review reminders.
    Tick,
}

#[derive(Debug, Subcommand)]
enum MemberCommand {
    /// Add a member organisation.
    Add {
        /// Its name.
        name: String,
        /// founding, member or solidarity.
        #[arg(long, default_value = "member")]
        status: String,
        /// The day it joined (YYYY-MM-DD).
        #[arg(long)]
        joined: String,
        /// How to reach it.
        #[arg(long, default_value = "")]
        contact: String,
        /// The co-op in this store it is (its operators and treasurers then speak for it).
        #[arg(long, value_name = "NAME")]
        coop: Option<String>,
        /// The passed decision that admits it (R004); founding members need none.
        #[arg(long, value_name = "NUMBER")]
        decision: Option<String>,
    },
    /// Let a person (an account here) vote and act for a member.
    Link {
        /// The member's name.
        member: String,
        /// The person's email.
        #[arg(long)]
        email: String,
    },
    /// Record that a member left (it no longer votes or owes dues from that day).
    Leave {
        /// The member's name.
        member: String,
        /// The day it left (default today).
        #[arg(long)]
        on: Option<String>,
    },
}

#[derive(Debug, Args)]
struct Dues {
    #[command(subcommand)]
    command: Option<DuesCommand>,
}

#[derive(Debug, Subcommand)]
enum DuesCommand {
    /// Set the dues from a day on, as a resolution decided.
    Rate {
        /// The first day it applies (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// The amount per period (10.00).
        #[arg(long)]
        amount: String,
        /// The ISO currency code.
        #[arg(long, default_value = "EUR")]
        currency: String,
        /// monthly or yearly.
        #[arg(long, default_value = "monthly")]
        period: String,
        /// The resolution that set it (R002).
        #[arg(long = "by-resolution", value_name = "R")]
        resolution: String,
    },
    /// Record a payment of dues.
    Pay {
        /// The member's name.
        member: String,
        /// The day it arrived (default today).
        #[arg(long)]
        date: Option<String>,
        /// The amount (30.00).
        #[arg(long)]
        amount: String,
        /// The ISO currency code.
        #[arg(long, default_value = "EUR")]
        currency: String,
        /// A bank reference, an invoice number.
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// Waive a member's dues (solidarity), with a start, an end and a reason.
    Waive {
        /// The member's name.
        member: String,
        /// The first day (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// The last day (none: until lifted).
        #[arg(long)]
        to: Option<String>,
        /// Why (the books are open).
        #[arg(long)]
        reason: String,
    },
    /// Record as dues the payments to `federation` in member co-ops' books (each line once).
    Match,
}

#[derive(Debug, Args)]
struct Propose {
    /// A short title.
    #[arg(long)]
    title: String,
    /// What and why, in a few lines.
    #[arg(long)]
    summary: String,
    /// The details.
    #[arg(long, default_value = "")]
    details: String,
    /// The size of decision, as the rules name it (small, medium, large).
    #[arg(long)]
    size: String,
    /// The deadline (YYYY-MM-DD; decided at 15:00 UTC that day).
    #[arg(long)]
    deadline: String,
    /// The budget asked for, in words ("10 hours a month", "300 EUR a month"); checked against
    /// the rules' buffer on the common fund.
    #[arg(long, default_value = "")]
    budget: String,
    /// Who proposes (an account's email).
    #[arg(long, env = "COOPER_PERSON")]
    by: String,
}

#[derive(Debug, Args)]
struct VoteArgs {
    /// The proposal: its id, or its title.
    proposal: String,
    /// The member organisation voting (its name).
    #[arg(long)]
    member: String,
    /// for, stand-aside or block.
    #[arg(long)]
    vote: String,
    /// Why.
    #[arg(long, default_value = "")]
    comment: String,
    /// Who casts it (an account's email; they must speak for the member).
    #[arg(long, env = "COOPER_PERSON")]
    by: String,
}

#[derive(Debug, Args)]
struct Reviews {
    /// Add a review with this title.
    #[arg(long, requires = "source")]
    add: Option<String>,
    /// The resolution asking for it (R002).
    #[arg(long)]
    source: Option<String>,
    /// Due on this day (YYYY-MM-DD) …
    #[arg(long, conflicts_with = "months")]
    due: Option<String>,
    /// … or this many months after --from.
    #[arg(long, requires = "from")]
    months: Option<u32>,
    /// The resolution's day, for --months.
    #[arg(long)]
    from: Option<String>,
}

#[derive(Debug, Args)]
struct RhythmArgs {
    /// The meeting's title.
    #[arg(long, default_value = "Federation meeting")]
    title: String,
    /// The RFC 5545 rule, e.g. FREQ=MONTHLY;BYDAY=1WE.
    #[arg(long)]
    rule: String,
    /// The first meeting, as a local time in --tz (2027-01-06 15:00).
    #[arg(long)]
    first: String,
    /// The timezone of its wall-clock time.
    #[arg(long, default_value = "UTC")]
    tz: String,
    /// Its length in minutes.
    #[arg(long, default_value_t = 90)]
    minutes: u32,
    /// A day without a meeting (repeatable).
    #[arg(long = "skip", value_name = "DATE")]
    skipped: Vec<String>,
    /// Who takes turns facilitating and taking notes, by email (repeatable, in order).
    #[arg(long = "rota", value_name = "EMAIL")]
    rota: Vec<String>,
}

fn date(field: &str, text: &str) -> anyhow::Result<time::Date> {
    cooper_ledger::entry::parse_date(text.trim())
        .map_err(|e| anyhow::anyhow!("--{field}: {e} (write it as YYYY-MM-DD)"))
}

fn today() -> time::Date {
    day_of(cooper_store::now_ms())
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

async fn member_named(store: &Store, name: &str) -> anyhow::Result<Member> {
    let all = store.fed_members().await?;
    all.iter()
        .find(|m| m.name.eq_ignore_ascii_case(name.trim()))
        .cloned()
        .with_context(|| {
            format!(
                "no member organisation {name:?}; the members are: {}",
                all.iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

async fn person(store: &Store, email: &str) -> anyhow::Result<cooper_store::Person> {
    store.person_by_email(email).await?.with_context(|| {
        format!(
            "{email:?} has no account in this store: invite them on the dashboard's People page"
        )
    })
}

async fn proposal_named(store: &Store, key: &str) -> anyhow::Result<Proposal> {
    let all = store.proposals().await?;
    all.into_iter()
        .find(|p| p.id == key || p.number.as_deref() == Some(key) || p.title == key)
        .with_context(|| format!("no proposal {key:?} (give its id, number or exact title)"))
}

fn money(v: i64, c: Option<Currency>) -> String {
    match c {
        Some(c) => format!("{} {c}", format_amount(v, c)),
        None => v.to_string(),
    }
}

impl Federation {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        ctx.block_on(self.run_async(ctx))
    }

    async fn run_async(self, ctx: &Ctx) -> anyhow::Result<u8> {
        let store = super::serve::open_store(self.database.as_deref(), ctx).await?;
        let m = self.machine;
        match self.command {
            FedCommand::Members | FedCommand::Dues(Dues { command: None }) => {
                accounts(ctx, &store, m).await
            }
            FedCommand::Member(c) => member(&store, c).await,
            FedCommand::Dues(Dues { command: Some(c) }) => dues(&store, c).await,
            FedCommand::Decisions => decisions(ctx, &store, m).await,
            FedCommand::Propose(p) => propose(&store, p).await,
            FedCommand::Vote(v) => vote(&store, v).await,
            FedCommand::Reviews(r) => reviews(ctx, &store, r, m).await,
            FedCommand::Meetings => meetings_list(ctx, &store, m).await,
            FedCommand::Rhythm(r) => rhythm(&store, r).await,
            FedCommand::Feed => feed(&store).await,
            FedCommand::Tick => {
                let notifier = cooper_web::notify::Notifier::new(store.clone(), None, None);
                cooper_web::scheduler::federation(&store, &notifier, cooper_store::now_ms())
                    .await?;
                println!("planned the meetings ahead, decided what was due, queued the reminders");
                Ok(0)
            }
        }
    }
}

async fn accounts(ctx: &Ctx, store: &Store, machine: bool) -> anyhow::Result<u8> {
    let today = today();
    let all = store.dues_accounts(today).await?;
    if machine {
        let v: Vec<_> = all
            .iter()
            .map(|(m, a, w)| {
                serde_json::json!({
                    "name": m.name, "status": m.status, "joined": m.joined_on.to_string(),
                    "owed": a.owed, "paid": a.paid, "arrears": a.arrears, "credit": a.credit,
                    "currency": a.currency.map(|c| c.to_string()),
                    "unpaid": a.unpaid().map(|l| l.period.clone()).collect::<Vec<_>>(),
                    "waivers": w.iter().map(|w| serde_json::json!({"from": w.from.to_string(), "to": w.to.map(|t| t.to_string()), "reason": w.reason})).collect::<Vec<_>>(),
                })
            })
            .collect();
        output::json(&v)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|(m, a, w)| {
            vec![
                m.name.clone(),
                m.status.clone(),
                m.joined_on.to_string(),
                money(a.arrears, a.currency),
                a.unpaid()
                    .map(|l| l.period.clone())
                    .collect::<Vec<_>>()
                    .join(" "),
                w.iter()
                    .find(|w| w.covers(today))
                    .map(|w| w.reason.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        ctx.tty,
        &["MEMBER", "STATUS", "JOINED", "ARREARS", "UNPAID", "WAIVED"],
        &rows,
    );
    Ok(0)
}

async fn member(store: &Store, c: MemberCommand) -> anyhow::Result<u8> {
    match c {
        MemberCommand::Add {
            name,
            status,
            joined,
            contact,
            coop,
            decision,
        } => {
            let coop_id = match coop {
                Some(c) => Some(store.coop_named(&c).await?.id),
                None => None,
            };
            let m = store
                .admit_fed_member(
                    &name,
                    &status,
                    date("joined", &joined)?,
                    &contact,
                    coop_id.as_deref(),
                    decision.as_deref(),
                )
                .await?;
            println!("added {} ({}), joined {}", m.name, m.status, m.joined_on);
        }
        MemberCommand::Link { member, email } => {
            let m = member_named(store, &member).await?;
            let p = person(store, &email).await?;
            store.link_fed_person(&m.id, &p.id).await?;
            println!("{email} now speaks for {}", m.name);
        }
        MemberCommand::Leave { member, on } => {
            let m = member_named(store, &member).await?;
            let on = match on {
                Some(d) => date("on", &d)?,
                None => today(),
            };
            store.set_fed_member_status(&m.id, "left", on).await?;
            println!(
                "{} left on {on}: it no longer votes or owes dues after that day",
                m.name
            );
        }
    }
    Ok(0)
}

fn currency(text: &str) -> anyhow::Result<Currency> {
    text.trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("--currency: {e}"))
}

async fn dues(store: &Store, c: DuesCommand) -> anyhow::Result<u8> {
    match c {
        DuesCommand::Rate {
            from,
            amount,
            currency: cur,
            period,
            resolution,
        } => {
            let cur = currency(&cur)?;
            let amount =
                parse_amount(&amount, cur).map_err(|e| anyhow::anyhow!("--amount: {e}"))?;
            let period = match period.as_str() {
                "monthly" => DuesPeriod::Monthly,
                "yearly" => DuesPeriod::Yearly,
                other => bail!("--period {other:?}: monthly or yearly"),
            };
            store
                .set_dues_rate(date("from", &from)?, amount, cur, period, &resolution)
                .await?;
            println!(
                "dues are {} from {from} ({resolution})",
                money(amount, Some(cur))
            );
        }
        DuesCommand::Pay {
            member,
            date: d,
            amount,
            currency: cur,
            reference,
        } => {
            let m = member_named(store, &member).await?;
            let cur = currency(&cur)?;
            let amount =
                parse_amount(&amount, cur).map_err(|e| anyhow::anyhow!("--amount: {e}"))?;
            let on = match d {
                Some(d) => date("date", &d)?,
                None => today(),
            };
            store
                .record_dues_payment(&m.id, on, amount, cur, &reference, None, "cli")
                .await?;
            println!(
                "recorded {} from {} on {on}",
                money(amount, Some(cur)),
                m.name
            );
        }
        DuesCommand::Waive {
            member,
            from,
            to,
            reason,
        } => {
            let m = member_named(store, &member).await?;
            let to = to.map(|t| date("to", &t)).transpose()?;
            store
                .add_waiver(&m.id, date("from", &from)?, to, &reason, "cli")
                .await?;
            println!("waived {}'s dues from {from}: {reason}", m.name);
        }
        DuesCommand::Match => {
            let (added, skipped) = store.match_dues_from_ledger("cli").await?;
            for s in &skipped {
                eprintln!("note: {s}");
            }
            println!("{added} payment(s) matched from the member co-ops' books");
        }
    }
    Ok(0)
}

async fn decisions(ctx: &Ctx, store: &Store, machine: bool) -> anyhow::Result<u8> {
    let all = store.proposals().await?;
    if machine {
        let v: Vec<_> = all
            .iter()
            .map(|p| {
                serde_json::json!({
                    "id": p.id, "number": p.number, "title": p.title, "size": p.size,
                    "state": p.state, "reason": p.reason, "deadline": p.deadline, "decided_at": p.decided_at,
                })
            })
            .collect();
        output::json(&v)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|p| {
            vec![
                p.number.clone().unwrap_or_default(),
                p.title.clone(),
                p.size.clone(),
                p.state.clone(),
                when(p.decided_at.unwrap_or(p.deadline)),
                p.id.clone(),
            ]
        })
        .collect();
    output::table(
        ctx.tty,
        &["NUMBER", "TITLE", "SIZE", "STATE", "DECIDED/CLOSES", "ID"],
        &rows,
    );
    Ok(0)
}

async fn propose(store: &Store, p: Propose) -> anyhow::Result<u8> {
    let by = person(store, &p.by).await?;
    if store.fed_members_of(&by.id).await?.is_empty() && !by.federation_admin {
        bail!(
            "{} speaks for no member organisation: `cooper federation member link` first",
            p.by
        );
    }
    if !p.budget.trim().is_empty() {
        store.budget_check().await?;
    }
    let deadline = date("deadline", &p.deadline)?
        .midnight()
        .assume_utc()
        .unix_timestamp()
        * 1000
        + 15 * 3_600_000;
    let made = store
        .propose(
            &NewProposal {
                title: p.title,
                summary: p.summary,
                details: p.details,
                size: p.size,
                budget: p.budget,
                deadline,
            },
            &by.id,
            cooper_store::now_ms(),
        )
        .await?;
    println!(
        "proposed {:?} ({}): {} — closes {}{}",
        made.title,
        made.size,
        made.id,
        when(made.deadline),
        made.number
            .map(|n| format!("; recorded as {n}"))
            .unwrap_or_default()
    );
    Ok(0)
}

async fn vote(store: &Store, v: VoteArgs) -> anyhow::Result<u8> {
    let p = proposal_named(store, &v.proposal).await?;
    let m = member_named(store, &v.member).await?;
    let by = person(store, &v.by).await?;
    if !store
        .fed_members_of(&by.id)
        .await?
        .iter()
        .any(|x| x.id == m.id)
    {
        bail!(
            "{} does not speak for {}: `cooper federation member link {:?} --email {}` first",
            v.by,
            m.name,
            m.name,
            v.by
        );
    }
    let vote = match v.vote.as_str() {
        "for" => Vote::For,
        "stand-aside" => Vote::StandAside,
        "block" => Vote::Block,
        other => bail!("--vote {other:?}: for, stand-aside or block"),
    };
    store
        .fed_vote(
            &p.id,
            &m.id,
            vote,
            &v.comment,
            &by.id,
            cooper_store::now_ms(),
        )
        .await?;
    println!("{} votes {} on {:?}", m.name, v.vote, p.title);
    Ok(0)
}

async fn reviews(ctx: &Ctx, store: &Store, r: Reviews, machine: bool) -> anyhow::Result<u8> {
    if let Some(title) = r.add {
        let source = r.source.unwrap_or_default();
        let review = match (r.due, r.months, r.from) {
            (Some(d), _, _) => Review::after(&title, &source, date("due", &d)?, 0),
            (None, Some(n), Some(f)) => Review::after(&title, &source, date("from", &f)?, n),
            _ => bail!("give --due DATE, or --months N --from DATE"),
        };
        store.add_review(&review).await?;
        println!("review {title:?} due {}", review.due);
        return Ok(0);
    }
    let today = today();
    let all = store.reviews().await?;
    let state = |r: &Review| match r.state(today) {
        ReviewState::Overdue { days } => format!("OVERDUE by {days} days"),
        ReviewState::DueSoon { days_left } => format!("due in {days_left} days"),
        ReviewState::Upcoming { days_left } => format!("in {days_left} days"),
        ReviewState::Held { on, outcome } => format!("held {on}: {outcome}"),
    };
    if machine {
        let v: Vec<_> = all
            .iter()
            .map(|x| serde_json::json!({"id": x.id, "title": x.review.title, "source": x.review.source, "due": x.review.due.to_string(), "state": state(&x.review)}))
            .collect();
        output::json(&v)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|x| {
            vec![
                x.review.title.clone(),
                x.review.source.clone(),
                x.review.due.to_string(),
                state(&x.review),
            ]
        })
        .collect();
    output::table(ctx.tty, &["REVIEW", "ASKED BY", "DUE", "STATE"], &rows);
    Ok(0)
}

async fn meetings_list(ctx: &Ctx, store: &Store, machine: bool) -> anyhow::Result<u8> {
    let now = cooper_store::now_ms();
    let names: std::collections::HashMap<String, String> = store
        .people()
        .await?
        .into_iter()
        .map(|p| (p.id, p.email))
        .collect();
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for m in store
        .meetings(now - 86_400_000, now + 62 * 86_400_000)
        .await?
    {
        let items = store.agenda(&m.id).await?.len();
        let reviews = store.agenda_reviews(&m).await?.len();
        let fac = names.get(&m.facilitator).cloned().unwrap_or_default();
        let notes = names.get(&m.note_taker).cloned().unwrap_or_default();
        json.push(serde_json::json!({"id": m.id, "title": m.title, "starts": when(m.starts_at), "facilitator": fac, "note_taker": notes, "items": items, "reviews": reviews, "minutes": m.published_at.is_some()}));
        rows.push(vec![
            when(m.starts_at),
            m.title,
            fac,
            notes,
            format!("{items} item(s), {reviews} review(s)"),
        ]);
    }
    if machine {
        output::json(&json)?;
    } else {
        for s in store.meeting_series().await? {
            println!("{}: {}", s.title, s.rhythm.words());
        }
        output::table(
            ctx.tty,
            &["WHEN", "MEETING", "FACILITATES", "TAKES NOTES", "AGENDA"],
            &rows,
        );
    }
    Ok(0)
}

async fn rhythm(store: &Store, r: RhythmArgs) -> anyhow::Result<u8> {
    let skipped = r
        .skipped
        .iter()
        .map(|d| {
            d.parse::<chrono::NaiveDate>()
                .map_err(|_| anyhow::anyhow!("--skip {d:?}: write the day as YYYY-MM-DD"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rhythm = Rhythm::new(
        &r.rule,
        meetings::wall_clock(&r.first)?,
        meetings::timezone(&r.tz)?,
        r.minutes,
        skipped,
    )?;
    let mut rota = Vec::new();
    for e in &r.rota {
        rota.push(person(store, e).await?.id);
    }
    store.add_meeting_series(&r.title, &rhythm, &rota).await?;
    let now = cooper_store::now_ms();
    store
        .plan_meetings(now - 86_400_000, now + cooper_web::scheduler::PLAN_AHEAD_MS)
        .await?;
    println!("{}: {}", r.title, rhythm.words());
    if let Some(next) = rhythm.next(Utc::now()) {
        println!("next: {}", next.format("%Y-%m-%d %H:%M UTC"));
    }
    Ok(0)
}

async fn feed(store: &Store) -> anyhow::Result<u8> {
    print!(
        "{}",
        cooper_web::federation::feed_text(store, "Federation meetings").await?
    );
    Ok(0)
}
