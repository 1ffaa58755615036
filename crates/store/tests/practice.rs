//! The federation's practice in the store, on SQLite and Postgres, with the clock as a
//! parameter: a review six months after a resolution enters the agenda of the meetings from
//! its notice on, stays there (overdue) through minutes that do not hold it, and clears only
//! when minutes record it with an outcome; items not reached are carried to the next meeting;
//! the rota turns; dues with a changed rate, a waiver and payments give the right arrears;
//! fifty people paint one poll at once and nothing is lost; calendar links are capabilities.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use cooper_federation::meetings::{self, Rhythm};
use cooper_federation::poll::{self, Shape};
use cooper_federation::rules::DuesPeriod;
use cooper_federation::Review;
use cooper_store::practice::{ItemResult, Minutes};
use cooper_store::{testing, Store};
use time::macros::date;

#[macro_use]
mod common;

fn ms(y: i32, m: u32, d: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
        .unwrap()
        .timestamp_millis()
}

on_both!(
    a_review_goes_round_the_meetings_until_minutes_hold_it,
    |s: Store| async move {
        let alice = s
            .add_person("alice@example.org", "Alice", None, false)
            .await
            .unwrap();
        let bo = s
            .add_person("bo@example.org", "Bo", None, false)
            .await
            .unwrap();
        let cy = s
            .add_person("cy@example.org", "Cy", None, false)
            .await
            .unwrap();
        // Monthly on the first Wednesday, 15:00 UTC.
        let rhythm = Rhythm::new(
            "FREQ=MONTHLY;BYDAY=1WE",
            meetings::wall_clock("2023-01-04 15:00").unwrap(),
            chrono_tz::UTC,
            90,
            vec![NaiveDate::from_ymd_opt(2023, 8, 2).unwrap()],
        )
        .unwrap();
        s.add_meeting_series(
            "Federation meeting",
            &rhythm,
            &[alice.id.clone(), bo.id.clone(), cy.id.clone()],
        )
        .await
        .unwrap();
        // The scheduler plans ahead; planning twice makes nothing twice.
        let made = s
            .plan_meetings(ms(2023, 7, 1), ms(2023, 12, 31))
            .await
            .unwrap();
        assert_eq!(made, 5, "Jul, Sep, Oct, Nov, Dec (August skipped)");
        assert_eq!(
            s.plan_meetings(ms(2023, 7, 1), ms(2023, 12, 31))
                .await
                .unwrap(),
            0
        );
        let all = s.meetings(ms(2023, 7, 1), ms(2024, 1, 1)).await.unwrap();
        assert_eq!(all.len(), 5);
        // The rota turns: each meeting's note-taker facilitates the next.
        for w in all.windows(2) {
            assert_eq!(w[0].note_taker, w[1].facilitator);
        }
        assert_ne!(all[0].facilitator, all[1].facilitator);

        // R002, passed 2023-04-13, asks for a review of the dues in six months: due 2023-10-13.
        let review = s
            .add_review(&Review::after(
                "Review of the dues",
                "R002",
                date!(2023 - 04 - 13),
                6,
            ))
            .await
            .unwrap();
        let (sep, oct, nov, dec) = (&all[1], &all[2], &all[3], &all[4]);
        assert!(
            s.agenda_reviews(sep).await.unwrap().is_empty(),
            "before its notice"
        );
        assert_eq!(
            s.agenda_reviews(oct).await.unwrap().len(),
            1,
            "in its notice: by itself"
        );

        // October's meeting does not reach it, nor one item; the item is carried.
        let item = s
            .add_agenda_item(&oct.id, "Server costs", "", &alice.id)
            .await
            .unwrap();
        let incomplete = Minutes {
            notes: "Check-in. Ran out of time. Check-out.".into(),
            ..Default::default()
        };
        let e = s
            .record_minutes(&oct.id, &incomplete, ms(2023, 10, 4))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Server costs"), "{e}");
        s.record_minutes(
            &oct.id,
            &Minutes {
                items: vec![(item.clone(), ItemResult::Carried)],
                ..incomplete.clone()
            },
            ms(2023, 10, 4),
        )
        .await
        .unwrap();
        assert!(
            s.add_agenda_item(&oct.id, "late", "", &alice.id)
                .await
                .is_err(),
            "published"
        );
        let nov_agenda = s.agenda(&nov.id).await.unwrap();
        assert_eq!(nov_agenda.len(), 1);
        assert_eq!(nov_agenda[0].title, "Server costs");
        assert_eq!(nov_agenda[0].carried_from.as_deref(), Some(oct.id.as_str()));

        // Overdue now; November's agenda has it by itself, and a reminder is sent weekly.
        let on_nov = s.agenda_reviews(nov).await.unwrap();
        assert_eq!(on_nov.len(), 1);
        assert!(matches!(
            on_nov[0].review.state(date!(2023 - 11 - 01)),
            cooper_federation::ReviewState::Overdue { days: 19 }
        ));
        // A review that is not on this meeting's agenda cannot be held by its minutes.
        let other = s
            .add_review(&Review::after(
                "Review of the budget",
                "R003",
                date!(2024 - 06 - 01),
                6,
            ))
            .await
            .unwrap();
        let e = s
            .record_minutes(
                &nov.id,
                &Minutes {
                    notes: "Notes".into(),
                    items: vec![(nov_agenda[0].id.clone(), ItemResult::Done("Agreed".into()))],
                    reviews: vec![(other, "held".into())],
                    ..Default::default()
                },
                ms(2023, 11, 1),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("agenda"), "{e}");
        s.record_minutes(
            &nov.id,
            &Minutes {
                notes: "## Check-in\n\n## Items\n\n## Check-out".into(),
                attendance: vec!["m1".into()],
                items: vec![(nov_agenda[0].id.clone(), ItemResult::Done("Agreed".into()))],
                reviews: vec![(review.clone(), "Dues stay as they are until June.".into())],
            },
            ms(2023, 11, 1),
        )
        .await
        .unwrap();
        assert!(
            s.agenda_reviews(dec).await.unwrap().is_empty(),
            "held: gone from the agenda"
        );
        let held = s
            .reviews()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.id == review)
            .unwrap();
        assert_eq!(
            held.review.held,
            Some((
                date!(2023 - 11 - 01),
                "Dues stay as they are until June.".into()
            ))
        );
        assert!(s
            .claim_review_reminders(date!(2023 - 11 - 20))
            .await
            .unwrap()
            .iter()
            .all(|r| r.id != review));
        let published = s.meeting(&nov.id).await.unwrap().unwrap();
        assert!(published.published_at.is_some());
        assert_eq!(published.attendance, vec!["m1".to_string()]);
        // The next open meeting, and skipping a day takes its empty meeting away.
        assert_eq!(
            s.next_meeting(ms(2023, 11, 2)).await.unwrap().unwrap().id,
            dec.id
        );
        let series = s.meeting_series().await.unwrap();
        s.skip_meeting(&series[0].id, NaiveDate::from_ymd_opt(2023, 12, 6).unwrap())
            .await
            .unwrap();
        assert!(s.meeting(&dec.id).await.unwrap().is_none());
    }
);

