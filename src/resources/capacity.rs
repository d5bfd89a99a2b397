//! `tuner resources --capacity`: seed 004's estimation formulas fed with
//! measured data. Per service: the peak requests/s and the CPU one request
//! costs, hence the CPUs (or replicas) a target load needs at the target
//! utilisation (70%). For PostgreSQL: transactions/s, WAL and storage
//! growth per day (`predict_linear`) and, with the 30% buffer, the days
//! until the volume is full. Every figure carries its window and sample
//! count; a query without data says so instead of reading as zero.

use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use super::services::{ServicesFile, TargetLoad};
use crate::metrics::{Metrics, MetricsError, Point};

/// At most this many points per range query, whatever the window.
const MAX_POINTS: u32 = 240;

/// One measured quantity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// `None`: the query returned no data.
    pub value: Option<f64>,
    #[serde(rename = "window_seconds", serialize_with = "seconds")]
    pub window: Duration,
    pub samples: usize,
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceCapacity {
    pub service: String,
    /// The CPU limit one replica runs with (the planned one).
    pub limit_cpus: Option<f64>,
    pub peak_rps: Option<Figure>,
    /// CPU seconds per request.
    pub cpu_per_request: Option<Figure>,
    pub target_rps: Option<f64>,
    pub needed_cpus: Option<f64>,
    pub replicas: Option<u32>,
    /// Why a figure could not be computed.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostgresCapacity {
    pub peak_tps: Figure,
    pub mean_tps: Option<f64>,
    pub wal_bytes_per_day: Figure,
    pub storage_bytes_per_day: Figure,
    pub free_bytes: Figure,
    /// Free space over storage growth with the buffer; `None` when the
    /// growth is unknown or not positive.
    pub days_until_full: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityPlan {
    #[serde(rename = "window_seconds", serialize_with = "seconds")]
    pub window: Duration,
    pub target_utilisation: f64,
    pub storage_buffer: f64,
    pub services: Vec<ServiceCapacity>,
    pub postgres: Option<PostgresCapacity>,
}

/// Reads what the plan needs from `metrics`. `limit_of` gives a service's
/// CPU limit (the allocation's).
pub async fn plan(
    metrics: &dyn Metrics,
    file: &ServicesFile,
    limit_of: impl Fn(&str) -> Option<f64>,
) -> Result<CapacityPlan, MetricsError> {
    let spec = &file.capacity;
    let window = spec.window;
    let util = spec.target_utilisation;
    let mut services = Vec::new();
    for s in file.services.iter().filter(|s| s.requests.is_some()) {
        let Some(requests) = s.requests.as_deref() else {
            continue;
        };
        let limit_cpus = limit_of(&s.name);
        let rps = range(metrics, &format!("{}.requests", s.name), requests, window).await?;
        let peak = rps.iter().map(|p| p.value).fold(None, max);
        let peak_rps = Figure {
            value: peak,
            window,
            samples: rps.len(),
            query: requests.to_string(),
        };
        let cpu_per_request = match s.cpu.as_deref() {
            Some(q) => {
                let cpu = range(metrics, &format!("{}.cpu", s.name), q, window).await?;
                let (pairs, cost) = per_request(&rps, &cpu);
                Some(Figure {
                    value: cost,
                    window,
                    samples: pairs,
                    query: q.to_string(),
                })
            }
            None => None,
        };
        let target_rps = match (s.target_load, peak) {
            (TargetLoad::PerSecond(n), _) => Some(n),
            (TargetLoad::TimesPeak(k), Some(p)) => Some(k * p),
            (TargetLoad::TimesPeak(_), None) => None,
        };
        let cost = cpu_per_request.as_ref().and_then(|f| f.value);
        // Seed 004: required = load / (capacity per unit x 70%).
        let needed_cpus = match (target_rps, cost) {
            (Some(t), Some(c)) => Some(t * c / util),
            _ => None,
        };
        let replicas = match (needed_cpus, limit_cpus) {
            (Some(n), Some(l)) if l > 0.0 => Some(((n / l).ceil() as u32).max(1)),
            _ => None,
        };
        let note = match (&peak_rps.value, &cpu_per_request) {
            (None, _) => Some("no request data in the window".to_string()),
            (_, None) => Some(format!("no `cpu:` query for {} in services.yaml", s.name)),
            (_, Some(f)) if f.value.is_none() => {
                Some("no CPU data while requests were served".into())
            }
            _ => None,
        };
        services.push(ServiceCapacity {
            service: s.name.clone(),
            limit_cpus,
            peak_rps: Some(peak_rps),
            cpu_per_request,
            target_rps,
            needed_cpus,
            replicas,
            note,
        });
    }

    let postgres = match file.postgres() {
        None => None,
        Some(_) => {
            let tps = range(metrics, "postgres.transactions", &spec.transactions, window).await?;
            let mean = (!tps.is_empty())
                .then(|| tps.iter().map(|p| p.value).sum::<f64>() / tps.len() as f64);
            let peak_tps = Figure {
                value: tps.iter().map(|p| p.value).fold(None, max),
                window,
                samples: tps.len(),
                query: spec.transactions.clone(),
            };
            let wal = growth(metrics, "postgres.wal_bytes", &spec.wal_bytes, window).await?;
            let storage = growth(
                metrics,
                "postgres.storage_bytes",
                &spec.storage_bytes,
                window,
            )
            .await?;
            let free = Figure {
                value: metrics
                    .instant("postgres.free_bytes", &spec.free_bytes)
                    .await?,
                window: Duration::ZERO,
                samples: 1,
                query: spec.free_bytes.clone(),
            };
            let days_until_full = match (free.value, storage.value) {
                (Some(f), Some(g)) if g > 0.0 => Some(f / (g * (1.0 + spec.storage_buffer))),
                _ => None,
            };
            Some(PostgresCapacity {
                peak_tps,
                mean_tps: mean,
                wal_bytes_per_day: wal,
                storage_bytes_per_day: storage,
                free_bytes: free,
                days_until_full,
            })
        }
    };
    Ok(CapacityPlan {
        window,
        target_utilisation: util,
        storage_buffer: spec.storage_buffer,
        services,
        postgres,
    })
}

/// Windows in JSON as whole seconds, not serde's `{secs, nanos}`.
fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn max(acc: Option<f64>, v: f64) -> Option<f64> {
    Some(acc.map_or(v, |a| a.max(v)))
}

fn step(window: Duration) -> Duration {
    (window / MAX_POINTS).max(Duration::from_secs(1))
}

async fn range(
    metrics: &dyn Metrics,
    name: &str,
    query: &str,
    window: Duration,
) -> Result<Vec<Point>, MetricsError> {
    // Ends on a multiple of the step, so every query of a run samples the
    // same instants and requests pair with CPU point by point.
    let step_ms = step(window).as_millis().max(1) as i64;
    let now = Utc::now().timestamp_millis();
    let end = chrono::DateTime::from_timestamp_millis(now - now % step_ms).unwrap_or_else(Utc::now);
    let start = end - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1));
    let points = metrics.range(name, query, start, end, step(window)).await?;
    Ok(points.into_iter().filter(|p| p.value.is_finite()).collect())
}

