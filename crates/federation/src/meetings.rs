//! Meetings on a rhythm: an RFC 5545 recurrence rule (expanded by the `rrule` crate) from a
//! first meeting at a wall-clock time in a named timezone, with dates skipped, and the ICS
//! feed of it (written by the `icalendar` crate, with a `VTIMEZONE` worked out from the
//! timezone database so that calendar programs that do not know the zone's name still place
//! every meeting right across daylight-saving changes).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};
use icalendar::{Calendar, CalendarDateTime, Component, EventLike};
use rrule::RRuleSet;

use crate::FederationError;

fn invalid(m: impl Into<String>) -> FederationError {
    FederationError::Invalid(m.into())
}

/// The most meetings one expansion returns (a daily rule over five years fits).
const MOST: u16 = 4000;

/// A regular meeting: "monthly on the first Wednesday at 15:00 UTC", with exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rhythm {
    /// The rule's parts after `RRULE:`, e.g. `FREQ=MONTHLY;BYDAY=1WE`.
    pub rule: String,
    /// The first meeting, as a wall-clock time in `tz`.
    pub first: NaiveDateTime,
    pub tz: Tz,
    pub minutes: u32,
    /// Days on which the rhythm has no meeting (holidays, a moved meeting).
    pub skipped: Vec<NaiveDate>,
}

/// Reads a timezone name ("UTC", "Europe/Berlin").
pub fn timezone(name: &str) -> Result<Tz, FederationError> {
    name.trim().parse::<Tz>().map_err(|_| {
        invalid(format!(
            "timezone {name:?} is not a name from the timezone database: write one like \"UTC\", \"Europe/Berlin\" or \"America/Mexico_City\""
        ))
    })
}

/// Reads "2027-01-06 15:00" (or with a `T`).
pub fn wall_clock(text: &str) -> Result<NaiveDateTime, FederationError> {
    let t = text.trim().replace('T', " ");
    NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S"))
        .map_err(|_| {
            invalid(format!(
                "{text:?} is not a date and time: write it as 2027-01-06 15:00"
            ))
        })
}

/// The instant of a wall-clock time in a timezone: in a gap (the hour clocks skip), the
/// moment after it; in the hour that repeats, the first.
pub fn instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        chrono::LocalResult::None => instant(tz, local + Duration::hours(1)) - Duration::hours(1),
    }
}

fn ics_local(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%S").to_string()
}

impl Rhythm {
    /// Checks a rhythm: the rule must be a valid RRULE without its own start, the timezone
    /// a known name, the length between 5 minutes and a day.
    pub fn new(
        rule: &str,
        first: NaiveDateTime,
        tz: Tz,
        minutes: u32,
        skipped: Vec<NaiveDate>,
    ) -> Result<Rhythm, FederationError> {
        let rule = rule.trim().trim_start_matches("RRULE:").trim().to_string();
        if rule.is_empty() {
            return Err(invalid(
                "the rhythm needs a rule, e.g. FREQ=MONTHLY;BYDAY=1WE (monthly on the first Wednesday)",
            ));
        }
        if rule.contains('\n') || rule.to_ascii_uppercase().contains("DTSTART") {
            return Err(invalid(
                "write only the rule's parts (FREQ=…;BYDAY=…); the first meeting is its own field",
            ));
        }
        if !(5..=24 * 60).contains(&minutes) {
            return Err(invalid(format!(
                "a meeting of {minutes} minutes: give a length from 5 minutes to a day"
            )));
        }
        let r = Rhythm {
            rule,
            first,
            tz,
            minutes,
            skipped,
        };
        r.set().map_err(|e| {
            invalid(format!(
                "the rule {:?} is not an RFC 5545 recurrence rule ({e}); e.g. FREQ=MONTHLY;BYDAY=1WE",
                r.rule
            ))
        })?;
        Ok(r)
    }

    fn dtstart(&self) -> String {
        if self.tz == chrono_tz::UTC {
            format!("DTSTART:{}Z", ics_local(self.first))
        } else {
            format!("DTSTART;TZID={}:{}", self.tz.name(), ics_local(self.first))
        }
    }

    fn set(&self) -> Result<RRuleSet, rrule::RRuleError> {
        let mut set: RRuleSet = format!("{}\nRRULE:{}", self.dtstart(), self.rule).parse()?;
        let tz = rrule::Tz::Tz(self.tz);
        for day in &self.skipped {
            let at = instant(self.tz, day.and_time(self.first.time()));
            set = set.exdate(at.with_timezone(&tz));
        }
        Ok(set)
    }

