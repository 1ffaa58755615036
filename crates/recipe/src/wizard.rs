//! The setup wizard's questions, read off a recipe's `.env.sample`, and the answers written
//! back into an app's `.env`.
//!
//! What a sample offers:
//!
//! - **Options**: a commented section that adds compose overlays, such as
//!
//!   ```text
//!   ## Outgoing mail
//!   #COMPOSE_FILE="$COMPOSE_FILE:compose.smtp.yml"
//!   #SMTP_HOST=mail.example.com
//!   #SECRET_SMTP_PASSWORD_VERSION=v1 # generate=false
//!   ```
//!
//!   becomes a toggle titled "Outgoing mail"; its settings become fields (prefilled with the
//!   sample's value; an empty one must be filled when the option is on), and its secrets
//!   marked `generate=false` become secret fields. Sections end at a blank line, a bare `#`, or
//!   a new title after settings (so a long comment listing several overlays, one per
//!   sub-heading, gives one option each). A section that only combines overlays other options
//!   already offer ("Multiple overlays") is not offered again.
//! - **Secrets to fill**: active `SECRET_*_VERSION` lines marked `generate=false`.
//! - Everything else keeps the sample's default.
//!
//! [`apply`] writes answers into an app's `.env` (made from that sample): an enabled option's
//! settings are uncommented in place with the given values, its overlays are added to
//! `COMPOSE_FILE` once (samples write that line either as `$COMPOSE_FILE:…` or as a full
//! list), and secret values are returned apart — they go to the secret store, never into the
//! `.env`.

use std::collections::{BTreeMap, BTreeSet};

use crate::envfile::{EnvError, EnvFile};

/// What kind of input a field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Email,
    Number,
    /// `true`/`false` or `1`/`0` in the sample.
    Flag,
}

/// A setting the requester may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub key: String,
    /// The sample's value (empty: the requester must give one).
    pub default: String,
    pub kind: FieldKind,
    /// The comment on the line or just above it, if any.
    pub help: Option<String>,
    /// The line in the sample (1-based).
    pub line: usize,
}

impl Field {
    pub fn required(&self) -> bool {
        self.default.is_empty()
    }
}

/// A secret the requester gives (the recipe says it cannot be generated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretField {
    /// The secret's name: `smtp_password` for `SECRET_SMTP_PASSWORD_VERSION`.
    pub name: String,
    /// `SECRET_SMTP_PASSWORD_VERSION`.
    pub version_key: String,
    /// `length=N` on the line: the length the recipe expects.
    pub length: Option<usize>,
    pub line: usize,
}

/// A toggle: a feature the recipe ships switched off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// Stable name: the first overlay without `compose.` and `.yml` (`smtp`).
    pub id: String,
    pub title: String,
    /// The section's other comment lines (what the option does, what it needs).
    pub help: Vec<String>,
    pub overlays: Vec<String>,
    pub fields: Vec<Field>,
    pub secrets: Vec<SecretField>,
    pub line: usize,
}

/// Everything the wizard asks about one recipe version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Form {
    pub options: Vec<Opt>,
    /// Secrets outside any option that must be given.
    pub secrets: Vec<SecretField>,
}

/// What the requester answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answers {
    /// Ids of the options switched on.
    pub options: BTreeSet<String>,
    /// Values of option fields, by key (missing: the sample's default).
    pub values: BTreeMap<String, String>,
    /// Secret values, by secret name.
    pub secrets: BTreeMap<String, String>,
}

impl Answers {
    /// These answers with a placeholder of the right length for every secret the form asks
    /// for: to check the other answers where the secrets are given elsewhere (the wizard never
    /// asks for them; an operator gives them at approval).
    pub fn secrets_given_elsewhere(&self, form: &Form) -> Answers {
        Answers {
            secrets: form
                .secrets
                .iter()
                .chain(form.options.iter().flat_map(|o| o.secrets.iter()))
                .map(|s| (s.name.clone(), "x".repeat(s.length.unwrap_or(1))))
                .collect(),
            ..self.clone()
        }
    }
}

/// A problem with one answer, for the field it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's key, or the secret's name.
    pub field: String,
    pub message: String,
}

/// One commented line of a section.
#[derive(Debug, Clone)]
enum Commented {
    /// `#KEY=value` (`entry` parsed with its trailing comment).
    Setting {
        key: String,
        value: String,
        modifiers: crate::envfile::Modifiers,
        help: Option<String>,
    },
    /// Any other comment text.
    Text(String),
}

