//! `recipe lint`: abra's rules R001–R016 and cooper's own C001–C008.
//!
//! Compose files are loaded in every combination an operator can switch on: the sample's
//! selection, each commented block of `.env.sample` that adds overlays (with the block's
//! commented settings switched on too, as an operator uncommenting the block would), and each
//! other overlay on its own. An overlay's required setting (`${X:?…}`) documented in another
//! block is switched on as well and warned about (C008); one documented nowhere fails C006,
//! naming the variable, the overlay and where to document it.
//!
//! Levels are `warn` and `critical`; a failed critical rule makes `cooper recipe lint` exit
//! non-zero, so CI can gate on it. Rules that cannot be decided (offline, no configs, …) are
//! reported as skipped with the reason.
//!
//! Choices where abra's behaviour is unverified (written down here and pinned by tests):
//! - R013 checks that the `origin` remote points at git.coopcloud.tech without network access;
//!   it is skipped offline and when there is no remote.
//! - R015 warns on secret keys longer than 12 characters (abra's threshold, believed); C004 is
//!   the exact check: the Swarm name with the longest stack name abra allows (45) must fit 64.
//! - R016 (unknown in abra) is cooper's choice from the maintainers' upgrade guide: every
//!   variable a compose file uses without a default is listed in `.env.sample` (commented or
//!   not), so upgrades never need an undocumented manual step.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::abrash::AbraSh;
use crate::compose::Compose;
use crate::envfile::EnvFile;
use crate::repo::{RecipeFiles, RecipeRepo, Tag};
use crate::stack;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Warn,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "status", content = "detail")]
pub enum Outcome {
    Ok,
    Failed(Vec<String>),
    Skipped(String),
}

/// One rule's result.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub level: Level,
    pub description: &'static str,
    pub how_to_fix: &'static str,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Finding {
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_))
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub recipe: String,
    pub origin: String,
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when a critical rule failed.
    pub fn has_errors(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.failed() && f.level == Level::Critical)
    }
}

/// What lint looks at.
pub struct Input<'a> {
    pub files: &'a RecipeFiles,
    /// Tags of the repository (for R006, R014, C003); empty when linting loose files.
    pub tags: &'a [Tag],
    /// The repository, for reading older versions (C003).
    pub repo: Option<&'a RecipeRepo>,
    pub origin_url: Option<String>,
    pub offline: bool,
}

const STABLE_FLOATING: &[&str] = &[
    "latest", "main", "master", "dev", "develop", "edge", "nightly",
];

/// `image[:tag][@digest]` → (name, tag, digest).
pub fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&rest[..at], Some(&rest[at + 1..]), digest)
        }
        None => (rest, None, digest),
    }
}

