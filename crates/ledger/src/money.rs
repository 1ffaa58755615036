//! Money as integer minor units of an ISO 4217 currency: parsing and printing decimal amounts
//! exactly, conversion at a recorded rate, and apportioning by largest remainder. No floating
//! point anywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::LedgerError;

/// An ISO 4217 currency code (three capital letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const EUR: Currency = Currency(*b"EUR");
    pub const GBP: Currency = Currency(*b"GBP");
    pub const USD: Currency = Currency(*b"USD");

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII letters")
    }

    /// Digits after the decimal point (ISO 4217's minor unit): 0 for JPY, KRW and a few
    /// others, 3 for the dinars, 2 for the rest.
    pub fn exponent(&self) -> u32 {
        match self.code() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl FromStr for Currency {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Self, LedgerError> {
        let t = s.trim();
        let b = t.as_bytes();
        if b.len() == 3 && b.iter().all(|c| c.is_ascii_alphabetic()) {
            Ok(Currency([
                b[0].to_ascii_uppercase(),
                b[1].to_ascii_uppercase(),
                b[2].to_ascii_uppercase(),
            ]))
        } else {
            Err(LedgerError::Invalid(format!(
                "{s:?} is not a currency: give its three-letter ISO code (EUR, GBP, …)"
            )))
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a decimal amount (`12`, `12.5`, `-2.50`, `+3`) into minor units of `currency`,
/// exactly. More decimals than the currency has are refused, not rounded.
pub fn parse_amount(text: &str, currency: Currency) -> Result<i64, LedgerError> {
    let t = text.trim();
    let bad = |why: &str| {
        LedgerError::Invalid(format!(
            "{text:?} is not an amount of {currency}: {why} (write it like 12.50)"
        ))
    };
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return Err(bad("no digits"));
    }
    if !whole.bytes().all(|c| c.is_ascii_digit()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad("only digits, one '.' and a sign"));
    }
    let exp = currency.exponent() as usize;
    let frac = frac.trim_end_matches('0');
    if frac.len() > exp {
        return Err(bad(&format!(
            "{currency} has {exp} decimal place{}",
            if exp == 1 { "" } else { "s" }
        )));
    }
    let mut minor: i64 = 0;
    for c in whole.bytes().chain(frac.bytes()) {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add((c - b'0') as i64))
            .ok_or_else(|| bad("too large"))?;
    }
    for _ in frac.len()..exp {
        minor = minor.checked_mul(10).ok_or_else(|| bad("too large"))?;
    }
    Ok(if negative { -minor } else { minor })
}

/// Prints minor units as a decimal amount (`1234` EUR → `12.34`).
pub fn format_amount(minor: i64, currency: Currency) -> String {
    let exp = currency.exponent();
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exp == 0 {
        return format!("{sign}{abs}");
    }
    let unit = 10u64.pow(exp);
    format!(
        "{sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = exp as usize
    )
}

/// An amount with its currency, for records and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            format_amount(self.minor, self.currency),
            self.currency
        )
    }
}

/// An exchange rate as an exact decimal: one unit of `from` is `rate` units of `to`.
/// Kept as the text it was given in (`1.1650`), so a settlement shows the very rate it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub from: Currency,
    pub to: Currency,
    pub rate: String,
}

impl Rate {
    pub fn new(from: Currency, to: Currency, rate: &str) -> Result<Rate, LedgerError> {
        let r = Rate {
            from,
            to,
            rate: rate.trim().to_string(),
        };
        let (n, _) = r.ratio()?;
        if n <= 0 {
            return Err(LedgerError::Invalid(format!(
                "the rate {from}→{to} must be above zero (given {rate:?})"
            )));
        }
        Ok(r)
    }

    /// The rate as numerator / denominator.
    fn ratio(&self) -> Result<(i128, i128), LedgerError> {
        let bad = || {
            LedgerError::Invalid(format!(
                "rate {}→{} {:?}: write it as a decimal number, like 1.1650",
                self.from, self.to, self.rate
            ))
        };
        let (w, f) = self.rate.split_once('.').unwrap_or((&self.rate, ""));
        if w.is_empty() && f.is_empty()
            || !w.bytes().all(|c| c.is_ascii_digit())
            || !f.bytes().all(|c| c.is_ascii_digit())
            || w.len() + f.len() > 18
        {
            return Err(bad());
        }
        let n: i128 = format!("{w}{f}").parse().map_err(|_| bad())?;
        Ok((n, 10i128.pow(f.len() as u32)))
    }

