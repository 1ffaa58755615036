//! Go's `time.Duration` text form, which compose files use (`10s`, `1m30s`, `1.5h`) and
//! Docker prints back normalised (`90s` becomes `1m30s`).

use std::fmt;

use serde::{Serialize, Serializer};

/// A duration in nanoseconds that prints the way Go prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Duration(pub i64);

impl Duration {
    /// Parses Go duration syntax: a sequence of decimal numbers with units
    /// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, optionally signed; `0` alone is allowed.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let bad = || format!("{text:?} is not a duration (write it like 30s, 1m30s or 2h)");
        let (neg, mut s) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if s == "0" {
            return Ok(Duration(0));
        }
        if s.is_empty() {
            return Err(bad());
        }
        let mut total: f64 = 0.0;
        while !s.is_empty() {
            let num_len = s
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            if num_len == 0 {
                return Err(bad());
            }
            let number: f64 = s[..num_len].parse().map_err(|_| bad())?;
            s = &s[num_len..];
            let unit_len = s
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(s.len());
            let scale: f64 = match &s[..unit_len] {
                "ns" => 1.0,
                "us" | "µs" | "μs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return Err(bad()),
            };
            s = &s[unit_len..];
            total += number * scale;
        }
        if total > i64::MAX as f64 {
            return Err(format!("{text:?} is too long a duration"));
        }
        let nanos = total.round() as i64;
        Ok(Duration(if neg { -nanos } else { nanos }))
    }

    pub fn as_std(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.max(0) as u64)
    }

    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

fn trim_fraction(whole: u64, frac: u64, digits: usize) -> String {
    if frac == 0 {
        return whole.to_string();
    }
    let mut f = format!("{frac:0digits$}");
    while f.ends_with('0') {
        f.pop();
    }
    format!("{whole}.{f}")
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let n = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if n == 0 {
            return f.write_str("0s");
        }
        if n < 1_000 {
            return write!(f, "{sign}{n}ns");
        }
        if n < 1_000_000 {
            return write!(f, "{sign}{}µs", trim_fraction(n / 1_000, n % 1_000, 3));
        }
        if n < 1_000_000_000 {
            return write!(
                f,
                "{sign}{}ms",
                trim_fraction(n / 1_000_000, n % 1_000_000, 6)
            );
        }
        let secs = n / 1_000_000_000;
        let frac = n % 1_000_000_000;
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        let s_text = trim_fraction(s, frac, 9);
        if h > 0 {
            write!(f, "{sign}{h}h{m}m{s_text}s")
        } else if m > 0 {
            write!(f, "{sign}{m}m{s_text}s")
        } else {
            write!(f, "{sign}{s_text}s")
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_like_go() {
        for (input, printed) in [
            ("10s", "10s"),
            ("90s", "1m30s"),
            ("2m", "2m0s"),
            ("1m30s", "1m30s"),
            ("1h", "1h0m0s"),
            ("1.5s", "1.5s"),
            ("500ms", "500ms"),
            ("1.5ms", "1.5ms"),
            ("0", "0s"),
            ("0s", "0s"),
            ("100us", "100µs"),
            ("25h1s", "25h0m1s"),
            ("-5s", "-5s"),
        ] {
            assert_eq!(
                Duration::parse(input).unwrap().to_string(),
                printed,
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in ["", "10", "s", "10x", "1m-2s", "abc"] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }
}
