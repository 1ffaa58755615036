//! Image upgrades for recipe maintenance (`cooper recipe upgrade`), the pure part: which tags
//! keep a tag's *shape* (`1.27.2-alpine` → `1.28.0-alpine`, never `latest` or `1.28.0`), how
//! big a step each is (patch, minor, major), and rewriting the `image:` lines of a compose file
//! — only the tag and a `@sha256:` pin change; every other byte of the file stays.

use std::cmp::Ordering;

use serde::Serialize;

/// A tag split into its shape and numbers: `v1.27.2-alpine` → prefix `v`, numbers
/// `[1, 27, 2]`, suffix `-alpine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagShape {
    pub prefix: String,
    pub numbers: Vec<u64>,
    pub suffix: String,
}

impl TagShape {
    /// The shape of a tag; `None` for tags without a leading version (`latest`, `stable`).
    pub fn parse(tag: &str) -> Option<TagShape> {
        let start = tag.find(|c: char| c.is_ascii_digit())?;
        let prefix = &tag[..start];
        if prefix.len() > 1 || (prefix.len() == 1 && prefix != "v") {
            return None;
        }
        let rest = &tag[start..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let version = rest[..end].trim_end_matches('.');
        let suffix = &rest[version.len()..];
        let numbers: Option<Vec<u64>> = version.split('.').map(|p| p.parse().ok()).collect();
        let numbers = numbers?;
        if numbers.is_empty() {
            return None;
        }
        Some(TagShape {
            prefix: prefix.to_string(),
            numbers,
            suffix: suffix.to_string(),
        })
    }

    /// Same prefix, same suffix, same count of numbers.
    pub fn same_shape(&self, other: &TagShape) -> bool {
        self.prefix == other.prefix
            && self.suffix == other.suffix
            && self.numbers.len() == other.numbers.len()
    }
}

/// How big a step from one version to another is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    Patch,
    Minor,
    Major,
}

impl std::fmt::Display for Bump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        })
    }
}

fn bump(from: &[u64], to: &[u64]) -> Bump {
    match from.iter().zip(to).position(|(a, b)| a != b) {
        Some(0) => Bump::Major,
        Some(1) => Bump::Minor,
        _ => Bump::Patch,
    }
}

/// The newest tag of the same shape per step size (the newest patch keeps major.minor, the
/// newest minor keeps the major), among `tags` newer than `current`.
pub fn candidates(current: &str, tags: &[String]) -> Vec<(Bump, String)> {
    let Some(cur) = TagShape::parse(current) else {
        return Vec::new();
    };
    let mut newer: Vec<(TagShape, &String)> = tags
        .iter()
        .filter_map(|t| TagShape::parse(t).map(|s| (s, t)))
        .filter(|(s, _)| s.same_shape(&cur) && s.numbers.cmp(&cur.numbers) == Ordering::Greater)
        .collect();
    newer.sort_by(|a, b| a.0.numbers.cmp(&b.0.numbers));
    let mut out = Vec::new();
    for level in [Bump::Patch, Bump::Minor, Bump::Major] {
        if let Some((_, t)) = newer
            .iter()
            .rfind(|(s, _)| bump(&cur.numbers, &s.numbers) <= level)
        {
            if !out.iter().any(|(_, x): &(Bump, String)| x == *t) {
                out.push((
                    bump(
                        &cur.numbers,
                        &TagShape::parse(t).map(|s| s.numbers).unwrap_or_default(),
                    ),
                    (*t).clone(),
                ));
            }
        }
    }
    out
}

/// Tags in version order: tags with a version by their numbers (then by name), then the rest
/// (`latest`, `stable`, …) by name.
pub fn sorted(mut tags: Vec<String>) -> Vec<String> {
    tags.sort_by(|a, b| match (TagShape::parse(a), TagShape::parse(b)) {
        (Some(x), Some(y)) => x.numbers.cmp(&y.numbers).then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    });
    tags
}

/// One `image:` line to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageEdit {
    /// The image as written (`nginx:1.27.2-alpine@sha256:…`).
    pub from: String,
    /// What replaces it.
    pub to: String,
}

