//! `cooper serve` as people use it: the real binary, the real local Swarm, a real Chromium
//! over WebDriver. A newcomer sets up the first account with the printed setup token, sees the
//! app deployed by the CLI, upgrades it and watches the job live, finds the audit entry; every
//! page is checked by axe-core (no serious or critical violations), the login and an action are
//! done by keyboard alone, the list is usable on a phone; then `cooper serve` is killed in the
//! middle of a job and the next start marks that job interrupted and cleans up. Screenshots of
//! each step are kept under `target/dashboard-screenshots/`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::Locator;

mod browser;
use browser::*;

const PASSWORD: &str = "correct horse battery staple";

async fn job_state(store: &cooper_store::Store, id: &str) -> cooper_store::JobState {
    store.job(id).await.unwrap().unwrap().state
}

#[test]
fn a_newcomer_upgrades_an_app_from_the_dashboard() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let docker = cooper_testkit::local_docker().await.unwrap();
    cooper_testkit::ensure_images(&docker, &["cooper-test/web:1.0", "cooper-test/web:1.1"])
        .await
        .unwrap();
    cooper_testkit::ensure_restic_image(&docker).await.unwrap();
    let axe_js = axe_js();

    let dir = tempfile::tempdir().unwrap();
    let abra = dir.path();
    std::fs::create_dir_all(abra.join("servers/default")).unwrap();
    cooper_testkit::recipe_repo(
        &abra.join("recipes/testapp"),
        &[
            (fixture("1.0.0+1.0"), "1.0.0+1.0"),
            (fixture("1.1.0+1.1"), "1.1.0+1.1"),
        ],
    )
    .unwrap();
    let repo = tempfile::tempdir().unwrap();
    cooper_testkit::backup_settings(abra, "default", &repo.path().join("restic")).unwrap();
    let domain = "t-dash.cooper.test".to_string();
    let stack = domain.replace('.', "_");
    cooper_testkit::scrub_stack(&stack);
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args(args)
            .env("ABRA_DIR", abra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "cooper {args:?}: {text}");
        text
    };
    cli(&[
        "app",
        "new",
        "testapp",
        "1.0.0+1.0",
        "-s",
        "default",
        "-D",
        &domain,
        "-n",
    ]);
    cli(&["app", "secret", "generate", &domain, "--all"]);
    cli(&["app", "deploy", &domain, "-n"]);

    let mut server = serve_with(abra, &["--schedule-tick-ms", "500"], &[]).await;
    let token = server
        .token
        .clone()
        .unwrap_or_else(|| panic!("a setup token on first start: {:?}", server.lines));
    let base = server.base.clone();
    assert!(base.starts_with("http://localhost:"), "{base}");

    let driver = chromedriver().await;
    let c = browser(&driver).await;
    let mut violations = Vec::new();

    // The newcomer: setup token → first admin → the instance list with the app live.
    c.goto(&format!("{base}/setup")).await.unwrap();
    violations.extend(
        axe(&c, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("/setup: {v}")),
    );
    fill(&c, "#token", &token).await;
    fill(&c, "#name", "Ada Admin").await;
    fill(&c, "#email", "ada@example.org").await;
    fill(&c, "#password", PASSWORD).await;
    shot(&c, "01-setup").await;
    click(&c, "form[action='/setup'] button[type=submit]").await;
    let row = wait_text(&c, "table.list tbody", &domain, Duration::from_secs(20)).await;
    assert!(
        row.contains("deployed 2/2"),
        "the app runs, as the CLI left it: {row}"
    );
    assert!(
        row.contains("1.0.0+1.0") && row.contains("1.1.0+1.1"),
        "version and upgrade: {row}"
    );
    shot(&c, "02-instances").await;
    violations.extend(
        axe(&c, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("/instances: {v}")),
    );

    // The instance page, then an upgrade confirmed with its release notes.
    click(&c, &format!("a[href='/instances/{domain}']")).await;
    wait_text(&c, "#state", "deployed 2/2", Duration::from_secs(10)).await;
    shot(&c, "03-instance").await;
    violations.extend(
        axe(&c, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("instance: {v}")),
    );
    click(
        &c,
        &format!("a[href='/instances/{domain}/confirm?kind=upgrade']"),
    )
    .await;
    let main = wait_text(&c, "main", "1.1.0+1.1", Duration::from_secs(10)).await;
    assert!(
        main.contains("Moves the web image to 1.1."),
        "release notes shown: {main}"
    );
    violations.extend(
        axe(&c, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("confirm: {v}")),
    );
    shot(&c, "04-confirm").await;
    click(&c, "#go").await;

    // The job page: lines arrive while it runs (Server-Sent Events), then the result.
    wait_text(&c, "h1", "upgrade of", Duration::from_secs(10)).await;
    let job_url = c.current_url().await.unwrap().to_string();
    let job_id = job_url.rsplit('/').next().unwrap().to_string();
    let store = cooper_store::Store::open_default(abra).await.unwrap();
    let start = Instant::now();
    let mut saw_live = false;
    let mut first_count = None;
    loop {
        let state = c.find(Locator::Css("#job-state")).await.ok();
        let state = match state {
            Some(e) => e.text().await.unwrap_or_default(),
            None => String::new(),
        };
        let count = c
            .find_all(Locator::Css("#log li"))
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        if state == "running" || state == "queued" {
            match first_count {
                None => first_count = Some(count),
                Some(n) if count > n => saw_live = true,
                _ => {}
            }
        }
        if state == "succeeded" || state == "failed" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the upgrade did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(&c, "05-job").await;
    let page = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("succeeded"), "{page}");
    assert_eq!(
        job_state(&store, &job_id).await,
        cooper_store::JobState::Succeeded
    );
    assert!(
        saw_live,
        "progress lines arrived while the job ran, without a reload"
    );
    violations.extend(
        axe(&c, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("job: {v}")),
    );
    let ps = cli(&["app", "ps", &domain]);
    assert!(
        ps.contains("cooper-test/web:1.1"),
        "the CLI sees the upgrade: {ps}"
    );

    // The upgrade's safety backup counts as a backup: on the instance page and in the list.
    c.goto(&format!("{base}/instances/{domain}")).await.unwrap();
    let backups = wait_text(
        &c,
        "section[aria-labelledby=bk]",
        "safety backup before upgrade",
        Duration::from_secs(20),
    )
    .await;
    assert!(backups.contains("not verified"), "{backups}");
    let care = wait_text(&c, "dl.facts", "Last backup", Duration::from_secs(5)).await;
    assert!(
        care.contains(" s ago") || care.contains(" min ago"),
        "the last backup is the safety backup of a moment ago: {care}"
    );

    // The server page: its node and what Docker keeps on its disk.
    c.goto(&format!("{base}/servers/default")).await.unwrap();
    let storage = wait_text(&c, "#storage", "image", Duration::from_secs(20)).await;
    assert!(
        storage.contains("volume") && storage.contains("B"),
        "images and volumes with sizes: {storage}"
    );

    // A job waits its turn behind another operation on the app, and is cancelled from its
    // page before it starts. The test holds the app's lock (as a CLI operation would).
    let lock = cooper_ops::lock::AppLock::acquire(
        &abra.join("servers/default"),
        &domain,
        "the dashboard test",
        None,
    )
    .unwrap();
    let restart_button = "form:has(input[value='restart']) button[type=submit]";
    c.goto(&format!("{base}/instances/{domain}")).await.unwrap();
    click(&c, restart_button).await;
    wait_text(&c, "h1", "restart of", Duration::from_secs(10)).await;
    let waiting_job = c.current_url().await.unwrap().to_string();
    wait_text(&c, "#job-state", "running", Duration::from_secs(10)).await;
    c.goto(&format!("{base}/instances/{domain}")).await.unwrap();
    click(&c, restart_button).await;
    wait_text(&c, "#job-state", "queued", Duration::from_secs(10)).await;
    shot(&c, "05b-queued").await;
    let queued_job = c
        .current_url()
        .await
        .unwrap()
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    click(&c, "form[action$='/cancel'] button").await;
    wait_text(
        &c,
        "main",
        "cancelled before it started",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        job_state(&store, &queued_job).await,
        cooper_store::JobState::Cancelled,
        "the store says so too"
    );
    drop(lock);
    c.goto(&waiting_job).await.unwrap();
    wait_text(&c, "#job-state", "succeeded", Duration::from_secs(180)).await;

    // Schedules: the operator adds the co-op's defaults; a backup that fell due two days ago
    // (as if cooper had been stopped) is overdue, queued by the scheduler at once, held back
    // while the CLI holds the app, and no longer overdue once it succeeded.
    c.goto(&format!("{base}/instances/{domain}")).await.unwrap();
    click(&c, "#attach-schedules").await;
    let table = wait_text(
        &c,
        "#schedule-table",
        "upgrade-check",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        table.contains("backup") && table.contains("every day"),
        "{table}"
    );
    assert!(table.contains("every 7 days"), "weekly verify: {table}");
    let lock = cooper_ops::lock::AppLock::acquire(
        &abra.join("servers/default"),
        &domain,
        "the dashboard test",
        None,
    )
    .unwrap();
    let two_days_ago = cooper_store::now_ms() - 2 * cooper_store::schedules::DAY;
    store
        .set_schedule(
            &domain,
            "backup",
            cooper_store::schedules::default_cadence("backup").unwrap(),
            true,
            two_days_ago,
        )
        .await
        .unwrap();
    c.goto(&format!("{base}/overdue")).await.unwrap();
    let overdue = wait_text(&c, "#overdue", &domain, Duration::from_secs(10)).await;
    assert!(overdue.contains("backup"), "{overdue}");
    shot(&c, "05c-overdue").await;
    violations.extend(
        axe(&c, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("overdue: {v}")),
    );
    // The scheduler queued it (once), as "scheduler".
    let start = Instant::now();
    let scheduled = loop {
        let jobs = store.jobs(Some(&domain), 50).await.unwrap();
        let mine: Vec<_> = jobs
            .iter()
            .filter(|j| j.requested_by == "scheduler" && j.kind == "backup")
            .cloned()
            .collect();
        if !mine.is_empty() {
            break mine;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the scheduler did not queue the overdue backup"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(scheduled.len(), 1, "one run, not one per missed slot");
    drop(lock);
    c.goto(&format!("{base}/jobs/{}", scheduled[0].id))
        .await
        .unwrap();
    wait_text(&c, "#job-state", "succeeded", Duration::from_secs(180)).await;
    // The page is static: load it again until the scheduler's next tick has settled the run.
    reload_until(
        &c,
        &format!("{base}/overdue"),
        "main",
        "Nothing is overdue",
        Duration::from_secs(20),
    )
    .await;
    let backup = store.schedule(&domain, "backup").await.unwrap().unwrap();
    assert!(
        backup.last_ok_at.is_some() && backup.pending_since.is_none(),
        "{backup:?}"
    );
    assert!(
        backup.next_due > cooper_store::now_ms(),
        "the next run is ahead: {backup:?}"
    );

    // An upgrade check from the page (the daily schedule runs the same job): after the
    // upgrade, the app runs the newest release.
    c.goto(&format!("{base}/instances/{domain}")).await.unwrap();
    click(
        &c,
        "form:has(input[value='upgrade-check']) button[type=submit]",
    )
    .await;
    wait_text(&c, "h1", "upgrade-check of", Duration::from_secs(10)).await;
    wait_text(&c, "#job-state", "succeeded", Duration::from_secs(60)).await;
    let outcome = wait_text(&c, "#job-outcome", "runs 1.1.0+1.1", Duration::from_secs(5)).await;
    assert!(
        outcome.contains("the newest release it may take"),
        "{outcome}"
    );

    // Notifications: a person's choices are kept; an admin adds a webhook and sees its secret
    // once (never again on the page), with the failed job's delivery queued for it.
    c.goto(&format!("{base}/settings/notifications"))
        .await
        .unwrap();
    choose(&c, "#mode-upgrade\\.available", "digest").await;
    click(
        &c,
        "form[action='/settings/notifications'] button[type=submit]",
    )
    .await;
    wait_text(&c, "#saved", "Saved", Duration::from_secs(10)).await;
    let ada = store
        .person_by_email("ada@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .notify_mode(&ada.id, "upgrade.available")
            .await
            .unwrap(),
        "digest"
    );
    c.goto(&format!("{base}/admin/notifications"))
        .await
        .unwrap();
    fill(&c, "#hook-url", "https://hooks.example.org/cooper").await;
    click(&c, "form[action='/admin/webhooks'] button[type=submit]").await;
    let secret = wait_text(&c, "#webhook-secret", "", Duration::from_secs(10)).await;
    assert!(secret.len() >= 32, "{secret}");
    c.goto(&format!("{base}/admin/notifications"))
        .await
        .unwrap();
    let page = wait_text(
        &c,
        "#webhooks",
        "hooks.example.org",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        !c.source().await.unwrap().contains(secret.trim()),
        "the secret shows once: {page}"
    );

    // The audit log says who did what and how it ended.
    c.goto(&format!("{base}/audit")).await.unwrap();
    let audit = wait_text(&c, "main", "upgrade", Duration::from_secs(10)).await;
    assert!(
        audit.contains("ada@example.org") && audit.contains("succeeded"),
        "{audit}"
    );
    shot(&c, "06-audit").await;
    for page in [
        "/audit",
        "/servers",
        "/servers/default",
        "/catalogue",
        "/people",
        "/overdue",
        "/settings/notifications",
        "/admin/notifications",
        "/request",
        "/queue",
    ] {
        c.goto(&format!("{base}{page}")).await.unwrap();
        wait_text(&c, "h1", "", Duration::from_secs(10)).await;
        shot(&c, &format!("12{}", page.replace('/', "-"))).await;
        violations.extend(
            axe(&c, &axe_js)
                .await
                .into_iter()
                .map(|v| format!("{page}: {v}")),
        );
    }

    // On a phone: the list, the instance page (with its schedules), the wizard and the
    // overdue list fit the screen.
    on_a_phone(
        &c,
        &base,
        &[
            ("/instances".to_string(), "07-phone"),
            (format!("/instances/{domain}"), "07b-phone-instance"),
            ("/request".to_string(), "07c-phone-request"),
            ("/overdue".to_string(), "07d-phone-overdue"),
        ],
    )
    .await;

    // Keyboard only: log in (a new browser), then start a backup from the instance page.
    let k = browser(&driver).await;
    k.goto(&format!("{base}/login")).await.unwrap();
    violations.extend(
        axe(&k, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("/login: {v}")),
    );
    let email = k.active_element().await.unwrap();
    assert_eq!(
        email.attr("id").await.unwrap().as_deref(),
        Some("email"),
        "the email field has focus"
    );
    email.send_keys("ada@example.org").await.unwrap();
    email.send_keys(&Key::Tab).await.unwrap();
    let pw = k.active_element().await.unwrap();
    assert_eq!(pw.attr("id").await.unwrap().as_deref(), Some("password"));
    pw.send_keys(PASSWORD).await.unwrap();
    pw.send_keys(&Key::Enter).await.unwrap();
    wait_text(&k, "h1", "Instances", Duration::from_secs(10)).await;
    k.goto(&format!("{base}/instances/{domain}")).await.unwrap();
    wait_text(&k, "h1", &domain, Duration::from_secs(10)).await;
    let mut reached = false;
    for _ in 0..60 {
        k.active_element()
            .await
            .unwrap()
            .send_keys(&Key::Tab)
            .await
            .unwrap();
        let el = k.active_element().await.unwrap();
        if el.text().await.unwrap_or_default().trim() == "Back up now" {
            el.send_keys(&Key::Enter).await.unwrap();
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab reaches the “Back up now” button");
    wait_text(&k, "h1", "backup of", Duration::from_secs(10)).await;
    wait_text(&k, "#job-state", "succeeded", Duration::from_secs(120)).await;
    shot(&k, "08-keyboard-backup").await;
    let _ = k.close().await;

    // People: the admin makes a co-op and a community, gives them the server and the app,
    // and invites a community admin, who asks for an export; once an operator approves, the
    // community admin downloads the data (the newest backup as a tar archive).
    c.goto(&format!("{base}/people")).await.unwrap();
    fill(&c, "#coop-name", "Test Co-op").await;
    click(&c, "form[action='/people/coops'] button").await;
    wait_text(&c, "#com-coop", "Test Co-op", Duration::from_secs(10)).await;
    fill(&c, "#com-name", "Radio Collective").await;
    click(&c, "form[action='/people/communities'] button").await;
    wait_text(
        &c,
        "#own-owner",
        "Radio Collective",
        Duration::from_secs(10),
    )
    .await;
    choose(&c, "#own-what", "server:default").await;
    choose_text(&c, "#own-owner", "co-op Test Co-op").await;
    click(&c, "form[action='/people/owners'] button").await;
    wait_text(&c, "#own-what", "(now Test Co-op)", Duration::from_secs(10)).await;
    choose(&c, "#own-what", &format!("instance:{domain}")).await;
    choose_text(&c, "#own-owner", "community Radio Collective").await;
    click(&c, "form[action='/people/owners'] button").await;
    wait_text(
        &c,
        "#own-what",
        "(now Radio Collective)",
        Duration::from_secs(10),
    )
    .await;
    fill(&c, "#inv-email", "carla@radio.example.org").await;
    choose_text(&c, "#inv-place", "community Radio Collective").await;
    choose(&c, "#inv-role", "admin").await;
    click(&c, "form[action='/people/invite'] button").await;
    let link = wait_text(&c, "#invite-link", "/invite/", Duration::from_secs(10)).await;
    shot(&c, "10-people").await;
    let carla = browser(&driver).await;
    carla.goto(&link).await.unwrap();
    fill(&carla, "#name", "Carla").await;
    fill(&carla, "#email", "carla@radio.example.org").await;
    fill(&carla, "#password", PASSWORD).await;
    click(&carla, "form button[type=submit]").await;
    wait_text(&carla, "h1", "Instances", Duration::from_secs(10)).await;
    carla
        .goto(&format!("{base}/instances/{domain}"))
        .await
        .unwrap();
    let page = wait_text(&carla, "main", "Ask the operators", Duration::from_secs(10)).await;
    assert!(
        !page.contains("Back up now"),
        "a community admin does not act: {page}"
    );
    assert!(
        !page.contains("Download the export"),
        "no export before approval"
    );
    violations.extend(
        axe(&carla, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("instance as community admin: {v}")),
    );
    assert_eq!(
        fetch_status(&carla, &format!("/instances/{domain}/export"))
            .await
            .0,
        403
    );
    // The community is leaving for another co-op: it asks for everything needed to move.
    choose(&carla, "#req-kind", "offboard").await;
    fill(&carla, "#req-note", "for our archive").await;
    click(&carla, "form[action$='/requests'] button").await;
    wait_text(&carla, "main", "for our archive", Duration::from_secs(10)).await;
    c.goto(&format!("{base}/instances/{domain}")).await.unwrap();
    wait_text(&c, "main", "for our archive", Duration::from_secs(10)).await;
    click(&c, "form[action$='/approve'] button").await;
    wait_text(&c, "main", "approved", Duration::from_secs(10)).await;
    carla
        .goto(&format!("{base}/instances/{domain}"))
        .await
        .unwrap();
    let page = wait_text(
        &carla,
        "main",
        "Download the export",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        page.contains(&format!(
            "cooper app restore YOUR-DOMAIN --archive {domain}-export.tar"
        )),
        "the page says how the other co-op runs it: {page}"
    );
    let (status, kind, bytes) = fetch_status(&carla, &format!("/instances/{domain}/export")).await;
    assert_eq!((status, kind.as_str()), (200, "application/x-tar"));
    assert!(bytes > 1024, "an archive of the backup: {bytes} bytes");
    // The manifest comes first: the archive's first member's name.
    let first = carla
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(r => r.arrayBuffer()).then(b =>
               done(String.fromCharCode(...new Uint8Array(b.slice(0, 18)))))
             .catch(e => done(String(e)));",
            vec![serde_json::json!(format!("/instances/{domain}/export"))],
        )
        .await
        .unwrap();
    assert_eq!(first.as_str(), Some("cooper-export.json"), "{first:?}");
    shot(&carla, "11-community-admin").await;
    let _ = carla.close().await;

    // Killed mid-job: a slow deploy is running when cooper serve dies (kill -9).
    let env_path = abra.join(format!("servers/default/{domain}.env"));
    let env = std::fs::read_to_string(&env_path).unwrap();
    std::fs::write(
        &env_path,
        format!("{env}COMPOSE_FILE=compose.yml:compose.slow.yml\n"),
    )
    .unwrap();
    c.goto(&format!("{base}/instances/{domain}")).await.unwrap();
    click(&c, "form[action$='/jobs'] input[value='deploy'] ~ button").await;
    wait_text(&c, "h1", "deploy of", Duration::from_secs(10)).await;
    let killed_id = c
        .current_url()
        .await
        .unwrap()
        .to_string()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let start = Instant::now();
    // Running and holding the app's lock (its first line, the overview, comes after the lock):
    // then kill.
    while store.job_lines(&killed_id, 0).await.unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the deploy job never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::process::Command::new("kill")
        .args(["-9", &server.child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let _ = server.child.wait().await;
    assert_eq!(
        job_state(&store, &killed_id).await,
        cooper_store::JobState::Running
    );

    let again = serve(abra).await;
    assert!(
        again.token.is_none(),
        "no new setup token once an admin exists"
    );
    assert!(
        again
            .lines
            .iter()
            .any(|l| l.contains("1 job(s) were running at the last stop")),
        "{:?}",
        again.lines
    );
    let job = store.job(&killed_id).await.unwrap().unwrap();
    assert_eq!(job.state, cooper_store::JobState::Interrupted);
    let outcome = job.outcome.unwrap_or_default();
    assert!(outcome.contains("cleanup"), "{outcome}");
    let base = again.base.clone();
    c.goto(&format!("{base}/jobs/{killed_id}")).await.unwrap();
    let text = wait_text(&c, "main", "interrupted", Duration::from_secs(10)).await;
    assert!(
        text.contains("cooper serve stopped while this deploy ran"),
        "{text}"
    );
    shot(&c, "09-interrupted").await;
    // The lock the killed job held is recovered by the next operation.
    let out = cli(&["app", "deploy", &domain, "-n", "-f"]);
    assert!(out.contains("ended without finishing"), "{out}");

    let _ = c.close().await;
    cooper_testkit::scrub_stack(&stack);
    assert!(
        violations.is_empty(),
        "accessibility (axe-core):\n{}",
        violations.join("\n")
    );
}
