//! One module per command group; each owns its clap types and `run`.

pub mod app;
pub mod apptest;
pub mod backup;
pub mod catalogue;
pub mod completion;
pub mod federation;
pub mod ledger;
pub mod lifecycle;
pub mod operate;
pub mod recipe;
pub mod secret;
pub mod serve;
pub mod server;
