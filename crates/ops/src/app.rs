//! `app new`: an app's `.env` made from its recipe's `.env.sample` (at a release, or the
//! working tree), with the setup wizard's answers written in when there are some. The CLI's
//! `cooper app new` and the dashboard's provisioning both come here.

use std::path::PathBuf;

use cooper_recipe::abra_dir::{write_atomic, AbraDir};
use cooper_recipe::envfile::{EnvFile, RecipeRef};
use cooper_recipe::repo::Origin;
use cooper_recipe::stack::{self, VersionChoice};
use cooper_recipe::wizard;

use crate::{OpsError, Result};

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct NewApp {
    pub server: String,
    pub domain: String,
    pub recipe: String,
    /// A release (or any revision); none: the newest release, else the working tree.
    pub version: Option<String>,
    /// The working tree, whatever is committed.
    pub chaos: bool,
    /// The wizard's answers (options, values); secrets in it are ignored here.
    pub answers: Option<wizard::Answers>,
    /// Settings to start from instead of the sample (an export's `settings.env`, moving an
    /// instance in); the recipe line and DOMAIN are still written by this function.
    pub settings: Option<String>,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct Created {
    pub path: PathBuf,
    /// The release the `.env` came from (`None`: the working tree).
    pub version: Option<String>,
    /// How the origin reads (`1.2.0+3.1` or `the working tree`).
    pub origin: String,
    /// The questions the sample asks, when answers were given.
    pub form: Option<wizard::Form>,
}

/// Writes a new app's `.env`. Refuses an app that exists already, a recipe without
/// `.env.sample`, and answers the sample's questions refuse (naming the field).
pub fn create(abra: &AbraDir, req: &NewApp) -> Result<Created> {
    let path = abra.new_app_path(&req.server, &req.domain)?;
    let repo = abra.recipe(&req.recipe)?;
    let choice = VersionChoice {
        explicit: req.version.clone(),
        chaos: req.chaos,
    };
    let files = stack::select_files(&repo, None, &choice)?;
    let sample = files.text(".env.sample").ok_or_else(|| {
        OpsError::Refused(format!(
            "recipe {} at {} has no .env.sample (lint rule R008); add one to the recipe",
            req.recipe, files.origin
        ))
    })?;
    let sample_error = |e: cooper_recipe::envfile::EnvError| {
        OpsError::Refused(format!("recipe {} .env.sample: {e}", req.recipe))
    };
    // Answers are written on the sample's own lines first (they are found by line number).
    let mut form = None;
    let text = match &req.answers {
        _ if req.settings.is_some() => req.settings.clone().unwrap_or_default(),
        Some(a) => {
            let form = form.insert(wizard::derive(&sample).map_err(sample_error)?);
            let problems = wizard::validate(form, &a.secrets_given_elsewhere(form));
            if let Some(p) = problems.first() {
                return Err(OpsError::Refused(format!(
                    "the answer for {} does not fit {} {}: {}",
                    p.field, req.recipe, files.origin, p.message
                )));
            }
            wizard::apply(&sample, form, a).map_err(sample_error)?
        }
        None => sample,
    };
    let mut env = EnvFile::parse(&text).map_err(sample_error)?;
    let mut recipe = RecipeRef::from_env(&env).unwrap_or(RecipeRef {
        key: "TYPE",
        name: req.recipe.clone(),
        version: None,
    });
    recipe.name = req.recipe.clone();
    let version = match &files.origin {
        Origin::Tag { version, .. } => Some(version.clone()),
        _ => None,
    };
    recipe.version = version.clone();
    env.set(recipe.key, &recipe.value());
    env.set("DOMAIN", &req.domain);
    write_atomic(&path, env.render().as_bytes())?;
    Ok(Created {
        path,
        version,
        origin: files.origin.to_string(),
        form,
    })
}
