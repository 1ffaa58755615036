//! `.env` files as abra reads and writes them.
//!
//! Syntax (godotenv, as forked by abra): `KEY=value` lines, optional `export ` prefix, full-line
//! `#` comments, inline comments after whitespace in unquoted values, single quotes (literal),
//! double quotes (escapes and expansion), and `$VAR` / `${VAR}` expansion of keys defined earlier
//! in the same file (so `COMPOSE_FILE="$COMPOSE_FILE:compose.x.yml"` builds up a list).
//!
//! A trailing comment on a `SECRET_*_VERSION` line carries modifiers:
//! `SECRET_DB_PASSWORD_VERSION=v1  # length=32 charset=hex generate=false`.
//!
//! The file is kept line by line so cooper can change a value while leaving comments, order and
//! every other line untouched.

use std::collections::BTreeMap;

use indexmap::IndexMap;

/// An error in an env file, with the 1-based line it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EnvError {
    pub line: usize,
    pub message: String,
}

/// Modifiers from a trailing comment: `length=N`, `generate=false`, `charset=…`, and any other
/// `key=value` words (kept so nothing is lost).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Modifiers {
    pub words: BTreeMap<String, String>,
}

impl Modifiers {
    fn parse(comment: &str) -> Modifiers {
        let words = comment
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Modifiers { words }
    }

    /// `length=N`: generate a random password of N characters instead of a passphrase.
    pub fn length(&self) -> Option<Result<usize, String>> {
        self.words.get("length").map(|v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("length={v} is not a positive whole number"))
        })
    }

    /// `generate=false`: the operator inserts this secret by hand.
    pub fn generate(&self) -> bool {
        !matches!(
            self.words.get("generate").map(String::as_str),
            Some("false")
        )
    }

    pub fn charset(&self) -> Option<&str> {
        self.words.get("charset").map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// One `KEY=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// The value after unquoting and expansion.
    pub value: String,
    /// The 1-based line number.
    pub line: usize,
    pub modifiers: Modifiers,
}

/// A commented block of a `.env.sample` (see [`EnvFile::commented_blocks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentedBlock {
    /// Its first comment line that is not a setting (`## Single sign-on` → `Single sign-on`).
    pub title: Option<String>,
    /// The line the block starts on (1-based).
    pub line: usize,
    /// Compose files its commented `COMPOSE_FILE` line adds.
    pub overlays: Vec<String>,
    /// Its other commented settings: key, value, line.
    pub settings: Vec<(String, String, usize)>,
}

