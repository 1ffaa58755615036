//! The ledger as an operation both front ends run: a month's settlement previewed from the
//! store's entries, the co-op's rule in force, what was carried over, the rates given and the
//! co-op's instances (from `$ABRA_DIR`, the store's owners and — when the rule's cost key
//! needs them — each server's engine figures, asked at once with a timeout each); then
//! proposed and closed by two people. `cooper ledger settle` and the dashboard's books page
//! call these same functions.

use std::collections::HashMap;
use std::time::Duration;

use cooper_ledger::import::{self, Format, ImportFile};
use cooper_ledger::settle::Instance;
use cooper_ledger::Ref;
use cooper_ledger::{settle, CostKey, Currency, Input, Period, Rate, Rule, Settlement};

use cooper_recipe::abra_dir::AbraDir;
use cooper_store::{Closing, ImportOutcome, Store};
use futures_util::future::join_all;

/// How long one server's engine may take to give its figures.
pub const FIGURES_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the books: what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BooksError {
    #[error("{0}")]
    Store(#[from] cooper_store::StoreError),
    #[error("{0}")]
    Ledger(#[from] cooper_ledger::LedgerError),
    #[error(transparent)]
    State(#[from] cooper_recipe::abra_dir::StateError),
    #[error("{0}")]
    Import(#[from] cooper_ledger::import::ImportError),
    #[error("{0}")]
    Invalid(String),
}

/// A preview: the settlement and what was worth saying about how it was made.
#[derive(Debug, Clone)]
pub struct Preview {
    pub settlement: Settlement,
    pub rule: Rule,
    /// The rule is the default one (the co-op has not set its own).
    pub default_rule: bool,
    pub notes: Vec<String>,
}

/// The rule in force for a co-op: its newest version, or the default (EUR) until it sets one.
pub async fn rule_in_force(store: &Store, coop: &str) -> Result<(Rule, bool), BooksError> {
    Ok(match store.rule(coop).await? {
        Some(r) => (r, false),
        None => (Rule::default_for(Currency::EUR), true),
    })
}

/// One server's figures by stack: reserved (CPU nanos, memory bytes) and volume bytes.
type ServerFigures = (HashMap<String, (i64, i64)>, HashMap<String, i64>);

/// The co-op's instances with the figures its cost key needs. Servers are asked at once,
/// each within [`FIGURES_TIMEOUT`]; one that does not answer is named in the notes and its
/// instances weigh nothing (the settlement then shares that server's costs equally, and says so).
pub async fn instances(
    abra: &AbraDir,
    store: &Store,
    coop: &str,
    key: CostKey,
) -> Result<(Vec<Instance>, Vec<String>), BooksError> {
    let servers: Vec<String> = store
        .server_owners()
        .await?
        .into_iter()
        .filter(|(_, c)| c == coop)
        .map(|(s, _)| s)
        .collect();
    let community_of: HashMap<String, String> =
        store.instance_owners().await?.into_iter().collect();
    let names: HashMap<String, String> = store
        .communities()
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let apps: Vec<_> = abra
        .apps()?
        .into_iter()
        .filter(|a| servers.contains(&a.server))
        .collect();
    let mut figures: HashMap<String, ServerFigures> = HashMap::new();
    let mut notes = Vec::new();
    if key != CostKey::Equal {
        let asked = servers.iter().map(|server| async move {
            let look = async {
                let engine = crate::connect(abra, server)
                    .await
                    .map_err(|e| e.to_string())?;
                let ready = engine
                    .nodes()
                    .await
                    .map(|n| n.iter().filter(|n| n.state == "ready").count().max(1))
                    .unwrap_or(1);
                let reserved = engine
                    .reserved_by_stack(ready)
                    .await
                    .map_err(|e| e.to_string())?;
                let disk = if key == CostKey::Disk {
                    engine
                        .volume_bytes_by_stack()
                        .await
                        .map_err(|e| e.to_string())?
                } else {
                    HashMap::new()
                };
                Ok::<_, String>((reserved, disk))
            };
            let got = match tokio::time::timeout(FIGURES_TIMEOUT, look).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} s", FIGURES_TIMEOUT.as_secs())),
            };
            (server.clone(), got)
        });
        for (server, got) in join_all(asked).await {
            match got {
                Ok(f) => {
                    figures.insert(server, f);
                }
                Err(e) => notes.push(format!(
                    "server {server}: no {} figures ({e}); its costs are shared equally",
                    key.as_str()
                )),
            }
        }
    }
    let mut out = Vec::new();
    for a in apps {
        let stack = match abra.load_app(a.clone()) {
            Ok(app) => crate::stack_of(&app),
            Err(_) => cooper_recipe::stack::stack_name(&a.domain),
        };
        let (reserved, disk) = figures
            .get(&a.server)
            .map(|(r, d)| {
                (
                    r.get(&stack).copied().unwrap_or((0, 0)),
                    d.get(&stack).copied().unwrap_or(0),
                )
            })
            .unwrap_or(((0, 0), 0));
        out.push(Instance {
            community: community_of
                .get(&a.domain)
                .and_then(|c| names.get(c))
                .cloned(),
            domain: a.domain,
            server: a.server,
            cpu: reserved.0,
            memory: reserved.1,
            disk,
        });
    }
    Ok((out, notes))
}

/// Previews a month: the settlement as it would close now. A month proposed by someone is
/// previewed with the instance figures and rates of that proposal (so the second person
/// confirms the same arithmetic on the entries as they are now); `rates` are used otherwise.
pub async fn preview(
    abra: &AbraDir,
    store: &Store,
    coop: &str,
    period: Period,
    rates: &[Rate],
) -> Result<Preview, BooksError> {
    let (rule, default_rule) = rule_in_force(store, coop).await?;
    let proposal = store
        .settlement(coop, period)
        .await?
        .filter(|s| s.state == "proposed");
    let (insts, rates, mut notes) = match &proposal {
        Some(p) => (
            p.settlement.figures.clone(),
            p.settlement.rates.clone(),
            vec![format!(
                "proposed by {} as {}: figures and rates as proposed",
                p.proposed_by, p.proposed_as
            )],
        ),
        None => {
            let (i, n) = instances(abra, store, coop, rule.cost_key).await?;
            (i, rates.to_vec(), n)
        }
    };
    if default_rule {
        notes.push("the co-op has not set its rule: the default one is used".into());
    }
    let entries = store.entries_to_settle(coop, period).await?;
    let carry_in = store.carry_in(coop, period).await?;
    let settlement = settle(&Input {
        period,
        rule: &rule,
        entries: &entries,
        carry_in,
        rates: &rates,
        instances: &insts,
    })?;
    Ok(Preview {
        settlement,
        rule,
        default_rule,
        notes,
    })
}

/// Proposes or confirms closing a month as `role` (`treasurer` | `operator`); the audit log
/// keeps who did what.
pub async fn close(
    abra: &AbraDir,
    store: &Store,
    coop: &str,
    period: Period,
    rates: &[Rate],
    by: &str,
    role: &str,
) -> Result<(Closing, Preview), BooksError> {
    let p = preview(abra, store, coop, period, rates).await?;
    let result = store.close_period(coop, &p.settlement, by, role).await;
    let (action, outcome) = match &result {
        Ok(Closing::Proposed) => ("ledger propose", "ok".to_string()),
        Ok(Closing::Closed) => ("ledger close", "ok".to_string()),
        Err(e) => ("ledger close", format!("refused: {e}")),
    };
    store
        .audit(
            by,
            action,
            None,
            None,
            &outcome,
            &format!(
                "{period} as {role}, digest {}",
                &p.settlement.digest()[..12]
            ),
        )
        .await?;
    Ok((result?, p))
}

/// The parties Open Collective accounts map to: `maps` first (`SLUG=community:NAME`), then the
/// co-op's communities by name or by the slug of their name.
pub async fn party_map(
    store: &Store,
    coop: &str,
    maps: &[String],
) -> Result<HashMap<String, Ref>, BooksError> {
    let mut out = HashMap::new();
    for c in store
        .communities()
        .await?
        .into_iter()
        .filter(|c| c.coop_id == coop)
    {
        out.insert(c.name.to_lowercase(), Ref::Community(c.name.clone()));
        out.insert(slug(&c.name), Ref::Community(c.name));
    }
    for m in maps.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
        let (k, v) = m.split_once('=').ok_or_else(|| {
            BooksError::Invalid(format!("map {m:?}: write it as SLUG=community:NAME"))
        })?;
        out.insert(k.trim().to_lowercase(), v.trim().parse()?);
    }
    Ok(out)
}

/// A name as Open Collective makes a slug of it: `Riseup Community` → `riseup-community`.
pub fn slug(name: &str) -> String {
    name.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// Reads a file to import into a co-op's books: in `format` (`opencollective`, `cooper`) or
/// the one its header shows; nothing is stored. Every bad line is in the error.
pub async fn read_import(
    store: &Store,
    coop: &str,
    text: &str,
    format: Option<&str>,
    maps: &[String],
    origin: &str,
) -> Result<ImportFile, BooksError> {
    let format = match format.map(str::trim).filter(|f| !f.is_empty()) {
        None | Some("detect") => import::detect(text),
        Some("opencollective" | "oc") => Format::OpenCollective,
        Some("cooper" | "csv") => Format::Cooper,
        Some(f) => {
            return Err(BooksError::Invalid(format!(
                "format {f:?}: use opencollective or cooper"
            )))
        }
    };
    let map = party_map(store, coop, maps).await?;
    let lookup = |slug: &str, name: &str| {
        map.get(&slug.to_lowercase())
            .or_else(|| map.get(&name.to_lowercase()))
            .cloned()
    };
    Ok(import::read(text, format, origin, &lookup)?)
}

/// Stores what [`read_import`] read, all or nothing, and says so in the audit log.
pub async fn import_file(
    store: &Store,
    coop: &str,
    file: &ImportFile,
    origin: &str,
    by: &str,
) -> Result<ImportOutcome, BooksError> {
    let outcome = store.import_entries(coop, origin, &file.entries, by).await;
    let said = match &outcome {
        Ok(o) => format!("{} added, {} already there", o.added, o.already),
        Err(e) => format!("refused: {e}"),
    };
    store
        .audit(
            by,
            "ledger import",
            None,
            None,
            if outcome.is_ok() { "ok" } else { "failed" },
            &format!("{origin} ({}): {said}", file.format),
        )
        .await?;
    Ok(outcome?)
}

/// Rates into `to` as people write them: `GBP=1.1650`, several separated by commas or lines.
pub fn parse_rates<S: AsRef<str>>(given: &[S], to: Currency) -> Result<Vec<Rate>, BooksError> {
    given
        .iter()
        .flat_map(|g| g.as_ref().split([',', '\n']))
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let (c, v) = r.split_once('=').ok_or_else(|| {
                BooksError::Invalid(format!("rate {r:?}: write a rate as GBP=1.1650"))
            })?;
            Ok(Rate::new(c.trim().parse()?, to, v.trim())?)
        })
        .collect()
}
