//! Benchmark of the books (issue 14): a year of a 50-community co-op (100,000 entries) in the
//! store; settling a month, a community's transparency page (through the real router, logged
//! in), and importing a 10,000-line Open Collective export — each beside its honest floor in
//! the same run (the store read alone; the raw CSV parse). Prints Markdown rows for
//! BENCHMARKS.md. Run by `scripts/bench-ledger`.
//!
//! `bench_ledger [--postgres] [--entries N] [--communities C] [--runs R]` (`--postgres`: a
//! fresh database on the server of `COOPER_TEST_POSTGRES`)

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request};
use cooper_ledger::import::{self, Format, Imported};
use cooper_ledger::{Currency, Entry, Instance, Kind, Period, Recurs, Ref, Status};
use http_body_util::BodyExt;
use tower::ServiceExt;

const OC: &str = include_str!("../../ledger/tests/fixtures/opencollective-transactions.csv");

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn number(name: &str, default: usize) -> anyhow::Result<usize> {
    Ok(arg(name).map(|s| s.parse()).transpose()?.unwrap_or(default))
}

/// Median and 90th percentile, in milliseconds.
fn spread(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    (
        ms(d[d.len() / 2]),
        ms(d[(d.len() * 9 / 10).min(d.len() - 1)]),
    )
}

