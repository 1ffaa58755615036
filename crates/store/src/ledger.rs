//! The ledger's rows: entries (immutable once their month is closed), the versions of each
//! co-op's rule, settlements proposed by one person and closed by a second in the other role,
//! and whether a co-op's summary is public. The arithmetic is `cooper-ledger`'s; this module
//! keeps its inputs and results and enforces what may change when.

use std::collections::{HashMap, HashSet};

use cooper_ledger::entry::{date_text, parse_date};
use cooper_ledger::import::Imported;
use cooper_ledger::{Entry, Period, Rule, Settlement};
use sqlx::Row;

use crate::{new_id, now_ms, Result, Store, StoreError};

/// The two roles that close a month together.
pub const CLOSING_ROLES: [&str; 2] = ["treasurer", "operator"];

/// A settlement's row.
#[derive(Debug, Clone)]
pub struct SettlementRow {
    pub period: Period,
    /// `proposed` (waiting for a second person) or `closed`.
    pub state: String,
    pub rule_version: i64,
    pub digest: String,
    pub settlement: Settlement,
    pub proposed_by: String,
    pub proposed_as: String,
    pub proposed_at: i64,
    pub closed_by: Option<String>,
    pub closed_as: Option<String>,
    pub closed_at: Option<i64>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ImportOutcome {
    pub added: usize,
    /// Lines whose key was already in the ledger (a file imported again).
    pub already: usize,
}

/// What a confirmation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closing {
    /// Waiting for the second person (the proposal is recorded).
    Proposed,
    Closed,
}

const ENTRY_COLUMNS: &str =
    "id, source_key, kind, day, amount, currency, party, target, category, \
                             status, recurs, until_day, minutes, note, corrects";

fn invalid(m: String) -> StoreError {
    StoreError::Invalid(m)
}

fn entry_row(r: &sqlx::any::AnyRow) -> Result<(String, Entry)> {
    let parse = |what: &str, e: cooper_ledger::LedgerError| {
        invalid(format!("ledger row has a bad {what}: {e}"))
    };
    let day: String = r.try_get("day")?;
    let until: Option<String> = r.try_get("until_day")?;
    Ok((
        r.try_get("source_key")?,
        Entry {
            id: r.try_get("id")?,
            kind: r
                .try_get::<String, _>("kind")?
                .parse()
                .map_err(|e| parse("kind", e))?,
            date: parse_date(&day).map_err(|e| parse("day", e))?,
            amount: r.try_get("amount")?,
            currency: r
                .try_get::<String, _>("currency")?
                .parse()
                .map_err(|e| parse("currency", e))?,
            party: r
                .try_get::<String, _>("party")?
                .parse()
                .map_err(|e| parse("party", e))?,
            target: r
                .try_get::<String, _>("target")?
                .parse()
                .map_err(|e| parse("target", e))?,
            category: r.try_get("category")?,
            status: match r.try_get::<String, _>("status")?.as_str() {
                "pledged" => cooper_ledger::Status::Pledged,
                _ => cooper_ledger::Status::Received,
            },
            recurs: r
                .try_get::<String, _>("recurs")?
                .parse()
                .map_err(|e| parse("recurs", e))?,
            until: until
                .map(|u| parse_date(&u))
                .transpose()
                .map_err(|e| parse("until", e))?,
            minutes: r.try_get("minutes")?,
            note: r.try_get("note")?,
            corrects: r.try_get("corrects")?,
        },
    ))
}

fn settlement_row(r: &sqlx::any::AnyRow) -> Result<SettlementRow> {
    let body: String = r.try_get("body")?;
    let period: String = r.try_get("period")?;
    Ok(SettlementRow {
        period: period
            .parse()
            .map_err(|e| invalid(format!("settlement row: {e}")))?,
        state: r.try_get("state")?,
        rule_version: r.try_get("rule_version")?,
        digest: r.try_get("digest")?,
        settlement: serde_json::from_str(&body).map_err(|e| {
            invalid(format!(
                "settlement {period}: its record does not read: {e}"
            ))
        })?,
        proposed_by: r.try_get("proposed_by")?,
        proposed_as: r.try_get("proposed_as")?,
        proposed_at: r.try_get("proposed_at")?,
        closed_by: r.try_get("closed_by")?,
        closed_as: r.try_get("closed_as")?,
        closed_at: r.try_get("closed_at")?,
    })
}

