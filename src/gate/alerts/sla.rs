//! Threshold alerts: seed 000's four (`CpuTemperatureHigh`, `HighIOWait`,
//! `WalSpikes`, `P95WriteLatencyHigh`) from the active profile's SLA, the
//! budget's warning and critical levels, and a promtool unit test for each.
//!
//! Every metric of tuner.yaml is first recorded as `tuner:<metric>` with
//! the very query `status` and `tune` read, so an alert and the tuner can
//! never disagree on what "p95 write latency" means, and the unit tests can
//! feed the recorded series directly.

use std::collections::BTreeMap;

use super::decimal::Decimal;
use super::model::{camel, prom_duration, Alert, AlertCase, Expected, Record, Series, UnitTest};
use super::spec::Alerting;
use crate::config::{Comparison, Config, Objective, Threshold};
use crate::gate::budget::{Budget, MetricRef};
use crate::metrics::Baseline;

/// The label `tuner tune` watches: a firing alert carrying it during an
/// observation window makes the verdict `alert_fired`.
pub const TRIGGER: &str = "tuning_trigger";

/// When an alert fires: the value compared with a threshold, or a spike
/// above the metric's own recent level (a relative objective with no
/// baseline to turn into a number).
#[derive(Debug, Clone)]
pub enum Trigger {
    Crosses(Comparison, Decimal),
    Spike {
        factor: Decimal,
        floor: Option<Decimal>,
    },
}

impl Trigger {
    fn expr(&self, series: &str, alerting: &Alerting) -> String {
        match self {
            Trigger::Crosses(c, v) => format!("{series} {} {v}", c.symbol()),
            Trigger::Spike { factor, floor } => {
                let mut e = format!(
                    "{series} > {factor} * quantile_over_time(0.9, {series}[{}])",
                    prom_duration(alerting.recent)
                );
                if let Some(f) = floor {
                    e.push_str(&format!("\nand {series} > {f}"));
                }
                e
            }
        }
    }
}

/// The violation of an objective: `<= 200` is violated by `> 200`.
fn violation(c: Comparison) -> Comparison {
    match c {
        Comparison::Le => Comparison::Gt,
        Comparison::Lt => Comparison::Ge,
        Comparison::Ge => Comparison::Lt,
        Comparison::Gt => Comparison::Le,
    }
}

fn holds(c: Comparison, value: Decimal, limit: Decimal) -> bool {
    let o = value.cmp_value(limit);
    match c {
        Comparison::Lt => o.is_lt(),
        Comparison::Le => o.is_le(),
        Comparison::Gt => o.is_gt(),
        Comparison::Ge => o.is_ge(),
    }
}

/// Seed 000's names for its metrics; others get `<Metric>High`/`Low`.
fn alert_name(metric: &str, upper_bound: bool) -> String {
    match metric {
        "cpu_temp" => "CpuTemperatureHigh".into(),
        "io_wait" => "HighIOWait".into(),
        "wal_rate" => "WalSpikes".into(),
        "p95_write_latency" => "P95WriteLatencyHigh".into(),
        other => format!(
            "{}{}",
            camel(other),
            if upper_bound { "High" } else { "Low" }
        ),
    }
}

pub fn series_name(metric: &str) -> String {
    format!("tuner:{metric}")
}

/// `tuner:<metric>` for every metric of tuner.yaml.
pub fn records(config: &Config) -> Vec<Record> {
    config
        .metrics
        .iter()
        .map(|(name, def)| Record {
            record: series_name(name),
            expr: def.query.trim().to_string(),
            labels: BTreeMap::new(),
        })
        .collect()
}

pub fn runbook(alerting: &Alerting, alert: &str, slo: &str) -> String {
    alerting
        .runbook_url
        .replace("{alert}", &alert.to_ascii_lowercase())
        .replace("{slo}", slo)
}

