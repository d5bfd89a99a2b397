//! `tuner check --live`: the budget against Prometheus, read through the
//! one SLA measurement (`metrics::measure`), so `check`, `status` and
//! `tune` see the same value for the same metric at the same moment: WAL
//! metrics as the mean of the window, every other metric as its value now.
//! Each objective names a metric of `tuner.yaml`; the profile's objectives
//! are not used, the budget's levels are.

use super::budget::{Budget, Objective};
use super::evaluate::{Measurement, Reading};
use super::GateError;
use crate::config::units::format_duration;
use crate::config::Config;
use crate::metrics::{Reading as How, SlaReport, State};

/// Checks, before any query, that every objective names a configured
/// metric and asks nothing a PromQL value cannot give.
pub fn check_objectives(budget: &Budget, config: &Config) -> Result<(), GateError> {
    let mut problems = Vec::new();
    for o in &budget.objectives {
        if let Err(e) = check_one(o, config) {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(GateError::Budget { problems })
    }
}

fn check_one(o: &Objective, config: &Config) -> Result<(), String> {
    let at = format!("{}: objectives.{}", o.at, o.name);
    let name = o.metric.to_string();
    let Some(def) = config.metrics.get(&name) else {
        let known: Vec<&str> = config.metrics.keys().map(String::as_str).collect();
        return Err(format!(
            "{at}.metric: with --live, {name:?} must be a metric of {} (metrics: {})",
            config.source.display(),
            known.join(", ")
        ));
    };
    if let Some(stat) = o.stat {
        return Err(format!(
            "{at}.stat: a live metric is one PromQL value, {stat} cannot be taken of it; put the statistic in the metric's query (histogram_quantile(0.99, …))"
        ));
    }
    if !o.tags.is_empty() || o.endpoint.is_some() {
        return Err(format!("{at}: tags and endpoint select k6 samples and Locust rows, not Prometheus series; put the selector in the metric's query"));
    }
    if let Some(unit) = o.unit.filter(|u| *u != def.unit) {
        return Err(format!(
            "{at}.unit: {} measures {name} in {}, not {}",
            config.source.display(),
            super::budget::serde_name(def.unit),
            super::budget::serde_name(unit)
        ));
    }
    o.levels(def.unit)
        .map(|_| ())
        .map_err(|e| format!("{at}.{e}"))
}

/// One measurement per objective from an SLA reading.
pub fn reading(budget: &Budget, config: &Config, report: &SlaReport) -> Result<Reading, GateError> {
    check_objectives(budget, config)?;
    let mut measurements = Vec::new();
    for o in &budget.objectives {
        let name = o.metric.to_string();
        let Some(m) = report.metrics.iter().find(|m| m.name == name) else {
            return Err(o.problem(format!("the SLA reading has no metric {name}")));
        };
        let (how, samples) = match &m.reading {
            How::Instant => ("now".to_string(), None),
            How::HistoryMean {
                from,
                to,
                step_seconds,
                points,
            } => {
                let span = (*to - *from).to_std().unwrap_or_default()
                    + std::time::Duration::from_secs_f64(step_seconds.max(0.0));
                (
                    format!("mean of {}", format_duration(span)),
                    Some(*points as u64),
                )
            }
            How::CheckpointWindowMean { samples, .. } => {
                ("mean from a CHECKPOINT".to_string(), Some(*samples as u64))
            }
        };
        let source = format!("{name} ({how})");
        let measurement = match m.value {
            Some(v) if m.state != State::NoData => Measurement::of(source, m.unit, v, samples),
            _ => {
                let query = config.metrics.get(&name).map_or("", |d| d.query.as_str());
                Measurement::none(
                    source,
                    m.unit,
                    format!("Prometheus has no data for {query}"),
                )
            }
        };
        measurements.push(measurement);
    }
    Ok(Reading {
        input: format!(
            "Prometheus at {} (profile {})",
            config.prometheus.url, report.profile
        ),
        measurements,
        extra: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::evaluate::{evaluate, State as Check};
    use crate::metrics::{evaluate as sla, Measured};
    use std::path::Path;

    const CONFIG: &str = r#"
prometheus: {url: "http://127.0.0.1:1"}
postgres: {dsn: "host=x"}
profile: p
metrics:
  wal_rate: {query: "rate(wal[1m])", unit: bytes_per_second, window: 5m, symptom: high_wal_rate}
  p95_write_latency: {query: "lat", unit: milliseconds, window: 5m}
  cpu_temp: {query: "temp", unit: celsius, window: 5m}
  io_wait: {query: "io", unit: percent, window: 5m}
profiles:
  p: {p95_write_latency: "<= 200ms"}
"#;

    const BUDGET: &str = r#"
objectives:
  write_latency:
    metric: p95_write_latency
    target: "< 150ms"
    critical: "> 200ms"
  wal:
    metric: wal_rate
    warning: "> 2M"
    critical: "> 8M"
  temperature:
    metric: cpu_temp
    critical: "> 85"
"#;

    fn config() -> Config {
        crate::config::load::from_str(Path::new("tuner.yaml"), CONFIG).unwrap()
    }

    #[test]
    fn live_values_are_the_sla_readings_and_no_data_fails() {
        let config = config();
        let budget = Budget::from_str(Path::new("budget.yaml"), BUDGET).unwrap();
        let at = chrono::Utc::now();
        let report = sla(&config, None, at, |name| match name {
            "p95_write_latency" => Measured::instant(Some(120.0)),
            "wal_rate" => Measured {
                value: Some(3_000_000.0),
                now: Some(10.0),
                reading: How::HistoryMean {
                    from: at - chrono::Duration::seconds(55),
                    to: at,
                    step_seconds: 5.0,
                    points: 12,
                },
            },
            _ => Measured::instant(None),
        });
        let reading = reading(&budget, &config, &report).unwrap();
        let r = evaluate(&budget, reading, 0.0).unwrap();
        let states: Vec<Check> = r.results.iter().map(|r| r.state).collect();
        assert_eq!(states, [Check::Pass, Check::Warn, Check::Fail]);
        assert_eq!(r.results[1].source, "wal_rate (mean of 1m)");
        assert_eq!(r.results[1].samples, Some(12));
        assert!(
            r.results[2].reason.contains("no data for temp"),
            "{}",
            r.results[2].reason
        );
    }

    #[test]
    fn objectives_a_prometheus_value_cannot_answer_are_refused() {
        let config = config();
        let text = BUDGET
            .replace("metric: cpu_temp", "metric: latency\n    stat: p95")
            .replace("metric: wal_rate", "metric: wal_rate\n    unit: bytes")
            + "  io:\n    metric: io_wait\n    critical: \"> lots\"\n";
        let budget = Budget::from_str(Path::new("budget.yaml"), &text).unwrap();
        let err = check_objectives(&budget, &config).unwrap_err().to_string();
        assert!(err.contains("objectives.temperature.metric: with --live, \"latency\" must be a metric of tuner.yaml"), "{err}");
        assert!(
            err.contains(
                "objectives.wal.unit: tuner.yaml measures wal_rate in bytes_per_second, not bytes"
            ),
            "{err}"
        );
    }
}
