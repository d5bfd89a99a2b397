//! The budget file: objectives with a target and warning and critical
//! levels, written as in the seeds' tables (`target: "< 5ms"`, `warning:
//! "> 4ms"`, `critical: "> 5ms"`). Read through the one YAML module, so
//! unknown keys and bad units are errors at `file:line:col`.
//!
//! Just over 500 lines with its tests: the file's model and its checks at
//! `file:line` are one concept, kept together.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use super::stat::{Stat, STAT_FORMS};
use super::GateError;
use crate::config::load::locate;
use crate::config::objective::{Objective as Condition, Threshold};
use crate::config::units::{parse_percent, MetricUnit};
use crate::config::Comparison;

pub const DEFAULT_PATH: &str = "config/budget.yaml";

/// The regression a baseline comparison allows when neither the budget nor
/// `--max-regression` says: 10% worse than the baseline.
pub const DEFAULT_REGRESSION: f64 = 10.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    regression: Option<String>,
    objectives: BTreeMap<String, RawObjective>,
    /// Ratio objectives and alert settings: `tuner alerts` reads them
    /// (`alerts/spec.rs`), with its own checks at `file:line`.
    #[serde(default)]
    #[allow(dead_code)]
    slos: Option<crate::config::yaml::Value>,
    #[serde(default)]
    #[allow(dead_code)]
    alerting: Option<crate::config::yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjective {
    metric: String,
    #[serde(default)]
    stat: Option<String>,
    #[serde(default)]
    unit: Option<MetricUnit>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    warning: Option<String>,
    #[serde(default)]
    critical: Option<String>,
    #[serde(default)]
    regression: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// What an objective measures. The three well-known quantities mean the
/// same thing for every result format; any other name is a metric of the
/// input itself (a k6 metric, or a metric of `tuner.yaml` with `--live`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricRef {
    /// Request or transaction latency, in milliseconds (needs a `stat`).
    Latency,
    /// Requests or transactions per second.
    Throughput,
    /// Failed requests or transactions, in percent of all.
    ErrorRate,
    /// A metric of the input by its own name.
    Named(String),
}

impl MetricRef {
    fn parse(name: &str) -> MetricRef {
        match name.trim() {
            "latency" => MetricRef::Latency,
            "throughput" => MetricRef::Throughput,
            "error_rate" => MetricRef::ErrorRate,
            other => MetricRef::Named(other.to_string()),
        }
    }

    /// The unit a well-known quantity is always measured in.
    pub fn fixed_unit(&self) -> Option<MetricUnit> {
        match self {
            MetricRef::Latency => Some(MetricUnit::Milliseconds),
            MetricRef::Throughput => Some(MetricUnit::PerSecond),
            MetricRef::ErrorRate => Some(MetricUnit::Percent),
            MetricRef::Named(_) => None,
        }
    }
}

impl fmt::Display for MetricRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricRef::Latency => f.write_str("latency"),
            MetricRef::Throughput => f.write_str("throughput"),
            MetricRef::ErrorRate => f.write_str("error_rate"),
            MetricRef::Named(name) => f.write_str(name),
        }
    }
}

/// One level as written (`> 4ms`), with its value in the measured unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Level {
    pub comparison: Comparison,
    pub value: f64,
    pub written: String,
}

/// An objective's levels, resolved in the unit its input measures.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Levels {
    /// What should hold (`< 5ms`). Missed: WARN, or FAIL without `critical`.
    pub target: Option<Level>,
    /// Crossing it (`> 4ms`) is a WARN.
    pub warning: Option<Level>,
    /// Crossing it (`> 5ms`) is a FAIL.
    pub critical: Option<Level>,
}

impl Levels {
    /// True when larger values are the bad side (latency, error rate);
    /// false for throughput or a cache hit rate.
    pub fn higher_is_worse(&self) -> bool {
        let trigger = self.critical.as_ref().or(self.warning.as_ref());
        match (trigger, &self.target) {
            (Some(t), _) => !t.comparison.upper_bound(),
            (None, Some(target)) => target.comparison.upper_bound(),
            (None, None) => true,
        }
    }

