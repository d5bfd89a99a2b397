//! The [`Observer`] over any [`Metrics`] backend (Prometheus in the CLI):
//! every configured metric at once, their recent history on a fixed grid,
//! and the firing alerts labelled `tuning_trigger="true"`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use super::ports::{ObserveError, Observer};

use crate::config::units::{format_duration, MAX_DURATION};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::metrics::Sample;

/// The alert label that marks an alert as a verdict on tuning.
pub const TRIGGER_LABEL: &str = "tuning_trigger";

pub struct MetricsObserver<'a> {
    metrics: &'a dyn Metrics,
    /// (name, PromQL) of every configured metric.
    queries: Vec<(String, String)>,
}

impl<'a> MetricsObserver<'a> {
    pub fn new(metrics: &'a dyn Metrics, config: &Config) -> MetricsObserver<'a> {
        let queries = config
            .metrics
            .iter()
            .map(|(name, def)| (name.clone(), def.query.clone()))
            .collect();
        MetricsObserver { metrics, queries }
    }
}

#[async_trait]
impl Observer for MetricsObserver<'_> {
    fn metrics(&self) -> &dyn Metrics {
        self.metrics
    }

    async fn sample(&self) -> Result<Sample, ObserveError> {
        let at = Utc::now();
        let mut values = BTreeMap::new();
        for (name, query) in &self.queries {
            let v = self
                .metrics
                .instant(name, query)
                .await
                .map_err(|e| ObserveError(e.to_string()))?;
            values.insert(name.clone(), v);
        }
        Ok(Sample { at, values })
    }

    /// Range queries over `[now - window, now]`, put on a grid of `step`:
    /// a grid point Prometheus returned nothing for is no data.
    async fn history(&self, window: Duration, step: Duration) -> Result<Vec<Sample>, ObserveError> {
        // Config and flags cap windows at 30 days; checked arithmetic keeps
        // a window that slipped past them an error, not a panic.
        let too_long = || {
            ObserveError(format!(
                "a history of {} in steps of {} is out of range",
                format_duration(window),
                format_duration(step)
            ))
        };
        if window > MAX_DURATION {
            return Err(too_long());
        }
        let step_ms = i64::try_from(step.as_millis().max(1)).map_err(|_| too_long())?;
        let window_ms = i64::try_from(window.as_millis()).map_err(|_| too_long())?;
        let n = (window_ms / step_ms).max(1);
        let end = Utc::now();
        let span = step_ms
            .checked_mul(n - 1)
            .and_then(chrono::Duration::try_milliseconds)
            .ok_or_else(too_long)?;
        let start = end.checked_sub_signed(span).ok_or_else(too_long)?;
        let mut grid: Vec<Sample> = (0..n)
            .map(|i| Sample {
                // At most `end`: every offset is within `span`.
                at: start + chrono::Duration::milliseconds(step_ms * i),
                values: BTreeMap::new(),
            })
            .collect();
        for (name, query) in &self.queries {
            for s in grid.iter_mut() {
                s.values.insert(name.clone(), None);
            }
            let points = self
                .metrics
                .range(name, query, start, end, step)
                .await
                .map_err(|e| ObserveError(e.to_string()))?;
            for p in points {
                let offset = (p.at - start).num_milliseconds();
                let slot = (offset as f64 / step_ms as f64).round();
                if slot >= 0.0 && (slot as i64) < n {
                    grid[slot as usize]
                        .values
                        .insert(name.clone(), Some(p.value).filter(|v| v.is_finite()));
                }
            }
        }
        Ok(grid)
    }

    async fn firing_triggers(&self) -> Result<Vec<String>, ObserveError> {
        let alerts = self
            .metrics
            .alerts()
            .await
            .map_err(|e| ObserveError(e.to_string()))?;
        let mut names: Vec<String> = alerts
            .iter()
            .filter(|a| {
                a.firing() && a.labels.get(TRIGGER_LABEL).map(String::as_str) == Some("true")
            })
            .map(|a| a.name().to_string())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Alert, MetricsError, Point};
    use chrono::DateTime;

