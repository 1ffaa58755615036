//! `cooper recipe sync` and `cooper recipe release`: plan a release of a recipe's working tree
//! (next version and why, the version label, config versions counted up, release notes moved,
//! the commit and the annotated tag), show it, then carry it out — or with `--dry-run` stop
//! after showing it, with nothing on disk changed.
//!
//! The step rule and the version format are in `cooper_recipe::release`. Before anything is
//! written the planned files are linted; a failed critical rule refuses the release (shown in
//! the plan; `--skip-lint` overrides).

use std::collections::BTreeMap;
use std::path::PathBuf;

use cooper_recipe::abra_dir::{write_atomic, AbraDir};
use cooper_recipe::lint;
use cooper_recipe::release::{self, Change, ConfigBump};
use cooper_recipe::repo::{Origin, RecipeFiles};
use cooper_recipe::upgrade::Bump;
use cooper_recipe::version::RecipeVersion;
use serde::Serialize;

use crate::{git, OpsError, Result};

/// What to release.
#[derive(Debug, Clone, Default)]
pub struct ReleaseRequest {
    pub recipe: String,
    /// The version to give (default: computed from what changed).
    pub version: Option<String>,
    /// The step to take instead of the computed one.
    pub step: Option<Bump>,
    /// `release` (commit, tag, move notes) rather than `sync` (files only).
    pub commit: bool,
    /// Push the commit and the tag to `origin`.
    pub publish: bool,
}

/// A file the release writes.
#[derive(Debug, Clone, Serialize)]
pub struct FileWrite {
    pub path: String,
    pub what: String,
    #[serde(skip)]
    pub content: Vec<u8>,
}

/// A planned release, shown before it is carried out.
#[derive(Debug, Clone, Serialize)]
pub struct ReleasePlan {
    pub recipe: String,
    pub previous: Option<String>,
    pub version: String,
    pub step: Bump,
    pub changes: Vec<Change>,
    pub config_bumps: Vec<ConfigBump>,
    pub writes: Vec<FileWrite>,
    /// `release/next` → `release/<version>`.
    pub notes: Option<(String, String)>,
    /// Paths the commit will hold (release only).
    pub commit_paths: Vec<String>,
    pub commit_message: Option<String>,
    pub tag: Option<String>,
    /// `origin <branch>` when publishing.
    pub push: Option<String>,
    pub warnings: Vec<String>,
    /// Critical lint rules the planned files fail; `execute` refuses unless told to skip lint.
    pub lint_failures: Vec<String>,
    /// The version's tag exists already (e.g. on an unmerged release branch); `execute` refuses.
    pub tag_exists: bool,
    #[serde(skip)]
    dir: PathBuf,
}

/// The message of the release commit and of the annotated tag (abra's wording).
pub fn release_message(version: &str) -> String {
    format!("chore: publish {version} release")
}