/// Rewrites `image:` values in a compose file's text; only the value changes (its quotes, the
/// line's indentation and comments, and every other line stay byte for byte). Returns the new
/// text and how many lines changed.
pub fn rewrite_images(text: &str, edits: &[ImageEdit]) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut changed = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let is_image = trimmed.starts_with("image:") || trimmed.starts_with("- image:");
        let mut done = false;
        if is_image {
            for e in edits {
                // The value as a whole word: followed by a quote, space, comment or line end.
                if let Some(i) = line.find(&e.from) {
                    let after = &line[i + e.from.len()..];
                    let before = &line[..i];
                    let ends = after.is_empty()
                        || after.starts_with(['"', '\'', ' ', '\t', '\r', '\n', '#']);
                    let starts = before.ends_with([' ', '"', '\'', ':']);
                    if ends && starts {
                        out.push_str(before);
                        out.push_str(&e.to);
                        out.push_str(after);
                        changed += 1;
                        done = true;
                        break;
                    }
                }
            }
        }
        if !done {
            out.push_str(line);
        }
    }
    (out, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn shapes() {
        let s = TagShape::parse("v1.27.2-alpine").unwrap();
        assert_eq!(
            (s.prefix.as_str(), s.numbers.as_slice(), s.suffix.as_str()),
            ("v", &[1, 27, 2][..], "-alpine")
        );
        assert!(TagShape::parse("latest").is_none());
        assert!(TagShape::parse("alpine3.20").is_none());
        assert_eq!(
            TagShape::parse("2024.01.05").unwrap().numbers,
            vec![2024, 1, 5]
        );
        assert_eq!(TagShape::parse("16-bookworm").unwrap().suffix, "-bookworm");
    }

    #[test]
    fn candidates_keep_the_shape_and_pick_the_newest_per_step() {
        let all = tags(&[
            "1.27.1-alpine",
            "1.27.2-alpine",
            "1.27.3-alpine",
            "1.28.0-alpine",
            "1.28.4-alpine",
            "2.0.0-alpine",
            "1.28.5",
            "latest",
            "1.29-alpine",
            "1.27.10-alpine",
        ]);
        let c = candidates("1.27.2-alpine", &all);
        assert_eq!(
            c,
            vec![
                (Bump::Patch, "1.27.10-alpine".to_string()),
                (Bump::Minor, "1.28.4-alpine".to_string()),
                (Bump::Major, "2.0.0-alpine".to_string()),
            ]
        );
        assert!(candidates("latest", &all).is_empty());
        assert!(candidates("2.0.0-alpine", &all).is_empty());
        // Only a minor step exists: offered once, as minor.
        assert_eq!(
            candidates("1.0", &tags(&["1.1", "0.9", "1.0"])),
            vec![(Bump::Minor, "1.1".to_string())]
        );
    }

    #[test]
    fn tags_sort_by_version() {
        assert_eq!(
            sorted(tags(&[
                "latest",
                "1.10.0",
                "1.9.2",
                "v1.9.10",
                "1.9.2-alpine",
                "edge"
            ])),
            tags(&[
                "1.9.2",
                "1.9.2-alpine",
                "v1.9.10",
                "1.10.0",
                "edge",
                "latest"
            ])
        );
    }

    #[test]
    fn rewriting_changes_only_the_image_values() {
        let d_old = format!("sha256:{}", "a".repeat(64));
        let d_new = format!("sha256:{}", "b".repeat(64));
        let text = format!(
            "services:\n  app:\n    image: nginx:1.27.2-alpine   # web\n    environment:\n      - X=nginx:1.27.2-alpine\n  db:\n    image: \"postgres:16.1@{d_old}\"\n\n"
        );
        let (out, n) = rewrite_images(
            &text,
            &[
                ImageEdit {
                    from: "nginx:1.27.2-alpine".into(),
                    to: "nginx:1.28.0-alpine".into(),
                },
                ImageEdit {
                    from: format!("postgres:16.1@{d_old}"),
                    to: format!("postgres:16.4@{d_new}"),
                },
            ],
        );
        assert_eq!(n, 2);
        assert_eq!(
            out,
            format!(
                "services:\n  app:\n    image: nginx:1.28.0-alpine   # web\n    environment:\n      - X=nginx:1.27.2-alpine\n  db:\n    image: \"postgres:16.4@{d_new}\"\n\n"
            )
        );
        // A longer tag that merely starts with the same text is left alone.
        let (same, n) = rewrite_images(
            "    image: nginx:1.27.2-alpine3.20\n",
            &[ImageEdit {
                from: "nginx:1.27.2-alpine".into(),
                to: "x".into(),
            }],
        );
        assert_eq!(
            (same.as_str(), n),
            ("    image: nginx:1.27.2-alpine3.20\n", 0)
        );
    }
}
