//! PASS / WARN / FAIL: each objective's measurement against its levels.

use std::path::PathBuf;

use serde::Serialize;

use super::budget::{Budget, Level, Levels, Objective};
use super::GateError;
use crate::config::units::MetricUnit;

/// What a reader found for one objective.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// What was read, in the input's own words (`http_req_duration p(95)`).
    pub source: String,
    pub unit: MetricUnit,
    /// `None` when there is nothing to judge: see `missing`.
    pub value: Option<f64>,
    /// How many samples the value is made of, when the input tells.
    pub samples: Option<u64>,
    /// The true value may lie anywhere within `value ± tolerance` (Locust
    /// rounds its response times); 0 for exact inputs.
    pub tolerance: f64,
    /// Why there is no value.
    pub missing: Option<String>,
    /// How the value was computed, when that matters (an estimate).
    pub note: Option<String>,
}

impl Measurement {
    pub fn of(
        source: impl Into<String>,
        unit: MetricUnit,
        value: f64,
        samples: Option<u64>,
    ) -> Measurement {
        Measurement {
            source: source.into(),
            unit,
            value: Some(value),
            samples,
            tolerance: 0.0,
            missing: None,
            note: None,
        }
    }

    /// Nothing to judge, for `reason`: a FAIL, never a pass.
    pub fn none(
        source: impl Into<String>,
        unit: MetricUnit,
        reason: impl Into<String>,
    ) -> Measurement {
        Measurement {
            source: source.into(),
            unit,
            value: None,
            samples: Some(0),
            tolerance: 0.0,
            missing: Some(reason.into()),
            note: None,
        }
    }

    pub fn with_note(mut self, note: Option<String>) -> Measurement {
        self.note = note;
        self
    }
}

/// Everything a reader produced: one measurement per budget objective, in
/// the budget's order, and any checks of its own (k6's thresholds).
#[derive(Debug, Clone)]
pub struct Reading {
    /// The input in a few words: `k6 --out json stream results.json`.
    pub input: String,
    pub measurements: Vec<Measurement>,
    pub extra: Vec<CheckResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Pass,
    Warn,
    Fail,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Pass => "PASS",
            State::Warn => "WARN",
            State::Fail => "FAIL",
        }
    }
}

/// Where a check comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An objective of the budget against its levels.
    Budget,
    /// An objective against the baseline, allowing a regression.
    Baseline,
    /// A threshold k6 evaluated itself (from `--summary-export`).
    K6Threshold,
}

/// One row of the result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub kind: Kind,
    /// What the objective measures (`latency p95`).
    pub measures: String,
    /// What was read for it (`http_req_duration p(95)`).
    pub source: String,
    pub unit: Option<MetricUnit>,
    pub value: Option<f64>,
    /// The value as printed (`212ms`, `no samples`).
    pub shown: String,
    pub samples: Option<u64>,
    pub target: Option<String>,
    pub warning: Option<String>,
    pub critical: Option<String>,
    pub state: State,
    pub reason: String,
    pub note: Option<String>,
}

/// The whole result of one `tuner check`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub budget: PathBuf,
    pub input: String,
    pub verdict: State,
    pub passed: usize,
    pub warned: usize,
    pub failed: usize,
    /// How long reading the input took.
    pub seconds: f64,
    pub results: Vec<CheckResult>,
}

impl Report {
    pub fn new(budget: &Budget, input: String, seconds: f64, results: Vec<CheckResult>) -> Report {
        let mut report = Report {
            budget: budget.path.clone(),
            input,
            verdict: State::Pass,
            passed: 0,
            warned: 0,
            failed: 0,
            seconds,
            results,
        };
        report.recount();
        report
    }

    /// Adds rows (a baseline comparison) and updates the verdict.
    pub fn extend(&mut self, more: Vec<CheckResult>) {
        self.results.extend(more);
        self.recount();
    }

