//! Logging in with a co-op's OpenID Connect provider, on the Postgres store: a real provider
//! (npm's `oidc-provider`, its own login and consent pages) and a real Chromium. The admin
//! logs in through the provider and is linked by their verified email; the second time the link
//! alone lets them in; they restart an app deployed on the local Swarm and the job runs on the
//! Postgres store. An unverified email, an unknown email and a forged answer are refused, each
//! with a page that says why and a line in the audit log. The client secret never stands in
//! `cooper serve`'s argv, a page or the store.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use tokio::io::{AsyncBufReadExt, BufReader};

mod browser;
use browser::*;

const PASSWORD: &str = "correct horse battery staple";
const CLIENT_SECRET: &str = "oidc-client-secret-9f3c1a77e2";

/// Starts the provider and waits until it answers its discovery document.
async fn provider(port: u16, redirect: &str) -> tokio::process::Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc-provider.mjs");
    let modules = web_tools();
    assert!(
        modules.join("oidc-provider/package.json").exists(),
        "{}: no oidc-provider (scripts/setup-web-tools installs it)",
        modules.display()
    );
    let mut child = tokio::process::Command::new("node")
        .arg(script)
        .env("OIDC_MODULES", &modules)
        .env("OIDC_PORT", port.to_string())
        .env("OIDC_REDIRECT", redirect)
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node (installed with npm by scripts/setup-web-tools)");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline.into(), out.next_line()).await {
            Ok(Ok(Some(line))) if line.starts_with("oidc-provider ready") => break,
            Ok(Ok(Some(_))) => continue,
            other => panic!("the OpenID provider did not start: {other:?}"),
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    child
}

