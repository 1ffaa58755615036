//! A month's settlement: the received funds (and what was carried over) shared by the rule,
//! every amount traced to the entries and the rule line that produced it; the costs of each
//! server attributed to its instances by the rule's key; what each community's contribution
//! paid for. Pure: the same entries, rule, rates and instances give the same settlement,
//! whatever the order of the entries.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Kind, Period, Ref, Status};
use crate::money::{apportion, div_round, Currency, Rate};
use crate::rule::{CostKey, Line, Rule, Shortfall};
use crate::LedgerError;

/// An instance on a server during the month, with the figures the cost key may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub domain: String,
    pub server: String,
    /// The community it is for (by name), when one is recorded.
    pub community: Option<String>,
    /// Reserved CPU in billionths of a CPU (the engine's NanoCPUs).
    pub cpu: i64,
    /// Reserved memory in bytes.
    pub memory: i64,
    /// Bytes its volumes use.
    pub disk: i64,
}

impl Instance {
    fn weight(&self, key: CostKey) -> i64 {
        match key {
            CostKey::Equal => 1,
            CostKey::Cpu => self.cpu,
            CostKey::Memory => self.memory,
            CostKey::Disk => self.disk,
        }
    }
}

/// What a settlement is computed from.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub period: Period,
    pub rule: &'a Rule,
    /// The co-op's entries: those dated in the period count, pledges count when they fall due
    /// in it; others are ignored.
    pub entries: &'a [Entry],
    /// What the previous closed settlement carried over (negative: a deficit).
    pub carry_in: i64,
    /// Rates into the rule's currency for every other currency used.
    pub rates: &'a [Rate],
    pub instances: &'a [Instance],
}

/// One participant's share on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub recipient: Ref,
    /// The rule line (its label) and its position.
    pub line: String,
    pub line_index: usize,
    /// What the line says is due (negative: more was corrected away than claimed; that
    /// much is set against the funds as recovered).
    pub claim: i64,
    pub paid: i64,
    /// Labour: the minutes valued.
    pub minutes: i64,
    /// The entries behind the claim (ids, sorted).
    pub entries: Vec<String>,
    /// How the claim was worked out, in words.
    pub basis: String,
}

/// A line's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineTotal {
    pub line: String,
    pub claimed: i64,
    pub paid: i64,
}

/// What one contributor gave in the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contributor {
    pub party: Ref,
    pub received: i64,
    pub pledged: i64,
    pub entries: Vec<String>,
}

/// What a community's contribution paid for, and what its instances cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityBooks {
    pub community: String,
    pub contributed: i64,
    pub pledged: i64,
    /// Its contribution followed through the shares: (line, amount), then what was carried.
    pub paid_for: Vec<(String, i64)>,
    pub carried: i64,
    pub instance_cost: i64,
    pub instances: Vec<String>,
}

/// An instance's part of the costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceCost {
    pub domain: String,
    pub server: String,
    pub community: Option<String>,
    /// The weight the key gave it, and the total weight on its server.
    pub weight: i64,
    pub server_weight: i64,
    /// Costs attributed to the instance itself.
    pub direct: i64,
    /// Its part of its server's costs.
    pub server_share: i64,
    /// Its part of the shared costs.
    pub shared_share: i64,
    pub total: i64,
}

/// A server's costs and how they were split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCost {
    pub server: String,
    pub total: i64,
    pub instances: usize,
    pub entries: Vec<String>,
    /// When the key could not be used as chosen (no figures), what was done instead.
    pub note: Option<String>,
}

/// A settled (or previewed) month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    pub period: Period,
    pub rule_version: i64,
    pub currency: Currency,
    pub rates: Vec<Rate>,
    pub cost_key: CostKey,
    pub carry_in: i64,
    pub received: i64,
    pub recovered: i64,
    pub funds: i64,
    pub claimed: i64,
    pub paid: i64,
    pub carry_out: i64,
    pub short: bool,
    pub shares: Vec<Share>,
    pub lines: Vec<LineTotal>,
    pub contributors: Vec<Contributor>,
    pub communities: Vec<CommunityBooks>,
    pub servers: Vec<ServerCost>,
    pub instances: Vec<InstanceCost>,
    /// The instances and figures the cost key was given (a second person confirming the
    /// month uses these, not the engine's figures of the moment).
    pub figures: Vec<Instance>,
    pub shared_costs: i64,
    pub payouts: Vec<(Ref, i64)>,
    pub labour_minutes: i64,
    pub entry_count: usize,
}

