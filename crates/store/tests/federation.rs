//! The federation in the store, on SQLite and Postgres, with the clock as a parameter:
//! decisions of every size closed at their deadline with the right outcome and numbered when
//! passed (a late vote and a vote on a decided proposal refused, a changed vote counted as
//! changed, deciding twice changing nothing, every change kept), member organisations who
//! leave no longer counting, and a review six months after a resolution that is reminded,
//! stays overdue and clears only when a meeting's minutes record it.

use cooper_federation::decision::{Vote, DAY_MS};
use cooper_federation::{Review, ReviewState};
use cooper_store::federation::NewProposal;
use cooper_store::{testing, Store};
use time::macros::date;

#[macro_use]
mod common;

const T0: i64 = 1_700_000_000_000;

fn proposal(size: &str, deadline_days: i64) -> NewProposal {
    NewProposal {
        title: format!("A {size} proposal"),
        summary: "What and why".into(),
        details: "The details".into(),
        size: size.into(),
        budget: String::new(),
        deadline: T0 + deadline_days * DAY_MS,
    }
}

async fn nine_members(s: &Store) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 1..=9 {
        let status = if i <= 5 { "founding" } else { "member" };
        ids.push(
            s.add_fed_member(
                &format!("Co-op {i}"),
                status,
                date!(2023 - 03 - 03),
                "",
                None,
            )
            .await
            .unwrap()
            .id,
        );
    }
    ids
}

on_both!(decisions_close_at_their_deadline, |s: Store| async move {
    let m = nine_members(&s).await;
    let dup = s
        .add_fed_member("Co-op 1", "member", date!(2024 - 01 - 01), "", None)
        .await;
    assert!(dup.unwrap_err().to_string().contains("already a member"));

    // Too short a deadline for a Large decision; an unknown size.
    let e = s
        .propose(&proposal("large", 7), "ana", T0)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("at least 14 days"), "{e}");
    let e = s
        .propose(&proposal("huge", 30), "ana", T0)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("small, medium, large"), "{e}");

    // Large: 5 of 9 for, one of them after changing a block → passed, R001.
    let large = s.propose(&proposal("large", 14), "ana", T0).await.unwrap();
    assert_eq!(large.state, "open");
    s.fed_vote(&large.id, &m[4], Vote::Block, "not yet", "eve", T0 + DAY_MS)
        .await
        .unwrap();
    for id in &m[..4] {
        s.fed_vote(&large.id, id, Vote::For, "", "x", T0 + 2 * DAY_MS)
            .await
            .unwrap();
    }
    s.fed_vote(
        &large.id,
        &m[4],
        Vote::For,
        "convinced",
        "eve",
        T0 + 3 * DAY_MS,
    )
    .await
    .unwrap();
    let late = s
        .fed_vote(&large.id, &m[5], Vote::For, "", "x", T0 + 14 * DAY_MS)
        .await;
    assert!(late
        .unwrap_err()
        .to_string()
        .contains("deadline has passed"));
    assert!(
        s.decide_due_proposals(T0 + 14 * DAY_MS - 1)
            .await
            .unwrap()
            .is_empty(),
        "nothing is decided before its deadline"
    );

    // Medium with a block; Large that falls short (4 of 9).
    let medium = s.propose(&proposal("medium", 14), "bo", T0).await.unwrap();
    s.fed_vote(&medium.id, &m[0], Vote::For, "", "x", T0 + DAY_MS)
        .await
        .unwrap();
    s.fed_vote(
        &medium.id,
        &m[1],
        Vote::Block,
        "breaks backups",
        "x",
        T0 + DAY_MS,
    )
    .await
    .unwrap();
    let short = s.propose(&proposal("large", 20), "bo", T0).await.unwrap();
    for id in &m[..4] {
        s.fed_vote(&short.id, id, Vote::For, "", "x", T0 + DAY_MS)
            .await
            .unwrap();
    }

    let decided = s.decide_due_proposals(T0 + 14 * DAY_MS).await.unwrap();
    assert_eq!(decided.len(), 2, "{decided:?}");
    let large = s.proposal(&large.id).await.unwrap().unwrap();
    assert_eq!(
        (large.state.as_str(), large.number.as_deref()),
        ("passed", Some("R001"))
    );
    assert!(large.reason.contains("5 of 9"), "{}", large.reason);
    let medium = s.proposal(&medium.id).await.unwrap().unwrap();
    assert_eq!((medium.state.as_str(), medium.number), ("blocked", None));
    // Deciding again changes nothing; a vote on a decided proposal is refused.
    assert!(s
        .decide_due_proposals(T0 + 15 * DAY_MS)
        .await
        .unwrap()
        .is_empty());
    let e = s
        .fed_vote(&medium.id, &m[1], Vote::For, "", "x", T0 + 13 * DAY_MS)
        .await;
    assert!(e.unwrap_err().to_string().contains("votes are closed"));

    // A member leaves: 8 vote now, and 4 of 8 is exactly half — not more.
    s.set_fed_member_status(&m[8], "left", date!(2023 - 06 - 01))
        .await
        .unwrap();
    let decided = s.decide_due_proposals(T0 + 20 * DAY_MS).await.unwrap();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].state, "failed");
    assert!(
        decided[0].reason.contains("4 of 8"),
        "{}",
        decided[0].reason
    );

    // A Small decision passes as it is recorded, and takes the next number.
    let small = s.propose(&proposal("small", 0), "cy", T0).await.unwrap();
    assert_eq!(
        (small.state.as_str(), small.number.as_deref()),
        ("passed", Some("R002"))
    );

    // Every change is kept.
    // Every change is kept: the proposal, each vote (a changed one as a change), the outcome.
    let h = s.proposal_history(&large.id).await.unwrap();
    assert!(h[0].2.contains("proposed as a large decision"), "{h:?}");
    assert!(h.iter().any(|x| x.2.contains("votes for")), "{h:?}");
    assert!(
        h.iter()
            .any(|x| x.2 == "Co-op 5 changes its vote from block to for" && x.1 == "eve"),
        "{h:?}"
    );
    assert!(h.last().unwrap().2.contains("passed as R001"), "{h:?}");
    assert_eq!(s.proposals().await.unwrap().len(), 4);
});