fn commented(raw: &str) -> Option<Commented> {
    let body = raw.trim().strip_prefix('#')?;
    let body = body.trim();
    let body = body.strip_prefix("export ").unwrap_or(body);
    let as_setting = body
        .split_once('=')
        .filter(|(k, _)| valid_key(k))
        .and_then(|_| EnvFile::parse(body).ok())
        .and_then(|e| e.entries().next().cloned());
    Some(match as_setting {
        Some(e) => {
            let help = body
                .split_once(" #")
                .map(|(_, c)| c.trim().to_string())
                .filter(|c| !c.is_empty() && !c.split_whitespace().all(|w| w.contains('=')));
            Commented::Setting {
                key: e.key,
                value: e.value,
                modifiers: e.modifiers,
                help,
            }
        }
        None => Commented::Text(body.trim_start_matches('#').trim().to_string()),
    })
}

fn valid_key(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Words that make a line a decoration rather than a title (`# ====`, `# ── x ──`).
fn title_of(text: &str) -> Option<String> {
    // `# ^ can be code or token` annotates the line above.
    if text.trim_start().starts_with('^') {
        return None;
    }
    let t = text
        .trim_matches(|c: char| c == '=' || c == '-' || c == '─' || c == '#' || c.is_whitespace())
        .trim_end_matches(':')
        .trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn secret_name(version_key: &str) -> Option<String> {
    version_key
        .strip_prefix("SECRET_")?
        .strip_suffix("_VERSION")
        .map(str::to_lowercase)
}

fn kind_of(key: &str, value: &str) -> FieldKind {
    let v = value.to_ascii_lowercase();
    if matches!(v.as_str(), "true" | "false")
        || (key.ends_with("_ENABLED") && (v == "1" || v == "0"))
    {
        FieldKind::Flag
    } else if key.contains("EMAIL") || key.ends_with("_FROM") || value.contains('@') {
        FieldKind::Email
    } else if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) {
        FieldKind::Number
    } else {
        FieldKind::Text
    }
}

fn overlays_of(value: &str) -> Vec<String> {
    value
        .split(':')
        .map(str::trim)
        .filter(|f| !f.is_empty() && !f.contains('$'))
        .map(crate::compose::clean_relative)
        .collect()
}

/// A run of commented lines; `after_setting` when an active setting came since the previous
/// run (a heading above it no longer applies).
struct Section {
    after_setting: bool,
    lines: Vec<(usize, Commented)>,
}

/// The sample's sections of commented lines (see the module's text).
fn sections(text: &str) -> Vec<Section> {
    let mut out = Vec::new();
    let mut cur: Vec<(usize, Commented)> = Vec::new();
    let mut active_since = false;
    let close = |cur: &mut Vec<(usize, Commented)>, out: &mut Vec<Section>, active: &mut bool| {
        if !cur.is_empty() {
            out.push(Section {
                after_setting: std::mem::take(active),
                lines: std::mem::take(cur),
            });
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t == "#" || !t.starts_with('#') {
            close(&mut cur, &mut out, &mut active_since);
            if !t.is_empty() && !t.starts_with('#') {
                active_since = true;
            }
            continue;
        }
        let Some(c) = commented(raw) else {
            continue;
        };
        let has_setting = cur
            .iter()
            .any(|(_, c)| matches!(c, Commented::Setting { .. }));
        if let Commented::Text(t) = &c {
            // A title after settings starts a new section.
            if has_setting && title_of(t).is_some() {
                close(&mut cur, &mut out, &mut active_since);
            }
        }
        cur.push((line, c));
    }
    close(&mut cur, &mut out, &mut active_since);
    out
}

/// Whether a comment reads as a title: short, not a sentence.
fn is_title(t: &str) -> bool {
    t.chars().count() <= 48 && !t.ends_with('.') && !t.contains(": ")
}

/// The base `COMPOSE_FILE` of a sample or app env (active lines), or `compose.yml`.
fn base_overlays(env: &EnvFile) -> Vec<String> {
    env.get("COMPOSE_FILE")
        .map(overlays_of)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec!["compose.yml".to_string()])
}

/// Reads the wizard's questions off a `.env.sample` (or an app `.env` made from one).
pub fn derive(text: &str) -> Result<Form, EnvError> {
    let env = EnvFile::parse(text)?;
    let base = base_overlays(&env);
    let mut form = Form::default();
    for e in env.entries() {
        if let Some(name) = secret_name(&e.key) {
            if !e.modifiers.generate() {
                form.secrets.push(SecretField {
                    name,
                    version_key: e.key.clone(),
                    length: e.modifiers.length().and_then(Result::ok),
                    line: e.line,
                });
            }
        }
    }
    let mut offered: BTreeSet<String> = BTreeSet::new();
    // The last heading (a run of comments without settings, `# MAIL` under `# ====`).
    let mut heading: Option<String> = None;
    for Section {
        after_setting,
        lines: section,
    } in sections(text)
    {
        if after_setting {
            heading = None;
        }
        if section.iter().all(|(_, c)| matches!(c, Commented::Text(_))) {
            heading = section
                .iter()
                .rev()
                .find_map(|(_, c)| match c {
                    Commented::Text(t) => title_of(t).filter(|t| is_title(t)),
                    Commented::Setting { .. } => None,
                })
                .or(heading);
            continue;
        }
        let mut help = Vec::new();
        let mut title = None;
        let mut last_text: Option<String> = None;
        let mut overlays = Vec::new();
        let mut fields = Vec::new();
        let mut secrets = Vec::new();
        for (line, c) in &section {
            match c {
                Commented::Text(t) => {
                    let t = title_of(t);
                    if title.is_none() && fields.is_empty() && overlays.is_empty() {
                        title = t.clone();
                    }
                    help.extend(t.clone());
                    last_text = t;
                }
                Commented::Setting {
                    key,
                    value,
                    modifiers,
                    help,
                } => {
                    if key == "COMPOSE_FILE" {
                        for o in overlays_of(value) {
                            if !base.contains(&o) && !overlays.contains(&o) {
                                overlays.push(o);
                            }
                        }
                    } else if let Some(name) = secret_name(key) {
                        secrets.push(SecretField {
                            name,
                            version_key: key.clone(),
                            length: modifiers.length().and_then(Result::ok),
                            line: *line,
                        });
                    } else {
                        fields.push(Field {
                            key: key.clone(),
                            default: value.clone(),
                            kind: kind_of(key, value),
                            help: help.clone().or_else(|| {
                                last_text.clone().filter(|t| Some(t) != title.as_ref())
                            }),
                            line: *line,
                        });
                    }
                    last_text = None;
                }
            }
        }
        if overlays.is_empty() {
            continue;
        }
        // Only a combination of what other options offer: not a choice of its own.
        if fields.is_empty() && secrets.is_empty() && overlays.iter().all(|o| offered.contains(o)) {
            continue;
        }
        // Only secrets marked generate=false are asked; the others are generated.
        let secrets = secrets
            .into_iter()
            .filter(|s| {
                section.iter().any(|(l, c)| {
                    *l == s.line
                        && matches!(c, Commented::Setting { modifiers, .. } if !modifiers.generate())
                })
            })
            .collect();
        let id = id_of(&overlays[0]);
        offered.extend(overlays.iter().cloned());
        // The section's own first line when it reads as a title, else the heading above it.
        let own = title
            .as_deref()
            .map(|t| t.split(": ").next().unwrap_or(t).to_string());
        let mut title = match own {
            Some(t) if is_title(&t) => t,
            _ => heading.clone().or(title).unwrap_or_else(|| id.clone()),
        };
        help.retain(|h| h != &title);
        if form.options.iter().any(|o| o.title == title) {
            title = format!("{title}: {id}");
        }
        form.options.push(Opt {
            title,
            help,
            id,
            overlays,
            fields,
            secrets,
            line: section[0].0,
        });
    }
    // Two options from the same overlay name keep distinct ids.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for o in &mut form.options {
        let n = seen.entry(o.id.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            o.id = format!("{}-{n}", o.id);
        }
    }
    Ok(form)
}

