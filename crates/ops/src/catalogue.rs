//! `cooper catalogue generate|sync`: `$ABRA_DIR/catalogue/recipes.json` in abra's format.
//!
//! generate reads each local recipe repository (README metadata, every release's service
//! images), then looks up the digest of every distinct `image:tag` once, concurrently, in the
//! images' registries (offline: no look-ups, digests left empty; pinned `@sha256` references
//! need none). cooper's lifecycle level of each tested version joins as `cooper_levels`.
//! sync clones or fast-forwards the catalogue repository into `$ABRA_DIR/catalogue`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use cooper_recipe::abra_dir::{write_atomic, AbraDir};
use cooper_recipe::catalogue::{self, Catalogue, RecipeMeta, ServiceMeta};
use cooper_registry::{Client, ImageRef};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::{git, OpsError, Result};

/// Where abra keeps the catalogue clone, and its default remote.
pub const DEFAULT_REMOTE: &str = "https://git.coopcloud.tech/toolshed/recipes-catalogue-json.git";

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// Recipes to (re)generate; empty: every local recipe.
    pub recipes: Vec<String>,
    /// No registry look-ups.
    pub offline: bool,
    /// Registry look-ups in flight at once.
    pub concurrency: usize,
}

impl Default for GenerateRequest {
    fn default() -> Self {
        GenerateRequest {
            recipes: Vec::new(),
            offline: false,
            concurrency: 16,
        }
    }
}

/// Figures of a generate run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GenerateStats {
    pub recipes: usize,
    pub versions: usize,
    /// Service images over all versions.
    pub images: usize,
    /// Distinct `image:tag` references looked up.
    pub lookups: usize,
    /// HTTP requests to registries.
    pub round_trips: usize,
    pub millis: u64,
    /// Versions or look-ups that failed, each with the reason (the rest is still written).
    pub problems: Vec<String>,
}

/// The path of `recipes.json`.
pub fn path(abra: &AbraDir) -> PathBuf {
    abra.root.join("catalogue").join("recipes.json")
}

/// Reads `recipes.json`; `Ok(None)` when there is none.
pub fn read(abra: &AbraDir) -> Result<Option<Catalogue>> {
    let p = path(abra);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(OpsError::Failed(format!("reading {}: {e}", p.display()))),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        OpsError::Failed(format!(
            "{}: line {}, column {}: {e}; run `cooper catalogue sync` (or generate) to replace it",
            p.display(),
            e.line(),
            e.column()
        ))
    })
}

/// Writes `recipes.json` (sorted keys, two-space indents, as abra does).
pub fn write(abra: &AbraDir, c: &Catalogue) -> Result<PathBuf> {
    let p = path(abra);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| OpsError::Failed(format!("creating {}: {e}", dir.display())))?;
    }
    let mut text = serde_json::to_string_pretty(c)
        .map_err(|e| OpsError::Failed(format!("encoding the catalogue: {e}")))?;
    text.push('\n');
    write_atomic(&p, text.as_bytes())?;
    Ok(p)
}

/// The levels `cooper recipe test` stored for a recipe's versions.
fn levels(abra: &AbraDir, recipe: &str) -> BTreeMap<String, u8> {
    let p = abra
        .root
        .join("cooper")
        .join("levels")
        .join(format!("{recipe}.json"));
    let Ok(text) = std::fs::read_to_string(p) else {
        return BTreeMap::new();
    };
    let v: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
    v.into_iter()
        .filter_map(|(k, v)| Some((k, v.get("level")?.as_u64()? as u8)))
        .collect()
}

/// HTTPS and SSH addresses of a recipe repository, from its `origin` remote (abra's defaults
/// on git.coopcloud.tech when there is none).
fn addresses(name: &str, origin: Option<String>) -> (String, String) {
    const HOST: &str = "git.coopcloud.tech";
    match origin {
        Some(o) if o.starts_with("https://") || o.starts_with("http://") => {
            let ssh = o
                .strip_prefix(&format!("https://{HOST}/"))
                .map(|p| format!("ssh://git@{HOST}:2222/{p}"))
                .unwrap_or_default();
            (o, ssh)
        }
        Some(o) if o.starts_with("ssh://") || o.contains('@') => {
            let https = o
                .strip_prefix(&format!("ssh://git@{HOST}:2222/"))
                .map(|p| format!("https://{HOST}/{p}"))
                .unwrap_or_default();
            (https, o)
        }
        Some(o) => (o, String::new()),
        None => (
            format!("https://{HOST}/coop-cloud/{name}.git"),
            format!("ssh://git@{HOST}:2222/coop-cloud/{name}.git"),
        ),
    }
}

