//! `cooper ledger …` end to end: the binary over a real store (SQLite under `$ABRA_DIR`),
//! Open Collective's export imported twice, a bad file refused whole, a month previewed,
//! proposed by a treasurer and closed by an operator, its record printed as JSON, and the
//! errors a person meets named with their fix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ledger/tests/fixtures")
        .join(name)
}

struct Books {
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    store: cooper_store::Store,
    coop: String,
}

impl Books {
    /// A store with co-op `tech`, communities `riseup` and `Garden Collective`, a treasurer
    /// and an operator.
    fn new() -> Books {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("servers")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (store, coop) = rt.block_on(async {
            let store = cooper_store::Store::open_default(dir.path()).await.unwrap();
            let coop = store.add_coop("tech").await.unwrap();
            store.add_community("riseup", &coop.id).await.unwrap();
            store
                .add_community("Garden Collective", &coop.id)
                .await
                .unwrap();
            for (email, role) in [
                ("tess@tech.example", "treasurer"),
                ("otto@tech.example", "operator"),
            ] {
                let p = store.add_person(email, email, None, false).await.unwrap();
                store
                    .add_membership(&p.id, "coop", &coop.id, role)
                    .await
                    .unwrap();
            }
            (store, coop.id)
        });
        Books {
            dir,
            rt,
            store,
            coop,
        }
    }

