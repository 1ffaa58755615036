//! Figures for BENCHMARKS.md ("The federation"): a poll of 200 people × 7 days × 48 slots —
//! the heatmap and the ranking of the best two-hour windows — and the ICS feed of a
//! 20-member federation over five years (a monthly rhythm in Europe/Berlin with exceptions, a
//! fortnightly one in America/New_York, and 100 single meetings found by polls), each the
//! median of 21 runs. Run: `cargo run --release -p cooper-federation --example bench_practice`.

use std::time::Instant;

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use cooper_federation::meetings::{self, Rhythm, Series, Single};
use cooper_federation::poll::{self, Shape};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // A poll: 7 days of 24 hours in half hours, 200 people, each free in a pseudo-random
    // third of the slots (a fixed sequence, so runs compare).
    let shape = Shape::new(
        meetings::timezone("Europe/Berlin").unwrap(),
        (1..8)
            .map(|d| NaiveDate::from_ymd_opt(2027, 3, 22 + d).unwrap())
            .collect(),
        false,
        NaiveTime::MIN,
        NaiveTime::MIN,
        30,
    )
    .unwrap();
    let slots = shape.slots();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let people: Vec<Vec<usize>> = (0..200)
        .map(|_| {
            (0..slots.len())
                .filter(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed.is_multiple_of(3)
                })
                .collect()
        })
        .collect();
    let mut runs = Vec::new();
    let mut best = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let heat = poll::heat(slots.len(), &people);
        best = poll::best(&slots, 30, &people, 4, 5);
        let g = poll::grid(&slots, meetings::timezone("America/New_York").unwrap());
        runs.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(heat.len(), slots.len());
        assert!(!g.days.is_empty());
    }
    println!(
        "poll: {} people × {} slots (7 days × 48, the week Europe changes to summer time): heatmap + best 2-hour windows + grid in another zone: {:.2} ms (median of 21); best window has {} people free",
        people.len(),
        slots.len(),
        median(runs),
        best.first().map(|b| b.free.len()).unwrap_or(0)
    );

    // The feed.
    let monthly = Rhythm::new(
        "FREQ=MONTHLY;BYDAY=1WE",
        meetings::wall_clock("2027-01-06 15:00").unwrap(),
        meetings::timezone("Europe/Berlin").unwrap(),
        90,
        (2027..2032)
            .map(|y| NaiveDate::from_ymd_opt(y, 8, 1).unwrap())
            .collect(),
    )
    .unwrap();
    let fortnightly = Rhythm::new(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
        meetings::wall_clock("2027-01-12 11:30").unwrap(),
        meetings::timezone("America/New_York").unwrap(),
        60,
        vec![],
    )
    .unwrap();
    let series = [
        Series {
            uid: "a@cooper".into(),
            title: "Federation meeting".into(),
            description: monthly.words(),
            url: None,
            rhythm: &monthly,
        },
        Series {
            uid: "b@cooper".into(),
            title: "Americas call".into(),
            description: fortnightly.words(),
            url: None,
            rhythm: &fortnightly,
        },
    ];
    let start = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    let singles: Vec<Single> = (0..100)
        .map(|i| Single {
            uid: format!("s{i}@cooper"),
            title: format!("Working group {i}"),
            description: "Found by a poll".into(),
            url: None,
            start: start + Duration::days(i * 18),
            minutes: 60,
        })
        .collect();
    let mut runs = Vec::new();
    let mut size = 0;
    for _ in 0..21 {
        let t = Instant::now();
        let body = meetings::feed(
            "Federation meetings",
            &series,
            &singles,
            start,
            start + Duration::days(5 * 366),
        );
        let expanded = monthly
            .between(start, start + Duration::days(5 * 366))
            .len()
            + fortnightly
                .between(start, start + Duration::days(5 * 366))
                .len();
        runs.push(t.elapsed().as_secs_f64() * 1000.0);
        size = body.len();
        assert!(expanded > 150);
    }
    println!(
        "ics: 2 rhythms in two zones + 100 single meetings over five years, with each zone's changes as VTIMEZONE, and both rhythms expanded for the five years: {:.2} ms (median of 21), {size} bytes",
        median(runs)
    );
}