/// What a service's image is looked up as.
fn reference(s: &ServiceMeta) -> String {
    format!("{}:{}", s.image, s.tag)
}

/// Generates catalogue entries for local recipes; the caller merges and writes them.
pub async fn generate(
    abra: &AbraDir,
    req: &GenerateRequest,
    client: &Client,
) -> Result<(Catalogue, GenerateStats)> {
    let started = Instant::now();
    let trips_before = client.round_trips();
    let names = if req.recipes.is_empty() {
        abra.recipes()?
    } else {
        req.recipes.clone()
    };
    let mut stats = GenerateStats::default();
    let mut out = Catalogue::new();
    // Pass 1: every recipe and release, from git; the references still without a digest.
    let mut distinct: BTreeSet<String> = BTreeSet::new();
    for name in &names {
        let repo = abra.recipe(name)?;
        let readme = std::fs::read_to_string(repo.path.join("README.md")).unwrap_or_default();
        let readme = catalogue::readme_meta(&readme);
        let (repository, ssh_url) = addresses(name, repo.origin_url());
        let mut meta = RecipeMeta {
            category: readme.category,
            default_branch: repo.head_branch().unwrap_or_else(|| "main".into()),
            description: readme.description,
            features: readme.features,
            name: name.clone(),
            repository,
            ssh_url,
            cooper_levels: levels(abra, name),
            ..Default::default()
        };
        for v in repo.versions()? {
            let files = repo.at_version(v.as_str())?;
            let images = match catalogue::service_images(&files) {
                Ok(i) => i,
                Err(e) => {
                    stats.problems.push(format!("{name} {v}: {e}"));
                    continue;
                }
            };
            stats.images += images.len();
            if !req.offline {
                distinct.extend(
                    images
                        .iter()
                        .filter(|i| i.pinned.is_none())
                        .map(|i| reference(&i.meta())),
                );
            }
            let services = images
                .iter()
                .map(|i| (i.service.clone(), i.meta()))
                .collect();
            meta.versions
                .push(BTreeMap::from([(v.to_string(), services)]));
            stats.versions += 1;
        }
        stats.recipes += 1;
        out.insert(name.clone(), meta);
    }

    // Pass 2: each distinct reference looked up once, concurrently; digests filled in.
    stats.lookups = distinct.len();
    let found: BTreeMap<String, std::result::Result<String, String>> =
        stream::iter(distinct.into_iter().map(|reference| async move {
            let r = match ImageRef::parse(&reference) {
                Ok(r) => client
                    .resolve(&r)
                    .await
                    .map(|d| catalogue::short_digest(&d.digest))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            (reference, r)
        }))
        .buffer_unordered(req.concurrency.max(1))
        .collect()
        .await;
    for (reference, r) in &found {
        if let Err(e) = r {
            stats.problems.push(format!("{reference}: {e}"));
        }
    }
    let services = out
        .values_mut()
        .flat_map(|m| m.versions.iter_mut())
        .flat_map(|v| v.values_mut())
        .flat_map(|v| v.values_mut());
    for s in services.filter(|s| s.digest.is_empty()) {
        if let Some(Ok(d)) = found.get(&reference(s)) {
            s.digest = d.clone();
        }
    }
    stats.round_trips = client.round_trips() - trips_before;
    stats.millis = started.elapsed().as_millis() as u64;
    Ok((out, stats))
}

/// Generates and merges into the existing `recipes.json` (entries of other recipes kept).
pub async fn generate_into(
    abra: &AbraDir,
    req: &GenerateRequest,
    client: &Client,
) -> Result<(PathBuf, GenerateStats)> {
    let (fresh, stats) = generate(abra, req, client).await?;
    let mut all = read(abra)?.unwrap_or_default();
    all.extend(fresh);
    Ok((write(abra, &all)?, stats))
}

/// Commits `recipes.json` in the catalogue clone and pushes it (`generate --publish`).
pub fn publish(abra: &AbraDir) -> Result<String> {
    let dir = abra.root.join("catalogue");
    if !dir.join(".git").exists() {
        return Err(OpsError::Refused(format!(
            "{} is not a git clone; run `cooper catalogue sync` first to publish",
            dir.display()
        )));
    }
    git::check_identity(&dir)?;
    if git::run(&dir, &["status", "--porcelain", "recipes.json"])?.is_empty() {
        return Ok("the catalogue is unchanged; nothing to publish".into());
    }
    git::run(&dir, &["add", "recipes.json"])?;
    git::run(
        &dir,
        &[
            "commit",
            "-q",
            "-m",
            "chore: publish new catalogue release changes",
        ],
    )?;
    git::run(&dir, &["push", "-q", "origin", "HEAD"])?;
    Ok("published the catalogue".into())
}

/// Clones the catalogue (`remote`, default abra's) into `$ABRA_DIR/catalogue`, or fast-forwards
/// the clone there. Returns what was done.
pub fn sync(abra: &AbraDir, remote: Option<&str>) -> Result<String> {
    let dir = abra.root.join("catalogue");
    if dir.join(".git").exists() {
        if let Some(r) = remote {
            git::run(&dir, &["remote", "set-url", "origin", r])?;
        }
        let before = git::run(&dir, &["rev-parse", "HEAD"]).unwrap_or_default();
        git::run(&dir, &["pull", "-q", "--ff-only"]).map_err(|e| {
            OpsError::Failed(format!(
                "{e}; the clone in {} has diverged: look with `git -C {} status`",
                dir.display(),
                dir.display()
            ))
        })?;
        let after = git::run(&dir, &["rev-parse", "HEAD"]).unwrap_or_default();
        return Ok(if before == after {
            "the catalogue is up to date".into()
        } else {
            format!("updated the catalogue to {}", &after[..after.len().min(8)])
        });
    }
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        return Err(OpsError::Refused(format!(
            "{} exists and is not a git clone (a generated recipes.json?); move it away, then sync",
            dir.display()
        )));
    }
    let remote = remote.unwrap_or(DEFAULT_REMOTE);
    let parent = abra.root.clone();
    std::fs::create_dir_all(&parent)
        .map_err(|e| OpsError::Failed(format!("creating {}: {e}", parent.display())))?;
    let _ = std::fs::remove_dir(&dir);
    git::run(&parent, &["clone", "-q", remote, "catalogue"])?;
    Ok(format!("cloned the catalogue from {remote}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn repository_addresses() {
        assert_eq!(
            super::addresses("x", None),
            (
                "https://git.coopcloud.tech/coop-cloud/x.git".into(),
                "ssh://git@git.coopcloud.tech:2222/coop-cloud/x.git".into()
            )
        );
        assert_eq!(
            super::addresses(
                "x",
                Some("ssh://git@git.coopcloud.tech:2222/coop-cloud/x.git".into())
            )
            .0,
            "https://git.coopcloud.tech/coop-cloud/x.git"
        );
        assert_eq!(
            super::addresses("x", Some("/srv/x".into())),
            ("/srv/x".into(), String::new())
        );
    }
}

/// What a scheduled upgrade check found for one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpgradeCheck {
    /// What the app runs (from its services' labels).
    pub running: String,
    /// The newest release above it whose `recipe test` level is at least the minimum.
    pub offer: Option<String>,
    pub level: Option<u8>,
    /// Newer releases held back because they were not tested to the minimum level.
    pub held_back: Vec<String>,
    /// Why the recipe's tags could not be refreshed (the check used the local ones).
    pub fetch_problem: Option<String>,
}

