//! Availability polls, the job a date-poll site does: dates (or the days of one week) × a
//! time range in the poll's timezone, cut into slots. Slots are instants (kept in UTC, by
//! index), so each person sees the grid in their own timezone; everyone paints the slots they
//! are free; the heatmap counts them and the best times are ranked.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::meetings::instant;
use crate::FederationError;

fn invalid(m: impl Into<String>) -> FederationError {
    FederationError::Invalid(m.into())
}

/// The most slots a poll has (a fortnight of whole days in quarter hours).
pub const MOST_SLOTS: usize = 14 * 96;

/// What a poll asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub tz: Tz,
    pub days: Vec<NaiveDate>,
    /// Shown as weekdays ("Monday") rather than dates: the days are one week's.
    pub weekly: bool,
    pub from: NaiveTime,
    pub to: NaiveTime,
    pub slot_minutes: u32,
}

impl Shape {
    /// Checks a shape: some days (at most 14, no repeats), a range that ends after it starts
    /// (or at midnight), slots of 15, 30 or 60 minutes.
    pub fn new(
        tz: Tz,
        mut days: Vec<NaiveDate>,
        weekly: bool,
        from: NaiveTime,
        to: NaiveTime,
        slot_minutes: u32,
    ) -> Result<Shape, FederationError> {
        days.sort();
        days.dedup();
        if days.is_empty() {
            return Err(invalid("choose at least one day for the poll"));
        }
        if days.len() > 14 {
            return Err(invalid(format!(
                "{} days: a poll asks about 14 days at most; make two polls",
                days.len()
            )));
        }
        if ![15, 30, 60].contains(&slot_minutes) {
            return Err(invalid(format!(
                "slots of {slot_minutes} minutes: choose 15, 30 or 60"
            )));
        }
        let midnight = NaiveTime::MIN;
        if to <= from && to != midnight {
            return Err(invalid(format!(
                "the times run from {} to {}: the end must come after the start (00:00 means midnight at the end of the day)",
                from.format("%H:%M"),
                to.format("%H:%M")
            )));
        }
        let s = Shape {
            tz,
            days,
            weekly,
            from,
            to,
            slot_minutes,
        };
        if s.slots().is_empty() {
            return Err(invalid("those times hold no slot; widen the range"));
        }
        Ok(s)
    }

    /// The days of the week that holds `monday`, for weekday polls.
    pub fn week_of(monday: NaiveDate, weekdays: &[chrono::Weekday]) -> Vec<NaiveDate> {
        let start = monday - Duration::days(i64::from(monday.weekday().num_days_from_monday()));
        weekdays
            .iter()
            .map(|w| start + Duration::days(i64::from(w.num_days_from_monday())))
            .collect()
    }

