//! Comparison with a baseline file: each objective may be at most its
//! allowed regression worse than the baseline's value (the mean `tuner
//! baseline` captured, or what `tuner check --save-baseline` recorded of an
//! earlier run). Half the allowance is a WARN, past it a FAIL.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;

use super::budget::Budget;
use super::evaluate::{CheckResult, Kind, Report, State};
use super::GateError;
use crate::metrics::{Baseline, BaselineMetric};

/// One comparison row per objective of `budget` found in `report`.
/// `max_regression` (percent) replaces the budget's default; an
/// objective's own `regression:` still wins.
pub fn compare(
    report: &Report,
    budget: &Budget,
    baseline: &Baseline,
    path: &Path,
    max_regression: Option<f64>,
) -> Result<Vec<CheckResult>, GateError> {
    let mut rows = Vec::new();
    for o in &budget.objectives {
        let Some(current) = report
            .results
            .iter()
            .find(|r| r.kind == Kind::Budget && r.name == o.name)
        else {
            continue;
        };
        let metric = o.metric.to_string();
        let Some((key, base)) = [o.name.as_str(), metric.as_str()]
            .into_iter()
            .find_map(|k| baseline.metrics.get(k).map(|b| (k, b)))
        else {
            let known: Vec<&str> = baseline.metrics.keys().map(String::as_str).collect();
            return Err(GateError::input(
                path,
                format!(
                    "metrics.{} is missing: no baseline for objective {} (metrics in the baseline: {})",
                    o.name,
                    o.name,
                    known.join(", ")
                ),
            ));
        };
        let unit = current.unit.unwrap_or(base.unit);
        if base.unit != unit {
            return Err(GateError::input(
                path,
                format!(
                    "metrics.{key}.unit is {}, but objective {} is measured in {}",
                    super::budget::serde_name(base.unit),
                    o.name,
                    super::budget::serde_name(unit)
                ),
            ));
        }
        let higher_is_worse = o.levels_at(unit)?.higher_is_worse();
        let allowed = o.regression.or(max_regression).unwrap_or(budget.regression);
        let sign = if higher_is_worse { "+" } else { "-" };
        let (state, shown, reason) = match (current.value, base.value) {
            (None, _) => (
                State::Fail,
                "no samples".to_string(),
                "nothing to compare: no measured value".to_string(),
            ),
            (Some(v), None) => (
                State::Fail,
                unit.format(v),
                format!("the baseline has no value for {key} (no data when it was captured)"),
            ),
            (Some(v), Some(b)) => {
                let worse = if higher_is_worse { v - b } else { b - v };
                let regression = if b != 0.0 {
                    worse / b.abs() * 100.0
                } else if worse > 0.0 {
                    f64::INFINITY
                } else {
                    0.0
                };
                let change = if b != 0.0 {
                    format!("{:+.1}%", (v - b) / b.abs() * 100.0)
                } else {
                    "from 0".into()
                };
                let shown = format!("{} vs {} ({change})", unit.format(v), unit.format(b));
                let (state, why) = if regression > allowed {
                    (State::Fail, format!("{regression:.1}% worse than the baseline, more than the {allowed}% allowed"))
                } else if regression > allowed / 2.0 {
                    (State::Warn, format!("{regression:.1}% worse than the baseline, over half the {allowed}% allowed"))
                } else if regression > 0.0 {
                    (
                        State::Pass,
                        format!("{regression:.1}% worse than the baseline, within {allowed}%"),
                    )
                } else {
                    (State::Pass, "no worse than the baseline".to_string())
                };
                (state, shown, why)
            }
        };
        rows.push(CheckResult {
            name: format!("{} vs baseline", o.name),
            kind: Kind::Baseline,
            measures: current.measures.clone(),
            source: format!("{} metrics.{key}", path.display()),
            unit: Some(unit),
            value: current.value,
            shown,
            samples: current.samples,
            target: Some(format!("within {sign}{allowed}% of baseline")),
            warning: Some(format!("{sign}{}%", allowed / 2.0)),
            critical: Some(format!("{sign}{allowed}%")),
            state,
            reason,
            note: None,
        });
    }
    Ok(rows)
}

