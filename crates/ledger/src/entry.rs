//! Entries of the ledger: contributions, costs, labour and payouts, the parties and things
//! they name (`community:<name>`, `server:<name>`, …), and the month a settlement covers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, Month};

use crate::money::{format_amount, Currency};
use crate::LedgerError;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Money in: a community or a person → the co-op.
    Contribution,
    /// Money the co-op owes or paid for infrastructure (server invoices, domains, storage,
    /// fees), attributable to a server, an instance or shared.
    Cost,
    /// Hours worked by a person (valued by the rule's hourly rate at settlement).
    Labour,
    /// Money paid out to someone (recorded; settlements say what was due).
    Payout,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Contribution, Kind::Cost, Kind::Labour, Kind::Payout];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Contribution => "contribution",
            Kind::Cost => "cost",
            Kind::Labour => "labour",
            Kind::Payout => "payout",
        }
    }
}

impl FromStr for Kind {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Kind, LedgerError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "contribution" => Ok(Kind::Contribution),
            "cost" => Ok(Kind::Cost),
            "labour" | "labor" | "hours" => Ok(Kind::Labour),
            "payout" => Ok(Kind::Payout),
            other => Err(LedgerError::Invalid(format!(
                "{other:?} is not a kind of entry: use contribution, cost, labour or payout"
            ))),
        }
    }
}

/// A party or a thing an entry names, written `kind:id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ref {
    Community(String),
    Person(String),
    Coop(String),
    Server(String),
    Instance(String),
    Recipe(String),
    /// A pool of the rule (maintenance, solidarity, …).
    Pool(String),
    /// Someone outside cooper (a provider, a donor known only by name).
    External(String),
    /// The federation (dues, federation work).
    Federation,
    /// Nothing in particular: a cost shared by everything.
    Shared,
}

impl Ref {
    pub fn kind(&self) -> &'static str {
        match self {
            Ref::Community(_) => "community",
            Ref::Person(_) => "person",
            Ref::Coop(_) => "coop",
            Ref::Server(_) => "server",
            Ref::Instance(_) => "instance",
            Ref::Recipe(_) => "recipe",
            Ref::Pool(_) => "pool",
            Ref::External(_) => "external",
            Ref::Federation => "federation",
            Ref::Shared => "shared",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Ref::Community(s)
            | Ref::Person(s)
            | Ref::Coop(s)
            | Ref::Server(s)
            | Ref::Instance(s)
            | Ref::Recipe(s)
            | Ref::Pool(s)
            | Ref::External(s) => s,
            Ref::Federation | Ref::Shared => "",
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Federation | Ref::Shared => f.write_str(self.kind()),
            _ => write!(f, "{}:{}", self.kind(), self.id()),
        }
    }
}

impl FromStr for Ref {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Ref, LedgerError> {
        let t = s.trim();
        match t {
            "federation" => return Ok(Ref::Federation),
            "shared" | "" => return Ok(Ref::Shared),
            _ => {}
        }
        let Some((kind, id)) = t.split_once(':') else {
            return Err(LedgerError::Invalid(format!(
                "{s:?} does not say what it is: write kind:name, e.g. community:riseup, \
                 server:hetzner1, instance:cloud.example.org, person:ana@example.org, \
                 external:Hetzner, or federation / shared"
            )));
        };
        let id = id.trim().to_string();
        if id.is_empty() {
            return Err(LedgerError::Invalid(format!(
                "{s:?}: the name after ':' is empty"
            )));
        }
        Ok(match kind.trim() {
            "community" => Ref::Community(id),
            "person" => Ref::Person(id),
            "coop" => Ref::Coop(id),
            "server" => Ref::Server(id),
            "instance" => Ref::Instance(id),
            "recipe" => Ref::Recipe(id),
            "pool" => Ref::Pool(id),
            "external" => Ref::External(id),
            other => {
                return Err(LedgerError::Invalid(format!(
                    "{s:?}: {other:?} is not a kind of party; use community, person, coop, \
                     server, instance, recipe, pool, external, federation or shared"
                )))
            }
        })
    }
}

impl Serialize for Ref {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Whether a contribution has arrived or is promised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Received,
    Pledged,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Pledged => "pledged",
        }
    }
}

/// How often a pledge repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recurs {
    Once,
    Monthly,
    Yearly,
}

impl FromStr for Recurs {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Recurs, LedgerError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "once" | "one-off" | "oneoff" => Ok(Recurs::Once),
            "monthly" | "month" => Ok(Recurs::Monthly),
            "yearly" | "year" | "annually" => Ok(Recurs::Yearly),
            other => Err(LedgerError::Invalid(format!(
                "{other:?} is not a recurrence: use once, monthly or yearly"
            ))),
        }
    }
}

