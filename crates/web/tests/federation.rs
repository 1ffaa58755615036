//! The federation's practice through the dashboard: the ICS feed read by an independent parser
//! (Python's icalendar, with dateutil expanding the rule) and compared with cooper's own
//! expansion for a year across daylight-saving changes in two zones; the scheduler's tick on a
//! controlled clock closing a decision and announcing it, and reminding a review; polls with a
//! password, a wrong one refused, grids in the viewer's timezone; minutes that cannot run
//! script; and the private calendar link shown once and never again.

mod support;

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use cooper_federation::decision::DAY_MS;
use support::*;

fn tools() -> PathBuf {
    match std::env::var("COOPER_WEB_TOOLS") {
        Ok(p) => PathBuf::from(p).parent().unwrap().to_path_buf(),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-tools"),
    }
}

async fn admin(w: &World) -> Client {
    let mut c = Client::new(&w.router);
    c.login("admin@example.org").await;
    c
}

#[tokio::test]
async fn the_feed_agrees_with_an_independent_parser_across_daylight_saving() {
    let w = world(false).await.unwrap();
    let mut a = admin(&w).await;
    for (title, tz, first, skipped) in [
        (
            "Federation meeting",
            "Europe/Berlin",
            "2027-01-06 15:00",
            "2027-08-04",
        ),
        ("Americas call", "America/New_York", "2027-01-12 11:30", ""),
    ] {
        let rule = if tz == "Europe/Berlin" {
            "FREQ=MONTHLY;BYDAY=1WE"
        } else {
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU"
        };
        let p = a
            .submit(
                "/federation/series",
                &[
                    ("title", title),
                    ("rule", rule),
                    ("first", first),
                    ("tz", tz),
                    ("minutes", "90"),
                    ("skipped", skipped),
                    ("rota", "operator@a.example.org treasurer@a.example.org"),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    }
    // A bad rule is refused with what to write.
    let p = a
        .submit(
            "/federation/series",
            &[
                ("title", "x"),
                ("rule", "FREQ=FORTNIGHTLY"),
                ("first", "2027-01-06 15:00"),
                ("tz", "UTC"),
                ("minutes", "60"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.body.contains("FREQ=MONTHLY;BYDAY=1WE"), "{}", p.body);

    let feed = a.get("/federation/calendar.ics").await;
    assert_eq!(feed.status, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("feed.ics");
    std::fs::write(&file, &feed.body).unwrap();
    let out = std::process::Command::new(tools().join("py/bin/python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ics_check.py"))
        .arg(&file)
        .args(["2027-01-01", "2028-01-01"])
        .output()
        .expect("scripts/setup-web-tools installs icalendar in target/web-tools/py");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        feed.body
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for zone in ["Europe/Berlin", "America/New_York"] {
        assert_eq!(v["zones"][zone]["agree"], true, "{zone}: {}", v["zones"]);
        assert!(v["zones"][zone]["checked"].as_u64().unwrap() >= 52);
    }
    let series = w.store.meeting_series().await.unwrap();
    assert_eq!(series.len(), 2);
    let from = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    let to = Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap();
    for s in &series {
        let ours: Vec<String> = s
            .rhythm
            .between(from, to)
            .iter()
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .collect();
        let event = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["uid"] == format!("{}@cooper", s.id))
            .expect("each rhythm is an event of the feed");
        let theirs: Vec<String> = event["occurrences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap().to_string())
            .collect();
        assert_eq!(ours, theirs, "{}", s.title);
        assert_eq!(event["tzid"], s.rhythm.tz.name());
    }
    let berlin = series
        .iter()
        .find(|s| s.title == "Federation meeting")
        .unwrap();
    let times: Vec<String> = berlin
        .rhythm
        .between(from, to)
        .iter()
        .map(|d| d.format("%m-%d %H:%M").to_string())
        .collect();
    assert_eq!(times.len(), 11, "August skipped: {times:?}");
    assert!(
        times.contains(&"01-06 14:00".to_string()),
        "winter: {times:?}"
    );
    assert!(
        times.contains(&"04-07 13:00".to_string()),
        "summer: {times:?}"
    );
}

#[tokio::test]
async fn the_scheduler_closes_decisions_and_reminds_reviews_on_a_controlled_clock() {
    let w = world(false).await.unwrap();
    let s = &w.store;
    let t0 = Utc
        .with_ymd_and_hms(2027, 3, 1, 12, 0, 0)
        .unwrap()
        .timestamp_millis();
    let a = s
        .add_fed_member(
            "Co-op A",
            "founding",
            time::macros::date!(2024 - 01 - 01),
            "",
            Some(&w.coop_a),
        )
        .await
        .unwrap();
    let b = s
        .add_fed_member(
            "Co-op B",
            "member",
            time::macros::date!(2024 - 01 - 01),
            "",
            None,
        )
        .await
        .unwrap();
    let p = s
        .propose(
            &cooper_store::federation::NewProposal {
                title: "Adopt the new dues".into(),
                summary: "Ten a month".into(),
                details: String::new(),
                size: "medium".into(),
                budget: String::new(),
                deadline: t0 + 15 * DAY_MS,
            },
            &w.admin,
            t0,
        )
        .await
        .unwrap();
    s.fed_vote(
        &p.id,
        &a.id,
        cooper_federation::Vote::For,
        "",
        &w.operator_a,
        t0 + DAY_MS,
    )
    .await
    .unwrap();
    s.fed_vote(
        &p.id,
        &b.id,
        cooper_federation::Vote::StandAside,
        "",
        &w.admin,
        t0 + DAY_MS,
    )
    .await
    .unwrap();
    let review = s
        .add_review(&cooper_federation::Review::after(
            "Review of the dues",
            "R001",
            time::macros::date!(2026 - 09 - 20),
            6,
        ))
        .await
        .unwrap();
    let tick = |now: i64| cooper_web::scheduler::federation(&w.state.store, &w.state.notifier, now);
    let store = w.store.clone();
    let news = |event: &'static str| {
        let store = store.clone();
        async move {
            store
                .outbox(1000)
                .await
                .unwrap()
                .into_iter()
                .filter(|m| m.event == event)
                .collect::<Vec<_>>()
        }
    };
    tick(t0 + 14 * DAY_MS).await.unwrap();
    assert_eq!(s.proposal(&p.id).await.unwrap().unwrap().state, "open");
    assert!(news("decision.made").await.is_empty());
    // Due 2027-03-20: reminded once in its notice.
    assert_eq!(
        news("review.reminder").await.len(),
        3,
        "the admin and Co-op A's operator and treasurer"
    );
    tick(t0 + 16 * DAY_MS).await.unwrap();
    tick(t0 + 16 * DAY_MS + 1000).await.unwrap();
    let decided = s.proposal(&p.id).await.unwrap().unwrap();
    assert_eq!(decided.state, "passed");
    assert_eq!(decided.number.as_deref(), Some("R001"));
    let made = news("decision.made").await;
    let mut to: Vec<&str> = made
        .iter()
        .filter(|m| m.channel == "email")
        .map(|m| m.target.as_str())
        .collect();
    to.sort();
    assert_eq!(
        to,
        vec![
            "admin@example.org",
            "operator@a.example.org",
            "treasurer@a.example.org"
        ],
        "announced once to the federation, not to community people"
    );
    assert!(
        made[0].subject.contains("R001 passed"),
        "{}",
        made[0].subject
    );
    // The review: on the day, then weekly, until minutes hold it.
    tick(
        Utc.with_ymd_and_hms(2027, 3, 20, 8, 0, 0)
            .unwrap()
            .timestamp_millis(),
    )
    .await
    .unwrap();
    assert_eq!(
        news("review.reminder").await.len(),
        6,
        "and again on the day"
    );
    s.hold_review(&review, time::macros::date!(2027 - 03 - 21), "Kept")
        .await
        .unwrap();
    let before = news("review.reminder").await.len();
    tick(
        Utc.with_ymd_and_hms(2027, 4, 1, 8, 0, 0)
            .unwrap()
            .timestamp_millis(),
    )
    .await
    .unwrap();
    assert_eq!(
        news("review.reminder").await.len(),
        before,
        "held: no more reminders"
    );
}

#[tokio::test]
async fn polls_take_a_name_and_an_optional_password_and_show_each_their_timezone() {
    let w = world(false).await.unwrap();
    let shape = cooper_federation::poll::Shape::new(
        chrono_tz::Europe::Berlin,
        vec![
            chrono::NaiveDate::from_ymd_opt(2027, 3, 27).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2027, 3, 28).unwrap(),
        ],
        false,
        chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        chrono::NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
        60,
    )
    .unwrap();
    let id = w
        .store
        .create_poll("Strategy day", &shape, 120, &w.admin)
        .await
        .unwrap();
    let path = format!("/polls/{id}");
    // Anyone with the link, no account.
    let mut ana = Client::new(&w.router);
    let page = ana.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Your name"));
    let csrf = page.csrf().unwrap();
    let p = ana
        .post(
            &format!("{path}/join"),
            &[
                ("csrf", &csrf),
                ("name", "Ana"),
                ("password", "tortoise"),
                ("tz", "Europe/Berlin"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = ana
        .post(
            &format!("{path}/paint"),
            &[("csrf", &csrf), ("slot", "0"), ("slot", "1"), ("slot", "3")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    // Someone else under Ana's name with a wrong password is refused; nothing changes.
    let mut eve = Client::new(&w.router);
    let csrf_e = eve.get(&path).await.csrf().unwrap();
    let p = eve
        .post(
            &format!("{path}/join"),
            &[
                ("csrf", &csrf_e),
                ("name", "Ana"),
                ("password", "hare"),
                ("tz", "UTC"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = eve
        .post(&format!("{path}/paint"), &[("csrf", &csrf_e)])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "not signed in to the poll");
    let marks = w.store.poll_marks(&id).await.unwrap();
    assert_eq!(marks[0].1, vec![0, 1, 3]);
    // Ana again, on another device, with her password.
    let mut ana2 = Client::new(&w.router);
    let csrf2 = ana2.get(&path).await.csrf().unwrap();
    let p = ana2
        .post(
            &format!("{path}/join"),
            &[
                ("csrf", &csrf2),
                ("name", "Ana"),
                ("password", "tortoise"),
                ("tz", "UTC"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let page = ana2.get(&path).await;
    assert!(page.body.contains("You are <strong id=\"me\">Ana</strong>"));
    assert_eq!(
        page.body.matches(" checked>").count(),
        3,
        "her marks, checked"
    );
    assert!(
        !page.body.contains("tortoise"),
        "the password is never shown"
    );
    // In Berlin the grid starts at 09:00; in New York (summer time already) at 03:00 on the
    // Sunday of Europe's change and 04:00 on the Saturday.
    let berlin = ana2.get(&format!("{path}?tz=Europe/Berlin")).await.body;
    assert!(berlin.contains("<th scope=\"row\">09:00</th>"));
    let ny = ana2.get(&format!("{path}?tz=America/New_York")).await.body;
    assert!(
        ny.contains("<th scope=\"row\">03:00</th>") && ny.contains("<th scope=\"row\">04:00</th>"),
        "{ny}"
    );
    assert!(!ny.contains("<th scope=\"row\">09:00</th>"));
    // Best times for the two-hour meeting: 09:00–11:00 on the Saturday (slots 0 and 1).
    let best = ana2.get(&format!("{path}?tz=Europe/Berlin")).await.body;
    let list = best.split("id=\"best\"").nth(1).unwrap();
    assert!(list.contains("Sat 27 Mar 09:00 — Ana"), "{list}");
}

#[tokio::test]
async fn minutes_cannot_run_script_and_the_calendar_link_is_shown_once() {
    let w = world(false).await.unwrap();
    w.store
        .add_fed_member(
            "Co-op A",
            "founding",
            time::macros::date!(2024 - 01 - 01),
            "",
            Some(&w.coop_a),
        )
        .await
        .unwrap();
    let mut a = admin(&w).await;
    let m = w
        .store
        .add_meeting("Extra meeting", cooper_store::now_ms() - 3_600_000, 60)
        .await
        .unwrap();
    let path = format!("/federation/meetings/{m}");
    let p = a
        .submit(
            &format!("{path}/minutes"),
            &[
                (
                    "notes",
                    "## Check-in\n\n**bold**\n\n<script>alert(1)</script>",
                ),
                ("present", "x"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let page = a.get(&path).await.body;
    assert!(page.contains("<strong>bold</strong>"));
    assert!(!page.contains("<script>alert"), "raw HTML is text");
    assert!(page.contains("&lt;script&gt;"));

    let mut op = Client::new(&w.router);
    op.login("operator@a.example.org").await;
    let shown = op.submit("/federation/calendar-link", &[]).await.body;
    let at = shown.find("/calendar/").expect("the link, once");
    let link: String = shown[at..].chars().take_while(|c| *c != '<').collect();
    let feed = Client::new(&w.router).get(&link).await;
    assert_eq!(feed.status, StatusCode::OK);
    assert!(feed.body.starts_with("BEGIN:VCALENDAR"));
    let token = link
        .trim_start_matches("/calendar/")
        .trim_end_matches(".ics");
    let again = op.get("/federation").await.body;
    assert!(!again.contains(token), "shown once");
    let audit = w.store.audit_log(1000).await.unwrap();
    assert!(audit.iter().all(|e| !format!("{e:?}").contains(token)));
    // A community member has no federation link; a made-up one is a 404.
    assert_eq!(
        Client::new(&w.router)
            .get("/calendar/nope.ics")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn budgets_are_checked_against_the_fund_and_show_their_spending() {
    let w = world(false).await.unwrap();
    w.store
        .add_fed_member(
            "Co-op A",
            "founding",
            time::macros::date!(2024 - 01 - 01),
            "",
            Some(&w.coop_a),
        )
        .await
        .unwrap();
    let mut op = Client::new(&w.router);
    op.login("operator@a.example.org").await;
    let deadline = (Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let ask = |amount: &'static str| {
        vec![
            ("title", "Docs sprint"),
            ("summary", "Ten hours a month for the docs"),
            ("size", "small"),
            ("budget_amount", amount),
            ("budget", "EUR a month for docs"),
        ]
    };
    // The common fund is empty: below Co-op Cloud's buffer of 1,500, no new budget.
    let mut form = ask("250");
    form.push(("deadline", deadline.as_str()));
    let p = op.submit("/federation/proposals", &form).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.body.contains("buffer"), "{}", p.body);
    // Dues arrive (2,000 EUR); the same proposal is accepted, a Small one passes at once.
    let m = w.store.fed_members().await.unwrap();
    w.store
        .record_dues_payment(
            &m[0].id,
            time::macros::date!(2026 - 01 - 05),
            200_000,
            "EUR".parse().unwrap(),
            "",
            None,
            "admin",
        )
        .await
        .unwrap();
    let p = op.submit("/federation/proposals", &form).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let path = p.location.unwrap();
    // Hours booked in the co-op's books under R001 show as spent this month.
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let fields: std::collections::HashMap<&str, String> = [
        ("kind", "labour".to_string()),
        ("date", today),
        ("currency", "EUR".to_string()),
        ("party", "person:ana@example.org".to_string()),
        ("target", "federation".to_string()),
        ("status", "received".to_string()),
        ("recurs", "once".to_string()),
        ("hours", "3".to_string()),
        ("note", "R001 docs".to_string()),
    ]
    .into_iter()
    .collect();
    let e = cooper_ledger::import::template_entry(&|k| fields.get(k).cloned().unwrap_or_default())
        .unwrap();
    w.store.add_entry(&w.coop_a, &e, "t").await.unwrap();
    let page = op.get(&path).await.body;
    assert!(page.contains("R001: Docs sprint"), "{page}");
    let spent = page
        .split("id=\"spent\">")
        .nth(1)
        .unwrap()
        .split("</dd>")
        .next()
        .unwrap();
    assert!(
        spent.starts_with("3 h in ") && spent.contains("1 line(s)"),
        "{spent}"
    );
}