/// The daily upgrade check of an app: refreshes its recipe's tags from `origin` (when it has
/// one), then offers the newest release above the running one whose level in the catalogue
/// (`cooper_levels`) is at least `min_level` (0: any release).
pub async fn upgrade_check(abra: &AbraDir, domain: &str, min_level: u8) -> Result<UpgradeCheck> {
    let app = abra.app(domain)?;
    let engine = crate::connect(abra, &app.at.server).await?;
    let running = crate::deploy::deployed_version(&engine, &crate::stack_of(&app))
        .await?
        .map(|(v, _)| v)
        .ok_or_else(|| {
            OpsError::Refused(format!(
                "{domain} is not deployed: nothing to check (deploy it with `cooper app deploy {domain}`)"
            ))
        })?;
    let recipe = app.recipe.name.clone();
    let dir = abra.recipes_dir().join(&recipe);
    let has_origin = git::run(&dir, &["remote"])
        .map(|r| r.lines().any(|l| l.trim() == "origin"))
        .unwrap_or(false);
    let fetch_problem = if has_origin {
        git::run(&dir, &["fetch", "--tags", "--quiet", "origin"])
            .err()
            .map(|e| e.to_string())
    } else {
        None
    };
    let repo = cooper_recipe::repo::RecipeRepo::open(&recipe, &dir)?;
    let levels = read(abra)?
        .and_then(|mut c| c.remove(&recipe))
        .map(|m| m.cooper_levels)
        .unwrap_or_default();
    let mut check = pick_offer(&repo.versions()?, &running, &levels, min_level);
    check.fetch_problem = fetch_problem;
    Ok(check)
}