    fn recount(&mut self) {
        let count = |s: State| self.results.iter().filter(|r| r.state == s).count();
        self.passed = count(State::Pass);
        self.warned = count(State::Warn);
        self.failed = count(State::Fail);
        self.verdict = self
            .results
            .iter()
            .map(|r| r.state)
            .max()
            .unwrap_or(State::Pass);
    }

    /// `3 PASS, 1 WARN, 1 FAIL`.
    pub fn summary(&self) -> String {
        format!(
            "{} PASS, {} WARN, {} FAIL",
            self.passed, self.warned, self.failed
        )
    }
}

/// Judges every objective of `budget` on `reading`; the levels are read in
/// the unit the input measures each objective in.
pub fn evaluate(budget: &Budget, reading: Reading, seconds: f64) -> Result<Report, GateError> {
    let mut results = Vec::new();
    for (objective, m) in budget.objectives.iter().zip(reading.measurements) {
        let levels = objective.levels_at(m.unit)?;
        results.push(judge(objective, &levels, m));
    }
    results.extend(reading.extra);
    Ok(Report::new(budget, reading.input, seconds, results))
}

/// One objective's row.
pub fn judge(objective: &Objective, levels: &Levels, m: Measurement) -> CheckResult {
    let (state, reason) = state_of(levels, &m);
    let shown = match m.value {
        Some(v) if m.tolerance > 0.0 => {
            format!("{} (±{})", m.unit.format(v), m.unit.format(m.tolerance))
        }
        Some(v) => m.unit.format(v),
        None => "no samples".into(),
    };
    let written = |l: &Option<Level>| l.as_ref().map(|l| l.written.clone());
    CheckResult {
        name: objective.name.clone(),
        kind: Kind::Budget,
        measures: objective.label(),
        source: m.source,
        unit: Some(m.unit),
        value: m.value,
        shown,
        samples: m.samples,
        target: written(&levels.target),
        warning: written(&levels.warning),
        critical: written(&levels.critical),
        state,
        reason,
        note: m.note,
    }
}

fn state_of(levels: &Levels, m: &Measurement) -> (State, String) {
    let Some(v) = m.value else {
        let why = m.missing.clone().unwrap_or_else(|| "no samples".into());
        return (State::Fail, format!("nothing to judge: {why}"));
    };
    if m.samples == Some(0) {
        return (State::Fail, "nothing to judge: zero samples".into());
    }
    if m.tolerance <= 0.0 {
        return state_at(levels, v);
    }
    let low = state_at(levels, v - m.tolerance);
    let high = state_at(levels, v + m.tolerance);
    if low.0 == high.0 {
        return low;
    }
    // The rounding straddles a level: only a sure crossing fails.
    let (worse, why) = if low.0 > high.0 { low } else { high };
    let state = worse.min(State::Warn);
    (
        state,
        format!(
            "{why}, within the input's rounding (±{}) of that level",
            m.unit.format(m.tolerance)
        ),
    )
}

