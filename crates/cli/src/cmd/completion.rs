//! `cooper autocomplete <shell>`: prints a completion script.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct Completion {
    /// bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

impl Completion {
    pub fn run(self) -> anyhow::Result<u8> {
        let mut cmd = crate::Cli::command();
        clap_complete::generate(self.shell, &mut cmd, "cooper", &mut std::io::stdout());
        Ok(0)
    }
}
