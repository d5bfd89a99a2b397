//! The one SLA measurement. `tuner status`, the tune cycle and any gate read
//! the SLA through [`measure`], so they issue the same queries, read WAL the
//! same way, and reach the same states and verdict for the same moment.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;

use super::sla::{evaluate, Measured, Reading, SlaReport};
use super::{Baseline, Metrics, MetricsError, Sample};
use crate::config::{Config, MetricDef};

/// The symptom of a metric that measures WAL volume (DESIGN.md vocabulary).
pub const WAL_SYMPTOM: &str = "high_wal_rate";

/// A metric whose symptom is WAL volume. WAL comes in full-page-image bursts
/// after each checkpoint, so such a metric is read as a window's mean: an
/// instant may fall on the floor between bursts and call the SLA met.
pub fn is_wal_metric(def: &MetricDef) -> bool {
    def.symptom.as_deref().map(str::trim) == Some(WAL_SYMPTOM)
}

/// The window WAL metrics are averaged over.
#[derive(Debug, Clone, Copy)]
pub enum WalWindow<'a> {
    /// Prometheus' history: the last `span`, a point every `step`.
    History { span: Duration, step: Duration },
    /// Samples the tune cycle observed in a window opened by a CHECKPOINT:
    /// both windows it compares start at the same point of the WAL cycle,
    /// which Prometheus' history does not.
    FromCheckpoint(&'a [Sample]),
}

impl WalWindow<'static> {
    /// `tune.observe` at `tune.sample_interval`: the window the tune cycle
    /// reads before its first change, so `status` reads the same one.
    pub fn from_config(config: &Config) -> WalWindow<'static> {
        let tune = config.tune.clone().unwrap_or_default();
        WalWindow::History {
            span: tune.observe,
            step: tune.sample_interval,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// Prometheus did not answer, or refused the request (a runtime
    /// failure, exit 1).
    #[error(transparent)]
    Unreachable(MetricsError),
    /// Prometheus answered and refused or garbled queries: the config's to
    /// fix (exit 2).
    #[error("fix the metric queries in {}:\n  {}", config.display(), problems.join("\n  "))]
    Queries {
        config: PathBuf,
        problems: Vec<String>,
    },
}

impl MeasureError {
    pub fn is_usage(&self) -> bool {
        matches!(self, MeasureError::Queries { .. })
    }
}

/// Reads every configured metric, concurrently, and judges it against the
/// active profile: an instant for each, and for WAL metrics the mean over
/// `wal`. Any failed query fails the whole reading: a half-measured SLA must
/// not read as healthy.
pub async fn measure(
    metrics: &dyn Metrics,
    config: &Config,
    baseline: Option<&Baseline>,
    wal: WalWindow<'_>,
) -> Result<SlaReport, MeasureError> {
    let at = Utc::now();
    let history = match wal {
        WalWindow::History { span, step } => Some(grid(at, span, step)),
        WalWindow::FromCheckpoint(_) => None,
    };
    let instants = config
        .metrics
        .iter()
        .map(|(name, def)| async move { (name, metrics.instant(name, &def.query).await) });
    let ranges = config
        .metrics
        .iter()
        .filter(|(_, def)| is_wal_metric(def))
        .filter_map(|(name, def)| Some((name, def, history?)))
        .map(|(name, def, g)| async move {
            let points = metrics.range(name, &def.query, g.from, g.to, g.step).await;
            (name, points.map(|p| mean_of(p.iter().map(|p| p.value))))
        });
    let (instants, ranges) = futures::join!(join_all(instants), join_all(ranges));

    let mut problems = Vec::new();
    let mut now = BTreeMap::new();
    for (name, result) in instants {
        if let Some(v) = keep(result, &mut problems)? {
            now.insert(name.as_str(), v);
        }
    }
    let mut wal_reads: BTreeMap<&str, (Option<f64>, Reading)> = BTreeMap::new();
    for (name, result) in ranges {
        if let (Some((mean, points)), Some(g)) = (keep(result, &mut problems)?, history) {
            let reading = Reading::HistoryMean {
                from: g.from,
                to: g.to,
                step_seconds: g.step.as_secs_f64(),
                points,
            };
            wal_reads.insert(name.as_str(), (mean, reading));
        }
    }
    if !problems.is_empty() {
        return Err(MeasureError::Queries {
            config: config.source.clone(),
            problems,
        });
    }
    if let WalWindow::FromCheckpoint(samples) = wal {
        for (name, _) in config.metrics.iter().filter(|(_, d)| is_wal_metric(d)) {
            let (mean, n) = mean_of(samples.iter().filter_map(|s| s.get(name)));
            let reading = Reading::CheckpointWindowMean {
                from: samples.first().map_or(at, |s| s.at),
                to: samples.last().map_or(at, |s| s.at),
                samples: n,
            };
            wal_reads.insert(name.as_str(), (mean, reading));
        }
    }

    Ok(evaluate(config, baseline, at, |name| {
        let instant = now.get(name).copied().flatten();
        match wal_reads.get(name) {
            Some((value, reading)) => Measured {
                value: *value,
                now: instant,
                reading: reading.clone(),
            },
            None => Measured::instant(instant),
        }
    }))
}

