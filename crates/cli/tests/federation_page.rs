//! The federation in a real Chromium: a member proposes a Medium decision from the template,
//! three member organisations vote (one changes its vote), the decision closes at its deadline
//! (the scheduler's store call on a clock past it) and the page shows it passed as R001; then,
//! in a phone-sized window, someone with only the poll's link adds their name and paints their
//! free times with a finger (a touch drag across the grid), a tap and the keyboard, and the
//! heatmap and the best time follow. Screenshots are kept under
//! `target/dashboard-screenshots/federation-*.png`; axe finds no serious violation.

mod browser;

use std::time::Duration;

use browser::*;
use fantoccini::actions::{InputSource, PointerAction, TouchActions};
use fantoccini::Locator;

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn propose_vote_decide_and_paint_a_poll_on_a_phone() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn login(c: &fantoccini::Client, base: &str, email: &str) {
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("{base}/login")).await.unwrap();
    fill(c, "#email", email).await;
    fill(c, "#password", PASSWORD).await;
    click(c, "form[action='/login'] button[type=submit]").await;
    wait_text(c, "h1", "Instances", Duration::from_secs(20)).await;
}

/// Waits (bounded) until the browser shows a new, fully loaded document: one without the
/// `window` mark set on the old one.
async fn new_document(c: &fantoccini::Client, mark: &str) {
    let script = format!("return window.{mark} === true ? 'old' : document.readyState");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = c.execute(&script, vec![]).await.ok();
        if state.as_ref().and_then(|v| v.as_str()) == Some("complete") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new page within 20 s (last: {state:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn checked(c: &fantoccini::Client) -> i64 {
    c.execute(
        "return document.querySelectorAll('#grid input[name=slot]:checked').length",
        vec![],
    )
    .await
    .unwrap()
    .as_i64()
    .unwrap_or(-1)
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let abra = dir.path();
    std::fs::create_dir_all(abra.join("servers")).unwrap();
    let store = cooper_store::Store::open_default(abra).await.unwrap();
    let hash = cooper_web::auth::hash_password(PASSWORD).unwrap();
    let mut people = Vec::new();
    for (org, email) in [
        ("Autonomic", "ana@autonomic.example"),
        ("Local-IT", "bo@local-it.example"),
        ("Klasse & Methode", "cy@klasse.example"),
    ] {
        let m = store
            .add_fed_member(
                org,
                "founding",
                time::macros::date!(2023 - 03 - 03),
                "",
                None,
            )
            .await
            .unwrap();
        let p = store
            .add_person(email, email, Some(&hash), false)
            .await
            .unwrap();
        store.link_fed_person(&m.id, &p.id).await.unwrap();
        people.push(p.id);
    }
    let shape = cooper_federation::poll::Shape::new(
        chrono_tz::Europe::Berlin,
        (3..6)
            .map(|d| chrono::NaiveDate::from_ymd_opt(2030, 6, d).unwrap())
            .collect(),
        false,
        chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        chrono::NaiveTime::from_hms_opt(13, 0, 0).unwrap(),
        60,
    )
    .unwrap();
    let poll = store
        .create_poll("Strategy day", &shape, 120, &people[0])
        .await
        .unwrap();
    // Dues since January with one organisation behind, a review overdue since October, and a
    // monthly rhythm with its rota: what the federation page shows.
    let eur: cooper_ledger::Currency = "EUR".parse().unwrap();
    store
        .set_dues_rate(
            time::macros::date!(2026 - 01 - 01),
            1000,
            eur,
            cooper_federation::rules::DuesPeriod::Monthly,
            "R002",
        )
        .await
        .unwrap();
    let members = store.fed_members().await.unwrap();
    for m in members.iter().filter(|m| m.name != "Local-IT") {
        store
            .record_dues_payment(
                &m.id,
                time::macros::date!(2026 - 01 - 05),
                50_000,
                eur,
                "2026 and 2027",
                None,
                "admin",
            )
            .await
            .unwrap();
    }
    store
        .add_review(&cooper_federation::Review::after(
            "Review of the dues",
            "R002",
            time::macros::date!(2026 - 04 - 13),
            6,
        ))
        .await
        .unwrap();
    let rhythm = cooper_federation::meetings::Rhythm::new(
        "FREQ=MONTHLY;BYDAY=1WE",
        cooper_federation::meetings::wall_clock("2026-01-07 15:00").unwrap(),
        chrono_tz::UTC,
        90,
        vec![],
    )
    .unwrap();
    store
        .add_meeting_series("Federation meeting", &rhythm, &people[..2])
        .await
        .unwrap();
    let now = cooper_store::now_ms();
    store
        .plan_meetings(now - 86_400_000, now + 62 * 86_400_000)
        .await
        .unwrap();
    drop(store);

    let server = serve(abra).await;
    let base = server.base.clone();
    let axe_js = axe_js();
    let driver = chromedriver().await;
    let c = browser(&driver).await;
    let mut violations = Vec::new();

    // Ana proposes from the template.
    login(&c, &base, "ana@autonomic.example").await;
    click(&c, "a[href='/federation']").await;
    wait_text(&c, "h1", "Federation", Duration::from_secs(10)).await;
    let reviews = wait_text(
        &c,
        "#reviews + p + ul",
        "Review of the dues",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        reviews.contains("overdue by"),
        "the review shows its age: {reviews}"
    );
    let members = wait_text(
        &c,
        "#members ~ .scroll",
        "Local-IT",
        Duration::from_secs(10),
    )
    .await;
    assert!(members.contains("unpaid"), "arrears per member: {members}");
    wait_text(&c, "#meetings ~ ul", "facilitates", Duration::from_secs(10)).await;
    shot(&c, "federation-01-index").await;
    violations.extend(
        axe(&c, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("federation: {v}")),
    );
    c.goto(&format!("{base}/federation/propose")).await.unwrap();
    fill(&c, "#p-title", "Move the wiki to a new server").await;
    fill(&c, "#p-summary", "The old one is out of support.").await;
    choose(&c, "#p-size", "medium").await;
    click(
        &c,
        "form[action='/federation/proposals'] button[type=submit]",
    )
    .await;
    wait_text(&c, "#state", "open", Duration::from_secs(10)).await;
    let url = c.current_url().await.unwrap().to_string();
    let id = url.rsplit('/').next().unwrap().to_string();
    violations.extend(
        axe(&c, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("decision: {v}")),
    );

    // Three member organisations vote; Local-IT first blocks, then changes to for.
    for (email, vote, comment) in [
        ("ana@autonomic.example", "for", "Yes"),
        (
            "bo@local-it.example",
            "block",
            "Not before the backup is tested",
        ),
        ("bo@local-it.example", "for", "Backup tested: fine"),
        ("cy@klasse.example", "stand-aside", ""),
    ] {
        login(&c, &base, email).await;
        c.goto(&format!("{base}/decisions/{id}")).await.unwrap();
        click(&c, &format!("input[name=vote][value='{vote}']")).await;
        if !comment.is_empty() {
            fill(&c, "#vote-comment", comment).await;
        }
        click(&c, "form[action$='/vote'] button[type=submit]").await;
        wait_text(&c, "#tally", "of 3 members", Duration::from_secs(10)).await;
    }
    let tally = wait_text(&c, "#tally", "2 for", Duration::from_secs(10)).await;
    assert!(
        tally.contains("1 standing aside") && tally.contains("0 blocking"),
        "{tally}"
    );
    let votes = c
        .find(Locator::Css("#votes + ul"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        votes.contains("Backup tested: fine"),
        "the changed vote counts: {votes}"
    );
    assert!(!votes.contains("Not before"), "{votes}");

    // The deadline passes: the scheduler's call decides it, and the page says so.
    let store = cooper_store::Store::open_default(abra).await.unwrap();
    let p = store.proposal(&id).await.unwrap().unwrap();
    let decided = store.decide_due_proposals(p.deadline + 1).await.unwrap();
    assert_eq!(decided.len(), 1);
    drop(store);
    c.goto(&format!("{base}/decisions/{id}")).await.unwrap();
    wait_text(&c, "#state", "passed", Duration::from_secs(10)).await;
    wait_text(&c, "h1", "R001: Move the wiki", Duration::from_secs(10)).await;
    shot(&c, "federation-02-decision-passed").await;
    on_a_phone(
        &c,
        &base,
        &[
            ("/federation".to_string(), "federation-04-index-phone"),
            (format!("/decisions/{id}"), "federation-05-decision-phone"),
        ],
    )
    .await;
    // The register is public.
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("{base}/decisions")).await.unwrap();
    wait_text(&c, "main", "R001", Duration::from_secs(10)).await;

    // A phone, no account: the poll's link, a name, then painting.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{base}/polls/{poll}")).await.unwrap();
    wait_text(&c, "h1", "Strategy day", Duration::from_secs(10)).await;
    fill(&c, "#name", "Dee").await;
    click(&c, "#join button[type=submit]").await;
    wait_text(&c, "#me", "Dee", Duration::from_secs(10)).await;
    // The grid scrolls inside its own box if it must; the page does not.
    assert!(
        sideways_overflow(&c).await <= 0,
        "no sideways scrolling on a phone"
    );
    // A finger drags down the first day's column over three hours.
    let cell = |i: usize| {
        let c = c.clone();
        async move {
            c.find(Locator::Css(&format!(
                "#grid tbody tr:nth-child({}) td:nth-child(2)",
                i + 1
            )))
            .await
            .unwrap()
        }
    };
    let (c0, c1, c2) = (cell(0).await, cell(1).await, cell(2).await);
    let finger = TouchActions::new("finger".into())
        .then(PointerAction::MoveToElement {
            element: c0,
            duration: None,
            x: 0.,
            y: 0.,
        })
        .then(PointerAction::Down { button: 0 })
        .then(PointerAction::MoveToElement {
            element: c1,
            duration: Some(Duration::from_millis(150)),
            x: 0.,
            y: 0.,
        })
        .then(PointerAction::MoveToElement {
            element: c2,
            duration: Some(Duration::from_millis(150)),
            x: 0.,
            y: 0.,
        })
        .then(PointerAction::Up { button: 0 });
    c.perform_actions(finger).await.unwrap();
    assert_eq!(checked(&c).await, 3, "the stroke painted three hours");
    // Saved by the stroke itself: a reload shows them.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        c.refresh().await.unwrap();
        wait_text(&c, "#me", "Dee", Duration::from_secs(10)).await;
        if checked(&c).await == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the stroke was saved");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The keyboard: a box on the second day ticked with space, saved with the button.
    let b = c
        .find(Locator::Css(
            "#grid tbody tr:nth-child(1) td:nth-child(3) input",
        ))
        .await
        .unwrap();
    b.send_keys(" ").await.unwrap();
    // The button posts the form and the page comes back: wait for the new document, not for
    // text the old one still shows.
    c.execute("window.__before_save = true", vec![])
        .await
        .unwrap();
    click(&c, "#save").await;
    new_document(&c, "__before_save").await;
    wait_text(&c, "#me", "Dee", Duration::from_secs(10)).await;
    assert_eq!(checked(&c).await, 4);
    // The grid is in the browser's own timezone (the join form sent it); the best time for
    // the two-hour meeting starts at the first row, 09:00 in Berlin.
    let first_row = c
        .find(Locator::Css("#grid tbody tr:nth-child(1) th"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let best = wait_text(&c, "#best", "Dee", Duration::from_secs(10)).await;
    assert!(
        best.lines().next().unwrap_or_default().contains(&first_row),
        "a two-hour meeting fits from the first row ({first_row}): {best}"
    );
    shot(&c, "federation-03-poll-phone").await;
    violations.extend(
        axe(&c, &axe_js)
            .await
            .into_iter()
            .map(|v| format!("poll: {v}")),
    );
    assert!(violations.is_empty(), "axe: {violations:#?}");
    let _ = c.close().await;
}