fn semver_like(tag: &str) -> bool {
    let core = tag.split(['-', '+']).next().unwrap_or("");
    let core = core.strip_prefix('v').unwrap_or(core);
    let parts: Vec<&str> = core.split('.').collect();
    !parts.is_empty()
        && parts.len() <= 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// The compose file sets lint loads: the `.env.sample` selection (or `compose.yml`); that
/// selection plus the overlays of each commented block of `.env.sample` that enables some
/// (`#COMPOSE_FILE="$COMPOSE_FILE:compose.sso.yml"`), with the block's settings switched on;
/// then the selection plus each overlay no block enables (overlays build on the default
/// selection, e.g. bonfire's tuning overlay on its postgres overlay).
pub(crate) fn combinations(files: &RecipeFiles, sample: Option<&EnvFile>) -> Vec<Combination> {
    let base = sample
        .map(stack::compose_files)
        .unwrap_or_else(|| vec!["compose.yml".to_string()]);
    let mut combos = vec![Combination {
        files: base.clone(),
        block: None,
    }];
    let blocks = sample.map(EnvFile::commented_blocks).unwrap_or_default();
    for (i, b) in blocks.iter().enumerate() {
        let extra: Vec<&String> = b
            .overlays
            .iter()
            .filter(|o| !base.contains(o) && files.text(o).is_some())
            .collect();
        // A block may add several overlays, each building on the one before (bonfire's S3
        // block: `compose.s3.yml`, then optionally `compose.s3.tokenfile.yml`): load each step.
        for n in 1..=extra.len() {
            let mut c = base.clone();
            c.extend(extra[..n].iter().map(|o| (*o).clone()));
            combos.push(Combination {
                files: c,
                block: Some(i),
            });
        }
    }
    for path in files.paths() {
        let covered = base.iter().any(|b| b == path)
            || combos.iter().any(|c| c.files.iter().any(|f| f == path));
        if crate::compose::is_compose_file(path) && !covered {
            let mut c = base.clone();
            c.push(path.to_string());
            combos.push(Combination {
                files: c,
                block: None,
            });
        }
    }
    combos
}

/// One set of compose files lint loads, and the `.env.sample` block that enables it.
pub(crate) struct Combination {
    pub files: Vec<String>,
    /// Index into [`EnvFile::commented_blocks`].
    pub block: Option<usize>,
}

/// Every combination of [`combinations`] loaded with the `.env.sample` defaults (plus the
/// enabling block's settings): what lint, releases and the catalogue look at.
pub(crate) struct Loaded {
    pub sample: Option<EnvFile>,
    /// The combinations that load, with their stacks.
    pub stacks: Vec<(Vec<String>, Compose)>,
    /// The combinations that do not, with why.
    pub failed: Vec<(Vec<String>, String)>,
    /// Settings an overlay requires that `.env.sample` documents in another block than the
    /// one that enables the overlay (loaded with them, and warned about: C008).
    pub elsewhere: Vec<String>,
}

pub(crate) fn load_combinations(files: &RecipeFiles) -> Loaded {
    let sample = files
        .text(".env.sample")
        .and_then(|t| EnvFile::parse(&t).ok());
    let env = lint_env(sample.as_ref());
    let blocks = sample
        .as_ref()
        .map(EnvFile::commented_blocks)
        .unwrap_or_default();
    let cache = stack::ComposeCache::new(LINT_DOMAIN, &env, files);
    let mut out = Loaded {
        stacks: Vec::new(),
        failed: Vec::new(),
        elsewhere: Vec::new(),
        sample: None,
    };
    for combo in combinations(files, sample.as_ref()) {
        let block = combo.block.map(|i| &blocks[i]);
        let mut env = env.clone();
        if let Some(b) = block {
            for (k, v, _) in &b.settings {
                env.set(k, v);
            }
        }
        let first = match block {
            None => cache.load(&combo.files),
            Some(_) => stack::ComposeCache::new(LINT_DOMAIN, &env, files).load(&combo.files),
        };
        let err = match first {
            Ok(c) => {
                out.stacks.push((combo.files, c));
                continue;
            }
            Err(e) => e.to_string(),
        };
        // Required settings the combination's files use without a value: documented in
        // another block (switch it on too, and warn), or nowhere (say where to document it).
        let overlays = combo.files[1..].join(":");
        let needed: BTreeSet<String> = combo
            .files
            .iter()
            .filter_map(|f| files.text(f))
            .flat_map(|t| required_variables(&t))
            .filter(|v| env.get(v).is_none_or(str::is_empty))
            .collect();
        let mut nowhere = Vec::new();
        let mut found = Vec::new();
        for var in &needed {
            match blocks
                .iter()
                .find_map(|b| b.settings.iter().find(|(k, ..)| k == var).map(|s| (b, s)))
            {
                Some((b, (k, v, line))) => {
                    env.set(k, v);
                    found.push(format!(
                        "{} requires {k}, which .env.sample documents in {} (line {line}), not in the \
                         block that enables {}: move it there so operators switch them on together",
                        overlays,
                        b.describe(),
                        overlays,
                    ));
                }
                None => nowhere.push(var.clone()),
            }
        }
        let retried = (!found.is_empty())
            .then(|| stack::ComposeCache::new(LINT_DOMAIN, &env, files).load(&combo.files));
        match retried {
            Some(Ok(c)) if nowhere.is_empty() => {
                out.elsewhere.extend(found);
                out.stacks.push((combo.files, c));
            }
            Some(Err(e)) => {
                let e = e.to_string();
                out.failed.push((
                    combo.files.clone(),
                    undocumented(&e, &nowhere, &combo, &blocks),
                ));
            }
            _ => out.failed.push((
                combo.files.clone(),
                undocumented(&err, &nowhere, &combo, &blocks),
            )),
        }
    }
    out.sample = sample;
    out
}

/// A load error, plus where to document the required settings `.env.sample` lacks.
fn undocumented(
    err: &str,
    nowhere: &[String],
    combo: &Combination,
    blocks: &[crate::envfile::CommentedBlock],
) -> String {
    if nowhere.is_empty() {
        return err.to_string();
    }
    let overlay = combo
        .files
        .last()
        .map(String::as_str)
        .unwrap_or("compose.yml");
    let place = match combo.block.map(|i| &blocks[i]) {
        Some(b) => format!(
            "to {} of .env.sample, which enables {overlay}",
            b.describe()
        ),
        None => format!(
            "to .env.sample, in a commented block with `#COMPOSE_FILE=\"$COMPOSE_FILE:{overlay}\"`"
        ),
    };
    format!(
        "{err}; {} documented nowhere in .env.sample: add {} {place}",
        if nowhere.len() == 1 {
            format!("{} is required by {overlay} but", nowhere[0])
        } else {
            format!("{} are required by {overlay} but", nowhere.join(", "))
        },
        nowhere
            .iter()
            .map(|v| format!("`#{v}=…`"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Variables a compose text requires (`${X:?msg}`, `${X?msg}`): loading fails without them.
fn required_variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let escaped = rest[..i].ends_with('$');
        rest = &rest[i + 2..];
        if escaped {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after = &rest[name.len()..];
        if !name.is_empty() && (after.starts_with(":?") || after.starts_with('?')) {
            out.push(name);
        }
    }
    out
}

/// Every string value in a YAML tree (comments and keys are not values).
fn yaml_strings<'a>(node: &'a crate::yaml::Node, out: &mut Vec<&'a str>) {
    use crate::yaml::Value;
    match &node.value {
        Value::Str(s) => out.push(s),
        Value::Seq(items) => items.iter().for_each(|n| yaml_strings(n, out)),
        Value::Map(m) => m.entries.iter().for_each(|(_, n)| yaml_strings(n, out)),
        _ => {}
    }
}

pub(crate) const LINT_DOMAIN: &str = "lint.example.org";

/// A stand-in app env for linting: `.env.sample`, with commented-out keys treated as unset.
pub(crate) fn lint_env(sample: Option<&EnvFile>) -> EnvFile {
    let mut env = sample.cloned().unwrap_or_default();
    if env.get("DOMAIN").is_none() {
        env.set("DOMAIN", LINT_DOMAIN);
    }
    env
}

fn finding(
    rule: &'static str,
    level: Level,
    description: &'static str,
    how_to_fix: &'static str,
    outcome: Outcome,
) -> Finding {
    Finding {
        rule,
        level,
        description,
        how_to_fix,
        outcome,
    }
}

fn outcome(problems: Vec<String>) -> Outcome {
    if problems.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Failed(problems)
    }
}

/// Variables used in a text without a default (`${X}`, `$X`, `${X?msg}`).
fn variables_without_default(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'$') {
            i += 2;
            continue;
        }
        let braced = bytes.get(i + 1) == Some(&b'{');
        let start = if braced { i + 2 } else { i + 1 };
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if end > start {
            let name = &text[start..end];
            let op = &text[end..];
            let has_default = braced && (op.starts_with(":-") || op.starts_with('-'));
            if !has_default {
                out.insert(name.to_string());
            }
        }
        i = end.max(i + 1);
    }
    out
}

