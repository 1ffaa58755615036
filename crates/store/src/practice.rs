//! The federation's practice in the store, part two: who speaks for each member organisation,
//! dues (rates set by resolutions, solidarity waivers, payments) and arrears, meetings on a
//! rhythm (occurrences kept as rows, roles rotating), agendas with items carried over and
//! reviews that come by themselves, minutes that hold reviews, personal calendar links, and
//! availability polls painted slot by slot.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use cooper_federation::dues::{self, Account, Payment, Rate, Waiver};
use cooper_federation::meetings::{self, Rhythm};
use cooper_federation::poll::Shape;
use cooper_federation::rules::DuesPeriod;
use cooper_ledger::entry::{date_text, parse_date};
use cooper_ledger::money::Currency;
use sqlx::Row;
use time::Date;

use crate::federation::{Member, StoredReview};
use crate::{is_unique, new_id, now_ms, Result, Store, StoreError};

fn invalid(m: impl Into<String>) -> StoreError {
    StoreError::Invalid(m.into())
}

/// The day (UTC) of an instant in ms.
pub fn day_of(ms: i64) -> Date {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| t.date())
        .unwrap_or(Date::MIN)
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// A meeting rhythm as stored.
#[derive(Debug, Clone)]
pub struct Series {
    pub id: String,
    pub title: String,
    pub rhythm: Rhythm,
    /// Person ids who take turns.
    pub rota: Vec<String>,
}

/// One meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    pub id: String,
    pub series_id: Option<String>,
    pub starts_at: i64,
    pub minutes: i64,
    pub title: String,
    pub facilitator: String,
    pub note_taker: String,
    /// The minutes, in Markdown.
    pub notes: String,
    /// Member organisation ids present.
    pub attendance: Vec<String>,
    pub published_at: Option<i64>,
}

/// An item on a meeting's agenda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub meeting_id: String,
    pub title: String,
    pub details: String,
    pub added_by: String,
    pub added_at: i64,
    pub carried_from: Option<String>,
    /// `open`, `done` or `carried`.
    pub state: String,
    pub outcome: String,
}

/// What the minutes say of an agenda item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemResult {
    Done(String),
    /// Not reached: it goes onto the next meeting's agenda.
    Carried,
}

/// The minutes of a meeting, as its note-taker writes them.
#[derive(Debug, Clone, Default)]
pub struct Minutes {
    pub notes: String,
    pub attendance: Vec<String>,
    pub items: Vec<(String, ItemResult)>,
    /// Reviews held, with their outcome.
    pub reviews: Vec<(String, String)>,
}

/// A poll as stored.
#[derive(Debug, Clone)]
pub struct Poll {
    pub id: String,
    pub title: String,
    pub shape: Shape,
    /// How long the meeting it looks for is.
    pub meeting_minutes: i64,
    pub created_by: String,
    pub chosen_slot: Option<usize>,
    pub meeting_id: Option<String>,
}

/// Someone on a poll (no account: a name, an optional password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPerson {
    pub id: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub tz: String,
}

const MEETING_COLUMNS: &str = "id, series_id, starts_at, minutes, title, facilitator, note_taker, notes, attendance, published_at";
const ITEM_COLUMNS: &str =
    "id, meeting_id, title, details, added_by, added_at, carried_from, state, outcome";

fn meeting(r: &sqlx::any::AnyRow) -> Result<Meeting> {
    Ok(Meeting {
        id: r.try_get("id")?,
        series_id: r.try_get("series_id")?,
        starts_at: r.try_get("starts_at")?,
        minutes: r.try_get("minutes")?,
        title: r.try_get("title")?,
        facilitator: r.try_get("facilitator")?,
        note_taker: r.try_get("note_taker")?,
        notes: r.try_get("notes")?,
        attendance: list(&r.try_get::<String, _>("attendance")?),
        published_at: r.try_get("published_at")?,
    })
}

fn item(r: &sqlx::any::AnyRow) -> Result<Item> {
    Ok(Item {
        id: r.try_get("id")?,
        meeting_id: r.try_get("meeting_id")?,
        title: r.try_get("title")?,
        details: r.try_get("details")?,
        added_by: r.try_get("added_by")?,
        added_at: r.try_get("added_at")?,
        carried_from: r.try_get("carried_from")?,
        state: r.try_get("state")?,
        outcome: r.try_get("outcome")?,
    })
}

fn period_text(p: DuesPeriod) -> &'static str {
    match p {
        DuesPeriod::Monthly => "monthly",
        DuesPeriod::Yearly => "yearly",
    }
}

fn period_of(t: &str) -> Result<DuesPeriod> {
    match t {
        "monthly" => Ok(DuesPeriod::Monthly),
        "yearly" => Ok(DuesPeriod::Yearly),
        o => Err(invalid(format!("period {o:?}: dues are monthly or yearly"))),
    }
}

