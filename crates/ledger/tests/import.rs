//! Imports: a realistic Open Collective transactions export (built from its documented
//! columns), a file with bad lines (every problem reported by line, nothing imported), and
//! cooper's own CSV template round-tripping what the books download.

use cooper_ledger::import::{self, Format};
use cooper_ledger::*;

const OC: &str = include_str!("fixtures/opencollective-transactions.csv");
const BAD: &str = include_str!("fixtures/opencollective-bad.csv");

fn communities(slug: &str, _name: &str) -> Option<Ref> {
    match slug {
        "riseup-community" => Some(Ref::Community("riseup".into())),
        "garden-collective" => Some(Ref::Community("garden".into())),
        _ => None,
    }
}

#[test]
fn an_open_collective_export_becomes_entries() {
    assert_eq!(import::detect(OC), Format::OpenCollective);
    let f = import::read(OC, Format::OpenCollective, "oc.csv", &communities).unwrap();
    assert!(f.notices.is_empty(), "{:?}", f.notices);
    let by_key = |k: &str| {
        &f.entries
            .iter()
            .find(|e| e.key == k)
            .unwrap_or_else(|| panic!("no {k} in {:#?}", f.entries))
            .entry
    };
    // A contribution, mapped to its community, its processor fee a cost of its own.
    let c = by_key("oc:a1b2c3d4");
    assert_eq!(
        (c.kind, c.amount, c.currency),
        (Kind::Contribution, 30000, Currency::EUR)
    );
    assert_eq!(c.party, Ref::Community("riseup".into()));
    let fee = by_key("oc:a1b2c3d4:paymentProcessorFee");
    assert_eq!(
        (fee.kind, fee.amount, fee.category.as_str()),
        (Kind::Cost, 925, "fees")
    );
    assert_eq!(fee.party, Ref::External("STRIPE".into()));
    // Fees listed apart, as debits.
    assert_eq!(by_key("oc:a1b2c3d5").amount, 1500);
    assert_eq!(by_key("oc:b2c3d4e6").amount, 85);
    // Another currency kept as it is (converted only at a settlement's rate).
    let gbp = by_key("oc:c3d4e5f6");
    assert_eq!((gbp.amount, gbp.currency), (10000, Currency::GBP));
    assert_eq!(gbp.party, Ref::External("Tenants Union".into()));
    // Expenses: the server invoice attributed by its tag; the domain to its instance; hours
    // paid are a payout.
    let h = by_key("oc:d4e5f6a7");
    assert_eq!(
        (h.kind, h.amount, h.category.as_str()),
        (Kind::Cost, 12000, "server")
    );
    assert_eq!(h.target, Ref::Server("s1".into()));
    let d = by_key("oc:e5f6a7b8");
    assert_eq!(
        (d.category.as_str(), &d.target),
        ("domain", &Ref::Instance("cloud.example.org".into()))
    );
    let p = by_key("oc:f6a7b8c9");
    assert_eq!((p.kind, p.amount), (Kind::Payout, 20000));
    // A refund takes money back and names what it refunds.
    let r = by_key("oc:a7b8c9d0");
    assert_eq!((r.kind, r.amount), (Kind::Contribution, -5000));
    assert_eq!(r.corrects.as_deref(), Some("oc:b2c3d4e5"));
    assert_eq!(by_key("oc:b8c9d0e1").amount, 7500);
    assert_eq!(f.entries.len(), 12);
    // Lines are numbered as in the file.
    assert_eq!(f.entries[0].line, 2);
}

#[test]
fn a_bad_file_is_refused_whole_with_every_problem_by_line() {
    let e = import::read(BAD, Format::OpenCollective, "bad.csv", &communities).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("bad.csv: nothing was imported; 2 problems"),
        "{text}"
    );
    assert!(
        text.contains("line 3: kind \"BALANCE_TRANSFER\" is not one cooper imports"),
        "{text}"
    );
    assert!(
        text.contains("line 4: amount: \"3,00\" is not an amount of EUR"),
        "{text}"
    );
    // A column Open Collective does not export is worth saying, not fatal: without the bad
    // lines, the file imports and says so.
    let good: String = BAD.lines().take(2).map(|l| format!("{l}\n")).collect();
    let f = import::read(&good, Format::OpenCollective, "bad.csv", &communities).unwrap();
    assert_eq!(
        f.notices,
        vec!["column \"myNotes\" is not one of Open Collective's export columns: ignored"]
    );
}

#[test]
fn a_header_without_the_needed_columns_says_which() {
    let e = import::read(
        "datetime,description\n2026-11-01,x\n",
        Format::OpenCollective,
        "f.csv",
        &communities,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("line 1: the header lacks kind, type, amount, currency"),
        "{e}"
    );
}

#[test]
fn the_template_round_trips() {
    let f = import::read(OC, Format::OpenCollective, "oc.csv", &communities).unwrap();
    let mut rows: Vec<(String, Entry)> = f
        .entries
        .iter()
        .map(|i| (i.key.clone(), i.entry.clone()))
        .collect();
    let mut labour = rows[0].1.clone();
    labour.kind = Kind::Labour;
    labour.amount = 0;
    labour.minutes = 100;
    labour.party = "person:ana".parse().unwrap();
    labour.target = "recipe:nextcloud".parse().unwrap();
    labour.category = "labour".into();
    labour.note = "upgrade, with a \"quote\", and a comma".into();
    rows.push(("csv:hours-1".into(), labour));
    let text = import::write_csv(&rows);
    assert_eq!(import::detect(&text), Format::Cooper);
    let back = import::read(&text, Format::Cooper, "books.csv", &communities).unwrap();
    let again: Vec<(String, Entry)> = back.entries.into_iter().map(|i| (i.key, i.entry)).collect();
    assert_eq!(again, rows);
}

#[test]
fn template_lines_are_checked_field_by_field() {
    let text = "date,kind,amount,currency,party,target,hours\n\
                2026-11-01,cost,12.00,EUR,external:Gandi,planet:x,\n\
                2026-11-31,contribution,5,EUR,community:a,,\n\
                2026-11-02,labour,,,person:ana,federation,1.333\n\
                2026-11-02,cost,-4,EUR,coop:tech,shared,\n";
    let e = import::read(text, Format::Cooper, "mine.csv", &communities)
        .unwrap_err()
        .to_string();
    assert!(e.contains("4 problems"), "{e}");
    assert!(e.contains("line 2: target: \"planet:x\""), "{e}");
    assert!(
        e.contains("line 3: date: \"2026-11-31\" is not a date"),
        "{e}"
    );
    assert!(e.contains("line 4: hours"), "{e}");
    assert!(
        e.contains("line 5: a negative cost is a correction or a refund"),
        "{e}"
    );
    let e = import::read(
        "date,kind,party,colour\n",
        Format::Cooper,
        "mine.csv",
        &communities,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("column \"colour\" is not one of the template's"),
        "{e}"
    );
}
