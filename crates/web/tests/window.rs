//! Consent and the maintenance window on the real Swarm with real restic: the community's
//! admin agrees on the instance's page to the offered release; the window's run, queued by the
//! scheduler's tick with a controllable clock, rehearses the upgrade on a restored copy and
//! upgrades production, and the agreement is settled as applied. Before that: a run with
//! nothing agreed does nothing, and a run outside the window leaves the agreement waiting —
//! an instance is never upgraded at an hour its community did not agree to.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use cooper_ops::{Collect, DeployKind, DeployRequest};
use cooper_recipe::abra_dir::AbraDir;
use cooper_store::schedules::{Cadence, DAY, MINUTE};
use cooper_store::{JobState, Store};
use cooper_web::{Config, Inner};
use support::{Client, PASSWORD};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/apptest")
        .join(path)
}

/// Ticks with the clock at `now` and waits for the window job it queued to finish.
async fn window_run(store: &Store, state: &cooper_web::AppState, now: i64) -> cooper_store::Job {
    let t = store.tick(now, "test", "scheduler", "{}").await.unwrap();
    let (_, _, id) = t
        .queued
        .iter()
        .find(|(_, k, _)| k == "upgrade-window")
        .cloned()
        .unwrap_or_else(|| panic!("the window's run was queued: {t:?}"));
    state.jobs.wake();
    let start = Instant::now();
    loop {
        let j = store.job(&id).await.unwrap().unwrap();
        if matches!(
            j.state,
            JobState::Succeeded | JobState::Failed | JobState::Interrupted
        ) {
            return j;
        }
        assert!(
            start.elapsed() < Duration::from_secs(400),
            "the window's run did not finish: {j:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The community's admin agrees to a release on the instance's page.
async fn agree(web: &mut Client, domain: &str, version: &str) -> support::Page {
    web.submit(
        &format!("/instances/{domain}/consent"),
        &[("version", version), ("action", "agree")],
    )
    .await
}

async fn set_window(store: &Store, domain: &str, c: Cadence, now: i64) {
    store
        .set_schedule(domain, "upgrade-window", c, true, now)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agreed_upgrade_is_applied_in_the_window_only() {
    let d = cooper_testkit::local_docker().await.unwrap();
    cooper_testkit::ensure_images(&d, &["cooper-test/web:1.0"])
        .await
        .unwrap();
    cooper_testkit::ensure_restic_image(&d).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let abra = AbraDir::new(dir.path());
    std::fs::create_dir_all(abra.servers_dir().join("default")).unwrap();
    cooper_testkit::recipe_repo(
        &abra.recipes_dir().join("lifeapp"),
        &[
            (fixture("lifeapp/1.0.0+1.0"), "1.0.0+1.0"),
            (fixture("lifeapp/1.1.0+1.1"), "1.1.0+1.1"),
        ],
    )
    .unwrap();
    cooper_testkit::backup_settings(dir.path(), "default", &dir.path().join("repo")).unwrap();
    let domain = format!("t-window-{}.cooper.test", std::process::id());
    let stack = domain.replace('.', "_");
    cooper_testkit::scrub_stack(&stack);
    struct Scrub(String);
    impl Drop for Scrub {
        fn drop(&mut self) {
            cooper_testkit::scrub_stack(&self.0);
        }
    }
    let _scrub = Scrub(stack.clone());
    std::fs::write(
        abra.servers_dir()
            .join("default")
            .join(format!("{domain}.env")),
        format!("TYPE=lifeapp:1.0.0+1.0\nDOMAIN={domain}\nDB_PASSWORD=prod-db-password\n"),
    )
    .unwrap();
    cooper_ops::deploy(
        &abra,
        &DeployRequest::new(&domain, DeployKind::Deploy),
        &mut Collect::default(),
    )
    .await
    .unwrap();
    cooper_testkit::sh_in(&format!("{stack}_app"), "echo precious > /data/precious");

    // The dashboard, in-process, on the real engine; the community and its admin.
    let (_store_dir, store) = cooper_store::testing::sqlite().await;
    let config = Config {
        login_per_minute: 1000,
        probe_image: "cooper-test/web:1.0".into(),
        ..Config::default()
    };
    let state = Inner::new(store.clone(), abra.clone(), config);
    state.jobs.start(1);
    let hash = cooper_web::auth::hash_password(PASSWORD).unwrap();
    let carla = store
        .add_person("carla@radio.example.org", "Carla", Some(&hash), false)
        .await
        .unwrap();
    let coop = store.add_coop("Test Co-op").await.unwrap();
    let community = store
        .add_community("Radio Collective", &coop.id)
        .await
        .unwrap();
    store.set_server_owner("default", &coop.id).await.unwrap();
    store
        .set_instance_owner(&domain, &community.id)
        .await
        .unwrap();
    store
        .add_membership(&carla.id, "community", &community.id, "admin")
        .await
        .unwrap();
    let router = cooper_web::app(state.clone());
    let mut web = Client::new(&router);
    web.login("carla@radio.example.org").await;

    // Nothing agreed: the window's run does nothing.
    let now = cooper_store::now_ms();
    let always = Cadence {
        every_ms: MINUTE,
        window_start_ms: 0,
        window_ms: MINUTE,
    };
    set_window(&store, &domain, always, now).await;
    let j = window_run(&store, &state, now + 2 * MINUTE).await;
    assert_eq!(j.state, JobState::Succeeded, "{j:?}");
    assert!(
        j.outcome
            .as_deref()
            .unwrap_or("")
            .contains("no upgrade is agreed"),
        "{j:?}"
    );

    // The community agrees on the page.
    let page = web.get(&format!("/instances/{domain}")).await;
    assert!(
        page.body.contains("Agree to the upgrade to 1.1.0+1.1"),
        "the offer and the form: {}",
        page.body
    );
    let wrong = agree(&mut web, &domain, "9.9.9+9").await;
    assert_eq!(wrong.status, StatusCode::CONFLICT);
    assert!(wrong.body.contains("1.1.0+1.1 is"), "{}", wrong.body);
    let agreed = agree(&mut web, &domain, "1.1.0+1.1").await;
    assert_eq!(agreed.status, StatusCode::SEE_OTHER, "{}", agreed.body);
    let page = web.get(&format!("/instances/{domain}")).await;
    assert!(
        page.body.contains("carla@radio.example.org agreed on")
            && page.body.contains("Withdraw our agreement to 1.1.0+1.1"),
        "{}",
        page.body
    );

    // Outside the window (a 1 ms window twelve hours away): the agreement waits.
    let real = cooper_store::now_ms();
    let far = Cadence {
        every_ms: DAY,
        window_start_ms: (real + DAY / 2).rem_euclid(DAY),
        window_ms: 1,
    };
    set_window(&store, &domain, far, real).await;
    let due = store
        .schedules(Some(&domain))
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.kind == "upgrade-window")
        .unwrap()
        .next_due;
    let j = window_run(&store, &state, due + 1).await;
    assert_eq!(j.state, JobState::Succeeded, "{j:?}");
    assert!(
        j.outcome
            .as_deref()
            .unwrap_or("")
            .contains("outside the maintenance window"),
        "{j:?}"
    );
    assert_eq!(
        store
            .waiting_consent(&domain)
            .await
            .unwrap()
            .map(|c| c.version),
        Some("1.1.0+1.1".into()),
        "still waiting"
    );
    assert_eq!(running(&abra, &stack).await.as_deref(), Some("1.0.0+1.0"));

    // In the window, but the database has nothing to dump yet, so the verified backup the
    // rehearsal starts with fails: nothing changes, and the agreement is settled as failed.
    let real = cooper_store::now_ms();
    set_window(&store, &domain, always, real).await;
    let j = window_run(&store, &state, real + 2 * MINUTE).await;
    assert_eq!(j.state, JobState::Failed, "{j:?}");
    assert!(
        j.outcome
            .as_deref()
            .unwrap_or("")
            .contains("production still runs 1.0.0+1.0"),
        "{j:?}"
    );
    assert_eq!(store.consents(&domain).await.unwrap()[0].state, "failed");
    assert_eq!(running(&abra, &stack).await.as_deref(), Some("1.0.0+1.0"));
    let page = web.get(&format!("/instances/{domain}")).await;
    assert!(
        page.body.contains("did not pass in the maintenance window")
            && page.body.contains("Agree to the upgrade to 1.1.0+1.1"),
        "the failure said, and agreeing again offered: {}",
        page.body
    );

    // Mended, agreed again: rehearsed on a copy, then production upgraded; applied.
    cooper_testkit::sh_in(
        &format!("{stack}_db"),
        "echo 'production rows' > /var/lib/db/live.db",
    );
    let agreed = agree(&mut web, &domain, "1.1.0+1.1").await;
    assert_eq!(agreed.status, StatusCode::SEE_OTHER, "{}", agreed.body);
    let real = cooper_store::now_ms();
    let j = window_run(&store, &state, real + 4 * MINUTE).await;
    let outcome = j.outcome.clone().unwrap_or_default();
    let lines: Vec<String> = store
        .job_lines(&j.id, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect();
    assert_eq!(
        j.state,
        JobState::Succeeded,
        "{outcome}\n{}",
        lines.join("\n")
    );
    assert!(
        outcome.contains("rehearsed on") && outcome.contains("1.0.0+1.0 → 1.1.0+1.1"),
        "{outcome}"
    );
    assert!(
        outcome.contains("agreed by carla@radio.example.org"),
        "{outcome}"
    );
    assert_eq!(running(&abra, &stack).await.as_deref(), Some("1.1.0+1.1"));
    assert_eq!(
        cooper_testkit::sh_in(&format!("{stack}_app"), "cat /data/precious").trim(),
        "precious",
        "the data came through the upgrade"
    );
    let c = &store.consents(&domain).await.unwrap()[0];
    assert_eq!(
        (c.state.as_str(), c.job.as_deref()),
        ("applied", Some(j.id.as_str()))
    );
    let page = web.get(&format!("/instances/{domain}")).await;
    assert!(
        page.body
            .contains("1.1.0+1.1 was applied in the maintenance window"),
        "{}",
        page.body
    );
    // Nothing left on offer: nothing to agree to.
    let again = agree(&mut web, &domain, "1.1.0+1.1").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
}

async fn running(abra: &AbraDir, stack: &str) -> Option<String> {
    let engine = cooper_ops::connect(abra, "default").await.unwrap();
    cooper_ops::deploy::deployed_version(&engine, stack)
        .await
        .unwrap()
        .map(|(v, _)| v)
}
