//! Records: every operation leaves one (what, when, each step with its outcome and timing),
//! which the CLI prints and the future dashboard stores. Records hold names and outcomes,
//! never secret values: nothing that carries a value is ever put in a step.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One step of an operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub stage: String,
    pub detail: String,
    pub ok: bool,
    pub started: String,
    pub millis: u64,
}

/// The record of one operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub operation: String,
    pub app: String,
    pub server: String,
    pub recipe: String,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub started: String,
    pub finished: Option<String>,
    pub ok: Option<bool>,
    pub steps: Vec<Step>,
    pub error: Option<String>,
    /// What else the operation knows (snapshot ids, sizes, …); never secret values.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub details: std::collections::BTreeMap<String, serde_json::Value>,
}

pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Record {
    pub fn new(operation: &str, app: &str, server: &str, recipe: &str) -> Record {
        Record {
            operation: operation.to_string(),
            app: app.to_string(),
            server: server.to_string(),
            recipe: recipe.to_string(),
            from_version: None,
            to_version: None,
            started: now(),
            finished: None,
            ok: None,
            steps: Vec::new(),
            error: None,
            details: Default::default(),
        }
    }

    /// Adds a finished step.
    pub fn step(&mut self, stage: &str, detail: impl Into<String>, ok: bool, since: Instant) {
        self.steps.push(Step {
            stage: stage.to_string(),
            detail: detail.into(),
            ok,
            started: now(),
            millis: since.elapsed().as_millis() as u64,
        });
    }

    pub fn finish(&mut self, result: Result<(), String>) {
        self.finished = Some(now());
        self.ok = Some(result.is_ok());
        self.error = result.err();
    }

    /// Marks the record finished with an operation's result.
    pub fn finish_with<T, E: std::fmt::Display>(&mut self, result: &std::result::Result<T, E>) {
        self.finish(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
    }

    /// Writes the record under `<abra_dir>/cooper/records/<app>/`; returns its path.
    /// Where [`Record::save`] puts the record.
    pub fn path(&self, abra_dir: &Path) -> PathBuf {
        let stamp = self.started.replace([':', '-'], "");
        abra_dir
            .join("cooper")
            .join("records")
            .join(&self.app)
            .join(format!("{stamp}-{}.json", self.operation.replace(' ', "-")))
    }

    pub fn save(&self, abra_dir: &Path) -> std::io::Result<PathBuf> {
        let path = self.path(abra_dir);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

/// The records of an app, oldest first.
pub fn list(abra_dir: &Path, app: &str) -> Vec<Record> {
    let dir = abra_dir.join("cooper").join("records").join(app);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|it| it.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect()
}
