//! Decisions: one vote per member organisation (for, stand aside, block), changeable until
//! the deadline and refused after it; the outcome worked out at the deadline by the size's
//! rule. Time is milliseconds since the epoch, given by the caller (the scheduler's clock).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rules::{Size, SizeKind};
use crate::FederationError;

/// A day in milliseconds.
pub const DAY_MS: i64 = 24 * 3600 * 1000;

/// A member organisation's vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vote {
    For,
    StandAside,
    Block,
}

impl Vote {
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::For => "for",
            Vote::StandAside => "stand aside",
            Vote::Block => "block",
        }
    }
}

/// A vote as cast: by which member organisation, when, with a comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    pub member: String,
    pub vote: Vote,
    pub at: i64,
    pub comment: String,
}

/// The votes counted: each member's latest vote cast before the deadline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub for_: usize,
    pub stand_aside: usize,
    pub block: usize,
    /// Member organisations that may vote (all members, for a vote's threshold).
    pub members: usize,
    /// Those who blocked.
    pub blocked_by: Vec<String>,
}

/// Where a decision stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Outcome {
    /// Before its deadline (the tally so far).
    Open {
        tally: Tally,
    },
    Passed {
        tally: Tally,
        reason: String,
    },
    /// Not enough votes for.
    Failed {
        tally: Tally,
        reason: String,
    },
    Blocked {
        tally: Tally,
        reason: String,
    },
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Passed { .. })
    }
}

/// Checks a proposal's deadline against its size: at least the size's minimum after it was
/// proposed.
pub fn check_deadline(size: &Size, proposed_at: i64, deadline: i64) -> Result<(), FederationError> {
    let min = proposed_at + i64::from(size.min_deadline_days) * DAY_MS;
    if size.kind != SizeKind::Record && deadline < min {
        return Err(FederationError::Invalid(format!(
            "deadline: a {} decision needs at least {} days from proposing to its deadline",
            size.name, size.min_deadline_days
        )));
    }
    Ok(())
}

/// Records a vote: a member's new vote replaces their earlier one; a vote at or after the
/// deadline, or by an organisation that is not a voting member, is refused.
pub fn cast(
    ballots: &mut Vec<Ballot>,
    ballot: Ballot,
    deadline: i64,
    members: &[String],
) -> Result<(), FederationError> {
    if ballot.at >= deadline {
        return Err(FederationError::Invalid(
            "the deadline has passed: votes are closed and the result stands".into(),
        ));
    }
    if !members.contains(&ballot.member) {
        return Err(FederationError::Invalid(format!(
            "{} is not a voting member: one vote per member organisation",
            ballot.member
        )));
    }
    ballots.retain(|b| b.member != ballot.member);
    ballots.push(ballot);
    Ok(())
}

fn tally(ballots: &[Ballot], deadline: i64, members: &[String]) -> Tally {
    let mut latest: BTreeMap<&str, &Ballot> = BTreeMap::new();
    for b in ballots
        .iter()
        .filter(|b| b.at < deadline && members.contains(&b.member))
    {
        match latest.get(b.member.as_str()) {
            Some(prev) if prev.at > b.at => {}
            _ => {
                latest.insert(&b.member, b);
            }
        }
    }
    let mut t = Tally {
        members: members.len(),
        ..Tally::default()
    };
    for b in latest.values() {
        match b.vote {
            Vote::For => t.for_ += 1,
            Vote::StandAside => t.stand_aside += 1,
            Vote::Block => {
                t.block += 1;
                t.blocked_by.push(b.member.clone());
            }
        }
    }
    t
}