    fn cooper(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cooper"))
            .arg("ledger")
            .args(["--coop", "tech"])
            .args(args)
            .env("ABRA_DIR", self.dir.path())
            .env_remove("COOPER_DATABASE")
            .env_remove("COOPER_PERSON")
            .stdin(Stdio::null())
            .output()
            .expect("cooper runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cooper(args);
        assert!(
            out.status.success(),
            "cooper ledger {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.cooper(args);
        assert!(
            !out.status.success(),
            "cooper ledger {args:?} should fail:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("-m prints JSON")
    }

    fn entry_count(&self) -> usize {
        self.rt
            .block_on(self.store.entries(&self.coop, None))
            .unwrap()
            .len()
    }
}

/// `settle` November with its GBP rate, closing as `by` in `role`.
fn close_november<'a>(by: &'a str, role: &'a str) -> [&'a str; 10] {
    [
        "settle",
        "--period",
        "2026-11",
        "--rate",
        "GBP=1.1650",
        "--close",
        "--by",
        by,
        "--as",
        role,
    ]
}

fn amount(v: &serde_json::Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("{v} is not an amount"))
}

#[test]
fn an_export_imported_settled_and_closed_by_two_people() {
    let b = Books::new();
    let oc = fixture("opencollective-transactions.csv");
    let oc = oc.to_str().unwrap();

    // A bad file first: every bad line named, nothing imported.
    let bad = fixture("opencollective-bad.csv");
    let err = b.fails(&["import", bad.to_str().unwrap()]);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("BALANCE_TRANSFER"), "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert_eq!(b.entry_count(), 0, "nothing half-imported");

    // The real export, twice: the second adds nothing.
    let first = b.json(&[
        "import",
        oc,
        "--map",
        "riseup-community=community:riseup",
        "-m",
    ]);
    let added = amount(&first["added"]);
    assert!(added >= 12, "{first}");
    let again = b.ok(&["import", oc, "--map", "riseup-community=community:riseup"]);
    assert!(
        again.contains(&format!("0 added, {added} already")),
        "{again}"
    );
    assert_eq!(b.entry_count(), added as usize);

    // Hours by hand; an amount with too many decimals is refused, naming the field.
    b.ok(&[
        "add",
        "labour",
        "--date",
        "2026-11-14",
        "--party",
        "person:ana@tech.example",
        "--target",
        "recipe:nextcloud",
        "--hours",
        "2:30",
        "--note",
        "upgrade rehearsal",
    ]);
    let err = b.fails(&[
        "add",
        "contribution",
        "--date",
        "2026-11-14",
        "--amount",
        "12.345",
        "--party",
        "community:riseup",
    ]);
    assert!(
        err.contains("12.345") && err.contains("2 decimal places"),
        "{err}"
    );
    let err = b.fails(&["add", "gift", "--party", "community:riseup"]);
    assert!(
        err.contains("gift") && err.contains("contribution"),
        "{err}"
    );

    // A month in GBP and EUR: without a rate the settlement says which one to give.
    let err = b.fails(&["settle", "--period", "2026-11"]);
    assert!(err.contains("--rate GBP="), "{err}");
    let preview = b.json(&[
        "settle",
        "--period",
        "2026-11",
        "--rate",
        "GBP=1.1650",
        "-m",
    ]);
    let funds = amount(&preview["funds"]);
    let paid: i64 = preview["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| amount(&s["paid"]))
        .sum();
    assert_eq!(
        paid + amount(&preview["carry_out"]),
        funds,
        "shares and carry add up to the funds: {preview}"
    );
    // 300 + 200 − 50 refund + 75 added funds + £100 at 1.1650 = 641.50 received.
    assert_eq!(amount(&preview["received"]), 64150, "{preview}");
    let labour = preview["shares"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["recipient"] == "person:ana@tech.example")
        .expect("Ana's hours have a share");
    assert_eq!(amount(&labour["minutes"]), 150);

    // Closing needs two people in two roles.
    let err = b.fails(&close_november("nobody@tech.example", "treasurer"));
    assert!(err.contains("no such person"), "{err}");
    let proposed = b.ok(&close_november("tess@tech.example", "treasurer"));
    assert!(
        proposed.contains("proposed by tess@tech.example"),
        "{proposed}"
    );
    // The proposer asking again only proposes again: it never closes.
    let again = b.ok(&close_november("tess@tech.example", "treasurer"));
    assert!(again.contains("proposed by tess@tech.example"), "{again}");
    assert!(!again.contains("closed"), "{again}");
    let err = b.fails(&close_november("tess@tech.example", "operator"));
    assert!(
        err.contains("not a operator") || err.contains("not an operator"),
        "{err}"
    );
    let closed = b.ok(&close_november("otto@tech.example", "operator"));
    assert!(closed.contains("2026-11 closed"), "{closed}");
    let err = b.fails(&close_november("otto@tech.example", "operator"));
    assert!(err.contains("already closed"), "{err}");

    // A closed month refuses new entries; a correction goes in the next month and changes it,
    // not the closed record.
    let err = b.fails(&[
        "add",
        "contribution",
        "--date",
        "2026-11-20",
        "--amount",
        "5",
        "--party",
        "community:riseup",
    ]);
    assert!(err.contains("closed"), "{err}");
    let record = b.json(&["report", "--period", "2026-11", "-m"]);
    assert_eq!(record, preview, "the closed record is what was previewed");
    b.ok(&[
        "add",
        "contribution",
        "--date",
        "2026-12-03",
        "--amount",
        "-20",
        "--party",
        "community:Garden Collective",
        "--corrects",
        "oc:b2c3d4e5",
        "--note",
        "a second partial refund",
    ]);
    assert_eq!(
        b.json(&["report", "--period", "2026-11", "-m"]),
        record,
        "the closed month does not move"
    );
    let dec = b.json(&["settle", "--period", "2026-12", "-m"]);
    assert_eq!(amount(&dec["carry_in"]), amount(&record["carry_out"]));
    assert_eq!(amount(&dec["received"]), -2000, "{dec}");

    // A community's part, as a table.
    let part = b.ok(&["report", "--period", "2026-11", "--community", "riseup"]);
    assert!(part.contains("contributed 300.00 EUR"), "{part}");

    // The template round-trips: what `template` prints imports, and `report --entries --csv`
    // prints what was imported.
    let template = b.ok(&["template"]);
    let t = b.dir.path().join("template.csv");
    std::fs::write(
        &t,
        template
            .replace("2026-11-", "2027-01-")
            .replace("2026-06-01", "2027-01-01"),
    )
    .unwrap();
    let out = b.json(&["import", t.to_str().unwrap(), "-m"]);
    assert_eq!(amount(&out["added"]), 5, "{out}");
    let csv = b.ok(&["report", "--period", "2027-01", "--entries", "--csv"]);
    assert!(csv.starts_with("date,kind,amount"), "{csv}");
    assert_eq!(csv.lines().count(), 6, "{csv}");
}

#[test]
fn a_rule_is_set_from_a_file_and_a_bad_one_is_refused_by_line() {
    let b = Books::new();
    let shown = b.ok(&["rule"]);
    assert!(shown.contains("default rule"), "{shown}");
    let bad = b.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "currency = \"EUR\"\n\n[[line]]\nkind = \"labour\"\nrate = \"twenty\"\n",
    )
    .unwrap();
    let err = b.fails(&["rule", "--set", bad.to_str().unwrap()]);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("rate"), "{err}");
    let good = b.dir.path().join("rule.toml");
    std::fs::write(
        &good,
        shown
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let set = b.ok(&["rule", "--set", good.to_str().unwrap()]);
    assert!(set.contains("rule version 1"), "{set}");
    assert!(b.ok(&["rule"]).contains("# version 1"));
}
