//! The value equation: how a co-op's received funds are shared, as data. Written in TOML, kept
//! in the store with a version number; every settlement names the version it used.
//!
//! ```toml
//! currency = "EUR"
//! shortfall = "priority"      # or "pro-rata": how shares shrink when funds do not cover claims
//! cost_key = "equal"          # how a server's costs are shared among its instances: equal, cpu, memory, disk
//!
//! [[line]]
//! kind = "infrastructure"     # costs passed through to whoever is owed them
//!
//! [[line]]
//! kind = "labour"
//! rate = "25.00"              # per hour
//!
//! [[line]]
//! kind = "pool"
//! name = "maintenance"        # recipe maintainers and upstream projects
//! percent = "10"              # of the month's received contributions
//!
//! [[line]]
//! kind = "fixed"
//! name = "federation dues"
//! amount = "20.00"
//! to = "federation"
//! ```

use serde::{Deserialize, Serialize};

use crate::entry::Ref;
use crate::money::{parse_amount, Currency};
use crate::LedgerError;

/// How claims shrink when the funds do not cover them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shortfall {
    /// Every claim gets the same fraction.
    ProRata,
    /// Lines in their order: each is paid in full before the next gets anything; the line the
    /// money runs out in is shared pro rata.
    Priority,
}

/// How a server's costs are shared among the instances on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostKey {
    Equal,
    /// By reserved CPU (the recipe's resource reservations or limits, as the engine has them).
    Cpu,
    Memory,
    /// By the size of the instance's volumes on the server.
    Disk,
}

impl CostKey {
    pub fn as_str(self) -> &'static str {
        match self {
            CostKey::Equal => "equal",
            CostKey::Cpu => "cpu",
            CostKey::Memory => "memory",
            CostKey::Disk => "disk",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            CostKey::Equal => "shared equally among the instances on the server",
            CostKey::Cpu => "shared by the CPU each instance reserves",
            CostKey::Memory => "shared by the memory each instance reserves",
            CostKey::Disk => "shared by the disk each instance's volumes use",
        }
    }
}

/// One line of the equation, in priority order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Line {
    /// Every cost of the month, owed to its party.
    Infrastructure,
    /// Every person's hours at `rate` (minor units per hour).
    Labour { rate: i64 },
    /// A percentage (in basis points: 1000 = 10 %) of the month's received contributions.
    Pool {
        name: String,
        basis_points: i64,
        to: Ref,
    },
    /// A fixed amount each month.
    Fixed { name: String, amount: i64, to: Ref },
}

impl Line {
    pub fn label(&self) -> String {
        match self {
            Line::Infrastructure => "infrastructure".into(),
            Line::Labour { .. } => "labour".into(),
            Line::Pool { name, .. } | Line::Fixed { name, .. } => name.clone(),
        }
    }
}

/// A co-op's rule (one version of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub version: i64,
    pub currency: Currency,
    pub shortfall: Shortfall,
    pub cost_key: CostKey,
    pub lines: Vec<Line>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    currency: String,
    #[serde(default)]
    shortfall: Option<String>,
    #[serde(default)]
    cost_key: Option<String>,
    #[serde(default)]
    line: Vec<RawLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    kind: String,
    name: Option<String>,
    rate: Option<String>,
    percent: Option<String>,
    amount: Option<String>,
    to: Option<String>,
}

impl Rule {
    /// The rule a co-op starts with: costs, then labour at 25 an hour, 10 % maintenance, 5 %
    /// solidarity; priority order; servers' costs shared equally.
    pub fn default_for(currency: Currency) -> Rule {
        Rule::parse(&default_text(currency), "the default rule").expect("the default rule parses")
    }

