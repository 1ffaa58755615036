//! Settlements: worked examples with figures checked by hand (three communities, one server,
//! two people's hours, a maintenance pool, then a month where funds fall short), and the
//! properties that must hold for any entries and any rule (proptest).

use cooper_ledger::entry::parse_date;
use cooper_ledger::settle::Instance;
use cooper_ledger::*;
use proptest::prelude::*;

fn entry(id: &str, kind: Kind, date: &str, amount: i64, party: &str, target: &str) -> Entry {
    Entry {
        id: id.into(),
        kind,
        date: parse_date(date).unwrap(),
        amount,
        currency: Currency::EUR,
        party: party.parse().unwrap(),
        target: target.parse().unwrap(),
        category: String::new(),
        status: Status::Received,
        recurs: Recurs::Once,
        minutes: 0,
        until: None,
        note: String::new(),
        corrects: None,
    }
}

fn hours(id: &str, date: &str, person: &str, minutes: i64, on: &str) -> Entry {
    Entry {
        minutes,
        ..entry(id, Kind::Labour, date, 0, person, on)
    }
}

const RULE: &str = r#"
currency = "EUR"
shortfall = "priority"
cost_key = "equal"

[[line]]
kind = "infrastructure"

[[line]]
kind = "labour"
rate = "25"

[[line]]
kind = "pool"
name = "maintenance"
percent = "10"

[[line]]
kind = "pool"
name = "solidarity"
percent = "5"

[[line]]
kind = "fixed"
name = "federation dues"
amount = "20"
to = "federation"
"#;

fn instances() -> Vec<Instance> {
    ["a", "b", "c"]
        .iter()
        .map(|c| Instance {
            domain: format!("{c}.example.org"),
            server: "s1".into(),
            community: Some(format!("community-{c}")),
            cpu: 0,
            memory: 0,
            disk: 0,
        })
        .collect()
}

fn november() -> Vec<Entry> {
    vec![
        entry(
            "n01",
            Kind::Contribution,
            "2026-11-02",
            30000,
            "community:community-a",
            "shared",
        ),
        entry(
            "n02",
            Kind::Contribution,
            "2026-11-05",
            20000,
            "community:community-b",
            "shared",
        ),
        entry(
            "n03",
            Kind::Contribution,
            "2026-11-09",
            10000,
            "community:community-c",
            "shared",
        ),
        entry(
            "n04",
            Kind::Cost,
            "2026-11-01",
            12000,
            "coop:tech",
            "server:s1",
        ),
        entry(
            "n05",
            Kind::Cost,
            "2026-11-30",
            300,
            "external:Stripe",
            "shared",
        ),
        hours(
            "n06",
            "2026-11-10",
            "person:ana",
            6 * 60,
            "instance:a.example.org",
        ),
        hours("n07", "2026-11-11", "person:ana", 2 * 60, "federation"),
        hours("n08", "2026-11-12", "person:bo", 270, "recipe:nextcloud"),
        // Not in November: ignored.
        entry(
            "o01",
            Kind::Contribution,
            "2026-10-31",
            99999,
            "community:community-a",
            "shared",
        ),
    ]
}

fn paid(s: &Settlement, who: &str, line: &str) -> i64 {
    let r: Ref = who.parse().unwrap();
    s.shares
        .iter()
        .find(|x| x.recipient == r && x.line == line)
        .unwrap_or_else(|| panic!("no share for {who} on {line}: {:#?}", s.shares))
        .paid
}