async fn timed<T, F: std::future::Future<Output = anyhow::Result<T>>>(
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

fn entry(kind: Kind, date: time::Date, amount: i64, party: Ref, target: Ref) -> Entry {
    Entry {
        id: String::new(),
        kind,
        date,
        amount,
        currency: Currency::EUR,
        party,
        target,
        category: if kind == Kind::Cost {
            "server".into()
        } else {
            String::new()
        },
        status: Status::Received,
        recurs: Recurs::Once,
        minutes: 0,
        until: None,
        note: String::new(),
        corrects: None,
    }
}

/// A year of a co-op: per month, every community's contribution, people's donations, server
/// invoices and other costs, hours on instances, payouts.
fn year(months: &[Period], per_month: usize, communities: usize, servers: usize) -> Vec<Imported> {
    let mut out = Vec::new();
    for (m, p) in months.iter().enumerate() {
        let first = p.first_day();
        let day = |i: usize| {
            first
                .replace_day(1 + (i % 28) as u8)
                .expect("a day of the month")
        };
        let mut n = 0;
        let mut push = |e: Entry| {
            out.push(Imported {
                line: n + 2,
                key: format!("bench:{m}:{n}"),
                entry: e,
            });
            n += 1;
        };
        for c in 0..communities {
            push(entry(
                Kind::Contribution,
                day(c),
                20_000 + 500 * c as i64,
                Ref::Community(format!("community {c:02}")),
                Ref::Shared,
            ));
        }
        for s in 0..servers {
            push(entry(
                Kind::Cost,
                day(s),
                12_000,
                Ref::External("Hetzner".into()),
                Ref::Server(format!("server-{s}")),
            ));
        }
        let rest = per_month.saturating_sub(communities + servers);
        for i in 0..rest {
            match i % 10 {
                0..=5 => {
                    let mut e = entry(
                        Kind::Labour,
                        day(i),
                        0,
                        Ref::Person(format!("person{:02}@coop.example", i % 20)),
                        Ref::Instance(format!("app{:02}.example.org", i % communities)),
                    );
                    e.minutes = 15 + (i % 8) as i64 * 15;
                    push(e);
                }
                6..=8 => push(entry(
                    Kind::Contribution,
                    day(i),
                    500 + (i % 40) as i64 * 25,
                    Ref::Person(format!("donor{:04}@example.org", i % 3000)),
                    Ref::Shared,
                )),
                _ => {
                    let mut e = entry(
                        Kind::Cost,
                        day(i),
                        150 + (i % 30) as i64,
                        Ref::External("Stripe".into()),
                        Ref::Shared,
                    );
                    e.category = "fees".into();
                    push(e);
                }
            }
        }
    }
    out
}

/// Open Collective's export, `copies` times over with fresh ids: `copies × 10` lines.
fn oc_export(copies: usize) -> String {
    let mut lines = OC.lines();
    let header = lines.next().expect("a header");
    let rows: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let ids = [
        "a1b2c3d4", "a1b2c3d5", "b2c3d4e5", "b2c3d4e6", "c3d4e5f6", "d4e5f6a7", "e5f6a7b8",
        "f6a7b8c9", "a7b8c9d0", "b8c9d0e1",
    ];
    let mut out = String::from(header);
    out.push('\n');
    for k in 0..copies {
        for r in &rows {
            let mut line = r.to_string();
            for id in ids {
                line = line.replace(&format!("\"{id}\""), &format!("\"{id}-{k}\""));
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total = number("--entries", 100_000)?;
    let communities = number("--communities", 50)?;
    let runs = number("--runs", 30)?;
    let servers = 5;
    let dir = tempfile::tempdir()?;
    let postgres = std::env::args().any(|a| a == "--postgres");
    let (store, backend) = match postgres {
        // A fresh database of its own on the server of COOPER_TEST_POSTGRES.
        true => (
            cooper_store::testing::postgres()
                .await
                .ok_or_else(|| anyhow::anyhow!("--postgres needs COOPER_TEST_POSTGRES"))?,
            "Postgres",
        ),
        false => (
            cooper_store::Store::open(&format!(
                "sqlite://{}",
                dir.path().join("bench.db").display()
            ))
            .await?,
            "SQLite",
        ),
    };
    let stamp = std::process::id();
    let coop = store.add_coop(&format!("bench co-op {stamp}")).await?.id;
    let mut community_ids = Vec::new();
    for c in 0..communities {
        community_ids.push(
            store
                .add_community(&format!("community {c:02}"), &coop)
                .await?
                .id,
        );
    }
    let instances: Vec<Instance> = (0..communities)
        .map(|c| Instance {
            domain: format!("app{c:02}.example.org"),
            server: format!("server-{}", c % servers),
            community: Some(format!("community {c:02}")),
            cpu: 0,
            memory: 0,
            disk: 0,
        })
        .collect();
    let mut months = vec![Period::of(time::macros::date!(2025 - 12 - 01))];
    while months.len() < 12 {
        let next = months.last().expect("a month").next();
        months.push(next);
    }
    let lines = year(&months, total / months.len(), communities, servers);
    let t = Instant::now();
    let loaded = store
        .import_entries(&coop, "bench", &lines, "bench")
        .await?;
    let load = t.elapsed();
    println!(
        "# {backend}: {} entries in {} months, {communities} communities, loaded in {:.2} s",
        loaded.added,
        months.len(),
        load.as_secs_f64()
    );
    let rule = cooper_ledger::Rule::default_for(Currency::EUR);
    let settle = |period: Period| {
        let (store, coop, rule, instances) = (&store, &coop, &rule, &instances);
        async move {
            let entries = store.entries_to_settle(coop, period).await?;
            let carry_in = store.carry_in(coop, period).await?;
            let s = cooper_ledger::settle(&cooper_ledger::Input {
                period,
                rule,
                entries: &entries,
                carry_in,
                rates: &[],
                instances,
            })?;
            anyhow::Ok(s)
        }
    };

    // Close every month but the last, in order (the transparency page reads records).
    for p in &months[..months.len() - 1] {
        let s = settle(*p).await?;
        store
            .close_period(&coop, &s, "t@coop.example", "treasurer")
            .await?;
        store
            .close_period(&coop, &s, "o@coop.example", "operator")
            .await?;
    }
    let open = *months.last().expect("a month");
    let per_month = store.entries(&coop, Some(open)).await?.len();
    let (settle_p50, settle_p90) = timed(runs, || async { settle(open).await.map(|_| ()) }).await?;
    let (read_p50, _) = timed(runs, || async {
        store.entries_to_settle(&coop, open).await?;
        anyhow::Ok(())
    })
    .await?;
    let entries = store.entries_to_settle(&coop, open).await?;
    let (pure_p50, _) = timed(runs, || async {
        cooper_ledger::settle(&cooper_ledger::Input {
            period: open,
            rule: &rule,
            entries: &entries,
            carry_in: 0,
            rates: &[],
            instances: &instances,
        })?;
        anyhow::Ok(())
    })
    .await?;
    println!(
        "| {backend} | settle a month ({per_month} entries): store read + arithmetic | {settle_p50:.1} ms | {settle_p90:.1} ms | floor: the store read alone {read_p50:.1} ms ({:.2}×); the arithmetic alone {pure_p50:.1} ms |",
        settle_p50 / read_p50
    );

    // The transparency page, logged in as a member, through the router.
    let abra = cooper_recipe::abra_dir::AbraDir::new(dir.path());
    let state = cooper_web::Inner::new(
        store.clone(),
        abra,
        cooper_web::Config {
            insecure_http: true,
            login_per_minute: 1000,
            ..Default::default()
        },
    );
    let hash = cooper_web::auth::hash_password("benchmark password")?;
    let email = format!("member{stamp}@example.org");
    let member = store
        .add_person(&email, "Member", Some(&hash), false)
        .await?;
    store
        .add_membership(&member.id, "community", &community_ids[0], "member")
        .await?;
    let router = cooper_web::app(state.clone());
    let cookie = common::login(&router, &email, "benchmark password").await?;
    let path = format!("/books/communities/{}", community_ids[0]);
    let get = || {
        let (router, cookie, path) = (router.clone(), cookie.clone(), path.clone());
        async move {
            let res = router
                .oneshot(
                    Request::get(&path)
                        .header(header::COOKIE, &cookie)
                        .body(Body::empty())?,
                )
                .await?;
            anyhow::ensure!(res.status().is_success(), "{path}: {}", res.status());
            let body = res.into_body().collect().await?.to_bytes();
            anyhow::Ok(body.len())
        }
    };
    let size = get().await?;
    let (page_p50, page_p90) = timed(runs, || async { get().await.map(|_| ()) }).await?;
    let (rows_p50, _) = timed(runs, || async {
        store.settlements(&coop).await?;
        anyhow::Ok(())
    })
    .await?;
    println!(
        "| {backend} | transparency page ({} KiB, {} closed months) | {page_p50:.1} ms | {page_p90:.1} ms | floor: reading the settlements alone {rows_p50:.1} ms ({:.2}×) |",
        size / 1024,
        months.len() - 1,
        page_p50 / rows_p50
    );

    // A 10,000-line Open Collective export into another co-op: all of it, then again.
    let text = oc_export(1000);
    let target = store.add_coop(&format!("import co-op {stamp}")).await?.id;
    let parties = |slug: &str, _: &str| match slug {
        "riseup-community" => Some(Ref::Community("community 00".into())),
        "garden-collective" => Some(Ref::Community("community 01".into())),
        _ => None,
    };
    let t = Instant::now();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let raw = rdr.records().count();
    let raw_parse = t.elapsed();
    let t = Instant::now();
    let file = import::read(&text, Format::OpenCollective, "export.csv", &parties)?;
    let parse = t.elapsed();
    let stored = store
        .import_entries(&target, "export.csv", &file.entries, "bench")
        .await?;
    let first = t.elapsed();
    let t = Instant::now();
    let file = import::read(&text, Format::OpenCollective, "export.csv", &parties)?;
    let again = store
        .import_entries(&target, "export.csv", &file.entries, "bench")
        .await?;
    let second = t.elapsed();
    anyhow::ensure!(again.added == 0, "a second import added {}", again.added);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {backend} | import a {raw}-line Open Collective export ({} entries) | {:.0} ms (read {:.0} ms) | again: {:.0} ms, {} added | floor: the raw CSV parse {:.1} ms ({:.1}× for the read) |",
        stored.added,
        ms(first),
        ms(parse),
        ms(second),
        again.added,
        ms(raw_parse),
        ms(parse) / ms(raw_parse)
    );
    Ok(())
}
