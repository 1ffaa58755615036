//! cooper's Docker Engine client, over the local socket or SSH (bollard).
//!
//! - `connect`: find and reach a server's engine; check it is a Swarm manager.
//! - `convert`: a loaded stack → Swarm network, config, secret and service specs, the way
//!   `docker stack deploy` converts them.
//! - `apply`: create/update/remove what a stack needs; snapshot what ran before.
//! - `converge`: watch services until they run the new spec (or fail), from the event stream
//!   plus inspection.
//! - `secrets`, `inspect`: secrets by name, tasks, logs, errors.
//! - `oneshot`: short-lived helper containers (restic) fed secrets on standard input.
//!
//! This crate never prints; progress goes through callbacks and results are values.

pub mod apply;
pub mod connect;
pub mod converge;
pub mod convert;
pub mod exec;
pub mod inspect;
pub mod nodes;
pub mod oneshot;
pub mod secrets;

pub use connect::{Endpoint, Engine};

/// The label every object of a stack carries (as `docker stack deploy` sets it).
pub const STACK_LABEL: &str = "com.docker.stack.namespace";

/// Errors talking to an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach server {server} ({endpoint}): {cause}\n  check: {hint}")]
    Unreachable {
        server: String,
        endpoint: String,
        cause: String,
        hint: String,
    },
    #[error("server {server} is not a Swarm manager ({state}); run `docker swarm init` on it (or join it to a Swarm as a manager)")]
    NotSwarmManager { server: String, state: String },
    /// An API call failed; the message is the engine's own words (the `source` is kept for
    /// matching but not repeated in the message).
    #[error("{context}: {}", api_message(source))]
    Api {
        context: String,
        source: bollard::errors::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl EngineError {
    /// Wraps an API error with what was being done.
    pub fn api(context: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> EngineError {
        let context = context.into();
        move |source| EngineError::Api { context, source }
    }

    /// The HTTP status of an API error, if it is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            EngineError::Api {
                source: bollard::errors::Error::DockerResponseServerError { status_code, .. },
                ..
            } => Some(*status_code),
            _ => None,
        }
    }
}

/// The error text the engine sent, without bollard's wrapping.
pub fn api_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