#[test]
fn a_month_with_enough_funds() {
    let rule = Rule::parse(RULE, "rule").unwrap();
    let entries = november();
    let insts = instances();
    let s = settle(&Input {
        period: "2026-11".parse().unwrap(),
        rule: &rule,
        entries: &entries,
        carry_in: 0,
        rates: &[],
        instances: &insts,
    })
    .unwrap();
    assert_eq!(s.received, 60000);
    assert_eq!(s.funds, 60000);
    assert!(!s.short);
    assert_eq!(paid(&s, "coop:tech", "infrastructure"), 12000);
    assert_eq!(paid(&s, "external:Stripe", "infrastructure"), 300);
    assert_eq!(paid(&s, "person:ana", "labour"), 20000); // 8 h × 25
    assert_eq!(paid(&s, "person:bo", "labour"), 11250); // 4.5 h × 25
    assert_eq!(paid(&s, "pool:maintenance", "maintenance"), 6000); // 10 % of 600
    assert_eq!(paid(&s, "pool:solidarity", "solidarity"), 3000);
    assert_eq!(paid(&s, "federation", "federation dues"), 2000);
    assert_eq!(s.claimed, 54550);
    assert_eq!(s.carry_out, 5450);
    // Traced: ana's share names her two entries.
    let ana = s
        .shares
        .iter()
        .find(|x| x.recipient.to_string() == "person:ana")
        .unwrap();
    assert_eq!(ana.entries, vec!["n06", "n07"]);
    assert_eq!(ana.minutes, 480);
    // The server's 120.00 split three ways, the shared 3.00 too: 41.00 each.
    for i in &s.instances {
        assert_eq!(
            (i.server_share, i.shared_share, i.total),
            (4000, 100, 4100),
            "{i:?}"
        );
    }
    // Community A gave half the funds: half of every line, and of what was carried.
    let a = &s.communities[0];
    assert_eq!(a.community, "community-a");
    assert_eq!(
        a.paid_for,
        vec![
            ("infrastructure".to_string(), 6150),
            ("labour".to_string(), 15625),
            ("maintenance".to_string(), 3000),
            ("solidarity".to_string(), 1500),
            ("federation dues".to_string(), 1000),
        ]
    );
    assert_eq!(a.carried, 2725);
    assert_eq!(a.instance_cost, 4100);
    // Community C gave a sixth: the odd cent goes to the largest remainder (labour first of
    // the three equal ones).
    let c = &s.communities[2];
    let parts: Vec<i64> = c.paid_for.iter().map(|p| p.1).collect();
    assert_eq!(parts, vec![2050, 5209, 1000, 500, 333]);
    assert_eq!(c.carried, 908);
    assert_eq!(parts.iter().sum::<i64>() + c.carried, 10000);
}

fn december() -> Vec<Entry> {
    vec![
        entry(
            "d01",
            Kind::Contribution,
            "2026-12-03",
            10000,
            "community:community-a",
            "shared",
        ),
        entry(
            "d02",
            Kind::Contribution,
            "2026-12-04",
            5000,
            "community:community-b",
            "shared",
        ),
        entry(
            "d03",
            Kind::Cost,
            "2026-12-01",
            12000,
            "coop:tech",
            "server:s1",
        ),
        entry(
            "d04",
            Kind::Cost,
            "2026-12-31",
            300,
            "external:Stripe",
            "shared",
        ),
        hours(
            "d05",
            "2026-12-10",
            "person:ana",
            240,
            "instance:a.example.org",
        ),
        hours(
            "d06",
            "2026-12-11",
            "person:bo",
            120,
            "community:community-b",
        ),
    ]
}

#[test]
fn a_month_where_funds_fall_short_by_priority() {
    let rule = Rule::parse(RULE, "rule").unwrap();
    let entries = december();
    let s = settle(&Input {
        period: "2026-12".parse().unwrap(),
        rule: &rule,
        entries: &entries,
        carry_in: 5450,
        rates: &[],
        instances: &instances(),
    })
    .unwrap();
    assert_eq!(s.funds, 20450);
    assert_eq!(s.claimed, 31550);
    assert!(s.short);
    // Costs first, in full; the 81.50 left shared pro rata between the two people's claims
    // of 100.00 and 50.00 (54.333… and 27.166…: the odd cent to bo's larger remainder).
    assert_eq!(paid(&s, "coop:tech", "infrastructure"), 12000);
    assert_eq!(paid(&s, "external:Stripe", "infrastructure"), 300);
    assert_eq!(paid(&s, "person:ana", "labour"), 5433);
    assert_eq!(paid(&s, "person:bo", "labour"), 2717);
    assert_eq!(paid(&s, "pool:maintenance", "maintenance"), 0);
    assert_eq!(paid(&s, "federation", "federation dues"), 0);
    assert_eq!(s.carry_out, 0);
    assert_eq!(s.paid, 20450);
}

