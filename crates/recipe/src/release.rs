//! Releasing a recipe, the pure part (`cooper recipe sync|release`): what changed since the last
//! release and how big a step that is, the next version, the version label, and the config
//! versions in `abra.sh` that must move because a config file changed.
//!
//! **Which step** (cooper's rule, from the maintainers' convention that abra applies by hand):
//! - **major** — operators must act on upgrade: a secret added, removed or re-versioned; a
//!   setting (an uncommented key of `.env.sample`) added or removed; a volume added or removed,
//!   or a service mounting volumes elsewhere;
//! - **minor** — a service image changed (a new upstream version);
//! - **patch** — anything else in the recipe changed (files other than `release/…` notes).
//!
//! The version is `<semver>+<upstream>`, the upstream part being the tag of the `app` service's
//! image (with `.env.sample` defaults interpolated; the service carrying the version label when
//! there is no `app`). A recipe's first release is `0.1.0+<upstream>`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::abrash::AbraSh;
use crate::envfile::EnvFile;
use crate::lint::{self, split_image};
use crate::repo::RecipeFiles;
use crate::stack;
use crate::upgrade::Bump;
use crate::version::RecipeVersion;

/// The label abra reads the deployed version from, as written in compose files.
pub const VERSION_LABEL: &str = "coop-cloud.${STACK_NAME}.version";

/// Why a release cannot be planned; each names the file and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("{recipe}: no service named app (or carrying the {VERSION_LABEL} label) in compose.yml; name the main service app (lint R009)")]
    NoAppService { recipe: String },
    #[error("{recipe}: the app service's image {image:?} has no tag, so there is no upstream version for the release; pin a tag in compose.yml")]
    NoUpstream { recipe: String, image: String },
    #[error("{recipe}: compose.yml does not load: {error}")]
    DoesNotLoad { recipe: String, error: String },
    #[error("config {config} ({file}) changed since {since} but its name {name:?} uses no version variable from abra.sh; name it ${{STACK_NAME}}_{config}_${{{suggested}}} and add `export {suggested}=v1` to abra.sh")]
    ConfigNotVersioned {
        config: String,
        file: String,
        since: String,
        name: String,
        suggested: String,
    },
    #[error("abra.sh: {variable}={value:?} has no number at its end to count up (config {config} changed); write it as v1, v2, …")]
    NotCountable {
        variable: String,
        value: String,
        config: String,
    },
    #[error("{file}: no {VERSION_LABEL} label and no deploy labels of the app service to add it to; add `- \"{VERSION_LABEL}=\"` under services.app.deploy.labels")]
    NoLabelPlace { file: String },
}

/// One reason for a release step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub bump: Bump,
    pub what: String,
}

/// What a release looks at in a set of recipe files, over every overlay combination.
#[derive(Debug, Default)]
struct Facts {
    images: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    env: BTreeSet<String>,
    volumes: BTreeSet<String>,
    mounts: BTreeMap<String, BTreeSet<String>>,
}

fn facts(files: &RecipeFiles) -> Facts {
    let loaded = lint::load_combinations(files);
    let mut f = Facts::default();
    if let Some(s) = &loaded.sample {
        f.env = s.entries().map(|e| e.key.clone()).collect();
    }
    for (_, c) in &loaded.stacks {
        for (name, svc) in &c.services {
            f.images
                .entry(name.clone())
                .or_insert_with(|| svc.image.clone());
            let mounts = f.mounts.entry(name.clone()).or_default();
            for v in &svc.volumes {
                if v.kind == "volume" && !v.source.is_empty() {
                    mounts.insert(format!("{}:{}", v.source, v.target));
                }
            }
        }
        for (key, s) in &c.secrets {
            f.secrets
                .entry(key.clone())
                .or_insert_with(|| s.name.clone());
        }
        f.volumes.extend(c.volumes.keys().cloned());
    }
    f
}

/// Blanks the value of the version label so that writing it is not itself a change.
fn without_version_label(text: &str) -> String {
    match set_version_label(text, "") {
        Some((t, _)) => t,
        None => text.to_string(),
    }
}

