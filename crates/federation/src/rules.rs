//! A federation's rules as data: the sizes of decisions and how each one passes, the dues,
//! and the buffer below which no new budget may be proposed. Written in TOML; the Co-op Cloud
//! federation's own file ships as [`Rules::coop_cloud`]. A bad file is refused with the field
//! and the fix named.

use cooper_ledger::{parse_amount, Currency};
use serde::Deserialize;

use crate::FederationError;

/// How a size of decision passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeKind {
    /// Just done, and recorded: passes when recorded.
    Record,
    /// Passes at its deadline unless someone blocks.
    Consent,
    /// A vote: passes at its deadline when enough of all members vote for (and, when the
    /// rules say so, nobody blocks).
    Vote,
}

/// One size of decision (Small, Medium, Large for Co-op Cloud).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    pub name: String,
    pub kind: SizeKind,
    /// The shortest time from proposing to the deadline.
    pub min_deadline_days: u32,
    /// A vote passes when the votes for are **more than** this percentage of all members.
    pub pass_percent_of_members: u32,
    /// A block stops the decision (consent always; a vote when the rules say so).
    pub block_stops: bool,
}

/// How often dues fall due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuesPeriod {
    Monthly,
    Yearly,
}

/// Membership dues, as the resolution in force sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dues {
    /// Minor units of `currency`, per `period`.
    pub amount: i64,
    pub currency: Currency,
    pub period: DuesPeriod,
    /// The size of decision that admits a new member.
    pub join_size: String,
    /// The rule's own review: this many months after the resolution (none: 0).
    pub review_after_months: u32,
}