    /// Levels that contradict each other: a target and a trigger that
    /// disagree on which side is bad, or a warning past the critical level.
    fn check(&self) -> Result<(), String> {
        let bad_high = self.higher_is_worse();
        for (key, level) in [("warning", &self.warning), ("critical", &self.critical)] {
            if let Some(l) = level {
                if l.comparison.upper_bound() == bad_high {
                    return Err(format!(
                        "{key} {:?} and the other levels disagree on which side is worse; write warning and critical the same way round (both `>` or both `<`)",
                        l.written
                    ));
                }
            }
        }
        if let Some(t) = &self.target {
            if t.comparison.upper_bound() != bad_high {
                return Err(format!(
                    "target {:?} asks for {} values, but the warning/critical levels call {} values worse",
                    t.written,
                    if t.comparison.upper_bound() { "low" } else { "high" },
                    if bad_high { "high" } else { "low" }
                ));
            }
        }
        if let (Some(w), Some(c)) = (&self.warning, &self.critical) {
            let ordered = if bad_high {
                w.value <= c.value
            } else {
                w.value >= c.value
            };
            if !ordered {
                return Err(format!(
                    "warning {:?} lies beyond critical {:?}; the warning level must come first",
                    w.written, c.written
                ));
            }
        }
        Ok(())
    }
}

/// One objective of the budget.
#[derive(Debug, Clone, Serialize)]
pub struct Objective {
    pub name: String,
    pub metric: MetricRef,
    pub stat: Option<Stat>,
    /// The unit given in the budget, or the one a well-known quantity has.
    pub unit: Option<MetricUnit>,
    /// A Locust row (`Name` column); the `Aggregated` row when absent.
    pub endpoint: Option<String>,
    /// k6 tags a sample must carry to count (`{name: login}`).
    pub tags: BTreeMap<String, String>,
    pub description: Option<String>,
    /// Percent worse than the baseline this objective may be.
    pub regression: Option<f64>,
    target: Option<String>,
    warning: Option<String>,
    critical: Option<String>,
    /// `file:line:col` of the objective, for errors found once the input
    /// tells its unit.
    #[serde(skip)]
    pub at: String,
    /// `file:line:col` of each level (`target`, `warning`, `critical`).
    #[serde(skip)]
    places: Vec<(&'static str, String)>,
}

impl Objective {
    /// `latency p95`, `error_rate`, `http_req_duration{name:login} p99`.
    pub fn label(&self) -> String {
        let mut out = self.metric.to_string();
        if !self.tags.is_empty() {
            let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            out.push_str(&format!("{{{}}}", tags.join(",")));
        }
        if let Some(stat) = self.stat {
            out.push_str(&format!(" {stat}"));
        }
        out
    }

    /// The levels in `unit`, the unit the input measures this objective in.
    pub fn levels(&self, unit: MetricUnit) -> Result<Levels, String> {
        let level = |key: &str, written: &Option<String>| -> Result<Option<Level>, String> {
            let Some(written) = written else {
                return Ok(None);
            };
            let mut condition = Condition::parse(written).map_err(|e| format!("{key}: {e}"))?;
            if matches!(condition.threshold, Threshold::Relative { .. }) {
                return Err(format!(
                    "{key}: {written:?} is relative; budget levels are absolute, compare with a baseline through `regression:` and `--baseline`"
                ));
            }
            condition
                .resolve_unit(unit)
                .map_err(|e| format!("{key}: {e}"))?;
            let value = condition.limit(None).unwrap_or(f64::NAN);
            Ok(Some(Level {
                comparison: condition.comparison,
                value,
                written: written.trim().to_string(),
            }))
        };
        let levels = Levels {
            target: level("target", &self.target)?,
            warning: level("warning", &self.warning)?,
            critical: level("critical", &self.critical)?,
        };
        levels.check()?;
        Ok(levels)
    }