/// The newest release above `running` tested to at least `min_level` (0: any), and the newer
/// ones held back on the way down.
pub fn pick_offer(
    versions: &[cooper_recipe::version::RecipeVersion],
    running: &str,
    levels: &BTreeMap<String, u8>,
    min_level: u8,
) -> UpgradeCheck {
    let current = cooper_recipe::version::RecipeVersion::parse(running).ok();
    let mut offer = None;
    let mut held_back = Vec::new();
    for v in versions.iter().rev() {
        if current.as_ref().is_some_and(|c| v <= c) {
            break;
        }
        let name = v.to_string();
        let level = levels.get(&name).copied();
        if min_level == 0 || level.is_some_and(|l| l >= min_level) {
            offer = Some((name, level));
            break;
        }
        held_back.push(name);
    }
    UpgradeCheck {
        running: running.to_string(),
        level: offer.as_ref().and_then(|o| o.1),
        offer: offer.map(|o| o.0),
        held_back,
        fetch_problem: None,
    }
}

#[cfg(test)]
mod upgrade_check_tests {
    use super::*;
    use cooper_recipe::version::RecipeVersion;

    #[test]
    fn only_releases_tested_to_the_minimum_are_offered() {
        let vs: Vec<RecipeVersion> = ["1.0.0+1.0", "1.1.0+1.1", "1.2.0+1.2", "2.0.0+2.0"]
            .iter()
            .map(|v| RecipeVersion::parse(v).unwrap())
            .collect();
        let levels = BTreeMap::from([("1.1.0+1.1".to_string(), 3), ("1.2.0+1.2".to_string(), 2)]);
        let any = pick_offer(&vs, "1.0.0+1.0", &levels, 0);
        assert_eq!(any.offer.as_deref(), Some("2.0.0+2.0"));
        assert!(any.held_back.is_empty());
        let tested = pick_offer(&vs, "1.0.0+1.0", &levels, 2);
        assert_eq!(tested.offer.as_deref(), Some("1.2.0+1.2"));
        assert_eq!(tested.level, Some(2));
        assert_eq!(tested.held_back, ["2.0.0+2.0"]);
        let strict = pick_offer(&vs, "1.0.0+1.0", &levels, 3);
        assert_eq!(strict.offer.as_deref(), Some("1.1.0+1.1"));
        let newest = pick_offer(&vs, "2.0.0+2.0", &levels, 0);
        assert_eq!(newest.offer, None);
        let none_tested = pick_offer(&vs, "1.1.0+1.1", &levels, 4);
        assert_eq!(none_tested.offer, None);
        assert_eq!(none_tested.held_back, ["2.0.0+2.0", "1.2.0+1.2"]);
    }
}