/// Sorts one query's outcome: a value, a query problem to report with the
/// others, or Prometheus down, which ends the reading at once.
fn keep<T>(
    result: Result<T, MetricsError>,
    problems: &mut Vec<String>,
) -> Result<Option<T>, MeasureError> {
    match result {
        Ok(v) => Ok(Some(v)),
        // Not the query's fault: Prometheus (or a proxy in front of it)
        // refused the request itself (401, 403, a 502 page) or was never
        // reached. A runtime failure, exit 1.
        Err(
            e @ (MetricsError::Unreachable { .. }
            | MetricsError::Timeout { .. }
            | MetricsError::Http { .. }
            | MetricsError::Setup { .. }),
        ) => Err(MeasureError::Unreachable(e)),
        Err(e) => {
            // A WAL metric's instant and range fail alike: say it once.
            let problem = e.to_string();
            if !problems.contains(&problem) {
                problems.push(problem);
            }
            Ok(None)
        }
    }
}

/// The range query behind a history mean.
#[derive(Debug, Clone, Copy)]
struct Grid {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Duration,
}

/// `span / step` points ending at the last multiple of `step`, so two
/// commands run within one step of each other read the very same points
/// (and the same mean) rather than two grids a few milliseconds apart.
fn grid(at: DateTime<Utc>, span: Duration, step: Duration) -> Grid {
    let step_ms = step.as_millis().clamp(1, i64::MAX as u128) as i64;
    let points = (span.as_millis() as i64 / step_ms).max(1);
    let end_ms = at.timestamp_millis().div_euclid(step_ms) * step_ms;
    let to = DateTime::from_timestamp_millis(end_ms).unwrap_or(at);
    let from = to - chrono::Duration::milliseconds(step_ms * (points - 1));
    Grid {
        from,
        to,
        step: Duration::from_millis(step_ms as u64),
    }
}