fn state_at(levels: &Levels, v: f64) -> (State, String) {
    fn crossed(l: &Option<Level>, v: f64) -> Option<&Level> {
        l.as_ref().filter(|l| l.comparison.holds(v, l.value))
    }
    let missed = levels
        .target
        .as_ref()
        .filter(|t| !t.comparison.holds(v, t.value));
    if let Some(c) = crossed(&levels.critical, v) {
        return (State::Fail, format!("past critical ({})", c.written));
    }
    if let (None, Some(t)) = (&levels.critical, missed) {
        return (State::Fail, format!("misses target ({})", t.written));
    }
    if let Some(w) = crossed(&levels.warning, v) {
        return (State::Warn, format!("past warning ({})", w.written));
    }
    if let Some(t) = missed {
        return (State::Warn, format!("misses target ({})", t.written));
    }
    let why = match &levels.target {
        Some(t) => format!("meets target ({})", t.written),
        None => "within every level".into(),
    };
    (State::Pass, why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BUDGET: &str = r#"
objectives:
  p99:
    metric: latency
    stat: p99
    target: "< 5ms"
    warning: "> 4ms"
    critical: "> 5ms"
  tput:
    metric: throughput
    target: "> 100/s"
    warning: "< 150/s"
    critical: "< 100/s"
  errors:
    metric: error_rate
    target: "< 1%"
"#;

    fn budget() -> Budget {
        Budget::from_str(Path::new("b.yaml"), BUDGET).unwrap()
    }

    fn state(objective: usize, m: Measurement) -> (State, String) {
        let b = budget();
        let o = &b.objectives[objective];
        let r = judge(o, &o.levels(m.unit).unwrap(), m);
        (r.state, r.reason)
    }

    fn ms(v: f64) -> Measurement {
        Measurement::of("p99", MetricUnit::Milliseconds, v, Some(100))
    }

    #[test]
    fn levels_give_pass_warn_and_fail_as_the_seeds_tables_say() {
        assert_eq!(state(0, ms(3.2)).0, State::Pass);
        assert_eq!(
            state(0, ms(4.5)),
            (State::Warn, "past warning (> 4ms)".into())
        );
        assert_eq!(
            state(0, ms(5.5)),
            (State::Fail, "past critical (> 5ms)".into())
        );
        let rps = |v| Measurement::of("rps", MetricUnit::PerSecond, v, Some(10));
        assert_eq!(state(1, rps(314.0)).0, State::Pass);
        assert_eq!(state(1, rps(120.0)).0, State::Warn);
        assert_eq!(state(1, rps(90.0)).0, State::Fail);
        // A target without critical fails when missed.
        let pct = |v| Measurement::of("err", MetricUnit::Percent, v, Some(10));
        assert_eq!(state(2, pct(0.5)).0, State::Pass);
        assert_eq!(
            state(2, pct(2.0)),
            (State::Fail, "misses target (< 1%)".into())
        );
    }

    #[test]
    fn zero_samples_fail_and_never_pass() {
        let none = Measurement::none("http_req_duration", MetricUnit::Milliseconds, "no requests");
        assert_eq!(
            state(0, none),
            (State::Fail, "nothing to judge: no requests".into())
        );
        // k6 reports an empty trend as zeros, which would meet any "<" level.
        let zero = Measurement::of("p99", MetricUnit::Milliseconds, 0.0, Some(0));
        assert_eq!(state(0, zero).0, State::Fail);
    }

    #[test]
    fn rounding_that_straddles_a_level_warns_instead_of_failing() {
        let rounded = |v, t| Measurement {
            tolerance: t,
            ..ms(v)
        };
        // 5ms ± 0.5ms: the true value may be on either side of critical.
        let (s, why) = state(0, rounded(5.0, 0.5));
        assert_eq!(s, State::Warn);
        assert!(why.contains("rounding (±0.5ms)"), "{why}");
        // Surely past critical even at the low end.
        assert_eq!(state(0, rounded(6.0, 0.5)).0, State::Fail);
        assert_eq!(state(0, rounded(2.0, 0.5)).0, State::Pass);
    }

    #[test]
    fn the_verdict_is_the_worst_row() {
        let b = budget();
        let reading = Reading {
            input: "test".into(),
            measurements: vec![
                ms(4.5),
                Measurement::of("rps", MetricUnit::PerSecond, 300.0, Some(1)),
                Measurement::of("err", MetricUnit::Percent, 0.0, Some(1)),
            ],
            extra: Vec::new(),
        };
        let r = evaluate(&b, reading, 0.0).unwrap();
        assert_eq!(r.verdict, State::Warn);
        assert_eq!(r.summary(), "2 PASS, 1 WARN, 0 FAIL");
        assert_eq!(r.results[0].shown, "4.5ms");
    }
}