    /// The meetings that start in `[from, to]`, in order.
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let tz = rrule::Tz::UTC;
        match self.set() {
            Ok(set) => set
                .after(from.with_timezone(&tz))
                .before(to.with_timezone(&tz))
                .all(MOST)
                .dates
                .into_iter()
                .map(|d| d.with_timezone(&Utc))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The first meeting at or after `t`.
    pub fn next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let set = self.set().ok()?;
        set.after(t.with_timezone(&rrule::Tz::UTC))
            .all(1)
            .dates
            .first()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The rhythm in words, for pages ("FREQ=MONTHLY;BYDAY=1WE at 15:00 Europe/Berlin" read
    /// out for the common cases).
    pub fn words(&self) -> String {
        let parts: std::collections::HashMap<String, String> = self
            .rule
            .split(';')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_ascii_uppercase(), v.to_ascii_uppercase()))
            .collect();
        let interval = parts
            .get("INTERVAL")
            .and_then(|i| i.parse::<u32>().ok())
            .unwrap_or(1);
        let freq = match (parts.get("FREQ").map(String::as_str), interval) {
            (Some("DAILY"), 1) => "every day".to_string(),
            (Some("WEEKLY"), 1) => "every week".to_string(),
            (Some("MONTHLY"), 1) => "every month".to_string(),
            (Some("YEARLY"), 1) => "every year".to_string(),
            (Some("DAILY"), n) => format!("every {n} days"),
            (Some("WEEKLY"), n) => format!("every {n} weeks"),
            (Some("MONTHLY"), n) => format!("every {n} months"),
            (Some("YEARLY"), n) => format!("every {n} years"),
            _ => self.rule.clone(),
        };
        let day = parts.get("BYDAY").map(|d| {
            d.split(',')
                .map(|one| {
                    let (n, wd) = one.split_at(one.len().saturating_sub(2));
                    let name = match wd {
                        "MO" => "Monday",
                        "TU" => "Tuesday",
                        "WE" => "Wednesday",
                        "TH" => "Thursday",
                        "FR" => "Friday",
                        "SA" => "Saturday",
                        "SU" => "Sunday",
                        other => other,
                    };
                    match n.trim_start_matches('+') {
                        "" => name.to_string(),
                        "1" => format!("the first {name}"),
                        "2" => format!("the second {name}"),
                        "3" => format!("the third {name}"),
                        "4" => format!("the fourth {name}"),
                        "-1" => format!("the last {name}"),
                        k => format!("the {k}. {name}"),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        });
        let mut w = freq;
        if let Some(d) = day {
            w.push_str(" on ");
            w.push_str(&d);
        }
        format!(
            "{w} at {} {} ({} min)",
            self.first.format("%H:%M"),
            self.tz.name(),
            self.minutes
        )
    }
}

/// A series in a feed: a rhythm with its title.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    pub uid: String,
    pub title: String,
    pub description: String,
    pub url: Option<String>,
    pub rhythm: &'a Rhythm,
}

/// A single meeting in a feed (one chosen from a poll, say).
#[derive(Debug, Clone)]
pub struct Single {
    pub uid: String,
    pub title: String,
    pub description: String,
    pub url: Option<String>,
    pub start: DateTime<Utc>,
    pub minutes: u32,
}

/// The ICS feed of some series and single meetings. `stamp` is the feed's time (its
/// `DTSTAMP`); `until` bounds the timezone definitions written.
pub fn feed(
    name: &str,
    series: &[Series<'_>],
    singles: &[Single],
    stamp: DateTime<Utc>,
    until: DateTime<Utc>,
) -> String {
    let mut cal = Calendar::new();
    cal.name(name);
    cal.properties.retain(|p| p.key() != "PRODID");
    cal.append_property(icalendar::Property::new(
        "PRODID",
        "-//cooper//federation//EN",
    ));
    // The zones used, each once, from the earliest first meeting.
    let mut zones: Vec<(Tz, i32)> = Vec::new();
    for s in series {
        let tz = s.rhythm.tz;
        if tz == chrono_tz::UTC {
            continue;
        }
        let year = s.rhythm.first.year();
        match zones.iter_mut().find(|(z, _)| *z == tz) {
            Some((_, y)) => *y = (*y).min(year),
            None => zones.push((tz, year)),
        }
    }
    let until_year = until.year();
    // The crate writes events, not timezone definitions: those are written here (every line
    // is short, so none needs folding) and placed before the first event.
    let zones_text: String = zones
        .iter()
        .map(|(tz, from)| vtimezone(*tz, *from, until_year))
        .collect();
    for s in series {
        let r = s.rhythm;
        let at = |t: NaiveDateTime| -> CalendarDateTime {
            if r.tz == chrono_tz::UTC {
                CalendarDateTime::Utc(t.and_utc())
            } else {
                CalendarDateTime::WithTimezone {
                    date_time: t,
                    tzid: r.tz.name().to_string(),
                }
            }
        };
        let mut e = icalendar::Event::with_uid(&s.uid);
        e.summary(&s.title)
            .description(&s.description)
            .timestamp(stamp)
            .starts(at(r.first))
            .ends(at(r.first + Duration::minutes(i64::from(r.minutes))))
            .add_property("RRULE", &r.rule);
        if let Some(u) = &s.url {
            e.url(u);
        }
        for day in &r.skipped {
            e.exdate(at(day.and_time(r.first.time())));
        }
        cal.push(e.done());
    }
    for m in singles {
        let mut e = icalendar::Event::with_uid(&m.uid);
        e.summary(&m.title)
            .description(&m.description)
            .timestamp(stamp)
            .starts(CalendarDateTime::Utc(m.start))
            .ends(CalendarDateTime::Utc(
                m.start + Duration::minutes(i64::from(m.minutes)),
            ));
        if let Some(u) = &m.url {
            e.url(u);
        }
        cal.push(e.done());
    }
    let text = cal.done().to_string();
    match text
        .find("BEGIN:VEVENT")
        .or_else(|| text.find("END:VCALENDAR"))
    {
        Some(at) if !zones_text.is_empty() => {
            format!("{}{zones_text}{}", &text[..at], &text[at..])
        }
        _ => text,
    }
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.abs();
    format!("{sign}{:02}{:02}", s / 3600, (s % 3600) / 60)
}

/// The zone's offset changes between the start of `from` and the end of `to` (years), as
/// `VTIMEZONE` text: one `STANDARD` or `DAYLIGHT` part per change, each with the local time it
/// happens at (RFC 5545 §3.6.5 allows listing them one by one).
pub fn vtimezone(tz: Tz, from: i32, to: i32) -> String {
    let offset = |t: DateTime<Utc>| -> (i32, bool, String) {
        let o = tz.offset_from_utc_datetime(&t.naive_utc());
        let dst = !o.dst_offset().is_zero();
        let name = o.abbreviation().unwrap_or("").to_string();
        (o.fix().local_minus_utc(), dst, name)
    };
    let Some(start) = NaiveDate::from_ymd_opt(from, 1, 1) else {
        return String::new();
    };
    let start = start.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end = NaiveDate::from_ymd_opt(to + 1, 1, 1)
        .unwrap_or(NaiveDate::MAX)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let mut out = format!("BEGIN:VTIMEZONE\r\nTZID:{}\r\n", tz.name());
    let (first_offset, first_dst, first_name) = offset(start);
    let part = |dst: bool, at_local: NaiveDateTime, from: i32, to: i32, name: &str| {
        let kind = if dst { "DAYLIGHT" } else { "STANDARD" };
        let mut p = format!(
            "BEGIN:{kind}\r\nDTSTART:{}\r\nTZOFFSETFROM:{}\r\nTZOFFSETTO:{}\r\n",
            ics_local(at_local),
            offset_text(from),
            offset_text(to)
        );
        if !name.is_empty() && !name.starts_with(['+', '-']) {
            p.push_str(&format!("TZNAME:{name}\r\n"));
        }
        p.push_str(&format!("END:{kind}\r\n"));
        p
    };
    out.push_str(&part(
        first_dst,
        start.naive_utc() + Duration::seconds(i64::from(first_offset)),
        first_offset,
        first_offset,
        &first_name,
    ));
    let mut t = start;
    let mut current = first_offset;
    while t < end {
        let next = t + Duration::days(1);
        let (o, _, _) = offset(next);
        if o != current {
            // The change lies in (t, next]: find its second.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if offset(mid).0 == current {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let (to_offset, dst, name) = offset(hi);
            out.push_str(&part(
                dst,
                hi.naive_utc() + Duration::seconds(i64::from(current)),
                current,
                to_offset,
                &name,
            ));
            current = to_offset;
        }
        t = next;
    }
    out.push_str("END:VTIMEZONE\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_wednesdays() -> Rhythm {
        Rhythm::new(
            "FREQ=MONTHLY;BYDAY=1WE",
            wall_clock("2027-01-06 15:00").unwrap(),
            timezone("Europe/Berlin").unwrap(),
            90,
            vec![NaiveDate::from_ymd_opt(2027, 8, 4).unwrap()],
        )
        .unwrap()
    }

    #[test]
    fn the_rhythm_keeps_its_wall_clock_across_daylight_saving() {
        let r = first_wednesdays();
        let from = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2027, 12, 31, 0, 0, 0).unwrap();
        let all = r.between(from, to);
        assert_eq!(all.len(), 11, "twelve first Wednesdays, August skipped");
        // 15:00 in Berlin is 14:00 UTC in winter and 13:00 UTC in summer.
        assert_eq!(all[0], Utc.with_ymd_and_hms(2027, 1, 6, 14, 0, 0).unwrap());
        assert_eq!(all[3], Utc.with_ymd_and_hms(2027, 4, 7, 13, 0, 0).unwrap());
        assert!(!all.iter().any(|d| d.format("%m").to_string() == "08"));
        assert_eq!(
            r.next(Utc.with_ymd_and_hms(2027, 7, 8, 0, 0, 0).unwrap()),
            Some(Utc.with_ymd_and_hms(2027, 9, 1, 13, 0, 0).unwrap()),
            "the skipped August meeting is not next"
        );
        assert_eq!(
            r.words(),
            "every month on the first Wednesday at 15:00 Europe/Berlin (90 min)"
        );
    }

    #[test]
    fn bad_rhythms_say_what_to_write() {
        let t = wall_clock("2027-01-06 15:00").unwrap();
        let e = Rhythm::new("FREQ=SOMETIMES", t, chrono_tz::UTC, 60, vec![]).unwrap_err();
        assert!(e.to_string().contains("FREQ=MONTHLY;BYDAY=1WE"), "{e}");
        let e = timezone("Mars/Olympus").unwrap_err();
        assert!(e.to_string().contains("Europe/Berlin"), "{e}");
        let e = wall_clock("first wednesday").unwrap_err();
        assert!(e.to_string().contains("2027-01-06 15:00"), "{e}");
        assert!(Rhythm::new("FREQ=WEEKLY", t, chrono_tz::UTC, 0, vec![]).is_err());
    }

    #[test]
    fn the_timezone_definition_lists_each_change() {
        let v = vtimezone(timezone("Europe/Berlin").unwrap(), 2027, 2027);
        // The start, then March (to summer time) and October (back).
        assert_eq!(v.matches("BEGIN:DAYLIGHT").count(), 1, "{v}");
        assert_eq!(v.matches("BEGIN:STANDARD").count(), 2, "{v}");
        assert!(v.contains("DTSTART:20270328T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200"));
        assert!(v.contains("DTSTART:20271031T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100"));
    }

    #[test]
    fn the_feed_holds_the_rule_the_exception_and_the_zone() {
        let r = first_wednesdays();
        let ics = feed(
            "Federation meetings",
            &[Series {
                uid: "s1@cooper".into(),
                title: "Federation meeting".into(),
                description: "Agenda: https://example.org/federation/meetings".into(),
                url: None,
                rhythm: &r,
            }],
            &[Single {
                uid: "p1@cooper".into(),
                title: "Extra meeting".into(),
                description: String::new(),
                url: None,
                start: Utc.with_ymd_and_hms(2027, 2, 10, 16, 0, 0).unwrap(),
                minutes: 60,
            }],
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap(),
        );
        let unfolded = icalendar::parser::unfold(&ics);
        assert!(unfolded.contains("RRULE:FREQ=MONTHLY;BYDAY=1WE"), "{ics}");
        assert!(unfolded.contains("DTSTART;TZID=Europe/Berlin:20270106T150000"));
        assert!(unfolded.contains("EXDATE;TZID=Europe/Berlin:20270804T150000"));
        assert!(unfolded.contains("BEGIN:VTIMEZONE"));
        assert_eq!(unfolded.matches("PRODID:").count(), 1, "{ics}");
        let zone = &unfolded
            [unfolded.find("BEGIN:VTIMEZONE").unwrap()..unfolded.find("END:VTIMEZONE").unwrap()];
        assert!(!zone.contains("DTSTAMP") && !zone.contains("UID"), "{zone}");
        assert!(unfolded.find("END:VTIMEZONE") < unfolded.find("BEGIN:VEVENT"));
        assert!(unfolded.contains("DTSTART:20270210T160000Z"));
        assert!(ics.contains("\r\n"));
    }
}
