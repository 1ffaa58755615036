//! The federation's rows: its rules (versioned), member organisations, proposals with every
//! change kept, votes (one per member organisation, changeable until the deadline), the
//! closing of decisions at their deadline (numbered R001, R002, … when passed), and reviews.
//! What a decision's outcome is and when a review is due are `cooper-federation`'s; this module
//! keeps the inputs and results. Time is a parameter (`now`, `today`), as the scheduler gives
//! it.

use cooper_federation::decision::{self, Ballot, Outcome, Vote};
use cooper_federation::{Review, Rules};
use cooper_ledger::entry::{date_text, parse_date};
use sqlx::Row;
use time::Date;

use crate::{new_id, now_ms, Result, Store, StoreError};

fn invalid(m: impl Into<String>) -> StoreError {
    StoreError::Invalid(m.into())
}

/// A member organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub name: String,
    /// `founding`, `member`, `solidarity` or `left`.
    pub status: String,
    pub joined_on: Date,
    pub left_on: Option<Date>,
    pub contact: String,
    /// The co-op in this store it is, when it hosts with cooper here.
    pub coop_id: Option<String>,
}

impl Member {
    /// Members who have not left vote.
    pub fn votes(&self) -> bool {
        self.status != "left"
    }
}

/// A proposal and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub id: String,
    pub number: Option<String>,
    pub title: String,
    pub summary: String,
    pub details: String,
    pub size: String,
    pub budget: String,
    pub proposed_by: String,
    pub proposed_at: i64,
    pub deadline: i64,
    /// `open`, `passed`, `failed`, `blocked` or `withdrawn`.
    pub state: String,
    pub reason: String,
    pub decided_at: Option<i64>,
}

/// What a proposal asks for, as its template has it.
#[derive(Debug, Clone, Default)]
pub struct NewProposal {
    pub title: String,
    pub summary: String,
    pub details: String,
    pub size: String,
    /// The budget asked for, in words ("10 hours a month", "300 EUR"), or empty.
    pub budget: String,
    pub deadline: i64,
}

/// A stored review with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReview {
    pub id: String,
    pub review: Review,
    pub last_reminded: Option<Date>,
}

const MEMBER_COLUMNS: &str = "id, name, status, joined_on, left_on, contact, coop_id";
const PROPOSAL_COLUMNS: &str = "id, number, title, summary, details, size, budget, proposed_by, \
     proposed_at, deadline, state, reason, decided_at";
const STATUSES: [&str; 4] = ["founding", "member", "solidarity", "left"];

fn day(r: &sqlx::any::AnyRow, col: &str) -> Result<Date> {
    let t: String = r.try_get(col)?;
    parse_date(&t).map_err(|e| invalid(format!("{col}: {e}")))
}

fn maybe_day(r: &sqlx::any::AnyRow, col: &str) -> Result<Option<Date>> {
    let t: Option<String> = r.try_get(col)?;
    t.map(|t| parse_date(&t).map_err(|e| invalid(format!("{col}: {e}"))))
        .transpose()
}

fn member(r: &sqlx::any::AnyRow) -> Result<Member> {
    Ok(Member {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        status: r.try_get("status")?,
        joined_on: day(r, "joined_on")?,
        left_on: maybe_day(r, "left_on")?,
        contact: r.try_get("contact")?,
        coop_id: r.try_get("coop_id")?,
    })
}

fn proposal(r: &sqlx::any::AnyRow) -> Result<Proposal> {
    Ok(Proposal {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        title: r.try_get("title")?,
        summary: r.try_get("summary")?,
        details: r.try_get("details")?,
        size: r.try_get("size")?,
        budget: r.try_get("budget")?,
        proposed_by: r.try_get("proposed_by")?,
        proposed_at: r.try_get("proposed_at")?,
        deadline: r.try_get("deadline")?,
        state: r.try_get("state")?,
        reason: r.try_get("reason")?,
        decided_at: r.try_get("decided_at")?,
    })
}