on_both!(a_review_cannot_be_missed, |s: Store| async move {
    // R002, passed 2023-04-13, asks for a review in six months.
    let id = s
        .add_review(&Review::after(
            "Review of the dues",
            "R002",
            date!(2023 - 04 - 13),
            6,
        ))
        .await
        .unwrap();
    assert!(s
        .claim_review_reminders(date!(2023 - 09 - 01))
        .await
        .unwrap()
        .is_empty());
    // Announced once in its notice, then on the day, then weekly; never twice on one day.
    for (today, want) in [
        (date!(2023 - 10 - 01), 1),
        (date!(2023 - 10 - 01), 0),
        (date!(2023 - 10 - 05), 0),
        (date!(2023 - 10 - 13), 1),
        (date!(2023 - 10 - 16), 0),
        (date!(2023 - 10 - 20), 1),
    ] {
        assert_eq!(
            s.claim_review_reminders(today).await.unwrap().len(),
            want,
            "{today}"
        );
    }
    let r = &s.reviews().await.unwrap()[0];
    assert_eq!(
        r.review.state(date!(2024 - 02 - 01)),
        ReviewState::Overdue { days: 111 }
    );
    // Held only with what was decided; then no more reminders.
    let e = s.hold_review(&id, date!(2024 - 02 - 01), " ").await;
    assert!(e.unwrap_err().to_string().contains("outcome"));
    s.hold_review(&id, date!(2024 - 02 - 01), "Dues stay; revisit in June.")
        .await
        .unwrap();
    assert!(s
        .hold_review(&id, date!(2024 - 02 - 02), "again")
        .await
        .is_err());
    let r = &s.reviews().await.unwrap()[0];
    assert!(matches!(
        r.review.state(date!(2024 - 03 - 01)),
        ReviewState::Held { .. }
    ));
    assert!(s
        .claim_review_reminders(date!(2024 - 03 - 01))
        .await
        .unwrap()
        .is_empty());
});

on_both!(rules_are_data_and_versioned, |s: Store| async move {
    let (rules, default) = s.fed_rules().await.unwrap();
    assert!(default);
    assert_eq!(rules.name, "Co-op Cloud Federation");
    let bad = s
        .set_fed_rules("name = \"x\"\n", "rules.toml", "ana")
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("rules.toml: size"), "{bad}");
    let v = s
        .set_fed_rules(
            "name = \"Elsewhere\"\n[[size]]\nname = \"ordinary\"\nkind = \"vote\"\npass_percent_of_members = 66\n",
            "rules.toml",
            "ana",
        )
        .await
        .unwrap();
    assert_eq!(v, 1);
    let (rules, default) = s.fed_rules().await.unwrap();
    assert!(!default);
    assert_eq!(rules.name, "Elsewhere");
    let e = s
        .propose(&proposal("large", 30), "ana", T0)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the rules have ordinary"), "{e}");
});
