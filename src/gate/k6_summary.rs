//! k6's `--summary-export` JSON: `metrics.<name>` holds the aggregated
//! values of each metric (trends: `avg`, `min`, `med`, `max`, `p(90)`,
//! `p(95)` unless `--summary-trend-stats` said otherwise; counters: `count`,
//! `rate`; rates: `passes`, `fails`, `value`; gauges: `value`, `min`,
//! `max`) and `thresholds`, whose booleans are `true` when the threshold
//! *failed*.
//!
//! Two traps this reader closes: a budget on `p(99)` when k6 exported only
//! up to `p(95)` is an error that says how to get it, never a guess; and an
//! empty trend, which k6 exports as zeros that meet any `<` level, is a
//! FAIL for want of samples.

use std::path::Path;

use serde_json::{Map, Value};

use super::budget::{MetricRef, Objective, Stat};
use super::evaluate::{CheckResult, Kind, Measurement, Reading, State};
use super::{input, GateError};
use crate::config::units::MetricUnit;

/// A summary export is a few kilobytes; anything this large is not one.
const LIMIT: u64 = 64 << 20;

type Metrics = Map<String, Value>;

pub fn read(path: &Path, objectives: &[Objective]) -> Result<Reading, GateError> {
    let text = input::read_small(path, LIMIT)?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| {
        let what = if e.is_eof() {
            "truncated JSON"
        } else {
            "malformed JSON"
        };
        GateError::input(path, format!("{what}: {e}"))
    })?;
    let metrics = doc
        .get("metrics")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            GateError::input(path, "no `metrics` object: not a k6 --summary-export file")
        })?;
    let mut measurements = Vec::new();
    for o in objectives {
        measurements.push(measure(path, metrics, o)?);
    }
    Ok(Reading {
        input: format!("{} {}", super::Format::K6Summary.describe(), path.display()),
        measurements,
        extra: thresholds(path, metrics)?,
    })
}

/// The k6 metric an objective reads: the built-in behind a well-known
/// quantity, or the metric named, as a submetric when tags are given.
fn metric_name(o: &Objective) -> String {
    let base = match &o.metric {
        MetricRef::Latency => "http_req_duration",
        MetricRef::Throughput => "http_reqs",
        MetricRef::ErrorRate => "http_req_failed",
        MetricRef::Named(n) => n,
    };
    if o.tags.is_empty() {
        return base.to_string();
    }
    let tags: Vec<String> = o.tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{base}{{{}}}", tags.join(","))
}

/// Finds `name` (a submetric's tags in any order) among the exported keys.
fn find<'m>(
    path: &Path,
    metrics: &'m Metrics,
    name: &str,
) -> Result<(&'m str, &'m Map<String, Value>), GateError> {
    let tags_of = |key: &str| -> Option<(String, Vec<String>)> {
        let (base, rest) = key.split_once('{')?;
        let mut tags: Vec<String> = rest
            .trim_end_matches('}')
            .split(',')
            .map(|t| t.split(':').map(str::trim).collect::<Vec<_>>().join(":"))
            .collect();
        tags.sort();
        Some((base.to_string(), tags))
    };
    let wanted = tags_of(name);
    let found = metrics
        .iter()
        .find(|(key, _)| key.as_str() == name || (wanted.is_some() && tags_of(key) == wanted));
    match found {
        Some((key, Value::Object(m))) => Ok((key.as_str(), m)),
        Some((key, _)) => Err(GateError::input(
            path,
            format!("metrics.{key} is not an object"),
        )),
        None => {
            let mut known: Vec<&str> = metrics.keys().map(String::as_str).collect();
            known.sort_unstable();
            Err(GateError::input(
                path,
                format!(
                    "metrics.{name} is missing (metrics in the file: {})",
                    known.join(", ")
                ),
            ))
        }
    }
}

fn number(
    path: &Path,
    key: &str,
    m: &Map<String, Value>,
    field: &str,
) -> Result<Option<f64>, GateError> {
    match m.get(field) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| {
            GateError::input(path, format!("metrics.{key}.{field} is {v}, not a number"))
        }),
    }
}