#[test]
fn a_month_where_funds_fall_short_pro_rata() {
    let rule = Rule::parse(&RULE.replace("\"priority\"", "\"pro-rata\""), "rule").unwrap();
    let entries = december();
    let s = settle(&Input {
        period: "2026-12".parse().unwrap(),
        rule: &rule,
        entries: &entries,
        carry_in: 5450,
        rates: &[],
        instances: &instances(),
    })
    .unwrap();
    // 204.50 over claims of 315.50, each by its exact quota, three cents by largest remainder.
    assert_eq!(paid(&s, "coop:tech", "infrastructure"), 7778);
    assert_eq!(paid(&s, "external:Stripe", "infrastructure"), 195);
    assert_eq!(paid(&s, "person:ana", "labour"), 6482);
    assert_eq!(paid(&s, "person:bo", "labour"), 3241);
    assert_eq!(paid(&s, "pool:maintenance", "maintenance"), 972);
    assert_eq!(paid(&s, "pool:solidarity", "solidarity"), 486);
    assert_eq!(paid(&s, "federation", "federation dues"), 1296);
    assert_eq!(s.paid, 20450);
}

#[test]
fn other_currencies_need_the_rate_and_use_it() {
    let rule = Rule::parse(RULE, "rule").unwrap();
    let mut entries = november();
    entries.push(Entry {
        currency: Currency::GBP,
        ..entry(
            "n09",
            Kind::Contribution,
            "2026-11-20",
            10000,
            "person:kim",
            "shared",
        )
    });
    let input = Input {
        period: "2026-11".parse().unwrap(),
        rule: &rule,
        entries: &entries,
        carry_in: 0,
        rates: &[],
        instances: &[],
    };
    let e = settle(&input).unwrap_err().to_string();
    assert!(
        e.contains("n09") && e.contains("GBP") && e.contains("--rate"),
        "{e}"
    );
    let rates = [Rate::new(Currency::GBP, Currency::EUR, "1.1650").unwrap()];
    let s = settle(&Input {
        rates: &rates,
        ..input
    })
    .unwrap();
    assert_eq!(s.received, 60000 + 11650);
    assert_eq!(s.rates, rates.to_vec());
}

#[test]
fn the_cost_key_uses_the_figures_and_says_when_it_cannot() {
    let rule = Rule::parse(&RULE.replace("\"equal\"", "\"memory\""), "rule").unwrap();
    let entries = november();
    let mut insts = instances();
    insts[0].memory = 3 << 30;
    insts[1].memory = 1 << 30;
    let s = settle(&Input {
        period: "2026-11".parse().unwrap(),
        rule: &rule,
        entries: &entries,
        carry_in: 0,
        rates: &[],
        instances: &insts,
    })
    .unwrap();
    let shares: Vec<i64> = s.instances.iter().map(|i| i.server_share).collect();
    assert_eq!(shares, vec![9000, 3000, 0]);
    assert!(s.servers[0].note.is_none());
    for i in &mut insts {
        i.memory = 0;
    }
    let s = settle(&Input {
        period: "2026-11".parse().unwrap(),
        rule: &rule,
        entries: &entries,
        carry_in: 0,
        rates: &[],
        instances: &insts,
    })
    .unwrap();
    assert!(s.servers[0]
        .note
        .as_deref()
        .unwrap()
        .contains("shared equally"));
    assert_eq!(s.instances[0].server_share, 4000);
}

