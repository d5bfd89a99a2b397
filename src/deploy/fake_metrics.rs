//! An in-memory Prometheus for the promotion gate's unit tests (the
//! container swap's and Swarm's): each check answers from its own script,
//! one answer per query, then a fallback once the script is used up.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::metrics::{Alert, Metrics, MetricsError, Point};

/// What Prometheus says to one query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Answer {
    Value(f64),
    /// An empty result.
    NoData,
    /// The connection is refused.
    Unreachable,
}

pub(super) struct ScriptedMetrics {
    scripts: Mutex<HashMap<String, VecDeque<Answer>>>,
    /// Once a check's script is used up, or for a check without one.
    fallback: Answer,
}

impl ScriptedMetrics {
    /// Every query gets `answer`.
    pub(super) fn always(answer: Answer) -> ScriptedMetrics {
        ScriptedMetrics {
            scripts: Mutex::new(HashMap::new()),
            fallback: answer,
        }
    }

    /// Check `metric` answers `values` in turn (`None`: no data), then no data.
    pub(super) fn script(metric: &str, values: &[Option<f64>]) -> ScriptedMetrics {
        let answers = values
            .iter()
            .map(|v| v.map_or(Answer::NoData, Answer::Value))
            .collect();
        ScriptedMetrics {
            scripts: Mutex::new(HashMap::from([(metric.to_string(), answers)])),
            fallback: Answer::NoData,
        }
    }
}

#[async_trait]
impl Metrics for ScriptedMetrics {
    async fn instant(&self, metric: &str, query: &str) -> Result<Option<f64>, MetricsError> {
        let next = self
            .scripts
            .lock()
            .unwrap()
            .get_mut(metric)
            .and_then(VecDeque::pop_front)
            .unwrap_or(self.fallback);
        match next {
            Answer::Value(v) => Ok(Some(v)),
            Answer::NoData => Ok(None),
            Answer::Unreachable => Err(MetricsError::Unreachable {
                url: format!("http://127.0.0.1:9 ({query})"),
                reason: "connection refused".into(),
            }),
        }
    }

    async fn range(
        &self,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: Duration,
    ) -> Result<Vec<Point>, MetricsError> {
        Ok(Vec::new())
    }

    async fn alerts(&self) -> Result<Vec<Alert>, MetricsError> {
        Ok(Vec::new())
    }
}
