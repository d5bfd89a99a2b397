//! An observer whose metrics are a function of the fake backend's lever
//! values (a tiny simulated world), with deterministic noise.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::ports::{ObserveError, Observer};
use super::prometheus::TRIGGER_LABEL;
use crate::journal::Trigger;
pub use crate::levers::fakes::{FakeBackend, Levels};
use crate::metrics::{Alert, Metrics, MetricsError, Point, Sample};

type Model = Box<dyn Fn(&Levels) -> BTreeMap<String, Option<f64>> + Send + Sync>;
type Alerts = Box<dyn Fn(&Levels) -> Vec<String> + Send + Sync>;
type Reachable = Box<dyn Fn(&Levels) -> bool + Send + Sync>;

/// ±2% noise around each level, repeating every 12 samples.
const NOISE: [f64; 12] = [
    0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 1.5, -1.5, 0.0, 1.0, -1.0,
];

pub struct FakeObserver {
    pub backend: Arc<FakeBackend>,
    pub model: Model,
    pub alerts: Alerts,
    pub reachable: Reachable,
    pub samples_taken: AtomicUsize,
    /// Press "Ctrl-C" after this many observation samples.
    pub interrupt: Option<(usize, Trigger, u32)>,
    /// (checkpoints seen, samples since the last one): the model sees the
    /// latter as the level `since_checkpoint`, to draw full-page-image bursts.
    since_checkpoint: Mutex<(usize, usize)>,
    /// The sample the SLA measurement's instant queries are answered from,
    /// and the metrics already asked of it.
    reading: Mutex<Option<(Sample, BTreeSet<String>)>>,
}

impl FakeObserver {
    pub fn new(
        backend: Arc<FakeBackend>,
        model: impl Fn(&Levels) -> BTreeMap<String, Option<f64>> + Send + Sync + 'static,
    ) -> Self {
        FakeObserver {
            backend,
            model: Box::new(model),
            alerts: Box::new(|_| Vec::new()),
            reachable: Box::new(|_| true),
            samples_taken: AtomicUsize::new(0),
            interrupt: None,
            since_checkpoint: Mutex::new((0, 0)),
            reading: Mutex::new(None),
        }
    }

    fn at(&self, i: usize) -> Result<Sample, ObserveError> {
        let mut levels = self.backend.values.lock().unwrap().clone();
        {
            let done = self.backend.checkpoints.load(Ordering::SeqCst);
            let mut since = self.since_checkpoint.lock().unwrap();
            *since = if since.0 == done {
                (done, since.1 + 1)
            } else {
                (done, 0)
            };
            levels.insert("since_checkpoint".into(), Some(since.1.to_string()));
        }
        if !(self.reachable)(&levels) {
            return Err(ObserveError(
                "Prometheus at http://127.0.0.1:9090 is unreachable: connection refused".into(),
            ));
        }
        let values = (self.model)(&levels)
            .into_iter()
            .map(|(k, v)| (k, v.map(|v| v * (1.0 + NOISE[i % NOISE.len()] / 100.0))))
            .collect();
        Ok(Sample {
            at: Utc::now(),
            values,
        })
    }
}

impl FakeObserver {
    /// One sample of every metric, counted (the interrupt hook counts them).
    fn take(&self) -> Result<Sample, ObserveError> {
        let i = self.samples_taken.fetch_add(1, Ordering::SeqCst);
        if let Some((after, trigger, times)) = &self.interrupt {
            if i == *after {
                for _ in 0..*times {
                    trigger.interrupt();
                }
            }
        }
        self.at(i)
    }
}

fn down(e: ObserveError) -> MetricsError {
    MetricsError::Unreachable {
        url: "http://127.0.0.1:9090".into(),
        reason: e.0,
    }
}

/// The world as Prometheus, for the SLA measurement.
#[async_trait]
impl Metrics for FakeObserver {
    /// A measurement asks each metric once; all of them are answered from
    /// one sample, so a measurement counts as one sample, as it would at one
    /// instant on a real server.
    async fn instant(&self, metric: &str, _: &str) -> Result<Option<f64>, MetricsError> {
        let mut reading = self.reading.lock().unwrap();
        let fresh = reading
            .as_ref()
            .is_none_or(|(_, asked)| asked.contains(metric));
        if fresh {
            *reading = Some((self.take().map_err(down)?, BTreeSet::new()));
        }
        let (sample, asked) = reading.as_mut().expect("just taken");
        asked.insert(metric.to_string());
        Ok(sample.get(metric))
    }

    /// The model's values on the grid, as `history` draws them.
    async fn range(
        &self,
        metric: &str,
        _: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Point>, MetricsError> {
        let step = chrono::Duration::from_std(step).unwrap();
        let n = ((end - start).num_milliseconds() / step.num_milliseconds().max(1) + 1) as usize;
        let mut points = Vec::new();
        for i in 0..n {
            let sample = self.at(i).map_err(down)?;
            if let Some(value) = sample.get(metric) {
                points.push(Point {
                    at: start + step * i as i32,
                    value,
                });
            }
        }
        Ok(points)
    }

    async fn alerts(&self) -> Result<Vec<Alert>, MetricsError> {
        let names = self.firing_triggers().await.map_err(down)?;
        Ok(names
            .into_iter()
            .map(|name| Alert {
                labels: [
                    ("alertname".to_string(), name),
                    (TRIGGER_LABEL.to_string(), "true".to_string()),
                ]
                .into(),
                state: "firing".into(),
                active_at: None,
            })
            .collect())
    }
}

#[async_trait]
impl Observer for FakeObserver {
    fn metrics(&self) -> &dyn Metrics {
        self
    }

    async fn sample(&self) -> Result<Sample, ObserveError> {
        self.take()
    }

    async fn history(&self, window: Duration, step: Duration) -> Result<Vec<Sample>, ObserveError> {
        let n = (window.as_secs() / step.as_secs().max(1)) as usize;
        (0..n).map(|i| self.at(i)).collect()
    }

    async fn firing_triggers(&self) -> Result<Vec<String>, ObserveError> {
        let levels = self.backend.values.lock().unwrap().clone();
        if !(self.reachable)(&levels) {
            return Err(ObserveError("connection refused".into()));
        }
        Ok((self.alerts)(&levels))
    }
}