#[test]
fn corrections_below_zero_are_recovered_not_paid_negative() {
    let rule = Rule::parse(RULE, "rule").unwrap();
    let mut entries = november();
    // In November a correction takes back 150.00 of costs invoiced to tech in October.
    entries.push(Entry {
        corrects: Some("o99".into()),
        ..entry(
            "n10",
            Kind::Cost,
            "2026-11-15",
            -27000,
            "coop:tech",
            "server:s1",
        )
    });
    let s = settle(&Input {
        period: "2026-11".parse().unwrap(),
        rule: &rule,
        entries: &entries,
        carry_in: 0,
        rates: &[],
        instances: &[],
    })
    .unwrap();
    assert_eq!(paid(&s, "coop:tech", "infrastructure"), 0);
    assert_eq!(s.recovered, 15000);
    assert_eq!(s.funds, 75000);
    assert_eq!(s.paid + s.carry_out, s.funds);
}

#[test]
fn pledges_show_beside_what_arrived() {
    let rule = Rule::parse(RULE, "rule").unwrap();
    let mut entries = november();
    entries.push(Entry {
        status: Status::Pledged,
        recurs: Recurs::Monthly,
        ..entry(
            "p01",
            Kind::Contribution,
            "2026-06-01",
            30000,
            "community:community-a",
            "shared",
        )
    });
    let s = settle(&Input {
        period: "2026-11".parse().unwrap(),
        rule: &rule,
        entries: &entries,
        carry_in: 0,
        rates: &[],
        instances: &[],
    })
    .unwrap();
    assert_eq!(s.received, 60000, "a pledge is not money");
    assert_eq!(s.communities[0].pledged, 30000);
    assert_eq!(s.communities[0].contributed, 30000);
}

// ---- properties --------------------------------------------------------------------------

fn arb_entry(i: usize) -> impl Strategy<Value = Entry> {
    let parties = prop::sample::select(vec![
        "community:a",
        "community:b",
        "community:c",
        "person:ana",
        "person:bo",
        "coop:tech",
        "external:Hetzner",
    ]);
    let targets = prop::sample::select(vec![
        "server:s1",
        "server:s2",
        "instance:a.example.org",
        "shared",
    ]);
    (
        0..4usize,
        parties,
        targets,
        -20_000i64..200_000,
        1i64..1_000,
        1u8..=28,
        any::<bool>(),
    )
        .prop_map(move |(k, party, target, amount, minutes, day, correct)| {
            let kind = [Kind::Contribution, Kind::Cost, Kind::Labour, Kind::Payout][k];
            let mut e = entry(
                &format!("e{i:04}"),
                kind,
                &format!("2026-11-{day:02}"),
                amount,
                party,
                target,
            );
            match kind {
                Kind::Contribution => {
                    if !party.starts_with("community:") && !party.starts_with("person:") {
                        e.party = "external:donor".parse().unwrap();
                    }
                    e.target = Ref::Shared;
                }
                Kind::Labour => {
                    e.amount = 0;
                    e.party = if party.ends_with("bo") {
                        "person:bo"
                    } else {
                        "person:ana"
                    }
                    .parse()
                    .unwrap();
                    e.target = "federation".parse().unwrap();
                    e.minutes = if correct { -minutes / 2 } else { minutes };
                }
                _ => {}
            }
            if e.amount < 0 || e.minutes < 0 {
                e.corrects = Some("earlier".into());
            }
            if e.amount == 0 && kind != Kind::Labour {
                e.amount = 1;
            }
            e
        })
}