/// One alert per objective of the active profile, tagged `tuning_trigger`.
pub fn sla_alerts(
    config: &Config,
    alerting: &Alerting,
    baseline: Option<&Baseline>,
    notes: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Vec<(Alert, Trigger)> {
    let mut out = Vec::new();
    for (metric, objective) in config.objectives() {
        let Some(def) = config.metrics.get(metric) else {
            continue; // `config::load` already refused this.
        };
        let Some(trigger) = trigger_of(metric, objective, alerting, baseline, notes, problems)
        else {
            continue;
        };
        let name = alert_name(metric, objective.comparison.upper_bound());
        let for_ = alerting.for_["sla"];
        let mut labels = BTreeMap::from([
            ("severity".to_string(), alerting.severities["sla"].clone()),
            ("tier".to_string(), "sla".to_string()),
            (TRIGGER.to_string(), "true".to_string()),
            ("metric".to_string(), metric.clone()),
            ("profile".to_string(), config.profile.clone()),
        ]);
        if let Some(symptom) = &def.symptom {
            labels.insert("symptom".into(), symptom.clone());
        }
        let what = def.description.clone().unwrap_or_else(|| metric.clone());
        let condition = match &trigger {
            Trigger::Crosses(c, v) => format!("{} {v} {}", c.symbol(), def.unit.name()),
            Trigger::Spike { factor, .. } => format!(
                "> {factor}x its 90th percentile over the last {}",
                prom_duration(alerting.recent)
            ),
        };
        let summary = format!(
            "{metric} {condition}: profile {} asks {objective}",
            config.profile
        );
        let description = format!(
            "{what}. Fires after {} outside the objective; during a tuning cycle's observation window it makes the verdict alert_fired and the change is rolled back.",
            prom_duration(for_)
        );
        let annotations = BTreeMap::from([
            ("summary".to_string(), summary),
            ("description".to_string(), description),
            ("runbook_url".to_string(), runbook(alerting, &name, "")),
        ]);
        out.push((
            Alert {
                alert: name,
                expr: trigger.expr(&series_name(metric), alerting),
                for_: prom_duration(for_),
                labels,
                annotations,
            },
            trigger,
        ));
    }
    out
}

fn trigger_of(
    metric: &str,
    objective: &Objective,
    alerting: &Alerting,
    baseline: Option<&Baseline>,
    notes: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Option<Trigger> {
    let bad = violation(objective.comparison);
    match &objective.threshold {
        Threshold::Absolute { value, raw } => match value.and_then(Decimal::from_f64) {
            Some(v) => Some(Trigger::Crosses(bad, v)),
            None => {
                problems.push(format!("{metric}: objective {raw:?} has no value"));
                None
            }
        },
        Threshold::Relative { factor, peak } => {
            if let Some(reference) = baseline.and_then(|b| b.reference(metric)) {
                let base = if *peak { reference.1 } else { reference.0 };
                let v = Decimal::from_f64_significant(factor * base, 6)?;
                notes.push(format!(
                    "{metric}: {objective} is {v} with the baseline of {}",
                    baseline
                        .map(|b| b.captured_at.to_rfc3339())
                        .unwrap_or_default()
                ));
                return Some(Trigger::Crosses(bad, v));
            }
            let factor = Decimal::from_f64(*factor)?;
            if !objective.comparison.upper_bound() || factor.cmp_value(Decimal::from_int(1)).is_le()
            {
                notes.push(format!(
                    "{metric}: {objective} needs a baseline (run `tuner baseline`); no alert for it"
                ));
                return None;
            }
            let floor = alerting.floors.get(metric).map(|f| {
                Decimal::parse(f).unwrap_or(Decimal::ZERO) // checked by `check_floors`
            });
            notes.push(format!(
                "{metric}: no baseline, so {} fires on a spike above {factor}x the last {}",
                alert_name(metric, true),
                prom_duration(alerting.recent)
            ));
            Some(Trigger::Spike { factor, floor })
        }
    }
}

/// The budget's warning and critical levels as alerts, for objectives on a
/// metric Prometheus has (a metric of tuner.yaml).
pub fn budget_alerts(
    config: &Config,
    budget: &Budget,
    alerting: &Alerting,
    notes: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Vec<(Alert, Trigger)> {
    let mut out = Vec::new();
    for o in &budget.objectives {
        let MetricRef::Named(metric) = &o.metric else {
            notes.push(format!(
                "objectives.{}: {} is measured from result files, not Prometheus; no alert for it",
                o.name, o.metric
            ));
            continue;
        };
        let Some(def) = config.metrics.get(metric) else {
            let known: Vec<&str> = config.metrics.keys().map(String::as_str).collect();
            problems.push(format!(
                "{}: objectives.{}.metric: unknown metric {metric:?}; alerts need a metric of {} (metrics: {})",
                o.at,
                o.name,
                config.source.display(),
                known.join(", ")
            ));
            continue;
        };
        let levels = match o.levels(def.unit) {
            Ok(l) => l,
            Err(e) => {
                problems.push(o.locate(&e));
                continue;
            }
        };
        let name = format!("{}Budget", camel(&o.name));
        for (tier, level) in [("warning", &levels.warning), ("critical", &levels.critical)] {
            let Some(level) = level else { continue };
            let Some(v) = Decimal::from_f64(level.value) else {
                continue;
            };
            let trigger = Trigger::Crosses(level.comparison, v);
            let for_ = alerting.for_[tier];
            let labels = BTreeMap::from([
                ("severity".to_string(), alerting.severities[tier].clone()),
                ("tier".to_string(), tier.to_string()),
                ("metric".to_string(), metric.clone()),
                ("objective".to_string(), o.name.clone()),
            ]);
            let what = o
                .description
                .clone()
                .or_else(|| def.description.clone())
                .unwrap_or_else(|| metric.clone());
            let annotations = BTreeMap::from([
                (
                    "summary".to_string(),
                    format!(
                        "{metric} {} {v} {}: the budget's {tier} level ({})",
                        level.comparison.symbol(),
                        def.unit.name(),
                        level.written
                    ),
                ),
                (
                    "description".to_string(),
                    format!(
                        "{what}. Past the {tier} level of {} for {}.",
                        budget.path.display(),
                        prom_duration(for_)
                    ),
                ),
                ("runbook_url".to_string(), runbook(alerting, &name, "")),
            ]);
            out.push((
                Alert {
                    alert: name.clone(),
                    expr: trigger.expr(&series_name(metric), alerting),
                    for_: prom_duration(for_),
                    labels,
                    annotations,
                },
                trigger,
            ));
        }
    }
    out
}

/// A value just past `limit` on either side: (crosses, stays).
fn around(c: Comparison, limit: Decimal) -> (Decimal, Decimal) {
    let step = if limit.is_positive() || limit.cmp_value(Decimal::ZERO).is_lt() {
        Decimal::from_f64_significant(limit.to_f64().abs() / 1000.0, 3).unwrap_or(Decimal::ZERO)
    } else {
        Decimal::parse("0.001").unwrap_or(Decimal::ZERO)
    };
    let (above, below) = (limit.plus(step), limit.minus(step));
    match c {
        Comparison::Gt => (above, limit),
        Comparison::Ge => (limit, below),
        Comparison::Lt => (below, limit),
        Comparison::Le => (limit, above),
    }
}

fn minutes(d: std::time::Duration) -> u64 {
    d.as_secs().div_ceil(60)
}

/// Unit tests for every alert sharing one name: each scenario feeds one
/// value (or a spike) and expects exactly the alerts whose threshold that
/// value crosses, worked out here in exact decimals, not by Prometheus.
pub fn unit_tests(alerts: &[(Alert, Trigger)], alerting: &Alerting) -> Vec<UnitTest> {
    let mut by_name: BTreeMap<&str, Vec<&(Alert, Trigger)>> = BTreeMap::new();
    for a in alerts {
        by_name.entry(a.0.alert.as_str()).or_default().push(a);
    }
    let mut tests = Vec::new();
    for (name, group) in by_name {
        let series = group
            .first()
            .and_then(|(a, _)| a.labels.get("metric"))
            .map(|m| series_name(m))
            .unwrap_or_default();
        let longest = group
            .iter()
            .map(|(a, _)| alerting_for(a, alerting))
            .max()
            .unwrap_or(0);
        let mut values = Vec::new();
        for (_, t) in &group {
            if let Trigger::Crosses(c, v) = t {
                let (cross, stay) = around(*c, *v);
                values.push(cross);
                values.push(stay);
            }
        }
        for value in values {
            let eval = longest + 2;
            let expected = group
                .iter()
                .filter(|(_, t)| matches!(t, Trigger::Crosses(c, v) if holds(*c, value, *v)))
                .map(|(a, _)| Expected::of(a, &[]))
                .collect();
            tests.push(UnitTest {
                name: format!("{name}: {series} at {value}"),
                interval: "1m".into(),
                input_series: vec![Series {
                    series: series.clone(),
                    values: format!("{value}+0x{}", eval + 5),
                }],
                alert_rule_test: vec![AlertCase {
                    eval_time: format!("{eval}m"),
                    alertname: name.to_string(),
                    exp_alerts: expected,
                }],
            });
        }
        for (a, t) in &group {
            if let Trigger::Spike { factor, floor } = t {
                tests.extend(spike_tests(a, &series, *factor, *floor, alerting));
            }
        }
    }
    tests
}

fn alerting_for(a: &Alert, alerting: &Alerting) -> u64 {
    let tier = a.labels.get("tier").map(String::as_str).unwrap_or("sla");
    alerting.for_.get(tier).copied().map(minutes).unwrap_or(0)
}

/// A level held for the whole `recent` window, then a jump past `factor`
/// times it: fires. The same level throughout: quiet.
fn spike_tests(
    alert: &Alert,
    series: &str,
    factor: Decimal,
    floor: Option<Decimal>,
    alerting: &Alerting,
) -> Vec<UnitTest> {
    let level = floor
        .filter(|f| f.is_positive())
        .map(|f| f.times(Decimal::from_int(2)))
        .unwrap_or(Decimal::from_int(1000));
    let spike = level.times(factor).times(Decimal::from_int(2));
    let flat = minutes(alerting.recent);
    let eval = flat + 1 + alerting_for(alert, alerting) + 1;
    let case = |values: String, fires: bool, what: &str| UnitTest {
        name: format!("{}: {what}", alert.alert),
        interval: "1m".into(),
        input_series: vec![Series {
            series: series.to_string(),
            values,
        }],
        alert_rule_test: vec![AlertCase {
            eval_time: format!("{eval}m"),
            alertname: alert.alert.clone(),
            exp_alerts: if fires {
                vec![Expected::of(alert, &[])]
            } else {
                vec![]
            },
        }],
    };
    vec![
        case(
            format!("{level}+0x{flat} {spike}+0x{}", eval - flat + 5),
            true,
            &format!("{level} then {spike}"),
        ),
        case(
            format!("{level}+0x{}", eval + 5),
            false,
            &format!("{level} throughout"),
        ),
    ]
}
