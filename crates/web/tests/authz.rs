//! The authorization matrix, generated from the route table: every route × every role × a
//! resource of their own side and one of another co-op's/community's → allowed or denied as
//! the rules say (written out here independently of the guard). Also CSRF, session fixation,
//! revoked sessions and IDOR. Runs on SQLite and on Postgres.

mod support;

use axum::http::StatusCode;
use cooper_web::authz::Right;
use cooper_web::Rule;
use support::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Admin,
    OperatorA,
    CommunityAdminA,
    MemberA,
    TreasurerA,
}

const EVERYONE: [Who; 6] = [
    Who::Anonymous,
    Who::Admin,
    Who::OperatorA,
    Who::CommunityAdminA,
    Who::MemberA,
    Who::TreasurerA,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Own,
    Other,
}

/// What should happen: allowed, or denied with the guard's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed,
    Denied(&'static str),
}

/// The specification, written as a table of who gets what (the guard is not consulted).
fn expected(rule: Rule, who: Who, side: Side) -> Expect {
    use Expect::*;
    if rule == Rule::Public {
        return Allowed;
    }
    if who == Who::Anonymous {
        return Denied("login");
    }
    // The level each person has on the resource of a side.
    let level = |side: Side| -> Right {
        match (who, side) {
            (Who::Admin, _) => Right::Execute,
            (Who::OperatorA, Side::Own) => Right::Execute,
            (Who::CommunityAdminA, Side::Own) => Right::Request,
            (Who::MemberA, Side::Own) => Right::Read,
            _ => Right::None,
        }
    };
    let by_level = |need: Right, had: Right| match had {
        Right::None => Denied("not-found"),
        h if h < need => Denied("forbidden"),
        _ => Allowed,
    };
    match rule {
        Rule::Public => Allowed,
        Rule::Person => Allowed,
        Rule::Admin => {
            if who == Who::Admin {
                Allowed
            } else {
                Denied("not-found")
            }
        }
        Rule::Operator => {
            if matches!(who, Who::Admin | Who::OperatorA) {
                Allowed
            } else {
                Denied("not-found")
            }
        }
        Rule::Instance(need) | Rule::Job(need) | Rule::Request(need) => by_level(need, level(side)),
        Rule::Server(need) => {
            // Community people never see servers, not even their own instance's.
            let had = match who {
                Who::CommunityAdminA | Who::MemberA => Right::None,
                _ => level(side),
            };
            by_level(need, had)
        }
        // A co-op's books: its operators and treasurers keep them; community people do not
        // see them, not even their own co-op's.
        Rule::Coop(need) => {
            let had = match (who, side) {
                (Who::Admin, _) => Right::Execute,
                (Who::OperatorA | Who::TreasurerA, Side::Own) => Right::Execute,
                _ => Right::None,
            };
            by_level(need, had)
        }
        // The federation's practice: the people of member organisations (Co-op A is one, so
        // its operator and treasurer speak for it) take part; admins keep the registers;
        // community people see no member data.
        Rule::Federation(need) => {
            let had = match who {
                Who::Admin => Right::Execute,
                Who::OperatorA | Who::TreasurerA => Right::Read,
                _ => Right::None,
            };
            by_level(need, had)
        }
        // A community's books: its own people read them; another community's do not exist
        // for them; its co-op's operators and treasurers keep them.
        Rule::Community(need) => {
            let had = match (who, side) {
                (Who::Admin, _) => Right::Execute,
                (Who::OperatorA | Who::TreasurerA, Side::Own) => Right::Execute,
                (Who::CommunityAdminA | Who::MemberA, Side::Own) => Right::Read,
                _ => Right::None,
            };
            by_level(need, had)
        }
    }
}

struct Ids {
    job: [String; 2],
    request: [String; 2],
    proposal: String,
    meeting: String,
    poll: String,
    calendar: String,
}