impl Settlement {
    /// SHA-256 of the settlement's JSON: what a second person confirms when closing.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let json = serde_json::to_vec(self).expect("a settlement serialises");
        hex(&sha2::Sha256::digest(json))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Default)]
struct Claim {
    amount: i64,
    minutes: i64,
    entries: BTreeSet<String>,
}

/// Settles a month.
pub fn settle(input: &Input) -> Result<Settlement, LedgerError> {
    let rule = input.rule;
    let cur = rule.currency;
    let period = input.period;
    // Entries in id order: nothing below depends on the order they came in.
    let mut entries: Vec<&Entry> = input.entries.iter().collect();
    entries.sort_by(|a, b| a.id.cmp(&b.id));

    let convert = |e: &Entry| -> Result<i64, LedgerError> {
        if e.currency == cur {
            return Ok(e.amount);
        }
        let rate = input
            .rates
            .iter()
            .find(|r| r.from == e.currency && r.to == cur)
            .ok_or_else(|| {
                LedgerError::Invalid(format!(
                    "entry {} is in {} and the settlement is in {cur}: give the rate used \
                     (e.g. --rate {}={})",
                    e.id, e.currency, e.currency, "1.1650"
                ))
            })?;
        rate.convert(e.amount)
    };

    let in_period: Vec<&Entry> = entries
        .iter()
        .copied()
        .filter(|e| period.contains(e.date) && e.status == Status::Received)
        .collect();

    // Money in.
    let mut contributors: BTreeMap<Ref, Contributor> = BTreeMap::new();
    let mut received = 0i64;
    for e in in_period.iter().filter(|e| e.kind == Kind::Contribution) {
        let a = convert(e)?;
        received += a;
        let c = contributors.entry(e.party.clone()).or_insert(Contributor {
            party: e.party.clone(),
            received: 0,
            pledged: 0,
            entries: Vec::new(),
        });
        c.received += a;
        c.entries.push(e.id.clone());
    }
    for e in entries.iter().filter(|e| {
        e.kind == Kind::Contribution
            && e.status == Status::Pledged
            && period.pledge_due(e.date, e.recurs, e.until)
    }) {
        let a = convert(e)?;
        let c = contributors.entry(e.party.clone()).or_insert(Contributor {
            party: e.party.clone(),
            received: 0,
            pledged: 0,
            entries: Vec::new(),
        });
        c.pledged += a;
        c.entries.push(e.id.clone());
    }

    // Claims by line, then recipient.
    let mut claims: BTreeMap<(usize, Ref), Claim> = BTreeMap::new();
    let mut bases: BTreeMap<usize, String> = BTreeMap::new();
    for (i, line) in rule.lines.iter().enumerate() {
        match line {
            Line::Infrastructure => {
                for e in in_period.iter().filter(|e| e.kind == Kind::Cost) {
                    let c = claims.entry((i, e.party.clone())).or_default();
                    c.amount += convert(e)?;
                    c.entries.insert(e.id.clone());
                }
                bases.insert(i, "costs of the month, passed through".into());
            }
            Line::Labour { rate } => {
                for e in in_period.iter().filter(|e| e.kind == Kind::Labour) {
                    let c = claims.entry((i, e.party.clone())).or_default();
                    c.minutes += e.minutes;
                    c.entries.insert(e.id.clone());
                }
                for ((li, _), c) in claims.iter_mut() {
                    if *li == i {
                        c.amount = div_round(c.minutes as i128 * *rate as i128, 60) as i64;
                    }
                }
                bases.insert(
                    i,
                    format!(
                        "hours × {} an hour",
                        crate::money::format_amount(*rate, cur)
                    ),
                );
            }
            Line::Pool {
                basis_points, to, ..
            } => {
                let c = claims.entry((i, to.clone())).or_default();
                c.amount =
                    div_round(received.max(0) as i128 * *basis_points as i128, 10_000) as i64;
                bases.insert(
                    i,
                    format!(
                        "{} % of the month's contributions",
                        crate::money::format_amount(*basis_points, Currency::EUR)
                            .trim_end_matches('0')
                            .trim_end_matches('.')
                    ),
                );
            }
            Line::Fixed { amount, to, .. } => {
                let c = claims.entry((i, to.clone())).or_default();
                c.amount = *amount;
                bases.insert(i, "a fixed amount each month".into());
            }
        }
    }

    // A negative net claim (corrections larger than the claims) is money owed back: it is set
    // against the funds, and that claim is paid nothing.
    let recovered: i64 = claims
        .values()
        .filter(|c| c.amount < 0)
        .map(|c| -c.amount)
        .sum();
    let funds = input.carry_in + received + recovered;
    let keys: Vec<(usize, Ref)> = claims.keys().cloned().collect();
    let wanted: Vec<i64> = keys.iter().map(|k| claims[k].amount.max(0)).collect();
    let claimed: i64 = wanted.iter().sum();
    let short = funds < claimed;
    let paid: Vec<i64> = if funds <= 0 {
        vec![0; wanted.len()]
    } else if !short {
        wanted.clone()
    } else {
        match rule.shortfall {
            Shortfall::ProRata => apportion(funds, &wanted),
            Shortfall::Priority => {
                let mut out = vec![0; wanted.len()];
                let mut left = funds;
                for li in 0..rule.lines.len() {
                    let idx: Vec<usize> = (0..keys.len()).filter(|&k| keys[k].0 == li).collect();
                    let total: i64 = idx.iter().map(|&k| wanted[k]).sum();
                    if total <= left {
                        for &k in &idx {
                            out[k] = wanted[k];
                        }
                        left -= total;
                    } else {
                        let w: Vec<i64> = idx.iter().map(|&k| wanted[k]).collect();
                        for (&k, p) in idx.iter().zip(apportion(left, &w)) {
                            out[k] = p;
                        }
                        left = 0;
                    }
                }
                out
            }
        }
    };
    let paid_total: i64 = paid.iter().sum();
    let carry_out = funds - paid_total;

    let shares: Vec<Share> = keys
        .iter()
        .zip(&paid)
        .map(|((li, who), p)| {
            let c = &claims[&(*li, who.clone())];
            Share {
                recipient: who.clone(),
                line: rule.lines[*li].label(),
                line_index: *li,
                claim: c.amount,
                paid: *p,
                minutes: c.minutes,
                entries: c.entries.iter().cloned().collect(),
                basis: bases.get(li).cloned().unwrap_or_default(),
            }
        })
        .collect();
    let lines: Vec<LineTotal> = rule
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| LineTotal {
            line: l.label(),
            claimed: shares
                .iter()
                .filter(|s| s.line_index == i)
                .map(|s| s.claim.max(0))
                .sum(),
            paid: shares
                .iter()
                .filter(|s| s.line_index == i)
                .map(|s| s.paid)
                .sum(),
        })
        .collect();

    // Cost attribution.
    let (servers, instances, shared_costs) = attribute(input, &in_period, &convert)?;

    // Each community's contribution followed through the shares.
    let mut communities: BTreeMap<String, CommunityBooks> = BTreeMap::new();
    for c in contributors.values() {
        if let Ref::Community(name) = &c.party {
            let given = c.received.max(0);
            let mut weights: Vec<i64> = lines.iter().map(|l| l.paid).collect();
            weights.push(carry_out.max(0));
            let parts = if funds > 0 && weights.iter().any(|w| *w > 0) {
                apportion(given, &weights)
            } else {
                let mut v = vec![0; lines.len()];
                v.push(given);
                v
            };
            communities.insert(
                name.clone(),
                CommunityBooks {
                    community: name.clone(),
                    contributed: c.received,
                    pledged: c.pledged,
                    paid_for: lines
                        .iter()
                        .zip(&parts)
                        .map(|(l, p)| (l.line.clone(), *p))
                        .collect(),
                    carried: *parts.last().expect("carried part"),
                    instance_cost: 0,
                    instances: Vec::new(),
                },
            );
        }
    }
    for i in &instances {
        if let Some(name) = &i.community {
            let b = communities.entry(name.clone()).or_insert(CommunityBooks {
                community: name.clone(),
                contributed: 0,
                pledged: 0,
                paid_for: lines.iter().map(|l| (l.line.clone(), 0)).collect(),
                carried: 0,
                instance_cost: 0,
                instances: Vec::new(),
            });
            b.instance_cost += i.total;
            b.instances.push(i.domain.clone());
        }
    }

    let mut payouts: BTreeMap<Ref, i64> = BTreeMap::new();
    for e in in_period.iter().filter(|e| e.kind == Kind::Payout) {
        *payouts.entry(e.party.clone()).or_default() += convert(e)?;
    }

    Ok(Settlement {
        period,
        rule_version: rule.version,
        currency: cur,
        rates: input.rates.to_vec(),
        cost_key: rule.cost_key,
        carry_in: input.carry_in,
        received,
        recovered,
        funds,
        claimed,
        paid: paid_total,
        carry_out,
        short,
        shares,
        lines,
        contributors: contributors.into_values().collect(),
        communities: communities.into_values().collect(),
        servers,
        instances,
        figures: {
            let mut f = input.instances.to_vec();
            f.sort_by(|a, b| a.domain.cmp(&b.domain));
            f.dedup_by(|a, b| a.domain == b.domain);
            f
        },
        shared_costs,
        payouts: payouts.into_iter().collect(),
        labour_minutes: in_period
            .iter()
            .filter(|e| e.kind == Kind::Labour)
            .map(|e| e.minutes)
            .sum(),
        entry_count: in_period.len(),
    })
}

