//! The federation's own practice, pure: its rules as data (decision sizes and how each one
//! passes, dues, the budget buffer), the outcome of a decision at its deadline, and reviews
//! that stay overdue — visibly, with their age — until a meeting's minutes record them held.
//! Time is always a parameter, so the scheduler's clock can be controlled in tests. The store
//! keeps members, proposals, votes and reviews; the dashboard shows them.

pub mod decision;
pub mod dues;
pub mod meetings;
pub mod poll;
pub mod review;
pub mod rules;

pub use decision::{outcome, Ballot, Outcome, Vote};
pub use review::{add_months, Review, ReviewState};
pub use rules::{Rules, Size, SizeKind};

/// A federation error: what is wrong and how to put it right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationError {
    #[error("{0}")]
    Invalid(String),
}