/// What changed from `old` (the last release) to `new`, each with the step it calls for; empty
/// when nothing but release notes and the version label changed.
pub fn changes(old: &RecipeFiles, new: &RecipeFiles) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |bump, what: String| out.push(Change { bump, what });
    let (a, b) = (facts(old), facts(new));
    for key in b.secrets.keys().filter(|k| !a.secrets.contains_key(*k)) {
        push(Bump::Major, format!("secret {key} added"));
    }
    for key in a.secrets.keys().filter(|k| !b.secrets.contains_key(*k)) {
        push(Bump::Major, format!("secret {key} removed"));
    }
    for (key, name) in &b.secrets {
        if let Some(old_name) = a.secrets.get(key) {
            if old_name != name {
                push(
                    Bump::Major,
                    format!("secret {key} has a new version ({old_name} → {name})"),
                );
            }
        }
    }
    for key in b.env.difference(&a.env) {
        push(Bump::Major, format!("setting {key} added to .env.sample"));
    }
    for key in a.env.difference(&b.env) {
        push(
            Bump::Major,
            format!("setting {key} removed from .env.sample"),
        );
    }
    for v in b.volumes.difference(&a.volumes) {
        push(Bump::Major, format!("volume {v} added"));
    }
    for v in a.volumes.difference(&b.volumes) {
        push(Bump::Major, format!("volume {v} removed"));
    }
    for (svc, mounts) in &b.mounts {
        if let Some(old) = a.mounts.get(svc) {
            if old != mounts && !mounts.is_empty() {
                let gone: Vec<&String> = old.difference(mounts).collect();
                let came: Vec<&String> = mounts.difference(old).collect();
                if !gone.is_empty() {
                    push(
                        Bump::Major,
                        format!(
                            "service {svc} mounts volumes differently ({} → {})",
                            join(&gone),
                            join(&came)
                        ),
                    );
                }
            }
        }
    }
    for (svc, image) in &b.images {
        match a.images.get(svc) {
            Some(old) if old != image => {
                push(Bump::Minor, format!("service {svc}: {old} → {image}"))
            }
            None => push(Bump::Minor, format!("service {svc} added ({image})")),
            _ => {}
        }
    }
    for svc in a.images.keys().filter(|s| !b.images.contains_key(*s)) {
        push(Bump::Minor, format!("service {svc} removed"));
    }
    let paths: BTreeSet<&str> = old.paths().chain(new.paths()).collect();
    let mut touched = Vec::new();
    for p in paths {
        if p.starts_with("release/") {
            continue;
        }
        let same = match (old.text(p), new.text(p)) {
            (Some(x), Some(y)) => without_version_label(&x) == without_version_label(&y),
            _ => false,
        };
        if !same {
            touched.push(p.to_string());
        }
    }
    if !touched.is_empty() {
        push(
            Bump::Patch,
            format!("files changed: {}", touched.join(", ")),
        );
    }
    out
}

