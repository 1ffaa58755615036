//! cooper's pure recipe model.
//!
//! Everything here is a function of files: app `.env` files, a recipe's files at a version
//! (read from the git object store, never by checking out the shared working tree), compose
//! loading, versions and lint. This crate does no network or container-engine I/O.

pub mod abra_dir;
pub mod abrash;
pub mod backup;
pub mod catalogue;
pub mod compose;
pub mod envfile;
pub mod interpolate;
pub mod lint;
pub mod release;
pub mod repo;
pub mod secrets;
pub mod stack;
pub mod upgrade;
pub mod version;
pub mod wizard;
pub mod yaml;