impl CommentedBlock {
    /// How to point at the block in a message: `"## Single sign-on" (line 12)`.
    pub fn describe(&self) -> String {
        match &self.title {
            Some(t) => format!("the block \"{t}\" (line {})", self.line),
            None => format!("the block at line {}", self.line),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Other(String),
    Entry { raw: String, entry: Entry },
}

/// A parsed env file that can be rewritten without losing anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvFile {
    lines: Vec<Line>,
}

impl EnvFile {
    /// Parses the text of an env file.
    pub fn parse(text: &str) -> Result<EnvFile, EnvError> {
        let mut lines = Vec::new();
        let mut values: IndexMap<String, String> = IndexMap::new();
        let mut refs: Vec<(String, usize, Vec<String>)> = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                lines.push(Line::Other(raw.to_string()));
                continue;
            }
            let entry = parse_entry(trimmed, line_no, &values)?;
            refs.push((entry.key.clone(), line_no, referenced_names(trimmed)));
            values.insert(entry.key.clone(), entry.value.clone());
            lines.push(Line::Entry {
                raw: raw.to_string(),
                entry,
            });
        }
        check_cycles(&refs)?;
        Ok(EnvFile { lines })
    }

    /// Every entry in file order (a key set twice appears twice).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lines.iter().filter_map(|l| match l {
            Line::Entry { entry, .. } => Some(entry),
            Line::Other(_) => None,
        })
    }

    /// The final value of each key (later lines win), in first-definition order.
    pub fn values(&self) -> IndexMap<String, String> {
        let mut out = IndexMap::new();
        for e in self.entries() {
            out.insert(e.key.clone(), e.value.clone());
        }
        out
    }

    /// The final value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries()
            .filter(|e| e.key == key)
            .last()
            .map(|e| e.value.as_str())
    }

    /// The modifiers written on the last line that sets `key`.
    pub fn modifiers(&self, key: &str) -> Option<&Modifiers> {
        self.entries()
            .filter(|e| e.key == key)
            .last()
            .map(|e| &e.modifiers)
    }

    /// Keys that appear only in comments, such as `#SECRET_X_VERSION=v1` (optional settings).
    pub fn commented_keys(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Other(raw) => {
                    let body = raw.trim().strip_prefix('#')?.trim();
                    let body = body.strip_prefix("export ").unwrap_or(body);
                    let (key, _) = body.split_once('=')?;
                    is_valid_key(key).then(|| key.to_string())
                }
                Line::Entry { .. } => None,
            })
            .collect()
    }

    /// The sample's commented blocks: runs of lines between blank lines that hold commented
    /// settings, such as
    ///
    /// ```text
    /// ## Single sign-on
    /// #COMPOSE_FILE="$COMPOSE_FILE:compose.sso.yml"
    /// #SSO_DOMAIN=id.example.com
    /// ```
    ///
    /// An operator switches such a feature on by uncommenting the whole block; tools that
    /// switch an overlay on (lint, releases, the catalogue) do the same.
    pub fn commented_blocks(&self) -> Vec<CommentedBlock> {
        let mut blocks = Vec::new();
        let mut current: Option<CommentedBlock> = None;
        for (i, l) in self.lines.iter().enumerate() {
            let raw = match l {
                Line::Other(raw) => raw.trim(),
                Line::Entry { .. } => {
                    continue;
                }
            };
            if raw.is_empty() {
                blocks.extend(current.take());
                continue;
            }
            let block = current.get_or_insert_with(|| CommentedBlock {
                title: None,
                line: i + 1,
                overlays: Vec::new(),
                settings: Vec::new(),
            });
            let Some(body) = raw.strip_prefix('#') else {
                continue;
            };
            let body = body.trim();
            let body = body.strip_prefix("export ").unwrap_or(body);
            let setting = body
                .split_once('=')
                .filter(|(k, _)| is_valid_key(k))
                .and_then(|_| EnvFile::parse(body).ok())
                .and_then(|e| e.entries().next().cloned());
            match setting {
                Some(e) if e.key == "COMPOSE_FILE" => block.overlays.extend(
                    e.value
                        .split(':')
                        .map(str::trim)
                        .filter(|f| !f.is_empty() && !f.contains('$'))
                        .map(crate::compose::clean_relative),
                ),
                Some(e) => block.settings.push((e.key, e.value, i + 1)),
                None if block.title.is_none() && block.settings.is_empty() => {
                    let title = body.trim_start_matches('#').trim();
                    if !title.is_empty() {
                        block.title = Some(title.to_string());
                    }
                }
                None => {}
            }
        }
        blocks.extend(current);
        blocks.retain(|b| !b.settings.is_empty() || !b.overlays.is_empty());
        blocks
    }

    /// Sets `key` to `value`: rewrites the last line that sets it (keeping its trailing comment)
    /// or appends a new line.
    pub fn set(&mut self, key: &str, value: &str) {
        let quoted = quote(value);
        let pos = self
            .lines
            .iter()
            .rposition(|l| matches!(l, Line::Entry { entry, .. } if entry.key == key));
        match pos {
            Some(i) => {
                if let Line::Entry { raw, entry } = &mut self.lines[i] {
                    let comment = trailing_comment(raw);
                    let export = if raw.trim_start().starts_with("export ") {
                        "export "
                    } else {
                        ""
                    };
                    *raw = match comment {
                        Some(c) => format!("{export}{key}={quoted} {c}"),
                        None => format!("{export}{key}={quoted}"),
                    };
                    entry.value = value.to_string();
                }
            }
            None => {
                let line = self.lines.len() + 1;
                self.lines.push(Line::Entry {
                    raw: format!("{key}={quoted}"),
                    entry: Entry {
                        key: key.to_string(),
                        value: value.to_string(),
                        line,
                        modifiers: Modifiers::default(),
                    },
                });
            }
        }
    }

    /// The file's text, every untouched line byte-for-byte as it was.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            match l {
                Line::Other(raw) | Line::Entry { raw, .. } => out.push_str(raw),
            }
            out.push('\n');
        }
        out
    }
}