async fn fixtures(w: &World) -> Ids {
    let job_own = w
        .store
        .create_job("backup", OWN, "{}", "seed")
        .await
        .unwrap()
        .id;
    let job_other = w
        .store
        .create_job("backup", OTHER, "{}", "seed")
        .await
        .unwrap()
        .id;
    let req_own = w
        .store
        .create_request("upgrade", OWN, "seed", "")
        .await
        .unwrap()
        .id;
    let req_other = w
        .store
        .create_request("upgrade", OTHER, "seed", "")
        .await
        .unwrap()
        .id;
    // The federation: Co-op A is a member; a proposal, a meeting, a poll and a calendar link.
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
    let now = cooper_store::now_ms();
    let proposal = w
        .store
        .propose(
            &cooper_store::federation::NewProposal {
                title: "A proposal".into(),
                summary: "Why".into(),
                details: String::new(),
                size: "medium".into(),
                budget: String::new(),
                deadline: now + 20 * 86_400_000,
            },
            &w.admin,
            now,
        )
        .await
        .unwrap()
        .id;
    let meeting = w
        .store
        .add_meeting("Extra meeting", now + 86_400_000, 60)
        .await
        .unwrap();
    let shape = cooper_federation::poll::Shape::new(
        chrono_tz::UTC,
        vec![chrono::NaiveDate::from_ymd_opt(2030, 5, 6).unwrap()],
        false,
        chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        chrono::NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
        60,
    )
    .unwrap();
    let poll = w
        .store
        .create_poll("A poll", &shape, 60, &w.admin)
        .await
        .unwrap();
    let calendar = w.store.new_calendar_link(&w.operator_a).await.unwrap();
    Ids {
        job: [job_own, job_other],
        request: [req_own, req_other],
        proposal,
        meeting,
        poll,
        calendar,
    }
}

fn fill(path: &str, side: Side, w: &World, ids: &Ids, token: &str) -> String {
    let i = match side {
        Side::Own => 0,
        Side::Other => 1,
    };
    path.replace("{domain}", [OWN, OTHER][i])
        .replace("{server}", ["alpha", "beta"][i])
        .replace("{job}", &ids.job[i])
        .replace("{request}", &ids.request[i])
        .replace("{person}", &w.throwaway)
        .replace("{file}", "style.css")
        .replace("{token}", token)
        .replace("{webhook}", "no-such-webhook")
        .replace("{instance_request}", "no-such-request")
        .replace("{coop}", [&w.coop_a, &w.coop_b][i])
        .replace("{community}", [&w.community_a, &w.community_b][i])
        .replace("{proposal}", &ids.proposal)
        .replace("{meeting}", &ids.meeting)
        .replace("{poll}", &ids.poll)
        .replace("{calendar}", &format!("{}.ics", ids.calendar))
}

