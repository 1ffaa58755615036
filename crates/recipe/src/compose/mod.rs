//! Compose loading: `compose.yml` plus overlays → one typed, interpolated stack.
//!
//! Pipeline, per file: YAML (1.1 scalars, anchors, merge keys) → interpolation of every string
//! value from the deploy environment (with Docker's casts of interpolated strings to numbers
//! and booleans at known paths) → schema check and canonical forms → typed model. Then the files
//! are merged in `COMPOSE_FILE` order. Interpolation comes before type checks, so a duration or
//! a port may come from the environment.

pub mod duration;
mod merge;
pub mod model;
mod parse;

use std::fmt;

pub use duration::Duration;
pub use model::*;
/// A compose file of a recipe, by name (`compose.yml`, `compose.smtp.yml`,
/// `postgres/compose.postgres.tune.yml`).
pub fn is_compose_file(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.starts_with("compose") && base.ends_with(".yml")
}

pub use parse::{clean_relative, parse_port_spec, parse_ram, parse_volume_spec};

use crate::interpolate::{substitute, SubstError};
use crate::yaml::{self, Node, Pos, Value, YamlError};

/// The compose file version Docker assumes when a file has no `version:` key.
pub const DEFAULT_VERSION: &str = "3.13";
pub use parse::{schema_minor, LATEST_MINOR};

/// Why a stack could not be loaded. Every variant names the file and, where there is one, the
/// line and column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComposeError {
    #[error("{file}:{}:{}: {message}", pos.line, pos.col)]
    At {
        file: String,
        pos: Pos,
        message: String,
    },
    #[error("{file}: invalid YAML at line {}, column {}: {}", .source.pos.line, .source.pos.col, .source.message)]
    Yaml {
        file: String,
        #[source]
        source: YamlError,
    },
    #[error(
        "{file} declares version {theirs:?} but {first} declares {ours:?}; Docker refuses to merge \
         files of different versions: write version: {ours:?} in {file}"
    )]
    VersionMismatch {
        first: String,
        ours: String,
        file: String,
        theirs: String,
    },
}

/// One compose file's name (as written in `COMPOSE_FILE`) and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// Looks a variable up in the deploy environment.
pub trait Env {
    fn get(&self, key: &str) -> Option<&str>;
}

impl<S: std::hash::BuildHasher> Env for std::collections::HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        std::collections::HashMap::get(self, key).map(String::as_str)
    }
}

impl Env for indexmap::IndexMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        indexmap::IndexMap::get(self, key).map(String::as_str)
    }
}

/// One compose file, loaded and interpolated but not yet merged.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    pub name: String,
    pub compose: Compose,
}

/// Loads one compose file: YAML, interpolation, schema check, canonical forms.
pub fn load_file(
    file: &SourceFile,
    env: &dyn Env,
    read: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedFile, ComposeError> {
    let lookup = |k: &str| env.get(k).map(str::to_string);
    let mut root = yaml::parse(&file.text).map_err(|source| ComposeError::Yaml {
        file: file.name.clone(),
        source,
    })?;
    let ctx = parse::Ctx {
        file: &file.name,
        lookup: &lookup,
        read,
    };
    interpolate_tree(&ctx, &mut root, &mut Vec::new(), env)?;
    let loaded = parse::load_file(&ctx, &root)?;
    let mut compose = loaded.compose;
    compose.version = loaded
        .version
        .map(|(v, _)| v)
        .unwrap_or_else(|| DEFAULT_VERSION.to_string());
    Ok(LoadedFile {
        name: file.name.clone(),
        compose,
    })
}

/// Merges loaded files in order (the first is the base).
pub fn merge_files<'a>(
    files: impl IntoIterator<Item = &'a LoadedFile>,
) -> Result<Compose, ComposeError> {
    let mut iter = files.into_iter();
    let Some(first) = iter.next() else {
        return Ok(Compose::default());
    };
    let mut base = first.compose.clone();
    for file in iter {
        if file.compose.version != base.version {
            return Err(ComposeError::VersionMismatch {
                first: first.name.clone(),
                ours: base.version.clone(),
                file: file.name.clone(),
                theirs: file.compose.version.clone(),
            });
        }
        merge::merge(&mut base, file.compose.clone());
    }
    Ok(base)
}

/// Loads and merges compose files in order. `read` gives other recipe files by path (for
/// `env_file`).
pub fn load(
    files: &[SourceFile],
    env: &dyn Env,
    read: &dyn Fn(&str) -> Option<String>,
) -> Result<Compose, ComposeError> {
    let loaded = files
        .iter()
        .map(|f| load_file(f, env, read))
        .collect::<Result<Vec<_>, _>>()?;
    merge_files(&loaded)
}

#[derive(Clone, Copy)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// Paths at which Docker turns an interpolated string back into a number or boolean.
const CASTS: &[(&str, Cast)] = &[
    ("services.*.configs.[].mode", Cast::Int),
    ("services.*.secrets.[].mode", Cast::Int),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.ports.[].published", Cast::Int),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

fn cast_for(path: &[String]) -> Option<Cast> {
    CASTS.iter().find_map(|(pattern, cast)| {
        let parts: Vec<&str> = pattern.split('.').collect();
        (parts.len() == path.len() && parts.iter().zip(path).all(|(p, seg)| *p == "*" || p == seg))
            .then_some(*cast)
    })
}

struct PathDisplay<'a>(&'a [String]);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in self.0 {
            if seg == "[]" {
                f.write_str("[]")?;
            } else {
                if !first {
                    f.write_str(".")?;
                }
                f.write_str(seg)?;
            }
            first = false;
        }
        Ok(())
    }
}

fn interpolate_tree(
    ctx: &parse::Ctx,
    node: &mut Node,
    path: &mut Vec<String>,
    env: &dyn Env,
) -> Result<(), ComposeError> {
    match &mut node.value {
        Value::Str(s) => {
            let new = substitute(s, |k| env.get(k)).map_err(|e| {
                let hint = match &e {
                    SubstError::Required { name, .. } => {
                        format!(" (set {name} in the app's .env)")
                    }
                    SubstError::Invalid { .. } => String::new(),
                };
                ctx.err(
                    node.pos,
                    &PathDisplay(path).to_string(),
                    format!("{e}{hint}"),
                )
            })?;
            if new != *s {
                node.value = match cast_for(path) {
                    None => Value::Str(new),
                    Some(cast) => cast_value(&new, cast).ok_or_else(|| {
                        let want = match cast {
                            Cast::Int => "a whole number",
                            Cast::Float => "a number",
                            Cast::Bool => "true or false",
                        };
                        ctx.err(
                            node.pos,
                            &PathDisplay(path).to_string(),
                            format!("interpolated to {new:?}, which is not {want}"),
                        )
                    })?,
                };
            }
        }
        Value::Seq(items) => {
            for item in items {
                path.push("[]".into());
                interpolate_tree(ctx, item, path, env)?;
                path.pop();
            }
        }
        Value::Map(m) => {
            for (k, v) in &mut m.entries {
                path.push(k.name.clone());
                interpolate_tree(ctx, v, path, env)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

fn cast_value(text: &str, cast: Cast) -> Option<Value> {
    match cast {
        Cast::Int => text.parse::<i64>().ok().map(Value::Int),
        Cast::Float => text.parse::<f64>().ok().map(Value::Float),
        Cast::Bool => match text.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Some(Value::Bool(true)),
            "n" | "no" | "false" | "off" => Some(Value::Bool(false)),
            _ => None,
        },
    }
}