/// Names referenced as `$X` or `${X}` in an unquoted or double-quoted value.
fn referenced_names(line: &str) -> Vec<String> {
    let value = line.split_once('=').map_or("", |(_, v)| v).trim_start();
    if value.starts_with('\'') {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        let after = after.strip_prefix('{').unwrap_or(after);
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if len > 0 {
            out.push(after[..len].to_string());
        }
        rest = &after[len..];
    }
    out
}

/// Expansion only reads earlier lines, so it always ends; but two keys that refer to each
/// other (each before the other is set) are a mistake that would silently expand to empty
/// text, so it is reported.
fn check_cycles(refs: &[(String, usize, Vec<String>)]) -> Result<(), EnvError> {
    for (i, (key, line, names)) in refs.iter().enumerate() {
        let defined_before = |name: &str| refs[..i].iter().any(|(k, _, _)| k == name);
        for name in names {
            if defined_before(name) {
                continue;
            }
            if name == key {
                continue;
            }
            let later = refs[i + 1..]
                .iter()
                .find(|(k, _, back)| k == name && back.contains(key));
            if let Some((_, other_line, _)) = later {
                return Err(EnvError {
                    line: *line,
                    message: format!(
                        "{key} refers to {name} (set on line {other_line}), which refers back to \
                         {key}: the expansion is circular; give one of them a literal value"
                    ),
                });
            }
        }
    }
    Ok(())
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c == '.' || c.is_ascii_alphanumeric())
}

fn parse_entry(
    line: &str,
    line_no: usize,
    earlier: &IndexMap<String, String>,
) -> Result<Entry, EnvError> {
    let err = |message: String| EnvError {
        line: line_no,
        message,
    };
    let body = line.strip_prefix("export ").map_or(line, str::trim_start);
    let (key, rest) = body.split_once('=').ok_or_else(|| {
        err(format!(
            "expected KEY=value, found {line:?}; comment the line out with # if it is a note"
        ))
    })?;
    let key = key.trim_end();
    if !is_valid_key(key) {
        return Err(err(format!(
            "{key:?} is not a valid variable name (letters, digits and _, not starting with a digit)"
        )));
    }
    let rest = rest.trim_start();
    let (value, comment) = match rest.chars().next() {
        Some(q @ ('\'' | '"')) => {
            let inner = &rest[1..];
            let end = find_closing(inner, q).ok_or_else(|| {
                err(format!(
                    "the value of {key} opens a {q} quote that is never closed on this line"
                ))
            })?;
            let after = inner[end + 1..].trim();
            let comment = after.strip_prefix('#').map(str::trim);
            if !after.is_empty() && comment.is_none() {
                return Err(err(format!(
                    "unexpected text {after:?} after the quoted value of {key}"
                )));
            }
            let raw = &inner[..end];
            let value = if q == '\'' {
                raw.to_string()
            } else {
                expand(&unescape_double(raw), earlier)
            };
            (value, comment)
        }
        _ => {
            let (raw, comment) = split_inline_comment(rest);
            (expand(raw.trim_end(), earlier), comment)
        }
    };
    Ok(Entry {
        key: key.to_string(),
        value,
        line: line_no,
        modifiers: comment.map(Modifiers::parse).unwrap_or_default(),
    })
}

fn find_closing(s: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if quote == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == quote && !escaped {
            return Some(i);
        }
        escaped = false;
    }
    None
}

/// Splits `value # comment`: a `#` starts a comment only after whitespace.
fn split_inline_comment(s: &str) -> (&str, Option<&str>) {
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return (&s[..i], Some(s[i + 1..].trim()));
        }
    }
    (s, None)
}

fn trailing_comment(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let body = trimmed.strip_prefix("export ").unwrap_or(trimmed);
    let (_, rest) = body.split_once('=')?;
    let rest = rest.trim_start();
    let after = match rest.chars().next() {
        Some(q @ ('\'' | '"')) => {
            let end = find_closing(&rest[1..], q)?;
            rest[end + 2..].trim()
        }
        _ => {
            let (_, c) = split_inline_comment(rest);
            return c.map(|c| format!("# {c}"));
        }
    };
    after.starts_with('#').then(|| after.to_string())
}