impl Recurs {
    pub fn as_str(self) -> &'static str {
        match self {
            Recurs::Once => "once",
            Recurs::Monthly => "monthly",
            Recurs::Yearly => "yearly",
        }
    }
}

/// One entry. Amounts are minor units of `currency`; labour carries minutes and no amount
/// (the rule values it). A correction is a new entry (of the same kind, usually a difference)
/// that names the entry it corrects in `corrects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub kind: Kind,
    pub date: Date,
    pub amount: i64,
    pub currency: Currency,
    /// Contribution: who gave. Cost: who is owed (the provider, or whoever paid it). Labour:
    /// who worked. Payout: who was paid.
    pub party: Ref,
    /// Cost: the server, instance, or `shared`. Labour: the instance, community, recipe or
    /// `federation`. Contributions and payouts: `shared`.
    pub target: Ref,
    /// Cost: `server`, `domain`, `storage`, `fees`, `other`. Free text otherwise.
    pub category: String,
    pub status: Status,
    pub recurs: Recurs,
    /// Labour: minutes worked (may be negative in a correction).
    pub minutes: i64,
    /// A recurring pledge's last date (inclusive).
    pub until: Option<Date>,
    pub note: String,
    pub corrects: Option<String>,
}

impl Entry {
    /// A check of the entry's own fields (what an import or a form refuses).
    pub fn validate(&self) -> Result<(), LedgerError> {
        let bad = |m: String| Err(LedgerError::Invalid(m));
        match self.kind {
            Kind::Labour => {
                if self.minutes == 0 {
                    return bad("labour needs hours (e.g. 1.5)".into());
                }
                if self.minutes < 0 && self.corrects.is_none() {
                    return bad(
                        "negative hours only in a correction (name the entry it corrects)".into(),
                    );
                }
                if !matches!(self.party, Ref::Person(_)) {
                    return bad(format!(
                        "labour is done by a person: party {} should be person:<email or name>",
                        self.party
                    ));
                }
                if !matches!(
                    self.target,
                    Ref::Instance(_)
                        | Ref::Community(_)
                        | Ref::Recipe(_)
                        | Ref::Federation
                        | Ref::Shared
                ) {
                    return bad(format!(
                        "labour is on an instance, a community, a recipe or federation work, not {}",
                        self.target
                    ));
                }
            }
            _ => {
                if self.amount == 0 {
                    return bad(format!("a {} needs an amount", self.kind.as_str()));
                }
                if self.amount < 0 && self.corrects.is_none() {
                    return bad(format!(
                        "a negative {} is a correction or a refund: name the entry it corrects",
                        self.kind.as_str()
                    ));
                }
            }
        }
        if self.kind == Kind::Cost
            && !matches!(self.target, Ref::Server(_) | Ref::Instance(_) | Ref::Shared)
        {
            return bad(format!(
                "a cost is attributed to a server, an instance or shared, not {}",
                self.target
            ));
        }
        if self.kind == Kind::Contribution
            && !matches!(
                self.party,
                Ref::Community(_) | Ref::Person(_) | Ref::External(_) | Ref::Coop(_)
            )
        {
            return bad(format!(
                "a contribution comes from a community, a person or someone external, not {}",
                self.party
            ));
        }
        if self.status == Status::Pledged && self.kind != Kind::Contribution {
            return bad("only contributions can be pledged".into());
        }
        Ok(())
    }

    /// What an entry is worth in words, for lists.
    pub fn amount_text(&self) -> String {
        match self.kind {
            Kind::Labour => hours_text(self.minutes),
            _ => format!(
                "{} {}",
                format_amount(self.amount, self.currency),
                self.currency
            ),
        }
    }
}

/// Minutes as hours (`90` → `1.5 h`, `100` → `1 h 40 min`).
pub fn hours_text(minutes: i64) -> String {
    let sign = if minutes < 0 { "-" } else { "" };
    let m = minutes.unsigned_abs();
    match m % 60 {
        0 => format!("{sign}{} h", m / 60),
        30 => format!("{sign}{}.5 h", m / 60),
        r => format!("{sign}{} h {r} min", m / 60),
    }
}

/// Parses hours (`1.5`, `2`, `0.25`, `1:30`) into minutes.
pub fn parse_hours(text: &str) -> Result<i64, LedgerError> {
    let t = text.trim();
    let bad = || {
        LedgerError::Invalid(format!(
            "{text:?} is not a number of hours: write 1.5 or 1:30"
        ))
    };
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let minutes = if let Some((h, m)) = t.split_once(':') {
        let h: i64 = h.parse().map_err(|_| bad())?;
        let m: i64 = m.parse().map_err(|_| bad())?;
        if m >= 60 {
            return Err(bad());
        }
        h * 60 + m
    } else {
        // Hours as a decimal with up to two places, to the minute (0.25 h = 15 min).
        let hundredths = crate::money::parse_amount(t, Currency::EUR).map_err(|_| bad())?;
        if hundredths < 0 {
            return Err(bad());
        }
        let m = hundredths * 60;
        if m % 100 != 0 {
            return Err(LedgerError::Invalid(format!(
                "{text:?} hours is not a whole number of minutes: write it as h:mm"
            )));
        }
        m / 100
    };
    Ok(if neg { -minutes } else { minutes })
}

