//! From a request to a running instance, as people do it: a community fills in the setup
//! wizard in a real Chromium (a missing required field and an invalid address on the way, the
//! outgoing-mail option on), an operator approves it onto the local Swarm giving the mail
//! password the recipe cannot make, the provisioning job deploys, tests and backs it up, the
//! requester makes their account from the invitation, sees the instance live, reads its initial
//! credentials once — and cannot read them again; nobody else can. The address is checked live
//! against a real DNS server (dnsmasq on loopback). The credentials are in no
//! page but that one, and not in the store. Every page of the path passes axe-core; a
//! screenshot of each step is kept under `target/dashboard-screenshots/` (`p*-…`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::Locator;

mod browser;
use browser::*;

const PASSWORD: &str = "correct horse battery staple";
const AMY_PASSWORD: &str = "radio waves over the river";

#[test]
fn a_community_asks_and_gets_a_running_instance() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

/// Waits (bounded) until the job page says the job ended; returns its state.
async fn job_end(c: &fantoccini::Client, within: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(e) = c.find(Locator::Css("#job-state")).await {
            let t = e.text().await.unwrap_or_default();
            if ["succeeded", "failed", "cancelled", "interrupted"].contains(&t.trim()) {
                return t.trim().to_string();
            }
        }
        assert!(
            start.elapsed() < within,
            "the provisioning job did not end within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// axe-core's serious and critical findings on the page, named.
async fn checked(c: &fantoccini::Client, axe_js: &str, page: &str) -> Vec<String> {
    axe(c, axe_js)
        .await
        .into_iter()
        .map(|v| format!("{page}: {v}"))
        .collect()
}

async fn run() {
    let docker = cooper_testkit::local_docker().await.unwrap();
    cooper_testkit::ensure_images(&docker, &["cooper-test/web:1.0"])
        .await
        .unwrap();
    cooper_testkit::ensure_restic_image(&docker).await.unwrap();
    let axe_js = axe_js();

    let dir = tempfile::tempdir().unwrap();
    let abra = dir.path();
    std::fs::create_dir_all(abra.join("servers/default")).unwrap();
    cooper_testkit::recipe_repo(
        &abra.join("recipes/provapp"),
        &[(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/provision/provapp/1.0.0+1.0"),
            "1.0.0+1.0",
        )],
    )
    .unwrap();
    let repo = tempfile::tempdir().unwrap();
    cooper_testkit::backup_settings(abra, "default", &repo.path().join("restic")).unwrap();
    let domain = "t-provweb.cooper.test";
    let stack = domain.replace('.', "_");
    cooper_testkit::scrub_stack(&stack);
    // The co-op that runs the local server (made here as an admin would on the People page).
    let store = cooper_store::Store::open_default(abra).await.unwrap();
    std::fs::write(
        abra.join("cooper/rates.toml"),
        "currency = \"EUR\"\nbase = 5\nper_cpu = 12\nper_gib_memory = 4\nper_gib_disk = 0.2\n",
    )
    .unwrap();
    let coop = store.add_coop("Tech Co-op").await.unwrap();
    store.set_server_owner("default", &coop.id).await.unwrap();

    // The community's DNS: the address points at the local server (127.0.0.1 here).
    let dns = cooper_testkit::Dnsmasq::start(&[&format!("--address=/{domain}/127.0.0.1")]);
    let dns_at = dns.at.to_string();
    let mut server = serve_with(
        abra,
        &[
            "--schedule-tick-ms",
            "60000",
            "--probe-image",
            "cooper-test/web:1.0",
            "--dns-server",
            &dns_at,
            "--server-address",
            "default=127.0.0.1",
        ],
        &[],
    )
    .await;
    let token = server.token.clone().expect("a setup token on first start");
    let base = server.base.clone();
    let driver = chromedriver().await;
    let mut violations: Vec<String> = Vec::new();

    // The community, without an account.
    let amy = browser(&driver).await;
    amy.goto(&format!("{base}/request")).await.unwrap();
    fill(&amy, "#community", "Radio Bielefeld").await;
    fill(&amy, "#email", "amy@radio.example").await;
    amy.find(Locator::Css("#recipe option[value='provapp']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shot(&amy, "p01-request").await;
    violations.extend(checked(&amy, &axe_js, "/request").await);
    click(&amy, "form[action='/request'] button[type=submit]").await;
    wait_text(&amy, "h1", "Options for provapp", Duration::from_secs(10)).await;
    // The mail option on, its required host left empty: the reason stands next to it.
    click(&amy, "#option-smtp input[type=checkbox]").await;
    click(&amy, "form[action='/request'] button[type=submit]").await;
    let why = wait_text(&amy, "#e-SMTP_HOST", "required", Duration::from_secs(10)).await;
    assert!(why.contains("required"), "{why}");
    shot(&amy, "p02-missing-field").await;
    violations.extend(checked(&amy, &axe_js, "/request options with an error").await);
    fill(&amy, "#f-SMTP_HOST", "mail.radio.example").await;
    click(&amy, "form[action='/request'] button[type=submit]").await;
    wait_text(&amy, "h1", "Check and send", Duration::from_secs(10)).await;
    wait_text(
        &amy,
        "#size",
        "suggested contribution EUR 17.00 a month",
        Duration::from_secs(5),
    )
    .await;
    click(&amy, "#size input[value='small']").await;
    fill(&amy, "#domain", "not a domain").await;
    click(&amy, "form[action='/request'] button[type=submit]").await;
    wait_text(
        &amy,
        "#domain-error",
        "Give an address",
        Duration::from_secs(10),
    )
    .await;
    shot(&amy, "p03-bad-address").await;
    let field = amy.find(Locator::Css("#domain")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(domain).await.unwrap();
    click(&amy, "form[action='/request'] button[type=submit]").await;
    wait_text(&amy, "h1", "Request sent", Duration::from_secs(10)).await;
    shot(&amy, "p04-sent").await;

    // The operator (the first admin here) approves it onto the local server.
    let ada = browser(&driver).await;
    ada.goto(&format!("{base}/setup")).await.unwrap();
    fill(&ada, "#token", &token).await;
    fill(&ada, "#name", "Ada Admin").await;
    fill(&ada, "#email", "ada@example.org").await;
    fill(&ada, "#password", PASSWORD).await;
    click(&ada, "form[action='/setup'] button[type=submit]").await;
    wait_text(&ada, "h1", "Instances", Duration::from_secs(20)).await;
    ada.goto(&format!("{base}/queue")).await.unwrap();
    wait_text(&ada, "#queue", "Radio Bielefeld", Duration::from_secs(10)).await;
    click(&ada, "#queue a[href^='/queue/']").await;
    wait_text(
        &ada,
        "h1",
        "Radio Bielefeld asks for",
        Duration::from_secs(10),
    )
    .await;
    let servers = wait_text(&ada, "#server", "default", Duration::from_secs(10)).await;
    assert!(
        servers.contains("CPUs") && servers.contains("memory") && servers.contains("0 apps"),
        "the server's capacity is shown: {servers}"
    );
    assert!(
        servers.contains("free:") && servers.contains("(small) fits"),
        "what is free, against the size asked for: {servers}"
    );
    violations.extend(checked(&ada, &axe_js, "the request's page").await);
    // The address: its records, and a live check against the DNS server.
    click(&ada, "#check-dns").await;
    let status = wait_text(&ada, "#dns-status", "resolves", Duration::from_secs(15)).await;
    assert!(
        status.contains(&format!("{domain} resolves to server default")),
        "{status}"
    );
    let records = wait_text(&ada, "#dns-records", domain, Duration::from_secs(5)).await;
    assert_eq!(records.trim(), format!("{domain}. A 127.0.0.1"));
    shot(&ada, "p05a-dns-checked").await;
    violations.extend(checked(&ada, &axe_js, "the request's page, address checked").await);
    fill(&ada, "#secret-smtp_password", "smtp-pass-from-amy-41").await;
    shot(&ada, "p05-approve").await;
    click(&ada, "form[action$='/approve'] button[type=submit]").await;
    wait_text(&ada, "h1", "provision", Duration::from_secs(10)).await;
    let end = job_end(&ada, Duration::from_secs(240)).await;
    let job_path = ada.current_url().await.unwrap().path().to_string();
    let log = ada
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    shot(&ada, "p06-provisioned").await;
    assert_eq!(end, "succeeded", "{log}");
    for step in [
        "step env done",
        "step secrets done",
        "step deploy done",
        "step test done",
        "step backup done",
    ] {
        assert!(log.contains(step), "{step}: {log}");
    }
    violations.extend(checked(&ada, &axe_js, "the provisioning job").await);
    assert!(
        !log.contains("smtp-pass-from-amy-41"),
        "a given secret is never in the job's log"
    );
    let req = store
        .instance_requests(false)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.domain == domain)
        .unwrap();
    assert_eq!(req.state, "live");
    assert_eq!(
        store.schedules(Some(domain)).await.unwrap().len(),
        cooper_store::schedules::KINDS.len(),
        "schedules attached (the maintenance window too)"
    );
    let running = cooper_testkit::docker(&[
        "service",
        "ls",
        "--filter",
        &format!("name={stack}_app"),
        "--format",
        "{{.Replicas}}",
    ]);
    assert_eq!(running, "1/1");

    // The requester's invitation went by mail (queued here: no SMTP in this test).
    let mails = store
        .pending_for("email", "amy@radio.example")
        .await
        .unwrap();
    let invite = mails
        .iter()
        .find_map(|m| {
            m.body
                .lines()
                .find(|l| l.starts_with("/invite/"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("an invitation in the mail: {mails:?}"));

    // Amy makes her account, sees the instance live, reads the credentials once.
    amy.goto(&format!("{base}{invite}")).await.unwrap();
    fill(&amy, "#name", "Amy").await;
    fill(&amy, "#email", "amy@radio.example").await;
    fill(&amy, "#password", AMY_PASSWORD).await;
    click(&amy, "form button[type=submit]").await;
    let row = reload_until(
        &amy,
        &format!("{base}/instances"),
        "table.list tbody",
        "deployed 1/1",
        Duration::from_secs(20),
    )
    .await;
    assert!(row.contains(domain), "{row}");
    shot(&amy, "p07-amy-instances").await;
    amy.goto(&format!("{base}/instances/{domain}"))
        .await
        .unwrap();
    wait_text(
        &amy,
        "#credentials-waiting",
        "wait for you",
        Duration::from_secs(10),
    )
    .await;
    shot(&amy, "p08-amy-instance").await;
    violations.extend(checked(&amy, &axe_js, "the instance page (community admin)").await);
    click(&amy, "#credentials-waiting a").await;
    wait_text(&amy, "h1", "Initial credentials", Duration::from_secs(10)).await;
    violations.extend(checked(&amy, &axe_js, "the credentials page").await);

    // Ada (an admin, not the requester) cannot read them.
    ada.goto(&format!("{base}/instances/{domain}/credentials"))
        .await
        .unwrap();
    wait_text(
        &ada,
        "#credentials-message",
        "No initial credentials wait for you",
        Duration::from_secs(10),
    )
    .await;
    assert!(ada.find(Locator::Css("#reveal")).await.is_err());

    click(&amy, "#reveal").await;
    let shown = wait_text(
        &amy,
        "#credentials",
        "admin_password",
        Duration::from_secs(10),
    )
    .await;
    shot(&amy, "p09-credentials-once").await;
    let value = amy
        .find(Locator::Css("#credentials dd code"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        value.len(),
        20,
        "the recipe's admin password (length=20): {shown}"
    );
    // Once: the next visit has nothing to show.
    amy.goto(&format!("{base}/instances/{domain}/credentials"))
        .await
        .unwrap();
    wait_text(
        &amy,
        "#credentials-message",
        "shown already",
        Duration::from_secs(10),
    )
    .await;
    assert!(amy.find(Locator::Css("#reveal")).await.is_err());
    let page = amy.source().await.unwrap();
    assert!(!page.contains(&value));
    shot(&amy, "p10-credentials-gone").await;

    // The values are nowhere in the store (SQLite file), nor in cooper's records.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(abra.join("cooper")).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            stored.extend(std::fs::read(&p).unwrap());
        }
    }
    let stored = String::from_utf8_lossy(&stored);
    for secret in [value.as_str(), "smtp-pass-from-amy-41"] {
        assert!(!stored.contains(secret), "a secret value in the store");
    }
    let records = std::process::Command::new("grep")
        .args(["-rl", "-e", &value, "-e", "smtp-pass-from-amy-41"])
        .arg(abra.join("cooper/records"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        records.stdout.is_empty(),
        "a secret value in a record: {}",
        String::from_utf8_lossy(&records.stdout)
    );

    // On a phone: the community admin's pages and the operator's request and job pages.
    on_a_phone(
        &amy,
        &base,
        &[
            (format!("/instances/{domain}"), "p11-phone-amy-instance"),
            (
                format!("/instances/{domain}/credentials"),
                "p12-phone-amy-credentials",
            ),
        ],
    )
    .await;
    on_a_phone(
        &ada,
        &base,
        &[
            (format!("/queue/{}", req.id), "p13-phone-request"),
            (job_path, "p14-phone-job"),
        ],
    )
    .await;

    assert!(violations.is_empty(), "axe: {violations:#?}");
    let _ = server.child.kill().await;
    drop(dns);
    cooper_testkit::scrub_stack(&stack);
}
