//! `cooper federation …` end to end: the binary over a real store (SQLite under `$ABRA_DIR`) —
//! members and who speaks for them, dues with a changed rate, a waiver and a payment matched
//! from a member co-op's books (once, however often matched), a review that is overdue, a
//! Medium proposal voted by three organisations and decided by the scheduler's step, a rhythm
//! and its feed — and the errors a person meets, named with their fix.

use std::process::{Command, Output, Stdio};

struct Fed {
    dir: tempfile::TempDir,
}

impl Fed {
    fn new() -> Fed {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("servers")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = cooper_store::Store::open_default(dir.path()).await.unwrap();
            let coop = store.add_coop("Autonomic").await.unwrap();
            for (email, coop_role) in [
                ("ana@autonomic.example", Some("operator")),
                ("bo@local-it.example", None),
                ("cy@klasse.example", None),
            ] {
                let p = store.add_person(email, email, None, false).await.unwrap();
                if let Some(role) = coop_role {
                    store
                        .add_membership(&p.id, "coop", &coop.id, role)
                        .await
                        .unwrap();
                }
            }
        });
        Fed { dir }
    }

    fn cooper(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cooper"))
            .args(args)
            .env("ABRA_DIR", self.dir.path())
            .env_remove("COOPER_DATABASE")
            .env_remove("COOPER_PERSON")
            .env_remove("COOPER_COOP")
            .stdin(Stdio::null())
            .output()
            .expect("cooper runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cooper(args);
        assert!(
            out.status.success(),
            "cooper {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.cooper(args);
        assert!(
            !out.status.success(),
            "cooper {args:?} should fail:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("-m prints JSON")
    }
}

#[test]
fn members_dues_and_an_overdue_review_from_the_terminal() {
    let f = Fed::new();
    f.ok(&[
        "federation",
        "member",
        "add",
        "Autonomic",
        "--status",
        "founding",
        "--joined",
        "2023-03-03",
        "--coop",
        "Autonomic",
    ]);
    // Joining is a Large decision (Co-op Cloud's rules): without one, or with a smaller one,
    // a member is refused.
    let e = f.fails(&[
        "federation",
        "member",
        "add",
        "Local-IT",
        "--joined",
        "2026-09-15",
    ]);
    assert!(e.contains("large decision"), "{e}");
    let e = f.fails(&[
        "federation",
        "member",
        "add",
        "Local-IT",
        "--joined",
        "2026-09-15",
        "--decision",
        "R009",
    ]);
    assert!(e.contains("no passed decision R009"), "{e}");
    // Autonomic, the only member so far, votes to admit two more; the deadline passes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = cooper_store::Store::open_default(f.dir.path())
            .await
            .unwrap();
        let ana = store
            .person_by_email("ana@autonomic.example")
            .await
            .unwrap()
            .unwrap();
        let now = cooper_store::now_ms();
        let p = store
            .propose(
                &cooper_store::federation::NewProposal {
                    title: "Admit Local-IT and Small Co-op".into(),
                    summary: "They host with us already".into(),
                    details: String::new(),
                    size: "large".into(),
                    budget: String::new(),
                    deadline: now + 15 * 86_400_000,
                },
                &ana.id,
                now,
            )
            .await
            .unwrap();
        let auto = store.fed_members_of(&ana.id).await.unwrap();
        store
            .fed_vote(
                &p.id,
                &auto[0].id,
                cooper_federation::Vote::For,
                "",
                &ana.id,
                now,
            )
            .await
            .unwrap();
        let decided = store.decide_due_proposals(p.deadline + 1).await.unwrap();
        assert_eq!(decided[0].number.as_deref(), Some("R001"));
    });
    f.ok(&[
        "federation",
        "member",
        "add",
        "Local-IT",
        "--joined",
        "2026-09-15",
        "--decision",
        "R001",
    ]);
    f.ok(&[
        "f",
        "member",
        "add",
        "Small Co-op",
        "--status",
        "solidarity",
        "--joined",
        "2026-01-01",
        "--decision",
        "R001",
    ]);
    let e = f.fails(&[
        "federation",
        "member",
        "add",
        "X",
        "--status",
        "friend",
        "--joined",
        "2026-01-01",
    ]);
    assert!(e.contains("founding, member or solidarity"), "{e}");
    let e = f.fails(&[
        "federation",
        "member",
        "link",
        "Locall-IT",
        "--email",
        "bo@local-it.example",
    ]);
    assert!(e.contains("Local-IT"), "the members are listed: {e}");
    let e = f.fails(&[
        "federation",
        "member",
        "link",
        "Local-IT",
        "--email",
        "nobody@example.org",
    ]);
    assert!(e.contains("no account"), "{e}");
    f.ok(&[
        "federation",
        "member",
        "link",
        "Local-IT",
        "--email",
        "bo@local-it.example",
    ]);

    f.ok(&[
        "federation",
        "dues",
        "rate",
        "--from",
        "2026-01-01",
        "--amount",
        "10",
        "--by-resolution",
        "R002",
    ]);
    let e = f.fails(&[
        "federation",
        "dues",
        "rate",
        "--from",
        "2026-01-01",
        "--amount",
        "10.001",
        "--by-resolution",
        "R003",
    ]);
    assert!(e.contains("--amount"), "{e}");
    f.ok(&[
        "federation",
        "dues",
        "waive",
        "Small Co-op",
        "--from",
        "2026-01-01",
        "--to",
        "2027-12-31",
        "--reason",
        "Solidarity year (R004)",
    ]);
    f.ok(&[
        "federation",
        "dues",
        "pay",
        "Local-IT",
        "--date",
        "2026-10-01",
        "--amount",
        "10",
        "--reference",
        "Sep",
    ]);
    // Autonomic pays from its books: a payout to the federation, matched once.
    let ledger = |args: &[&str]| {
        let mut a = vec!["ledger", "--coop", "Autonomic"];
        a.extend_from_slice(args);
        f.ok(&a)
    };
    ledger(&[
        "add",
        "payout",
        "--date",
        "2026-11-05",
        "--amount",
        "120",
        "--party",
        "federation",
        "--note",
        "dues 2026",
    ]);
    assert!(f
        .ok(&["federation", "dues", "match"])
        .contains("1 payment(s) matched"));
    assert!(
        f.ok(&["federation", "dues", "match"])
            .contains("0 payment(s) matched"),
        "matched once"
    );

    let accounts = f.json(&["federation", "members", "-m"]);
    let get = |name: &str| {
        accounts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()
            .clone()
    };
    let small = get("Small Co-op");
    assert_eq!(small["arrears"], 0);
    assert_eq!(small["waivers"][0]["reason"], "Solidarity year (R004)");
    let local = get("Local-IT");
    assert!(local["arrears"].as_i64().unwrap() >= 1000, "{local}");
    assert_eq!(
        local["unpaid"][0], "2026-10",
        "the September payment settled September"
    );
    let auto = get("Autonomic");
    assert_eq!(auto["paid"], 12000);
    let table = f.ok(&["federation", "members"]);
    assert!(table.contains("MEMBER\tSTATUS\tJOINED\tARREARS"), "{table}");

    // A review asked for six months after a resolution of April: overdue now, with its age.
    f.ok(&[
        "federation",
        "reviews",
        "--add",
        "Review of the dues",
        "--source",
        "R002",
        "--from",
        "2026-04-13",
        "--months",
        "6",
    ]);
    let reviews = f.ok(&["federation", "reviews"]);
    assert!(
        reviews.contains("Review of the dues\tR002\t2026-10-13\tOVERDUE by"),
        "{reviews}"
    );
    let e = f.fails(&["federation", "reviews", "--add", "x", "--source", "R9"]);
    assert!(e.contains("--due"), "{e}");
}

