//! The `git` program, for what changes repositories (commit, tag, branch, push, clone, pull):
//! it honours the maintainer's identity, signing, hooks, credentials and SSH settings, which
//! a library would have to re-implement. Reading stays with libgit2 (`cooper-recipe::repo`).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{OpsError, Result};

/// Runs `git -C dir args…` without a terminal; returns stdout, or an error with git's stderr.
pub fn run(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| OpsError::Failed(format!("running git (is it installed?): {e}")))?;
    if !out.status.success() {
        return Err(OpsError::Failed(format!(
            "git {} in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// Fails with the fix when git has no identity to commit with.
pub fn check_identity(dir: &Path) -> Result<()> {
    run(dir, &["var", "GIT_COMMITTER_IDENT"]).map(|_| ()).map_err(|_| {
        OpsError::Refused(
            "git has no identity to commit with: set it with `git config --global user.name \"…\"` and `git config --global user.email …`".into(),
        )
    })
}