/// A calendar month, the period of a settlement (`2026-11`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    pub year: i32,
    pub month: u8,
}

impl Period {
    pub fn of(date: Date) -> Period {
        Period {
            year: date.year(),
            month: date.month() as u8,
        }
    }

    pub fn first_day(&self) -> Date {
        Date::from_calendar_date(self.year, month(self.month), 1).expect("valid month")
    }

    pub fn last_day(&self) -> Date {
        self.next()
            .first_day()
            .previous_day()
            .expect("not the first day ever")
    }

    pub fn next(&self) -> Period {
        if self.month == 12 {
            Period {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Period {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(&self) -> Period {
        if self.month == 1 {
            Period {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Period {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn contains(&self, d: Date) -> bool {
        Period::of(d) == *self
    }

    /// Whether a pledge starting `start` (until `until`, inclusive) falls due in this month.
    pub fn pledge_due(&self, start: Date, recurs: Recurs, until: Option<Date>) -> bool {
        let starts = Period::of(start);
        if starts > *self || until.is_some_and(|u| Period::of(u) < *self) {
            return false;
        }
        match recurs {
            Recurs::Once => starts == *self,
            Recurs::Monthly => true,
            Recurs::Yearly => starts.month == self.month,
        }
    }
}

fn month(m: u8) -> Month {
    Month::try_from(m).expect("month 1–12")
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Period {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Period, LedgerError> {
        let bad = || LedgerError::Invalid(format!("{s:?} is not a month: write it as 2026-11"));
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || !(1970..=9999).contains(&year) || y.len() != 4 {
            return Err(bad());
        }
        Ok(Period { year, month })
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a date `YYYY-MM-DD` (or the date part of an ISO timestamp).
pub fn parse_date(text: &str) -> Result<Date, LedgerError> {
    let t = text.trim();
    let day = t.get(..10).unwrap_or(t);
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(day, &fmt).map_err(|_| {
        LedgerError::Invalid(format!("{text:?} is not a date: write it as 2026-11-30"))
    })
}

/// A date as `YYYY-MM-DD`.
pub fn date_text(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_round_trip_and_explain_themselves() {
        for s in [
            "community:riseup",
            "person:ana@example.org",
            "server:hetzner1",
            "instance:cloud.example.org",
            "federation",
            "shared",
            "external:Hetzner Online",
        ] {
            assert_eq!(s.parse::<Ref>().unwrap().to_string(), s);
        }
        let e = "riseup".parse::<Ref>().unwrap_err().to_string();
        assert!(e.contains("kind:name"), "{e}");
        let e = "planet:x".parse::<Ref>().unwrap_err().to_string();
        assert!(e.contains("not a kind of party"), "{e}");
    }

    #[test]
    fn hours_parse_to_minutes() {
        assert_eq!(parse_hours("1.5").unwrap(), 90);
        assert_eq!(parse_hours("0.25").unwrap(), 15);
        assert_eq!(parse_hours("1:40").unwrap(), 100);
        assert_eq!(parse_hours("-2").unwrap(), -120);
        assert!(parse_hours("0.33").is_err());
        assert!(parse_hours("x").is_err());
        assert_eq!(hours_text(100), "1 h 40 min");
        assert_eq!(hours_text(90), "1.5 h");
    }

    #[test]
    fn periods_and_pledges() {
        let p: Period = "2026-02".parse().unwrap();
        assert_eq!(date_text(p.last_day()), "2026-02-28");
        assert_eq!(p.previous().to_string(), "2026-01");
        assert_eq!(
            "2026-12".parse::<Period>().unwrap().next().to_string(),
            "2027-01"
        );
        assert!("2026-13".parse::<Period>().is_err());
        let start = parse_date("2025-11-15").unwrap();
        assert!(p.pledge_due(start, Recurs::Monthly, None));
        assert!(!p.pledge_due(start, Recurs::Yearly, None));
        assert!("2026-11"
            .parse::<Period>()
            .unwrap()
            .pledge_due(start, Recurs::Yearly, None));
        assert!(!p.pledge_due(
            start,
            Recurs::Monthly,
            Some(parse_date("2026-01-31").unwrap())
        ));
        assert!(!p.pledge_due(start, Recurs::Once, None));
    }
}