#[test]
fn a_medium_proposal_voted_and_decided_and_a_rhythm_with_its_feed() {
    let f = Fed::new();
    for (name, email) in [
        ("Autonomic", "ana@autonomic.example"),
        ("Local-IT", "bo@local-it.example"),
        ("Klasse", "cy@klasse.example"),
    ] {
        f.ok(&[
            "federation",
            "member",
            "add",
            name,
            "--status",
            "founding",
            "--joined",
            "2023-03-03",
        ]);
        f.ok(&["federation", "member", "link", name, "--email", email]);
    }
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let e = f.fails(&[
        "federation",
        "propose",
        "--title",
        "Too soon",
        "--summary",
        "s",
        "--size",
        "medium",
        "--deadline",
        &tomorrow,
        "--by",
        "ana@autonomic.example",
    ]);
    assert!(
        e.contains("14"),
        "the rules' minimum deadline is named: {e}"
    );
    let e = f.fails(&[
        "federation",
        "propose",
        "--title",
        "x",
        "--summary",
        "s",
        "--size",
        "huge",
        "--deadline",
        &tomorrow,
        "--by",
        "ana@autonomic.example",
    ]);
    assert!(
        e.contains("small") && e.contains("large"),
        "the sizes are listed: {e}"
    );
    let deadline = (chrono::Utc::now() + chrono::Duration::days(15))
        .format("%Y-%m-%d")
        .to_string();
    let out = f.ok(&[
        "federation",
        "propose",
        "--title",
        "Adopt the backup policy",
        "--summary",
        "Restores proven monthly",
        "--size",
        "medium",
        "--deadline",
        &deadline,
        "--by",
        "ana@autonomic.example",
    ]);
    assert!(
        out.contains("proposed \"Adopt the backup policy\""),
        "{out}"
    );
    let e = f.fails(&[
        "federation",
        "vote",
        "Adopt the backup policy",
        "--member",
        "Local-IT",
        "--vote",
        "for",
        "--by",
        "ana@autonomic.example",
    ]);
    assert!(e.contains("does not speak for Local-IT"), "{e}");
    for (member, email, vote) in [
        ("Autonomic", "ana@autonomic.example", "for"),
        ("Local-IT", "bo@local-it.example", "block"),
        ("Local-IT", "bo@local-it.example", "for"),
        ("Klasse", "cy@klasse.example", "stand-aside"),
    ] {
        f.ok(&[
            "federation",
            "vote",
            "Adopt the backup policy",
            "--member",
            member,
            "--vote",
            vote,
            "--by",
            email,
        ]);
    }
    // The scheduler's step before the deadline changes nothing.
    f.ok(&["federation", "tick"]);
    let d = f.json(&["federation", "decisions", "-m"]);
    assert_eq!(d[0]["state"], "open");
    // A Small decision is recorded and numbered at once.
    let out = f.ok(&[
        "federation",
        "propose",
        "--title",
        "Rename the channel",
        "--summary",
        "s",
        "--size",
        "small",
        "--deadline",
        &tomorrow,
        "--by",
        "bo@local-it.example",
    ]);
    assert!(out.contains("recorded as R001"), "{out}");

    f.ok(&[
        "federation",
        "rhythm",
        "--rule",
        "FREQ=MONTHLY;BYDAY=1WE",
        "--first",
        "2027-01-06 15:00",
        "--tz",
        "Europe/Berlin",
        "--skip",
        "2027-08-04",
        "--rota",
        "ana@autonomic.example",
        "--rota",
        "bo@local-it.example",
    ]);
    let e = f.fails(&[
        "federation",
        "rhythm",
        "--rule",
        "FREQ=FORTNIGHTLY",
        "--first",
        "2027-01-06 15:00",
    ]);
    assert!(e.contains("FREQ=MONTHLY;BYDAY=1WE"), "{e}");
    let e = f.fails(&[
        "federation",
        "rhythm",
        "--rule",
        "FREQ=WEEKLY",
        "--first",
        "2027-01-06 15:00",
        "--tz",
        "Mars/Olympus",
    ]);
    assert!(e.contains("Europe/Berlin"), "{e}");
    let feed = f.ok(&["federation", "feed"]);
    assert!(feed.starts_with("BEGIN:VCALENDAR"), "{feed}");
    assert!(feed.contains("RRULE:FREQ=MONTHLY;BYDAY=1WE"));
    assert!(feed.contains("EXDATE;TZID=Europe/Berlin:20270804T150000"));
    assert!(feed.contains("BEGIN:VTIMEZONE"));
    let meetings = f.ok(&["federation", "meetings"]);
    assert!(
        meetings.contains("every month on the first Wednesday at 15:00 Europe/Berlin"),
        "{meetings}"
    );
}
