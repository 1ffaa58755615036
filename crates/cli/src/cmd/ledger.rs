//! `cooper ledger …`: the co-op's books from the terminal — add an entry, import Open
//! Collective's export or cooper's CSV, preview/propose/close a month's settlement, print the
//! books, show or set the rule. The same store and the same `cooper_ops::books` functions as
//! the dashboard's books pages.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use cooper_ledger::entry::{date_text, hours_text};
use cooper_ledger::import;
use cooper_ledger::{format_amount, Period, Settlement};
use cooper_store::{Closing, Store};

use crate::{output, Ctx};

#[derive(Debug, Args)]
pub struct Ledger {
    /// The co-op whose books these are (its name in the store).
    #[arg(long, global = true, value_name = "NAME", env = "COOPER_COOP")]
    coop: Option<String>,
    /// The store: `sqlite://<path>` or `postgres://…` (default: `$ABRA_DIR/cooper/cooper.db`).
    #[arg(
        long,
        global = true,
        env = "COOPER_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    database: Option<String>,
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Add one entry: contribution, cost, labour or payout.
    Add(Box<Add>),
    /// Import a file: Open Collective's transactions export or cooper's CSV template. All or
    /// nothing; importing the same file again adds nothing.
    Import(Import),
    /// Settle a month: preview it, or with --close propose it (first person) and close it
    /// (second person, in the other role).
    Settle(Settle),
    /// Print the books: a month's settlement, a community's part, or the entries.
    Report(Report),
    /// Show the rule in force, or set a new version from a TOML file.
    Rule(RuleArgs),
    /// Print cooper's CSV template (header and an example of each kind).
    Template,
}

#[derive(Debug, Args)]
struct Add {
    /// contribution | cost | labour | payout
    kind: String,
    /// The day (YYYY-MM-DD; default today).
    #[arg(long)]
    date: Option<String>,
    /// The amount (12.50), in --currency. Not for labour (the rule values hours).
    #[arg(long, allow_hyphen_values = true)]
    amount: Option<String>,
    /// The amount's ISO currency code (EUR, GBP, …).
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// Who: community:NAME, person:EMAIL, coop:NAME, external:NAME.
    #[arg(long)]
    party: String,
    /// What it is for: server:NAME, instance:DOMAIN, community:NAME, recipe:NAME, federation,
    /// shared (default).
    #[arg(long, default_value = "shared")]
    target: String,
    /// cost: server, domain, storage, fees, other.
    #[arg(long)]
    category: Option<String>,
    /// Labour: hours (1.5 or 1:30).
    #[arg(long, allow_hyphen_values = true)]
    hours: Option<String>,
    /// Contributions: pledged (promised) rather than received.
    #[arg(long)]
    pledged: bool,
    /// A pledge's recurrence: once, monthly, yearly.
    #[arg(long, default_value = "once")]
    recurs: String,
    /// A recurring pledge's last day.
    #[arg(long)]
    until: Option<String>,
    /// What it was (an invoice number, the work done).
    #[arg(long, default_value = "")]
    note: String,
    /// The id (or import key) of the entry this corrects; then the amount may be negative.
    #[arg(long)]
    corrects: Option<String>,
    /// Who adds it (recorded with the entry; default: $USER).
    #[arg(long, env = "COOPER_PERSON")]
    by: Option<String>,
    /// Print JSON instead of words and tables.
    #[arg(short = 'm', long)]
    machine: bool,
}

#[derive(Debug, Args)]
struct Import {
    /// The CSV file to read.
    file: PathBuf,
    /// opencollective | cooper (default: from the header).
    #[arg(long)]
    format: Option<String>,
    /// Map an Open Collective account to a party: SLUG=community:NAME (repeatable). Accounts
    /// whose slug or name is a community's name are mapped to it without this.
    #[arg(long = "map", value_name = "SLUG=PARTY")]
    maps: Vec<String>,
    /// Read and check the file, print what would be added, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Who does it (recorded with the entries; default: $USER).
    #[arg(long, env = "COOPER_PERSON")]
    by: Option<String>,
    /// Print JSON instead of words and tables.
    #[arg(short = 'm', long)]
    machine: bool,
}