    /// Parses a rule's TOML; `origin` names it in errors (a file, "the form").
    pub fn parse(text: &str, origin: &str) -> Result<Rule, LedgerError> {
        let raw: RawRule = toml::from_str(text)
            .map_err(|e| LedgerError::Invalid(format!("{origin}: {}", e.to_string().trim_end())))?;
        let bad =
            |field: String, why: String| LedgerError::Invalid(format!("{origin}: {field}: {why}"));
        let currency: Currency = raw
            .currency
            .parse()
            .map_err(|e: LedgerError| bad("currency".into(), e.to_string()))?;
        let shortfall = match raw.shortfall.as_deref().unwrap_or("priority") {
            "priority" => Shortfall::Priority,
            "pro-rata" | "prorata" | "pro_rata" => Shortfall::ProRata,
            other => {
                return Err(bad(
                    "shortfall".into(),
                    format!("{other:?}: use \"priority\" or \"pro-rata\""),
                ))
            }
        };
        let cost_key = match raw.cost_key.as_deref().unwrap_or("equal") {
            "equal" => CostKey::Equal,
            "cpu" => CostKey::Cpu,
            "memory" => CostKey::Memory,
            "disk" => CostKey::Disk,
            other => {
                return Err(bad(
                    "cost_key".into(),
                    format!("{other:?}: use equal, cpu, memory or disk"),
                ))
            }
        };
        let mut lines = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut percent_total = 0;
        for (i, l) in raw.line.into_iter().enumerate() {
            let at = |f: &str| {
                format!(
                    "line {} ({}){}",
                    i + 1,
                    l.kind,
                    if f.is_empty() {
                        String::new()
                    } else {
                        format!(".{f}")
                    }
                )
            };
            let need = |v: &Option<String>, f: &str| {
                v.clone()
                    .ok_or_else(|| bad(at(f), format!("missing: add {f} = \"…\"")))
            };
            let line = match l.kind.as_str() {
                "infrastructure" => Line::Infrastructure,
                "labour" | "labor" => {
                    let rate = parse_amount(&need(&l.rate, "rate")?, currency)
                        .map_err(|e| bad(at("rate"), e.to_string()))?;
                    if rate <= 0 {
                        return Err(bad(at("rate"), "an hourly rate above zero".into()));
                    }
                    Line::Labour { rate }
                }
                "pool" => {
                    let name = need(&l.name, "name")?;
                    let p = need(&l.percent, "percent")?;
                    // Percent with up to two decimals → basis points, exactly.
                    let bp = parse_amount(p.trim_end_matches('%'), Currency::EUR)
                        .map_err(|_| bad(at("percent"), format!("{p:?}: a percentage like 10 or 2.5")))?;
                    if !(0..=10_000).contains(&bp) {
                        return Err(bad(at("percent"), "between 0 and 100".into()));
                    }
                    percent_total += bp;
                    let to = match &l.to {
                        Some(t) => t.parse().map_err(|e: LedgerError| bad(at("to"), e.to_string()))?,
                        None => Ref::Pool(name.clone()),
                    };
                    Line::Pool { name, basis_points: bp, to }
                }
                "fixed" => {
                    let name = need(&l.name, "name")?;
                    let amount = parse_amount(&need(&l.amount, "amount")?, currency)
                        .map_err(|e| bad(at("amount"), e.to_string()))?;
                    if amount <= 0 {
                        return Err(bad(at("amount"), "an amount above zero".into()));
                    }
                    let to = match &l.to {
                        Some(t) => t.parse().map_err(|e: LedgerError| bad(at("to"), e.to_string()))?,
                        None => Ref::Pool(name.clone()),
                    };
                    Line::Fixed { name, amount, to }
                }
                other => {
                    return Err(bad(
                        at(""),
                        format!("{other:?} is not a kind of line: use infrastructure, labour, pool or fixed"),
                    ))
                }
            };
            if !seen.insert(line.label()) {
                return Err(bad(
                    at(""),
                    format!(
                        "a second line named {:?}: give each line its own name",
                        line.label()
                    ),
                ));
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(bad(
                "line".into(),
                "no lines: add at least [[line]] kind = \"infrastructure\"".into(),
            ));
        }
        if percent_total > 10_000 {
            return Err(bad(
                "line".into(),
                "the pools' percentages add up to more than 100".into(),
            ));
        }
        Ok(Rule {
            version: 0,
            currency,
            shortfall,
            cost_key,
            lines,
        })
    }

    /// The rule written back as TOML (what the store keeps and the forms show).
    pub fn to_toml(&self) -> String {
        use crate::money::format_amount;
        let mut s = format!(
            "currency = \"{}\"\nshortfall = \"{}\"\ncost_key = \"{}\"\n",
            self.currency,
            match self.shortfall {
                Shortfall::Priority => "priority",
                Shortfall::ProRata => "pro-rata",
            },
            self.cost_key.as_str()
        );
        for l in &self.lines {
            s.push_str("\n[[line]]\n");
            match l {
                Line::Infrastructure => s.push_str("kind = \"infrastructure\"\n"),
                Line::Labour { rate } => s.push_str(&format!(
                    "kind = \"labour\"\nrate = \"{}\"\n",
                    format_amount(*rate, self.currency)
                )),
                Line::Pool {
                    name,
                    basis_points,
                    to,
                } => s.push_str(&format!(
                    "kind = \"pool\"\nname = {}\npercent = \"{}\"\nto = \"{to}\"\n",
                    toml_str(name),
                    format_amount(*basis_points, Currency::EUR)
                        .trim_end_matches('0')
                        .trim_end_matches('.')
                )),
                Line::Fixed { name, amount, to } => s.push_str(&format!(
                    "kind = \"fixed\"\nname = {}\namount = \"{}\"\nto = \"{to}\"\n",
                    toml_str(name),
                    format_amount(*amount, self.currency)
                )),
            }
        }
        s
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The default rule's text in a currency.
pub fn default_text(currency: Currency) -> String {
    format!(
        "currency = \"{currency}\"\nshortfall = \"priority\"\ncost_key = \"equal\"\n\n\
         [[line]]\nkind = \"infrastructure\"\n\n\
         [[line]]\nkind = \"labour\"\nrate = \"25\"\n\n\
         [[line]]\nkind = \"pool\"\nname = \"maintenance\"\npercent = \"10\"\n\n\
         [[line]]\nkind = \"pool\"\nname = \"solidarity\"\npercent = \"5\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rule_round_trips() {
        let r = Rule::default_for(Currency::EUR);
        assert_eq!(r.lines.len(), 4);
        assert_eq!(Rule::parse(&r.to_toml(), "x").unwrap(), r);
        assert_eq!(
            r.lines[2],
            Line::Pool {
                name: "maintenance".into(),
                basis_points: 1000,
                to: Ref::Pool("maintenance".into())
            }
        );
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let e = Rule::parse(
            "currency = \"EUR\"\n[[line]]\nkind = \"labour\"\n",
            "rule.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("rule.toml: line 1 (labour).rate: missing"),
            "{e}"
        );
        let e = Rule::parse(
            "currency = \"EUR\"\n[[line]]\nkind = \"pool\"\nname = \"m\"\npercent = \"ten\"\n",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("percent") && e.contains("10 or 2.5"), "{e}");
        let e = Rule::parse("currency = \"EUR\"\nshortfal = \"x\"\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("shortfal"), "{e}");
        let e = Rule::parse(
            "currency = \"EUR\"\n[[line]]\nkind = \"pool\"\nname = \"a\"\npercent = \"60\"\n[[line]]\nkind = \"pool\"\nname = \"b\"\npercent = \"50\"\n",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("more than 100"), "{e}");
    }
}
