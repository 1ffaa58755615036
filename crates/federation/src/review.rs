//! Reviews that cannot be missed. A resolution that says "review in six months" (or by a
//! date) makes a review: an item with a due date that is announced ahead of it, enters every
//! meeting's agenda from shortly before it is due, is reminded of after it, and stays
//! overdue — with its age — until a meeting's minutes record it as held with its outcome.
//! Days are calendar dates; "today" is always given.

use serde::{Deserialize, Serialize};
use time::{Date, Month};

/// A review of a resolution (or of anything a resolution says to look at again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub title: String,
    /// What asked for it (a resolution's number).
    pub source: String,
    pub due: Date,
    /// Announced, and put on the agenda, this many days before it is due.
    pub notice_days: u32,
    /// After the due date, reminded every this many days until held.
    pub remind_every_days: u32,
    /// Held: the meeting's day and what it decided.
    pub held: Option<(Date, String)>,
}

/// Where a review stands on a given day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ReviewState {
    /// Not yet within its notice.
    Upcoming {
        days_left: i64,
    },
    /// Within its notice: announced, on the next meeting's agenda.
    DueSoon {
        days_left: i64,
    },
    /// Past its date and not held: overdue by this many days.
    Overdue {
        days: i64,
    },
    Held {
        on: Date,
        outcome: String,
    },
}

/// `date` plus `months` calendar months; a day past the new month's end becomes its last day
/// (31 August + 6 months = 28 or 29 February).
pub fn add_months(date: Date, months: u32) -> Date {
    let total = date.year() as i64 * 12 + (date.month() as i64 - 1) + i64::from(months);
    let year = (total.div_euclid(12)) as i32;
    let month = Month::try_from((total.rem_euclid(12) + 1) as u8).expect("a month number");
    let last = time::util::days_in_month(month, year);
    Date::from_calendar_date(year, month, date.day().min(last)).expect("a valid date")
}

impl Review {
    /// A review `months` after `from` (a resolution's date), with the usual notice (14 days)
    /// and reminders (weekly).
    pub fn after(title: &str, source: &str, from: Date, months: u32) -> Review {
        Review {
            title: title.into(),
            source: source.into(),
            due: add_months(from, months),
            notice_days: 14,
            remind_every_days: 7,
            held: None,
        }
    }

    pub fn state(&self, today: Date) -> ReviewState {
        if let Some((on, outcome)) = &self.held {
            return ReviewState::Held {
                on: *on,
                outcome: outcome.clone(),
            };
        }
        let days_left = (self.due - today).whole_days();
        if days_left < 0 {
            ReviewState::Overdue { days: -days_left }
        } else if days_left <= i64::from(self.notice_days) {
            ReviewState::DueSoon { days_left }
        } else {
            ReviewState::Upcoming { days_left }
        }
    }

    /// Whether a meeting on `day` has it on its agenda: every meeting from the start of its
    /// notice until a meeting holds it.
    pub fn on_agenda(&self, meeting_day: Date) -> bool {
        match &self.held {
            Some((on, _)) if *on < meeting_day => false,
            Some((on, _)) => {
                // The meeting that held it had it on its agenda.
                *on == meeting_day
                    || (self.due - meeting_day).whole_days() <= i64::from(self.notice_days)
            }
            None => (self.due - meeting_day).whole_days() <= i64::from(self.notice_days),
        }
    }

    /// Whether a reminder is due today, given the last one sent: once when the notice starts,
    /// once on the due date, then every `remind_every_days` while overdue. Never once held.
    pub fn reminder_due(&self, today: Date, last_sent: Option<Date>) -> bool {
        if self.held.is_some() {
            return false;
        }
        let notice_start = self.due - time::Duration::days(i64::from(self.notice_days));
        if today < notice_start {
            return false;
        }
        let Some(last) = last_sent else {
            return true;
        };
        if today < self.due {
            // Announced once within the notice.
            return last < notice_start;
        }
        if last < self.due {
            return true;
        }
        (today - last).whole_days() >= i64::from(self.remind_every_days.max(1))
    }

    /// Records it held at a meeting on `day`, with its outcome (from the minutes).
    pub fn hold(&mut self, day: Date, outcome: &str) {
        self.held = Some((day, outcome.trim().to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn six_months_are_calendar_months() {
        assert_eq!(add_months(date!(2023 - 04 - 13), 6), date!(2023 - 10 - 13));
        assert_eq!(add_months(date!(2023 - 08 - 31), 6), date!(2024 - 02 - 29));
        assert_eq!(add_months(date!(2023 - 08 - 31), 18), date!(2025 - 02 - 28));
        assert_eq!(add_months(date!(2026 - 12 - 02), 1), date!(2027 - 01 - 02));
    }

    /// R002's review, as it went: due in October 2023, missed, held in February 2024. Here it
    /// cannot be missed: announced, on every agenda, reminded, overdue until held.
    #[test]
    fn a_review_stays_overdue_until_minutes_hold_it() {
        let mut r = Review::after("Review of the dues", "R002", date!(2023 - 04 - 13), 6);
        assert_eq!(r.due, date!(2023 - 10 - 13));
        assert_eq!(
            r.state(date!(2023 - 09 - 01)),
            ReviewState::Upcoming { days_left: 42 }
        );
        assert!(!r.reminder_due(date!(2023 - 09 - 01), None));
        assert!(
            !r.on_agenda(date!(2023 - 09 - 06)),
            "September's meeting: not yet"
        );
        // Within the notice: announced once, on the agenda.
        assert_eq!(
            r.state(date!(2023 - 10 - 04)),
            ReviewState::DueSoon { days_left: 9 }
        );
        assert!(r.reminder_due(date!(2023 - 10 - 04), None));
        assert!(!r.reminder_due(date!(2023 - 10 - 05), Some(date!(2023 - 10 - 04))));
        assert!(r.on_agenda(date!(2023 - 10 - 04)));
        // On the day and after: reminded on the day, then weekly; overdue with its age.
        assert!(r.reminder_due(date!(2023 - 10 - 13), Some(date!(2023 - 10 - 04))));
        assert!(!r.reminder_due(date!(2023 - 10 - 16), Some(date!(2023 - 10 - 13))));
        assert!(r.reminder_due(date!(2023 - 10 - 20), Some(date!(2023 - 10 - 13))));
        assert_eq!(
            r.state(date!(2024 - 02 - 01)),
            ReviewState::Overdue { days: 111 }
        );
        for meeting in [
            date!(2023 - 11 - 01),
            date!(2023 - 12 - 06),
            date!(2024 - 02 - 01),
        ] {
            assert!(r.on_agenda(meeting), "still on the agenda on {meeting}");
        }
        // The February minutes record it held.
        r.hold(
            date!(2024 - 02 - 01),
            "Dues stay; revisit with the budget in June.",
        );
        assert!(matches!(
            r.state(date!(2024 - 02 - 02)),
            ReviewState::Held { on, .. } if on == date!(2024 - 02 - 01)
        ));
        assert!(
            r.on_agenda(date!(2024 - 02 - 01)),
            "the meeting that held it"
        );
        assert!(!r.on_agenda(date!(2024 - 03 - 06)), "and none after");
        assert!(!r.reminder_due(date!(2024 - 03 - 01), Some(date!(2024 - 01 - 25))));
    }
}