/// Runs every rule.
pub fn lint(input: &Input) -> Report {
    let files = input.files;
    let abra_sh = files.text("abra.sh").map(|t| AbraSh::parse(&t));
    let mut findings = Vec::new();

    // Load every combination, each compose file once.
    let Loaded {
        sample,
        stacks,
        failed,
        elsewhere,
    } = load_combinations(files);
    let load_errors: Vec<String> = failed
        .iter()
        .map(|(combo, e)| format!("[{}] {e}", combo.join(":")))
        .collect();
    let base = stacks.first().map(|(_, c)| c.clone());
    let all_services: BTreeMap<String, crate::compose::Service> = stacks
        .iter()
        .flat_map(|(_, c)| c.services.clone())
        .collect();

    // Every compose file, parsed once (`None`: not valid YAML, which C006 reports).
    let trees: Vec<(&str, Option<crate::yaml::Node>)> = files
        .paths()
        .filter(|path| crate::compose::is_compose_file(path))
        .map(|path| {
            let tree = crate::yaml::parse(&files.text(path).unwrap_or_default()).ok();
            (path, tree)
        })
        .collect();

    // R001
    let mut problems = Vec::new();
    for (path, tree) in &trees {
        let version = tree.as_ref().and_then(|n| {
            n.as_map()
                .and_then(|m| m.get("version"))
                .and_then(|v| v.scalar_text())
        });
        if version.as_deref() != Some("3.8") {
            problems.push(format!(
                "{path}: version is {}",
                version.map_or("missing".to_string(), |v| format!("{v:?}"))
            ));
        }
    }
    findings.push(finding(
        "R001",
        Level::Warn,
        "compose config has expected version",
        "ensure 'version: \"3.8\"' in compose configs",
        outcome(problems),
    ));

    // R002
    let problems = all_services
        .iter()
        .filter(|(_, s)| {
            s.healthcheck
                .as_ref()
                .is_none_or(|h| h.disable || h.test.is_empty())
        })
        .map(|(n, _)| format!("service {n} has no healthcheck"))
        .collect();
    findings.push(finding(
        "R002",
        Level::Warn,
        "healthcheck enabled for all services",
        "wire up healthchecks",
        outcome(problems),
    ));

    // R003, R004, R005
    let mut untagged = Vec::new();
    let mut unstable = Vec::new();
    let mut not_semver = Vec::new();
    for (name, s) in &all_services {
        if s.image.is_empty() {
            continue;
        }
        let (_, tag, digest) = split_image(&s.image);
        match tag {
            None if digest.is_none() => untagged.push(format!("service {name}: {}", s.image)),
            None => {}
            Some(t) => {
                if STABLE_FLOATING.contains(&t) {
                    unstable.push(format!("service {name}: {}", s.image));
                } else if !semver_like(t) {
                    not_semver.push(format!("service {name}: {}", s.image));
                }
            }
        }
    }
    findings.push(finding(
        "R003",
        Level::Warn,
        "all images use a tag",
        "use a tag for all images",
        outcome(untagged.clone()),
    ));
    findings.push(finding(
        "R004",
        Level::Warn,
        "no unstable tags",
        "tag all images with stable tags",
        outcome(unstable.clone()),
    ));
    findings.push(finding(
        "R005",
        Level::Warn,
        "tags use semver-like format",
        "use semver-like tags",
        outcome(not_semver),
    ));

    // R006
    let released = input.tags.iter().any(|t| t.version.is_some());
    findings.push(finding(
        "R006",
        Level::Warn,
        "has published catalogue version",
        "publish a recipe version (cooper recipe release)",
        if released {
            Outcome::Ok
        } else {
            Outcome::Failed(vec!["the recipe has no release tag".into()])
        },
    ));

    // R007
    let readme = files.text("README.md").unwrap_or_default();
    let meta = readme
        .split_once("<!-- metadata -->")
        .and_then(|(_, r)| r.split_once("<!-- endmetadata -->"))
        .map(|(m, _)| m.to_string());
    let problems = match meta {
        None => vec!["README.md has no <!-- metadata --> block".to_string()],
        Some(m) => [
            "Category",
            "Status",
            "Image",
            "Healthcheck",
            "Backups",
            "Email",
            "Tests",
            "SSO",
        ]
        .iter()
        .filter(|field| {
            !m.lines().any(|l| {
                l.contains(&format!("**{field}**"))
                    && l.split_once(':').is_some_and(|(_, v)| !v.trim().is_empty())
            })
        })
        .map(|f| format!("metadata field {f} is missing or empty"))
        .collect(),
    };
    findings.push(finding(
        "R007",
        Level::Warn,
        "README.md metadata filled in",
        "fill out all the metadata",
        outcome(problems),
    ));

    // R008
    findings.push(finding(
        "R008",
        Level::Critical,
        ".env.sample provided",
        "create an example .env.sample",
        if files.contains(".env.sample") {
            Outcome::Ok
        } else {
            Outcome::Failed(vec![".env.sample is missing".into()])
        },
    ));

    // R009
    findings.push(finding(
        "R009",
        Level::Critical,
        "one service named 'app'",
        "name a service 'app'",
        match &base {
            Some(c) if c.services.contains_key("app") => Outcome::Ok,
            Some(_) => Outcome::Failed(vec!["compose.yml has no service named app".into()]),
            None => Outcome::Skipped("compose.yml does not load (see C006)".into()),
        },
    ));

    // R010
    let has_domain = sample.as_ref().is_some_and(|s| s.get("DOMAIN").is_some());
    let traefik = all_services.values().any(|s| {
        s.deploy.labels.get("traefik.enable").map(String::as_str) == Some("true")
            || s.labels.get("traefik.enable").map(String::as_str) == Some("true")
    });
    findings.push(finding(
        "R010",
        Level::Critical,
        "traefik routing enabled",
        "include \"traefik.enable=true\" deploy label",
        if !has_domain {
            Outcome::Skipped(".env.sample sets no DOMAIN: not a web app".into())
        } else if traefik {
            Outcome::Ok
        } else {
            Outcome::Failed(vec![
                "no service has the traefik.enable=true deploy label".into()
            ])
        },
    ));

    // R011
    let problems = all_services
        .iter()
        .filter(|(_, s)| s.image.is_empty())
        .map(|(n, _)| format!("service {n} has no image"))
        .collect();
    findings.push(finding(
        "R011",
        Level::Critical,
        "all services have images",
        "ensure \"image: ...\" set on all services",
        outcome(problems),
    ));

    // R012
    let mut config_vars: BTreeMap<String, String> = BTreeMap::new();
    let mut has_configs = false;
    for (path, tree) in &trees {
        let Some(node) = tree else {
            continue;
        };
        let Some(configs) = node
            .as_map()
            .and_then(|m| m.get("configs"))
            .and_then(|c| c.as_map())
        else {
            continue;
        };
        for (key, def) in &configs.entries {
            has_configs = true;
            let name = def
                .as_map()
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
                .unwrap_or_default();
            for var in variables_without_default(name) {
                if var != "STACK_NAME" {
                    config_vars.insert(var, format!("{path}: config {}", key.name));
                }
            }
        }
    }
    let exports = abra_sh
        .as_ref()
        .map(|a| a.exports.clone())
        .unwrap_or_default();
    let problems = config_vars
        .iter()
        .filter(|(var, _)| !exports.contains_key(*var))
        .map(|(var, at)| format!("{at}: {var} is not exported in abra.sh"))
        .collect();
    findings.push(finding(
        "R012",
        Level::Critical,
        "config versions are vendored",
        "vendor config versions in an abra.sh (export NAME_VERSION=v1)",
        if has_configs {
            outcome(problems)
        } else {
            Outcome::Skipped("the recipe has no configs".into())
        },
    ));

    // R013
    findings.push(finding(
        "R013",
        Level::Warn,
        "git.coopcloud.tech repo exists",
        "upload the recipe to git.coopcloud.tech/coop-cloud/<recipe>",
        if input.offline {
            Outcome::Skipped("offline".into())
        } else {
            match &input.origin_url {
                None => Outcome::Skipped("the repository has no origin remote".into()),
                Some(u) if u.contains("git.coopcloud.tech") => Outcome::Ok,
                Some(u) => Outcome::Failed(vec![format!("origin is {u}")]),
            }
        },
    ));

    // R014
    let problems = input
        .tags
        .iter()
        .filter(|t| t.version.is_some() && !t.annotated)
        .map(|t| format!("tag {} is lightweight", t.name))
        .collect();
    findings.push(finding(
        "R014",
        Level::Critical,
        "only annotated tags used for recipe version",
        "replace lightweight tags with annotated tags (git tag -a)",
        outcome(problems),
    ));

    // R015 and C004
    let mut long_keys = BTreeSet::new();
    let mut too_long = BTreeSet::new();
    let max_stack = "x".repeat(stack::MAX_STACK_NAME);
    for (combo, compose) in &stacks {
        for (key, secret) in &compose.secrets {
            if key.len() > 12 {
                long_keys.insert(format!("secret {key} ({} characters)", key.len()));
            }
            let swarm_name = secret
                .name
                .replacen(&stack::stack_name(LINT_DOMAIN), &max_stack, 1);
            if swarm_name.len() > 64 {
                too_long.insert(format!(
                    "secret {key}: {} characters with a {}-character stack name [{}]",
                    swarm_name.len(),
                    stack::MAX_STACK_NAME,
                    combo.join(":")
                ));
            }
        }
    }
    findings.push(finding(
        "R015",
        Level::Warn,
        "long secret names",
        "reduce length of secret names",
        outcome(long_keys.into_iter().collect()),
    ));

    // R016
    let mut documented: BTreeSet<String> = sample
        .as_ref()
        .map(|s| {
            s.entries()
                .map(|e| e.key.clone())
                .chain(s.commented_keys())
                .collect()
        })
        .unwrap_or_default();
    documented.extend(exports.keys().cloned());
    documented.insert("STACK_NAME".into());
    let mut undocumented = BTreeSet::new();
    for (path, tree) in &trees {
        let Some(tree) = tree else {
            continue;
        };
        let mut strings = Vec::new();
        yaml_strings(tree, &mut strings);
        for var in strings.into_iter().flat_map(variables_without_default) {
            if !documented.contains(&var) {
                undocumented.insert(format!("{path}: {var}"));
            }
        }
    }
    findings.push(finding(
        "R016",
        Level::Warn,
        "variables without defaults are documented in .env.sample",
        "add the variable to .env.sample, or give it a default (${VAR:-value})",
        outcome(undocumented.into_iter().collect()),
    ));

    // C001
    let mut problems = Vec::new();
    for (name, s) in &all_services {
        let named: Vec<&str> = s
            .volumes
            .iter()
            .filter(|v| v.kind == "volume" && !v.source.is_empty())
            .map(|v| v.source.as_str())
            .collect();
        if named.is_empty() {
            continue;
        }
        let labels = &s.deploy.labels;
        let decided = labels.contains_key("backupbot.backup");
        let uncovered: Vec<&str> = named
            .into_iter()
            .filter(|v| !decided && !labels.contains_key(&format!("backupbot.backup.volumes.{v}")))
            .collect();
        if !uncovered.is_empty() {
            problems.push(format!(
                "service {name}: volume{} {} not covered by a backupbot.backup label",
                if uncovered.len() == 1 { "" } else { "s" },
                uncovered.join(", ")
            ));
        }
    }
    findings.push(finding(
        "C001",
        Level::Warn,
        "named volumes are backed up or explicitly excluded",
        "add deploy label backupbot.backup=true, or backupbot.backup.volumes.<volume>=false",
        outcome(problems),
    ));

    // C002
    let mut floating = untagged;
    floating.extend(unstable);
    findings.push(finding(
        "C002",
        Level::Critical,
        "no floating image tags",
        "pin every image to a release tag (not latest, main or none)",
        outcome(floating),
    ));

    // C003
    findings.push(finding(
        "C003",
        Level::Critical,
        "changed configs have their version bumped",
        "bump the config's version in abra.sh (export NAME_VERSION=vN+1)",
        config_bumps(input),
    ));

    // C004
    findings.push(finding(
        "C004",
        Level::Critical,
        "secret names fit Docker's 64-character limit",
        "shorten the secret key (Swarm name is <stack>_<key>_<version>)",
        outcome(too_long.into_iter().collect()),
    ));

    // C005
    let mut problems = BTreeSet::new();
    for (combo, c) in &stacks {
        let at = combo.join(":");
        for (name, s) in &c.services {
            for r in &s.secrets {
                if !c.secrets.contains_key(&r.source) {
                    problems.insert(format!(
                        "[{at}] service {name} uses undefined secret {}",
                        r.source
                    ));
                }
            }
            for r in &s.configs {
                if !c.configs.contains_key(&r.source) {
                    problems.insert(format!(
                        "[{at}] service {name} uses undefined config {}",
                        r.source
                    ));
                }
            }
            for net in s.networks.keys() {
                if !c.networks.contains_key(net) {
                    problems.insert(format!(
                        "[{at}] service {name} uses undefined network {net}"
                    ));
                }
            }
            for v in &s.volumes {
                if v.kind == "volume" && !v.source.is_empty() && !c.volumes.contains_key(&v.source)
                {
                    problems.insert(format!(
                        "[{at}] service {name} uses undefined volume {}",
                        v.source
                    ));
                }
            }
        }
    }
    findings.push(finding(
        "C005",
        Level::Critical,
        "services only use defined secrets, configs, networks and volumes",
        "define the object at the top level of the same compose file",
        outcome(problems.into_iter().collect()),
    ));

    // C007
    let mut ambiguous = BTreeSet::new();
    for (path, tree) in &trees {
        let Some(tree) = tree else {
            continue;
        };
        let mut strings = Vec::new();
        yaml_strings(tree, &mut strings);
        for expr in strings
            .into_iter()
            .flat_map(crate::interpolate::ambiguous_expressions)
        {
            ambiguous.insert(format!("{path}: {expr}"));
        }
    }
    findings.push(finding(
        "C007",
        Level::Warn,
        "interpolations mean what they say",
        "brace the variable (${VAR}-suffix) and keep - out of ${VAR:?message}",
        outcome(ambiguous.into_iter().collect()),
    ));

    // C006
    findings.push(finding(
        "C006",
        Level::Critical,
        "every compose file loads",
        "fix the error at the file, line and column shown",
        outcome(load_errors),
    ));

    // C008
    findings.push(finding(
        "C008",
        Level::Warn,
        "an overlay's required settings are in the block that enables it",
        "move the commented setting into the .env.sample block with the overlay's COMPOSE_FILE line",
        outcome(elsewhere),
    ));

    Report {
        recipe: files.recipe.clone(),
        origin: files.origin.to_string(),
        findings,
    }
}

