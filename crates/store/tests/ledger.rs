//! The ledger in the store, on SQLite and Postgres: a month proposed by a treasurer and closed
//! by an operator (the same person, the same role, changed figures and a second closing are
//! refused), closed months that do not change (entries and imports dated in them refused; a
//! correction in an open month changes the next settlement only), idempotent imports; and,
//! as a property over random entries, that closing twice is refused and corrections never
//! touch a closed month.

use cooper_ledger::entry::parse_date;
use cooper_ledger::import::{self, Format};
use cooper_ledger::{settle, Entry, Input, Kind, Period, Recurs, Ref, Status};
use cooper_store::{testing, Closing, Store};
use proptest::prelude::*;

#[macro_use]
mod common;

const RULE: &str = "currency = \"EUR\"\n[[line]]\nkind = \"infrastructure\"\n[[line]]\nkind = \"labour\"\nrate = \"25\"\n[[line]]\nkind = \"pool\"\nname = \"maintenance\"\npercent = \"10\"\n";
const OC: &str = include_str!("../../ledger/tests/fixtures/opencollective-transactions.csv");

fn entry(kind: Kind, date: &str, amount: i64, party: &str, target: &str) -> Entry {
    Entry {
        id: String::new(),
        kind,
        date: parse_date(date).unwrap(),
        amount,
        currency: cooper_ledger::Currency::EUR,
        party: party.parse().unwrap(),
        target: target.parse().unwrap(),
        category: "other".into(),
        status: Status::Received,
        recurs: Recurs::Once,
        minutes: if kind == Kind::Labour { 60 } else { 0 },
        until: None,
        note: String::new(),
        corrects: None,
    }
}

async fn preview(s: &Store, coop: &str, period: &str) -> cooper_ledger::Settlement {
    let period: Period = period.parse().unwrap();
    let rule = s.rule(coop).await.unwrap().expect("a rule");
    let entries = s.entries_to_settle(coop, period).await.unwrap();
    let carry_in = s.carry_in(coop, period).await.unwrap();
    settle(&Input {
        period,
        rule: &rule,
        entries: &entries,
        carry_in,
        rates: &[],
        instances: &[],
    })
    .unwrap()
}

on_both!(
    a_month_is_closed_by_two_and_then_stays,
    |s: Store| async move {
        let coop = s.add_coop("Tech").await.unwrap().id;
        assert_eq!(
            s.set_rule(&coop, RULE, "rule.toml", "t@x").await.unwrap(),
            1
        );
        let bad = s
            .set_rule(&coop, "currency = \"EURO\"\n", "form", "t@x")
            .await;
        assert!(bad.unwrap_err().to_string().contains("form: currency"));
        let contribution = s
            .add_entry(
                &coop,
                &entry(
                    Kind::Contribution,
                    "2026-11-02",
                    50000,
                    "community:riseup",
                    "shared",
                ),
                "t@x",
            )
            .await
            .unwrap();
        let cost = s
            .add_entry(
                &coop,
                &entry(Kind::Cost, "2026-11-03", 12000, "coop:tech", "server:s1"),
                "t@x",
            )
            .await
            .unwrap();
        s.add_entry(
            &coop,
            &entry(Kind::Labour, "2026-11-04", 0, "person:ana", "federation"),
            "t@x",
        )
        .await
        .unwrap();
        let nov = preview(&s, &coop, "2026-11").await;
        assert_eq!(
            (nov.funds, nov.claimed, nov.carry_out),
            (50000, 12000 + 2500 + 5000, 30500)
        );
        assert_eq!(nov.rule_version, 1);

        // Proposed by a treasurer; the same person cannot confirm, nor another treasurer.
        assert_eq!(
            s.close_period(&coop, &nov, "tess", "treasurer")
                .await
                .unwrap(),
            Closing::Proposed
        );
        let e = s
            .close_period(&coop, &nov, "tess", "operator")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("a second person must confirm"), "{e}");
        let e = s
            .close_period(&coop, &nov, "tim", "treasurer")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs a treasurer and an operator"), "{e}");
        // Figures that changed since the proposal are not confirmed.
        let mut changed = nov.clone();
        changed.carry_out += 1;
        let e = s
            .close_period(&coop, &changed, "olga", "operator")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("changed since tess proposed"), "{e}");
        assert_eq!(
            s.close_period(&coop, &nov, "olga", "operator")
                .await
                .unwrap(),
            Closing::Closed
        );
        // Closing twice is refused.
        let e = s
            .close_period(&coop, &nov, "olga", "operator")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("already closed"), "{e}");

        // The closed month does not change: a new entry dated in it is refused, and so is a file
        // with a line in it (nothing of the file imported).
        let e = s
            .add_entry(
                &coop,
                &entry(Kind::Cost, "2026-11-20", 100, "coop:tech", "shared"),
                "t@x",
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2026-11, which is closed") && e.contains("correction"),
            "{e}"
        );
        let before = s.entries(&coop, None).await.unwrap().len();
        let f = import::read(OC, Format::OpenCollective, "oc.csv", &|_, _| None).unwrap();
        let e = s
            .import_entries(&coop, "oc.csv", &f.entries, "t@x")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("oc.csv: nothing was imported; 12 problems"),
            "{e}"
        );
        assert!(
            e.contains("line 2: dated 2026-11-02, in 2026-11, which is closed"),
            "{e}"
        );
        assert_eq!(s.entries(&coop, None).await.unwrap().len(), before);

        // A correction in December (the server cost was 20.00 more) changes December, not November.
        let mut fix = entry(Kind::Cost, "2026-12-01", 2000, "coop:tech", "server:s1");
        fix.corrects = Some(cost.clone());
        s.add_entry(&coop, &fix, "t@x").await.unwrap();
        let mut dangling = fix.clone();
        dangling.corrects = Some("no-such-entry".into());
        let e = s
            .add_entry(&coop, &dangling, "t@x")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("no entry of this co-op has that id"), "{e}");
        let dec = preview(&s, &coop, "2026-12").await;
        assert_eq!(dec.carry_in, 30500);
        assert_eq!(dec.claimed, 2000);
        let stored = s
            .settlement(&coop, "2026-11".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.settlement, nov);
        assert_eq!(stored.digest, nov.digest());
        assert_eq!(
            preview(&s, &coop, "2026-11").await.digest(),
            nov.digest(),
            "the entries of a closed month are as they were"
        );
        let _ = contribution;

        // Months close in order.
        let e = s
            .close_period(
                &coop,
                &preview(&s, &coop, "2027-02").await,
                "tess",
                "treasurer",
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("close the months in order (2026-12 first)"),
            "{e}"
        );
        assert_eq!(
            s.close_period(&coop, &dec, "olga", "operator")
                .await
                .unwrap(),
            Closing::Proposed
        );
        assert_eq!(
            s.close_period(&coop, &dec, "tess", "treasurer")
                .await
                .unwrap(),
            Closing::Closed
        );
        let e = s
            .close_period(
                &coop,
                &preview(&s, &coop, "2027-02").await,
                "tess",
                "treasurer",
            )
            .await;
        assert_eq!(e.unwrap(), Closing::Proposed, "no entries in January");
        assert_eq!(
            s.carry_in(&coop, "2027-02".parse().unwrap()).await.unwrap(),
            dec.carry_out,
            "carried through an empty month"
        );
        let e = s
            .close_period(
                &coop,
                &preview(&s, &coop, "2027-02").await,
                "olga",
                "operator",
            )
            .await;
        assert_eq!(e.unwrap(), Closing::Closed);
        // Every month up to the last closed one is closed, with or without entries.
        let e = s
            .add_entry(
                &coop,
                &entry(Kind::Cost, "2027-01-05", 100, "coop:tech", "shared"),
                "t@x",
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("2027-01, which is closed"), "{e}");
    }
);