#[derive(Debug, Args)]
struct Settle {
    /// The month (YYYY-MM; default: last month).
    #[arg(long)]
    period: Option<String>,
    /// A rate into the rule's currency for entries in another: GBP=1.1650 (repeatable).
    #[arg(long = "rate", value_name = "CUR=RATE")]
    rates: Vec<String>,
    /// Propose the month for closing (first person) or close it (second person).
    #[arg(long, requires_all = ["by", "role"])]
    close: bool,
    /// Who closes: a person of the store (email).
    #[arg(long, env = "COOPER_PERSON")]
    by: Option<String>,
    /// The role they act in: treasurer or operator.
    #[arg(long = "as", value_name = "ROLE")]
    role: Option<String>,
    /// Print JSON instead of words and tables.
    #[arg(short = 'm', long)]
    machine: bool,
}

#[derive(Debug, Args)]
struct Report {
    /// The month (default: last month).
    #[arg(long)]
    period: Option<String>,
    /// One community's part of it.
    #[arg(long)]
    community: Option<String>,
    /// The month's entries instead (as cooper's CSV with --csv).
    #[arg(long)]
    entries: bool,
    /// With --entries: print them as cooper's CSV (what `import` reads).
    #[arg(long, requires = "entries")]
    csv: bool,
    /// Print JSON instead of words and tables.
    #[arg(short = 'm', long)]
    machine: bool,
}

#[derive(Debug, Args)]
struct RuleArgs {
    /// A TOML file with the new rule (see `docs/ledger.md`).
    #[arg(long, value_name = "FILE")]
    set: Option<PathBuf>,
    /// Who sets it (recorded with the version; default: $USER).
    #[arg(long, env = "COOPER_PERSON")]
    by: Option<String>,
}

fn whoami(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|| "cli".into())
}

fn period_or_last(p: Option<&str>) -> anyhow::Result<Period> {
    Ok(match p {
        Some(p) => p.parse()?,
        None => Period::of(time::OffsetDateTime::now_utc().date()).previous(),
    })
}

impl Ledger {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<u8> {
        ctx.block_on(self.run_async(ctx))
    }

    async fn run_async(self, ctx: &Ctx) -> anyhow::Result<u8> {
        if let LedgerCommand::Template = self.command {
            print!("{}", import::template_example());
            return Ok(0);
        }
        let store = super::serve::open_store(self.database.as_deref(), ctx).await?;
        let Some(coop_name) = self.coop.as_deref() else {
            bail!("which co-op's books? give --coop NAME (or set COOPER_COOP)");
        };
        let coop = store.coop_named(coop_name).await?;
        match self.command {
            LedgerCommand::Template => unreachable!("handled above"),
            LedgerCommand::Add(a) => add(&store, &coop.id, *a).await,
            LedgerCommand::Import(i) => import_file(&store, &coop.id, i).await,
            LedgerCommand::Settle(s) => settle_month(ctx, &store, &coop.id, s).await,
            LedgerCommand::Report(r) => report(ctx, &store, &coop.id, r).await,
            LedgerCommand::Rule(r) => rule(&store, &coop.id, r).await,
        }
    }
}

async fn add(store: &Store, coop: &str, a: Add) -> anyhow::Result<u8> {
    let today = date_text(time::OffsetDateTime::now_utc().date());
    let fields: HashMap<&str, String> = [
        ("kind", a.kind.clone()),
        ("date", a.date.clone().unwrap_or(today)),
        ("amount", a.amount.clone().unwrap_or_default()),
        ("currency", a.currency.clone()),
        ("party", a.party.clone()),
        ("target", a.target.clone()),
        ("category", a.category.clone().unwrap_or_default()),
        (
            "status",
            if a.pledged {
                "pledged".into()
            } else {
                "received".into()
            },
        ),
        ("recurs", a.recurs.clone()),
        ("until", a.until.clone().unwrap_or_default()),
        ("hours", a.hours.clone().unwrap_or_default()),
        ("note", a.note.clone()),
        ("corrects", a.corrects.clone().unwrap_or_default()),
    ]
    .into_iter()
    .collect();
    let entry = import::template_entry(&|k| fields.get(k).cloned().unwrap_or_default())?;
    let id = store.add_entry(coop, &entry, &whoami(a.by)).await?;
    if a.machine {
        output::json(&serde_json::json!({ "id": id, "entry": entry }))?;
    } else {
        println!(
            "added {} {} ({} on {}, {} → {}): {id}",
            entry.kind.as_str(),
            entry.amount_text(),
            entry.category,
            date_text(entry.date),
            entry.party,
            entry.target
        );
    }
    Ok(0)
}

