//! Prometheus: the HTTP API client, the one SLA measurement every command
//! uses, SLA evaluation, and no-data handling.
//!
//! An empty result, NaN or ±Inf is *no data* (`None`), never 0: a silent
//! exporter must never look like a perfect metric.

pub mod baseline;
pub mod client;
pub mod lookback;
pub mod measure;
pub mod sample;
pub mod sla;

pub use baseline::{Baseline, BaselineMetric};
pub use client::{Alert, PrometheusClient, Target};
pub use measure::{measure, MeasureError, WalWindow};
pub use sample::Sample;
pub use sla::{evaluate, Measured, MetricReport, Reading, SlaReport, State, Verdict};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("Prometheus at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus at {url} did not answer within {timeout:?}")]
    Timeout {
        url: String,
        timeout: std::time::Duration,
    },
    #[error("metric {metric}: Prometheus rejected the query {query:?}: {error_type}: {message}")]
    Query {
        metric: String,
        query: String,
        error_type: String,
        message: String,
    },
    #[error("metric {metric}: Prometheus answered HTTP {status} for {query:?}: {body}")]
    Http {
        metric: String,
        query: String,
        status: u16,
        body: String,
    },
    #[error("metric {metric}: the query {query:?} returns {count} series ({labels}), not one; aggregate it to a single series (e.g. `sum(...)`, `max(...)`, or a label selector), since tuner will not pick one for you")]
    SeveralSeries {
        metric: String,
        query: String,
        count: usize,
        labels: String,
    },
    #[error("metric {metric}: cannot decode Prometheus' answer to {query:?}: {reason}")]
    Decode {
        metric: String,
        query: String,
        reason: String,
    },
}

/// One point of a range query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// What the core needs from a metrics backend. `metric` is the name used in
/// error messages; `None` means no data.
#[async_trait]
pub trait Metrics: Send + Sync {
    async fn instant(&self, metric: &str, query: &str) -> Result<Option<f64>, MetricsError>;
    async fn range(
        &self,
        metric: &str,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: std::time::Duration,
    ) -> Result<Vec<Point>, MetricsError>;
    async fn alerts(&self) -> Result<Vec<Alert>, MetricsError>;
}