on_both!(imports_are_idempotent_and_whole, |s: Store| async move {
    let coop = s.add_coop("Tech").await.unwrap().id;
    let map =
        |slug: &str, _: &str| (slug == "riseup-community").then(|| Ref::Community("riseup".into()));
    let f = import::read(OC, Format::OpenCollective, "oc.csv", &map).unwrap();
    let first = s
        .import_entries(&coop, "oc.csv", &f.entries, "t@x")
        .await
        .unwrap();
    assert_eq!((first.added, first.already), (12, 0));
    let again = s
        .import_entries(&coop, "oc.csv", &f.entries, "t@x")
        .await
        .unwrap();
    assert_eq!((again.added, again.already), (0, 12));
    let all = s.entries(&coop, None).await.unwrap();
    assert_eq!(all.len(), 12);
    // The refund names the contribution it refunds by id now.
    let refund = all.iter().find(|(k, _)| k == "oc:a7b8c9d0").unwrap();
    let refunded = all.iter().find(|(k, _)| k == "oc:b2c3d4e5").unwrap();
    assert_eq!(refund.1.corrects.as_deref(), Some(refunded.1.id.as_str()));
    // What was imported reads back the same (then exported, imported elsewhere: the same).
    let riseup = s.entries_of_party(&coop, "community:riseup").await.unwrap();
    assert_eq!(riseup.len(), 1);
    assert_eq!(riseup[0].1.amount, 30000);
    let text = import::write_csv(&all);
    let other = s.add_coop("Other").await.unwrap().id;
    let back = import::read(&text, Format::Cooper, "books.csv", &map).unwrap();
    assert_eq!(
        s.import_entries(&other, "books.csv", &back.entries, "t@x")
            .await
            .unwrap()
            .added,
        12
    );
    assert_eq!(
        s.import_entries(&other, "oc.csv", &f.entries, "t@x")
            .await
            .unwrap()
            .added,
        0,
        "the same keys"
    );
});

// ---- properties, on SQLite ----------------------------------------------------------------

fn arb_entries() -> impl Strategy<Value = Vec<(u8, u8, i64, u8)>> {
    // (kind, day of November, amount, party)
    prop::collection::vec((0u8..3, 1u8..=30, 1i64..100_000, 0u8..3), 1..25)
}