async fn import_file(store: &Store, coop: &str, i: Import) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(&i.file)
        .with_context(|| format!("reading {}", i.file.display()))?;
    let origin = i.file.display().to_string();
    let file =
        cooper_ops::books::read_import(store, coop, &text, i.format.as_deref(), &i.maps, &origin)
            .await?;
    for n in &file.notices {
        eprintln!("note: {origin}: {n}");
    }
    if i.dry_run {
        if i.machine {
            output::json(&file)?;
        } else {
            println!(
                "{origin}: {} entries read ({}); nothing changed (--dry-run)",
                file.entries.len(),
                file.format
            );
        }
        return Ok(0);
    }
    let outcome =
        cooper_ops::books::import_file(store, coop, &file, &origin, &whoami(i.by)).await?;
    if i.machine {
        output::json(
            &serde_json::json!({ "format": file.format, "added": outcome.added, "already": outcome.already, "notices": file.notices }),
        )?;
    } else {
        println!(
            "{origin} ({}): {} added, {} already in the books",
            file.format, outcome.added, outcome.already
        );
    }
    Ok(0)
}

async fn settle_month(ctx: &Ctx, store: &Store, coop: &str, s: Settle) -> anyhow::Result<u8> {
    let period = period_or_last(s.period.as_deref())?;
    let (rule, _) = cooper_ops::books::rule_in_force(store, coop).await?;
    let rates = cooper_ops::books::parse_rates(&s.rates, rule.currency)?;
    if s.close {
        let by = s.by.clone().expect("clap requires --by");
        let role = s.role.clone().expect("clap requires --as");
        let person = store
            .person_by_email(&by)
            .await?
            .with_context(|| format!("--by {by}: no such person in the store"))?;
        // Only the two roles close, each in their own: being a federation admin is not one.
        let acts = store
            .memberships(&person.id)
            .await?
            .iter()
            .any(|m| m.kind == "coop" && m.target_id == coop && m.role == role);
        if !acts {
            let article = if role == "operator" { "an" } else { "a" };
            bail!("{by} is not {article} {role} of this co-op: closing is done by a treasurer and an operator of it");
        }
        let (closing, p) =
            cooper_ops::books::close(&ctx.abra, store, coop, period, &rates, &person.email, &role)
                .await?;
        print_settlement(ctx, &p.settlement, &p.notes, s.machine)?;
        if !s.machine {
            match closing {
                Closing::Proposed => println!(
                    "{period} proposed by {} as {role}; {} closes it with the same command",
                    person.email,
                    if role == "treasurer" {
                        "an operator"
                    } else {
                        "a treasurer"
                    }
                ),
                Closing::Closed => println!("{period} closed: its entries do not change any more"),
            }
        }
        return Ok(0);
    }
    let p = cooper_ops::books::preview(&ctx.abra, store, coop, period, &rates).await?;
    print_settlement(ctx, &p.settlement, &p.notes, s.machine)?;
    if !s.machine {
        let state = store.settlement(coop, period).await?;
        println!(
            "{}",
            match state {
                Some(r) if r.state == "closed" =>
                    format!("{period} is closed (the figures above are its record)"),
                Some(r) => format!(
                    "{period} is proposed by {} as {}: waiting for the second person",
                    r.proposed_by, r.proposed_as
                ),
                None => format!(
                    "a preview: nothing is recorded until two people close {period} (--close)"
                ),
            }
        );
    }
    Ok(0)
}

fn money(s: &Settlement, minor: i64) -> String {
    format_amount(minor, s.currency)
}