fn join(items: &[&String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The step a list of changes calls for (`None`: nothing to release).
pub fn step(changes: &[Change]) -> Option<Bump> {
    changes.iter().map(|c| c.bump).max()
}

/// The upstream half of the version: the tag of the `app` service's image.
pub fn upstream(files: &RecipeFiles) -> Result<String, ReleaseError> {
    let sample = files
        .text(".env.sample")
        .and_then(|t| EnvFile::parse(&t).ok())
        .unwrap_or_default();
    let env = lint::lint_env(Some(&sample));
    let s = stack::load(lint::LINT_DOMAIN, &env, files).map_err(|e| ReleaseError::DoesNotLoad {
        recipe: files.recipe.clone(),
        error: e.to_string(),
    })?;
    let svc = s.compose.services.get("app").or_else(|| {
        s.compose.services.values().find(|svc| {
            svc.deploy
                .labels
                .keys()
                .any(|k| k.starts_with("coop-cloud.") && k.ends_with(".version"))
        })
    });
    let Some(svc) = svc else {
        return Err(ReleaseError::NoAppService {
            recipe: files.recipe.clone(),
        });
    };
    match split_image(&svc.image).1 {
        Some(tag) => Ok(tag.to_string()),
        None => Err(ReleaseError::NoUpstream {
            recipe: files.recipe.clone(),
            image: svc.image.clone(),
        }),
    }
}

/// The version after `latest` for a step: `<semver>+<upstream>`.
pub fn next_version(latest: Option<&RecipeVersion>, step: Bump, upstream: &str) -> String {
    let v = match latest.and_then(|l| l.semver()) {
        None => semver::Version::new(0, 1, 0),
        Some(v) => match step {
            Bump::Major => semver::Version::new(v.major + 1, 0, 0),
            Bump::Minor => semver::Version::new(v.major, v.minor + 1, 0),
            Bump::Patch => semver::Version::new(v.major, v.minor, v.patch + 1),
        },
    };
    format!("{v}+{upstream}")
}

/// Writes `version` as the value of the version label wherever the text has it, keeping every
/// other byte; returns the new text and the value it had. `None` when the label is not there.
pub fn set_version_label(text: &str, version: &str) -> Option<(String, String)> {
    let mut out = String::with_capacity(text.len() + version.len());
    let mut old = None;
    for line in text.split_inclusive('\n') {
        match label_value_span(line) {
            Some((start, end)) => {
                old.get_or_insert_with(|| line[start..end].to_string());
                out.push_str(&line[..start]);
                out.push_str(version);
                out.push_str(&line[end..]);
            }
            None => out.push_str(line),
        }
    }
    old.map(|o| (out, o))
}

/// Where the label's value sits in a line: `- "coop-cloud.${STACK_NAME}.version=1.0"` (list
/// form, quoted or not) or `coop-cloud.${STACK_NAME}.version: "1.0"` (map form).
fn label_value_span(line: &str) -> Option<(usize, usize)> {
    let at = line.find(VERSION_LABEL)?;
    if line[..at].trim_start().starts_with('#') {
        return None;
    }
    let is_quote = |c: &char| *c == '"' || *c == '\'';
    let opening = line[..at].chars().last().filter(is_quote);
    let after = at + VERSION_LABEL.len();
    let (start, closing) = if line[after..].starts_with('=') {
        // List form: the value runs to the item's closing quote, or to a comment / line end.
        (after + 1, opening)
    } else {
        // Map form: `key: value`, the key possibly quoted.
        let mut i = after;
        if let Some(q) = opening {
            i += line[i..].starts_with(q).then_some(1)?;
        }
        let rest = line[i..].strip_prefix(':')?;
        let value = rest.trim_start_matches([' ', '\t']);
        let start = line.len() - value.len();
        let q = value.chars().next().filter(is_quote);
        (start + q.map_or(0, |_| 1), q)
    };
    let tail = &line[start..];
    let len = match closing {
        Some(q) => tail.find(q)?,
        None => {
            let end = tail.find(" #").unwrap_or(tail.len());
            tail[..end].trim_end().len()
        }
    };
    Some((start, start + len))
}

/// Adds the version label under the `app` service's deploy labels of a compose file that lacks
/// it, in the style of the labels already there.
pub fn insert_version_label(file: &str, text: &str, version: &str) -> Result<String, ReleaseError> {
    let no_place = || ReleaseError::NoLabelPlace {
        file: file.to_string(),
    };
    let tree = crate::yaml::parse(text).map_err(|_| no_place())?;
    let labels = tree
        .as_map()
        .and_then(|m| m.get("services"))
        .and_then(|s| s.as_map())
        .and_then(|s| s.get("app"))
        .and_then(|a| a.as_map())
        .and_then(|a| a.get("deploy"))
        .and_then(|d| d.as_map())
        .and_then(|d| d.get("labels"))
        .ok_or_else(no_place)?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let (after_line, new_line) = if let Some(items) = labels.as_seq() {
        let last = items.last().ok_or_else(no_place)?;
        let idx = last.pos.line as usize - 1;
        let model = lines.get(idx).ok_or_else(no_place)?;
        let indent = &model[..model.len() - model.trim_start().len()];
        let body = model
            .trim_start()
            .strip_prefix('-')
            .ok_or_else(no_place)?
            .trim_start();
        let q = body.chars().next().filter(|c| *c == '"' || *c == '\'');
        let qs = q.map(String::from).unwrap_or_default();
        (
            idx,
            format!("{indent}- {qs}{VERSION_LABEL}={version}{qs}\n"),
        )
    } else if let Some(map) = labels.as_map() {
        let (key, _) = map.entries.last().ok_or_else(no_place)?;
        let idx = key.pos.line as usize - 1;
        let model = lines.get(idx).ok_or_else(no_place)?;
        let indent = &model[..model.len() - model.trim_start().len()];
        (idx, format!("{indent}{VERSION_LABEL}: \"{version}\"\n"))
    } else {
        return Err(no_place());
    };
    let mut out = String::with_capacity(text.len() + new_line.len());
    for (i, l) in lines.iter().enumerate() {
        out.push_str(l);
        if i == after_line {
            if !l.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&new_line);
        }
    }
    Ok(out)
}

/// A config version in `abra.sh` that moves because the config's file changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigBump {
    pub config: String,
    pub file: String,
    pub variable: String,
    pub from: String,
    pub to: String,
}