fn unescape_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            // Keep `\$` escaped for the expansion step.
            Some('$') => out.push_str("\\$"),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Expands `$VAR` and `${VAR}` from earlier keys; `\$` is a literal dollar.
fn expand(s: &str, earlier: &IndexMap<String, String>) -> String {
    if !s.contains('$') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        if i > 0 && rest.as_bytes()[i - 1] == b'\\' {
            out.push_str(&rest[..i - 1]);
            out.push('$');
            rest = &rest[i + 1..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let len = after
                .char_indices()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
                .map_or(after.len(), |(i, _)| i);
            (&after[..len], len)
        };
        if name.is_empty() || consumed == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(earlier.get(name).map(String::as_str).unwrap_or(""));
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// Quotes a value for writing, only when it needs it.
pub(crate) fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/,@+%=".contains(c));
    if plain || value.is_empty() {
        value.to_string()
    } else if !value.contains('\'') {
        format!("'{value}'")
    } else {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$");
        format!("\"{escaped}\"")
    }
}

/// The recipe line of an app env: `TYPE=` (older) or `RECIPE=` (newer), with an optional
/// `:version` (written by abra since 2025 and by cooper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeRef {
    /// Which key holds it: `TYPE` or `RECIPE`.
    pub key: &'static str,
    pub name: String,
    pub version: Option<String>,
}

impl RecipeRef {
    /// Reads the recipe reference from an app env file.
    pub fn from_env(env: &EnvFile) -> Option<RecipeRef> {
        let (key, raw) = if let Some(v) = env.get("RECIPE") {
            ("RECIPE", v)
        } else {
            ("TYPE", env.get("TYPE")?)
        };
        let (name, version) = match raw.split_once(':') {
            Some((n, v)) if !v.is_empty() => (n, Some(v.to_string())),
            Some((n, _)) => (n, None),
            None => (raw, None),
        };
        Some(RecipeRef {
            key,
            name: name.trim().to_string(),
            version,
        })
    }