on_both!(dues_waivers_and_arrears, |s: Store| async move {
    let eur = "EUR".parse().unwrap();
    let a = s
        .add_fed_member("Autonomic", "founding", date!(2027 - 01 - 10), "", None)
        .await
        .unwrap();
    let b = s
        .add_fed_member("Small Co-op", "solidarity", date!(2027 - 01 - 10), "", None)
        .await
        .unwrap();
    // The rules' own dues until a resolution sets new ones.
    assert_eq!(s.dues_rates().await.unwrap()[0].by, "the rules in force");
    s.set_dues_rate(
        date!(2027 - 01 - 01),
        1000,
        eur,
        DuesPeriod::Monthly,
        "R002",
    )
    .await
    .unwrap();
    s.set_dues_rate(
        date!(2027 - 03 - 01),
        1500,
        eur,
        DuesPeriod::Monthly,
        "R005",
    )
    .await
    .unwrap();
    let e = s
        .set_dues_rate(
            date!(2027 - 04 - 01),
            10,
            "USD".parse().unwrap(),
            DuesPeriod::Monthly,
            "R006",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("EUR"), "{e}");
    assert!(
        s.add_waiver(&b.id, date!(2027 - 01 - 01), None, " ", "admin")
            .await
            .is_err(),
        "a reason is needed"
    );
    s.add_waiver(
        &b.id,
        date!(2027 - 01 - 01),
        Some(date!(2027 - 12 - 31)),
        "Solidarity year (R004)",
        "admin",
    )
    .await
    .unwrap();
    s.record_dues_payment(
        &a.id,
        date!(2027 - 02 - 03),
        2000,
        eur,
        "Jan+Feb",
        Some("ledger-1"),
        "admin",
    )
    .await
    .unwrap();
    let e = s
        .record_dues_payment(
            &a.id,
            date!(2027 - 02 - 03),
            2000,
            eur,
            "again",
            Some("ledger-1"),
            "admin",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already"), "{e}");
    let e = s
        .record_dues_payment(
            &a.id,
            date!(2027 - 02 - 03),
            2000,
            "USD".parse().unwrap(),
            "x",
            None,
            "admin",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("EUR"), "{e}");
    let accounts = s.dues_accounts(date!(2027 - 04 - 15)).await.unwrap();
    let acc = |id: &str| accounts.iter().find(|(m, _, _)| m.id == id).unwrap();
    let (_, auto, _) = acc(&a.id);
    assert_eq!(
        (auto.owed, auto.paid, auto.arrears),
        (1000 + 1000 + 1500 + 1500, 2000, 3000)
    );
    let (_, small, waivers) = acc(&b.id);
    assert_eq!((small.owed, small.arrears), (0, 0));
    assert_eq!(waivers.len(), 1);
    assert!(small
        .lines
        .iter()
        .all(|l| l.waived.as_deref() == Some("Solidarity year (R004)")));
});

on_both!(fifty_people_paint_one_poll_at_once, |s: Store| async move {
    let shape = Shape::new(
        meetings::timezone("Europe/Berlin").unwrap(),
        (3..10)
            .map(|d| NaiveDate::from_ymd_opt(2027, 5, d).unwrap())
            .collect(),
        false,
        chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        chrono::NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
        30,
    )
    .unwrap();
    let id = s
        .create_poll("Strategy day", &shape, 60, "admin")
        .await
        .unwrap();
    let p = Arc::new(s.poll(&id).await.unwrap().unwrap());
    assert_eq!(p.shape, shape);
    let slots = p.shape.slots().len();
    assert_eq!(slots, 7 * 16);
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for i in 0..50usize {
        let (s, p) = (s.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            let me = s
                .join_poll(&p.id, &format!("Person {i}"), None, "UTC")
                .await
                .unwrap();
            // Everyone is free at slot 20 and 21; each also at its own slot; painted in
            // several strokes, with one stroke taken back.
            s.paint(&p, &me.id, &[20, 21, 30 + i], &[]).await.unwrap();
            s.paint(&p, &me.id, &[99], &[]).await.unwrap();
            s.paint(&p, &me.id, &[], &[99]).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let marks = s.poll_marks(&id).await.unwrap();
    assert_eq!(marks.len(), 50);
    let people: Vec<Vec<usize>> = marks.iter().map(|(_, m)| m.clone()).collect();
    let heat = poll::heat(slots, &people);
    assert_eq!(heat[20], 50);
    assert_eq!(heat[21], 50);
    assert_eq!(heat[99], 0, "taken back");
    assert_eq!(heat.iter().sum::<u32>(), 50 * 3, "no stroke lost");
    let best = poll::best(&p.shape.slots(), 30, &people, 2, 3);
    assert_eq!((best[0].first, best[0].free.len()), (20, 50));
    assert!(
        s.join_poll(&id, "Person 3", None, "UTC").await.is_err(),
        "a name is taken once"
    );
    assert!(s.paint(&p, &marks[0].0.id, &[slots], &[]).await.is_err());
    // The chosen slot becomes a meeting, once.
    let m = s.choose_poll_slot(&p, 20).await.unwrap();
    let meeting = s.meeting(&m).await.unwrap().unwrap();
    assert_eq!(meeting.starts_at, p.shape.slots()[20].timestamp_millis());
    assert_eq!(meeting.minutes, 60);
    let again = s.poll(&id).await.unwrap().unwrap();
    assert_eq!(again.chosen_slot, Some(20));
    assert_eq!(
        s.choose_poll_slot(&again, 21).await.unwrap(),
        m,
        "chosen once"
    );
});

on_both!(
    people_speak_for_members_and_calendar_links_are_capabilities,
    |s: Store| async move {
        let coop = s.add_coop("Autonomic").await.unwrap();
        let op = s
            .add_person("op@example.org", "Op", None, false)
            .await
            .unwrap();
        s.add_membership(&op.id, "coop", &coop.id, "operator")
            .await
            .unwrap();
        let m1 = s
            .add_fed_member(
                "Autonomic",
                "founding",
                date!(2023 - 01 - 01),
                "",
                Some(&coop.id),
            )
            .await
            .unwrap();
        let m2 = s
            .add_fed_member("Local-IT", "member", date!(2023 - 01 - 01), "", None)
            .await
            .unwrap();
        let names = |v: Vec<cooper_store::federation::Member>| {
            v.into_iter().map(|m| m.name).collect::<Vec<_>>()
        };
        assert_eq!(
            names(s.fed_members_of(&op.id).await.unwrap()),
            vec!["Autonomic"]
        );
        s.link_fed_person(&m2.id, &op.id).await.unwrap();
        s.link_fed_person(&m2.id, &op.id).await.unwrap();
        assert_eq!(
            names(s.fed_members_of(&op.id).await.unwrap()),
            vec!["Autonomic", "Local-IT"]
        );
        s.set_fed_member_status(&m1.id, "left", date!(2024 - 01 - 01))
            .await
            .unwrap();
        assert_eq!(
            names(s.fed_members_of(&op.id).await.unwrap()),
            vec!["Local-IT"],
            "left: no voice"
        );

        assert!(!s.has_calendar_link(&op.id).await.unwrap());
        let first = s.new_calendar_link(&op.id).await.unwrap();
        assert_eq!(
            s.calendar_person(&first).await.unwrap(),
            Some(op.id.clone())
        );
        let second = s.new_calendar_link(&op.id).await.unwrap();
        assert_ne!(first, second);
        assert_eq!(
            s.calendar_person(&first).await.unwrap(),
            None,
            "the old link stops"
        );
        assert_eq!(
            s.calendar_person(&second).await.unwrap(),
            Some(op.id.clone())
        );
        assert_eq!(s.calendar_person("guess").await.unwrap(), None);
    }
);

on_both!(
    a_budget_shows_what_the_books_spent_under_it,
    |s: Store| async move {
        let coop = s.add_coop("Autonomic").await.unwrap();
        let entry = |kind: &str, amount: &str, hours: &str, category: &str, note: &str| {
            let fields: std::collections::HashMap<&str, String> = [
                ("kind", kind.to_string()),
                ("date", "2027-03-10".to_string()),
                ("amount", amount.to_string()),
                ("currency", "EUR".to_string()),
                (
                    "party",
                    if kind == "labour" {
                        "person:ana@example.org"
                    } else {
                        "external:Upstream"
                    }
                    .to_string(),
                ),
                (
                    "target",
                    if kind == "labour" {
                        "federation"
                    } else {
                        "shared"
                    }
                    .to_string(),
                ),
                ("category", category.to_string()),
                ("status", "received".to_string()),
                ("recurs", "once".to_string()),
                ("hours", hours.to_string()),
                ("note", note.to_string()),
            ]
            .into_iter()
            .collect();
            cooper_ledger::import::template_entry(&|k| fields.get(k).cloned().unwrap_or_default())
                .unwrap()
        };
        for e in [
            entry("labour", "", "2", "", "R003: docs sprint"),
            entry("payout", "50", "", "R003", "upstream donation"),
            entry("labour", "", "5", "", "R0031 is another decision"),
            entry("payout", "70", "", "other", "not under a budget"),
        ] {
            s.add_entry(&coop.id, &e, "t").await.unwrap();
        }
        let (minutes, money, lines) = s
            .budget_spending("R003", "2027-03".parse().unwrap())
            .await
            .unwrap();
        assert_eq!((minutes, lines), (120, 2));
        assert_eq!(money, vec![("EUR".parse().unwrap(), 5000)]);
        let (_, _, none) = s
            .budget_spending("R003", "2027-04".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(none, 0, "another month");
    }
);
