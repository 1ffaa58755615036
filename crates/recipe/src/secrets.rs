//! The Docker secrets an app needs, and generating their values.
//!
//! A secret's Swarm name comes from its compose `name:` (`${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION:-v1}`);
//! the version variable is read from that template (recipes do not always name it after the
//! key), and the modifiers on that variable's line in the app `.env` decide how a value is
//! made: `length=N` (random characters instead of a passphrase), `charset=…`,
//! `generate=false` (the operator inserts it).
//!
//! Values are `SecretValue`s: their `Debug` and `Display` never show the value.

use std::collections::BTreeMap;
use std::fmt;

use rand::{Rng, TryRngCore};

use crate::compose::Compose;
use crate::envfile::{EnvFile, Modifiers};
use crate::repo::RecipeFiles;

/// A secret value. Printing it (`{}` or `{:?}`) shows `<redacted>`; use [`SecretValue::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    /// The value itself, for sending to the engine or showing once to the operator.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Character sets for `length=` secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Letters and digits (abra's `default`, also `alnum`).
    Alnum,
    /// Lower-case hexadecimal.
    Hex,
    /// Letters, digits and shell-safe punctuation (`special`, `safespecial`).
    Special,
}

impl Charset {
    fn parse(word: &str) -> Option<Charset> {
        match word {
            "default" | "alnum" | "alphanumeric" => Some(Charset::Alnum),
            "hex" => Some(Charset::Hex),
            "special" | "safespecial" => Some(Charset::Special),
            _ => None,
        }
    }

    fn alphabet(self) -> &'static [u8] {
        match self {
            Charset::Alnum => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            Charset::Hex => b"0123456789abcdef",
            Charset::Special => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#%+,-.:=@^_~"
            }
        }
    }
}

/// How a secret's value is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipe {
    /// Words from the EFF large list joined by `-` (the default).
    Passphrase { words: usize },
    /// `length` characters from a charset.
    Password { length: usize, charset: Charset },
    /// Never generated: `generate=false`.
    Manual,
}

/// One secret of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// The compose key (`db_password`).
    pub key: String,
    /// The Swarm secret name (`example_org_db_password_v1`).
    pub swarm_name: String,
    /// The version part (`v1`).
    pub version: String,
    /// The `.env` variable holding the version, when the template names one.
    pub version_var: Option<String>,
    pub recipe: Recipe,
}

/// An error in a secret's modifiers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct SecretError {
    pub var: String,
    pub message: String,
}

/// Words in a generated passphrase (about 65 bits from the 7776-word list).
pub const PASSPHRASE_WORDS: usize = 5;

fn recipe_from(mods: Option<&Modifiers>, var: &str) -> Result<Recipe, SecretError> {
    let Some(m) = mods else {
        return Ok(Recipe::Passphrase {
            words: PASSPHRASE_WORDS,
        });
    };
    if !m.generate() {
        return Ok(Recipe::Manual);
    }
    let charset = match m.charset() {
        None => Charset::Alnum,
        Some(c) => Charset::parse(c).ok_or_else(|| SecretError {
            var: var.to_string(),
            message: format!("unknown charset={c}; use alnum, hex or special"),
        })?,
    };
    match m.length() {
        None if m.charset().is_some() => Ok(Recipe::Password {
            length: 32,
            charset,
        }),
        None => Ok(Recipe::Passphrase {
            words: PASSPHRASE_WORDS,
        }),
        Some(Ok(length)) => Ok(Recipe::Password { length, charset }),
        Some(Err(message)) => Err(SecretError {
            var: var.to_string(),
            message,
        }),
    }
}

/// The variable used in a `name:` template, e.g. `SECRET_DB_PASSWORD_VERSION` in
/// `${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION:-v1}`.
fn version_var(template: &str) -> Option<String> {
    let mut vars = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        vars.push(&after[..end]);
        rest = &after[end..];
    }
    vars.into_iter()
        .rev()
        .find(|v| *v != "STACK_NAME" && !v.is_empty())
        .map(str::to_string)
}