    struct FakeMetrics {
        down: bool,
    }

    #[async_trait]
    impl Metrics for FakeMetrics {
        async fn instant(&self, metric: &str, _: &str) -> Result<Option<f64>, MetricsError> {
            if self.down {
                return Err(MetricsError::Unreachable {
                    url: "http://p:9090".into(),
                    reason: "refused".into(),
                });
            }
            Ok(if metric == "wal" { Some(5.0) } else { None })
        }
        async fn range(
            &self,
            metric: &str,
            _: &str,
            start: DateTime<Utc>,
            _: DateTime<Utc>,
            step: Duration,
        ) -> Result<Vec<Point>, MetricsError> {
            // Points at grid slots 0 and 2 only; the one for slot 1 is missing.
            let step = chrono::Duration::from_std(step).unwrap();
            Ok(if metric == "wal" {
                vec![
                    Point {
                        at: start,
                        value: 1.0,
                    },
                    Point {
                        at: start + step * 2,
                        value: 3.0,
                    },
                ]
            } else {
                vec![]
            })
        }
        async fn alerts(&self) -> Result<Vec<Alert>, MetricsError> {
            let alert = |name: &str, trigger: &str, state: &str| Alert {
                labels: [
                    ("alertname".to_string(), name.to_string()),
                    (TRIGGER_LABEL.to_string(), trigger.to_string()),
                ]
                .into(),
                state: state.into(),
                active_at: None,
            };
            Ok(vec![
                alert("WalSpikes", "true", "firing"),
                alert("Pending", "true", "pending"),
                alert("Info", "false", "firing"),
            ])
        }
    }

    fn config() -> Config {
        let text = "prometheus: {url: \"http://p:9090\"}\npostgres: {dsn: \"host=x\"}\nprofile: d\nmetrics:\n  wal: {query: q1, unit: ratio, window: 1m}\n  lat: {query: q2, unit: milliseconds, window: 1m}\nprofiles:\n  d: {wal: \"<= 1\"}\n";
        crate::config::load::from_str(std::path::Path::new("t.yaml"), text).unwrap()
    }

    #[tokio::test]
    async fn samples_every_metric_and_keeps_no_data_as_none() {
        let m = FakeMetrics { down: false };
        let obs = MetricsObserver::new(&m, &config());
        let s = obs.sample().await.unwrap();
        assert_eq!(s.get("wal"), Some(5.0));
        assert_eq!(s.values.get("lat"), Some(&None));
        let down = FakeMetrics { down: true };
        let err = MetricsObserver::new(&down, &config())
            .sample()
            .await
            .unwrap_err();
        assert!(err.0.contains("unreachable"), "{err}");
    }

    #[tokio::test]
    async fn history_is_on_a_grid_with_gaps_as_no_data() {
        let m = FakeMetrics { down: false };
        let h = MetricsObserver::new(&m, &config())
            .history(Duration::from_secs(45), Duration::from_secs(15))
            .await
            .unwrap();
        let wal: Vec<Option<f64>> = h.iter().map(|s| s.get("wal")).collect();
        assert_eq!(wal, [Some(1.0), None, Some(3.0)]);
        assert!(h.iter().all(|s| s.values.contains_key("lat")));
    }

    #[tokio::test]
    async fn an_overlong_history_is_an_error_not_a_panic() {
        let m = FakeMetrics { down: false };
        let obs = MetricsObserver::new(&m, &config());
        let century = Duration::from_secs(100 * 365 * 86_400);
        for (window, step) in [
            (century, Duration::from_secs(15)),
            (Duration::MAX, Duration::from_secs(15)),
            (Duration::from_secs(60), Duration::MAX),
        ] {
            let err = obs.history(window, step).await.unwrap_err();
            assert!(err.0.contains("out of range"), "{err}");
        }
    }

    #[tokio::test]
    async fn only_firing_alerts_labelled_as_triggers_count() {
        let m = FakeMetrics { down: false };
        assert_eq!(
            MetricsObserver::new(&m, &config())
                .firing_triggers()
                .await
                .unwrap(),
            ["WalSpikes"]
        );
    }
}
