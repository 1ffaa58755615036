//! Deployment tests that travel with a recipe: the suite format read from the recipe's
//! `tests/` folder at the deployed version (`suite`), and the reports of a run (`report`:
//! JUnit XML, JSON). Running them against an app is `cooper_ops::test`. Pure: no engine, no
//! network.

pub mod report;
pub mod suite;

pub use report::{Outcome, RunReport, StepResult};
pub use suite::{Action, Step, Suite, SuiteError};