/// The `name:` of a config as written (before interpolation), from any compose file.
fn raw_config_name(files: &RecipeFiles, key: &str) -> Option<String> {
    for path in files.paths().filter(|p| crate::compose::is_compose_file(p)) {
        let Some(tree) = files.text(path).and_then(|t| crate::yaml::parse(&t).ok()) else {
            continue;
        };
        let name = tree
            .as_map()
            .and_then(|m| m.get("configs"))
            .and_then(|c| c.as_map())
            .and_then(|c| c.get(key))
            .and_then(|c| c.as_map())
            .and_then(|c| c.get("name"))
            .and_then(|n| n.as_str());
        if let Some(n) = name {
            return Some(n.to_string());
        }
    }
    None
}

/// `v3` → `v4`, `12` → `13`, `v1.9` → `v1.10`: the number at the end counts up.
pub fn count_up(value: &str) -> Option<String> {
    let digits = value.len() - value.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let (head, n) = value.split_at(value.len() - digits);
    let n: u64 = n.parse().ok()?;
    Some(format!("{head}{}", n + 1))
}

/// The config versions to count up: configs whose file content differs between `old` and `new`
/// while their Swarm name stayed the same.
pub fn config_bumps(
    old: &RecipeFiles,
    new: &RecipeFiles,
    since: &str,
) -> Result<Vec<ConfigBump>, ReleaseError> {
    let (a, b) = (lint::config_contents(old), lint::config_contents(new));
    let exports = new
        .text("abra.sh")
        .map(|t| AbraSh::parse(&t).exports)
        .unwrap_or_default();
    let mut out: Vec<ConfigBump> = Vec::new();
    for (key, config) in &b {
        let Some(before) = a.get(key) else {
            continue;
        };
        if before.name != config.name || before.content == config.content {
            continue;
        }
        let raw = raw_config_name(new, key).unwrap_or_else(|| config.name.clone());
        let vars: Vec<String> = crate::interpolate::variables(&raw)
            .into_iter()
            .filter(|v| exports.contains_key(v))
            .collect();
        let file = config.file.clone();
        if vars.is_empty() {
            return Err(ReleaseError::ConfigNotVersioned {
                config: key.clone(),
                file,
                since: since.to_string(),
                name: raw,
                suggested: format!("{}_VERSION", key.to_uppercase().replace(['-', '.'], "_")),
            });
        }
        for variable in vars {
            if out.iter().any(|b| b.variable == variable) {
                continue;
            }
            let from = exports[&variable].clone();
            let to = count_up(&from).ok_or_else(|| ReleaseError::NotCountable {
                variable: variable.clone(),
                value: from.clone(),
                config: key.clone(),
            })?;
            out.push(ConfigBump {
                config: key.clone(),
                file: file.clone(),
                variable,
                from,
                to,
            });
        }
    }
    Ok(out)
}