fn arb_entries() -> impl Strategy<Value = Vec<Entry>> {
    (0..60usize).prop_flat_map(|n| (0..n).map(arb_entry).collect::<Vec<_>>())
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    (
        any::<bool>(),
        any::<bool>(),
        1i64..10_000,
        0i64..3_000,
        0i64..3_000,
        1i64..50_000,
        any::<bool>(),
    )
        .prop_map(|(infra, pro_rata, rate, p1, p2, fixed, fixed_first)| {
            let mut lines = Vec::new();
            if fixed_first {
                lines.push(Line::Fixed {
                    name: "dues".into(),
                    amount: fixed,
                    to: Ref::Federation,
                });
            }
            if infra {
                lines.push(Line::Infrastructure);
            }
            lines.push(Line::Labour { rate });
            lines.push(Line::Pool {
                name: "maintenance".into(),
                basis_points: p1,
                to: Ref::Pool("maintenance".into()),
            });
            lines.push(Line::Pool {
                name: "solidarity".into(),
                basis_points: p2,
                to: Ref::Pool("solidarity".into()),
            });
            if !fixed_first {
                lines.push(Line::Fixed {
                    name: "dues".into(),
                    amount: fixed,
                    to: Ref::Federation,
                });
            }
            Rule {
                version: 1,
                currency: Currency::EUR,
                shortfall: if pro_rata {
                    Shortfall::ProRata
                } else {
                    Shortfall::Priority
                },
                cost_key: CostKey::Equal,
                lines,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn shares_add_up_to_the_funds_and_none_is_negative(
        entries in arb_entries(),
        rule in arb_rule(),
        carry_in in -50_000i64..200_000,
        seed in any::<u64>(),
    ) {
        let insts = instances();
        let input = Input {
            period: "2026-11".parse().unwrap(),
            rule: &rule,
            entries: &entries,
            carry_in,
            rates: &[],
            instances: &insts,
        };
        let s = settle(&input).unwrap();
        // Everything received is either paid out or carried, to the minor unit.
        prop_assert_eq!(s.paid + s.carry_out, s.funds);
        prop_assert_eq!(s.shares.iter().map(|x| x.paid).sum::<i64>(), s.paid);
        for x in &s.shares {
            prop_assert!(x.paid >= 0, "negative share {:?}", x);
            prop_assert!(x.paid <= x.claim.max(0), "paid more than claimed {:?}", x);
        }
        if s.funds >= s.claimed {
            prop_assert!(s.shares.iter().all(|x| x.paid == x.claim.max(0)));
        } else if s.funds > 0 {
            prop_assert_eq!(s.carry_out, 0);
            prop_assert_eq!(s.paid, s.funds);
        }
        for c in &s.communities {
            let parts: i64 = c.paid_for.iter().map(|p| p.1).sum::<i64>() + c.carried;
            prop_assert_eq!(parts, c.contributed.max(0));
            prop_assert!(c.paid_for.iter().all(|p| p.1 >= 0));
        }
        let costs: i64 = entries.iter().filter(|e| e.kind == Kind::Cost).map(|e| e.amount).sum();
        let unattributed: i64 = s.servers.iter().filter(|x| x.instances == 0).map(|x| x.total).sum();
        prop_assert_eq!(s.instances.iter().map(|i| i.total).sum::<i64>() + unattributed, costs);

        // The same entries in another order settle the same.
        let mut shuffled = entries.clone();
        let mut r = seed;
        for i in (1..shuffled.len()).rev() {
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (r >> 33) as usize % (i + 1));
        }
        let again = settle(&Input { entries: &shuffled, ..input.clone() }).unwrap();
        prop_assert_eq!(&again, &s);
        prop_assert_eq!(again.digest(), s.digest());
    }

    #[test]
    fn apportion_adds_up(total in 0i64..10_000_000, weights in prop::collection::vec(0i64..1_000_000, 0..30)) {
        let parts = apportion(total, &weights);
        prop_assert_eq!(parts.len(), weights.len());
        if !weights.is_empty() {
            prop_assert_eq!(parts.iter().sum::<i64>(), total);
            let sum: i128 = weights.iter().map(|w| *w as i128).sum();
            for (p, w) in parts.iter().zip(&weights) {
                prop_assert!(*p >= 0);
                if sum > 0 {
                    // Within one unit of the exact quota.
                    let exact = total as i128 * *w as i128;
                    prop_assert!((*p as i128) * sum <= exact + sum && (*p as i128 + 1) * sum > exact);
                }
            }
        }
    }
}
