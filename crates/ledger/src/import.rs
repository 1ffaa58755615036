//! Imports: Open Collective's transactions CSV export, and cooper's own CSV template (which is
//! also what the books download as). Every line becomes an entry with a key of its source
//! (`oc:<id>`, or the template's `key`, or a hash of the line), so importing the same file
//! twice adds nothing. A file is read whole first: any bad line, unknown kind or missing
//! column is reported — every one of them, with its line number — and nothing is imported.

use std::collections::HashMap;

use serde::Serialize;
use sha2::Digest;

use crate::entry::{date_text, parse_date, parse_hours, Entry, Kind, Recurs, Ref, Status};
use crate::money::{format_amount, parse_amount, Currency};
use crate::LedgerError;

/// An entry read from a file, before the store gives it an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// The line of the file it came from (1 = the header).
    pub line: usize,
    /// Its key in the source (what makes a second import add nothing).
    pub key: String,
    pub entry: Entry,
}

/// What reading a file found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportFile {
    pub format: String,
    pub entries: Vec<Imported>,
    /// Things worth saying that do not stop the import (columns ignored, lines skipped).
    pub notices: Vec<String>,
}

/// A file that cannot be imported: every problem, by line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{origin}: nothing was imported; {} problem{}:\n{}", problems.len(), if problems.len() == 1 { "" } else { "s" }, problems.join("\n"))]
pub struct ImportError {
    pub origin: String,
    pub problems: Vec<String>,
}

/// Which format a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenCollective,
    Cooper,
}

/// Open Collective's export columns (its documented field list); anything else is reported.
const OC_FIELDS: &[&str] = &[
    "accountingCategoryCode",
    "accountingCategoryName",
    "date",
    "datetime",
    "effectiveDate",
    "id",
    "legacyId",
    "shortId",
    "shortGroup",
    "group",
    "description",
    "type",
    "kind",
    "isRefund",
    "isRefunded",
    "refundId",
    "shortRefundId",
    "refundKind",
    "refundLegacyId",
    "displayAmount",
    "amount",
    "paymentProcessorFee",
    "platformFee",
    "hostFee",
    "netAmount",
    "balance",
    "currency",
    "accountSlug",
    "accountName",
    "accountType",
    "accountEmail",
    "oppositeAccountSlug",
    "oppositeAccountName",
    "oppositeAccountType",
    "oppositeAccountEmail",
    "parentAccountSlug",
    "parentAccountName",
    "parentAccountType",
    "parentAccountEmail",
    "oppositeParentAccountSlug",
    "oppositeParentAccountName",
    "oppositeParentAccountType",
    "oppositeParentAccountEmail",
    "hostSlug",
    "hostName",
    "hostType",
    "orderId",
    "orderLegacyId",
    "orderFrequency",
    "orderProcessedDate",
    "orderCustomData",
    "paymentMethodService",
    "paymentMethodType",
    "expenseId",
    "expenseLegacyId",
    "expenseType",
    "expenseTags",
    "payoutMethodType",
    "merchantId",
    "orderMemo",
    "taxAmount",
    "taxType",
    "taxRate",
    "taxIdNumber",
    "debitAndCreditAmounts",
    "expenseTotalAmount",
    "expenseCurrency",
    "expenseSubmittedByHandle",
    "isReverse",
    "isReversed",
    "reverseLegacyId",
    "reverseKind",
];

/// cooper's template columns, in order.
pub const TEMPLATE_COLUMNS: &[&str] = &[
    "date", "kind", "amount", "currency", "party", "target", "category", "status", "recurs",
    "until", "hours", "note", "corrects", "key",
];