/// C003: between consecutive release tags (and from the newest tag to the files being linted),
/// a config whose file content changed must have a different Swarm name.
fn config_bumps(input: &Input) -> Outcome {
    let Some(repo) = input.repo else {
        return Outcome::Skipped("not a git repository".into());
    };
    let versions: Vec<&Tag> = input.tags.iter().filter(|t| t.version.is_some()).collect();
    let mut snapshots = Vec::new();
    for t in &versions {
        match repo.at_version(&t.name) {
            Ok(f) => snapshots.push((t.name.clone(), f)),
            Err(e) => return Outcome::Skipped(format!("cannot read {}: {e}", t.name)),
        }
    }
    if !input.files.origin.is_chaos()
        || snapshots.last().map(|(_, f)| f.origin.clone()) != Some(input.files.origin.clone())
    {
        snapshots.push(("the files linted".to_string(), input.files.clone()));
    }
    if snapshots.len() < 2 {
        return Outcome::Skipped("fewer than two versions to compare".into());
    }
    let mut problems = Vec::new();
    for pair in snapshots.windows(2) {
        let (old_name, old) = &pair[0];
        let (new_name, new) = &pair[1];
        let (a, b) = (config_contents(old), config_contents(new));
        for (key, ConfigFile { name, content, .. }) in &b {
            if let Some(old_config) = a.get(key) {
                if old_config.name == *name && old_config.content != *content {
                    problems.push(format!(
                        "config {key} changed between {old_name} and {new_name} but is still named {name}"
                    ));
                }
            }
        }
    }
    outcome(problems)
}