/// Splits a signed amount by weights (the parts add up to it exactly).
fn split_signed(total: i64, weights: &[i64]) -> Vec<i64> {
    if total >= 0 {
        apportion(total, weights)
    } else {
        apportion(-total, weights).into_iter().map(|p| -p).collect()
    }
}

type Attribution = (Vec<ServerCost>, Vec<InstanceCost>, i64);

fn attribute(
    input: &Input,
    in_period: &[&Entry],
    convert: &dyn Fn(&Entry) -> Result<i64, LedgerError>,
) -> Result<Attribution, LedgerError> {
    let key = input.rule.cost_key;
    let mut insts: Vec<&Instance> = input.instances.iter().collect();
    insts.sort_by(|a, b| a.domain.cmp(&b.domain));
    insts.dedup_by(|a, b| a.domain == b.domain);
    let mut out: Vec<InstanceCost> = insts
        .iter()
        .map(|i| InstanceCost {
            domain: i.domain.clone(),
            server: i.server.clone(),
            community: i.community.clone(),
            weight: 0,
            server_weight: 0,
            direct: 0,
            server_share: 0,
            shared_share: 0,
            total: 0,
        })
        .collect();
    let mut by_server: BTreeMap<String, (i64, Vec<String>)> = BTreeMap::new();
    let mut shared = 0i64;
    let mut unattributed: BTreeMap<String, i64> = BTreeMap::new();
    for e in in_period.iter().filter(|e| e.kind == Kind::Cost) {
        let a = convert(e)?;
        match &e.target {
            Ref::Server(s) => {
                let v = by_server.entry(s.clone()).or_default();
                v.0 += a;
                v.1.push(e.id.clone());
            }
            Ref::Instance(d) => match out.iter_mut().find(|i| &i.domain == d) {
                Some(i) => i.direct += a,
                None => *unattributed.entry(d.clone()).or_default() += a,
            },
            _ => shared += a,
        }
    }
    // Servers with instances but no costs are listed too.
    for i in &insts {
        by_server.entry(i.server.clone()).or_default();
    }
    let mut servers = Vec::new();
    for (server, (total, ids)) in by_server {
        let idx: Vec<usize> = (0..out.len())
            .filter(|&k| out[k].server == server)
            .collect();
        let mut weights: Vec<i64> = idx.iter().map(|&k| insts[k].weight(key).max(0)).collect();
        let mut note = None;
        if !idx.is_empty() && weights.iter().all(|w| *w == 0) {
            note = Some(format!(
                "no {} figures for its instances: shared equally instead",
                key.as_str()
            ));
            weights = vec![1; idx.len()];
        }
        if idx.is_empty() && total != 0 {
            note = Some("no instances on it this month: its costs are not attributed".into());
        }
        let sw: i64 = weights.iter().sum();
        for ((&k, w), p) in idx.iter().zip(&weights).zip(split_signed(total, &weights)) {
            out[k].weight = *w;
            out[k].server_weight = sw;
            out[k].server_share = p;
        }
        servers.push(ServerCost {
            server,
            total,
            instances: idx.len(),
            entries: ids,
            note,
        });
    }
    if !out.is_empty() {
        let mut w: Vec<i64> = insts.iter().map(|i| i.weight(key).max(0)).collect();
        if w.iter().all(|x| *x == 0) {
            w = vec![1; insts.len()];
        }
        for (o, p) in out.iter_mut().zip(split_signed(shared, &w)) {
            o.shared_share = p;
        }
    }
    for o in &mut out {
        o.total = o.direct + o.server_share + o.shared_share;
    }
    for (d, a) in unattributed {
        servers.push(ServerCost {
            server: format!("(instance {d})"),
            total: a,
            instances: 0,
            entries: Vec::new(),
            note: Some(format!("{d} is not an instance of this co-op this month")),
        });
    }
    Ok((servers, out, shared))
}