fn required(path: &Path, key: &str, m: &Map<String, Value>, field: &str) -> Result<f64, GateError> {
    number(path, key, m, field)?
        .ok_or_else(|| GateError::input(path, format!("metrics.{key}.{field} is missing")))
}

/// What kind of k6 metric an exported object is, from its fields.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Trend,
    Counter,
    Rate,
    Gauge,
}

fn shape(m: &Map<String, Value>) -> Shape {
    if m.contains_key("passes") || m.contains_key("fails") {
        Shape::Rate
    } else if m.contains_key("avg") || m.contains_key("med") {
        Shape::Trend
    } else if m.contains_key("count") {
        Shape::Counter
    } else {
        Shape::Gauge
    }
}

/// How many samples a trend holds: its `count` when exported, the request
/// count for the whole of `http_req_duration`, and none when k6 exported
/// the all-zero trend it writes for a metric that never got a sample.
fn trend_samples(
    path: &Path,
    metrics: &Metrics,
    key: &str,
    m: &Map<String, Value>,
) -> Result<Option<u64>, GateError> {
    if let Some(count) = number(path, key, m, "count")? {
        return Ok(Some(count as u64));
    }
    if key == "http_req_duration" {
        if let Some(Value::Object(reqs)) = metrics.get("http_reqs") {
            if let Some(count) = number(path, "http_reqs", reqs, "count")? {
                return Ok(Some(count as u64));
            }
        }
    }
    let stats = ["avg", "min", "max"].map(|f| m.get(f).and_then(Value::as_f64));
    if stats.iter().all(|v| *v == Some(0.0)) {
        return Ok(Some(0));
    }
    Ok(None)
}

fn measure(path: &Path, metrics: &Metrics, o: &Objective) -> Result<Measurement, GateError> {
    let (key, m) = find(path, metrics, &metric_name(o))?;
    let shape = shape(m);
    let source = |what: &str| format!("{key} {what}");
    match (shape, o.stat) {
        (Shape::Trend, stat) => {
            let Some(stat) = stat else {
                return Err(o.problem(format!("{key} is a trend; give a stat such as p95")));
            };
            let fields: Vec<String> = match stat {
                Stat::Percentile(50.0) => vec!["p(50)".into(), "med".into()],
                Stat::Percentile(p) => vec![format!("p({p})")],
                Stat::Median => vec!["med".into(), "p(50)".into()],
                Stat::Avg => vec!["avg".into()],
                Stat::Min => vec!["min".into()],
                Stat::Max => vec!["max".into()],
                Stat::Count => vec!["count".into()],
                other => {
                    return Err(
                        o.problem(format!("{key} is a trend; {other} is not one of its stats"))
                    )
                }
            };
            let found = fields.iter().find(|f| m.contains_key(f.as_str()));
            let Some(field) = found else {
                let mut exported: Vec<&str> = m
                    .keys()
                    .map(String::as_str)
                    .filter(|k| *k != "thresholds")
                    .collect();
                exported.sort_unstable();
                return Err(GateError::input(
                    path,
                    format!(
                        "metrics.{key} has no {:?}: k6's summary export holds only the trend stats it was told to keep (here {}; by default avg, min, med, max, p(90), p(95)). Re-run k6 with --summary-trend-stats=\"avg,min,med,max,p(90),p(95),p(99)\", or check its raw --out json stream",
                        fields[0],
                        exported.join(", ")
                    ),
                ));
            };
            let value = required(path, key, m, field)?;
            let samples = trend_samples(path, metrics, key, m)?;
            let unit = o.unit.unwrap_or(MetricUnit::Milliseconds);
            Ok(zero_or(
                Measurement::of(source(field), unit, value, samples),
                key,
            ))
        }
        (Shape::Counter, stat) => {
            let count = required(path, key, m, "count")?;
            let (field, value, unit) = match stat {
                None | Some(Stat::Rate) => (
                    "rate",
                    required(path, key, m, "rate")?,
                    MetricUnit::PerSecond,
                ),
                Some(Stat::Count) => ("count", count, MetricUnit::Ratio),
                Some(other) => {
                    return Err(o.problem(format!(
                        "{key} is a counter; {other} is not one of its stats (count, rate)"
                    )))
                }
            };
            let unit = if o.metric == MetricRef::Throughput {
                unit
            } else {
                o.unit.unwrap_or(unit)
            };
            Ok(zero_or(
                Measurement::of(source(field), unit, value, Some(count as u64)),
                key,
            ))
        }
        (Shape::Rate, None | Some(Stat::Value | Stat::Rate)) => {
            let passes = required(path, key, m, "passes")?;
            let fails = required(path, key, m, "fails")?;
            let value = required(path, key, m, "value")?;
            let n = (passes + fails) as u64;
            Ok(zero_or(
                Measurement::of(source("value"), MetricUnit::Percent, value * 100.0, Some(n)),
                key,
            ))
        }
        (Shape::Gauge, None | Some(Stat::Value | Stat::Min | Stat::Max)) => {
            let field = match o.stat {
                Some(Stat::Min) => "min",
                Some(Stat::Max) => "max",
                _ => "value",
            };
            let value = required(path, key, m, field)?;
            Ok(Measurement::of(
                source(field),
                o.unit.unwrap_or(MetricUnit::Ratio),
                value,
                None,
            ))
        }
        (shape, Some(stat)) => Err(o.problem(format!(
            "{key} is a k6 {} metric; {stat} is not one of its stats",
            format!("{shape:?}").to_lowercase()
        ))),
    }
}