/// A baseline of this run's values, keyed by objective, for a later
/// `tuner check --baseline` to compare with.
pub fn capture(report: &Report) -> Baseline {
    let mut metrics = BTreeMap::new();
    for r in report.results.iter().filter(|r| r.kind == Kind::Budget) {
        let Some(unit) = r.unit else {
            continue;
        };
        metrics.insert(
            r.name.clone(),
            BaselineMetric {
                query: format!("{}: {}", report.input, r.source),
                value: r.value,
                peak: r.value,
                unit,
                window: "run".into(),
                samples: r.samples.unwrap_or(0) as usize,
            },
        );
    }
    Baseline {
        captured_at: Utc::now(),
        profile: "check".into(),
        window: "run".into(),
        metrics,
    }
}

/// The baseline file's text, with a header saying where it came from.
pub fn to_yaml(baseline: &Baseline) -> Result<String, GateError> {
    let body = crate::config::yaml::to_string(baseline)
        .map_err(|e| GateError::Usage(format!("cannot render the baseline: {e}")))?;
    Ok(format!(
        "# Written by `tuner check --save-baseline`: this run's value of each objective.\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::MetricUnit;
    use crate::gate::evaluate::{evaluate, Measurement, Reading};

    const BUDGET: &str = r#"
regression: 10%
objectives:
  p95:
    metric: latency
    stat: p95
    critical: "> 1s"
  rps:
    metric: throughput
    critical: "< 10/s"
    regression: 20%
"#;

    fn report(p95: f64, rps: f64) -> (Budget, Report) {
        let budget = Budget::from_str(Path::new("budget.yaml"), BUDGET).unwrap();
        let reading = Reading {
            input: "k6 run.json".into(),
            measurements: vec![
                Measurement::of("p(95)", MetricUnit::Milliseconds, p95, Some(100)),
                Measurement::of("rate", MetricUnit::PerSecond, rps, Some(100)),
            ],
            extra: Vec::new(),
        };
        let r = evaluate(&budget, reading, 0.0).unwrap();
        (budget, r)
    }

    #[test]
    fn regressions_beyond_the_allowance_fail_in_the_bad_direction_only() {
        let (_, before) = report(100.0, 50.0);
        let baseline = capture(&before);
        let text = to_yaml(&baseline).unwrap();
        let reread: Baseline = crate::config::yaml::from_str(&text).unwrap();
        assert_eq!(reread.metrics["p95"].value, Some(100.0));

        let (budget, now) = report(112.0, 42.0);
        let rows = compare(&now, &budget, &reread, Path::new("base.yaml"), None).unwrap();
        assert_eq!(rows[0].state, State::Fail, "{:?}", rows[0]);
        assert!(rows[0].reason.contains("12.0% worse"), "{}", rows[0].reason);
        assert_eq!(rows[0].shown, "112ms vs 100ms (+12.0%)");
        // Throughput 16% lower, within its own 20%, over half of it.
        assert_eq!(rows[1].state, State::Warn, "{:?}", rows[1]);
        // Faster and busier than the baseline is no regression.
        let (budget, better) = report(80.0, 70.0);
        let rows = compare(&better, &budget, &reread, Path::new("base.yaml"), Some(5.0)).unwrap();
        assert!(rows.iter().all(|r| r.state == State::Pass), "{rows:?}");
        // --max-regression replaces the budget's 10%, not the objective's 20%.
        let (budget, now) = report(104.0, 50.0);
        let rows = compare(&now, &budget, &reread, Path::new("base.yaml"), Some(5.0)).unwrap();
        assert_eq!(rows[0].state, State::Warn);
    }

    #[test]
    fn a_baseline_without_the_objective_names_the_file_and_field() {
        let (budget, now) = report(100.0, 50.0);
        let mut baseline = capture(&now);
        baseline.metrics.remove("rps");
        let err = compare(&now, &budget, &baseline, Path::new("base.yaml"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("base.yaml: metrics.rps is missing"),
            "{err}"
        );
    }
}
