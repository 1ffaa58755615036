//! Recipe versions: annotated git tags `<semver>+<upstream>` (e.g. `2.0.1+1.0.6-social-amd64`),
//! and the pre-2022 form `<upstream>_<n>` (e.g. `1.14.1-rootless_1`), read leniently.
//!
//! Ordering: every legacy version sorts before every semver one (legacy tags predate the
//! scheme); semver versions order by their semver part, then by upstream part; legacy ones by
//! upstream (compared as dotted numbers where possible) then revision.

use std::cmp::Ordering;
use std::fmt;

/// A parsed recipe version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeVersion {
    raw: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Semver {
        version: semver::Version,
        upstream: Option<String>,
    },
    Legacy {
        upstream: String,
        revision: u64,
    },
}

/// A tag that is not a recipe version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{tag:?} is not a recipe version (expected <semver>+<upstream>, e.g. 1.2.0+4.3.1)")]
pub struct VersionError {
    pub tag: String,
}

impl RecipeVersion {
    pub fn parse(tag: &str) -> Result<RecipeVersion, VersionError> {
        let err = || VersionError {
            tag: tag.to_string(),
        };
        let trimmed = tag.strip_prefix('v').unwrap_or(tag);
        let (semver_part, upstream) = match trimmed.split_once('+') {
            Some((s, u)) => (s, Some(u.to_string())),
            None => (trimmed, None),
        };
        if let Ok(mut version) = semver::Version::parse(semver_part) {
            version.build = semver::BuildMetadata::EMPTY;
            return Ok(RecipeVersion {
                raw: tag.to_string(),
                kind: Kind::Semver { version, upstream },
            });
        }
        if let Some((upstream, rev)) = tag.rsplit_once('_') {
            if let (Ok(revision), false) = (rev.parse::<u64>(), upstream.is_empty()) {
                return Ok(RecipeVersion {
                    raw: tag.to_string(),
                    kind: Kind::Legacy {
                        upstream: upstream.to_string(),
                        revision,
                    },
                });
            }
        }
        Err(err())
    }

    /// The tag exactly as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The semver part, for semver versions.
    pub fn semver(&self) -> Option<&semver::Version> {
        match &self.kind {
            Kind::Semver { version, .. } => Some(version),
            Kind::Legacy { .. } => None,
        }
    }

    /// The upstream part (after `+`, or before `_n` for legacy tags).
    pub fn upstream(&self) -> Option<&str> {
        match &self.kind {
            Kind::Semver { upstream, .. } => upstream.as_deref(),
            Kind::Legacy { upstream, .. } => Some(upstream),
        }
    }

    pub fn is_legacy(&self) -> bool {
        matches!(self.kind, Kind::Legacy { .. })
    }
}

impl fmt::Display for RecipeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Ord for RecipeVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.kind, &other.kind) {
            (
                Kind::Semver {
                    version: a,
                    upstream: ua,
                },
                Kind::Semver {
                    version: b,
                    upstream: ub,
                },
            ) => a.cmp(b).then_with(|| {
                compare_loose(ua.as_deref().unwrap_or(""), ub.as_deref().unwrap_or(""))
            }),
            (Kind::Legacy { .. }, Kind::Semver { .. }) => Ordering::Less,
            (Kind::Semver { .. }, Kind::Legacy { .. }) => Ordering::Greater,
            (
                Kind::Legacy {
                    upstream: a,
                    revision: ra,
                },
                Kind::Legacy {
                    upstream: b,
                    revision: rb,
                },
            ) => compare_loose(a, b).then(ra.cmp(rb)),
        }
        .then_with(|| self.raw.cmp(&other.raw))
    }
}

impl PartialOrd for RecipeVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares version-ish strings piece by piece, numbers numerically (`1.10` > `1.9`).
pub fn compare_loose(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> Vec<String> {
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut digit = None;
        for c in s.chars() {
            let d = c.is_ascii_digit();
            if !c.is_ascii_alphanumeric() {
                if !cur.is_empty() {
                    parts.push(std::mem::take(&mut cur));
                }
                digit = None;
                continue;
            }
            if digit.is_some_and(|prev| prev != d) && !cur.is_empty() {
                parts.push(std::mem::take(&mut cur));
            }
            digit = Some(d);
            cur.push(c);
        }
        if !cur.is_empty() {
            parts.push(cur);
        }
        parts
    };
    let (pa, pb) = (split(a), split(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            _ => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    pa.len().cmp(&pb.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let v = RecipeVersion::parse("2.0.1+1.0.6-social-amd64").unwrap();
        assert_eq!(v.semver().unwrap().to_string(), "2.0.1");
        assert_eq!(v.upstream(), Some("1.0.6-social-amd64"));
        let l = RecipeVersion::parse("1.14.1-rootless_1").unwrap();
        assert!(l.is_legacy());
        assert_eq!(l.upstream(), Some("1.14.1-rootless"));
        assert!(RecipeVersion::parse("main").is_err());
        assert!(RecipeVersion::parse("release-candidate").is_err());
    }

    #[test]
    fn orders_like_a_maintainer_would() {
        let mut tags: Vec<RecipeVersion> = [
            "1.10.0+2.0",
            "1.2.0+1.9",
            "0.1.0+4.3.1",
            "1.14.1-rootless_2",
            "1.9.0+1.27.2",
            "1.14.1-rootless_10",
            "1.2.0-rc1+1.9",
            "1.2.0+1.10",
        ]
        .iter()
        .map(|t| RecipeVersion::parse(t).unwrap())
        .collect();
        tags.sort();
        let order: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            order,
            [
                "1.14.1-rootless_2",
                "1.14.1-rootless_10",
                "0.1.0+4.3.1",
                "1.2.0-rc1+1.9",
                "1.2.0+1.9",
                "1.2.0+1.10",
                "1.9.0+1.27.2",
                "1.10.0+2.0",
            ]
        );
    }
}