/// The mean of the finite values and how many there were.
fn mean_of(values: impl Iterator<Item = f64>) -> (Option<f64>, usize) {
    let (sum, n) = values
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    ((n > 0).then(|| sum / n as f64), n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::sla::{State, Verdict};
    use crate::metrics::{Alert, Point};
    use std::sync::Mutex;

    const CONFIG: &str = r#"
prometheus: {url: "http://127.0.0.1:1"}
postgres: {dsn: "host=x"}
profile: p
metrics:
  wal: {query: "rate(wal[1m])", unit: bytes_per_second, window: 5m, symptom: high_wal_rate}
  lat: {query: "lat", unit: milliseconds, window: 5m}
  temp: {query: "temp", unit: celsius, window: 5m}
profiles:
  p: {wal: "<= 100", lat: "<= 200ms", temp: "<= 85"}
tune: {observe: 1m, sample_interval: 15s}
"#;

    /// WAL bursts to 400 at the first point of the window and sits at 20
    /// (its instant) otherwise; latency 100; no temperature sensor. Every
    /// query takes a second.
    #[derive(Default)]
    struct Fake {
        broken: Option<&'static str>,
        down: bool,
        /// The metrics asked for a range.
        ranges: Mutex<Vec<String>>,
    }

    impl Fake {
        fn refuse(&self, metric: &str, query: &str) -> Result<(), MetricsError> {
            if self.broken != Some(metric) {
                return Ok(());
            }
            Err(MetricsError::Query {
                metric: metric.into(),
                query: query.into(),
                error_type: "bad_data".into(),
                message: "parse error".into(),
            })
        }
    }

    #[async_trait::async_trait]
    impl Metrics for Fake {
        async fn instant(&self, metric: &str, query: &str) -> Result<Option<f64>, MetricsError> {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if self.down {
                return Err(MetricsError::Unreachable {
                    url: "http://p:9090".into(),
                    reason: "connection refused".into(),
                });
            }
            self.refuse(metric, query)?;
            Ok(match metric {
                "wal" => Some(20.0),
                "lat" => Some(100.0),
                _ => None,
            })
        }
        async fn range(
            &self,
            metric: &str,
            query: &str,
            start: DateTime<Utc>,
            _: DateTime<Utc>,
            step: Duration,
        ) -> Result<Vec<Point>, MetricsError> {
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.refuse(metric, query)?;
            self.ranges.lock().unwrap().push(metric.into());
            let step = chrono::Duration::from_std(step).unwrap();
            Ok((0..4)
                .map(|i| Point {
                    at: start + step * i,
                    value: if i == 0 { 400.0 } else { 20.0 },
                })
                .collect())
        }
        async fn alerts(&self) -> Result<Vec<Alert>, MetricsError> {
            Ok(Vec::new())
        }
    }

    fn config() -> Config {
        crate::config::load::from_str(std::path::Path::new("t.yaml"), CONFIG).unwrap()
    }

    fn metric<'r>(r: &'r SlaReport, name: &str) -> &'r crate::metrics::MetricReport {
        r.metrics.iter().find(|m| m.name == name).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn wal_is_the_history_mean_other_metrics_instants_all_queried_at_once() {
        let fake = Fake::default();
        let config = config();
        let started = tokio::time::Instant::now();
        let r = measure(&fake, &config, None, WalWindow::from_config(&config))
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(1), "concurrent");

        // (400 + 3 × 20) / 4: the burst counts; the instant (20) would not.
        let wal = metric(&r, "wal");
        assert_eq!((wal.value, wal.now), (Some(115.0), Some(20.0)));
        assert_eq!(wal.state, State::Violated);
        let Reading::HistoryMean {
            from,
            to,
            step_seconds,
            points,
        } = wal.reading.clone()
        else {
            panic!("{:?}", wal.reading);
        };
        assert_eq!((step_seconds, points), (15.0, 4));
        assert_eq!(to - from, chrono::Duration::seconds(45), "4 points of 1m");
        assert_eq!(to.timestamp() % 15, 0, "aligned to the step");
        assert_eq!(fake.ranges.lock().unwrap().len(), 1, "only WAL metrics");

        assert_eq!(metric(&r, "lat").reading, Reading::Instant);
        assert_eq!(metric(&r, "lat").value, Some(100.0));
        assert_eq!(metric(&r, "temp").state, State::NoData);
        assert_eq!(r.verdict, Verdict::Violated);
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_from_a_checkpoint_replaces_the_history() {
        let fake = Fake::default();
        let config = config();
        let at = Utc::now();
        let samples: Vec<Sample> = [90.0, 60.0, 30.0]
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                at: at + chrono::Duration::seconds(15 * i as i64),
                values: [("wal".to_string(), Some(*v))].into(),
            })
            .collect();
        let r = measure(&fake, &config, None, WalWindow::FromCheckpoint(&samples))
            .await
            .unwrap();
        let wal = metric(&r, "wal");
        assert_eq!(wal.value, Some(60.0));
        assert_eq!(
            wal.reading,
            Reading::CheckpointWindowMean {
                from: at,
                to: at + chrono::Duration::seconds(30),
                samples: 3
            }
        );
        assert!(fake.ranges.lock().unwrap().is_empty());
        // temp has no data; the measured objectives hold.
        assert_eq!(r.verdict, Verdict::Met);
        assert!(r.summary().contains("not measured: temp (no data)"));
    }

    #[tokio::test(start_paused = true)]
    async fn bad_queries_are_the_configs_to_fix_and_prometheus_down_is_a_failure() {
        let config = config();
        let broken = Fake {
            broken: Some("wal"),
            ..Fake::default()
        };
        let err = measure(&broken, &config, None, WalWindow::from_config(&config))
            .await
            .unwrap_err();
        assert!(err.is_usage());
        let text = err.to_string();
        assert!(
            text.contains("t.yaml") && text.contains("metric wal") && text.contains("bad_data"),
            "{text}"
        );
        assert_eq!(text.matches("metric wal").count(), 1, "said once: {text}");
        let down = Fake {
            down: true,
            ..Fake::default()
        };
        let err = measure(&down, &config, None, WalWindow::from_config(&config))
            .await
            .unwrap_err();
        assert!(!err.is_usage());
        assert!(err.to_string().contains("unreachable"), "{err}");
    }

    #[test]
    fn two_readings_within_one_step_share_their_grid() {
        let step = Duration::from_secs(15);
        // 1_700_000_010 is a multiple of 15 s.
        let t = DateTime::from_timestamp(1_700_000_012, 0).unwrap();
        let a = grid(t, Duration::from_secs(60), step);
        let b = grid(
            t + chrono::Duration::seconds(4),
            Duration::from_secs(60),
            step,
        );
        assert_eq!((a.from, a.to), (b.from, b.to));
        assert_eq!(a.to.timestamp(), 1_700_000_010);
    }
}