/// No samples is a FAIL with its reason, whatever zeros k6 exported.
fn zero_or(m: Measurement, key: &str) -> Measurement {
    if m.samples == Some(0) {
        let reason =
            format!("{key} has no samples in the run (k6 exports an empty metric as zeros)");
        return Measurement::none(m.source, m.unit, reason);
    }
    m
}

/// k6's own thresholds, one row each: `true` in the export means failed.
/// One that passed on a metric without samples is failed here.
fn thresholds(path: &Path, metrics: &Metrics) -> Result<Vec<CheckResult>, GateError> {
    let mut rows = Vec::new();
    let mut keys: Vec<&String> = metrics.keys().collect();
    keys.sort();
    for key in keys {
        let Some(Value::Object(m)) = metrics.get(key) else {
            continue;
        };
        let Some(list) = m.get("thresholds") else {
            continue;
        };
        let Some(list) = list.as_object() else {
            return Err(GateError::input(
                path,
                format!("metrics.{key}.thresholds is not an object"),
            ));
        };
        let empty = match shape(m) {
            Shape::Trend => trend_samples(path, metrics, key, m)? == Some(0),
            Shape::Counter => number(path, key, m, "count")? == Some(0.0),
            Shape::Rate => {
                number(path, key, m, "passes")?.unwrap_or(0.0)
                    + number(path, key, m, "fails")?.unwrap_or(0.0)
                    == 0.0
            }
            Shape::Gauge => false,
        };
        for (expr, failed) in list {
            let Some(failed) = failed.as_bool() else {
                return Err(GateError::input(
                    path,
                    format!("metrics.{key}.thresholds.{expr:?} is {failed}, not true/false"),
                ));
            };
            let (state, reason) = match (failed, empty) {
                (true, _) => (
                    State::Fail,
                    "k6 marked it failed (`true` in --summary-export means failed)",
                ),
                (false, true) => (State::Fail, "k6 passed it on a metric without samples"),
                (false, false) => (State::Pass, "k6 marked it passed"),
            };
            rows.push(CheckResult {
                name: format!("k6 threshold {key}: {expr}"),
                kind: Kind::K6Threshold,
                measures: key.clone(),
                source: format!("metrics.{key}.thresholds"),
                unit: None,
                value: None,
                shown: if state == State::Fail { "failed" } else { "ok" }.into(),
                samples: None,
                target: Some(expr.clone()),
                warning: None,
                critical: None,
                state,
                reason: reason.into(),
                note: None,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests;