fn vote_text(v: Vote) -> &'static str {
    match v {
        Vote::For => "for",
        Vote::StandAside => "stand-aside",
        Vote::Block => "block",
    }
}

fn vote_of(t: &str) -> Result<Vote> {
    match t {
        "for" => Ok(Vote::For),
        "stand-aside" => Ok(Vote::StandAside),
        "block" => Ok(Vote::Block),
        other => Err(invalid(format!("a stored vote {other:?}"))),
    }
}

impl Store {
    /// The federation's rules in force: the newest version, or Co-op Cloud's until it sets
    /// its own (`true` when defaulted).
    pub async fn fed_rules(&self) -> Result<(Rules, bool)> {
        let row = sqlx::query("SELECT body FROM fed_rules ORDER BY version DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => {
                let body: String = r.try_get("body")?;
                Ok((
                    Rules::parse(&body, "the stored rules").map_err(|e| invalid(e.to_string()))?,
                    false,
                ))
            }
            None => Ok((Rules::coop_cloud(), true)),
        }
    }

    /// Sets new rules (checked first; a bad text changes nothing); their version.
    pub async fn set_fed_rules(&self, text: &str, origin: &str, by: &str) -> Result<i64> {
        Rules::parse(text, origin).map_err(|e| invalid(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 AS v FROM fed_rules")
            .fetch_one(&mut *tx)
            .await?
            .try_get("v")?;
        sqlx::query(
            "INSERT INTO fed_rules (version, body, created_by, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(version)
        .bind(text)
        .bind(by)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Adds a member organisation (`founding`, `member` or `solidarity`).
    pub async fn add_fed_member(
        &self,
        name: &str,
        status: &str,
        joined_on: Date,
        contact: &str,
        coop_id: Option<&str>,
    ) -> Result<Member> {
        let name = name.trim();
        if name.is_empty() {
            return Err(invalid("a member organisation needs a name"));
        }
        if !STATUSES[..3].contains(&status) {
            return Err(invalid(format!(
                "status {status:?}: a member joins as founding, member or solidarity"
            )));
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO fed_members (id, name, status, joined_on, contact, coop_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(name)
        .bind(status)
        .bind(date_text(joined_on))
        .bind(contact.trim())
        .bind(coop_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if crate::is_unique(&e) {
                invalid(format!("{name} is already a member organisation"))
            } else {
                e.into()
            }
        })?;
        Ok(self.fed_member(&id).await?.expect("just added"))
    }

    pub async fn fed_member(&self, id: &str) -> Result<Option<Member>> {
        sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM fed_members WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(member)
        .transpose()
    }

    /// Every member organisation, by name (those who left too).
    pub async fn fed_members(&self) -> Result<Vec<Member>> {
        sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM fed_members ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(member)
        .collect()
    }

    /// Changes a member's status; leaving records the day.
    pub async fn set_fed_member_status(&self, id: &str, status: &str, on: Date) -> Result<()> {
        if !STATUSES.contains(&status) {
            return Err(invalid(format!(
                "status {status:?}: use founding, member, solidarity or left"
            )));
        }
        let left = (status == "left").then(|| date_text(on));
        let done = sqlx::query("UPDATE fed_members SET status = $1, left_on = $2 WHERE id = $3")
            .bind(status)
            .bind(left)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if done == 0 {
            return Err(invalid("no such member organisation"));
        }
        Ok(())
    }

    async fn history(&self, proposal: &str, by: &str, at: i64, change: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO fed_proposal_history (proposal_id, at, by_whom, change) VALUES ($1, $2, $3, $4)",
        )
        .bind(proposal)
        .bind(at)
        .bind(by)
        .bind(change)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes a proposal, checked against the rules in force (its size exists; its deadline is
    /// far enough). A Small decision is passed as it is recorded.
    pub async fn propose(&self, p: &NewProposal, by: &str, now: i64) -> Result<Proposal> {
        let (rules, _) = self.fed_rules().await?;
        let size = rules.size(&p.size).ok_or_else(|| {
            invalid(format!(
                "size {:?}: the rules have {}",
                p.size,
                rules
                    .sizes
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if p.title.trim().is_empty() || p.summary.trim().is_empty() {
            return Err(invalid("a proposal needs a title and a summary"));
        }
        decision::check_deadline(size, now, p.deadline).map_err(|e| invalid(e.to_string()))?;
        let id = new_id();
        sqlx::query(&format!(
            "INSERT INTO fed_proposals ({PROPOSAL_COLUMNS}) VALUES \
             ($1, NULL, $2, $3, $4, $5, $6, $7, $8, $9, 'open', '', NULL)"
        ))
        .bind(&id)
        .bind(p.title.trim())
        .bind(p.summary.trim())
        .bind(p.details.trim())
        .bind(&size.name)
        .bind(p.budget.trim())
        .bind(by)
        .bind(now)
        .bind(p.deadline)
        .execute(&self.pool)
        .await?;
        self.history(
            &id,
            by,
            now,
            &format!("proposed as a {} decision", size.name),
        )
        .await?;
        if size.kind == cooper_federation::SizeKind::Record {
            self.decide(&id, now).await?;
        }
        Ok(self.proposal(&id).await?.expect("just proposed"))
    }

    pub async fn proposal(&self, id: &str) -> Result<Option<Proposal>> {
        sqlx::query(&format!(
            "SELECT {PROPOSAL_COLUMNS} FROM fed_proposals WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(proposal)
        .transpose()
    }

    /// Every proposal, newest first (the register is public).
    pub async fn proposals(&self) -> Result<Vec<Proposal>> {
        sqlx::query(&format!(
            "SELECT {PROPOSAL_COLUMNS} FROM fed_proposals ORDER BY proposed_at DESC, id DESC"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(proposal)
        .collect()
    }

    /// A proposal's history, oldest first: (when, who, what changed).
    pub async fn proposal_history(&self, id: &str) -> Result<Vec<(i64, String, String)>> {
        let rows = sqlx::query(
            "SELECT at, by_whom, change FROM fed_proposal_history WHERE proposal_id = $1 ORDER BY at, change",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("at")?,
                    r.try_get("by_whom")?,
                    r.try_get("change")?,
                ))
            })
            .collect()
    }

    /// A member organisation's vote (replacing its earlier one); refused once the deadline
    /// has passed, for a decided proposal, or for an organisation that does not vote.
    pub async fn fed_vote(
        &self,
        proposal_id: &str,
        member_id: &str,
        vote: Vote,
        comment: &str,
        by: &str,
        now: i64,
    ) -> Result<()> {
        let p = self
            .proposal(proposal_id)
            .await?
            .ok_or_else(|| invalid("no such proposal"))?;
        if p.state != "open" {
            return Err(invalid(format!(
                "this proposal is {}: votes are closed",
                p.state
            )));
        }
        let voters: Vec<String> = self
            .fed_members()
            .await?
            .into_iter()
            .filter(Member::votes)
            .map(|m| m.id)
            .collect();
        let mut ballots = Vec::new();
        decision::cast(
            &mut ballots,
            Ballot {
                member: member_id.into(),
                vote,
                at: now,
                comment: comment.into(),
            },
            p.deadline,
            &voters,
        )
        .map_err(|e| invalid(e.to_string()))?;
        let earlier =
            sqlx::query("SELECT vote FROM fed_votes WHERE proposal_id = $1 AND member_id = $2")
                .bind(proposal_id)
                .bind(member_id)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<String, _>("vote"))
                .transpose()?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM fed_votes WHERE proposal_id = $1 AND member_id = $2")
            .bind(proposal_id)
            .bind(member_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO fed_votes (proposal_id, member_id, vote, comment, at, by_whom) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(proposal_id)
        .bind(member_id)
        .bind(vote_text(vote))
        .bind(comment.trim())
        .bind(now)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // Every change to a proposal is kept, votes and changed votes too.
        let name = self
            .fed_member(member_id)
            .await?
            .map(|m| m.name)
            .unwrap_or_else(|| member_id.to_string());
        let change = match earlier {
            Some(e) if e != vote_text(vote) => {
                format!("{name} changes its vote from {e} to {}", vote_text(vote))
            }
            Some(_) => format!("{name} votes {} again", vote_text(vote)),
            None => format!("{name} votes {}", vote_text(vote)),
        };
        self.history(proposal_id, by, now, &change).await?;
        Ok(())
    }

    /// The votes on a proposal.
    pub async fn fed_votes(&self, proposal_id: &str) -> Result<Vec<Ballot>> {
        let rows = sqlx::query(
            "SELECT member_id, vote, comment, at FROM fed_votes WHERE proposal_id = $1 ORDER BY at",
        )
        .bind(proposal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Ballot {
                    member: r.try_get("member_id")?,
                    vote: vote_of(&r.try_get::<String, _>("vote")?)?,
                    at: r.try_get("at")?,
                    comment: r.try_get("comment")?,
                })
            })
            .collect()
    }

    /// Where a proposal stands at `now` (open ones with the tally so far).
    pub async fn proposal_outcome(&self, p: &Proposal, now: i64) -> Result<Outcome> {
        let (rules, _) = self.fed_rules().await?;
        let size = rules
            .size(&p.size)
            .ok_or_else(|| invalid(format!("the rules in force have no size {:?}", p.size)))?;
        let voters: Vec<String> = self
            .fed_members()
            .await?
            .into_iter()
            .filter(Member::votes)
            .map(|m| m.id)
            .collect();
        let ballots = self.fed_votes(&p.id).await?;
        Ok(decision::outcome(size, &voters, &ballots, p.deadline, now))
    }

    /// Decides one proposal if its time has come: the outcome recorded once (a conditional
    /// update on `open`), a passed one numbered. `None` while it is still open.
    async fn decide(&self, id: &str, now: i64) -> Result<Option<Proposal>> {
        let Some(p) = self.proposal(id).await? else {
            return Ok(None);
        };
        let o = self.proposal_outcome(&p, now).await?;
        let (state, reason) = match &o {
            Outcome::Open { .. } => return Ok(None),
            Outcome::Passed { reason, .. } => ("passed", reason.clone()),
            Outcome::Failed { reason, .. } => ("failed", reason.clone()),
            Outcome::Blocked { reason, .. } => ("blocked", reason.clone()),
        };
        // A passed decision takes the next number; a second process deciding at the same time
        // loses the conditional update and changes nothing, or — deciding another proposal —
        // takes the same number first, and then this one takes the one after.
        let mut attempts = 0;
        let (done, number) = loop {
            attempts += 1;
            let number = if state == "passed" {
                let taken: Vec<String> =
                    sqlx::query("SELECT number FROM fed_proposals WHERE number IS NOT NULL")
                        .fetch_all(&self.pool)
                        .await?
                        .iter()
                        .map(|r| r.try_get("number"))
                        .collect::<std::result::Result<_, _>>()?;
                Some(decision::next_number(&taken))
            } else {
                None
            };
            let r = sqlx::query(
                "UPDATE fed_proposals SET state = $1, reason = $2, number = $3, decided_at = $4 \
                 WHERE id = $5 AND state = 'open'",
            )
            .bind(state)
            .bind(&reason)
            .bind(&number)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await;
            match r {
                Ok(r) => break (r.rows_affected(), number),
                Err(e) if attempts < 5 && crate::is_unique(&e) => {}
                Err(e) => return Err(e.into()),
            }
        };
        if done == 0 {
            return Ok(None);
        }
        self.history(
            id,
            "the scheduler",
            now,
            &format!(
                "{state}{}: {reason}",
                number.map(|n| format!(" as {n}")).unwrap_or_default()
            ),
        )
        .await?;
        self.proposal(id).await
    }

    /// Decides every open proposal whose deadline has come (the scheduler's tick); the ones
    /// decided now, to announce.
    pub async fn decide_due_proposals(&self, now: i64) -> Result<Vec<Proposal>> {
        let ids: Vec<String> =
            sqlx::query("SELECT id FROM fed_proposals WHERE state = 'open' AND deadline <= $1 ORDER BY deadline, id")
                .bind(now)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<std::result::Result<_, _>>()?;
        let mut decided = Vec::new();
        for id in ids {
            if let Some(p) = self.decide(&id, now).await? {
                decided.push(p);
            }
        }
        Ok(decided)
    }

    /// Adds a review (from a resolution that asks for one).
    pub async fn add_review(&self, r: &Review) -> Result<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO fed_reviews (id, title, source, due, notice_days, remind_every_days, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(&r.title)
        .bind(&r.source)
        .bind(date_text(r.due))
        .bind(i64::from(r.notice_days))
        .bind(i64::from(r.remind_every_days))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Every review, by due date.
    pub async fn reviews(&self) -> Result<Vec<StoredReview>> {
        let rows = sqlx::query(
            "SELECT id, title, source, due, notice_days, remind_every_days, held_on, outcome, last_reminded \
             FROM fed_reviews ORDER BY due, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let held = match (
                    maybe_day(r, "held_on")?,
                    r.try_get::<Option<String>, _>("outcome")?,
                ) {
                    (Some(d), o) => Some((d, o.unwrap_or_default())),
                    _ => None,
                };
                Ok(StoredReview {
                    id: r.try_get("id")?,
                    review: Review {
                        title: r.try_get("title")?,
                        source: r.try_get("source")?,
                        due: day(r, "due")?,
                        notice_days: r.try_get::<i64, _>("notice_days")? as u32,
                        remind_every_days: r.try_get::<i64, _>("remind_every_days")? as u32,
                        held,
                    },
                    last_reminded: maybe_day(r, "last_reminded")?,
                })
            })
            .collect()
    }

    /// Records a review held at a meeting on `day`, with its outcome (from the minutes). An
    /// outcome is required: "held" alone would let a review be cleared without saying what
    /// was decided.
    pub async fn hold_review(&self, id: &str, day: Date, outcome: &str) -> Result<()> {
        if outcome.trim().is_empty() {
            return Err(invalid(
                "outcome: say what the meeting decided about this review",
            ));
        }
        let done = sqlx::query(
            "UPDATE fed_reviews SET held_on = $1, outcome = $2 WHERE id = $3 AND held_on IS NULL",
        )
        .bind(date_text(day))
        .bind(outcome.trim())
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(invalid("no such review, or it was already held"));
        }
        Ok(())
    }

    /// The reviews whose reminder is due `today`, each marked reminded (claimed by a
    /// conditional update, so two processes do not both send it).
    pub async fn claim_review_reminders(&self, today: Date) -> Result<Vec<StoredReview>> {
        let mut out = Vec::new();
        for r in self.reviews().await? {
            if !r.review.reminder_due(today, r.last_reminded) {
                continue;
            }
            let claimed = sqlx::query(
                "UPDATE fed_reviews SET last_reminded = $1 WHERE id = $2 \
                 AND (last_reminded IS NULL OR last_reminded = $3)",
            )
            .bind(date_text(today))
            .bind(&r.id)
            .bind(r.last_reminded.map(date_text).unwrap_or_default())
            .execute(&self.pool)
            .await?
            .rows_affected();
            if claimed == 1 {
                out.push(r);
            }
        }
        Ok(out)
    }
}
