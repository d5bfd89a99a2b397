//! Evaluating measured values against the active profile's objectives.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Baseline;
use crate::config::units::MetricUnit;
use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    /// Within the objective but inside its last 10% of headroom.
    Warning,
    Violated,
    NoData,
    /// The objective is relative and there is no baseline to compare with.
    NoBaseline,
    /// The metric has no objective in this profile; shown for information.
    Untracked,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warning => "warning",
            State::Violated => "violated",
            State::NoData => "no data",
            State::NoBaseline => "no baseline",
            State::Untracked => "-",
        }
    }
}

/// How a metric's value was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reading {
    /// Prometheus' value now.
    Instant,
    /// The mean of Prometheus' history over `[from, to]`, a point every
    /// `step_seconds`: WAL comes in full-page-image bursts after each
    /// checkpoint, and an instant may sit on the floor between them.
    HistoryMean {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step_seconds: f64,
        points: usize,
    },
    /// The mean of a window the tune cycle observed from a CHECKPOINT.
    CheckpointWindowMean {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        samples: usize,
    },
}

/// One metric as read: the value its objective is judged on, and the
/// instant value beside it (the same unless read over a window).
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub value: Option<f64>,
    pub now: Option<f64>,
    pub reading: Reading,
}

impl Measured {
    pub fn instant(value: Option<f64>) -> Measured {
        Measured {
            value,
            now: value,
            reading: Reading::Instant,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricReport {
    pub name: String,
    pub unit: MetricUnit,
    /// What the objective was judged on; `None` is no data.
    pub value: Option<f64>,
    /// Prometheus' value at the time of the reading.
    pub now: Option<f64>,
    pub reading: Reading,
    pub baseline: Option<f64>,
    pub objective: Option<String>,
    pub limit: Option<f64>,
    pub state: State,
    pub symptom: Option<String>,
    /// How far past the limit, as a fraction of it (0.5 = 50% over); for
    /// choosing the worst violation.
    pub excess: Option<f64>,
}

impl MetricReport {
    /// Why an objective could not be judged, for people; `None` when it was.
    pub fn unmeasured_because(&self) -> Option<&'static str> {
        match self.state {
            State::NoData => Some("no data"),
            State::NoBaseline => Some("no baseline; run `tuner baseline`"),
            _ => None,
        }
    }
}

/// What one SLA reading says as a whole. Every command maps it to the same
/// exit code (`crate::exit`), so `status`, `tune` and a CI gate agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No objective is violated and at least one was measured. Objectives
    /// without data or baseline are listed, not failed: a VM without
    /// temperature sensors is not an SLA breach.
    Met,
    /// At least one measured objective is violated.
    Violated,
    /// Not one objective could be measured: with nothing read, "met" would
    /// be a guess, so this fails closed.
    Unmeasured,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlaReport {
    pub profile: String,
    /// When the reading was taken.
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    pub metrics: Vec<MetricReport>,
}

impl SlaReport {
    pub fn violated(&self) -> bool {
        self.verdict == Verdict::Violated
    }

    /// The violated metric furthest past its limit.
    pub fn worst_violation(&self) -> Option<&MetricReport> {
        self.metrics
            .iter()
            .filter(|m| m.state == State::Violated)
            .max_by(|a, b| a.excess.unwrap_or(0.0).total_cmp(&b.excess.unwrap_or(0.0)))
    }

    /// `cpu_temp (no data), wal_rate (no baseline; run `tuner baseline`)`,
    /// or `None` when every objective was measured.
    pub fn unmeasured(&self) -> Option<String> {
        let list: Vec<String> = self
            .metrics
            .iter()
            .filter_map(|m| Some(format!("{} ({})", m.name, m.unmeasured_because()?)))
            .collect();
        (!list.is_empty()).then(|| list.join(", "))
    }

    /// The verdict in one line, in the same words for every command.
    pub fn summary(&self) -> String {
        let unmeasured = self.unmeasured();
        match self.verdict {
            Verdict::Met => match unmeasured {
                None => "SLA met".into(),
                Some(list) => format!("SLA met by every measured objective; not measured: {list}"),
            },
            Verdict::Violated => {
                let names: Vec<&str> = self
                    .metrics
                    .iter()
                    .filter(|m| m.state == State::Violated)
                    .map(|m| m.name.as_str())
                    .collect();
                let mut line = format!("SLA violated: {}", names.join(", "));
                if let Some(list) = unmeasured {
                    line.push_str(&format!("; not measured: {list}"));
                }
                line
            }
            Verdict::Unmeasured => match unmeasured {
                Some(list) => format!(
                    "cannot tell whether the SLA holds: no objective could be measured: {list}"
                ),
                None => format!(
                    "cannot tell whether the SLA holds: profile {} has no objectives",
                    self.profile
                ),
            },
        }
    }
}

/// Judges each configured metric's reading (`read(name)`) against the
/// active profile.
pub fn evaluate(
    config: &Config,
    baseline: Option<&Baseline>,
    at: DateTime<Utc>,
    read: impl Fn(&str) -> Measured,
) -> SlaReport {
    let objectives = config.objectives();
    let metrics: Vec<MetricReport> = config
        .metrics
        .iter()
        .map(|(name, def)| {
            let Measured {
                value,
                now,
                reading,
            } = read(name);
            let reference = baseline.and_then(|b| b.reference(name));
            let objective = objectives.get(name);
            let limit = objective.and_then(|o| o.limit(reference));
            let (state, excess) = match (objective, value, limit) {
                (None, _, _) => (State::Untracked, None),
                (Some(_), None, _) => (State::NoData, None),
                (Some(_), Some(_), None) => (State::NoBaseline, None),
                (Some(o), Some(v), Some(l)) => {
                    let excess = if l != 0.0 {
                        if o.comparison.upper_bound() {
                            (v - l) / l.abs()
                        } else {
                            (l - v) / l.abs()
                        }
                    } else {
                        v - l
                    };
                    if !o.comparison.holds(v, l) {
                        (State::Violated, Some(excess))
                    } else if excess > -0.1 {
                        (State::Warning, Some(excess))
                    } else {
                        (State::Ok, Some(excess))
                    }
                }
            };
            MetricReport {
                name: name.clone(),
                unit: def.unit,
                value,
                now,
                reading,
                baseline: reference.map(|(mean, _)| mean),
                objective: objective.map(|o| o.to_string()),
                limit,
                state,
                symptom: def.symptom.clone(),
                excess,
            }
        })
        .collect();
    let state = |s: State| metrics.iter().any(|m| m.state == s);
    let verdict = if state(State::Violated) {
        Verdict::Violated
    } else if state(State::Ok) || state(State::Warning) {
        Verdict::Met
    } else {
        Verdict::Unmeasured
    };
    SlaReport {
        profile: config.profile.clone(),
        at,
        verdict,
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::from_str;
    use std::path::Path;

    const CONFIG: &str = r#"
prometheus: {url: "http://127.0.0.1:1"}
postgres: {dsn: "host=x"}
profile: development
metrics:
  lat: {query: "a", unit: milliseconds, window: 5m, symptom: high_write_latency}
  wal: {query: "b", unit: bytes_per_second, window: 5m, symptom: high_wal_rate}
  temp: {query: "c", unit: celsius, window: 5m}
  tps: {query: "d", unit: ratio, window: 5m, direction: higher_is_better}
profiles:
  development:
    lat: "<= 200ms"
    wal: "<= 1.5x baseline"
    temp: "<= 85"
"#;

    fn read(values: &'static [(&'static str, f64)]) -> impl Fn(&str) -> Measured {
        move |name| Measured::instant(values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
    }

    #[test]
    fn states_cover_ok_warning_violated_no_data_and_no_baseline() {
        let config = from_str(Path::new("t.yaml"), CONFIG).unwrap();
        let report = evaluate(
            &config,
            None,
            Utc::now(),
            read(&[("lat", 300.0), ("wal", 10.0), ("tps", 5.0)]),
        );
        let state = |n: &str| report.metrics.iter().find(|m| m.name == n).unwrap().state;
        assert_eq!(state("lat"), State::Violated);
        assert_eq!(state("wal"), State::NoBaseline);
        assert_eq!(state("temp"), State::NoData);
        assert_eq!(state("tps"), State::Untracked);
        assert!(report.violated());
        assert_eq!(report.worst_violation().unwrap().name, "lat");

        let ok = evaluate(
            &config,
            None,
            Utc::now(),
            read(&[("lat", 190.0), ("wal", 1.0), ("temp", 1.0), ("tps", 1.0)]),
        );
        assert_eq!(
            ok.metrics.iter().find(|m| m.name == "lat").unwrap().state,
            State::Warning
        );
        assert!(!ok.violated());
    }

    #[test]
    fn unmeasured_objectives_are_listed_but_decide_nothing_unless_nothing_was_measured() {
        let config = from_str(Path::new("t.yaml"), CONFIG).unwrap();
        // temp has no data, wal no baseline: the measured one decides.
        let met = evaluate(
            &config,
            None,
            Utc::now(),
            read(&[("lat", 100.0), ("wal", 1.0)]),
        );
        assert_eq!(met.verdict, Verdict::Met);
        assert_eq!(
            met.summary(),
            "SLA met by every measured objective; not measured: temp (no data), wal (no baseline; run `tuner baseline`)"
        );
        let violated = evaluate(&config, None, Utc::now(), read(&[("lat", 300.0)]));
        assert_eq!(violated.verdict, Verdict::Violated);
        assert!(
            violated
                .summary()
                .starts_with("SLA violated: lat; not measured: temp (no data)"),
            "{}",
            violated.summary()
        );
        // An untracked metric with data does not count as a measured objective.
        let nothing = evaluate(&config, None, Utc::now(), read(&[("tps", 5.0)]));
        assert_eq!(nothing.verdict, Verdict::Unmeasured);
        assert!(
            nothing
                .summary()
                .contains("no objective could be measured: lat (no data)"),
            "{}",
            nothing.summary()
        );
        let all = evaluate(
            &config,
            None,
            Utc::now(),
            read(&[("lat", 100.0), ("temp", 40.0)]),
        );
        assert_eq!(all.verdict, Verdict::Met);
        let json = serde_json::to_value(&all).unwrap();
        assert_eq!(json["verdict"], "met");
        assert_eq!(json["metrics"][1]["reading"]["kind"], "instant");
    }
}
