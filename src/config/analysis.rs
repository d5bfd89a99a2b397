//! `deploy.analysis:` the promotion gate, SLO checks in PromQL judged on
//! the new containers or tasks once they are healthy, with Argo Rollouts'
//! limits: `failure_limit` failed measurements and `error_limit`
//! consecutive measurements without a value are tolerated, no more.

use std::time::Duration;

use serde::Deserialize;

use super::de_duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Time between two measurements of every check.
    #[serde(deserialize_with = "de_duration", default = "default_interval")]
    pub interval: Duration,
    /// Measurements per check.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Failed measurements tolerated per check (more fails the gate).
    #[serde(default)]
    pub failure_limit: u32,
    /// Consecutive measurements without a value (no data, Prometheus
    /// unreachable) tolerated per check (more fails the gate).
    #[serde(default)]
    pub error_limit: u32,
    pub checks: Vec<CheckConfig>,
}

fn default_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_count() -> u32 {
    3
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub name: String,
    /// PromQL giving one number (the service's error rate, p95 latency, ...).
    pub query: String,
    /// The value must stay at or below this.
    pub max: Option<f64>,
    /// The value must stay at or above this.
    pub min: Option<f64>,
}