    /// [`Objective::levels`] with the error placed at the objective.
    pub fn levels_at(&self, unit: MetricUnit) -> Result<Levels, GateError> {
        self.levels(unit).map_err(|e| GateError::Budget {
            problems: vec![format!(
                "{} (measured in {})",
                self.locate(&e),
                serde_name(unit)
            )],
        })
    }

    /// An error of [`Objective::levels`] placed at the level it is about
    /// (`budget.yaml:9:5: objectives.p99.critical: …`), or at the objective.
    pub fn locate(&self, error: &str) -> String {
        match split_key(error) {
            (Some(key), message) => {
                let place = self
                    .places
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or(self.at.as_str(), |(_, p)| p.as_str());
                format!("{place}: objectives.{}.{key}: {message}", self.name)
            }
            (None, message) => format!("{}: objectives.{}: {message}", self.at, self.name),
        }
    }

    /// An error about this objective, placed at it.
    pub fn problem(&self, message: impl fmt::Display) -> GateError {
        GateError::Budget {
            problems: vec![format!("{}: objectives.{}: {message}", self.at, self.name)],
        }
    }
}

/// The whole budget file, objectives in the order written.
#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    pub path: PathBuf,
    pub description: Option<String>,
    /// Percent worse than the baseline any objective may be by default.
    pub regression: f64,
    pub objectives: Vec<Objective>,
}

impl Budget {
    pub fn load(path: &Path) -> Result<Budget, GateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(GateError::Budget {
                    problems: vec![format!(
                    "budget file {} not found; pass --budget PATH (the default is {DEFAULT_PATH})",
                    path.display()
                )],
                })
            }
            Err(e) => return Err(GateError::read(path, e)),
        };
        Budget::from_str(path, &text)
    }

    /// Parses and checks budget text as read from `path`, gathering every
    /// problem, each at `file:line:col`.
    pub fn from_str(path: &Path, text: &str) -> Result<Budget, GateError> {
        let raw: RawBudget = crate::config::yaml::parse(path, text)
            .map_err(|p| GateError::Budget { problems: vec![p] })?;
        let mut problems = Vec::new();
        let regression = match &raw.regression {
            None => DEFAULT_REGRESSION,
            Some(r) => match regression(r) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!(
                        "{}: regression: {e}",
                        locate(path, text, &["regression"])
                    ));
                    DEFAULT_REGRESSION
                }
            },
        };
        if raw.objectives.is_empty() {
            problems.push(format!(
                "{}: objectives: at least one objective is required",
                locate(path, text, &["objectives"])
            ));
        }
        let mut objectives = Vec::new();
        for (name, o) in raw.objectives {
            let at = locate(path, text, &["objectives", &name]);
            let field = |key: &str| {
                let place = locate(path, text, &["objectives", &name, key]);
                format!("{place}: objectives.{name}.{key}")
            };
            let places = ["target", "warning", "critical"]
                .map(|k| (k, locate(path, text, &["objectives", &name, k])))
                .to_vec();
            match objective(&name, o, at.clone(), places, &field) {
                Ok(o) => objectives.push(o),
                Err(mut p) => problems.append(&mut p),
            }
        }
        if !problems.is_empty() {
            return Err(GateError::Budget { problems });
        }
        objectives.sort_by_key(|o| line_of(&o.at));
        Ok(Budget {
            path: path.to_path_buf(),
            description: raw.description,
            regression,
            objectives,
        })
    }
}

fn regression(written: &str) -> Result<f64, String> {
    let v = parse_percent(written).map_err(|e| e.to_string())?;
    if v < 0.0 {
        return Err(format!("{written:?} must be 0% or more"));
    }
    Ok(v)
}

