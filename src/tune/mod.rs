//! Closed-loop tuning: measure the SLA, pick the cheapest untried lever for
//! the worst symptom, apply it, watch, judge, keep or roll back, record.
//!
//! The cycle is a reconcile: every step starts from the journal and the live
//! system, so a run that died half-way is finished by `tuner rollback`.
//! Judging lives in `crate::judge` (pure), levers and their backends in
//! `crate::levers`; the metrics side is behind the traits in [`ports`], so
//! everything here is tested with in-memory fakes.

mod change;
pub mod cycle;
pub mod error;
pub mod ledger;
pub mod observe;
pub mod ports;
pub mod prometheus;
mod record;
pub mod report;
pub mod restore;
pub mod rollback;
mod verdict;
mod windows;

#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
pub(crate) mod tests;

pub use crate::journal::{Shutdown, Trigger};
pub use cycle::{Context, Options, Tuner};
pub use error::TuneError;
pub use observe::Windows;
pub use ports::{Landed, ObserveError, Observer, Unheard};
pub use report::{CycleReport, DryRunPlan, Outcome, RunReport};
