//! One module per command group; each owns its clap types and `run`.

pub mod app;
pub mod completion;
pub mod recipe;
pub mod server;
