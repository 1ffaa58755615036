//! One store for a federation: two `cooper serve` processes on one Postgres share the job queue
//! (each job taken once, by one of them, under a lease in the store), sessions and what the job
//! pages show; one of them is killed (-9) while it holds a job and nothing is lost — the other
//! finishes the queue and marks the cut-off job interrupted, its cleanup run.

mod browser;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use browser::*;
use cooper_store::{Job, JobState, Store};

const PASSWORD: &str = "a long test password, not a real one";

#[test]
fn two_dashboards_on_one_postgres_share_the_work_and_survive_a_kill() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

/// Every job of the test, by id.
async fn all_jobs(store: &Store) -> BTreeMap<String, Job> {
    store
        .jobs(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.id.clone(), j))
        .collect()
}

/// Polls the store (bounded) until `ready` holds for the jobs; returns them.
async fn wait_jobs(
    store: &Store,
    within: Duration,
    what: &str,
    ready: impl Fn(&BTreeMap<String, Job>) -> bool,
) -> BTreeMap<String, Job> {
    let start = Instant::now();
    loop {
        let jobs = all_jobs(store).await;
        if ready(&jobs) {
            return jobs;
        }
        assert!(
            start.elapsed() < within,
            "{what}: not so within {} s; jobs: {:?}",
            within.as_secs(),
            jobs.values()
                .map(|j| (j.kind.as_str(), j.state, j.owner.as_deref()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The pid in a job owner (`<host>:<pid>:<nonce>:<space>`).
fn owner_pid(owner: &str) -> u32 {
    owner.split(':').nth(1).unwrap().parse().unwrap()
}

async fn run() {
    let (database, store) = match cooper_store::testing::postgres_database().await {
        Some(db) => db,
        None => {
            assert!(
                !cooper_store::testing::require_postgres(),
                "COOPER_TEST_POSTGRES is unset: run scripts/setup-postgres and export the URL it prints"
            );
            eprintln!("COOPER_TEST_POSTGRES unset outside CI: this test needs Postgres, skipped");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let abra = dir.path();
    std::fs::create_dir_all(abra.join("servers/default")).unwrap();
    cooper_testkit::recipe_repo(
        &abra.join("recipes/testapp"),
        &[(fixture("1.0.0+1.0"), "1.0.0+1.0")],
    )
    .unwrap();
    let domains: Vec<String> = (0..10).map(|i| format!("two-{i}.cooper.test")).collect();
    for d in &domains {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args([
                "app",
                "new",
                "testapp",
                "1.0.0+1.0",
                "-s",
                "default",
                "-D",
                d,
                "-n",
            ])
            .env("ABRA_DIR", abra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let hash = cooper_web::auth::hash_password(PASSWORD).unwrap();
    store
        .add_person("ada@example.org", "Ada", Some(&hash), true)
        .await
        .unwrap();

    let env = [("COOPER_DATABASE", database.as_str())];
    let mut a = serve_with(abra, &["--schedule-tick-ms", "0"], &env).await;
    let mut b = serve_with(abra, &["--schedule-tick-ms", "0"], &env).await;
    let pid_a = a.child.id().unwrap();
    let pid_b = b.child.id().unwrap();

    // A job that holds on: a backup of an app whose lock this test holds (it waits for it).
    let lock = cooper_ops::lock::AppLock::acquire(
        &abra.join("servers/default"),
        &domains[0],
        "held by the test",
        None,
    )
    .unwrap();
    let held = store
        .create_job("backup", &domains[0], "{}", "test")
        .await
        .unwrap();
    let jobs = wait_jobs(&store, Duration::from_secs(30), "the held job taken", |j| {
        j[&held.id].state == JobState::Running
    })
    .await;
    let holder = owner_pid(jobs[&held.id].owner.as_deref().unwrap());
    assert!(
        holder == pid_a || holder == pid_b,
        "{holder} is neither serve"
    );

    // A hundred short jobs on the other apps, taken by both.
    for i in 0..100 {
        store
            .create_job("upgrade-check", &domains[1 + i % 9], "{}", "test")
            .await
            .unwrap();
    }
    wait_jobs(
        &store,
        Duration::from_secs(120),
        "a fifth of the jobs done",
        |j| j.values().filter(|j| j.state.finished()).count() >= 20,
    )
    .await;

    // Kill the one that holds the held job, as a power cut would.
    let (victim, survivor) = if holder == pid_a {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    victim.child.start_kill().unwrap();
    victim.child.wait().await.unwrap();

    let jobs = wait_jobs(&store, Duration::from_secs(120), "every job final", |j| {
        j.values().all(|j| j.state.finished())
    })
    .await;
    assert_eq!(jobs.len(), 101);
    let cut = &jobs[&held.id];
    assert_eq!(cut.state, JobState::Interrupted, "{cut:?}");
    let lines = store.job_lines(&held.id, 0).await.unwrap();
    assert!(
        lines.iter().any(|l| l
            .line
            .contains("interrupted: cooper serve stopped while this backup ran (process")),
        "{lines:?}"
    );
    for j in jobs.values() {
        assert_eq!(j.attempts, 1, "each job is taken once: {j:?}");
        assert!(
            matches!(
                j.state,
                JobState::Succeeded | JobState::Failed | JobState::Interrupted
            ),
            "{j:?}"
        );
        if j.id != held.id && j.state == JobState::Interrupted {
            assert_eq!(
                owner_pid(j.owner.as_deref().unwrap()),
                victim.child.id().unwrap_or(holder),
                "only the killed one's jobs are cut off: {j:?}"
            );
        }
    }
    let owners: BTreeSet<u32> = jobs
        .values()
        .filter_map(|j| j.owner.as_deref().map(owner_pid))
        .collect();
    assert_eq!(
        owners,
        BTreeSet::from([pid_a, pid_b]),
        "both processes took jobs"
    );
    drop(lock);

    // Sessions and pages are shared: logged in on the survivor, a page of a job the killed one
    // ran shows its end there too, and a queued job of either is seen by both.
    let driver = chromedriver().await;
    let c = browser(&driver).await;
    let base = survivor.base.clone();
    c.goto(&format!("{base}/login")).await.unwrap();
    fill(&c, "#email", "ada@example.org").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "form[action='/login'] button[type=submit]").await;
    wait_text(&c, "h1", "Instances", Duration::from_secs(20)).await;
    c.goto(&format!("{base}/jobs/{}", held.id)).await.unwrap();
    let outcome = wait_text(&c, "#job-outcome", "interrupted", Duration::from_secs(10)).await;
    assert!(outcome.contains("interrupted"), "{outcome}");
    shot(&c, "two-serves-interrupted-job").await;

    // A second survivor joins the same store; the browser's session is good there too.
    let third = serve_with(abra, &["--schedule-tick-ms", "0"], &env).await;
    c.goto(&format!("{}/", third.base)).await.unwrap();
    wait_text(&c, "h1", "Instances", Duration::from_secs(20)).await;
    drop(third);
    let _ = survivor.child.start_kill();
}