    /// Converts minor units of `from` into minor units of `to`, rounded half away from zero.
    pub fn convert(&self, minor: i64) -> Result<i64, LedgerError> {
        let (n, d) = self.ratio()?;
        let num = minor as i128 * n * 10i128.pow(self.to.exponent());
        let den = d * 10i128.pow(self.from.exponent());
        let q = div_round(num, den);
        i64::try_from(q).map_err(|_| LedgerError::Invalid("converted amount too large".into()))
    }
}

/// `num / den` rounded half away from zero (`den` > 0).
pub fn div_round(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    let q = num / den;
    let r = num % den;
    if 2 * r.abs() >= den {
        q + num.signum()
    } else {
        q
    }
}

/// Splits `total` (≥ 0) among `weights` (each ≥ 0) in proportion, in whole minor units, by
/// largest remainder (Hamilton): every part is the floor of its exact quota, and the units
/// left go one each to the largest remainders (ties to the earlier weight). The parts always
/// add up to `total`. With all weights zero, the split is equal.
pub fn apportion(total: i64, weights: &[i64]) -> Vec<i64> {
    assert!(total >= 0, "apportion a non-negative total");
    if weights.is_empty() {
        return Vec::new();
    }
    let all_zero = weights.iter().all(|w| *w <= 0);
    let w: Vec<i128> = weights
        .iter()
        .map(|x| if all_zero { 1 } else { (*x).max(0) as i128 })
        .collect();
    let sum: i128 = w.iter().sum();
    let mut parts: Vec<i64> = Vec::with_capacity(w.len());
    let mut rems: Vec<(i128, usize)> = Vec::with_capacity(w.len());
    for (i, wi) in w.iter().enumerate() {
        let exact = total as i128 * wi;
        parts.push((exact / sum) as i64);
        rems.push((exact % sum, i));
    }
    let given: i64 = parts.iter().sum();
    let mut left = total - given;
    // Largest remainder first; equal remainders in the order given.
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rems {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly() {
        let eur = Currency::EUR;
        assert_eq!(parse_amount("12.34", eur).unwrap(), 1234);
        assert_eq!(parse_amount("-2.5", eur).unwrap(), -250);
        assert_eq!(parse_amount("50", eur).unwrap(), 5000);
        assert_eq!(parse_amount(".5", eur).unwrap(), 50);
        assert_eq!(parse_amount("3059.140", eur).unwrap(), 305914);
        let e = parse_amount("1.005", eur).unwrap_err().to_string();
        assert!(e.contains("2 decimal places"), "{e}");
        assert!(parse_amount("1,00", eur).is_err());
        assert!(parse_amount("", eur).is_err());
        assert!(parse_amount("99999999999999999999", eur).is_err());
        let jpy: Currency = "jpy".parse().unwrap();
        assert_eq!(parse_amount("1200", jpy).unwrap(), 1200);
        assert!(parse_amount("1.5", jpy).is_err());
        assert_eq!(format_amount(-5, eur), "-0.05");
        assert_eq!(format_amount(123456, eur), "1234.56");
        assert_eq!(format_amount(7, jpy), "7");
        assert!("EU".parse::<Currency>().is_err());
    }

    #[test]
    fn conversion_rounds_half_away_from_zero() {
        let r = Rate::new(Currency::GBP, Currency::EUR, "1.1650").unwrap();
        assert_eq!(r.convert(1000).unwrap(), 1165);
        assert_eq!(r.convert(1).unwrap(), 1); // 1.165 → 1
        assert_eq!(r.convert(3).unwrap(), 3); // 3.495 → 3
        assert_eq!(r.convert(-3).unwrap(), -3);
        let r = Rate::new(Currency::EUR, "JPY".parse().unwrap(), "160.5").unwrap();
        assert_eq!(r.convert(100).unwrap(), 161); // 1 EUR = 160.5 JPY → 161 (half up)
        assert!(Rate::new(Currency::EUR, Currency::GBP, "0").is_err());
        assert!(Rate::new(Currency::EUR, Currency::GBP, "1,2").is_err());
    }

    #[test]
    fn largest_remainder_adds_up() {
        assert_eq!(apportion(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(apportion(10, &[0, 0]), vec![5, 5]);
        assert_eq!(apportion(7, &[2, 0, 5]), vec![2, 0, 5]);
        assert_eq!(apportion(0, &[3, 4]), vec![0, 0]);
        assert_eq!(apportion(5, &[]), Vec::<i64>::new());
    }
}