/// The outcome of a decision of `size` at `now`, with `members` the voting member
/// organisations (all of them: a vote's threshold is a share of all members, not of those who
/// voted).
pub fn outcome(
    size: &Size,
    members: &[String],
    ballots: &[Ballot],
    deadline: i64,
    now: i64,
) -> Outcome {
    let tally = tally(ballots, deadline, members);
    if size.kind == SizeKind::Record {
        return Outcome::Passed {
            tally,
            reason: format!("a {} decision: done and recorded", size.name),
        };
    }
    if now < deadline {
        return Outcome::Open { tally };
    }
    if size.block_stops && tally.block > 0 {
        let reason = format!("blocked by {}", tally.blocked_by.join(", "));
        return Outcome::Blocked { tally, reason };
    }
    match size.kind {
        SizeKind::Consent => Outcome::Passed {
            reason: format!(
                "no block by the deadline ({} for, {} standing aside)",
                tally.for_, tally.stand_aside
            ),
            tally,
        },
        SizeKind::Vote => {
            // More than `percent` % of all members, in integers: for × 100 > percent × members.
            let needed = size.pass_percent_of_members as usize * tally.members;
            if tally.for_ * 100 > needed {
                Outcome::Passed {
                    reason: format!(
                        "{} of {} members voted for: more than {} %",
                        tally.for_, tally.members, size.pass_percent_of_members
                    ),
                    tally,
                }
            } else {
                Outcome::Failed {
                    reason: format!(
                        "{} of {} members voted for: more than {} % of all members are needed ({} votes)",
                        tally.for_,
                        tally.members,
                        size.pass_percent_of_members,
                        needed / 100 + 1
                    ),
                    tally,
                }
            }
        }
        SizeKind::Record => unreachable!("handled above"),
    }
}

