//! Evaluating measured values against the active profile's objectives.

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

#[derive(Debug, Clone, Serialize)]
pub struct MetricReport {
    pub name: String,
    pub unit: MetricUnit,
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    pub objective: Option<String>,
    pub limit: Option<f64>,
    pub state: State,
    pub symptom: Option<String>,
    /// How far past the limit, as a fraction of it (0.5 = 50% over); for
    /// choosing the worst violation.
    pub excess: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlaReport {
    pub profile: String,
    pub metrics: Vec<MetricReport>,
}

impl SlaReport {
    pub fn violated(&self) -> bool {
        self.metrics.iter().any(|m| m.state == State::Violated)
    }

    /// The violated metric furthest past its limit.
    pub fn worst_violation(&self) -> Option<&MetricReport> {
        self.metrics
            .iter()
            .filter(|m| m.state == State::Violated)
            .max_by(|a, b| a.excess.unwrap_or(0.0).total_cmp(&b.excess.unwrap_or(0.0)))
    }
}

/// Judges each configured metric's value (name -> value, `None` = no data).
pub fn evaluate(
    config: &Config,
    baseline: Option<&Baseline>,
    value_of: impl Fn(&str) -> Option<f64>,
) -> SlaReport {
    let objectives = config.objectives();
    let metrics = config
        .metrics
        .iter()
        .map(|(name, def)| {
            let value = value_of(name);
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
                baseline: reference.map(|(mean, _)| mean),
                objective: objective.map(|o| o.to_string()),
                limit,
                state,
                symptom: def.symptom.clone(),
                excess,
            }
        })
        .collect();
    SlaReport {
        profile: config.profile.clone(),
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

    #[test]
    fn states_cover_ok_warning_violated_no_data_and_no_baseline() {
        let config = from_str(Path::new("t.yaml"), CONFIG).unwrap();
        let report = evaluate(&config, None, |name| match name {
            "lat" => Some(300.0),
            "wal" => Some(10.0),
            "tps" => Some(5.0),
            _ => None,
        });
        let state = |n: &str| report.metrics.iter().find(|m| m.name == n).unwrap().state;
        assert_eq!(state("lat"), State::Violated);
        assert_eq!(state("wal"), State::NoBaseline);
        assert_eq!(state("temp"), State::NoData);
        assert_eq!(state("tps"), State::Untracked);
        assert!(report.violated());
        assert_eq!(report.worst_violation().unwrap().name, "lat");

        let ok = evaluate(&config, None, |name| {
            if name == "lat" {
                Some(190.0)
            } else {
                Some(1.0)
            }
        });
        assert_eq!(
            ok.metrics.iter().find(|m| m.name == "lat").unwrap().state,
            State::Warning
        );
        assert!(!ok.violated());
    }
}
