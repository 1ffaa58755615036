//! Sizes and the co-op's published rates: what an instance of a given size needs from a server
//! and the monthly contribution suggested for it. Read from `$ABRA_DIR/cooper/rates.toml`:
//!
//! ```toml
//! currency = "EUR"
//! base = 5          # each instance, a month (backups, care)
//! per_cpu = 12      # a month, per CPU
//! per_gib_memory = 4
//! per_gib_disk = 0.2
//!
//! [[size]]          # optional: the sizes offered (default: small, medium, large)
//! name = "small"
//! people = "up to 50 people"
//! cpus = 0.5
//! memory_gib = 1
//! disk_gib = 10
//! ```
//!
//! Without the file the sizes and their needs are still shown, but no money figure: a
//! suggestion is only made from rates a co-op published. Sums are in cents, so they add up.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A size a community can choose.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Size {
    pub name: String,
    /// For people: "up to 50 people".
    pub people: String,
    pub cpus: f64,
    pub memory_gib: f64,
    pub disk_gib: f64,
}

/// Prices, per month.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Prices {
    pub currency: String,
    #[serde(default)]
    pub base: f64,
    #[serde(default)]
    pub per_cpu: f64,
    #[serde(default)]
    pub per_gib_memory: f64,
    #[serde(default)]
    pub per_gib_disk: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    currency: String,
    #[serde(default)]
    base: f64,
    #[serde(default)]
    per_cpu: f64,
    #[serde(default)]
    per_gib_memory: f64,
    #[serde(default)]
    per_gib_disk: f64,
    #[serde(default)]
    size: Vec<Size>,
}

/// The sizes on offer and, when published, the prices.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    pub sizes: Vec<Size>,
    pub prices: Option<Prices>,
}

/// What a size comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// "0.5 CPU, 1 GiB memory, 10 GiB disk".
    pub needs: String,
    /// "EUR 13.00 a month", when rates are published.
    pub contribution: Option<String>,
    pub cents: Option<i64>,
}

pub fn path(abra_root: &Path) -> PathBuf {
    abra_root.join("cooper").join("rates.toml")
}

fn default_sizes() -> Vec<Size> {
    let s = |name: &str, people: &str, cpus, memory_gib, disk_gib| Size {
        name: name.into(),
        people: people.into(),
        cpus,
        memory_gib,
        disk_gib,
    };
    vec![
        s("small", "up to 50 people", 0.5, 1.0, 10.0),
        s("medium", "up to 500 people", 1.0, 2.0, 50.0),
        s("large", "more than 500 people", 2.0, 4.0, 200.0),
    ]
}

fn number(n: f64) -> String {
    let t = format!("{n:.2}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Rates {
    /// Reads the rates file; no file: the default sizes, no prices. A file that does not
    /// parse is an error naming the file, the line and the fix.
    pub fn load(abra_root: &Path) -> Result<Rates, String> {
        let p = path(abra_root);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Rates {
                    sizes: default_sizes(),
                    prices: None,
                })
            }
            Err(e) => return Err(format!("{}: {e}", p.display())),
        };
        Rates::parse(&text).map_err(|e| format!("{}: {e}", p.display()))
    }

    pub fn parse(text: &str) -> Result<Rates, String> {
        let f: File = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            format!(
                "{}{} (see the example in the README's Dashboard section)",
                line.map(|l| format!("line {l}: ")).unwrap_or_default(),
                e.message()
            )
        })?;
        for (what, v) in [
            ("base", f.base),
            ("per_cpu", f.per_cpu),
            ("per_gib_memory", f.per_gib_memory),
            ("per_gib_disk", f.per_gib_disk),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{what} = {v}: a price is a number of 0 or more"));
            }
        }
        for s in &f.size {
            if s.name.trim().is_empty()
                || [s.cpus, s.memory_gib, s.disk_gib]
                    .iter()
                    .any(|v| !(v.is_finite() && *v >= 0.0))
            {
                return Err(format!(
                    "size {:?}: give it a name and cpus, memory_gib, disk_gib of 0 or more",
                    s.name
                ));
            }
        }
        Ok(Rates {
            sizes: if f.size.is_empty() {
                default_sizes()
            } else {
                f.size
            },
            prices: Some(Prices {
                currency: f.currency,
                base: f.base,
                per_cpu: f.per_cpu,
                per_gib_memory: f.per_gib_memory,
                per_gib_disk: f.per_gib_disk,
            }),
        })
    }

    pub fn size(&self, name: &str) -> Option<&Size> {
        self.sizes.iter().find(|s| s.name == name)
    }

    /// What a size needs and the monthly contribution suggested for it.
    pub fn suggest(&self, s: &Size) -> Suggestion {
        let needs = format!(
            "{} CPU, {} GiB memory, {} GiB disk",
            number(s.cpus),
            number(s.memory_gib),
            number(s.disk_gib)
        );
        let cents = self.prices.as_ref().map(|p| {
            let c = |x: f64| (x * 100.0).round() as i64;
            c(p.base)
                + (s.cpus * c(p.per_cpu) as f64).round() as i64
                + (s.memory_gib * c(p.per_gib_memory) as f64).round() as i64
                + (s.disk_gib * c(p.per_gib_disk) as f64).round() as i64
        });
        Suggestion {
            needs,
            contribution: self
                .prices
                .as_ref()
                .zip(cents)
                .map(|(p, c)| format!("{} {}.{:02} a month", p.currency, c / 100, c % 100)),
            cents,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contribution_is_summed_in_cents_from_published_rates() {
        let r = Rates::parse(
            "currency = \"EUR\"\nbase = 5\nper_cpu = 12\nper_gib_memory = 4\nper_gib_disk = 0.2\n",
        )
        .unwrap();
        let small = r.size("small").unwrap().clone();
        let s = r.suggest(&small);
        // 5 + 0.5 × 12 + 1 × 4 + 10 × 0.2 = 17
        assert_eq!(s.cents, Some(1700));
        assert_eq!(s.contribution.as_deref(), Some("EUR 17.00 a month"));
        assert_eq!(s.needs, "0.5 CPU, 1 GiB memory, 10 GiB disk");
    }

    #[test]
    fn no_rates_no_money_figure() {
        let dir = tempfile::tempdir().unwrap();
        let r = Rates::load(dir.path()).unwrap();
        assert!(r.prices.is_none());
        let s = r.suggest(&r.sizes[1]);
        assert_eq!(s.contribution, None);
        assert_eq!(s.needs, "1 CPU, 2 GiB memory, 50 GiB disk");
    }

    #[test]
    fn a_bad_file_names_the_line_and_the_field() {
        let e = Rates::parse("currency = \"EUR\"\nper_cpu = \"twelve\"\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = Rates::parse("currency = \"EUR\"\nper_cpu = -1\n").unwrap_err();
        assert!(e.contains("per_cpu = -1"), "{e}");
        let e = Rates::parse("currency = \"EUR\"\nper_cpus = 3\n").unwrap_err();
        assert!(e.contains("per_cpus"), "{e}");
    }

    #[test]
    fn sizes_come_from_the_file_when_given() {
        let r = Rates::parse(
            "currency = \"CHF\"\nper_cpu = 10\n[[size]]\nname = \"tiny\"\npeople = \"a choir\"\ncpus = 0.25\nmemory_gib = 0.5\ndisk_gib = 2\n",
        )
        .unwrap();
        assert_eq!(r.sizes.len(), 1);
        let s = r.suggest(&r.sizes[0]);
        assert_eq!(s.contribution.as_deref(), Some("CHF 2.50 a month"));
    }
}
