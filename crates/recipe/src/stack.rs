//! From an app (its `.env`) and its recipe's files to the stack a deploy would send.
//!
//! The deploy environment is the app `.env`, then the recipe's `abra.sh` exports (which win, as
//! in abra, so a recipe's config versions apply), then `STACK_NAME` when the `.env` does not set
//! it. Compose files come from `COMPOSE_FILE` (colon-separated, in order; `compose.yml` when
//! unset).

use std::collections::BTreeMap;

use indexmap::IndexMap;

use crate::abrash::AbraSh;
use crate::compose::{self, Compose, ComposeError, SourceFile};
use crate::envfile::EnvFile;
use crate::repo::RecipeFiles;

/// abra truncates stack names to this many characters to stay within Docker's name limits.
pub const MAX_STACK_NAME: usize = 45;

/// Errors building a stack.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "COMPOSE_FILE names {file:?}, which is not in recipe {recipe} at {origin}; compose files there: {available}; \
         fix COMPOSE_FILE in the app's .env (`cooper app config <domain>`)",
        available = if .available.is_empty() { "none".to_string() } else { .available.join(", ") }
    )]
    MissingComposeFile {
        file: String,
        recipe: String,
        origin: String,
        available: Vec<String>,
    },
    #[error("{0}")]
    Compose(#[from] ComposeError),
}

/// `example.com` → `example_com`, truncated as abra does.
pub fn stack_name(domain: &str) -> String {
    let mut s: String = domain.replace('.', "_");
    if s.len() > MAX_STACK_NAME {
        let mut cut = MAX_STACK_NAME;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// The compose files an app uses, in order.
pub fn compose_files(env: &EnvFile) -> Vec<String> {
    match env.get("COMPOSE_FILE") {
        Some(list) if !list.trim().is_empty() => list
            .split(':')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(compose::clean_relative)
            .collect(),
        _ => vec!["compose.yml".to_string()],
    }
}

/// The environment compose files are interpolated with.
pub fn deploy_env(
    domain: &str,
    app_env: &EnvFile,
    abra_sh: Option<&AbraSh>,
) -> IndexMap<String, String> {
    let mut env = app_env.values();
    if let Some(sh) = abra_sh {
        for (k, v) in &sh.exports {
            env.insert(k.clone(), v.clone());
        }
    }
    if !env.contains_key("STACK_NAME") {
        env.insert("STACK_NAME".into(), stack_name(domain));
    }
    env
}

/// A loaded stack and how it was made.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub compose: Compose,
    pub compose_files: Vec<String>,
}

fn missing_file(files: &RecipeFiles, name: &str) -> StackError {
    StackError::MissingComposeFile {
        file: name.to_string(),
        recipe: files.recipe.clone(),
        origin: files.origin.to_string(),
        available: files
            .paths()
            .filter(|p| {
                let base = p.rsplit('/').next().unwrap_or(p);
                base.starts_with("compose") && (base.ends_with(".yml") || base.ends_with(".yaml"))
            })
            .map(str::to_string)
            .collect(),
    }
}

/// Loads compose files of one recipe with one environment, each file at most once, for tools
/// that look at many `COMPOSE_FILE` combinations (lint, version listings).
pub struct ComposeCache<'a> {
    files: &'a RecipeFiles,
    env: IndexMap<String, String>,
    loaded: std::cell::RefCell<BTreeMap<String, Result<compose::LoadedFile, ComposeError>>>,
}

impl<'a> ComposeCache<'a> {
    pub fn new(domain: &str, app_env: &EnvFile, files: &'a RecipeFiles) -> Self {
        let abra_sh = files.text("abra.sh").map(|t| AbraSh::parse(&t));
        ComposeCache {
            files,
            env: deploy_env(domain, app_env, abra_sh.as_ref()),
            loaded: Default::default(),
        }
    }

    /// The stack made of these compose files, in order.
    pub fn load(&self, names: &[String]) -> Result<Compose, StackError> {
        let mut loaded = self.loaded.borrow_mut();
        for name in names {
            if loaded.contains_key(name) {
                continue;
            }
            let text = self
                .files
                .text(name)
                .ok_or_else(|| missing_file(self.files, name))?;
            let read = |p: &str| self.files.text(p);
            let result = compose::load_file(
                &SourceFile {
                    name: name.clone(),
                    text,
                },
                &self.env,
                &read,
            );
            loaded.insert(name.clone(), result);
        }
        let mut parts = Vec::with_capacity(names.len());
        for name in names {
            match &loaded[name] {
                Ok(f) => parts.push(f),
                Err(e) => return Err(StackError::Compose(e.clone())),
            }
        }
        Ok(compose::merge_files(parts)?)
    }
}

/// Loads the stack for an app from its recipe files.
pub fn load(domain: &str, app_env: &EnvFile, files: &RecipeFiles) -> Result<Stack, StackError> {
    let cache = ComposeCache::new(domain, app_env, files);
    let names = compose_files(app_env);
    let compose = cache.load(&names)?;
    Ok(Stack {
        name: cache
            .env
            .get("STACK_NAME")
            .cloned()
            .unwrap_or_else(|| stack_name(domain)),
        compose,
        compose_files: names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names() {
        assert_eq!(stack_name("bonfire.example.com"), "bonfire_example_com");
        let long = "a-very-long-subdomain-name.for-a-community.example.coop";
        let s = stack_name(long);
        assert_eq!(s.len(), MAX_STACK_NAME);
        assert!(long.replace('.', "_").starts_with(&s));
    }

    #[test]
    fn compose_file_list() {
        let env = EnvFile::parse(
            "COMPOSE_FILE=\"compose.yml\"\nCOMPOSE_FILE=\"$COMPOSE_FILE:./compose.x.yml\"\n",
        )
        .unwrap();
        assert_eq!(compose_files(&env), vec!["compose.yml", "compose.x.yml"]);
        assert_eq!(compose_files(&EnvFile::default()), vec!["compose.yml"]);
    }

    #[test]
    fn abra_sh_exports_win_and_stack_name_is_added() {
        let env = EnvFile::parse("A_VERSION=v1\nDOMAIN=x.org\n").unwrap();
        let sh = AbraSh::parse("export A_VERSION=v2\n");
        let e = deploy_env("x.org", &env, Some(&sh));
        assert_eq!(e["A_VERSION"], "v2");
        assert_eq!(e["STACK_NAME"], "x_org");
    }
}

/// How to choose the recipe files for an app.
#[derive(Debug, Clone, Default)]
pub struct VersionChoice {
    /// A tag or commit given on the command line.
    pub explicit: Option<String>,
    /// Use the working tree (chaos).
    pub chaos: bool,
}

/// Picks the recipe files for an app: chaos → working tree; an explicit version; the version
/// on the app's TYPE line; the newest release; or, for a recipe with no releases, the working
/// tree (reported as chaos by `Origin`).
pub fn select_files(
    repo: &crate::repo::RecipeRepo,
    recorded: Option<&str>,
    choice: &VersionChoice,
) -> Result<RecipeFiles, crate::repo::RepoError> {
    if choice.chaos {
        return repo.worktree();
    }
    if let Some(v) = choice.explicit.as_deref().or(recorded) {
        return repo.at_revision(v);
    }
    match repo.latest()? {
        Some(v) => repo.at_version(v.as_str()),
        None => repo.worktree(),
    }
}
