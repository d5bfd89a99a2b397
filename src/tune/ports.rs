//! What the cycle needs from the metrics side.
//! The real observer reads Prometheus (`prometheus.rs`); unit tests use
//! in-memory fakes.

use std::time::Duration;

use async_trait::async_trait;

use super::report::CycleReport;
use crate::metrics::{Metrics, Sample};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ObserveError(pub String);

/// What the cycle needs from the metrics side.
#[async_trait]
pub trait Observer: Send + Sync {
    /// The backend the cycle's SLA readings go through: the one measurement
    /// (`crate::metrics::measure`) that `tuner status` uses too, so the two
    /// cannot disagree. The methods below serve observation windows.
    fn metrics(&self) -> &dyn Metrics;
    /// Every configured metric, now.
    async fn sample(&self) -> Result<Sample, ObserveError>;
    /// The last `window` of every metric at `step`, oldest first: the
    /// "before" window of the first change.
    async fn history(&self, window: Duration, step: Duration) -> Result<Vec<Sample>, ObserveError>;
    /// Names of alerts labelled `tuning_trigger="true"` that are firing now.
    async fn firing_triggers(&self) -> Result<Vec<String>, ObserveError>;
}

/// Hears each change the moment it lands: kept right after its verdict,
/// rolled back once the old value is restored, before the run moves on.
/// The cycle does not wait for the listener's work (the edge posts a
/// notice from its own task), so a slow listener never slows a cycle.
pub trait Landed: Send + Sync {
    fn landed(&self, change: &CycleReport);
}

/// Nobody listening: dry runs and tests that do not care.
pub struct Unheard;

impl Landed for Unheard {
    fn landed(&self, _: &CycleReport) {}
}