/// The federation's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub name: String,
    pub sizes: Vec<Size>,
    pub dues: Option<Dues>,
    /// Below this balance of the common fund no new budget may be proposed (minor units).
    pub budget_buffer: Option<(i64, Currency)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    name: String,
    #[serde(default)]
    size: Vec<RawSize>,
    dues: Option<RawDues>,
    budgets: Option<RawBudgets>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSize {
    name: String,
    kind: String,
    #[serde(default)]
    min_deadline_days: u32,
    pass_percent_of_members: Option<u32>,
    block_stops: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDues {
    amount: String,
    currency: String,
    period: String,
    join_size: String,
    #[serde(default)]
    review_after_months: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudgets {
    buffer: String,
    currency: String,
}

const COOP_CLOUD: &str = include_str!("../rules/coop-cloud.toml");

impl Rules {
    /// The Co-op Cloud federation's rules (R001, R002, R009), from `rules/coop-cloud.toml`.
    pub fn coop_cloud() -> Rules {
        Rules::parse(COOP_CLOUD, "coop-cloud.toml").expect("the shipped rules parse")
    }

    /// Parses rules; `origin` names the file (or form) in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Rules, FederationError> {
        let raw: RawRules = toml::from_str(text).map_err(|e| {
            FederationError::Invalid(format!("{origin}: {}", e.to_string().trim_end()))
        })?;
        let bad = |field: String, why: String| {
            FederationError::Invalid(format!("{origin}: {field}: {why}"))
        };
        let mut sizes = Vec::new();
        for (i, s) in raw.size.iter().enumerate() {
            let at = |f: &str| format!("size {} ({}).{f}", i + 1, s.name);
            let kind = match s.kind.as_str() {
                "record" => SizeKind::Record,
                "consent" => SizeKind::Consent,
                "vote" => SizeKind::Vote,
                other => {
                    return Err(bad(
                        at("kind"),
                        format!("{other:?}: use \"record\" (just do it), \"consent\" (passes unless blocked) or \"vote\""),
                    ))
                }
            };
            let percent = match (kind, s.pass_percent_of_members) {
                (SizeKind::Vote, None) => {
                    return Err(bad(
                        at("pass_percent_of_members"),
                        "missing: a vote needs the share of all members that must vote for (50 = more than half)".into(),
                    ))
                }
                (SizeKind::Vote, Some(p)) if p >= 100 => {
                    return Err(bad(
                        at("pass_percent_of_members"),
                        format!("{p}: votes for must be more than this share, so it is below 100"),
                    ))
                }
                (_, p) => p.unwrap_or(0),
            };
            if sizes.iter().any(|x: &Size| x.name == s.name) {
                return Err(bad(at("name"), "a second size of this name".into()));
            }
            sizes.push(Size {
                name: s.name.clone(),
                kind,
                min_deadline_days: s.min_deadline_days,
                pass_percent_of_members: percent,
                block_stops: kind == SizeKind::Consent || s.block_stops.unwrap_or(false),
            });
        }
        if sizes.is_empty() {
            return Err(bad(
                "size".into(),
                "no sizes of decision: add at least one [[size]]".into(),
            ));
        }
        let dues = match raw.dues {
            None => None,
            Some(d) => {
                let currency: Currency =
                    d.currency
                        .parse()
                        .map_err(|e: cooper_ledger::LedgerError| {
                            bad("dues.currency".into(), e.to_string())
                        })?;
                let amount = parse_amount(&d.amount, currency)
                    .map_err(|e| bad("dues.amount".into(), e.to_string()))?;
                let period = match d.period.as_str() {
                    "monthly" => DuesPeriod::Monthly,
                    "yearly" => DuesPeriod::Yearly,
                    other => {
                        return Err(bad(
                            "dues.period".into(),
                            format!("{other:?}: use \"monthly\" or \"yearly\""),
                        ))
                    }
                };
                if !sizes.iter().any(|s| s.name == d.join_size) {
                    return Err(bad(
                        "dues.join_size".into(),
                        format!("{:?} is not one of the sizes above", d.join_size),
                    ));
                }
                Some(Dues {
                    amount,
                    currency,
                    period,
                    join_size: d.join_size,
                    review_after_months: d.review_after_months,
                })
            }
        };
        let budget_buffer = match raw.budgets {
            None => None,
            Some(b) => {
                let currency: Currency =
                    b.currency
                        .parse()
                        .map_err(|e: cooper_ledger::LedgerError| {
                            bad("budgets.currency".into(), e.to_string())
                        })?;
                let amount = parse_amount(&b.buffer, currency)
                    .map_err(|e| bad("budgets.buffer".into(), e.to_string()))?;
                Some((amount, currency))
            }
        };
        Ok(Rules {
            name: raw.name,
            sizes,
            dues,
            budget_buffer,
        })
    }

    /// The size of this name.
    pub fn size(&self, name: &str) -> Option<&Size> {
        self.sizes
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Whether a new budget may be proposed with the common fund at `balance` (minor units of
    /// the buffer's currency); the refusal says why.
    pub fn budget_allowed(&self, balance: i64) -> Result<(), FederationError> {
        match self.budget_buffer {
            Some((buffer, currency)) if balance < buffer => Err(FederationError::Invalid(format!(
                "the common fund holds {} {currency}, below the buffer of {} {currency}: no new budget may be proposed until it is back above it",
                cooper_ledger::format_amount(balance, currency),
                cooper_ledger::format_amount(buffer, currency)
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coop_cloud_rules_are_data() {
        let r = Rules::coop_cloud();
        assert_eq!(r.sizes.len(), 3);
        let large = r.size("Large").unwrap();
        assert_eq!(
            (large.kind, large.pass_percent_of_members, large.block_stops),
            (SizeKind::Vote, 50, true)
        );
        assert_eq!(r.size("medium").unwrap().min_deadline_days, 14);
        assert!(r.size("medium").unwrap().block_stops);
        let dues = r.dues.as_ref().unwrap();
        assert_eq!((dues.amount, dues.period), (1000, DuesPeriod::Monthly));
        assert_eq!(dues.review_after_months, 6);
        assert!(r.budget_allowed(150_000).is_ok());
        let e = r.budget_allowed(149_999).unwrap_err().to_string();
        assert!(
            e.contains("1499.99 EUR") && e.contains("1500.00 EUR"),
            "{e}"
        );
    }

    #[test]
    fn another_federation_sets_its_own() {
        let r = Rules::parse(
            "name = \"Elsewhere\"\n[[size]]\nname = \"ordinary\"\nkind = \"vote\"\npass_percent_of_members = 66\n",
            "rules.toml",
        )
        .unwrap();
        let s = r.size("ordinary").unwrap();
        assert_eq!((s.pass_percent_of_members, s.block_stops), (66, false));
        assert!(r.dues.is_none() && r.budget_buffer.is_none());
    }

    #[test]
    fn bad_rules_name_the_field_and_the_fix() {
        let cases = [
            ("name = \"x\"\n", "rules.toml: size: no sizes"),
            (
                "name = \"x\"\n[[size]]\nname = \"big\"\nkind = \"poll\"\n",
                "rules.toml: size 1 (big).kind: \"poll\"",
            ),
            (
                "name = \"x\"\n[[size]]\nname = \"big\"\nkind = \"vote\"\n",
                "size 1 (big).pass_percent_of_members: missing",
            ),
            (
                "name = \"x\"\n[[size]]\nname = \"big\"\nkind = \"vote\"\npass_percent_of_members = 100\n",
                "below 100",
            ),
            (
                "name = \"x\"\n[[size]]\nname = \"s\"\nkind = \"record\"\n[dues]\namount = \"10.005\"\ncurrency = \"EUR\"\nperiod = \"monthly\"\njoin_size = \"s\"\n",
                "dues.amount",
            ),
            (
                "name = \"x\"\n[[size]]\nname = \"s\"\nkind = \"record\"\n[dues]\namount = \"10\"\ncurrency = \"EUR\"\nperiod = \"weekly\"\njoin_size = \"s\"\n",
                "dues.period: \"weekly\"",
            ),
            (
                "name = \"x\"\n[[size]]\nname = \"s\"\nkind = \"record\"\n[dues]\namount = \"10\"\ncurrency = \"EUR\"\nperiod = \"yearly\"\njoin_size = \"huge\"\n",
                "dues.join_size: \"huge\" is not one of the sizes",
            ),
            ("name = \"x\"\nsizes = 3\n", "rules.toml"),
        ];
        for (text, want) in cases {
            let e = Rules::parse(text, "rules.toml").unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