/// Logs in at the provider's own pages (any password) and gives consent when it asks.
async fn at_provider(c: &fantoccini::Client, login: &str) {
    wait_text(c, "body", "Sign-in", Duration::from_secs(20)).await;
    fill(c, "input[name=login]", login).await;
    fill(c, "input[name=password]", "anything").await;
    shot(c, "oidc-provider-login").await;
    click(c, "button[type=submit]").await;
    // Consent (the first time for this account), then back to cooper.
    let start = Instant::now();
    loop {
        let url = c.current_url().await.unwrap().to_string();
        if !url.contains("/interaction/") {
            break;
        }
        if let Ok(b) = c.find(Locator::Css("button[type=submit]")).await {
            let body = c.source().await.unwrap_or_default();
            if body.contains("prompt\" value=\"consent") || body.contains("Authorize") {
                let _ = b.click().await;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "stuck at the provider: {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn audit_has(store: &cooper_store::Store, who: &str, action: &str, outcome: &str) -> bool {
    store
        .audit_log(200)
        .await
        .unwrap()
        .iter()
        .any(|a| a.actor == who && a.action == action && a.outcome == outcome)
}

#[test]
fn a_coop_account_logs_in_through_openid_connect_on_postgres() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
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
    let docker = cooper_testkit::local_docker().await.unwrap();
    cooper_testkit::ensure_images(&docker, &["cooper-test/web:1.0"])
        .await
        .unwrap();
    let axe_js = axe_js();

    let dir = tempfile::tempdir().unwrap();
    let abra = dir.path();
    std::fs::create_dir_all(abra.join("servers/default")).unwrap();
    cooper_testkit::recipe_repo(
        &abra.join("recipes/testapp"),
        &[(fixture("1.0.0+1.0"), "1.0.0+1.0")],
    )
    .unwrap();
    let domain = "t-oidc.cooper.test".to_string();
    cooper_testkit::scrub_stack(&domain.replace('.', "_"));
    let cli = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args(args)
            .env("ABRA_DIR", abra)
            .env("COOPER_DATABASE", &database)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "cooper {args:?}: {text}");
        text
    };
    cli(
        &[
            "app",
            "new",
            "testapp",
            "1.0.0+1.0",
            "-s",
            "default",
            "-D",
            &domain,
            "-n",
        ],
        None,
    );
    cli(&["app", "secret", "generate", &domain, "--all"], None);
    cli(&["app", "deploy", &domain, "-n"], None);
    cli(
        &[
            "serve",
            "--create-admin",
            "ada@example.org",
            "--admin-name",
            "Ada Admin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    store
        .add_person("bob@example.org", "Bob", None, false)
        .await
        .unwrap();

    // The provider's port first (cooper reads its configuration lazily, at the first login).
    let provider_port = free_port();
    let issuer = format!("http://127.0.0.1:{provider_port}");
    let mut server = serve_with(
        abra,
        &[
            "--oidc-issuer",
            &issuer,
            "--oidc-client-id",
            "cooper",
            "--oidc-label",
            "Example Co-op ID",
        ],
        &[
            ("COOPER_DATABASE", database.as_str()),
            ("COOPER_OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ],
    )
    .await;
    let base = server.base.clone();
    let _provider = provider(provider_port, &format!("{base}/oidc/callback")).await;

    // The secret is not in argv.
    let pid = server.child.id().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(CLIENT_SECRET),
        "the client secret is in cooper serve's argv"
    );

    let driver = chromedriver().await;

    // Ada: the login page offers the provider; through it, linked by the verified email.
    let c = browser(&driver).await;
    c.goto(&format!("{base}/login")).await.unwrap();
    wait_text(
        &c,
        "#oidc-login",
        "Log in with Example Co-op ID",
        Duration::from_secs(10),
    )
    .await;
    let href = c
        .find(Locator::Css("#oidc-login"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(
        href, "/oidc/login?next=",
        "a plain link: works without JavaScript"
    );
    let violations = axe(&c, &axe_js).await;
    assert!(violations.is_empty(), "login page: {violations:?}");
    shot(&c, "oidc-01-login").await;
    click(&c, "#oidc-login").await;
    at_provider(&c, "ada@example.org").await;
    let list = wait_text(&c, "table.list tbody", &domain, Duration::from_secs(20)).await;
    assert!(list.contains("deployed"), "{list}");
    let header = wait_text(&c, "header", "Ada Admin", Duration::from_secs(5)).await;
    assert!(!header.contains("Log in"), "{header}");
    shot(&c, "oidc-02-logged-in").await;
    let ada = store
        .person_by_email("ada@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ada.oidc_subject.as_deref(),
        Some(format!("{issuer}#ada@example.org").as_str()),
        "linked to the provider's subject"
    );
    assert!(audit_has(&store, "ada@example.org", "link openid", "ok").await);
    assert!(audit_has(&store, "ada@example.org", "login", "ok").await);

    // A restart from the dashboard, as a job on the Postgres store.
    c.goto(&format!("{base}/instances/{domain}")).await.unwrap();
    wait_text(&c, "#state", "deployed", Duration::from_secs(20)).await;
    click(&c, "form:has(input[value='restart']) button[type=submit]").await;
    wait_text(&c, "h1", "restart of", Duration::from_secs(10)).await;
    let state = wait_text(&c, "#job-state", "succeeded", Duration::from_secs(180)).await;
    assert_eq!(state, "succeeded");
    let job_id = c
        .current_url()
        .await
        .unwrap()
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let job = store
        .job(&job_id)
        .await
        .unwrap()
        .expect("the job is in Postgres");
    assert_eq!(job.state, cooper_store::JobState::Succeeded);
    shot(&c, "oidc-03-restart").await;

    // Log out, then in again: the link alone finds Ada (the provider remembers her).
    click(&c, "form[action='/logout'] button").await;
    wait_text(&c, "h1", "Log in", Duration::from_secs(10)).await;
    click(&c, "#oidc-login").await;
    wait_text(&c, "table.list tbody", &domain, Duration::from_secs(20)).await;
    c.close().await.unwrap();

    // Bob's email is not verified at the provider: refused, though his account exists.
    let c = browser(&driver).await;
    c.goto(&format!("{base}/oidc/login")).await.unwrap();
    at_provider(&c, "unverified.bob@example.org").await;
    let page = wait_text(&c, "main", "has not verified", Duration::from_secs(20)).await;
    assert!(page.contains("bob@example.org"), "{page}");
    shot(&c, "oidc-04-unverified").await;
    assert!(store
        .person_by_email("bob@example.org")
        .await
        .unwrap()
        .unwrap()
        .oidc_subject
        .is_none());
    assert!(audit_has(&store, "bob@example.org", "login", "refused").await);
    // Not logged in.
    c.goto(&format!("{base}/instances")).await.unwrap();
    wait_text(&c, "h1", "Log in", Duration::from_secs(10)).await;
    c.close().await.unwrap();

    // A forged answer (a state this session never sent) is refused.
    let c = browser(&driver).await;
    c.goto(&format!("{base}/oidc/login")).await.unwrap();
    wait_text(&c, "body", "Sign-in", Duration::from_secs(20)).await;
    c.goto(&format!("{base}/oidc/callback?code=forged&state=forged"))
        .await
        .unwrap();
    wait_text(
        &c,
        "main",
        "belongs to another login",
        Duration::from_secs(10),
    )
    .await;
    c.goto(&format!("{base}/instances")).await.unwrap();
    wait_text(&c, "h1", "Log in", Duration::from_secs(10)).await;

    // Nobody here has this email: refused, no account made.
    c.goto(&format!("{base}/oidc/login")).await.unwrap();
    at_provider(&c, "stranger@example.org").await;
    wait_text(
        &c,
        "main",
        "No account here has the email stranger@example.org",
        Duration::from_secs(20),
    )
    .await;
    assert!(store
        .person_by_email("stranger@example.org")
        .await
        .unwrap()
        .is_none());

    c.close().await.unwrap();

    // The secret reached no page and no record in the store.
    for line in store.audit_log(500).await.unwrap() {
        assert!(
            !format!("{line:?}").contains(CLIENT_SECRET),
            "the client secret is in the audit log: {line:?}"
        );
    }
    server.child.kill().await.unwrap();
    cli(&["app", "undeploy", &domain, "-n"], None);
}
