//! The books in a real Chromium: two months of a co-op kept with `cooper ledger` (entries,
//! hours, a server invoice; proposed by a treasurer, closed by an operator), then `cooper
//! serve` shows a community member their transparency page — both charts drawn, the figures
//! the CLI settled, no sideways scrolling on a phone, no axe violations — and the treasurer
//! the co-op's month. Screenshots are kept under `target/dashboard-screenshots/books-*.png`.

mod browser;

use std::process::Stdio;
use std::time::Duration;

use browser::*;

const PASSWORD: &str = "correct horse battery staple";

fn ledger(abra: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cooper"))
        .args(["ledger", "--coop", "Tech Co-op"])
        .args(args)
        .env("ABRA_DIR", abra)
        .env_remove("COOPER_DATABASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "cooper ledger {args:?}: {text}");
    text
}

#[test]
fn a_member_reads_their_communitys_books_with_charts() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let abra = dir.path();
    // One server with three instances; no engine is needed (the rule shares costs equally).
    let server = abra.join("servers/hetzner1");
    std::fs::create_dir_all(&server).unwrap();
    std::fs::write(
        server.join(".cooper-endpoint"),
        "unix:///nonexistent/cooper-books.sock\n",
    )
    .unwrap();
    for d in [
        "cloud.riseup.example",
        "wiki.garden.example",
        "chat.tenants.example",
    ] {
        std::fs::write(
            server.join(format!("{d}.env")),
            format!("TYPE=demo:1.0.0+1\nDOMAIN={d}\n"),
        )
        .unwrap();
    }
    let store = cooper_store::Store::open_default(abra).await.unwrap();
    let hash = cooper_web::auth::hash_password(PASSWORD).unwrap();
    let coop = store.add_coop("Tech Co-op").await.unwrap().id;
    store.set_server_owner("hetzner1", &coop).await.unwrap();
    let mut communities = Vec::new();
    for (name, domain) in [
        ("Riseup", "cloud.riseup.example"),
        ("Garden", "wiki.garden.example"),
        ("Tenants", "chat.tenants.example"),
    ] {
        let c = store.add_community(name, &coop).await.unwrap();
        store.set_instance_owner(domain, &c.id).await.unwrap();
        communities.push(c.id);
    }
    for (email, kind, target, role) in [
        ("tess@tech.example", "coop", &coop, "treasurer"),
        ("otto@tech.example", "coop", &coop, "operator"),
        ("mia@riseup.example", "community", &communities[0], "member"),
    ] {
        let p = store
            .add_person(email, email, Some(&hash), false)
            .await
            .unwrap();
        store
            .add_membership(&p.id, kind, target, role)
            .await
            .unwrap();
    }
    let rule = abra.join("rule.toml");
    std::fs::write(
        &rule,
        r#"currency = "EUR"
shortfall = "priority"
cost_key = "equal"

[[line]]
kind = "infrastructure"

[[line]]
kind = "labour"
rate = "25.00"

[[line]]
kind = "pool"
name = "maintenance"
percent = "10"

[[line]]
kind = "pool"
name = "solidarity"
percent = "5"
"#,
    )
    .unwrap();
    ledger(abra, &["rule", "--set", rule.to_str().unwrap()]);
    for (month, riseup) in [("2026-10", "250"), ("2026-11", "300")] {
        for (party, amount) in [
            ("community:Riseup", riseup),
            ("community:Garden", "200"),
            ("community:Tenants", "100"),
        ] {
            ledger(
                abra,
                &[
                    "add",
                    "contribution",
                    "--date",
                    &format!("{month}-03"),
                    "--amount",
                    amount,
                    "--party",
                    party,
                ],
            );
        }
        ledger(
            abra,
            &[
                "add",
                "cost",
                "--date",
                &format!("{month}-01"),
                "--amount",
                "120",
                "--party",
                "external:Hetzner",
                "--target",
                "server:hetzner1",
                "--category",
                "server",
            ],
        );
        ledger(
            abra,
            &[
                "add",
                "labour",
                "--date",
                &format!("{month}-14"),
                "--hours",
                "8",
                "--party",
                "person:ana@tech.example",
                "--target",
                "instance:cloud.riseup.example",
            ],
        );
        for (who, role) in [
            ("tess@tech.example", "treasurer"),
            ("otto@tech.example", "operator"),
        ] {
            ledger(
                abra,
                &[
                    "settle", "--period", month, "--close", "--by", who, "--as", role,
                ],
            );
        }
    }
    // What the CLI recorded, to compare with what the page shows.
    let record = store
        .settlement(&coop, "2026-11".parse().unwrap())
        .await
        .unwrap()
        .expect("November closed");
    assert_eq!(record.state, "closed");
    let riseup = record
        .settlement
        .communities
        .iter()
        .find(|c| c.community == "Riseup")
        .unwrap()
        .clone();
    let instance_cost = format!(
        "{} EUR",
        cooper_ledger::format_amount(riseup.instance_cost, cooper_ledger::Currency::EUR)
    );
    drop(store);

    let server = serve(abra).await;
    let base = server.base.clone();
    let axe_js = axe_js();
    let driver = chromedriver().await;
    let c = browser(&driver).await;
    let mut violations = Vec::new();

    // The member logs in and finds their community's books from the menu.
    c.goto(&format!("{base}/login")).await.unwrap();
    fill(&c, "#email", "mia@riseup.example").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "form[action='/login'] button[type=submit]").await;
    wait_text(&c, "h1", "Instances", Duration::from_secs(20)).await;
    click(&c, "a[href='/books']").await;
    wait_text(&c, "h1", "Books", Duration::from_secs(10)).await;
    let books = c
        .find(fantoccini::Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !books.contains("Garden"),
        "another community's books are not listed: {books}"
    );
    click(
        &c,
        &format!("a[href='/books/communities/{}']", communities[0]),
    )
    .await;
    let state = wait_text(&c, "#month-state", "2026-11", Duration::from_secs(10)).await;
    assert!(state.contains("closed"), "{state}");
    let facts = wait_text(
        &c,
        "#community-facts",
        "300.00 EUR",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        facts.contains(&instance_cost),
        "{facts} has {instance_cost}"
    );
    // Both charts are drawn: bars with their figures in tooltips, of a visible size.
    let went_parts = c
        .find_all(fantoccini::Locator::Css("#went svg rect title"))
        .await
        .unwrap()
        .len();
    assert!(went_parts >= 3, "where each euro went: {went_parts} parts");
    let bars = c
        .find_all(fantoccini::Locator::Css("#in-out svg rect title"))
        .await
        .unwrap()
        .len();
    assert_eq!(bars, 4, "two months, two bars each");
    let height = c
        .execute(
            "return document.querySelector('#went svg').getBoundingClientRect().height",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap_or(0.0);
    assert!(height > 50.0, "the chart is drawn at {height}px");
    shot(&c, "books-01-community").await;
    violations.extend(
        axe(&c, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("community books: {v}")),
    );
    // The download is the member's own.
    let (status, kind, _) = fetch_status(
        &c,
        &format!("/books/communities/{}/books.csv", communities[0]),
    )
    .await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let (status, _, _) = fetch_status(&c, &format!("/books/communities/{}", communities[1])).await;
    assert_eq!(
        status, 404,
        "another community's books do not exist for a member"
    );
    on_a_phone(
        &c,
        &base,
        &[(
            format!("/books/communities/{}", communities[0]),
            "books-02-community-phone",
        )],
    )
    .await;

    // The treasurer sees the co-op's month with its shares and the propose form for December.
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("{base}/login")).await.unwrap();
    fill(&c, "#email", "tess@tech.example").await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "form[action='/login'] button[type=submit]").await;
    wait_text(&c, "h1", "Instances", Duration::from_secs(20)).await;
    c.goto(&format!("{base}/books/coops/{coop}?period=2026-11"))
        .await
        .unwrap();
    let shares = wait_text(
        &c,
        "#shares",
        "person:ana@tech.example",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        shares.contains("8 h") && shares.contains("200.00 EUR"),
        "{shares}"
    );
    shot(&c, "books-03-coop").await;
    violations.extend(
        axe(&c, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("co-op books: {v}")),
    );
    c.goto(&format!("{base}/books/coops/{coop}?period=2026-12"))
        .await
        .unwrap();
    wait_text(&c, "#close-form", "as treasurer", Duration::from_secs(10)).await;
    assert!(violations.is_empty(), "axe: {violations:#?}");
    let _ = c.close().await;
}
