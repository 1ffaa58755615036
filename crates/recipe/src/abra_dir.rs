//! The abra state directory (`$ABRA_DIR`, default `~/.abra`), read and written exactly as abra
//! does: `servers/<server>/<domain>.env`, `recipes/<name>/` (git repositories), `catalogue/`.
//! An app's server is the directory its `.env` file is in.

use std::path::{Path, PathBuf};

use crate::envfile::{EnvError, EnvFile, RecipeRef};
use crate::repo::{RecipeRepo, RepoError};

/// Errors reading or writing the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no app called {domain:?} in {dir}/servers/*/; apps: {known}", known = list_or_none(.known))]
    AppNotFound {
        domain: String,
        dir: PathBuf,
        known: Vec<String>,
    },
    #[error("app {domain:?} is defined twice: {first} and {second}; remove one of them")]
    AppTwice {
        domain: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{path}: {source}; fix the line (`cooper app config {domain}` opens the file)")]
    BadEnv {
        path: PathBuf,
        domain: String,
        #[source]
        source: EnvError,
    },
    #[error(
        "{path} has no TYPE= (or RECIPE=) line naming its recipe; add `TYPE=<recipe>` at the top"
    )]
    NoRecipe { path: PathBuf },
    #[error("no server called {server:?} in {dir}/servers/; servers: {known}; add it with `cooper server add`", known = list_or_none(.known))]
    ServerNotFound {
        server: String,
        dir: PathBuf,
        known: Vec<String>,
    },
    #[error("{path} already exists; pick another domain or remove it with `cooper app remove`")]
    AppExists { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where an app's `.env` lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRef {
    pub domain: String,
    pub server: String,
    pub path: PathBuf,
}

/// An app: its location, its parsed `.env`, and the recipe it names.
#[derive(Debug, Clone)]
pub struct App {
    pub at: AppRef,
    pub env: EnvFile,
    pub recipe: RecipeRef,
}

impl App {
    /// Writes the `.env` back (only changed lines differ from the file as read).
    pub fn save(&self) -> Result<(), StateError> {
        write_atomic(&self.at.path, self.env.render().as_bytes())
    }

    /// Records a version on the TYPE/RECIPE line, as abra does since 2025.
    pub fn set_version(&mut self, version: Option<&str>) {
        self.recipe.version = version.map(str::to_string);
        let value = self.recipe.value();
        self.env.set(self.recipe.key, &value);
    }
}

/// Writes a file through a temporary file and a rename, so a crash never leaves half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.cooper-tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, data).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct AbraDir {
    pub root: PathBuf,
}

impl AbraDir {
    pub fn new(root: impl Into<PathBuf>) -> AbraDir {
        AbraDir { root: root.into() }
    }

    pub fn servers_dir(&self) -> PathBuf {
        self.root.join("servers")
    }

    pub fn recipes_dir(&self) -> PathBuf {
        self.root.join("recipes")
    }

    pub fn catalogue_dir(&self) -> PathBuf {
        self.root.join("catalogue")
    }