fn print_settlement(
    ctx: &Ctx,
    s: &Settlement,
    notes: &[String],
    machine: bool,
) -> anyhow::Result<()> {
    if machine {
        return output::json(s);
    }
    for n in notes {
        println!("note: {n}");
    }
    println!(
        "{} in {}: carried in {}, received {}{}, funds {}; claimed {}, paid {}, carried over {}{}",
        s.period,
        s.currency,
        money(s, s.carry_in),
        money(s, s.received),
        if s.recovered != 0 {
            format!(", recovered {}", money(s, s.recovered))
        } else {
            String::new()
        },
        money(s, s.funds),
        money(s, s.claimed),
        money(s, s.paid),
        money(s, s.carry_out),
        if s.short { " — funds fell short" } else { "" }
    );
    let rows: Vec<Vec<String>> = s
        .shares
        .iter()
        .map(|x| {
            vec![
                x.line.clone(),
                x.recipient.to_string(),
                if x.minutes != 0 {
                    hours_text(x.minutes)
                } else {
                    String::new()
                },
                money(s, x.claim),
                money(s, x.paid),
                x.entries.len().to_string(),
                x.basis.clone(),
            ]
        })
        .collect();
    output::table(
        ctx.tty,
        &["LINE", "TO", "HOURS", "CLAIM", "PAID", "ENTRIES", "HOW"],
        &rows,
    );
    Ok(())
}

async fn report(ctx: &Ctx, store: &Store, coop: &str, r: Report) -> anyhow::Result<u8> {
    let period = period_or_last(r.period.as_deref())?;
    if r.entries {
        let entries = store.entries(coop, Some(period)).await?;
        if r.csv {
            print!("{}", import::write_csv(&entries));
        } else if r.machine {
            output::json(
                &entries
                    .iter()
                    .map(|(k, e)| serde_json::json!({"key": k, "entry": e}))
                    .collect::<Vec<_>>(),
            )?;
        } else {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|(_, e)| {
                    vec![
                        date_text(e.date),
                        e.kind.as_str().into(),
                        e.amount_text(),
                        e.party.to_string(),
                        e.target.to_string(),
                        e.note.clone(),
                        e.id.clone(),
                    ]
                })
                .collect();
            output::table(
                ctx.tty,
                &["DATE", "KIND", "AMOUNT", "PARTY", "FOR", "NOTE", "ID"],
                &rows,
            );
        }
        return Ok(0);
    }
    let s = match store.settlement(coop, period).await? {
        Some(row) if row.state == "closed" => row.settlement,
        _ => {
            cooper_ops::books::preview(&ctx.abra, store, coop, period, &[])
                .await?
                .settlement
        }
    };
    match &r.community {
        Some(name) => {
            let c = s
                .communities
                .iter()
                .find(|c| &c.community == name)
                .with_context(|| format!("{name} has no contributions or instances in {period}"))?;
            if r.machine {
                output::json(c)?;
            } else {
                println!(
                    "{name}, {period}: contributed {} {} (pledged {}); its instances cost {}",
                    money(&s, c.contributed),
                    s.currency,
                    money(&s, c.pledged),
                    money(&s, c.instance_cost)
                );
                let mut rows: Vec<Vec<String>> = c
                    .paid_for
                    .iter()
                    .map(|(l, a)| vec![l.clone(), money(&s, *a)])
                    .collect();
                rows.push(vec!["carried over".into(), money(&s, c.carried)]);
                output::table(ctx.tty, &["PAID FOR", "AMOUNT"], &rows);
            }
        }
        None => print_settlement(ctx, &s, &[], r.machine)?,
    }
    Ok(0)
}

async fn rule(store: &Store, coop: &str, r: RuleArgs) -> anyhow::Result<u8> {
    match r.set {
        Some(file) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let v = store
                .set_rule(coop, &text, &file.display().to_string(), &whoami(r.by))
                .await?;
            println!("rule version {v} is in force from the next settlement");
        }
        None => {
            let (rule, default) = cooper_ops::books::rule_in_force(store, coop).await?;
            if default {
                println!(
                    "# the default rule (the co-op has not set its own; set it with --set FILE)"
                );
            } else {
                println!("# version {}", rule.version);
            }
            print!("{}", rule.to_toml());
        }
    }
    Ok(0)
}