fn id_of(overlay: &str) -> String {
    let file = overlay.rsplit('/').next().unwrap_or(overlay);
    let stem = file
        .strip_suffix(".yml")
        .or_else(|| file.strip_suffix(".yaml"))
        .unwrap_or(file);
    let stem = stem.strip_prefix("compose.").unwrap_or(stem);
    stem.replace('.', "-")
}

/// Checks answers against the form: unknown options, required fields left empty, values
/// that break the env syntax, secrets missing or of the wrong length. Empty when all is well.
pub fn validate(form: &Form, a: &Answers) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for id in &a.options {
        if !form.options.iter().any(|o| &o.id == id) {
            errors.push(FieldError {
                field: id.clone(),
                message: format!("this recipe has no option {id:?}"),
            });
        }
    }
    let check_secret = |s: &SecretField, errors: &mut Vec<FieldError>| match a
        .secrets
        .get(&s.name)
        .map(String::as_str)
    {
        None | Some("") => errors.push(FieldError {
            field: s.name.clone(),
            message: "required: the recipe cannot make this secret itself".into(),
        }),
        Some(v) => {
            if let Some(n) = s.length {
                if v.chars().count() != n {
                    errors.push(FieldError {
                        field: s.name.clone(),
                        message: format!("must be exactly {n} characters long"),
                    });
                }
            }
        }
    };
    for s in &form.secrets {
        check_secret(s, &mut errors);
    }
    for o in form.options.iter().filter(|o| a.options.contains(&o.id)) {
        for s in &o.secrets {
            check_secret(s, &mut errors);
        }
        for f in &o.fields {
            let v = a.values.get(&f.key).unwrap_or(&f.default);
            let msg = if v.trim().is_empty() {
                Some(format!("required when \"{}\" is on", o.title))
            } else if v.contains('\n') || v.contains('\r') {
                Some("must be one line".to_string())
            } else {
                match f.kind {
                    FieldKind::Number if !v.chars().all(|c| c.is_ascii_digit()) => {
                        Some("must be a whole number".into())
                    }
                    FieldKind::Email if !looks_like_email(v) => {
                        Some("must be an email address (name@example.org)".into())
                    }
                    FieldKind::Flag
                        if !matches!(
                            v.to_ascii_lowercase().as_str(),
                            "true" | "false" | "1" | "0"
                        ) =>
                    {
                        Some("must be true or false".into())
                    }
                    _ => None,
                }
            };
            if let Some(message) = msg {
                errors.push(FieldError {
                    field: f.key.clone(),
                    message,
                });
            }
        }
    }
    errors
}