impl Store {
    // ----- who speaks for whom -----

    /// Lets a person vote and act for a member organisation.
    pub async fn link_fed_person(&self, member_id: &str, person_id: &str) -> Result<()> {
        if self.fed_member(member_id).await?.is_none() {
            return Err(invalid("no such member organisation"));
        }
        sqlx::query(
            "INSERT INTO fed_member_people (member_id, person_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(member_id)
        .bind(person_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The member organisations a person speaks for: those linked to them, and those that are
    /// a co-op they operate or keep the books of. Members who left are not among them.
    pub async fn fed_members_of(&self, person_id: &str) -> Result<Vec<Member>> {
        let linked: Vec<String> =
            sqlx::query("SELECT member_id FROM fed_member_people WHERE person_id = $1")
                .bind(person_id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get("member_id"))
                .collect::<std::result::Result<_, _>>()?;
        let coops: Vec<String> = self
            .memberships(person_id)
            .await?
            .into_iter()
            .filter(|m| m.kind == "coop")
            .map(|m| m.target_id)
            .collect();
        Ok(self
            .fed_members()
            .await?
            .into_iter()
            .filter(|m| m.votes())
            .filter(|m| {
                linked.contains(&m.id) || m.coop_id.as_ref().is_some_and(|c| coops.contains(c))
            })
            .collect())
    }

    /// Who hears the federation's news (decisions, reviews, minutes): its admins and everyone
    /// who speaks for a member organisation that has not left.
    pub async fn fed_audience(&self) -> Result<Vec<crate::Person>> {
        let q = format!(
            "SELECT {} FROM people WHERE disabled = 0 AND (federation_admin = 1 \
             OR id IN (SELECT p.person_id FROM fed_member_people p JOIN fed_members f ON f.id = p.member_id WHERE f.status <> 'left') \
             OR id IN (SELECT m.person_id FROM memberships m JOIN fed_members f ON f.coop_id = m.target_id \
                       WHERE m.kind = 'coop' AND f.status <> 'left')) ORDER BY email",
            crate::people::PERSON_COLUMNS
        );
        sqlx::query(&q)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(crate::people::person)
            .collect()
    }

    /// Admits a member organisation as the rules say: founding members are recorded as they
    /// are; any other joins by a passed decision of the size the rules name for joining (for
    /// Co-op Cloud, a large one), given by its number, which is kept with the member.
    pub async fn admit_fed_member(
        &self,
        name: &str,
        status: &str,
        joined_on: Date,
        contact: &str,
        coop_id: Option<&str>,
        decision: Option<&str>,
    ) -> Result<Member> {
        if !["founding", "member", "solidarity"].contains(&status) {
            return Err(invalid(format!(
                "status {status:?}: a member joins as founding, member or solidarity"
            )));
        }
        let (rules, _) = self.fed_rules().await?;
        let join_size = rules.dues.as_ref().map(|d| d.join_size.clone());
        let number = decision.map(str::trim).filter(|d| !d.is_empty());
        if status != "founding" {
            if let Some(size) = &join_size {
                let Some(number) = number else {
                    return Err(invalid(format!(
                        "{name} joins by a {size} decision: give the number of the passed decision that admits it (propose one first)"
                    )));
                };
                let p = self
                    .proposals()
                    .await?
                    .into_iter()
                    .find(|p| p.number.as_deref() == Some(number))
                    .ok_or_else(|| {
                        invalid(format!(
                            "no passed decision {number}: the register has the numbers"
                        ))
                    })?;
                if !p.size.eq_ignore_ascii_case(size) {
                    return Err(invalid(format!(
                        "{number} was a {} decision; joining takes a {size} one",
                        p.size
                    )));
                }
            }
        }
        let m = self
            .add_fed_member(name, status, joined_on, contact, coop_id)
            .await?;
        if let Some(n) = number {
            sqlx::query("UPDATE fed_members SET admitted_by = $1 WHERE id = $2")
                .bind(n)
                .bind(&m.id)
                .execute(&self.pool)
                .await?;
        }
        Ok(m)
    }

    /// Whether a new budget may be proposed now: the rules' buffer against the common fund
    /// (the dues received so far). The error says how much the fund holds.
    pub async fn budget_check(&self) -> Result<()> {
        let (rules, _) = self.fed_rules().await?;
        let fund: i64 = self
            .dues_accounts(day_of(now_ms()))
            .await?
            .iter()
            .map(|(_, a, _)| a.paid)
            .sum();
        rules
            .budget_allowed(fund)
            .map_err(|e| invalid(format!("budget: {e}")))
    }

    /// The first meeting (in `order`) that matches `condition` on the instant `$1`.
    async fn meeting_where(
        &self,
        condition: &str,
        order: &str,
        at: i64,
    ) -> Result<Option<Meeting>> {
        sqlx::query(&format!(
            "SELECT {MEETING_COLUMNS} FROM fed_meetings WHERE {condition} ORDER BY {order}, id LIMIT 1"
        ))
        .bind(at)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(meeting)
        .transpose()
    }

    /// The meeting before this one (whose minutes came last), if any.
    pub async fn previous_meeting(&self, m: &Meeting) -> Result<Option<Meeting>> {
        self.meeting_where("starts_at < $1", "starts_at DESC", m.starts_at)
            .await
    }

    // ----- dues -----

    /// Sets the dues from a day on (a resolution's number in `set_by`).
    pub async fn set_dues_rate(
        &self,
        from: Date,
        amount: i64,
        currency: Currency,
        period: DuesPeriod,
        set_by: &str,
    ) -> Result<()> {
        if amount < 0 {
            return Err(invalid("dues: the amount cannot be negative"));
        }
        if let Some(c) = self.dues_rates().await?.first().map(|r| r.currency) {
            if c != currency {
                return Err(invalid(format!(
                    "dues are kept in {}; a rate in {} would make arrears meaningless",
                    c.code(),
                    currency.code()
                )));
            }
        }
        sqlx::query(
            "INSERT INTO fed_dues_rates (id, valid_from, amount, currency, period, set_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id())
        .bind(date_text(from))
        .bind(amount)
        .bind(currency.code())
        .bind(period_text(period))
        .bind(set_by.trim())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The dues rates, oldest first: those set, or the rules' own from the start.
    pub async fn dues_rates(&self) -> Result<Vec<Rate>> {
        let rows = sqlx::query(
            "SELECT valid_from, amount, currency, period, set_by FROM fed_dues_rates ORDER BY valid_from, created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let from: String = r.try_get("valid_from")?;
            let currency: String = r.try_get("currency")?;
            out.push(Rate {
                from: parse_date(&from).map_err(|e| invalid(e.to_string()))?,
                amount: r.try_get("amount")?,
                currency: currency
                    .parse()
                    .map_err(|e: cooper_ledger::LedgerError| invalid(e.to_string()))?,
                period: period_of(&r.try_get::<String, _>("period")?)?,
                by: r.try_get("set_by")?,
            });
        }
        if out.is_empty() {
            if let Some(d) = self.fed_rules().await?.0.dues {
                out.push(Rate {
                    from: Date::MIN,
                    amount: d.amount,
                    currency: d.currency,
                    period: d.period,
                    by: "the rules in force".into(),
                });
            }
        }
        Ok(out)
    }

    /// A solidarity waiver for a member, with its reason.
    pub async fn add_waiver(
        &self,
        member_id: &str,
        from: Date,
        to: Option<Date>,
        reason: &str,
        by: &str,
    ) -> Result<()> {
        if reason.trim().is_empty() {
            return Err(invalid(
                "reason: say why the dues are waived (the books are open)",
            ));
        }
        if to.is_some_and(|t| t < from) {
            return Err(invalid("the waiver ends before it starts"));
        }
        if self.fed_member(member_id).await?.is_none() {
            return Err(invalid("no such member organisation"));
        }
        sqlx::query(
            "INSERT INTO fed_waivers (id, member_id, from_day, to_day, reason, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id())
        .bind(member_id)
        .bind(date_text(from))
        .bind(to.map(date_text))
        .bind(reason.trim())
        .bind(by)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn waivers(&self, member_id: &str) -> Result<Vec<Waiver>> {
        let rows = sqlx::query("SELECT from_day, to_day, reason FROM fed_waivers WHERE member_id = $1 ORDER BY from_day")
            .bind(member_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let from: String = r.try_get("from_day")?;
                let to: Option<String> = r.try_get("to_day")?;
                Ok(Waiver {
                    from: parse_date(&from).map_err(|e| invalid(e.to_string()))?,
                    to: to
                        .map(|t| parse_date(&t).map_err(|e| invalid(e.to_string())))
                        .transpose()?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Records a payment of dues (in the dues' currency). `ledger_entry` names the ledger line
    /// it was matched from; a line is matched once.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_dues_payment(
        &self,
        member_id: &str,
        on: Date,
        amount: i64,
        currency: Currency,
        reference: &str,
        ledger_entry: Option<&str>,
        by: &str,
    ) -> Result<()> {
        if amount <= 0 {
            return Err(invalid("amount: a payment is more than zero"));
        }
        if let Some(c) = self.dues_rates().await?.first().map(|r| r.currency) {
            if c != currency {
                return Err(invalid(format!(
                    "this payment is in {}; dues are kept in {}: record what arrived in {}",
                    currency.code(),
                    c.code(),
                    c.code()
                )));
            }
        }
        if self.fed_member(member_id).await?.is_none() {
            return Err(invalid("no such member organisation"));
        }
        let r = sqlx::query(
            "INSERT INTO fed_dues_payments (id, member_id, paid_on, amount, currency, reference, ledger_entry, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_id())
        .bind(member_id)
        .bind(date_text(on))
        .bind(amount)
        .bind(currency.code())
        .bind(reference.trim())
        .bind(ledger_entry)
        .bind(by)
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique(&e) => Err(invalid(
                "that ledger line is already recorded as a dues payment",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Records as dues the payments to `federation` in the books of member co-ops (a payout
    /// whose party is `federation` in the ledger of the co-op a member is), each ledger line
    /// once. Returns how many were added and, for lines it could not take, why.
    pub async fn match_dues_from_ledger(&self, by: &str) -> Result<(usize, Vec<String>)> {
        let currency = self.dues_rates().await?.first().map(|r| r.currency);
        let mut added = 0;
        let mut skipped = Vec::new();
        for m in self.fed_members().await? {
            let Some(coop) = &m.coop_id else {
                continue;
            };
            for (id, e) in self.entries_of_party(coop, "federation").await? {
                if e.kind != cooper_ledger::Kind::Payout
                    || e.status != cooper_ledger::Status::Received
                {
                    continue;
                }
                if currency.is_some_and(|c| c != e.currency) {
                    skipped.push(format!(
                        "{} paid {} on {} in {}: dues are kept in {}; record it by hand in that currency",
                        m.name,
                        cooper_ledger::format_amount(e.amount, e.currency),
                        e.date,
                        e.currency,
                        currency.map(|c| c.to_string()).unwrap_or_default()
                    ));
                    continue;
                }
                added += sqlx::query(
                    "INSERT INTO fed_dues_payments (id, member_id, paid_on, amount, currency, reference, ledger_entry, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                )
                .bind(new_id())
                .bind(&m.id)
                .bind(date_text(e.date))
                .bind(e.amount)
                .bind(e.currency.code())
                .bind(format!("ledger: {}", e.note))
                .bind(&id)
                .bind(by)
                .bind(now_ms())
                .execute(&self.pool)
                .await?
                .rows_affected() as usize;
            }
        }
        Ok((added, skipped))
    }

    /// What was spent under a budget in a month: ledger lines of every co-op whose category
    /// or note names the decision (its number, "R003"): labour minutes and amounts paid out
    /// or spent, per currency, and how many lines.
    pub async fn budget_spending(
        &self,
        number: &str,
        period: cooper_ledger::Period,
    ) -> Result<(i64, Vec<(Currency, i64)>, usize)> {
        let rows = sqlx::query(
            "SELECT kind, amount, currency, minutes, category, note FROM ledger_entries WHERE period = $1",
        )
        .bind(period.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut minutes = 0;
        let mut money: Vec<(Currency, i64)> = Vec::new();
        let mut lines = 0;
        let named = |t: &str| {
            t.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| w.eq_ignore_ascii_case(number))
        };
        for r in &rows {
            let category: String = r.try_get("category")?;
            let note: String = r.try_get("note")?;
            if !(named(&category) || named(&note)) {
                continue;
            }
            lines += 1;
            let kind: String = r.try_get("kind")?;
            if kind == "labour" {
                minutes += r.try_get::<i64, _>("minutes")?;
            } else if kind == "payout" || kind == "cost" {
                let c: String = r.try_get("currency")?;
                let c: Currency = c
                    .parse()
                    .map_err(|e: cooper_ledger::LedgerError| invalid(e.to_string()))?;
                let a: i64 = r.try_get("amount")?;
                match money.iter_mut().find(|(x, _)| *x == c) {
                    Some((_, v)) => *v += a,
                    None => money.push((c, a)),
                }
            }
        }
        Ok((minutes, money, lines))
    }

    async fn dues_payments(&self, member_id: &str) -> Result<Vec<Payment>> {
        let rows = sqlx::query(
            "SELECT paid_on, amount FROM fed_dues_payments WHERE member_id = $1 ORDER BY paid_on",
        )
        .bind(member_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let on: String = r.try_get("paid_on")?;
                Ok(Payment {
                    on: parse_date(&on).map_err(|e| invalid(e.to_string()))?,
                    amount: r.try_get("amount")?,
                })
            })
            .collect()
    }

    /// Every member's dues account on `today`, with the waivers that apply.
    pub async fn dues_accounts(&self, today: Date) -> Result<Vec<(Member, Account, Vec<Waiver>)>> {
        let rates = self.dues_rates().await?;
        let mut out = Vec::new();
        for m in self.fed_members().await? {
            let waivers = self.waivers(&m.id).await?;
            let payments = self.dues_payments(&m.id).await?;
            let a = dues::account(m.joined_on, m.left_on, &rates, &waivers, &payments, today);
            out.push((m, a, waivers));
        }
        Ok(out)
    }

    // ----- meetings -----

    /// Adds a meeting rhythm; `rota` are person ids who take turns facilitating and taking
    /// notes.
    pub async fn add_meeting_series(
        &self,
        title: &str,
        rhythm: &Rhythm,
        rota: &[String],
    ) -> Result<String> {
        if title.trim().is_empty() {
            return Err(invalid("a meeting rhythm needs a title"));
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO fed_meeting_series (id, title, rule, first_local, tz, minutes, skipped, rota, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(title.trim())
        .bind(&rhythm.rule)
        .bind(rhythm.first.format("%Y-%m-%d %H:%M").to_string())
        .bind(rhythm.tz.name())
        .bind(i64::from(rhythm.minutes))
        .bind(rhythm.skipped.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))
        .bind(rota.join(","))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Skips one day of a rhythm (an exception); its meeting row, if made and empty, goes.
    pub async fn skip_meeting(&self, series_id: &str, day: NaiveDate) -> Result<()> {
        let s = self
            .meeting_series()
            .await?
            .into_iter()
            .find(|s| s.id == series_id)
            .ok_or_else(|| invalid("no such meeting rhythm"))?;
        let mut skipped = s.rhythm.skipped.clone();
        if !skipped.contains(&day) {
            skipped.push(day);
            skipped.sort();
        }
        sqlx::query("UPDATE fed_meeting_series SET skipped = $1 WHERE id = $2")
            .bind(
                skipped
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .bind(series_id)
            .execute(&self.pool)
            .await?;
        let at =
            meetings::instant(s.rhythm.tz, day.and_time(s.rhythm.first.time())).timestamp_millis();
        let empty = sqlx::query("SELECT id FROM fed_meetings WHERE series_id = $1 AND starts_at = $2 AND published_at IS NULL")
            .bind(series_id)
            .bind(at)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(r) = empty {
            let id: String = r.try_get("id")?;
            let items: i64 =
                sqlx::query("SELECT COUNT(*) AS n FROM fed_agenda_items WHERE meeting_id = $1")
                    .bind(&id)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("n")?;
            if items == 0 {
                sqlx::query("DELETE FROM fed_meetings WHERE id = $1")
                    .bind(&id)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// Every meeting rhythm.
    pub async fn meeting_series(&self) -> Result<Vec<Series>> {
        let rows = sqlx::query("SELECT id, title, rule, first_local, tz, minutes, skipped, rota FROM fed_meeting_series ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let first = meetings::wall_clock(&r.try_get::<String, _>("first_local")?)
                    .map_err(|e| invalid(e.to_string()))?;
                let tz = meetings::timezone(&r.try_get::<String, _>("tz")?)
                    .map_err(|e| invalid(e.to_string()))?;
                let skipped = list(&r.try_get::<String, _>("skipped")?)
                    .iter()
                    .filter_map(|d| d.parse::<NaiveDate>().ok())
                    .collect();
                let rhythm = Rhythm::new(
                    &r.try_get::<String, _>("rule")?,
                    first,
                    tz,
                    r.try_get::<i64, _>("minutes")? as u32,
                    skipped,
                )
                .map_err(|e| invalid(e.to_string()))?;
                Ok(Series {
                    id: r.try_get("id")?,
                    title: r.try_get("title")?,
                    rhythm,
                    rota: list(&r.try_get::<String, _>("rota")?),
                })
            })
            .collect()
    }

    /// Makes the rows of every rhythm's meetings that start by `until` (from `since`), each
    /// with its turn of the rota; made once (a second caller's insert is refused by the
    /// unique start). The scheduler calls this so that the next meeting always exists to put
    /// items on.
    pub async fn plan_meetings(&self, since: i64, until: i64) -> Result<usize> {
        let mut made = 0;
        for s in self.meeting_series().await? {
            let first = meetings::instant(s.rhythm.tz, s.rhythm.first);
            let all = s.rhythm.between(first, utc(until));
            for (k, at) in all.iter().enumerate() {
                let ms = at.timestamp_millis();
                if ms < since {
                    continue;
                }
                let (fac, notes) = if s.rota.is_empty() {
                    (String::new(), String::new())
                } else {
                    (
                        s.rota[k % s.rota.len()].clone(),
                        s.rota[(k + 1) % s.rota.len()].clone(),
                    )
                };
                made += sqlx::query(
                    "INSERT INTO fed_meetings (id, series_id, starts_at, minutes, title, facilitator, note_taker, notes, attendance, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, '', '', $8) ON CONFLICT DO NOTHING",
                )
                .bind(new_id())
                .bind(&s.id)
                .bind(ms)
                .bind(i64::from(s.rhythm.minutes))
                .bind(&s.title)
                .bind(fac)
                .bind(notes)
                .bind(now_ms())
                .execute(&self.pool)
                .await?
                .rows_affected() as usize;
            }
        }
        Ok(made)
    }

    /// Adds one meeting outside the rhythm (one a poll found a time for).
    pub async fn add_meeting(&self, title: &str, starts_at: i64, minutes: i64) -> Result<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO fed_meetings (id, series_id, starts_at, minutes, title, facilitator, note_taker, notes, attendance, created_at) \
             VALUES ($1, NULL, $2, $3, $4, '', '', '', '', $5)",
        )
        .bind(&id)
        .bind(starts_at)
        .bind(minutes)
        .bind(title.trim())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn meeting(&self, id: &str) -> Result<Option<Meeting>> {
        sqlx::query(&format!(
            "SELECT {MEETING_COLUMNS} FROM fed_meetings WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(meeting)
        .transpose()
    }

    /// Meetings starting in `[from, to)`, in order.
    pub async fn meetings(&self, from: i64, to: i64) -> Result<Vec<Meeting>> {
        sqlx::query(&format!(
            "SELECT {MEETING_COLUMNS} FROM fed_meetings WHERE starts_at >= $1 AND starts_at < $2 ORDER BY starts_at, id"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(meeting)
        .collect()
    }

    /// The first meeting that has not ended by `now` and has no minutes yet.
    pub async fn next_meeting(&self, now: i64) -> Result<Option<Meeting>> {
        self.meeting_where(
            "starts_at + minutes * 60000 > $1 AND published_at IS NULL",
            "starts_at",
            now,
        )
        .await
    }

    /// Puts an item on a meeting's agenda (before its minutes are written).
    pub async fn add_agenda_item(
        &self,
        meeting_id: &str,
        title: &str,
        details: &str,
        by: &str,
    ) -> Result<String> {
        let m = self
            .meeting(meeting_id)
            .await?
            .ok_or_else(|| invalid("no such meeting"))?;
        if m.published_at.is_some() {
            return Err(invalid(
                "this meeting's minutes are written; put the item on the next meeting",
            ));
        }
        if title.trim().is_empty() {
            return Err(invalid("an agenda item needs a title"));
        }
        self.insert_item(meeting_id, title, details, by, None).await
    }

    async fn insert_item(
        &self,
        meeting_id: &str,
        title: &str,
        details: &str,
        by: &str,
        carried_from: Option<&str>,
    ) -> Result<String> {
        let id = new_id();
        sqlx::query(&format!(
            "INSERT INTO fed_agenda_items ({ITEM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', '')"
        ))
        .bind(&id)
        .bind(meeting_id)
        .bind(title.trim())
        .bind(details.trim())
        .bind(by)
        .bind(now_ms())
        .bind(carried_from)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// A meeting's agenda items, in the order they were added.
    pub async fn agenda(&self, meeting_id: &str) -> Result<Vec<Item>> {
        sqlx::query(&format!(
            "SELECT {ITEM_COLUMNS} FROM fed_agenda_items WHERE meeting_id = $1 ORDER BY added_at, id"
        ))
        .bind(meeting_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(item)
        .collect()
    }

    /// The reviews a meeting must take: not held, and due or due soon by its day.
    pub async fn agenda_reviews(&self, m: &Meeting) -> Result<Vec<StoredReview>> {
        let day = day_of(m.starts_at);
        Ok(self
            .reviews()
            .await?
            .into_iter()
            .filter(|r| r.review.on_agenda(day))
            .collect())
    }

    /// Records a meeting's minutes and publishes them to members: items done (with their
    /// outcome) or carried to the next meeting, reviews held with their outcome. Refused if
    /// already published, if an agenda item is not accounted for, or if a review named is not
    /// on this meeting's agenda.
    pub async fn record_minutes(
        &self,
        meeting_id: &str,
        minutes: &Minutes,
        now: i64,
    ) -> Result<()> {
        let m = self
            .meeting(meeting_id)
            .await?
            .ok_or_else(|| invalid("no such meeting"))?;
        if m.published_at.is_some() {
            return Err(invalid("these minutes are already published"));
        }
        if minutes.notes.trim().is_empty() {
            return Err(invalid(
                "notes: write the minutes (check-in, items, check-out)",
            ));
        }
        let items = self.agenda(meeting_id).await?;
        for i in items.iter().filter(|i| i.state == "open") {
            if !minutes.items.iter().any(|(id, _)| id == &i.id) {
                return Err(invalid(format!(
                    "agenda item {:?}: say whether it was done (with its outcome) or carried to the next meeting",
                    i.title
                )));
            }
        }
        let due: Vec<String> = self
            .agenda_reviews(&m)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        for (id, outcome) in &minutes.reviews {
            if !due.contains(id) {
                return Err(invalid("a review held must be on this meeting's agenda"));
            }
            if outcome.trim().is_empty() {
                return Err(invalid(
                    "outcome: say what the meeting decided about the review",
                ));
            }
        }
        let next = self.next_meeting_after(&m).await?;
        for (id, result) in &minutes.items {
            let Some(i) = items.iter().find(|i| &i.id == id) else {
                return Err(invalid(
                    "an item named in the minutes is not on this agenda",
                ));
            };
            match result {
                ItemResult::Done(outcome) => {
                    sqlx::query(
                        "UPDATE fed_agenda_items SET state = 'done', outcome = $1 WHERE id = $2",
                    )
                    .bind(outcome.trim())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                }
                ItemResult::Carried => {
                    let Some(n) = &next else {
                        return Err(invalid(format!(
                            "{:?} is carried over, but there is no next meeting yet: add one (or a rhythm) first",
                            i.title
                        )));
                    };
                    sqlx::query("UPDATE fed_agenda_items SET state = 'carried' WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    self.insert_item(&n.id, &i.title, &i.details, &i.added_by, Some(meeting_id))
                        .await?;
                }
            }
        }
        for (id, outcome) in &minutes.reviews {
            self.hold_review(id, day_of(m.starts_at), outcome).await?;
        }
        sqlx::query("UPDATE fed_meetings SET notes = $1, attendance = $2, published_at = $3 WHERE id = $4 AND published_at IS NULL")
            .bind(minutes.notes.trim())
            .bind(minutes.attendance.join(","))
            .bind(now)
            .bind(meeting_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn next_meeting_after(&self, m: &Meeting) -> Result<Option<Meeting>> {
        self.meeting_where(
            "starts_at > $1 AND published_at IS NULL",
            "starts_at",
            m.starts_at,
        )
        .await
    }

    // ----- calendar links -----

    /// A new private calendar link for a person (the old one stops working). The token is
    /// shown once; only its hash is kept.
    pub async fn new_calendar_link(&self, person_id: &str) -> Result<String> {
        let (token, hash) = crate::new_secret();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM fed_calendar_links WHERE person_id = $1")
            .bind(person_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO fed_calendar_links (token_hash, person_id, created_at) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(person_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The person a calendar link is for.
    pub async fn calendar_person(&self, token: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query("SELECT person_id FROM fed_calendar_links WHERE token_hash = $1")
                .bind(crate::hash_secret(token))
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("person_id"))
                .transpose()?,
        )
    }

    /// Whether a person has a calendar link.
    pub async fn has_calendar_link(&self, person_id: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 AS one FROM fed_calendar_links WHERE person_id = $1")
                .bind(person_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    // ----- polls -----

    /// Makes a poll.
    pub async fn create_poll(
        &self,
        title: &str,
        shape: &Shape,
        meeting_minutes: i64,
        by: &str,
    ) -> Result<String> {
        if title.trim().is_empty() {
            return Err(invalid("a poll needs a title"));
        }
        if meeting_minutes < i64::from(shape.slot_minutes) {
            return Err(invalid("the meeting is shorter than one slot"));
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO fed_polls (id, title, tz, days, weekly, from_time, to_time, slot_minutes, meeting_minutes, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&id)
        .bind(title.trim())
        .bind(shape.tz.name())
        .bind(shape.days.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))
        .bind(i64::from(shape.weekly))
        .bind(shape.from.format("%H:%M").to_string())
        .bind(shape.to.format("%H:%M").to_string())
        .bind(i64::from(shape.slot_minutes))
        .bind(meeting_minutes)
        .bind(by)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn poll(&self, id: &str) -> Result<Option<Poll>> {
        let Some(r) = sqlx::query(
            "SELECT id, title, tz, days, weekly, from_time, to_time, slot_minutes, meeting_minutes, created_by, chosen_slot, meeting_id \
             FROM fed_polls WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let time = |col: &str| -> Result<NaiveTime> {
            let t: String = r.try_get(col)?;
            NaiveTime::parse_from_str(&t, "%H:%M").map_err(|e| invalid(format!("{col}: {e}")))
        };
        let shape = Shape::new(
            meetings::timezone(&r.try_get::<String, _>("tz")?)
                .map_err(|e| invalid(e.to_string()))?,
            list(&r.try_get::<String, _>("days")?)
                .iter()
                .filter_map(|d| d.parse().ok())
                .collect(),
            r.try_get::<i64, _>("weekly")? != 0,
            time("from_time")?,
            time("to_time")?,
            r.try_get::<i64, _>("slot_minutes")? as u32,
        )
        .map_err(|e| invalid(e.to_string()))?;
        Ok(Some(Poll {
            id: r.try_get("id")?,
            title: r.try_get("title")?,
            shape,
            meeting_minutes: r.try_get("meeting_minutes")?,
            created_by: r.try_get("created_by")?,
            chosen_slot: r
                .try_get::<Option<i64>, _>("chosen_slot")?
                .map(|s| s as usize),
            meeting_id: r.try_get("meeting_id")?,
        }))
    }

    /// Someone joins a poll under a name (taken names are refused: the person signs in
    /// under it instead).
    pub async fn join_poll(
        &self,
        poll_id: &str,
        name: &str,
        password_hash: Option<&str>,
        tz: &str,
    ) -> Result<PollPerson> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 60 {
            return Err(invalid("name: give a name of 1 to 60 characters"));
        }
        let id = new_id();
        let r = sqlx::query("INSERT INTO fed_poll_people (id, poll_id, name, password_hash, tz, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&id)
            .bind(poll_id)
            .bind(name)
            .bind(password_hash)
            .bind(tz)
            .bind(now_ms())
            .execute(&self.pool)
            .await;
        match r {
            Ok(_) => Ok(PollPerson {
                id,
                name: name.into(),
                password_hash: password_hash.map(String::from),
                tz: tz.into(),
            }),
            Err(e) if is_unique(&e) => Err(invalid(format!("{name:?} is already on this poll"))),
            Err(e) => Err(e.into()),
        }
    }

    /// A poll's person by name.
    pub async fn poll_person(&self, poll_id: &str, name: &str) -> Result<Option<PollPerson>> {
        sqlx::query(
            "SELECT id, name, password_hash, tz FROM fed_poll_people WHERE poll_id = $1 AND name = $2",
        )
            .bind(poll_id)
            .bind(name.trim())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| -> Result<PollPerson> {
                Ok(PollPerson {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    password_hash: r.try_get("password_hash")?,
                    tz: r.try_get("tz")?,
                })
            })
            .transpose()
    }

    /// Paints a person's slots: `free` marked, `busy` cleared. Each slot is its own row, so
    /// people painting at once never lose each other's marks.
    pub async fn paint(
        &self,
        poll: &Poll,
        person_id: &str,
        free: &[usize],
        busy: &[usize],
    ) -> Result<()> {
        let count = poll.shape.slots().len();
        if free.iter().chain(busy).any(|s| *s >= count) {
            return Err(invalid(format!("a slot outside the poll (it has {count})")));
        }
        let mut tx = self.pool.begin().await?;
        for s in busy {
            sqlx::query("DELETE FROM fed_poll_marks WHERE person_id = $1 AND slot = $2")
                .bind(person_id)
                .bind(*s as i64)
                .execute(&mut *tx)
                .await?;
        }
        for s in free {
            sqlx::query(
                "INSERT INTO fed_poll_marks (poll_id, person_id, slot) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(&poll.id)
            .bind(person_id)
            .bind(*s as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Everyone on a poll with the slots they are free in, by when they joined.
    pub async fn poll_marks(&self, poll_id: &str) -> Result<Vec<(PollPerson, Vec<usize>)>> {
        let people = sqlx::query(
            "SELECT id, name, tz FROM fed_poll_people WHERE poll_id = $1 ORDER BY created_at, id",
        )
        .bind(poll_id)
        .fetch_all(&self.pool)
        .await?;
        let marks = sqlx::query(
            "SELECT person_id, slot FROM fed_poll_marks WHERE poll_id = $1 ORDER BY slot",
        )
        .bind(poll_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<(PollPerson, Vec<usize>)> = people
            .iter()
            .map(|r| -> Result<(PollPerson, Vec<usize>)> {
                Ok((
                    PollPerson {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        password_hash: None,
                        tz: r.try_get("tz")?,
                    },
                    Vec::new(),
                ))
            })
            .collect::<Result<_>>()?;
        let index: std::collections::HashMap<String, usize> = out
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (p.id.clone(), i))
            .collect();
        for m in &marks {
            let pid: String = m.try_get("person_id")?;
            let slot: i64 = m.try_get("slot")?;
            if let Some(i) = index.get(&pid) {
                out[*i].1.push(slot as usize);
            }
        }
        Ok(out)
    }

    /// Chooses a slot: it becomes a meeting in the calendar (once).
    pub async fn choose_poll_slot(&self, poll: &Poll, slot: usize) -> Result<String> {
        if let Some(m) = &poll.meeting_id {
            return Ok(m.clone());
        }
        let slots = poll.shape.slots();
        let at = slots
            .get(slot)
            .ok_or_else(|| invalid("no such slot on this poll"))?;
        let meeting = self
            .add_meeting(&poll.title, at.timestamp_millis(), poll.meeting_minutes)
            .await?;
        let done = sqlx::query("UPDATE fed_polls SET chosen_slot = $1, meeting_id = $2 WHERE id = $3 AND meeting_id IS NULL")
            .bind(slot as i64)
            .bind(&meeting)
            .bind(&poll.id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if done == 0 {
            sqlx::query("DELETE FROM fed_meetings WHERE id = $1")
                .bind(&meeting)
                .execute(&self.pool)
                .await?;
            return Err(invalid("a time was chosen for this poll meanwhile"));
        }
        Ok(meeting)
    }
}
