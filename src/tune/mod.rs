//! Closed-loop tuning: measure the SLA, pick the cheapest untried lever for
//! the worst symptom, apply it, watch, judge, keep or roll back, record.
//!
//! The cycle is a reconcile: every step starts from the journal and the live
//! system, so a run that died half-way is finished by `tuner rollback`.
//! External systems are behind the traits in [`ports`]; everything here is
//! tested with in-memory fakes.

pub mod aligned;
pub mod backends;
pub mod catalog;
pub mod choose;
pub mod crash;
pub mod cycle;
pub mod error;
pub mod judge;
pub mod ledger;
pub mod observe;
pub mod ports;
pub mod progress;
pub mod prometheus;
mod record;
mod reference;
pub mod render;
pub mod report;
mod restore;
pub mod rollback;
pub mod stats;

#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
mod tests;

pub use catalog::{Catalog, Cost, Lever, Symptom, Target};
pub use cycle::{Context, Options, Tuner};
pub use error::TuneError;
pub use judge::Verdict;
pub use observe::{Shutdown, Trigger, Windows};
pub use ports::{
    BackendError, Disruption, LeverBackend, Move, ObserveError, Observer, Plan, Progress, Sample,
};
pub use report::{CycleReport, DryRunPlan, Outcome, RunReport};