fn looks_like_email(v: &str) -> bool {
    match v.split_once('@') {
        Some((user, host)) => {
            !user.is_empty() && host.contains('.') && !host.starts_with('.') && !v.contains(' ')
        }
        None => false,
    }
}

/// Writes answers into an app's `.env` text (made from the sample `form` was derived from):
/// enabled options' settings uncommented in place with their values, their overlays added to
/// `COMPOSE_FILE`. Call [`validate`] first. Secrets are not written (see the module's text).
pub fn apply(env_text: &str, form: &Form, a: &Answers) -> Result<String, EnvError> {
    let mut lines: Vec<String> = env_text.lines().map(str::to_string).collect();
    let mut extra = Vec::new();
    for o in form.options.iter().filter(|o| a.options.contains(&o.id)) {
        for f in &o.fields {
            let v = a.values.get(&f.key).unwrap_or(&f.default);
            set_line(&mut lines, f.line, &f.key, v)?;
        }
        for s in &o.secrets {
            let idx = s.line - 1;
            if let Some(raw) = lines.get(idx) {
                let uncommented = raw.trim().trim_start_matches('#').trim().to_string();
                lines[idx] = uncommented;
            }
        }
        extra.extend(o.overlays.iter().cloned());
    }
    let mut text = lines.join("\n");
    if env_text.ends_with('\n') {
        text.push('\n');
    }
    if extra.is_empty() {
        return Ok(text);
    }
    let mut env = EnvFile::parse(&text)?;
    let mut list = base_overlays(&env);
    for o in extra {
        if !list.contains(&o) {
            list.push(o);
        }
    }
    env.set("COMPOSE_FILE", &list.join(":"));
    Ok(env.render())
}

