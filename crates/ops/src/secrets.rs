//! `app secret generate|insert|ls|rm`.
//!
//! Generated values are returned to the caller exactly once (to show the operator) and sent to
//! the engine; they are never written to records, logs or files.

use cooper_recipe::abra_dir::AbraDir;
use cooper_recipe::secrets::{self, Recipe, SecretSpec, SecretValue};
use cooper_recipe::stack::{self, VersionChoice};
use serde::Serialize;

use crate::op::{self, Envelope, Op};
use crate::{connect, OpsError, Reporter, Result};

/// A secret of an app and whether it exists on the server.
#[derive(Debug, Clone, Serialize)]
pub struct SecretStatus {
    pub name: String,
    pub version: String,
    pub swarm_name: String,
    pub created_on_server: bool,
    /// `generate=false`: the operator inserts it.
    pub manual: bool,
}

/// The secrets an app's recipe (at its recorded version, or the working tree with `chaos`)
/// needs.
pub fn specs(abra: &AbraDir, domain: &str, chaos: bool) -> Result<(String, Vec<SecretSpec>)> {
    let app = abra.app(domain)?;
    let files = abra.app_files(
        &app,
        &VersionChoice {
            explicit: None,
            chaos,
        },
    )?;
    let loaded = stack::load(domain, &app.env, &files)?;
    let list = secrets::app_secrets(&loaded.compose, &app.env, &files, &loaded.compose_files)
        .map_err(|e| OpsError::Refused(format!("{}: {e}", app.at.path.display())))?;
    Ok((loaded.name, list))
}

/// Lists an app's secrets and whether each exists on the server.
pub async fn list(abra: &AbraDir, domain: &str) -> Result<Vec<SecretStatus>> {
    let app = abra.app(domain)?;
    let (_, list) = specs(abra, domain, false)?;
    let engine = connect(abra, &app.at.server).await?;
    let names: Vec<String> = list.iter().map(|s| s.swarm_name.clone()).collect();
    let existing = engine.existing_secrets(&names).await?;
    Ok(list
        .into_iter()
        .map(|s| SecretStatus {
            created_on_server: existing.contains(&s.swarm_name),
            manual: s.recipe == Recipe::Manual,
            name: s.key,
            version: s.version,
            swarm_name: s.swarm_name,
        })
        .collect())
}

/// Generates and stores secrets that do not exist yet: all of them, or those named.
/// Returns (key, swarm name, value) for each one created; values are shown once by the caller.
pub async fn generate(
    abra: &AbraDir,
    domain: &str,
    only: &[String],
    version: Option<&str>,
    reporter: &mut dyn Reporter,
) -> Result<Vec<(String, String, SecretValue)>> {
    let envelope = Envelope::locked("app secret generate", domain);
    let done = op::run(abra, envelope, reporter, async |op: &mut Op<'_>| {
        generate_in(op, only, version).await
    })
    .await?;
    Ok(done.value)
}

async fn generate_in(
    op: &mut Op<'_>,
    only: &[String],
    version: Option<&str>,
) -> Result<Vec<(String, String, SecretValue)>> {
    let (abra, domain) = (op.abra, op.app.at.domain.clone());
    let domain = domain.as_str();
    let (stack_name, list) = specs(abra, domain, false)?;
    for name in only {
        if let (Some(v), Some(spec)) = (version, list.iter().find(|s| &s.key == name)) {
            if spec.version != v {
                return Err(OpsError::Refused(format!(
                    "{domain}'s .env sets secret {name} to version {}, not {v}; change {} in the .env first",
                    spec.version,
                    spec.version_var.as_deref().unwrap_or("its version variable")
                )));
            }
        }
        if !list.iter().any(|s| &s.key == name) {
            return Err(OpsError::Refused(format!(
                "{domain} has no secret {name}; its secrets: {}",
                list.iter()
                    .map(|s| s.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let engine = op.connect().await?;
    let names: Vec<String> = list.iter().map(|s| s.swarm_name.clone()).collect();
    let existing = engine.existing_secrets(&names).await?;
    let record = &mut op.record;
    let mut created = Vec::new();
    for s in &list {
        if !only.is_empty() && !only.contains(&s.key) {
            continue;
        }
        if existing.contains(&s.swarm_name) {
            continue;
        }
        let Some(value) = secrets::generate(&s.recipe) else {
            if !only.is_empty() {
                return Err(OpsError::Refused(format!(
                    "secret {} is marked generate=false; insert it with `cooper app secret insert {domain} {} {}`",
                    s.key, s.key, s.version
                )));
            }
            continue;
        };
        let t = std::time::Instant::now();
        engine
            .create_secret(&s.swarm_name, &stack_name, &value)
            .await?;
        record.step("create secret", s.swarm_name.clone(), true, t);
        created.push((s.key.clone(), s.swarm_name.clone(), value));
    }
    Ok(created)
}

/// Stores a given value as secret `key` at `version`.
pub async fn insert(
    abra: &AbraDir,
    domain: &str,
    key: &str,
    version: &str,
    value: &SecretValue,
    reporter: &mut dyn Reporter,
) -> Result<String> {
    let envelope = Envelope::locked("app secret insert", domain);
    let done = op::run(abra, envelope, reporter, async |op: &mut Op<'_>| {
        insert_in(op, key, version, value).await
    })
    .await?;
    Ok(done.value)
}

async fn insert_in(
    op: &mut Op<'_>,
    key: &str,
    version: &str,
    value: &SecretValue,
) -> Result<String> {
    let (abra, domain) = (op.abra, op.app.at.domain.clone());
    let domain = domain.as_str();
    let (stack_name, list) = specs(abra, domain, false)?;
    let swarm_name = match list.iter().find(|s| s.key == key) {
        Some(s) if s.version == version => s.swarm_name.clone(),
        Some(s) => s.swarm_name.rsplit_once('_').map_or_else(
            || format!("{stack_name}_{key}_{version}"),
            |(prefix, _)| format!("{prefix}_{version}"),
        ),
        None => {
            return Err(OpsError::Refused(format!(
                "{domain} has no secret {key}; its secrets: {}",
                list.iter()
                    .map(|s| s.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    if value.expose().is_empty() {
        return Err(OpsError::Refused(
            "the secret value is empty; nothing was stored".into(),
        ));
    }
    let engine = op.connect().await?;
    if !engine
        .existing_secrets(std::slice::from_ref(&swarm_name))
        .await?
        .is_empty()
    {
        return Err(OpsError::Refused(format!(
            "secret {swarm_name} already exists and Swarm secrets cannot change; bump its version \
             in the app's .env and insert the new one, or remove it first with `cooper app secret rm {domain} {key}`"
        )));
    }
    let t = std::time::Instant::now();
    engine
        .create_secret(&swarm_name, &stack_name, value)
        .await?;
    op.record.step("create secret", swarm_name.clone(), true, t);
    Ok(swarm_name)
}

/// Removes secrets (by key, or all of the app's) from the server.
pub async fn remove(abra: &AbraDir, domain: &str, only: &[String]) -> Result<Vec<String>> {
    let app = abra.app(domain)?;
    let (_, list) = specs(abra, domain, false)?;
    let engine = connect(abra, &app.at.server).await?;
    let mut removed = Vec::new();
    for s in &list {
        if (only.is_empty() || only.contains(&s.key)) && engine.remove_secret(&s.swarm_name).await?
        {
            removed.push(s.swarm_name.clone());
        }
    }
    Ok(removed)
}