    /// The value to write back: `name` or `name:version`.
    pub fn value(&self) -> String {
        match &self.version {
            Some(v) => format!("{}:{v}", self.name),
            None => self.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"TYPE=bonfire:1.2.0+1.0.6
# a comment
DOMAIN=bonfire.example.com   # inline comment
EXTRA_DOMAINS=', `www.bonfire.example.com`'
COMPOSE_FILE="compose.yml"
COMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"
COMPOSE_FILE="${COMPOSE_FILE}:compose.mail.yml"
export EXPORTED=yes
HASH=abc#def
LITERAL='$DOMAIN stays'
ESCAPED="a \"quoted\" \$DOMAIN"
SECRET_DB_PASSWORD_VERSION=v1       # length=64 charset=hex
SECRET_SMTP_VERSION=v2 # generate=false
#SECRET_OPTIONAL_VERSION=v1
EMPTY=
"#;

    #[test]
    fn commented_blocks_carry_their_overlays_and_settings() {
        let env = EnvFile::parse(
            "TYPE=app\nDOMAIN=x.org\n\n# Store uploads in S3:\n#COMPOSE_FILE=\"$COMPOSE_FILE:compose.s3.yml\"\n#SECRET_S3_KEY_VERSION=v1\n#S3_BUCKET=\n# Optionally a token file\n# COMPOSE_FILE=\"$COMPOSE_FILE:./compose.s3.token.yml\"\n\n## Single sign-on\n#SSO_DOMAIN=id.example.com # the provider\n\n# just a note\n",
        )
        .unwrap();
        let blocks = env.commented_blocks();
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert_eq!(blocks[0].title.as_deref(), Some("Store uploads in S3:"));
        assert_eq!(blocks[0].line, 4);
        assert_eq!(
            blocks[0].overlays,
            vec!["compose.s3.yml", "compose.s3.token.yml"]
        );
        assert_eq!(
            blocks[0].settings,
            vec![
                ("SECRET_S3_KEY_VERSION".to_string(), "v1".to_string(), 6),
                ("S3_BUCKET".to_string(), String::new(), 7),
            ]
        );
        assert_eq!(blocks[1].title.as_deref(), Some("Single sign-on"));
        assert_eq!(
            blocks[1].settings,
            vec![("SSO_DOMAIN".to_string(), "id.example.com".to_string(), 12)]
        );
        assert!(blocks[1].overlays.is_empty());
    }

    #[test]
    fn parses_abra_semantics() {
        let env = EnvFile::parse(SAMPLE).unwrap();
        assert_eq!(env.get("DOMAIN"), Some("bonfire.example.com"));
        assert_eq!(
            env.get("EXTRA_DOMAINS"),
            Some(", `www.bonfire.example.com`")
        );
        assert_eq!(
            env.get("COMPOSE_FILE"),
            Some("compose.yml:compose.postgres.yml:compose.mail.yml")
        );
        assert_eq!(env.get("EXPORTED"), Some("yes"));
        assert_eq!(env.get("HASH"), Some("abc#def"));
        assert_eq!(env.get("LITERAL"), Some("$DOMAIN stays"));
        assert_eq!(env.get("ESCAPED"), Some("a \"quoted\" $DOMAIN"));
        assert_eq!(env.get("EMPTY"), Some(""));
        let m = env.modifiers("SECRET_DB_PASSWORD_VERSION").unwrap();
        assert_eq!(m.length(), Some(Ok(64)));
        assert_eq!(m.charset(), Some("hex"));
        assert!(m.generate());
        assert!(!env.modifiers("SECRET_SMTP_VERSION").unwrap().generate());
        assert_eq!(env.commented_keys(), vec!["SECRET_OPTIONAL_VERSION"]);
        let r = RecipeRef::from_env(&env).unwrap();
        assert_eq!(r.name, "bonfire");
        assert_eq!(r.version.as_deref(), Some("1.2.0+1.0.6"));
    }

    #[test]
    fn rewriting_keeps_everything_else() {
        let mut env = EnvFile::parse(SAMPLE).unwrap();
        env.set("TYPE", "bonfire:1.3.0+1.0.7");
        env.set("SECRET_DB_PASSWORD_VERSION", "v2");
        env.set("NEW_KEY", "has spaces");
        let text = env.render();
        let expected = SAMPLE
            .replace("TYPE=bonfire:1.2.0+1.0.6", "TYPE=bonfire:1.3.0+1.0.7")
            .replace(
                "SECRET_DB_PASSWORD_VERSION=v1       # length=64 charset=hex",
                "SECRET_DB_PASSWORD_VERSION=v2 # length=64 charset=hex",
            )
            + "NEW_KEY='has spaces'\n";
        assert_eq!(text, expected);
        let again = EnvFile::parse(&text).unwrap();
        assert_eq!(again.get("NEW_KEY"), Some("has spaces"));
        assert_eq!(
            again
                .modifiers("SECRET_DB_PASSWORD_VERSION")
                .unwrap()
                .length(),
            Some(Ok(64))
        );
    }

    #[test]
    fn unchanged_file_renders_identically() {
        let env = EnvFile::parse(SAMPLE).unwrap();
        assert_eq!(env.render(), SAMPLE);
    }

    #[test]
    fn bad_lines_name_the_line_and_the_fix() {
        let err = EnvFile::parse("A=1\nthis is a note\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("comment the line out"), "{err}");
        let err = EnvFile::parse("A=\"open\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("never closed"), "{err}");
        let err = EnvFile::parse("1A=x\n").unwrap_err();
        assert!(err.message.contains("not a valid variable name"), "{err}");
    }

    #[test]
    fn circular_references_are_an_error_not_a_hang() {
        let err = EnvFile::parse("A=\"$B/x\"\nB=${A}/y\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("circular"), "{err}");
        // Self-reference builds on the earlier value, as in COMPOSE_FILE build-ups.
        let env = EnvFile::parse("X=a\nX=\"$X:b\"\nX=\"$X:c\"\n").unwrap();
        assert_eq!(env.get("X"), Some("a:b:c"));
        // A forward reference with no way back expands to empty text, as in abra.
        let env = EnvFile::parse("A=$B\nB=1\n").unwrap();
        assert_eq!(env.get("A"), Some(""));
    }

    #[test]
    fn quoting_round_trips() {
        for v in ["simple", "has space", "it's", "$dollar", "a\"b", "", "x#y"] {
            let mut env = EnvFile::default();
            env.set("K", v);
            let back = EnvFile::parse(&env.render()).unwrap();
            assert_eq!(back.get("K"), Some(v), "value {v:?}: {}", env.render());
        }
    }
}