/// A config that comes from a recipe file.
pub(crate) struct ConfigFile {
    /// The Swarm name (interpolated).
    pub name: String,
    /// The recipe file it is made from.
    pub file: String,
    pub content: Vec<u8>,
}

/// config key → its Swarm name, file and content, over every combination.
pub(crate) fn config_contents(files: &RecipeFiles) -> BTreeMap<String, ConfigFile> {
    let mut all = BTreeMap::new();
    for (_, compose) in load_combinations(files).stacks {
        for (key, c) in compose.configs {
            if c.file.is_empty() {
                continue;
            }
            let content = files.get(&c.file).map(<[u8]>::to_vec).unwrap_or_default();
            all.insert(
                key,
                ConfigFile {
                    name: c.name,
                    file: c.file,
                    content,
                },
            );
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        assert_eq!(split_image("nginx"), ("nginx", None, None));
        assert_eq!(split_image("nginx:1.27"), ("nginx", Some("1.27"), None));
        assert_eq!(
            split_image("localhost:5000/app:1.0@sha256:abc"),
            ("localhost:5000/app", Some("1.0"), Some("sha256:abc"))
        );
        assert_eq!(
            split_image("localhost:5000/app"),
            ("localhost:5000/app", None, None)
        );
    }

    #[test]
    fn semver_like_tags() {
        assert!(semver_like("1.27.2"));
        assert!(semver_like("v2.4.8"));
        assert!(semver_like("17-3.5"));
        assert!(semver_like("1.0.6-social-amd64"));
        assert!(!semver_like("bookworm"));
    }

    #[test]
    fn variables_without_defaults_are_found() {
        let vars = variables_without_default("${A} ${B:-x} $C $${D} ${E-y} ${F:?m}");
        assert_eq!(vars.into_iter().collect::<Vec<_>>(), vec!["A", "C", "F"]);
    }
}