/// Plans a release; changes nothing.
pub fn plan(abra: &AbraDir, req: &ReleaseRequest) -> Result<ReleasePlan> {
    let repo = abra.recipe(&req.recipe)?;
    let tags = repo.tags()?;
    // Tags come sorted, versions first in version order.
    let latest: Option<RecipeVersion> = tags.iter().rev().find_map(|t| t.version.clone());
    let work = repo.worktree()?;
    let previous = match &latest {
        Some(v) => Some(repo.at_version(v.as_str())?),
        None => None,
    };
    let mut warnings = Vec::new();

    let changes = match &previous {
        Some(old) => release::changes(old, &work),
        None => vec![Change {
            bump: Bump::Major,
            what: "first release".into(),
        }],
    };
    let computed = release::step(&changes);
    let since = latest.as_ref().map(|v| v.to_string());
    if computed.is_none() && req.version.is_none() {
        return Err(OpsError::Refused(format!(
            "{}: nothing changed since {} (release notes and the version label do not count); nothing to release",
            req.recipe,
            since.as_deref().unwrap_or("the start")
        )));
    }
    let step = match (req.step, computed) {
        (Some(asked), Some(needed)) if previous.is_some() && asked < needed => {
            warnings.push(format!(
                "a {} step was asked for, but the changes call for a {} step: {}",
                asked,
                needed,
                changes
                    .iter()
                    .filter(|c| c.bump == needed)
                    .map(|c| c.what.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            asked
        }
        (Some(asked), _) => asked,
        (None, c) => c.unwrap_or(Bump::Patch),
    };
    let upstream = release::upstream(&work).map_err(|e| OpsError::Refused(e.to_string()))?;
    let version = match &req.version {
        None => release::next_version(latest.as_ref(), step, &upstream),
        Some(v) => {
            let parsed = RecipeVersion::parse(v).map_err(|e| OpsError::Refused(e.to_string()))?;
            if parsed.is_legacy() || parsed.semver().is_none() {
                return Err(OpsError::Refused(format!(
                    "{v}: give the version as <semver>+<upstream>, e.g. 1.2.0+{upstream}"
                )));
            }
            if let Some(l) = &latest {
                if parsed <= *l {
                    return Err(OpsError::Refused(format!(
                        "{v} is not newer than the last release {l}"
                    )));
                }
            }
            if parsed.upstream() != Some(upstream.as_str()) {
                warnings.push(format!(
                    "{v}: the upstream part differs from the app image's tag {upstream}"
                ));
            }
            v.clone()
        }
    };
    let tag_exists = tags.iter().any(|t| t.name == version);

    // Config versions to count up, then the version label.
    let config_bumps = match &previous {
        Some(old) => release::config_bumps(old, &work, since.as_deref().unwrap_or_default())
            .map_err(|e| OpsError::Refused(e.to_string()))?,
        None => Vec::new(),
    };
    let mut writes = Vec::new();
    if !config_bumps.is_empty() {
        let text = work.text("abra.sh").unwrap_or_default();
        let new = release::bump_abra_sh(&text, &config_bumps);
        writes.push(FileWrite {
            path: "abra.sh".into(),
            what: config_bumps
                .iter()
                .map(|b| {
                    format!(
                        "{} {} → {} (config {} changed)",
                        b.variable, b.from, b.to, b.config
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            content: new.into_bytes(),
        });
    }
    let mut labelled = false;
    for path in work
        .paths()
        .filter(|p| cooper_recipe::compose::is_compose_file(p))
    {
        let text = work.text(path).unwrap_or_default();
        if let Some((new, old)) = release::set_version_label(&text, &version) {
            labelled = true;
            if old.contains('$') {
                warnings.push(format!(
                    "{path}: the version label was the expression {old:?}; it becomes the literal {version}"
                ));
            }
            if new != text {
                writes.push(FileWrite {
                    path: path.to_string(),
                    what: format!(
                        "version label {} → {version}",
                        if old.is_empty() { "(empty)" } else { &old }
                    ),
                    content: new.into_bytes(),
                });
            }
        }
    }
    if !labelled {
        let text = work.text("compose.yml").unwrap_or_default();
        let new = release::insert_version_label("compose.yml", &text, &version)
            .map_err(|e| OpsError::Refused(e.to_string()))?;
        writes.push(FileWrite {
            path: "compose.yml".into(),
            what: format!("version label added: {version}"),
            content: new.into_bytes(),
        });
    }

    let next_notes = work.text("release/next").filter(|t| !t.trim().is_empty());
    let notes_target = format!("release/{version}");
    let notes = (req.commit && next_notes.is_some() && !work.contains(&notes_target))
        .then(|| ("release/next".to_string(), notes_target.clone()));
    if req.commit && next_notes.is_none() && !work.contains(&notes_target) {
        warnings.push(format!(
            "no release notes: write them in release/next (moved to {notes_target}) so operators see them on upgrade"
        ));
    }

    // Lint what the release will hold.
    let planned = planned_files(&work, &writes, notes.as_ref());
    let report = lint::lint(&lint::Input {
        files: &planned,
        tags: &tags,
        repo: Some(&repo),
        origin_url: repo.origin_url(),
        offline: true,
    });
    let critical: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.failed() && f.level == lint::Level::Critical)
        .map(|f| match &f.outcome {
            lint::Outcome::Failed(d) => format!("{} {}: {}", f.rule, f.description, d.join("; ")),
            _ => f.rule.to_string(),
        })
        .collect();

    let mut commit_paths = Vec::new();
    let (mut commit_message, mut tag, mut push) = (None, None, None);
    if req.commit {
        if let Origin::WorkTree { dirty, .. } = &work.origin {
            commit_paths.extend(dirty.iter().cloned());
        }
        commit_paths.extend(writes.iter().map(|w| w.path.clone()));
        if let Some((from, to)) = &notes {
            commit_paths.push(from.clone());
            commit_paths.push(to.clone());
        }
        commit_paths.sort();
        commit_paths.dedup();
        commit_message = Some(release_message(&version));
        tag = Some(version.clone());
        if req.publish {
            let branch = repo.head_branch().ok_or_else(|| {
                OpsError::Refused(format!(
                    "{}: HEAD is detached; check out the branch to publish on",
                    req.recipe
                ))
            })?;
            if repo.origin_url().is_none() {
                return Err(OpsError::Refused(format!(
                    "{}: no origin remote to publish to; add one with `git remote add origin <url>`",
                    req.recipe
                )));
            }
            push = Some(format!("origin {branch}"));
        }
    } else if req.publish {
        return Err(OpsError::Refused(
            "sync writes files only; publish with `cooper recipe release --publish`".into(),
        ));
    }

    Ok(ReleasePlan {
        recipe: req.recipe.clone(),
        previous: since,
        version,
        step,
        changes,
        config_bumps,
        writes,
        notes,
        commit_paths,
        commit_message,
        tag,
        push,
        warnings,
        lint_failures: critical,
        tag_exists,
        dir: repo.path.clone(),
    })
}

/// The working tree's files as the release will leave them.
fn planned_files(
    work: &RecipeFiles,
    writes: &[FileWrite],
    notes: Option<&(String, String)>,
) -> RecipeFiles {
    let mut map: BTreeMap<String, Vec<u8>> = work
        .paths()
        .map(|p| (p.to_string(), work.get(p).unwrap_or_default().to_vec()))
        .collect();
    for w in writes {
        map.insert(w.path.clone(), w.content.clone());
    }
    if let Some((from, to)) = notes {
        if let Some(body) = map.remove(from) {
            map.insert(to.clone(), body);
        }
    }
    RecipeFiles::from_map(&work.recipe, work.origin.clone(), map)
}

/// Carries a plan out: writes, moves the notes, commits, tags, pushes. Refuses a plan whose
/// files fail critical lint rules unless `skip_lint`.
pub fn execute(plan: &ReleasePlan, skip_lint: bool) -> Result<()> {
    if let Some(why) = plan.refusal(skip_lint) {
        return Err(OpsError::Refused(why));
    }
    // Checked here, before anything changes, not when planning: a dry run commits nothing
    // and needs no identity.
    if plan.commit_message.is_some() {
        git::check_identity(&plan.dir)?;
    }
    for w in &plan.writes {
        write_atomic(&plan.dir.join(&w.path), &w.content)?;
    }
    if let Some((from, to)) = &plan.notes {
        let (from, to) = (plan.dir.join(from), plan.dir.join(to));
        std::fs::rename(&from, &to).map_err(|e| {
            OpsError::Failed(format!(
                "moving {} to {}: {e}",
                from.display(),
                to.display()
            ))
        })?;
    }
    let (Some(message), Some(tag)) = (&plan.commit_message, &plan.tag) else {
        return Ok(());
    };
    git::run(&plan.dir, &["add", "-A"])?;
    git::run(&plan.dir, &["commit", "-q", "-m", message])?;
    git::run(&plan.dir, &["tag", "-a", tag, "-m", message])?;
    if plan.push.is_some() {
        git::run(
            &plan.dir,
            &[
                "push",
                "-q",
                "--atomic",
                "origin",
                "HEAD",
                &format!("refs/tags/{tag}"),
            ],
        )?;
    }
    Ok(())
}

impl ReleasePlan {
    /// Why [`execute`] would refuse this plan (an existing tag; critical lint failures unless
    /// `skip_lint`), so a front end can say so before asking to go ahead.
    pub fn refusal(&self, skip_lint: bool) -> Option<String> {
        if self.tag_exists {
            return Some(format!(
                "{}: the tag {} exists already (see `git log {}`); give another version",
                self.recipe, self.version, self.version
            ));
        }
        if !self.lint_failures.is_empty() && !skip_lint {
            return Some(format!(
                "{} {} fails critical lint rules (see `cooper recipe lint {}`; --skip-lint releases anyway): {}",
                self.recipe,
                self.version,
                self.recipe,
                self.lint_failures.join(" | ")
            ));
        }
        None
    }

    /// The plan as lines for people.
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![format!(
            "{} {} → {} ({} step)",
            self.recipe,
            self.previous.as_deref().unwrap_or("(no release yet)"),
            self.version,
            self.step
        )];
        for c in &self.changes {
            out.push(format!("  {}: {}", c.bump, c.what));
        }
        for w in &self.writes {
            out.push(format!("write {}: {}", w.path, w.what));
        }
        if let Some((from, to)) = &self.notes {
            out.push(format!("move {from} → {to}"));
        }
        if let Some(m) = &self.commit_message {
            out.push(format!(
                "commit {} file{} ({}): {m}",
                self.commit_paths.len(),
                if self.commit_paths.len() == 1 {
                    ""
                } else {
                    "s"
                },
                self.commit_paths.join(", ")
            ));
        }
        if let Some(t) = &self.tag {
            out.push(format!("annotated tag {t}"));
        }
        if let Some(p) = &self.push {
            out.push(format!("push to {p} with the tag"));
        }
        for w in &self.warnings {
            out.push(format!("warning: {w}"));
        }
        if self.tag_exists {
            out.push(format!(
                "refused: the tag {} exists already; give another version",
                self.version
            ));
        }
        for f in &self.lint_failures {
            out.push(format!("critical lint failure: {f}"));
        }
        out
    }
}