/// The raw `name:` templates of top-level secrets in the compose files an app uses.
fn name_templates(files: &RecipeFiles, compose_files: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in compose_files {
        let Some(tree) = files.text(name).and_then(|t| crate::yaml::parse(&t).ok()) else {
            continue;
        };
        let Some(secrets) = tree
            .as_map()
            .and_then(|m| m.get("secrets"))
            .and_then(|s| s.as_map())
        else {
            continue;
        };
        for (k, v) in &secrets.entries {
            if let Some(t) = v
                .as_map()
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
            {
                out.insert(k.name.clone(), t.to_string());
            }
        }
    }
    out
}

/// The secrets an app's stack uses (only those a service references).
pub fn app_secrets(
    compose: &Compose,
    app_env: &EnvFile,
    files: &RecipeFiles,
    compose_files: &[String],
) -> Result<Vec<SecretSpec>, SecretError> {
    let templates = name_templates(files, compose_files);
    let used: std::collections::BTreeSet<&str> = compose
        .services
        .values()
        .flat_map(|s| s.secrets.iter().map(|r| r.source.as_str()))
        .collect();
    let mut out = Vec::new();
    for (key, def) in &compose.secrets {
        if !used.contains(key.as_str()) {
            continue;
        }
        let var = templates.get(key).and_then(|t| version_var(t));
        let swarm_name = if def.name.is_empty() {
            key.clone()
        } else {
            def.name.clone()
        };
        let version = swarm_name
            .rsplit('_')
            .next()
            .unwrap_or_default()
            .to_string();
        let mods = var.as_deref().and_then(|v| app_env.modifiers(v));
        let recipe = recipe_from(mods, var.as_deref().unwrap_or(key))?;
        out.push(SecretSpec {
            key: key.clone(),
            swarm_name,
            version,
            version_var: var,
            recipe,
        });
    }
    Ok(out)
}

/// Makes a value with the operating system's cryptographic random source.
pub fn generate(recipe: &Recipe) -> Option<SecretValue> {
    let mut rng = rand::rngs::OsRng.unwrap_err();
    match recipe {
        Recipe::Manual => None,
        Recipe::Passphrase { words } => {
            let list = eff_wordlist::large::LIST;
            let chosen: Vec<&str> = (0..*words)
                .map(|_| list[rng.random_range(0..list.len())].1)
                .collect();
            Some(SecretValue(chosen.join("-")))
        }
        Recipe::Password { length, charset } => {
            let alphabet = charset.alphabet();
            let value: String = (0..*length)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
                .collect();
            Some(SecretValue(value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_never_printed() {
        let v = SecretValue::new("hunter2");
        assert_eq!(format!("{v} {v:?}"), "<redacted> <redacted>");
        assert_eq!(v.expose(), "hunter2");
    }

    #[test]
    fn generation_respects_modifiers() {
        let env = EnvFile::parse(
            "A_VERSION=v1 # length=64 charset=hex\nB_VERSION=v1 # generate=false\nC_VERSION=v1\nD_VERSION=v1 # charset=nope\n",
        )
        .unwrap();
        let a = recipe_from(env.modifiers("A_VERSION"), "A_VERSION").unwrap();
        let value = generate(&a).unwrap();
        assert_eq!(value.expose().len(), 64);
        assert!(value.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            recipe_from(env.modifiers("B_VERSION"), "B_VERSION").unwrap(),
            Recipe::Manual
        );
        let c = recipe_from(env.modifiers("C_VERSION"), "C_VERSION").unwrap();
        let phrase = generate(&c).unwrap();
        assert_eq!(phrase.expose().split('-').count(), PASSPHRASE_WORDS);
        let err = recipe_from(env.modifiers("D_VERSION"), "D_VERSION").unwrap_err();
        assert!(err.to_string().contains("charset=nope"));
        // Two values differ (a broken RNG would not).
        assert_ne!(generate(&a), generate(&a));
    }

    #[test]
    fn version_variable_comes_from_the_template() {
        assert_eq!(
            version_var(
                "${STACK_NAME}_orchid_client_secret_${SECRET_ORCID_CLIENT_SECRET_VERSION:-v1}"
            )
            .as_deref(),
            Some("SECRET_ORCID_CLIENT_SECRET_VERSION")
        );
        assert_eq!(
            version_var("${STACK_NAME}_ovh_consumer_key_${SECRET_OVH_CONSUMER_KEY}").as_deref(),
            Some("SECRET_OVH_CONSUMER_KEY")
        );
        assert_eq!(version_var("fixed_name"), None);
    }
}