async fn matrix(postgres: bool) {
    let Some(w) = world(postgres).await else {
        return;
    };
    let ids = fixtures(&w).await;
    let table = cooper_web::table();
    assert!(table.len() >= 30, "{} routes", table.len());
    let mut failures = Vec::new();
    let mut checked = 0;
    for who in EVERYONE {
        let mut client = Client::new(&w.router);
        let email = match who {
            Who::Anonymous => None,
            Who::Admin => Some("admin@example.org"),
            Who::OperatorA => Some("operator@a.example.org"),
            Who::CommunityAdminA => Some("admin@community-a.example.org"),
            Who::MemberA => Some("member@community-a.example.org"),
            Who::TreasurerA => Some("treasurer@a.example.org"),
        };
        if let Some(e) = email {
            client.login(e).await;
        }
        // Logging out ends the session: that route goes last.
        let mut routes = table.clone();
        routes.sort_by_key(|r| r.path == "/logout");
        for route in &routes {
            for side in [Side::Own, Side::Other] {
                let token = w
                    .store
                    .issue_token(
                        &cooper_store::Token {
                            purpose: "invite".into(),
                            email: Some("new@example.org".into()),
                            kind: None,
                            target_id: None,
                            role: None,
                            created_by: None,
                        },
                        60_000,
                    )
                    .await
                    .unwrap();
                let path = fill(route.path, side, &w, &ids, &token);
                if route.path == "/logout" && side == Side::Other {
                    if let Some(e) = email {
                        client.login(e).await;
                    }
                }
                let page = match route.method {
                    "GET" => {
                        if route.path.ends_with("/events") {
                            // A stream that stays open: only its head matters here.
                            let req = axum::http::Request::get(&path)
                                .body(axum::body::Body::empty())
                                .unwrap();
                            head_only(&mut client, req).await
                        } else {
                            client.get(&path).await
                        }
                    }
                    _ => {
                        client
                            .submit(&path, &[("kind", "backup"), ("note", "n")])
                            .await
                    }
                };
                let got = match page.denied.as_deref() {
                    Some(why) => Expect::Denied(match why {
                        "login" => "login",
                        "not-found" => "not-found",
                        "forbidden" => "forbidden",
                        other => panic!("unexpected denial {other} on {path}"),
                    }),
                    None => Expect::Allowed,
                };
                let want = expected(route.rule, who, side);
                checked += 1;
                if got != want {
                    failures.push(format!(
                        "{} {path} as {who:?} ({side:?}): expected {want:?}, got {got:?} ({})",
                        route.method, page.status
                    ));
                }
                if want == Expect::Denied("not-found") {
                    assert_eq!(
                        page.status,
                        StatusCode::NOT_FOUND,
                        "{path}: a hidden resource is a 404"
                    );
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} cases wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, table.len() * 2 * EVERYONE.len());
}

/// Sends a request and reads only the status and headers (for endless streams).
async fn head_only(client: &mut Client, mut req: axum::http::Request<axum::body::Body>) -> Page {
    use tower::ServiceExt;
    if let Some(c) = &client.cookie {
        req.headers_mut().insert("cookie", c.parse().unwrap());
    }
    let res = client.router.clone().oneshot(req).await.unwrap();
    Page {
        status: res.status(),
        location: None,
        denied: res
            .headers()
            .get("x-cooper-denied")
            .map(|v| v.to_str().unwrap().to_string()),
        body: String::new(),
        set_cookie: None,
    }
}

#[tokio::test]
async fn the_matrix_holds_on_sqlite() {
    matrix(false).await
}

#[tokio::test]
async fn the_matrix_holds_on_postgres() {
    matrix(true).await
}

async fn sessions_and_csrf(postgres: bool) {
    let Some(w) = world(postgres).await else {
        return;
    };
    // Session fixation: the id before login is not the id after.
    let mut c = Client::new(&w.router);
    let csrf = c.csrf().await;
    let before = c
        .cookie
        .clone()
        .expect("a session before login (for the CSRF token)");
    let page = c
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "operator@a.example.org"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let after = c.cookie.clone().unwrap();
    assert_ne!(before, after, "the session id changes at login");
    let set = page.set_cookie.unwrap();
    for flag in ["HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    let mut fixated = Client {
        router: w.router.clone(),
        cookie: Some(before),
    };
    assert_eq!(
        fixated.get("/instances").await.denied.as_deref(),
        Some("login")
    );

    // CSRF: missing or wrong → refused, nothing queued.
    let jobs_before = w.store.jobs(Some(OWN), 100).await.unwrap().len();
    let path = format!("/instances/{OWN}/jobs");
    let missing = c.post(&path, &[("kind", "backup")]).await;
    assert_eq!(
        (missing.status, missing.denied.as_deref()),
        (StatusCode::FORBIDDEN, Some("csrf"))
    );
    let wrong = c.post(&path, &[("csrf", "0000"), ("kind", "backup")]).await;
    assert_eq!(
        (wrong.status, wrong.denied.as_deref()),
        (StatusCode::FORBIDDEN, Some("csrf"))
    );
    // Another session's token does not work either.
    let mut other = Client::new(&w.router);
    other.login("admin@example.org").await;
    let foreign = other.csrf().await;
    let stolen = c
        .post(&path, &[("csrf", &foreign), ("kind", "backup")])
        .await;
    assert_eq!(stolen.denied.as_deref(), Some("csrf"));
    assert_eq!(
        w.store.jobs(Some(OWN), 100).await.unwrap().len(),
        jobs_before,
        "nothing was queued"
    );
    let ok = c.submit(&path, &[("kind", "backup")]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert!(ok.location.unwrap().starts_with("/jobs/"));
    assert_eq!(
        w.store.jobs(Some(OWN), 100).await.unwrap().len(),
        jobs_before + 1
    );

    // Revoked: an admin logs the operator out everywhere.
    let person = w
        .store
        .person_by_email("operator@a.example.org")
        .await
        .unwrap()
        .unwrap();
    let revoke = other
        .submit(&format!("/people/{}/revoke", person.id), &[])
        .await;
    assert_eq!(revoke.status, StatusCode::OK, "{}", revoke.body);
    assert_eq!(c.get("/instances").await.denied.as_deref(), Some("login"));

    // Logged out: the old cookie is dead.
    let mut d = Client::new(&w.router);
    d.login("member@community-a.example.org").await;
    let cookie = d.cookie.clone();
    d.submit("/logout", &[]).await;
    let mut replay = Client {
        router: w.router.clone(),
        cookie,
    };
    assert_eq!(
        replay.get("/instances").await.denied.as_deref(),
        Some("login")
    );
}

#[tokio::test]
async fn sessions_and_csrf_hold_on_sqlite() {
    sessions_and_csrf(false).await
}

#[tokio::test]
async fn sessions_and_csrf_hold_on_postgres() {
    sessions_and_csrf(true).await
}

#[tokio::test]
async fn lists_show_only_what_each_may_see_and_never_a_secret() {
    let w = world(false).await.unwrap();
    for (email, sees, hidden) in [
        (
            "admin@example.org",
            vec![OWN, OTHER, "free.alpha.example.org"],
            vec![],
        ),
        (
            "operator@a.example.org",
            vec![OWN, "free.alpha.example.org"],
            vec![OTHER],
        ),
        (
            "member@community-a.example.org",
            vec![OWN],
            vec![OTHER, "free.alpha.example.org"],
        ),
    ] {
        let mut c = Client::new(&w.router);
        c.login(email).await;
        let list = c.get("/instances").await;
        assert_eq!(list.status, StatusCode::OK);
        for d in &sees {
            assert!(list.body.contains(d), "{email} sees {d}");
        }
        for d in &hidden {
            assert!(!list.body.contains(d), "{email} must not see {d}");
        }
        for page in [
            "/instances",
            &format!("/instances/{OWN}"),
            "/audit",
            "/servers",
            "/catalogue",
        ] {
            let p = c.get(page).await;
            assert!(
                !p.body.contains(SECRET_VALUE),
                "{page} as {email} shows a secret value"
            );
        }
    }
}

#[tokio::test]
async fn the_login_limit_answers_429_and_is_audited() {
    let (dir, store) = cooper_store::testing::sqlite().await;
    let abra_dir = tempfile::tempdir().unwrap();
    let state = cooper_web::Inner::with_source(
        store.clone(),
        cooper_recipe::abra_dir::AbraDir::new(abra_dir.path()),
        cooper_web::Config {
            login_per_minute: 3,
            ..Default::default()
        },
        std::sync::Arc::new(Fixed(Default::default())),
    );
    let router = cooper_web::app(state);
    let hash = cooper_web::auth::hash_password(PASSWORD).unwrap();
    store
        .add_person("x@example.org", "X", Some(&hash), false)
        .await
        .unwrap();
    let mut c = Client::new(&router);
    for _ in 0..3 {
        let p = c
            .submit(
                "/login",
                &[("email", "x@example.org"), ("password", "wrong password!")],
            )
            .await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        assert!(p.body.contains("The email or the password is wrong."));
    }
    // Even the right password waits now.
    let p = c
        .submit(
            "/login",
            &[("email", "x@example.org"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    let log = store.audit_log(10).await.unwrap();
    assert!(log.iter().any(|e| e.outcome == "refused"), "{log:?}");
    assert!(log
        .iter()
        .all(|e| !e.detail.contains(PASSWORD) && !e.detail.contains("wrong password!")));
    drop(dir);
}
