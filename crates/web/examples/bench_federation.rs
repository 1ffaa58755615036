//! Benchmark of the federation's pages (issue 15) through the real router: a poll of 200
//! people × 7 days × 48 half-hour slots (its page: the grid in another timezone, the heatmap,
//! the best times) and the public ICS feed of a 20-member federation over five years (two
//! rhythms in two zones, 100 single meetings). Each beside its floor in the same run: the
//! store reads the page needs, alone. Prints Markdown rows for BENCHMARKS.md. Run by
//! `scripts/bench-federation`.
//!
//! `bench_federation [--postgres] [--runs R]`

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use chrono::{NaiveDate, NaiveTime};
use cooper_federation::meetings::{self, Rhythm};
use cooper_federation::poll::Shape;
use http_body_util::BodyExt;
use tower::ServiceExt;

fn spread(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    (
        ms(d[d.len() / 2]),
        ms(d[(d.len() * 9 / 10).min(d.len() - 1)]),
    )
}

async fn timed<F: std::future::Future<Output = anyhow::Result<()>>>(
    runs: usize,
    mut f: impl FnMut() -> F,
) -> anyhow::Result<(f64, f64)> {
    let mut d = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await?;
        d.push(t.elapsed());
    }
    Ok(spread(d))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(30usize);
    let dir = tempfile::tempdir()?;
    let (store, backend) = if args.iter().any(|a| a == "--postgres") {
        (
            cooper_store::testing::postgres()
                .await
                .ok_or_else(|| anyhow::anyhow!("--postgres needs COOPER_TEST_POSTGRES"))?,
            "Postgres",
        )
    } else {
        (
            cooper_store::Store::open(&format!(
                "sqlite://{}",
                dir.path().join("bench.db").display()
            ))
            .await?,
            "SQLite",
        )
    };

    // The poll: 200 people, each free in a pseudo-random third of the slots.
    let shape = Shape::new(
        meetings::timezone("Europe/Berlin")?,
        (0..7)
            .map(|d| NaiveDate::from_ymd_opt(2027, 5, 3 + d).expect("a day"))
            .collect(),
        false,
        NaiveTime::MIN,
        NaiveTime::MIN,
        30,
    )?;
    let id = store
        .create_poll("Strategy day", &shape, 120, "bench")
        .await?;
    let poll = store.poll(&id).await?.expect("the poll");
    let slots = shape.slots().len();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for p in 0..200 {
        let me = store
            .join_poll(&id, &format!("Person {p}"), None, "UTC")
            .await?;
        let free: Vec<usize> = (0..slots)
            .filter(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.is_multiple_of(3)
            })
            .collect();
        store.paint(&poll, &me.id, &free, &[]).await?;
    }

    // The federation: 20 members, two rhythms, 100 single meetings over five years.
    for m in 0..20 {
        store
            .add_fed_member(
                &format!("Co-op {m:02}"),
                "founding",
                time::macros::date!(2023 - 03 - 03),
                "",
                None,
            )
            .await?;
    }
    let monthly = Rhythm::new(
        "FREQ=MONTHLY;BYDAY=1WE",
        meetings::wall_clock("2027-01-06 15:00")?,
        meetings::timezone("Europe/Berlin")?,
        90,
        (2027..2032)
            .map(|y| NaiveDate::from_ymd_opt(y, 8, 4).expect("a day"))
            .collect(),
    )?;
    let fortnightly = Rhythm::new(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
        meetings::wall_clock("2027-01-12 11:30")?,
        meetings::timezone("America/New_York")?,
        60,
        vec![],
    )?;
    store
        .add_meeting_series("Federation meeting", &monthly, &[])
        .await?;
    store
        .add_meeting_series("Americas call", &fortnightly, &[])
        .await?;
    let start = cooper_store::now_ms();
    for i in 0..100 {
        store
            .add_meeting(
                &format!("Working group {i}"),
                start + i * 18 * 86_400_000,
                60,
            )
            .await?;
    }

    let state = cooper_web::Inner::new(
        store.clone(),
        cooper_recipe::abra_dir::AbraDir::new(dir.path()),
        cooper_web::Config {
            insecure_http: true,
            ..Default::default()
        },
    );
    let router = cooper_web::app(state);
    let get = |path: String| {
        let router = router.clone();
        async move {
            let res = router
                .oneshot(Request::get(&path).body(Body::empty())?)
                .await?;
            anyhow::ensure!(res.status().is_success(), "{path}: {}", res.status());
            let body = res.into_body().collect().await?.to_bytes();
            anyhow::Ok(body.len())
        }
    };
    let poll_path = format!("/polls/{id}?tz=America/New_York");
    let size = get(poll_path.clone()).await?;
    let (p50, p90) = timed(runs, || async { get(poll_path.clone()).await.map(|_| ()) }).await?;
    let (floor, _) = timed(runs, || async {
        store.poll(&id).await?;
        store.poll_marks(&id).await?;
        anyhow::Ok(())
    })
    .await?;
    println!(
        "| {backend} | a poll's page: 200 people × {slots} slots, the grid in another zone, heatmap, best times ({} KiB) | {p50:.1} ms | {p90:.1} ms | the store reads alone {floor:.1} ms ({:.2}×) |",
        size / 1024,
        p50 / floor
    );
    let feed = "/federation/calendar.ics".to_string();
    let size = get(feed.clone()).await?;
    let (p50, p90) = timed(runs, || async { get(feed.clone()).await.map(|_| ()) }).await?;
    let (floor, _) = timed(runs, || async {
        store.meeting_series().await?;
        store.meetings(0, i64::MAX / 2).await?;
        anyhow::Ok(())
    })
    .await?;
    println!(
        "| {backend} | the public ICS feed: 2 rhythms in two zones, 100 single meetings, five years ({} KiB) | {p50:.1} ms | {p90:.1} ms | the store reads alone {floor:.1} ms ({:.2}×) |",
        size / 1024,
        p50 / floor
    );
    Ok(())
}