    fn subdirs(dir: &Path) -> Result<Vec<String>, StateError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(dir))?;
            // `is_dir` on the path follows symlinks: abra allows servers/<x> to be a link.
            if entry.path().is_dir() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    out.push(name);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Server names (directories under `servers/`).
    pub fn servers(&self) -> Result<Vec<String>, StateError> {
        Self::subdirs(&self.servers_dir())
    }

    /// Recipe names (directories under `recipes/`).
    pub fn recipes(&self) -> Result<Vec<String>, StateError> {
        Self::subdirs(&self.recipes_dir())
    }

    /// Every app, sorted by server then domain.
    pub fn apps(&self) -> Result<Vec<AppRef>, StateError> {
        let mut out = Vec::new();
        for server in self.servers()? {
            let dir = self.servers_dir().join(&server);
            for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
                let entry = entry.map_err(io(&dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(domain) = name.strip_suffix(".env") {
                    if !domain.is_empty() && !name.starts_with('.') && entry.path().is_file() {
                        out.push(AppRef {
                            domain: domain.to_string(),
                            server: server.clone(),
                            path: entry.path(),
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| (&a.server, &a.domain).cmp(&(&b.server, &b.domain)));
        Ok(out)
    }

    /// Finds an app by domain.
    pub fn find_app(&self, domain: &str) -> Result<AppRef, StateError> {
        let apps = self.apps()?;
        let mut matches = apps.iter().filter(|a| a.domain == domain);
        let first = matches
            .next()
            .cloned()
            .ok_or_else(|| StateError::AppNotFound {
                domain: domain.to_string(),
                dir: self.root.clone(),
                known: apps.iter().map(|a| a.domain.clone()).collect(),
            })?;
        if let Some(second) = matches.next() {
            return Err(StateError::AppTwice {
                domain: domain.to_string(),
                first: first.path,
                second: second.path.clone(),
            });
        }
        Ok(first)
    }

    /// Reads an app's `.env`.
    pub fn load_app(&self, at: AppRef) -> Result<App, StateError> {
        let text = std::fs::read_to_string(&at.path).map_err(io(&at.path))?;
        let env = EnvFile::parse(&text).map_err(|source| StateError::BadEnv {
            path: at.path.clone(),
            domain: at.domain.clone(),
            source,
        })?;
        let recipe = RecipeRef::from_env(&env).ok_or_else(|| StateError::NoRecipe {
            path: at.path.clone(),
        })?;
        Ok(App { at, env, recipe })
    }

    /// Finds and reads an app.
    pub fn app(&self, domain: &str) -> Result<App, StateError> {
        let at = self.find_app(domain)?;
        self.load_app(at)
    }

    /// Opens a recipe repository, listing the known ones if it is missing.
    pub fn recipe(&self, name: &str) -> Result<RecipeRepo, StateError> {
        let path = self.recipes_dir().join(name);
        if !path.is_dir() {
            return Err(RepoError::NotFound {
                name: name.to_string(),
                dir: self.recipes_dir(),
                known: self.recipes()?,
            }
            .into());
        }
        Ok(RecipeRepo::open(name, &path)?)
    }

    /// An app's recipe files: the version on its TYPE line unless `choice` says otherwise (see
    /// [`crate::stack::select_files`]).
    pub fn app_files(
        &self,
        app: &App,
        choice: &crate::stack::VersionChoice,
    ) -> Result<crate::repo::RecipeFiles, StateError> {
        let repo = self.recipe(&app.recipe.name)?;
        Ok(crate::stack::select_files(
            &repo,
            app.recipe.version.as_deref(),
            choice,
        )?)
    }

    /// Where a new app's `.env` goes; the server must exist.
    pub fn new_app_path(&self, server: &str, domain: &str) -> Result<PathBuf, StateError> {
        let servers = self.servers()?;
        if !servers.iter().any(|s| s == server) {
            return Err(StateError::ServerNotFound {
                server: server.to_string(),
                dir: self.root.clone(),
                known: servers,
            });
        }
        if let Ok(existing) = self.find_app(domain) {
            return Err(StateError::AppExists {
                path: existing.path,
            });
        }
        Ok(self
            .servers_dir()
            .join(server)
            .join(format!("{domain}.env")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_apps_by_server_directory() {
        let dir = tempfile::tempdir().unwrap();
        let abra = AbraDir::new(dir.path());
        std::fs::create_dir_all(dir.path().join("servers/one.example.org")).unwrap();
        std::fs::create_dir_all(dir.path().join("servers/two")).unwrap();
        std::fs::write(
            dir.path().join("servers/one.example.org/a.example.org.env"),
            "TYPE=gaseous:0.1.0+4.3.1\nDOMAIN=a.example.org\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("servers/two/b.example.org.env"),
            "RECIPE=bonfire\n",
        )
        .unwrap();
        let apps = abra.apps().unwrap();
        assert_eq!(apps.len(), 2);
        let a = abra.app("a.example.org").unwrap();
        assert_eq!(a.at.server, "one.example.org");
        assert_eq!(a.recipe.name, "gaseous");
        assert_eq!(a.recipe.version.as_deref(), Some("0.1.0+4.3.1"));
        let b = abra.app("b.example.org").unwrap();
        assert_eq!(b.recipe.key, "RECIPE");
        let err = abra.app("c.example.org").unwrap_err().to_string();
        assert!(err.contains("a.example.org, b.example.org"), "{err}");
    }

    #[test]
    fn set_version_rewrites_only_the_type_line() {
        let dir = tempfile::tempdir().unwrap();
        let abra = AbraDir::new(dir.path());
        std::fs::create_dir_all(dir.path().join("servers/s")).unwrap();
        let original = "# my app\nTYPE=gaseous # keep me\nDOMAIN=a.example.org\n";
        std::fs::write(dir.path().join("servers/s/a.example.org.env"), original).unwrap();
        let mut app = abra.app("a.example.org").unwrap();
        app.set_version(Some("0.2.0+4.3.2"));
        app.save().unwrap();
        let text = std::fs::read_to_string(dir.path().join("servers/s/a.example.org.env")).unwrap();
        assert_eq!(
            text,
            "# my app\nTYPE=gaseous:0.2.0+4.3.2 # keep me\nDOMAIN=a.example.org\n"
        );
    }

    #[test]
    fn bad_env_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let abra = AbraDir::new(dir.path());
        std::fs::create_dir_all(dir.path().join("servers/s")).unwrap();
        std::fs::write(
            dir.path().join("servers/s/a.example.org.env"),
            "TYPE=x\noops no equals\n",
        )
        .unwrap();
        let err = abra.app("a.example.org").unwrap_err().to_string();
        assert!(err.contains("a.example.org.env: line 2"), "{err}");
    }
}
