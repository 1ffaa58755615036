//! cooper's ledger, pure: money as integer minor units of an ISO currency, the entries
//! (contributions, costs, labour, payouts), the co-op's value equation (a versioned rule),
//! settlements that share a month's funds by it — every amount traced to its entries and rule
//! line, shares that add up to the funds to the minor unit — cost attribution to instances,
//! and imports (Open Collective's transactions export, cooper's CSV template). No I/O: the
//! store keeps entries and settlements, the CLI and the dashboard show them.

pub mod entry;
pub mod import;
pub mod money;
pub mod rule;
pub mod settle;

pub use entry::{Entry, Kind, Period, Recurs, Ref, Status};
pub use money::{apportion, format_amount, parse_amount, Currency, Money, Rate};
pub use rule::{CostKey, Line, Rule, Shortfall};
pub use settle::{settle, Input, Instance, Settlement, Share};

/// A ledger error: what is wrong and how to put it right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("{0}")]
    Invalid(String),
}