/// CPU seconds per request over the points where both were measured and
/// requests were served: total CPU over total requests, so busy moments
/// weigh more than idle ones.
pub fn per_request(rps: &[Point], cpu: &[Point]) -> (usize, Option<f64>) {
    let mut pairs = 0;
    let (mut cpu_sum, mut rps_sum) = (0.0, 0.0);
    for r in rps.iter().filter(|r| r.value > 0.0) {
        if let Some(c) = cpu.iter().find(|c| c.at == r.at) {
            pairs += 1;
            cpu_sum += c.value;
            rps_sum += r.value;
        }
    }
    (pairs, (pairs > 0).then(|| cpu_sum / rps_sum))
}

/// Growth per day of `query` by `predict_linear` over the window, with the
/// number of samples the subquery held.
async fn growth(
    metrics: &dyn Metrics,
    name: &str,
    query: &str,
    window: Duration,
) -> Result<Figure, MetricsError> {
    let range = format!("[{}s:{}s]", window.as_secs().max(1), step(window).as_secs());
    let predicted = format!("predict_linear(({query}){range}, 86400) - ({query})");
    let count = format!("count_over_time(({query}){range})");
    let value = metrics.instant(name, &predicted).await?;
    let samples = metrics.instant(name, &count).await?.unwrap_or(0.0) as usize;
    Ok(Figure {
        value: if samples >= 2 { value } else { None },
        window,
        samples,
        query: predicted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Alert;
    use async_trait::async_trait;
    use chrono::{DateTime, TimeZone};

    /// Answers by the first query fragment a query contains.
    struct Canned(Vec<(&'static str, Option<f64>)>);

    #[async_trait]
    impl Metrics for Canned {
        async fn instant(&self, _: &str, query: &str) -> Result<Option<f64>, MetricsError> {
            Ok(self
                .0
                .iter()
                .find(|(k, _)| query.contains(k))
                .and_then(|(_, v)| *v))
        }
        async fn range(
            &self,
            _: &str,
            query: &str,
            start: DateTime<Utc>,
            _: DateTime<Utc>,
            step: Duration,
        ) -> Result<Vec<Point>, MetricsError> {
            let v = self.instant("", query).await?;
            Ok(v.map(|value| {
                (0..10)
                    .map(|i| Point {
                        at: start + chrono::Duration::from_std(step * i).unwrap(),
                        value: value * f64::from(i + 1) / 10.0,
                    })
                    .collect()
            })
            .unwrap_or_default())
        }
        async fn alerts(&self) -> Result<Vec<Alert>, MetricsError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn seed_formulas_over_measured_figures() {
        let file = crate::resources::services::from_str(
            std::path::Path::new("s.yaml"),
            "services:\n  db:\n    cpus: 1\n    memory: 1G\n    postgres: true\n  api:\n    cpus: 1\n    memory: 1G\n    requests: req\n    cpu: cpu_used\n    target_load: 1000\ncapacity:\n  transactions: tps\n  wal_bytes: wal\n  storage_bytes: size\n  free_bytes: free\n",
        )
        .unwrap();
        let metrics = Canned(vec![
            ("count_over_time", Some(120.0)),
            ("predict_linear((size", Some(1e9)),
            ("predict_linear((wal", Some(5e9)),
            ("req", Some(200.0)),
            ("cpu_used", Some(0.4)),
            ("tps", Some(50.0)),
            ("free", Some(13e9)),
        ]);
        let plan = plan(&metrics, &file, |_| Some(0.5)).await.unwrap();
        let api = &plan.services[0];
        assert_eq!(api.peak_rps.as_ref().unwrap().value, Some(200.0));
        // 0.4 CPU for 200 req/s: 0.002 s each; 1000 req/s at 70% needs 2.857 CPUs.
        let cost = api.cpu_per_request.as_ref().unwrap().value.unwrap();
        assert!((cost - 0.002).abs() < 1e-12);
        assert!((api.needed_cpus.unwrap() - 2.0 / 0.7).abs() < 1e-9);
        assert_eq!(api.replicas, Some(6));
        let pg = plan.postgres.unwrap();
        assert_eq!(pg.peak_tps.value, Some(50.0));
        assert_eq!(pg.storage_bytes_per_day.samples, 120);
        // 13 GB free, 1 GB/day plus the 30% buffer: 10 days.
        assert!((pg.days_until_full.unwrap() - 10.0).abs() < 1e-9);

        let silent = Canned(vec![("count_over_time", Some(1.0))]);
        let plan = super::plan(&silent, &file, |_| Some(0.5)).await.unwrap();
        assert_eq!(
            plan.services[0].note.as_deref(),
            Some("no request data in the window")
        );
        let pg = plan.postgres.unwrap();
        assert_eq!(
            pg.storage_bytes_per_day.value, None,
            "one sample is no growth"
        );
        assert_eq!(pg.days_until_full, None);
    }

    #[test]
    fn cost_per_request_is_total_cpu_over_total_requests() {
        let at = |s| Utc.timestamp_opt(s, 0).single().unwrap();
        let p = |s, v| Point {
            at: at(s),
            value: v,
        };
        let rps = [p(0, 100.0), p(10, 0.0), p(20, 300.0), p(30, 50.0)];
        let cpu = [p(0, 0.2), p(10, 0.01), p(20, 0.6)];
        let (pairs, cost) = per_request(&rps, &cpu);
        assert_eq!(pairs, 2);
        assert!((cost.unwrap() - 0.002).abs() < 1e-12);
        assert_eq!(per_request(&rps, &[]), (0, None));
    }
}