/// Checks one objective; every problem is returned, each placed by `field`.
fn objective(
    name: &str,
    raw: RawObjective,
    at: String,
    places: Vec<(&'static str, String)>,
    field: &dyn Fn(&str) -> String,
) -> Result<Objective, Vec<String>> {
    let mut problems = Vec::new();
    let metric = MetricRef::parse(&raw.metric);
    if raw.metric.trim().is_empty() {
        problems.push(format!(
            "{}: empty; name `latency`, `throughput`, `error_rate` or a metric of the input",
            field("metric")
        ));
    }
    let stat = match raw.stat.as_deref().map(Stat::parse).transpose() {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("{}: {e}", field("stat")));
            None
        }
    };
    match (&metric, stat) {
        (MetricRef::Latency, None) if raw.stat.is_none() => problems.push(format!(
            "{}: latency needs a stat; accepted: {STAT_FORMS}",
            field("metric")
        )),
        (MetricRef::Latency, Some(s)) if !s.is_distribution() => problems.push(format!(
            "{}: {s} is not a latency statistic; use a percentile, med, avg, min or max",
            field("stat")
        )),
        (MetricRef::Throughput | MetricRef::ErrorRate, Some(s)) => problems.push(format!(
            "{}: {metric} is one number, it takes no stat (got {s})",
            field("stat")
        )),
        _ => {}
    }
    let unit = match (metric.fixed_unit(), raw.unit) {
        (Some(fixed), Some(given)) if fixed != given => {
            problems.push(format!(
                "{}: {metric} is always measured in {}; remove `unit:`",
                field("unit"),
                serde_name(fixed)
            ));
            Some(fixed)
        }
        (fixed, given) => fixed.or(given),
    };
    if raw.target.is_none() && raw.critical.is_none() {
        problems.push(format!(
            "{}: give a `target` or a `critical` level (and optionally `warning`), e.g. target: \"< 500ms\", warning: \"> 400ms\", critical: \"> 1s\"",
            at.clone() + &format!(": objectives.{name}")
        ));
    }
    let regression = match raw.regression.as_deref().map(regression).transpose() {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("{}: {e}", field("regression")));
            None
        }
    };
    let objective = Objective {
        name: name.to_string(),
        metric,
        stat,
        unit,
        endpoint: raw.endpoint,
        tags: raw.tags,
        description: raw.description,
        regression,
        target: raw.target,
        warning: raw.warning,
        critical: raw.critical,
        at,
        places,
    };
    // Level syntax now; values too when the unit is already known.
    for (key, written) in [
        ("target", &objective.target),
        ("warning", &objective.warning),
        ("critical", &objective.critical),
    ] {
        if let Some(w) = written {
            if let Err(e) = Condition::parse(w) {
                problems.push(format!("{}: {e}", field(key)));
            }
        }
    }
    if problems.is_empty() {
        if let Some(unit) = objective.unit {
            if let Err(e) = objective.levels(unit) {
                problems.push(match split_key(&e) {
                    (Some(key), message) => format!("{}: {message}", field(key)),
                    (None, message) => format!("{}: objectives.{name}: {message}", objective.at),
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(objective)
    } else {
        Err(problems)
    }
}

/// `("critical", "…")` for an error about one level, `(None, …)` for one
/// about the levels together.
fn split_key(error: &str) -> (Option<&'static str>, &str) {
    for key in ["target", "warning", "critical"] {
        if let Some(rest) = error.strip_prefix(key).and_then(|r| r.strip_prefix(": ")) {
            return (Some(key), rest);
        }
    }
    (None, error)
}

/// The line of a `file:line:col` place (0 when only the file is known).
fn line_of(at: &str) -> usize {
    let mut parts = at.rsplit(':');
    let _col = parts.next();
    parts.next().and_then(|l| l.parse().ok()).unwrap_or(0)
}

/// A unit as written in YAML (`milliseconds`).
pub fn serde_name(unit: MetricUnit) -> String {
    serde_json::to_value(unit)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{unit:?}"))
}

#[cfg(test)]
mod tests;