    /// Every slot's start, in order; a slot's index is its place here. A wall-clock time the
    /// zone skips (the hour clocks go forward) has no slot.
    pub fn slots(&self) -> Vec<DateTime<Utc>> {
        let step = Duration::minutes(i64::from(self.slot_minutes));
        let mut out = Vec::new();
        for day in &self.days {
            let start = day.and_time(self.from);
            let end = if self.to == NaiveTime::MIN {
                (*day + Duration::days(1)).and_time(NaiveTime::MIN)
            } else {
                day.and_time(self.to)
            };
            let mut t = start;
            while t + step <= end && out.len() < MOST_SLOTS {
                if let chrono::LocalResult::Single(_) | chrono::LocalResult::Ambiguous(_, _) =
                    chrono::TimeZone::from_local_datetime(&self.tz, &t)
                {
                    out.push(instant(self.tz, t));
                }
                t += step;
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The grid one person sees: their local days as columns, their local times as rows, each
/// cell the slot there (or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    pub days: Vec<NaiveDate>,
    pub times: Vec<NaiveTime>,
    /// `cells[row][column]`.
    pub cells: Vec<Vec<Option<usize>>>,
}

/// Lays out the slots in a viewer's timezone.
pub fn grid(slots: &[DateTime<Utc>], viewer: Tz) -> Grid {
    let local: Vec<_> = slots
        .iter()
        .map(|s| s.with_timezone(&viewer).naive_local())
        .collect();
    let mut days: Vec<NaiveDate> = local.iter().map(|l| l.date()).collect();
    days.sort();
    days.dedup();
    let mut times: Vec<NaiveTime> = local.iter().map(|l| l.time()).collect();
    times.sort();
    times.dedup();
    let mut cells = vec![vec![None; days.len()]; times.len()];
    for (i, l) in local.iter().enumerate() {
        let (Ok(c), Ok(r)) = (
            days.binary_search(&l.date()),
            times.binary_search(&l.time()),
        ) else {
            continue;
        };
        // In the hour that repeats two slots meet in one cell; the first keeps it.
        if cells[r][c].is_none() {
            cells[r][c] = Some(i);
        }
    }
    Grid { days, times, cells }
}

/// How many people are free in each slot. `people` holds each person's slot indexes.
pub fn heat(slot_count: usize, people: &[Vec<usize>]) -> Vec<u32> {
    let mut counts = vec![0u32; slot_count];
    for p in people {
        for &s in p {
            if let Some(c) = counts.get_mut(s) {
                *c += 1;
            }
        }
    }
    counts
}

/// A candidate time: `length` slots from `first`, and who is free for all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub first: usize,
    pub length: usize,
    /// Indexes into `people`.
    pub free: Vec<usize>,
}

/// The best times for a meeting of `length` consecutive slots (slots are consecutive when
/// each starts as the one before ends): most people free for the whole of it, then earliest.
/// At most `top`.
pub fn best(
    slots: &[DateTime<Utc>],
    slot_minutes: u32,
    people: &[Vec<usize>],
    length: usize,
    top: usize,
) -> Vec<Candidate> {
    let length = length.max(1);
    let step = Duration::minutes(i64::from(slot_minutes));
    // Each person's slots as a bitmap, so a window is checked by lookups.
    let maps: Vec<Vec<bool>> = people
        .iter()
        .map(|p| {
            let mut m = vec![false; slots.len()];
            for &s in p {
                if let Some(b) = m.get_mut(s) {
                    *b = true;
                }
            }
            m
        })
        .collect();
    let mut out: Vec<Candidate> = Vec::new();
    for first in 0..slots.len() {
        let last = first + length - 1;
        if last >= slots.len() {
            break;
        }
        if (first..last).any(|i| slots[i] + step != slots[i + 1]) {
            continue;
        }
        let free: Vec<usize> = maps
            .iter()
            .enumerate()
            .filter(|(_, m)| m[first..=last].iter().all(|b| *b))
            .map(|(i, _)| i)
            .collect();
        if free.is_empty() {
            continue;
        }
        out.push(Candidate {
            first,
            length,
            free,
        });
    }
    out.sort_by(|a, b| b.free.len().cmp(&a.free.len()).then(a.first.cmp(&b.first)));
    out.truncate(top);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn slots_are_instants_and_the_grid_follows_the_viewer_across_daylight_saving() {
        // Berlin 09:00–11:00 on the Saturday and Sunday of the March change (28 March 2027).
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let s = Shape::new(
            berlin,
            vec![d(2027, 3, 27), d(2027, 3, 28)],
            false,
            t(9, 0),
            t(11, 0),
            60,
        )
        .unwrap();
        let slots = s.slots();
        assert_eq!(slots.len(), 4);
        assert_eq!(
            slots[0],
            Utc.with_ymd_and_hms(2027, 3, 27, 8, 0, 0).unwrap()
        );
        assert_eq!(
            slots[2],
            Utc.with_ymd_and_hms(2027, 3, 28, 7, 0, 0).unwrap()
        );
        // In New York (already on summer time since 14 March) Saturday 09:00 Berlin is 04:00
        // and Sunday 09:00 Berlin is 03:00: four rows, each slot in its own cell.
        let ny: Tz = "America/New_York".parse().unwrap();
        let g = grid(&slots, ny);
        assert_eq!(g.days, vec![d(2027, 3, 27), d(2027, 3, 28)]);
        assert_eq!(g.times, vec![t(3, 0), t(4, 0), t(5, 0)]);
        assert_eq!(g.cells[1][0], Some(0));
        assert_eq!(g.cells[0][1], Some(2));
        let placed: usize = g.cells.iter().flatten().filter(|c| c.is_some()).count();
        assert_eq!(placed, 4, "no slot lost");
    }

    #[test]
    fn a_skipped_hour_has_no_slot() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let s = Shape::new(berlin, vec![d(2027, 3, 28)], false, t(1, 0), t(4, 0), 60).unwrap();
        // 01:00 and 03:00 exist; 02:00 does not that night.
        assert_eq!(s.slots().len(), 2);
    }

    #[test]
    fn the_best_window_has_the_most_people_free_throughout() {
        let utc = chrono_tz::UTC;
        let s = Shape::new(utc, vec![d(2027, 5, 3)], false, t(9, 0), t(13, 0), 30).unwrap();
        let slots = s.slots();
        assert_eq!(slots.len(), 8);
        let people = vec![vec![0, 1, 2, 3], vec![2, 3, 4], vec![3, 4, 5], vec![7]];
        assert_eq!(heat(slots.len(), &people), vec![1, 1, 2, 3, 2, 1, 0, 1]);
        let one = best(&slots, 30, &people, 1, 3);
        assert_eq!(one[0].first, 3);
        assert_eq!(one[0].free, vec![0, 1, 2]);
        let two = best(&slots, 30, &people, 2, 10);
        assert_eq!((two[0].first, two[0].free.len()), (2, 2), "{two:?}");
        assert_eq!((two[1].first, two[1].free.len()), (3, 2));
        assert!(
            best(&slots, 30, &people, 9, 3).is_empty(),
            "longer than the day"
        );
    }

    #[test]
    fn windows_do_not_run_across_a_gap_between_days() {
        let utc = chrono_tz::UTC;
        let s = Shape::new(
            utc,
            vec![d(2027, 5, 3), d(2027, 5, 4)],
            false,
            t(16, 0),
            t(17, 0),
            60,
        )
        .unwrap();
        let people = vec![vec![0, 1]];
        assert!(best(&s.slots(), 60, &people, 2, 5).is_empty());
    }

    #[test]
    fn bad_shapes_say_what_to_change() {
        let utc = chrono_tz::UTC;
        let e = Shape::new(utc, vec![], false, t(9, 0), t(10, 0), 30).unwrap_err();
        assert!(e.to_string().contains("at least one day"));
        let e = Shape::new(utc, vec![d(2027, 1, 1)], false, t(10, 0), t(9, 0), 30).unwrap_err();
        assert!(e.to_string().contains("after the start"), "{e}");
        let e = Shape::new(utc, vec![d(2027, 1, 1)], false, t(9, 0), t(10, 0), 20).unwrap_err();
        assert!(e.to_string().contains("15, 30 or 60"));
        let whole = Shape::new(utc, vec![d(2027, 1, 1)], false, t(0, 0), t(0, 0), 60).unwrap();
        assert_eq!(whole.slots().len(), 24, "00:00 to 00:00 is the whole day");
        let week = Shape::week_of(d(2027, 1, 6), &[chrono::Weekday::Mon, chrono::Weekday::Fri]);
        assert_eq!(week, vec![d(2027, 1, 4), d(2027, 1, 8)]);
    }
}
