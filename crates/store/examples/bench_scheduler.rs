//! The scheduler with 1,000 instances (4 schedules each): how long one tick's planning takes
//! when nothing is due and when the night's backups fall due, and how the backups spread over
//! their window (a histogram in 15-minute buckets). SQLite by default; Postgres when
//! `COOPER_TEST_POSTGRES` is set. Run by `scripts/bench-scheduler`.

use std::time::Instant;

use cooper_store::schedules::{default_cadence, jitter, next_slot, DAY, HOUR, KINDS, MINUTE};
use cooper_store::testing;

const INSTANCES: usize = 1000;

#[tokio::main]
async fn main() {
    let mut stores = Vec::new();
    let (_dir, sqlite) = testing::sqlite().await;
    stores.push(("SQLite", sqlite));
    if let Some(pg) = testing::postgres().await {
        stores.push(("Postgres", pg));
    }
    let t0 = 100 * DAY;
    for (name, store) in &stores {
        for i in 0..INSTANCES {
            let d = format!("app{i:04}.example.org");
            for k in KINDS {
                store
                    .set_schedule(&d, k, default_cadence(k).unwrap(), true, t0)
                    .await
                    .unwrap();
            }
        }
        // Warm up, then time ticks where nothing is due (the common case: every 30 s).
        store.tick(t0, "bench", "scheduler", "{}").await.unwrap();
        let mut idle = Vec::new();
        for n in 0..20 {
            let at = Instant::now();
            let t = store
                .tick(t0 + n * MINUTE / 60, "bench", "scheduler", "{}")
                .await
                .unwrap();
            assert!(t.queued.is_empty());
            idle.push(at.elapsed().as_secs_f64() * 1000.0);
        }
        idle.sort_by(f64::total_cmp);
        // A tick after the whole backup window: all 1,000 backups queued at once (the worst
        // case, cooper having been stopped through the night).
        let at = Instant::now();
        let t = store
            .tick(t0 + 5 * HOUR + MINUTE, "bench", "scheduler", "{}")
            .await
            .unwrap();
        let burst = at.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{name}: {} schedules; idle tick median {:.1} ms, max {:.1} ms; tick queuing {} backups {:.0} ms",
            INSTANCES * KINDS.len(),
            idle[idle.len() / 2],
            idle[idle.len() - 1],
            t.queued.len(),
            burst
        );
    }
    // Where the backups fall inside 01:00–05:00 UTC (the same for every store: the jitter is
    // a hash of the domain).
    let c = default_cadence("backup").unwrap();
    let mut buckets = vec![0usize; (c.window_ms / (15 * MINUTE)) as usize];
    for i in 0..INSTANCES {
        let d = format!("app{i:04}.example.org");
        let s = next_slot(t0, &c, jitter(&d, "backup", c.window_ms));
        let into = (s - t0 - c.window_start_ms) / (15 * MINUTE);
        buckets[into as usize] += 1;
    }
    println!("backups per 15 minutes from 01:00 UTC:");
    for (i, n) in buckets.iter().enumerate() {
        let m = 60 + i as i64 * 15;
        println!(
            "  {:02}:{:02} {:>4} {}",
            m / 60,
            m % 60,
            n,
            "#".repeat(n / 2)
        );
    }
    let most = buckets.iter().max().unwrap();
    println!(
        "busiest second: at most {} backups start in the same second",
        max_same_second(&c)
    );
    println!(
        "busiest 15 minutes: {most} (even spread: {})",
        INSTANCES / buckets.len()
    );
}

fn max_same_second(c: &cooper_store::Cadence) -> usize {
    let mut seconds = std::collections::HashMap::new();
    for i in 0..INSTANCES {
        let d = format!("app{i:04}.example.org");
        *seconds
            .entry(jitter(&d, "backup", c.window_ms) / 1000)
            .or_insert(0usize) += 1;
    }
    seconds.values().copied().max().unwrap_or(0)
}
