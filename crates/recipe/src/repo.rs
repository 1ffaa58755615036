//! A recipe's git repository and its files at a version.
//!
//! Files at a tag or commit are read straight from the git object store into memory, so the
//! operator's working tree is never checked out or touched (abra's shared-checkout race).
//! Chaos mode reads the working tree as it is, uncommitted changes included, and says so.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::version::RecipeVersion;

/// Errors reading a recipe repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("recipe {name:?} is not in {dir}; known recipes: {known}", known = if .known.is_empty() { "none".to_string() } else { .known.join(", ") })]
    NotFound {
        name: String,
        dir: PathBuf,
        known: Vec<String>,
    },
    #[error("{path} is not a git repository: {source}")]
    NotGit {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("recipe {recipe} has no version {wanted:?}; it has: {known}", known = if .available.is_empty() { "no release tags (deploy with --chaos to use the working tree)".to_string() } else { .available.join(", ") })]
    UnknownVersion {
        recipe: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("reading recipe {recipe}: {source}")]
    Git {
        recipe: String,
        #[source]
        source: git2::Error,
    },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One tag of the recipe repository.
#[derive(Debug, Clone)]
pub struct Tag {
    pub name: String,
    /// Annotated tags carry a message and a tagger; lightweight ones do not (lint R014).
    pub annotated: bool,
    pub message: Option<String>,
    pub commit: String,
    /// The parsed version, when the tag is one.
    pub version: Option<RecipeVersion>,
}

/// Where a set of recipe files came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A release tag.
    Tag { version: String, commit: String },
    /// A commit named by hash or ref.
    Commit { commit: String },
    /// The working tree (chaos): HEAD's commit, and the paths that differ from it.
    WorkTree {
        head: Option<String>,
        dirty: Vec<String>,
    },
}

impl Origin {
    /// The version string cooper records for a deploy from these files: the tag, the short
    /// commit, or the short HEAD commit with `+U` when the tree has uncommitted changes.
    pub fn version_label(&self) -> String {
        match self {
            Origin::Tag { version, .. } => version.clone(),
            Origin::Commit { commit } => commit[..commit.len().min(8)].to_string(),
            Origin::WorkTree { head, dirty } => {
                let short = head
                    .as_deref()
                    .map(|h| &h[..h.len().min(8)])
                    .unwrap_or("unborn");
                if dirty.is_empty() {
                    short.to_string()
                } else {
                    format!("{short}+U")
                }
            }
        }
    }

    pub fn is_chaos(&self) -> bool {
        matches!(self, Origin::WorkTree { .. })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Tag { version, .. } => write!(f, "version {version}"),
            Origin::Commit { commit } => write!(f, "commit {}", &commit[..commit.len().min(8)]),
            Origin::WorkTree { dirty, .. } if dirty.is_empty() => {
                write!(f, "working tree (clean)")
            }
            Origin::WorkTree { dirty, .. } => write!(
                f,
                "working tree ({} uncommitted change{}: {})",
                dirty.len(),
                if dirty.len() == 1 { "" } else { "s" },
                dirty.join(", ")
            ),
        }
    }
}

/// A recipe's files at one version, held in memory.
#[derive(Debug, Clone)]
pub struct RecipeFiles {
    pub recipe: String,
    pub origin: Origin,
    files: BTreeMap<String, Vec<u8>>,
}

impl RecipeFiles {
    /// Builds a file set by hand (tests, `recipe new`).
    pub fn from_map(recipe: &str, origin: Origin, files: BTreeMap<String, Vec<u8>>) -> Self {
        RecipeFiles {
            recipe: recipe.to_string(),
            origin,
            files,
        }
    }

