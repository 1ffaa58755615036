//! Properties of decisions over any ballots: the outcome does not depend on the order the
//! votes arrived in, a vote passes exactly when more than the rule's share of all members
//! voted for (and nobody blocked, when blocks stop it), and casting votes one by one (each
//! replacing the member's earlier one) counts the same as the latest vote of each.

use cooper_federation::decision::{cast, outcome, Ballot, Outcome, Vote, DAY_MS};
use cooper_federation::Rules;
use proptest::prelude::*;

const DEADLINE: i64 = 30 * DAY_MS;

fn vote() -> impl Strategy<Value = Vote> {
    prop_oneof![Just(Vote::For), Just(Vote::StandAside), Just(Vote::Block)]
}

fn ballots(members: usize) -> impl Strategy<Value = Vec<Ballot>> {
    prop::collection::vec((0..members + 1, vote(), 0..DEADLINE + DAY_MS), 0..40).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (m, vote, at))| Ballot {
                member: format!("coop{m}"),
                vote,
                // Distinct times, so "the latest" is never a tie.
                at: at * 64 + i as i64,
                comment: String::new(),
            })
            .collect()
    })
}

fn kind(o: &Outcome) -> &'static str {
    match o {
        Outcome::Open { .. } => "open",
        Outcome::Passed { .. } => "passed",
        Outcome::Failed { .. } => "failed",
        Outcome::Blocked { .. } => "blocked",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn outcomes_follow_the_rule_whatever_the_order(
        n in 1usize..12,
        mut b in ballots(12),
        size in prop_oneof![Just("small"), Just("medium"), Just("large")],
        seed in any::<u64>(),
    ) {
        let rules = Rules::coop_cloud();
        let size = rules.size(size).unwrap();
        // Member numbers 1..=n vote; coop0 and those above n are not members.
        let members: Vec<String> = (1..=n).map(|i| format!("coop{i}")).collect();
        let at_deadline = outcome(size, &members, &b, DEADLINE * 64, DEADLINE * 64);
        // Order does not matter.
        let mut rng = seed;
        for i in (1..b.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            b.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let shuffled = outcome(size, &members, &b, DEADLINE * 64, DEADLINE * 64);
        prop_assert_eq!(&at_deadline, &shuffled);

        // Casting one by one, in time order, with late and non-member votes refused.
        let mut sorted = b.clone();
        sorted.sort_by_key(|x| x.at);
        let mut cast_ballots = Vec::new();
        for x in &sorted {
            let _ = cast(&mut cast_ballots, x.clone(), DEADLINE * 64, &members);
        }
        let replayed = outcome(size, &members, &cast_ballots, DEADLINE * 64, DEADLINE * 64);
        prop_assert_eq!(&at_deadline, &replayed);

        // The rule, checked against a count made here.
        let mut latest = std::collections::BTreeMap::new();
        for x in &sorted {
            if x.at < DEADLINE * 64 && members.contains(&x.member) {
                latest.insert(x.member.clone(), x.vote);
            }
        }
        let fors = latest.values().filter(|v| **v == Vote::For).count();
        let blocks = latest.values().filter(|v| **v == Vote::Block).count();
        let want = match size.name.as_str() {
            "small" => "passed",
            "medium" => if blocks > 0 { "blocked" } else { "passed" },
            _ => if blocks > 0 { "blocked" } else if fors * 2 > n { "passed" } else { "failed" },
        };
        prop_assert_eq!(kind(&at_deadline), want);
    }
}
