//! Membership dues: what each member owes per period by the rates in force (a resolution
//! sets them; a later one may change them), less solidarity waivers (each with a start, an
//! end and a reason), against the payments recorded — oldest period paid first — giving each
//! member's arrears.

use cooper_ledger::money::Currency;
use time::{Date, Month};

use crate::rules::DuesPeriod;

/// A rate of dues in force from a day (set by a resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    pub from: Date,
    /// Minor units per period.
    pub amount: i64,
    pub currency: Currency,
    pub period: DuesPeriod,
    /// The resolution that set it ("R002"), or where it came from.
    pub by: String,
}

/// A solidarity waiver: no dues for the periods starting from `from` to `to` (inclusive; open
/// when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    pub from: Date,
    pub to: Option<Date>,
    pub reason: String,
}

impl Waiver {
    pub fn covers(&self, day: Date) -> bool {
        day >= self.from && self.to.is_none_or(|t| day <= t)
    }
}

/// A payment of dues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub on: Date,
    pub amount: i64,
}

/// One period of a member's dues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// "2027-03" for a month, "2027" for a year.
    pub period: String,
    pub start: Date,
    pub owed: i64,
    /// The waiver's reason, when waived (then nothing is owed).
    pub waived: Option<String>,
    pub paid: i64,
}

impl Line {
    pub fn unpaid(&self) -> i64 {
        self.owed - self.paid
    }
}

/// A member's dues account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub lines: Vec<Line>,
    pub owed: i64,
    pub paid: i64,
    /// What is owed and not paid (never below zero; `credit` holds what was paid ahead).
    pub arrears: i64,
    pub credit: i64,
    pub currency: Option<Currency>,
}

impl Account {
    /// The periods not fully paid, oldest first.
    pub fn unpaid(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| l.unpaid() > 0)
    }
}

fn period_start(day: Date, period: DuesPeriod) -> Date {
    match period {
        DuesPeriod::Monthly => day.replace_day(1).unwrap_or(day),
        DuesPeriod::Yearly => {
            Date::from_calendar_date(day.year(), Month::January, 1).unwrap_or(day)
        }
    }
}

fn next_start(start: Date, period: DuesPeriod) -> Date {
    match period {
        DuesPeriod::Monthly => {
            let (y, m) = if start.month() == Month::December {
                (start.year() + 1, Month::January)
            } else {
                (start.year(), start.month().next())
            };
            Date::from_calendar_date(y, m, 1).unwrap_or(start)
        }
        DuesPeriod::Yearly => {
            Date::from_calendar_date(start.year() + 1, Month::January, 1).unwrap_or(start)
        }
    }
}

/// The account of a member who joined on `joined` (and left on `left`, if so) on `today`:
/// every period that has started, by the rate in force at its start.
pub fn account(
    joined: Date,
    left: Option<Date>,
    rates: &[Rate],
    waivers: &[Waiver],
    payments: &[Payment],
    today: Date,
) -> Account {
    let mut rates: Vec<&Rate> = rates.iter().collect();
    rates.sort_by_key(|r| r.from);
    let rate_at = |day: Date| rates.iter().rev().find(|r| r.from <= day).copied();
    let end = left.map_or(today, |l| l.min(today));
    let mut lines = Vec::new();
    // Periods follow the rate in force; the first starts with the member's first period.
    let mut start = match rate_at(joined).or(rates.first().copied()) {
        Some(r) => period_start(joined, r.period),
        None => return empty(payments),
    };
    while start <= end && lines.len() < 1200 {
        let Some(rate) = rate_at(start.max(joined)) else {
            // No rate yet: the next month is looked at.
            start = next_start(start, DuesPeriod::Monthly);
            continue;
        };
        let start_here = period_start(start, rate.period);
        let waived = waivers
            .iter()
            .find(|w| w.covers(start_here.max(joined)))
            .map(|w| w.reason.clone());
        lines.push(Line {
            period: match rate.period {
                DuesPeriod::Monthly => {
                    format!("{}-{:02}", start_here.year(), start_here.month() as u8)
                }
                DuesPeriod::Yearly => format!("{}", start_here.year()),
            },
            start: start_here,
            owed: if waived.is_some() { 0 } else { rate.amount },
            waived,
            paid: 0,
        });
        start = next_start(start_here, rate.period);
    }
    let paid: i64 = payments.iter().map(|p| p.amount).sum();
    let mut left_to_apply = paid;
    for l in &mut lines {
        let take = l.owed.min(left_to_apply).max(0);
        l.paid = take;
        left_to_apply -= take;
    }
    let owed: i64 = lines.iter().map(|l| l.owed).sum();
    Account {
        currency: rates.first().map(|r| r.currency),
        lines,
        owed,
        paid,
        arrears: (owed - paid).max(0),
        credit: (paid - owed).max(0),
    }
}

fn empty(payments: &[Payment]) -> Account {
    let paid = payments.iter().map(|p| p.amount).sum();
    Account {
        lines: Vec::new(),
        owed: 0,
        paid,
        arrears: 0,
        credit: paid,
        currency: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn eur() -> Currency {
        "EUR".parse().unwrap()
    }

    fn monthly(from: Date, amount: i64) -> Rate {
        Rate {
            from,
            amount,
            currency: eur(),
            period: DuesPeriod::Monthly,
            by: "R001".into(),
        }
    }

    #[test]
    fn months_owed_waived_and_paid_oldest_first() {
        let rates = [
            monthly(date!(2020 - 01 - 01), 1000),
            monthly(date!(2027 - 03 - 01), 1500),
        ];
        let waivers = [Waiver {
            from: date!(2027 - 02 - 01),
            to: Some(date!(2027 - 02 - 28)),
            reason: "hard month".into(),
        }];
        let payments = [Payment {
            on: date!(2027 - 01 - 20),
            amount: 1000,
        }];
        let a = account(
            date!(2027 - 01 - 15),
            None,
            &rates,
            &waivers,
            &payments,
            date!(2027 - 04 - 02),
        );
        let periods: Vec<_> = a
            .lines
            .iter()
            .map(|l| (l.period.as_str(), l.owed, l.paid))
            .collect();
        assert_eq!(
            periods,
            vec![
                ("2027-01", 1000, 1000),
                ("2027-02", 0, 0),
                ("2027-03", 1500, 0),
                ("2027-04", 1500, 0)
            ]
        );
        assert_eq!(a.lines[1].waived.as_deref(), Some("hard month"));
        assert_eq!((a.owed, a.paid, a.arrears, a.credit), (4000, 1000, 3000, 0));
        assert_eq!(a.unpaid().count(), 2);
    }

    #[test]
    fn paying_ahead_is_credit_and_leaving_ends_the_dues() {
        let rates = [Rate {
            from: date!(2020 - 01 - 01),
            amount: 12000,
            currency: eur(),
            period: DuesPeriod::Yearly,
            by: "R001".into(),
        }];
        let payments = [Payment {
            on: date!(2026 - 01 - 02),
            amount: 30000,
        }];
        let a = account(
            date!(2026 - 06 - 01),
            Some(date!(2027 - 03 - 01)),
            &rates,
            &[],
            &payments,
            date!(2029 - 01 - 01),
        );
        assert_eq!(a.lines.len(), 2, "2026 and 2027, not after leaving");
        assert_eq!((a.arrears, a.credit), (0, 6000));
    }

    #[test]
    fn no_rate_no_dues() {
        let a = account(
            date!(2027 - 01 - 01),
            None,
            &[],
            &[],
            &[],
            date!(2027 - 06 - 01),
        );
        assert!(a.lines.is_empty());
        assert_eq!(a.arrears, 0);
    }
}