    /// Reads a plain directory (not necessarily a git repository) as a recipe's files.
    pub fn from_dir(recipe: &str, dir: &Path) -> Result<Self, RepoError> {
        let mut files = BTreeMap::new();
        walk_dir(dir, dir, &mut files)?;
        Ok(RecipeFiles {
            recipe: recipe.to_string(),
            origin: Origin::WorkTree {
                head: None,
                dirty: Vec::new(),
            },
            files,
        })
    }

    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    pub fn text(&self, path: &str) -> Option<String> {
        self.get(path)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }
}

/// An opened recipe repository.
pub struct RecipeRepo {
    pub name: String,
    pub path: PathBuf,
    repo: git2::Repository,
}

impl fmt::Debug for RecipeRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipeRepo")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

const MAX_FILE: u64 = 4 << 20;

impl RecipeRepo {
    pub fn open(name: &str, path: &Path) -> Result<RecipeRepo, RepoError> {
        let repo = git2::Repository::open(path).map_err(|source| RepoError::NotGit {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(RecipeRepo {
            name: name.to_string(),
            path: path.to_path_buf(),
            repo,
        })
    }

    fn git<T>(&self, r: Result<T, git2::Error>) -> Result<T, RepoError> {
        r.map_err(|source| RepoError::Git {
            recipe: self.name.clone(),
            source,
        })
    }

    /// All tags, sorted with release versions in version order first, then other tags by name.
    pub fn tags(&self) -> Result<Vec<Tag>, RepoError> {
        let names = self.git(self.repo.tag_names(None))?;
        let mut tags = Vec::new();
        for name in names.iter().flatten() {
            let reference = self.git(self.repo.find_reference(&format!("refs/tags/{name}")))?;
            let tag_object = reference
                .target()
                .and_then(|oid| self.repo.find_tag(oid).ok());
            let (annotated, message) = match tag_object {
                Some(t) => (true, t.message().map(|m| m.trim().to_string())),
                None => (false, None),
            };
            let commit = self.git(reference.peel_to_commit())?.id().to_string();
            tags.push(Tag {
                name: name.to_string(),
                annotated,
                message,
                commit,
                version: RecipeVersion::parse(name).ok(),
            });
        }
        tags.sort_by(|a, b| match (&a.version, &b.version) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.name.cmp(&b.name),
        });
        Ok(tags)
    }

    /// Release versions, oldest first.
    pub fn versions(&self) -> Result<Vec<RecipeVersion>, RepoError> {
        Ok(self.tags()?.into_iter().filter_map(|t| t.version).collect())
    }

    /// The newest release, if any.
    pub fn latest(&self) -> Result<Option<RecipeVersion>, RepoError> {
        Ok(self.versions()?.pop())
    }

    /// The files at a release tag.
    pub fn at_version(&self, version: &str) -> Result<RecipeFiles, RepoError> {
        let tag = self
            .tags()?
            .into_iter()
            .find(|t| t.name == version)
            .ok_or_else(|| RepoError::UnknownVersion {
                recipe: self.name.clone(),
                wanted: version.to_string(),
                available: self
                    .versions()
                    .unwrap_or_default()
                    .iter()
                    .map(|v| v.to_string())
                    .collect(),
            })?;
        let commit = self.git(
            self.repo
                .find_commit(self.git(git2::Oid::from_str(&tag.commit))?),
        )?;
        let files = self.read_tree(&self.git(commit.tree())?)?;
        Ok(RecipeFiles {
            recipe: self.name.clone(),
            origin: Origin::Tag {
                version: tag.name,
                commit: tag.commit,
            },
            files,
        })
    }

    /// The files at a tag, or at any commit-ish (hash, branch) when no tag has that name.
    pub fn at_revision(&self, rev: &str) -> Result<RecipeFiles, RepoError> {
        if self.tags()?.iter().any(|t| t.name == rev) {
            return self.at_version(rev);
        }
        let commit = self
            .repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(|_| RepoError::UnknownVersion {
                recipe: self.name.clone(),
                wanted: rev.to_string(),
                available: self
                    .versions()
                    .unwrap_or_default()
                    .iter()
                    .map(|v| v.to_string())
                    .collect(),
            })?;
        let files = self.read_tree(&self.git(commit.tree())?)?;
        Ok(RecipeFiles {
            recipe: self.name.clone(),
            origin: Origin::Commit {
                commit: commit.id().to_string(),
            },
            files,
        })
    }

    fn read_tree(&self, tree: &git2::Tree) -> Result<BTreeMap<String, Vec<u8>>, RepoError> {
        let mut files = BTreeMap::new();
        let mut failure = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() != Some(git2::ObjectType::Blob) {
                return git2::TreeWalkResult::Ok;
            }
            let path = format!("{dir}{}", entry.name().unwrap_or_default());
            match self.repo.find_blob(entry.id()) {
                Ok(blob) if blob.size() as u64 <= MAX_FILE => {
                    files.insert(path, blob.content().to_vec());
                }
                Ok(_) => {}
                Err(e) => {
                    failure = Some(e);
                    return git2::TreeWalkResult::Abort;
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(|source| RepoError::Git {
            recipe: self.name.clone(),
            source,
        })?;
        if let Some(source) = failure {
            return Err(RepoError::Git {
                recipe: self.name.clone(),
                source,
            });
        }
        Ok(files)
    }

    /// The working tree as it is (chaos mode): tracked and untracked files, `.git` excluded.
    pub fn worktree(&self) -> Result<RecipeFiles, RepoError> {
        let head = self
            .repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .map(|c| c.id().to_string());
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true);
        let statuses = self.git(self.repo.statuses(Some(&mut opts)))?;
        let dirty: Vec<String> = statuses
            .iter()
            .filter(|s| !s.status().is_ignored())
            .filter_map(|s| s.path().map(str::to_string))
            .collect();
        let mut files = BTreeMap::new();
        walk_dir(&self.path, &self.path, &mut files)?;
        Ok(RecipeFiles {
            recipe: self.name.clone(),
            origin: Origin::WorkTree { head, dirty },
            files,
        })
    }

    /// The release notes for a version (`release/<version>`), read at the newest commit that has
    /// them (notes are often written after the tag).
    pub fn release_notes(&self, version: &str) -> Option<String> {
        let path = format!("release/{version}");
        let from_head = self
            .repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_tree().ok())
            .and_then(|t| t.get_path(Path::new(&path)).ok())
            .and_then(|e| self.repo.find_blob(e.id()).ok())
            .map(|b| String::from_utf8_lossy(b.content()).into_owned());
        from_head.or_else(|| {
            self.at_version(version)
                .ok()
                .and_then(|files| files.text(&path))
        })
    }

    /// The checked-out branch; `None` on a detached (or unborn) HEAD.
    pub fn head_branch(&self) -> Option<String> {
        let head = self.repo.head().ok()?;
        head.is_branch()
            .then(|| head.shorthand().map(str::to_string))
            .flatten()
    }

    /// The `origin` remote's URL, from the repository config (no network).
    pub fn origin_url(&self) -> Option<String> {
        self.repo
            .find_remote("origin")
            .ok()
            .and_then(|r| r.url().map(str::to_string))
    }

    /// Whether the working tree has uncommitted changes, and which paths.
    pub fn dirty_paths(&self) -> Result<Vec<String>, RepoError> {
        match self.worktree()?.origin {
            Origin::WorkTree { dirty, .. } => Ok(dirty),
            _ => Ok(Vec::new()),
        }
    }
}

fn walk_dir(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> Result<(), RepoError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RepoError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        if entry.file_name() == ".git" {
            continue;
        }
        let meta = entry.metadata().map_err(io(&path))?;
        if meta.is_dir() {
            walk_dir(root, &path, out)?;
        } else if meta.is_file() && meta.len() <= MAX_FILE {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(rel, std::fs::read(&path).map_err(io(&path))?);
        }
    }
    Ok(())
}