fn build(spec: &[(u8, u8, i64, u8)]) -> Vec<Entry> {
    spec.iter()
        .map(|&(k, day, amount, p)| {
            let kind = [Kind::Contribution, Kind::Cost, Kind::Labour][k as usize];
            let party = match (kind, p) {
                (Kind::Contribution, 0) => "community:a",
                (Kind::Contribution, 1) => "community:b",
                (Kind::Contribution, _) => "person:kim",
                (Kind::Labour, 0) => "person:ana",
                (Kind::Labour, _) => "person:bo",
                (_, 0) => "coop:tech",
                _ => "external:Hetzner",
            };
            let target = match kind {
                Kind::Labour => "federation",
                Kind::Cost if p == 2 => "server:s1",
                _ => "shared",
            };
            let mut e = entry(kind, &format!("2026-11-{day:02}"), amount, party, target);
            if kind == Kind::Labour {
                e.amount = 0;
                e.minutes = amount % 600 + 1;
            }
            e
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn closed_months_never_change(spec in arb_entries(), fix_amount in -5_000i64..5_000, pick in any::<prop::sample::Index>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (_dir, s) = testing::sqlite().await;
            let coop = s.add_coop("Tech").await.unwrap().id;
            s.set_rule(&coop, RULE, "rule", "t").await.unwrap();
            let mut ids = Vec::new();
            for e in build(&spec) {
                ids.push(s.add_entry(&coop, &e, "t").await.unwrap());
            }
            let nov = preview(&s, &coop, "2026-11").await;
            prop_assert_eq!(s.close_period(&coop, &nov, "tess", "treasurer").await.unwrap(), Closing::Proposed);
            prop_assert_eq!(s.close_period(&coop, &nov, "olga", "operator").await.unwrap(), Closing::Closed);
            // Closing twice is refused, whoever tries.
            for (who, role) in [("tess", "treasurer"), ("olga", "operator"), ("zed", "operator")] {
                let again = s.close_period(&coop, &nov, who, role).await;
                prop_assert!(again.is_err(), "closed twice by {}", who);
            }
            // A correction of one of November's entries, dated in December.
            let target = &build(&spec)[pick.index(spec.len())];
            let mut fix = target.clone();
            fix.date = parse_date("2026-12-01").unwrap();
            fix.corrects = Some(ids[pick.index(spec.len())].clone());
            if fix.kind == Kind::Labour {
                fix.minutes = fix_amount / 50;
                if fix.minutes == 0 { fix.minutes = 1; }
            } else {
                fix.amount = if fix_amount == 0 { 1 } else { fix_amount };
            }
            s.add_entry(&coop, &fix, "t").await.unwrap();
            // November is what it was; December sees the correction.
            let stored = s.settlement(&coop, "2026-11".parse().unwrap()).await.unwrap().unwrap();
            prop_assert_eq!(&stored.settlement, &nov);
            prop_assert_eq!(preview(&s, &coop, "2026-11").await, nov.clone());
            let dec = preview(&s, &coop, "2026-12").await;
            prop_assert_eq!(dec.carry_in, nov.carry_out);
            prop_assert_eq!(dec.entry_count, 1);
            prop_assert_eq!(dec.paid + dec.carry_out, dec.funds);
            let moved = match fix.kind {
                Kind::Contribution => dec.received != 0,
                Kind::Cost => dec.shares.iter().any(|x| x.line == "infrastructure" && x.claim == fix.amount),
                _ => dec.labour_minutes == fix.minutes,
            };
            prop_assert!(moved, "the correction shows in December: {:?}", dec);
            Ok(())
        })?;
    }
}

on_both!(
    a_pledge_is_read_in_every_month_it_falls_due,
    |s: Store| async move {
        let coop = s.add_coop("Tech").await.unwrap().id;
        s.set_rule(&coop, RULE, "rule.toml", "t@x").await.unwrap();
        let mut pledge = entry(
            Kind::Contribution,
            "2026-06-01",
            30000,
            "community:riseup",
            "shared",
        );
        pledge.status = Status::Pledged;
        pledge.recurs = Recurs::Monthly;
        pledge.until = Some(parse_date("2026-11-30").unwrap());
        s.add_entry(&coop, &pledge, "t@x").await.unwrap();
        // Money received in June is June's, not November's.
        s.add_entry(
            &coop,
            &entry(
                Kind::Contribution,
                "2026-06-03",
                1000,
                "community:garden",
                "shared",
            ),
            "t@x",
        )
        .await
        .unwrap();
        let pledged = |st: &cooper_ledger::Settlement| {
            st.contributors
                .iter()
                .find(|c| c.party == Ref::Community("riseup".into()))
                .map(|c| c.pledged)
                .unwrap_or(0)
        };
        let nov = preview(&s, &coop, "2026-11").await;
        assert_eq!(pledged(&nov), 30000, "due in November");
        assert_eq!(nov.received, 0, "a pledge is not money received");
        let dec = preview(&s, &coop, "2026-12").await;
        assert_eq!(pledged(&dec), 0, "past its last day");
        let june = preview(&s, &coop, "2026-06").await;
        assert_eq!((pledged(&june), june.received), (30000, 1000));
    }
);