/// Rows per INSERT (19 parameters each stays far below SQLite's and Postgres's limits).
const CHUNK: usize = 400;

impl Store {
    /// The co-op with this name (or id).
    pub async fn coop_named(&self, name: &str) -> Result<crate::Coop> {
        let coops = self.coops().await?;
        coops
            .iter()
            .find(|c| c.name == name || c.id == name)
            .cloned()
            .ok_or_else(|| {
                invalid(format!(
                    "no co-op named {name:?}; the store has: {}",
                    if coops.is_empty() {
                        "none yet (add one on the dashboard's People page)".to_string()
                    } else {
                        coops
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ))
            })
    }

    /// The last closed month of a co-op: it and every month before it are closed (a month
    /// without entries needs no settlement of its own, and its carry passes through).
    pub async fn closed_through(&self, coop: &str) -> Result<Option<Period>> {
        let row = sqlx::query(
            "SELECT MAX(period) AS p FROM ledger_settlements WHERE coop_id = $1 AND state = 'closed'",
        )
        .bind(coop)
        .fetch_one(&self.pool)
        .await?;
        row.try_get::<Option<String>, _>("p")?
            .map(|p| {
                p.parse()
                    .map_err(|e: cooper_ledger::LedgerError| invalid(e.to_string()))
            })
            .transpose()
    }

    fn closed_refusal(period: Period, what: &str) -> StoreError {
        invalid(format!(
            "{what} is dated in {period}, which is closed: its books do not change. Add a \
             correction dated in an open month instead (an entry of the difference, with \
             corrects = the id of the entry it corrects)"
        ))
    }

    /// Adds one entry (a form, `cooper ledger add`). Returns its id.
    pub async fn add_entry(&self, coop: &str, entry: &Entry, by: &str) -> Result<String> {
        entry.validate().map_err(|e| invalid(e.to_string()))?;
        let period = Period::of(entry.date);
        if self
            .closed_through(coop)
            .await?
            .is_some_and(|c| period <= c)
        {
            return Err(Self::closed_refusal(period, "this entry"));
        }
        let mut e = entry.clone();
        if let Some(c) = &e.corrects {
            e.corrects = Some(self.resolve_reference(coop, c).await?.ok_or_else(|| {
                invalid(format!(
                    "corrects {c:?}: no entry of this co-op has that id or key (see `cooper ledger report --entries`)"
                ))
            })?);
        }
        e.id = new_id();
        let key = format!("manual:{}", e.id);
        let mut tx = self.pool.begin().await?;
        insert_entries(&mut tx, self.backend, coop, &[(key, e.clone())], by).await?;
        tx.commit().await?;
        Ok(e.id)
    }

    /// The id of the entry an id or source key names.
    async fn resolve_reference(&self, coop: &str, reference: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT id FROM ledger_entries WHERE coop_id = $1 AND (id = $2 OR source_key = $2)",
        )
        .bind(coop)
        .bind(reference)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Imports entries read from a file, all or nothing: keys already in the ledger are
    /// skipped (a second import of the same file adds nothing); a line dated in a closed
    /// month refuses the whole file, naming every such line. A correction naming a key of the
    /// file or of the ledger is linked to that entry's id.
    pub async fn import_entries(
        &self,
        coop: &str,
        origin: &str,
        lines: &[Imported],
        by: &str,
    ) -> Result<ImportOutcome> {
        let closed = self.closed_through(coop).await?;
        let mut tx = self.pool.begin().await?;
        let mut known: HashMap<String, String> = HashMap::new();
        for r in sqlx::query("SELECT source_key, id FROM ledger_entries WHERE coop_id = $1")
            .bind(coop)
            .fetch_all(&mut *tx)
            .await?
        {
            known.insert(r.try_get("source_key")?, r.try_get("id")?);
        }
        let mut problems = Vec::new();
        let mut fresh: Vec<(String, Entry)> = Vec::new();
        let mut already = 0;
        let mut seen = HashSet::new();
        for l in lines {
            if known.contains_key(&l.key) {
                already += 1;
                continue;
            }
            if !seen.insert(l.key.clone()) {
                problems.push(format!(
                    "line {}: the key {} appears twice in the file",
                    l.line, l.key
                ));
                continue;
            }
            let period = Period::of(l.entry.date);
            if closed.is_some_and(|c| period <= c) {
                problems.push(format!(
                    "line {}: dated {}, in {period}, which is closed (add it as a correction dated in an open month)",
                    l.line,
                    date_text(l.entry.date)
                ));
                continue;
            }
            let mut e = l.entry.clone();
            e.id = new_id();
            known.insert(l.key.clone(), e.id.clone());
            fresh.push((l.key.clone(), e));
        }
        if !problems.is_empty() {
            return Err(invalid(format!(
                "{origin}: nothing was imported; {} problem{}:\n{}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems.join("\n")
            )));
        }
        for (_, e) in &mut fresh {
            if let Some(c) = &e.corrects {
                if let Some(id) = known.get(c) {
                    e.corrects = Some(id.clone());
                }
            }
        }
        insert_entries(&mut tx, self.backend, coop, &fresh, by).await?;
        tx.commit().await?;
        Ok(ImportOutcome {
            added: fresh.len(),
            already,
        })
    }

    /// A co-op's entries (with their source keys), in date order; of one month when given.
    pub async fn entries(
        &self,
        coop: &str,
        period: Option<Period>,
    ) -> Result<Vec<(String, Entry)>> {
        let rows = match period {
            Some(p) => {
                sqlx::query(&format!(
                    "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE coop_id = $1 AND period = $2 ORDER BY day, id"
                ))
                .bind(coop)
                .bind(p.to_string())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE coop_id = $1 ORDER BY day, id"
                ))
                .bind(coop)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(entry_row).collect()
    }

    /// What a month's settlement reads: its entries and every pledge that may fall due in it
    /// (two indexed reads: an `OR` of the two made SQLite scan the whole ledger).
    pub async fn entries_to_settle(&self, coop: &str, period: Period) -> Result<Vec<Entry>> {
        let month = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE coop_id = $1 AND period = $2"
        ))
        .bind(coop)
        .bind(period.to_string())
        .fetch_all(&self.pool)
        .await?;
        let pledges = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE coop_id = $1 \
             AND status = 'pledged' AND period < $2"
        ))
        .bind(coop)
        .bind(period.to_string())
        .fetch_all(&self.pool)
        .await?;
        month
            .iter()
            .chain(&pledges)
            .map(|r| entry_row(r).map(|(_, e)| e))
            .collect()
    }

    /// The entries naming a party (a community's books download).
    pub async fn entries_of_party(&self, coop: &str, party: &str) -> Result<Vec<(String, Entry)>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE coop_id = $1 AND party = $2 ORDER BY day, id"
        ))
        .bind(coop)
        .bind(party)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_row).collect()
    }

    /// The co-op's rule in force (the newest version), if one was set.
    pub async fn rule(&self, coop: &str) -> Result<Option<Rule>> {
        let row = sqlx::query(
            "SELECT version, body FROM ledger_rules WHERE coop_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(coop)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rule_row(&r)).transpose()
    }

    /// One version of a co-op's rule.
    pub async fn rule_version(&self, coop: &str, version: i64) -> Result<Option<Rule>> {
        let row = sqlx::query(
            "SELECT version, body FROM ledger_rules WHERE coop_id = $1 AND version = $2",
        )
        .bind(coop)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rule_row(&r)).transpose()
    }

    /// Records a new version of the co-op's rule (checked first); returns its number.
    pub async fn set_rule(&self, coop: &str, text: &str, origin: &str, by: &str) -> Result<i64> {
        let rule = Rule::parse(text, origin).map_err(|e| invalid(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT MAX(version) AS v FROM ledger_rules WHERE coop_id = $1")
            .bind(coop)
            .fetch_one(&mut *tx)
            .await?;
        let version = row.try_get::<Option<i64>, _>("v")?.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO ledger_rules (coop_id, version, body, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(coop)
        .bind(version)
        .bind(rule.to_toml())
        .bind(by)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// A co-op's settlements, newest month first.
    pub async fn settlements(&self, coop: &str) -> Result<Vec<SettlementRow>> {
        let rows =
            sqlx::query("SELECT * FROM ledger_settlements WHERE coop_id = $1 ORDER BY period DESC")
                .bind(coop)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(settlement_row).collect()
    }

    pub async fn settlement(&self, coop: &str, period: Period) -> Result<Option<SettlementRow>> {
        let row =
            sqlx::query("SELECT * FROM ledger_settlements WHERE coop_id = $1 AND period = $2")
                .bind(coop)
                .bind(period.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(settlement_row).transpose()
    }

    /// What the last closed month before `period` carried over (0 when none was closed).
    pub async fn carry_in(&self, coop: &str, period: Period) -> Result<i64> {
        let row = sqlx::query(
            "SELECT body FROM ledger_settlements WHERE coop_id = $1 AND state = 'closed' AND period < $2 \
             ORDER BY period DESC LIMIT 1",
        )
        .bind(coop)
        .bind(period.to_string())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => {
                let body: String = r.try_get("body")?;
                let s: Settlement = serde_json::from_str(&body)
                    .map_err(|e| invalid(format!("a closed settlement does not read: {e}")))?;
                Ok(s.carry_out)
            }
            None => Ok(0),
        }
    }

    /// Proposes closing a month with this settlement (or confirms a proposal: the second
    /// person, in the other role, with the same figures, closes it). Refused: a closed month
    /// (closing twice), a month whose earlier months with entries are still open, the same
    /// person twice, the same role twice, figures that changed since the proposal.
    pub async fn close_period(
        &self,
        coop: &str,
        settlement: &Settlement,
        by: &str,
        role: &str,
    ) -> Result<Closing> {
        if !CLOSING_ROLES.contains(&role) {
            return Err(invalid(format!(
                "closing is done as treasurer or operator, not {role:?}"
            )));
        }
        let period = settlement.period;
        let digest = settlement.digest();
        if let Some(open) = sqlx::query(
            "SELECT MIN(period) AS p FROM ledger_entries WHERE coop_id = $1 AND period < $2 \
             AND period NOT IN (SELECT period FROM ledger_settlements WHERE coop_id = $1 AND state = 'closed')",
        )
        .bind(coop)
        .bind(period.to_string())
        .fetch_one(&self.pool)
        .await?
        .try_get::<Option<String>, _>("p")?
        {
            return Err(invalid(format!(
                "{open} has entries and is not closed: close the months in order ({open} first)"
            )));
        }
        let existing = self.settlement(coop, period).await?;
        if let Some(last) = self.closed_through(coop).await? {
            if period < last {
                return Err(invalid(format!(
                    "the books are closed up to {last}: {period} cannot be settled again — \
                     corrections go into an open month"
                )));
            }
        }
        match existing {
            Some(s) if s.state == "closed" => Err(invalid(format!(
                "{period} is already closed (by {} and {}); a closed month is not closed again — \
                 corrections go into an open month",
                s.proposed_by,
                s.closed_by.unwrap_or_default()
            ))),
            Some(s) if s.proposed_by != by || s.proposed_as != role => {
                if s.proposed_by == by {
                    return Err(invalid(format!(
                        "{period} was proposed by you: a second person must confirm it"
                    )));
                }
                if s.proposed_as == role {
                    return Err(invalid(format!(
                        "{period} was proposed by a {role}: closing needs a treasurer and an operator, so the {} confirms",
                        CLOSING_ROLES.iter().find(|r| **r != role).expect("two roles")
                    )));
                }
                if s.digest != digest {
                    return Err(invalid(format!(
                        "the figures of {period} changed since {} proposed them (entries, the rule or rates): \
                         look at the new preview and propose it again",
                        s.proposed_by
                    )));
                }
                let done = sqlx::query(
                    "UPDATE ledger_settlements SET state = 'closed', closed_by = $1, closed_as = $2, closed_at = $3 \
                     WHERE coop_id = $4 AND period = $5 AND state = 'proposed' AND digest = $6",
                )
                .bind(by)
                .bind(role)
                .bind(now_ms())
                .bind(coop)
                .bind(period.to_string())
                .bind(&digest)
                .execute(&self.pool)
                .await?
                .rows_affected();
                if done == 1 {
                    Ok(Closing::Closed)
                } else {
                    Err(invalid(format!(
                        "{period} changed while you confirmed it: look again"
                    )))
                }
            }
            _ => {
                // A new proposal, or the proposer proposing again with new figures.
                let body = serde_json::to_string(settlement).expect("a settlement serialises");
                sqlx::query(
                    "INSERT INTO ledger_settlements (coop_id, period, state, rule_version, digest, body, \
                     proposed_by, proposed_as, proposed_at) VALUES ($1, $2, 'proposed', $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (coop_id, period) DO UPDATE SET rule_version = $3, digest = $4, body = $5, \
                     proposed_by = $6, proposed_as = $7, proposed_at = $8 \
                     WHERE ledger_settlements.state = 'proposed'",
                )
                .bind(coop)
                .bind(period.to_string())
                .bind(settlement.rule_version)
                .bind(&digest)
                .bind(&body)
                .bind(by)
                .bind(role)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
                Ok(Closing::Proposed)
            }
        }
    }

    /// Whether the co-op's summary page is public.
    pub async fn public_summary(&self, coop: &str) -> Result<bool> {
        let row = sqlx::query("SELECT public_summary FROM ledger_settings WHERE coop_id = $1")
            .bind(coop)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>("public_summary"))
            .transpose()?
            .unwrap_or(0)
            != 0)
    }

    pub async fn set_public_summary(&self, coop: &str, public: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO ledger_settings (coop_id, public_summary) VALUES ($1, $2) \
             ON CONFLICT (coop_id) DO UPDATE SET public_summary = $2",
        )
        .bind(coop)
        .bind(public as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn rule_row(r: &sqlx::any::AnyRow) -> Result<Rule> {
    let version: i64 = r.try_get("version")?;
    let body: String = r.try_get("body")?;
    let mut rule = Rule::parse(&body, &format!("rule version {version}"))
        .map_err(|e| invalid(e.to_string()))?;
    rule.version = version;
    Ok(rule)
}

/// Inserts entries in multi-row statements. SQLite gets positional `?` parameters: its numbered
/// `$n` ones are looked up by name, one by one, which made a 400-row statement (7,600
/// parameters) cost ~70 ms; Postgres gets `$n`.
async fn insert_entries(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: crate::Backend,
    coop: &str,
    rows: &[(String, Entry)],
    by: &str,
) -> Result<()> {
    let now = now_ms();
    for chunk in rows.chunks(CHUNK) {
        let mut q = String::from(
            "INSERT INTO ledger_entries (id, coop_id, source_key, kind, day, period, amount, currency, \
             party, target, category, status, recurs, until_day, minutes, note, corrects, created_by, created_at) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                q.push(',');
            }
            q.push('(');
            for j in 0..19 {
                if j > 0 {
                    q.push(',');
                }
                match backend {
                    crate::Backend::Sqlite => q.push('?'),
                    crate::Backend::Postgres => q.push_str(&format!("${}", i * 19 + j + 1)),
                }
            }
            q.push(')');
        }
        let mut query = sqlx::query(&q);
        for (key, e) in chunk {
            query = query
                .bind(e.id.clone())
                .bind(coop.to_string())
                .bind(key.clone())
                .bind(e.kind.as_str())
                .bind(date_text(e.date))
                .bind(Period::of(e.date).to_string())
                .bind(e.amount)
                .bind(e.currency.to_string())
                .bind(e.party.to_string())
                .bind(e.target.to_string())
                .bind(e.category.clone())
                .bind(e.status.as_str())
                .bind(e.recurs.as_str())
                .bind(e.until.map(date_text))
                .bind(e.minutes)
                .bind(e.note.clone())
                .bind(e.corrects.clone())
                .bind(by.to_string())
                .bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