/// The number a passed decision gets: R001, R002, … after the highest one so far.
pub fn next_number(existing: &[String]) -> String {
    let highest = existing
        .iter()
        .filter_map(|n| n.strip_prefix('R').and_then(|d| d.parse::<u32>().ok()))
        .max()
        .unwrap_or(0);
    format!("R{:03}", highest + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rules;

    fn members(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("coop{i}")).collect()
    }

    fn ballot(member: &str, vote: Vote, at: i64) -> Ballot {
        Ballot {
            member: member.into(),
            vote,
            at,
            comment: String::new(),
        }
    }

    const DEADLINE: i64 = 100 * DAY_MS;

    /// The table: every size × the cases that decide it.
    #[test]
    fn outcomes_at_the_deadline() {
        let rules = Rules::coop_cloud();
        let large = rules.size("large").unwrap();
        let nine = members(9);
        let votes = |v: &[(usize, Vote)]| -> Vec<Ballot> {
            v.iter()
                .map(|(i, v)| ballot(&format!("coop{i}"), *v, DEADLINE - DAY_MS))
                .collect()
        };
        let fors = |n: usize| -> Vec<(usize, Vote)> { (1..=n).map(|i| (i, Vote::For)).collect() };
        struct Case {
            what: &'static str,
            size: &'static str,
            members: usize,
            ballots: Vec<Ballot>,
            want: &'static str,
        }
        let cases = vec![
            Case {
                what: "small: recorded, no vote",
                size: "small",
                members: 9,
                ballots: vec![],
                want: "passed",
            },
            Case {
                what: "medium: nobody objects",
                size: "medium",
                members: 9,
                ballots: vec![],
                want: "passed",
            },
            Case {
                what: "medium: one stands aside",
                size: "medium",
                members: 9,
                ballots: votes(&[(1, Vote::StandAside)]),
                want: "passed",
            },
            Case {
                what: "medium: one block",
                size: "medium",
                members: 9,
                ballots: votes(&[(1, Vote::For), (2, Vote::Block)]),
                want: "blocked",
            },
            Case {
                what: "large: quorum not reached (4 of 9)",
                size: "large",
                members: 9,
                ballots: votes(&fors(4)),
                want: "failed",
            },
            Case {
                what: "large: 5 of 9",
                size: "large",
                members: 9,
                ballots: votes(&fors(5)),
                want: "passed",
            },
            Case {
                what: "large: exactly half (5 of 10) is not more than half",
                size: "large",
                members: 10,
                ballots: votes(&fors(5)),
                want: "failed",
            },
            Case {
                what: "large: 6 of 10",
                size: "large",
                members: 10,
                ballots: votes(&fors(6)),
                want: "passed",
            },
            Case {
                what: "large: a majority and a block",
                size: "large",
                members: 9,
                ballots: {
                    let mut b = votes(&fors(7));
                    b.extend(votes(&[(8, Vote::Block)]));
                    b
                },
                want: "blocked",
            },
            Case {
                what: "large: stand-asides do not count for",
                size: "large",
                members: 9,
                ballots: {
                    let mut b = votes(&fors(4));
                    b.extend(votes(&[(5, Vote::StandAside), (6, Vote::StandAside)]));
                    b
                },
                want: "failed",
            },
            Case {
                what: "large: a vote changed before the deadline counts as changed",
                size: "large",
                members: 9,
                ballots: {
                    let mut b = votes(&fors(4));
                    b.push(ballot("coop5", Vote::Block, DEADLINE - 3 * DAY_MS));
                    b.push(ballot("coop5", Vote::For, DEADLINE - DAY_MS));
                    b
                },
                want: "passed",
            },
            Case {
                what: "large: a vote at the deadline is not counted",
                size: "large",
                members: 9,
                ballots: {
                    let mut b = votes(&fors(4));
                    b.push(ballot("coop5", Vote::For, DEADLINE));
                    b
                },
                want: "failed",
            },
            Case {
                what: "large: a non-member's vote is not counted",
                size: "large",
                members: 9,
                ballots: {
                    let mut b = votes(&fors(4));
                    b.push(ballot("outsider", Vote::For, DEADLINE - DAY_MS));
                    b
                },
                want: "failed",
            },
        ];
        for c in cases {
            let size = rules.size(c.size).unwrap();
            let m = members(c.members);
            let o = outcome(size, &m, &c.ballots, DEADLINE, DEADLINE);
            let got = match &o {
                Outcome::Passed { .. } => "passed",
                Outcome::Failed { .. } => "failed",
                Outcome::Blocked { .. } => "blocked",
                Outcome::Open { .. } => "open",
            };
            assert_eq!(got, c.want, "{}: {o:?}", c.what);
        }
        // Before the deadline a vote or consent is open, whatever the votes.
        let open = outcome(large, &nine, &votes(&fors(9)), DEADLINE, DEADLINE - 1);
        assert!(matches!(open, Outcome::Open { ref tally } if tally.for_ == 9));
    }

    #[test]
    fn votes_change_until_the_deadline_and_are_refused_after() {
        let m = members(3);
        let mut ballots = Vec::new();
        cast(&mut ballots, ballot("coop1", Vote::Block, 10), DEADLINE, &m).unwrap();
        cast(&mut ballots, ballot("coop1", Vote::For, 20), DEADLINE, &m).unwrap();
        assert_eq!(ballots.len(), 1, "one vote per member organisation");
        assert_eq!(ballots[0].vote, Vote::For);
        let late = cast(
            &mut ballots,
            ballot("coop2", Vote::For, DEADLINE),
            DEADLINE,
            &m,
        );
        assert!(late
            .unwrap_err()
            .to_string()
            .contains("deadline has passed"));
        let stranger = cast(&mut ballots, ballot("nobody", Vote::For, 5), DEADLINE, &m);
        assert!(stranger
            .unwrap_err()
            .to_string()
            .contains("not a voting member"));
        assert_eq!(ballots.len(), 1);
    }

    #[test]
    fn deadlines_respect_the_size() {
        let rules = Rules::coop_cloud();
        let medium = rules.size("medium").unwrap();
        assert!(check_deadline(medium, 0, 14 * DAY_MS).is_ok());
        let e = check_deadline(medium, 0, 13 * DAY_MS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 14 days"), "{e}");
        assert!(check_deadline(rules.size("small").unwrap(), 0, 0).is_ok());
    }

    #[test]
    fn passed_decisions_are_numbered_in_order() {
        assert_eq!(next_number(&[]), "R001");
        assert_eq!(
            next_number(&["R001".into(), "R009".into(), "R010".into()]),
            "R011"
        );
        assert_eq!(next_number(&["draft".into()]), "R001");
    }
}
