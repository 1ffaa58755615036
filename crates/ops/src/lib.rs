//! cooper's operations on apps: deploy, upgrade, rollback, undeploy, remove, secrets, backups,
//! deployment tests. Each is a plan over the recipe model and the engine that runs inside the
//! operation envelope ([`op::run`]: the app's lock, a [`record::Record`], progress through a
//! [`Reporter`], cancellation, the finished record handed to the front end). The CLI and the
//! dashboard both call these functions; nothing here prints.

pub mod app;
pub mod autoupgrade;
pub mod backup;
pub mod books;
mod browser;
pub mod catalogue;
pub mod deploy;
pub mod export;
pub mod git;
pub mod lifecycle;
pub mod lock;
pub mod maintain;
pub mod op;
pub mod provision;
pub mod record;
pub mod rehearse;
pub mod release;
pub mod secrets;
pub mod server;
pub mod test;

use std::time::Duration;

use cooper_engine::converge::ServiceProgress;
use cooper_engine::{Endpoint, Engine};
use cooper_recipe::abra_dir::{AbraDir, App};

pub use deploy::{deploy, undeploy, DeployKind, DeployRequest, Overview};

/// How an operation talks to the person or program that started it.
pub trait Reporter {
    /// A line of information.
    fn info(&mut self, line: &str);
    /// A new picture of the services being watched.
    fn progress(&mut self, services: &[ServiceProgress]);
    /// Asks to go ahead with what the overview describes (answer `true` without asking when
    /// running unattended).
    fn confirm(&mut self, overview: &Overview) -> bool;
    /// Asks a yes/no question (answer `true` without asking when running unattended).
    fn ask(&mut self, question: &str) -> bool;
    /// An operation finished and its record was saved (the dashboard keeps it as the audit
    /// trail; the CLI has printed what it needed already).
    fn finished(&mut self, _record: &record::Record) {}
}

/// A reporter that answers yes and keeps the lines (tests, unattended runs).
#[derive(Debug, Default)]
pub struct Collect {
    pub lines: Vec<String>,
    pub pictures: usize,
}

impl Reporter for Collect {
    fn info(&mut self, line: &str) {
        self.lines.push(line.to_string());
    }
    fn progress(&mut self, _services: &[ServiceProgress]) {
        self.pictures += 1;
    }
    fn confirm(&mut self, _overview: &Overview) -> bool {
        true
    }
    fn ask(&mut self, question: &str) -> bool {
        self.lines.push(question.to_string());
        true
    }
}

/// Errors of operations. Messages name the fix.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    State(#[from] cooper_recipe::abra_dir::StateError),
    #[error(transparent)]
    Repo(#[from] cooper_recipe::repo::RepoError),
    #[error("{0}")]
    Stack(#[from] cooper_recipe::stack::StackError),
    #[error(transparent)]
    Engine(#[from] cooper_engine::EngineError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
    /// The operation failed and the app does not run as it did before (the way back did not
    /// converge, there was none, or it was declined): someone must look now.
    #[error("{0}")]
    Broken(String),
}

pub type Result<T, E = OpsError> = std::result::Result<T, E>;

/// Connects to the engine of an app's server.
pub async fn connect(abra: &AbraDir, server: &str) -> Result<Engine> {
    let endpoint = Endpoint::for_server(server, &abra.servers_dir().join(server));
    Ok(Engine::connect(server, &endpoint).await?)
}

/// The stack name of an app: its `.env`'s `STACK_NAME`, else the domain's (abra's rule).
pub fn stack_of(app: &App) -> String {
    app.env
        .get("STACK_NAME")
        .map(str::to_string)
        .unwrap_or_else(|| cooper_recipe::stack::stack_name(&app.at.domain))
}

/// The last `n` lines of a text.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The `coop-cloud.<stack>.<key>` label.
pub fn label(stack: &str, key: &str) -> String {
    format!("coop-cloud.{stack}.{key}")
}

/// The default convergence timeout when the recipe sets none (abra's is 50 s, too short for
/// migrations).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Loads an app by domain.
pub fn app(abra: &AbraDir, domain: &str) -> Result<App> {
    Ok(abra.app(domain)?)
}