fn set_line(lines: &mut [String], line: usize, key: &str, value: &str) -> Result<(), EnvError> {
    let Some(raw) = lines.get(line - 1) else {
        return Err(EnvError {
            line,
            message: format!("{key}: the env file is shorter than the sample it came from"),
        });
    };
    if !raw
        .trim_start()
        .trim_start_matches('#')
        .trim_start()
        .starts_with(key)
    {
        return Err(EnvError {
            line,
            message: format!(
                "expected the line of {key} here: the env file differs from its sample"
            ),
        });
    }
    // Quoted the way `EnvFile::set` writes a value, so the parser reads it back.
    lines[line - 1] = format!("{key}={}", crate::envfile::quote(value));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "TYPE=demo
DOMAIN=demo.example.com
COMPOSE_FILE=\"compose.yml\"
SECRET_DB_PASSWORD_VERSION=v1
SECRET_API_KEY_VERSION=v1 # generate=false length=8

## Outgoing mail
#COMPOSE_FILE=\"$COMPOSE_FILE:compose.smtp.yml\"
#SMTP_HOST=
#SMTP_PORT=587
#SMTP_FROM=noreply@example.com
#SECRET_SMTP_PASSWORD_VERSION=v1 # generate=false

## Single sign-on
#COMPOSE_FILE=\"compose.yml:compose.sso.yml\"
#SSO_ENABLED=true

# uncomment to pin a version
#APP_VERSION=latest
";

    #[test]
    fn options_come_from_commented_overlay_blocks() {
        let f = derive(SAMPLE).unwrap();
        let ids: Vec<&str> = f.options.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["smtp", "sso"]);
        let mail = &f.options[0];
        assert_eq!(mail.title, "Outgoing mail");
        assert_eq!(mail.overlays, ["compose.smtp.yml"]);
        let keys: Vec<(&str, FieldKind, bool)> = mail
            .fields
            .iter()
            .map(|x| (x.key.as_str(), x.kind, x.required()))
            .collect();
        assert_eq!(
            keys,
            [
                ("SMTP_HOST", FieldKind::Text, true),
                ("SMTP_PORT", FieldKind::Number, false),
                ("SMTP_FROM", FieldKind::Email, false)
            ]
        );
        assert_eq!(mail.secrets[0].name, "smtp_password");
        assert_eq!(f.options[1].fields[0].kind, FieldKind::Flag);
        assert_eq!(f.secrets.len(), 1, "only the generate=false one");
        assert_eq!(f.secrets[0].name, "api_key");
        assert_eq!(f.secrets[0].length, Some(8));
    }

    #[test]
    fn answers_are_checked_field_by_field() {
        let f = derive(SAMPLE).unwrap();
        let mut a = Answers::default();
        a.options.insert("smtp".into());
        a.options.insert("nope".into());
        a.values.insert("SMTP_PORT".into(), "5x".into());
        a.values.insert("SMTP_FROM".into(), "not-an-email".into());
        a.secrets.insert("api_key".into(), "short".into());
        let errors: BTreeMap<String, String> = validate(&f, &a)
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect();
        assert!(errors["nope"].contains("no option"));
        assert!(errors["SMTP_HOST"].contains("required when \"Outgoing mail\" is on"));
        assert!(errors["SMTP_PORT"].contains("whole number"));
        assert!(errors["SMTP_FROM"].contains("email address"));
        assert!(errors["api_key"].contains("exactly 8"));
        assert!(errors["smtp_password"].contains("required"));
        // Off, the option's fields are not asked.
        a.options.remove("smtp");
        a.options.remove("nope");
        a.secrets.insert("api_key".into(), "12345678".into());
        assert_eq!(validate(&f, &a), Vec::new());
    }

    #[test]
    fn answers_land_in_the_env_in_place() {
        let f = derive(SAMPLE).unwrap();
        let mut a = Answers::default();
        a.options.insert("smtp".into());
        a.options.insert("sso".into());
        a.values
            .insert("SMTP_HOST".into(), "mail.coop.example".into());
        a.values
            .insert("SMTP_FROM".into(), "Radio <radio@coop.example>".into());
        let out = apply(SAMPLE, &f, &a).unwrap();
        let env = EnvFile::parse(&out).unwrap();
        assert_eq!(
            env.get("COMPOSE_FILE"),
            Some("compose.yml:compose.smtp.yml:compose.sso.yml")
        );
        assert_eq!(env.get("SMTP_HOST"), Some("mail.coop.example"));
        assert_eq!(env.get("SMTP_PORT"), Some("587"));
        assert_eq!(env.get("SMTP_FROM"), Some("Radio <radio@coop.example>"));
        assert_eq!(env.get("SECRET_SMTP_PASSWORD_VERSION"), Some("v1"));
        assert_eq!(env.get("SSO_ENABLED"), Some("true"));
        assert_eq!(
            env.get("APP_VERSION"),
            None,
            "the rest keeps the sample's default"
        );
        assert!(out.contains("## Outgoing mail"), "comments stay");
        assert_eq!(
            out.lines().count(),
            SAMPLE.lines().count(),
            "nothing added or lost"
        );
        // Nothing switched on: the env is unchanged.
        assert_eq!(apply(SAMPLE, &f, &Answers::default()).unwrap(), SAMPLE);
    }
}