/// Rewrites `export VAR=…` lines of an `abra.sh` for the bumps, keeping every other byte.
pub fn bump_abra_sh(text: &str, bumps: &[ConfigBump]) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let hit = bumps.iter().find(|b| {
            t.strip_prefix("export ")
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix(b.variable.as_str()))
                .is_some_and(|r| r.trim_start().starts_with('='))
        });
        match hit {
            Some(b) => {
                let eq = line.find('=').unwrap_or(0);
                let (head, tail) = line.split_at(eq + 1);
                out.push_str(head);
                out.push_str(&tail.replacen(b.from.as_str(), &b.to, 1));
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Origin;

    fn files(list: &[(&str, &str)]) -> RecipeFiles {
        RecipeFiles::from_map(
            "r",
            Origin::WorkTree {
                head: None,
                dirty: Vec::new(),
            },
            list.iter()
                .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
                .collect(),
        )
    }

    const COMPOSE: &str = "version: \"3.8\"\nservices:\n  app:\n    image: nginx:${V:-1.27.2}-alpine\n    volumes:\n      - data:/data\n    configs:\n      - source: conf\n        target: /etc/x.conf\n    deploy:\n      labels:\n        - \"traefik.enable=true\"\n        - \"coop-cloud.${STACK_NAME}.version=1.0.0+1.27.2-alpine\"\nvolumes:\n  data:\nconfigs:\n  conf:\n    name: ${STACK_NAME}_conf_${CONF_VERSION}\n    file: x.conf\n";

    fn base() -> Vec<(&'static str, String)> {
        vec![
            ("compose.yml", COMPOSE.to_string()),
            (".env.sample", "TYPE=r\nDOMAIN=r.example.org\n".to_string()),
            (
                "abra.sh",
                "export CONF_VERSION=v3  # the conf\n".to_string(),
            ),
            ("x.conf", "a=1\n".to_string()),
        ]
    }

    fn set(list: &[(&'static str, String)]) -> RecipeFiles {
        let v: Vec<(&str, &str)> = list.iter().map(|(p, t)| (*p, t.as_str())).collect();
        files(&v)
    }

    fn with(f: impl FnOnce(&mut Vec<(&'static str, String)>)) -> RecipeFiles {
        let mut b = base();
        f(&mut b);
        set(&b)
    }

    #[test]
    fn steps_follow_what_changed() {
        let old = set(&base());
        assert_eq!(changes(&old, &old), vec![]);
        // Only the label value and notes: nothing to release.
        let relabeled = with(|b| {
            b[0].1 = b[0].1.replace("1.0.0+1.27.2-alpine", "1.0.1+1.27.2-alpine");
            b.push(("release/next", "notes".into()));
        });
        assert_eq!(step(&changes(&old, &relabeled)), None);
        let readme = with(|b| b.push(("README.md", "# r\n".into())));
        assert_eq!(step(&changes(&old, &readme)), Some(Bump::Patch));
        let image = with(|b| b[0].1 = b[0].1.replace("1.27.2", "1.28.0"));
        let c = changes(&old, &image);
        assert_eq!(step(&c), Some(Bump::Minor));
        assert!(
            c[0].what
                .contains("nginx:1.27.2-alpine → nginx:1.28.0-alpine"),
            "{c:?}"
        );
        let env = with(|b| b[1].1.push_str("SMTP_HOST=mail\n"));
        assert_eq!(step(&changes(&old, &env)), Some(Bump::Major));
        let commented = with(|b| b[1].1.push_str("#SMTP_HOST=mail\n"));
        assert_eq!(step(&changes(&old, &commented)), Some(Bump::Patch));
        let vol = with(|b| {
            b[0].1 = b[0]
                .1
                .replace("volumes:\n  data:\n", "volumes:\n  data:\n  more:\n")
        });
        assert_eq!(step(&changes(&old, &vol)), Some(Bump::Major));
        let moved = with(|b| b[0].1 = b[0].1.replace("data:/data", "data:/srv"));
        let c = changes(&old, &moved);
        assert_eq!(step(&c), Some(Bump::Major), "{c:?}");
        let secret = with(|b| {
            b[0].1 = b[0].1.replace("configs:\n  conf:", "secrets:\n  pw:\n    external: true\n    name: ${STACK_NAME}_pw_${SECRET_PW_VERSION}\nconfigs:\n  conf:");
            b[1].1.push_str("SECRET_PW_VERSION=v1\n");
        });
        let c = changes(&old, &secret);
        assert!(c.iter().any(|c| c.what == "secret pw added"), "{c:?}");
        assert_eq!(step(&c), Some(Bump::Major));
    }

    #[test]
    fn versions_and_upstream() {
        let f = set(&base());
        assert_eq!(upstream(&f).unwrap(), "1.27.2-alpine");
        let v = RecipeVersion::parse("1.4.2+1.27.1-alpine").unwrap();
        assert_eq!(next_version(Some(&v), Bump::Patch, "x"), "1.4.3+x");
        assert_eq!(next_version(Some(&v), Bump::Minor, "x"), "1.5.0+x");
        assert_eq!(next_version(Some(&v), Bump::Major, "x"), "2.0.0+x");
        assert_eq!(next_version(None, Bump::Major, "x"), "0.1.0+x");
        let pinned = with(|b| b[0].1 = b[0].1.replace("${V:-1.27.2}-alpine", "1.2@sha256:abc"));
        assert_eq!(upstream(&pinned).unwrap(), "1.2");
        let untagged = with(|b| b[0].1 = b[0].1.replace(":${V:-1.27.2}-alpine", ""));
        assert!(matches!(
            upstream(&untagged),
            Err(ReleaseError::NoUpstream { .. })
        ));
    }

    #[test]
    fn the_label_is_rewritten_in_place() {
        let (t, old) = set_version_label(COMPOSE, "1.1.0+1.28.0-alpine").unwrap();
        assert_eq!(old, "1.0.0+1.27.2-alpine");
        assert_eq!(
            t,
            COMPOSE.replace("1.0.0+1.27.2-alpine\"", "1.1.0+1.28.0-alpine\"")
        );
        let map = "x:\n  coop-cloud.${STACK_NAME}.version: \"1.0\" # c\n  y: 1\n";
        assert_eq!(
            set_version_label(map, "2.0").unwrap().0,
            "x:\n  coop-cloud.${STACK_NAME}.version: \"2.0\" # c\n  y: 1\n"
        );
        let bare = "      - coop-cloud.${STACK_NAME}.version=  # none yet\n";
        assert_eq!(
            set_version_label(bare, "0.1.0+1").unwrap().0,
            "      - coop-cloud.${STACK_NAME}.version=0.1.0+1  # none yet\n"
        );
        assert!(set_version_label("# coop-cloud.${STACK_NAME}.version=1\n", "2").is_none());
        let without = COMPOSE.replace(
            "        - \"coop-cloud.${STACK_NAME}.version=1.0.0+1.27.2-alpine\"\n",
            "",
        );
        let added = insert_version_label("compose.yml", &without, "0.1.0+1.27.2-alpine").unwrap();
        assert_eq!(
            added,
            COMPOSE.replace("1.0.0+1.27.2-alpine", "0.1.0+1.27.2-alpine")
        );
        let err = insert_version_label("compose.yml", "services:\n  app:\n    image: x:1\n", "1")
            .unwrap_err();
        assert!(
            err.to_string().contains("services.app.deploy.labels"),
            "{err}"
        );
    }

    #[test]
    fn changed_configs_count_their_version_up() {
        let old = set(&base());
        let same_name = with(|b| b[3].1 = "a=2\n".into());
        let bumps = config_bumps(&old, &same_name, "1.0.0").unwrap();
        assert_eq!(
            bumps,
            vec![ConfigBump {
                config: "conf".into(),
                file: "x.conf".into(),
                variable: "CONF_VERSION".into(),
                from: "v3".into(),
                to: "v4".into()
            }]
        );
        assert_eq!(
            bump_abra_sh(
                "# v3\nexport CONF_VERSION=v3  # the conf\nexport B=v3\n",
                &bumps
            ),
            "# v3\nexport CONF_VERSION=v4  # the conf\nexport B=v3\n"
        );
        // Bumped by hand already: nothing to do.
        let bumped = with(|b| {
            b[3].1 = "a=2\n".into();
            b[2].1 = "export CONF_VERSION=v4\n".into();
        });
        assert_eq!(config_bumps(&old, &bumped, "1.0.0").unwrap(), vec![]);
        // A config without a version variable: a clear error.
        let fixed = with(|b| b[0].1 = b[0].1.replace("_${CONF_VERSION}", "_1"));
        let fixed_changed = with(|b| {
            b[0].1 = b[0].1.replace("_${CONF_VERSION}", "_1");
            b[3].1 = "a=2\n".into();
        });
        let err = config_bumps(&fixed, &fixed_changed, "1.0.0").unwrap_err();
        assert!(err.to_string().contains("export CONF_VERSION=v1"), "{err}");
        assert_eq!(count_up("v9").as_deref(), Some("v10"));
        assert_eq!(count_up("7").as_deref(), Some("8"));
        assert_eq!(count_up("latest"), None);
    }
}