/// cooper's template: the header and an example line of each kind (what `cooper ledger
/// template` prints and the dashboard offers as a download).
pub fn template_example() -> String {
    let mut s = TEMPLATE_COLUMNS.join(",");
    s.push('\n');
    for line in [
        "2026-11-02,contribution,300.00,EUR,community:riseup,shared,,received,,,,November,,riseup-2026-11",
        "2026-06-01,contribution,300.00,EUR,community:riseup,shared,,pledged,monthly,2027-05-31,,a year's pledge,,riseup-pledge",
        "2026-11-01,cost,120.00,EUR,coop:tech,server:hetzner1,server,,,,,Hetzner invoice,,hetzner-2026-11",
        "2026-11-10,labour,,,person:ana@example.org,instance:cloud.example.org,,,,,1:30,upgrade,,",
        "2026-11-30,payout,200.00,EUR,person:ana@example.org,shared,,,,,,October hours,,",
    ] {
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// Guesses a file's format from its header.
pub fn detect(text: &str) -> Format {
    let header = text.lines().next().unwrap_or("").to_ascii_lowercase();
    if header.contains("oppositeaccount")
        || header.contains("shortid")
        || header.contains("datetime")
    {
        Format::OpenCollective
    } else {
        Format::Cooper
    }
}

/// Reads a file. `parties` maps an Open Collective account (slug, then name) to a party of
/// the ledger (e.g. a community); unmapped contributors become `external:<name>`.
pub fn read(
    text: &str,
    format: Format,
    origin: &str,
    parties: &dyn Fn(&str, &str) -> Option<Ref>,
) -> Result<ImportFile, ImportError> {
    match format {
        Format::OpenCollective => read_oc(text, origin, parties),
        Format::Cooper => read_template(text, origin),
    }
}

/// A file's header and its records, each with its line number.
type Records = (Vec<String>, Vec<(usize, csv::StringRecord)>);

fn records(text: &str, origin: &str) -> Result<Records, ImportError> {
    let fail = |p: String| ImportError {
        origin: origin.to_string(),
        problems: vec![p],
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| fail(format!("line 1: cannot read the header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for r in rdr.records() {
        match r {
            Ok(rec) => {
                let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
                if rec.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                if rec.len() != header.len() {
                    problems.push(format!(
                        "line {line}: {} fields where the header has {}",
                        rec.len(),
                        header.len()
                    ));
                    continue;
                }
                rows.push((line, rec));
            }
            Err(e) => problems.push(format!(
                "line {}: {e}",
                e.position().map(|p| p.line()).unwrap_or(0)
            )),
        }
    }
    if !problems.is_empty() {
        return Err(ImportError {
            origin: origin.to_string(),
            problems,
        });
    }
    Ok((header, rows))
}

fn line_key(rec: &csv::StringRecord) -> String {
    let mut h = sha2::Sha256::new();
    for f in rec.iter() {
        h.update(f.trim().as_bytes());
        h.update([0x1f]);
    }
    h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_oc(
    text: &str,
    origin: &str,
    parties: &dyn Fn(&str, &str) -> Option<Ref>,
) -> Result<ImportFile, ImportError> {
    let (header, rows) = records(text, origin)?;
    let col: HashMap<&str, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    let mut notices = Vec::new();
    for h in &header {
        if !OC_FIELDS.contains(&h.as_str()) {
            notices.push(format!(
                "column {h:?} is not one of Open Collective's export columns: ignored"
            ));
        }
    }
    let mut missing = Vec::new();
    for need in ["kind", "type", "amount", "currency"] {
        if !col.contains_key(need) {
            missing.push(need);
        }
    }
    if !col.contains_key("datetime") && !col.contains_key("date") {
        missing.push("datetime");
    }
    if !missing.is_empty() {
        return Err(ImportError {
            origin: origin.to_string(),
            problems: vec![format!(
                "line 1: the header lacks {}: export the transactions with those fields",
                missing.join(", ")
            )],
        });
    }
    let get = |rec: &csv::StringRecord, name: &str| -> String {
        col.get(name)
            .and_then(|&i| rec.get(i))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (line, rec) in &rows {
        let line = *line;
        let at = |m: String| format!("line {line}: {m}");
        let kind = get(rec, "kind").to_ascii_uppercase();
        let typ = get(rec, "type").to_ascii_uppercase();
        let date_s = match get(rec, "datetime") {
            s if s.is_empty() => get(rec, "date"),
            s => s,
        };
        let date = match parse_date(&date_s) {
            Ok(d) => d,
            Err(e) => {
                problems.push(at(format!("datetime: {e}")));
                continue;
            }
        };
        let currency: Currency = match get(rec, "currency").parse() {
            Ok(c) => c,
            Err(e) => {
                problems.push(at(format!("currency: {e}")));
                continue;
            }
        };
        let money = |field: &str| -> Result<i64, String> {
            let v = get(rec, field);
            if v.is_empty() {
                return Ok(0);
            }
            parse_amount(&v, currency).map_err(|e| format!("{field}: {e}"))
        };
        let amount = match money("amount") {
            Ok(a) => a,
            Err(e) => {
                problems.push(at(e));
                continue;
            }
        };
        let id = ["id", "shortId", "legacyId"]
            .iter()
            .map(|c| get(rec, c))
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| line_key(rec));
        let key = format!("oc:{id}");
        let refund = {
            let r = get(rec, "isRefund").to_ascii_lowercase();
            !r.is_empty() && r != "false" && r != "0"
        };
        let refunded_key = ["refundId", "shortRefundId", "refundLegacyId"]
            .iter()
            .map(|c| get(rec, c))
            .find(|s| !s.is_empty())
            .map(|s| format!("oc:{s}"));
        let slug = get(rec, "oppositeAccountSlug");
        let name = get(rec, "oppositeAccountName");
        let other = || -> Ref {
            parties(&slug, &name).unwrap_or_else(|| {
                Ref::External(if name.is_empty() {
                    slug.clone()
                } else {
                    name.clone()
                })
            })
        };
        let description = get(rec, "description");
        let base = |kind: Kind, amount: i64, party: Ref, category: &str| Entry {
            id: String::new(),
            kind,
            date,
            amount,
            currency,
            party,
            target: Ref::Shared,
            category: category.to_string(),
            status: Status::Received,
            recurs: Recurs::Once,
            minutes: 0,
            until: None,
            note: description.clone(),
            corrects: if refund { refunded_key.clone() } else { None },
        };
        let mut push = |key: String, e: Entry, problems: &mut Vec<String>| match e.validate() {
            Ok(()) => entries.push(Imported {
                line,
                key,
                entry: e,
            }),
            Err(err) => problems.push(format!("line {line}: {err}")),
        };
        match kind.as_str() {
            "CONTRIBUTION" | "ADDED_FUNDS" => {
                let expected = if refund { "DEBIT" } else { "CREDIT" };
                if typ != expected {
                    problems.push(at(format!(
                        "a {kind} {} is a {expected}, this line says {typ:?}",
                        if refund { "refund" } else { "" }
                    )));
                    continue;
                }
                // Credits are positive; a refund (a debit) takes the money back.
                let a = if refund { -amount.abs() } else { amount.abs() };
                push(
                    key.clone(),
                    base(Kind::Contribution, a, other(), "contribution"),
                    &mut problems,
                );
                // Fees taken from the contribution, when the export did not list them apart.
                for (field, who) in [
                    ("paymentProcessorFee", {
                        let s = get(rec, "paymentMethodService");
                        if s.is_empty() {
                            "payment processor".to_string()
                        } else {
                            s
                        }
                    }),
                    ("hostFee", {
                        let h = get(rec, "hostName");
                        if h.is_empty() {
                            "fiscal host".to_string()
                        } else {
                            h
                        }
                    }),
                    ("platformFee", "Open Collective".to_string()),
                ] {
                    match money(field) {
                        Ok(0) => {}
                        Ok(fee) => {
                            let fee = if refund { -fee.abs() } else { fee.abs() };
                            let mut e = base(Kind::Cost, fee, Ref::External(who), "fees");
                            e.note = format!(
                                "{field} of {}",
                                if description.is_empty() {
                                    key.as_str()
                                } else {
                                    description.as_str()
                                }
                            );
                            if refund {
                                e.corrects = refunded_key.as_ref().map(|k| format!("{k}:{field}"));
                            }
                            push(format!("{key}:{field}"), e, &mut problems);
                        }
                        Err(e) => problems.push(at(e)),
                    }
                }
            }
            "HOST_FEE"
            | "PAYMENT_PROCESSOR_FEE"
            | "PLATFORM_FEE"
            | "PLATFORM_TIP_DEBT"
            | "PAYMENT_PROCESSOR_COVER"
            | "TAX" => {
                // Money out of the collective is a DEBIT (a refunded fee comes back as CREDIT).
                let a = match (typ.as_str(), refund) {
                    ("DEBIT", false) => amount.abs(),
                    ("CREDIT", true) => -amount.abs(),
                    ("CREDIT", false) if kind == "PAYMENT_PROCESSOR_COVER" => -amount.abs(),
                    _ => {
                        problems.push(at(format!(
                            "a {kind} should be a DEBIT, this line says {typ:?}"
                        )));
                        continue;
                    }
                };
                let mut e = base(
                    Kind::Cost,
                    a,
                    other(),
                    if kind == "TAX" { "tax" } else { "fees" },
                );
                if a < 0 && e.corrects.is_none() {
                    e.corrects = Some(key.clone());
                }
                push(key.clone(), e, &mut problems);
            }
            "EXPENSE" => {
                let a = match (typ.as_str(), refund) {
                    ("DEBIT", false) => amount.abs(),
                    ("CREDIT", true) => -amount.abs(),
                    _ => {
                        problems.push(at(format!(
                            "an EXPENSE is a DEBIT (or a CREDIT when refunded), this line says {typ:?}"
                        )));
                        continue;
                    }
                };
                let tags: Vec<String> = get(rec, "expenseTags")
                    .split([',', ';'])
                    .map(|t| t.trim().to_ascii_lowercase())
                    .filter(|t| !t.is_empty())
                    .collect();
                let is_pay = tags.iter().any(|t| {
                    matches!(
                        t.as_str(),
                        "labour" | "labor" | "payout" | "wages" | "salary"
                    )
                });
                let mut e = if is_pay {
                    base(Kind::Payout, a, other(), "payout")
                } else {
                    let category = if tags.iter().any(|t| t.contains("domain")) {
                        "domain"
                    } else if tags
                        .iter()
                        .any(|t| t.contains("storage") || t.contains("backup"))
                    {
                        "storage"
                    } else if tags.iter().any(|t| {
                        t.contains("server")
                            || t.contains("hosting")
                            || t.contains("infrastructure")
                    }) {
                        "server"
                    } else {
                        "other"
                    };
                    base(Kind::Cost, a, other(), category)
                };
                // A tag naming a server or an instance attributes the cost to it.
                for t in &tags {
                    if t.starts_with("server:") || t.starts_with("instance:") {
                        if let Ok(r) = t.parse::<Ref>() {
                            if e.kind == Kind::Cost {
                                e.target = r;
                            }
                        }
                    }
                }
                push(key.clone(), e, &mut problems);
            }
            "" => problems.push(at("the kind is empty".into())),
            other => problems.push(at(format!(
                "kind {other:?} is not one cooper imports (CONTRIBUTION, ADDED_FUNDS, EXPENSE, \
                 HOST_FEE, PAYMENT_PROCESSOR_FEE, PLATFORM_FEE, TAX): remove the line, or add \
                 what it means by hand with `cooper ledger add`"
            ))),
        }
    }
    if !problems.is_empty() {
        return Err(ImportError {
            origin: origin.to_string(),
            problems,
        });
    }
    Ok(ImportFile {
        format: "Open Collective transactions export".into(),
        entries,
        notices,
    })
}

fn read_template(text: &str, origin: &str) -> Result<ImportFile, ImportError> {
    let (header, rows) = records(text, origin)?;
    let mut problems = Vec::new();
    for h in &header {
        if !TEMPLATE_COLUMNS.contains(&h.as_str()) {
            problems.push(format!(
                "line 1: column {h:?} is not one of the template's ({})",
                TEMPLATE_COLUMNS.join(", ")
            ));
        }
    }
    for need in ["date", "kind", "party"] {
        if !header.iter().any(|h| h == need) {
            problems.push(format!("line 1: the header lacks the column {need:?}"));
        }
    }
    if !problems.is_empty() {
        return Err(ImportError {
            origin: origin.to_string(),
            problems,
        });
    }
    let col: HashMap<&str, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    let mut entries = Vec::new();
    for (line, rec) in &rows {
        let get = |name: &str| -> String {
            col.get(name)
                .and_then(|&i| rec.get(i))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        match template_entry(&get) {
            Ok(e) => {
                let key = match get("key") {
                    k if k.is_empty() => format!("csv:{}", line_key(rec)),
                    // A key from another source (oc:…) stays that source's key.
                    k if k.contains(':') => k,
                    k => format!("csv:{k}"),
                };
                entries.push(Imported {
                    line: *line,
                    key,
                    entry: e,
                })
            }
            Err(e) => problems.push(format!("line {line}: {e}")),
        }
    }
    if !problems.is_empty() {
        return Err(ImportError {
            origin: origin.to_string(),
            problems,
        });
    }
    Ok(ImportFile {
        format: "cooper ledger CSV".into(),
        entries,
        notices: Vec::new(),
    })
}

/// An entry from named fields (the template's columns; also the forms and the CLI).
pub fn template_entry(get: &dyn Fn(&str) -> String) -> Result<Entry, LedgerError> {
    let field = |name: &str, e: LedgerError| LedgerError::Invalid(format!("{name}: {e}"));
    let kind: Kind = get("kind").parse().map_err(|e| field("kind", e))?;
    let date = parse_date(&get("date")).map_err(|e| field("date", e))?;
    let currency: Currency = match get("currency") {
        c if c.is_empty() && kind == Kind::Labour => Currency::EUR,
        c => c.parse().map_err(|e| field("currency", e))?,
    };
    let amount = match get("amount") {
        a if a.is_empty() && kind == Kind::Labour => 0,
        a => parse_amount(&a, currency).map_err(|e| field("amount", e))?,
    };
    let minutes = match get("hours") {
        h if h.is_empty() => 0,
        h => parse_hours(&h).map_err(|e| field("hours", e))?,
    };
    let party: Ref = get("party").parse().map_err(|e| field("party", e))?;
    let target: Ref = get("target").parse().map_err(|e| field("target", e))?;
    let status = match get("status").to_ascii_lowercase().as_str() {
        "" | "received" => Status::Received,
        "pledged" => Status::Pledged,
        other => {
            return Err(LedgerError::Invalid(format!(
                "status: {other:?}: use received or pledged"
            )))
        }
    };
    let recurs: Recurs = get("recurs").parse().map_err(|e| field("recurs", e))?;
    let until = match get("until") {
        u if u.is_empty() => None,
        u => Some(parse_date(&u).map_err(|e| field("until", e))?),
    };
    let corrects = Some(get("corrects")).filter(|c| !c.is_empty());
    let category = match get("category") {
        c if c.is_empty() => match kind {
            Kind::Cost => "other".to_string(),
            _ => kind.as_str().to_string(),
        },
        c => c,
    };
    let e = Entry {
        id: String::new(),
        kind,
        date,
        amount,
        currency,
        party,
        target,
        category,
        status,
        recurs,
        minutes,
        until,
        note: get("note"),
        corrects,
    };
    e.validate()?;
    Ok(e)
}

/// Entries as cooper's CSV template (the books' download; importable again).
pub fn write_csv(entries: &[(String, Entry)]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(TEMPLATE_COLUMNS).expect("write to memory");
    for (key, e) in entries {
        let hours = if e.kind == Kind::Labour {
            let m = e.minutes;
            format!(
                "{}{}:{:02}",
                if m < 0 { "-" } else { "" },
                m.abs() / 60,
                m.abs() % 60
            )
        } else {
            String::new()
        };
        w.write_record([
            date_text(e.date),
            e.kind.as_str().to_string(),
            if e.kind == Kind::Labour {
                String::new()
            } else {
                format_amount(e.amount, e.currency)
            },
            e.currency.to_string(),
            e.party.to_string(),
            e.target.to_string(),
            e.category.clone(),
            e.status.as_str().to_string(),
            e.recurs.as_str().to_string(),
            e.until.map(date_text).unwrap_or_default(),
            hours,
            e.note.clone(),
            e.corrects.clone().unwrap_or_default(),
            key.strip_prefix("csv:").unwrap_or(key).to_string(),
        ])
        .expect("write to memory");
    }
    String::from_utf8(w.into_inner().expect("flush to memory")).expect("UTF-8 in, UTF-8 out")
}
